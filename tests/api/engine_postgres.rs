//! The PostgreSQL source and sink through the engine: exact values of every type, table
//! creation, append, overwrite, atomicity, hostile names, cancel, and PostgreSQL into the other
//! dialects' sinks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::engine::batch::{Progress, TargetTable};
use sluice::engine::pipeline::{run_transfer, TransferRequest};
use sluice::engine::EngineError;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    engine_transfer, pg_cells, pg_client, pg_column_types, pg_execute, pg_spec, unique_name,
};

const DB: &str = "test";

async fn table_exists(client: &Client, schema: &str, table: &str) -> bool {
    client
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .is_some()
}

async fn staging_tables_left(client: &Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname LIKE '%\\_\\_sluice\\_%'",
            &[&schema],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect()
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn drop_schemas(schemas: &[&str]) {
    let sql: Vec<String> = schemas
        .iter()
        .map(|s| format!("DROP SCHEMA IF EXISTS {} CASCADE;", q(s)))
        .collect();
    pg_execute(DB, &sql.join("\n")).await;
}

/// A table with one row per edge case: ordinary values, minimums, maximums, all NULL, and
/// special floats / large values / infinities.
async fn create_edge_table(schema: &str) {
    let s = q(schema);
    pg_execute(
        DB,
        &format!(
            r#"
CREATE SCHEMA {s};
CREATE TYPE {s}.mood AS ENUM ('happy', 'sad');
CREATE TABLE {s}.edge (
  id integer NOT NULL,
  b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
  n38 numeric(38,10), nbig numeric, v varchar(20) NOT NULL DEFAULT '', c char(5), t text, by bytea,
  d date, tm time, ts timestamp, tstz timestamptz, u uuid, j json, jb jsonb,
  arr integer[], tarr text[], iv interval, ip inet, m {s}.mood, tstzarr timestamptz[]
);
INSERT INTO {s}.edge VALUES
 (1, true, 1, 2, 3, 1.5, 2.25,
  '1234567890123456789012345678.0123456789', '123456789012345678901234567890.123456789012345',
  'héllo', 'ab', 'שלום עולם 👋🏽 emoji', '\x00ff10',
  '2024-01-31', '13:45:00.123456', '2024-01-31 13:45:00.123456', '2024-01-31 13:45:00.123456+05:30',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"a": {{"b": [1, 2, {{"c": null}}]}}, "d": "é"}}',
  '{{"a": {{"b": [1, 2, {{"c": null}}]}}, "d": "é"}}',
  '{{1,NULL,3}}', '{{"a b","c\"d",NULL,""}}', '1 year 2 mons 3 days 04:05:06.5', '192.168.0.1/24',
  'happy', '{{"2024-01-31 13:45:00+02"}}'),
 (2, false, -32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity',
  '-9999999999999999999999999999.9999999999', '-0.000000000000000000000000000001',
  '', '', '', '\x',
  '0001-01-01', '00:00:00', '0001-01-01 00:00:00', '1969-07-20 20:17:40.5-04:00',
  '00000000-0000-0000-0000-000000000000', '[]', '{{}}', '{{}}', '{{}}', '-1 days -00:00:01', '::1',
  'sad', '{{}}'),
 (3, true, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity',
  '9999999999999999999999999999.9999999999', 'NaN',
  'twenty characters...', 'abcde', 'x', '\xffffffff',
  '9999-12-31', '24:00:00', '9999-12-31 23:59:59.999999', '2100-02-28 23:59:59.999999+14:00',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '"just a string"', 'null', '{{{{1,2}},{{3,4}}}}',
  '{{"עברית"}}', '0', '2001:db8::ff00:42:8329', NULL, NULL),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (5, false, 0, 0, 0, '-0', '-0', '0.0000000001', '-Infinity', 'NUL-free', 'a', repeat('x', 1048576),
  '\x00', 'infinity', '12:00:00', '-infinity', 'infinity', NULL, '1.5e300', '[1.5e300]',
  '{{NULL}}', '{{NULL}}', '-178000000 years', NULL, NULL, NULL),
 (6, true, 0, 0, 0, '1.4e-45', '4.9e-324', '0', '1e-300', 'x', 'x', 'x', '\x00',
  '-infinity', '00:00:00.000001', '1899-12-31 23:59:59.999999', '-infinity', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (7, true, 0, 0, 0, 'NaN', 'NaN', NULL, '0.00', 'x', 'x', 'x', NULL,
  '1582-10-04', '23:59:59.999999', '2038-01-19 03:14:08.000001', '2262-04-11 23:47:16.854776+00',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"#
        ),
    )
    .await;
}

const EDGE_COLUMNS: &str = "id, b, i2, i4, i8, f4, f8, n38, nbig, v, c, t, by, d, tm, ts, tstz, \
                            u, j, jb, arr, tarr, iv, ip, m, tstzarr";

#[actix_web::test]
async fn every_postgresql_type_round_trips_exactly_into_a_new_postgresql_table() {
    let source = unique_name("pg_src");
    let target = unique_name("pg_dst");
    create_edge_table(&source).await;
    let client = pg_client(DB).await;

    let rows = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!("SELECT * FROM {}.edge", q(&source)),
        Some(&target),
        "edge copy",
        false,
    )
    .await
    .expect("the transfer succeeds");
    assert_eq!(rows, 7);

    let read = |schema: &str, table: &str| {
        format!(
            "SELECT {EDGE_COLUMNS} FROM {}.{} ORDER BY id",
            q(schema),
            q(table)
        )
    };
    let expected = pg_cells(&client, &read(&source, "edge")).await;
    let actual = pg_cells(&client, &read(&target, "edge copy")).await;
    assert_eq!(expected.len(), actual.len());
    let names: Vec<&str> = EDGE_COLUMNS.split(", ").collect();
    for (r, (e, a)) in expected.iter().zip(&actual).enumerate() {
        for (c, (ev, av)) in e.iter().zip(a).enumerate() {
            assert_eq!(ev, av, "row {} column {}", r + 1, names[c]);
        }
    }
    // Spot checks of values that are easy to lose.
    assert_eq!(actual[4][5].as_deref(), Some("-0"));
    assert_eq!(actual[5][6].as_deref(), Some("5e-324"));
    assert_eq!(actual[6][5].as_deref(), Some("NaN"));
    assert_eq!(actual[2][8].as_deref(), Some("NaN"));
    assert_eq!(actual[4][11].as_ref().map(|t| t.len()), Some(1_048_576));
    assert_eq!(actual[0][12].as_deref(), Some("\\x00ff10"));
    assert_eq!(actual[1][9].as_deref(), Some(""));
    assert_eq!(actual[3][10], None);
    assert_eq!(actual[4][13].as_deref(), Some("infinity"));

    // The same column types, NOT NULL kept; the enum too, since the target database has it.
    let source_types = pg_column_types(&client, &source, "edge").await;
    let target_types = pg_column_types(&client, &target, "edge copy").await;
    assert_eq!(source_types, target_types);
    drop_schemas(&[&source, &target]).await;
}

