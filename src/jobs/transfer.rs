//! A transfer attempt: read the job, open its endpoints (a connection's query or a file; a
//! connection's table or a new file), run the pipeline; and saving its end.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

use super::outcome::{
    begin, job_runner, load_connection, on_engine, store_failed, Conclusion, Outcome,
};
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::domain::convert::{
    default_table, file_bytes, output_format, read_plan, stem, stored_output, written_schema,
    OutputFormat, OutputOptions,
};
use crate::engine::batch::{Progress, TargetTable};
use crate::engine::convert::Output;
use crate::engine::file::{FileRead, FileWrite, Handoff};
use crate::engine::partition::Partitioning;
use crate::engine::pipeline::{run_transfer, TransferRequest};
use crate::engine::types::Column;
use crate::engine::{ConnectSpec, EngineError, SinkSpec, SourceSpec};
use crate::storage::bridge::stream_of;
use crate::storage::{ByteStream, Stored};
use crate::store::files::{NewFile, READY};
use crate::store::transfers::Transfer;

/// Transfers as a kind of job.
pub struct TransferJob;

job_runner!(TransferJob);

/// A file a job writes: what its record needs.
pub(super) struct FileOut {
    output: Output,
    pub(super) to: &'static str,
    mime: &'static str,
    /// The columns the sink wrote (set when it starts).
    columns: Arc<OnceLock<Vec<Column>>>,
}

/// The transfer's source: a connection's query, or a stored file through its schema.
async fn reading(
    deps: &JobDeps,
    transfer: &Transfer,
) -> Result<(ConnectSpec, SourceSpec), Outcome> {
    if let Some(file_id) = transfer.source_file_id {
        return file_source(deps, file_id).await;
    }
    let (Some(source_id), Some(query)) = (transfer.source_id, transfer.query.clone()) else {
        return Err(Outcome::Unrunnable(
            ErrorCode::InternalError,
            "the transfer names neither a source connection and query nor a file".into(),
        ));
    };
    match load_connection(deps, source_id, "source").await {
        Ok(spec) => Ok((spec, SourceSpec::Query(query))),
        Err(why) => Err(Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why)),
    }
}

/// A stored file as a source, through its schema.
pub(super) async fn file_source(
    deps: &JobDeps,
    file_id: i32,
) -> Result<(ConnectSpec, SourceSpec), Outcome> {
    let file = match deps.store.get_file(file_id).await {
        Ok(Some(file)) if file.status == READY => file,
        Ok(_) => {
            return Err(Outcome::Unrunnable(
                ErrorCode::FileNotFound,
                format!("source file {file_id} no longer exists or is not ready"),
            ))
        }
        Err(e) => return Err(store_failed(e)),
    };
    // Checked when queued; the file's schema may have been edited since.
    let (input, fields) = read_plan(&file, None, None, None)
        .map_err(|e| Outcome::Failed(EngineError::File(e.detail)))?;
    let bytes = file_bytes(deps.files.clone(), &file, &input)
        .await
        .map_err(Outcome::Failed)?;
    let read = FileRead {
        bytes,
        input,
        fields,
    };
    Ok((ConnectSpec::file(), SourceSpec::File(read)))
}

/// A new file as a target, in format `format` written as `options` ask (a SQL script's table
/// named after `source_name` unless given): the sink, what the file's record needs, and the
/// stream of its bytes (stored while the job runs).
pub(super) fn file_target(
    format: &str,
    options: Option<OutputOptions>,
    source_name: &str,
) -> Result<(SinkSpec, FileOut, ByteStream), Outcome> {
    let OutputFormat {
        output,
        to,
        mime,
        table,
    } = output_format(Some(format), options)
        .map_err(|e| Outcome::Failed(EngineError::File(e.detail)))?;
    let table = table.unwrap_or_else(|| default_table(source_name));
    let (writer, bytes) = stream_of();
    let columns = Arc::new(OnceLock::new());
    let write = FileWrite {
        output: output.clone(),
        bytes: Handoff::new(writer),
        columns: columns.clone(),
        table,
    };
    let out = FileOut {
        output,
        to,
        mime,
        columns,
    };
    Ok((SinkSpec::File(write), out, bytes))
}

