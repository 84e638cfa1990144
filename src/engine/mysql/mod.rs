//! MySQL and MariaDB: connecting (with TLS per `sslMode`) and reading the catalog.

mod commit;
pub mod dialect;
mod encode;
mod load;
pub mod sink;
pub mod source;
mod values;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, IoError, OptsBuilder, SslOpts};

use tokio_util::sync::CancellationToken;

use super::batch::{SinkContext, SourceSpec};
use super::connector::{
    quoted_literal, standard_literal, Carrier, Connector, Literal, Registered, Scope, SourceReader,
};
use super::types::Column;
use super::EngineError;
use super::{
    group_columns, tls, ColumnInfo, ConnectError, ConnectSpec, RelationInfo, SchemaInfo, SslMode,
};

fn options(spec: &ConnectSpec, ssl: Option<SslOpts>) -> OptsBuilder {
    use secrecy::ExposeSecret;
    OptsBuilder::default()
        .ip_or_hostname(spec.host.clone())
        .tcp_port(spec.port)
        .user(Some(spec.username.clone()))
        .pass(
            spec.password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
        )
        .db_name(Some(spec.database.clone()))
        // Keep to the host the user named (TLS and server-side cancel depend on it).
        .prefer_socket(false)
        .tcp_keepalive(Some(super::KEEPALIVE_IDLE.min(spec.timeouts.io)))
        .ssl_opts(ssl)
        .init(if spec.read_only {
            vec!["SET SESSION TRANSACTION READ ONLY"]
        } else {
            Vec::new()
        })
}

fn ssl_opts(spec: &ConnectSpec) -> Option<SslOpts> {
    let roots = |opts: SslOpts| match &spec.ssl_root_cert {
        Some(path) => opts.with_root_certs(vec![path.clone().into()]),
        None => opts,
    };
    match spec.ssl_mode {
        SslMode::Disable => None,
        SslMode::Prefer | SslMode::Require => {
            Some(SslOpts::default().with_danger_accept_invalid_certs(true))
        }
        SslMode::VerifyCa => Some(roots(
            SslOpts::default().with_danger_skip_domain_validation(true),
        )),
        SslMode::VerifyFull => Some(roots(SslOpts::default())),
    }
}

/// Open a connection within `spec.timeouts.connect` (TCP, TLS and log-in together), with TCP
/// keepalive. `prefer` falls back to a plain connection when the server has no TLS. A
/// `read_only` spec makes every transaction of the session read-only.
pub async fn connect(spec: &ConnectSpec) -> Result<Conn, ConnectError> {
    let limit = spec.timeouts.connect;
    match tokio::time::timeout(limit, connect_unbounded(spec)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

async fn connect_unbounded(spec: &ConnectSpec) -> Result<Conn, ConnectError> {
    let target = format!("{}:{}", spec.host, spec.port);
    match Conn::new(options(spec, ssl_opts(spec))).await {
        Ok(conn) => Ok(conn),
        Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer))
            if spec.ssl_mode == SslMode::Prefer =>
        {
            Conn::new(options(spec, None))
                .await
                .map_err(|e| classify(&e, &target))
        }
        Err(e) => Err(classify(&e, &target)),
    }
}

/// Open a connection and run `setup` (session variables) on it.
pub async fn connect_with(spec: &ConnectSpec, setup: &[&str]) -> Result<Conn, ConnectError> {
    let mut conn = connect(spec).await?;
    for statement in setup {
        conn.query_drop(*statement).await.map_err(query_error)?;
    }
    Ok(conn)
}

/// Stop what connection `id` is running (`KILL QUERY` from a connection of its own).
pub(crate) async fn kill_query(spec: &ConnectSpec, id: u32) {
    if let Ok(mut killer) = connect(spec).await {
        let _ = killer.query_drop(format!("KILL QUERY {id}")).await;
        let _ = killer.disconnect().await;
    }
}

