//! A file read as a source: its records parsed on the blocking pool, each field's values
//! checked against the field's type and gathered into Arrow batches (cut at the batch's rows
//! or `MAX_BATCH_BYTES`), which travel to the sink like a database's. A value that does not fit
//! its field fails the transfer with its line and field.

use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float64Builder, Int32Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use chrono::NaiveDate;
use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{blocking_end, columns, parquet, FileBytes, FileRead};
use crate::engine::batch::{Message, SourceContext, MAX_BATCH_BYTES};
use crate::engine::convert::{
    field_value, file_error, read_records, Field, Input, Place, Raw, Record,
};
use crate::engine::infer::FieldType;
use crate::engine::parse::{
    parse_bool, parse_bytes, parse_date, parse_decimal, parse_float, parse_time, parse_timestamp,
    parse_timestamptz,
};
use crate::engine::types::{arrow_schema, Column};
use crate::engine::values::plain_number;
use crate::engine::{EngineError, SourceReader};
use crate::storage::bridge::StreamReader;
use crate::storage::ByteStream;

/// An opened file source.
pub struct FileSource {
    bytes: Bytes,
    input: Input,
    fields: Vec<Field>,
    columns: Vec<Column>,
}

impl FileSource {
    /// The source of `read` (its bytes can be read once).
    pub fn open(read: &FileRead) -> Result<Self, EngineError> {
        let bytes = match &read.bytes {
            FileBytes::Stream(stream) => Bytes::Stream(
                stream
                    .take()
                    .ok_or_else(|| EngineError::Internal("the file was already read".into()))?,
            ),
            FileBytes::Ranged(ranged) => Bytes::Ranged(ranged.clone()),
            FileBytes::Local(path) => Bytes::Local(
                std::fs::File::open(path)
                    .map_err(|e| EngineError::File(format!("{}: {e}", path.display())))?,
            ),
        };
        Ok(Self {
            bytes,
            input: read.input.clone(),
            fields: read.fields.clone(),
            columns: columns(&read.fields),
        })
    }
}

impl SourceReader for FileSource {
    fn columns(&self) -> &[Column] {
        &self.columns
    }

    fn set_columns(&mut self, columns: Vec<Column>) {
        self.columns = columns;
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), EngineError>> {
        Box::pin(async move {
            let FileSource {
                bytes,
                input,
                fields,
                columns,
            } = *self;
            let schema = arrow_schema(&columns);
            let cancel = ctx.cancel.clone();
            let work = tokio::task::spawn_blocking(move || {
                match bytes {
                    Bytes::Stream(stream) => {
                        read_batches(StreamReader::new(stream), &input, &fields, schema, &ctx)?
                    }
                    Bytes::Ranged(ranged) => parquet::read_batches(ranged, &fields, schema, &ctx)?,
                    Bytes::Local(file) if input.is_columnar() => {
                        parquet::read_batches(file, &fields, schema, &ctx)?
                    }
                    Bytes::Local(file) => read_batches(
                        std::io::BufReader::with_capacity(256 << 10, file),
                        &input,
                        &fields,
                        schema,
                        &ctx,
                    )?,
                }
                Ok::<_, EngineError>(ctx)
            });
            let ctx = blocking_end(work, &cancel, "the file reader").await?;
            ctx.finish().await
        })
    }
}

/// A file's bytes as the source holds them.
enum Bytes {
    Stream(ByteStream),
    Ranged(parquet::Ranged),
    Local(std::fs::File),
}

/// Counts the bytes read into a cell the batch writer reads (for progress).
struct Counted<'c, R> {
    inner: R,
    bytes: &'c Cell<u64>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

