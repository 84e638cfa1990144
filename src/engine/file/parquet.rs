//! Parquet files: the schema read from the footer, row groups read as Arrow batches and cast
//! to the fields' types (a value a type cannot hold exactly fails, naming the column), and
//! batches written as row groups cut small enough that memory stays flat.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures_util::StreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};

use crate::engine::batch::{Message, SourceContext};
use crate::engine::convert::{Field, FieldPath};
use crate::engine::infer::FieldType;
use crate::engine::types::{LogicalType, TYPE_KEY};
use crate::engine::EngineError;
use crate::storage::bridge::StreamReader;
use crate::storage::FileStorage;

/// Rows per written row group at most; a group is also cut at `ROW_GROUP_BYTES` buffered.
const ROW_GROUP_ROWS: usize = 128 * 1024;
const ROW_GROUP_BYTES: usize = 32 << 20;

/// A stored file read by ranges (Parquet's footer is at its end). Its reads block: they are
/// made on the blocking pool.
#[derive(Clone)]
pub struct Ranged {
    storage: Arc<dyn FileStorage>,
    key: String,
    len: u64,
    handle: tokio::runtime::Handle,
}

impl Ranged {
    /// The object `key` of `len` bytes; made inside the Tokio runtime its reads use.
    pub fn new(storage: Arc<dyn FileStorage>, key: String, len: u64) -> Self {
        Self {
            storage,
            key,
            len,
            handle: tokio::runtime::Handle::current(),
        }
    }
}

impl std::fmt::Debug for Ranged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ranged({}, {} bytes)", self.key, self.len)
    }
}

impl PartialEq for Ranged {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.len == other.len
    }
}

impl Eq for Ranged {}

fn parquet_io(e: impl std::fmt::Display) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(e.to_string().into())
}

impl Length for Ranged {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Ranged {
    type T = StreamReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<StreamReader> {
        let stream = self
            .handle
            .block_on(self.storage.get(&self.key, Some(start..self.len)))
            .map_err(parquet_io)?;
        let _runtime = self.handle.enter();
        Ok(StreamReader::new(stream))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start + length as u64;
        if end > self.len {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "bytes {start}..{end} of a {}-byte file",
                self.len
            )));
        }
        self.handle.block_on(async {
            let mut stream = self
                .storage
                .get(&self.key, Some(start..end))
                .await
                .map_err(parquet_io)?;
            let mut all = Vec::with_capacity(length);
            while let Some(chunk) = stream.next().await {
                all.extend_from_slice(&chunk.map_err(parquet_io)?);
            }
            Ok(Bytes::from(all))
        })
    }
}

fn file_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::File(format!("Parquet: {e}"))
}

/// The field type a Parquet column is read as; `Err` for one Sluice does not read.
fn field_type_of(field: &arrow_schema::Field) -> Result<FieldType, String> {
    // A column written by Sluice says its logical type.
    if let Some(ty) = field
        .metadata()
        .get(TYPE_KEY)
        .and_then(|t| serde_json::from_str::<LogicalType>(t).ok())
    {
        if ty.arrow_type() == *field.data_type() {
            return Ok(super::field_type(&ty));
        }
    }
    use arrow_schema::extension::{ExtensionType, Json, Uuid};
    let extension = field.extension_type_name();
    let (uuid, json) = (extension == Some(Uuid::NAME), extension == Some(Json::NAME));
    Ok(match field.data_type() {
        DataType::Boolean => FieldType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            FieldType::Integer
        }
        DataType::Int64 | DataType::UInt32 => FieldType::BigInt,
        DataType::UInt64 => FieldType::Decimal {
            precision: 20,
            scale: 0,
        },
        DataType::Float16 | DataType::Float32 | DataType::Float64 => FieldType::Float,
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s)
            if *s >= 0 && *p <= 38 =>
        {
            FieldType::Decimal {
                precision: u32::from(*p),
                scale: *s as u32,
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if json => FieldType::Json,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => FieldType::Text,
        DataType::FixedSizeBinary(16) if uuid => FieldType::Uuid,
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => FieldType::Bytes,
        DataType::Date32 | DataType::Date64 => FieldType::Date,
        DataType::Timestamp(_, None) => FieldType::Timestamp,
        DataType::Timestamp(_, Some(_)) => FieldType::TimestampTz,
        DataType::Time32(_) | DataType::Time64(_) => FieldType::Time,
        // Nested columns are read as JSON (`nested_json`).
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..) => FieldType::Json,
        DataType::Dictionary(_, value) if value.is_primitive() || **value == DataType::Utf8 => {
            field_type_of(&arrow_schema::Field::new(
                field.name(),
                (**value).clone(),
                true,
            ))?
        }
        other => {
            return Err(format!(
                "column {:?} is {other}, which Sluice does not read yet",
                field.name()
            ))
        }
    })
}