/// The server's own words for a failed statement (as the mysql client prints them), and
/// whether another attempt may succeed: connection loss, server shutdown, deadlock, lock wait.
pub fn describe(e: &mysql_async::Error) -> (String, bool) {
    match e {
        mysql_async::Error::Server(s) => (
            format!("ERROR {} ({}): {}", s.code, s.state, s.message),
            matches!(
                s.code,
                1053 | 1205 | 1213 | 1927 | 2006 | 2013 | 1040 | 1152 | 1158..=1161
            ),
        ),
        mysql_async::Error::Io(_) => (super::postgres::error_chain(e), true),
        mysql_async::Error::Driver(DriverError::ConnectionClosed) => {
            (super::postgres::error_chain(e), true)
        }
        other => (super::postgres::error_chain(other), false),
    }
}

/// A failure reading from the source (a statement refused in a read-only session is
/// `Refused`).
pub(crate) fn source_error(e: &mysql_async::Error) -> super::EngineError {
    let (message, transient) = describe(e);
    match e {
        // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        mysql_async::Error::Server(s) if s.code == 1792 => super::EngineError::Refused {
            read_only: true,
            message,
        },
        _ => super::EngineError::Source { message, transient },
    }
}

pub(super) fn target_error(e: &mysql_async::Error) -> EngineError {
    let (message, transient) = describe(e);
    EngineError::Target { message, transient }
}

/// A statement on the target, bounded by the I/O timeout, its error in the engine's terms.
pub(super) trait OnTarget<T>:
    std::future::Future<Output = Result<T, mysql_async::Error>> + Sized
{
    async fn on_target(self, io: std::time::Duration) -> Result<T, EngineError> {
        super::within(io, "target", async {
            self.await.map_err(|e| target_error(&e))
        })
        .await
    }
}

impl<T, F> OnTarget<T> for F where F: std::future::Future<Output = Result<T, mysql_async::Error>> {}

/// Sort a driver error into what the user can act on.
pub fn classify(e: &mysql_async::Error, target: &str) -> ConnectError {
    match e {
        mysql_async::Error::Server(server) => match server.code {
            1044 | 1045 | 1698 => ConnectError::Auth(server.message.clone()),
            1049 => ConnectError::DatabaseNotFound(server.message.clone()),
            _ => ConnectError::Other(server.message.clone()),
        },
        mysql_async::Error::Io(IoError::Io(io)) => ConnectError::from_io(io, target),
        mysql_async::Error::Io(IoError::Tls(t)) => {
            ConnectError::Tls(tls::explain(&super::postgres::error_chain(t)))
        }
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => ConnectError::Tls(
            format!("{target} does not offer TLS; use sslMode \"disable\" or \"prefer\""),
        ),
        other => ConnectError::Other(super::postgres::error_chain(other)),
    }
}

fn query_error(e: mysql_async::Error) -> ConnectError {
    ConnectError::Other(super::postgres::error_chain(&e))
}

pub async fn server_version(spec: &ConnectSpec) -> Result<String, ConnectError> {
    let mut conn = connect(spec).await?;
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(query_error)?;
    let _ = conn.disconnect().await;
    Ok(version.unwrap_or_default())
}

pub async fn list_tables(
    spec: &ConnectSpec,
    schema: Option<&str>,
) -> Result<Vec<SchemaInfo>, ConnectError> {
    let mut conn = connect(spec).await?;
    let rows: Vec<(String, String, String, String, String, String)> = conn
        .exec(
            "SELECT c.TABLE_SCHEMA, c.TABLE_NAME,
                    IF(t.TABLE_TYPE = 'VIEW', 'view', 'table'),
                    c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE
             FROM information_schema.COLUMNS c
             JOIN information_schema.TABLES t
               ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
             WHERE c.TABLE_SCHEMA NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys')
               AND (? IS NULL OR c.TABLE_SCHEMA = ?)
             ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
            (schema, schema),
        )
        .await
        .map_err(query_error)?;
    let _ = conn.disconnect().await;
    Ok(group_columns(rows.into_iter().map(
        |(schema, table, kind, name, data_type, nullable)| {
            (
                schema,
                table,
                kind,
                ColumnInfo {
                    name,
                    data_type,
                    nullable: nullable == "YES",
                },
            )
        },
    )))
}

/// The server's own databases, listed only when asked for.
const SYSTEM_DATABASES: &[&str] = &["information_schema", "mysql", "performance_schema", "sys"];

