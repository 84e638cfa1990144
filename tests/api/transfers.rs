//! Transfers through the HTTP API: validation, the job lifecycle (queue, limit, cancel, restart,
//! retry, panic), atomicity on failure, and ownership. PostgreSQL → PostgreSQL unless noted.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    active_pg_queries_with, assert_error, pg_client, pg_connection, pg_count, pg_execute,
    pg_schema_and_connection, spawn_app, spawn_app_with, test_settings, Backend,
};

/// Queries of this test still running on the server, found by a marker in their text.
#[actix_web::test]
async fn a_transfer_is_checked_before_it_is_queued() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "check").await;
    let id = &pg["id"];
    let cases = [
        (
            json!({"sourceId": 999, "targetId": id, "query": "SELECT 1", "targetTable": "t"}),
            "unknown_connection",
            "sourceId",
        ),
        (
            json!({"sourceId": id, "targetId": 998, "query": "SELECT 1", "targetTable": "t"}),
            "unknown_connection",
            "targetId",
        ),
        (
            json!({"sourceId": id, "targetId": id, "query": "  ", "targetTable": "t"}),
            "validation_failed",
            "query",
        ),
        (
            json!({"sourceId": id, "targetId": id, "query": "SELECT 1"}),
            "validation_failed",
            "targetTable",
        ),
        (
            json!({"targetId": id, "query": "SELECT 1", "targetTable": "t"}),
            "validation_failed",
            "sourceId",
        ),
        (
            json!({"sourceId": "abc", "targetId": id, "query": "SELECT 1", "targetTable": "t"}),
            "validation_failed",
            "sourceId",
        ),
    ];
    for (body, code, field) in cases {
        app.refused("/api/v1/transfers", &body, code, field).await;
    }
    let list: Vec<Value> = app
        .admin(Method::GET, "/api/v1/transfers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "nothing may be queued: {list:?}");
    let _ = schema;
}

#[actix_web::test]
async fn a_transfer_moves_rows_and_reports_them_with_sqlpipe_field_names() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "basic").await;
    pg_execute(
        "test",
        &format!(
            "CREATE TABLE {schema}.src (id integer NOT NULL, name text, amount numeric(10,2));
             INSERT INTO {schema}.src VALUES (1, 'one', 1.50), (2, NULL, -2.25), (3, 'three', NULL);"
        ),
    )
    .await;
    let response = app
        .admin(Method::POST, "/api/v1/transfers")
        .json(&json!({
            "sourceID": pg["id"], "targetID": pg["id"].to_string(),
            "query": format!("SELECT * FROM {schema}.src ORDER BY id"),
            "targetSchema": schema, "targetTable": "dst"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let queued: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/transfers/{}", queued["id"]));
    assert_eq!(queued["targetTable"], "dst");
    assert_eq!(queued["overwrite"], false);

    let done = app.wait_transfer(&queued["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 3);
    assert_eq!(done["attempts"], 1);
    assert!(done["bytesRead"].as_i64().unwrap() > 0);
    assert!(done["startedAt"].is_string() && done["stoppedAt"].is_string());
    assert!(done["error"].is_null());

    let client = pg_client("test").await;
    let rows = client
        .query(
            &format!("SELECT id, name, amount::text FROM {schema}.dst ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    let values: Vec<(i32, Option<String>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        values,
        vec![
            (1, Some("one".into()), Some("1.50".into())),
            (2, None, Some("-2.25".into())),
            (3, Some("three".into()), None),
        ]
    );
    // The created table kept the source's types and NOT NULL.
    let types = client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text, numeric_precision::int, numeric_scale::int
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'dst' ORDER BY ordinal_position",
            &[&schema],
        )
        .await
        .unwrap();
    let types: Vec<(String, String, String)> = types
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        types,
        vec![
            ("id".into(), "integer".into(), "NO".into()),
            ("name".into(), "text".into(), "YES".into()),
            ("amount".into(), "numeric".into(), "YES".into()),
        ]
    );

    // Listing: the status filter.
    let complete: Vec<Value> = app
        .admin(Method::GET, "/api/v1/transfers?status=complete")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(complete.len(), 1);
    let running: Vec<Value> = app
        .admin(Method::GET, "/api/v1/transfers?status=running,queued")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(running.is_empty());
    let bad = app
        .admin(Method::GET, "/api/v1/transfers?status=finished")
        .send()
        .await
        .unwrap();
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
}

#[actix_web::test]
async fn a_failure_after_100000_rows_leaves_the_target_unchanged_in_both_modes() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "fail").await;
    pg_execute(
        "test",
        &format!(
            "CREATE TABLE {schema}.dst (id bigint, x integer); INSERT INTO {schema}.dst VALUES (-1, 0), (-2, 0), (-3, 0);"
        ),
    )
    .await;
    for overwrite in [false, true] {
        let t = app
            .submit_transfer(json!({
                "sourceId": pg["id"], "targetId": pg["id"],
                "query": "SELECT g::bigint AS id, 1 / (g - 100001) AS x FROM generate_series(1, 200000) g",
                "targetSchema": schema, "targetTable": "dst", "overwrite": overwrite
            }))
            .await;
        let done = app.wait_transfer(&t["id"], 60).await;
        assert_eq!(done["status"], "error", "{done}");
        assert!(
            done["error"].as_str().unwrap().contains("division by zero"),
            "{done}"
        );
        assert_eq!(done["rowsWritten"], 0);
        assert_eq!(pg_count(&schema, "dst").await, 3, "overwrite={overwrite}");
    }
    // No staging table is left behind.
    let client = pg_client("test").await;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, vec!["dst".to_string()]);
}

