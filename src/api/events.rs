//! Live events as Server-Sent Events: the stream of one job's status and progress (served by
//! each kind's `/{id}/events`, see `jobs::events`), and what every stream is made of (frames,
//! tickers, the response). The admins' stream of every job is in `firehose`.
//!
//! A stream is polled only when its client can take more bytes, so a slow client simply
//! samples less often: status changes wait in its subscription (a lagging one re-reads the job)
//! and progress is read from the live map when the stream is polled, never queued. When the
//! client goes away, actix drops the stream and with it the subscription.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::error::ApiError;
use super::State;
use crate::jobs::events::{ProgressEvent, Subscription};
use crate::jobs::JobId;
use crate::store::jobs::JobStatus;

/// Progress events are at most this frequent, per job and stream.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// A comment line this often keeps proxies and clients from timing the stream out.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One message: `event: <name>` and its data as one line of JSON.
pub(crate) fn frame(event: &str, data: &impl Serialize) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

pub(crate) fn ticker(period: Duration) -> Interval {
    let mut ticker = interval_at(Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

fn status_of(job: &Value) -> &str {
    job["status"].as_str().unwrap_or_default()
}

/// A `text/event-stream` response reading frames from `next` until it returns `None`.
pub(crate) fn event_stream<S, F, Fut>(state: S, next: F) -> HttpResponse
where
    S: 'static,
    F: FnMut(S) -> Fut + 'static,
    Fut: std::future::Future<Output = Option<(Bytes, S)>> + 'static,
{
    let mut next = next;
    let stream = futures_util::stream::unfold(state, move |s| {
        let step = next(s);
        async move { step.await.map(|(bytes, s)| (Ok::<_, Infallible>(bytes), s)) }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        // Reverse proxies (nginx) would otherwise buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

/// Reads a job of one kind as its GET answers it (`None` once deleted).
pub type Reload = for<'a> fn(&'a State, i32) -> LocalBoxFuture<'a, Result<Option<Value>, ApiError>>;

/// One job's stream.
struct JobStream {
    state: State,
    job: JobId,
    reload: Reload,
    events: Subscription,
    closing: CancellationToken,
    /// The resource as read at connect, sent first.
    first: Option<Value>,
    /// The last status sent.
    status: String,
    progress: Interval,
    keep_alive: Interval,
    done: bool,
}

impl JobStream {
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(self.status_frame(first));
        }
        while !self.done {
            tokio::select! {
                biased;
                _ = self.closing.cancelled() => return None,
                received = self.events.recv() => match received {
                    Ok(event) if event.job != self.job => {}
                    // Its own change, or changes were missed: read the job again.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        if let Some(frame) = self.refresh().await {
                            return Some(frame);
                        }
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.progress.tick() => {
                    if self.status == JobStatus::Running.as_str() {
                        let live = self.state.progress.get(&self.job).map(|p| p.clone());
                        if let Some(progress) = live {
                            let event = ProgressEvent::read(self.job, &progress);
                            return Some(frame("progress", &event));
                        }
                    }
                }
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(KEEP_ALIVE)),
            }
        }
        None
    }

    fn status_frame(&mut self, job: Value) -> Bytes {
        self.status = status_of(&job).to_string();
        self.done = JobStatus::parse(&self.status).is_some_and(JobStatus::is_final);
        frame("status", &job)
    }

    /// A `status` frame if the stored status differs from the last one sent.
    async fn refresh(&mut self) -> Option<Bytes> {
        match (self.reload)(&self.state, self.job.id()).await {
            Ok(Some(job)) if status_of(&job) != self.status => Some(self.status_frame(job)),
            Ok(Some(_)) => None,
            Ok(None) => {
                // Deleted (only a finished job can be): nothing more will happen to it.
                self.done = true;
                None
            }
            Err(e) => {
                tracing::warn!(job = ?self.job, error = %e, "Live events could not read the job.");
                None
            }
        }
    }
}

/// The stream of one job's `status` and `progress` events. `events` must have been subscribed
/// before `first` (the job as its GET answers it, as `reload` reads it again) was read, so that
/// no change falls between.
pub fn job_stream(
    state: State,
    job: JobId,
    reload: Reload,
    events: Subscription,
    first: Value,
) -> HttpResponse {
    let stream = JobStream {
        state,
        job,
        reload,
        closing: events.closing(),
        events,
        first: Some(first),
        status: String::new(),
        progress: ticker(PROGRESS_EVERY),
        keep_alive: ticker(KEEP_ALIVE_EVERY),
        done: false,
    };
    event_stream(stream, |mut s| async move {
        let bytes = s.next().await?;
        Some((bytes, s))
    })
}