/// MySQL and MariaDB as kinds of endpoint (one connector).
pub static MYSQL: Registered = Registered {
    name: "mysql",
    aliases: &[],
    connector: &MySql,
};
pub static MARIADB: Registered = Registered {
    name: "mariadb",
    aliases: &[],
    connector: &MySql,
};

pub struct MySql;

impl Connector for MySql {
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError> {
        dialect::check_ident("table", table)?;
        for c in columns {
            dialect::check_ident("column", &c.name)?;
        }
        Ok(format!(
            "CREATE TABLE {} ({}) CHARACTER SET utf8mb4",
            dialect::quote(table),
            dialect::column_definitions(columns).join(", ")
        ))
    }

    /// Backslashes escape in MySQL's string literals (the default `sql_mode`): a backslash
    /// in a value is doubled.
    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String> {
        match value {
            Literal::Text(t) | Literal::Timestamp { text: t, .. } if t.contains('\\') => {
                quoted_literal(&t.replace('\\', "\\\\"), out)
            }
            other => standard_literal(other, out)?,
        }
        Ok(())
    }

    fn is_server(&self) -> bool {
        true
    }

    fn defaults(&self) -> (u16, &'static str) {
        (3306, "root")
    }

    fn quote_ident(&self, name: &str) -> Result<String, EngineError> {
        Ok(dialect::quote(name))
    }

