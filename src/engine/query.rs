//! A query job's data plane: a statement that returns rows is read by the dialect's source and
//! kept (up to a row and a byte limit, after which the source query is cancelled); a statement
//! that returns none (DDL, UPDATE…) is executed and its affected-row count reported.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batch::{copy_not_offered, Message, Progress, SourceContext, CHANNEL_BATCHES};
use super::pipeline::open_source;
use super::types::{Column, LogicalType};
use super::values::{self, Fraction};
use super::{Carrier, ConnectSpec, EngineError, SourceSpec};

/// Limits on what a query keeps.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
    pub batch_rows: usize,
}

/// A result column as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultColumn {
    pub name: String,
    /// The logical type, e.g. `int64`, `decimal(38,10)`, `timestamptz`.
    #[serde(rename = "type")]
    pub logical: String,
    /// The type as the database named it.
    pub db_type: String,
}

/// What a query produced.
#[derive(Debug, Clone, Default)]
pub struct QueryOutput {
    pub columns: Vec<ResultColumn>,
    /// Rows as JSON values in column order (see `json_value`).
    pub rows: Vec<Vec<Value>>,
    /// The row limit or the byte limit stopped the reading.
    pub truncated: bool,
    /// For statements that return no rows.
    pub rows_affected: Option<u64>,
}

/// Run one query to its end (or its limits).
pub async fn run_query(
    spec: ConnectSpec,
    sql: String,
    limits: QueryLimits,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<QueryOutput, EngineError> {
    let executed = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        done = spec.kind.connector().execute(&spec, &sql, &cancel) => done?,
    };
    if let Some(rows_affected) = executed {
        return Ok(QueryOutput {
            rows_affected: Some(rows_affected),
            ..Default::default()
        });
    }
    // Kept as JSON: the portable forms (not PostgreSQL raw values).
    let read = SourceSpec::Query(sql);
    let source = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        opened = open_source(&spec, &read, Carrier::Portable) => opened?,
    };
    let columns: Vec<Column> = source.columns().to_vec();
    let inner = cancel.child_token();
    let (tx, mut rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    let ctx = SourceContext::new(
        tx,
        inner.clone(),
        progress.clone(),
        // Read no further than needed to know whether the limit is passed.
        limits
            .batch_rows
            .min(limits.max_rows.saturating_add(1) as usize)
            .max(1),
    );
    let reader = tokio::spawn(source.run(ctx));
    let mut output = QueryOutput {
        columns: columns.iter().map(result_column).collect(),
        ..Default::default()
    };
    let mut bytes = 0u64;
    let mut ended = false;
    'read: while let Some(message) = rx.recv().await {
        let batch = match message {
            Message::Batch(batch) => batch,
            Message::Copy(_) => return Err(copy_not_offered()),
            Message::End => {
                ended = true;
                break;
            }
        };
        for row in 0..batch.num_rows() {
            if output.rows.len() as u64 >= limits.max_rows {
                output.truncated = true;
                break 'read;
            }
            let values = row_values(&batch, &columns, row, output.rows.len() as u64 + 1)?;
            bytes += values.iter().map(approximate_size).sum::<u64>();
            if bytes > limits.max_bytes {
                output.truncated = true;
                break 'read;
            }
            output.rows.push(values);
            progress.add_written(1);
        }
    }
    if output.truncated {
        // Stop the query on the server rather than read it to the end.
        inner.cancel();
    }
    drop(rx);
    let read = reader
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("source task: {e}"))));
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    match read {
        Ok(()) if ended || output.truncated => Ok(output),
        Ok(()) => Err(EngineError::Internal(
            "the source stopped without finishing".into(),
        )),
        Err(EngineError::Cancelled) if output.truncated => Ok(output),
        Err(e) => Err(e),
    }
}

fn result_column(c: &Column) -> ResultColumn {
    ResultColumn {
        name: c.name.clone(),
        logical: logical_name(&c.ty),
        db_type: c.db_type.clone(),
    }
}

