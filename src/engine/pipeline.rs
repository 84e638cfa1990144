//! One transfer: open the source, learn its columns, then run source and sink side by side
//! over a bounded channel, each on the engine runtime's threads, under one cancellation token.
//! A partitioned transfer runs several sources (see `partition`) into the same channel.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::batch::{CopyOffer, Message, Progress, SinkContext, SourceContext, CHANNEL_BATCHES};
use super::partition::{self, Partitioning};
use super::types::{check_result_columns, Column};
use super::{Carrier, ConnectSpec, EngineError, SinkSpec, SourceReader, SourceSpec};

/// Everything a transfer needs.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub source: ConnectSpec,
    /// What is read from the source.
    pub read: SourceSpec,
    pub target: ConnectSpec,
    /// Where the rows go on the target.
    pub write: SinkSpec,
    pub batch_rows: usize,
    /// Read the query in ranges of an integer column over parallel connections.
    pub partitioning: Option<Partitioning>,
}

impl TransferRequest {
    /// How values travel: the carrier the target's kind takes.
    pub fn carrier(&self) -> Carrier {
        self.target.kind.connector().carrier()
    }
}

/// An opened source of `spec`'s kind (see `Connector::open_source`).
pub async fn open_source(
    spec: &ConnectSpec,
    source: &SourceSpec,
    carrier: Carrier,
) -> Result<Box<dyn SourceReader>, EngineError> {
    spec.kind
        .connector()
        .open_source(spec, source, carrier)
        .await
}

/// Write everything the channel brings into the target, atomically; returns rows written.
///
/// # Cancel safety
/// On `ctx.cancel`, or when the channel closes without `End`, the sink rolls back (dropping any
/// staging table) and the target is as it was.
pub async fn run_sink(spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
    spec.kind.connector().run_sink(spec, ctx).await
}

/// The transfer's sources (one, or one per partition) and the columns the sink writes.
async fn open_sources(
    request: &TransferRequest,
    cancel: &CancellationToken,
) -> Result<(Vec<Box<dyn SourceReader>>, Vec<Column>), EngineError> {
    if let Some(partitioning) = request.partitioning.as_ref().filter(|p| p.partitions > 1) {
        let query = request.read.query()?;
        return partition::open(
            &request.source,
            query,
            request.carrier(),
            partitioning,
            cancel,
        )
        .await;
    }
    let source = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        opened = open_source(&request.source, &request.read, request.carrier()) => opened?,
    };
    let columns = source.columns().to_vec();
    check_result_columns(&columns)?;
    Ok((vec![source], columns))
}

/// The type OIDs every source can pass through as binary COPY tuples (a source offers them
/// only towards a PostgreSQL target), when the sources agree.
fn copy_offer(sources: &[Box<dyn SourceReader>]) -> Option<Vec<u32>> {
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
        target: request.write.clone(),
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
