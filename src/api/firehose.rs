//! `/events`: the admins' stream of every job (Server-Sent Events): each job's status changes
//! with the job itself, and the progress of every running job.

use std::collections::VecDeque;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use super::events::{event_stream, frame, ticker, KEEP_ALIVE, KEEP_ALIVE_EVERY, PROGRESS_EVERY};
use super::jobs::reload;
use super::queries::Queries;
use super::runs::Runs;
use super::transfers::Transfers;
use super::{resource, State};
use crate::jobs::events::{Change, ProgressEvent, Subscription};
use crate::jobs::JobId;
use crate::store::jobs::JobKind;

/// A job of any kind as its GET answers it; `None` once deleted.
async fn job_json(state: &State, job: JobId) -> Result<Option<Value>, ApiError> {
    match job.kind() {
        JobKind::Transfer => reload::<Transfers>(state, job.id()).await,
        JobKind::Query => reload::<Queries>(state, job.id()).await,
        JobKind::Run => reload::<Runs>(state, job.id()).await,
    }
}

/// The admins' stream of every job.
struct Firehose {
    state: State,
    events: Subscription,
    closing: CancellationToken,
    progress: Interval,
    keep_alive: Interval,
    pending: VecDeque<Bytes>,
}

impl Firehose {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            tokio::select! {
                biased;
                _ = self.closing.cancelled() => return None,
                received = self.events.recv() => match received {
                    Ok(event) => {
                        let name = match event.change {
                            Change::Queued => "queued",
                            Change::Started => "started",
                            Change::Finished => "finished",
                        };
                        match job_json(&self.state, event.job).await {
                            Ok(Some(job)) => {
                                let data = json!({
                                    "kind": event.job.kind().as_str(), "id": event.job.id(), "job": job,
                                });
                                return Some(frame(name, &data));
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(job = ?event.job, error = %e,
                                "Live events could not read the job."),
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "A live-event client fell behind; changes dropped.");
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.progress.tick() => {
                    let mut running: Vec<ProgressEvent> = self
                        .state
                        .progress
                        .iter()
                        .map(|entry| ProgressEvent::read(*entry.key(), entry.value()))
                        .collect();
                    running.sort_by_key(|p| (p.kind, p.id));
                    self.pending
                        .extend(running.iter().map(|p| frame("progress", p)));
                }
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(KEEP_ALIVE)),
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    description = "Admins only. One Server-Sent Events stream for every job: `queued`, `started` and `finished` (data `{kind, id, job}` with the job's resource) and `progress` (at most every 500 ms per running job; data as in `ProgressEvent`). A `: keep-alive` comment every 15 s.",
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn all_events(state: State, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let events = state.events.subscribe();
    let firehose = Firehose {
        closing: events.closing(),
        events,
        state,
        progress: ticker(PROGRESS_EVERY),
        keep_alive: ticker(KEEP_ALIVE_EVERY),
        pending: VecDeque::new(),
    };
    Ok(event_stream(firehose, |mut s| async move {
        let bytes = s.next().await?;
        Some((bytes, s))
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/events").route(web::get().to(all_events)));
}