/// The transfer's target: a connection's table, or a new file (and the stream of its bytes,
/// stored while the transfer runs).
async fn writing(
    deps: &JobDeps,
    transfer: &Transfer,
) -> Result<(ConnectSpec, SinkSpec, Option<(FileOut, ByteStream)>), Outcome> {
    if let Some(format) = transfer.target_format.as_deref() {
        let options: Option<OutputOptions> = match transfer.target_options.as_deref() {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|e| {
                Outcome::Failed(EngineError::Internal(format!(
                    "the transfer's targetOptions: {e}"
                )))
            })?),
        };
        let source_name = transfer.source_name.as_deref().unwrap_or("data");
        let (write, out, bytes) = file_target(format, options, source_name)?;
        return Ok((ConnectSpec::file(), write, Some((out, bytes))));
    }
    let (Some(target_id), Some(table)) = (transfer.target_id, transfer.target_table.clone()) else {
        return Err(Outcome::Unrunnable(
            ErrorCode::InternalError,
            "the transfer names neither a target connection and table nor a file format".into(),
        ));
    };
    let spec = load_connection(deps, target_id, "target")
        .await
        .map_err(|why| Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why))?;
    let write = SinkSpec::Table(TargetTable {
        schema: transfer.target_schema.clone(),
        table,
        overwrite: transfer.overwrite,
    });
    Ok((spec, write, None))
}

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
    let (source, read) = match reading(&deps, &transfer).await {
        Ok(source) => source,
        Err(outcome) => return outcome,
    };
    let (target, write, file_out) = match writing(&deps, &transfer).await {
        Ok(target) => target,
        Err(outcome) => return outcome,
    };
    let request = TransferRequest {
        source,
        read,
        target,
        write,
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
    let key = uuid::Uuid::new_v4().to_string();
    let (files, limit) = (deps.files.clone(), deps.settings.files.max_size);
    let (mut file_out, stream) = file_out.unzip();
    let work = {
        let progress = progress.clone();
        let key = key.clone();
        let query = transfer.query.clone().unwrap_or_default();
        async move {
            super::fail_points::check(&query);
            let transferred = run_transfer(request, progress, cancel);
            match stream {
                None => transferred.await.map(|rows| (rows, None)),
                Some(bytes) => {
                    let (rows, stored) = tokio::join!(transferred, files.put(&key, bytes, limit));
                    stored_output(rows, stored).map(|(rows, stored)| (rows, Some(stored)))
                }
            }
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
        Ok(Ok((rows, None))) => Outcome::Transferred {
            rows,
            output_file_id: None,
        },
        Ok(Ok((rows, Some(stored)))) => match file_out.take() {
            Some(out) => publish(&deps, &transfer, &key, out, rows, stored).await,
            None => Outcome::Failed(EngineError::Internal("a file was written unasked".into())),
        },
        Ok(Err(e)) => Outcome::Failed(e),
        Err(panic) => Outcome::Panicked(panic),
    }
}

/// Record the written file (with the schema of the columns written) as the transfer's output.
async fn publish(
    deps: &JobDeps,
    transfer: &Transfer,
    key: &str,
    out: FileOut,
    rows: u64,
    stored: Stored,
) -> Outcome {
    let stem = transfer
        .source_name
        .as_deref()
        .map(stem)
        .filter(|n| !n.is_empty())
        .unwrap_or("transfer");
    let name = crate::domain::files::validate_name(&format!("{stem}-{}.{}", transfer.id, out.to))
        .unwrap_or_else(|_| format!("transfer-{}.{}", transfer.id, out.to));
    match save_output(deps, transfer.created_by, name, key, out, rows, stored).await {
        Ok(file_id) => Outcome::Transferred {
            rows,
            output_file_id: Some(file_id),
        },
        Err(outcome) => outcome,
    }
}

/// Record a file a job wrote (stored under `key`), owned by `owner`, with the schema of the
/// columns written; its id.
pub(super) async fn save_output(
    deps: &JobDeps,
    owner: i32,
    name: String,
    key: &str,
    out: FileOut,
    rows: u64,
    stored: Stored,
) -> Result<i32, Outcome> {
    let new = NewFile {
        owner_id: owner,
        name,
        mime: out.mime.into(),
        format: Some(out.to.into()),
        size: stored.size as i64,
        status: READY,
        storage_key: key.to_string(),
        sha256: Some(stored.sha256),
    };
    let file = match deps.store.create_file(new).await {
        Ok(file) => file,
        Err(e) => {
            let _ = deps.files.delete(key).await;
            return Err(store_failed(e));
        }
    };
    let columns = out.columns.get().cloned().unwrap_or_default();
    let schema = match out.output {
        Output::Sql { .. } => Err("a SQL script is not read as records".to_string()),
        _ => Ok(written_schema(&out.output, out.to, &columns, rows)),
    };
    if let Err(e) = deps
        .store
        .set_file_schema(file.id, Some(out.to.into()), schema)
        .await
    {
        return Err(store_failed(e));
    }
    Ok(file.id)
}

/// Save a transfer's end. Nothing was committed unless it completed, so its rows count 0.
async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
    let (rows, output_file_id) = match end.done {
        Some(Outcome::Transferred {
            rows,
            output_file_id,
        }) => (rows, output_file_id),
        _ => (0, None),
    };
    deps.store
        .finish_transfer(
            id,
            end.status,
            end.error,
            rows,
            end.bytes_read,
            output_file_id,
        )
        .await
}
