//! Type inference for files: what a column of text values (CSV) or JSON values is, as the
//! narrowest type that holds every value seen exactly. The lattice widens
//! integer → bigint → decimal(p,s) → float, date → timestamp, and anything else that
//! disagrees → text; a value never gets a type that would change it (leading zeros, more than
//! 38 digits and mixed zone/no-zone timestamps stay text).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use super::types::LogicalType;

/// Words read as NULL in text files by default.
pub const DEFAULT_NULL_WORDS: &[&str] = &["", "NULL", "\\N"];

/// The cells that mean NULL unless a user says otherwise.
pub fn default_null_words() -> Vec<String> {
    DEFAULT_NULL_WORDS.iter().map(|w| w.to_string()).collect()
}

/// Largest precision of an exact decimal.
const MAX_PRECISION: u32 = 38;

/// A detected column type, named with Sluice's words (Sqlify's `string`, `integer`, `float`,
/// `json` among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Boolean,
    Integer,
    BigInt,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Float,
    Date,
    /// A time of day (`24:00:00` included), microseconds.
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    Bytes,
    Text,
}

impl FieldType {
    /// A type as a user writes it: Sqlify's words (`string`, `integer`, `float`, `json`) or
    /// Sluice's (`bigint`, `decimal(p,s)`, `boolean`, `date`, `timestamp`, `timestamptz`,
    /// `time`, `uuid`, `bytes`, `text`), in any case.
    pub fn parse(text: &str) -> Option<FieldType> {
        let text = text.trim().to_ascii_lowercase();
        Some(match text.as_str() {
            "string" | "text" => Self::Text,
            "integer" | "int" => Self::Integer,
            "bigint" => Self::BigInt,
            "float" | "double" => Self::Float,
            "boolean" | "bool" => Self::Boolean,
            "date" => Self::Date,
            "time" => Self::Time,
            "timestamp" => Self::Timestamp,
            "timestamptz" => Self::TimestampTz,
            "uuid" => Self::Uuid,
            "json" => Self::Json,
            "bytes" => Self::Bytes,
            other => {
                let inner = other.strip_prefix("decimal(")?.strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                let precision: u32 = p.trim().parse().ok()?;
                let scale: u32 = s.trim().parse().ok()?;
                if !(1..=MAX_PRECISION).contains(&precision) || scale > precision {
                    return None;
                }
                Self::Decimal { precision, scale }
            }
        })
    }

    pub fn name(self) -> String {
        match self {
            Self::Boolean => "boolean".into(),
            Self::Integer => "integer".into(),
            Self::BigInt => "bigint".into(),
            Self::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            Self::Float => "float".into(),
            Self::Date => "date".into(),
            Self::Time => "time".into(),
            Self::Timestamp => "timestamp".into(),
            Self::TimestampTz => "timestamptz".into(),
            Self::Uuid => "uuid".into(),
            Self::Json => "json".into(),
            Self::Bytes => "bytes".into(),
            Self::Text => "string".into(),
        }
    }

    /// The name with its article, for messages: `an integer`, `a uuid`.
    pub fn described(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    /// The logical type values of this field travel as.
    pub fn logical(self) -> LogicalType {
        match self {
            Self::Boolean => LogicalType::Boolean,
            Self::Integer => LogicalType::Int32,
            Self::BigInt => LogicalType::Int64,
            Self::Decimal { precision, scale } => LogicalType::Decimal {
                precision: precision as u8,
                scale: scale as i8,
            },
            Self::Float => LogicalType::Float64,
            Self::Date => LogicalType::Date,
            Self::Time => LogicalType::Time,
            Self::Timestamp => LogicalType::Timestamp,
            Self::TimestampTz => LogicalType::TimestampTz,
            Self::Uuid => LogicalType::Uuid,
            Self::Json => LogicalType::Json,
            Self::Bytes => LogicalType::Binary { max_len: None },
            Self::Text => LogicalType::Text {
                max_len: None,
                fixed: false,
            },
        }
    }
}

/// What the values of a number column need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Numeric {
    /// Digits before the point (without leading zeros).
    int_digits: u32,
    scale: u32,
    float: bool,
    fits_i32: bool,
    fits_i64: bool,
}

