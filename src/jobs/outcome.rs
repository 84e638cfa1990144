//! What every kind of job shares between its attempt and the actor: how an attempt ended, the
//! final word the store keeps, starting an attempt, and running engine work.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use tokio_util::sync::CancellationToken;

use super::events::Change;
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::domain::connections::connect_spec;
use crate::engine::batch::Progress;
use crate::engine::query::QueryOutput;
use crate::engine::{ConnectSpec, EngineError};
use crate::store::jobs::JobStatus;

/// How an attempt ended.
pub enum Outcome {
    /// Rows written, and the file written when the target is a file.
    Transferred {
        rows: u64,
        output_file_id: Option<i32>,
    },
    Queried(QueryOutput),
    Failed(EngineError),
    /// What the job needs (its row, connections, file) is gone or unusable: the code says
    /// which.
    Unrunnable(ErrorCode, String),
    /// A run's step done: what it found or made.
    Ran(RunOutput),
    Panicked(String),
}

/// What a run's step produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Records read (sampled, for schema detection).
    pub rows: u64,
    pub result: Option<serde_json::Value>,
    pub output_file_id: Option<i32>,
}

impl Outcome {
    /// The rows of an outcome that completed its job (`None`: it did not complete).
    pub fn completed_rows(&self) -> Option<u64> {
        match self {
            Self::Transferred { rows, .. } => Some(*rows),
            Self::Queried(output) => Some(output.rows.len() as u64),
            Self::Ran(output) => Some(output.rows),
            Self::Failed(_) | Self::Unrunnable(..) | Self::Panicked(_) => None,
        }
    }
}

/// The final word on a job, as the store keeps it.
pub struct Conclusion {
    pub status: JobStatus,
    /// (code, text) when the job failed.
    pub error: Option<(ErrorCode, String)>,
    /// Present when the job completed.
    pub done: Option<Outcome>,
    pub bytes_read: u64,
}

/// One kind of job: how an attempt runs, and how its end is saved. The actor holds a job id and
/// dispatches through this; a new kind is a module implementing it and one line in
/// `kinds::runner`.
pub trait JobRunner: Sync {
    /// Run one attempt to its outcome.
    fn attempt(
        &self,
        id: i32,
        deps: JobDeps,
        cancel: CancellationToken,
        progress: Arc<Progress>,
    ) -> LocalBoxFuture<'static, Outcome>;

    /// Store the job's final status and what it produced.
    fn save<'a>(
        &self,
        id: i32,
        deps: &'a JobDeps,
        end: Conclusion,
    ) -> LocalBoxFuture<'a, Result<(), sea_orm::DbErr>>;
}

/// Implement `JobRunner` for `$kind` with the module's `attempt` and `save` async functions
/// (of the trait's signatures, unboxed).
macro_rules! job_runner {
    ($kind:ident) => {
        impl $crate::jobs::outcome::JobRunner for $kind {
            fn attempt(
                &self,
                id: i32,
                deps: $crate::jobs::JobDeps,
                cancel: tokio_util::sync::CancellationToken,
                progress: std::sync::Arc<$crate::engine::batch::Progress>,
            ) -> futures_util::future::LocalBoxFuture<'static, $crate::jobs::outcome::Outcome> {
                futures_util::FutureExt::boxed_local(attempt(id, deps, cancel, progress))
            }

            fn save<'a>(
                &self,
                id: i32,
                deps: &'a $crate::jobs::JobDeps,
                end: $crate::jobs::outcome::Conclusion,
            ) -> futures_util::future::LocalBoxFuture<'a, Result<(), sea_orm::DbErr>> {
                futures_util::FutureExt::boxed_local(save(id, deps, end))
            }
        }
    };
}
pub(crate) use job_runner;

/// Start an attempt of `job` from its row as just read (`attempts_of` it: the attempts so
/// far): unless the row is gone or the job cancelled already, the job is `running` with one
/// attempt more, and announced. Returns the row and its attempt number.
pub async fn begin<T>(
    deps: &JobDeps,
    job: JobId,
    row: Result<Option<T>, sea_orm::DbErr>,
    attempts_of: impl Fn(&T) -> i32,
    cancel: &CancellationToken,
) -> Result<(T, i32), Outcome> {
    let row = match row {
        Ok(Some(row)) => row,
        Ok(None) => {
            return Err(Outcome::Unrunnable(
                ErrorCode::ConnectionNotFound,
                format!("{} {} no longer exists", job.kind().as_str(), job.id()),
            ))
        }
        Err(e) => return Err(store_failed(e)),
    };
    if cancel.is_cancelled() {
        return Err(Outcome::Failed(EngineError::Cancelled));
    }
    let attempts = attempts_of(&row) + 1;
    deps.store
        .mark_job_running(job, attempts)
        .await
        .map_err(|e| Outcome::Failed(EngineError::Internal(format!("metadata store: {e}"))))?;
    deps.events.publish(job, Change::Started);
    Ok((row, attempts))
}

/// The engine's view of a stored connection, or why it cannot be had.
pub async fn load_connection(
    deps: &JobDeps,
    connection_id: i32,
    role: &str,
) -> Result<ConnectSpec, String> {
    let timeouts = deps.settings.engine.timeouts();
    let connection = deps
        .store
        .get_connection(connection_id)
        .await
        .map_err(|e| format!("metadata store: {e}"))?
        .ok_or_else(|| format!("{role} connection {connection_id} no longer exists"))?;
    connect_spec(&connection, &deps.key, timeouts).map_err(|e| e.detail)
}

/// The store failed while an attempt read its job.
pub fn store_failed(e: sea_orm::DbErr) -> Outcome {
    Outcome::Failed(EngineError::Internal(format!("metadata store: {e}")))
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
