//! Decoding PostgreSQL's binary COPY stream into Arrow: the header, then one tuple at a time
//! into per-column builders (`Decoder::parse`), cut into batches by rows and bytes
//! (`Decoder::take_batch`); arrays become nested JSON text.

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use super::typemap::{oid, Decode};
use super::wire::{self, NumericView};
use crate::engine::arrays::ArrayBuilder;
use crate::engine::batch::MAX_BATCH_BYTES;
use crate::engine::types::{arrow_schema, Column, LogicalType};
use crate::engine::EngineError;

struct ColumnDecoder {
    name: String,
    nullable: bool,
    ty: LogicalType,
    decode: Decode,
    builder: ArrayBuilder,
}

/// The binary COPY stream parser: header, then tuples, then the trailer.
pub(super) struct Decoder {
    schema: SchemaRef,
    columns: Vec<ColumnDecoder>,
    batch_rows: usize,
    header_done: bool,
    pub(super) finished: bool,
    pub(super) rows_in_batch: usize,
    bytes_in_batch: usize,
    /// Rows decoded before the current batch (for row numbers in errors).
    rows_before: u64,
    /// (start, length) of each field of the tuple being decoded; length -1 is NULL.
    spans: Vec<(usize, i32)>,
    scratch: String,
}

impl Decoder {
    pub(super) fn new(
        columns: &[Column],
        decoders: &[Decode],
        batch_rows: usize,
    ) -> Result<Self, EngineError> {
        let capacity = batch_rows.min(65_536);
        Ok(Self {
            schema: arrow_schema(columns),
            columns: columns
                .iter()
                .zip(decoders)
                .map(|(c, d)| {
                    Ok(ColumnDecoder {
                        name: c.name.clone(),
                        nullable: c.nullable,
                        ty: c.ty.clone(),
                        decode: *d,
                        builder: ArrayBuilder::new(&c.ty, capacity, 0)?,
                    })
                })
                .collect::<Result<_, EngineError>>()?,
            batch_rows,
            header_done: false,
            finished: false,
            rows_in_batch: 0,
            bytes_in_batch: 0,
            rows_before: 0,
            spans: Vec::with_capacity(columns.len()),
            scratch: String::new(),
        })
    }

    /// Decode whole tuples from `data`. Returns the bytes used and whether the batch is full
    /// (the caller sends it and calls again with the rest).
    pub(super) fn parse(&mut self, data: &[u8]) -> Result<(usize, bool), EngineError> {
        let mut pos = 0;
        if !self.header_done {
            let Some(header) = wire::copy_header_len(data)? else {
                return Ok((0, false));
            };
            pos = header;
            self.header_done = true;
        }
        while pos + 2 <= data.len() {
            if self.finished {
                return Err(wire::bad_copy_stream("data after the trailer"));
            }
            let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
            if count == -1 {
                self.finished = true;
                pos += 2;
                continue;
            }
            if count as usize != self.columns.len() {
                return Err(wire::bad_copy_stream("unexpected field count"));
            }
            // Find every field of the tuple before touching the builders.
            self.spans.clear();
            let mut at = pos + 2;
            let mut complete = true;
            for _ in 0..count {
                if at + 4 > data.len() {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                at += 4;
                if len >= 0 {
                    if at + len as usize > data.len() {
                        complete = false;
                        break;
                    }
                    self.spans.push((at, len));
                    at += len as usize;
                } else {
                    self.spans.push((at, -1));
                }
            }
            if !complete {
                break;
            }
            let row = self.rows_before + self.rows_in_batch as u64 + 1;
            for (column, &(start, len)) in self.columns.iter_mut().zip(&self.spans) {
                if len < 0 {
                    if !column.nullable {
                        return Err(wire::null_in_not_null(&column.name, row));
                    }
                    column.builder.append_null();
                } else {
                    let value = &data[start..start + len as usize];
                    decode_value(column.decode, &mut column.builder, value, &mut self.scratch)
                        .map_err(|message| EngineError::Value {
                            column: column.name.clone(),
                            row,
                            message,
                        })?;
                }
            }
            self.bytes_in_batch += at - pos;
            self.rows_in_batch += 1;
            pos = at;
            if self.rows_in_batch >= self.batch_rows || self.bytes_in_batch >= MAX_BATCH_BYTES {
                return Ok((pos, true));
            }
        }
        Ok((pos, false))
    }

    pub(super) fn take_batch(&mut self) -> Result<(RecordBatch, u64), EngineError> {
        let rows = self.batch_rows.min(65_536);
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| c.builder.take(&c.ty, rows))
            .collect::<Result<Vec<ArrayRef>, EngineError>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| EngineError::Internal(format!("building a batch: {e}")))?;
        let bytes = self.bytes_in_batch as u64;
        self.rows_before += self.rows_in_batch as u64;
        self.rows_in_batch = 0;
        self.bytes_in_batch = 0;
        Ok((batch, bytes))
    }
}

fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N], String> {
    value
        .try_into()
        .map_err(|_| format!("expected {N} bytes on the wire, got {}", value.len()))
}

fn utf8(value: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(value).map_err(|e| format!("text is not valid UTF-8: {e}"))
}

/// Days since 2000 to days since 1970; ±infinity stay as i32::MAX / i32::MIN.
fn shift_date(days: i32) -> i32 {
    if days == i32::MAX || days == i32::MIN {
        days
    } else {
        days + wire::PG_EPOCH_DAYS
    }
}

/// µs since 2000 to µs since 1970; ±infinity stay as i64::MAX / i64::MIN.
fn shift_timestamp(micros: i64) -> Result<i64, String> {
    if micros == i64::MAX || micros == i64::MIN {
        return Ok(micros);
    }
    micros
        .checked_add(wire::PG_EPOCH_MICROS)
        .ok_or_else(|| "the timestamp is beyond the year 294246, the limit of the transfer".into())
}

fn decode_value(
    decode: Decode,
    builder: &mut ArrayBuilder,
    value: &[u8],
    scratch: &mut String,
) -> Result<(), String> {
    match (decode, builder) {
        (Decode::Bool, ArrayBuilder::Bool(b)) => b.append_value(fixed::<1>(value)?[0] != 0),
        (Decode::I16, ArrayBuilder::I16(b)) => b.append_value(i16::from_be_bytes(fixed(value)?)),
        (Decode::I32, ArrayBuilder::I32(b)) => b.append_value(i32::from_be_bytes(fixed(value)?)),
        (Decode::I64, ArrayBuilder::I64(b)) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Decode::Oid, ArrayBuilder::I64(b)) => {
            b.append_value(u32::from_be_bytes(fixed(value)?) as i64)
        }
        (Decode::F32, ArrayBuilder::F32(b)) => b.append_value(f32::from_be_bytes(fixed(value)?)),
        (Decode::F64, ArrayBuilder::F64(b)) => b.append_value(f64::from_be_bytes(fixed(value)?)),
        (Decode::Decimal { precision, scale }, ArrayBuilder::Decimal(b)) => {
            b.append_value(NumericView::parse(value)?.to_i128(precision, scale)?)
        }
        (Decode::NumericText, ArrayBuilder::Text(b)) => {
            scratch.clear();
            NumericView::parse(value)?.write_text(scratch);
            b.append_value(&*scratch);
        }
        (Decode::Text, ArrayBuilder::Text(b)) => b.append_value(utf8(value)?),
        (Decode::Jsonb, ArrayBuilder::Text(b)) => match value.split_first() {
            Some((1, text)) => b.append_value(utf8(text)?),
            _ => return Err("unknown jsonb wire version".into()),
        },
        (Decode::Bytes, ArrayBuilder::Binary(b)) => b.append_value(value),
        (Decode::Date, ArrayBuilder::Date(b)) => {
            b.append_value(shift_date(i32::from_be_bytes(fixed(value)?)))
        }
        (Decode::Time, ArrayBuilder::Time(b)) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Decode::Timestamp | Decode::TimestampTz, ArrayBuilder::Timestamp(b)) => {
            b.append_value(shift_timestamp(i64::from_be_bytes(fixed(value)?))?)
        }
        (Decode::Uuid, ArrayBuilder::Uuid(b)) => b
            .append_value(fixed::<16>(value)?)
            .map_err(|e| e.to_string())?,
        (Decode::IntervalIso, ArrayBuilder::Text(b)) => {
            let v: [u8; 16] = fixed(value)?;
            let micros = i64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
            let days = i32::from_be_bytes(v[8..12].try_into().expect("4 bytes"));
            let months = i32::from_be_bytes(v[12..16].try_into().expect("4 bytes"));
            scratch.clear();
            wire::write_interval_iso(scratch, micros, days, months);
            b.append_value(&*scratch);
        }
        (Decode::ArrayJson, ArrayBuilder::Text(b)) => {
            scratch.clear();
            array_to_json(value, scratch)?;
            b.append_value(&*scratch);
        }
        _ => return Err("internal: decoder and builder disagree".into()),
    }
    Ok(())
}

