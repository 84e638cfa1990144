//! `/healthz` (the process answers) and `/readyz` (the metadata store answers and is migrated).

use actix_web::{web, HttpResponse};
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)));
}
