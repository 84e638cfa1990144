//! Converting a file between formats a record at a time: CSV, a JSON array or JSON Lines in;
//! CSV, a JSON array or JSON Lines out. Each value is checked against its field's type over the
//! whole file: one that does not fit fails the conversion with its line (and field), and is
//! never cut or guessed. Memory stays flat: one record is held at a time, and a record (a CSV
//! line, a JSON Lines line, an element of a JSON array) larger than `MAX_RECORD_BYTES` fails.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::error::EngineError;
use super::infer::FieldType;
use super::json::path::Step;
use super::parse::{
    parse_bool, parse_bytes, parse_date, parse_decimal, parse_float, parse_time, parse_timestamp,
    parse_timestamptz,
};

/// The largest record read.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Where a field's values are in each record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    /// A CSV column, from 0.
    Column(usize),
    /// Steps into a JSON record (after the record itself: `$[*].a.b` is `[a, b]`).
    Json(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub field_type: FieldType,
    pub path: FieldPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvInput {
    pub delimiter: u8,
    pub quote: u8,
    /// `None`: quotes doubled inside quoted fields.
    pub escape: Option<u8>,
    pub header: bool,
    /// Cells that mean NULL (`""`, `NULL` and `\N` unless configured).
    pub nulls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Csv(CsvInput),
    Json,
    JsonLines,
    /// Read as Arrow batches (`file::parquet`), never a record at a time.
    Parquet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOutput {
    pub separator: u8,
    pub quote: u8,
    pub header: bool,
    /// What a NULL is written as (default: nothing; text is always quoted, so an empty
    /// string stays `""`).
    pub null: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Csv(CsvOutput),
    Json,
    JsonLines,
    /// Written from Arrow batches (`file::parquet`), never a record at a time.
    Parquet,
    /// A SQL script for a dialect (`file::sql`), written from Arrow batches.
    Sql {
        dialect: super::DbKind,
    },
}

impl Input {
    /// Whether records are read as Arrow batches rather than a record at a time.
    pub fn is_columnar(&self) -> bool {
        matches!(self, Input::Parquet)
    }
}

impl Output {
    /// Whether it is written from Arrow batches rather than a record at a time.
    pub fn is_columnar(&self) -> bool {
        matches!(self, Output::Parquet | Output::Sql { .. })
    }
}

fn columnar() -> std::io::Error {
    std::io::Error::other("Parquet and SQL are written from Arrow batches, not a record at a time")
}

/// A value ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell<'a> {
    Null,
    /// Text (quoted in CSV, a string in JSON).
    Text(Cow<'a, str>),
    /// A number or boolean literal (bare in CSV and JSON).
    Literal(Cow<'a, str>),
    /// JSON text (quoted in CSV, embedded in JSON).
    Json(Cow<'a, str>),
    /// An integer, written bare.
    Int(i64),
    /// A value written in its ASCII form straight into the output, bare or (`quoted`) as text:
    /// no string per value.
    Formatted {
        value: Formatted,
        quoted: bool,
    },
}

/// Values with an ASCII form that needs no escaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Formatted {
    /// An unscaled decimal and its scale.
    Decimal(i128, i8),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01, and whether it is an instant (`Z`).
    Timestamp(i64, bool),
    Uuid([u8; 16]),
}

impl Formatted {
    fn write(self, out: &mut Vec<u8>) {
        use super::values;
        match self {
            Formatted::Decimal(v, scale) => values::write_decimal(out, v, scale),
            Formatted::Date(days) => super::query::write_date(out, days),
            Formatted::Time(micros) => values::write_time(out, micros, values::Fraction::Always),
            Formatted::Timestamp(micros, utc) => super::query::write_timestamp(out, micros, utc),
            Formatted::Uuid(bytes) => values::write_uuid(out, &bytes),
        }
    }
}

/// Where a record is, for a message (formatted only when one is needed).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    CsvLine(u64),
    JsonLine(usize),
    JsonLinesRecord(usize),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::CsvLine(n) => write!(f, "CSV line {n}"),
            Place::JsonLine(n) => write!(f, "JSON line {n}"),
            Place::JsonLinesRecord(n) => write!(f, "JSON Lines record {n}"),
        }
    }
}

