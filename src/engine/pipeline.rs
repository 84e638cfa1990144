//! One transfer: open the source, learn its columns, then run source and sink side by side
//! over a bounded channel, each on the engine runtime's threads, under one cancellation token.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::batch::{Message, Progress, SinkContext, SourceContext, TargetTable, CHANNEL_BATCHES};
use super::types::Column;
use super::{mysql, postgres, sqlite, ConnectSpec, DbKind, EngineError};

/// Everything a transfer needs.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub source: ConnectSpec,
    pub target: ConnectSpec,
    pub query: String,
    pub target_table: TargetTable,
    pub batch_rows: usize,
}

/// An opened source: its columns are known, no row has been read yet.
pub enum Source {
    Postgres(postgres::source::PgSource),
    MySql(mysql::source::MySource),
    Sqlite(sqlite::source::SqliteSource),
}

impl Source {
    /// Connect and describe `query`. `target` lets the source choose carriers (see `types`).
    pub async fn open(
        spec: &ConnectSpec,
        query: &str,
        target: DbKind,
    ) -> Result<Self, EngineError> {
        Ok(match spec.kind {
            DbKind::Postgres => Self::Postgres(postgres::source::open(spec, query, target).await?),
            DbKind::MySql | DbKind::MariaDb => {
                Self::MySql(mysql::source::open(spec, query, target).await?)
            }
            DbKind::Sqlite => Self::Sqlite(sqlite::source::open(spec, query, target).await?),
        })
    }

    pub fn columns(&self) -> &[Column] {
        match self {
            Self::Postgres(s) => s.columns(),
            Self::MySql(s) => s.columns(),
            Self::Sqlite(s) => s.columns(),
        }
    }

    /// Stream every row into `ctx.tx`, then `End`.
    ///
    /// # Cancel safety
    /// On `ctx.cancel` the source stops the query on the server and returns `Cancelled`.
    pub async fn run(self, ctx: SourceContext) -> Result<(), EngineError> {
        match self {
            Self::Postgres(s) => s.run(ctx).await,
            Self::MySql(s) => s.run(ctx).await,
            Self::Sqlite(s) => s.run(ctx).await,
        }
    }
}

/// Write everything the channel brings into the target, atomically; returns rows written.
///
/// # Cancel safety
/// On `ctx.cancel`, or when the channel closes without `End`, the sink rolls back (dropping any
/// staging table) and the target is as it was.
pub async fn run_sink(spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
    match spec.kind {
        DbKind::Postgres => postgres::sink::run(spec, ctx).await,
        DbKind::MySql | DbKind::MariaDb => mysql::sink::run(spec, ctx).await,
        DbKind::Sqlite => sqlite::sink::run(spec, ctx).await,
    }
}

fn check_columns(columns: &[Column]) -> Result<(), EngineError> {
    if columns.is_empty() {
        return Err(EngineError::Schema(
            "the query returns no columns; a transfer needs a query that returns rows".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for c in columns {
        if c.name.is_empty() {
            return Err(EngineError::Schema(
                "a result column has no name; give it one with AS".into(),
            ));
        }
        if !seen.insert(c.name.to_lowercase()) {
            return Err(EngineError::Schema(format!(
                "the result has two columns named {:?}; give them distinct names with AS",
                c.name
            )));
        }
    }
    Ok(())
}

/// Run one transfer to its end. Returns the rows written.
pub async fn run_transfer(
    request: TransferRequest,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<u64, EngineError> {
    let source = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        opened = Source::open(&request.source, &request.query, request.target.kind) => opened?,
    };
    let columns = source.columns().to_vec();
    check_columns(&columns)?;

    // Either side failing stops the other at once.
    let inner = cancel.child_token();
    let (tx, rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    let source_ctx = SourceContext {
        tx,
        cancel: inner.clone(),
        progress: progress.clone(),
        batch_rows: request.batch_rows.max(1),
    };
    let sink_ctx = SinkContext {
        rx,
        cancel: inner.clone(),
        progress,
        columns,
        target: request.target_table.clone(),
    };
    let source_task = tokio::spawn({
        let inner = inner.clone();
        async move {
            let result = source.run(source_ctx).await;
            if result.is_err() {
                inner.cancel();
            }
            result
        }
    });
    let target = request.target.clone();
    let sink_task = tokio::spawn({
        let inner = inner.clone();
        async move {
            let result = run_sink(&target, sink_ctx).await;
            if result.is_err() {
                inner.cancel();
            }
            result
        }
    });
    let source_result = source_task
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("source task: {e}"))));
    let sink_result = sink_task
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("sink task: {e}"))));

    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    match (source_result, sink_result) {
        (Ok(()), Ok(rows)) => Ok(rows),
        // The side that failed first holds the cause; the other only saw the cancellation.
        (Err(e), _) if !matches!(e, EngineError::Cancelled) => Err(e),
        (_, Err(e)) if !matches!(e, EngineError::Cancelled) => Err(e),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