#[actix_web::test]
async fn cancelling_a_running_transfer_stops_the_server_query_and_rolls_back() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "cancel").await;
    pg_execute(
        "test",
        &format!("CREATE TABLE {schema}.dst (id bigint); INSERT INTO {schema}.dst VALUES (7);"),
    )
    .await;
    let marker = schema.clone();
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": format!("SELECT generate_series(1, 500000000)::bigint AS id /* {marker} */"),
            "targetSchema": schema, "targetTable": "dst"
        }))
        .await;
    // Wait until rows are flowing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = app.transfer(&t["id"]).await;
        if now["status"] == "running" && now["rowsWritten"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {now}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let started = std::time::Instant::now();
    let response = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/cancel-transfer/{}", t["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        active_pg_queries_with(&marker, 0).await,
        0,
        "the source query is still running"
    );
    assert_eq!(pg_count(&schema, "dst").await, 1);

    // A finished transfer cannot be cancelled again; it can be deleted.
    let again = app
        .admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", t["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::CONFLICT, "transfer_finished").await;
    let delete = app
        .admin(Method::DELETE, &format!("/api/v1/transfers/{}", t["id"]))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    let gone = app
        .admin(Method::GET, &format!("/api/v1/transfers/{}", t["id"]))
        .send()
        .await
        .unwrap();
    assert_error(gone, StatusCode::NOT_FOUND, "transfer_not_found").await;
}

#[actix_web::test]
async fn a_queued_transfer_is_cancelled_at_once_and_a_running_one_cannot_be_deleted() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.jobs.max_concurrent = 1).await;
    let (schema, pg) = pg_schema_and_connection(&app, "queue").await;
    let slow = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT 1 AS x FROM pg_sleep(30)",
            "targetSchema": schema, "targetTable": "slow"
        }))
        .await;
    let waiting = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT 1 AS x", "targetSchema": schema, "targetTable": "waiting"
        }))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.transfer(&waiting["id"]).await["status"], "queued");
    let delete = app
        .admin(Method::DELETE, &format!("/api/v1/transfers/{}", slow["id"]))
        .send()
        .await
        .unwrap();
    assert_error(delete, StatusCode::CONFLICT, "transfer_active").await;

    let cancelled: Value = app
        .admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", waiting["id"]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["startedAt"].is_null());
    let cancelled: Value = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/cancel-transfer/{}", slow["id"]),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    // Neither table was created.
    let client = pg_client("test").await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[actix_web::test]
