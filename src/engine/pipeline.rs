//! One transfer: open the source, learn its columns, then run source and sink side by side
//! over a bounded channel, each on the engine runtime's threads, under one cancellation token.
//! A partitioned transfer runs several sources (see `partition`) into the same channel.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::batch::{
    CopyOffer, Message, Progress, SinkContext, SourceContext, TargetTable, CHANNEL_BATCHES,
};
use super::partition::{self, Partitioning};
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
    /// Read the query in ranges of an integer column over parallel connections.
    pub partitioning: Option<Partitioning>,
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

    /// The result's type OIDs when the source could hand a PostgreSQL sink its binary COPY
    /// tuples as they are (see `postgres::passthrough`).
    pub fn copy_oids(&self) -> Option<&[u32]> {
        match self {
            Self::Postgres(s) => s.copy_oids(),
            Self::MySql(_) | Self::Sqlite(_) => None,
        }
    }

    /// Produce batches of `columns` (see `partition::conform` for what must agree first).
    pub(crate) fn set_columns(&mut self, columns: Vec<Column>) {
        match self {
            Self::Postgres(s) => s.set_columns(columns),
            Self::MySql(s) => s.set_columns(columns),
            Self::Sqlite(s) => s.set_columns(columns),
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

pub(crate) fn check_columns(columns: &[Column]) -> Result<(), EngineError> {
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

/// The transfer's sources (one, or one per partition) and the columns the sink writes.
async fn open_sources(
    request: &TransferRequest,
    cancel: &CancellationToken,
) -> Result<(Vec<Source>, Vec<Column>), EngineError> {
    if let Some(partitioning) = request.partitioning.as_ref().filter(|p| p.partitions > 1) {
        return partition::open(request, partitioning, cancel).await;
    }
    let source = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        opened = Source::open(&request.source, &request.query, request.target.kind) => opened?,
    };
    let columns = source.columns().to_vec();
    check_columns(&columns)?;
    Ok((vec![source], columns))
}

/// The type OIDs every source can pass through as binary COPY tuples (a source offers them
/// only towards a PostgreSQL target), when the sources agree.
fn copy_offer(sources: &[Source]) -> Option<Vec<u32>> {
    let first = sources.first()?.copy_oids()?;
    sources
        .iter()
        .all(|s| s.copy_oids() == Some(first))
        .then(|| first.to_vec())
}

/// The error to report: the first that is not a mere consequence of another's cancellation.
fn first_cause(current: Option<EngineError>, next: EngineError) -> EngineError {
    match current {
        None | Some(EngineError::Cancelled) => next,
        Some(cause) => cause,
    }
}

/// Run one transfer to its end. Returns the rows written.
pub async fn run_transfer(
    request: TransferRequest,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Result<u64, EngineError> {
    let (sources, columns) = open_sources(&request, &cancel).await?;

    // Any side failing stops the others at once.
    let inner = cancel.child_token();
    let (tx, rx) = mpsc::channel::<Message>(CHANNEL_BATCHES);
    let writers = Arc::new(AtomicUsize::new(sources.len()));
    let batch_rows = partition::batch_rows(request.batch_rows, sources.len());
    let (copy_offer, copy_answer) = match copy_offer(&sources) {
        Some(oids) => {
            let (answer, answered) = watch::channel(None);
            (Some(CopyOffer { oids, answer }), Some(answered))
        }
        None => (None, None),
    };
    let source_tasks: Vec<_> = sources
        .into_iter()
        .map(|source| {
            let ctx = SourceContext {
                tx: tx.clone(),
                cancel: inner.clone(),
                progress: progress.clone(),
                batch_rows,
                writers: writers.clone(),
                copy_answer: copy_answer.clone(),
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                let result = source.run(ctx).await;
                if result.is_err() {
                    inner.cancel();
                }
                result
            })
        })
        .collect();
    // The sink sees the channel close if every source stops without `End`.
    drop(tx);
    let sink_ctx = SinkContext {
        rx,
        cancel: inner.clone(),
        progress,
        columns,
        target: request.target_table.clone(),
        copy_offer,
    };
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
    let mut failure = None;
    for task in source_tasks {
        let result = task
            .await
            .unwrap_or_else(|e| Err(EngineError::Internal(format!("source task: {e}"))));
        if let Err(e) = result {
            failure = Some(first_cause(failure, e));
        }
    }
    let sink_result = sink_task
        .await
        .unwrap_or_else(|e| Err(EngineError::Internal(format!("sink task: {e}"))));

    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    // A source's error holds the cause before the sink's (the sink then only saw the
    // cancellation), as does a failing partition's before its cancelled siblings'.
    match (failure, sink_result) {
        (None, Ok(rows)) => Ok(rows),
        (failure, Err(e)) => Err(first_cause(failure, e)),
        (Some(e), Ok(_)) => Err(e),
    }
}
