//! What every kind of job answers the same way — list, get, live events, cancel, delete — over
//! a `JobResource` each kind implements (its row, its view, its codes). Each kind's module keeps
//! its own routes (the seed routes and their aliases) as thin handlers that call these.

use std::future::Future;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ErrorCode};
use super::pagination::PageQuery;
use super::{parse_id, State};
use crate::jobs::events::{Change, JobEnd};
use crate::jobs::messages::{Cancel, CancelOutcome};
use crate::store::jobs::{JobId, JobKind, JobStatus};
use crate::store::{JobFilter, ListParams};

/// How long a cancel of a running job waits for the job to end (it takes well under a second).
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// One kind of job as the API shows it.
pub trait JobResource: 'static {
    /// Its stored row.
    type Row: 'static;
    /// What its routes answer.
    type View: Serialize + 'static;
    const KIND: JobKind;
    /// 404 for an id the caller may not see.
    const NOT_FOUND: ErrorCode;
    /// 409 for cancelling a finished one.
    const FINISHED: ErrorCode;
    /// 409 for deleting a queued or running one.
    const ACTIVE: ErrorCode;

    fn load(
        state: &State,
        id: i32,
    ) -> impl Future<Output = Result<Option<Self::Row>, sea_orm::DbErr>>;
    fn list(
        state: &State,
        filter: &JobFilter,
        params: &ListParams,
    ) -> impl Future<Output = Result<(Vec<Self::Row>, u64), sea_orm::DbErr>>;
    fn owner(row: &Self::Row) -> i32;
    fn status(row: &Self::Row) -> JobStatus;
    /// The row as the API answers it (live counters while it runs).
    fn view(state: &State, row: Self::Row) -> Self::View;
}

fn not_found<R: JobResource>(id: i32) -> ApiError {
    ApiError::new(
        R::NOT_FOUND,
        format!("{} {id} does not exist", R::KIND.as_str()),
    )
}

/// The job if the caller may see it (its own, or any for an admin).
pub(crate) async fn visible<R: JobResource>(
    state: &State,
    caller: &Caller,
    id: i32,
) -> Result<R::Row, ApiError> {
    match R::load(state, id).await? {
        Some(row) if caller.admin || R::owner(&row) == caller.id => Ok(row),
        _ => Err(not_found::<R>(id)),
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
pub fn parse_statuses(raw: Option<&str>) -> Result<Vec<JobStatus>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                let words: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::new(
                    ErrorCode::InvalidQueryParameter,
                    format!("`status` values are {}; not {s:?}", words.join(", ")),
                )
            })
        })
        .collect()
}

/// `GET /<kind>s`: newest first by default; non-admins see their own.
pub async fn list<R: JobResource>(
    state: State,
    caller: Caller,
    req: HttpRequest,
    page: web::Query<PageQuery>,
    status: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.validate()?;
    let filter = JobFilter {
        owner: (!caller.admin).then_some(caller.id),
        statuses: parse_statuses(status.status.as_deref())?,
        connection: parse_connection(status.connection.as_deref())?,
    };
    let (rows, total) = R::list(&state, &filter, &page.params()).await?;
    let items: Vec<R::View> = rows.into_iter().map(|row| R::view(&state, row)).collect();
    Ok(page.respond(&req, items, total))
}

/// `GET /<kind>s/{id}`.
pub async fn get<R: JobResource>(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<R::View>, ApiError> {
    let id = parse_id(&path)?;
    let row = visible::<R>(&state, &caller, id).await?;
    Ok(web::Json(R::view(&state, row)))
}

/// The job as its GET answers it (live events read it again on each change); `None` once
/// deleted.
pub fn reload<R: JobResource>(
    state: &State,
    id: i32,
) -> LocalBoxFuture<'_, Result<Option<serde_json::Value>, ApiError>> {
    async move {
        match R::load(state, id).await? {
            Some(row) => Ok(Some(
                serde_json::to_value(R::view(state, row)).map_err(ApiError::internal)?,
            )),
            None => Ok(None),
        }
    }
    .boxed_local()
}

/// `GET /<kind>s/{id}/events`: the job's Server-Sent Events (who may GET it may follow it).
pub async fn events<R: JobResource>(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    // Subscribed before reading, so that no change falls between the two.
    let events = state.events.subscribe();
    let row = visible::<R>(&state, &caller, id).await?;
    let first = serde_json::to_value(R::view(&state, row)).map_err(ApiError::internal)?;
    Ok(super::events::job_stream(
        state.clone(),
        JobId::new(R::KIND, id),
        reload::<R>,
        events,
        first,
    ))
}