    fn text_type(&self) -> &'static str {
        "CHAR"
    }

    async fn server_version(&self, spec: &ConnectSpec) -> Result<String, ConnectError> {
        server_version(spec).await
    }

    /// A MySQL connection is to one database, though it sees the server's others.
    async fn list_tables(
        &self,
        spec: &ConnectSpec,
        scope: Scope<'_>,
    ) -> Result<Vec<SchemaInfo>, ConnectError> {
        let default = Some(spec.database.as_str()).filter(|d| !d.is_empty());
        list_tables(spec, scope.schema(default)).await
    }

    /// The databases the user can see (`system`: the server's own too).
    async fn list_databases(
        &self,
        spec: &ConnectSpec,
        system: bool,
    ) -> Result<Vec<String>, ConnectError> {
        let mut conn = connect(spec).await?;
        let names: Vec<String> = conn.query("SHOW DATABASES").await.map_err(query_error)?;
        let _ = conn.disconnect().await;
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| system || !SYSTEM_DATABASES.contains(&n.to_ascii_lowercase().as_str()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// A MySQL database is its one schema: `database` itself, when the user can see it.
    async fn list_schemas(
        &self,
        spec: &ConnectSpec,
        database: &str,
    ) -> Result<Vec<String>, ConnectError> {
        let mut conn = connect(spec).await?;
        let found: Option<String> = conn
            .exec_first(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (database,),
            )
            .await
            .map_err(query_error)?;
        let _ = conn.disconnect().await;
        match found {
            Some(name) => Ok(vec![name]),
            None => Err(ConnectError::DatabaseNotFound(format!(
                "no database {database:?} on this server"
            ))),
        }
    }

    /// A MySQL database is its one schema: `schema` must be `database`.
    async fn list_relations(
        &self,
        spec: &ConnectSpec,
        database: &str,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, ConnectError> {
        super::connector::database_as_schema(self, spec, database, schema).await?;
        let mut conn = connect(spec).await?;
        type Row = (String, String, Option<u64>, Option<u64>, String);
        let rows: Vec<Row> = conn
            .exec(
                "SELECT TABLE_NAME, IF(TABLE_TYPE = 'VIEW', 'view', 'table'), TABLE_ROWS,
                        DATA_LENGTH + INDEX_LENGTH, TABLE_COMMENT
                 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1",
                (database,),
            )
            .await
            .map_err(query_error)?;
        let _ = conn.disconnect().await;
        Ok(rows
            .into_iter()
            .map(|(name, kind, rows, size, comment)| {
                let view = kind == "view";
                RelationInfo {
                    name,
                    row_estimate: rows.filter(|_| !view).map(|r| r as i64),
                    size_bytes: size.filter(|_| !view).map(|b| b as i64),
                    comment: Some(comment).filter(|c| !c.is_empty() && !view),
                    kind,
                }
            })
            .collect())
    }

    async fn count_rows(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        limit: std::time::Duration,
    ) -> Result<u64, ConnectError> {
        super::connector::database_as_schema(self, spec, at.database, at.schema).await?;
        let mut conn = connect(spec).await?;
        let found: Option<String> = conn
            .exec_first(
                "SELECT TABLE_NAME FROM information_schema.TABLES
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (at.database, at.table),
            )
            .await
            .map_err(query_error)?;
        if found.is_none() {
            let _ = conn.disconnect().await;
            return Err(ConnectError::TableNotFound(format!(
                "no table or view {:?} in database {:?}",
                at.table, at.database
            )));
        }
        // MariaDB stops the statement itself; MySQL has no such setting (the caller's timeout
        // then ends the wait).
        let _ = conn
            .query_drop(format!(
                "SET SESSION max_statement_time = {}",
                limit.as_secs_f64()
            ))
            .await;
        let sql = format!(
            "SELECT COUNT(*) FROM {}.{}",
            dialect::quote(at.database),
            dialect::quote(at.table)
        );
        let counted: Result<Option<u64>, _> = conn.query_first(sql).await;
        let _ = conn.disconnect().await;
        match counted {
            Ok(count) => Ok(count.unwrap_or(0)),
            // ER_STATEMENT_TIMEOUT
            Err(mysql_async::Error::Server(e)) if e.code == 1969 => {
                Err(ConnectError::Timeout(limit))
            }
            Err(e) => Err(query_error(e)),
        }
    }

    /// `SHOW CREATE TABLE` / `SHOW CREATE VIEW`, as the server prints it.
    async fn table_ddl(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        view: bool,
    ) -> Result<String, ConnectError> {
        super::connector::database_as_schema(self, spec, at.database, at.schema).await?;
        let mut conn = connect(spec).await?;
        let kind: Option<String> = conn
            .exec_first(
                "SELECT TABLE_TYPE FROM information_schema.TABLES
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (at.database, at.table),
            )
            .await
            .map_err(query_error)?;
        if kind.map(|k| k == "VIEW") != Some(view) {
            let _ = conn.disconnect().await;
            return Err(super::connector::no_such_relation(at, view));
        }
        let what = if view { "VIEW" } else { "TABLE" };
        let sql = format!(
            "SHOW CREATE {what} {}.{}",
            dialect::quote(at.database),
            dialect::quote(at.table)
        );
        let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(query_error)?;
        let _ = conn.disconnect().await;
        row.and_then(|r| r.get::<String, _>(1))
            .ok_or_else(|| super::connector::no_such_relation(at, view))
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
        execute(spec, sql, cancel).await
    }
}

/// Prepare `sql`; when it returns no rows, run it and answer the affected rows; `None` when it
/// returns rows (the caller reads them with a source).
///
/// # Cancel safety
/// On `cancel` the statement is stopped on the server (`KILL QUERY`).
async fn execute(
    spec: &ConnectSpec,
    sql: &str,
    cancel: &CancellationToken,
) -> Result<Option<u64>, EngineError> {
    use mysql_async::prelude::Queryable;
    let mut conn = connect(spec).await?;
    let error = |e: mysql_async::Error| source_error(&e);
    let id = conn.id();
    // Statements that cannot be prepared (some DDL) are run as text.
    let returns_rows = match conn.prep(sql).await {
        Ok(statement) => {
            let rows = !statement.columns().is_empty();
            let _ = conn.close(statement).await;
            rows
        }
        Err(mysql_async::Error::Server(s)) if s.code == 1295 => false,
        Err(e) => return Err(error(e)),
    };
    if returns_rows {
        return Ok(None);
    }
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            let _ = tokio::time::timeout(super::CANCEL_GRACE, kill_query(spec, id)).await;
            Err(EngineError::Cancelled)
        }
        done = conn.query_iter(sql) => match done {
            Ok(result) => {
                let affected = result.affected_rows();
                drop(result);
                Ok(Some(affected))
            }
            Err(e) => Err(error(e)),
        },
    };
    let _ = conn.disconnect().await;
    outcome
}
