//! PostgreSQL quoting, the one mapping of logical types to column DDL, and how driver errors
//! become engine errors.

use tokio_postgres::error::{ErrorPosition, SqlState};

use crate::engine::types::{Column, Family, LogicalType};
use crate::engine::EngineError;

/// PostgreSQL keeps at most this many bytes of an identifier (NAMEDATALEN - 1); longer names
/// would be truncated silently, so they are refused.
pub const MAX_IDENT_BYTES: usize = 63;

/// Largest `n` of `varchar(n)` / `char(n)`.
const MAX_CHAR_LEN: u32 = 10_485_760;

/// `"name"`, with embedded double quotes doubled.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// Refuse names PostgreSQL cannot hold exactly.
pub fn check_ident(what: &str, name: &str) -> Result<(), EngineError> {
    if name.is_empty() {
        return Err(EngineError::Schema(format!("the {what} name is empty")));
    }
    if name.contains('\0') {
        return Err(EngineError::Schema(format!(
            "the {what} name {name:?} contains a NUL character, which PostgreSQL cannot hold"
        )));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(EngineError::Schema(format!(
            "the {what} name {name:?} is {} bytes long; PostgreSQL allows at most {MAX_IDENT_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

/// The column type a sink creates for a logical type (precision, scale and length kept).
/// `PgRaw` types are checked against the target server before use (see `sink`).
pub fn ddl_type(ty: &LogicalType) -> String {
    match ty {
        LogicalType::Boolean => "boolean".into(),
        LogicalType::Int16 => "smallint".into(),
        LogicalType::Int32 => "integer".into(),
        LogicalType::Int64 => "bigint".into(),
        LogicalType::UInt64 => "numeric(20,0)".into(),
        LogicalType::Float32 => "real".into(),
        LogicalType::Float64 => "double precision".into(),
        LogicalType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        LogicalType::BigDecimal {
            precision: Some(p),
            scale: Some(s),
        } if (1..=1000).contains(p) && s <= p => format!("numeric({p},{s})"),
        LogicalType::BigDecimal { .. } => "numeric".into(),
        LogicalType::Text {
            max_len: Some(n),
            fixed,
        } if (1..=MAX_CHAR_LEN).contains(n) => {
            if *fixed {
                format!("char({n})")
            } else {
                format!("varchar({n})")
            }
        }
        LogicalType::Text { .. } => "text".into(),
        LogicalType::Binary { .. } => "bytea".into(),
        LogicalType::Date => "date".into(),
        LogicalType::Time => "time".into(),
        LogicalType::Timestamp => "timestamp".into(),
        LogicalType::TimestampTz => "timestamptz".into(),
        LogicalType::Uuid => "uuid".into(),
        // A PostgreSQL `json` source column reaches a PostgreSQL target as PgRaw `json`.
        LogicalType::Json => "jsonb".into(),
        // JSON text of an array that left PostgreSQL; kept as JSON.
        LogicalType::Array { .. } => "jsonb".into(),
        // ISO 8601 text (only a PostgreSQL source makes it, and towards PostgreSQL it sends
        // the interval itself as PgRaw).
        LogicalType::Interval => "text".into(),
        LogicalType::PgRaw { db_type, .. } => db_type.clone(),
        LogicalType::Other { .. } => "text".into(),
    }
}

/// The DDL type of a result column.
pub fn column_ddl_type(column: &Column) -> String {
    ddl_type(&column.ty)
}

/// `"name" type [NOT NULL]` for a created column: the source's own declaration when the source
/// is PostgreSQL too (a type of the source's own making, an enum or a domain, only when
/// `has_type` says the target has one of that name), else the logical type's mapping.
pub fn column_ddl(column: &Column, has_type: impl Fn(&str) -> bool) -> String {
    let declared = match column.native_for(Family::Postgres) {
        Some(native) if !native.user_defined || has_type(&native.ddl) => native.ddl.clone(),
        _ => column_ddl_type(column),
    };
    let mut ddl = format!("{} {declared}", quote_ident(&column.name));
    if !column.nullable {
        ddl.push_str(" NOT NULL");
    }
    ddl
}

/// Worth another attempt: connection loss, shutdown, deadlock, serialization failure.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || code == &SqlState::T_R_SERIALIZATION_FAILURE
                || code == &SqlState::T_R_DEADLOCK_DETECTED
                || code == &SqlState::ADMIN_SHUTDOWN
                || code == &SqlState::CRASH_SHUTDOWN
                || code == &SqlState::CANNOT_CONNECT_NOW
        }
        None => {
            if e.is_closed() {
                return true;
            }
            let mut source = std::error::Error::source(e);
            while let Some(err) = source {
                if err.downcast_ref::<std::io::Error>().is_some() {
                    return true;
                }
                source = err.source();
            }
            false
        }
    }
}

/// The database's own message, with detail, hint and position when it gives them.
/// `offset` is subtracted from positions (the length of text wrapped around the user's query).
pub fn message(e: &tokio_postgres::Error, offset: usize) -> String {
    let Some(db) = e.as_db_error() else {
        return super::error_chain(e);
    };
    let mut text = db.message().to_string();
    if let Some(ErrorPosition::Original(position)) = db.position() {
        let position = *position as usize;
        if position > offset {
            text.push_str(&format!(" (at character {})", position - offset));
        }
    }
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; DETAIL: {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; HINT: {hint}"));
    }
    if let Some(context) = db.where_() {
        text.push_str(&format!("; CONTEXT: {context}"));
    }
    text
}

/// A failure reading from the source (a query's statement refused in a read-only session is
/// `Refused`).
pub fn source_error(e: &tokio_postgres::Error, offset: usize) -> EngineError {
    if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) {
        return EngineError::Refused {
            read_only: true,
            message: message(e, offset),
        };
    }
    EngineError::Source {
        message: message(e, offset),
        transient: is_transient(e),
    }
}

/// A failure writing to the target.
pub fn target_error(e: &tokio_postgres::Error) -> EngineError {
    EngineError::Target {
        message: message(e, 0),
        transient: is_transient(e),
    }
}

/// Whether the server cancelled the statement (our own cancel request).
pub fn is_query_canceled(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::QUERY_CANCELED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("s", "t; drop"), "\"s\".\"t; drop\"");
    }

    #[test]
    fn names_too_long_or_with_nul_are_refused() {
        assert!(check_ident("table", &"x".repeat(63)).is_ok());
        assert!(matches!(
            check_ident("table", &"x".repeat(64)),
            Err(EngineError::Schema(_))
        ));
        assert!(matches!(
            check_ident("column", "a\0b"),
            Err(EngineError::Schema(_))
        ));
        // 21 three-byte characters are 63 bytes; one more is too many.
        assert!(check_ident("table", &"€".repeat(21)).is_ok());
        assert!(check_ident("table", &"€".repeat(22)).is_err());
    }

    #[test]
    fn logical_types_map_to_their_ddl() {
        assert_eq!(
            ddl_type(&LogicalType::Decimal {
                precision: 38,
                scale: 10
            }),
            "numeric(38,10)"
        );
        assert_eq!(
            ddl_type(&LogicalType::BigDecimal {
                precision: None,
                scale: None
            }),
            "numeric"
        );
        assert_eq!(
            ddl_type(&LogicalType::Text {
                max_len: Some(12),
                fixed: true
            }),
            "char(12)"
        );
        assert_eq!(
            ddl_type(&LogicalType::Text {
                max_len: Some(12),
                fixed: false
            }),
            "varchar(12)"
        );
        assert_eq!(ddl_type(&LogicalType::UInt64), "numeric(20,0)");
    }
}
