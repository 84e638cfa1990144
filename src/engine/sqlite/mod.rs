//! SQLite: opening database files (on a blocking thread) and reading the catalog.

pub mod affinity;
pub mod dialect;
pub mod sink;
pub mod source;
pub mod values;

use std::path::Path;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};

use tokio_util::sync::CancellationToken;

use super::batch::{SinkContext, SourceSpec};
use super::connector::{
    quoted_literal, standard_literal, Carrier, Connector, Literal, Registered, Scope, SourceReader,
};
use super::types::Column;
use super::EngineError;
use super::{group_columns, ColumnInfo, ConnectError, ConnectSpec, RelationInfo, SchemaInfo};

/// Open a database file the way every SQLite connection of Sluice is opened: statements may
/// reach no file but this one (no `ATTACH` of another file, no `VACUUM INTO`, no
/// `load_extension`, no moving SQLite's own directories), and a `read_only` spec may change
/// nothing (`PRAGMA query_only`, which it may not turn off).
pub(crate) fn open(
    path: &Path,
    flags: OpenFlags,
    spec: &ConnectSpec,
) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    if spec.read_only {
        conn.pragma_update(None, "query_only", true)?;
    }
    let read_only = spec.read_only;
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&ctx, read_only)));
    Ok(conn)
}

