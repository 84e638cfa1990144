//! A query attempt: read the job, open its connection, run the statement and keep its result;
//! and saving its end (result rows with it).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::actor::{on_engine, Conclusion, Outcome};
use super::transfer::load_connection;
use super::JobDeps;
use crate::engine::batch::Progress;
use crate::engine::query::{run_query, QueryLimits};
use crate::engine::EngineError;
use crate::store::queries::QueryEnd;

pub(crate) async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> Outcome {
    let query = match deps.store.get_query(id).await {
        Ok(Some(q)) => q,
        Ok(None) => return Outcome::Unrunnable(format!("query {id} no longer exists")),
        Err(e) => return Outcome::Failed(EngineError::Internal(format!("metadata store: {e}"))),
    };
    if cancel.is_cancelled() {
        return Outcome::Failed(EngineError::Cancelled);
    }
    let attempts = query.attempts + 1;
    if let Err(e) = deps.store.mark_query_running(id, attempts).await {
        return Outcome::Failed(EngineError::Internal(format!("metadata store: {e}")));
    }
    deps.events
        .publish(super::JobId::Query(id), super::events::Change::Started);
    let mut spec = match load_connection(&deps, query.connection_id, "the").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(why),
    };
    // Until connections carry write grants, only admins' queries may change data. Read now,
    // not when queued: a user demoted meanwhile is held to it.
    spec.read_only = match deps.store.get_user(query.created_by).await {
        Ok(user) => !user.is_some_and(|u| u.admin),
        Err(e) => return Outcome::Failed(EngineError::Internal(format!("metadata store: {e}"))),
    };
    let limits = QueryLimits {
        max_rows: deps.settings.queries.max_rows,
        max_bytes: deps.settings.queries.max_bytes,
        batch_rows: deps.settings.jobs.batch_rows,
    };
    let span = tracing::info_span!("query", query_id = id, attempt = attempts);
    let sql = query.query.clone();
    let work = {
        let progress = progress.clone();
        async move {
            super::fail_points::check(&sql);
            run_query(spec, sql, limits, progress, cancel).await
        }
    };
    match on_engine(work, span, || async {}).await {
        Ok(Ok(output)) => Outcome::Queried(output),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(panic) => Outcome::Panicked(panic),
    }
}

pub(crate) async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
    let mut record = QueryEnd {
        status: end.status,
        error: end.error,
        columns: serde_json::json!([]),
        row_count: 0,
        rows_affected: None,
        truncated: false,
        rows: None,
    };
    if let Some(Outcome::Queried(output)) = end.done {
        record.columns = serde_json::to_value(&output.columns).unwrap_or_default();
        record.row_count = output.rows.len() as u64;
        record.rows_affected = output.rows_affected;
        record.truncated = output.truncated;
        if output.rows_affected.is_none() {
            record.rows = Some(serde_json::to_string(&output.rows).unwrap_or_default());
        }
    }
    deps.store.finish_query(id, record).await
}
