//! The data plane: connecting to users' databases and moving rows. No HTTP and no sea-orm here.

pub mod batch;
pub mod mysql;
pub mod partition;
pub mod pipeline;
pub mod postgres;
pub mod query;
pub mod sqlite;
pub mod tls;
pub mod types;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::codes::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

/// The kinds of database Sluice talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Postgres,
    MySql,
    MariaDb,
    Sqlite,
}

impl DbKind {
    /// Parse a connection type; SQLpipe's and common spellings are accepted.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" => Some(Self::Postgres),
            "mysql" => Some(Self::MySql),
            "mariadb" => Some(Self::MariaDb),
            "sqlite" | "sqlite3" => Some(Self::Sqlite),
            _ => None,
        }
    }

    /// The canonical name, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::MySql => "mysql",
            Self::MariaDb => "mariadb",
            Self::Sqlite => "sqlite",
        }
    }

    pub fn is_server(self) -> bool {
        self != Self::Sqlite
    }
}

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

/// How long a cancelled job waits for a server to confirm that its query stopped before it
/// drops the connection: a cancel takes effect within a couple of seconds, whatever the link.
pub(crate) const CANCEL_GRACE: Duration = Duration::from_millis(1000);

/// Await `work` on a user's database for at most `limit`; past it, `Stalled` on `side`.
pub(crate) async fn within<T>(
    limit: Duration,
    side: &'static str,
    work: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::Stalled {
            side,
            waited: limit,
        }),
    }
}

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

/// Why a connection could not be opened, classified for the user.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("unknown host: {0}")]
    HostNotFound(String),
    #[error("connection refused: {0}")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("{0}")]
    Other(String),
}

impl ConnectError {
    /// The kind of failure, in the code table's words.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Auth(_) => ErrorCode::AuthFailed,
            Self::HostNotFound(_) => ErrorCode::HostNotFound,
            Self::Refused(_) => ErrorCode::ConnectionRefused,
            Self::Timeout(_) => ErrorCode::Timeout,
            Self::Tls(_) => ErrorCode::TlsError,
            Self::DatabaseNotFound(_) => ErrorCode::DatabaseNotFound,
            Self::Other(_) => ErrorCode::ConnectionFailed,
        }
    }

    /// Classify an I/O error met while connecting.
    pub fn from_io(e: &std::io::Error, target: &str) -> Self {
        use std::io::ErrorKind;
        let text = e.to_string();
        match e.kind() {
            ErrorKind::ConnectionRefused => Self::Refused(format!("{target}: {text}")),
            ErrorKind::TimedOut => Self::Other(format!("{target}: {text}")),
            _ if text.contains("lookup address")
                || text.contains("Name or service not known")
                || text.contains("nodename nor servname")
                || text.contains("No address associated") =>
            {
                Self::HostNotFound(format!("{target}: {text}"))
            }
            _ => Self::Other(format!("{target}: {text}")),
        }
    }
}

/// Why a transfer failed. The text is what the user sees as the job's `error`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// The source database refused or broke off the query (its own message, with position).
    #[error("source: {message}")]
    Source { message: String, transient: bool },
    /// The target database refused a statement or broke off.
    #[error("target: {message}")]
    Target { message: String, transient: bool },
    /// A value the target cannot hold; `row` counts from 1 in the result.
    #[error("column {column:?}, row {row}: {message}")]
    Value {
        column: String,
        row: u64,
        message: String,
    },
    /// The result does not fit the target table (checked before any row is written).
    #[error("{0}")]
    Schema(String),
    /// The database refused the statement for what it would do: a session that may only
    /// read (`read_only`: queries of users who are not admins), or a statement Sluice never
    /// allows (a SQLite statement reaching another file).
    #[error("{message}")]
    Refused { read_only: bool, message: String },
    /// A database left Sluice waiting longer than `engine.io_timeout_secs` on an open
    /// connection (no answer, no rows, a write not taken): the link counts as dead.
    #[error("{side}: no answer from the server within {waited:?} (engine.io_timeout_secs); the link is taken for dead")]
    Stalled {
        side: &'static str,
        waited: Duration,
    },
    /// The target did not answer COMMIT and whether it committed could not be learned: the
    /// job must not be retried (it could write its rows twice) nor called failed.
    #[error("{0}")]
    CommitUnknown(String),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// The kind of failure, in the code table's words: the failed job's `errorCode`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Connect(c) => c.code(),
            Self::Source { .. } => ErrorCode::SourceQueryFailed,
            Self::Target { .. } => ErrorCode::TargetRejected,
            Self::Value { .. } => ErrorCode::ValueOutOfRange,
            Self::Schema(_) => ErrorCode::SchemaMismatch,
            Self::Refused {
                read_only: true, ..
            } => ErrorCode::ReadOnly,
            Self::Refused {
                read_only: false, ..
            } => ErrorCode::StatementNotAllowed,
            Self::CommitUnknown(_) => ErrorCode::CommitOutcomeUnknown,
            Self::Stalled { .. } => ErrorCode::IoTimeout,
            Self::Cancelled => ErrorCode::Cancelled,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// Worth another attempt: the connection broke, the server restarted, a deadlock. Safe to
    /// retry because a transfer writes nothing until it commits.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(c) => matches!(
                c,
                ConnectError::Refused(_) | ConnectError::Timeout(_) | ConnectError::Other(_)
            ),
            Self::Source { transient, .. } | Self::Target { transient, .. } => *transient,
            // The link may come back.
            Self::Stalled { .. } => true,
            _ => false,
        }
    }
}

