//! A query attempt: read the job, open its connection, run the statement and keep its result;
//! and saving its end (result rows with it).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::outcome::{
    begin, job_runner, load_connection, on_engine, store_failed, Conclusion, Outcome,
};
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::engine::batch::Progress;
use crate::engine::query::{run_query, QueryLimits};
use crate::store::queries::QueryEnd;

/// Queries as a kind of job.
pub struct QueryJob;

job_runner!(QueryJob);

async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> Outcome {
    let row = deps.store.get_query(id).await;
    let (query, attempts) = match begin(&deps, JobId::Query(id), row, |r| r.attempts, &cancel).await
    {
        Ok(started) => started,
        Err(outcome) => return outcome,
    };
    let mut spec = match load_connection(&deps, query.connection_id, "the").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why),
    };
    // Until connections carry write grants, only admins' queries may change data. Read now,
    // not when queued: a user demoted meanwhile is held to it.
    spec.read_only = match deps.store.get_user(query.created_by).await {
        Ok(user) => !user.is_some_and(|u| u.admin),
        Err(e) => return store_failed(e),
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

async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
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
