//! `JobActor`: one per job (transfer or query), under `actix::Supervisor`. Each attempt opens
//! its own connections and runs the engine on the engine runtime. A transient failure stops the
//! actor so that the supervisor restarts it (after a back-off) for another attempt, up to
//! `jobs.max_retries`; anything else ends the job with its final status.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;

use super::events::JobEnd;
use super::kinds::runner;
use super::messages::{Finished, JobId};
use super::outcome::{Conclusion, Outcome};
use super::JobDeps;
use crate::codes::ErrorCode;
use crate::engine::batch::Progress;
use crate::engine::EngineError;
use crate::store::jobs::JobStatus;

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
        let work = runner(job.kind()).attempt(job.id(), deps, cancel, progress);
        ctx.spawn(
            work.into_actor(self)
                .map(|outcome, act, ctx| act.conclude(outcome, ctx)),
        );
    }

    fn conclude(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        let (status, error, done) = match outcome {
            Outcome::Failed(EngineError::Cancelled) => (JobStatus::Cancelled, None, None),
            Outcome::Failed(e) if e.is_transient() && self.retries_left > 0 => {
                self.retries_left -= 1;
                tracing::warn!(job = ?self.job, error = %e, "Transient failure; restarting the job.");
                // The supervisor restarts this actor; `restarting` sets the back-off.
                ctx.stop();
                return;
            }
            Outcome::Failed(e) => (JobStatus::Error, Some((e.code(), e.to_string())), None),
            Outcome::Unrunnable(code, why) => (JobStatus::Error, Some((code, why)), None),
            Outcome::Panicked(why) => (
                JobStatus::Error,
                Some((ErrorCode::InternalError, format!("internal error: {why}"))),
                None,
            ),
            done @ (Outcome::Transferred { .. } | Outcome::Queried(_) | Outcome::Ran(_)) => {
                (JobStatus::Complete, None, Some(done))
            }
        };
        self.finished = true;
        let job = self.job;
        let registry = self.registry.clone();
        if status == JobStatus::Cancelled && self.deps.is_shutting_down() {
            // Left `running` in the store: the next start resumes it.
            tracing::info!(?job, "Job interrupted by shutdown.");
            registry.do_send(Finished(job));
            return;
        }
        match &error {
            Some((code, e)) => {
                tracing::warn!(?job, %status, code = code.code(), error = %e, "Job ended.")
            }
            None => tracing::info!(?job, %status, "Job ended."),
        }
        let end = JobEnd {
            status,
            rows: done.as_ref().and_then(Outcome::completed_rows).unwrap_or(0),
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
                let saved = runner(job.kind()).save(job.id(), &deps, conclusion).await;
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
