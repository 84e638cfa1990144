//! `JobActor`: one per job (transfer or query), under `actix::Supervisor`. Each attempt opens
//! its own connections and runs the engine on the engine runtime. A transient failure stops the
//! actor so that the supervisor restarts it (after a back-off) for another attempt, up to
//! `jobs.max_retries`; anything else ends the job with its final status.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;

use super::events::JobEnd;
use super::messages::{Finished, JobId};
use super::{query, transfer, JobDeps};
use crate::codes::ErrorCode;
use crate::engine::batch::Progress;
use crate::engine::query::QueryOutput;
use crate::engine::EngineError;
use crate::store::transfers::{CANCELLED, COMPLETE, ERROR};

/// How an attempt ended.
pub enum Outcome {
    Transferred(u64),
    Queried(QueryOutput),
    Failed(EngineError),
    /// The job's row or connections are gone or unreadable.
    Unrunnable(String),
    Panicked(String),
}

/// The final word on a job, as the store keeps it.
pub struct Conclusion {
    pub status: &'static str,
    /// (code, text) when the job failed.
    pub error: Option<(ErrorCode, String)>,
    /// Present when the job completed.
    pub done: Option<Outcome>,
    pub bytes_read: u64,
}

pub struct JobActor {
    job: JobId,
    deps: JobDeps,
    registry: Recipient<Finished>,
    cancel: CancellationToken,
    progress: Arc<Progress>,
    retries_left: u32,
    delay: Option<Duration>,
    restarts: u32,
    finished: bool,
}

impl JobActor {
    pub fn new(
        job: JobId,
        deps: JobDeps,
        registry: Recipient<Finished>,
        cancel: CancellationToken,
        progress: Arc<Progress>,
    ) -> Self {
        let retries_left = deps.settings.jobs.max_retries;
        Self {
            job,
            deps,
            registry,
            cancel,
            progress,
            retries_left,
            delay: None,
            restarts: 0,
            finished: false,
        }
    }

    fn run_attempt(&mut self, ctx: &mut Context<Self>) {
        let job = self.job;
        let deps = self.deps.clone();
        let cancel = self.cancel.clone();
        let progress = self.progress.clone();
        let work: std::pin::Pin<Box<dyn Future<Output = Outcome>>> = match job {
            JobId::Transfer(id) => Box::pin(transfer::attempt(id, deps, cancel, progress)),
            JobId::Query(id) => Box::pin(query::attempt(id, deps, cancel, progress)),
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|outcome, act, ctx| act.conclude(outcome, ctx)),
        );
    }

    fn conclude(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        let (status, error, done) = match outcome {
            done @ (Outcome::Transferred(_) | Outcome::Queried(_)) => (COMPLETE, None, Some(done)),
            Outcome::Failed(EngineError::Cancelled) => (CANCELLED, None, None),
            Outcome::Failed(e) if e.is_transient() && self.retries_left > 0 => {
                self.retries_left -= 1;
                tracing::warn!(job = ?self.job, error = %e, "Transient failure; restarting the job.");
                // The supervisor restarts this actor; `restarting` sets the back-off.
                ctx.stop();
                return;
            }
            Outcome::Failed(e) => (ERROR, Some((e.code(), e.to_string())), None),
            Outcome::Unrunnable(why) => (ERROR, Some((ErrorCode::ConnectionNotFound, why)), None),
            Outcome::Panicked(why) => (
                ERROR,
                Some((ErrorCode::InternalError, format!("internal error: {why}"))),
                None,
            ),
        };
        self.finished = true;
        let job = self.job;
        let registry = self.registry.clone();
        if status == CANCELLED && self.deps.is_shutting_down() {
            // Left `running` in the store: the next start resumes it.
            tracing::info!(?job, "Job interrupted by shutdown.");
            registry.do_send(Finished(job));
            return;
        }
        match &error {
            Some((code, e)) => {
                tracing::warn!(?job, status, code = code.code(), error = %e, "Job ended.")
            }
            None => tracing::info!(?job, status, "Job ended."),
        }
        let end = JobEnd {
            status,
            rows: match &done {
                Some(Outcome::Transferred(rows)) => *rows,
                Some(Outcome::Queried(output)) => output.rows.len() as u64,
                _ => 0,
            },
            bytes_read: self.progress.bytes_read(),
            duration: Some(self.progress.started.elapsed()),
        };
        let conclusion = Conclusion {
            status,
            error,
            done,
            bytes_read: self.progress.bytes_read(),
        };
        let deps = self.deps.clone();
        ctx.spawn(
            async move {
                let saved = match job {
                    JobId::Transfer(id) => transfer::save(id, &deps, conclusion).await,
                    JobId::Query(id) => query::save(id, &deps, conclusion).await,
                };
                if let Err(e) = saved {
                    tracing::error!(?job, error = %e, "Could not save the final status.");
                }
                deps.events.finished(job, end);
                registry.do_send(Finished(job));
            }
            .into_actor(self),
        );
    }
}

impl Actor for JobActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.finished {
            return;
        }
        match self.delay.take() {
            Some(delay) => {
                ctx.run_later(delay, |act, ctx| act.run_attempt(ctx));
            }
            None => self.run_attempt(ctx),
        }
    }
}

impl Supervised for JobActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.finished {
            return;
        }
        let base = self.deps.settings.jobs.retry_backoff_ms;
        let delay = Duration::from_millis(base.saturating_mul(1 << self.restarts.min(10)));
        self.restarts += 1;
        self.progress.reset();
        self.delay = Some(delay);
        tracing::info!(job = ?self.job, ?delay, "Restarting the job.");
    }
}

/// Run a job's engine work on the engine runtime, calling `tick` every second while it runs
/// (to save progress). A panic in the work becomes `Outcome::Panicked`.
pub async fn on_engine<T, F, Tick, TickFut>(
    work: F,
    span: tracing::Span,
    mut tick: Tick,
) -> Result<Result<T, EngineError>, String>
where
    T: Send + 'static,
    F: Future<Output = Result<T, EngineError>> + Send + 'static,
    Tick: FnMut() -> TickFut,
    TickFut: Future<Output = ()>,
{
    let mut handle = super::engine_runtime().spawn(tracing::Instrument::instrument(work, span));
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.tick().await;
    loop {
        tokio::select! {
            joined = &mut handle => {
                return match joined {
                    Ok(result) => Ok(result),
                    Err(e) if e.is_panic() => {
                        let payload = e.into_panic();
                        let text = payload
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "unknown cause".into());
                        Err(format!("the job panicked: {text}"))
                    }
                    Err(e) => Err(format!("the job was aborted: {e}")),
                };
            }
            _ = every_second.tick() => tick().await,
        }
    }
}
