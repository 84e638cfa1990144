//! Arrow values into what MySQL/MariaDB reads: LOAD DATA text lines (and hex for bytes) or
//! INSERT parameters, refusing what the target cannot hold with the column and row.

use arrow_schema::DataType;
use mysql_async::Value;

use super::values::{
    check_decimal_text, civil_from_days, write_date, write_decimal, write_f64, write_hex,
    write_i64, write_time, write_timestamp, write_u64, write_uuid, MICROS_PER_DAY,
    MICROS_PER_SECOND,
};
use crate::engine::arrays::{ArrayView, Values};
use crate::engine::types::{Column, LogicalType};

/// A target column: its name and, for checks and encodings, its type.
#[derive(Debug, Clone)]
pub(super) struct TargetColumn {
    pub(super) name: String,
    pub(super) data_type: String,
    pub(super) precision: Option<u64>,
    pub(super) scale: Option<u64>,
}

/// How one source column is written.
#[derive(Debug)]
pub(super) struct Field {
    /// The source column's name (for errors).
    pub(super) name: String,
    /// Binary data: hex text in the LOAD input, raw bytes as an INSERT parameter.
    pub(super) hex: bool,
    /// BigDecimal text into decimal(p,s): checked to fit.
    pub(super) decimal: Option<(u32, u32)>,
}

impl Field {
    pub(super) fn new(column: &Column, target: &TargetColumn) -> Self {
        let binary_target = matches!(
            target.data_type.as_str(),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        );
        let hex = match column.ty.arrow_type() {
            DataType::Binary => true,
            DataType::FixedSizeBinary(_) => binary_target,
            // LOAD DATA would read "1" as the byte 0x31.
            DataType::Boolean => target.data_type == "bit",
            _ => false,
        };
        let decimal = match (&column.ty, target.data_type.as_str()) {
            (LogicalType::BigDecimal { .. }, "decimal") => match (target.precision, target.scale) {
                (Some(p), Some(s)) => Some((p as u32, s as u32)),
                _ => None,
            },
            _ => None,
        };
        Field {
            name: column.name.clone(),
            hex,
            decimal,
        }
    }
}

pub(super) fn float_check(v: f64) -> Result<(), String> {
    if v.is_nan() {
        Err("NaN cannot be stored: MySQL/MariaDB FLOAT and DOUBLE hold no NaN".into())
    } else if v.is_infinite() {
        Err(format!(
            "{v} cannot be stored: MySQL/MariaDB FLOAT and DOUBLE hold no infinity"
        ))
    } else {
        Ok(())
    }
}

