//! `/runs`: steps of work on a file (`detect-schema`, `convert`), each a job like transfers and
//! queries (status, live events, cancel, delete), and Sqlify's pipeline routes that queue them
//! (`POST /pipelines/sqlify/{step}/run`).

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::jobs::{self, JobResource, StatusQuery};
use super::pagination::PageQuery;
use super::{convert, resource, uploads, Body, State};
use crate::domain::convert::{ExportOptions, LoadOptions};
use crate::jobs::messages::{JobId, Submit};
use crate::jobs::run::STEPS;
use crate::store::jobs::{JobKind, JobStatus};
use crate::store::runs::{NewRun, Run};
use crate::store::{JobFilter, ListParams};

/// A run as the API shows it; Sqlify's names (`finished`, `output_file_id`, `error_code`,
/// `error_message`, `error_details`) are answered beside Sluice's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: i32,
    /// `detect-schema`, `convert`, `load` or `export`.
    pub step: String,
    /// The file worked on (`null` for `export`, which reads a connection).
    pub file_id: Option<i32>,
    /// The file's name when the run was created.
    pub file_name: Option<String>,
    /// The file the run produced, if any.
    pub output_file_id: Option<i32>,
    /// `queued`, `running`, `complete`, `error` or `cancelled` (Sqlify says `completed` and
    /// `failed` for the last but one two).
    #[schema(value_type = String, example = "complete")]
    pub status: JobStatus,
    pub error: Option<String>,
    /// Why it failed: `invalid_file_content` (with line and column in `error`),
    /// `file_not_found`, `file_not_ready`, `internal_error`, …
    pub error_code: Option<String>,
    /// What the step found: for `detect-schema`, the schema (as on the file).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Sqlify: whether the run has ended.
    pub finished: bool,
    /// Sqlify: `outputFileId`.
    #[serde(rename = "output_file_id")]
    pub output_file_id_sqlify: Option<i32>,
    /// Sqlify: `errorCode`.
    #[serde(rename = "error_code")]
    pub error_code_sqlify: Option<String>,
    /// Sqlify: `error`.
    #[serde(rename = "error_message")]
    pub error_message: Option<String>,
    /// Sqlify: details of the error (the step and the file).
    #[serde(rename = "error_details")]
    #[schema(value_type = Option<Object>)]
    pub error_details: Option<serde_json::Value>,
}

fn view(run: Run) -> RunView {
    let error_details = run
        .error
        .as_ref()
        .map(|_| serde_json::json!({ "step": run.step, "fileId": run.file_id }));
    RunView {
        id: run.id,
        finished: run.status.is_final(),
        output_file_id_sqlify: run.output_file_id,
        error_code_sqlify: run.error_code.clone(),
        error_message: run.error.clone(),
        error_details,
        step: run.step,
        file_id: run.file_id,
        file_name: run.file_name,
        output_file_id: run.output_file_id,
        status: run.status,
        error: run.error,
        error_code: run.error_code,
        result: run.result,
        attempts: run.attempts,
        created_by: run.created_by,
        created_at: run.created_at,
        started_at: run.started_at,
        stopped_at: run.stopped_at,
        duration_ms: match (run.started_at, run.stopped_at) {
            (Some(a), Some(b)) => Some((b - a).num_milliseconds()),
            _ => None,
        },
    }
}

/// A run to queue; any other field is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRun {
    /// `detect-schema`, `convert`, `load` or `export`.
    #[schema(example = "convert")]
    pub step: String,
    /// The file to work on (alias `file_id`); none for `export`.
    #[serde(default, alias = "file_id")]
    #[schema(example = 1)]
    pub file_id: Option<i32>,
    /// For `convert`: `{to, from, schema, output, input}` as the pipeline's `options[…]`; for
    /// `load`: `{targetId, targetSchema, targetTable, overwrite}`; for `detect-schema`:
    /// `{input: {null: [words]}}`, the cells that mean NULL; for `export`: `{sourceId, query,
    /// to, output, name}`.
    #[schema(value_type = Option<Object>)]
    pub options: Option<serde_json::Value>,
}