impl Numeric {
    fn widen(self, other: Numeric) -> Numeric {
        Numeric {
            int_digits: self.int_digits.max(other.int_digits),
            scale: self.scale.max(other.scale),
            float: self.float || other.float,
            fits_i32: self.fits_i32 && other.fits_i32,
            fits_i64: self.fits_i64 && other.fits_i64,
        }
    }

    fn field_type(self) -> FieldType {
        if self.float {
            return FieldType::Float;
        }
        if self.scale == 0 && self.fits_i32 {
            return FieldType::Integer;
        }
        if self.scale == 0 && self.fits_i64 {
            return FieldType::BigInt;
        }
        let precision = (self.int_digits + self.scale).max(1);
        if precision > MAX_PRECISION {
            FieldType::Text
        } else {
            FieldType::Decimal {
                precision,
                scale: self.scale,
            }
        }
    }
}

/// The type one value suggests, before widening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guess {
    Boolean,
    /// PostgreSQL's hex bytes, `\x…`.
    Bytes,
    Number(Numeric),
    Date,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    Text,
}

impl Guess {
    fn widen(self, other: Guess) -> Guess {
        use Guess::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Number(a), Number(b)) => Number(a.widen(b)),
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }
}

/// An exact decimal number in plain notation: sign, digits, optional fraction. Leading zeros
/// (but a lone `0` before the point) make it text, since a number would drop them.
fn plain_number(text: &str) -> Option<Numeric> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    if int.len() > 1 && int.starts_with('0') {
        return None;
    }
    let integer = frac.is_none();
    let value = integer.then(|| text.parse::<i64>().ok()).flatten();
    Some(Numeric {
        int_digits: int.trim_start_matches('0').len() as u32,
        scale: frac.map_or(0, |f| f.len() as u32),
        float: false,
        fits_i32: value.is_some_and(|v| i32::try_from(v).is_ok()),
        fits_i64: value.is_some(),
    })
}

/// A number with an exponent (`1.5e3`): a float.
fn exponent_number(text: &str) -> bool {
    text.contains(['e', 'E'])
        && !text.starts_with(['e', 'E'])
        && text.bytes().any(|b| b.is_ascii_digit())
        && text.parse::<f64>().is_ok_and(f64::is_finite)
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

const TIMESTAMP_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];
const ZONED_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
];

