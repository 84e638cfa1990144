//! `/queries`: run SQL on a connection as a supervised job and keep its result (JSON or CSV).
//! Non-admins see and steer their own queries only.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::jobs::{self, IdInput, JobResource, StatusQuery};
use super::pagination::PageQuery;
use super::{parse_id, resource, Body, State};
use crate::jobs::messages::{JobId, Submit};
use crate::store::jobs::{JobKind, JobStatus};
use crate::store::queries::Query;
use crate::store::{JobFilter, ListParams};

/// A result column.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnView {
    pub name: String,
    /// Logical type: boolean, int16, int32, int64, uint64, float32, float64,
    /// decimal(p,s), decimal, text, binary, date, time, timestamp, timestamptz, uuid, json,
    /// array, interval.
    #[serde(rename = "type")]
    pub logical: String,
    /// The type as the database names it.
    pub db_type: String,
}

/// A query as the API shows it; its rows are at `/queries/{id}/result`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryView {
    pub id: i32,
    pub connection_id: i32,
    /// The connection's name when the query was created (kept after it is deleted).
    pub connection_name: Option<String>,
    pub query: String,
    /// `queued`, `running`, `complete`, `error` or `cancelled`.
    #[schema(value_type = String, example = "complete")]
    pub status: JobStatus,
    /// The database's own message (with the position when it gives one).
    pub error: Option<String>,
    /// Why it failed (status `error`), from the API's code table: `source_query_failed`,
    /// `read_only`, `statement_not_allowed`, `auth_failed`, `timeout`, … (the schema lists
    /// every one).
    pub error_code: Option<String>,
    pub columns: Vec<ColumnView>,
    /// Rows kept (live while running).
    pub row_count: i64,
    /// For statements that return no rows (INSERT, UPDATE, DELETE, DDL).
    pub rows_affected: Option<i64>,
    /// The result was cut at `queries.max_rows` / `queries.max_bytes`.
    pub truncated: bool,
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Milliseconds from start to stop.
    pub duration_ms: Option<i64>,
}

fn view(state: &State, q: Query) -> QueryView {
    let mut row_count = q.row_count;
    if q.status == JobStatus::Running {
        if let Some(progress) = state.progress.get(&JobId::Query(q.id)) {
            row_count = progress.rows_written() as i64;
        }
    }
    let columns: Vec<crate::engine::query::ResultColumn> =
        serde_json::from_value(q.columns.clone()).unwrap_or_default();
    QueryView {
        id: q.id,
        connection_id: q.connection_id,
        connection_name: q.connection_name,
        query: q.query,
        status: q.status,
        error: q.error,
        error_code: q.error_code,
        columns: columns
            .into_iter()
            .map(|c| ColumnView {
                name: c.name,
                logical: c.logical,
                db_type: c.db_type,
            })
            .collect(),
        row_count,
        rows_affected: q.rows_affected,
        truncated: q.truncated,
        attempts: q.attempts,
        created_by: q.created_by,
        created_at: q.created_at,
        started_at: q.started_at,
        stopped_at: q.stopped_at,
        duration_ms: match (q.started_at, q.stopped_at) {
            (Some(a), Some(b)) => Some((b - a).num_milliseconds()),
            _ => None,
        },
    }
}

/// A query to queue; any field but these is refused (400 `unknown_field`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateQuery {
    /// The connection to run on (aliases `connectionID`, `connection_id`).
    #[serde(alias = "connectionID", alias = "connection_id")]
    #[schema(value_type = i32, example = 1)]
    pub connection_id: Option<IdInput>,
    #[schema(example = "SELECT * FROM orders LIMIT 10")]
    pub query: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/queries", tag = "queries",
    request_body = CreateQuery,
    responses((status = 202, description = "Queued", body = QueryView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_query(
    state: State,
    caller: Caller,
    body: Body<CreateQuery>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let connection_id = body
        .connection_id
        .ok_or_else(|| ApiError::validation("connectionId", "connectionId is required"))?
        .parse("connectionId")?;
    let sql = body.query.unwrap_or_default();
    if sql.trim().is_empty() {
        return Err(ApiError::validation("query", "query must not be empty"));
    }
    let Some(connection) = state.store.get_connection(connection_id).await? else {
        return Err(ApiError {
            field: Some("connectionId".into()),
            ..ApiError::new(
                ErrorCode::UnknownConnection,
                format!("connection {connection_id} does not exist"),
            )
        });
    };
    let query = state
        .store
        .create_query(connection_id, connection.name, sql, caller.id)
        .await?;
    tracing::info!(query_id = query.id, connection_id, "Query queued.");
    state.jobs.do_send(Submit(JobId::Query(query.id)));
    Ok(HttpResponse::Accepted()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/queries/{}", query.id),
        ))
        .json(view(&state, query)))
}

/// Queries as a kind of job.
pub struct Queries;

impl JobResource for Queries {
    type Row = Query;
    type View = QueryView;
    const KIND: JobKind = JobKind::Query;
    const NOT_FOUND: ErrorCode = ErrorCode::QueryNotFound;
    const FINISHED: ErrorCode = ErrorCode::QueryFinished;
    const ACTIVE: ErrorCode = ErrorCode::QueryActive;

    async fn load(state: &State, id: i32) -> Result<Option<Query>, sea_orm::DbErr> {
        state.store.get_query(id).await
    }

    async fn list(
        state: &State,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Query>, u64), sea_orm::DbErr> {
        state.store.list_queries(filter, params).await
    }

    fn owner(row: &Query) -> i32 {
        row.created_by
    }

    fn status(row: &Query) -> JobStatus {
        row.status
    }