/// Queue `step` on a file the caller may see, which must be ready (an `export` reads no file);
/// its options are checked now, so that a wrong one is a 400 rather than a failed run.
async fn queue(
    state: &State,
    caller: &Caller,
    step: &str,
    file_id: Option<i32>,
    options: serde_json::Value,
) -> Result<HttpResponse, ApiError> {
    if !STEPS.contains(&step) {
        return Err(ApiError::validation(
            "step",
            format!("{step:?} is not a step; steps are {}", STEPS.join(", ")),
        ));
    }
    let file = match (step, file_id) {
        ("export", None) => None,
        ("export", Some(_)) => {
            return Err(ApiError::validation(
                "fileId",
                "an export reads a connection's query, not a file",
            ))
        }
        (_, None) => {
            return Err(ApiError::validation(
                "fileId",
                format!("{step} works on a file: give fileId"),
            ))
        }
        (_, Some(id)) => Some(super::files::ready(state, caller, id, "fileId").await?),
    };
    let has_options = options.as_object().is_some_and(|o| !o.is_empty());
    match (step, &file) {
        ("convert", Some(file)) => {
            let parsed = convert::parse_options(&options)?;
            crate::domain::convert::plan(file, &parsed)?;
        }
        ("load", Some(file)) => {
            let load: LoadOptions = convert::parse_options(&options)?;
            if load.target_table.trim().is_empty() {
                return Err(ApiError::validation(
                    "options.targetTable",
                    "targetTable must name the table to write",
                ));
            }
            known_connection(state, load.target_id, "options.targetId").await?;
            crate::domain::convert::read_plan(file, None, None, None)?;
        }
        ("detect-schema", _) => {
            let parsed: crate::domain::convert::DetectOptions = convert::parse_options(&options)?;
            parsed.null_words()?;
        }
        ("export", _) => {
            let export: ExportOptions = convert::parse_options(&options)?;
            if export.query.trim().is_empty() {
                return Err(ApiError::validation(
                    "options.query",
                    "query must not be empty",
                ));
            }
            if let Some(name) = &export.name {
                crate::domain::files::validate_name(name)?;
            }
            crate::domain::convert::output_format(Some(&export.to), export.output.clone())?;
            known_connection(state, export.source_id, "options.sourceId").await?;
        }
        _ if has_options => {
            return Err(ApiError::new(
                ErrorCode::UnknownField,
                format!("{step} takes no options"),
            ))
        }
        _ => {}
    }
    let run = state
        .store
        .create_run(NewRun {
            step: step.to_string(),
            file_id: file.as_ref().map(|f| f.id),
            file_name: file.map(|f| f.name),
            options,
            created_by: caller.id,
        })
        .await?;
    tracing::info!(run_id = run.id, file_id, step, "Run queued.");
    state.jobs.do_send(Submit(JobId::Run(run.id)));
    Ok(HttpResponse::Accepted()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/runs/{}", run.id),
        ))
        .json(view(run)))
}

/// 400 `unknown_connection` naming `field` unless connection `id` exists.
async fn known_connection(state: &State, id: i32, field: &str) -> Result<(), ApiError> {
    if state.store.get_connection(id).await?.is_some() {
        return Ok(());
    }
    Err(ApiError {
        field: Some(field.into()),
        ..ApiError::new(
            ErrorCode::UnknownConnection,
            format!("connection {id} does not exist"),
        )
    })
}

