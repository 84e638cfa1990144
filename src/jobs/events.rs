//! Live job events: every status change of a job (queued, started, finished) is announced here,
//! to the live-event (SSE) streams through a broadcast channel and to the job metrics.
//!
//! Publishing never waits for a subscriber: a subscriber that falls more than `CAPACITY`
//! events behind is told it lagged and re-reads what it needs from the store. Progress is not
//! broadcast at all: streams sample the live progress map on their own clock, so a stream that
//! is not read costs a job nothing.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::JobId;
use crate::engine::batch::Progress;
use crate::store::jobs::{JobKind, JobStatus};
use crate::telemetry::{names, Metrics};

/// Status changes a subscriber may fall behind by before it is told it lagged.
const CAPACITY: usize = 1024;

/// What happened to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Submitted (or queued again at start-up); waiting for a slot.
    Queued,
    /// An attempt has marked it `running`.
    Started,
    /// Its final status (complete, error, cancelled) is in the store.
    Finished,
}

/// One status change, as broadcast. Subscribers read the job itself from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobEvent {
    pub job: JobId,
    pub change: Change,
}

/// How a job ended, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct JobEnd {
    pub status: JobStatus,
    /// Rows committed (transfer) or kept (query).
    pub rows: u64,
    pub bytes_read: u64,
    /// Run time; `None` for a job cancelled before it started.
    pub duration: Option<Duration>,
}

/// The hub: one per application, shared by the registry, the job actors and the API.
#[derive(Clone)]
pub struct JobEvents {
    tx: broadcast::Sender<JobEvent>,
    metrics: Arc<Metrics>,
    /// Cancelled when the service stops: open streams end so the HTTP server can drain.
    closing: CancellationToken,
}

impl JobEvents {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self {
            tx,
            metrics,
            closing: CancellationToken::new(),
        }
    }

    /// Announce a change. Never blocks; nobody listening is fine.
    pub fn publish(&self, job: JobId, change: Change) {
        let _ = self.tx.send(JobEvent { job, change });
    }

    /// Announce a job's end (its final status is already stored) and count it.
    pub fn finished(&self, job: JobId, end: JobEnd) {
        let kind = job.kind().as_str();
        let status = end.status.as_str();
        self.metrics.record(|| {
            metrics::counter!(names::JOBS_TOTAL, "kind" => kind, "status" => status).increment(1);
            metrics::counter!(names::ROWS_WRITTEN_TOTAL, "kind" => kind).increment(end.rows);
            metrics::counter!(names::BYTES_READ_TOTAL, "kind" => kind).increment(end.bytes_read);
            if let Some(duration) = end.duration {
                metrics::histogram!(names::JOB_DURATION_SECONDS, "kind" => kind, "status" => status)
                    .record(duration.as_secs_f64());
            }
        });
        self.publish(job, Change::Finished);
    }

    /// Set the gauges of jobs running and queued, by kind.
    pub fn load(&self, running: [usize; JobKind::ALL.len()], queued: [usize; JobKind::ALL.len()]) {
        self.metrics.record(|| {
            for (i, kind) in JobKind::ALL.into_iter().enumerate() {
                let kind = kind.as_str();
                metrics::gauge!(names::JOBS_RUNNING, "kind" => kind).set(running[i] as f64);
                metrics::gauge!(names::JOBS_QUEUED, "kind" => kind).set(queued[i] as f64);
            }
        });
    }

    /// A new listener; it counts as a live-event client until dropped.
    pub fn subscribe(&self) -> Subscription {
        let rx = self.tx.subscribe();
        self.set_clients_gauge(self.subscribers());
        Subscription {
            rx,
            hub: self.clone(),
        }
    }

    /// End every open live-event stream (the service is stopping). A graceful stop waits for
    /// in-flight responses, and an event stream would otherwise hold it for the whole timeout.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Listeners now (open live-event streams).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    fn set_clients_gauge(&self, clients: usize) {
        self.metrics
            .record(|| metrics::gauge!(names::SSE_CLIENTS).set(clients as f64));
    }
}

/// A listener of the hub. Dropping it (the stream of a client that went away) unsubscribes.
pub struct Subscription {
    rx: broadcast::Receiver<JobEvent>,
    hub: JobEvents,
}

impl Subscription {
    /// The next change; `Err(Lagged)` when changes were missed.
    ///
    /// # Cancel safety
    /// Cancel safe (`broadcast::Receiver::recv`).
    pub async fn recv(&mut self) -> Result<JobEvent, broadcast::error::RecvError> {
        self.rx.recv().await
    }

    /// Cancelled when the hub is closed: the stream should end.
    pub fn closing(&self) -> CancellationToken {
        self.hub.closing.clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // This receiver is dropped after `drop` returns: it still counts here.
        let now = self.hub.subscribers().saturating_sub(1);
        self.hub.set_clients_gauge(now);
    }
}

/// A running job's progress, as the `progress` event carries it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    /// `transfer` or `query`.
    #[schema(example = "transfer")]
    pub kind: &'static str,
    pub id: i32,
    /// Rows written so far (for a query: rows received).
    pub rows_written: u64,
    pub bytes_read: u64,
    /// Average since the job started.
    pub rows_per_second: f64,
    pub elapsed_ms: u64,
}

impl ProgressEvent {
    pub fn read(job: JobId, progress: &Progress) -> Self {
        let elapsed = progress.started.elapsed();
        let rows = progress.rows_written();
        let seconds = elapsed.as_secs_f64();
        Self {
            kind: job.kind().as_str(),
            id: job.id(),
            rows_written: rows,
            bytes_read: progress.bytes_read(),
            rows_per_second: if seconds > 0.0 {
                (rows as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            },
            elapsed_ms: elapsed.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_never_reads_neither_blocks_publishing_nor_misses_the_news_of_lag() {
        let hub = JobEvents::new(Metrics::new());
        let mut stalled = hub.subscribe();
        // Far more changes than the channel holds, with nobody reading: publishing returns.
        for id in 0..(CAPACITY as i32 * 3) {
            hub.publish(JobId::Transfer(id), Change::Queued);
        }
        // The stalled reader is told it fell behind, then reads the newest changes.
        match stalled.recv().await {
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                assert_eq!(missed, (CAPACITY * 2) as u64)
            }
            other => panic!("expected a lag notice, got {other:?}"),
        }
        let next = stalled.recv().await.unwrap();
        assert_eq!(next.job, JobId::Transfer(CAPACITY as i32 * 2));
        assert_eq!(hub.subscribers(), 1);
        drop(stalled);
        assert_eq!(hub.subscribers(), 0);
    }

    #[tokio::test]
    async fn closing_the_hub_is_seen_by_every_subscription() {
        let hub = JobEvents::new(Metrics::new());
        let a = hub.subscribe();
        let b = hub.subscribe();
        assert!(!a.closing().is_cancelled());
        hub.close();
        assert!(a.closing().is_cancelled() && b.closing().is_cancelled());
    }
}
