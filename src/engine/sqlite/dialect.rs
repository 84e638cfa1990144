//! SQLite quoting and the one mapping between logical types and SQLite declared types.
//!
//! SQLite stores every value as NULL, INTEGER, REAL, TEXT or BLOB; a column's declared type only
//! gives it an *affinity*. The declared types written here keep the logical type readable by
//! the source (so a SQLite → PostgreSQL transfer gets `numeric(38,10)`, `date`, `uuid` back)
//! while their affinity never changes a value: exact decimals and JSON are declared with a
//! name containing `TEXT` (TEXT affinity: numeric-looking text stays text), and the date, time
//! and UUID text forms never look like numbers.
//!
//! | logical             | declared type (sink)          | stored as                                   |
//! |---------------------|-------------------------------|---------------------------------------------|
//! | Boolean             | BOOLEAN                       | INTEGER 0/1                                 |
//! | Int16/Int32/Int64   | INTEGER                       | INTEGER                                     |
//! | UInt64              | TEXT                          | TEXT, exact digits                          |
//! | Float32/Float64     | REAL                          | REAL (NaN and -0.0 rejected)                |
//! | Decimal{p,s}        | DECIMAL TEXT(p,s)             | TEXT, exact ("-12.3400")                    |
//! | BigDecimal          | DECIMAL TEXT[(p,s)]           | TEXT, exact ("NaN", "Infinity" kept)        |
//! | Text                | TEXT / VARCHAR(n) / CHAR(n)   | TEXT                                        |
//! | Binary              | BLOB                          | BLOB                                        |
//! | Date                | DATE                          | TEXT "2024-01-31"                           |
//! | Time                | TIME                          | TEXT "13:45:00.123456"                      |
//! | Timestamp           | TIMESTAMP                     | TEXT "2024-01-31 13:45:00.123456"           |
//! | TimestampTz         | TIMESTAMPTZ                   | TEXT "2024-01-31 13:45:00.123456+00:00"     |
//! | Uuid                | UUID                          | TEXT, lowercase hyphenated                  |
//! | Json, Array         | JSON TEXT                     | TEXT (JSON)                                 |
//! | Interval, Other     | TEXT                          | TEXT                                        |
//! | PgRaw               | rejected (PostgreSQL targets only)                                          |

use crate::engine::types::{Column, LogicalType};
use crate::engine::EngineError;

/// `"name"` with embedded quotes doubled. Empty names and NUL are refused.
pub fn quote_ident(name: &str) -> Result<String, EngineError> {
    if name.is_empty() {
        return Err(EngineError::Schema("an identifier is empty".into()));
    }
    if name.contains('\0') {
        return Err(EngineError::Schema(format!(
            "the name {name:?} contains a NUL character, which SQLite identifiers cannot hold"
        )));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// The declared type a created column gets, with NOT NULL when the source guarantees no NULL.
pub fn column_ddl(column: &Column) -> Result<String, EngineError> {
    let ty = match &column.ty {
        LogicalType::Boolean => "BOOLEAN".to_string(),
        LogicalType::Int16 | LogicalType::Int32 | LogicalType::Int64 => "INTEGER".into(),
        LogicalType::UInt64 => "TEXT".into(),
        LogicalType::Float32 | LogicalType::Float64 => "REAL".into(),
        LogicalType::Decimal { precision, scale } => format!("DECIMAL TEXT({precision},{scale})"),
        LogicalType::BigDecimal {
            precision: Some(p),
            scale,
        } => format!("DECIMAL TEXT({p},{})", scale.unwrap_or(0)),
        LogicalType::BigDecimal { .. } => "DECIMAL TEXT".into(),
        LogicalType::Text {
            max_len: Some(n),
            fixed,
        } => format!("{}({n})", if *fixed { "CHAR" } else { "VARCHAR" }),
        LogicalType::Text { .. } => "TEXT".into(),
        LogicalType::Binary { .. } => "BLOB".into(),
        LogicalType::Date => "DATE".into(),
        LogicalType::Time => "TIME".into(),
        LogicalType::Timestamp => "TIMESTAMP".into(),
        LogicalType::TimestampTz => "TIMESTAMPTZ".into(),
        LogicalType::Uuid => "UUID".into(),
        LogicalType::Json | LogicalType::Array { .. } => "JSON TEXT".into(),
        LogicalType::Interval | LogicalType::Other { .. } => "TEXT".into(),
        LogicalType::PgRaw { db_type, .. } => {
            return Err(EngineError::Schema(format!(
                "column {:?} carries PostgreSQL binary values ({db_type}), which only a PostgreSQL target accepts",
                column.name
            )))
        }
    };
    Ok(if column.nullable {
        ty
    } else {
        format!("{ty} NOT NULL")
    })
}

/// `CREATE TABLE "main"."table" (...)` for the columns.
pub fn create_table(table: &str, columns: &[Column]) -> Result<String, EngineError> {
    let mut sql = format!("CREATE TABLE \"main\".{} (", quote_ident(table)?);
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_ident(&c.name)?);
        sql.push(' ');
        sql.push_str(&column_ddl(c)?);
    }
    sql.push(')');
    Ok(sql)
}

/// `INSERT INTO "main"."table" ("a", "b") VALUES (?1, ?2)`.
pub fn insert(table: &str, columns: &[&str]) -> Result<String, EngineError> {
    let mut sql = format!("INSERT INTO \"main\".{} (", quote_ident(table)?);
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&quote_ident(c)?);
    }
    sql.push_str(") VALUES (");
    for i in 1..=columns.len() {
        if i > 1 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("?{i}"));
    }
    sql.push(')');
    Ok(sql)
}

