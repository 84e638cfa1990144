//! Encoding Arrow batches as PostgreSQL binary COPY tuples: the wire form chosen per
//! column (`wire_for`), the OIDs of the columns Sluice creates (`natural_oid`), and one
//! row at a time into a reusable buffer (`encode_row`), failing with the column and row a
//! value cannot be carried for.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, UInt64Array,
};
use bytes::{BufMut, BytesMut};

use super::dialect;
use super::wire;
use crate::engine::types::{Column, LogicalType};
use crate::engine::EngineError;

/// How a value is written on the wire, chosen per column from its logical type and the
/// target column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, char, name, json: the UTF-8 bytes.
    Text,
    /// jsonb: version 1, then the text.
    Jsonb,
    Bytea,
    Date,
    Time,
    /// timestamp and timestamptz (µs since 2000-01-01).
    Timestamp,
    Uuid,
    /// PgRaw: the source's bytes as they came.
    Raw,
    /// PgRaw `json` into jsonb: version 1, then the bytes.
    RawJsonb,
}

pub(super) mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// The type OID of the column `column_ddl` creates for a result column.
pub(super) fn natural_oid(column: &Column) -> u32 {
    match &column.ty {
        LogicalType::Boolean => oid::BOOL,
        LogicalType::Int16 => oid::INT2,
        LogicalType::Int32 => oid::INT4,
        LogicalType::Int64 => oid::INT8,
        LogicalType::UInt64 | LogicalType::Decimal { .. } | LogicalType::BigDecimal { .. } => {
            oid::NUMERIC
        }
        LogicalType::Float32 => oid::FLOAT4,
        LogicalType::Float64 => oid::FLOAT8,
        LogicalType::Text { .. } => match dialect::ddl_type(&column.ty).as_str() {
            t if t.starts_with("varchar") => oid::VARCHAR,
            t if t.starts_with("char") => oid::BPCHAR,
            _ => oid::TEXT,
        },
        LogicalType::Binary { .. } => oid::BYTEA,
        LogicalType::Date => oid::DATE,
        LogicalType::Time => oid::TIME,
        LogicalType::Timestamp => oid::TIMESTAMP,
        LogicalType::TimestampTz => oid::TIMESTAMPTZ,
        LogicalType::Uuid => oid::UUID,
        LogicalType::Json | LogicalType::Array { .. } => oid::JSONB,
        LogicalType::Interval | LogicalType::Other { .. } => oid::TEXT,
        LogicalType::PgRaw { oid, .. } => *oid,
    }
}

/// How to write a value of `ty` into a column of type `target`, when COPY can do it directly
/// (the same type, or an exact widening).
pub(super) fn wire_for(ty: &LogicalType, target: u32) -> Option<Wire> {
    use LogicalType as L;
    let text_family = matches!(
        target,
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON
    );
    Some(match (ty, target) {
        (L::Boolean, oid::BOOL) => Wire::Bool,
        (L::Int16, oid::INT2) => Wire::Int2,
        (L::Int16 | L::Int32, oid::INT4) => Wire::Int4,
        (L::Int16 | L::Int32 | L::Int64, oid::INT8) => Wire::Int8,
        (
            L::Int16 | L::Int32 | L::Int64 | L::UInt64 | L::Decimal { .. } | L::BigDecimal { .. },
            oid::NUMERIC,
        ) => Wire::Numeric,
        (L::Float32, oid::FLOAT4) => Wire::Float4,
        (L::Float32 | L::Float64, oid::FLOAT8) => Wire::Float8,
        (
            L::Text { .. }
            | L::Json
            | L::Array { .. }
            | L::Interval
            | L::Other { .. }
            | L::BigDecimal { .. },
            _,
        ) if text_family => Wire::Text,
        (L::Text { .. } | L::Json | L::Array { .. } | L::Other { .. }, oid::JSONB) => Wire::Jsonb,
        (L::Binary { .. }, oid::BYTEA) => Wire::Bytea,
        (L::Date, oid::DATE) => Wire::Date,
        (L::Time, oid::TIME) => Wire::Time,
        (L::Timestamp, oid::TIMESTAMP) | (L::TimestampTz, oid::TIMESTAMPTZ) => Wire::Timestamp,
        (L::Uuid, oid::UUID) => Wire::Uuid,
        (L::PgRaw { oid, .. }, t) if *oid == t => Wire::Raw,
        // `json` is UTF-8 text on the wire.
        (L::PgRaw { oid: oid::JSON, .. }, _) if text_family => Wire::Raw,
        (L::PgRaw { oid: oid::JSON, .. }, oid::JSONB) => Wire::RawJsonb,
        _ => return None,
    })
}

