//! Link faults between Sluice and its databases (through `relay::Relay`) and transfers racing
//! for one table: a lost answer to the statement that commits never duplicates rows nor fails
//! a job that committed; a link that stops answering ends the job, and cancel stops it at once;
//! concurrent transfers into one new table all land.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    mariadb_conn, mariadb_connection, mariadb_execute, paced_query, pg_client, pg_connection,
    pg_execute, spawn_app, spawn_app_with, unique_name, Backend, TestApp, MARIADB_HOST,
    MARIADB_PORT, PG_HOST, PG_PORT,
};
use crate::relay::Relay;

/// `rows` generated rows (id, md5 text) on PostgreSQL.
fn generated(rows: i64) -> String {
    format!("SELECT g AS id, md5(g::text) AS label FROM generate_series(1, {rows}) g")
}

/// Rows of a MariaDB table.
async fn mariadb_count(db: &str, table: &str) -> i64 {
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    let n: Option<i64> = conn
        .query_first(format!("SELECT COUNT(*) FROM `{db}`.`{table}`"))
        .await
        .unwrap();
    conn.disconnect().await.ok();
    n.unwrap()
}

/// The tables of a MariaDB database.
async fn mariadb_tables(db: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    let mut tables: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (db,),
        )
        .await
        .unwrap();
    conn.disconnect().await.ok();
    tables.sort();
    tables
}

/// A connection body whose server is reached through `relay` (plain TCP, so the relay sees
/// the statements).
fn through(mut body: Value, relay: &Relay) -> Value {
    body["host"] = json!("127.0.0.1");
    body["port"] = json!(relay.port());
    body["options"] = json!({"sslMode": "disable"});
    body
}

/// A fresh MariaDB database `label`, a PostgreSQL source and the database as a target reached
/// through a relay.
async fn mariadb_target_behind_relay(app: &TestApp, label: &str) -> (Relay, String, Value, Value) {
    let relay = Relay::start(&format!("{MARIADB_HOST}:{MARIADB_PORT}")).await;
    let db = unique_name(label);
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    let source = app.create_connection(pg_connection("source", "test")).await;
    let target = app
        .create_connection(through(mariadb_connection("target", &db), &relay))
        .await;
    (relay, db, source, target)
}

/// Wait until the transfer has written something.
async fn wait_for_rows(app: &TestApp, id: &Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = app.transfer(id).await;
        if t["rowsWritten"].as_i64().unwrap_or(0) > 0 {
            return;
        }
        assert!(
            ["queued", "running"].contains(&t["status"].as_str().unwrap()),
            "{t}"
        );
        assert!(Instant::now() < deadline, "no rows after 30 s: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_lost_reply_to_commit_on_postgresql(max_retries: u32) {
    let app = spawn_app_with(Backend::Sqlite, |s| s.jobs.max_retries = max_retries).await;
    let relay = Relay::start(&format!("{PG_HOST}:{PG_PORT}")).await;
    let schema = unique_name("lost_commit");
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let source = app.create_connection(pg_connection("source", "test")).await;
    let target = app
        .create_connection(through(pg_connection("target", "test"), &relay))
        .await;
    relay.cut_after(b"COMMIT");
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": generated(300_000),
            "targetSchema": schema, "targetTable": "copied"
        }))
        .await;
    let done = app.wait_transfer(&transfer["id"], 120).await;
    assert_eq!(relay.cuts(), 1, "the link was cut after COMMIT");
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 300_000, "{done}");
    assert_eq!(done["attempts"], 1, "not retried: {done}");
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT id) FROM {schema}.copied"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (300_000, 300_000)
    );

    // An overwrite's swap is in the same transaction: the same holds.
    relay.cut_after(b"COMMIT");
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": generated(1_000),
            "targetSchema": schema, "targetTable": "copied", "overwrite": true
        }))
        .await;
    let done = app.wait_transfer(&transfer["id"], 60).await;
    assert_eq!(relay.cuts(), 2);
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {schema}.copied"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1_000);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn a_lost_reply_to_commit_on_postgresql_completes_once_without_retrying() {
    a_lost_reply_to_commit_on_postgresql(2).await;
}

#[actix_web::test]
async fn a_lost_reply_to_commit_on_postgresql_is_complete_even_with_retries_off() {
    a_lost_reply_to_commit_on_postgresql(0).await;
}

