//! `/connections`: the databases that transfers and queries use. Any user reads; admins write.
//! Passwords are write-only and stored encrypted.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Caller};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::{created, parse_id, resource, Body, State};
use crate::catalog::{CatalogName, Ddl, RelationInfo, RowCount};
use crate::domain::connections::{
    connect_spec, merge, stored_options, ConnectionInput, ConnectionOptions,
};
use crate::engine::{self, ConnectError, SchemaInfo, TestResult, Timeouts};
use crate::store::connections::{Connection, ConnectionWriteError, DeleteConnection};

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
    let (conn, spec, list_timeout) = catalog_reader(&state, id).await?;
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

/// Connection `id`, how to connect to it, and how long reading its catalog may take.
async fn catalog_reader(
    state: &State,
    id: i32,
) -> Result<(Connection, engine::ConnectSpec, Duration), ApiError> {
    let conn = load(state, id).await?;
    let spec = connect_spec(&conn, &state.key, timeouts(state))?;
    let list_timeout = Duration::from_secs(state.settings.engine.list_timeout_secs);
    Ok((conn, spec, list_timeout))
}

/// A failure to read a user's database's catalog: 404 for a database or schema that is not
/// there, else
/// 502 `connection_failed`.
fn catalog_error(id: i32, name: &str, e: ConnectError) -> ApiError {
    let code = match e {
        ConnectError::DatabaseNotFound(_)
        | ConnectError::SchemaNotFound(_)
        | ConnectError::TableNotFound(_)
        | ConnectError::Timeout(_) => e.code(),
        _ => ErrorCode::ConnectionFailed,
    };
    ApiError::new(code, format!("connection {id} ({name}): {e}"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DatabasesQuery {
    /// Also the server's own databases (PostgreSQL templates; MySQL `mysql`,
    /// `information_schema`, `performance_schema`, `sys`; SQLite `temp`).
    #[serde(default)]
    pub system: bool,
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases", tag = "connections",
    description = "The databases on the connection's server: PostgreSQL's the role may connect to, MySQL/MariaDB's the user can see (less the system's unless `system=true`), SQLite's `main` and those attached.",
    params(("id" = i32, Path), DatabasesQuery),
    responses((status = 200, body = [CatalogName]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn list_databases(
    state: State,
    _caller: Caller,
    path: web::Path<String>,
    query: web::Query<DatabasesQuery>,
) -> Result<web::Json<Vec<CatalogName>>, ApiError> {
    let id = parse_id(&path)?;
    let (conn, spec, list_timeout) = catalog_reader(&state, id).await?;
    let names = engine::list_databases(&spec, query.system, list_timeout)
        .await
        .map_err(|e| catalog_error(id, &conn.name, e))?;
    Ok(web::Json(
        names.into_iter().map(|name| CatalogName { name }).collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases/{db}/schemas", tag = "connections",
    description = "The schemas of one database (PostgreSQL: those the role may use, less the system's; MySQL/MariaDB and SQLite: the database itself). 404 `database_not_found` for a database that is not there.",
    params(("id" = i32, Path), ("db" = String, Path)),
    responses((status = 200, body = [CatalogName]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn list_schemas(
    state: State,
    _caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<web::Json<Vec<CatalogName>>, ApiError> {
    let (id, database) = path.into_inner();
    let id = parse_id(&id)?;
    let (conn, spec, list_timeout) = catalog_reader(&state, id).await?;
    let names = engine::list_schemas(&spec, &database, list_timeout)
        .await
        .map_err(|e| catalog_error(id, &conn.name, e))?;
    Ok(web::Json(
        names.into_iter().map(|name| CatalogName { name }).collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases/{db}/schemas/{schema}/tables", tag = "connections",
    description = "The tables and views of one schema, with `kind`, `rowEstimate` and `sizeBytes` (the database's own figures, read without scanning; `null` where it keeps none) and `comment`. 404 `database_not_found` / `schema_not_found`.",
    params(("id" = i32, Path), ("db" = String, Path), ("schema" = String, Path)),
    responses((status = 200, body = [RelationInfo]), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn list_relations(
    state: State,
    _caller: Caller,
    path: web::Path<(String, String, String)>,
) -> Result<web::Json<Vec<RelationInfo>>, ApiError> {
    let (id, database, schema) = path.into_inner();
    let id = parse_id(&id)?;
    let (conn, spec, list_timeout) = catalog_reader(&state, id).await?;
    let relations = engine::list_relations(&spec, &database, &schema, list_timeout)
        .await
        .map_err(|e| catalog_error(id, &conn.name, e))?;
    Ok(web::Json(relations))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases/{db}/schemas/{schema}/tables/{table}/count", tag = "connections",
    description = "The exact row count of a table or view, counted by the database and stopped after `engine.count_timeout_secs` (then `timeout`). 404 `database_not_found` / `schema_not_found` / `table_not_found`.",
    params(("id" = i32, Path), ("db" = String, Path), ("schema" = String, Path), ("table" = String, Path)),
    responses((status = 200, body = RowCount), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody),
        (status = 504, description = "The count took longer than allowed", body = ErrorBody)))]
pub async fn count_rows(
    state: State,
    _caller: Caller,
    path: web::Path<(String, String, String, String)>,
) -> Result<web::Json<RowCount>, ApiError> {
    let (id, database, schema, table) = path.into_inner();
    let id = parse_id(&id)?;
    let (conn, spec, _) = catalog_reader(&state, id).await?;
    let limit = Duration::from_secs(state.settings.engine.count_timeout_secs);
    let at = engine::connector::TableAt {
        database: &database,
        schema: &schema,
        table: &table,
    };
    let rows = engine::count_rows(&spec, at, limit)
        .await
        .map_err(|e| catalog_error(id, &conn.name, e))?;
    Ok(web::Json(RowCount {
        table,
        rows,
        exact: true,
    }))
}

/// The DDL of the table or view the path names.
async fn ddl_of(
    state: &State,
    path: (String, String, String, String),
    view: bool,
) -> Result<web::Json<Ddl>, ApiError> {
    let (id, database, schema, name) = path;
    let id = parse_id(&id)?;
    let (conn, spec, list_timeout) = catalog_reader(state, id).await?;
    let at = engine::connector::TableAt {
        database: &database,
        schema: &schema,
        table: &name,
    };
    let ddl = engine::table_ddl(&spec, at, view, list_timeout)
        .await
        .map_err(|e| catalog_error(id, &conn.name, e))?;
    let kind = if view { "view" } else { "table" };
    Ok(web::Json(Ddl {
        name,
        kind: kind.into(),
        ddl,
    }))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases/{db}/schemas/{schema}/tables/{table}/ddl", tag = "connections",
    description = "The statement that recreates a table, as the database prints it: PostgreSQL's built from the catalogs (columns, identity, defaults, constraints, indexes, comment), MariaDB's `SHOW CREATE TABLE`, SQLite's `sqlite_master` with its indexes and triggers. 404 `table_not_found` (also for a view: see `…/views/{view}/ddl`).",
    params(("id" = i32, Path), ("db" = String, Path), ("schema" = String, Path), ("table" = String, Path)),
    responses((status = 200, body = Ddl), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn table_ddl(
    state: State,
    _caller: Caller,
    path: web::Path<(String, String, String, String)>,
) -> Result<web::Json<Ddl>, ApiError> {
    ddl_of(&state, path.into_inner(), false).await
}

#[utoipa::path(get, path = "/api/v1/connections/{id}/databases/{db}/schemas/{schema}/views/{view}/ddl", tag = "connections",
    description = "The statement that recreates a view (PostgreSQL: `CREATE VIEW … AS` with `pg_get_viewdef`; MariaDB: `SHOW CREATE VIEW`; SQLite: `sqlite_master`). 404 `table_not_found` for a name that is not a view.",
    params(("id" = i32, Path), ("db" = String, Path), ("schema" = String, Path), ("view" = String, Path)),
    responses((status = 200, body = Ddl), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 502, description = "The database could not be reached or read", body = ErrorBody)))]
pub async fn view_ddl(
    state: State,
    _caller: Caller,
    path: web::Path<(String, String, String, String)>,
) -> Result<web::Json<Ddl>, ApiError> {
    ddl_of(&state, path.into_inner(), true).await
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
    .service(resource("/connections/{id}/tables").route(web::get().to(list_tables)))
    .service(resource("/connections/{id}/databases").route(web::get().to(list_databases)))
    .service(
        resource("/connections/{id}/databases/{db}/schemas").route(web::get().to(list_schemas)),
    )
    .service(
        resource("/connections/{id}/databases/{db}/schemas/{schema}/tables")
            .route(web::get().to(list_relations)),
    )
    .service(
        resource("/connections/{id}/databases/{db}/schemas/{schema}/tables/{table}/count")
            .route(web::get().to(count_rows)),
    )
    .service(
        resource("/connections/{id}/databases/{db}/schemas/{schema}/tables/{table}/ddl")
            .route(web::get().to(table_ddl)),
    )
    .service(
        resource("/connections/{id}/databases/{db}/schemas/{schema}/views/{view}/ddl")
            .route(web::get().to(view_ddl)),
    );
}
