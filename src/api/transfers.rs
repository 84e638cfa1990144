//! `/transfers`: run a query on one connection and write its result into a table of another,
//! as a queued, supervised job. Non-admins see and steer their own transfers only.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::{cancel_job, parse_id, resource, Body, State};
use crate::jobs::messages::{JobId, Submit};
use crate::store::transfers::{is_final, NewTransfer, Transfer, RUNNING, STATUSES};

/// A transfer as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    pub id: i32,
    pub source_id: i32,
    /// The connections' names when the transfer was created (kept after they are deleted).
    pub source_name: Option<String>,
    pub target_id: i32,
    pub target_name: Option<String>,
    pub query: String,
    pub target_schema: Option<String>,
    pub target_table: String,
    pub overwrite: bool,
    /// `queued`, `running`, `complete`, `error` or `cancelled`.
    #[schema(example = "running")]
    pub status: String,
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
    if t.status == RUNNING {
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
        target_schema: t.target_schema,
        target_table: t.target_table,
        overwrite: t.overwrite,
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

/// A connection id given as a number or as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IdInput {
    Number(i64),
    Text(String),
}

impl IdInput {
    pub fn parse(&self, field: &str) -> Result<i32, ApiError> {
        let n = match self {
            IdInput::Number(n) => Some(*n),
            IdInput::Text(t) => t.trim().parse::<i64>().ok(),
        };
        n.and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::validation(field, format!("{field} must be a connection id")))
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

fn not_found(id: i32) -> ApiError {
    ApiError::new(
        ErrorCode::TransferNotFound,
        format!("transfer {id} does not exist"),
    )
}

/// The transfer if the caller may see it (its own, or any for an admin).
async fn visible(state: &State, caller: &Caller, id: i32) -> Result<Transfer, ApiError> {
    match state.store.get_transfer(id).await? {
        Some(t) if caller.admin || t.created_by == caller.id => Ok(t),
        _ => Err(not_found(id)),
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
    let source_id = body
        .source_id
        .ok_or_else(|| ApiError::validation("sourceId", "sourceId is required"))?
        .parse("sourceId")?;
    let target_id = body
        .target_id
        .ok_or_else(|| ApiError::validation("targetId", "targetId is required"))?
        .parse("targetId")?;
    let query = body.query.unwrap_or_default();
    if query.trim().is_empty() {
        return Err(ApiError::validation("query", "query must not be empty"));
    }
    let target_table = body.target_table.unwrap_or_default();
    if target_table.trim().is_empty() {
        return Err(ApiError::validation(
            "targetTable",
            "targetTable must name the table to write",
        ));
    }
    let target_schema = body.target_schema.filter(|s| !s.is_empty());
    let (partition_column, partitions) = partitioning(body.partition_column, body.partitions)?;
    for (field, name) in [
        ("targetTable", Some(&target_table)),
        ("targetSchema", target_schema.as_ref()),
        ("partitionColumn", partition_column.as_ref()),
    ] {
        if let Some(name) = name {
            if name.contains('\0') || name.chars().count() > 63 {
                return Err(ApiError::validation(
                    field,
                    format!("{field} must be at most 63 characters, without NUL"),
                ));
            }
        }
    }
    let mut names = Vec::with_capacity(2);
    for (field, id) in [("sourceId", source_id), ("targetId", target_id)] {
        match state.store.get_connection(id).await? {
            Some(connection) => names.push(connection.name),
            None => {
                return Err(ApiError {
                    field: Some(field.into()),
                    ..ApiError::new(
                        ErrorCode::UnknownConnection,
                        format!("connection {id} does not exist"),
                    )
                })
            }
        }
    }
    let target_name = names.pop().unwrap_or_default();
    let source_name = names.pop().unwrap_or_default();
    let transfer = state
        .store
        .create_transfer(NewTransfer {
            source_id,
            target_id,
            query,
            target_schema,
            target_table,
            overwrite: body.overwrite,
            created_by: caller.id,
            partition_column,
            partitions,
            source_name,
            target_name,
        })
        .await?;
    tracing::info!(
        transfer_id = transfer.id,
        source_id,
        target_id,
        "Transfer queued."
    );
    state.jobs.do_send(Submit(JobId::Transfer(transfer.id)));
    let location = format!("/api/v1/transfers/{}", transfer.id);
    Ok(HttpResponse::Accepted()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(view(&state, transfer)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Only these statuses, comma-separated (e.g. `running,queued`).
    pub status: Option<String>,
    /// Only jobs on this connection (a transfer's source or target; a query's connection).
    #[param(value_type = Option<i32>)]
    pub connection: Option<String>,
}

/// Parse `connection=<id>`.
pub fn parse_connection(raw: Option<&str>) -> Result<Option<i32>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    raw.trim()
        .parse::<i32>()
        .ok()
        .filter(|id| *id > 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQueryParameter,
                format!("`connection` must be a connection id (a positive integer); not {raw:?}"),
            )
        })
}

/// Parse `status=running,queued`.
pub fn parse_statuses(raw: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if STATUSES.contains(&s) {
                Ok(s.to_string())
            } else {
                Err(ApiError::new(
                    ErrorCode::InvalidQueryParameter,
                    format!("`status` values are {}; not {s:?}", STATUSES.join(", ")),
                ))
            }
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/transfers", tag = "transfers",
    description = "Newest first by default. Non-admins see their own transfers. Filters: `status` (one or several), `connection` (as source or target).",
    params(PageQuery, StatusQuery),
    responses((status = 200, body = [TransferView], headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_transfers(
    state: State,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
    status: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.validate()?;
    let filter = crate::store::JobFilter {
        owner: (!caller.admin).then_some(caller.id),
        statuses: parse_statuses(status.status.as_deref())?,
        connection: parse_connection(status.connection.as_deref())?,
    };
    let (rows, total) = state.store.list_transfers(&filter, &page.params()).await?;
    let items: Vec<TransferView> = rows.into_iter().map(|t| view(&state, t)).collect();
    Ok(page.respond(&req, items, total))
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}", tag = "transfers",
    params(("id" = i32, Path)),
    responses((status = 200, body = TransferView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_transfer(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TransferView>, ApiError> {
    let id = parse_id(&path)?;
    let transfer = visible(&state, &caller, id).await?;
    Ok(web::Json(view(&state, transfer)))
}

/// A transfer as `GET /transfers/{id}` answers it (live events read it again on each change).
pub(crate) async fn resource_json(
    state: &State,
    id: i32,
) -> Result<Option<serde_json::Value>, ApiError> {
    match state.store.get_transfer(id).await? {
        Some(t) => Ok(Some(
            serde_json::to_value(view(state, t)).map_err(ApiError::internal)?,
        )),
        None => Ok(None),
    }
}

#[utoipa::path(get, path = "/api/v1/transfers/{id}/events", tag = "transfers",
    description = "Server-Sent Events of one transfer (who may GET it may follow it). First `status` with the transfer as GET answers it; then `progress` at most every 500 ms while running (data as in `ProgressEvent`) and `status` on every change. The stream ends after a final status (at once for a finished transfer). A `: keep-alive` comment every 15 s.",
    params(("id" = i32, Path)),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn transfer_events(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    // Subscribed before reading, so that no change falls between the two.
    let events = state.events.subscribe();
    let transfer = visible(&state, &caller, id).await?;
    let first = serde_json::to_value(view(&state, transfer)).map_err(ApiError::internal)?;
    Ok(super::events::job_stream(
        state.clone(),
        JobId::Transfer(id),
        events,
        first,
    ))
}

#[utoipa::path(patch, path = "/api/v1/cancel-transfer/{id}", tag = "transfers",
    description = "Cancel a transfer (also `POST /api/v1/transfers/{id}/cancel`). A queued one is cancelled at once; a running one stops its source query on the server and rolls its target back, then answers with status `cancelled`. A finished one: 409.",
    params(("id" = i32, Path)),
    responses((status = 200, body = TransferView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_transfer(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TransferView>, ApiError> {
    let id = parse_id(&path)?;
    let transfer = visible(&state, &caller, id).await?;
    if is_final(&transfer.status) {
        return Err(ApiError::new(
            ErrorCode::TransferFinished,
            format!("transfer {id} is already {}", transfer.status),
        ));
    }
    cancel_job(
        &state,
        JobId::Transfer(id),
        &transfer.status,
        || state.store.cancel_queued_transfer(id),
        || async { Ok(state.store.get_transfer(id).await?.map(|t| t.status)) },
    )
    .await?;
    let transfer = state
        .store
        .get_transfer(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(web::Json(view(&state, transfer)))
}

#[utoipa::path(delete, path = "/api/v1/transfers/{id}", tag = "transfers",
    description = "Delete a finished transfer's record; 409 while it is queued or running.",
    params(("id" = i32, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_transfer(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let transfer = visible(&state, &caller, id).await?;
    if !is_final(&transfer.status) {
        return Err(ApiError::new(
            ErrorCode::TransferActive,
            format!(
                "transfer {id} is {}; cancel it before deleting it",
                transfer.status
            ),
        ));
    }
    state.store.delete_transfer(id).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/transfers")
            .route(web::post().to(create_transfer))
            .route(web::get().to(list_transfers)),
    )
    .service(
        resource("/transfers/{id}")
            .route(web::get().to(get_transfer))
            .route(web::delete().to(delete_transfer)),
    )
    .service(resource("/transfers/{id}/events").route(web::get().to(transfer_events)))
    .service(resource("/transfers/{id}/cancel").route(web::post().to(cancel_transfer)))
    .service(resource("/cancel-transfer/{id}").route(web::patch().to(cancel_transfer)));
}