fn authorize(ctx: &AuthContext<'_>, read_only: bool) -> Authorization {
    match ctx.action {
        // VACUUM attaches a temporary database (""): the only file it may name.
        AuthAction::Attach { filename } if !(filename.is_empty() || filename == ":memory:") => {
            Authorization::Deny
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let moves_files = matches!(
                name.as_str(),
                "temp_store_directory" | "data_store_directory"
            );
            let lifts_read_only = read_only && name == "query_only" && pragma_value.is_some();
            if moves_files || lifts_read_only {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        _ => Authorization::Allow,
    }
}

/// Whether SQLite refused a statement through the authorizer (`not authorized`) or because
/// the session is read-only: `Some(true)` read-only, `Some(false)` not allowed.
pub(crate) fn refusal(e: &rusqlite::Error) -> Option<bool> {
    use rusqlite::ErrorCode;
    // Refused while preparing, the error is a plain SQLITE_ERROR with the authorizer's words.
    if let rusqlite::Error::SqlInputError { msg, .. } = e {
        return msg.starts_with("not authorized").then_some(false);
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::AuthorizationForStatementDenied) => Some(false),
        Some(ErrorCode::ReadOnly) => Some(true),
        _ => None,
    }
}

/// A statement of a query refused or broken off by SQLite, as the job's error.
pub(crate) fn source_error(e: &rusqlite::Error) -> super::EngineError {
    let (message, transient) = error_message(e);
    match refusal(e) {
        Some(false) => super::EngineError::Refused {
            read_only: false,
            message: format!(
                "not allowed: a statement may not reach a file other than the connection's \
                 own (ATTACH, VACUUM INTO), load an extension or move SQLite's directories \
                 (SQLite: {message})"
            ),
        },
        Some(true) => super::EngineError::Refused {
            read_only: true,
            message: format!("read-only: only admins' queries may change data ({message})"),
        },
        None => super::EngineError::Source { message, transient },
    }
}

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
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        spec,
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

/// SQLite as a kind of endpoint: a database file on the Sluice host.
pub static KIND: Registered = Registered {
    name: "sqlite",
    aliases: &["sqlite3"],
    connector: &Sqlite,
};

pub struct Sqlite;

impl Connector for Sqlite {
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError> {
        let mut defs = Vec::with_capacity(columns.len());
        for c in columns {
            defs.push(format!(
                "{} {}",
                dialect::quote_ident(&c.name)?,
                dialect::column_ddl(c)?
            ));
        }
        Ok(format!(
            "CREATE TABLE {} ({})",
            dialect::quote_ident(table)?,
            defs.join(", ")
        ))
    }

    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String> {
        match value {
            Literal::Timestamp { text, utc: true } => quoted_literal(&format!("{text}+00:00"), out),
            other => standard_literal(other, out)?,
        }
        Ok(())
    }

    fn is_server(&self) -> bool {
        false
    }

    fn quote_ident(&self, name: &str) -> Result<String, EngineError> {
        dialect::quote_ident(name)
    }

    fn text_type(&self) -> &'static str {
        "TEXT"
    }

    async fn server_version(&self, spec: &ConnectSpec) -> Result<String, ConnectError> {
        server_version(spec).await
    }

    async fn list_tables(
        &self,
        spec: &ConnectSpec,
        scope: Scope<'_>,
    ) -> Result<Vec<SchemaInfo>, ConnectError> {
        list_tables(spec, scope.schema(None)).await
    }

    /// The file's databases: `main` and those attached (`system`: `temp` too).
    async fn list_databases(
        &self,
        spec: &ConnectSpec,
        system: bool,
    ) -> Result<Vec<String>, ConnectError> {
        let spec = spec.clone();
        blocking(move || {
            let conn = open_existing(&spec)?;
            let err = |e: rusqlite::Error| ConnectError::Other(e.to_string());
            let mut stmt = conn
                .prepare("SELECT name FROM pragma_database_list ORDER BY seq")
                .map_err(err)?;
            let names = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            Ok(names
                .into_iter()
                .filter(|n| system || n != "temp")
                .collect())
        })
        .await
    }

    /// A SQLite database is its one schema: `database` itself, when the file has it.
    async fn list_schemas(
        &self,
        spec: &ConnectSpec,
        database: &str,
    ) -> Result<Vec<String>, ConnectError> {
        let names = Connector::list_databases(self, spec, true).await?;
        match names.into_iter().find(|n| n == database) {
            Some(name) => Ok(vec![name]),
            None => Err(ConnectError::DatabaseNotFound(format!(
                "no database {database:?} in this file"
            ))),
        }
    }

    /// A SQLite database is its one schema: `schema` must be `database`. SQLite keeps no
    /// estimates: rows, size and comment are `null`.
    async fn list_relations(
        &self,
        spec: &ConnectSpec,
        database: &str,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, ConnectError> {
        super::connector::database_as_schema(self, spec, database, schema).await?;
        let (spec, database) = (spec.clone(), database.replace('"', "\"\""));
        blocking(move || {
            let conn = open_existing(&spec)?;
            let err = |e: rusqlite::Error| ConnectError::Other(e.to_string());
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT name, type FROM \"{database}\".sqlite_schema
                     WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                     ORDER BY name"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(RelationInfo {
                        name: row.get(0)?,
                        kind: row.get(1)?,
                        row_estimate: None,
                        size_bytes: None,
                        comment: None,
                    })
                })
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            Ok(rows)
        })
        .await
    }

    async fn count_rows(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        limit: std::time::Duration,
    ) -> Result<u64, ConnectError> {
        super::connector::database_as_schema(self, spec, at.database, at.schema).await?;
        let spec = spec.clone();
        let (database, table) = (dialect::quote_ident(at.database), at.table.to_string());
        let database = database.map_err(|e| ConnectError::Other(e.to_string()))?;
        blocking(move || {
            use rusqlite::OptionalExtension;
            let conn = open_existing(&spec)?;
            let err = |e: rusqlite::Error| ConnectError::Other(e.to_string());
            let found: Option<i64> = conn
                .query_row(
                    &format!(
                        "SELECT 1 FROM {database}.sqlite_schema
                         WHERE type IN ('table', 'view') AND name = ?1"
                    ),
                    [&table],
                    |row| row.get(0),
                )
                .optional()
                .map_err(err)?;
            if found.is_none() {
                return Err(ConnectError::TableNotFound(format!(
                    "no table or view {table:?} in this file"
                )));
            }
            let quoted =
                dialect::quote_ident(&table).map_err(|e| ConnectError::Other(e.to_string()))?;
            // SQLite stops the statement when the handler says so.
            let deadline = std::time::Instant::now() + limit;
            conn.progress_handler(10_000, Some(move || std::time::Instant::now() > deadline));
            match conn.query_row(
                &format!("SELECT count(*) FROM {database}.{quoted}"),
                [],
                |row| row.get::<_, i64>(0),
            ) {
                Ok(count) => Ok(count.max(0) as u64),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::OperationInterrupted =>
                {
                    Err(ConnectError::Timeout(limit))
                }
                Err(e) => Err(err(e)),
            }
        })
        .await
    }

    /// The statement kept in `sqlite_schema`, with a table's indexes and triggers.
    async fn table_ddl(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        view: bool,
    ) -> Result<String, ConnectError> {
        super::connector::database_as_schema(self, spec, at.database, at.schema).await?;
        let spec = spec.clone();
        let database =
            dialect::quote_ident(at.database).map_err(|e| ConnectError::Other(e.to_string()))?;
        let (table, missing) = (
            at.table.to_string(),
            super::connector::no_such_relation(at, view),
        );
        blocking(move || {
            use rusqlite::OptionalExtension;
            let conn = open_existing(&spec)?;
            let err = |e: rusqlite::Error| ConnectError::Other(e.to_string());
            let kind = if view { "view" } else { "table" };
            let ddl: Option<String> = conn
                .query_row(
                    &format!(
                        "SELECT sql FROM {database}.sqlite_schema WHERE type = ?1 AND name = ?2"
                    ),
                    [kind, table.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(err)?;
            let Some(mut ddl) = ddl else {
                return Err(missing);
            };
            ddl.push(';');
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT sql FROM {database}.sqlite_schema
                     WHERE tbl_name = ?1 AND type IN ('index', 'trigger') AND sql IS NOT NULL
                     ORDER BY type, name"
                ))
                .map_err(err)?;
            let more = stmt
                .query_map([&table], |row| row.get::<_, String>(0))
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            for statement in more.iter().filter(|_| !view) {
                ddl.push_str(&format!("\n{statement};"));
            }
            Ok(ddl)
        })
        .await
    }

    async fn open_source(
        &self,
        spec: &ConnectSpec,
        source: &SourceSpec,
        carrier: Carrier,
    ) -> Result<Box<dyn SourceReader>, EngineError> {
        let query = source.query()?;
        Ok(Box::new(source::open(spec, query, carrier).await?))
    }

    async fn run_sink(&self, spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
        sink::run(spec, ctx).await
    }

    async fn execute(
        &self,
        spec: &ConnectSpec,
        sql: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<u64>, EngineError> {
        let (spec, sql, cancel) = (spec.clone(), sql.to_string(), cancel.clone());
        tokio::task::spawn_blocking(move || execute_blocking(&spec, &sql, &cancel))
            .await
            .map_err(|e| EngineError::Internal(format!("SQLite worker: {e}")))?
    }
}

