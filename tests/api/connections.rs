//! `/connections`: CRUD on both metadata backends, write-only passwords, connection tests and
//! table listings against the machine's real PostgreSQL, MariaDB and SQLite files.

use std::path::{Path, PathBuf};

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, mariadb_connection, mariadb_execute, pg_client, pg_connection, pg_execute,
    spawn_app, spawn_app_on, spawn_app_with, unique_name, Backend, TestApp, MARIADB_HOST,
    MARIADB_PORT, MARIADB_USER, PG_HOST, PG_PORT, PG_USER,
};

// ---------------------------------------------------------------------------------------------
// Small helpers of this file.

/// Status, headers and JSON body of a response.
async fn parts(response: Response) -> (StatusCode, HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({status}): {e}: {text}"))
    };
    (status, headers, body)
}

/// A request as the admin with a JSON body.
async fn admin_send(app: &TestApp, method: Method, path: &str, body: &Value) -> Response {
    app.admin(method, path).json(body).send().await.unwrap()
}

/// `GET` as the admin, expecting 200; the JSON body.
async fn admin_get(app: &TestApp, path: &str) -> Value {
    let (status, _, body) = parts(app.admin(Method::GET, path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

fn id_of(connection: &Value) -> i64 {
    connection["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {connection}"))
}

/// `POST /connections/{id}/test` as the admin, expecting 200; the result.
async fn test_connection(app: &TestApp, id: i64) -> Value {
    let path = format!("/api/v1/connections/{id}/test");
    let (status, _, body) = parts(app.admin(Method::POST, &path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "POST {path}: {body}");
    assert!(
        body["latencyMs"].is_u64(),
        "latencyMs must be a number: {body}"
    );
    body
}

/// Create a connection and test it at once.
async fn create_and_test(app: &TestApp, body: Value) -> Value {
    let created = app.create_connection(body).await;
    test_connection(app, id_of(&created)).await
}

/// A failed test: `ok` false, the given `errorCode`, an explanation, no version.
fn assert_test_failed(result: &Value, code: &str) {
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["errorCode"], code, "{result}");
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{result}"
    );
    assert!(result.get("serverVersion").is_none(), "{result}");
}

/// A successful test: `ok` true, a version, no error.
fn assert_test_ok(result: &Value) -> &str {
    assert_eq!(result["ok"], true, "{result}");
    assert!(result.get("error").is_none(), "{result}");
    assert!(result.get("errorCode").is_none(), "{result}");
    result["serverVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no serverVersion in {result}"))
}

/// A fresh directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name("sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A SQLite file with a table and a view, made with rusqlite.
fn sqlite_file_with_orders() -> PathBuf {
    let path = temp_dir().join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER NOT NULL, amount NUMERIC(10,2), name VARCHAR(20),
                              created TIMESTAMP);
         CREATE VIEW recent_orders AS SELECT id, name FROM orders;
         INSERT INTO orders VALUES (1, 9.99, 'one', '2024-01-01 00:00:00');",
    )
    .unwrap();
    path
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// CRUD, on both metadata backends.

crate::on_both_backends!(
    creating_a_postgresql_connection_answers_201_with_its_location_and_fields,
    creating_a_mariadb_connection_answers_201_without_a_password,
    creating_a_sqlite_connection_needs_only_a_path,
    sqlpipe_field_names_and_a_port_as_text_are_accepted,
    each_type_needs_its_own_fields,
    an_unknown_type_or_ssl_mode_is_refused_naming_the_field,
    connection_names_are_unique_on_create_and_on_rename,
    connections_are_listed_newest_first_with_a_total_count,
    patch_changes_only_the_fields_it_names_and_keeps_the_password,
    a_null_password_clears_it_and_put_behaves_like_patch,
    a_deleted_connection_is_gone_and_the_singular_alias_deletes_too,
    a_user_who_is_not_admin_can_read_and_test_but_not_write,
    a_connection_password_is_never_returned_nor_stored_in_plaintext,
);

async fn creating_a_postgresql_connection_answers_201_with_its_location_and_fields(
    backend: Backend,
) {
    let app = spawn_app_on(backend).await;
    let mut body = pg_connection("warehouse", "test");
    body["options"] = json!({"sslMode": "require"});
    let response = admin_send(&app, Method::POST, "/api/v1/connections", &body).await;
    let (status, headers, created) = parts(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = id_of(&created);
    assert!(id > 0);
    assert_eq!(
        headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/connections/{id}")
    );
    assert_eq!(created["name"], "warehouse");
    assert_eq!(created["type"], "postgresql");
    assert_eq!(created["host"], PG_HOST);
    assert_eq!(created["port"], PG_PORT);
    assert_eq!(created["database"], "test");
    assert_eq!(created["username"], PG_USER);
    assert_eq!(created["hasPassword"], true);
    assert_eq!(created["options"], json!({"sslMode": "require"}));
    assert_eq!(created["path"], Value::Null);
    assert!(created.get("password").is_none(), "{created}");
    assert!(created.get("passwordEncrypted").is_none(), "{created}");
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());

    // The Location leads to the same connection.
    let fetched = admin_get(&app, &format!("/api/v1/connections/{id}")).await;
    assert_eq!(fetched, created);
}

async fn creating_a_mariadb_connection_answers_201_without_a_password(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app
        .create_connection(mariadb_connection("shop", "shop_db"))
        .await;
    assert_eq!(created["name"], "shop");
    assert_eq!(created["type"], "mariadb");
    assert_eq!(created["host"], MARIADB_HOST);
    assert_eq!(created["port"], MARIADB_PORT);
    assert_eq!(created["database"], "shop_db");
    assert_eq!(created["username"], MARIADB_USER);
    assert_eq!(created["hasPassword"], false);
    assert_eq!(created["options"]["sslMode"], "disable");
    assert_eq!(created["path"], Value::Null);
    assert!(created.get("password").is_none(), "{created}");

    // `mysql` is a type of its own, and the type is answered in its canonical spelling.
    let mut body = mariadb_connection("legacy", "legacy_db");
    body["type"] = json!("MySQL");
    let created = app.create_connection(body).await;
    assert_eq!(created["type"], "mysql");
}

async fn creating_a_sqlite_connection_needs_only_a_path(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app
        .create_connection(json!({"name": "local", "type": "sqlite", "path": "/srv/data/app.db"}))
        .await;
    assert_eq!(created["type"], "sqlite");
    assert_eq!(created["path"], "/srv/data/app.db");
    for field in ["host", "port", "database", "username"] {
        assert_eq!(created[field], Value::Null, "{field}: {created}");
    }
    assert_eq!(created["hasPassword"], false);
    assert_eq!(created["options"], json!({}));

    // Server fields given to a sqlite connection are not kept.
    let created = app
        .create_connection(json!({
            "name": "local2", "type": "sqlite3", "path": "/srv/data/other.db",
            "host": "db.example.com", "port": 5432, "password": "ignored-secret"
        }))
        .await;
    assert_eq!(created["type"], "sqlite");
    assert_eq!(created["host"], Value::Null);
    assert_eq!(created["port"], Value::Null);
    assert_eq!(created["hasPassword"], false);
}

