//! Queries through the HTTP API against the real servers: typed JSON values per dialect, CSV,
//! truncation, statements without rows, errors, cancel, ownership and deletion.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, mariadb_connection, mariadb_execute, pg_client, pg_connection, spawn_app,
    spawn_app_with, unique_name, Backend, TestApp,
};

impl TestApp {
    async fn run_query(&self, connection: &Value, sql: &str) -> (Value, Vec<Value>) {
        let q = self.submit_query(connection, sql).await;
        let done = self.wait_query(&q["id"]).await;
        assert_eq!(done["status"], "complete", "{done}");
        let rows: Vec<Value> = self
            .admin(Method::GET, &format!("/api/v1/queries/{}/result", q["id"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (done, rows)
    }
}

#[actix_web::test]
async fn postgresql_values_come_back_with_their_types() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let (done, rows) = app
        .run_query(
            &pg,
            "SELECT 1::int2 AS small, 2147483647 AS int, 9007199254740993::int8 AS big,
                    12.5::float8 AS f, 'NaN'::float8 AS nan, 123.45::numeric(10,2) AS price,
                    12345678901234567890.123456789::numeric AS huge, 'héllo 🚀' AS text,
                    NULL::text AS nothing, true AS yes, '\\x00ff'::bytea AS bytes,
                    DATE '0001-01-01' AS d, TIMESTAMP '1969-07-20 20:17:40.000001' AS ts,
                    TIMESTAMPTZ '2040-01-01 12:00:00+05:30' AS tstz, TIME '13:45:00.5' AS t,
                    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id,
                    '{\"a\": [1, {\"b\": null}]}'::jsonb AS doc, ARRAY[1,2,NULL] AS arr",
        )
        .await;
    assert_eq!(done["rowCount"], 1);
    assert_eq!(done["truncated"], false);
    assert!(done["rowsAffected"].is_null());
    let types: Vec<(&str, &str)> = done["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(types[0], ("small", "int16"));
    assert_eq!(types[5], ("price", "decimal(10,2)"));
    assert_eq!(types[13], ("tstz", "timestamptz"));
    assert_eq!(
        rows,
        vec![json!({
            "small": 1, "int": 2147483647, "big": "9007199254740993", "f": 12.5, "nan": "NaN",
            "price": 123.45, "huge": "12345678901234567890.123456789", "text": "héllo 🚀",
            "nothing": null, "yes": true, "bytes": "AP8=", "d": "0001-01-01",
            "ts": "1969-07-20T20:17:40.000001", "tstz": "2040-01-01T06:30:00.000000Z",
            "t": "13:45:00.500000", "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "doc": {"a": [1, {"b": null}]}, "arr": "[1,2,null]"
        })]
    );
}

#[actix_web::test]
async fn mariadb_values_come_back_with_their_types() {
    let app = spawn_app().await;
    let db = unique_name("q");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let maria = app
        .create_connection(mariadb_connection("maria", &db))
        .await;
    let (_, rows) = app
        .run_query(
            &maria,
            "SELECT CAST(18446744073709551615 AS UNSIGNED) AS umax, -5 AS neg,
                    CAST(12.34 AS DECIMAL(6,2)) AS price, 'x' AS s, NULL AS n,
                    CAST('2024-02-29 10:11:12.5' AS DATETIME(6)) AS dt, DATE '9999-12-31' AS d",
        )
        .await;
    assert_eq!(
        rows,
        vec![json!({
            "umax": "18446744073709551615", "neg": -5, "price": 12.34, "s": "x", "n": null,
            "dt": "2024-02-29T10:11:12.500000", "d": "9999-12-31"
        })]
    );
}

#[actix_web::test]
async fn sqlite_values_come_back_and_csv_parses_back() {
    let app = spawn_app().await;
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("q")));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER, name TEXT, score REAL, raw BLOB);
             INSERT INTO t VALUES (1, 'a,b \"quoted\"', 1.5, x'00ff'), (2, 'line\nbreak', NULL, NULL);",
        )
        .unwrap();
    }
    let lite = app
        .create_connection(json!({"name": "lite", "type": "sqlite", "path": path}))
        .await;
    let (done, rows) = app.run_query(&lite, "SELECT * FROM t ORDER BY id").await;
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "name": "a,b \"quoted\"", "score": 1.5, "raw": "AP8="}),
            json!({"id": 2, "name": "line\nbreak", "score": null, "raw": null}),
        ]
    );
    let response = app
        .admin(
            Method::GET,
            &format!("/api/v1/queries/{}/result?format=csv", done["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, ["id", "name", "score", "raw"]);
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(
        records,
        vec![
            vec!["1", "a,b \"quoted\"", "1.5", "AP8="],
            vec!["2", "line\nbreak", "", ""],
        ]
    );
}

#[actix_web::test]
async fn a_result_past_max_rows_is_truncated_and_the_server_query_stopped() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.queries.max_rows = 5).await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let marker = unique_name("trunc");
    let (done, rows) = app
        .run_query(
            &pg,
            &format!("SELECT generate_series(1, 100000000) AS n /* {marker} */"),
        )
        .await;
    assert_eq!(done["truncated"], true);
    assert_eq!(done["rowCount"], 5);
    let ns: Vec<i64> = rows.iter().map(|r| r["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5]);
    let client = pg_client("test").await;
    let running: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(running, 0);
    // Paging over the kept rows.
    let page: Vec<Value> = app
        .admin(
            Method::GET,
            &format!("/api/v1/queries/{}/result?page=2&page_size=2", done["id"]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page, vec![json!({"n": 3}), json!({"n": 4})]);
}

#[actix_web::test]
async fn statements_without_rows_report_rows_affected() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let schema = unique_name("ddl");
    let q = app
        .submit_query(&pg, &format!("CREATE SCHEMA {schema}"))
        .await;
    assert_eq!(app.wait_query(&q["id"]).await["status"], "complete");
    let q = app
        .submit_query(
            &pg,
            &format!("CREATE TABLE {schema}.t AS SELECT generate_series(1, 7) AS n"),
        )
        .await;
    assert_eq!(app.wait_query(&q["id"]).await["status"], "complete");
    let q = app
        .submit_query(&pg, &format!("UPDATE {schema}.t SET n = n + 1 WHERE n > 4"))
        .await;
    let done = app.wait_query(&q["id"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["rowsAffected"], 3);
    let result = app
        .admin(Method::GET, &format!("/api/v1/queries/{}/result", q["id"]))
        .send()
        .await
        .unwrap();
    assert_error(result, StatusCode::CONFLICT, "result_not_available").await;

    let db = unique_name("ddl");
    mariadb_execute(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (n int); INSERT INTO {db}.t VALUES (1),(2),(3)"
    ))
    .await;
    let maria = app
        .create_connection(mariadb_connection("maria", &db))
        .await;
    let q = app.submit_query(&maria, "DELETE FROM t WHERE n >= 2").await;
    let done = app.wait_query(&q["id"]).await;
    assert_eq!(done["rowsAffected"], 2, "{done}");
}

#[actix_web::test]
async fn errors_carry_the_database_message_and_position() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let q = app.submit_query(&pg, "SELECT 1 FROM nowhere_at_all").await;
    let done = app.wait_query(&q["id"]).await;
    assert_eq!(done["status"], "error");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("relation \"nowhere_at_all\" does not exist"),
        "{error}"
    );
    assert!(error.contains("at character 15"), "{error}");
    let q = app.submit_query(&pg, "SELEC 1").await;
    let error = app.wait_query(&q["id"]).await["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("syntax error") && error.contains("at character 1"),
        "{error}"
    );

    let maria = app
        .create_connection(mariadb_connection("maria", "test"))
        .await;
    let q = app.submit_query(&maria, "SELEC 1").await;
    let error = app.wait_query(&q["id"]).await["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("You have an error in your SQL syntax"),
        "{error}"
    );
}