/// SQLite: the file must exist; statements that write open it read-write.
fn execute_blocking(
    spec: &ConnectSpec,
    sql: &str,
    cancel: &CancellationToken,
) -> Result<Option<u64>, EngineError> {
    use rusqlite::OpenFlags;
    let path = spec
        .path
        .as_ref()
        .ok_or_else(|| EngineError::Internal("no database file path".into()))?;
    if !path.exists() {
        return Err(
            ConnectError::DatabaseNotFound(format!("{} does not exist", path.display())).into(),
        );
    }
    let error = |e: rusqlite::Error| source_error(&e);
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        spec,
    )
    .map_err(error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(error)?;
    let mut statement = conn.prepare(sql).map_err(error)?;
    if statement.column_count() > 0 {
        return Ok(None);
    }
    // A long statement is interrupted when the job is cancelled.
    let interrupt = conn.get_interrupt_handle();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let cancel = cancel.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !done.load(Ordering::SeqCst) {
                if cancel.is_cancelled() {
                    interrupt.interrupt();
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let result = statement.execute([]);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watcher.join();
    drop(statement);
    let cancelled = cancel.is_cancelled();
    match result {
        _ if cancelled => Err(EngineError::Cancelled),
        Ok(n) => Ok(Some(n as u64)),
        Err(e) => Err(error(e)),
    }
}