async fn sqlpipe_field_names_and_a_port_as_text_are_accepted(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app
        .create_connection(json!({
            "name": "from-sqlpipe", "dsType": "postgresql", "hostname": PG_HOST,
            "port": "5432", "dbName": "test", "username": PG_USER, "password": "pw",
            "options": {"sslmode": "disable"}
        }))
        .await;
    assert_eq!(created["type"], "postgresql");
    assert_eq!(created["host"], PG_HOST);
    assert_eq!(created["port"], 5432);
    assert_eq!(created["database"], "test");
    assert_eq!(created["hasPassword"], true);
    assert_eq!(created["options"], json!({"sslMode": "disable"}));
    // The aliases are input only: the answer uses the API's own names.
    for alias in ["dsType", "hostname", "dbName"] {
        assert!(created.get(alias).is_none(), "{alias}: {created}");
    }
    // The aliases work on PATCH as well.
    let id = id_of(&created);
    let response = admin_send(
        &app,
        Method::PATCH,
        &format!("/api/v1/connections/{id}"),
        &json!({"hostname": "localhost", "dbName": "postgres", "port": " 5433 "}),
    )
    .await;
    let (status, _, patched) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["host"], "localhost");
    assert_eq!(patched["database"], "postgres");
    assert_eq!(patched["port"], 5433);
}

async fn each_type_needs_its_own_fields(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let pg = pg_connection("pg", "test");
    let without = |field: &str| {
        let mut body = pg.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let with = |field: &str, value: Value| {
        let mut body = pg.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no host", without("host"), "host"),
        ("blank host", with("host", json!("   ")), "host"),
        ("null host", with("host", Value::Null), "host"),
        ("no port", without("port"), "port"),
        ("port 0", with("port", json!(0)), "port"),
        ("port 65536", with("port", json!(65536)), "port"),
        ("port as words", with("port", json!("five")), "port"),
        ("no database", without("database"), "database"),
        ("empty database", with("database", json!("")), "database"),
        ("no username", without("username"), "username"),
        ("no name", without("name"), "name"),
        ("blank name", with("name", json!("  ")), "name"),
        ("long name", with("name", json!("n".repeat(101))), "name"),
        ("no type", without("type"), "type"),
        (
            "mariadb without username",
            {
                let mut body = mariadb_connection("m", "db");
                body.as_object_mut().unwrap().remove("username");
                body
            },
            "username",
        ),
        (
            "sqlite without path",
            json!({"name": "lite", "type": "sqlite"}),
            "path",
        ),
        (
            "sqlite with a blank path",
            json!({"name": "lite", "type": "sqlite", "path": " "}),
            "path",
        ),
    ];
    for (case, body, field) in cases {
        let response = admin_send(&app, Method::POST, "/api/v1/connections", &body).await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(error["field"], field, "{case}: {error}");
    }
    // Nothing was stored.
    let list = admin_get(&app, "/api/v1/connections").await;
    assert_eq!(list, json!([]));
}

async fn an_unknown_type_or_ssl_mode_is_refused_naming_the_field(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let mut body = pg_connection("odd", "test");
    body["type"] = json!("oracle");
    let response = admin_send(&app, Method::POST, "/api/v1/connections", &body).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "type");
    assert!(
        error["detail"].as_str().unwrap().contains("oracle"),
        "{error}"
    );

    let mut body = pg_connection("odd", "test");
    body["options"] = json!({"sslMode": "sometimes"});
    let response = admin_send(&app, Method::POST, "/api/v1/connections", &body).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "options.sslMode");
    assert!(
        error["detail"].as_str().unwrap().contains("verify-full"),
        "{error}"
    );

    // The same checks apply to a PATCH.
    let created = app.create_connection(pg_connection("fine", "test")).await;
    let path = format!("/api/v1/connections/{}", id_of(&created));
    let response = admin_send(&app, Method::PATCH, &path, &json!({"type": "db2"})).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "type");
    let response = admin_send(
        &app,
        Method::PATCH,
        &path,
        &json!({"options": {"sslMode": "maybe"}}),
    )
    .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "options.sslMode");
    // Turning a server connection into sqlite needs a path.
    let response = admin_send(&app, Method::PATCH, &path, &json!({"type": "sqlite"})).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "path");
    // The refused changes were not applied.
    assert_eq!(admin_get(&app, &path).await, created);
}

async fn connection_names_are_unique_on_create_and_on_rename(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let first = app.create_connection(pg_connection("alpha", "test")).await;
    let second = app.create_connection(pg_connection("beta", "test")).await;

    let response = admin_send(
        &app,
        Method::POST,
        "/api/v1/connections",
        &mariadb_connection("alpha", "other"),
    )
    .await;
    let error = assert_error(response, StatusCode::CONFLICT, "connection_name_taken").await;
    assert_eq!(error["field"], "name");
    assert!(
        error["detail"].as_str().unwrap().contains("alpha"),
        "{error}"
    );

    let path = format!("/api/v1/connections/{}", id_of(&second));
    let response = admin_send(&app, Method::PATCH, &path, &json!({"name": "alpha"})).await;
    let error = assert_error(response, StatusCode::CONFLICT, "connection_name_taken").await;
    assert_eq!(error["field"], "name");
    assert_eq!(admin_get(&app, &path).await["name"], "beta");

    // Keeping one's own name is no conflict.
    let first_path = format!("/api/v1/connections/{}", id_of(&first));
    let response = admin_send(
        &app,
        Method::PATCH,
        &first_path,
        &json!({"name": "alpha", "port": 5433}),
    )
    .await;
    let (status, _, body) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["port"], 5433);

    let list = admin_get(&app, "/api/v1/connections").await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