pub(crate) fn file_error(
    at: impl std::fmt::Display,
    message: impl std::fmt::Display,
) -> EngineError {
    EngineError::File(format!("{at}: {message}"))
}

/// A text value (a CSV cell) as a value of `t`; `Err` says why it does not fit.
fn from_text(text: &str, t: FieldType) -> Result<Cell<'_>, String> {
    let bad = || format!("{text:?} is not {}", t.described());
    let trimmed = text.trim();
    Ok(match t {
        FieldType::Text => Cell::Text(Cow::Borrowed(text)),
        // Bytes are written as base64; PostgreSQL's hex form is turned into it.
        FieldType::Bytes if trimmed.starts_with("\\x") => {
            use base64::Engine;
            let bytes = parse_bytes(trimmed).ok_or_else(bad)?;
            Cell::Text(Cow::Owned(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ))
        }
        FieldType::Bytes => Cell::Text(Cow::Borrowed(text)),
        FieldType::Integer => {
            let v: i32 = trimmed.parse().map_err(|_| bad())?;
            Cell::Literal(Cow::Owned(v.to_string()))
        }
        FieldType::BigInt => {
            let v: i64 = trimmed.parse().map_err(|_| bad())?;
            Cell::Literal(Cow::Owned(v.to_string()))
        }
        FieldType::Decimal { precision, scale } => {
            parse_decimal(trimmed, precision, scale).ok_or_else(bad)?;
            Cell::Literal(Cow::Owned(trimmed.trim_start_matches('+').to_string()))
        }
        FieldType::Float => {
            let v = parse_float(trimmed).ok_or_else(bad)?;
            if v.is_finite() {
                Cell::Literal(Cow::Owned(super::values::float_text(v)))
            } else {
                // `NaN`, `Infinity`, `-Infinity`: text, as JSON has no such numbers.
                Cell::Text(Cow::Borrowed(trimmed))
            }
        }
        FieldType::Boolean => match parse_bool(trimmed).ok_or_else(bad)? {
            true => Cell::Literal(Cow::Borrowed("true")),
            false => Cell::Literal(Cow::Borrowed("false")),
        },
        FieldType::Date => {
            parse_date(trimmed).ok_or_else(bad)?;
            Cell::Text(Cow::Borrowed(text))
        }
        FieldType::Time => {
            parse_time(trimmed).ok_or_else(bad)?;
            Cell::Text(Cow::Borrowed(text))
        }
        FieldType::Timestamp => {
            parse_timestamp(trimmed).ok_or_else(bad)?;
            Cell::Text(Cow::Borrowed(text))
        }
        FieldType::TimestampTz => {
            parse_timestamptz(trimmed).ok_or_else(bad)?;
            Cell::Text(Cow::Borrowed(text))
        }
        FieldType::Uuid => {
            uuid::Uuid::parse_str(trimmed).map_err(|_| bad())?;
            Cell::Text(Cow::Borrowed(text))
        }
        FieldType::Json => {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|_| bad())?;
            Cell::Json(Cow::Borrowed(text))
        }
    })
}

/// A JSON value as a value of `t`.
fn from_json(value: &Value, t: FieldType) -> Result<Cell<'_>, String> {
    match (value, t) {
        (Value::Null, _) => Ok(Cell::Null),
        (Value::String(s), FieldType::Text | FieldType::Bytes) => Ok(Cell::Text(Cow::Borrowed(s))),
        // A number, a boolean or JSON as its text.
        (other, FieldType::Text) => Ok(Cell::Text(Cow::Owned(other.to_string()))),
        (v, FieldType::Json) => Ok(Cell::Json(Cow::Owned(v.to_string()))),
        (
            Value::Number(n),
            FieldType::Integer | FieldType::BigInt | FieldType::Float | FieldType::Decimal { .. },
        ) => from_text(&super::values::plain_number(&n.to_string()), t).map(owned),
        (Value::Bool(b), FieldType::Boolean) => Ok(Cell::Literal(Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        }))),
        (Value::String(s), _) => from_text(s, t),
        (v, t) => Err(format!("{v} is not {}", t.described())),
    }
}

