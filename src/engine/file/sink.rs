//! A transfer's rows written as a file: each batch's values as text in the output format, on
//! the blocking pool, into the byte stream the caller stores. The stream ends cleanly only
//! after `End`; a failure or a cancel ends it with an error, so the caller keeps no half file.

use std::borrow::Cow;
use std::io::{BufWriter, Write};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::parquet::ParquetOut;
use super::sql::SqlOut;
use super::{blocking_end, FileWrite};
use crate::engine::batch::{copy_not_offered, Message, SinkContext};
use crate::engine::connector::DbKind;
use crate::engine::convert::{io_error, Cell, Formatted, Output, Writer};
use crate::engine::query::decimal128_text;
use crate::engine::types::{arrow_schema, LogicalType};
use crate::engine::values::float_text;
use crate::engine::EngineError;
use crate::storage::bridge::StreamWriter;

/// Write everything the channel brings; the rows written.
pub async fn run(ctx: SinkContext, write: FileWrite) -> Result<u64, EngineError> {
    let mut out = write
        .bytes
        .take()
        .ok_or_else(|| EngineError::Internal("the output file was already written".into()))?;
    let _ = write.columns.set(ctx.columns.clone());
    let cancel = ctx.cancel.clone();
    let work = tokio::task::spawn_blocking(move || {
        let result = match write.output {
            Output::Parquet => write_parquet(ctx, &mut out),
            Output::Sql { dialect } => write_sql(ctx, dialect, &write.table, &mut out),
            text => write_all(ctx, text, &mut out),
        };
        if let Err(e) = &result {
            out.fail(&e.to_string());
        }
        result
    });
    blocking_end(work, &cancel, "the file writer").await
}

/// The next batch, or `None` after `End`; a channel that closes without it, or a cancel,
/// fails.
fn next_batch(ctx: &mut SinkContext) -> Result<Option<RecordBatch>, EngineError> {
    let batch = match ctx.rx.blocking_recv() {
        Some(Message::Batch(batch)) => batch,
        Some(Message::Copy(_)) => return Err(copy_not_offered()),
        Some(Message::End) => return Ok(None),
        // The sources stopped without `End`: failed or cancelled.
        None => return Err(EngineError::Cancelled),
    };
    if ctx.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    Ok(Some(batch))
}

fn write_parquet(mut ctx: SinkContext, out: &mut StreamWriter) -> Result<u64, EngineError> {
    let schema = arrow_schema(&ctx.columns);
    let mut writer = ParquetOut::new(BufWriter::with_capacity(1 << 20, &mut *out), schema)?;
    let mut rows = 0u64;
    while let Some(batch) = next_batch(&mut ctx)? {
        writer.write(&batch)?;
        rows += batch.num_rows() as u64;
        ctx.progress.add_written(batch.num_rows() as u64);
    }
    writer.finish()?;
    out.flush().map_err(io_error)?;
    Ok(rows)
}

fn write_sql(
    mut ctx: SinkContext,
    dialect: DbKind,
    table: &str,
    out: &mut StreamWriter,
) -> Result<u64, EngineError> {
    let columns = std::mem::take(&mut ctx.columns);
    let mut script = SqlOut::new(
        BufWriter::with_capacity(1 << 20, &mut *out),
        dialect,
        table,
        columns,
    )?;
    while let Some(batch) = next_batch(&mut ctx)? {
        script.write(&batch)?;
        ctx.progress.add_written(batch.num_rows() as u64);
    }
    script.finish()
}

fn write_all(
    mut ctx: SinkContext,
    output: Output,
    out: &mut StreamWriter,
) -> Result<u64, EngineError> {
    let columns = std::mem::take(&mut ctx.columns);
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    // JSON readers hold numbers as doubles: decimals a double cannot hold exactly are strings.
    let json = !matches!(output, Output::Csv(_));
    let types: Vec<&LogicalType> = columns.iter().map(|c| &c.ty).collect();
    let mut writer = Writer::new(BufWriter::with_capacity(256 << 10, &mut *out), output);
    writer.start(&names).map_err(io_error)?;
    let mut rows = 0u64;
    while let Some(batch) = next_batch(&mut ctx)? {
        let mut cells: Vec<Cell<'_>> = Vec::with_capacity(names.len());
        for row in 0..batch.num_rows() {
            cells.clear();
            for (array, ty) in batch.columns().iter().zip(&types) {
                cells.push(cell(array.as_ref(), ty, row, json).map_err(|message| {
                    EngineError::Value {
                        column: names[cells.len()].to_string(),
                        row: rows + 1,
                        message,
                    }
                })?);
            }
            writer.record(&names, &cells).map_err(io_error)?;
            rows += 1;
        }
        ctx.progress.add_written(batch.num_rows() as u64);
    }
    writer.finish().map_err(io_error)?;
    Ok(rows)
}