/// The values of file fields as every reader of files takes them (detection, the record
/// converter, the Arrow builder): one parser per type, so that what detection calls a type
/// always reads as that type.
///
/// A `date`: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(b, 4), digits(&b[5..], 2), digits(&b[8..], 2))
        {
            return NaiveDate::from_ymd_opt(y as i32, m, d);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A `boolean`: `true` or `false`, or PostgreSQL's `t` and `f`, in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.len() {
        1 | 4 | 5 => match text.to_ascii_lowercase().as_str() {
            "true" | "t" => Some(true),
            "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `bytes`: base64 (as Sluice writes them), or PostgreSQL's hex form `\x00ff…`.
pub fn parse_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let Some(hex) = text.strip_prefix("\\x") else {
        return base64::engine::general_purpose::STANDARD.decode(text).ok();
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A `time` of day: `HH:MM`, `HH:MM:SS` or `HH:MM:SS.ffffff` (up to microseconds; more digits
/// only as zeros), `24:00:00` included as the end of a day; microseconds since midnight.
pub fn parse_time(text: &str) -> Option<i64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = clock.split(':');
    let mut field = |max: i64| -> Option<i64> {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = part.parse().ok()?;
        (v <= max).then_some(v)
    };
    let (h, m) = (field(24)?, field(59)?);
    let s = match parts.next() {
        None if fraction.is_empty() => 0,
        None => return None,
        Some(part) if part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()) => {
            part.parse::<i64>().ok().filter(|s| *s <= 59)?
        }
        Some(_) => return None,
    };
    if parts.next().is_some()
        || text.ends_with('.')
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (kept, rest) = fraction.split_at(fraction.len().min(6));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let micros = format!("{kept:0<6}").parse::<i64>().ok()?;
    let total = ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    (total <= 86_400_000_000).then_some(total)
}

/// A `float`: a decimal or exponent number, or the words `NaN`, `Infinity` and `-Infinity`
/// (as Sluice and PostgreSQL write the values that are not finite).
pub fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// `n` ASCII digits at the start of `b`, as a number.
fn digits(b: &[u8], n: usize) -> Option<u32> {
    let part = b.get(..n)?;
    part.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// The common spellings of dates and timestamps, read without a format parser (millions of
/// values a file): `YYYY-MM-DD`, then ` ` or `T`, `HH:MM`, `:SS`, `.` and 1 to 6 digits, then
/// (`zoned`) `Z`, `±HH`, `±HHMM` or `±HH:MM`. The date, the time of day (with its microseconds)
/// and the zone's offset in seconds; `None` for anything else, which the format parsers then
/// read (they accept everything this does, and more).
fn fast_datetime(text: &str, zoned: bool) -> Option<(NaiveDateTime, Option<i32>)> {
    let b = text.as_bytes();
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(b, 4)? as i32,
        digits(&b[5..], 2)?,
        digits(&b[8..], 2)?,
    )?;
    let (hour, minute) = (digits(&b[11..], 2)?, digits(&b[14..], 2)?);
    let mut at = 16;
    let (mut second, mut micros) = (0, 0);
    if b.get(at) == Some(&b':') {
        second = digits(&b[at + 1..], 2)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let run = b[at + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            if !(1..=6).contains(&run) {
                return None;
            }
            micros = digits(&b[at + 1..], run)? * 10u32.pow(6 - run as u32);
            at += 1 + run;
        }
    } else if zoned {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let rest = &b[at..];
    let offset = match rest {
        [] if !zoned => None,
        [b'Z'] if zoned => Some(0),
        [sign @ (b'+' | b'-'), zone @ ..] if zoned => {
            let (h, m) = match zone.len() {
                2 => (digits(zone, 2)?, 0),
                4 => (digits(zone, 2)?, digits(&zone[2..], 2)?),
                5 if zone[2] == b':' => (digits(zone, 2)?, digits(&zone[3..], 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i32;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => return None,
    };
    Some((date.and_time(time), offset))
}

/// A `timestamp` (no zone): date and time, `T` or a space between, seconds optional.
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    if let Some((t, None)) = fast_datetime(text, false) {
        return Some(t);
    }
    TIMESTAMP_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// A `timestamptz`: a timestamp with `Z` or an offset (`+02:00`, `+0200`, `+02`); the instant
/// in microseconds since the epoch.
pub fn parse_timestamptz(text: &str) -> Option<i64> {
    if let Some((t, Some(offset))) = fast_datetime(text, true) {
        return Some(t.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000);
    }
    if let Some(utc) = text.strip_suffix('Z') {
        if let Some(t) = parse_timestamp(utc) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    ZONED_FORMATS
        .iter()
        .find_map(|f| DateTime::parse_from_str(text, f).ok())
        .map(|t| t.timestamp_micros())
}

/// A `decimal(precision, scale)`: plain decimal text (`-12.50`, `+7`) as the integer of
/// `scale` digits after the point, when its digits fit.
pub fn parse_decimal(text: &str, precision: u32, scale: u32) -> Option<i128> {
    let negative = text.starts_with('-');
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let numeric = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    let int = int.trim_start_matches('0');
    if !numeric || frac.len() as u32 > scale || int.len() as u32 > precision - scale {
        return None;
    }
    let mut value: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        value = value * 10 + i128::from(b - b'0');
    }
    value *= 10i128.pow(scale - frac.len() as u32);
    Some(if negative { -value } else { value })
}

fn temporal(text: &str) -> Option<Guess> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) || text.len() < 10 {
        return None;
    }
    if text.len() == 10 && parse_date(text).is_some() {
        return Some(Guess::Date);
    }
    if parse_timestamptz(text).is_some() {
        return Some(Guess::TimestampTz);
    }
    parse_timestamp(text).map(|_| Guess::Timestamp)
}

/// What a text value (from a CSV cell, or a JSON string) suggests. `numbers`: whether digits
/// may be a number (CSV) or stay text (a JSON string).
fn guess_text(text: &str, numbers: bool) -> Guess {
    if numbers {
        if parse_bool(text).is_some() {
            return Guess::Boolean;
        }
        if text.starts_with("\\x") && parse_bytes(text).is_some() {
            return Guess::Bytes;
        }
        if let Some(n) = plain_number(text) {
            return Guess::Number(n);
        }
        if exponent_number(text) {
            return Guess::Number(Numeric {
                float: true,
                ..Numeric::default()
            });
        }
    }
    if let Some(t) = temporal(text) {
        return t;
    }
    if is_uuid(text) {
        return Guess::Uuid;
    }
    if numbers
        && (text.starts_with('{') || text.starts_with('['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    {
        return Guess::Json;
    }
    Guess::Text
}

/// One column's evidence so far.
#[derive(Debug, Clone, Default)]
pub struct Column {
    guess: Option<Guess>,
    pub nulls: u64,
    pub values: u64,
}

impl Column {
    fn add(&mut self, guess: Guess) {
        self.values += 1;
        self.guess = Some(match self.guess {
            None => guess,
            Some(current) => current.widen(guess),
        });
    }

    /// A CSV cell (after NULL words were taken out).
    pub fn observe_text(&mut self, text: &str) {
        self.add(guess_text(text, true));
    }

    pub fn observe_null(&mut self) {
        self.nulls += 1;
    }

    /// A JSON value (objects are flattened by the caller; arrays are json).
    pub fn observe_json(&mut self, value: &serde_json::Value) {
        use serde_json::Value;
        let guess = match value {
            Value::Null => return self.observe_null(),
            Value::Bool(_) => Guess::Boolean,
            Value::Number(n) => match n.as_i64() {
                Some(v) => Guess::Number(Numeric {
                    int_digits: v.unsigned_abs().to_string().trim_start_matches('0').len() as u32,
                    scale: 0,
                    float: false,
                    fits_i32: i32::try_from(v).is_ok(),
                    fits_i64: true,
                }),
                None if n.is_u64() => Guess::Number(Numeric {
                    int_digits: 20,
                    ..Numeric::default()
                }),
                None => Guess::Number(Numeric {
                    float: true,
                    ..Numeric::default()
                }),
            },
            Value::String(s) => guess_text(s, false),
            Value::Array(_) | Value::Object(_) => Guess::Json,
        };
        self.add(guess);
    }

    /// The type that holds every value seen (text when none was seen).
    pub fn field_type(&self) -> FieldType {
        match self.guess {
            None | Some(Guess::Text) => FieldType::Text,
            Some(Guess::Boolean) => FieldType::Boolean,
            Some(Guess::Number(n)) => n.field_type(),
            Some(Guess::Date) => FieldType::Date,
            Some(Guess::Timestamp) => FieldType::Timestamp,
            Some(Guess::TimestampTz) => FieldType::TimestampTz,
            Some(Guess::Uuid) => FieldType::Uuid,
            Some(Guess::Json) => FieldType::Json,
            Some(Guess::Bytes) => FieldType::Bytes,
        }
    }

    /// Whether the column's values look like data rather than a header: anything but text.
    pub fn is_typed(&self) -> bool {
        !matches!(self.guess, None | Some(Guess::Text))
    }
}

/// A detected field: its name, type and where its values are (a CSV column index, or a
/// JSONPath).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectedField {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub path: String,
    pub nullable: bool,
}

impl DetectedField {
    pub fn new(name: String, path: String, column: &Column) -> Self {
        Self {
            name,
            field_type: column.field_type().name(),
            path,
            nullable: column.nulls > 0 || column.values == 0,
        }
    }
}

/// How a CSV file is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CsvDialect {
    pub delimiter: String,
    pub quote: String,
    /// `"` when quotes are doubled inside quoted fields, else the escape character.
    pub escape: String,
    pub header: bool,
    /// `lf`, `crlf` or `cr`.
    pub line_ending: String,
    /// The cells read as NULL.
    pub null_words: Vec<String>,
}

/// What schema detection found in the start of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detected {
    /// csv | json | jsonl
    pub format: String,
    /// utf-8, utf-8-bom, utf-16le, utf-16be, or latin-1 (bytes that were not UTF-8).
    pub encoding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<CsvDialect>,
    pub fields: Vec<DetectedField>,
    /// Records the types were inferred from.
    pub sampled_rows: u64,
    /// Whether the sample was the whole file.
    pub whole_file: bool,
}

impl Detected {
    /// Types guessed from a sample that is not the whole file, widened so that values the
    /// sample did not show still fit: `integer` → `bigint`, `decimal(p,s)` → `decimal(38,s)`.
    pub fn widened(mut self) -> Self {
        if self.whole_file {
            return self;
        }
        for field in &mut self.fields {
            let wider = match FieldType::parse(&field.field_type) {
                Some(FieldType::Integer) => FieldType::BigInt,
                Some(FieldType::Decimal { scale, .. }) => FieldType::Decimal {
                    precision: MAX_PRECISION,
                    scale,
                },
                _ => continue,
            };
            field.field_type = wider.name();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> String {
        let mut column = Column::default();
        for v in values {
            if DEFAULT_NULL_WORDS.contains(v) {
                column.observe_null();
            } else {
                column.observe_text(v);
            }
        }
        column.field_type().name()
    }

    #[test]
    fn numbers_widen_from_integer_to_bigint_to_decimal_to_float() {
        assert_eq!(infer(&["1", "-20", "2147483647"]), "integer");
        assert_eq!(infer(&["1", "2147483648"]), "bigint");
        assert_eq!(infer(&["1", "12.50", "-0.125"]), "decimal(5,3)");
        assert_eq!(infer(&["9223372036854775808"]), "decimal(19,0)");
        assert_eq!(infer(&["1", "2.5", "1e3"]), "float");
        assert_eq!(infer(&[&"9".repeat(39)]), "string");
    }

    #[test]
    fn values_a_type_would_change_stay_text() {
        assert_eq!(infer(&["007", "12"]), "string");
        assert_eq!(infer(&["1", "x"]), "string");
        assert_eq!(
            infer(&["2024-01-01 10:00:00", "2024-01-01 10:00:00+02:00"]),
            "string"
        );
    }

    #[test]
    fn dates_times_uuids_booleans_and_json_are_recognised() {
        assert_eq!(infer(&["2024-02-29", "1999-12-31"]), "date");
        assert_eq!(
            infer(&["2024-02-29", "2024-03-01 12:30:00.25"]),
            "timestamp"
        );
        assert_eq!(
            infer(&["2024-03-01T12:30:00Z", "2024-03-01 12:30:00+0530"]),
            "timestamptz"
        );
        assert_eq!(infer(&["2024-02-30"]), "string");
        assert_eq!(infer(&["9b2f6c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"]), "uuid");
        assert_eq!(infer(&["true", "FALSE", "NULL"]), "boolean");
        assert_eq!(infer(&["{\"a\": 1}", "[1, 2]"]), "json");
        assert_eq!(infer(&["", "\\N"]), "string");
    }

    #[test]
    fn type_names_parse_in_both_vocabularies() {
        assert_eq!(FieldType::parse("String"), Some(FieldType::Text));
        assert_eq!(
            FieldType::parse("decimal(10, 2)"),
            Some(FieldType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(FieldType::parse("decimal(39,0)"), None);
        assert_eq!(FieldType::parse("decimal(2,3)"), None);
        assert_eq!(FieldType::parse("varchar"), None);
        for t in [
            "boolean",
            "bigint",
            "float",
            "date",
            "time",
            "timestamptz",
            "uuid",
            "json",
            "bytes",
        ] {
            assert_eq!(FieldType::parse(t).unwrap().name(), t);
        }
    }

    #[test]
    fn times_of_day_read_to_the_microsecond_up_to_the_end_of_the_day() {
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("13:45:01"), Some(49_501_000_000));
        assert_eq!(parse_time("23:59:59.999999"), Some(86_399_999_999));
        assert_eq!(parse_time("12:34:56.5"), Some(45_296_500_000));
        assert_eq!(parse_time("12:34:56.500000000"), Some(45_296_500_000));
        assert_eq!(parse_time("24:00:00"), Some(86_400_000_000));
        for bad in [
            "24:00:01",
            "25:00",
            "12:60",
            "1:02:03",
            "12:34:56.",
            "12:34:56.1234567",
            "12:34.5",
            "12:34:56:00",
            "noon",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_date_and_timestamp_readers_agree_with_the_format_parsers() {
        for text in [
            "2024-02-29 23:59:59.999999",
            "2024-02-29T10:11:12.5",
            "2024-02-29 10:11",
            "2023-02-29 10:11:12",
            "2024-13-01 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 10:60:00",
            "2024-01-01 10:00:00.",
            "2024-01-01 10:00:00.1234567",
            "2024-01-01 10:00:00x",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.000001",
        ] {
            let slow = TIMESTAMP_FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
            assert_eq!(parse_timestamp(text), slow, "{text}");
        }
        for text in [
            "2020-01-01 00:01:00+00",
            "2020-01-01 00:01:00.25-05:30",
            "2020-01-01T00:01:00+0530",
            "2020-01-01 00:01:00Z",
            "2020-01-01 00:01+02",
            "2020-01-01 00:01:00+24",
            "2020-01-01 00:01:00+02:60",
            "2020-01-01 00:01:00+2",
            "2020-01-01 00:01:00",
        ] {
            let slow = ZONED_FORMATS
                .iter()
                .find_map(|f| DateTime::parse_from_str(text, f).ok())
                .map(|t| t.timestamp_micros())
                .or_else(|| {
                    let utc = text.strip_suffix('Z')?;
                    NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S%.f")
                        .ok()
                        .map(|t| t.and_utc().timestamp_micros())
                });
            assert_eq!(parse_timestamptz(text), slow, "{text}");
        }
        for text in [
            "2024-02-29",
            "2023-02-29",
            "2024-00-10",
            "0001-01-01",
            "2024-1-05",
        ] {
            assert_eq!(
                parse_date(text),
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn postgresqls_booleans_and_hex_bytes_are_read_as_such() {
        assert_eq!(infer(&["t", "f", "T"]), "boolean");
        assert_eq!(infer(&["\\x00ff", "\\x", "NULL"]), "bytes");
        assert_eq!(infer(&["\\x0g"]), "string");
        assert_eq!(infer(&["tf"]), "string");
        assert_eq!(parse_bytes("\\x00FF10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_bytes("AP8Q"), Some(vec![0, 255, 16]));
        assert_eq!(parse_bytes("\\x0"), None);
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn floats_read_the_words_for_values_that_are_not_finite() {
        assert_eq!(parse_float("-2.5e3"), Some(-2500.0));
        assert_eq!(parse_float("Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("1e999"), None);
    }

    #[test]
    fn json_values_keep_strings_as_strings_and_numbers_as_numbers() {
        let mut column = Column::default();
        for v in [serde_json::json!("12"), serde_json::json!("x")] {
            column.observe_json(&v);
        }
        assert_eq!(column.field_type(), FieldType::Text);
        let mut column = Column::default();
        for v in [
            serde_json::json!(12),
            serde_json::json!(null),
            serde_json::json!(3_000_000_000i64),
        ] {
            column.observe_json(&v);
        }
        assert_eq!(column.field_type(), FieldType::BigInt);
        assert_eq!(column.nulls, 1);
        let mut column = Column::default();
        column.observe_json(&serde_json::json!(1.5));
        assert_eq!(column.field_type(), FieldType::Float);
    }
}