/// A cell that no longer borrows.
fn owned(cell: Cell<'_>) -> Cell<'static> {
    match cell {
        Cell::Null => Cell::Null,
        Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
        Cell::Literal(t) => Cell::Literal(Cow::Owned(t.into_owned())),
        Cell::Json(t) => Cell::Json(Cow::Owned(t.into_owned())),
        Cell::Int(v) => Cell::Int(v),
        Cell::Formatted { value, quoted } => Cell::Formatted { value, quoted },
    }
}

/// The value at `steps` of a JSON record (`None`: absent).
fn at<'a>(record: &'a Value, steps: &[Step]) -> Result<Option<&'a Value>, String> {
    let mut here = record;
    for step in steps {
        here = match (step, here) {
            (Step::Key(k), Value::Object(map)) => match map.get(k) {
                Some(v) => v,
                None => return Ok(None),
            },
            (Step::Index(i), Value::Array(items)) => match items.get(*i) {
                Some(v) => v,
                None => return Ok(None),
            },
            (Step::Each, _) => {
                return Err("a path with [*] inside a record is not supported".into());
            }
            _ => return Ok(None),
        };
    }
    Ok(Some(here))
}

/// Writes records in the output format.
pub(crate) struct Writer<W: Write> {
    out: W,
    output: Output,
    records: u64,
    /// Where formatted values are put together before they are written.
    scratch: Vec<u8>,
}

/// `value` in its ASCII form (between `quote`s when given), put together in `scratch`.
fn write_formatted(
    out: &mut impl Write,
    scratch: &mut Vec<u8>,
    value: Formatted,
    quote: Option<u8>,
) -> std::io::Result<()> {
    scratch.clear();
    scratch.extend(quote);
    value.write(scratch);
    scratch.extend(quote);
    out.write_all(scratch)
}

/// `text` between `quote`s, a quote inside it doubled.
fn write_quoted(out: &mut impl Write, text: &str, quote: u8) -> std::io::Result<()> {
    out.write_all(&[quote])?;
    for (i, part) in text.as_bytes().split(|&b| b == quote).enumerate() {
        if i > 0 {
            out.write_all(&[quote, quote])?;
        }
        out.write_all(part)?;
    }
    out.write_all(&[quote])
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(out: W, output: Output) -> Self {
        Self {
            out,
            output,
            records: 0,
            scratch: Vec::with_capacity(64),
        }
    }

    pub(crate) fn start(&mut self, names: &[&str]) -> std::io::Result<()> {
        match &self.output {
            Output::Csv(csv) if csv.header => {
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(&[csv.separator])?;
                    }
                    write_quoted(&mut self.out, name, csv.quote)?;
                }
                self.out.write_all(b"\n")
            }
            Output::Json => self.out.write_all(b"["),
            Output::Parquet | Output::Sql { .. } => Err(columnar()),
            _ => Ok(()),
        }
    }

    pub(crate) fn record(&mut self, names: &[&str], cells: &[Cell<'_>]) -> std::io::Result<()> {
        match &self.output {
            Output::Csv(csv) => {
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        self.out.write_all(&[csv.separator])?;
                    }
                    match cell {
                        Cell::Null => self.out.write_all(csv.null.as_bytes())?,
                        Cell::Literal(l) => self.out.write_all(l.as_bytes())?,
                        Cell::Text(t) | Cell::Json(t) => write_quoted(&mut self.out, t, csv.quote)?,
                        Cell::Int(v) => self
                            .out
                            .write_all(itoa::Buffer::new().format(*v).as_bytes())?,
                        Cell::Formatted { value, quoted } => {
                            let quote = quoted.then_some(csv.quote);
                            write_formatted(&mut self.out, &mut self.scratch, *value, quote)?
                        }
                    }
                }
                self.out.write_all(b"\n")?;
            }
            Output::Parquet | Output::Sql { .. } => return Err(columnar()),
            Output::Json | Output::JsonLines => {
                if self.output == Output::Json {
                    self.out
                        .write_all(if self.records == 0 { b"\n" } else { b",\n" })?;
                }
                self.out.write_all(b"{")?;
                for (i, (name, cell)) in names.iter().zip(cells).enumerate() {
                    if i > 0 {
                        self.out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut self.out, name)?;
                    self.out.write_all(b":")?;
                    match cell {
                        Cell::Null => self.out.write_all(b"null")?,
                        Cell::Literal(l) | Cell::Json(l) => self.out.write_all(l.as_bytes())?,
                        Cell::Text(t) => serde_json::to_writer(&mut self.out, t.as_ref())?,
                        Cell::Int(v) => self
                            .out
                            .write_all(itoa::Buffer::new().format(*v).as_bytes())?,
                        Cell::Formatted { value, quoted } => {
                            let quote = quoted.then_some(b'"');
                            write_formatted(&mut self.out, &mut self.scratch, *value, quote)?
                        }
                    }
                }
                self.out.write_all(b"}")?;
                if self.output == Output::JsonLines {
                    self.out.write_all(b"\n")?;
                }
            }
        }
        self.records += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> std::io::Result<u64> {
        if self.output == Output::Json {
            self.out
                .write_all(if self.records == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()?;
        Ok(self.records)
    }
}

pub(crate) fn io_error(e: std::io::Error) -> EngineError {
    EngineError::Internal(format!("writing the output: {e}"))
}

/// Convert what `read` holds (in `input`'s format) to `output`, written to `write`; the records
/// written. Checks `cancel` as it goes.
pub fn convert<R: Read, W: Write>(
    read: R,
    input: &Input,
    fields: &[Field],
    output: Output,
    write: W,
    cancel: &CancellationToken,
) -> Result<u64, EngineError> {
    let mut writer = Writer::new(std::io::BufWriter::with_capacity(256 << 10, write), output);
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    writer.start(&names).map_err(io_error)?;
    let mut emit = |place: Place, record: Record<'_>| -> Result<(), EngineError> {
        if writer.records % 1024 == 0 && cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let mut cells = Vec::with_capacity(fields.len());
        for field in fields {
            let checked = match field_value(&record, field, place)? {
                Raw::Null => Ok(Cell::Null),
                Raw::Text(text) => from_text(text, field.field_type),
                Raw::Json(value) => from_json(value, field.field_type),
            };
            cells.push(
                checked
                    .map_err(|why| file_error(place, format!("field {:?}: {why}", field.name)))?,
            );
        }
        writer.record(&names, &cells).map_err(io_error)
    };
    read_records(read, input, &mut emit)?;
    writer.finish().map_err(io_error)
}

