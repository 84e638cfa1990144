//! A run attempt: the step it names, on its file; and saving its end. Steps: `detect-schema`
//! (the file's schema read from its first bytes and recorded on the file) and `convert` (the
//! file converted, streamed, into a new file).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::outcome::{begin, job_runner, store_failed, Conclusion, Outcome, RunOutput};
use super::{JobDeps, JobId};
use crate::codes::ErrorCode;
use crate::engine::batch::Progress;
use crate::engine::EngineError;
use crate::store::files::READY;
use crate::store::runs::RunEnd;

/// The steps a run may take.
pub const STEPS: &[&str] = &["detect-schema", "convert"];

/// Runs as a kind of job.
pub struct RunJob;

job_runner!(RunJob);

async fn attempt(
    id: i32,
    deps: JobDeps,
    cancel: CancellationToken,
    _progress: Arc<Progress>,
) -> Outcome {
    let row = deps.store.get_run(id).await;
    let (run, _) = match begin(&deps, JobId::Run(id), row, |r| r.attempts, &cancel).await {
        Ok(started) => started,
        Err(outcome) => return outcome,
    };
    let file = match deps.store.get_file(run.file_id).await {
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
                format!("file {} no longer exists", run.file_id),
            )
        }
        Err(e) => return store_failed(e),
    };
    match run.step.as_str() {
        "detect-schema" => detect(&deps, &file).await,
        "convert" => convert(&deps, &run, &file, cancel).await,
        other => Outcome::Unrunnable(
            ErrorCode::InternalError,
            format!("{other:?} is not a step Sluice runs"),
        ),
    }
}

async fn detect(deps: &JobDeps, file: &crate::store::files::File) -> Outcome {
    let detected = match crate::domain::files::detect(&deps.store, &deps.files, file).await {
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
    let options: ConvertOptions = match serde_json::from_value(run.options.clone()) {
        Ok(options) => options,
        Err(e) => return Outcome::Failed(EngineError::Internal(format!("the run's options: {e}"))),
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
    let _ = crate::domain::files::detect(&deps.store, &deps.files, &output).await;
    Outcome::Ran(RunOutput {
        rows: records,
        result: Some(serde_json::json!({ "records": records, "to": to, "size": stored.size })),
        output_file_id: Some(output.id),
    })
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
