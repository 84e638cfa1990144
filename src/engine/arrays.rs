//! The Arrow arrays of a batch, on both sides of the channel: sources fill one
//! `ArrayBuilder` per column (the array type its logical type maps to), and sinks read a
//! batch's columns downcast once per batch (`view_batch`), each with its null bitmap, so the
//! per-row loops match on a small enum instead of asking Arrow for the type again.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};

use super::types::LogicalType;
use super::EngineError;

/// The values of one column, as the array type its logical type maps to
/// (`LogicalType::arrow_type`).
pub enum Values<'a> {
    Bool(&'a BooleanArray),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    /// The unscaled values and their (non-negative) scale.
    Decimal(&'a Decimal128Array, u32),
    Text(&'a StringArray),
    Binary(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    Uuid(&'a FixedSizeBinaryArray),
}

/// One column of a batch.
pub struct ArrayView<'a> {
    pub values: Values<'a>,
    nulls: Option<&'a NullBuffer>,
}

impl ArrayView<'_> {
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(row))
    }
}

/// View every column of `batch`, which must have `width` columns (the transfer's).
pub fn view_batch(batch: &RecordBatch, width: usize) -> Result<Vec<ArrayView<'_>>, EngineError> {
    if batch.num_columns() != width {
        return Err(EngineError::Internal(format!(
            "a batch has {} columns, the transfer {width}",
            batch.num_columns()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|array| {
            Ok(ArrayView {
                values: values_of(array.as_ref())?,
                nulls: array.nulls(),
            })
        })
        .collect()
}

fn values_of(array: &dyn Array) -> Result<Values<'_>, EngineError> {
    Ok(match array.data_type() {
        DataType::Boolean => Values::Bool(array.as_boolean()),
        DataType::Int16 => Values::I16(array.as_primitive::<Int16Type>()),
        DataType::Int32 => Values::I32(array.as_primitive::<Int32Type>()),
        DataType::Int64 => Values::I64(array.as_primitive::<Int64Type>()),
        DataType::UInt64 => Values::U64(array.as_primitive::<UInt64Type>()),
        DataType::Float32 => Values::F32(array.as_primitive::<Float32Type>()),
        DataType::Float64 => Values::F64(array.as_primitive::<Float64Type>()),
        DataType::Decimal128(_, scale) if *scale >= 0 => {
            Values::Decimal(array.as_primitive::<Decimal128Type>(), *scale as u32)
        }
        DataType::Utf8 => Values::Text(array.as_string::<i32>()),
        DataType::Binary => Values::Binary(array.as_binary::<i32>()),
        DataType::Date32 => Values::Date(array.as_primitive::<Date32Type>()),
        DataType::Time64(TimeUnit::Microsecond) => {
            Values::Time(array.as_primitive::<Time64MicrosecondType>())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Values::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
        }
        DataType::FixedSizeBinary(16) => Values::Uuid(array.as_fixed_size_binary()),
        other => {
            return Err(EngineError::Internal(format!(
                "no sink encodes the Arrow type {other}"
            )))
        }
    })
}

/// One column's values as a source appends them, in the Arrow type of its logical type
/// (`LogicalType::arrow_type`).
pub enum ArrayBuilder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

impl ArrayBuilder {
    /// A builder for `rows` values of `ty`, with room for `data` bytes of text or binary
    /// values (at least 8 a row).
    pub fn new(ty: &LogicalType, rows: usize, data: usize) -> Result<Self, EngineError> {
        use LogicalType as L;
        let data = data.max(rows * 8);
        Ok(match ty {
            L::Boolean => Self::Bool(BooleanBuilder::with_capacity(rows)),
            L::Int16 => Self::I16(Int16Builder::with_capacity(rows)),
            L::Int32 => Self::I32(Int32Builder::with_capacity(rows)),
            L::Int64 => Self::I64(Int64Builder::with_capacity(rows)),
            L::UInt64 => Self::U64(UInt64Builder::with_capacity(rows)),
            L::Float32 => Self::F32(Float32Builder::with_capacity(rows)),
            L::Float64 => Self::F64(Float64Builder::with_capacity(rows)),
            L::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| EngineError::Internal(format!("decimal column: {e}")))?,
            ),
            L::Binary { .. } | L::PgRaw { .. } => {
                Self::Binary(BinaryBuilder::with_capacity(rows, data))
            }
            L::Date => Self::Date(Date32Builder::with_capacity(rows)),
            L::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            L::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows)),
            L::TimestampTz => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            L::Uuid => Self::Uuid(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
            L::BigDecimal { .. }
            | L::Text { .. }
            | L::Json
            | L::Array { .. }
            | L::Interval
            | L::Other { .. } => Self::Text(StringBuilder::with_capacity(rows, data)),
        })
    }

    pub fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Text(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
        }
    }

    /// The values appended so far as an array; the builder is empty after.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::U64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
        }
    }

    /// `finish`, then make room for `rows` more values and as many text or binary bytes as
    /// the array just taken held (Arrow's `finish` leaves a builder with no capacity; this
    /// spares the next batch the regrowing: memmove, page faults).
    pub fn take(&mut self, ty: &LogicalType, rows: usize) -> Result<ArrayRef, EngineError> {
        let array = self.finish();
        let data = match array.data_type() {
            DataType::Utf8 => array.as_string::<i32>().values().len(),
            DataType::Binary => array.as_binary::<i32>().values().len(),
            _ => 0,
        };
        *self = Self::new(ty, rows, data)?;
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_batch_is_viewed_with_its_nulls() {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("n", DataType::Int32, true),
            arrow_schema::Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b")])),
            ],
        )
        .unwrap();
        let view = view_batch(&batch, 2).unwrap();
        assert!(matches!(view[0].values, Values::I32(a) if a.value(0) == 7));
        assert!(!view[0].is_null(0) && view[0].is_null(1));
        assert!(!view[1].is_null(1));
        assert!(matches!(
            view_batch(&batch, 3),
            Err(EngineError::Internal(_))
        ));
    }
}