/// A PostgreSQL binary array as JSON text (nested per dimension; lower bounds dropped).
fn array_to_json(value: &[u8], out: &mut String) -> Result<(), String> {
    let bad = || "malformed array value".to_string();
    let int = |at: usize| -> Result<i32, String> {
        value
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(bad)
    };
    let ndim = int(0)?;
    let elem = int(8)? as u32;
    if !(0..=6).contains(&ndim) {
        return Err(bad());
    }
    if ndim == 0 {
        out.push_str("[]");
        return Ok(());
    }
    let mut dims = [0usize; 6];
    for (d, dim) in dims.iter_mut().enumerate().take(ndim as usize) {
        let len = int(12 + 8 * d)?;
        if len < 0 {
            return Err(bad());
        }
        *dim = len as usize;
    }
    let mut pos = 12 + 8 * ndim as usize;
    write_dim(value, &mut pos, &dims[..ndim as usize], elem, out)?;
    if pos != value.len() {
        return Err(bad());
    }
    Ok(())
}

fn write_dim(
    value: &[u8],
    pos: &mut usize,
    dims: &[usize],
    elem: u32,
    out: &mut String,
) -> Result<(), String> {
    out.push('[');
    for i in 0..dims[0] {
        if i > 0 {
            out.push(',');
        }
        if dims.len() > 1 {
            write_dim(value, pos, &dims[1..], elem, out)?;
            continue;
        }
        let len_bytes = value
            .get(*pos..*pos + 4)
            .ok_or_else(|| "malformed array value".to_string())?;
        let len = i32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
        *pos += 4;
        if len < 0 {
            out.push_str("null");
            continue;
        }
        let item = value
            .get(*pos..*pos + len as usize)
            .ok_or_else(|| "malformed array value".to_string())?;
        *pos += len as usize;
        write_json_element(elem, item, out)?;
    }
    out.push(']');
    Ok(())
}

fn write_json_float(out: &mut String, v: f64, text: impl FnOnce(&mut String)) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        text(out);
    }
}

