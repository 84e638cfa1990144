//! A transfer attempt: read the job, open its connections, run the pipeline; and saving its
//! end.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::outcome::{begin, job_runner, load_connection, on_engine, Conclusion, Outcome};
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::engine::batch::{Progress, TargetTable};
use crate::engine::partition::Partitioning;
use crate::engine::pipeline::{run_transfer, TransferRequest};
use crate::engine::{SinkSpec, SourceSpec};

/// Transfers as a kind of job.
pub struct TransferJob;

job_runner!(TransferJob);

async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> Outcome {
    let row = deps.store.get_transfer(id).await;
    let (transfer, attempts) =
        match begin(&deps, JobId::Transfer(id), row, |r| r.attempts, &cancel).await {
            Ok(started) => started,
            Err(outcome) => return outcome,
        };
    let source = match load_connection(&deps, transfer.source_id, "source").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why),
    };
    let target = match load_connection(&deps, transfer.target_id, "target").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why),
    };
    let request = TransferRequest {
        source,
        read: SourceSpec::Query(transfer.query.clone()),
        target,
        write: SinkSpec::Table(TargetTable {
            schema: transfer.target_schema.clone(),
            table: transfer.target_table.clone(),
            overwrite: transfer.overwrite,
        }),
        batch_rows: deps.settings.jobs.batch_rows,
        partitioning: transfer
            .partition_column
            .clone()
            .zip(transfer.partitions)
            .map(|(column, partitions)| Partitioning {
                column,
                partitions: partitions.max(1) as u32,
            }),
    };
    let span = tracing::info_span!("transfer", transfer_id = id, attempt = attempts);
    let work = {
        let progress = progress.clone();
        async move {
            super::fail_points::check(&transfer.query);
            run_transfer(request, progress, cancel).await
        }
    };
    let result = on_engine(work, span, || {
        let store = deps.store.clone();
        let (rows, bytes) = (progress.rows_written(), progress.bytes_read());
        async move {
            let _ = store.save_transfer_progress(id, rows, bytes).await;
        }
    })
    .await;
    match result {
        Ok(Ok(rows)) => Outcome::Transferred(rows),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(panic) => Outcome::Panicked(panic),
    }
}

/// Save a transfer's end. Nothing was committed unless it completed, so its rows count 0.
async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
    let rows = match end.done {
        Some(Outcome::Transferred(rows)) => rows,
        _ => 0,
    };
    deps.store
        .finish_transfer(id, end.status, end.error, rows, end.bytes_read)
        .await
}