    fn view(state: &State, row: Query) -> QueryView {
        view(state, row)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// JSON only: `objects` (default: an array of objects keyed by column name, in the
    /// result's column order) or `arrays` (`{"columns": [...], "rows": [[...]]}`, which keeps
    /// repeated column names apart).
    pub shape: Option<String>,
    /// JSON only: 1-based page (default 1).
    #[param(value_type = Option<u64>)]
    pub page: Option<String>,
    /// JSON only: rows per page (default 1000, at most 10000).
    #[param(value_type = Option<u64>)]
    pub page_size: Option<String>,
}

const RESULT_PAGE_SIZE: usize = 1000;
const RESULT_MAX_PAGE_SIZE: usize = 10_000;

fn number(name: &str, raw: &Option<String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                ErrorCode::InvalidQueryParameter,
                format!("`{name}` must be a whole number from 1 to {max}, not {text:?}"),
            )),
        },
    }
}

/// Object keys for the columns; a repeated name gets a `_2`, `_3`… suffix.
fn keys(columns: &[ColumnView]) -> Vec<String> {
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    columns
        .iter()
        .map(|c| {
            let n = seen.entry(c.name.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                c.name.clone()
            } else {
                format!("{}_{}", c.name, n)
            }
        })
        .collect()
}

fn csv_field(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[utoipa::path(get, path = "/api/v1/queries/{id}/result", tag = "queries",
    description = "The kept rows. JSON: an array of objects keyed by column name in the result's column order (or, with `shape=arrays`, `{columns, rows}` with each row an array), paged; numbers stay numbers where JSON readers get them exactly, 64-bit integers beyond 2^53 and long decimals are strings, bytes base64, timestamps RFC 3339. CSV: RFC 4180 with a header row, every row. 409 while the query is not complete or returned no rows.",
    params(("id" = i32, Path), ResultQuery),
    responses((status = 200, description = "The rows (JSON array of objects, or text/csv)", body = [Object],
            headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_result(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<ResultQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let format = params.format.as_deref().unwrap_or("json");
    if !["json", "csv"].contains(&format) {
        return Err(ApiError::new(
            ErrorCode::InvalidQueryParameter,
            format!("`format` must be json or csv, not {format:?}"),
        ));
    }
    let arrays = match params.shape.as_deref() {
        None | Some("objects") => false,
        Some("arrays") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQueryParameter,
                format!("`shape` must be objects or arrays, not {other:?}"),
            ))
        }
    };
    let page = number("page", &params.page, 1, 1_000_000_000)?;
    let page_size = number(
        "page_size",
        &params.page_size,
        RESULT_PAGE_SIZE,
        RESULT_MAX_PAGE_SIZE,
    )?;
    let query = jobs::visible::<Queries>(&state, &caller, id).await?;
    let unavailable = |why: String| ApiError::new(ErrorCode::ResultNotAvailable, why);
    if query.status != JobStatus::Complete {
        return Err(unavailable(format!(
            "query {id} is {}; a result exists once it is complete",
            query.status
        )));
    }
    let view = view(&state, query);
    let rows_text = state
        .store
        .get_query_rows(id)
        .await?
        .ok_or_else(|| unavailable(format!("query {id} returned no rows (a statement)")))?;
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(&rows_text).map_err(ApiError::internal)?;
    let keys = keys(&view.columns);
    if format == "csv" {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&keys).map_err(ApiError::internal)?;
        for row in &rows {
            writer
                .write_record(row.iter().map(csv_field))
                .map_err(ApiError::internal)?;
        }
        let bytes = writer.into_inner().map_err(ApiError::internal)?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"query-{id}.csv\""),
            ))
            .body(bytes));
    }
    let total = rows.len();
    let rows = rows
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size);
    let body = if arrays {
        serde_json::json!({"columns": view.columns, "rows": rows.collect::<Vec<_>>()})
    } else {
        // Keys in the result's column order (serde_json keeps insertion order).
        rows.map(|row| serde_json::Value::Object(keys.iter().cloned().zip(row).collect()))
            .collect()
    };
    let last = total.div_ceil(page_size).max(1);
    let base = format!(
        "{}://{}{}",
        req.connection_info().scheme(),
        req.connection_info().host(),
        req.path()
    );
    let shape = if arrays { "arrays" } else { "objects" };
    let link = |p: usize, rel: &str| {
        format!("<{base}?format=json&shape={shape}&page={p}&page_size={page_size}>; rel=\"{rel}\"")
    };
    let mut links = vec![link(1, "first")];
    if page > 1 {
        links.push(link((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
    }
    links.push(link(last, "last"));
    Ok(HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header(("Link", links.join(", ")))
        .json(body))
}

jobs::job_routes! {
    resource: Queries,
    view: QueryView,
    tag: "queries",
    create: create_query,
    list: list_queries("/api/v1/queries", "Newest first by default. Non-admins see their own queries. Filters: `status` (one or several), `connection`."),
    get: get_query("/api/v1/queries/{id}", "One query as the list shows it; its rows are at `/queries/{id}/result`."),
    events: query_events("/api/v1/queries/{id}/events", "Server-Sent Events of one query, as for transfers: `status` first and on every change, `progress` (rowsWritten = rows received so far) at most every 500 ms while running; the stream ends after a final status."),
    cancel: cancel_query("/api/v1/cancel-query/{id}", "Cancel a query (also `POST /api/v1/queries/{id}/cancel`): the statement is stopped on the server. A finished one: 409."),
    delete: delete_query("/api/v1/queries/{id}", "Delete a finished query and its kept result; 409 while it is queued or running."),
    routes: {
        collection: "/queries",
        item: "/queries/{id}",
        events: "/queries/{id}/events",
        cancel: "/queries/{id}/cancel",
        cancel_alias: "/cancel-query/{id}",
        extra: [("/queries/{id}/result", get, get_result)],
    },
}
