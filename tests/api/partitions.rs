//! Partitioned reads (`partitionColumn` + `partitions`) through the HTTP API: the same rows as
//! one stream from every source kind, validation, one failing partition, and cancel. Targets
//! are PostgreSQL, where the result is checked by count, types and a checksum.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    active_pg_queries_with, assert_error, mariadb_connection, mariadb_execute, pg_client,
    pg_connection, pg_count, pg_execute, pg_schema_and_connection, spawn_app, spawn_app_with,
    unique_name, TestApp,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dialect {
    Postgres,
    MariaDb,
    Sqlite,
}

const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::MariaDb, Dialect::Sqlite];

const ROWS: i64 = 50_000;
/// Rows whose partition column `k` is NULL (every 97th).
const NULL_KEYS: i64 = ROWS / 97;

/// A source holding `src (id, k, label)`: 50,000 rows; `k` is NULL on every 97th row, equal to
/// `id` up to 45,000 and `id * 1000` above, so the value ranges are very unevenly filled (the
/// middle ones are empty). Returns the connection and the table's qualified name.
async fn source(app: &TestApp, dialect: Dialect) -> (Value, String) {
    let name = unique_name("part_src");
    let key = "CASE WHEN {n} % 97 = 0 THEN NULL WHEN {n} <= 45000 THEN {n} ELSE {n} * 1000 END";
    match dialect {
        Dialect::Postgres => {
            pg_execute(
                "test",
                &format!(
                    "CREATE SCHEMA {name};
                     CREATE TABLE {name}.src (id bigint PRIMARY KEY, k bigint, label text);
                     INSERT INTO {name}.src SELECT g, {}, 'row-' || g
                     FROM generate_series(1, {ROWS}) g;",
                    key.replace("{n}", "g::bigint")
                ),
            )
            .await;
            let connection = app.create_connection(pg_connection(&name, "test")).await;
            (connection, format!("{name}.src"))
        }
        Dialect::MariaDb => {
            mariadb_execute(&format!(
                "CREATE DATABASE {name};
                 USE {name};
                 CREATE TABLE {name}.src (id BIGINT PRIMARY KEY, k BIGINT NULL, label VARCHAR(20));
                 INSERT INTO {name}.src SELECT seq, {}, CONCAT('row-', seq) FROM seq_1_to_{ROWS};",
                key.replace("{n}", "CAST(seq AS SIGNED)")
            ))
            .await;
            let connection = app
                .create_connection(mariadb_connection(&name, &name))
                .await;
            (connection, "src".into())
        }
        Dialect::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE src (id INTEGER PRIMARY KEY, k INTEGER, label TEXT);
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS})
                 INSERT INTO src SELECT x, {}, 'row-' || x FROM c;",
                key.replace("{n}", "x")
            ))
            .unwrap();
            let connection = app
                .create_connection(json!({"name": name, "type": "sqlite", "path": path}))
                .await;
            (connection, "src".into())
        }
    }
}

/// Count, non-NULL keys, key sum and an ordered checksum of a target table.
async fn fingerprint(schema: &str, table: &str) -> (i64, i64, String, String) {
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), count(k), coalesce(sum(k), 0)::text,
                        coalesce(md5(string_agg(
                            concat_ws('|', id, coalesce(k::text, '-'), label), ',' ORDER BY id
                        )), '')
                 FROM {schema}.{table}"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

