//! SQLite: opening database files (on a blocking thread) and reading the catalog.

pub mod dialect;
pub mod sink;
pub mod source;
pub mod values;

use rusqlite::{Connection, OpenFlags};

use super::{group_columns, ColumnInfo, ConnectError, ConnectSpec, SchemaInfo};

/// Open an existing database file for reading; never creates one.
fn open_existing(spec: &ConnectSpec) -> Result<Connection, ConnectError> {
    let path = spec
        .path
        .as_ref()
        .ok_or_else(|| ConnectError::Other("no database file path".into()))?;
    if !path.exists() {
        return Err(ConnectError::DatabaseNotFound(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| ConnectError::Other(format!("{}: {e}", path.display())))?;
    // Reading the schema fails on a file that is not a SQLite database.
    conn.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
        .map_err(|e| ConnectError::Other(format!("{}: {e}", path.display())))?;
    Ok(conn)
}

/// The database's own message for an error (with the position in the SQL when SQLite gives
/// one), and whether another attempt may succeed (the database was busy or locked).
pub(crate) fn error_message(e: &rusqlite::Error) -> (String, bool) {
    use rusqlite::ErrorCode;
    let transient = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    let message = match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqlInputError {
            msg, sql, offset, ..
        } => {
            let near: String = usize::try_from(*offset)
                .ok()
                .and_then(|o| sql.get(o..))
                .map(|rest| rest.chars().take(30).collect())
                .unwrap_or_default();
            format!("{msg} (at offset {offset}, near {near:?})")
        }
        other => other.to_string(),
    };
    (message, transient)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConnectError> + Send + 'static,
) -> Result<T, ConnectError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ConnectError::Other(format!("SQLite worker failed: {e}")))?
}

pub async fn server_version(spec: &ConnectSpec) -> Result<String, ConnectError> {
    let spec = spec.clone();
    blocking(move || {
        let conn = open_existing(&spec)?;
        let version: String = conn
            .query_row("SELECT sqlite_version()", [], |row| row.get(0))
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        Ok(format!("SQLite {version}"))
    })
    .await
}

pub async fn list_tables(
    spec: &ConnectSpec,
    schema: Option<&str>,
) -> Result<Vec<SchemaInfo>, ConnectError> {
    if schema.is_some_and(|s| s != "main") {
        return Ok(Vec::new());
    }
    let spec = spec.clone();
    blocking(move || {
        let conn = open_existing(&spec)?;
        let err = |e: rusqlite::Error| ConnectError::Other(e.to_string());
        let mut stmt = conn
            .prepare(
                "SELECT m.name, m.type, p.name, p.type, p.\"notnull\"
                 FROM sqlite_schema m, pragma_table_info(m.name) p
                 WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                 ORDER BY m.name, p.cid",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    "main".to_string(),
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    ColumnInfo {
                        name: row.get(2)?,
                        data_type: row.get(3)?,
                        nullable: row.get::<_, i64>(4)? == 0,
                    },
                ))
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok(group_columns(rows))
    })
    .await
}