async fn twenty_transfers_with_a_limit_of_four_all_complete_and_never_more_than_four_run() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.jobs.max_concurrent = 4).await;
    let (schema, pg) = pg_schema_and_connection(&app, "limit").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let t = app
            .submit_transfer(json!({
                "sourceId": pg["id"], "targetId": pg["id"],
                "query": format!("SELECT {i} AS n FROM pg_sleep(0.4)"),
                "targetSchema": schema, "targetTable": format!("t{i}")
            }))
            .await;
        ids.push(t["id"].clone());
    }
    let mut most = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let running = app
            .admin(
                Method::GET,
                "/api/v1/transfers?status=running&page_size=100",
            )
            .send()
            .await
            .unwrap();
        let n: usize = running.headers()["x-total-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        most = most.max(n);
        assert!(n <= 4, "{n} transfers running at once");
        let open = app
            .admin(Method::GET, "/api/v1/transfers?status=running,queued")
            .send()
            .await
            .unwrap();
        if open.headers()["x-total-count"] == "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transfers did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
    assert!(most >= 2, "the queue never ran jobs side by side ({most})");
    let client = pg_client("test").await;
    for (i, id) in ids.iter().enumerate() {
        let t = app.transfer(id).await;
        assert_eq!(t["status"], "complete", "{t}");
        let n: i32 = client
            .query_one(&format!("SELECT n FROM {schema}.t{i}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i as i32);
    }
}

#[actix_web::test]
async fn a_transfer_interrupted_by_a_restart_completes_after_it_with_each_row_once() {
    let settings = test_settings();
    let data_dir = settings.data_dir.clone();
    let app = spawn_app_with(Backend::Sqlite, |s| *s = settings.clone()).await;
    let (schema, pg) = pg_schema_and_connection(&app, "restart").await;
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT g AS id FROM (SELECT pg_sleep(2)) s, generate_series(1, 5000) g",
            "targetSchema": schema, "targetTable": "dst"
        }))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(app.transfer(&t["id"]).await["status"], "running");
    app.stop().await;

    let restarted = spawn_app_with(Backend::Sqlite, |s| s.data_dir = data_dir).await;
    let done = restarted.wait_transfer(&t["id"], 60).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["attempts"], 2);
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {schema}.dst"),
            &[],
        )
        .await
        .unwrap();
    let (n, distinct, min, max): (i64, i64, i32, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((n, distinct, min, max), (5000, 5000, 1, 5000));
}

#[actix_web::test]
async fn a_transient_failure_is_retried_and_counted_in_attempts() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jobs.max_retries = 2;
        s.jobs.retry_backoff_ms = 20;
    })
    .await;
    let (schema, pg) = pg_schema_and_connection(&app, "retry").await;
    let mut refused = pg_connection("refused", "test");
    refused["port"] = json!(1);
    let refused = app.create_connection(refused).await;
    let t = app
        .submit_transfer(json!({
            "sourceId": refused["id"], "targetId": pg["id"],
            "query": "SELECT 1 AS x", "targetSchema": schema, "targetTable": "never"
        }))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "error");
    assert_eq!(done["attempts"], 3, "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("refused"),
        "{done}"
    );
}

#[actix_web::test]
async fn a_panic_inside_a_job_becomes_an_error_and_the_service_goes_on() {
    sluice::jobs::fail_points::panic_when_query_contains("sluice-test-panic-marker");
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "panic").await;
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT 1 AS x /* sluice-test-panic-marker */",
            "targetSchema": schema, "targetTable": "p"
        }))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "error");
    assert!(
        done["error"].as_str().unwrap().contains("panicked"),
        "{done}"
    );
    // The next job runs normally.
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT 2 AS x", "targetSchema": schema, "targetTable": "q"
        }))
        .await;
    assert_eq!(app.wait_transfer(&t["id"], 30).await["status"], "complete");
}