/// The logical type of a declared column type, with SQLite's affinity rules as the fallback;
/// `None` when the values must tell (no declared type, or one with NUMERIC affinity that names
/// nothing known).
pub fn logical_type(declared: &str) -> Option<LogicalType> {
    let upper = declared.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return None;
    }
    let (base, args) = match upper.split_once('(') {
        Some((base, rest)) => (base.trim(), rest.trim_end_matches(')')),
        None => (upper.as_str(), ""),
    };
    let mut numbers = args
        .split(',')
        .map(|n| n.trim().parse::<i64>().ok())
        .take(2);
    let first = numbers.next().flatten();
    let second = numbers.next().flatten();
    let has = |word: &str| base.contains(word);

    if has("BOOL") {
        return Some(LogicalType::Boolean);
    }
    if has("DECIMAL") || has("NUMERIC") {
        let scale = second.unwrap_or(0);
        return Some(match first {
            Some(p) if (1..=38).contains(&p) && (0..=p).contains(&scale) => LogicalType::Decimal {
                precision: p as u8,
                scale: scale as i8,
            },
            Some(p) if p > 0 && (0..=p).contains(&scale) => LogicalType::BigDecimal {
                precision: Some(p as u32),
                scale: Some(scale as u32),
            },
            _ => LogicalType::BigDecimal {
                precision: None,
                scale: None,
            },
        });
    }
    if has("UUID") || has("GUID") {
        return Some(LogicalType::Uuid);
    }
    if has("JSON") {
        return Some(LogicalType::Json);
    }
    if has("TIMESTAMPTZ") || has("WITH TIME ZONE") {
        return Some(LogicalType::TimestampTz);
    }
    if has("DATETIME") || has("TIMESTAMP") {
        return Some(LogicalType::Timestamp);
    }
    if base == "DATE" {
        return Some(LogicalType::Date);
    }
    if base == "TIME" || base == "TIME WITHOUT TIME ZONE" {
        return Some(LogicalType::Time);
    }
    if has("INT") && !has("INTERVAL") {
        return Some(LogicalType::Int64);
    }
    if has("CHAR") || has("CLOB") || has("TEXT") || has("INTERVAL") {
        let is_char = has("CHAR") && !has("VAR");
        let max_len = if has("CHAR") {
            first.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0)
        } else {
            None
        };
        return Some(LogicalType::Text {
            max_len,
            fixed: is_char && max_len.is_some(),
        });
    }
    if has("BLOB") || has("BINARY") || has("BYTEA") {
        let max_len = if has("BINARY") {
            first.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0)
        } else {
            None
        };
        return Some(LogicalType::Binary { max_len });
    }
    if has("REAL") || has("FLOA") || has("DOUB") {
        return Some(LogicalType::Float64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(ty: LogicalType) -> Column {
        Column {
            name: "c".into(),
            ty,
            nullable: true,
            db_type: String::new(),
            native: None,
        }
    }

    #[test]
    fn identifiers_are_quoted_and_nul_is_refused() {
        assert_eq!(quote_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(
            quote_ident("x; drop table y").unwrap(),
            "\"x; drop table y\""
        );
        assert!(matches!(quote_ident("a\0b"), Err(EngineError::Schema(_))));
        assert!(matches!(quote_ident(""), Err(EngineError::Schema(_))));
    }

    #[test]
    fn every_created_type_reads_back_as_the_same_logical_type() {
        let types = [
            LogicalType::Boolean,
            LogicalType::Int64,
            LogicalType::Float64,
            LogicalType::Decimal {
                precision: 38,
                scale: 10,
            },
            LogicalType::BigDecimal {
                precision: None,
                scale: None,
            },
            LogicalType::BigDecimal {
                precision: Some(50),
                scale: Some(5),
            },
            LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            LogicalType::Text {
                max_len: Some(20),
                fixed: false,
            },
            LogicalType::Text {
                max_len: Some(3),
                fixed: true,
            },
            LogicalType::Binary { max_len: None },
            LogicalType::Date,
            LogicalType::Time,
            LogicalType::Timestamp,
            LogicalType::TimestampTz,
            LogicalType::Uuid,
            LogicalType::Json,
        ];
        for ty in types {
            let ddl = column_ddl(&column(ty.clone())).unwrap();
            assert_eq!(logical_type(&ddl), Some(ty), "{ddl}");
        }
    }

    #[test]
    fn declared_types_follow_sqlites_affinity_rules() {
        assert_eq!(logical_type("BIGINT"), Some(LogicalType::Int64));
        assert_eq!(logical_type("unsigned big int"), Some(LogicalType::Int64));
        assert_eq!(logical_type("bool"), Some(LogicalType::Boolean));
        assert_eq!(logical_type("DOUBLE PRECISION"), Some(LogicalType::Float64));
        assert_eq!(
            logical_type("numeric(10, 2)"),
            Some(LogicalType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(
            logical_type("NVARCHAR(100)"),
            Some(LogicalType::Text {
                max_len: Some(100),
                fixed: false
            })
        );
        assert_eq!(logical_type("datetime"), Some(LogicalType::Timestamp));
        assert_eq!(logical_type(""), None);
        assert_eq!(logical_type("MONEY"), None);
    }
}