#[actix_web::test]
async fn a_zero_row_result_creates_the_table_with_the_source_column_types() {
    let source = unique_name("pg_src");
    create_edge_table(&source).await;
    let client = pg_client(DB).await;
    let table = "empty";
    let rows = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!(
            "SELECT id, b, i2, i4, i8, f4, f8, n38, nbig, v, c, t, by, d, tm, ts, tstz, u, j, jb,
                    arr, iv, 'x'::varchar(7) AS lit, 12.5::numeric(5,1) AS lit_num
             FROM {}.edge WHERE false",
            q(&source)
        ),
        Some(&source),
        table,
        false,
    )
    .await
    .unwrap();
    assert_eq!(rows, 0);
    let types = pg_column_types(&client, &source, table).await;
    let expected = [
        ("id", "integer", true),
        ("b", "boolean", false),
        ("i2", "smallint", false),
        ("i4", "integer", false),
        ("i8", "bigint", false),
        ("f4", "real", false),
        ("f8", "double precision", false),
        ("n38", "numeric(38,10)", false),
        ("nbig", "numeric", false),
        ("v", "character varying(20)", true),
        ("c", "character(5)", false),
        ("t", "text", false),
        ("by", "bytea", false),
        ("d", "date", false),
        ("tm", "time without time zone", false),
        ("ts", "timestamp without time zone", false),
        ("tstz", "timestamp with time zone", false),
        ("u", "uuid", false),
        ("j", "json", false),
        ("jb", "jsonb", false),
        ("arr", "integer[]", false),
        ("iv", "interval", false),
        ("lit", "character varying(7)", false),
        ("lit_num", "numeric(5,1)", false),
    ];
    let actual: Vec<(&str, &str, bool)> = types
        .iter()
        .map(|(n, t, nn)| (n.as_str(), t.as_str(), *nn))
        .collect();
    assert_eq!(actual, expected);
    let count = pg_cells(
        &client,
        &format!("SELECT count(*) FROM {}.{}", q(&source), q(table)),
    )
    .await;
    assert_eq!(count[0][0].as_deref(), Some("0"));
    drop_schemas(&[&source]).await;
}