#[actix_web::test]
async fn users_see_and_steer_only_their_own_transfers() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "owner").await;
    app.create_user("nina", "nina-password", false).await;
    app.create_user("otto", "otto-password", false).await;
    let response = app
        .as_user(Method::POST, "/api/v1/transfers", "nina", "nina-password")
        .json(&json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x",
            "targetSchema": schema, "targetTable": "nina"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let t: Value = response.json().await.unwrap();
    assert!(t["createdBy"].as_i64().is_some());
    app.wait_transfer(&t["id"], 30).await;
    let otto: Vec<Value> = app
        .as_user(Method::GET, "/api/v1/transfers", "otto", "otto-password")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(otto.is_empty());
    for (method, path) in [
        (Method::GET, format!("/api/v1/transfers/{}", t["id"])),
        (Method::DELETE, format!("/api/v1/transfers/{}", t["id"])),
        (
            Method::POST,
            format!("/api/v1/transfers/{}/cancel", t["id"]),
        ),
    ] {
        let response = app
            .as_user(method, &path, "otto", "otto-password")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "transfer_not_found").await;
    }
    let nina: Vec<Value> = app
        .as_user(Method::GET, "/api/v1/transfers", "nina", "nina-password")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nina.len(), 1);
    let all: Vec<Value> = app
        .admin(Method::GET, "/api/v1/transfers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[actix_web::test]
async fn the_connection_filter_lists_transfers_reading_or_writing_that_connection() {
    let app = spawn_app().await;
    let (schema, a) = pg_schema_and_connection(&app, "connfilter").await;
    let b = app
        .create_connection(pg_connection(&format!("b-{schema}"), "test"))
        .await;
    let c = app
        .create_connection(pg_connection(&format!("c-{schema}"), "test"))
        .await;
    let mut ids = Vec::new();
    for (i, (source, target)) in [(&a, &b), (&b, &c), (&c, &c)].into_iter().enumerate() {
        let t = app
            .submit_transfer(json!({
                "sourceId": source["id"], "targetId": target["id"],
                "query": "SELECT 1 AS x", "targetSchema": schema, "targetTable": format!("t{i}")
            }))
            .await;
        let done = app.wait_transfer(&t["id"], 30).await;
        assert_eq!(done["status"], "complete", "{done}");
        ids.push(t["id"].as_i64().unwrap());
    }
    let (a, b, c) = (&a["id"], &b["id"], &c["id"]);
    assert_eq!(
        app.listed_ids(&format!("/api/v1/transfers?connection={a}"))
            .await,
        vec![ids[0]]
    );
    assert_eq!(
        app.listed_ids(&format!("/api/v1/transfers?connection={b}&sort=id"))
            .await,
        vec![ids[0], ids[1]]
    );
    assert_eq!(
        app.listed_ids(&format!("/api/v1/transfers?connection={c}&sort=id"))
            .await,
        vec![ids[1], ids[2]]
    );
    // With the status filter, and with a connection nothing used.
    assert_eq!(
        app.listed_ids(&format!(
            "/api/v1/transfers?connection={c}&status=complete&sort=id"
        ))
        .await,
        vec![ids[1], ids[2]]
    );
    assert!(app
        .listed_ids(&format!("/api/v1/transfers?connection={c}&status=error"))
        .await
        .is_empty());
    assert!(app
        .listed_ids("/api/v1/transfers?connection=9999")
        .await
        .is_empty());
    let total = app
        .admin(Method::GET, &format!("/api/v1/transfers?connection={b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(total.headers()["x-total-count"], "2");
    for bad in ["abc", "0", "-3", "1.5", ""] {
        let response = app
            .admin(Method::GET, &format!("/api/v1/transfers?connection={bad}"))
            .send()
            .await
            .unwrap();
        let error =
            assert_error(response, StatusCode::BAD_REQUEST, "invalid_query_parameter").await;
        assert!(
            error["detail"].as_str().unwrap().contains("connection"),
            "{error}"
        );
    }
}
