//! PostgreSQL → PostgreSQL transfers whose columns are all built-in types pass the binary COPY
//! tuples through without decoding them (src/engine/postgres/passthrough.rs). Through the API:
//! exact values of awkward built-in types in create, append and overwrite; the fallback to the
//! decoding path when a column is user-defined; progress and counts of a large transfer.

use crate::helpers::{
    pg_cells, pg_client, pg_column_types, pg_execute, pg_schema_and_connection, spawn_app,
};
use serde_json::{json, Value};

/// A table of built-in types whose values the decoding path cannot all carry (NaN in a
/// constrained numeric) or that only survive bit for bit (array bounds, json spacing).
async fn create_awkward_table(schema: &str) {
    pg_execute(
        "test",
        &format!(
            "CREATE TABLE {schema}.src (
               id integer NOT NULL, amount numeric(10,2), n numeric, f8 double precision,
               f4 real, ts timestamp(3), tz timestamptz, d date, iv interval,
               ints integer[], texts text[], j json, jb jsonb, bits bit(3), vb varbit,
               ip inet, net cidr, mac macaddr, pt point, money money, words tsvector,
               c char(3), v varchar(5) NOT NULL, b bytea, u uuid, r int4range, tm time,
               tt timetz, flag boolean, big bigint, small smallint, x xml);
             INSERT INTO {schema}.src VALUES
             (1, 'NaN', '-0.000100', '-0', 'NaN', 'infinity', '-infinity', 'infinity',
              '1 year 2 mons -3 days 04:05:06.5', '[0:1]={{1,NULL}}', '{{\"a b\",\"\",NULL}}',
              '{{\"k\" :  1, \"k\": 2}}', '{{\"z\": [1, 2.50]}}', B'101', B'1',
              '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)', '-12.34',
              'fat cat:2', 'ab', 'héllo', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
              '[3,7)', '24:00:00', '12:00:00+05:30', true, -9223372036854775808, -32768,
              '<a>é</a>'),
             (2, '12345678.99', 'Infinity', '1.7976931348623157e308', '-Infinity',
              '1999-12-31 23:59:59.999', '2024-02-29 12:00:00+00', '-infinity',
              '-178000000 years', '{{}}', '{{}}', '[]', 'null', B'000', B'', '::1', '::/0',
              'ff:ff:ff:ff:ff:ff', '(0,0)', '0', '', '   ', '', '', NULL, 'empty', '00:00:00',
              '00:00:00-15:59', false, 9223372036854775807, 32767, ''),
             (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'x', NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, NULL, NULL)"
        ),
    )
    .await;
}

async fn run_transfer(app: &crate::helpers::TestApp, body: Value) -> Value {
    let t = app.submit_transfer(body).await;
    app.wait_transfer(&t["id"], 60).await
}

