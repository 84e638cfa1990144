//! Service routes: health, readiness, the OpenAPI document and the docs page.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app};

#[actix_web::test]
async fn healthz_answers_ok_without_credentials() {
    let app = spawn_app().await;
    let response = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn readyz_answers_ready_when_the_store_is_migrated() {
    let app = spawn_app().await;
    let response = app.anon(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[actix_web::test]
async fn readyz_answers_503_when_the_store_is_gone() {
    let app = spawn_app().await;
    app.state.store.clone().close().await;
    let response = app.anon(Method::GET, "/readyz").send().await.unwrap();
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
}

#[actix_web::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let response = app
        .anon(Method::GET, "/no/such/thing")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "route_not_found").await;
}

#[actix_web::test]
async fn a_wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let response = app.anon(Method::DELETE, "/healthz").send().await.unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

/// Every route the API serves, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/me"),
    ("patch", "/api/v1/users/me"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("delete", "/api/v1/users/{id}"),
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/tokens"),
    ("get", "/api/v1/tokens/{id}"),
    ("delete", "/api/v1/tokens/{id}"),
    ("post", "/api/v1/connections"),
    ("get", "/api/v1/connections"),
    ("get", "/api/v1/connections/{id}"),
    ("patch", "/api/v1/connections/{id}"),
    ("delete", "/api/v1/connections/{id}"),
    ("post", "/api/v1/connections/{id}/test"),
    ("get", "/api/v1/connections/{id}/tables"),
    ("post", "/api/v1/transfers"),
    ("get", "/api/v1/transfers"),
    ("get", "/api/v1/transfers/{id}"),
    ("patch", "/api/v1/cancel-transfer/{id}"),
    ("delete", "/api/v1/transfers/{id}"),
    ("post", "/api/v1/queries"),
    ("get", "/api/v1/queries"),
    ("get", "/api/v1/queries/{id}"),
    ("get", "/api/v1/queries/{id}/result"),
    ("patch", "/api/v1/cancel-query/{id}"),
    ("delete", "/api/v1/queries/{id}"),
];

#[actix_web::test]
async fn the_openapi_document_covers_every_route_with_schemas_and_errors() {
    let app = spawn_app().await;
    let response = app
        .anon(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "{method} {path} is missing from the document"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path} has no success response"
        );
        if path.starts_with("/api/v1") {
            assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            for (status, response) in responses {
                if status.starts_with('4') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        if ["post", "patch"].contains(method)
            && !path.ends_with("/test")
            && !path.contains("cancel")
        {
            assert!(
                op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                "{method} {path} has no request schema"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "UserView",
        "ConnectionView",
        "ConnectionInput",
        "TestResult",
        "SchemaInfo",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    // The password is write-only: it is in the input schema and not in the view.
    assert!(schemas["ConnectionInput"]["properties"]["password"].is_object());
    assert!(schemas["ConnectionView"]["properties"]
        .get("password")
        .is_none());
    let security = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(security.len(), 3);
}

#[actix_web::test]
async fn the_docs_page_is_served_from_embedded_assets() {
    let app = spawn_app().await;
    let redirect = app.anon(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    let page = app.anon(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the internet"
    );
    let initializer = app
        .anon(Method::GET, "/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    assert_eq!(initializer.status(), StatusCode::OK);
    assert!(initializer
        .text()
        .await
        .unwrap()
        .contains("/api/v1/openapi.json"));
    let bundle = app
        .anon(Method::GET, "/docs/swagger-ui-bundle.js")
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}

#[actix_web::test]
async fn the_openapi_document_needs_credentials_when_docs_are_not_public() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.api.public_docs = false
    })
    .await;
    let response = app
        .anon(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "authentication_required",
    )
    .await;
    let response = app
        .admin(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_openapi_document_lists_the_alias_routes_marked_as_aliases_and_each_is_served() {
    let app = spawn_app().await;
    let doc: Value = app
        .anon(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = [
        (
            "post",
            "/api/v1/transfers/{id}/cancel",
            "PATCH /api/v1/cancel-transfer/{id}",
        ),
        (
            "post",
            "/api/v1/queries/{id}/cancel",
            "PATCH /api/v1/cancel-query/{id}",
        ),
        (
            "delete",
            "/api/v1/connection/{id}",
            "DELETE /api/v1/connections/{id}",
        ),
        (
            "put",
            "/api/v1/connections/{id}",
            "PATCH /api/v1/connections/{id}",
        ),
        ("delete", "/api/v1/user/{id}", "DELETE /api/v1/users/{id}"),
        ("put", "/api/v1/users/{id}", "PATCH /api/v1/users/{id}"),
        ("put", "/api/v1/users/me", "PATCH /api/v1/users/me"),
    ];
    let mut ids = std::collections::HashSet::new();
    for paths in doc["paths"].as_object().unwrap().values() {
        for op in paths.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
        }
    }
    for (method, path, of) in expected {
        let op = &doc["paths"][path][method];
        assert_eq!(op["x-alias-of"], of, "{method} {path}: {op}");
        assert!(op["responses"].is_object(), "{method} {path}");
        // Served: an unknown id is the resource's 404, not a missing route.
        let url = path.replace("{id}", "987654");
        let response = app
            .admin(method.to_uppercase().parse().unwrap(), &url)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert!(
            !["route_not_found", "method_not_allowed"]
                .contains(&body["code"].as_str().unwrap_or("")),
            "{method} {path}: {body}"
        );
    }
}

#[actix_web::test]
async fn the_openapi_document_lists_the_error_codes_a_failed_job_may_carry() {
    let app = spawn_app().await;
    let doc: Value = app
        .anon(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for schema in ["TransferView", "QueryView"] {
        let codes = doc["components"]["schemas"][schema]["properties"]["errorCode"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}.errorCode has no enum"))
            .clone();
        for code in [
            "source_query_failed",
            "target_rejected",
            "value_out_of_range",
            "schema_mismatch",
            "read_only",
            "io_timeout",
            "commit_outcome_unknown",
            "auth_failed",
            "connection_failed",
            "internal_error",
        ] {
            assert!(codes.contains(&json!(code)), "{schema}: {code} missing");
        }
        // API-only codes are not job codes.
        assert!(!codes.contains(&json!("unknown_field")), "{schema}");
    }
}
