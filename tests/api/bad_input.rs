//! Malformed requests across the routes: each gets a stable status and `code`, never a 500.
//! And paging of a long list.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, pg_connection, spawn_app_on, spawn_app_with, Backend, TestApp, ADMIN,
};

/// What a case sends as its body.
enum Body {
    None,
    /// Serialised by reqwest (with `Content-Type: application/json`).
    Json(Value),
    /// Sent verbatim as `application/json`.
    Raw(&'static str),
}

/// Who sends a case.
#[derive(Clone, Copy)]
enum Who {
    Admin,
    /// A user who is not admin.
    User,
    Nobody,
    WrongPassword,
}

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    body: Body,
    who: Who,
    status: StatusCode,
    code: &'static str,
    /// The `field` the error must name, for validation errors.
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    body: Body,
    status: StatusCode,
    code: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        body,
        who: Who::Admin,
        status,
        code,
        field: None,
    }
}

impl Case {
    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    fn by(mut self, who: Who) -> Self {
        self.who = who;
        self
    }
}

const USER: &str = "plain-user";
const USER_PASSWORD: &str = "plain-user-password";

async fn send(app: &TestApp, case: &Case) -> reqwest::Response {
    let request = match case.who {
        Who::Admin => app.admin(case.method.clone(), &case.path),
        Who::User => app.as_user(case.method.clone(), &case.path, USER, USER_PASSWORD),
        Who::Nobody => app.anon(case.method.clone(), &case.path),
        Who::WrongPassword => {
            app.as_user(case.method.clone(), &case.path, ADMIN, "not-the-password")
        }
    };
    let request = match &case.body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::Raw(text) => request
            .header("content-type", "application/json")
            .body(*text),
    };
    request.send().await.unwrap()
}

crate::on_both_backends!(
    malformed_requests_get_a_stable_status_and_code_and_never_a_500,
    users_are_paged_with_a_total_count_and_links,
);

