//! MySQL/MariaDB dialect: identifier quoting and the two type mapping tables (result column
//! metadata → logical type, logical type → DDL type).

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::Column as MyColumn;

use crate::engine::types::{Column, Family, LogicalType};
use crate::engine::EngineError;

/// MySQL's limit for database, table and column names, in characters.
pub const MAX_IDENT_CHARS: usize = 64;

/// Quote an identifier: backticks, with backticks inside doubled.
pub fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// `db`.`table`, or `table` alone when there is no database.
pub fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote(s), quote(table)),
        None => quote(table),
    }
}

/// Reject a name MySQL cannot hold (empty, NUL, more than 64 characters).
pub fn check_ident(what: &str, name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(EngineError::Schema(format!("the {what} name is empty")));
    }
    if name.contains('\0') {
        return Err(EngineError::Schema(format!(
            "the {what} name {name:?} contains a NUL character, which MySQL does not allow"
        )));
    }
    if name.chars().count() > MAX_IDENT_CHARS {
        return Err(EngineError::Schema(format!(
            "the {what} name {name:?} is longer than MySQL's {MAX_IDENT_CHARS} characters"
        )));
    }
    Ok(())
}

/// Bytes per character of a result column's character set (results arrive in the
/// connection's character set, utf8mb4, or binary).
fn max_bytes_per_char(charset: u16) -> u32 {
    match charset {
        63 => 1,
        // utf8mb3 collations.
        33 | 83 | 192..=215 | 223 => 3,
        // latin1 and other single-byte sets the server might still report.
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 | 11 | 65 => 1,
        _ => 4,
    }
}

/// The source mapping table: a result column's metadata → (logical type, type as MySQL names
/// it). `json_column` says the column is a MariaDB JSON column (longtext with a `json_valid`
/// check), which the protocol cannot tell apart from longtext.
///
/// | MySQL                         | logical                       |
/// |-------------------------------|-------------------------------|
/// | tinyint(1)                    | Boolean                       |
/// | tinyint, tinyint unsigned     | Int16                         |
/// | smallint / unsigned           | Int16 / Int32                 |
/// | mediumint (both)              | Int32                         |
/// | int / unsigned                | Int32 / Int64                 |
/// | bigint / unsigned             | Int64 / UInt64                |
/// | year                          | Int16                         |
/// | float / double                | Float32 / Float64             |
/// | decimal(p,s)                  | Decimal{p,s} (p ≤ 38), else BigDecimal |
/// | date / datetime / timestamp   | Date / Timestamp / TimestampTz (session time zone UTC) |
/// | time                          | Time (values outside 00:00..24:00 fail) |
/// | bit(1) / bit(n)               | Boolean / Binary              |
/// | char(n) / varchar(n)          | Text{n} (binary charset: Binary{n}) |
/// | text types / blob types       | Text / Binary                 |
/// | json (MySQL; MariaDB when detectable) | Json                  |
/// | enum / set                    | Text                          |
/// | geometry                      | Binary (MySQL's internal WKB) |
/// | NULL literal                  | Text                          |
pub fn source_type(col: &MyColumn, json_column: bool) -> (LogicalType, String) {
    let flags = col.flags();
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let sign = if unsigned { " unsigned" } else { "" };
    let len = col.column_length();
    let binary = col.character_set() == 63;
    let chars = len / max_bytes_per_char(col.character_set());
    let frac = |name: &str| {
        let d = col.decimals();
        if d > 0 && d <= 6 {
            format!("{name}({d})")
        } else {
            name.to_string()
        }
    };
    use ColumnType::*;
    match col.column_type() {
        MYSQL_TYPE_TINY if len == 1 && !unsigned => (LogicalType::Boolean, "tinyint(1)".into()),
        MYSQL_TYPE_TINY => (LogicalType::Int16, format!("tinyint{sign}")),
        MYSQL_TYPE_SHORT if unsigned => (LogicalType::Int32, "smallint unsigned".into()),
        MYSQL_TYPE_SHORT => (LogicalType::Int16, "smallint".into()),
        MYSQL_TYPE_INT24 => (LogicalType::Int32, format!("mediumint{sign}")),
        MYSQL_TYPE_LONG if unsigned => (LogicalType::Int64, "int unsigned".into()),
        MYSQL_TYPE_LONG => (LogicalType::Int32, "int".into()),
        MYSQL_TYPE_LONGLONG if unsigned => (LogicalType::UInt64, "bigint unsigned".into()),
        MYSQL_TYPE_LONGLONG => (LogicalType::Int64, "bigint".into()),
        MYSQL_TYPE_YEAR => (LogicalType::Int16, "year".into()),
        MYSQL_TYPE_FLOAT => (LogicalType::Float32, "float".into()),
        MYSQL_TYPE_DOUBLE => (LogicalType::Float64, "double".into()),
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => {
            let scale = u32::from(col.decimals());
            // The display length counts the sign and the decimal point.
            let precision = len
                .saturating_sub(u32::from(scale > 0))
                .saturating_sub(u32::from(!unsigned));
            let db_type = format!("decimal({precision},{scale}){sign}");
            if (1..=38).contains(&precision) && scale <= precision {
                (
                    LogicalType::Decimal {
                        precision: precision as u8,
                        scale: scale as i8,
                    },
                    db_type,
                )
            } else {
                (
                    LogicalType::BigDecimal {
                        precision: Some(precision),
                        scale: Some(scale),
                    },
                    db_type,
                )
            }
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => (LogicalType::Date, "date".into()),
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => (LogicalType::Timestamp, frac("datetime")),
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
            (LogicalType::TimestampTz, frac("timestamp"))
        }
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => (LogicalType::Time, frac("time")),
        MYSQL_TYPE_BIT if len <= 1 => (LogicalType::Boolean, "bit(1)".into()),
        MYSQL_TYPE_BIT => (
            LogicalType::Binary {
                max_len: Some(len.div_ceil(8)),
            },
            format!("bit({len})"),
        ),
        MYSQL_TYPE_JSON => (LogicalType::Json, "json".into()),
        MYSQL_TYPE_ENUM => (text(None, false), "enum".into()),
        MYSQL_TYPE_SET => (text(None, false), "set".into()),
        MYSQL_TYPE_STRING if flags.contains(ColumnFlags::ENUM_FLAG) => {
            (text(Some(chars), false), "enum".into())
        }
        MYSQL_TYPE_STRING if flags.contains(ColumnFlags::SET_FLAG) => {
            (text(Some(chars), false), "set".into())
        }
        MYSQL_TYPE_STRING if binary => (
            LogicalType::Binary {
                max_len: declared(len),
            },
            format!("binary({len})"),
        ),
        MYSQL_TYPE_STRING => (text(Some(chars), true), format!("char({chars})")),
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING if binary => (
            LogicalType::Binary {
                max_len: declared(len),
            },
            format!("varbinary({len})"),
        ),
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
            (text(Some(chars), false), format!("varchar({chars})"))
        }
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB => {
            let size = match chars {
                0..=255 => "tiny",
                256..=65_535 => "",
                65_536..=16_777_215 => "medium",
                _ => "long",
            };
            if binary {
                (LogicalType::Binary { max_len: None }, format!("{size}blob"))
            } else if json_column {
                (LogicalType::Json, "json".into())
            } else {
                (text(None, false), format!("{size}text"))
            }
        }
        MYSQL_TYPE_GEOMETRY => (LogicalType::Binary { max_len: None }, "geometry".into()),
        MYSQL_TYPE_NULL => (text(None, false), "null".into()),
        MYSQL_TYPE_VECTOR => (LogicalType::Binary { max_len: None }, "vector".into()),
        other => (
            LogicalType::Other {
                db_type: format!("{other:?}"),
            },
            format!("{other:?}"),
        ),
    }
}