/// The table's columns as PostgreSQL describes them.
async fn columns(schema: &str, table: &str) -> Vec<(String, String, String)> {
    let client = pg_client("test").await;
    client
        .query(
            "SELECT column_name::text, data_type::text, is_nullable::text
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
             ORDER BY ordinal_position",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn table_exists(schema: &str, table: &str) -> bool {
    let client = pg_client("test").await;
    client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

async fn run(app: &TestApp, body: Value) -> Value {
    let t = app.submit_transfer(body).await;
    app.wait_transfer(&t["id"], 120).await
}

#[actix_web::test]
async fn a_partitioned_transfer_writes_exactly_the_rows_of_one_stream_from_every_source() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    for dialect in ALL {
        let (src, table) = source(&app, dialect).await;
        let query = format!("SELECT id, k, label FROM {table}");
        let plain_table = format!("plain_{dialect:?}").to_lowercase();
        let parted_table = format!("parted_{dialect:?}").to_lowercase();
        let plain = run(
            &app,
            json!({"sourceId": src["id"], "targetId": pg["id"], "query": query,
                   "targetSchema": schema, "targetTable": plain_table}),
        )
        .await;
        assert_eq!(plain["status"], "complete", "{dialect:?}: {plain}");
        assert!(plain["partitionColumn"].is_null(), "{plain}");
        assert!(plain["partitions"].is_null(), "{plain}");
        let parted = run(
            &app,
            json!({"sourceId": src["id"], "targetId": pg["id"], "query": query,
                   "targetSchema": schema, "targetTable": parted_table,
                   "partitionColumn": "k", "partitions": 4}),
        )
        .await;
        assert_eq!(parted["status"], "complete", "{dialect:?}: {parted}");
        assert_eq!(parted["partitionColumn"], "k");
        assert_eq!(parted["partitions"], 4);
        assert_eq!(parted["rowsWritten"], ROWS, "{dialect:?}: {parted}");
        // Progress sums over the partitions: the same bytes as one stream read.
        assert_eq!(
            parted["bytesRead"], plain["bytesRead"],
            "{dialect:?}: {parted} / {plain}"
        );

        let expected = fingerprint(&schema, &plain_table).await;
        assert_eq!(expected.0, ROWS, "{dialect:?}");
        assert_eq!(expected.1, ROWS - NULL_KEYS, "{dialect:?}");
        assert_eq!(
            fingerprint(&schema, &parted_table).await,
            expected,
            "{dialect:?}"
        );
        assert_eq!(
            columns(&schema, &parted_table).await,
            columns(&schema, &plain_table).await,
            "{dialect:?}"
        );
    }
}

#[actix_web::test]
async fn partitioning_on_the_primary_key_into_uneven_counts_keeps_every_row_once() {
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, |s| s.jobs.batch_rows = 777).await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    let (src, table) = source(&app, Dialect::Postgres).await;
    let query = format!("SELECT id, k, label FROM {table} WHERE id % 3 <> 0;");
    let plain = run(
        &app,
        json!({"sourceId": src["id"], "targetId": pg["id"], "query": query,
               "targetSchema": schema, "targetTable": "plain"}),
    )
    .await;
    assert_eq!(plain["status"], "complete", "{plain}");
    // 32 ranges, a small batch size, a trailing semicolon and a differently spelled column.
    for (partitions, table) in [(32, "p32"), (7, "p7"), (1, "p1")] {
        let t = run(
            &app,
            json!({"sourceId": src["id"], "targetId": pg["id"], "query": query,
                   "targetSchema": schema, "targetTable": table,
                   "partitionColumn": "ID", "partitions": partitions}),
        )
        .await;
        assert_eq!(t["status"], "complete", "{t}");
        assert_eq!(t["rowsWritten"], plain["rowsWritten"], "{t}");
        assert_eq!(
            fingerprint(&schema, table).await,
            fingerprint(&schema, "plain").await
        );
    }
}

