//! The REST API: one module per resource, each with `configure`, and the shared conventions
//! (errors, auth, paging, request spans).

pub mod auth;
pub mod connections;
pub mod convert;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod files;
pub mod firehose;
pub mod health;
pub mod jobs;
pub mod openapi;
pub mod pagination;
pub mod queries;
pub mod runs;
pub mod tokens;
pub mod transfers;
mod uploads;
pub mod users;

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::secrets::MasterKey;
use crate::settings::Settings;
use crate::store::Store;
use error::{ApiError, ErrorCode};

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub key: MasterKey,
    pub settings: Arc<Settings>,
    pub auth: auth::AuthCache,
    /// The job registry actor.
    pub jobs: actix::Addr<crate::jobs::JobRegistry>,
    /// Live progress of running jobs.
    pub progress: crate::jobs::ProgressMap,
    /// Job status changes (live events, job metrics).
    pub events: crate::jobs::JobEvents,
    /// This application's metrics (`GET /metrics`).
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// The bytes of files.
    pub files: Arc<dyn crate::storage::FileStorage>,
    /// Chunks of chunked uploads, held until their offset and size are known.
    pub spool: Arc<crate::storage::LocalDisk>,
}

pub type State = web::Data<AppState>;

/// Register every route of the API under `/api/v1`, and the open service routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(openapi::configure)
        .configure(dashboard::configure)
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(auth::require_auth))
                .configure(users::configure)
                .configure(tokens::configure)
                .configure(connections::configure)
                .configure(transfers::configure)
                .configure(queries::configure)
                .configure(files::configure)
                .configure(runs::configure)
                .configure(firehose::configure)
                .configure(openapi::configure_document),
        );
}

/// A resource whose unmatched methods get a JSON 405 rather than an empty body.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .error_response()
}

/// The answer to any path that no route matches.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// Run CPU-heavy work (argon2) off the HTTP worker.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work).await.map_err(ApiError::internal)
}

/// 201 Created with a `Location` header and the created resource.
pub fn created(location: String, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((actix_web::http::header::LOCATION, location))
        .json(body)
}

/// Parse an id path segment; a non-number is a 400 with a stable code.
pub fn parse_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidPathParameter,
            format!("{raw:?} is not a valid id (a positive integer)"),
        )
    })
}

/// A JSON request body that must be an object. (serde would otherwise read a struct from an
/// array by position.) Size limit and syntax errors are those of `web::JsonConfig`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    "the body must be a JSON object",
                )
                .into());
            }
            serde_path_to_error::deserialize(value)
                .map(Body)
                .map_err(|e| error::body_error(&e).into())
        })
    }
}