/// The answer of a connection test.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub latency_ms: u64,
    /// What failed (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `auth_failed`, `host_not_found`, `connection_refused`, `timeout`, `tls_error`,
    /// `database_not_found` or `connection_failed` (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A column of a table in a user's database.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub name: String,
    /// The column's type as the database names it, e.g. `numeric(10,2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchemaInfo {
    pub name: String,
    pub tables: Vec<TableInfo>,
}

/// Connect, ask the server's version, and report how long it took. Never fails: a failure is
/// an answer with `ok: false`.
pub async fn test_connection(spec: &ConnectSpec) -> TestResult {
    let started = Instant::now();
    let outcome = with_timeout(spec.timeouts.connect, async {
        match spec.kind {
            DbKind::Postgres => postgres::server_version(spec).await,
            DbKind::MySql | DbKind::MariaDb => mysql::server_version(spec).await,
            DbKind::Sqlite => sqlite::server_version(spec).await,
        }
    })
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(version) => TestResult {
            ok: true,
            server_version: Some(version),
            latency_ms,
            error: None,
            error_code: None,
        },
        Err(e) => TestResult {
            ok: false,
            server_version: None,
            latency_ms,
            error: Some(e.to_string()),
            error_code: Some(e.code().code().to_string()),
        },
    }
}

/// Schemas, tables and columns of a user's database, read live. `schema` narrows to one;
/// MySQL/MariaDB list only the connection's database unless `schema` is `*` (every database
/// the user can see). Connecting takes at most `spec.timeouts.connect`, reading the catalog
/// then at most `list_timeout`.
pub async fn list_tables(
    spec: &ConnectSpec,
    schema: Option<&str>,
    list_timeout: Duration,
) -> Result<Vec<SchemaInfo>, ConnectError> {
    let every = schema == Some("*");
    let schema = schema.filter(|s| *s != "*");
    with_timeout(spec.timeouts.connect + list_timeout, async {
        match spec.kind {
            DbKind::Postgres => postgres::list_tables(spec, schema).await,
            DbKind::MySql | DbKind::MariaDb => {
                // A MySQL connection is to one database, though it sees the server's others.
                let scope = match schema {
                    Some(s) => Some(s),
                    None if every => None,
                    None => Some(spec.database.as_str()).filter(|d| !d.is_empty()),
                };
                mysql::list_tables(spec, scope).await
            }
            DbKind::Sqlite => sqlite::list_tables(spec, schema).await,
        }
    })
    .await
}

async fn with_timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

/// A query without surrounding blanks and trailing semicolons, ready to be wrapped (in COPY,
/// a subquery).
pub(crate) fn trim_query(query: &str) -> &str {
    let mut q = query.trim();
    while let Some(rest) = q.strip_suffix(';') {
        q = rest.trim_end();
    }
    q
}

/// Group `(schema, table, kind, column)` rows, already ordered, into the nested answer.
pub(crate) fn group_columns(
    rows: impl IntoIterator<Item = (String, String, String, ColumnInfo)>,
) -> Vec<SchemaInfo> {
    let mut schemas: Vec<SchemaInfo> = Vec::new();
    for (schema, table, kind, column) in rows {
        if schemas.last().map(|s| &s.name) != Some(&schema) {
            schemas.push(SchemaInfo {
                name: schema,
                tables: Vec::new(),
            });
        }
        let tables = &mut schemas.last_mut().expect("pushed above").tables;
        if tables.last().map(|t| &t.name) != Some(&table) {
            tables.push(TableInfo {
                name: table,
                kind,
                columns: Vec::new(),
            });
        }
        tables
            .last_mut()
            .expect("pushed above")
            .columns
            .push(column);
    }
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_output_of_a_connect_spec_hides_the_password() {
        let spec = ConnectSpec {
            kind: DbKind::Postgres,
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            username: "u".into(),
            password: Some(SecretString::from("p4ssw0rd-visible?")),
            path: None,
            ssl_mode: SslMode::Require,
            ssl_root_cert: None,
            timeouts: Timeouts::default(),
            read_only: false,
        };
        let text = format!("{spec:?}");
        assert!(!text.contains("p4ssw0rd-visible?"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }

    #[test]
    fn trailing_semicolons_and_blanks_are_trimmed_before_a_query_is_wrapped() {
        assert_eq!(trim_query("  SELECT 1 ;; \n"), "SELECT 1");
        assert_eq!(trim_query("SELECT ';'"), "SELECT ';'");
    }

    #[test]
    fn ssl_modes_and_types_parse_from_their_usual_spellings() {
        assert_eq!(SslMode::parse("verify-full"), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("REQUIRED"), Some(SslMode::Require));
        assert_eq!(SslMode::parse("sometimes"), None);
        assert_eq!(DbKind::parse("postgres"), Some(DbKind::Postgres));
        assert_eq!(DbKind::parse("MariaDB"), Some(DbKind::MariaDb));
        assert_eq!(DbKind::parse("oracle"), None);
    }
}
