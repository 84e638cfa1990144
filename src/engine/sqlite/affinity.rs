//! SQLite's type affinity: what a declared column type makes of the values stored in it, and
//! the check that keeps it from silently turning text into a number.

use super::values::{clip, parse_decimal, TextBuf};

/// SQLite's column affinity, from the declared type (https://sqlite.org/datatype3.html 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

impl Affinity {
    pub fn of(declared: &str) -> Self {
        let upper = declared.to_ascii_uppercase();
        if upper.contains("INT") {
            Self::Integer
        } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
            Self::Text
        } else if upper.contains("BLOB") || upper.trim().is_empty() {
            Self::Blob
        } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
            Self::Real
        } else {
            Self::Numeric
        }
    }

    /// Converts text that looks like a number into a number.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Real | Self::Numeric)
    }
}

/// Text that SQLite would store as it is in a column of this affinity; for canonical integer
/// text ("42", "-7") in an INTEGER or NUMERIC column, the integer it will become (which reads
/// back as the same text). Err when the affinity would change the value.
pub fn check_text_affinity(text: &[u8], affinity: Affinity) -> Result<Option<i64>, String> {
    if !affinity.is_numeric() {
        return Ok(None);
    }
    let Some(number) = parse_decimal(text) else {
        return Ok(None);
    };
    if affinity != Affinity::Real {
        if let Some(i) = number.to_i64() {
            let canonical = {
                let mut b = TextBuf::default();
                if i < 0 {
                    b.push(b'-');
                }
                b.push_u64(i.unsigned_abs());
                b.as_bytes() == text
            };
            if canonical {
                return Ok(Some(i));
            }
        }
    }
    Err(format!(
        "the text {:?} would be turned into a number by the target column's {affinity:?} affinity",
        clip(&String::from_utf8_lossy(text))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_follows_sqlites_rules() {
        assert_eq!(Affinity::of("BIGINT"), Affinity::Integer);
        assert_eq!(Affinity::of("DECIMAL TEXT(38,10)"), Affinity::Text);
        assert_eq!(Affinity::of("varchar(10)"), Affinity::Text);
        assert_eq!(Affinity::of(""), Affinity::Blob);
        assert_eq!(Affinity::of("DOUBLE PRECISION"), Affinity::Real);
        assert_eq!(Affinity::of("DECIMAL(10,2)"), Affinity::Numeric);
        assert_eq!(check_text_affinity(b"42", Affinity::Integer), Ok(Some(42)));
        assert!(check_text_affinity(b"042", Affinity::Integer).is_err());
        assert!(check_text_affinity(b"1.5", Affinity::Numeric).is_err());
        assert!(check_text_affinity(b"42", Affinity::Real).is_err());
        assert_eq!(check_text_affinity(b"42", Affinity::Text), Ok(None));
        assert_eq!(
            check_text_affinity(b"2024-01-01", Affinity::Numeric),
            Ok(None)
        );
    }
}