fn literal(text: String) -> Cell<'static> {
    Cell::Literal(Cow::Owned(text))
}

fn text(text: String) -> Cell<'static> {
    Cell::Text(Cow::Owned(text))
}

fn formatted(value: Formatted, quoted: bool) -> Cell<'static> {
    Cell::Formatted { value, quoted }
}

fn float(v: f64) -> Cell<'static> {
    if v.is_finite() {
        literal(float_text(v))
    } else if v.is_nan() {
        text("NaN".into())
    } else if v > 0.0 {
        text("Infinity".into())
    } else {
        text("-Infinity".into())
    }
}

/// One value as a file holds it: numbers and booleans bare, everything else as text (bytes as
/// base64, times as ISO 8601), JSON embedded. In JSON (`json`), a decimal of more than 15
/// significant digits is a string, so that readers that hold numbers as doubles keep it exact.
fn cell<'a>(
    array: &'a dyn Array,
    ty: &LogicalType,
    row: usize,
    json: bool,
) -> Result<Cell<'a>, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    Ok(match ty {
        LogicalType::Boolean => Cell::Literal(Cow::Borrowed(if array.as_boolean().value(row) {
            "true"
        } else {
            "false"
        })),
        LogicalType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(row).into()),
        LogicalType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
        LogicalType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row)),
        LogicalType::UInt64 => literal(array.as_primitive::<UInt64Type>().value(row).to_string()),
        LogicalType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            // The shortest text that reads back as the same single-precision value.
            if v.is_finite() {
                literal(float_text(v))
            } else {
                float(f64::from(v))
            }
        }
        LogicalType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        LogicalType::Decimal { scale, .. } => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            // Its significant digits are those of the unscaled value (for a scale of 0 or more).
            if json && (*scale < 0 || v.unsigned_abs() >= 10u128.pow(15)) {
                text(decimal128_text(v, *scale))
            } else {
                formatted(Formatted::Decimal(v, *scale), false)
            }
        }
        LogicalType::BigDecimal { .. } => {
            // Its field type is `string` (no precision to declare): JSON keeps it a string.
            let v = array.as_string::<i32>().value(row);
            if json || v.bytes().any(|b| b.is_ascii_alphabetic()) {
                Cell::Text(Cow::Borrowed(v))
            } else {
                Cell::Literal(Cow::Borrowed(v))
            }
        }
        LogicalType::Json => Cell::Json(Cow::Borrowed(array.as_string::<i32>().value(row))),
        LogicalType::Text { .. }
        | LogicalType::Array { .. }
        | LogicalType::Interval
        | LogicalType::Other { .. } => {
            Cell::Text(Cow::Borrowed(array.as_string::<i32>().value(row)))
        }
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => {
            text(B64.encode(array.as_binary::<i32>().value(row)))
        }
        LogicalType::Date => formatted(
            Formatted::Date(array.as_primitive::<Date32Type>().value(row)),
            true,
        ),
        LogicalType::Time => formatted(
            Formatted::Time(array.as_primitive::<Time64MicrosecondType>().value(row)),
            true,
        ),
        LogicalType::Timestamp | LogicalType::TimestampTz => formatted(
            Formatted::Timestamp(
                array.as_primitive::<TimestampMicrosecondType>().value(row),
                *ty == LogicalType::TimestampTz,
            ),
            true,
        ),
        LogicalType::Uuid => {
            let bytes = array.as_fixed_size_binary().value(row);
            let bytes: [u8; 16] = bytes
                .try_into()
                .map_err(|_| format!("a UUID of {} bytes", bytes.len()))?;
            formatted(Formatted::Uuid(bytes), true)
        }
    })
}