#[actix_web::test]
async fn appending_matches_columns_by_name_and_keeps_the_existing_rows() {
    let schema = unique_name("pg_app");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.target (
               note varchar(50), extra text DEFAULT 'default', total bigint, id integer NOT NULL,
               price numeric(12,2), seen double precision, doc jsonb);
             INSERT INTO {s}.target (id, note, total) VALUES (1, 'old', 10);"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    // Columns in another order; int4 into bigint, real into double precision, text into
    // varchar and jsonb: all written by COPY directly.
    let rows = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT g AS id, 'new ' || g AS note, (g * 100)::int4 AS total, g::numeric(10,2) / 4 AS price,
                0.5::real AS seen, '{\"k\": 1}'::json AS doc
         FROM generate_series(2, 4) g",
        Some(&schema),
        "target",
        false,
    )
    .await
    .unwrap();
    assert_eq!(rows, 3);
    let got = pg_cells(
        &client,
        &format!("SELECT id, note, extra, total, price, seen, doc FROM {s}.target ORDER BY id"),
    )
    .await;
    let row = |v: [Option<&str>; 7]| v.map(|c| c.map(String::from)).to_vec();
    assert_eq!(
        got,
        vec![
            row([
                Some("1"),
                Some("old"),
                Some("default"),
                Some("10"),
                None,
                None,
                None
            ]),
            row([
                Some("2"),
                Some("new 2"),
                Some("default"),
                Some("200"),
                Some("0.50"),
                Some("0.5"),
                Some("{\"k\": 1}")
            ]),
            row([
                Some("3"),
                Some("new 3"),
                Some("default"),
                Some("300"),
                Some("0.75"),
                Some("0.5"),
                Some("{\"k\": 1}")
            ]),
            row([
                Some("4"),
                Some("new 4"),
                Some("default"),
                Some("400"),
                Some("1.00"),
                Some("0.5"),
                Some("{\"k\": 1}")
            ]),
        ]
    );
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn appending_into_other_column_types_goes_through_postgresql_casts() {
    let schema = unique_name("pg_cast");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TYPE {s}.mood AS ENUM ('happy', 'sad');
             CREATE TABLE {s}.target (id smallint, m {s}.mood, at timestamptz, code varchar(3));
             INSERT INTO {s}.target VALUES (1, 'sad', '2000-01-01 00:00:00+00', 'old');"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    // bigint into smallint, text into an enum, timestamptz kept.
    let rows = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT 2::bigint AS id, 'happy'::text AS m, '2024-01-31 12:00:00+00'::timestamptz AS at,
                'abc'::text AS code",
        Some(&schema),
        "target",
        false,
    )
    .await
    .unwrap();
    assert_eq!(rows, 1);
    let got = pg_cells(
        &client,
        &format!("SELECT id, m, at AT TIME ZONE 'UTC', code FROM {s}.target ORDER BY id"),
    )
    .await;
    assert_eq!(
        got[1],
        vec![
            Some("2".to_string()),
            Some("happy".to_string()),
            Some("2024-01-31 12:00:00".to_string()),
            Some("abc".to_string())
        ]
    );
    // A value the target column cannot hold fails with PostgreSQL's message; nothing changes.
    let before = pg_cells(&client, &format!("SELECT * FROM {s}.target ORDER BY id")).await;
    for query in [
        "SELECT 70000::bigint AS id",
        "SELECT 'angry'::text AS m",
        "SELECT 'abcd'::text AS code",
    ] {
        let err = engine_transfer(
            pg_spec(DB),
            pg_spec(DB),
            query,
            Some(&schema),
            "target",
            false,
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, EngineError::Target { .. }), "{query}: {text}");
        assert!(
            text.contains("out of range")
                || text.contains("invalid input value for enum")
                || text.contains("too long"),
            "{query}: {text}"
        );
        let after = pg_cells(&client, &format!("SELECT * FROM {s}.target ORDER BY id")).await;
        assert_eq!(before, after, "{query}");
    }
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_result_column_the_target_lacks_fails_naming_it_and_writes_nothing() {
    let schema = unique_name("pg_mis");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.target (id integer, name text);
             INSERT INTO {s}.target VALUES (1, 'kept');"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let err = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT 2 AS id, 'x' AS name, 'oops' AS \"Surprise Column\"",
        Some(&schema),
        "target",
        false,
    )
    .await
    .unwrap_err();
    match &err {
        EngineError::Schema(message) => {
            assert!(message.contains("Surprise Column"), "{message}")
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    let got = pg_cells(&client, &format!("SELECT id, name FROM {s}.target")).await;
    assert_eq!(
        got,
        vec![vec![Some("1".to_string()), Some("kept".to_string())]]
    );
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn overwrite_swaps_in_the_new_rows_and_columns_atomically() {
    let schema = unique_name("pg_ovw");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.target (old_col text, other integer);
             INSERT INTO {s}.target VALUES ('a', 1), ('b', 2);"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let rows = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT g AS id, (g * 1.5)::numeric(6,2) AS amount FROM generate_series(1, 2500) g",
        Some(&schema),
        "target",
        true,
    )
    .await
    .unwrap();
    assert_eq!(rows, 2500);
    assert_eq!(
        pg_column_types(&client, &schema, "target").await,
        vec![
            ("id".to_string(), "integer".to_string(), false),
            ("amount".to_string(), "numeric(6,2)".to_string(), false)
        ]
    );
    let got = pg_cells(
        &client,
        &format!("SELECT count(*), sum(id), sum(amount), min(amount)::text FROM {s}.target"),
    )
    .await;
    assert_eq!(
        got[0],
        vec![
            Some("2500".to_string()),
            Some("3126250".to_string()),
            Some("4689375.00".to_string()),
            Some("1.50".to_string())
        ]
    );
    assert!(staging_tables_left(&client, &schema).await.is_empty());
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_failure_in_the_middle_leaves_the_target_unchanged_in_both_modes() {
    let schema = unique_name("pg_fail");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.target (g integer, r integer);
             INSERT INTO {s}.target VALUES (1, 1), (2, 2), (3, 3);"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let before = pg_cells(&client, &format!("SELECT * FROM {s}.target ORDER BY g")).await;
    // Division by zero at row 100,001, after 100 batches have reached the sink.
    let query = "SELECT g, 1 / (g - 100001) AS r FROM generate_series(1, 200000) g";
    for overwrite in [false, true] {
        let err = engine_transfer(
            pg_spec(DB),
            pg_spec(DB),
            query,
            Some(&schema),
            "target",
            overwrite,
        )
        .await
        .unwrap_err();
        match &err {
            EngineError::Source { message, .. } => {
                assert!(message.contains("division by zero"), "{message}")
            }
            other => panic!("expected the source's error, got {other:?}"),
        }
        let after = pg_cells(&client, &format!("SELECT * FROM {s}.target ORDER BY g")).await;
        assert_eq!(before, after, "overwrite={overwrite}");
        assert!(staging_tables_left(&client, &schema).await.is_empty());
    }
    // A new table in a new schema: neither is left behind.
    let fresh = unique_name("pg_fresh");
    let err = engine_transfer(pg_spec(DB), pg_spec(DB), query, Some(&fresh), "t", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    let schema_left = pg_cells(
        &client,
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{fresh}'"),
    )
    .await;
    assert_eq!(schema_left[0][0].as_deref(), Some("0"));
    assert!(!table_exists(&client, &fresh, "t").await);
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn hostile_identifiers_round_trip_without_touching_anything_else() {
    let base = unique_name("h")[..22].to_string();
    let hostile_schema = format!("{base} we\"ird; DROP SCHEMA public; --");
    let canary = unique_name("pg_canary");
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {c};
             CREATE TABLE {c}.students (id integer);
             INSERT INTO {c}.students VALUES (42);",
            c = q(&canary)
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let table = "Robert'); DROP TABLE students;--";
    let query = "SELECT 1 AS \"a\"\"b\", 'x' AS \"semi;colon\", 2 AS \"drop table students\",
                        3 AS \"with space\", 'ünï' AS \"ünïcödé 🚀\", 4 AS \"UPPER\", 5 AS \"select\"";
    for overwrite in [false, false, true] {
        engine_transfer(
            pg_spec(DB),
            pg_spec(DB),
            query,
            Some(&hostile_schema),
            table,
            overwrite,
        )
        .await
        .unwrap();
    }
    let got = pg_cells(
        &client,
        &format!("SELECT * FROM {}.{}", q(&hostile_schema), q(table)),
    )
    .await;
    assert_eq!(
        got,
        vec![vec![
            Some("1".to_string()),
            Some("x".to_string()),
            Some("2".to_string()),
            Some("3".to_string()),
            Some("ünï".to_string()),
            Some("4".to_string()),
            Some("5".to_string())
        ]]
    );
    let names: Vec<String> = pg_column_types(&client, &hostile_schema, table)
        .await
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        names,
        [
            "a\"b",
            "semi;colon",
            "drop table students",
            "with space",
            "ünïcödé 🚀",
            "UPPER",
            "select"
        ]
    );
    // The same names as a source.
    engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!("SELECT * FROM {}.{}", q(&hostile_schema), q(table)),
        Some(&hostile_schema),
        "copy; of it",
        false,
    )
    .await
    .unwrap();
    let copied = pg_cells(
        &client,
        &format!("SELECT * FROM {}.{}", q(&hostile_schema), q("copy; of it")),
    )
    .await;
    assert_eq!(copied, got);
    let canary_rows = pg_cells(&client, &format!("SELECT id FROM {}.students", q(&canary))).await;
    assert_eq!(canary_rows, vec![vec![Some("42".to_string())]]);
    drop_schemas(&[&hostile_schema, &canary]).await;
}

#[actix_web::test]
async fn names_postgresql_cannot_hold_are_refused_before_anything_is_written() {
    let schema = unique_name("pg_long");
    let client = pg_client(DB).await;
    let long = "x".repeat(64);
    let err = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT 1 AS a",
        Some(&schema),
        &long,
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::Schema(m) if m.contains("63")),
        "{err:?}"
    );
    let err = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT 1 AS a",
        Some(&schema),
        "a\0b",
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::Schema(m) if m.contains("NUL")),
        "{err:?}"
    );
    let left = pg_cells(
        &client,
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"),
    )
    .await;
    assert_eq!(left[0][0].as_deref(), Some("0"));
}