/// A short name of a logical type for API users.
pub fn logical_name(ty: &LogicalType) -> String {
    match ty {
        LogicalType::Boolean => "boolean".into(),
        LogicalType::Int16 => "int16".into(),
        LogicalType::Int32 => "int32".into(),
        LogicalType::Int64 => "int64".into(),
        LogicalType::UInt64 => "uint64".into(),
        LogicalType::Float32 => "float32".into(),
        LogicalType::Float64 => "float64".into(),
        LogicalType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        LogicalType::BigDecimal { .. } => "decimal".into(),
        LogicalType::Text { .. } => "text".into(),
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => "binary".into(),
        LogicalType::Date => "date".into(),
        LogicalType::Time => "time".into(),
        LogicalType::Timestamp => "timestamp".into(),
        LogicalType::TimestampTz => "timestamptz".into(),
        LogicalType::Uuid => "uuid".into(),
        LogicalType::Json => "json".into(),
        LogicalType::Array { .. } => "array".into(),
        LogicalType::Interval => "interval".into(),
        LogicalType::Other { .. } => "text".into(),
    }
}

fn approximate_size(v: &Value) -> u64 {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 12,
        Value::String(s) => s.len() as u64 + 2,
        other => other.to_string().len() as u64,
    }
}

const MAX_SAFE_INTEGER: i64 = 1 << 53;

/// A number when JSON readers get it exactly (|n| ≤ 2^53), else its decimal text.
fn integer(v: i64) -> Value {
    if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&v) {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

fn float(v: f64) -> Value {
    if v.is_finite() {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string()))
    } else if v.is_nan() {
        Value::String("NaN".into())
    } else if v > 0.0 {
        Value::String("Infinity".into())
    } else {
        Value::String("-Infinity".into())
    }
}

/// A decimal given as exact text: a JSON number when a double holds it exactly (at most 15
/// significant digits), else the text.
fn decimal_text(text: String) -> Value {
    let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
    let significant = text
        .trim_start_matches(['-', '+'])
        .trim_start_matches(['0', '.'])
        .chars()
        .filter(|c| c.is_ascii_digit())
        .count();
    if digits > 0 && significant <= 15 {
        if let Ok(f) = text.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(text)
}

pub(crate) fn decimal128_text(v: i128, scale: i8) -> String {
    let mut text = String::new();
    values::push_ascii(&mut text, |b| values::write_decimal(b, v, scale));
    text
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (years outside 0–9999 through chrono).
pub(crate) fn date_text(days: i32) -> String {
    let mut text = Vec::with_capacity(10);
    write_date(&mut text, days);
    String::from_utf8(text).expect("dates are written as ASCII")
}

/// `date_text` appended to `out`.
pub(crate) fn write_date(out: &mut Vec<u8>, days: i32) {
    let (year, month, day) = values::civil_from_days(days.into());
    if (0..=9999).contains(&year) {
        return values::write_ymd(out, year as u32, month, day);
    }
    let text = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days as i64)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string());
    out.extend_from_slice(text.as_bytes());
}

/// ISO 8601 with microseconds (`2024-02-29T10:11:12.500000`, and `Z` for an instant in UTC),
/// written directly for years 0–9999 (a formatter per value costs more than the rest of a
/// row), through chrono otherwise.
pub(crate) fn timestamp_text(micros: i64, utc: bool) -> String {
    let mut text = Vec::with_capacity(27);
    write_timestamp(&mut text, micros, utc);
    String::from_utf8(text).expect("timestamps are written as ASCII")
}

/// `timestamp_text` appended to `out`.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, micros: i64, utc: bool) {
    let days = micros.div_euclid(values::MICROS_PER_DAY);
    let (year, month, day) = values::civil_from_days(days);
    if (0..=9999).contains(&year) {
        values::write_ymd(out, year as u32, month, day);
        out.push(b'T');
        values::write_time(
            out,
            micros.rem_euclid(values::MICROS_PER_DAY),
            Fraction::Always,
        );
        if utc {
            out.push(b'Z');
        }
        return;
    }
    let text = match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) if utc => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        Some(t) => t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        None => micros.to_string(),
    };
    out.extend_from_slice(text.as_bytes());
}

