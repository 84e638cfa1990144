//! `/transfers`: run a query on one connection and write its result into a table of another,
//! as a queued, supervised job. Non-admins see and steer their own transfers only.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::jobs::{self, IdInput, JobResource, StatusQuery};
use super::pagination::PageQuery;
use super::{resource, Body, State};
use crate::domain::convert::OutputOptions;
use crate::jobs::messages::{JobId, Submit};
use crate::store::jobs::{JobKind, JobStatus};
use crate::store::transfers::{NewTransfer, Transfer};
use crate::store::{JobFilter, ListParams};

/// A transfer as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    pub id: i32,
    /// The connection read (null when a file is read).
    pub source_id: Option<i32>,
    /// The connections' names when the transfer was created (kept after they are deleted).
    pub source_name: Option<String>,
    /// The connection written (null when a file is written).
    pub target_id: Option<i32>,
    pub target_name: Option<String>,
    /// The query run on the source connection (null when a file is read).
    pub query: Option<String>,
    /// The file read instead of a query (its schema gives the columns and their types).
    pub source_file_id: Option<i32>,
    pub target_schema: Option<String>,
    /// The table written (null when a file is written).
    pub target_table: Option<String>,
    pub overwrite: bool,
    /// The format of the file written instead of a table: `csv`, `json`, `jsonl` or `parquet`.
    pub target_format: Option<String>,
    /// How that file is written (`separator`, `quote`, `header` for csv).
    #[schema(value_type = Option<Object>)]
    pub target_options: Option<serde_json::Value>,
    /// The file written, once the transfer is complete (`GET /files/{id}`).
    pub output_file_id: Option<i32>,
    /// `queued`, `running`, `complete`, `error` or `cancelled`.
    #[schema(value_type = String, example = "running")]
    pub status: JobStatus,
    /// What went wrong (status `error`), with the database's own message.
    pub error: Option<String>,
    /// Why it failed (status `error`), from the API's code table: `source_query_failed`,
    /// `target_rejected`, `value_out_of_range`, `schema_mismatch`, `commit_outcome_unknown`,
    /// `io_timeout`, `auth_failed`, … (the schema lists every one).
    pub error_code: Option<String>,
    /// Rows written; live while running, the committed count once complete.
    pub rows_written: i64,
    pub bytes_read: i64,
    /// Attempts started (a transient failure or a restart of the service adds one).
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The integer column the source is read in ranges of (null: one stream).
    pub partition_column: Option<String>,
    /// How many ranges are read in parallel (null: one stream).
    pub partitions: Option<i32>,
}

fn view(state: &State, t: Transfer) -> TransferView {
    let (mut rows_written, mut bytes_read) = (t.rows_written, t.bytes_read);
    if t.status == JobStatus::Running {
        if let Some(progress) = state.progress.get(&JobId::Transfer(t.id)) {
            rows_written = progress.rows_written() as i64;
            bytes_read = progress.bytes_read() as i64;
        }
    }
    TransferView {
        id: t.id,
        source_id: t.source_id,
        source_name: t.source_name,
        target_id: t.target_id,
        target_name: t.target_name,
        query: t.query,
        source_file_id: t.source_file_id,
        target_schema: t.target_schema,
        target_table: t.target_table,
        overwrite: t.overwrite,
        target_format: t.target_format,
        target_options: t
            .target_options
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        output_file_id: t.output_file_id,
        status: t.status,
        error: t.error,
        error_code: t.error_code,
        rows_written,
        bytes_read,
        attempts: t.attempts,
        created_by: t.created_by,
        created_at: t.created_at,
        started_at: t.started_at,
        stopped_at: t.stopped_at,
        partition_column: t.partition_column,
        partitions: t.partitions,
    }
}