/// A field's value in one record, before its type is applied.
pub(crate) enum Raw<'r> {
    Null,
    /// A CSV cell (not one of the NULL words).
    Text(&'r str),
    Json(&'r Value),
}

/// Where `field` is in `record`: a missing CSV column fails, a missing JSON key is NULL.
pub(crate) fn field_value<'r>(
    record: &'r Record<'_>,
    field: &Field,
    place: Place,
) -> Result<Raw<'r>, EngineError> {
    Ok(match (record, &field.path) {
        (Record::Csv(row, nulls), FieldPath::Column(i)) => match row.get(*i) {
            None => {
                return Err(file_error(
                    place,
                    format!("there is no column {i} for {:?}", field.name),
                ))
            }
            Some(v) if nulls.iter().any(|n| n == v) => Raw::Null,
            Some(v) => Raw::Text(v),
        },
        (Record::Json(value), FieldPath::Json(steps)) => {
            match at(value, steps).map_err(|why| file_error(place, why))? {
                None => Raw::Null,
                Some(v) => Raw::Json(v),
            }
        }
        _ => {
            return Err(EngineError::Internal(format!(
                "field {:?}: its path does not fit the input format",
                field.name
            )))
        }
    })
}

/// Every record of `read` (in `input`'s format), handed to `emit` in order.
pub(crate) fn read_records<R: Read>(
    read: R,
    input: &Input,
    emit: &mut Emit<'_>,
) -> Result<(), EngineError> {
    match input {
        Input::Csv(csv) => read_csv(read, csv, emit),
        Input::JsonLines => read_json_lines(read, emit),
        Input::Json => read_json_array(read, emit),
        Input::Parquet => Err(EngineError::Internal(
            "Parquet is read as Arrow batches, not a record at a time".into(),
        )),
    }
}

/// One record as read.
pub(crate) enum Record<'a> {
    /// A row and the cells that mean NULL.
    Csv(&'a csv::StringRecord, &'a [String]),
    Json(Value),
}

pub(crate) type Emit<'e> = dyn FnMut(Place, Record<'_>) -> Result<(), EngineError> + 'e;

