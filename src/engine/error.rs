//! Why engine work failed, in the words the user sees and the code table's, and the bound on
//! every wait for a user's database.

use std::time::Duration;

use crate::codes::ErrorCode;

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
    #[error("schema not found: {0}")]
    SchemaNotFound(String),
    #[error("table not found: {0}")]
    TableNotFound(String),
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
            Self::SchemaNotFound(_) => ErrorCode::SchemaNotFound,
            Self::TableNotFound(_) => ErrorCode::TableNotFound,
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
    /// A file does not read as its format (where, and why).
    #[error("{0}")]
    File(String),
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
            Self::File(_) => ErrorCode::InvalidFileContent,
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
