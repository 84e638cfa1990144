//! The connector contract: what every kind of endpoint implements in its own folder under
//! `src/engine/` (connection test, catalog, sources, sinks, statements, quoting), and what a
//! connection to one is (`ConnectSpec`). The kinds themselves are listed in `registry`.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::batch::{SinkContext, SourceContext, SourceSpec};
use super::error::{ConnectError, EngineError};
use super::types::Column;
use crate::catalog::{RelationInfo, SchemaInfo};

/// TLS to the database server (libpq's words; the same for MySQL/MariaDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain connection.
    Disable,
    /// TLS when the server offers it, without certificate checks; else plain.
    #[default]
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS; the certificate chain is checked against the trusted roots, not the host name.
    VerifyCa,
    /// TLS; chain and host name are checked.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "disable" | "disabled" => Some(Self::Disable),
            "prefer" | "preferred" => Some(Self::Prefer),
            "require" | "required" => Some(Self::Require),
            "verify-ca" | "verify_ca" => Some(Self::VerifyCa),
            "verify-full" | "verify_full" | "verify_identity" => Some(Self::VerifyFull),
            _ => None,
        }
    }

    pub const WORDS: &'static str = "disable, prefer, require, verify-ca, verify-full";
}

/// TCP keepalive on every connection to a user's database: the first probe after this long
/// without traffic (or after the I/O timeout, if shorter), then every `KEEPALIVE_INTERVAL`,
/// `KEEPALIVE_RETRIES` times.
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const KEEPALIVE_RETRIES: u32 = 3;

/// How long Sluice waits on a user's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting: TCP, TLS and the log-in together.
    pub connect: Duration,
    /// Any wait on an open connection: an answer, the next rows, a write taken.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(600),
        }
    }
}

/// Everything needed to open a connection to a user's database.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Option<SecretString>,
    /// Database file (sqlite).
    pub path: Option<PathBuf>,
    pub ssl_mode: SslMode,
    /// Extra trusted CA certificates (PEM) for `verify-ca` / `verify-full`.
    pub ssl_root_cert: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// The session may not change data (queries of users who are not admins): PostgreSQL
    /// `default_transaction_read_only`, MySQL `SET SESSION TRANSACTION READ ONLY`, SQLite
    /// `PRAGMA query_only`.
    pub read_only: bool,
}

/// One registered kind.
pub struct Registered {
    /// As stored and answered (`postgresql`).
    pub name: &'static str,
    /// Other spellings accepted as input (`postgres`, `pg`).
    pub aliases: &'static [&'static str],
    pub connector: &'static dyn DynConnector,
}

/// A kind of endpoint (PostgreSQL, MySQL, MariaDB, SQLite, …): a registered connector.
#[derive(Clone, Copy)]
pub struct DbKind(&'static Registered);

impl DbKind {
    /// A kind for its registry entry (see `registry`).
    pub(crate) const fn of(entry: &'static Registered) -> Self {
        DbKind(entry)
    }

    /// The canonical name, as stored and answered.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    pub fn connector(self) -> &'static dyn DynConnector {
        self.0.connector
    }

    /// Whether connections name a server (host, port, database, user) rather than a file.
    pub fn is_server(self) -> bool {
        self.connector().is_server()
    }
}

impl PartialEq for DbKind {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for DbKind {}

impl std::fmt::Debug for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

/// How a source hands values to a sink: the logical types' portable forms, or PostgreSQL's
/// binary values as they are (arrays, intervals and other built-ins copied bit for bit) when
/// the sink is PostgreSQL. A sink's connector names the carrier it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Portable,
    PostgresBinary,
}

