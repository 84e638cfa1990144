//! `/connections`: the databases that transfers and queries use. Any user reads; admins write.
//! Passwords are write-only and stored encrypted.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Caller};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::{created, nullable, parse_id, resource, Body, State};
use crate::engine::{self, ConnectSpec, DbKind, SchemaInfo, SslMode, TestResult, Timeouts};
use crate::secrets::MasterKey;
use crate::store::connections::{
    Connection, ConnectionFields, ConnectionWriteError, DeleteConnection,
};

/// Driver options of a connection.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionOptions {
    /// TLS to the server: `disable`, `prefer` (default), `require`, `verify-ca` or
    /// `verify-full`. `sslmode` is accepted as input.
    #[serde(
        default,
        alias = "sslmode",
        alias = "ssl_mode",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(example = "require")]
    pub ssl_mode: Option<String>,
    /// Path (on the Sluice host) of a PEM file with CA certificates to trust for
    /// `verify-ca` / `verify-full`.
    #[serde(
        default,
        alias = "sslrootcert",
        alias = "ssl_root_cert",
        skip_serializing_if = "Option::is_none"
    )]
    pub ssl_root_cert: Option<String>,
}

/// A port given as a number or as text (SQLpipe sends text).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortInput {
    Number(i64),
    Text(String),
}

/// DBConvert Streams' nesting of a connection's server fields: `spec.database.{host, port,
/// username, password, database}`, read as the flat fields of the same names.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedSpec {
    pub database: Option<NestedDatabase>,
}

/// The server fields of a DBConvert-style `spec.database`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedDatabase {
    #[schema(example = "127.0.0.1")]
    pub host: Option<String>,
    #[schema(value_type = Option<u16>, example = 3306)]
    pub port: Option<PortInput>,
    #[schema(example = "root")]
    pub username: Option<String>,
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    #[schema(example = "test")]
    pub database: Option<String>,
}

/// Input of `POST` (all required fields) and `PATCH`/`PUT` (any subset; `null` clears).
/// SQLpipe's names `dsType`, `hostname` and `dbName`, and DBConvert's nested
/// `spec.database` are accepted; any other field is refused (400 `unknown_field`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    #[schema(example = "warehouse")]
    pub name: Option<String>,
    /// `postgresql`, `mysql`, `mariadb` or `sqlite` (alias `dsType`).
    #[serde(rename = "type", alias = "dsType")]
    #[schema(example = "postgresql")]
    pub kind: Option<String>,
    /// Server host (alias `hostname`); server types only.
    #[serde(default, alias = "hostname", deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "127.0.0.1")]
    pub host: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u16>, example = 5432)]
    pub port: Option<Option<PortInput>>,
    /// Database name (aliases `dbName`, `db_name`); server types only.
    #[serde(
        default,
        alias = "dbName",
        alias = "db_name",
        deserialize_with = "nullable"
    )]
    #[schema(value_type = Option<String>, example = "test")]
    pub database: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "postgres")]
    pub username: Option<Option<String>>,
    /// Write-only; stored encrypted, never returned.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Option<SecretString>>,
    /// Database file (sqlite only).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "/srv/data/app.db")]
    pub path: Option<Option<String>>,
    pub options: Option<ConnectionOptions>,
    /// DBConvert Streams' shape: `{"spec": {"database": {"host", "port", "username",
    /// "password", "database"}}}`, the same as the flat fields (which it must not contradict).
    pub spec: Option<NestedSpec>,
}

impl ConnectionInput {
    /// Move DBConvert's `spec.database` fields into the flat ones. A field given both ways
    /// must say the same thing.
    fn flatten_spec(&mut self) -> Result<(), ApiError> {
        let Some(nested) = self.spec.take().and_then(|s| s.database) else {
            return Ok(());
        };
        fn put<T>(
            flat: &mut Option<Option<T>>,
            nested: Option<T>,
            name: &str,
            same: impl Fn(&T, &T) -> bool,
        ) -> Result<(), ApiError> {
            let Some(value) = nested else { return Ok(()) };
            match flat {
                Some(Some(existing)) if !same(existing, &value) => Err(ApiError::validation(
                    &format!("spec.database.{name}"),
                    format!("{name} is given twice, differently (as `{name}` and as `spec.database.{name}`)"),
                )),
                _ => {
                    *flat = Some(Some(value));
                    Ok(())
                }
            }
        }
        put(&mut self.host, nested.host, "host", |a, b| a == b)?;
        put(&mut self.port, nested.port, "port", |a, b| {
            parse_port(a).ok() == parse_port(b).ok()
        })?;
        put(&mut self.username, nested.username, "username", |a, b| {
            a == b
        })?;
        put(&mut self.password, nested.password, "password", |a, b| {
            a.expose_secret() == b.expose_secret()
        })?;
        put(&mut self.database, nested.database, "database", |a, b| {
            a == b
        })?;
        Ok(())
    }
}