/// A declared length only when it is one a column can have (expressions such as
/// `CAST(NULL AS CHAR)` or `GROUP_CONCAT` report 0 or many megabytes).
fn declared(n: u32) -> Option<u32> {
    (1..=65_535).contains(&n).then_some(n)
}

fn text(max_len: Option<u32>, fixed: bool) -> LogicalType {
    LogicalType::Text {
        max_len: max_len.and_then(declared),
        fixed,
    }
}

/// Largest `varchar(n)` we declare (utf8mb4: 4 bytes a character, 65,535 bytes a row).
const MAX_VARCHAR_CHARS: u32 = 16_383;
/// Bytes MySQL allows for all the non-LOB columns of a row.
const ROW_BYTES: u64 = 65_535;

/// The largest digits `decimal(65,30)` / `decimal(p,s)` can take for a BigDecimal column.
pub fn big_decimal_shape(precision: Option<u32>, scale: Option<u32>) -> (u32, u32) {
    match (precision, scale) {
        (Some(p), Some(s)) if (1..=65).contains(&p) && s <= 30 && s <= p => (p, s),
        _ => (65, 30),
    }
}

/// The sink mapping table: logical type → MySQL column type.
///
/// | logical            | MySQL                                             |
/// |--------------------|---------------------------------------------------|
/// | Boolean            | tinyint(1)                                        |
/// | Int16/Int32/Int64  | smallint / int / bigint                           |
/// | UInt64             | bigint unsigned                                   |
/// | Float32/Float64    | float / double                                    |
/// | Decimal{p,s}       | decimal(p,s)                                      |
/// | BigDecimal         | decimal(p,s) when p ≤ 65 and s ≤ 30, else decimal(65,30) |
/// | Text{n}            | char(n) (n ≤ 255) / varchar(n) (n ≤ 16383) / longtext |
/// | Binary{n}          | varbinary(n) (n ≤ 65532) / longblob               |
/// | Date / Time        | date / time(6)                                    |
/// | Timestamp          | datetime(6)                                       |
/// | TimestampTz        | datetime(6), holding UTC                          |
/// | Uuid               | char(36)                                          |
/// | Json / Array       | json                                              |
/// | Interval           | text (ISO 8601)                                   |
/// | PgRaw              | longblob                                          |
/// | Other              | longtext                                          |
pub fn ddl_type(ty: &LogicalType) -> String {
    match ty {
        LogicalType::Boolean => "tinyint(1)".into(),
        LogicalType::Int16 => "smallint".into(),
        LogicalType::Int32 => "int".into(),
        LogicalType::Int64 => "bigint".into(),
        LogicalType::UInt64 => "bigint unsigned".into(),
        LogicalType::Float32 => "float".into(),
        LogicalType::Float64 => "double".into(),
        LogicalType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        LogicalType::BigDecimal { precision, scale } => {
            let (p, s) = big_decimal_shape(*precision, *scale);
            format!("decimal({p},{s})")
        }
        LogicalType::Text {
            max_len: Some(n),
            fixed,
        } if *n >= 1 && *n <= MAX_VARCHAR_CHARS => {
            if *fixed && *n <= 255 {
                format!("char({n})")
            } else {
                format!("varchar({n})")
            }
        }
        LogicalType::Text { .. } | LogicalType::Other { .. } => "longtext".into(),
        LogicalType::Binary { max_len: Some(n) } if *n >= 1 && *n <= 65_532 => {
            format!("varbinary({n})")
        }
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => "longblob".into(),
        LogicalType::Date => "date".into(),
        LogicalType::Time => "time(6)".into(),
        LogicalType::Timestamp | LogicalType::TimestampTz => "datetime(6)".into(),
        LogicalType::Uuid => "char(36)".into(),
        LogicalType::Json | LogicalType::Array { .. } => "json".into(),
        LogicalType::Interval => "text".into(),
    }
}

