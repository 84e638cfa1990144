//! `/users`: accounts that may call the API. Admin-only, except `/users/me`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Admin, Caller};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::{blocking, created, parse_id, resource, Body, State};
use crate::domain::accounts::{validate_password, validate_username};
use crate::secrets;
use crate::store::users::{User, UserChanges, UserWriteError};

/// A user as the API shows it (never a password or hash).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: i32,
    pub username: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            admin: u.admin,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUser {
    #[schema(example = "alice")]
    pub username: String,
    /// At least 8 characters. Write-only.
    #[schema(value_type = String, format = Password, example = "correct horse battery", min_length = 8)]
    pub password: SecretString,
    #[serde(default)]
    pub admin: bool,
}

/// Partial update; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    pub username: Option<String>,
    /// At least 8 characters. Write-only.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    pub admin: Option<bool>,
}

/// Change of one's own account through `/users/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMe {
    /// The new password, at least 8 characters.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Hash a password off the HTTP worker.
pub async fn hash(password: SecretString) -> Result<String, ApiError> {
    blocking(move || secrets::hash_password(&password)).await
}

fn write_error(e: UserWriteError, id: Option<i32>, username: Option<&str>) -> ApiError {
    match e {
        UserWriteError::NotFound => ApiError::new(
            ErrorCode::UserNotFound,
            format!("user {} does not exist", id.unwrap_or_default()),
        ),
        UserWriteError::UsernameTaken => ApiError {
            field: Some("username".into()),
            ..ApiError::new(
                ErrorCode::UsernameTaken,
                format!("username {:?} is taken", username.unwrap_or_default()),
            )
        },
        UserWriteError::LastAdmin => ApiError::new(
            ErrorCode::LastAdmin,
            "this is the last admin; make another user admin first",
        ),
        UserWriteError::Db(e) => e.into(),
    }
}

fn not_found(id: i32) -> ApiError {
    ApiError::new(ErrorCode::UserNotFound, format!("user {id} does not exist"))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "Username taken", body = ErrorBody),
    ))]
pub async fn create_user(
    state: State,
    _admin: Admin,
    body: Body<CreateUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let username = validate_username(&body.username)?;
    validate_password(body.password.expose_secret())?;
    let hash = hash(body.password).await?;
    let user = state
        .store
        .create_user(&username, hash, body.admin)
        .await
        .map_err(|e| write_error(e, None, Some(&username)))?;
    tracing::info!(user_id = user.id, username = %user.username, admin = user.admin, "User created.");
    Ok(created(
        format!("/api/v1/users/{}", user.id),
        UserView::from(user),
    ))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(PageQuery),
    responses(
        (status = 200, body = [UserView], headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
pub async fn list_users(
    state: State,
    _admin: Admin,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.validate()?;
    let (users, total) = state.store.list_users(&page.params()).await?;
    let items: Vec<UserView> = users.into_iter().map(Into::into).collect();
    Ok(page.respond(&req, items, total))
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(state: State, caller: Caller) -> Result<web::Json<UserView>, ApiError> {
    let user = state
        .store
        .get_user(caller.id)
        .await?
        .ok_or_else(|| not_found(caller.id))?;
    Ok(web::Json(user.into()))
}

#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    description = "Change one's own password (any user). PUT is accepted too.",
    request_body = UpdateMe,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update_me(
    state: State,
    caller: Caller,
    body: Body<UpdateMe>,
) -> Result<web::Json<UserView>, ApiError> {
    let body = body.into_inner();
    validate_password(body.password.expose_secret())?;
    let changes = UserChanges {
        password_hash: Some(hash(body.password).await?),
        ..Default::default()
    };
    let user = state
        .store
        .update_user(caller.id, changes)
        .await
        .map_err(|e| write_error(e, Some(caller.id), None))?;
    Ok(web::Json(user.into()))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = i32, Path)),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    state: State,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = parse_id(&path)?;
    let user = state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(web::Json(user.into()))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    description = "Partial update; PUT is accepted and behaves the same. Demoting the last admin is refused (409).",
    params(("id" = i32, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    state: State,
    _admin: Admin,
    path: web::Path<String>,
    body: Body<UpdateUser>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = parse_id(&path)?;
    let body = body.into_inner();
    let username = body
        .username
        .as_deref()
        .map(validate_username)
        .transpose()?;
    let password_hash = match body.password {
        Some(password) => {
            validate_password(password.expose_secret())?;
            Some(hash(password).await?)
        }
        None => None,
    };
    let changes = UserChanges {
        username: username.clone(),
        password_hash,
        admin: body.admin,
    };
    let user = state
        .store
        .update_user(id, changes)
        .await
        .map_err(|e| write_error(e, Some(id), username.as_deref()))?;
    tracing::info!(user_id = id, "User updated.");
    Ok(web::Json(user.into()))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    description = "Also `DELETE /api/v1/user/{id}`. Deleting the last admin is refused (409).",
    params(("id" = i32, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    state: State,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    state
        .store
        .delete_user(id)
        .await
        .map_err(|e| write_error(e, Some(id), None))?;
    tracing::info!(user_id = id, "User deleted.");
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/users")
            .route(web::post().to(create_user))
            .route(web::get().to(list_users)),
    )
    .service(
        resource("/users/me")
            .route(web::get().to(me))
            .route(web::patch().to(update_me))
            .route(web::put().to(update_me)),
    )
    .service(
        resource("/users/{id}")
            .route(web::get().to(get_user))
            .route(web::patch().to(update_user))
            .route(web::put().to(update_user))
            .route(web::delete().to(delete_user)),
    )
    .service(resource("/user/{id}").route(web::delete().to(delete_user)));
}