/// A transfer to queue. SQLpipe's `sourceID` / `targetID` and snake_case names are accepted;
/// any other field is refused (400 `unknown_field`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTransfer {
    /// The connection the query runs on (aliases `sourceID`, `source_id`).
    #[serde(alias = "sourceID", alias = "source_id")]
    #[schema(value_type = i32, example = 1)]
    pub source_id: Option<IdInput>,
    /// The connection written to (aliases `targetID`, `target_id`).
    #[serde(alias = "targetID", alias = "target_id")]
    #[schema(value_type = i32, example = 2)]
    pub target_id: Option<IdInput>,
    #[schema(example = "SELECT * FROM orders")]
    pub query: Option<String>,
    /// Read this file (through its schema) instead of running a query; instead of
    /// `sourceId` and `query` (alias `source_file_id`).
    #[serde(alias = "source_file_id")]
    #[schema(value_type = Option<i32>, example = 7)]
    pub source_file_id: Option<IdInput>,
    /// Write a new file of this format instead of a table: `csv`, `json`, `jsonl` or
    /// `parquet`; instead of `targetId` and `targetTable` (alias `target_format`).
    #[serde(alias = "target_format")]
    #[schema(example = "csv")]
    pub target_format: Option<String>,
    /// How the file is written: `separator`, `quote`, `header` (csv). Alias `target_options`.
    #[serde(alias = "target_options")]
    pub target_options: Option<OutputOptions>,
    /// PostgreSQL schema / MySQL database of the target table; created when missing (alias
    /// `target_schema`).
    #[serde(alias = "target_schema")]
    pub target_schema: Option<String>,
    /// Alias `target_table`.
    #[serde(alias = "target_table")]
    #[schema(example = "orders_copy")]
    pub target_table: Option<String>,
    /// Replace the target's rows (atomically) instead of appending.
    #[serde(default)]
    pub overwrite: bool,
    /// An integer column of the query's result: the source is read in `partitions` ranges of
    /// it, each over its own connection, into the one target transaction. With `partitions`
    /// (alias `partition_column`).
    #[serde(alias = "partition_column")]
    #[schema(example = "id")]
    pub partition_column: Option<String>,
    /// How many ranges to read in parallel, 1 to 32 (1: one stream). With `partitionColumn`.
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 32, example = 4)]
    pub partitions: Option<serde_json::Value>,
}

/// Check `partitionColumn` / `partitions`: both or neither, a count from 1 to 32.
fn partitioning(
    column: Option<String>,
    partitions: Option<serde_json::Value>,
) -> Result<(Option<String>, Option<i32>), ApiError> {
    let max = crate::engine::partition::MAX_PARTITIONS;
    let partitions = match partitions {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            value
                .as_i64()
                .filter(|n| (1..=i64::from(max)).contains(n))
                .ok_or_else(|| ApiError {
                    field: Some("partitions".into()),
                    ..ApiError::new(
                        ErrorCode::InvalidPartitions,
                        format!("partitions must be an integer from 1 to {max}; not {value}"),
                    )
                })? as i32,
        ),
    };
    let column = column.filter(|c| !c.is_empty());
    match (&column, partitions) {
        (Some(_), Some(_)) | (None, None) => Ok((column, partitions)),
        (None, Some(_)) => Err(ApiError {
            field: Some("partitionColumn".into()),
            ..ApiError::new(
                ErrorCode::PartitioningIncomplete,
                "partitions needs partitionColumn: the integer column to split the query on",
            )
        }),
        (Some(_), None) => Err(ApiError {
            field: Some("partitions".into()),
            ..ApiError::new(
                ErrorCode::PartitioningIncomplete,
                "partitionColumn needs partitions: how many ranges to read in parallel",
            )
        }),
    }
}