/// Worst-case bytes a column takes in MySQL's 65,535-byte row limit.
fn row_bytes(ddl: &str, ty: &LogicalType) -> u64 {
    match ty {
        LogicalType::Text {
            max_len: Some(n), ..
        } if ddl.starts_with("varchar") => u64::from(*n) * 4 + 2,
        LogicalType::Text {
            max_len: Some(n), ..
        } if ddl.starts_with("char") => u64::from(*n) * 4,
        LogicalType::Binary { max_len: Some(n) } if ddl.starts_with("varbinary") => {
            u64::from(*n) + 2
        }
        LogicalType::Uuid => 144,
        _ => 16,
    }
}

/// The type a created column gets: the source's own declaration when it is MySQL/MariaDB too
/// (`COLUMN_TYPE`, exactly), else the logical type's mapping.
pub fn column_type(column: &Column) -> String {
    match column.native_for(Family::MySql) {
        Some(native) => native.ddl.clone(),
        None => ddl_type(&column.ty),
    }
}

/// `(precision, scale)` of a `decimal(p,s)` declaration.
pub fn decimal_shape(ddl: &str) -> Option<(u64, u64)> {
    let inner = ddl.strip_prefix("decimal(")?.split(')').next()?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

/// Column definitions for CREATE TABLE. Declared lengths are kept; when the row would pass
/// MySQL's 65,535-byte limit, the widest varchar/varbinary columns become longtext/longblob.
/// NULL is said out loud: with `explicit_defaults_for_timestamp` off, a bare `timestamp` would
/// be NOT NULL with a default.
pub fn column_definitions(columns: &[Column]) -> Vec<String> {
    let mut ddl: Vec<String> = columns.iter().map(column_type).collect();
    loop {
        let sizes: Vec<u64> = ddl
            .iter()
            .zip(columns)
            .map(|(d, c)| row_bytes(d, &c.ty))
            .collect();
        if sizes.iter().sum::<u64>() <= ROW_BYTES - 1024 {
            break;
        }
        let (widest, _) = sizes
            .iter()
            .enumerate()
            .rev()
            .max_by_key(|(_, s)| **s)
            .expect("columns is not empty");
        if sizes[widest] <= 16 {
            break;
        }
        ddl[widest] = match columns[widest].ty {
            LogicalType::Binary { .. } => "longblob".into(),
            _ => "longtext".into(),
        };
    }
    ddl.into_iter()
        .zip(columns)
        .map(|(ty, c)| {
            let null = if c.nullable { " NULL" } else { " NOT NULL" };
            format!("{} {ty}{null}", quote(&c.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_backticks_doubled() {
        assert_eq!(quote("a`b"), "`a``b`");
        assert_eq!(quote("drop table x; --"), "`drop table x; --`");
        assert_eq!(qualified(Some("d`b"), "t"), "`d``b`.`t`");
        assert!(check_ident("table", "a\0b").is_err());
        assert!(check_ident("table", &"é".repeat(64)).is_ok());
        assert!(check_ident("table", &"é".repeat(65)).is_err());
    }

    #[test]
    fn wide_varchar_columns_fall_back_to_longtext_past_the_row_limit() {
        let col = |name: &str, n| Column {
            name: name.into(),
            ty: LogicalType::Text {
                max_len: Some(n),
                fixed: false,
            },
            nullable: true,
            db_type: String::new(),
            native: None,
        };
        let defs = column_definitions(&[col("a", 10_000), col("b", 10_000), col("c", 10)]);
        assert_eq!(defs[0], "`a` longtext NULL");
        assert_eq!(defs[1], "`b` varchar(10000) NULL");
        assert_eq!(defs[2], "`c` varchar(10) NULL");
    }
}