fn read_batches(
    reader: impl Read,
    input: &Input,
    fields: &[Field],
    schema: SchemaRef,
    ctx: &SourceContext,
) -> Result<(), EngineError> {
    let mut builders: Vec<Builder> = fields.iter().map(|f| Builder::new(f.field_type)).collect();
    let (mut rows, mut bytes, mut reported) = (0usize, 0usize, 0u64);
    let read_bytes = Cell::new(0u64);
    let mut send = |builders: &mut [Builder]| -> Result<(), EngineError> {
        if ctx.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| EngineError::Internal(format!("a file batch: {e}")))?;
        ctx.progress.add_read(read_bytes.get() - reported);
        reported = read_bytes.get();
        ctx.tx
            .blocking_send(Message::Batch(batch))
            .map_err(|_| EngineError::Cancelled)
    };
    let mut emit = |place: Place, record: Record<'_>| {
        for (field, builder) in fields.iter().zip(builders.iter_mut()) {
            let raw = field_value(&record, field, place)?;
            bytes += builder
                .push(raw, field.field_type)
                .map_err(|why| file_error(place, format!("field {:?}: {why}", field.name)))?;
        }
        rows += 1;
        if rows >= ctx.batch_rows || bytes >= MAX_BATCH_BYTES {
            send(&mut builders)?;
            (rows, bytes) = (0, 0);
        }
        Ok(())
    };
    let counted = Counted {
        inner: reader,
        bytes: &read_bytes,
    };
    read_records(counted, input, &mut emit)?;
    if rows > 0 {
        send(&mut builders)?;
    }
    Ok(())
}

/// An Arrow builder for one field's values.
enum Builder {
    Boolean(BooleanBuilder),
    Integer(Int32Builder),
    BigInt(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

impl Builder {
    fn new(t: FieldType) -> Self {
        match t {
            FieldType::Boolean => Self::Boolean(BooleanBuilder::new()),
            FieldType::Integer => Self::Integer(Int32Builder::new()),
            FieldType::BigInt => Self::BigInt(Int64Builder::new()),
            FieldType::Float => Self::Float(Float64Builder::new()),
            FieldType::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision as u8, scale as i8)
                    .expect("field types hold valid decimals"),
            ),
            FieldType::Text | FieldType::Json => Self::Text(StringBuilder::new()),
            FieldType::Bytes => Self::Bytes(BinaryBuilder::new()),
            FieldType::Date => Self::Date(Date32Builder::new()),
            FieldType::Time => Self::Time(Time64MicrosecondBuilder::new()),
            FieldType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::new()),
            FieldType::TimestampTz => {
                Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            FieldType::Uuid => Self::Uuid(FixedSizeBinaryBuilder::new(16)),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Integer(b) => Arc::new(b.finish()),
            Self::BigInt(b) => Arc::new(b.finish()),
            Self::Float(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
        }
    }

    fn push_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Integer(b) => b.append_null(),
            Self::BigInt(b) => b.append_null(),
            Self::Float(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
        }
    }