#[actix_web::test]
async fn an_empty_source_or_a_column_of_only_nulls_still_transfers_in_one_stream() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    for dialect in ALL {
        let (src, table) = source(&app, dialect).await;
        let empty = format!("empty_{dialect:?}").to_lowercase();
        let t = run(
            &app,
            json!({"sourceId": src["id"], "targetId": pg["id"],
                   "query": format!("SELECT id, k, label FROM {table} WHERE id < 0"),
                   "targetSchema": schema, "targetTable": empty,
                   "partitionColumn": "k", "partitions": 4}),
        )
        .await;
        assert_eq!(t["status"], "complete", "{dialect:?}: {t}");
        assert_eq!(t["rowsWritten"], 0);
        assert!(table_exists(&schema, &empty).await, "{dialect:?}");
        assert_eq!(fingerprint(&schema, &empty).await.0, 0);

        let nulls = format!("nulls_{dialect:?}").to_lowercase();
        let t = run(
            &app,
            json!({"sourceId": src["id"], "targetId": pg["id"],
                   "query": format!("SELECT id, k, label FROM {table} WHERE k IS NULL"),
                   "targetSchema": schema, "targetTable": nulls,
                   "partitionColumn": "k", "partitions": 4}),
        )
        .await;
        assert_eq!(t["status"], "complete", "{dialect:?}: {t}");
        assert_eq!(t["rowsWritten"], NULL_KEYS, "{dialect:?}: {t}");
        assert_eq!(fingerprint(&schema, &nulls).await.0, NULL_KEYS);
    }
}