#[actix_web::test]
async fn built_in_types_arrive_byte_for_byte_when_created_appended_and_overwritten() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "pass_types").await;
    create_awkward_table(&schema).await;
    let client = pg_client("test").await;
    let source_rows = pg_cells(
        &client,
        &format!("SELECT whole::text FROM {schema}.src whole ORDER BY id"),
    )
    .await;
    assert_eq!(source_rows.len(), 3);

    let body = |overwrite: bool| {
        json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": format!("SELECT * FROM {schema}.src"),
            "targetSchema": schema, "targetTable": "dst", "overwrite": overwrite
        })
    };
    // Created.
    let done = run_transfer(&app, body(false)).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 3, "{done}");
    // The source's own types, exactly (a timestamp's precision too), and NOT NULL.
    let source_types = pg_column_types(&client, &schema, "src").await;
    assert_eq!(pg_column_types(&client, &schema, "dst").await, source_types);
    let target_sql = format!("SELECT whole::text FROM {schema}.dst whole ORDER BY id");
    assert_eq!(pg_cells(&client, &target_sql).await, source_rows);
    // The NaN of numeric(10,2), the array's lower bound and the json's own spacing are there.
    let witnesses = pg_cells(
        &client,
        &format!("SELECT amount::text, array_lower(ints, 1)::text, j::text, d::text FROM {schema}.dst WHERE id = 1"),
    )
    .await;
    assert_eq!(
        witnesses,
        vec![vec![
            Some("NaN".into()),
            Some("0".into()),
            Some("{\"k\" :  1, \"k\": 2}".into()),
            Some("infinity".into())
        ]]
    );

    // Appended into the table that now exists with the same types.
    let done = run_transfer(&app, body(false)).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 3, "{done}");
    let doubled: Vec<Vec<Option<String>>> = source_rows
        .iter()
        .flat_map(|row| [row.clone(), row.clone()])
        .collect();
    assert_eq!(pg_cells(&client, &target_sql).await, doubled);

    // Overwritten: the three rows again, nothing else.
    let done = run_transfer(&app, body(true)).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 3, "{done}");
    assert_eq!(pg_cells(&client, &target_sql).await, source_rows);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn a_user_defined_column_sends_the_whole_result_through_the_decoding_path() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "pass_enum").await;
    pg_execute(
        "test",
        &format!(
            "CREATE TYPE {schema}.mood AS ENUM ('sad', 'happy');
             CREATE TABLE {schema}.src (id integer, amount numeric(10,2), m {schema}.mood);
             INSERT INTO {schema}.src VALUES (1, 1.5, 'happy'), (2, 'NaN', 'sad')"
        ),
    )
    .await;
    // With the enum, every column is decoded: numeric(10,2) travels as a 128-bit decimal,
    // which has no NaN, so row 2 fails (naming it) and no table is left behind.
    let done = run_transfer(
        &app,
        json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": format!("SELECT * FROM {schema}.src ORDER BY id"),
            "targetSchema": schema, "targetTable": "dst"
        }),
    )
    .await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("\"amount\"") && error.contains("row 2") && error.contains("NaN"),
        "{error}"
    );
    let client = pg_client("test").await;
    let left = pg_cells(
        &client,
        &format!("SELECT count(*)::text FROM pg_tables WHERE schemaname = '{schema}'"),
    )
    .await;
    assert_eq!(left, vec![vec![Some("1".into())]], "only src exists");

    // Without the NaN it arrives; the enum as its text.
    pg_execute("test", &format!("DELETE FROM {schema}.src WHERE id = 2")).await;
    let done = run_transfer(
        &app,
        json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": format!("SELECT * FROM {schema}.src"),
            "targetSchema": schema, "targetTable": "dst"
        }),
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        pg_cells(
            &client,
            &format!("SELECT id::text, amount::text, m::text FROM {schema}.dst")
        )
        .await,
        vec![vec![
            Some("1".into()),
            Some("1.50".into()),
            Some("happy".into())
        ]]
    );
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn object_references_arrive_as_names_not_as_another_servers_oids() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "pass_reg").await;
    let done = run_transfer(
        &app,
        json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT 'pg_class'::regclass AS rel, 'integer'::regtype AS ty, \
                      ARRAY['pg_proc'::regclass] AS rels",
            "targetSchema": schema, "targetTable": "dst"
        }),
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    let client = pg_client("test").await;
    assert_eq!(
        pg_cells(&client, &format!("SELECT rel, ty, rels FROM {schema}.dst")).await,
        vec![vec![
            Some("pg_class".into()),
            Some("integer".into()),
            Some("{pg_proc}".into())
        ]]
    );
    let types: Vec<String> = pg_column_types(&client, &schema, "dst")
        .await
        .into_iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(types, vec!["text", "text", "text"]);
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[actix_web::test]
async fn a_large_pass_through_reports_progress_and_writes_exactly_the_source() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "pass_big").await;
    // The source sleeps 0.3 s every 100,000 rows, so the transfer is seen half done.
    let query = "SELECT g AS id, md5(g::text) AS label, g * 0.01 AS amount, \
                 date '2020-01-01' + (g % 1000) AS day FROM generate_series(1, 400000) g \
                 WHERE g % 100000 <> 0 OR pg_sleep(0.3)::text = ''";
    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": query,
            "targetSchema": schema, "targetTable": "dst"
        }))
        .await;
    // Progress is seen while it runs, growing, never past the total.
    let mut seen_progress = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let now = app.transfer(&t["id"]).await;
        if ["complete", "error", "cancelled"].contains(&now["status"].as_str().unwrap()) {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {now}");
        if now["status"] == "running" {
            seen_progress.push(now["rowsWritten"].as_i64().unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 400_000, "{done}");
    assert!(
        seen_progress.iter().any(|&n| n > 0 && n < 400_000),
        "no progress seen half way: {seen_progress:?}"
    );
    assert!(
        seen_progress.iter().all(|&n| (0..=400_000).contains(&n)),
        "{seen_progress:?}"
    );
    assert!(
        seen_progress.windows(2).all(|w| w[0] <= w[1]),
        "{seen_progress:?}"
    );
    let client = pg_client("test").await;
    let source = pg_cells(
        &client,
        &format!(
            "SELECT count(*)::text, md5(string_agg(q::text, ',' ORDER BY id)) FROM ({query}) q"
        ),
    )
    .await;
    let target = pg_cells(
        &client,
        &format!(
            "SELECT count(*)::text, md5(string_agg(q::text, ',' ORDER BY id)) FROM {schema}.dst q"
        ),
    )
    .await;
    assert_eq!(source, target);
    assert_eq!(source[0][0].as_deref(), Some("400000"));
    pg_execute("test", &format!("DROP SCHEMA {schema} CASCADE")).await;
}
