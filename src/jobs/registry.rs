//! The `JobRegistry` actor: the queue (`jobs.max_concurrent` at a time), the addresses of
//! running job actors, and cancellation. Each job actor runs under `actix::Supervisor` on the
//! job arbiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use actix::Supervisor;
use tokio_util::sync::CancellationToken;

use super::actor::JobActor;
use super::events::Change;
use super::messages::{Cancel, CancelOutcome, Finished, GetLoad, JobId, Load, Shutdown, Submit};
use super::JobDeps;
use crate::engine::batch::Progress;
use crate::store::jobs::JobKind;

struct Running {
    /// Kept so that the supervisor may restart the actor; dropped when the job ends.
    _addr: Addr<JobActor>,
    cancel: CancellationToken,
}

pub struct JobRegistry {
    deps: JobDeps,
    queue: VecDeque<JobId>,
    running: HashMap<JobId, Running>,
    arbiter: Arbiter,
}

impl JobRegistry {
    pub fn new(deps: JobDeps) -> Self {
        Self {
            deps,
            queue: VecDeque::new(),
            running: HashMap::new(),
            arbiter: Arbiter::new(),
        }
    }

    /// Queue a job and announce it.
    fn enqueue(&mut self, job: JobId) {
        if !self.queue.contains(&job) && !self.running.contains_key(&job) {
            self.queue.push_back(job);
            self.deps.events.publish(job, Change::Queued);
        }
    }

    /// Jobs running and queued, by kind, to the gauges.
    fn report_load(&self) {
        let (mut running, mut queued) = ([0; JobKind::ALL.len()], [0; JobKind::ALL.len()]);
        self.running
            .keys()
            .for_each(|j| running[j.kind().index()] += 1);
        self.queue
            .iter()
            .for_each(|j| queued[j.kind().index()] += 1);
        self.deps.events.load(running, queued);
    }

    fn try_start(&mut self, ctx: &mut Context<Self>) {
        self.start_free_slots(ctx);
        self.report_load();
    }

    fn start_free_slots(&mut self, ctx: &mut Context<Self>) {
        if self.deps.is_shutting_down() {
            return;
        }
        let limit = self.deps.settings.jobs.max_concurrent;
        while self.running.len() < limit {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            let cancel = CancellationToken::new();
            let progress = Arc::new(Progress::default());
            self.deps.progress.insert(job, progress.clone());
            let registry = ctx.address().recipient();
            let deps = self.deps.clone();
            let token = cancel.clone();
            let addr = Supervisor::start_in_arbiter(&self.arbiter.handle(), move |_| {
                JobActor::new(job, deps, registry, token, progress)
            });
            tracing::debug!(?job, running = self.running.len() + 1, "Job started.");
            self.running.insert(
                job,
                Running {
                    _addr: addr,
                    cancel,
                },
            );
        }
    }
}

impl Actor for JobRegistry {
    type Context = Context<Self>;

    /// Jobs that a crash or restart left `queued` or `running` are queued again.
    fn started(&mut self, ctx: &mut Self::Context) {
        let store = self.deps.store.clone();
        ctx.wait(
            async move { store.jobs_to_resume().await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(jobs) => {
                        if !jobs.is_empty() {
                            tracing::info!(jobs = jobs.len(), "Resuming unfinished jobs.");
                        }
                        for job in jobs {
                            act.enqueue(job);
                        }
                        act.try_start(ctx);
                    }
                    Err(e) => tracing::error!(error = %e, "Could not read unfinished jobs."),
                }),
        );
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        for running in self.running.values() {
            running.cancel.cancel();
        }
        self.arbiter.stop();
        self.deps
            .events
            .load([0; JobKind::ALL.len()], [0; JobKind::ALL.len()]);
    }
}

impl Handler<Submit> for JobRegistry {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Self::Context) {
        self.enqueue(msg.0);
        self.try_start(ctx);
    }
}

impl Handler<Cancel> for JobRegistry {
    type Result = CancelOutcome;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Self::Context) -> CancelOutcome {
        if let Some(position) = self.queue.iter().position(|j| *j == msg.0) {
            self.queue.remove(position);
            self.report_load();
            return CancelOutcome::Dequeued;
        }
        match self.running.get(&msg.0) {
            Some(running) => {
                running.cancel.cancel();
                CancelOutcome::Signalled
            }
            None => CancelOutcome::NotActive,
        }
    }
}

impl Handler<Finished> for JobRegistry {
    type Result = ();

    fn handle(&mut self, msg: Finished, ctx: &mut Self::Context) {
        self.running.remove(&msg.0);
        self.deps.progress.remove(&msg.0);
        tracing::debug!(job = ?msg.0, running = self.running.len(), "Job finished.");
        self.try_start(ctx);
    }
}

impl Handler<GetLoad> for JobRegistry {
    type Result = MessageResult<GetLoad>;

    fn handle(&mut self, _msg: GetLoad, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(Load {
            running: self.running.len(),
            queued: self.queue.len(),
        })
    }
}

impl Handler<Shutdown> for JobRegistry {
    type Result = ();

    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) {
        self.deps
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.queue.clear();
        self.report_load();
        for running in self.running.values() {
            running.cancel.cancel();
        }
    }
}