/// A connection as the API shows it: never the password.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    pub id: i32,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub database: Option<String>,
    pub username: Option<String>,
    /// Whether a password is stored (the password itself is never returned).
    pub has_password: bool,
    pub path: Option<String>,
    pub options: ConnectionOptions,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn stored_options(c: &Connection) -> ConnectionOptions {
    serde_json::from_value(c.options.clone()).unwrap_or_default()
}

impl From<Connection> for ConnectionView {
    fn from(c: Connection) -> Self {
        let options = stored_options(&c);
        Self {
            id: c.id,
            name: c.name,
            kind: c.kind,
            host: c.host,
            port: c.port,
            database: c.database,
            username: c.username,
            has_password: c.password_encrypted.is_some(),
            path: c.path,
            options,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn text_field(input: Option<Option<String>>, current: Option<String>) -> Option<String> {
    match input {
        None => current,
        Some(value) => value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
    }
}

fn parse_port(input: &PortInput) -> Result<i32, ApiError> {
    let bad = || ApiError::validation("port", "port must be a number from 1 to 65535");
    let n = match input {
        PortInput::Number(n) => *n,
        PortInput::Text(t) => t.trim().parse::<i64>().map_err(|_| bad())?,
    };
    if (1..=65535).contains(&n) {
        Ok(n as i32)
    } else {
        Err(bad())
    }
}

/// Merge an input over the current connection (if any), validate the result for its type,
/// and encrypt a new password.
pub fn merge(
    current: Option<&Connection>,
    mut input: ConnectionInput,
    key: &MasterKey,
) -> Result<ConnectionFields, ApiError> {
    input.flatten_spec()?;
    let name = match input.name {
        Some(n) => n.trim().to_string(),
        None => current.map(|c| c.name.clone()).unwrap_or_default(),
    };
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(
            "name",
            "name is required: 1 to 100 characters",
        ));
    }
    let kind_text = input
        .kind
        .or_else(|| current.map(|c| c.kind.clone()))
        .ok_or_else(|| {
            ApiError::validation(
                "type",
                "type is required: postgresql, mysql, mariadb or sqlite",
            )
        })?;
    let kind = DbKind::parse(&kind_text).ok_or_else(|| {
        ApiError::validation(
            "type",
            format!("type {kind_text:?} is not one of postgresql, mysql, mariadb, sqlite"),
        )
    })?;
    let options = match input.options {
        Some(o) => o,
        None => current.map(stored_options).unwrap_or_default(),
    };
    if let Some(mode) = &options.ssl_mode {
        if SslMode::parse(mode).is_none() {
            return Err(ApiError::validation(
                "options.sslMode",
                format!("sslMode {mode:?} is not one of {}", SslMode::WORDS),
            ));
        }
    }
    let options_json = serde_json::to_value(&options).map_err(ApiError::internal)?;

    if !kind.is_server() {
        let path =
            text_field(input.path, current.and_then(|c| c.path.clone())).ok_or_else(|| {
                ApiError::validation("path", "a sqlite connection needs the database file's path")
            })?;
        return Ok(ConnectionFields {
            name,
            kind: kind.as_str().to_string(),
            host: None,
            port: None,
            database: None,
            username: None,
            password_encrypted: None,
            path: Some(path),
            options: options_json,
        });
    }

    let required = |field: &str, value: Option<String>| {
        value.ok_or_else(|| {
            ApiError::validation(
                field,
                format!("a {} connection needs {field}", kind.as_str()),
            )
        })
    };
    let host = required(
        "host",
        text_field(input.host, current.and_then(|c| c.host.clone())),
    )?;
    let port = match input.port {
        None => current.and_then(|c| c.port),
        Some(None) => None,
        Some(Some(p)) => Some(parse_port(&p)?),
    }
    .ok_or_else(|| {
        ApiError::validation("port", format!("a {} connection needs port", kind.as_str()))
    })?;
    let database = required(
        "database",
        text_field(input.database, current.and_then(|c| c.database.clone())),
    )?;
    let username = required(
        "username",
        text_field(input.username, current.and_then(|c| c.username.clone())),
    )?;
    let password_encrypted = match input.password {
        None => current.and_then(|c| c.password_encrypted.clone()),
        Some(None) => None,
        Some(Some(p)) if p.expose_secret().is_empty() => None,
        Some(Some(p)) => Some(key.encrypt(&p)),
    };
    Ok(ConnectionFields {
        name,
        kind: kind.as_str().to_string(),
        host: Some(host),
        port: Some(port),
        database: Some(database),
        username: Some(username),
        password_encrypted,
        path: None,
        options: options_json,
    })
}

/// What the engine needs to open a stored connection (the password decrypted).
pub fn connect_spec(
    c: &Connection,
    key: &MasterKey,
    timeouts: Timeouts,
) -> Result<ConnectSpec, ApiError> {
    let kind = DbKind::parse(&c.kind)
        .ok_or_else(|| ApiError::internal(format!("stored connection type {:?}", c.kind)))?;
    let options = stored_options(c);
    let password = c
        .password_encrypted
        .as_deref()
        .map(|stored| key.decrypt(stored))
        .transpose()
        .map_err(|e| ApiError::internal(format!("connection {}: {e}", c.id)))?;
    Ok(ConnectSpec {
        kind,
        host: c.host.clone().unwrap_or_default(),
        port: c.port.unwrap_or_default() as u16,
        database: c.database.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        password,
        path: c.path.as_ref().map(PathBuf::from),
        ssl_mode: options
            .ssl_mode
            .as_deref()
            .and_then(SslMode::parse)
            .unwrap_or_default(),
        ssl_root_cert: options.ssl_root_cert.map(PathBuf::from),
        timeouts,
        read_only: false,
    })
}

fn not_found(id: i32) -> ApiError {
    ApiError::new(
        ErrorCode::ConnectionNotFound,
        format!("connection {id} does not exist"),
    )
}

fn write_error(e: ConnectionWriteError, id: Option<i32>, name: &str) -> ApiError {
    match e {
        ConnectionWriteError::NotFound => not_found(id.unwrap_or_default()),
        ConnectionWriteError::NameTaken => ApiError {
            field: Some("name".into()),
            ..ApiError::new(
                ErrorCode::ConnectionNameTaken,
                format!("a connection named {name:?} exists already"),
            )
        },
        ConnectionWriteError::Db(e) => e.into(),
    }
}

async fn load(state: &State, id: i32) -> Result<Connection, ApiError> {
    state
        .store
        .get_connection(id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn timeouts(state: &State) -> Timeouts {
    state.settings.engine.timeouts()
}

#[utoipa::path(post, path = "/api/v1/connections", tag = "connections",
    description = "Server types (postgresql, mysql, mariadb) need host, port, database and username; sqlite needs path.",
    request_body = ConnectionInput,
    responses((status = 201, body = ConnectionView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "Name taken", body = ErrorBody)))]
pub async fn create_connection(
    state: State,
    _admin: Admin,
    body: Body<ConnectionInput>,
) -> Result<HttpResponse, ApiError> {
    let fields = merge(None, body.into_inner(), &state.key)?;
    let name = fields.name.clone();
    let conn = state
        .store
        .create_connection(fields)
        .await
        .map_err(|e| write_error(e, None, &name))?;
    tracing::info!(connection_id = conn.id, name = %conn.name, kind = %conn.kind, "Connection created.");
    Ok(created(
        format!("/api/v1/connections/{}", conn.id),
        ConnectionView::from(conn),
    ))
}

#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    params(PageQuery),
    responses((status = 200, body = [ConnectionView], headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_connections(
    state: State,
    _caller: Caller,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.validate()?;
    let (rows, total) = state.store.list_connections(&page.params()).await?;
    let items: Vec<ConnectionView> = rows.into_iter().map(Into::into).collect();
    Ok(page.respond(&req, items, total))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = i32, Path)),
    responses((status = 200, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_connection(
    state: State,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<ConnectionView>, ApiError> {
    let id = parse_id(&path)?;
    Ok(web::Json(load(&state, id).await?.into()))
}

#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections",
    description = "Partial update; PUT is accepted and behaves the same. `null` clears a field; an absent password keeps the stored one.",
    params(("id" = i32, Path)), request_body = ConnectionInput,
    responses((status = 200, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_connection(
    state: State,
    _admin: Admin,
    path: web::Path<String>,
    body: Body<ConnectionInput>,
) -> Result<web::Json<ConnectionView>, ApiError> {
    let id = parse_id(&path)?;
    let current = load(&state, id).await?;
    let fields = merge(Some(&current), body.into_inner(), &state.key)?;
    let name = fields.name.clone();
    let conn = state
        .store
        .update_connection(id, fields)
        .await
        .map_err(|e| write_error(e, Some(id), &name))?;
    tracing::info!(connection_id = id, "Connection updated.");
    Ok(web::Json(conn.into()))
}

#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    description = "Also `DELETE /api/v1/connection/{id}`. Refused (409 `connection_in_use`) while a queued or running job uses the connection; finished jobs stay readable and keep its name (`sourceName`, `targetName`, `connectionName`).",
    params(("id" = i32, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Jobs use it", body = ErrorBody)))]
pub async fn delete_connection(
    state: State,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path)?;
    match state.store.delete_connection(id).await? {
        DeleteConnection::Deleted => {}
        DeleteConnection::NotFound => return Err(not_found(id)),
        DeleteConnection::InUse { transfers, queries } => {
            let list = |what: &str, ids: &[i32]| {
                (!ids.is_empty()).then(|| {
                    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
                    format!("{what} {}", ids.join(", "))
                })
            };
            let jobs: Vec<String> = [list("transfers", &transfers), list("queries", &queries)]
                .into_iter()
                .flatten()
                .collect();
            return Err(ApiError::new(
                ErrorCode::ConnectionInUse,
                format!(
                    "connection {id} is used by queued or running jobs ({}); cancel them or \
                     let them finish first",
                    jobs.join("; ")
                ),
            ));
        }
    }
    tracing::info!(connection_id = id, "Connection deleted.");
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/connections/{id}/test", tag = "connections",
    description = "Connect to the database now. 200 either way: `ok` tells whether it worked; on failure `error` and `errorCode` say why.",
    params(("id" = i32, Path)),
    responses((status = 200, body = TestResult), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_connection(
    state: State,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<TestResult>, ApiError> {
    let id = parse_id(&path)?;
    let conn = load(&state, id).await?;
    let spec = connect_spec(&conn, &state.key, timeouts(&state))?;
    let result = engine::test_connection(&spec).await;
    tracing::info!(
        connection_id = id,
        ok = result.ok,
        latency_ms = result.latency_ms,
        "Connection tested."
    );
    Ok(web::Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TablesQuery {
    /// Only this schema (PostgreSQL schema, MySQL database; `main` for SQLite). Without it:
    /// every schema of a PostgreSQL database; the connection's own database on MySQL/MariaDB,
    /// where `*` lists every database the user can see.
    pub schema: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/tables", tag = "connections",
    description = "Schemas, tables and views with their columns and types, read from the live database.",
    params(("id" = i32, Path), TablesQuery),
    responses((status = 200, body = [SchemaInfo]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn list_tables(
    state: State,
    _caller: Caller,
    path: web::Path<String>,
    query: web::Query<TablesQuery>,
) -> Result<web::Json<Vec<SchemaInfo>>, ApiError> {
    let id = parse_id(&path)?;
    let conn = load(&state, id).await?;
    let spec = connect_spec(&conn, &state.key, timeouts(&state))?;
    let list_timeout = Duration::from_secs(state.settings.engine.list_timeout_secs);
    let schemas = engine::list_tables(&spec, query.schema.as_deref(), list_timeout)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::ConnectionFailed,
                format!("connection {id} ({}): {e}", conn.name),
            )
        })?;
    Ok(web::Json(schemas))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/connections")
            .route(web::post().to(create_connection))
            .route(web::get().to(list_connections)),
    )
    .service(
        resource("/connections/{id}")
            .route(web::get().to(get_connection))
            .route(web::patch().to(update_connection))
            .route(web::put().to(update_connection))
            .route(web::delete().to(delete_connection)),
    )
    .service(resource("/connection/{id}").route(web::delete().to(delete_connection)))
    .service(resource("/connections/{id}/test").route(web::post().to(test_connection)))
    .service(resource("/connections/{id}/tables").route(web::get().to(list_tables)));
}