#[utoipa::path(post, path = "/api/v1/transfers", tag = "transfers",
    description = "Queue a transfer. Checked before queueing: both connections exist, the query is not empty, a table is named, `partitionColumn` and `partitions` (1 to 32) come together. Whether the partition column exists in the result and has an integer type is checked when the job starts (status `error` naming the column, before any row is written).",
    request_body = CreateTransfer,
    responses((status = 202, description = "Queued", body = TransferView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_transfer(
    state: State,
    caller: Caller,
    body: Body<CreateTransfer>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let source = source_of(&state, &caller, &body).await?;
    let target = target_of(&state, &body).await?;
    let (partition_column, partitions) = partitioning(body.partition_column, body.partitions)?;
    if partition_column.is_some() && body.source_file_id.is_some() {
        return Err(ApiError::validation(
            "partitionColumn",
            "a file is read in one stream: partitionColumn applies to a query",
        ));
    }
    if let Some(name) = &partition_column {
        check_name("partitionColumn", name)?;
    }
    let transfer = state
        .store
        .create_transfer(NewTransfer {
            source_id: source.connection,
            target_id: target.connection,
            query: source.query,
            target_schema: target.schema,
            target_table: target.table,
            overwrite: body.overwrite,
            created_by: caller.id,
            partition_column,
            partitions,
            source_name: source.name,
            target_name: target.name,
            source_file_id: source.file,
            target_format: target.format,
            target_options: target.options,
        })
        .await?;
    tracing::info!(transfer_id = transfer.id, "Transfer queued.");
    state.jobs.do_send(Submit(JobId::Transfer(transfer.id)));
    let location = format!("/api/v1/transfers/{}", transfer.id);
    Ok(HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(view(&state, transfer)))
}

/// What a transfer reads: a connection's query, or a file.
struct Source {
    connection: Option<i32>,
    name: Option<String>,
    query: Option<String>,
    file: Option<i32>,
}

/// Where a transfer writes: a connection's table, or a new file.
struct Target {
    connection: Option<i32>,
    name: Option<String>,
    schema: Option<String>,
    table: Option<String>,
    format: Option<String>,
    /// JSON of the file's options.
    options: Option<String>,
}

fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.contains('\0') || name.chars().count() > 63 {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most 63 characters, without NUL"),
        ));
    }
    Ok(())
}

/// A connection's name, or 400 `unknown_connection` naming the field.
async fn connection_name(state: &State, field: &str, id: i32) -> Result<String, ApiError> {
    match state.store.get_connection(id).await? {
        Some(connection) => Ok(connection.name),
        None => Err(ApiError {
            field: Some(field.into()),
            ..ApiError::new(
                ErrorCode::UnknownConnection,
                format!("connection {id} does not exist"),
            )
        }),
    }
}

async fn source_of(
    state: &State,
    caller: &Caller,
    body: &CreateTransfer,
) -> Result<Source, ApiError> {
    let query = body.query.clone().filter(|q| !q.trim().is_empty());
    match (&body.source_id, &body.source_file_id) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "sourceFileId",
            "give sourceId (with a query) or sourceFileId, not both",
        )),
        (None, None) => Err(ApiError::validation(
            "sourceId",
            "sourceId is required (or sourceFileId to read a file)",
        )),
        (Some(id), None) => {
            let id = id.parse("sourceId")?;
            let query =
                query.ok_or_else(|| ApiError::validation("query", "query must not be empty"))?;
            Ok(Source {
                connection: Some(id),
                name: Some(connection_name(state, "sourceId", id).await?),
                query: Some(query),
                file: None,
            })
        }
        (None, Some(file_id)) => {
            if body.query.is_some() {
                return Err(ApiError::validation(
                    "query",
                    "a file is read whole through its schema: query applies to sourceId",
                ));
            }
            let file_id = file_id.parse("sourceFileId")?;
            let file = super::files::ready(state, caller, file_id, "sourceFileId").await?;
            // The file must be readable as it is: a format and a schema.
            crate::domain::convert::read_plan(&file, None, None, None)?;
            Ok(Source {
                connection: None,
                name: Some(file.name),
                query: None,
                file: Some(file_id),
            })
        }
    }
}