fn write_json_element(elem: u32, item: &[u8], out: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;
    match elem {
        oid::BOOL => out.push_str(if fixed::<1>(item)?[0] != 0 {
            "true"
        } else {
            "false"
        }),
        oid::INT2 => {
            let _ = write!(out, "{}", i16::from_be_bytes(fixed(item)?));
        }
        oid::INT4 => {
            let _ = write!(out, "{}", i32::from_be_bytes(fixed(item)?));
        }
        oid::INT8 => {
            let _ = write!(out, "{}", i64::from_be_bytes(fixed(item)?));
        }
        oid::FLOAT4 => {
            let v = f32::from_be_bytes(fixed(item)?);
            write_json_float(out, v as f64, |o| {
                let _ = write!(o, "{v:?}");
            });
        }
        oid::FLOAT8 => {
            let v = f64::from_be_bytes(fixed(item)?);
            write_json_float(out, v, |o| {
                let _ = write!(o, "{v:?}");
            });
        }
        oid::NUMERIC => {
            let view = NumericView::parse(item)?;
            let mut text = String::new();
            view.write_text(&mut text);
            if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') && text != "-Infinity" {
                out.push_str(&text);
            } else {
                wire::write_json_string(out, &text);
            }
        }
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => {
            wire::write_json_string(out, utf8(item)?)
        }
        oid::DATE => {
            let days = i32::from_be_bytes(fixed(item)?);
            match days {
                i32::MAX => out.push_str("\"infinity\""),
                i32::MIN => out.push_str("\"-infinity\""),
                _ => {
                    out.push('"');
                    wire::write_date(out, days as i64 + wire::PG_EPOCH_DAYS as i64);
                    out.push('"');
                }
            }
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(fixed(item)?);
            match micros {
                i64::MAX => out.push_str("\"infinity\""),
                i64::MIN => out.push_str("\"-infinity\""),
                _ => {
                    out.push('"');
                    wire::write_pg_timestamp(out, micros);
                    if elem == oid::TIMESTAMPTZ {
                        out.push_str("+00:00");
                    }
                    out.push('"');
                }
            }
        }
        oid::UUID => {
            out.push('"');
            wire::write_uuid(out, &fixed::<16>(item)?);
            out.push('"');
        }
        oid::JSON => out.push_str(utf8(item)?),
        oid::JSONB => match item.split_first() {
            Some((1, text)) => out.push_str(utf8(text)?),
            _ => return Err("unknown jsonb wire version".into()),
        },
        _ => return Err(format!("array elements of type oid {elem} are not decoded")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn array(elem: u32, dims: &[i32], items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        v.extend_from_slice(&(items.iter().any(|i| i.is_none()) as i32).to_be_bytes());
        v.extend_from_slice(&elem.to_be_bytes());
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&1i32.to_be_bytes());
        }
        for item in items {
            match item {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }

    #[test]
    fn arrays_become_nested_json() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let three = 3i32.to_be_bytes();
        let v = array(
            oid::INT4,
            &[2, 2],
            &[Some(&one), Some(&two), None, Some(&three)],
        );
        let mut s = String::new();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, "[[1,2],[null,3]]");
        let v = array(oid::TEXT, &[2], &[Some(b"a\"b"), Some("é".as_bytes())]);
        s.clear();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, r#"["a\"b","é"]"#);
        let nan = f64::NAN.to_be_bytes();
        let tenth = 0.1f64.to_be_bytes();
        let v = array(oid::FLOAT8, &[2], &[Some(&nan), Some(&tenth)]);
        s.clear();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, r#"["NaN",0.1]"#);
        s.clear();
        array_to_json(&array(oid::INT4, &[], &[]), &mut s).unwrap();
        assert_eq!(s, "[]");
    }

    fn column(name: &str, ty: LogicalType) -> Column {
        Column::of(name, ty)
    }

    #[test]
    fn tuples_split_across_chunks_decode_once_whole() {
        let columns = vec![
            column("a", LogicalType::Int32),
            column(
                "b",
                LogicalType::Text {
                    max_len: None,
                    fixed: false,
                },
            ),
        ];
        let mut stream = Vec::new();
        stream.extend_from_slice(wire::COPY_SIGNATURE);
        stream.extend_from_slice(&0i32.to_be_bytes());
        stream.extend_from_slice(&0i32.to_be_bytes());
        for (a, b) in [(1i32, Some("x")), (2, None)] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&4i32.to_be_bytes());
            stream.extend_from_slice(&a.to_be_bytes());
            match b {
                Some(b) => {
                    stream.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    stream.extend_from_slice(b.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        // Feed one byte at a time through a carry buffer.
        let mut decoder = Decoder::new(&columns, &[Decode::I32, Decode::Text], 100).unwrap();
        let mut carry = Vec::new();
        for byte in &stream {
            carry.push(*byte);
            let (used, full) = decoder.parse(&carry).unwrap();
            assert!(!full);
            carry.drain(..used);
        }
        assert!(carry.is_empty());
        assert!(decoder.finished);
        let (batch, _) = decoder.take_batch().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let b = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(b.value(0), "x");
        assert!(b.is_null(1));
    }
}