/// A batch column, downcast once per batch.
pub(super) enum Typed<'a> {
    Bool(&'a BooleanArray),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Dec(&'a Decimal128Array, u32),
    Str(&'a StringArray),
    Bin(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Ts(&'a TimestampMicrosecondArray),
    Uuid(&'a FixedSizeBinaryArray),
}

impl Typed<'_> {
    fn is_null(&self, i: usize) -> bool {
        match self {
            Self::Bool(a) => a.is_null(i),
            Self::I16(a) => a.is_null(i),
            Self::I32(a) => a.is_null(i),
            Self::I64(a) => a.is_null(i),
            Self::U64(a) => a.is_null(i),
            Self::F32(a) => a.is_null(i),
            Self::F64(a) => a.is_null(i),
            Self::Dec(a, _) => a.is_null(i),
            Self::Str(a) => a.is_null(i),
            Self::Bin(a) => a.is_null(i),
            Self::Date(a) => a.is_null(i),
            Self::Time(a) => a.is_null(i),
            Self::Ts(a) => a.is_null(i),
            Self::Uuid(a) => a.is_null(i),
        }
    }
}

pub(super) fn typed_columns<'a>(
    batch: &'a RecordBatch,
    wires: &[Wire],
) -> Result<Vec<Typed<'a>>, EngineError> {
    use arrow_schema::DataType as D;
    if batch.num_columns() != wires.len() {
        return Err(EngineError::Internal(format!(
            "a batch has {} columns, the transfer {}",
            batch.num_columns(),
            wires.len()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|a| {
            Ok(match a.data_type() {
                D::Boolean => Typed::Bool(a.as_boolean()),
                D::Int16 => Typed::I16(a.as_primitive::<Int16Type>()),
                D::Int32 => Typed::I32(a.as_primitive::<Int32Type>()),
                D::Int64 => Typed::I64(a.as_primitive::<Int64Type>()),
                D::UInt64 => Typed::U64(a.as_primitive::<UInt64Type>()),
                D::Float32 => Typed::F32(a.as_primitive::<Float32Type>()),
                D::Float64 => Typed::F64(a.as_primitive::<Float64Type>()),
                D::Decimal128(_, s) if *s >= 0 => {
                    Typed::Dec(a.as_primitive::<Decimal128Type>(), *s as u32)
                }
                D::Utf8 => Typed::Str(a.as_string::<i32>()),
                D::Binary => Typed::Bin(a.as_binary::<i32>()),
                D::Date32 => Typed::Date(a.as_primitive::<Date32Type>()),
                D::Time64(arrow_schema::TimeUnit::Microsecond) => {
                    Typed::Time(a.as_primitive::<Time64MicrosecondType>())
                }
                D::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
                    Typed::Ts(a.as_primitive::<TimestampMicrosecondType>())
                }
                D::FixedSizeBinary(16) => Typed::Uuid(a.as_fixed_size_binary()),
                other => {
                    return Err(EngineError::Internal(format!(
                        "unexpected Arrow type {other} in a batch"
                    )))
                }
            })
        })
        .collect()
}

pub(super) fn encode_row(
    cols: &[Typed<'_>],
    columns: &[Column],
    wires: &[Wire],
    i: usize,
    row: u64,
    buf: &mut BytesMut,
) -> Result<(), EngineError> {
    buf.put_i16(cols.len() as i16);
    for (k, col) in cols.iter().enumerate() {
        if col.is_null(i) {
            buf.put_i32(-1);
            continue;
        }
        encode_value(col, wires[k], i, buf).map_err(|message| EngineError::Value {
            column: columns[k].name.clone(),
            row,
            message,
        })?;
    }
    Ok(())
}

fn put_text(buf: &mut BytesMut, bytes: &[u8], jsonb: bool) -> Result<(), String> {
    if bytes.contains(&0) {
        return Err(
            "the text contains a NUL (0x00) character, which PostgreSQL cannot store".into(),
        );
    }
    if jsonb {
        buf.put_i32(bytes.len() as i32 + 1);
        buf.put_u8(1);
    } else {
        buf.put_i32(bytes.len() as i32);
    }
    buf.put_slice(bytes);
    Ok(())
}

fn length_of(bytes: &[u8]) -> Result<i32, String> {
    i32::try_from(bytes.len()).map_err(|_| "the value is larger than PostgreSQL's 1 GB".into())
}

fn encode_value(col: &Typed<'_>, wire: Wire, i: usize, buf: &mut BytesMut) -> Result<(), String> {
    match (wire, col) {
        (Wire::Bool, Typed::Bool(a)) => {
            buf.put_i32(1);
            buf.put_u8(a.value(i) as u8);
        }
        (Wire::Int2, Typed::I16(a)) => {
            buf.put_i32(2);
            buf.put_i16(a.value(i));
        }
        (Wire::Int4, Typed::I16(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i) as i32);
        }
        (Wire::Int4, Typed::I32(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i));
        }
        (Wire::Int8, Typed::I16(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Typed::I32(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Typed::I64(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i));
        }
        (Wire::Numeric, Typed::I16(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::I32(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::I64(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::U64(a)) => wire::put_numeric_u64(buf, a.value(i)),
        (Wire::Numeric, Typed::Dec(a, scale)) => wire::put_numeric_i128(buf, a.value(i), *scale),
        (Wire::Numeric, Typed::Str(a)) => wire::put_numeric_text(buf, a.value(i))?,
        (Wire::Float4, Typed::F32(a)) => {
            buf.put_i32(4);
            buf.put_f32(a.value(i));
        }
        (Wire::Float8, Typed::F32(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i) as f64);
        }
        (Wire::Float8, Typed::F64(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i));
        }
        (Wire::Text, Typed::Str(a)) => put_text(buf, a.value(i).as_bytes(), false)?,
        (Wire::Jsonb, Typed::Str(a)) => put_text(buf, a.value(i).as_bytes(), true)?,
        (Wire::Bytea | Wire::Raw, Typed::Bin(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)?);
            buf.put_slice(v);
        }
        (Wire::RawJsonb, Typed::Bin(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)? + 1);
            buf.put_u8(1);
            buf.put_slice(v);
        }
        (Wire::Date, Typed::Date(a)) => {
            let days = a.value(i);
            let pg = match days {
                i32::MAX | i32::MIN => days,
                _ => match days.checked_sub(wire::PG_EPOCH_DAYS) {
                    Some(d) if (wire::PG_MIN_DATE..wire::PG_END_DATE).contains(&d) => d,
                    _ => {
                        return Err(
                            "the date is outside PostgreSQL's range (4713 BC to 5874897 AD)".into(),
                        )
                    }
                },
            };
            buf.put_i32(4);
            buf.put_i32(pg);
        }
        (Wire::Time, Typed::Time(a)) => {
            let micros = a.value(i);
            if !(0..=wire::MICROS_PER_DAY).contains(&micros) {
                return Err("the time is outside 00:00:00 to 24:00:00".into());
            }
            buf.put_i32(8);
            buf.put_i64(micros);
        }
        (Wire::Timestamp, Typed::Ts(a)) => {
            let micros = a.value(i);
            let pg = match micros {
                i64::MAX | i64::MIN => micros,
                _ => match micros.checked_sub(wire::PG_EPOCH_MICROS) {
                    Some(t) if (wire::PG_MIN_TIMESTAMP..wire::PG_END_TIMESTAMP).contains(&t) => t,
                    _ => {
                        return Err(
                            "the timestamp is outside PostgreSQL's range (4713 BC to 294276 AD)"
                                .into(),
                        )
                    }
                },
            };
            buf.put_i32(8);
            buf.put_i64(pg);
        }
        (Wire::Uuid, Typed::Uuid(a)) => {
            buf.put_i32(16);
            buf.put_slice(a.value(i));
        }
        (wire, _) => {
            return Err(format!(
                "internal: no encoding of this Arrow column as {wire:?}"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text_column(name: &str) -> Column {
        Column {
            name: name.into(),
            ty: LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            nullable: true,
            db_type: "text".into(),
            native: None,
        }
    }

    #[test]
    fn nul_in_text_is_a_value_error_naming_column_and_row() {
        let columns = vec![text_column("note")];
        let schema = crate::engine::types::arrow_schema(&columns);
        let array = StringArray::from(vec![Some("fine"), Some("bad\0byte")]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        let wires = vec![Wire::Text];
        let cols = typed_columns(&batch, &wires).unwrap();
        let mut buf = BytesMut::new();
        encode_row(&cols, &columns, &wires, 0, 41, &mut buf).unwrap();
        match encode_row(&cols, &columns, &wires, 1, 42, &mut buf) {
            Err(EngineError::Value { column, row, .. }) => {
                assert_eq!(column, "note");
                assert_eq!(row, 42);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exact_widenings_are_copied_directly_and_others_are_not() {
        assert_eq!(wire_for(&LogicalType::Int32, oid::INT8), Some(Wire::Int8));
        assert_eq!(wire_for(&LogicalType::Int64, oid::INT4), None);
        assert_eq!(
            wire_for(&LogicalType::Float32, oid::FLOAT8),
            Some(Wire::Float8)
        );
        assert_eq!(wire_for(&LogicalType::Float64, oid::FLOAT4), None);
        assert_eq!(wire_for(&LogicalType::Timestamp, oid::TIMESTAMPTZ), None);
        assert_eq!(
            wire_for(
                &LogicalType::PgRaw {
                    db_type: "integer[]".into(),
                    oid: 1007
                },
                1007
            ),
            Some(Wire::Raw)
        );
    }
}
