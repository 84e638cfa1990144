//! `/tokens`: API tokens for scripts. The secret is shown once, at creation; the store keeps
//! its SHA-256 only.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::{created, parse_id, resource, Body, State};
use crate::secrets;
use crate::store::tokens::ApiToken;

/// A token as listed (without its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: i32,
    pub user_id: i32,
    pub name: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// The answer to a creation: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// Use as `Authorization: Bearer <token>` or `X-API-Key: <token>`. Not shown again.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for.
    #[schema(example = "nightly-etl")]
    pub name: String,
    /// When the token stops working (RFC 3339); never when absent (alias `expires_at`).
    #[serde(alias = "expires_at")]
    pub expires_at: Option<DateTime<Utc>>,
}

fn not_found(id: i32) -> ApiError {
    ApiError::new(
        ErrorCode::TokenNotFound,
        format!("token {id} does not exist"),
    )
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    description = "Create a token for the caller. The response holds the token; it is not shown again.",
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_token(
    state: State,
    caller: Caller,
    body: Body<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::validation(
            "expiresAt",
            "expiresAt must be in the future",
        ));
    }
    let (token, hash) = secrets::new_api_token();
    let prefix: String = token.expose_secret().chars().take(12).collect();
    let stored = state
        .store
        .create_token(caller.id, name, hash, prefix, body.expires_at)
        .await?;
    tracing::info!(token_id = stored.id, user = %caller.username, "API token created.");
    let location = format!("/api/v1/tokens/{}", stored.id);
    Ok(created(
        location,
        CreatedToken {
            info: stored.into(),
            token: token.expose_secret().to_string(),
        },
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    description = "The caller's tokens; an admin sees everyone's.",
    params(PageQuery),
    responses((status = 200, body = [TokenView], headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    state: State,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.validate()?;
    let owner = (!caller.admin).then_some(caller.id);
    let (tokens, total) = state.store.list_tokens(owner, &page.params()).await?;
    let items: Vec<TokenView> = tokens.into_iter().map(Into::into).collect();
    Ok(page.respond(&req, items, total))
}

/// A token the caller may see: its own, or any for an admin. Others' tokens are "not found".
async fn visible(state: &State, caller: &Caller, id: i32) -> Result<ApiToken, ApiError> {
    match state.store.get_token(id).await? {
        Some(t) if caller.admin || t.user_id == caller.id => Ok(t),
        _ => Err(not_found(id)),
    }
}

#[utoipa::path(get, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i32, Path)),
    responses((status = 200, body = TokenView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_token(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TokenView>, ApiError> {
    let id = parse_id(&path)?;
    Ok(web::Json(visible(&state, &caller, id).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    description = "Revoke a token: it stops working at once.",
    params(("id" = i32, Path)),
    responses((status = 204, description = "Revoked"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    visible(&state, &caller, id).await?;
    if !state.store.delete_token(id).await? {
        return Err(not_found(id));
    }
    tracing::info!(token_id = id, user = %caller.username, "API token revoked.");
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/tokens")
            .route(web::post().to(create_token))
            .route(web::get().to(list_tokens)),
    )
    .service(
        resource("/tokens/{id}")
            .route(web::get().to(get_token))
            .route(web::delete().to(delete_token)),
    );
}