async fn connections_are_listed_newest_first_with_a_total_count(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let (status, headers, list) = parts(
        app.admin(Method::GET, "/api/v1/connections")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));
    assert_eq!(headers.get("x-total-count").unwrap(), "0");

    let mut created = Vec::new();
    for name in ["one", "two", "three"] {
        created.push(app.create_connection(pg_connection(name, "test")).await);
    }
    let (status, headers, list) = parts(
        app.admin(Method::GET, "/api/v1/connections")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-total-count").unwrap(), "3");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["three", "two", "one"]);
    // The listed items are the same views as the single ones.
    assert_eq!(list[0], created[2]);
    for item in list.as_array().unwrap() {
        assert!(item.get("password").is_none(), "{item}");
    }

    let (status, headers, page) = parts(
        app.admin(
            Method::GET,
            "/api/v1/connections?page=2&page_size=2&sort=id",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-total-count").unwrap(), "3");
    assert_eq!(page, json!([created[2].clone()]));
    let link = headers.get("link").unwrap().to_str().unwrap();
    assert!(link.contains("rel=\"prev\""), "{link}");
    assert!(!link.contains("rel=\"next\""), "{link}");
}

async fn patch_changes_only_the_fields_it_names_and_keeps_the_password(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app.create_connection(pg_connection("orig", "test")).await;
    assert_eq!(created["hasPassword"], true);
    let path = format!("/api/v1/connections/{}", id_of(&created));

    let response = admin_send(&app, Method::PATCH, &path, &json!({"port": 6543})).await;
    let (status, _, patched) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["port"], 6543);
    assert_eq!(patched["hasPassword"], true, "an absent password is kept");
    // Everything else is as it was.
    let mut expected = created.clone();
    expected["port"] = json!(6543);
    expected["updatedAt"] = patched["updatedAt"].clone();
    assert_eq!(patched, expected);
    assert_eq!(patched["createdAt"], created["createdAt"]);
    assert_eq!(admin_get(&app, &path).await, patched);

    // Options are replaced as a whole when given, kept when absent.
    let response = admin_send(
        &app,
        Method::PATCH,
        &path,
        &json!({"options": {"sslMode": "verify-full"}, "username": "reader"}),
    )
    .await;
    let (status, _, patched) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["options"], json!({"sslMode": "verify-full"}));
    assert_eq!(patched["username"], "reader");
    assert_eq!(patched["port"], 6543);
    assert_eq!(patched["name"], "orig");
    assert_eq!(patched["hasPassword"], true);

    // An empty body changes nothing.
    let response = admin_send(&app, Method::PATCH, &path, &json!({})).await;
    let (status, _, unchanged) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{unchanged}");
    assert_eq!(unchanged["options"], patched["options"]);
    assert_eq!(unchanged["username"], "reader");
    assert_eq!(unchanged["hasPassword"], true);
}

async fn a_null_password_clears_it_and_put_behaves_like_patch(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app.create_connection(pg_connection("pw", "test")).await;
    let path = format!("/api/v1/connections/{}", id_of(&created));

    let response = admin_send(&app, Method::PATCH, &path, &json!({"password": null})).await;
    let (status, _, patched) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["hasPassword"], false);
    assert_eq!(patched["host"], created["host"]);
    assert_eq!(admin_get(&app, &path).await["hasPassword"], false);

    // PUT is a partial update too: a new password, and the rest kept.
    let response = admin_send(&app, Method::PUT, &path, &json!({"password": "again"})).await;
    let (status, _, put) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["hasPassword"], true);
    assert_eq!(put["name"], "pw");
    assert_eq!(put["port"], created["port"]);

    let response = admin_send(&app, Method::PUT, &path, &json!({"host": "localhost"})).await;
    let (status, _, put) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["host"], "localhost");
    assert_eq!(put["hasPassword"], true);
    assert_eq!(put["database"], "test");
    assert_eq!(put["options"], created["options"]);

    // An empty password clears it as well.
    let response = admin_send(&app, Method::PUT, &path, &json!({"password": ""})).await;
    let (status, _, put) = parts(response).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["hasPassword"], false);

    // A required field cannot be cleared with null.
    let response = admin_send(&app, Method::PATCH, &path, &json!({"host": null})).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "host");
}

async fn a_deleted_connection_is_gone_and_the_singular_alias_deletes_too(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let first = app.create_connection(pg_connection("first", "test")).await;
    let second = app.create_connection(pg_connection("second", "test")).await;
    let first_path = format!("/api/v1/connections/{}", id_of(&first));

    let response = app.admin(Method::DELETE, &first_path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());
    let response = app.admin(Method::GET, &first_path).send().await.unwrap();
    let error = assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains(&id_of(&first).to_string()),
        "{error}"
    );
    let response = app.admin(Method::DELETE, &first_path).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;

    // The name is free again.
    app.create_connection(pg_connection("first", "test")).await;

    let alias = format!("/api/v1/connection/{}", id_of(&second));
    let response = app.admin(Method::DELETE, &alias).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let second_path = format!("/api/v1/connections/{}", id_of(&second));
    let response = app.admin(Method::GET, &second_path).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;

    let (_, headers, list) = parts(
        app.admin(Method::GET, "/api/v1/connections")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(headers.get("x-total-count").unwrap(), "1");
    assert_eq!(list[0]["name"], "first");
}