/// A value as a SQL script writes it (see `Connector::write_literal`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal<'a> {
    Null,
    Bool(bool),
    /// Exact number text (integers, decimals).
    Number(&'a str),
    Float(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// `YYYY-MM-DD HH:MM:SS.ffffff`; `utc`: the instant in UTC (a timestamp with time zone).
    Timestamp {
        text: &'a str,
        utc: bool,
    },
}

/// `text` between single quotes, each quote doubled (standard SQL).
pub fn quoted_literal(text: &str, out: &mut String) {
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

/// A literal as standard SQL writes it: `NULL`, `TRUE`/`FALSE`, numbers bare, quoted text,
/// `X'…'` bytes. Infinite and NaN floats have none.
pub fn standard_literal(value: Literal<'_>, out: &mut String) -> Result<(), String> {
    match value {
        Literal::Null => out.push_str("NULL"),
        Literal::Bool(b) => out.push_str(if b { "TRUE" } else { "FALSE" }),
        Literal::Number(n) => out.push_str(n),
        Literal::Float(f) if f.is_finite() => out.push_str(&super::values::float_text(f)),
        Literal::Float(f) => return Err(format!("{f} has no literal in this dialect")),
        Literal::Text(t) | Literal::Timestamp { text: t, .. } => quoted_literal(t, out),
        Literal::Bytes(b) => {
            out.push_str("X'");
            out.push_str(&hex::encode(b));
            out.push('\'');
        }
    }
    Ok(())
}

/// Which schemas a catalog listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// What the connection itself points at (a MySQL connection's database; a PostgreSQL
    /// database's schemas; SQLite's `main`).
    Default,
    /// Everything the user can see.
    All,
    Named(&'a str),
}

impl<'a> Scope<'a> {
    /// The one schema to list, where `Default` means `default`; `None` for all.
    pub fn schema(self, default: Option<&'a str>) -> Option<&'a str> {
        match self {
            Scope::Default => default,
            Scope::All => None,
            Scope::Named(name) => Some(name),
        }
    }
}

/// An opened source: its columns are known, no row has been read yet.
pub trait SourceReader: Send {
    fn columns(&self) -> &[Column];

    /// Produce batches of `columns` (the partitions of one transfer share the whole query's
    /// description; see `partition::conform`).
    fn set_columns(&mut self, columns: Vec<Column>);

    /// Whether its decoders are fixed by its own description (then a partition must describe
    /// the same types as the whole query), rather than converting each value to the column's
    /// type.
    fn fixed_types(&self) -> bool {
        false
    }

    /// The result's type OIDs when it could hand a PostgreSQL sink its binary COPY tuples as
    /// they are (see `postgres::passthrough`).
    fn copy_oids(&self) -> Option<&[u32]> {
        None
    }

    /// Stream every row into `ctx.tx`, then `End`.
    ///
    /// # Cancel safety
    /// On `ctx.cancel` the source stops its query on the server and returns `Cancelled`.
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), EngineError>>;
}

/// One kind of endpoint: what its folder implements. Its futures are `Send`, so that jobs can
/// run them on any worker; the registry holds it as a `DynConnector`.
pub trait Connector: Sync + 'static {
    /// Whether connections name a server (host, port, database, user) rather than a file.
    fn is_server(&self) -> bool;

    /// The port and user a URL without them means (servers).
    fn defaults(&self) -> (u16, &'static str) {
        (0, "")
    }

    /// The carrier a sink of this kind takes.
    fn carrier(&self) -> Carrier {
        Carrier::Portable
    }

    /// An identifier quoted for this dialect's SQL (refused when it cannot be quoted).
    fn quote_ident(&self, name: &str) -> Result<String, EngineError>;

    /// A type any value casts to as text in this dialect's SQL.
    fn text_type(&self) -> &'static str;

    /// Connect and name the server's version.
    fn server_version(
        &self,
        spec: &ConnectSpec,
    ) -> impl Future<Output = Result<String, ConnectError>> + Send;

    /// Schemas, tables and columns, read live.
    fn list_tables(
        &self,
        spec: &ConnectSpec,
        scope: Scope<'_>,
    ) -> impl Future<Output = Result<Vec<SchemaInfo>, ConnectError>> + Send;

    /// The databases of the server (`system`: with the server's own), by name.
    fn list_databases(
        &self,
        spec: &ConnectSpec,
        system: bool,
    ) -> impl Future<Output = Result<Vec<String>, ConnectError>> + Send;

    /// The schemas of `database`, by name (`DatabaseNotFound` when it does not exist). Kinds
    /// without schemas inside a database (MySQL, SQLite) answer the database itself.
    fn list_schemas(
        &self,
        spec: &ConnectSpec,
        database: &str,
    ) -> impl Future<Output = Result<Vec<String>, ConnectError>> + Send;

    /// The tables and views of `schema` in `database`, with estimates of their size
    /// (`DatabaseNotFound`, `SchemaNotFound` when either is not there).
    fn list_relations(
        &self,
        spec: &ConnectSpec,
        database: &str,
        schema: &str,
    ) -> impl Future<Output = Result<Vec<RelationInfo>, ConnectError>> + Send;

    /// The exact number of rows of `table` (a table or view) in `schema` of `database`,
    /// counted by the database within `limit` (then stopped there: `Timeout`).
    fn count_rows(
        &self,
        spec: &ConnectSpec,
        at: TableAt<'_>,
        limit: Duration,
    ) -> impl Future<Output = Result<u64, ConnectError>> + Send;

    /// The statement that recreates the table (`view` false) or view (`view` true) at `at`,
    /// as the database prints it; `TableNotFound` when there is no such one of that kind.
    fn table_ddl(
        &self,
        spec: &ConnectSpec,
        at: TableAt<'_>,
        view: bool,
    ) -> impl Future<Output = Result<String, ConnectError>> + Send;

    /// Connect and describe what `source` reads, for a sink that takes `carrier`.
    fn open_source(
        &self,
        spec: &ConnectSpec,
        source: &SourceSpec,
        carrier: Carrier,
    ) -> impl Future<Output = Result<Box<dyn SourceReader>, EngineError>> + Send;

    /// Write everything the channel brings, atomically; the rows written.
    ///
    /// # Cancel safety
    /// On `ctx.cancel`, or when the channel closes without `End`, the target is left as it was.
    fn run_sink(
        &self,
        spec: &ConnectSpec,
        ctx: SinkContext,
    ) -> impl Future<Output = Result<u64, EngineError>> + Send;

    /// Run `sql` when it is a statement that returns no rows, and say how many it touched;
    /// `None` (nothing run) for one that returns rows (read those with a source).
    fn execute(
        &self,
        spec: &ConnectSpec,
        sql: &str,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Result<Option<u64>, EngineError>> + Send;

    /// The `CREATE TABLE` statement of a SQL script that recreates `columns` as `table` on
    /// this kind (the types its sink would create).
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError>;

    /// A value as a literal of this dialect's SQL, appended to `out`; `Err` says why it has
    /// none.
    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String> {
        standard_literal(value, out)
    }
}

/// Where a table is: its database, schema and name.
#[derive(Debug, Clone, Copy)]
pub struct TableAt<'a> {
    pub database: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
}

/// `TableNotFound` for a table or view of `at` that is not there as the kind asked for.
pub fn no_such_relation(at: TableAt<'_>, view: bool) -> ConnectError {
    ConnectError::TableNotFound(format!(
        "no {} {:?} in schema {:?}",
        if view { "view" } else { "table" },
        at.table,
        at.schema
    ))
}

/// For kinds whose databases are their one schema (MySQL, SQLite): `DatabaseNotFound` unless
/// `database` is there, `SchemaNotFound` unless `schema` is `database`.
pub async fn database_as_schema<C: Connector>(
    connector: &C,
    spec: &ConnectSpec,
    database: &str,
    schema: &str,
) -> Result<(), ConnectError> {
    connector.list_schemas(spec, database).await?;
    if schema == database {
        return Ok(());
    }
    Err(ConnectError::SchemaNotFound(format!(
        "{database:?} is a database whose one schema is itself, not {schema:?}"
    )))
}

/// A `Connector` behind a pointer, as the registry holds it: the same operations, their
/// futures boxed. Every connector is one.
pub trait DynConnector: Sync {
    fn is_server(&self) -> bool;
    fn defaults(&self) -> (u16, &'static str);
    fn carrier(&self) -> Carrier;
    fn quote_ident(&self, name: &str) -> Result<String, EngineError>;
    fn text_type(&self) -> &'static str;
    fn server_version<'a>(
        &'a self,
        spec: &'a ConnectSpec,
    ) -> BoxFuture<'a, Result<String, ConnectError>>;
    fn list_tables<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        scope: Scope<'a>,
    ) -> BoxFuture<'a, Result<Vec<SchemaInfo>, ConnectError>>;
    fn list_databases<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        system: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, ConnectError>>;
    fn list_schemas<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        database: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ConnectError>>;
    fn list_relations<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        database: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RelationInfo>, ConnectError>>;
    fn count_rows<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        at: TableAt<'a>,
        limit: Duration,
    ) -> BoxFuture<'a, Result<u64, ConnectError>>;
    fn table_ddl<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        at: TableAt<'a>,
        view: bool,
    ) -> BoxFuture<'a, Result<String, ConnectError>>;
    fn open_source<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        source: &'a SourceSpec,
        carrier: Carrier,
    ) -> BoxFuture<'a, Result<Box<dyn SourceReader>, EngineError>>;
    fn run_sink<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        ctx: SinkContext,
    ) -> BoxFuture<'a, Result<u64, EngineError>>;
    fn execute<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        sql: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Option<u64>, EngineError>>;
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError>;
    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String>;
}

