//! What flows between a source and a sink: Arrow batches over a bounded channel, an explicit
//! end marker, live progress counters, and the cancellation token both sides watch.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::error::EngineError;
use super::types::Column;

/// Batches in flight between source and sink; with `jobs.batch_rows` rows each this bounds
/// memory whatever the row count.
pub const CHANNEL_BATCHES: usize = 3;

/// A batch is also cut when its values pass this many bytes (wide rows). With
/// `CHANNEL_BATCHES` in the channel, one being filled and one being written, this keeps a
/// transfer's memory near 50 MB whatever the row width (measured in bench/RESULTS.md).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// One item on the channel. The sink commits only after `End`: a channel that closes without
/// it means the source failed or was cancelled, and the sink rolls back.
#[derive(Debug)]
pub enum Message {
    Batch(RecordBatch),
    /// Whole tuples of a PostgreSQL binary COPY stream, passed through to a PostgreSQL sink
    /// that agreed to take them (see `CopyOffer`).
    Copy(CopyChunk),
    End,
}

/// What a sink other than PostgreSQL's answers to `Message::Copy` (never offered to it).
pub fn copy_not_offered() -> EngineError {
    EngineError::Internal("binary COPY tuples reached a sink that was not offered them".into())
}

/// Tuples of a binary COPY stream, without its header and trailer.
#[derive(Debug)]
pub struct CopyChunk {
    pub data: Bytes,
    pub rows: u64,
}

/// A PostgreSQL source offers its binary COPY tuples as they are when both ends are
/// PostgreSQL and every column has a built-in type (`oids`, in result order). The sink takes
/// them when the columns it copies into have exactly those types, and answers on `answer`
/// before it reads the channel; the sources wait for that answer before they read.
#[derive(Debug)]
pub struct CopyOffer {
    pub oids: Vec<u32>,
    pub answer: watch::Sender<Option<bool>>,
}
/// Live counters of one transfer, read by the API while it runs.
#[derive(Debug)]
pub struct Progress {
    pub rows_written: AtomicU64,
    pub bytes_read: AtomicU64,
    /// When the job started (kept across retried attempts), for rates and elapsed time.
    pub started: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            rows_written: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Progress {
    pub fn add_read(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_written(&self, rows: u64) {
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    pub fn rows_written(&self) -> u64 {
        self.rows_written.load(Ordering::Relaxed)
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Back to zero (a retried attempt starts over).
    pub fn reset(&self) {
        self.rows_written.store(0, Ordering::Relaxed);
        self.bytes_read.store(0, Ordering::Relaxed);
    }
}

/// What a source's `run` gets.
pub struct SourceContext {
    pub tx: mpsc::Sender<Message>,
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
    pub batch_rows: usize,
    /// Sources still writing into `tx` (the partitions of one transfer share the channel); the
    /// last one to finish sends `End`.
    pub writers: Arc<AtomicUsize>,
    /// The sink's answer to a `CopyOffer`, when one was made.
    pub copy_answer: Option<watch::Receiver<Option<bool>>>,
}

impl SourceContext {
    /// The context of the only source writing into `tx`.
    pub fn new(
        tx: mpsc::Sender<Message>,
        cancel: CancellationToken,
        progress: Arc<Progress>,
        batch_rows: usize,
    ) -> Self {
        Self {
            tx,
            cancel,
            progress,
            batch_rows,
            writers: Arc::new(AtomicUsize::new(1)),
            copy_answer: None,
        }
    }

    /// Whether the sink takes the COPY tuples as they are: false when no offer was made;
    /// waits for the sink's answer otherwise.
    ///
    /// # Cancel safety
    /// Returns `Cancelled` on `cancel`, or when the sink stops before answering (its error is
    /// the transfer's).
    pub async fn copy_accepted(&mut self) -> Result<bool, EngineError> {
        let Some(answer) = self.copy_answer.as_mut() else {
            return Ok(false);
        };
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(EngineError::Cancelled),
            agreed = answer.wait_for(Option::is_some) => match agreed {
                Ok(value) => Ok(value.unwrap_or(false)),
                Err(_) => Err(EngineError::Cancelled),
            },
        }
    }

    /// Hand a batch to the sink; waits while the channel is full (back-pressure).
    /// Fails with `Cancelled` when the job is cancelled or the sink has gone.
    pub async fn send(&self, batch: RecordBatch, bytes: u64) -> Result<(), EngineError> {
        self.progress.add_read(bytes);
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(EngineError::Cancelled),
            sent = self.tx.send(Message::Batch(batch)) => sent.map_err(|_| EngineError::Cancelled),
        }
    }

    /// Hand tuples of a binary COPY stream to the sink, like `send`.
    pub async fn send_copy(&self, chunk: CopyChunk) -> Result<(), EngineError> {
        self.progress.add_read(chunk.data.len() as u64);
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(EngineError::Cancelled),
            sent = self.tx.send(Message::Copy(chunk)) => sent.map_err(|_| EngineError::Cancelled),
        }
    }

    /// Tell the sink that every row has been sent: only once every source sharing the
    /// channel has finished, so the sink commits after the last partition's last batch.
    pub async fn finish(&self) -> Result<(), EngineError> {
        if self.writers.fetch_sub(1, Ordering::AcqRel) > 1 {
            return Ok(());
        }
        self.tx
            .send(Message::End)
            .await
            .map_err(|_| EngineError::Cancelled)
    }
}

/// Where a sink writes.
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// PostgreSQL schema / MySQL database; `None`: the connection's default.
    pub schema: Option<String>,
    pub table: String,
    /// Replace the table's rows (staging table swapped in) instead of appending.
    pub overwrite: bool,
}

/// What a sink's `run` gets.
pub struct SinkContext {
    pub rx: mpsc::Receiver<Message>,
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
    pub columns: Vec<Column>,
    pub target: SinkSpec,
    /// Made when the sources could pass their binary COPY stream through (PostgreSQL only).
    pub copy_offer: Option<CopyOffer>,
}

/// What a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The rows of a query.
    Query(String),
    /// The records of a file.
    File(super::file::FileRead),
}

impl SourceSpec {
    /// The query a database source runs.
    pub fn query(&self) -> Result<&str, EngineError> {
        match self {
            SourceSpec::Query(query) => Ok(query),
            SourceSpec::File(_) => Err(EngineError::Internal(
                "a database source was given a file to read".into(),
            )),
        }
    }
}

/// Where a sink writes.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    /// A table (created, appended to or replaced).
    Table(TargetTable),
    /// A new file.
    File(super::file::FileWrite),
}

impl SinkSpec {
    /// The table a database sink writes.
    pub fn table(&self) -> Result<&TargetTable, EngineError> {
        match self {
            SinkSpec::Table(table) => Ok(table),
            SinkSpec::File(_) => Err(EngineError::Internal(
                "a database sink was given a file to write".into(),
            )),
        }
    }
}