/// A column of a Parquet file as schema detection reports it (its path is its index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetColumn {
    pub name: String,
    pub field_type: FieldType,
    pub nullable: bool,
}

/// What schema detection finds in a Parquet file: its columns, and the row count from the
/// footer.
pub fn detect<T: ChunkReader + 'static>(file: T) -> Result<(Vec<ParquetColumn>, u64), String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let fields = builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            Ok(ParquetColumn {
                name: f.name().clone(),
                field_type: field_type_of(f)?,
                nullable: f.is_nullable(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((fields, rows))
}

/// A column cast to `target`, exactly: a value the target cannot hold fails naming the column.
fn cast_column(array: &ArrayRef, target: &DataType, name: &str) -> Result<ArrayRef, EngineError> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    if array.data_type().is_nested() && *target == DataType::Utf8 {
        let texts = (0..array.len())
            .map(|row| {
                if array.is_null(row) {
                    return Ok(None);
                }
                nested_json(array.as_ref(), row).map(|v| Some(v.to_string()))
            })
            .collect::<Result<arrow_array::StringArray, String>>()
            .map_err(|e| file_error(format!("column {name:?}: {e}")))?;
        return Ok(Arc::new(texts));
    }
    if let (DataType::Timestamp(TimeUnit::Nanosecond, _), DataType::Timestamp(..)) =
        (array.data_type(), target)
    {
        let nanos = array
            .as_any()
            .downcast_ref::<arrow_array::TimestampNanosecondArray>()
            .ok_or_else(|| EngineError::Internal("a nanosecond timestamp column".into()))?;
        if let Some(row) =
            (0..nanos.len()).find(|&i| nanos.is_valid(i) && nanos.value(i) % 1000 != 0)
        {
            return Err(EngineError::Value {
                column: name.to_string(),
                row: row as u64 + 1,
                message: "a timestamp with nanoseconds; Sluice keeps microseconds".into(),
            });
        }
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, target, &options)
        .map_err(|e| file_error(format!("column {name:?}: {e}")))
}

