//! The service routes: `/healthz` (the process answers), `/readyz` (the metadata store answers
//! and is migrated) and `/metrics` (Prometheus text).

use actix_web::middleware::from_fn;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::{resource, State};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: State) -> Result<HttpResponse, ApiError> {
    match state.store.ready().await {
        Ok(()) => Ok(HttpResponse::Ok().json(Health { status: "ready" })),
        Err(why) => Err(ApiError::new(ErrorCode::ServiceUnavailable, why)),
    }
}

#[utoipa::path(get, path = "/metrics", tag = "service",
    description = "Prometheus text format: jobs by kind and final status, running and queued jobs, rows written and bytes read, job durations, HTTP requests and latency by route template, open live-event streams. Open by default; with `api.metrics_public = false` it takes admin credentials like `/api/v1`.",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn metrics(state: State, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if !state.settings.api.metrics_public {
        // Authenticated by `require_auth` around this route.
        super::auth::Admin::extract(&req).await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(
            resource("/metrics")
                .wrap(from_fn(super::auth::require_auth))
                .route(web::get().to(metrics)),
        );
}
