//! Encoding Arrow batches as PostgreSQL binary COPY tuples: the wire form chosen per
//! column (`wire_for`), the OIDs of the columns Sluice creates (`natural_oid`), and one
//! row at a time into a reusable buffer (`encode_row`), failing with the column and row a
//! value cannot be carried for.

use bytes::{BufMut, BytesMut};

use super::dialect;
use super::typemap::oid;
use super::wire;
use crate::engine::arrays::{ArrayView, Values};
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

pub(super) fn encode_row(
    cols: &[ArrayView<'_>],
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
        encode_value(&col.values, wires[k], i, buf).map_err(|message| EngineError::Value {
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

fn encode_value(
    values: &Values<'_>,
    wire: Wire,
    i: usize,
    buf: &mut BytesMut,
) -> Result<(), String> {
    match (wire, values) {
        (Wire::Bool, Values::Bool(a)) => {
            buf.put_i32(1);
            buf.put_u8(a.value(i) as u8);
        }
        (Wire::Int2, Values::I16(a)) => {
            buf.put_i32(2);
            buf.put_i16(a.value(i));
        }
        (Wire::Int4, Values::I16(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i) as i32);
        }
        (Wire::Int4, Values::I32(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i));
        }
        (Wire::Int8, Values::I16(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Values::I32(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Values::I64(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i));
        }
        (Wire::Numeric, Values::I16(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Values::I32(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Values::I64(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Values::U64(a)) => wire::put_numeric_u64(buf, a.value(i)),
        (Wire::Numeric, Values::Decimal(a, scale)) => {
            wire::put_numeric_i128(buf, a.value(i), *scale)
        }
        (Wire::Numeric, Values::Text(a)) => wire::put_numeric_text(buf, a.value(i))?,
        (Wire::Float4, Values::F32(a)) => {
            buf.put_i32(4);
            buf.put_f32(a.value(i));
        }
        (Wire::Float8, Values::F32(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i) as f64);
        }
        (Wire::Float8, Values::F64(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i));
        }
        (Wire::Text, Values::Text(a)) => put_text(buf, a.value(i).as_bytes(), false)?,
        (Wire::Jsonb, Values::Text(a)) => put_text(buf, a.value(i).as_bytes(), true)?,
        (Wire::Bytea | Wire::Raw, Values::Binary(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)?);
            buf.put_slice(v);
        }
        (Wire::RawJsonb, Values::Binary(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)? + 1);
            buf.put_u8(1);
            buf.put_slice(v);
        }
        (Wire::Date, Values::Date(a)) => {
            buf.put_i32(4);
            buf.put_i32(pg_date(a.value(i))?);
        }
        (Wire::Time, Values::Time(a)) => {
            let micros = a.value(i);
            if !(0..=wire::MICROS_PER_DAY).contains(&micros) {
                return Err("the time is outside 00:00:00 to 24:00:00".into());
            }
            buf.put_i32(8);
            buf.put_i64(micros);
        }
        (Wire::Timestamp, Values::Timestamp(a)) => {
            buf.put_i32(8);
            buf.put_i64(pg_timestamp(a.value(i))?);
        }
        (Wire::Uuid, Values::Uuid(a)) => {
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

/// Days since 1970 as days since 2000, within PostgreSQL's range; ±infinity stay.
fn pg_date(days: i32) -> Result<i32, String> {
    match days {
        i32::MAX | i32::MIN => Ok(days),
        _ => days
            .checked_sub(wire::PG_EPOCH_DAYS)
            .filter(|d| (wire::PG_MIN_DATE..wire::PG_END_DATE).contains(d))
            .ok_or_else(|| "the date is outside PostgreSQL's range (4713 BC to 5874897 AD)".into()),
    }
}

/// µs since 1970 as µs since 2000, within PostgreSQL's range; ±infinity stay.
fn pg_timestamp(micros: i64) -> Result<i64, String> {
    match micros {
        i64::MAX | i64::MIN => Ok(micros),
        _ => micros
            .checked_sub(wire::PG_EPOCH_MICROS)
            .filter(|t| (wire::PG_MIN_TIMESTAMP..wire::PG_END_TIMESTAMP).contains(t))
            .ok_or_else(|| {
                "the timestamp is outside PostgreSQL's range (4713 BC to 294276 AD)".into()
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arrays::view_batch;
    use arrow_array::{RecordBatch, StringArray};
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
        let cols = view_batch(&batch, wires.len()).unwrap();
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