impl<C: Connector> DynConnector for C {
    fn is_server(&self) -> bool {
        Connector::is_server(self)
    }
    fn defaults(&self) -> (u16, &'static str) {
        Connector::defaults(self)
    }
    fn carrier(&self) -> Carrier {
        Connector::carrier(self)
    }
    fn quote_ident(&self, name: &str) -> Result<String, EngineError> {
        Connector::quote_ident(self, name)
    }
    fn text_type(&self) -> &'static str {
        Connector::text_type(self)
    }
    fn server_version<'a>(
        &'a self,
        spec: &'a ConnectSpec,
    ) -> BoxFuture<'a, Result<String, ConnectError>> {
        Box::pin(Connector::server_version(self, spec))
    }
    fn list_tables<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        scope: Scope<'a>,
    ) -> BoxFuture<'a, Result<Vec<SchemaInfo>, ConnectError>> {
        Box::pin(Connector::list_tables(self, spec, scope))
    }
    fn list_databases<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        system: bool,
    ) -> BoxFuture<'a, Result<Vec<String>, ConnectError>> {
        Box::pin(Connector::list_databases(self, spec, system))
    }
    fn list_schemas<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        database: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ConnectError>> {
        Box::pin(Connector::list_schemas(self, spec, database))
    }
    fn list_relations<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        database: &'a str,
        schema: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RelationInfo>, ConnectError>> {
        Box::pin(Connector::list_relations(self, spec, database, schema))
    }
    fn count_rows<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        at: TableAt<'a>,
        limit: Duration,
    ) -> BoxFuture<'a, Result<u64, ConnectError>> {
        Box::pin(Connector::count_rows(self, spec, at, limit))
    }
    fn table_ddl<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        at: TableAt<'a>,
        view: bool,
    ) -> BoxFuture<'a, Result<String, ConnectError>> {
        Box::pin(Connector::table_ddl(self, spec, at, view))
    }
    fn open_source<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        source: &'a SourceSpec,
        carrier: Carrier,
    ) -> BoxFuture<'a, Result<Box<dyn SourceReader>, EngineError>> {
        Box::pin(Connector::open_source(self, spec, source, carrier))
    }
    fn run_sink<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        ctx: SinkContext,
    ) -> BoxFuture<'a, Result<u64, EngineError>> {
        Box::pin(Connector::run_sink(self, spec, ctx))
    }
    fn execute<'a>(
        &'a self,
        spec: &'a ConnectSpec,
        sql: &'a str,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Option<u64>, EngineError>> {
        Box::pin(Connector::execute(self, spec, sql, cancel))
    }
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError> {
        Connector::create_table_sql(self, table, columns)
    }
    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String> {
        Connector::write_literal(self, value, out)
    }
}