async fn malformed_requests_get_a_stable_status_and_code_and_never_a_500(backend: Backend) {
    use Body::{Json, Raw};
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const NOT_FOUND: StatusCode = StatusCode::NOT_FOUND;

    let app = spawn_app_on(backend).await;
    app.create_user(USER, USER_PASSWORD, false).await;
    let connection = app
        .create_connection(pg_connection("existing", "test"))
        .await;
    let conn_path = format!("/api/v1/connections/{}", connection["id"]);
    let mut pg_port_true = pg_connection("typed", "test");
    pg_port_true["port"] = json!(true);
    let mut pg_unknown_option = pg_connection("opts", "test");
    pg_unknown_option["options"] = json!({"sslMode": "require", "compress": true});

    let cases = vec![
        // Bodies that are not JSON, or not the right shape.
        case(
            "truncated JSON",
            Method::POST,
            "/api/v1/users",
            Raw(r#"{"username":"#),
            BAD,
            "malformed_json",
        ),
        case(
            "not JSON at all",
            Method::POST,
            "/api/v1/tokens",
            Raw("name=nightly"),
            BAD,
            "malformed_json",
        ),
        case(
            "trailing comma",
            Method::POST,
            "/api/v1/connections",
            Raw(r#"{"name": "x",}"#),
            BAD,
            "malformed_json",
        ),
        case(
            "empty body",
            Method::POST,
            "/api/v1/users",
            Raw(""),
            BAD,
            "malformed_json",
        ),
        case(
            "admin as text",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "bob", "password": "long-enough-pw", "admin": "yes"})),
            BAD,
            "invalid_body",
        ),
        case(
            "port as a boolean",
            Method::POST,
            "/api/v1/connections",
            Json(pg_port_true),
            BAD,
            "invalid_body",
        ),
        case(
            "username as a number",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": 42, "password": "long-enough-pw"})),
            BAD,
            "invalid_body",
        ),
        case(
            "missing password",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "bob"})),
            BAD,
            "invalid_body",
        ),
        case(
            "missing token name",
            Method::POST,
            "/api/v1/tokens",
            Json(json!({})),
            BAD,
            "invalid_body",
        ),
        case(
            "expiry that is not a date",
            Method::POST,
            "/api/v1/tokens",
            Json(json!({"name": "n", "expiresAt": "tomorrow"})),
            BAD,
            "invalid_body",
        ),
        case(
            "array instead of object",
            Method::POST,
            "/api/v1/users",
            Json(json!([])),
            BAD,
            "invalid_body",
        ),
        case(
            "an array that lists a user's fields in order",
            Method::POST,
            "/api/v1/users",
            Json(json!(["bob", "long-enough-pw", false])),
            BAD,
            "invalid_body",
        ),
        case(
            "one-element array",
            Method::POST,
            "/api/v1/tokens",
            Json(json!(["name"])),
            BAD,
            "invalid_body",
        ),
        case(
            "array on a connection PATCH",
            Method::PATCH,
            &conn_path,
            Json(json!([])),
            BAD,
            "invalid_body",
        ),
        case(
            "string instead of object",
            Method::POST,
            "/api/v1/connections",
            Json(json!("pg")),
            BAD,
            "invalid_body",
        ),
        case(
            "unknown connection option",
            Method::POST,
            "/api/v1/connections",
            Json(pg_unknown_option),
            BAD,
            "unknown_field",
        )
        .field("options.compress"),
        // Unknown fields: never silently ignored.
        case(
            "a typo in a transfer's field",
            Method::POST,
            "/api/v1/transfers",
            Json(
                json!({"sourceId": 1, "targetId": 1, "query": "select 1 as a",
                        "targetTable": "t", "overwite": true}),
            ),
            BAD,
            "unknown_field",
        )
        .field("overwite"),
        case(
            "a field users do not have",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "bob", "password": "long-enough-pw", "isAdmin": true})),
            BAD,
            "unknown_field",
        )
        .field("isAdmin"),
        case(
            "an unknown field on a user PATCH",
            Method::PATCH,
            "/api/v1/users/1",
            Json(json!({"superuser": true})),
            BAD,
            "unknown_field",
        )
        .field("superuser"),
        case(
            "an unknown field on /users/me",
            Method::PATCH,
            "/api/v1/users/me",
            Json(json!({"password": "long-enough-pw", "admin": true})),
            BAD,
            "unknown_field",
        )
        .field("admin"),
        case(
            "an unknown field on a token",
            Method::POST,
            "/api/v1/tokens",
            Json(json!({"name": "n", "scope": "all"})),
            BAD,
            "unknown_field",
        )
        .field("scope"),
        case(
            "an unknown field on a query",
            Method::POST,
            "/api/v1/queries",
            Json(json!({"connectionId": 1, "query": "select 1", "timeout": 5})),
            BAD,
            "unknown_field",
        )
        .field("timeout"),
        case(
            "an unknown field on a connection PATCH",
            Method::PATCH,
            &conn_path,
            Json(json!({"hots": "db.example.com"})),
            BAD,
            "unknown_field",
        )
        .field("hots"),
        case(
            "an unknown field in a DBConvert-style spec",
            Method::POST,
            "/api/v1/connections",
            Json(json!({"name": "nested", "type": "mysql",
                        "spec": {"database": {"hots": "127.0.0.1"}}})),
            BAD,
            "unknown_field",
        )
        .field("spec.database.hots"),
        // Well-formed but invalid values.
        case(
            "too-short password",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "bob", "password": "short"})),
            BAD,
            "validation_failed",
        )
        .field("password"),
        case(
            "empty username",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "", "password": "long-enough-pw"})),
            BAD,
            "validation_failed",
        )
        .field("username"),
        case(
            "username with spaces",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": "bob smith", "password": "long-enough-pw"})),
            BAD,
            "validation_failed",
        )
        .field("username"),
        case(
            "too-short own password",
            Method::PATCH,
            "/api/v1/users/me",
            Json(json!({"password": "1234567"})),
            BAD,
            "validation_failed",
        )
        .field("password"),
        case(
            "blank token name",
            Method::POST,
            "/api/v1/tokens",
            Json(json!({"name": "  "})),
            BAD,
            "validation_failed",
        )
        .field("name"),
        case(
            "expiry in the past",
            Method::POST,
            "/api/v1/tokens",
            Json(json!({"name": "old", "expiresAt": "2000-01-01T00:00:00Z"})),
            BAD,
            "validation_failed",
        )
        .field("expiresAt"),
        case(
            "port out of range",
            Method::PATCH,
            &conn_path,
            Json(json!({"port": 70000})),
            BAD,
            "validation_failed",
        )
        .field("port"),
        // Paging.
        case(
            "page 0",
            Method::GET,
            "/api/v1/users?page=0",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "page abc",
            Method::GET,
            "/api/v1/users?page=abc",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "negative page",
            Method::GET,
            "/api/v1/connections?page=-1",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "page_size 101",
            Method::GET,
            "/api/v1/users?page_size=101",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "page_size 0",
            Method::GET,
            "/api/v1/tokens?page_size=0",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "sort by name",
            Method::GET,
            "/api/v1/users?sort=name",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        case(
            "sort by password",
            Method::GET,
            "/api/v1/connections?sort=password",
            Body::None,
            BAD,
            "invalid_query_parameter",
        ),
        // Path parameters.
        case(
            "user id abc",
            Method::GET,
            "/api/v1/users/abc",
            Body::None,
            BAD,
            "invalid_path_parameter",
        ),
        case(
            "user id 0",
            Method::GET,
            "/api/v1/users/0",
            Body::None,
            BAD,
            "invalid_path_parameter",
        ),
        case(
            "negative connection id",
            Method::GET,
            "/api/v1/connections/-3",
            Body::None,
            BAD,
            "invalid_path_parameter",
        ),
        case(
            "connection id 1.5",
            Method::POST,
            "/api/v1/connections/1.5/test",
            Body::None,
            BAD,
            "invalid_path_parameter",
        ),
        case(
            "token id beyond i32",
            Method::DELETE,
            "/api/v1/tokens/99999999999",
            Body::None,
            BAD,
            "invalid_path_parameter",
        ),
        // Unknown ids.
        case(
            "unknown user",
            Method::GET,
            "/api/v1/users/999999",
            Body::None,
            NOT_FOUND,
            "user_not_found",
        ),
        case(
            "patching an unknown user",
            Method::PATCH,
            "/api/v1/users/999999",
            Json(json!({"admin": true})),
            NOT_FOUND,
            "user_not_found",
        ),
        case(
            "deleting an unknown user",
            Method::DELETE,
            "/api/v1/user/999999",
            Body::None,
            NOT_FOUND,
            "user_not_found",
        ),
        case(
            "unknown connection",
            Method::GET,
            "/api/v1/connections/999999",
            Body::None,
            NOT_FOUND,
            "connection_not_found",
        ),
        case(
            "patching an unknown connection",
            Method::PATCH,
            "/api/v1/connections/999999",
            Json(json!({"port": 5432})),
            NOT_FOUND,
            "connection_not_found",
        ),
        case(
            "tables of an unknown connection",
            Method::GET,
            "/api/v1/connections/999999/tables",
            Body::None,
            NOT_FOUND,
            "connection_not_found",
        ),
        case(
            "unknown token",
            Method::GET,
            "/api/v1/tokens/999999",
            Body::None,
            NOT_FOUND,
            "token_not_found",
        ),
        case(
            "revoking an unknown token",
            Method::DELETE,
            "/api/v1/tokens/999999",
            Body::None,
            NOT_FOUND,
            "token_not_found",
        ),
        // Routes and methods.
        case(
            "unknown route",
            Method::GET,
            "/api/v1/nothing-here",
            Body::None,
            NOT_FOUND,
            "route_not_found",
        ),
        case(
            "unknown nested route",
            Method::GET,
            "/api/v1/users/1/friends",
            Body::None,
            NOT_FOUND,
            "route_not_found",
        ),
        case(
            "DELETE on a collection",
            Method::DELETE,
            "/api/v1/users",
            Body::None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        case(
            "PUT on a token",
            Method::PUT,
            "/api/v1/tokens/1",
            Body::None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        case(
            "GET on a connection test",
            Method::GET,
            &format!("{conn_path}/test"),
            Body::None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        case(
            "POST on users/me",
            Method::POST,
            "/api/v1/users/me",
            Json(json!({})),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        // Conflicts.
        case(
            "duplicate username",
            Method::POST,
            "/api/v1/users",
            Json(json!({"username": ADMIN, "password": "long-enough-pw"})),
            StatusCode::CONFLICT,
            "username_taken",
        )
        .field("username"),
        case(
            "duplicate connection name",
            Method::POST,
            "/api/v1/connections",
            Json(pg_connection("existing", "test")),
            StatusCode::CONFLICT,
            "connection_name_taken",
        )
        .field("name"),
        // Credentials and rights.
        case(
            "no credentials",
            Method::GET,
            "/api/v1/users",
            Body::None,
            StatusCode::UNAUTHORIZED,
            "authentication_required",
        )
        .by(Who::Nobody),
        case(
            "wrong password",
            Method::GET,
            "/api/v1/users",
            Body::None,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .by(Who::WrongPassword),
        case(
            "listing users as non-admin",
            Method::GET,
            "/api/v1/users",
            Body::None,
            StatusCode::FORBIDDEN,
            "admin_required",
        )
        .by(Who::User),
    ];
    assert!(cases.len() >= 20);

    for case in &cases {
        // Shown with the failure, to tell which case failed.
        println!("case: {} ({} {})", case.what, case.method, case.path);
        let response = send(&app, case).await;
        assert!(
            !response.status().is_server_error(),
            "{}: {} {} answered {}",
            case.what,
            case.method,
            case.path,
            response.status()
        );
        let body = assert_error(response, case.status, case.code).await;
        if let Some(field) = case.field {
            assert_eq!(body["field"], field, "{}: {body}", case.what);
        }
        assert!(body.get("correlationId").is_none(), "{}: {body}", case.what);
    }

    // None of the bad requests changed anything.
    let users = app
        .admin(Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap();
    assert_eq!(users.headers().get("x-total-count").unwrap(), "2");
    let connections = app
        .admin(Method::GET, "/api/v1/connections")
        .send()
        .await
        .unwrap();
    let list: Value = connections.json().await.unwrap();
    assert_eq!(list, json!([connection]));
}

#[actix_web::test]
async fn an_unknown_field_is_refused_naming_the_closest_known_one_and_nothing_is_queued() {
    let app = spawn_app_on(Backend::Sqlite).await;
    let connection = app
        .create_connection(pg_connection("typo-target", "test"))
        .await;
    let response = app
        .admin(Method::POST, "/api/v1/transfers")
        .json(&json!({
            "sourceId": connection["id"], "targetId": connection["id"],
            "query": "select 1 as a", "targetTable": "t", "overwite": true
        }))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert_eq!(body["field"], "overwite");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(r#"did you mean "overwrite"?"#), "{detail}");
    let response = app
        .admin(Method::POST, "/api/v1/users")
        .json(&json!({"username": "eve", "password": "long-enough-pw", "isAdmin": true}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(r#"did you mean "admin"?"#), "{detail}");
    let response = app
        .admin(Method::POST, "/api/v1/connections")
        .json(&json!({"name": "n", "type": "postgresql", "options": {"sslmod": "disable"}}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert_eq!(body["field"], "options.sslmod");
    let detail = body["detail"].as_str().unwrap();
    // `sslMode` or its alias `sslmode`: either is accepted.
    assert!(
        detail
            .to_lowercase()
            .contains(r#"did you mean "options.sslmode"?"#),
        "{detail}"
    );

    // Nothing was queued or created.
    assert_eq!(app.listed_ids("/api/v1/transfers").await, Vec::<i64>::new());
    let users: Vec<Value> = app
        .admin(Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(users.iter().all(|u| u["username"] != "eve"), "{users:?}");
}

#[actix_web::test]
async fn the_seed_apis_spellings_of_fields_are_still_accepted() {
    let app = spawn_app_on(Backend::Sqlite).await;
    // SQLpipe's connection fields.
    let sqlpipe = app
        .create_connection(json!({
            "name": "sqlpipe-style", "dsType": "postgresql", "hostname": "127.0.0.1",
            "port": "5432", "dbName": "test", "username": "postgres",
            "options": {"sslmode": "disable"}
        }))
        .await;
    assert_eq!(sqlpipe["type"], "postgresql");
    assert_eq!(sqlpipe["host"], "127.0.0.1");
    assert_eq!(sqlpipe["database"], "test");
    assert_eq!(sqlpipe["options"], json!({"sslMode": "disable"}));
    // SQLpipe's and Sqlify's (snake_case) transfer fields.
    for body in [
        json!({"sourceID": sqlpipe["id"], "targetID": sqlpipe["id"], "query": "select 1 as a",
               "targetTable": "never_run", "overwrite": false}),
        json!({"source_id": sqlpipe["id"], "target_id": sqlpipe["id"], "query": "select 1 as a",
               "target_table": "never_run", "target_schema": "s",
               "partition_column": "a", "partitions": 1}),
    ] {
        let response = app
            .admin(Method::POST, "/api/v1/transfers")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{body}");
        let transfer: Value = response.json().await.unwrap();
        assert_eq!(transfer["sourceId"], sqlpipe["id"], "{transfer}");
        assert_eq!(transfer["targetTable"], "never_run", "{transfer}");
        app.admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", transfer["id"]),
        )
        .send()
        .await
        .unwrap();
    }
    let response = app
        .admin(Method::POST, "/api/v1/queries")
        .json(&json!({"connection_id": sqlpipe["id"], "query": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "snake", "expires_at": "2999-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["expiresAt"], "2999-01-01T00:00:00Z");
}

#[actix_web::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.server.body_limit_bytes = 2048).await;
    let big = json!({
        "username": "bob", "password": "long-enough-pw", "padding": "x".repeat(10 * 1024)
    });
    let response = app
        .admin(Method::POST, "/api/v1/users")
        .json(&big)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("2048"), "{body}");

    let mut connection = pg_connection("big", "test");
    connection["password"] = json!("p".repeat(10 * 1024));
    let response = app
        .admin(Method::POST, "/api/v1/connections")
        .json(&connection)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // A body under the limit still works, and the oversized user was not created.
    let response = app
        .admin(Method::POST, "/api/v1/users")
        .json(&json!({"username": "bob", "password": "long-enough-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// `<url>; rel="name"` entries of a Link header, as (rel, url).
fn links(header: &str) -> Vec<(String, String)> {
    header
        .split(", ")
        .map(|part| {
            let (url, rel) = part.split_once("; ").unwrap_or_else(|| panic!("{header}"));
            let url = url.trim_start_matches('<').trim_end_matches('>');
            let rel = rel.trim_start_matches("rel=\"").trim_end_matches('"');
            (rel.to_string(), url.to_string())
        })
        .collect()
}

async fn users_are_paged_with_a_total_count_and_links(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for i in 1..=25 {
        app.create_user(&format!("user{i:02}"), "long-enough-pw", false)
            .await;
    }
    let response = app
        .admin(Method::GET, "/api/v1/users?page=2&page_size=10&sort=id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers.get("x-total-count").unwrap(), "26");
    let users: Vec<Value> = response.json().await.unwrap();
    assert_eq!(users.len(), 10);
    let ids: Vec<i64> = users.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend: {ids:?}");
    // The admin is the first of all; page 2 holds the 10th to 19th created users.
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (10..=19).map(|i| format!("user{i:02}")).collect();
    assert_eq!(names, expected);
    for user in &users {
        assert_eq!(user["admin"], false);
        assert!(user.get("password").is_none() && user.get("passwordHash").is_none());
    }

    let link = headers.get("link").unwrap().to_str().unwrap();
    let base = format!("{}/api/v1/users", app.address);
    let url = |page: u32| format!("{base}?page={page}&page_size=10&sort=id");
    assert_eq!(
        links(link),
        vec![
            ("first".to_string(), url(1)),
            ("prev".to_string(), url(1)),
            ("next".to_string(), url(3)),
            ("last".to_string(), url(3)),
        ],
        "{link}"
    );

    // Following `last` gives the remaining 6, and no `next`.
    let response = app
        .admin(Method::GET, "/api/v1/users?page=3&page_size=10&sort=id")
        .send()
        .await
        .unwrap();
    let link = response
        .headers()
        .get("link")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let users: Vec<Value> = response.json().await.unwrap();
    assert_eq!(users.len(), 6);
    assert_eq!(users[5]["username"], "user25");
    let rels: Vec<String> = links(&link).into_iter().map(|(rel, _)| rel).collect();
    assert_eq!(rels, ["first", "prev", "last"]);

    // The default order is newest first, 20 to a page.
    let response = app
        .admin(Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap();
    let users: Vec<Value> = response.json().await.unwrap();
    assert_eq!(users.len(), 20);
    assert_eq!(users[0]["username"], "user25");
    let ids: Vec<i64> = users.iter().map(|u| u["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids descend: {ids:?}");

    // A page past the end is empty, with the same total.
    let response = app
        .admin(Method::GET, "/api/v1/users?page=9&page_size=10")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get("x-total-count").unwrap(), "26");
    let users: Vec<Value> = response.json().await.unwrap();
    assert!(users.is_empty());
}