async fn target_of(state: &State, body: &CreateTransfer) -> Result<Target, ApiError> {
    let schema = body.target_schema.clone().filter(|s| !s.is_empty());
    let table = body.target_table.clone().filter(|t| !t.trim().is_empty());
    match (&body.target_id, &body.target_format) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "targetFormat",
            "give targetId (with a table) or targetFormat, not both",
        )),
        (None, None) => Err(ApiError::validation(
            "targetId",
            "targetId is required (or targetFormat to write a file)",
        )),
        (Some(id), None) => {
            let id = id.parse("targetId")?;
            if body.target_options.is_some() {
                return Err(ApiError::validation(
                    "targetOptions",
                    "targetOptions apply to a file target (targetFormat)",
                ));
            }
            let table = table.ok_or_else(|| {
                ApiError::validation("targetTable", "targetTable must name the table to write")
            })?;
            check_name("targetTable", &table)?;
            if let Some(schema) = &schema {
                check_name("targetSchema", schema)?;
            }
            Ok(Target {
                connection: Some(id),
                name: Some(connection_name(state, "targetId", id).await?),
                schema,
                table: Some(table),
                format: None,
                options: None,
            })
        }
        (None, Some(format)) => {
            for (field, given) in [
                ("targetTable", table.is_some()),
                ("targetSchema", schema.is_some()),
                ("overwrite", body.overwrite),
            ] {
                if given {
                    return Err(ApiError::validation(
                        field,
                        format!("{field} applies to a table target; a file target is a new file"),
                    ));
                }
            }
            let options = body.target_options.clone();
            let to = crate::domain::convert::output_format(Some(format), options.clone())
                .map(|f| f.to)
                .map_err(|e| ApiError {
                    field: Some("targetFormat".into()),
                    ..e.into()
                })?;
            Ok(Target {
                connection: None,
                name: None,
                schema: None,
                table: None,
                format: Some(to.into()),
                options: options
                    .map(|o| serde_json::to_string(&o))
                    .transpose()
                    .map_err(ApiError::internal)?,
            })
        }
    }
}

/// Transfers as a kind of job.
pub struct Transfers;

impl JobResource for Transfers {
    type Row = Transfer;
    type View = TransferView;
    const KIND: JobKind = JobKind::Transfer;
    const NOT_FOUND: ErrorCode = ErrorCode::TransferNotFound;
    const FINISHED: ErrorCode = ErrorCode::TransferFinished;
    const ACTIVE: ErrorCode = ErrorCode::TransferActive;

    async fn load(state: &State, id: i32) -> Result<Option<Transfer>, sea_orm::DbErr> {
        state.store.get_transfer(id).await
    }

    async fn list(
        state: &State,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Transfer>, u64), sea_orm::DbErr> {
        state.store.list_transfers(filter, params).await
    }

    fn owner(row: &Transfer) -> i32 {
        row.created_by
    }

    fn status(row: &Transfer) -> JobStatus {
        row.status
    }

    fn view(state: &State, row: Transfer) -> TransferView {
        view(state, row)
    }
}

jobs::job_routes! {
    resource: Transfers,
    view: TransferView,
    tag: "transfers",
    create: create_transfer,
    list: list_transfers("/api/v1/transfers", "Newest first by default. Non-admins see their own transfers. Filters: `status` (one or several), `connection` (as source or target)."),
    get: get_transfer("/api/v1/transfers/{id}", "One transfer as the list shows it."),
    events: transfer_events("/api/v1/transfers/{id}/events", "Server-Sent Events of one transfer (who may GET it may follow it). First `status` with the transfer as GET answers it; then `progress` at most every 500 ms while running (data as in `ProgressEvent`) and `status` on every change. The stream ends after a final status (at once for a finished transfer). A `: keep-alive` comment every 15 s."),
    cancel: cancel_transfer("/api/v1/cancel-transfer/{id}", "Cancel a transfer (also `POST /api/v1/transfers/{id}/cancel`). A queued one is cancelled at once; a running one stops its source query on the server and rolls its target back, then answers with status `cancelled`. A finished one: 409."),
    delete: delete_transfer("/api/v1/transfers/{id}", "Delete a finished transfer's record; 409 while it is queued or running."),
    routes: {
        collection: "/transfers",
        item: "/transfers/{id}",
        events: "/transfers/{id}/events",
        cancel: "/transfers/{id}/cancel",
        cancel_alias: "/cancel-transfer/{id}",
    },
}
