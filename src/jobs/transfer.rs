//! A transfer attempt: read the job, open its connections, run the pipeline; and saving its
//! end.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::actor::{on_engine, Conclusion, Outcome};
use super::JobDeps;
use crate::domain::connections::connect_spec;
use crate::engine::batch::{Progress, TargetTable};
use crate::engine::partition::Partitioning;
use crate::engine::pipeline::{run_transfer, TransferRequest};
use crate::engine::{ConnectSpec, EngineError};

/// The engine's view of a stored connection, or why it cannot be had.
pub(crate) async fn load_connection(
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

pub(crate) async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> Outcome {
    let transfer = match deps.store.get_transfer(id).await {
        Ok(Some(t)) => t,
        Ok(None) => return Outcome::Unrunnable(format!("transfer {id} no longer exists")),
        Err(e) => return Outcome::Failed(EngineError::Internal(format!("metadata store: {e}"))),
    };
    if cancel.is_cancelled() {
        return Outcome::Failed(EngineError::Cancelled);
    }
    let attempts = transfer.attempts + 1;
    if let Err(e) = deps.store.mark_transfer_running(id, attempts).await {
        return Outcome::Failed(EngineError::Internal(format!("metadata store: {e}")));
    }
    deps.events
        .publish(super::JobId::Transfer(id), super::events::Change::Started);
    let source = match load_connection(&deps, transfer.source_id, "source").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(why),
    };
    let target = match load_connection(&deps, transfer.target_id, "target").await {
        Ok(s) => s,
        Err(why) => return Outcome::Unrunnable(why),
    };
    let request = TransferRequest {
        source,
        target,
        query: transfer.query.clone(),
        target_table: TargetTable {
            schema: transfer.target_schema.clone(),
            table: transfer.target_table.clone(),
            overwrite: transfer.overwrite,
        },
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
            super::fail_points::check(&request.query);
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
pub(crate) async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
    let rows = match end.done {
        Some(Outcome::Transferred(rows)) => rows,
        _ => 0,
    };
    deps.store
        .finish_transfer(id, end.status, end.error, rows, end.bytes_read)
        .await
}