    /// Add a value of type `t`; the bytes it takes, or why it does not fit.
    fn push(&mut self, raw: Raw<'_>, t: FieldType) -> Result<usize, String> {
        let owned;
        let text = match raw {
            Raw::Null | Raw::Json(Value::Null) => {
                self.push_null();
                return Ok(1);
            }
            Raw::Text(text) => text,
            Raw::Json(value) => match (value, t) {
                (Value::String(s), _) if t != FieldType::Json => s.as_str(),
                (Value::Bool(b), FieldType::Boolean) => {
                    if let Self::Boolean(builder) = self {
                        builder.append_value(*b);
                    }
                    return Ok(1);
                }
                (Value::Number(n), FieldType::Decimal { .. }) => {
                    owned = plain_number(&n.to_string()).into_owned();
                    &owned
                }
                (Value::Bool(_), FieldType::Text | FieldType::Json)
                | (Value::Number(_), _)
                | (Value::Array(_) | Value::Object(_), FieldType::Text | FieldType::Json) => {
                    owned = value.to_string();
                    &owned
                }
                (Value::String(s), _) => {
                    owned = Value::String(s.clone()).to_string();
                    &owned
                }
                (v, t) => return Err(format!("{v} is not {}", t.described())),
            },
        };
        let bad = || format!("{text:?} is not {}", t.described());
        let trimmed = text.trim();
        match self {
            Self::Boolean(b) => b.append_value(parse_bool(trimmed).ok_or_else(bad)?),
            Self::Integer(b) => b.append_value(trimmed.parse().map_err(|_| bad())?),
            Self::BigInt(b) => b.append_value(trimmed.parse().map_err(|_| bad())?),
            Self::Float(b) => b.append_value(parse_float(trimmed).ok_or_else(bad)?),
            Self::Decimal(b) => {
                let FieldType::Decimal { precision, scale } = t else {
                    return Err(bad());
                };
                b.append_value(parse_decimal(trimmed, precision, scale).ok_or_else(bad)?)
            }
            Self::Text(b) => {
                if t == FieldType::Json {
                    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| bad())?;
                }
                b.append_value(text)
            }
            Self::Bytes(b) => b.append_value(
                parse_bytes(trimmed)
                    .ok_or_else(|| format!("{text:?} is not bytes (base64, or hex after \\x)"))?,
            ),
            Self::Date(b) => {
                let date = parse_date(trimmed).ok_or_else(bad)?;
                b.append_value((date - NaiveDate::default()).num_days() as i32)
            }
            Self::Time(b) => b.append_value(parse_time(trimmed).ok_or_else(bad)?),
            Self::Timestamp(b) => {
                let micros = if t == FieldType::TimestampTz {
                    parse_timestamptz(trimmed)
                } else {
                    parse_timestamp(trimmed).map(|t| t.and_utc().timestamp_micros())
                };
                b.append_value(micros.ok_or_else(bad)?)
            }
            Self::Uuid(b) => {
                let uuid = uuid::Uuid::parse_str(trimmed).map_err(|_| bad())?;
                b.append_value(uuid.as_bytes())
                    .map_err(|e| format!("{text:?}: {e}"))?
            }
        }
        Ok(text.len().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_becomes_its_scaled_integer_or_is_refused() {
        assert_eq!(parse_decimal("12.5", 5, 2), Some(1250));
        assert_eq!(parse_decimal("-0.01", 5, 2), Some(-1));
        assert_eq!(parse_decimal("+007", 3, 0), Some(7));
        assert_eq!(parse_decimal("1234", 5, 2), None);
        assert_eq!(parse_decimal("1.234", 5, 2), None);
        assert_eq!(parse_decimal("1e3", 5, 2), None);
        assert_eq!(parse_decimal(".5", 5, 2), None);
    }

    #[test]
    fn values_of_every_field_type_build_arrow_arrays() {
        let cases: &[(FieldType, &str)] = &[
            (FieldType::Boolean, "TRUE"),
            (FieldType::Integer, " 42 "),
            (FieldType::BigInt, "9223372036854775807"),
            (FieldType::Float, "-0.5"),
            (FieldType::Date, "2024-02-29"),
            (FieldType::Timestamp, "2024-02-29T10:11:12.5"),
            // Seconds are optional, as detection takes them.
            (FieldType::Timestamp, "2024-02-29 10:11"),
            (FieldType::TimestampTz, "2024-02-29 10:11:12+02:00"),
            (FieldType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            (FieldType::Json, "{\"a\":[1,2]}"),
            (FieldType::Bytes, "AAEC"),
        ];
        for (t, text) in cases {
            let mut builder = Builder::new(*t);
            builder.push(Raw::Text(text), *t).unwrap();
            builder.push(Raw::Null, *t).unwrap();
            let array = builder.finish();
            assert_eq!(array.len(), 2, "{t:?}");
            assert_eq!(array.null_count(), 1, "{t:?}");
            assert_eq!(array.data_type(), &t.logical().arrow_type(), "{t:?}");
        }
        let mut builder = Builder::new(FieldType::TimestampTz);
        builder
            .push(
                Raw::Text("1970-01-01 02:00:00+02:00"),
                FieldType::TimestampTz,
            )
            .unwrap();
        // Offsets may be written without a colon, as detection takes them.
        builder
            .push(
                Raw::Text("1970-01-01T02:00:00+0200"),
                FieldType::TimestampTz,
            )
            .unwrap();
        let array = builder.finish();
        let values = array
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(values.value(0), 0);
        assert_eq!(values.value(1), 0);
        let err = Builder::new(FieldType::Integer)
            .push(Raw::Text("3.5"), FieldType::Integer)
            .unwrap_err();
        assert!(err.contains("3.5"), "{err}");
    }
}