/// One value of a column as JSON: lists as arrays, structs and maps with text keys as objects
/// (other maps as arrays of `[key, value]`), numbers as numbers (decimals of more than 15
/// significant digits, and floats that are not finite, as strings), bytes as base64, and
/// everything else (dates, times, timestamps) as Arrow's ISO text.
fn nested_json(array: &dyn Array, row: usize) -> Result<serde_json::Value, String> {
    use arrow_array::cast::AsArray;
    use serde_json::Value;
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let items = |list: ArrayRef| -> Result<Value, String> {
        (0..list.len())
            .map(|i| nested_json(list.as_ref(), i))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    Ok(match array.data_type() {
        DataType::List(_) => items(array.as_list::<i32>().value(row))?,
        DataType::LargeList(_) => items(array.as_list::<i64>().value(row))?,
        DataType::FixedSizeList(..) => items(array.as_fixed_size_list().value(row))?,
        DataType::Struct(fields) => {
            let parts = array.as_struct();
            let mut object = serde_json::Map::with_capacity(fields.len());
            for (field, column) in fields.iter().zip(parts.columns()) {
                object.insert(field.name().clone(), nested_json(column.as_ref(), row)?);
            }
            Value::Object(object)
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let pairs: Vec<(Value, Value)> = (0..entries.len())
                .map(|i| {
                    Ok((
                        nested_json(keys.as_ref(), i)?,
                        nested_json(values.as_ref(), i)?,
                    ))
                })
                .collect::<Result<_, String>>()?;
            if pairs.iter().all(|(k, _)| k.is_string()) {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v))
                        .collect(),
                )
            } else {
                Value::Array(
                    pairs
                        .into_iter()
                        .map(|(k, v)| Value::Array(vec![k, v]))
                        .collect(),
                )
            }
        }
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) => {
            use base64::Engine;
            let bytes: &[u8] = match array.data_type() {
                DataType::Binary => array.as_binary::<i32>().value(row),
                DataType::LargeBinary => array.as_binary::<i64>().value(row),
                _ => array.as_fixed_size_binary().value(row),
            };
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        other => {
            let options = arrow_cast::display::FormatOptions::default();
            let text = arrow_cast::display::ArrayFormatter::try_new(array, &options)
                .map_err(|e| e.to_string())?
                .value(row)
                .to_string();
            let number = if other.is_integer() {
                serde_json::from_str::<Value>(&text).ok()
            } else if other.is_floating() {
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            } else if other.is_numeric() && text.bytes().filter(u8::is_ascii_digit).count() <= 15 {
                // A decimal a double holds exactly.
                serde_json::from_str::<Value>(&text).ok()
            } else {
                None
            };
            number.unwrap_or(Value::String(text))
        }
    })
}

/// Read every row group of `file` as batches of `fields` (by column index), into `ctx`.
pub fn read_batches<T: ChunkReader + 'static>(
    file: T,
    fields: &[Field],
    schema: SchemaRef,
    ctx: &SourceContext,
) -> Result<(), EngineError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(file_error)?;
    let columns = builder.schema().fields().len();
    let indexes: Vec<usize> = fields
        .iter()
        .map(|f| match f.path {
            FieldPath::Column(i) if i < columns => Ok(i),
            _ => Err(file_error(format!(
                "field {:?}: the file has no column {}",
                f.name,
                match &f.path {
                    FieldPath::Column(i) => i.to_string(),
                    FieldPath::Json(_) => "at a JSONPath".into(),
                }
            ))),
        })
        .collect::<Result<_, _>>()?;
    let reader = builder
        .with_batch_size(ctx.batch_rows.max(1))
        .build()
        .map_err(file_error)?;
    for batch in reader {
        if ctx.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let batch = batch.map_err(file_error)?;
        let arrays = indexes
            .iter()
            .zip(fields)
            .zip(schema.fields())
            .map(|((&i, field), target)| {
                cast_column(batch.column(i), target.data_type(), &field.name)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| EngineError::Internal(format!("a Parquet batch: {e}")))?;
        ctx.progress.add_read(batch.get_array_memory_size() as u64);
        ctx.tx
            .blocking_send(Message::Batch(out))
            .map_err(|_| EngineError::Cancelled)?;
    }
    Ok(())
}

/// `schema` with Arrow's canonical extension types on UUID and JSON columns, so that the
/// Parquet file annotates them (`UUID`, `JSON`) and other readers (DuckDB, pyarrow) take them
/// as such rather than as bytes and text.
fn with_extension_types(schema: &SchemaRef) -> SchemaRef {
    use arrow_schema::extension::{Json, Uuid};
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let ty = field
                .metadata()
                .get(TYPE_KEY)
                .and_then(|t| serde_json::from_str::<LogicalType>(t).ok());
            let field = field.as_ref().clone();
            match ty {
                Some(LogicalType::Uuid) => field.with_extension_type(Uuid),
                Some(LogicalType::Json) => field.with_extension_type(Json::default()),
                _ => field,
            }
        })
        .collect();
    Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// Writes batches as a Parquet file (Snappy), a row group at a time.
pub struct ParquetOut<W: Write + Send> {
    writer: ArrowWriter<W>,
}