#[actix_web::test]
async fn partitioning_settings_are_checked_before_the_transfer_is_queued() {
    let app = spawn_app().await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    let base = json!({"sourceId": pg["id"], "targetId": pg["id"],
                      "query": "SELECT 1 AS id", "targetTable": "t"});
    let cases = [
        (
            json!({"partitions": 4}),
            "partitioning_incomplete",
            "partitionColumn",
        ),
        (
            json!({"partitionColumn": "id"}),
            "partitioning_incomplete",
            "partitions",
        ),
        (
            json!({"partitionColumn": "id", "partitions": 0}),
            "invalid_partitions",
            "partitions",
        ),
        (
            json!({"partitionColumn": "id", "partitions": 33}),
            "invalid_partitions",
            "partitions",
        ),
        (
            json!({"partitionColumn": "id", "partitions": 2.5}),
            "invalid_partitions",
            "partitions",
        ),
        (
            json!({"partitionColumn": "id", "partitions": "4"}),
            "invalid_partitions",
            "partitions",
        ),
    ];
    for (extra, code, field) in cases {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = app
            .admin(Method::POST, "/api/v1/transfers")
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    // Nothing was queued.
    let list: Value = app
        .admin(Method::GET, "/api/v1/transfers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
}

#[actix_web::test]
async fn a_partition_column_that_is_missing_or_not_an_integer_fails_the_job_before_writing() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    for dialect in ALL {
        let (src, table) = source(&app, dialect).await;
        for (column, words) in [("label", "integer"), ("nope", "not a column")] {
            let t = run(
                &app,
                json!({"sourceId": src["id"], "targetId": pg["id"],
                       "query": format!("SELECT id, k, label FROM {table}"),
                       "targetSchema": schema, "targetTable": "never",
                       "partitionColumn": column, "partitions": 4}),
            )
            .await;
            assert_eq!(t["status"], "error", "{dialect:?}: {t}");
            let error = t["error"].as_str().unwrap();
            assert!(
                error.contains(&format!("{column:?}")) && error.contains(words),
                "{dialect:?}: {error}"
            );
            assert!(!table_exists(&schema, "never").await);
        }
    }
}

#[actix_web::test]
async fn one_failing_partition_leaves_the_target_untouched_whatever_the_source() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    pg_execute(
        "test",
        &format!("CREATE TABLE {schema}.dst (id bigint, x bigint); INSERT INTO {schema}.dst VALUES (7, 7);"),
    )
    .await;
    for dialect in ALL {
        let (src, table) = source(&app, dialect).await;
        // Only the row with id 40,000 (in the last of four ranges of id) fails, on the server.
        let (x, words) = match dialect {
            Dialect::Postgres => ("1 / (id - 40000)", "division by zero"),
            Dialect::MariaDb => (
                "IF(id = 40000, (SELECT 1 UNION ALL SELECT 2), id)",
                "more than 1 row",
            ),
            Dialect::Sqlite => (
                "abs(CASE WHEN id = 40000 THEN -9223372036854775807 - 1 ELSE id END)",
                "overflow",
            ),
        };
        let query = format!("SELECT id, {x} AS x FROM {table}");
        for (target_table, overwrite) in [("dst", false), ("dst", true), ("fresh", false)] {
            let t = run(
                &app,
                json!({"sourceId": src["id"], "targetId": pg["id"], "query": query,
                       "targetSchema": schema, "targetTable": target_table,
                       "overwrite": overwrite, "partitionColumn": "id", "partitions": 4}),
            )
            .await;
            assert_eq!(t["status"], "error", "{dialect:?}: {t}");
            assert!(
                t["error"].as_str().unwrap().contains(words),
                "{dialect:?}: {t}"
            );
            assert_eq!(t["rowsWritten"], 0, "{t}");
            let client = pg_client("test").await;
            let rows: Vec<(i64, i64)> = client
                .query(&format!("SELECT id, x FROM {schema}.dst"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            assert_eq!(rows, vec![(7, 7)], "{dialect:?}");
            assert!(!table_exists(&schema, "fresh").await, "{dialect:?}");
        }
    }
}

#[actix_web::test]
async fn cancelling_a_partitioned_transfer_stops_every_partition_and_writes_nothing() {
    let app = spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.jobs.batch_rows = 1000
    })
    .await;
    let (schema, pg) = pg_schema_and_connection(&app, "part_dst").await;
    // Reading a row costs half a millisecond, but min/max uses the index and stays quick.
    pg_execute(
        "test",
        &format!(
            "CREATE TABLE {schema}.big (id bigint PRIMARY KEY);
             INSERT INTO {schema}.big SELECT generate_series(1, 200000);
             CREATE FUNCTION {schema}.slow(bigint) RETURNS boolean LANGUAGE sql VOLATILE
               AS $$ SELECT true FROM pg_sleep(0.0005) $$;
             CREATE TABLE {schema}.dst (id bigint); INSERT INTO {schema}.dst VALUES (7);"
        ),
    )
    .await;
    let marker = unique_name("marker");
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": format!("SELECT id FROM {schema}.big WHERE {schema}.slow(id) /* {marker} */"),
            "targetSchema": schema, "targetTable": "dst",
            "partitionColumn": "id", "partitions": 4
        }))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = app.transfer(&t["id"]).await;
        if now["status"] == "running" && now["rowsWritten"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never started: {now}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Each of the four ranges is read by its own query on the server.
    assert_eq!(active_pg_queries_with(&marker, 4).await, 4);
    let response = app
        .admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", t["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["rowsWritten"], 0, "{cancelled}");
    assert_eq!(
        active_pg_queries_with(&marker, 0).await,
        0,
        "a partition's query is still running"
    );
    assert_eq!(pg_count(&schema, "dst").await, 1);
}

#[actix_web::test]
async fn the_transfer_command_reads_in_partitions_and_wants_both_options() {
    let schema = unique_name("part_cli");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.src AS SELECT g AS id, 'row ' || g AS label
             FROM generate_series(1, 2500) g;"
        ),
    )
    .await;
    let sluice = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .env(
                "SLUICE_CONFIG_DIR",
                std::env::temp_dir().join(unique_name("noconfig")),
            )
            .env_remove("SLUICE_ENV")
            .args([
                "transfer",
                "--source",
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "--target",
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "--query",
                &format!("SELECT * FROM {schema}.src"),
                "--schema",
                &schema,
                "--table",
                "copy",
            ]);
        command
    };
    let output = sluice()
        .args(["--partition-column", "id", "--partitions", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Done: 2500 rows written"), "{stderr}");
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!("SELECT count(*), sum(id), count(DISTINCT id) FROM {schema}.copy"),
            &[],
        )
        .await
        .unwrap();
    let (n, sum, distinct): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((n, sum, distinct), (2500, 2500 * 2501 / 2, 2500));

    let output = sluice().args(["--partitions", "3"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--partition-column"), "{stderr}");
}