async fn a_user_who_is_not_admin_can_read_and_test_but_not_write(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let created = app.create_connection(pg_connection("shared", "test")).await;
    let id = id_of(&created);
    let path = format!("/api/v1/connections/{id}");
    app.create_user("reader", "reader-password", false).await;
    let as_reader =
        |method: Method, path: &str| app.as_user(method, path, "reader", "reader-password");

    let (status, headers, list) = parts(
        as_reader(Method::GET, "/api/v1/connections")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-total-count").unwrap(), "1");
    assert_eq!(list, json!([created.clone()]));

    let (status, _, fetched) = parts(as_reader(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let test_path = format!("{path}/test");
    let (status, _, result) =
        parts(as_reader(Method::POST, &test_path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["ok"], true, "{result}");

    let response = as_reader(Method::POST, "/api/v1/connections")
        .json(&pg_connection("mine", "test"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = as_reader(Method::PATCH, &path)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = as_reader(Method::PUT, &path)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = as_reader(Method::DELETE, &path).send().await.unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = as_reader(Method::DELETE, &format!("/api/v1/connection/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;

    // Nothing changed, and nothing was added.
    assert_eq!(admin_get(&app, &path).await, created);
    let list = admin_get(&app, "/api/v1/connections").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Without credentials nothing is readable.
    let response = app.anon(Method::GET, &path).send().await.unwrap();
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "authentication_required",
    )
    .await;
}

async fn a_connection_password_is_never_returned_nor_stored_in_plaintext(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let secret = format!("Plain-Secret-{}", uuid_like());
    let mut body = pg_connection("secretive", "test");
    body["password"] = json!(secret);

    let mut texts = Vec::new();
    let response = admin_send(&app, Method::POST, "/api/v1/connections", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let text = response.text().await.unwrap();
    let created: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["hasPassword"], true);
    texts.push(("create", text));
    let id = id_of(&created);
    let path = format!("/api/v1/connections/{id}");

    for (what, method, path, patch) in [
        ("get", Method::GET, path.clone(), None),
        ("list", Method::GET, "/api/v1/connections".to_string(), None),
        (
            "patch",
            Method::PATCH,
            path.clone(),
            Some(json!({"port": 5432})),
        ),
        (
            "put",
            Method::PUT,
            path.clone(),
            Some(json!({"name": "still-secretive"})),
        ),
        ("test", Method::POST, format!("{path}/test"), None),
    ] {
        let mut request = app.admin(method, &path);
        if let Some(patch) = patch {
            request = request.json(&patch);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        texts.push((what, response.text().await.unwrap()));
    }
    for (what, text) in &texts {
        assert!(
            !text.contains(&secret),
            "the {what} answer holds the password: {text}"
        );
        assert!(
            !text.contains("\"password\""),
            "the {what} answer has a password key: {text}"
        );
    }
    // The stored password still works (trust auth takes any, but it must decrypt).
    let result: Value = serde_json::from_str(&texts.last().unwrap().1).unwrap();
    assert_eq!(result["ok"], true, "{result}");

    match backend {
        Backend::Sqlite => {
            let files = files_under(&app.data_dir);
            assert!(
                files.iter().any(|f| f.ends_with("sluice.db")),
                "no sluice.db in {files:?}"
            );
            for file in &files {
                let bytes = std::fs::read(file).unwrap();
                assert!(
                    !contains_bytes(&bytes, secret.as_bytes()),
                    "{} holds the plaintext password",
                    file.display()
                );
            }
            // The encrypted form is there.
            let db = rusqlite::Connection::open(app.data_dir.join("sluice.db")).unwrap();
            let stored: Option<String> = db
                .query_row(
                    "SELECT password_encrypted FROM connections WHERE id = ?1",
                    [id],
                    |row| row.get(0),
                )
                .unwrap();
            let stored = stored.expect("the encrypted password is stored");
            assert!(!stored.is_empty() && !stored.contains(&secret), "{stored}");
        }
        Backend::Postgres => {
            let db = app.metadata_db.clone().unwrap();
            let client = pg_client(&db).await;
            let rows = client
                .query("SELECT password_encrypted FROM connections", &[])
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            let stored: Option<String> = rows[0].get(0);
            let stored = stored.expect("the encrypted password is stored");
            assert!(!stored.is_empty() && !stored.contains(&secret), "{stored}");
            let rows = client
                .query("SELECT row_to_json(c)::text FROM connections c", &[])
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            let row: String = rows[0].get(0);
            assert!(!row.contains(&secret), "{row}");
            assert!(row.contains("still-secretive"), "{row}");
        }
    }
}

/// A random suffix (the hex part of a unique name).
fn uuid_like() -> String {
    unique_name("x").rsplit('_').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Connection tests against the machine's servers (SQLite metadata store).

#[actix_web::test]
async fn testing_a_postgresql_connection_reports_the_server_version() {
    let app = spawn_app().await;
    let result = create_and_test(&app, pg_connection("pg", "test")).await;
    let version = assert_test_ok(&result);
    assert!(version.starts_with("PostgreSQL 15"), "{result}");
    assert!(result["latencyMs"].as_u64().unwrap() < 5_000, "{result}");
}

#[actix_web::test]
async fn testing_a_mariadb_connection_reports_the_server_version() {
    let app = spawn_app().await;
    let db = unique_name("test_mdb");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let result = create_and_test(&app, mariadb_connection("mdb", &db)).await;
    let version = assert_test_ok(&result);
    assert!(version.contains("MariaDB"), "{result}");
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn a_wrong_mariadb_password_is_reported_as_auth_failed() {
    let app = spawn_app().await;
    let db = unique_name("auth_mdb");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let mut body = mariadb_connection("mdb", &db);
    body["password"] = json!("definitely-wrong");
    let result = create_and_test(&app, body).await;
    assert_test_failed(&result, "auth_failed");
    assert!(
        result["error"].as_str().unwrap().contains("Access denied"),
        "{result}"
    );
    assert!(
        !result["error"]
            .as_str()
            .unwrap()
            .contains("definitely-wrong"),
        "{result}"
    );
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn a_refused_port_is_reported_as_connection_refused() {
    let app = spawn_app().await;
    let mut pg = pg_connection("pg", "test");
    pg["port"] = json!(1);
    let result = create_and_test(&app, pg).await;
    assert_test_failed(&result, "connection_refused");
    let mut mdb = mariadb_connection("mdb", "any");
    mdb["port"] = json!(1);
    let result = create_and_test(&app, mdb).await;
    assert_test_failed(&result, "connection_refused");
}

#[actix_web::test]
async fn an_unknown_host_is_reported_as_host_not_found() {
    let app = spawn_app().await;
    let mut pg = pg_connection("pg", "test");
    pg["host"] = json!("no-such-host.invalid");
    let result = create_and_test(&app, pg).await;
    assert_test_failed(&result, "host_not_found");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("no-such-host.invalid"),
        "{result}"
    );
    let mut mdb = mariadb_connection("mdb", "any");
    mdb["host"] = json!("no-such-host.invalid");
    let result = create_and_test(&app, mdb).await;
    assert_test_failed(&result, "host_not_found");
}

#[actix_web::test]
async fn a_missing_postgresql_database_is_reported_as_database_not_found() {
    let app = spawn_app().await;
    let missing = unique_name("missing");
    let result = create_and_test(&app, pg_connection("pg", &missing)).await;
    assert_test_failed(&result, "database_not_found");
    assert!(
        result["error"].as_str().unwrap().contains(&missing),
        "{result}"
    );
}

#[actix_web::test]
async fn a_missing_mariadb_database_is_reported_as_database_not_found() {
    let app = spawn_app().await;
    let missing = unique_name("missing");
    let result = create_and_test(&app, mariadb_connection("mdb", &missing)).await;
    assert_test_failed(&result, "database_not_found");
}

#[actix_web::test]
async fn a_sqlite_file_that_does_not_exist_fails_the_test_and_is_not_created() {
    let app = spawn_app().await;
    let path = temp_dir().join("missing.db");
    let result = create_and_test(
        &app,
        json!({"name": "lite", "type": "sqlite", "path": path.to_str().unwrap()}),
    )
    .await;
    assert_eq!(result["ok"], false, "{result}");
    assert!(result["errorCode"].is_string(), "{result}");
    assert!(!path.exists(), "testing must not create the file");
}

#[actix_web::test]
async fn a_file_that_is_not_a_sqlite_database_fails_the_test() {
    let app = spawn_app().await;
    let path = temp_dir().join("notes.txt");
    std::fs::write(&path, "this is not a database, just some text ".repeat(50)).unwrap();
    let result = create_and_test(
        &app,
        json!({"name": "lite", "type": "sqlite", "path": path.to_str().unwrap()}),
    )
    .await;
    assert_test_failed(&result, "connection_failed");
}

#[actix_web::test]
async fn an_existing_sqlite_file_passes_the_test() {
    let app = spawn_app().await;
    let path = sqlite_file_with_orders();
    let result = create_and_test(
        &app,
        json!({"name": "lite", "type": "sqlite", "path": path.to_str().unwrap()}),
    )
    .await;
    let version = assert_test_ok(&result);
    assert!(version.starts_with("SQLite 3."), "{result}");
}

#[actix_web::test]
async fn testing_an_unknown_connection_is_a_404() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::POST, "/api/v1/connections/424242/test")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;
}

// ---------------------------------------------------------------------------------------------
// TLS.

#[actix_web::test]
async fn postgresql_with_ssl_mode_require_connects_over_tls() {
    let app = spawn_app().await;
    let mut body = pg_connection("pg", "test");
    body["options"] = json!({"sslMode": "require"});
    let result = create_and_test(&app, body).await;
    assert!(
        assert_test_ok(&result).starts_with("PostgreSQL 15"),
        "{result}"
    );

    // `prefer` (the default when no mode is given) connects too.
    let mut body = pg_connection("pg-default", "test");
    body.as_object_mut().unwrap().remove("options");
    let result = create_and_test(&app, body).await;
    assert!(
        assert_test_ok(&result).starts_with("PostgreSQL 15"),
        "{result}"
    );
}

/// The certificate of the machine's PostgreSQL (Debian's snakeoil: self-signed, for `localhost`).
const PG_CERTIFICATE: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

#[actix_web::test]
async fn postgresql_with_verify_full_refuses_the_self_signed_certificate() {
    let app = spawn_app().await;
    let mut body = pg_connection("verify", "test");
    body["options"] = json!({"sslMode": "verify-full"});
    let result = create_and_test(&app, body).await;
    assert_test_failed(&result, "tls_error");
    // Unknown issuer or wrong name, depending on what the system trusts: a certificate problem.
    assert!(
        result["error"].as_str().unwrap().contains("certificate"),
        "{result}"
    );

    // Even with the certificate trusted, it is not valid for 127.0.0.1.
    let mut body = pg_connection("verify-trusted", "test");
    body["options"] = json!({"sslMode": "verify-full", "sslRootCert": PG_CERTIFICATE});
    let result = create_and_test(&app, body).await;
    assert_test_failed(&result, "tls_error");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("certificate"), "{result}");
    assert!(error.contains("does not match the host name"), "{result}");
    assert!(error.contains("127.0.0.1"), "{result}");
}

#[actix_web::test]
async fn a_trusted_root_certificate_lets_verify_ca_and_verify_full_pass() {
    let app = spawn_app().await;
    // verify-ca checks the chain only, so the address may differ from the certificate's name.
    let mut body = pg_connection("verify-ca", "test");
    body["options"] = json!({"sslMode": "verify-ca", "sslRootCert": PG_CERTIFICATE});
    let result = create_and_test(&app, body).await;
    assert!(
        assert_test_ok(&result).starts_with("PostgreSQL 15"),
        "{result}"
    );

    // verify-full passes under the certificate's own name.
    let mut body = pg_connection("verify-full", "test");
    body["host"] = json!("localhost");
    body["options"] = json!({"sslMode": "verify-full", "sslRootCert": PG_CERTIFICATE});
    let result = create_and_test(&app, body).await;
    assert!(
        assert_test_ok(&result).starts_with("PostgreSQL 15"),
        "{result}"
    );

    // A root certificate file that does not exist is a TLS error naming it.
    let missing = temp_dir().join("no-such-ca.pem");
    let mut body = pg_connection("verify-missing-ca", "test");
    body["options"] = json!({"sslMode": "verify-ca", "sslRootCert": missing.to_str().unwrap()});
    let created = app.create_connection(body).await;
    assert_eq!(created["options"]["sslRootCert"], missing.to_str().unwrap());
    let result = test_connection(&app, id_of(&created)).await;
    assert_test_failed(&result, "tls_error");
    assert!(
        result["error"].as_str().unwrap().contains("no-such-ca.pem"),
        "{result}"
    );
}

#[actix_web::test]
async fn mariadb_with_ssl_mode_require_fails_because_the_server_has_no_tls() {
    let app = spawn_app().await;
    let db = unique_name("tls_mdb");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let mut body = mariadb_connection("mdb", &db);
    body["options"] = json!({"sslMode": "require"});
    let result = create_and_test(&app, body).await;
    assert_test_failed(&result, "tls_error");
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn mariadb_with_ssl_mode_prefer_falls_back_to_a_plain_connection() {
    let app = spawn_app().await;
    let db = unique_name("tls_mdb");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let mut body = mariadb_connection("mdb", &db);
    body["options"] = json!({"sslMode": "prefer"});
    let result = create_and_test(&app, body).await;
    assert!(assert_test_ok(&result).contains("MariaDB"), "{result}");

    // No options at all means `prefer` as well.
    let mut body = mariadb_connection("mdb-default", &db);
    body.as_object_mut().unwrap().remove("options");
    let result = create_and_test(&app, body).await;
    assert!(assert_test_ok(&result).contains("MariaDB"), "{result}");
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

// ---------------------------------------------------------------------------------------------
// Tables.

async fn list_tables(app: &TestApp, id: i64, query: &str) -> Value {
    admin_get(app, &format!("/api/v1/connections/{id}/tables{query}")).await
}

fn column(name: &str, data_type: &str, nullable: bool) -> Value {
    json!({"name": name, "type": data_type, "nullable": nullable})
}

#[actix_web::test]
async fn postgresql_tables_are_listed_with_their_exact_column_types() {
    let app = spawn_app().await;
    let schema = unique_name("tables");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders (id integer not null, amount numeric(10,2),
                 name varchar(20), created timestamptz);
             CREATE VIEW {schema}.recent_orders AS SELECT id, name FROM {schema}.orders;"
        ),
    )
    .await;
    let created = app.create_connection(pg_connection("pg", "test")).await;
    let tables = list_tables(&app, id_of(&created), &format!("?schema={schema}")).await;
    assert_eq!(
        tables,
        json!([{
            "name": schema,
            "tables": [
                {"name": "orders", "kind": "table", "columns": [
                    column("id", "integer", false),
                    column("amount", "numeric(10,2)", true),
                    column("name", "character varying(20)", true),
                    column("created", "timestamp with time zone", true),
                ]},
                {"name": "recent_orders", "kind": "view", "columns": [
                    column("id", "integer", true),
                    column("name", "character varying(20)", true),
                ]},
            ]
        }])
    );

    // An unknown schema is an empty answer, not an error.
    let none = list_tables(&app, id_of(&created), &format!("?schema={schema}_none")).await;
    assert_eq!(none, json!([]));
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn mariadb_tables_are_listed_with_their_exact_column_types() {
    let app = spawn_app().await;
    let db = unique_name("tables");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    mariadb_execute(&format!(
        "CREATE TABLE {db}.orders (id int not null, amount decimal(10,2), name varchar(20),
             created datetime)"
    ))
    .await;
    mariadb_execute(&format!(
        "CREATE VIEW {db}.recent_orders AS SELECT id, name FROM {db}.orders"
    ))
    .await;
    let created = app.create_connection(mariadb_connection("mdb", &db)).await;
    let tables = list_tables(&app, id_of(&created), &format!("?schema={db}")).await;
    assert_eq!(
        tables,
        json!([{
            "name": db,
            "tables": [
                {"name": "orders", "kind": "table", "columns": [
                    column("id", "int(11)", false),
                    column("amount", "decimal(10,2)", true),
                    column("name", "varchar(20)", true),
                    column("created", "datetime", true),
                ]},
                {"name": "recent_orders", "kind": "view", "columns": [
                    column("id", "int(11)", false),
                    column("name", "varchar(20)", true),
                ]},
            ]
        }])
    );
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn sqlite_tables_are_listed_in_the_main_schema() {
    let app = spawn_app().await;
    let path = sqlite_file_with_orders();
    let created = app
        .create_connection(
            json!({"name": "lite", "type": "sqlite", "path": path.to_str().unwrap()}),
        )
        .await;
    let id = id_of(&created);
    let expected = json!([{
        "name": "main",
        "tables": [
            {"name": "orders", "kind": "table", "columns": [
                column("id", "INTEGER", false),
                column("amount", "NUMERIC(10,2)", true),
                column("name", "VARCHAR(20)", true),
                column("created", "TIMESTAMP", true),
            ]},
            {"name": "recent_orders", "kind": "view", "columns": [
                column("id", "INTEGER", true),
                column("name", "VARCHAR(20)", true),
            ]},
        ]
    }]);
    assert_eq!(list_tables(&app, id, "").await, expected);
    assert_eq!(list_tables(&app, id, "?schema=main").await, expected);
    assert_eq!(list_tables(&app, id, "?schema=other").await, json!([]));
}

#[actix_web::test]
async fn listing_tables_of_an_unreachable_server_is_a_502() {
    let app = spawn_app().await;
    let mut body = pg_connection("down", "test");
    body["port"] = json!(1);
    let created = app.create_connection(body).await;
    let id = id_of(&created);
    let response = app
        .admin(Method::GET, &format!("/api/v1/connections/{id}/tables"))
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::BAD_GATEWAY, "connection_failed").await;
    assert!(
        error["detail"].as_str().unwrap().contains("down"),
        "{error}"
    );

    // A missing sqlite file, too.
    let missing = temp_dir().join("missing.db");
    let created = app
        .create_connection(
            json!({"name": "gone", "type": "sqlite", "path": missing.to_str().unwrap()}),
        )
        .await;
    let response = app
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{}/tables", id_of(&created)),
        )
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_GATEWAY, "connection_failed").await;

    let response = app
        .admin(Method::GET, "/api/v1/connections/424242/tables")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;
}

#[actix_web::test]
async fn a_dbconvert_style_nested_spec_is_read_as_the_flat_fields() {
    let app = spawn_app().await;
    let created = app
        .create_connection(json!({
            "name": "mysql-source", "type": "mysql",
            "spec": {"database": {
                "host": MARIADB_HOST, "port": MARIADB_PORT, "username": MARIADB_USER,
                "password": "", "database": "test"
            }},
            "options": {"sslMode": "disable"}
        }))
        .await;
    // Answered in the flat shape.
    assert_eq!(created["host"], MARIADB_HOST);
    assert_eq!(created["port"], MARIADB_PORT);
    assert_eq!(created["username"], MARIADB_USER);
    assert_eq!(created["database"], "test");
    assert!(created.get("spec").is_none(), "{created}");
    let tested = test_connection(&app, id_of(&created)).await;
    assert_eq!(tested["ok"], true, "{tested}");
    // A field given both ways must agree.
    let response = admin_send(
        &app,
        Method::POST,
        "/api/v1/connections",
        &json!({"name": "twice", "type": "mysql", "host": "a.example", "port": 3306,
                "username": "u", "database": "d",
                "spec": {"database": {"host": "b.example"}}}),
    )
    .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "spec.database.host");
}

#[actix_web::test]
async fn listing_tables_of_a_host_that_never_answers_gives_up_after_the_connect_timeout() {
    let relay = crate::relay::Relay::start(&format!("{PG_HOST}:{PG_PORT}")).await;
    relay.blackhole();
    let app = spawn_app().await;
    let mut body = pg_connection("silent", "test");
    body["port"] = json!(relay.port());
    let created = app.create_connection(body).await;
    let started = std::time::Instant::now();
    let response = app
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{}/tables", id_of(&created)),
        )
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let error = assert_error(response, StatusCode::BAD_GATEWAY, "connection_failed").await;
    // spawn_app sets engine.connect_timeout_secs = 5 (the listing's own limit is 30 s).
    assert!(
        elapsed >= std::time::Duration::from_secs(5) && elapsed < std::time::Duration::from_secs(9),
        "{elapsed:?}"
    );
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 5s"),
        "{error}"
    );
    // A connection test gives up as soon.
    let started = std::time::Instant::now();
    let tested = test_connection(&app, id_of(&created)).await;
    assert_eq!(tested["errorCode"], "timeout", "{tested}");
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
}

#[actix_web::test]
async fn mariadb_tables_are_listed_for_the_connections_own_database_unless_all_are_asked() {
    let app = spawn_app().await;
    let own = unique_name("own");
    let other = unique_name("other");
    for db in [&own, &other] {
        mariadb_execute(&format!(
            "CREATE DATABASE {db}; CREATE TABLE {db}.t (n int)"
        ))
        .await;
    }
    let created = app.create_connection(mariadb_connection("mdb", &own)).await;
    let id = id_of(&created);
    let names = |tables: &Value| -> Vec<String> {
        tables
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&list_tables(&app, id, "").await), vec![own.clone()]);
    let every = names(&list_tables(&app, id, "?schema=*").await);
    assert!(every.contains(&own) && every.contains(&other), "{every:?}");
    assert_eq!(
        names(&list_tables(&app, id, &format!("?schema={other}")).await),
        vec![other.clone()]
    );
    for db in [&own, &other] {
        mariadb_execute(&format!("DROP DATABASE {db}")).await;
    }
}

#[actix_web::test]
async fn a_connection_that_running_jobs_use_cannot_be_deleted_and_past_jobs_keep_its_name() {
    let app = spawn_app().await;
    let schema = unique_name("in_use");
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let source = app
        .create_connection(pg_connection("busy-source", "test"))
        .await;
    let target = app
        .create_connection(pg_connection("busy-target", "test"))
        .await;
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"],
            "query": crate::helpers::paced_query(300_000, 1.0),
            "targetSchema": schema, "targetTable": "t"
        }))
        .await;
    assert_eq!(transfer["sourceName"], "busy-source");
    assert_eq!(transfer["targetName"], "busy-target");
    let delete = |connection: &Value| {
        app.admin(
            Method::DELETE,
            &format!("/api/v1/connections/{}", connection["id"]),
        )
        .send()
    };
    for connection in [&source, &target] {
        let response = delete(connection).await.unwrap();
        let error = assert_error(response, StatusCode::CONFLICT, "connection_in_use").await;
        assert!(
            error["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("transfers {}", transfer["id"])),
            "{error}"
        );
    }
    let done = app.wait_transfer(&transfer["id"], 60).await;
    assert_eq!(done["status"], "complete", "{done}");
    // Finished: the connection may go; the transfer stays readable with its names.
    for connection in [&source, &target] {
        let response = delete(connection).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let after = app.transfer(&transfer["id"]).await;
    assert_eq!(after["status"], "complete");
    assert_eq!(after["sourceId"], source["id"]);
    assert_eq!(after["sourceName"], "busy-source");
    assert_eq!(after["targetName"], "busy-target");
    assert_eq!(after["rowsWritten"], 300_000);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

/// `GET path` as the admin: its status and JSON body.
async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.admin(Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn a_connections_databases_and_their_schemas_are_listed_on_each_kind() {
    let app = spawn_app().await;

    // PostgreSQL: databases the role may connect to; a database's own schemas.
    let schema = unique_name("explore");
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let pg = app
        .create_connection(pg_connection(&unique_name("pg"), "test"))
        .await;
    let (status, list) =
        get_json(&app, &format!("/api/v1/connections/{}/databases", pg["id"])).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let databases = names(&list);
    assert!(databases.contains(&"test".to_string()), "{databases:?}");
    assert!(
        !databases.contains(&"template1".to_string()),
        "{databases:?}"
    );
    let (_, list) = get_json(
        &app,
        &format!("/api/v1/connections/{}/databases?system=true", pg["id"]),
    )
    .await;
    assert!(names(&list).contains(&"template1".to_string()), "{list}");
    let (status, list) = get_json(
        &app,
        &format!("/api/v1/connections/{}/databases/test/schemas", pg["id"]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let schemas = names(&list);
    assert!(schemas.contains(&schema), "{schemas:?}");
    assert!(schemas.contains(&"public".to_string()), "{schemas:?}");
    assert!(
        !schemas
            .iter()
            .any(|s| s.starts_with("pg_") || s == "information_schema"),
        "{schemas:?}"
    );

    // MariaDB: a database is its own one schema; the server's own only when asked for.
    let database = unique_name("explore");
    mariadb_execute(&format!("CREATE DATABASE {database}")).await;
    let my = app
        .create_connection(mariadb_connection(&unique_name("my"), &database))
        .await;
    let (status, list) =
        get_json(&app, &format!("/api/v1/connections/{}/databases", my["id"])).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let databases = names(&list);
    assert!(databases.contains(&database), "{databases:?}");
    assert!(!databases.contains(&"mysql".to_string()), "{databases:?}");
    let (_, list) = get_json(
        &app,
        &format!("/api/v1/connections/{}/databases?system=true", my["id"]),
    )
    .await;
    assert!(names(&list).contains(&"mysql".to_string()), "{list}");
    let (_, list) = get_json(
        &app,
        &format!(
            "/api/v1/connections/{}/databases/{database}/schemas",
            my["id"]
        ),
    )
    .await;
    assert_eq!(names(&list), vec![database]);

    // SQLite: `main` (and attached databases).
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("explore")));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .unwrap();
    let lite = app
        .create_connection(json!({"name": unique_name("lite"), "type": "sqlite", "path": path}))
        .await;
    let (_, list) = get_json(
        &app,
        &format!("/api/v1/connections/{}/databases", lite["id"]),
    )
    .await;
    assert_eq!(names(&list), ["main"]);
    let (_, list) = get_json(
        &app,
        &format!("/api/v1/connections/{}/databases/main/schemas", lite["id"]),
    )
    .await;
    assert_eq!(names(&list), ["main"]);

    // What is not there is 404 with a code; an unknown parameter is refused.
    for connection in [&pg, &my, &lite] {
        let response = app
            .admin(
                Method::GET,
                &format!(
                    "/api/v1/connections/{}/databases/no_such_db_{}/schemas",
                    connection["id"],
                    unique_name("x")
                ),
            )
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "database_not_found").await;
    }
    let response = app
        .admin(
            Method::GET,
            &format!("/api/v1/connections/{}/databases?colour=red", pg["id"]),
        )
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
    assert!(
        error["detail"].as_str().unwrap().contains("colour"),
        "{error}"
    );
    let response = app
        .admin(Method::GET, "/api/v1/connections/999999/databases")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "connection_not_found").await;
}

#[actix_web::test]
async fn a_schemas_tables_and_views_are_listed_with_estimates_sizes_and_comments() {
    let app = spawn_app().await;
    let path_of = |c: &Value, db: &str, schema: &str| {
        format!(
            "/api/v1/connections/{}/databases/{db}/schemas/{schema}/tables",
            c["id"]
        )
    };

    // PostgreSQL.
    let schema = unique_name("relations");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders (id int PRIMARY KEY, note text);
             INSERT INTO {schema}.orders SELECT g, 'n' || g FROM generate_series(1, 3) g;
             ANALYZE {schema}.orders;
             COMMENT ON TABLE {schema}.orders IS 'orders ✓ ''quoted''';
             CREATE VIEW {schema}.recent AS SELECT id FROM {schema}.orders;"
        ),
    )
    .await;
    let pg = app
        .create_connection(pg_connection(&unique_name("pg"), "test"))
        .await;
    let (status, list) = get_json(&app, &path_of(&pg, "test", &schema)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["name"], "orders");
    assert_eq!(list[0]["kind"], "table");
    assert_eq!(list[0]["rowEstimate"], 3);
    assert!(list[0]["sizeBytes"].as_i64().unwrap() > 0, "{list}");
    assert_eq!(list[0]["comment"], "orders ✓ 'quoted'");
    assert_eq!(
        list[1],
        json!({"name": "recent", "kind": "view", "rowEstimate": null, "sizeBytes": null, "comment": null})
    );
    assert_eq!(list.as_array().unwrap().len(), 2);

    // MariaDB: the database is the schema.
    let database = unique_name("relations");
    mariadb_execute(&format!(
        "CREATE DATABASE {database};
         CREATE TABLE {database}.orders (id int PRIMARY KEY) COMMENT 'the orders';
         INSERT INTO {database}.orders VALUES (1), (2);
         CREATE VIEW {database}.recent AS SELECT id FROM {database}.orders;"
    ))
    .await;
    let my = app
        .create_connection(mariadb_connection(&unique_name("my"), &database))
        .await;
    let (status, list) = get_json(&app, &path_of(&my, &database, &database)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["name"], "orders");
    assert_eq!(list[0]["kind"], "table");
    assert!(list[0]["rowEstimate"].is_i64(), "{list}");
    assert!(list[0]["sizeBytes"].as_i64().unwrap() > 0, "{list}");
    assert_eq!(list[0]["comment"], "the orders");
    assert_eq!(list[1]["kind"], "view");
    assert_eq!(list[1]["comment"], Value::Null);

    // SQLite: no estimates.
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("relations")));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE orders (id INTEGER); CREATE VIEW recent AS SELECT id FROM orders;",
        )
        .unwrap();
    let lite = app
        .create_connection(json!({"name": unique_name("lite"), "type": "sqlite", "path": path}))
        .await;
    let (_, list) = get_json(&app, &path_of(&lite, "main", "main")).await;
    assert_eq!(
        list,
        json!([
            {"name": "orders", "kind": "table", "rowEstimate": null, "sizeBytes": null, "comment": null},
            {"name": "recent", "kind": "view", "rowEstimate": null, "sizeBytes": null, "comment": null},
        ])
    );

    // A schema or database that is not there.
    for (connection, db, schema, code) in [
        (&pg, "test", "no_such_schema", "schema_not_found"),
        (&pg, "no_such_database_here", "public", "database_not_found"),
        (&my, database.as_str(), "other", "schema_not_found"),
        (
            &my,
            "no_such_database_here",
            "no_such_database_here",
            "database_not_found",
        ),
        (&lite, "main", "other", "schema_not_found"),
        (&lite, "other", "other", "database_not_found"),
    ] {
        let response = app
            .admin(Method::GET, &path_of(connection, db, schema))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, code).await;
    }
}