impl<W: Write + Send> ParquetOut<W> {
    pub fn new(out: W, schema: SchemaRef) -> Result<Self, EngineError> {
        let schema = with_extension_types(&schema);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(out, schema, Some(props))
            .map_err(|e| EngineError::Internal(format!("a Parquet writer: {e}")))?;
        Ok(Self { writer })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let write_error = |e| EngineError::Internal(format!("writing Parquet: {e}"));
        self.writer.write(batch).map_err(write_error)?;
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush().map_err(write_error)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), EngineError> {
        self.writer
            .close()
            .map(drop)
            .map_err(|e| EngineError::Internal(format!("writing Parquet: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{FixedSizeBinaryArray, StringArray};
    use arrow_schema::extension::{Json, Uuid};
    use parquet::file::reader::FileReader;
    use parquet::file::serialized_reader::SerializedFileReader;

    use crate::engine::types::{arrow_schema, Column};

    fn column(name: &str, ty: LogicalType) -> Column {
        Column::of(name, ty)
    }

    #[test]
    fn uuid_and_json_columns_are_annotated_as_such_in_the_file() {
        let schema = arrow_schema(&[
            column("id", LogicalType::Uuid),
            column("doc", LogicalType::Json),
        ]);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(FixedSizeBinaryArray::try_from_iter([[7u8; 16]].into_iter()).unwrap()),
                Arc::new(StringArray::from(vec!["{\"a\":1}"])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        let mut writer = ParquetOut::new(&mut out, schema).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        let reader = SerializedFileReader::new(Bytes::from(out)).unwrap();
        let columns = reader.metadata().file_metadata().schema_descr();
        assert_eq!(
            columns.column(0).logical_type_ref(),
            Some(&parquet::basic::LogicalType::Uuid)
        );
        assert_eq!(
            columns.column(1).logical_type_ref(),
            Some(&parquet::basic::LogicalType::Json)
        );
    }

    #[test]
    fn nested_columns_read_as_json() {
        use arrow_array::builder::{Int32Builder, ListBuilder, StringBuilder};
        use arrow_array::{Int64Array, StructArray};
        let mut list = ListBuilder::new(Int32Builder::new());
        list.append_value([Some(1), None, Some(3)]);
        list.append_null();
        list.append_value([]);
        let list: ArrayRef = Arc::new(list.finish());
        assert_eq!(
            field_type_of(&arrow_schema::Field::new(
                "l",
                list.data_type().clone(),
                true
            )),
            Ok(FieldType::Json)
        );
        let texts = cast_column(&list, &DataType::Utf8, "l").unwrap();
        let texts = texts.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(texts.value(0), "[1,null,3]");
        assert!(texts.is_null(1));
        assert_eq!(texts.value(2), "[]");

        let mut tags = StringBuilder::new();
        tags.append_value("a \"b\"");
        let record: ArrayRef = Arc::new(StructArray::from(vec![
            (
                Arc::new(arrow_schema::Field::new("id", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![i64::MAX])) as ArrayRef,
            ),
            (
                Arc::new(arrow_schema::Field::new("tag", DataType::Utf8, true)),
                Arc::new(tags.finish()) as ArrayRef,
            ),
        ]));
        let texts = cast_column(&record, &DataType::Utf8, "r").unwrap();
        let texts = texts.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            texts.value(0),
            r#"{"id":9223372036854775807,"tag":"a \"b\""}"#
        );
    }

    #[test]
    fn other_writers_uuid_and_json_columns_read_as_uuid_and_json() {
        let uuid = arrow_schema::Field::new("u", DataType::FixedSizeBinary(16), true)
            .with_extension_type(Uuid);
        let json = arrow_schema::Field::new("j", DataType::Utf8, true)
            .with_extension_type(Json::default());
        let text = arrow_schema::Field::new("t", DataType::Utf8, true);
        assert_eq!(field_type_of(&uuid), Ok(FieldType::Uuid));
        assert_eq!(field_type_of(&json), Ok(FieldType::Json));
        assert_eq!(field_type_of(&text), Ok(FieldType::Text));
    }
}