/// `PATCH /cancel-<kind>/{id}` (and `POST /<kind>s/{id}/cancel`): a queued job is cancelled at
/// once; a running one is signalled, and the answer waits for its end (its source query
/// stopped, its target rolled back); a finished one is a 409.
pub async fn cancel<R: JobResource>(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<R::View>, ApiError> {
    let id = parse_id(&path)?;
    let row = visible::<R>(&state, &caller, id).await?;
    let status = R::status(&row);
    if status.is_final() {
        return Err(ApiError::new(
            R::FINISHED,
            format!("{} {id} is already {status}", R::KIND.as_str()),
        ));
    }
    let job = JobId::new(R::KIND, id);
    // Subscribed before the signal, so that the job's end cannot slip by.
    let mut events = state.events.subscribe();
    let outcome = state
        .jobs
        .send(Cancel(job))
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        CancelOutcome::Dequeued | CancelOutcome::NotActive => {
            let was_queued = status == JobStatus::Queued || outcome == CancelOutcome::Dequeued;
            if was_queued && state.store.cancel_queued_job(job).await? {
                state.events.finished(
                    job,
                    JobEnd {
                        status: JobStatus::Cancelled,
                        rows: 0,
                        bytes_read: 0,
                        duration: None,
                    },
                );
            }
        }
        CancelOutcome::Signalled => {
            let ended = async {
                loop {
                    match events.recv().await {
                        Ok(e) if e.job == job && e.change == Change::Finished => return,
                        Ok(_) => {}
                        // Fell behind: the store tells whether the end was among the missed.
                        Err(RecvError::Lagged(_)) => {
                            if state
                                .store
                                .job_status(job)
                                .await
                                .ok()
                                .flatten()
                                .is_none_or(|s| s.is_final())
                            {
                                return;
                            }
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            };
            let _ = tokio::time::timeout(CANCEL_WAIT, ended).await;
        }
    }
    tracing::info!(?job, ?outcome, "Cancel requested.");
    let row = R::load(&state, id)
        .await?
        .ok_or_else(|| not_found::<R>(id))?;
    Ok(web::Json(R::view(&state, row)))
}

/// `DELETE /<kind>s/{id}`: a finished job's record (and what it kept); 409 while it is queued
/// or running.
pub async fn delete<R: JobResource>(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    let row = visible::<R>(&state, &caller, id).await?;
    let status = R::status(&row);
    if !status.is_final() {
        return Err(ApiError::new(
            R::ACTIVE,
            format!(
                "{} {id} is {status}; cancel it before deleting it",
                R::KIND.as_str()
            ),
        ));
    }
    state.store.delete_job(JobId::new(R::KIND, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A kind's shared routes: five handlers that carry their OpenAPI documentation and call the
/// generic ones above, and its `configure` (those routes with their seed aliases, its create
/// route, and any routes of its own). The caller has `web`, `HttpRequest`, `HttpResponse`,
/// `State`, `Caller`, `PageQuery`, `StatusQuery`, `ApiError`, `ErrorBody` and `resource` in
/// scope.
macro_rules! job_routes {
    (
        resource: $R:ty,
        view: $View:ty,
        tag: $tag:tt,
        create: $create:ident,
        list: $list:ident ($list_path:tt, $list_doc:tt),
        get: $get:ident ($get_path:tt, $get_doc:tt),
        events: $events:ident ($events_path:tt, $events_doc:tt),
        cancel: $cancel:ident ($cancel_path:tt, $cancel_doc:tt),
        delete: $delete:ident ($delete_path:tt, $delete_doc:tt),
        routes: {
            collection: $collection:tt,
            item: $item:tt,
            events: $events_route:tt,
            cancel: $cancel_route:tt,
            cancel_alias: $cancel_alias:tt,
            $(extra: [$(($extra_path:tt, $extra_method:ident, $extra:ident)),* $(,)?],)?
        } $(,)?
    ) => {
        #[utoipa::path(get, path = $list_path, tag = $tag, description = $list_doc,
            params(PageQuery, StatusQuery),
            responses((status = 200, body = [$View], headers(("X-Total-Count" = u64), ("Link" = String))),
                (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
        pub async fn $list(
            state: State,
            caller: Caller,
            req: HttpRequest,
            page: web::Query<PageQuery>,
            status: web::Query<StatusQuery>,
        ) -> Result<HttpResponse, ApiError> {
            $crate::api::jobs::list::<$R>(state, caller, req, page, status).await
        }

        #[utoipa::path(get, path = $get_path, tag = $tag, description = $get_doc,
            params(("id" = i32, Path)),
            responses((status = 200, body = $View), (status = 400, body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
        pub async fn $get(
            state: State,
            caller: Caller,
            path: web::Path<String>,
        ) -> Result<web::Json<$View>, ApiError> {
            $crate::api::jobs::get::<$R>(state, caller, path).await
        }

        #[utoipa::path(get, path = $events_path, tag = $tag, description = $events_doc,
            params(("id" = i32, Path)),
            responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String),
                (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
        pub async fn $events(
            state: State,
            caller: Caller,
            path: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            $crate::api::jobs::events::<$R>(state, caller, path).await
        }

        #[utoipa::path(patch, path = $cancel_path, tag = $tag, description = $cancel_doc,
            params(("id" = i32, Path)),
            responses((status = 200, body = $View), (status = 400, body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $cancel(
            state: State,
            caller: Caller,
            path: web::Path<String>,
        ) -> Result<web::Json<$View>, ApiError> {
            $crate::api::jobs::cancel::<$R>(state, caller, path).await
        }

        #[utoipa::path(delete, path = $delete_path, tag = $tag, description = $delete_doc,
            params(("id" = i32, Path)),
            responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
                (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
        pub async fn $delete(
            state: State,
            caller: Caller,
            path: web::Path<String>,
        ) -> Result<HttpResponse, ApiError> {
            $crate::api::jobs::delete::<$R>(state, caller, path).await
        }

        pub fn configure(cfg: &mut web::ServiceConfig) {
            cfg.service(
                resource($collection)
                    .route(web::post().to($create))
                    .route(web::get().to($list)),
            )
            .service(
                resource($item)
                    .route(web::get().to($get))
                    .route(web::delete().to($delete)),
            )
            $($(.service(resource($extra_path).route(web::$extra_method().to($extra))))*)?
            .service(resource($events_route).route(web::get().to($events)))
            .service(resource($cancel_route).route(web::post().to($cancel)))
            .service(resource($cancel_alias).route(web::patch().to($cancel)));
        }
    };
}
pub(crate) use job_routes;