#[actix_web::test]
async fn a_lost_reply_to_commit_of_a_mariadb_append_adds_the_rows_once() {
    let app = spawn_app().await;
    let relay = Relay::start(&format!("{MARIADB_HOST}:{MARIADB_PORT}")).await;
    let db = unique_name("lost_commit");
    mariadb_execute(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id BIGINT, label VARCHAR(32));
         INSERT INTO {db}.t VALUES (-1,'a'),(-2,'b'),(-3,'c'),(-4,'d'),(-5,'e'),(-6,'f'),
           (-7,'g'),(-8,'h'),(-9,'i'),(-10,'j')"
    ))
    .await;
    let source = app.create_connection(pg_connection("source", "test")).await;
    let target = app
        .create_connection(through(mariadb_connection("target", &db), &relay))
        .await;
    relay.cut_after(b"COMMIT");
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": generated(300_000),
            "targetTable": "t"
        }))
        .await;
    let done = app.wait_transfer(&transfer["id"], 120).await;
    assert_eq!(relay.cuts(), 1, "the link was cut after COMMIT");
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["rowsWritten"], 300_000, "{done}");
    assert_eq!(mariadb_count(&db, "t").await, 300_010);
    // The bookkeeping row is gone again.
    assert_eq!(mariadb_count(&db, "_sluice_commits").await, 0);
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn a_lost_reply_to_the_rename_that_commits_a_mariadb_table_is_learned() {
    let app = spawn_app().await;
    let (relay, db, source, target) = mariadb_target_behind_relay(&app, "lost_rename").await;
    // A new table, then an overwrite of it: each is committed by its RENAME.
    for (rows, overwrite) in [(50_000, false), (2_000, true)] {
        relay.cut_after(b"RENAME TABLE");
        let transfer = app
            .submit_transfer(json!({
                "sourceId": source["id"], "targetId": target["id"], "query": generated(rows),
                "targetTable": "t", "overwrite": overwrite
            }))
            .await;
        let done = app.wait_transfer(&transfer["id"], 120).await;
        assert_eq!(done["status"], "complete", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
        assert_eq!(mariadb_count(&db, "t").await, rows);
        // No staging or replaced table is left behind.
        assert_eq!(mariadb_tables(&db).await, vec!["t".to_string()]);
    }
    assert_eq!(relay.cuts(), 2);
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn a_lost_reply_to_a_staging_tables_commit_retries_onto_an_untouched_target() {
    let app = spawn_app().await;
    let (relay, db, source, target) = mariadb_target_behind_relay(&app, "lost_staging").await;
    relay.cut_after(b"COMMIT");
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": generated(20_000),
            "targetTable": "fresh"
        }))
        .await;
    let done = app.wait_transfer(&transfer["id"], 120).await;
    assert_eq!(relay.cuts(), 1);
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        done["attempts"], 2,
        "the first attempt's staging load was not visible: {done}"
    );
    assert_eq!(mariadb_count(&db, "fresh").await, 20_000);
    assert_eq!(mariadb_tables(&db).await, vec!["fresh".to_string()]);
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

/// A transfer from `source_kind` ("postgresql" or "mariadb") through a relay, black-holed
/// once rows flow.
async fn black_holed_source(app: &TestApp, relay: &Relay, source_kind: &str) -> (Value, String) {
    let schema = unique_name("black_hole");
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let (source_body, query) = if source_kind == "postgresql" {
        (pg_connection("source", "test"), paced_query(2_000_000, 0.2))
    } else {
        (
            mariadb_connection("source", "test"),
            // MariaDB's sequence engine: far more rows than the test waits for.
            "SELECT seq AS id FROM seq_1_to_100000000".to_string(),
        )
    };
    let source = app.create_connection(through(source_body, relay)).await;
    let target = app.create_connection(pg_connection("target", "test")).await;
    let transfer = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": query,
            "targetSchema": schema, "targetTable": "t"
        }))
        .await;
    wait_for_rows(app, &transfer["id"]).await;
    relay.blackhole();
    (transfer, schema)
}

async fn a_source_link_that_stops_answering_fails_the_job(kind: &str, upstream: &str) {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.engine.io_timeout_secs = 2;
        s.engine.connect_timeout_secs = 2;
        s.jobs.max_retries = 1;
        s.jobs.retry_backoff_ms = 100;
    })
    .await;
    let relay = Relay::start(upstream).await;
    let (transfer, schema) = black_holed_source(&app, &relay, kind).await;
    let started = Instant::now();
    let done = app.wait_transfer(&transfer["id"], 30).await;
    // 2 s without data, then one retry that cannot connect within 2 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert!(
        ["io_timeout", "timeout"].contains(&done["errorCode"].as_str().unwrap()),
        "{done}"
    );
    // Nothing was committed.
    let tables: i64 = pg_client("test")
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn a_postgresql_source_link_that_stops_answering_fails_the_job_after_the_io_timeout() {
    a_source_link_that_stops_answering_fails_the_job("postgresql", &format!("{PG_HOST}:{PG_PORT}"))
        .await;
}

