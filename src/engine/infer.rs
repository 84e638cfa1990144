//! Type inference for files: what a column of text values (CSV) or JSON values is, as the
//! narrowest type that holds every value seen exactly. The lattice widens
//! integer → bigint → decimal(p,s) → float, date → timestamp, and anything else that
//! disagrees → text; a value never gets a type that would change it (leading zeros, more than
//! 38 digits and mixed zone/no-zone timestamps stay text).

use serde::{Deserialize, Serialize};

use super::parse::{parse_bool, parse_bytes, parse_date, parse_timestamp, parse_timestamptz};
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
    fn postgresqls_booleans_and_hex_bytes_are_read_as_such() {
        assert_eq!(infer(&["t", "f", "T"]), "boolean");
        assert_eq!(infer(&["\\x00ff", "\\x", "NULL"]), "bytes");
        assert_eq!(infer(&["\\x0g"]), "string");
        assert_eq!(infer(&["tf"]), "string");
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
