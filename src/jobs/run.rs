//! A run attempt: the step it names, on its file; and saving its end. Steps: `detect-schema`
//! (the file's schema read from its first bytes and recorded on the file), `convert` (the
//! file converted, streamed, into a new file), `load` (the file's records into a table) and
//! `export` (a connection's query into a new file; it reads no file).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::outcome::{
    begin, job_runner, load_connection, on_engine, store_failed, Conclusion, Outcome, RunOutput,
};
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::engine::batch::Progress;
use crate::engine::EngineError;
use crate::store::files::READY;
use crate::store::runs::RunEnd;

/// The steps a run may take.
pub const STEPS: &[&str] = &["detect-schema", "convert", "load", "export"];

/// Runs as a kind of job.
pub struct RunJob;

job_runner!(RunJob);

async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    progress: Arc<Progress>,
) -> Outcome {
    let row = deps.store.get_run(id).await;
    let (run, _) = match begin(&deps, JobId::Run(id), row, |r| r.attempts, &cancel).await {
        Ok(started) => started,
        Err(outcome) => return outcome,
    };
    if run.step == "export" {
        return export(&deps, &run, progress, cancel).await;
    }
    let Some(file_id) = run.file_id else {
        return Outcome::Unrunnable(
            ErrorCode::InternalError,
            format!("a {} run names no file", run.step),
        );
    };
    let file = match deps.store.get_file(file_id).await {
        Ok(Some(file)) if file.status == READY => file,
        Ok(Some(file)) => {
            return Outcome::Unrunnable(
                ErrorCode::FileNotReady,
                format!("file {} is {}, not ready", file.id, file.status),
            )
        }
        Ok(None) => {
            return Outcome::Unrunnable(
                ErrorCode::FileNotFound,
                format!("file {file_id} no longer exists"),
            )
        }
        Err(e) => return store_failed(e),
    };
    match run.step.as_str() {
        "detect-schema" => detect(&deps, &run, &file).await,
        "convert" => convert(&deps, &run, &file, cancel).await,
        "load" => load(&deps, &run, file_id, progress, cancel).await,
        other => Outcome::Unrunnable(
            ErrorCode::InternalError,
            format!("{other:?} is not a step Sluice runs"),
        ),
    }
}

async fn detect(
    deps: &JobDeps,
    run: &crate::store::runs::Run,
    file: &crate::store::files::File,
) -> Outcome {
    use crate::domain::convert::DetectOptions;
    // Checked when queued.
    let nulls = match options_of::<DetectOptions>(run).and_then(|o| {
        o.null_words()
            .map_err(|e| Outcome::Failed(EngineError::Internal(format!("the run's options: {e}"))))
    }) {
        Ok(nulls) => nulls,
        Err(outcome) => return outcome,
    };
    let detected = match crate::domain::files::detect(&deps.store, &deps.files, file, nulls).await {
        Ok(detected) => detected,
        Err(e) => return Outcome::Failed(EngineError::Internal(e.to_string())),
    };
    match (detected.schema, detected.schema_error) {
        (Some(schema), _) => Outcome::Ran(RunOutput {
            rows: schema["sampledRows"].as_u64().unwrap_or(0),
            result: Some(schema),
            output_file_id: None,
        }),
        (None, why) => Outcome::Failed(EngineError::File(
            why.unwrap_or_else(|| "no schema was found".into()),
        )),
    }
}

async fn convert(
    deps: &JobDeps,
    run: &crate::store::runs::Run,
    file: &crate::store::files::File,
    cancel: CancellationToken,
) -> Outcome {
    use crate::domain::convert::{plan, run as convert_file, ConvertOptions};
    let options: ConvertOptions = match options_of(run) {
        Ok(options) => options,
        Err(outcome) => return outcome,
    };
    // Checked when queued; the file's schema may have been edited since.
    let plan = match plan(file, &options) {
        Ok(plan) => plan,
        Err(e) => return Outcome::Failed(EngineError::File(e.to_string())),
    };
    let (to, mime) = (plan.to, plan.mime);
    let key = uuid::Uuid::new_v4().to_string();
    let files = deps.files.as_ref();
    let limit = deps.settings.files.max_size;
    let (records, stored) =
        match convert_file(&deps.files, file, plan, files, &key, limit, cancel).await {
            Ok(done) => done,
            Err(e) => return Outcome::Failed(e),
        };
    let new = crate::store::files::NewFile {
        owner_id: run.created_by,
        name: crate::domain::convert::output_name(&file.name, to),
        mime: mime.into(),
        format: Some(to.into()),
        size: stored.size as i64,
        status: READY,
        storage_key: key.clone(),
        sha256: Some(stored.sha256),
    };
    let output = match deps.store.create_file(new).await {
        Ok(output) => output,
        Err(e) => {
            let _ = files.delete(&key).await;
            return store_failed(e);
        }
    };
    // The output's own schema, as for an upload (a failure leaves it without one).
    let nulls = crate::engine::infer::default_null_words();
    let _ = crate::domain::files::detect(&deps.store, &deps.files, &output, nulls).await;
    Outcome::Ran(RunOutput {
        rows: records,
        result: Some(serde_json::json!({ "records": records, "to": to, "size": stored.size })),
        output_file_id: Some(output.id),
    })
}