pub(crate) fn time_text(micros: i64) -> String {
    let mut text = String::new();
    values::push_ascii(&mut text, |b| {
        values::write_time(b, micros, Fraction::Always)
    });
    text
}

/// One row of a batch as JSON values, with types kept: numbers where exact, 64-bit integers
/// beyond 2^53 and long decimals as strings, bytes as base64, timestamps as RFC 3339.
pub fn row_values(
    batch: &RecordBatch,
    columns: &[Column],
    row: usize,
    row_number: u64,
) -> Result<Vec<Value>, EngineError> {
    columns
        .iter()
        .zip(batch.columns())
        .map(|(column, array)| {
            json_value(array.as_ref(), &column.ty, row).map_err(|message| EngineError::Value {
                column: column.name.clone(),
                row: row_number,
                message,
            })
        })
        .collect()
}

fn json_value(array: &dyn Array, ty: &LogicalType, row: usize) -> Result<Value, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match ty {
        LogicalType::Boolean => Value::Bool(array.as_boolean().value(row)),
        LogicalType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(row)),
        LogicalType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        LogicalType::Int64 => integer(array.as_primitive::<Int64Type>().value(row)),
        LogicalType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            if v <= MAX_SAFE_INTEGER as u64 {
                Value::from(v)
            } else {
                Value::String(v.to_string())
            }
        }
        LogicalType::Float32 => float(array.as_primitive::<Float32Type>().value(row) as f64),
        LogicalType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        LogicalType::Decimal { scale, .. } => decimal_text(decimal128_text(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
        )),
        LogicalType::BigDecimal { .. } => {
            decimal_text(array.as_string::<i32>().value(row).to_string())
        }
        LogicalType::Json => {
            let text = array.as_string::<i32>().value(row);
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
        LogicalType::Text { .. }
        | LogicalType::Array { .. }
        | LogicalType::Interval
        | LogicalType::Other { .. } => Value::String(array.as_string::<i32>().value(row).into()),
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => {
            Value::String(B64.encode(array.as_binary::<i32>().value(row)))
        }
        LogicalType::Date => {
            Value::String(date_text(array.as_primitive::<Date32Type>().value(row)))
        }
        LogicalType::Time => Value::String(time_text(
            array.as_primitive::<Time64MicrosecondType>().value(row),
        )),
        LogicalType::Timestamp => Value::String(timestamp_text(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
            false,
        )),
        LogicalType::TimestampTz => Value::String(timestamp_text(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
            true,
        )),
        LogicalType::Uuid => {
            let bytes = array.as_fixed_size_binary().value(row);
            let uuid = uuid::Uuid::from_slice(bytes).map_err(|e| e.to_string())?;
            Value::String(uuid.hyphenated().to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_only_where_json_readers_get_them_exactly() {
        assert_eq!(integer(42), Value::from(42));
        assert_eq!(
            integer(i64::MAX),
            Value::String("9223372036854775807".into())
        );
        assert_eq!(float(-0.5), serde_json::json!(-0.5));
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(decimal_text("123.4500".into()), serde_json::json!(123.45));
        assert_eq!(
            decimal_text("12345678901234567890.12".into()),
            Value::String("12345678901234567890.12".into())
        );
        assert_eq!(decimal128_text(-5, 3), "-0.005");
        assert_eq!(decimal128_text(123450, 2), "1234.50");
        assert_eq!(time_text(3_600_000_000 + 1), "01:00:00.000001");
        assert_eq!(date_text(-719162), "0001-01-01");
        assert_eq!(
            timestamp_text(-1, true),
            "1969-12-31T23:59:59.999999Z".to_string()
        );
        // The direct path writes what chrono writes.
        for micros in [
            0,
            1,
            951_782_400_123_456,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ] {
            let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            assert_eq!(
                timestamp_text(micros, true),
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
            assert_eq!(
                timestamp_text(micros, false),
                t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            );
        }
        assert_eq!(date_text(19_782), "2024-02-29");
    }
}