#[actix_web::test]
async fn cancel_stops_sleeping_queries_on_both_servers() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let maria = app
        .create_connection(mariadb_connection("maria", "test"))
        .await;
    for (connection, sql) in [(&pg, "SELECT pg_sleep(60)"), (&maria, "SELECT SLEEP(60)")] {
        let q = app.submit_query(connection, sql).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while app.query_state(&q["id"]).await["status"] != "running" {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let delete = app
            .admin(Method::DELETE, &format!("/api/v1/queries/{}", q["id"]))
            .send()
            .await
            .unwrap();
        assert_error(delete, StatusCode::CONFLICT, "query_active").await;
        let started = std::time::Instant::now();
        let cancelled: Value = app
            .admin(Method::PATCH, &format!("/api/v1/cancel-query/{}", q["id"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cancelled["status"], "cancelled", "{sql}: {cancelled}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{sql}"
        );
    }
    let client = pg_client("test").await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    use mysql_async::prelude::Queryable;
    let mut conn = crate::helpers::mariadb_conn().await;
    let sleeping: Vec<(u64,)> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(60)%'")
        .await
        .unwrap();
    assert!(sleeping.is_empty(), "{sleeping:?}");
}

#[actix_web::test]
async fn a_query_is_private_to_its_owner_and_deleting_it_removes_its_result() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    app.create_user("pia", "pia-password", false).await;
    app.create_user("quin", "quin-password", false).await;
    let response = app
        .as_user(Method::POST, "/api/v1/queries", "pia", "pia-password")
        .json(&json!({"connectionId": pg["id"], "query": "SELECT 42 AS answer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let q: Value = response.json().await.unwrap();
    app.wait_query(&q["id"]).await;
    for path in [
        format!("/api/v1/queries/{}", q["id"]),
        format!("/api/v1/queries/{}/result", q["id"]),
    ] {
        let response = app
            .as_user(Method::GET, &path, "quin", "quin-password")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "query_not_found").await;
    }
    let mine: Vec<Value> = app
        .as_user(
            Method::GET,
            &format!("/api/v1/queries/{}/result", q["id"]),
            "pia",
            "pia-password",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine, vec![json!({"answer": 42})]);
    let id = q["id"].as_i64().unwrap() as i32;
    assert!(app.state.store.get_query_rows(id).await.unwrap().is_some());
    let delete = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/queries/{id}"),
            "pia",
            "pia-password",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert!(app.state.store.get_query_rows(id).await.unwrap().is_none());
    let gone = app
        .admin(Method::GET, &format!("/api/v1/queries/{id}/result"))
        .send()
        .await
        .unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "query_not_found").await;
}

#[actix_web::test]
async fn the_connection_filter_lists_the_queries_run_on_that_connection() {
    let app = spawn_app().await;
    let name = unique_name("qfilter");
    let a = app
        .create_connection(pg_connection(&format!("a-{name}"), "test"))
        .await;
    let b = app
        .create_connection(pg_connection(&format!("b-{name}"), "test"))
        .await;
    let mut ids = Vec::new();
    for connection in [&a, &b, &a] {
        let (done, _) = app.run_query(connection, "SELECT 1 AS one").await;
        ids.push(done["id"].as_i64().unwrap());
    }
    assert_eq!(
        app.listed_ids(&format!("/api/v1/queries?connection={}&sort=id", a["id"]))
            .await,
        vec![ids[0], ids[2]]
    );
    assert_eq!(
        app.listed_ids(&format!(
            "/api/v1/queries?connection={}&status=complete",
            b["id"]
        ))
        .await,
        vec![ids[1]]
    );
    assert!(app
        .listed_ids("/api/v1/queries?connection=9999")
        .await
        .is_empty());
    let bad = app
        .admin(Method::GET, "/api/v1/queries?connection=first")
        .send()
        .await
        .unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
}

#[actix_web::test]
async fn a_result_keeps_its_column_order_in_json_and_as_arrays_with_repeated_names_apart() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let q = app
        .submit_query(&pg, "SELECT 1 AS zeta, 2 AS alpha, 3 AS mid, 4 AS alpha")
        .await;
    let done = app.wait_query(&q["id"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    let result = |params: &str| {
        app.admin(
            Method::GET,
            &format!("/api/v1/queries/{}/result{params}", q["id"]),
        )
        .send()
    };
    // The text itself: key order is what a client reading the stream sees.
    let text = result("").await.unwrap().text().await.unwrap();
    assert_eq!(text, r#"[{"zeta":1,"alpha":2,"mid":3,"alpha_2":4}]"#);
    let arrays: Value = result("?shape=arrays").await.unwrap().json().await.unwrap();
    let names: Vec<&str> = arrays["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["zeta", "alpha", "mid", "alpha"]);
    assert_eq!(arrays["rows"], json!([[1, 2, 3, 4]]));
    assert_eq!(arrays["columns"][0]["type"], "int32");
    let bad = result("?shape=table").await.unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;

    // Resources keep their documented field order too, in answers and in live events.
    let app = &app;
    let text_of = |path: String| async move {
        let response = app.admin(Method::GET, &path).send().await.unwrap();
        response.text().await.unwrap()
    };
    let raw = text_of(format!("/api/v1/queries/{}", q["id"])).await;
    assert!(
        raw.starts_with(&format!(
            r#"{{"id":{},"connectionId":{},"connectionName":"pg","query":"#,
            q["id"], pg["id"]
        )),
        "{raw}"
    );
    let events = text_of(format!("/api/v1/queries/{}/events", q["id"])).await;
    assert!(
        events.contains(&format!(r#"data: {{"id":{},"connectionId":"#, q["id"])),
        "{events}"
    );
}

/// Submit a query as `user`; its final state (read as the admin).
async fn query_as(app: &TestApp, user: &str, connection: &Value, sql: &str) -> Value {
    let response = app
        .as_user(Method::POST, "/api/v1/queries", user, "reader-password")
        .json(&json!({"connectionId": connection["id"], "query": sql}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let q: Value = response.json().await.unwrap();
    app.wait_query(&q["id"]).await
}

#[actix_web::test]
async fn queries_of_users_who_are_not_admins_only_read_on_every_kind() {
    let app = spawn_app().await;
    app.create_user("reader", "reader-password", false).await;
    // PostgreSQL.
    let schema = unique_name("ro");
    let client = pg_client("test").await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (n int); INSERT INTO {schema}.t VALUES (1)"
        ))
        .await
        .unwrap();
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    for sql in [
        format!("DROP TABLE {schema}.t"),
        format!("INSERT INTO {schema}.t VALUES (2)"),
        // A statement that returns rows and writes.
        format!("WITH x AS (DELETE FROM {schema}.t RETURNING n) SELECT * FROM x"),
        format!("CREATE TABLE {schema}.new (n int)"),
    ] {
        let done = query_as(&app, "reader", &pg, &sql).await;
        assert_eq!(done["status"], "error", "{sql}: {done}");
        assert_eq!(done["errorCode"], "read_only", "{sql}: {done}");
        assert!(
            done["error"].as_str().unwrap().contains("read-only"),
            "{sql}: {done}"
        );
    }
    let done = query_as(&app, "reader", &pg, &format!("SELECT n FROM {schema}.t")).await;
    assert_eq!(done["status"], "complete", "{done}");
    let count: i64 = client
        .query_one(&format!("SELECT count(*) FROM {schema}.t"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the table is as it was");
    // An admin's statement still changes data.
    let q = app
        .submit_query(&pg, &format!("INSERT INTO {schema}.t VALUES (3)"))
        .await;
    assert_eq!(app.wait_query(&q["id"]).await["rowsAffected"], 1);

    // MariaDB.
    let db = unique_name("ro");
    mariadb_execute(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (n int); INSERT INTO {db}.t VALUES (1)"
    ))
    .await;
    let maria = app
        .create_connection(mariadb_connection("maria", &db))
        .await;
    for sql in [
        "DELETE FROM t",
        "DROP TABLE t",
        "CREATE DATABASE sluice_test_never",
    ] {
        let done = query_as(&app, "reader", &maria, sql).await;
        assert_eq!(done["status"], "error", "{sql}: {done}");
        assert_eq!(done["errorCode"], "read_only", "{sql}: {done}");
    }
    let done = query_as(&app, "reader", &maria, "SELECT n FROM t").await;
    assert_eq!(done["rowCount"], 1, "{done}");

    // SQLite: read-only, and the reader may not lift it.
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("ro")));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    let lite = app
        .create_connection(json!({"name": "lite", "type": "sqlite", "path": path}))
        .await;
    for (sql, code) in [
        ("DELETE FROM t", "read_only"),
        ("DROP TABLE t", "read_only"),
        ("PRAGMA query_only = OFF", "statement_not_allowed"),
    ] {
        let done = query_as(&app, "reader", &lite, sql).await;
        assert_eq!(done["status"], "error", "{sql}: {done}");
        assert_eq!(done["errorCode"], code, "{sql}: {done}");
    }
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn a_sqlite_statement_may_reach_no_other_file_whoever_runs_it() {
    let app = spawn_app().await;
    app.create_user("reader", "reader-password", false).await;
    let dir = std::env::temp_dir().join(unique_name("sqlite_files"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("own.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    let lite = app
        .create_connection(json!({"name": "lite", "type": "sqlite", "path": path}))
        .await;
    let copy = dir.join("copy.db");
    let other = dir.join("other.db");
    for sql in [
        format!("VACUUM INTO '{}'", copy.display()),
        format!("ATTACH '{}' AS other", other.display()),
        "SELECT load_extension('/tmp/nothing')".to_string(),
        "PRAGMA temp_store_directory = '/tmp'".to_string(),
    ] {
        let as_admin = app.submit_query(&lite, &sql).await;
        let as_admin = app.wait_query(&as_admin["id"]).await;
        let as_reader = query_as(&app, "reader", &lite, &sql).await;
        for done in [as_admin, as_reader] {
            assert_eq!(done["status"], "error", "{sql}: {done}");
            assert_eq!(done["errorCode"], "statement_not_allowed", "{sql}: {done}");
            assert!(
                done["error"].as_str().unwrap().contains("not allowed"),
                "{sql}: {done}"
            );
        }
    }
    assert!(!copy.exists() && !other.exists(), "no file was written");
    // The connection's own file still works as before, VACUUM included.
    let q = app.submit_query(&lite, "VACUUM").await;
    assert_eq!(app.wait_query(&q["id"]).await["status"], "complete");
    std::fs::remove_dir_all(&dir).ok();
}