#[actix_web::test]
async fn a_tables_rows_are_counted_exactly_and_a_count_past_its_limit_is_stopped() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.engine.count_timeout_secs = 1).await;
    let count_path = |c: &Value, db: &str, schema: &str, table: &str| {
        format!(
            "/api/v1/connections/{}/databases/{db}/schemas/{schema}/tables/{}/count",
            c["id"],
            urlencoding(table)
        )
    };

    // PostgreSQL, a hostile name included.
    let schema = unique_name("count");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders AS SELECT g AS id FROM generate_series(1, 1234) g;
             CREATE TABLE {schema}.\"we\"\"ird; ✓\" (x int);
             INSERT INTO {schema}.\"we\"\"ird; ✓\" VALUES (1), (2);
             CREATE VIEW {schema}.slow AS SELECT 1 AS s FROM pg_sleep(5);"
        ),
    )
    .await;
    let pg = app
        .create_connection(pg_connection(&unique_name("pg"), "test"))
        .await;
    let (status, count) = get_json(&app, &count_path(&pg, "test", &schema, "orders")).await;
    assert_eq!(status, StatusCode::OK, "{count}");
    assert_eq!(
        count,
        json!({"table": "orders", "rows": 1234, "exact": true})
    );
    let (_, count) = get_json(&app, &count_path(&pg, "test", &schema, "we\"ird; ✓")).await;
    assert_eq!(count["rows"], 2, "{count}");
    let started = std::time::Instant::now();
    let response = app
        .admin(Method::GET, &count_path(&pg, "test", &schema, "slow"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::GATEWAY_TIMEOUT, "timeout").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4));

    // MariaDB and SQLite.
    let database = unique_name("count");
    mariadb_execute(&format!(
        "CREATE DATABASE {database}; CREATE TABLE {database}.t (id int);
         INSERT INTO {database}.t VALUES (1), (2), (3);"
    ))
    .await;
    let my = app
        .create_connection(mariadb_connection(&unique_name("my"), &database))
        .await;
    let (_, count) = get_json(&app, &count_path(&my, &database, &database, "t")).await;
    assert_eq!(count["rows"], 3, "{count}");
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("count")));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (NULL);")
        .unwrap();
    let lite = app
        .create_connection(json!({"name": unique_name("lite"), "type": "sqlite", "path": path}))
        .await;
    let (_, count) = get_json(&app, &count_path(&lite, "main", "main", "t")).await;
    assert_eq!(count["rows"], 2, "{count}");

    for (connection, db, schema) in [
        (&pg, "test", schema.as_str()),
        (&my, database.as_str(), database.as_str()),
        (&lite, "main", "main"),
    ] {
        let response = app
            .admin(
                Method::GET,
                &count_path(connection, db, schema, "no_such_table"),
            )
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "table_not_found").await;
    }
}