/// A reader that fails a line longer than `MAX_RECORD_BYTES` (a 2 GB line must not be held).
struct LineLimit<R> {
    inner: R,
    line: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Only the bytes after the last newline extend the line.
        self.line = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(at) => n - at - 1,
            None => self.line + n,
        };
        if self.line > MAX_RECORD_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a line is longer than {MAX_RECORD_BYTES} bytes"),
            ));
        }
        Ok(n)
    }
}

fn read_csv<R: Read>(read: R, csv: &CsvInput, emit: &mut Emit<'_>) -> Result<(), EngineError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(csv.delimiter)
        .quote(csv.quote)
        .escape(csv.escape)
        .double_quote(csv.escape.is_none())
        .has_headers(csv.header)
        .flexible(false)
        .from_reader(LineLimit {
            inner: read,
            line: 0,
        });
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let place = Place::CsvLine(record.position().map_or(0, |p| p.line()));
                emit(place, Record::Csv(&record, &csv.nulls))?;
            }
            Err(e) => {
                let place = match e.position() {
                    Some(p) => format!("CSV line {}", p.line()),
                    None => format!("CSV line {}", reader.position().line()),
                };
                let why = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("{len} fields where the others have {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".into(),
                    _ => e.to_string(),
                };
                return Err(file_error(&place, why));
            }
        }
    }
}

fn read_json_lines<R: Read>(read: R, emit: &mut Emit<'_>) -> Result<(), EngineError> {
    let limited = LineLimit {
        inner: read,
        line: 0,
    };
    let values = serde_json::Deserializer::from_reader(limited).into_iter::<Value>();
    for (n, value) in values.enumerate() {
        match value {
            Ok(value) => emit(Place::JsonLinesRecord(n + 1), Record::Json(value))?,
            Err(e) => {
                return Err(file_error(
                    format!("JSON line {}, column {}", e.line(), e.column()),
                    e.to_string().split(" at line ").next().unwrap_or_default(),
                ))
            }
        }
    }
    Ok(())
}

/// The elements of a JSON array, one at a time: each element's bytes are found by following
/// strings and nesting, then parsed alone.
fn read_json_array<R: Read>(read: R, emit: &mut Emit<'_>) -> Result<(), EngineError> {
    let mut reader = BufReader::with_capacity(256 << 10, read);
    let mut line = 1usize;
    let mut element: Vec<u8> = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut started, mut ended) =
        (0usize, false, false, false, false);
    let mut count = 0u64;
    let mut element_line = 1;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| file_error(format!("JSON line {line}"), e))?;
        if buf.is_empty() {
            break;
        }
        let mut used = 0;
        for &b in buf {
            used += 1;
            if b == b'\n' {
                line += 1;
            }
            if ended {
                if !b.is_ascii_whitespace() {
                    return Err(file_error(
                        format!("JSON line {line}"),
                        "data after the array's end",
                    ));
                }
                continue;
            }
            if !started {
                match b {
                    b'[' => started = true,
                    b if b.is_ascii_whitespace() => {}
                    0xEF | 0xBB | 0xBF if line == 1 => {}
                    _ => {
                        return Err(file_error(
                            format!("JSON line {line}"),
                            "a JSON array was expected",
                        ))
                    }
                }
                continue;
            }
            if in_string {
                element.push(b);
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => {
                    in_string = true;
                    element.push(b);
                }
                b'[' | b'{' => {
                    depth += 1;
                    element.push(b);
                }
                b']' if depth == 0 => {
                    flush_element(&mut element, element_line, &mut count, emit)?;
                    ended = true;
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    element.push(b);
                }
                b',' if depth == 0 => {
                    flush_element(&mut element, element_line, &mut count, emit)?;
                    element_line = line;
                }
                b if b.is_ascii_whitespace() && element.is_empty() => element_line = line,
                _ => element.push(b),
            }
            if element.len() > MAX_RECORD_BYTES {
                return Err(file_error(
                    format!("JSON line {element_line}"),
                    format!("a record is larger than {MAX_RECORD_BYTES} bytes"),
                ));
            }
        }
        reader.consume(used);
    }
    if !ended {
        return Err(file_error(
            format!("JSON line {line}"),
            "the array is never closed",
        ));
    }
    Ok(())
}

