//! The OpenAPI 3 document, generated from the handlers' annotations, and the `/docs` page
//! (Swagger UI, served from assets compiled into the binary).

use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    connections, convert, error, files, firehose, health, queries, runs, tokens, transfers, users,
};
use crate::engine;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Moves query results between databases. Every `/api/v1` route takes HTTP Basic credentials, `Authorization: Bearer <token>` or `X-API-Key: <token>`. Errors are `{title, status, code, detail}` with a stable `code`. Lists take `page`, `page_size` and `sort` and answer with `X-Total-Count` and `Link` headers."
    ),
    paths(
        health::healthz, health::readyz,
        users::create_user, users::list_users, users::me, users::update_me, users::get_user,
        users::update_user, users::delete_user,
        tokens::create_token, tokens::list_tokens, tokens::get_token, tokens::delete_token,
        connections::create_connection, connections::list_connections,
        connections::get_connection, connections::update_connection,
        connections::delete_connection, connections::test_connection, connections::list_tables,
        connections::list_databases, connections::list_schemas, connections::list_relations,
        connections::count_rows, connections::table_ddl, connections::view_ddl,
        transfers::create_transfer, transfers::list_transfers, transfers::get_transfer,
        transfers::cancel_transfer, transfers::delete_transfer, transfers::transfer_events,
        queries::create_query, queries::list_queries, queries::get_query, queries::get_result,
        queries::cancel_query, queries::delete_query, queries::query_events,
        files::create_file, files::list_files, files::get_file, files::download_file,
        files::upload_chunk, files::set_schema, files::delete_file,
        runs::create_run, runs::list_runs, runs::get_run, runs::run_events, runs::cancel_run,
        runs::delete_run, runs::pipeline_run,
        firehose::all_events, health::metrics,
    ),
    components(schemas(
        error::ErrorBody, health::Health,
        users::UserView, users::CreateUser, users::UpdateUser, users::UpdateMe,
        tokens::TokenView, tokens::CreatedToken, tokens::CreateToken,
        connections::ConnectionView, crate::domain::connections::ConnectionInput,
        crate::domain::connections::ConnectionOptions, crate::domain::connections::NestedSpec,
        crate::domain::connections::NestedDatabase,
        transfers::TransferView, transfers::CreateTransfer,
        queries::QueryView, queries::CreateQuery, queries::ColumnView,
        files::FileView, files::CreateFile, files::SetSchema,
        crate::domain::files::FieldInput,
        runs::RunView, runs::CreateRun, runs::PipelineRun, convert::ConvertRequest,
        crate::domain::convert::ConvertOptions, crate::domain::convert::OutputOptions,
        crate::domain::convert::InputOptions, crate::domain::convert::LoadOptions,
        crate::domain::convert::ExportOptions, crate::domain::convert::DetectOptions,
        crate::domain::convert::DetectInput,
        crate::jobs::events::ProgressEvent,
        engine::TestResult, engine::SchemaInfo, engine::TableInfo, engine::ColumnInfo,
        crate::catalog::CatalogName, crate::catalog::RelationInfo, crate::catalog::RowCount, crate::catalog::Ddl,
    )),
    modifiers(&Security),
    security(("basic" = []), ("bearer" = []), ("apiKey" = [])),
    tags(
        (name = "users", description = "Accounts (admin only, but /users/me)"),
        (name = "tokens", description = "API tokens"),
        (name = "connections", description = "Databases to read from and write to"),
        (name = "queries", description = "SQL run on a connection as a job, its result kept"),
        (name = "transfers", description = "Query results moved into a table of another connection, as jobs"),
        (name = "files", description = "Files uploaded (whole or in chunks) and downloaded; a user's own, admins all"),
        (name = "runs", description = "Steps of work on a file (schema detection), as jobs; Sqlify's pipeline routes queue them"),
        (name = "events", description = "Live events of every job (Server-Sent Events, admins)"),
        (name = "service", description = "Health, readiness and metrics (no credentials unless configured)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Routes that do exactly what another does (the seed APIs' spellings and PUT for PATCH):
/// (alias method, alias path, method, path of the route documented by its handler).
pub const ALIASES: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/api/v1/transfers/{id}/cancel",
        "patch",
        "/api/v1/cancel-transfer/{id}",
    ),
    (
        "post",
        "/api/v1/queries/{id}/cancel",
        "patch",
        "/api/v1/cancel-query/{id}",
    ),
    (
        "delete",
        "/api/v1/connection/{id}",
        "delete",
        "/api/v1/connections/{id}",
    ),
    (
        "put",
        "/api/v1/connections/{id}",
        "patch",
        "/api/v1/connections/{id}",
    ),
    (
        "delete",
        "/api/v1/user/{id}",
        "delete",
        "/api/v1/users/{id}",
    ),
    ("put", "/api/v1/users/{id}", "patch", "/api/v1/users/{id}"),
    ("put", "/api/v1/users/me", "patch", "/api/v1/users/me"),
    ("post", "/api/v1/files/{id}", "patch", "/api/v1/files/{id}"),
    (
        "post",
        "/api/v1/runs/{id}/cancel",
        "patch",
        "/api/v1/cancel-run/{id}",
    ),
];

/// Each alias as an operation of its own: a copy of the route it stands for, marked
/// `x-alias-of` and with an `operationId` of its own.
fn add_aliases(doc: &mut serde_json::Value) {
    for (method, path, of_method, of_path) in ALIASES {
        let Some(mut operation) = doc["paths"][*of_path][*of_method].as_object().cloned() else {
            panic!("alias {method} {path}: {of_method} {of_path} is not documented");
        };
        let of = format!("{} {of_path}", of_method.to_uppercase());
        let id = operation
            .get("operationId")
            .and_then(|v| v.as_str())
            .unwrap_or("operation")
            .to_string();
        operation.insert("operationId".into(), format!("{id}_{method}_alias").into());
        operation.insert(
            "summary".into(),
            format!("Alias of {of}: the same request and answers.").into(),
        );
        operation.insert("x-alias-of".into(), of.into());
        doc["paths"][*path][*method] = serde_json::Value::Object(operation);
    }
}

/// The document, generated once.
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc =
            serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        // The service routes take no credentials.
        for path in ["/healthz", "/readyz", "/metrics"] {
            if let Some(get) = doc.pointer_mut(&format!("/paths/{}/get", path.replace('/', "~1"))) {
                get["security"] = serde_json::json!([]);
            }
        }
        add_aliases(&mut doc);
        // A failed job's `errorCode` is one of the code table's job codes.
        let mut codes: Vec<serde_json::Value> = crate::codes::ErrorCode::job_codes()
            .map(|c| c.code().into())
            .collect();
        codes.push(serde_json::Value::Null);
        for schema in ["TransferView", "QueryView"] {
            if let Some(field) = doc.pointer_mut(&format!(
                "/components/schemas/{schema}/properties/errorCode"
            )) {
                field["enum"] = serde_json::Value::Array(codes.clone());
            }
        }
        doc
    })
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// `/api/v1/openapi.json` (registered inside the `/api/v1` scope).
pub fn configure_document(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/openapi.json").route(web::get().to(openapi_json)));
}

/// `/docs`: Swagger UI reading `/api/v1/openapi.json`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/docs").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header(("Location", "/docs/"))
            .finish()
    })))
    .service(SwaggerUi::new("/docs/{_:.*}").config(Config::from("/api/v1/openapi.json")));
}