/// A path segment with everything but letters, digits and `_` percent-encoded.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn a_tables_ddl_recreates_it_and_a_views_ddl_is_its_definition() {
    let app = spawn_app().await;
    let ddl_path = |c: &Value, db: &str, schema: &str, what: &str, name: &str| {
        format!(
            "/api/v1/connections/{}/databases/{db}/schemas/{schema}/{what}/{name}/ddl",
            c["id"]
        )
    };

    // PostgreSQL: the DDL run in another schema makes a table whose DDL is the same.
    let (schema, copy) = (unique_name("ddl"), unique_name("ddl_copy"));
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema}; CREATE SCHEMA {copy};
             CREATE TABLE {schema}.customers (id int PRIMARY KEY);
             CREATE TABLE {schema}.orders (
                id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                code text NOT NULL UNIQUE,
                amount numeric(10,2) DEFAULT 0 CHECK (amount >= 0),
                customer int REFERENCES {schema}.customers (id));
             CREATE INDEX orders_amount ON {schema}.orders (amount DESC);
             COMMENT ON TABLE {schema}.orders IS 'it''s ✓';
             CREATE VIEW {schema}.big AS SELECT id FROM {schema}.orders WHERE amount > 10;
             CREATE TABLE {copy}.customers (id int PRIMARY KEY);"
        ),
    )
    .await;
    let pg = app
        .create_connection(pg_connection(&unique_name("pg"), "test"))
        .await;
    let (status, body) = get_json(&app, &ddl_path(&pg, "test", &schema, "tables", "orders")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "table");
    let ddl = body["ddl"].as_str().unwrap().to_string();
    for part in [
        "GENERATED ALWAYS AS IDENTITY",
        "DEFAULT 0",
        "NOT NULL",
        "PRIMARY KEY (id)",
        "UNIQUE (code)",
        "CHECK (amount >= 0::numeric)",
        "REFERENCES",
        "CREATE INDEX orders_amount",
        "COMMENT ON TABLE",
        "'it''s ✓'",
    ] {
        assert!(ddl.contains(part), "{part:?} in {ddl}");
    }
    pg_execute("test", &ddl.replace(&schema, &copy)).await;
    let (_, again) = get_json(&app, &ddl_path(&pg, "test", &copy, "tables", "orders")).await;
    assert_eq!(again["ddl"].as_str().unwrap().replace(&copy, &schema), ddl);

    let (_, body) = get_json(&app, &ddl_path(&pg, "test", &schema, "views", "big")).await;
    let ddl = body["ddl"].as_str().unwrap();
    assert!(
        ddl.starts_with(&format!("CREATE VIEW {schema}.big AS")),
        "{ddl}"
    );
    assert!(ddl.contains("amount > 10"), "{ddl}");
    for (what, name) in [
        ("tables", "big"),
        ("views", "orders"),
        ("tables", "nothing"),
    ] {
        let response = app
            .admin(Method::GET, &ddl_path(&pg, "test", &schema, what, name))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "table_not_found").await;
    }

    // MariaDB: as SHOW CREATE prints it.
    let database = unique_name("ddl");
    mariadb_execute(&format!(
        "CREATE DATABASE {database};
         CREATE TABLE {database}.t (id int PRIMARY KEY, note varchar(20) DEFAULT 'x');
         CREATE VIEW {database}.v AS SELECT id FROM {database}.t;"
    ))
    .await;
    let my = app
        .create_connection(mariadb_connection(&unique_name("my"), &database))
        .await;
    let (_, body) = get_json(&app, &ddl_path(&my, &database, &database, "tables", "t")).await;
    let ddl = body["ddl"].as_str().unwrap();
    assert!(ddl.starts_with("CREATE TABLE `t`"), "{ddl}");
    assert!(ddl.contains("PRIMARY KEY (`id`)"), "{ddl}");
    assert!(ddl.contains("DEFAULT 'x'"), "{ddl}");
    let (_, body) = get_json(&app, &ddl_path(&my, &database, &database, "views", "v")).await;
    assert!(
        body["ddl"].as_str().unwrap().contains("VIEW `v` AS"),
        "{body}"
    );

    // SQLite: the kept statement and the table's index.
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("ddl")));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT); CREATE INDEX t_x ON t (x);",
        )
        .unwrap();
    let lite = app
        .create_connection(json!({"name": unique_name("lite"), "type": "sqlite", "path": path}))
        .await;
    let (_, body) = get_json(&app, &ddl_path(&lite, "main", "main", "tables", "t")).await;
    assert_eq!(
        body["ddl"],
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT);\nCREATE INDEX t_x ON t (x);"
    );
}
