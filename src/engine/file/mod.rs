//! Files as an endpoint kind: a file's records read as a source (CSV, a JSON array or JSON
//! Lines, through its schema's fields) and a transfer's rows written as a file (CSV, a JSON
//! array or JSON Lines), both streamed. The bytes come from and go to the file storage as
//! streams, so neither side knows where files live. A file is not a connection users register:
//! the kind is reached through `DbKind::file()` and `ConnectSpec::file()`, not the registry.

pub mod parquet;
mod sink;
mod source;
mod sql;

use std::sync::{Arc, Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

use super::batch::{SinkContext, SinkSpec, SourceSpec};
use super::connector::{Carrier, ConnectSpec, Connector, DbKind, Registered, Scope, SslMode};
use super::convert::{Field, Input, Output};
use super::error::{ConnectError, EngineError};
use super::infer::FieldType;
use super::types::{Column, LogicalType};
use super::{SourceReader, Timeouts, CANCEL_GRACE};
use crate::catalog::{RelationInfo, SchemaInfo};
use crate::storage::bridge::StreamWriter;
use crate::storage::ByteStream;

pub use source::FileSource;

/// Something handed over once to whoever opens the endpoint (a byte stream, a writer), held
/// in a spec that is cloned and compared as a whole: clones share it, and two handoffs are
/// equal only when they are the same one.
pub struct Handoff<T>(Arc<Mutex<Option<T>>>);

impl<T> Handoff<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(Mutex::new(Some(value))))
    }

    /// The value, the first time.
    pub fn take(&self) -> Option<T> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl<T> Clone for Handoff<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> PartialEq for Handoff<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Handoff<T> {}

impl<T> std::fmt::Debug for Handoff<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handoff")
    }
}

/// The end of blocking work that watches `cancel` itself (at its next batch). On a cancel the
/// work still gets `CANCEL_GRACE` to end, so that its own error, often the cause of the
/// cancel (the other side saw the channel close), is the one reported.
async fn blocking_end<T>(
    work: tokio::task::JoinHandle<Result<T, EngineError>>,
    cancel: &CancellationToken,
    what: &str,
) -> Result<T, EngineError> {
    tokio::pin!(work);
    let joined = tokio::select! {
        done = &mut work => done,
        _ = cancel.cancelled() => match tokio::time::timeout(CANCEL_GRACE, &mut work).await {
            Ok(done) => done,
            Err(_) => return Err(EngineError::Cancelled),
        },
    };
    joined.map_err(|e| EngineError::Internal(format!("{what} stopped: {e}")))?
}

/// A file read as a source: its bytes, how they are written, and the fields to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRead {
    pub bytes: FileBytes,
    pub input: Input,
    pub fields: Vec<Field>,
}

/// How a source gets a file's bytes: a stream from the start (text formats), or reads by
/// range (Parquet, whose footer is at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileBytes {
    Stream(Handoff<ByteStream>),
    Ranged(parquet::Ranged),
    /// A file on this machine (`sluice transfer --source file://…`).
    Local(std::path::PathBuf),
}

/// A file written by a sink: the format, and where its bytes go (a stream the caller stores;
/// it ends with an error when the transfer fails, so no half file is kept).
#[derive(Debug, Clone)]
pub struct FileWrite {
    pub output: Output,
    pub bytes: Handoff<StreamWriter>,
    /// The columns written, set when the sink starts (for the file's schema).
    pub columns: Arc<OnceLock<Vec<Column>>>,
    /// The table a SQL script creates and fills.
    pub table: String,
}

/// The columns a file's fields are read as.
pub fn columns(fields: &[Field]) -> Vec<Column> {
    fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            ty: f.field_type.logical(),
            nullable: true,
            db_type: f.field_type.name(),
            native: None,
        })
        .collect()
}

/// The field type a column is written as in a file, so that reading the file back gives the
/// same values (types without a field type of their own are text).
pub fn field_type(ty: &LogicalType) -> FieldType {
    match ty {
        LogicalType::Boolean => FieldType::Boolean,
        LogicalType::Int16 | LogicalType::Int32 => FieldType::Integer,
        LogicalType::Int64 => FieldType::BigInt,
        LogicalType::UInt64 => FieldType::Decimal {
            precision: 20,
            scale: 0,
        },
        LogicalType::Float32 | LogicalType::Float64 => FieldType::Float,
        LogicalType::Decimal { precision, scale } => FieldType::Decimal {
            precision: u32::from(*precision),
            scale: (*scale).max(0) as u32,
        },
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => FieldType::Bytes,
        LogicalType::Date => FieldType::Date,
        LogicalType::Time => FieldType::Time,
        LogicalType::Timestamp => FieldType::Timestamp,
        LogicalType::TimestampTz => FieldType::TimestampTz,
        LogicalType::Uuid => FieldType::Uuid,
        LogicalType::Json => FieldType::Json,
        LogicalType::BigDecimal { .. }
        | LogicalType::Text { .. }
        | LogicalType::Array { .. }
        | LogicalType::Interval
        | LogicalType::Other { .. } => FieldType::Text,
    }
}