fn flush_element(
    element: &mut Vec<u8>,
    line: usize,
    count: &mut u64,
    emit: &mut Emit<'_>,
) -> Result<(), EngineError> {
    if element.iter().all(u8::is_ascii_whitespace) {
        element.clear();
        return Ok(());
    }
    let value: Value = serde_json::from_slice(element).map_err(|e| {
        file_error(
            format!("JSON line {}", line + e.line() - 1),
            e.to_string().split(" at line ").next().unwrap_or_default(),
        )
    })?;
    element.clear();
    *count += 1;
    emit(Place::JsonLine(line), Record::Json(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::infer::default_null_words;

    fn field(name: &str, t: FieldType, path: FieldPath) -> Field {
        Field {
            name: name.into(),
            field_type: t,
            path,
        }
    }

    fn run(input: &[u8], from: Input, fields: &[Field], to: Output) -> Result<String, EngineError> {
        let mut out = Vec::new();
        convert(
            input,
            &from,
            fields,
            to,
            &mut out,
            &CancellationToken::new(),
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn csv_out(separator: u8) -> Output {
        Output::Csv(CsvOutput {
            separator,
            quote: b'"',
            header: true,
            null: String::new(),
        })
    }

    const EXAMPLE: &[u8] = br#"[{"id":1,"name":"Mark"}, {"id":2,"name":"Maria"}]"#;

    #[test]
    fn the_seed_examples_convert_json_to_csv_with_and_without_a_schema() {
        let id = Step::Key("id".into());
        let with_schema = [field(
            "id",
            FieldType::Text,
            FieldPath::Json(vec![id.clone()]),
        )];
        assert_eq!(
            run(EXAMPLE, Input::Json, &with_schema, csv_out(b',')).unwrap(),
            "\"id\"\n\"1\"\n\"2\"\n"
        );
        let detected = [
            field("id", FieldType::Integer, FieldPath::Json(vec![id])),
            field(
                "name",
                FieldType::Text,
                FieldPath::Json(vec![Step::Key("name".into())]),
            ),
        ];
        assert_eq!(
            run(EXAMPLE, Input::Json, &detected, csv_out(b';')).unwrap(),
            "\"id\";\"name\"\n1;\"Mark\"\n2;\"Maria\"\n"
        );
    }

    #[test]
    fn csv_converts_to_json_and_json_lines_with_types_kept() {
        let csv = b"id,price,note\n1,12.50,\"say \"\"hi\"\"\"\n2,,NULL\n";
        let input = Input::Csv(CsvInput {
            delimiter: b',',
            quote: b'"',
            escape: None,
            header: true,
            nulls: default_null_words(),
        });
        let fields = [
            field("id", FieldType::Integer, FieldPath::Column(0)),
            field(
                "price",
                FieldType::Decimal {
                    precision: 4,
                    scale: 2,
                },
                FieldPath::Column(1),
            ),
            field("note", FieldType::Text, FieldPath::Column(2)),
        ];
        assert_eq!(
            run(csv, input.clone(), &fields, Output::JsonLines).unwrap(),
            "{\"id\":1,\"price\":12.50,\"note\":\"say \\\"hi\\\"\"}\n{\"id\":2,\"price\":null,\"note\":null}\n"
        );
        assert_eq!(
            run(csv, input, &fields, Output::Json).unwrap(),
            "[\n{\"id\":1,\"price\":12.50,\"note\":\"say \\\"hi\\\"\"},\n{\"id\":2,\"price\":null,\"note\":null}\n]\n"
        );
    }

    #[test]
    fn a_late_value_that_does_not_fit_fails_with_its_line_and_field() {
        let csv = b"n\n1\n2\n3.5\n";
        let input = Input::Csv(CsvInput {
            delimiter: b',',
            quote: b'"',
            escape: None,
            header: true,
            nulls: default_null_words(),
        });
        let fields = [field("n", FieldType::Integer, FieldPath::Column(0))];
        let err = run(csv, input.clone(), &fields, Output::JsonLines)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("\"n\"") && err.contains("3.5"),
            "{err}"
        );
        let err = run(b"n\n1\n2,3\n", input, &fields, Output::JsonLines)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("2 fields"), "{err}");
        let err = run(
            b"[{\"a\":1},\n{\"a\":}]",
            Input::Json,
            &fields[..0],
            Output::Json,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = run(b"[{\"a\":1}", Input::Json, &fields[..0], Output::Json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never closed"), "{err}");
    }
}