/// The file's records into a table, as a transfer with `sourceFileId` would load them.
async fn load(
    deps: &JobDeps,
    run: &crate::store::runs::Run,
    file_id: i32,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Outcome {
    use crate::domain::convert::LoadOptions;
    use crate::engine::batch::TargetTable;
    use crate::engine::pipeline::{run_transfer, TransferRequest};
    use crate::engine::SinkSpec;

    let options: LoadOptions = match options_of(run) {
        Ok(options) => options,
        Err(outcome) => return outcome,
    };
    let (source, read) = match super::transfer::file_source(deps, file_id).await {
        Ok(source) => source,
        Err(outcome) => return outcome,
    };
    let target = match load_connection(deps, options.target_id, "target").await {
        Ok(spec) => spec,
        Err(why) => return Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why),
    };
    let request = TransferRequest {
        source,
        read,
        target,
        write: SinkSpec::Table(TargetTable {
            schema: options.target_schema.clone().filter(|s| !s.is_empty()),
            table: options.target_table.clone(),
            overwrite: options.overwrite,
        }),
        batch_rows: deps.settings.jobs.batch_rows,
        partitioning: None,
    };
    let span = tracing::info_span!("run", run_id = run.id, step = "load");
    let work = run_transfer(request, progress, cancel);
    match on_engine(work, span, || async {}).await {
        Ok(Ok(rows)) => Outcome::Ran(RunOutput {
            rows,
            result: Some(serde_json::json!({
                "rows": rows,
                "targetId": options.target_id,
                "targetSchema": options.target_schema,
                "targetTable": options.target_table,
            })),
            output_file_id: None,
        }),
        Ok(Err(e)) => Outcome::Failed(e),
        Err(panic) => Outcome::Panicked(panic),
    }
}

/// A connection's query into a new file, as a transfer with a `targetFormat` would write it.
async fn export(
    deps: &JobDeps,
    run: &crate::store::runs::Run,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> Outcome {
    use crate::domain::convert::{stored_output, ExportOptions};
    use crate::engine::pipeline::{run_transfer, TransferRequest};
    use crate::engine::{ConnectSpec, SourceSpec};

    let options: ExportOptions = match options_of(run) {
        Ok(options) => options,
        Err(outcome) => return outcome,
    };
    let source = match load_connection(deps, options.source_id, "source").await {
        Ok(spec) => spec,
        Err(why) => return Outcome::Unrunnable(ErrorCode::ConnectionNotFound, why),
    };
    let name = options.name.clone().unwrap_or_else(|| "export".into());
    let (write, out, bytes) =
        match super::transfer::file_target(&options.to, options.output.clone(), &name) {
            Ok(target) => target,
            Err(outcome) => return outcome,
        };
    let request = TransferRequest {
        source,
        read: SourceSpec::Query(options.query.clone()),
        target: ConnectSpec::file(),
        write,
        batch_rows: deps.settings.jobs.batch_rows,
        partitioning: None,
    };
    let key = uuid::Uuid::new_v4().to_string();
    let (files, limit) = (deps.files.clone(), deps.settings.files.max_size);
    let work = {
        let key = key.clone();
        async move {
            let (rows, stored) = tokio::join!(
                run_transfer(request, progress, cancel),
                files.put(&key, bytes, limit)
            );
            stored_output(rows, stored)
        }
    };
    let span = tracing::info_span!("run", run_id = run.id, step = "export");
    let (rows, stored) = match on_engine(work, span, || async {}).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Outcome::Failed(e),
        Err(panic) => return Outcome::Panicked(panic),
    };
    let (to, size) = (out.to, stored.size);
    let name = match options.name {
        Some(name) => name,
        None => format!("export-{}.{to}", run.id),
    };
    match super::transfer::save_output(deps, run.created_by, name, &key, out, rows, stored).await {
        Ok(file_id) => Outcome::Ran(RunOutput {
            rows,
            result: Some(serde_json::json!({
                "rows": rows,
                "sourceId": options.source_id,
                "to": to,
                "size": size,
            })),
            output_file_id: Some(file_id),
        }),
        Err(outcome) => outcome,
    }
}

/// A run's options as its step reads them (checked when it was queued).
fn options_of<T: serde::de::DeserializeOwned>(run: &crate::store::runs::Run) -> Result<T, Outcome> {
    serde_json::from_value(run.options.clone())
        .map_err(|e| Outcome::Failed(EngineError::Internal(format!("the run's options: {e}"))))
}

async fn save(id: i32, deps: &JobDeps, end: Conclusion) -> Result<(), sea_orm::DbErr> {
    let (result, output_file_id) = match end.done {
        Some(Outcome::Ran(output)) => (output.result, output.output_file_id),
        _ => (None, None),
    };
    let record = RunEnd {
        status: end.status,
        error: end.error,
        result,
        output_file_id,
    };
    deps.store.finish_run(id, record).await
}