/// The file kind's connector.
pub struct FileConnector;

static KIND: Registered = Registered {
    name: "file",
    aliases: &[],
    connector: &FileConnector,
};

impl DbKind {
    /// The kind of a file endpoint (not a connection kind users register).
    pub fn file() -> Self {
        DbKind::of(&KIND)
    }
}

impl ConnectSpec {
    /// The endpoint of a file: what it reads or writes is in its source or sink spec.
    pub fn file() -> Self {
        ConnectSpec {
            kind: DbKind::file(),
            host: String::new(),
            port: 0,
            database: String::new(),
            username: String::new(),
            password: None,
            path: None,
            ssl_mode: SslMode::Disable,
            ssl_root_cert: None,
            timeouts: Timeouts::default(),
            read_only: false,
        }
    }
}

fn not_for_files(what: &str) -> EngineError {
    EngineError::Schema(format!(
        "a file has no {what}; it is read and written whole"
    ))
}

impl Connector for FileConnector {
    fn create_table_sql(&self, _table: &str, _columns: &[Column]) -> Result<String, EngineError> {
        Err(not_for_files("tables"))
    }

    fn is_server(&self) -> bool {
        false
    }

    fn quote_ident(&self, name: &str) -> Result<String, EngineError> {
        Ok(format!("\"{}\"", name.replace('"', "\"\"")))
    }

    fn text_type(&self) -> &'static str {
        "string"
    }

    async fn server_version(&self, _spec: &ConnectSpec) -> Result<String, ConnectError> {
        Ok("file".into())
    }

    async fn list_tables(
        &self,
        _spec: &ConnectSpec,
        _scope: Scope<'_>,
    ) -> Result<Vec<SchemaInfo>, ConnectError> {
        Ok(Vec::new())
    }

    async fn list_databases(
        &self,
        _spec: &ConnectSpec,
        _system: bool,
    ) -> Result<Vec<String>, ConnectError> {
        Ok(Vec::new())
    }

    async fn list_schemas(
        &self,
        _spec: &ConnectSpec,
        database: &str,
    ) -> Result<Vec<String>, ConnectError> {
        Err(ConnectError::DatabaseNotFound(format!(
            "a file has no database {database:?}"
        )))
    }

    async fn list_relations(
        &self,
        _spec: &ConnectSpec,
        database: &str,
        _schema: &str,
    ) -> Result<Vec<RelationInfo>, ConnectError> {
        Err(ConnectError::DatabaseNotFound(format!(
            "a file has no database {database:?}"
        )))
    }

    async fn count_rows(
        &self,
        _spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        _limit: std::time::Duration,
    ) -> Result<u64, ConnectError> {
        Err(ConnectError::DatabaseNotFound(format!(
            "a file has no database {:?}",
            at.database
        )))
    }

    async fn table_ddl(
        &self,
        _spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        _view: bool,
    ) -> Result<String, ConnectError> {
        Err(ConnectError::DatabaseNotFound(format!(
            "a file has no database {:?}",
            at.database
        )))
    }

    async fn open_source(
        &self,
        _spec: &ConnectSpec,
        source: &SourceSpec,
        _carrier: Carrier,
    ) -> Result<Box<dyn SourceReader>, EngineError> {
        match source {
            SourceSpec::File(read) => Ok(Box::new(FileSource::open(read)?)),
            SourceSpec::Query(_) => Err(not_for_files("query")),
        }
    }

    async fn run_sink(&self, _spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
        match &ctx.target {
            SinkSpec::File(write) => {
                let write = write.clone();
                sink::run(ctx, write).await
            }
            SinkSpec::Table(_) => Err(not_for_files("tables")),
        }
    }

    async fn execute(
        &self,
        _spec: &ConnectSpec,
        _sql: &str,
        _cancel: &CancellationToken,
    ) -> Result<Option<u64>, EngineError> {
        Err(not_for_files("statements"))
    }
}