#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    request_body = CreateRun,
    responses((status = 202, description = "Queued", body = RunView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_run(
    state: State,
    caller: Caller,
    body: Body<CreateRun>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let options = body.options.unwrap_or_else(|| serde_json::json!({}));
    queue(&state, &caller, &body.step, body.file_id, options).await
}

/// Sqlify's pipeline request: the file to work on, as JSON or form fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineRun {
    /// The file (alias `fileId`).
    #[serde(alias = "fileId")]
    #[schema(example = 1)]
    pub file_id: i32,
}

#[utoipa::path(post, path = "/api/v1/pipelines/sqlify/{step}/run", tag = "runs",
    description = "Sqlify's way to queue a step on an uploaded file: `step` is `detect-schema`, `convert-to-csv` (JSON or form fields with `file_id`) or `convert` (multipart: `file` or `file_id`, `options[to]` = csv | json | jsonl, `options[from]`, `options[schema][i][name|path|type]`, `options[output][separator|quote|header]`, `options[input][separator|quote|header]`, `return_output`; or JSON `{file_id, options, return_output}`). The answer is the run (202), as `POST /runs` gives it, or with `return_output=true` the converted bytes (200).",
    params(("step" = String, Path, example = "detect-schema")),
    request_body = PipelineRun,
    responses((status = 202, description = "Queued", body = RunView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pipeline_run(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    if path.as_str() == "convert" {
        let conversion = convert::request(&state, &caller, &req, payload).await?;
        if conversion.return_output {
            return Ok(convert::answer_output(&state, conversion).await?);
        }
        let file = conversion.file.id;
        return Ok(queue(&state, &caller, "convert", Some(file), conversion.raw).await?);
    }
    let mut payload = payload.into_inner();
    let form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let body: PipelineRun = if form {
        let bytes = web::Bytes::from_request(&req, &mut payload).await?;
        uploads::form(&bytes)?
    } else {
        Body::<PipelineRun>::from_request(&req, &mut payload)
            .await?
            .into_inner()
    };
    // Sqlify's `convert-to-csv`: a convert to CSV with the file's own schema.
    let (step, options) = match path.as_str() {
        "convert-to-csv" => ("convert", serde_json::json!({ "to": "csv" })),
        step => (step, serde_json::json!({})),
    };
    Ok(queue(&state, &caller, step, Some(body.file_id), options).await?)
}

/// Runs as a kind of job.
pub struct Runs;

impl JobResource for Runs {
    type Row = Run;
    type View = RunView;
    const KIND: JobKind = JobKind::Run;
    const NOT_FOUND: ErrorCode = ErrorCode::RunNotFound;
    const FINISHED: ErrorCode = ErrorCode::RunFinished;
    const ACTIVE: ErrorCode = ErrorCode::RunActive;

    async fn load(state: &State, id: i32) -> Result<Option<Run>, sea_orm::DbErr> {
        state.store.get_run(id).await
    }

    async fn list(
        state: &State,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Run>, u64), sea_orm::DbErr> {
        state.store.list_runs(filter, params).await
    }

    fn owner(row: &Run) -> i32 {
        row.created_by
    }

    fn status(row: &Run) -> JobStatus {
        row.status
    }

    fn view(_state: &State, row: Run) -> RunView {
        view(row)
    }
}

jobs::job_routes! {
    resource: Runs,
    view: RunView,
    tag: "runs",
    create: create_run,
    list: list_runs("/api/v1/runs", "Newest first by default. Non-admins see their own runs. Filter: `status` (one or several)."),
    get: get_run("/api/v1/runs/{id}", "One run as the list shows it."),
    events: run_events("/api/v1/runs/{id}/events", "Server-Sent Events of one run, as for transfers: `status` first and on every change; the stream ends after a final status."),
    cancel: cancel_run("/api/v1/cancel-run/{id}", "Cancel a run (also `POST /api/v1/runs/{id}/cancel`). A finished one: 409."),
    delete: delete_run("/api/v1/runs/{id}", "Delete a finished run's record; 409 while it is queued or running."),
    routes: {
        collection: "/runs",
        item: "/runs/{id}",
        events: "/runs/{id}/events",
        cancel: "/runs/{id}/cancel",
        cancel_alias: "/cancel-run/{id}",
        extra: [("/pipelines/sqlify/{step}/run", post, pipeline_run)],
    },
}