/// -0.0 as 0.0: IEEE 754 holds them equal, and 0 is what MySQL/MariaDB keep of it.
pub(super) fn unsigned_zero(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

pub(super) fn date_range_error(days: i64) -> String {
    let (y, m, d) = civil_from_days(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    format!("{y}-{m:02}-{d:02} is outside MySQL's date range 0001-01-01..9999-12-31")
}

pub(super) fn time_check(micros: i64) -> Result<(), String> {
    if (0..=MICROS_PER_DAY).contains(&micros) {
        Ok(())
    } else {
        Err(format!("time of {micros} µs is outside 00:00:00..24:00:00"))
    }
}

/// Append one row as a LOAD DATA line. `Err((column index, message))` for a value the target
/// cannot hold.
pub(super) fn encode_row(
    buf: &mut Vec<u8>,
    view: &[ArrayView<'_>],
    fields: &[Field],
    row: usize,
) -> Result<(), (usize, String)> {
    for (i, (column, field)) in view.iter().zip(fields).enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        if column.is_null(row) {
            buf.extend_from_slice(b"\\N");
            continue;
        }
        encode_value(buf, &column.values, field, row).map_err(|m| (i, m))?;
    }
    buf.push(b'\n');
    Ok(())
}

pub(super) fn encode_value(
    buf: &mut Vec<u8>,
    column: &Values<'_>,
    field: &Field,
    row: usize,
) -> Result<(), String> {
    match column {
        Values::Bool(a) if field.hex => {
            buf.extend_from_slice(if a.value(row) { b"01" } else { b"00" })
        }
        Values::Bool(a) => buf.push(if a.value(row) { b'1' } else { b'0' }),
        Values::I16(a) => write_i64(buf, i64::from(a.value(row))),
        Values::I32(a) => write_i64(buf, i64::from(a.value(row))),
        Values::I64(a) => write_i64(buf, a.value(row)),
        Values::U64(a) => write_u64(buf, a.value(row)),
        Values::F32(a) => {
            // Printed as the (exact) double so the server's double → float step is exact.
            let v = unsigned_zero(f64::from(a.value(row)));
            float_check(v)?;
            write_f64(buf, v);
        }
        Values::F64(a) => {
            let v = unsigned_zero(a.value(row));
            float_check(v)?;
            write_f64(buf, v);
        }
        Values::Decimal(a, scale) => write_decimal(buf, a.value(row), *scale),
        Values::Text(a) => {
            let text = a.value(row);
            if let Some((p, s)) = field.decimal {
                check_decimal_text(text, p, s)?;
            }
            escape(buf, text.as_bytes());
        }
        Values::Binary(a) => write_hex(buf, a.value(row)),
        Values::Date(a) => {
            let days = a.value(row);
            if !write_date(buf, days) {
                return Err(date_range_error(i64::from(days)));
            }
        }
        Values::Time(a) => {
            let micros = a.value(row);
            time_check(micros)?;
            write_time(buf, micros);
        }
        Values::Timestamp(a) => {
            let micros = a.value(row);
            if !write_timestamp(buf, micros) {
                return Err(date_range_error(micros.div_euclid(MICROS_PER_DAY)));
            }
        }
        Values::Uuid(a) => {
            if field.hex {
                write_hex(buf, a.value(row));
            } else {
                write_uuid(buf, a.value(row));
            }
        }
    }
    Ok(())
}

/// LOAD DATA escaping (ESCAPED BY '\\'): backslash, tab, newline and NUL.
pub(super) fn escape(buf: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escaped = match b {
            b'\\' => b'\\',
            b'\t' => b't',
            b'\n' => b'n',
            0 => b'0',
            _ => continue,
        };
        buf.extend_from_slice(&text[start..i]);
        buf.push(b'\\');
        buf.push(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&text[start..]);
}

/// One value as an INSERT parameter.
pub(super) fn param(column: &Values<'_>, field: &Field, row: usize) -> Result<Value, String> {
    Ok(match column {
        Values::Bool(a) => Value::Int(i64::from(a.value(row))),
        Values::I16(a) => Value::Int(i64::from(a.value(row))),
        Values::I32(a) => Value::Int(i64::from(a.value(row))),
        Values::I64(a) => Value::Int(a.value(row)),
        Values::U64(a) => Value::UInt(a.value(row)),
        Values::F32(a) => {
            let v = a.value(row);
            float_check(f64::from(v))?;
            Value::Float(if v == 0.0 { 0.0 } else { v })
        }
        Values::F64(a) => {
            let v = unsigned_zero(a.value(row));
            float_check(v)?;
            Value::Double(v)
        }
        Values::Decimal(a, scale) => {
            let mut text = Vec::with_capacity(24);
            write_decimal(&mut text, a.value(row), *scale);
            Value::Bytes(text)
        }
        Values::Text(a) => {
            let text = a.value(row);
            if let Some((p, s)) = field.decimal {
                check_decimal_text(text, p, s)?;
            }
            Value::Bytes(text.as_bytes().to_vec())
        }
        Values::Binary(a) => Value::Bytes(a.value(row).to_vec()),
        Values::Date(a) => {
            let days = a.value(row);
            let (y, m, d) = civil_from_days(days);
            if !(1..=9999).contains(&y) {
                return Err(date_range_error(i64::from(days)));
            }
            Value::Date(y as u16, m as u8, d as u8, 0, 0, 0, 0)
        }
        Values::Time(a) => {
            let micros = a.value(row);
            time_check(micros)?;
            let secs = micros / MICROS_PER_SECOND;
            Value::Time(
                false,
                0,
                (secs / 3600) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (micros % MICROS_PER_SECOND) as u32,
            )
        }
        Values::Timestamp(a) => {
            let micros = a.value(row);
            let days = micros.div_euclid(MICROS_PER_DAY);
            let (y, m, d) = civil_from_days(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
            if !(1..=9999).contains(&y) {
                return Err(date_range_error(days));
            }
            let of_day = micros.rem_euclid(MICROS_PER_DAY);
            let secs = of_day / MICROS_PER_SECOND;
            Value::Date(
                y as u16,
                m as u8,
                d as u8,
                (secs / 3600) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (of_day % MICROS_PER_SECOND) as u32,
            )
        }
        Values::Uuid(a) => {
            if field.hex {
                Value::Bytes(a.value(row).to_vec())
            } else {
                let mut text = Vec::with_capacity(36);
                write_uuid(&mut text, a.value(row));
                Value::Bytes(text)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_load_data() {
        let mut buf = Vec::new();
        escape(&mut buf, b"a\\b\tc\nd\0e\\N");
        assert_eq!(buf, b"a\\\\b\\tc\\nd\\0e\\\\N");
    }
}