#[actix_web::test]
async fn cancelling_a_long_read_stops_the_query_on_the_server_and_writes_nothing() {
    let schema = unique_name("pg_cancel");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.target (g bigint, h text);
             INSERT INTO {s}.target VALUES (0, 'kept');"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let marker = unique_name("marker");
    let query = format!(
        "SELECT generate_series(1, 2000000000)::bigint AS g, md5(random()::text) AS h /* {marker} */"
    );
    for overwrite in [false, true] {
        let cancel = CancellationToken::new();
        let progress = Arc::new(Progress::default());
        let request = TransferRequest {
            source: pg_spec(DB),
            target: pg_spec(DB),
            read: sluice::engine::SourceSpec::Query(query.clone()),
            write: sluice::engine::SinkSpec::Table(TargetTable {
                schema: Some(schema.clone()),
                table: "target".into(),
                overwrite,
            }),
            batch_rows: 10_000,
            partitioning: None,
        };
        let task = tokio::spawn(run_transfer(request, progress.clone(), cancel.clone()));
        // About a second in, once rows are flowing (the machine may be busy).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let waiting = Instant::now();
        while progress.rows_written() == 0 {
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "no row reached the sink"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cancelled_at = Instant::now();
        cancel.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the transfer stops quickly")
            .unwrap();
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(cancelled_at.elapsed() < Duration::from_secs(3));
        // The server has stopped the query: at once, or within the second a cancel may take
        // (the cancel request is answered before the backend has wound the query down).
        let stopped = Instant::now();
        loop {
            let running = pg_cells(
                &client,
                &format!(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE state = 'active' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
                ),
            )
            .await;
            if running[0][0].as_deref() == Some("0") {
                break;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(2),
                "the query still runs on the server 2 s after the cancel (overwrite={overwrite})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = pg_cells(&client, &format!("SELECT g, h FROM {s}.target")).await;
        assert_eq!(
            rows,
            vec![vec![Some("0".to_string()), Some("kept".to_string())]]
        );
        assert!(staging_tables_left(&client, &schema).await.is_empty());
    }
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_bad_query_fails_with_the_database_message_and_position() {
    let err = engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        "SELECT * FROM WHERE",
        Some(&unique_name("pg_bad")),
        "t",
        false,
    )
    .await
    .unwrap_err();
    match &err {
        EngineError::Source { message, transient } => {
            assert!(message.contains("syntax error"), "{message}");
            assert!(message.contains("at character 15"), "{message}");
            assert!(!transient);
        }
        other => panic!("{other:?}"),
    }
}

#[actix_web::test]
async fn queries_with_trailing_semicolons_and_comments_are_read() {
    let schema = unique_name("pg_trail");
    let client = pg_client(DB).await;
    for (table, query) in [
        ("semi", "SELECT 1 AS a ;  \n"),
        ("comment", "SELECT 2 AS a -- a trailing comment"),
        ("values", "VALUES (3)"),
        ("cte", "WITH x AS (SELECT 4 AS a) SELECT a FROM x"),
    ] {
        engine_transfer(pg_spec(DB), pg_spec(DB), query, Some(&schema), table, false)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let got = pg_cells(&client, &format!("SELECT * FROM {}.{table}", q(&schema))).await;
        assert_eq!(got.len(), 1, "{query}");
    }
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn not_null_columns_made_nullable_by_an_outer_join_still_transfer() {
    let schema = unique_name("pg_join");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.a (id integer NOT NULL);
             CREATE TABLE {s}.b (id integer NOT NULL, v text NOT NULL);
             INSERT INTO {s}.a VALUES (1), (2);
             INSERT INTO {s}.b VALUES (1, 'one');"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!("SELECT a.id, b.v FROM {s}.a LEFT JOIN {s}.b ON b.id = a.id"),
        Some(&schema),
        "joined",
        false,
    )
    .await
    .unwrap();
    let got = pg_cells(
        &client,
        &format!("SELECT id, v FROM {s}.joined ORDER BY id"),
    )
    .await;
    assert_eq!(
        got,
        vec![
            vec![Some("1".to_string()), Some("one".to_string())],
            vec![Some("2".to_string()), None]
        ]
    );
    // A union with a NULL branch, and grouping sets, also add NULLs to NOT NULL columns.
    for (table, query) in [
        (
            "unioned",
            format!("SELECT v FROM {s}.b UNION ALL SELECT NULL"),
        ),
        (
            "rolled",
            format!("SELECT v, count(*) AS n FROM {s}.b GROUP BY ROLLUP (v)"),
        ),
    ] {
        engine_transfer(
            pg_spec(DB),
            pg_spec(DB),
            &query,
            Some(&schema),
            table,
            false,
        )
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
        let got = pg_cells(&client, &format!("SELECT v FROM {s}.{table} ORDER BY v")).await;
        assert_eq!(
            got,
            vec![vec![Some("one".to_string())], vec![None]],
            "{query}"
        );
    }
    // Without the join the NOT NULL is kept.
    engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!("SELECT id, v FROM {s}.b"),
        Some(&schema),
        "plain",
        false,
    )
    .await
    .unwrap();
    let types = pg_column_types(&client, &schema, "plain").await;
    assert!(types.iter().all(|t| t.2), "{types:?}");
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_nan_in_a_constrained_numeric_reaches_postgresql_and_fails_naming_it_elsewhere() {
    let schema = unique_name("pg_nan");
    let query = "SELECT x::numeric(10,2) AS amount FROM (VALUES ('1.5'), ('NaN')) v(x)";
    // Towards SQLite the value is decoded into a 128-bit decimal, which has no NaN.
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("pg_nan")));
    let err = engine_transfer(
        pg_spec(DB),
        crate::helpers::sqlite_spec(&path),
        query,
        None,
        "t",
        false,
    )
    .await
    .unwrap_err();
    let _ = std::fs::remove_file(&path);
    match &err {
        EngineError::Value {
            column,
            row,
            message,
        } => {
            assert_eq!(column, "amount");
            assert_eq!(*row, 2);
            assert!(message.contains("NaN"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Between PostgreSQL servers the tuples pass through as they are, NaN included; so does
    // an unconstrained numeric's.
    for (table, query) in [
        ("constrained", query),
        (
            "free",
            "SELECT x::numeric AS amount FROM (VALUES ('1.5'), ('NaN')) v(x)",
        ),
    ] {
        engine_transfer(pg_spec(DB), pg_spec(DB), query, Some(&schema), table, false)
            .await
            .unwrap();
        let client = pg_client(DB).await;
        let got = pg_cells(
            &client,
            &format!("SELECT amount FROM {}.{table}", q(&schema)),
        )
        .await;
        let expected = if table == "free" { "1.5" } else { "1.50" };
        assert_eq!(
            got,
            vec![
                vec![Some(expected.to_string())],
                vec![Some("NaN".to_string())]
            ]
        );
    }
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn domains_composites_and_ranges_keep_their_values() {
    let schema = unique_name("pg_udt");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE DOMAIN {s}.money2 AS numeric(10,2) NOT NULL;
             CREATE TYPE {s}.pair AS (a integer, b text);
             CREATE TABLE {s}.src (m {s}.money2, p {s}.pair, r int4range, tz timetz,
                                   bits bit varying(8), ch \"char\");
             INSERT INTO {s}.src VALUES (12.34, ROW(1, 'x y'), '[1,10)', '13:45:00+02',
                                         B'1011', 'z');"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    engine_transfer(
        pg_spec(DB),
        pg_spec(DB),
        &format!("SELECT m, p, r, tz, bits, ch, ROW(1, 2) AS anon FROM {s}.src"),
        Some(&schema),
        "dst",
        false,
    )
    .await
    .unwrap();
    let got = pg_cells(&client, &format!("SELECT * FROM {s}.dst")).await;
    assert_eq!(
        got,
        vec![vec![
            Some("12.34".to_string()),
            Some("(1,\"x y\")".to_string()),
            Some("[1,10)".to_string()),
            Some("13:45:00+02".to_string()),
            Some("1011".to_string()),
            Some("z".to_string()),
            Some("(1,2)".to_string())
        ]]
    );
    let types: Vec<String> = pg_column_types(&client, &schema, "dst")
        .await
        .into_iter()
        .map(|c| c.1)
        .collect();
    // The domain exists in the target (the same database): it is kept; a composite is text.
    assert_eq!(
        types,
        [
            format!("{schema}.money2").as_str(),
            "text",
            "int4range",
            "time with time zone",
            "bit varying(8)",
            "\"char\"",
            "text"
        ]
    );
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_million_rows_copy_between_postgresql_tables_with_identical_values() {
    let schema = unique_name("pg_bulk");
    let s = q(&schema);
    pg_execute(
        DB,
        &format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.src AS
               SELECT g AS id, g * 2::bigint AS big, md5(g::text) AS txt, (g / 7.0)::numeric(12,4) AS amt,
                      g * 0.5::float8 AS f, now()::timestamptz - g * interval '1 second' AS at,
                      g % 2 = 0 AS flag
               FROM generate_series(1, 1000000) g;"
        ),
    )
    .await;
    let client = pg_client(DB).await;
    let started = Instant::now();
    let request = TransferRequest {
        source: pg_spec(DB),
        target: pg_spec(DB),
        read: sluice::engine::SourceSpec::Query(format!("SELECT * FROM {s}.src")),
        write: sluice::engine::SinkSpec::Table(TargetTable {
            schema: Some(schema.clone()),
            table: "dst".into(),
            overwrite: false,
        }),
        batch_rows: 65_536,
        partitioning: None,
    };
    let rows = run_transfer(
        request,
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    eprintln!("1,000,000 rows PostgreSQL -> PostgreSQL in {elapsed:?}");
    assert_eq!(rows, 1_000_000);
    let digest = |table: &str| {
        format!("SELECT count(*), sum(hashtext(t::text)::numeric) FROM {s}.{table} t")
    };
    let expected = pg_cells(&client, &digest("src")).await;
    let actual = pg_cells(&client, &digest("dst")).await;
    assert_eq!(expected, actual);
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn a_nul_character_in_text_from_another_database_fails_naming_column_and_row() {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("nul_to_pg")));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER, note TEXT);
             INSERT INTO t VALUES (1, 'fine'), (2, 'also fine'), (3, 'a' || char(0) || 'b');",
        )
        .unwrap();
    }
    let schema = unique_name("pg_nul");
    let result = engine_transfer(
        crate::helpers::sqlite_spec(&path),
        pg_spec(DB),
        "SELECT id, note FROM t ORDER BY id",
        Some(&schema),
        "t",
        false,
    )
    .await;
    let _ = std::fs::remove_file(&path);
    let err = match result {
        Err(e) => e,
        Ok(rows) => panic!("{rows} rows written"),
    };
    match &err {
        EngineError::Value {
            column,
            row,
            message,
        } => {
            assert_eq!(column, "note");
            assert_eq!(*row, 3);
            assert!(message.contains("NUL"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let client = pg_client(DB).await;
    assert!(!table_exists(&client, &schema, "t").await);
}

#[actix_web::test]
async fn mariadb_unsigned_and_wide_decimals_arrive_exactly_in_postgresql() {
    use crate::helpers::mariadb_execute;
    let database = unique_name("maria_to_pg");
    mariadb_execute(&format!(
        "CREATE DATABASE `{database}`;
         CREATE TABLE `{database}`.t (id int NOT NULL, u bigint unsigned, d decimal(65,30),
                                      f tinyint(1), y year, e enum('x','y'), bits bit(1));
         INSERT INTO `{database}`.t VALUES
           (1, 18446744073709551615, '-12345678901234567890123456789012345.123456789012345678901234567890', 1, 2155, 'y', b'1'),
           (2, 0, 0, 0, 1901, 'x', b'0'),
           (3, NULL, NULL, NULL, NULL, NULL, NULL);"
    ))
    .await;
    let schema = unique_name("pg_from_maria");
    let result = engine_transfer(
        crate::helpers::mariadb_spec(&database),
        pg_spec(DB),
        "SELECT id, u, d, f, y, e, bits FROM t ORDER BY id",
        Some(&schema),
        "t",
        false,
    )
    .await;
    mariadb_execute(&format!("DROP DATABASE `{database}`")).await;
    assert_eq!(result.unwrap(), 3);
    let client = pg_client(DB).await;
    let got = pg_cells(
        &client,
        &format!(
            "SELECT id, u, d, f, y, e, bits FROM {}.t ORDER BY id",
            q(&schema)
        ),
    )
    .await;
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        got,
        vec![
            vec![
                s("1"),
                s("18446744073709551615"),
                s("-12345678901234567890123456789012345.123456789012345678901234567890"),
                s("t"),
                s("2155"),
                s("y"),
                s("t")
            ],
            vec![
                s("2"),
                s("0"),
                s("0.000000000000000000000000000000"),
                s("f"),
                s("1901"),
                s("x"),
                s("f")
            ],
            vec![s("3"), None, None, None, None, None, None],
        ]
    );
    let types: Vec<String> = pg_column_types(&client, &schema, "t")
        .await
        .into_iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(
        types,
        [
            "integer",
            "numeric(20,0)",
            "numeric(65,30)",
            "boolean",
            "smallint",
            // The MariaDB source carries an enum as text of its longest label.
            "character varying(1)",
            "boolean"
        ]
    );
    drop_schemas(&[&schema]).await;
}

#[actix_web::test]
async fn postgresql_values_arrive_in_sqlite_as_the_documented_forms() {
    let source = unique_name("pg_src");
    create_edge_table(&source).await;
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("pg_to_sqlite")));
    let result = engine_transfer(
        pg_spec(DB),
        crate::helpers::sqlite_spec(&path),
        &format!(
            "SELECT id, b, i2, i8, CASE WHEN id = 1 THEN f8 END AS f8, n38, nbig, v, t, by, d, tm,
                    ts, tstz, u, jb, arr, tarr, iv, m, tstzarr
             FROM {}.edge WHERE id IN (1, 2, 4) ORDER BY id",
            q(&source)
        ),
        None,
        "edge",
        false,
    )
    .await;
    drop_schemas(&[&source]).await;
    assert_eq!(result.unwrap(), 3);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT id, b, i2, i8, f8, n38, nbig, v, t, by, d, tm, ts, tstz, u, jb, arr, tarr, iv, m, tstzarr
             FROM edge ORDER BY id",
        )
        .unwrap();
    let rows: Vec<Vec<rusqlite::types::Value>> = stmt
        .query_map([], |r| {
            (0..21)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    use rusqlite::types::Value as V;
    let t = |s: &str| V::Text(s.to_string());
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        vec![
            V::Integer(1),
            V::Integer(1),
            V::Integer(1),
            V::Integer(3),
            V::Real(2.25),
            t("1234567890123456789012345678.0123456789"),
            t("123456789012345678901234567890.123456789012345"),
            t("héllo"),
            t("שלום עולם 👋🏽 emoji"),
            V::Blob(vec![0x00, 0xff, 0x10]),
            t("2024-01-31"),
            t("13:45:00.123456"),
            t("2024-01-31 13:45:00.123456"),
            t("2024-01-31 08:15:00.123456+00:00"),
            t("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            t("{\"a\": {\"b\": [1, 2, {\"c\": null}]}, \"d\": \"é\"}"),
            t("[1,null,3]"),
            t("[\"a b\",\"c\\\"d\",null,\"\"]"),
            t("P1Y2M3DT4H5M6.5S"),
            t("happy"),
            t("[\"2024-01-31T11:45:00+00:00\"]"),
        ]
    );
    assert_eq!(rows[1][2], V::Integer(-32768));
    assert_eq!(rows[1][3], V::Integer(i64::MIN));
    assert_eq!(rows[1][7], t(""));
    assert_eq!(rows[1][10], t("0001-01-01"));
    match &rows[1][13] {
        V::Text(text) => assert!(
            text.starts_with("1969-07-21 00:17:40.5") && text.ends_with("+00:00"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(rows[1][18], t("P-1DT-1S"));
    // Row 4 is NULL everywhere but in id and in v (NOT NULL DEFAULT '').
    for (i, v) in rows[2].iter().enumerate().skip(1) {
        let expected = if i == 7 { t("") } else { V::Null };
        assert_eq!(*v, expected, "column {i}");
    }
    let _ = std::fs::remove_file(&path);
}

#[actix_web::test]
async fn postgresql_values_arrive_in_mariadb_as_the_documented_forms() {
    use mysql_async::prelude::Queryable;
    let source = unique_name("pg_src");
    create_edge_table(&source).await;
    let database = unique_name("pg_to_maria");
    let result = engine_transfer(
        pg_spec(DB),
        crate::helpers::mariadb_spec("mysql"),
        &format!(
            "SELECT id, b, i2, i4, i8, n38, CASE WHEN id = 1 THEN nbig END AS nbig, v, c, t, by, d,
                    tm, ts, tstz, u, jb, arr, iv, m
             FROM {}.edge WHERE id IN (1, 2, 4) ORDER BY id",
            q(&source)
        ),
        Some(&database),
        "edge",
        false,
    )
    .await;
    drop_schemas(&[&source]).await;
    assert_eq!(result.unwrap(), 3);
    let mut conn = crate::helpers::mariadb_conn().await;
    conn.query_drop(format!("USE `{database}`")).await.unwrap();
    let rows: Vec<mysql_async::Row> = conn
        .query(
            "SELECT CAST(id AS CHAR), CAST(b AS CHAR), CAST(i2 AS CHAR), CAST(i4 AS CHAR),
                    CAST(i8 AS CHAR), CAST(n38 AS CHAR), CAST(nbig AS CHAR), v, c, t, HEX(`by`),
                    CAST(d AS CHAR), CAST(tm AS CHAR), CAST(ts AS CHAR), CAST(tstz AS CHAR), u,
                    CAST(jb AS CHAR), CAST(arr AS CHAR), iv, m
             FROM edge ORDER BY id",
        )
        .await
        .unwrap();
    let text = |row: &mysql_async::Row| -> Vec<Option<String>> {
        (0..row.len())
            .map(|i| row.get::<Option<String>, _>(i).unwrap())
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    let first = text(&rows[0]);
    assert_eq!(
        first,
        vec![
            s("1"),
            s("1"),
            s("1"),
            s("2"),
            s("3"),
            s("1234567890123456789012345678.0123456789"),
            first[6].clone(),
            s("héllo"),
            s("ab"),
            s("שלום עולם 👋🏽 emoji"),
            s("00FF10"),
            s("2024-01-31"),
            s("13:45:00.123456"),
            s("2024-01-31 13:45:00.123456"),
            s("2024-01-31 08:15:00.123456"),
            s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            first[16].clone(),
            first[17].clone(),
            s("P1Y2M3DT4H5M6.5S"),
            s("happy"),
        ]
    );
    // Unconstrained numeric lands in decimal(65,30): the same number.
    assert!(
        first[6]
            .as_deref()
            .unwrap()
            .starts_with("123456789012345678901234567890.123456789012345"),
        "{first:?}"
    );
    let json: serde_json::Value = serde_json::from_str(first[16].as_deref().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"a": {"b": [1, 2, {"c": null}]}, "d": "é"})
    );
    let arr: serde_json::Value = serde_json::from_str(first[17].as_deref().unwrap()).unwrap();
    assert_eq!(arr, serde_json::json!([1, null, 3]));
    let second = text(&rows[1]);
    assert_eq!(second[4], s("-9223372036854775808"));
    assert_eq!(second[9], s(""));
    assert_eq!(second[11], s("0001-01-01"));
    let third = text(&rows[2]);
    for (i, v) in third.iter().enumerate().skip(1) {
        let expected = if i == 7 { s("") } else { None };
        assert_eq!(*v, expected, "column {i}");
    }
    conn.query_drop(format!("DROP DATABASE `{database}`"))
        .await
        .unwrap();
    conn.disconnect().await.ok();
}