#[actix_web::test]
async fn a_mariadb_source_link_that_stops_answering_fails_the_job_after_the_io_timeout() {
    a_source_link_that_stops_answering_fails_the_job(
        "mariadb",
        &format!("{MARIADB_HOST}:{MARIADB_PORT}"),
    )
    .await;
}

async fn cancel_stops_a_job_whose_source_link_stopped_answering(kind: &str, upstream: &str) {
    // The default I/O timeout (10 minutes): only the cancel can end this job.
    let app = spawn_app().await;
    let relay = Relay::start(upstream).await;
    let (transfer, schema) = black_holed_source(&app, &relay, kind).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = app
        .admin(
            Method::PATCH,
            &format!("/api/v1/cancel-transfer/{}", transfer["id"]),
        )
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert!(elapsed < Duration::from_secs(2), "cancel took {elapsed:?}");
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn cancel_stops_a_job_within_two_seconds_when_its_postgresql_source_stops_answering() {
    cancel_stops_a_job_whose_source_link_stopped_answering(
        "postgresql",
        &format!("{PG_HOST}:{PG_PORT}"),
    )
    .await;
}

#[actix_web::test]
async fn cancel_stops_a_job_within_two_seconds_when_its_mariadb_source_stops_answering() {
    cancel_stops_a_job_whose_source_link_stopped_answering(
        "mariadb",
        &format!("{MARIADB_HOST}:{MARIADB_PORT}"),
    )
    .await;
}

/// Submit `n` transfers at once into `table` of `target`; job k writes 500 rows tagged k.
async fn submit_at_once(
    app: &TestApp,
    source: &Value,
    target: &Value,
    schema: Option<&str>,
    n: usize,
    overwrite: bool,
) -> Vec<Value> {
    let submits = (0..n).map(|k| {
        let mut body = json!({
            "sourceId": source["id"], "targetId": target["id"],
            "query": format!("SELECT g AS id, {k} AS job FROM generate_series(1, 500) g"),
            "targetTable": "shared", "overwrite": overwrite
        });
        if let Some(schema) = schema {
            body["targetSchema"] = json!(schema);
        }
        async move { app.submit_transfer(body).await }
    });
    let submitted = futures_util::future::join_all(submits).await;
    let mut done = Vec::new();
    for t in submitted {
        done.push(app.wait_transfer(&t["id"], 120).await);
    }
    for t in &done {
        assert_eq!(t["status"], "complete", "{t}");
    }
    done
}

#[actix_web::test]
async fn concurrent_transfers_into_one_new_postgresql_table_all_land() {
    let app = spawn_app().await;
    let source = app.create_connection(pg_connection("source", "test")).await;
    let target = app.create_connection(pg_connection("target", "test")).await;
    // A schema that does not exist yet either.
    let schema = unique_name("race");
    submit_at_once(&app, &source, &target, Some(&schema), 8, false).await;
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT job) FROM {schema}.shared"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (4_000, 8));

    submit_at_once(&app, &source, &target, Some(&schema), 4, true).await;
    let row = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT job) FROM {schema}.shared"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (500, 1));
    let leftovers: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename <> 'shared'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn concurrent_transfers_into_one_new_mariadb_table_all_land() {
    let app = spawn_app().await;
    let db = unique_name("race");
    let source = app.create_connection(pg_connection("source", "test")).await;
    // Into a database that does not exist yet either.
    let target = app
        .create_connection(mariadb_connection("target", "test"))
        .await;
    submit_at_once(&app, &source, &target, Some(&db), 8, false).await;
    assert_eq!(mariadb_count(&db, "shared").await, 4_000);
    submit_at_once(&app, &source, &target, Some(&db), 4, true).await;
    assert_eq!(mariadb_count(&db, "shared").await, 500);
    let tables = mariadb_tables(&db).await;
    assert_eq!(
        tables,
        vec!["_sluice_commits".to_string(), "shared".to_string()]
    );
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn concurrent_transfers_into_one_new_sqlite_table_all_land() {
    let app = spawn_app().await;
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("race")));
    let source = app.create_connection(pg_connection("source", "test")).await;
    let target = app
        .create_connection(json!({"name": "lite", "type": "sqlite", "path": path}))
        .await;
    submit_at_once(&app, &source, &target, None, 8, false).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM shared"), 4_000);
    assert_eq!(count("SELECT count(DISTINCT job) FROM shared"), 8);
    submit_at_once(&app, &source, &target, None, 4, true).await;
    assert_eq!(count("SELECT count(*) FROM shared"), 500);
    assert_eq!(count("SELECT count(DISTINCT job) FROM shared"), 1);
    // Only the table: no staging table, no bookkeeping left.
    assert_eq!(
        count("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"),
        1
    );
    std::fs::remove_file(&path).ok();
}
