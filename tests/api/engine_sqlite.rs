//! The SQLite engine: SQLite as a source and as a sink, values read back cell by cell.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use rusqlite::types::Value;
use sluice::engine::batch::{Message, Progress, SinkContext, TargetTable};
use sluice::engine::pipeline::{run_sink, run_transfer, TransferRequest};
use sluice::engine::types::{arrow_schema, Column, LogicalType};
use sluice::engine::{ConnectError, EngineError};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    engine_transfer, mariadb_execute, mariadb_spec, pg_client, pg_execute, pg_spec, sqlite_spec,
    unique_name,
};

// ---------------------------------------------------------------------------------------------
// Helpers of this file.

/// A SQLite file under the temporary directory, removed (with its journal) when dropped.
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    pub(crate) fn new(prefix: &str) -> Self {
        Self(std::env::temp_dir().join(format!("{}.db", unique_name(prefix))))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    fn spec(&self) -> sluice::engine::ConnectSpec {
        sqlite_spec(&self.0)
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.0).unwrap()
    }

    fn exec(&self, sql: &str) {
        self.conn()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Every row of `sql`, each cell as SQLite stores it.
    pub(crate) fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = stmt.column_count();
        stmt.query_map([], |row| (0..n).map(|i| row.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// (name, declared type, NOT NULL) of each column of `table`.
    fn columns(&self, table: &str) -> Vec<(String, String, bool)> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap();
        stmt.query_map([table], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? != 0))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    fn tables(&self) -> Vec<String> {
        self.rows("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .into_iter()
            .map(|r| match &r[0] {
                Value::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut journal = self.0.as_os_str().to_owned();
        journal.push("-journal");
        let _ = std::fs::remove_file(PathBuf::from(journal));
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i)
}

fn real(f: f64) -> Value {
    Value::Real(f)
}

fn text(t: &str) -> Value {
    Value::Text(t.into())
}

fn blob(b: &[u8]) -> Value {
    Value::Blob(b.to_vec())
}

const NULL: Value = Value::Null;

/// Compare cell by cell, with a useful message (and reals compared bit for bit).
pub(crate) fn assert_rows(actual: &[Vec<Value>], expected: &[Vec<Value>]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "row count; actual: {actual:?}"
    );
    for (r, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.len(), e.len(), "row {r} width");
        for (c, (av, ev)) in a.iter().zip(e).enumerate() {
            let same = match (av, ev) {
                (Value::Real(x), Value::Real(y)) => x.to_bits() == y.to_bits(),
                _ => av == ev,
            };
            let shown = |v: &Value| match v {
                Value::Text(t) if t.len() > 80 => format!("Text({}… {} bytes)", &t[..40], t.len()),
                other => format!("{other:?}"),
            };
            assert!(
                same,
                "row {r}, column {c}: got {}, expected {}",
                shown(av),
                shown(ev)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite → SQLite.

/// The source table of the edge-case tests: declared types as users write them.
const EDGE_TABLE: &str = r#"
CREATE TABLE edge (
    id INTEGER PRIMARY KEY,
    i BIGINT,
    b BOOLEAN,
    f DOUBLE,
    d38 DECIMAL TEXT(38,10),
    dn DECIMAL(10,2),
    big NUMERIC TEXT,
    t TEXT,
    v VARCHAR(20),
    c CHAR(3),
    bl BLOB,
    dt DATE,
    tm TIME,
    ts DATETIME,
    tz TIMESTAMPTZ,
    u UUID,
    j JSON
);
INSERT INTO edge (id) VALUES (1);
INSERT INTO edge VALUES (2, -9223372036854775808, 0, NULL,
    '-9999999999999999999999999999.9999999999', -1.1,
    '-123456789012345678901234567890.123456789012', '', 'ab', 'xyz', x'00ff00',
    '0001-01-01', '00:00:00', '1900-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999-05:30',
    '00000000-0000-0000-0000-000000000000', '{"a":[1,2,{"b":null}],"c":"x"}');
INSERT INTO edge VALUES (3, 9223372036854775807, 1, NULL,
    '9999999999999999999999999999.9999999999', 12345678.99,
    '123456789012345678901234567890', 'héllo 🚀 مرحبا עברית', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'é🚀x', x'ff',
    '9999-12-31', '23:59:59.999999', '2100-06-15T12:34:56.789012', '2040-01-01 00:00:00+14:00',
    '123E4567-E89B-12D3-A456-426614174000', '[]');
INSERT INTO edge VALUES (4, 0, 1, 9e999, '1.5', 0, '0.000000000000000000000000000001',
    ' ', NULL, NULL, x'', '2024-02-29', '13:45', '2024-01-31 13:45:00', '2024-01-31 13:45:00Z',
    NULL, '{"deep":{"deeper":{"deepest":[true,false,1.5e300]}}}');
INSERT INTO edge VALUES (5, -1, 0, -9e999, '0', 0.1, '-0.5', NULL, '', '', NULL,
    '1970-01-01', '24:00:00', '1969-07-20 20:17:40', '2024-06-30 23:59:59.5+02:00', NULL, 'null');
"#;

/// The edge table, with the extreme floats bound exactly (not parsed from SQL text).
pub(crate) fn create_edge(db: &TempDb) {
    db.exec(EDGE_TABLE);
    let conn = db.conn();
    conn.execute("UPDATE edge SET f = ?1 WHERE id = 2", [f64::from_bits(1)])
        .unwrap();
    conn.execute("UPDATE edge SET f = ?1 WHERE id = 3", [f64::MAX])
        .unwrap();
}

#[actix_web::test]
async fn an_edge_case_table_round_trips_exactly_from_sqlite_to_sqlite() {
    let source = TempDb::new("sqlite_edge_src");
    create_edge(&source);
    // A 1 MB text value with multi-byte characters.
    let long: String = "abc🚀é".repeat(1024 * 1024 / 9 + 1);
    source
        .conn()
        .execute("INSERT INTO edge (id, t) VALUES (6, ?1)", [&long])
        .unwrap();
    let target = TempDb::new("sqlite_edge_dst");

    let rows = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT * FROM edge ORDER BY id",
        None,
        "copy",
        false,
    )
    .await
    .expect("the transfer succeeds");
    assert_eq!(rows, 6);

    let decl: Vec<(String, String)> = target
        .columns("copy")
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect();
    let expected_decl = [
        ("id", "INTEGER"),
        ("i", "INTEGER"),
        ("b", "BOOLEAN"),
        ("f", "REAL"),
        ("d38", "DECIMAL TEXT(38,10)"),
        ("dn", "DECIMAL TEXT(10,2)"),
        ("big", "DECIMAL TEXT"),
        ("t", "TEXT"),
        ("v", "VARCHAR(20)"),
        ("c", "CHAR(3)"),
        ("bl", "BLOB"),
        ("dt", "DATE"),
        ("tm", "TIME"),
        ("ts", "TIMESTAMP"),
        ("tz", "TIMESTAMPTZ"),
        ("u", "UUID"),
        ("j", "JSON TEXT"),
    ];
    assert_eq!(
        decl,
        expected_decl
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect::<Vec<_>>()
    );

    let actual = target.rows(
        "SELECT id, i, b, f, d38, dn, big, t, v, c, bl, dt, tm, ts, tz, u, j,
                typeof(t), typeof(bl) FROM copy ORDER BY id",
    );
    let expected = vec![
        vec![
            int(1),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            text("null"),
            text("null"),
        ],
        vec![
            int(2),
            int(i64::MIN),
            int(0),
            real(f64::from_bits(1)),
            text("-9999999999999999999999999999.9999999999"),
            text("-1.10"),
            text("-123456789012345678901234567890.123456789012"),
            text(""),
            text("ab"),
            text("xyz"),
            blob(&[0, 0xff, 0]),
            text("0001-01-01"),
            text("00:00:00"),
            text("1900-01-01 00:00:00.000001"),
            text("1970-01-01 05:29:59.999999+00:00"),
            text("00000000-0000-0000-0000-000000000000"),
            text(r#"{"a":[1,2,{"b":null}],"c":"x"}"#),
            text("text"),
            text("blob"),
        ],
        vec![
            int(3),
            int(i64::MAX),
            int(1),
            real(f64::MAX),
            text("9999999999999999999999999999.9999999999"),
            text("12345678.99"),
            text("123456789012345678901234567890"),
            text("héllo 🚀 مرحبا עברית"),
            text("𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
            text("é🚀x"),
            blob(&[0xff]),
            text("9999-12-31"),
            text("23:59:59.999999"),
            text("2100-06-15 12:34:56.789012"),
            text("2039-12-31 10:00:00+00:00"),
            text("123e4567-e89b-12d3-a456-426614174000"),
            text("[]"),
            text("text"),
            text("blob"),
        ],
        vec![
            int(4),
            int(0),
            int(1),
            real(f64::INFINITY),
            text("1.5000000000"),
            text("0.00"),
            text("0.000000000000000000000000000001"),
            text(" "),
            NULL,
            NULL,
            blob(&[]),
            text("2024-02-29"),
            text("13:45:00"),
            text("2024-01-31 13:45:00"),
            text("2024-01-31 13:45:00+00:00"),
            NULL,
            text(r#"{"deep":{"deeper":{"deepest":[true,false,1.5e300]}}}"#),
            text("text"),
            text("blob"),
        ],
        vec![
            int(5),
            int(-1),
            int(0),
            real(f64::NEG_INFINITY),
            text("0.0000000000"),
            text("0.10"),
            text("-0.5"),
            NULL,
            text(""),
            text(""),
            NULL,
            text("1970-01-01"),
            text("24:00:00"),
            text("1969-07-20 20:17:40"),
            text("2024-06-30 21:59:59.500000+00:00"),
            NULL,
            text("null"),
            text("null"),
            text("null"),
        ],
        vec![
            int(6),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            text(&long),
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            NULL,
            text("text"),
            text("null"),
        ],
    ];
    assert_rows(&actual, &expected);
}

#[actix_web::test]
async fn expression_columns_take_the_type_of_their_first_value() {
    let source = TempDb::new("sqlite_expr_src");
    source.exec("CREATE TABLE one (x INTEGER); INSERT INTO one VALUES (1);");
    let target = TempDb::new("sqlite_expr_dst");
    engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT 1 + 1 AS two, 'x' || 'y' AS s, 1.5 AS r, x'00ff' AS bb, NULL AS n,
                CAST(x AS REAL) AS widened
         FROM one
         UNION ALL SELECT 3, 4, 5, x'', 'later text', 2 FROM one",
        None,
        "expr",
        false,
    )
    .await
    .expect("the transfer succeeds");
    let decl: Vec<String> = target
        .columns("expr")
        .into_iter()
        .map(|(_, t, _)| t)
        .collect();
    assert_eq!(decl, ["INTEGER", "TEXT", "REAL", "BLOB", "TEXT", "REAL"]);
    assert_rows(
        &target.rows("SELECT * FROM expr"),
        &[
            vec![
                int(2),
                text("xy"),
                real(1.5),
                blob(&[0, 0xff]),
                NULL,
                real(1.0),
            ],
            // An integer in a TEXT or REAL column converts exactly.
            vec![
                int(3),
                text("4"),
                real(5.0),
                blob(&[]),
                text("later text"),
                real(2.0),
            ],
        ],
    );
}

#[actix_web::test]
async fn a_value_of_another_storage_class_fails_naming_column_and_row() {
    let source = TempDb::new("sqlite_class_src");
    source.exec(
        "CREATE TABLE m (id INTEGER, x);
         INSERT INTO m VALUES (1, 10), (2, 20), (3, 'thirty');
         CREATE TABLE d (id INTEGER, day DATE);
         INSERT INTO d VALUES (1, '2024-01-01'), (2, 1704067200);
         CREATE TABLE ts (id INTEGER, at DATETIME);
         INSERT INTO ts VALUES (1, '2024-01-01 10:00:00'), (2, '2024-01-01 10:00:00+02:00');
         CREATE TABLE n (id INTEGER, amount DECIMAL(10,2));
         INSERT INTO n VALUES (1, 1.25), (2, 1.125);
         CREATE TABLE j (id INTEGER, doc JSON);
         INSERT INTO j VALUES (1, '{}'), (2, '{broken');",
    );
    let target = TempDb::new("sqlite_class_dst");
    let cases = [
        ("SELECT id, x FROM m ORDER BY id", "x", 3, "TEXT"),
        ("SELECT id, day FROM d ORDER BY id", "day", 2, "INTEGER"),
        ("SELECT id, at FROM ts ORDER BY id", "at", 2, "offset"),
        (
            "SELECT id, amount FROM n ORDER BY id",
            "amount",
            2,
            "digits after",
        ),
        ("SELECT id, doc FROM j ORDER BY id", "doc", 2, "JSON"),
    ];
    for (query, column, row, words) in cases {
        let err = engine_transfer(source.spec(), target.spec(), query, None, "t", false)
            .await
            .expect_err(query);
        match &err {
            EngineError::Value {
                column: c,
                row: r,
                message,
            } => {
                assert_eq!(c, column, "{query}: {err}");
                assert_eq!(*r, row, "{query}: {err}");
                assert!(message.contains(words), "{query}: {err}");
            }
            other => panic!("{query}: expected a value error, got {other:?}"),
        }
        assert!(
            !target.path().exists() || target.tables().is_empty(),
            "{query}"
        );
    }
}

#[actix_web::test]
async fn a_zero_row_result_creates_the_table_with_the_mapped_types() {
    let source = TempDb::new("sqlite_zero_src");
    create_edge(&source);
    let target = TempDb::new("sqlite_zero_dst");
    let rows = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT i, d38, dn, v, c, dt, ts, tz, u, j FROM edge WHERE 0",
        Some("main"),
        "empty",
        false,
    )
    .await
    .expect("the transfer succeeds");
    assert_eq!(rows, 0);
    assert_eq!(
        target.columns("empty"),
        [
            ("i", "INTEGER"),
            ("d38", "DECIMAL TEXT(38,10)"),
            ("dn", "DECIMAL TEXT(10,2)"),
            ("v", "VARCHAR(20)"),
            ("c", "CHAR(3)"),
            ("dt", "DATE"),
            ("ts", "TIMESTAMP"),
            ("tz", "TIMESTAMPTZ"),
            ("u", "UUID"),
            ("j", "JSON TEXT"),
        ]
        .map(|(n, t)| (n.to_string(), t.to_string(), false))
    );
    assert!(target.rows("SELECT * FROM empty").is_empty());
}

#[actix_web::test]
async fn appending_matches_columns_by_name_and_a_missing_column_fails_before_any_row() {
    let source = TempDb::new("sqlite_append_src");
    source.exec(
        "CREATE TABLE s (a INTEGER, b TEXT, c REAL);
         INSERT INTO s VALUES (1, 'one', 1.5), (2, 'two', NULL);",
    );
    let target = TempDb::new("sqlite_append_dst");
    target.exec(
        "CREATE TABLE t (c REAL, extra TEXT DEFAULT 'dflt', B TEXT, a INTEGER);
         INSERT INTO t VALUES (0.5, 'old', 'zero', 0);",
    );
    engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT a, b, c FROM s ORDER BY a",
        None,
        "T",
        false,
    )
    .await
    .expect("the append succeeds");
    let after_append = vec![
        vec![real(0.5), text("old"), text("zero"), int(0)],
        vec![real(1.5), text("dflt"), text("one"), int(1)],
        vec![NULL, text("dflt"), text("two"), int(2)],
    ];
    assert_rows(&target.rows("SELECT * FROM t ORDER BY a"), &after_append);

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT a, b, c AS zz FROM s",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a column the target lacks");
    match &err {
        EngineError::Schema(message) => assert!(message.contains("\"zz\""), "{message}"),
        other => panic!("expected a schema error, got {other:?}"),
    }
    assert_rows(&target.rows("SELECT * FROM t ORDER BY a"), &after_append);
}

#[actix_web::test]
async fn appending_into_numeric_columns_never_rounds_silently() {
    let source = TempDb::new("sqlite_affinity_src");
    source.exec(
        r#"CREATE TABLE s (id INTEGER, amount DECIMAL TEXT(38,10), code TEXT);
         INSERT INTO s VALUES (1, '1.1', '42'), (2, '12345678901234567890.5', '7');
         CREATE TABLE s2 (id INTEGER, code TEXT);
         INSERT INTO s2 VALUES (1, '42'), (2, '007');"#,
    );
    let target = TempDb::new("sqlite_affinity_dst");
    target.exec("CREATE TABLE t (id INTEGER, amount DECIMAL(10,2), code INTEGER);");
    // The first row fits a REAL exactly; the second would lose digits.
    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT * FROM s ORDER BY id",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a decimal that a REAL cannot hold");
    match &err {
        EngineError::Value { column, row, .. } => {
            assert_eq!((column.as_str(), *row), ("amount", 2), "{err}")
        }
        other => panic!("expected a value error, got {other:?}"),
    }
    assert!(target.rows("SELECT * FROM t").is_empty());

    engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT * FROM s WHERE id = 1",
        None,
        "t",
        false,
    )
    .await
    .expect("an exact decimal goes in as a number");
    assert_rows(
        &target.rows("SELECT id, amount, code, typeof(code) FROM t"),
        &[vec![int(1), real(1.1), int(42), text("integer")]],
    );

    // '007' would become 7 in an INTEGER column.
    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT * FROM s2 ORDER BY id",
        None,
        "t",
        false,
    )
    .await
    .expect_err("text that would become a different number");
    match &err {
        EngineError::Value {
            column,
            row,
            message,
        } => {
            assert_eq!((column.as_str(), *row), ("code", 2), "{err}");
            assert!(message.contains("007"), "{message}");
        }
        other => panic!("expected a value error, got {other:?}"),
    }
    assert_eq!(target.rows("SELECT * FROM t").len(), 1);
}

#[actix_web::test]
async fn overwrite_swaps_in_the_new_table_atomically_and_views_keep_working() {
    let source = TempDb::new("sqlite_over_src");
    source.exec(
        "CREATE TABLE s (id INTEGER, name TEXT);
         INSERT INTO s VALUES (10, 'ten'), (20, 'twenty');",
    );
    let target = TempDb::new("sqlite_over_dst");
    target.exec(
        "CREATE TABLE t (id INTEGER, old_column BLOB);
         INSERT INTO t VALUES (1, x'01'), (2, x'02'), (3, x'03');
         CREATE INDEX t_id ON t (id);
         CREATE VIEW v AS SELECT id FROM t;
         CREATE TABLE other (x INTEGER);
         INSERT INTO other VALUES (99);",
    );
    let rows = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT id, name FROM s ORDER BY id",
        None,
        "t",
        true,
    )
    .await
    .expect("the overwrite succeeds");
    assert_eq!(rows, 2);
    assert_rows(
        &target.rows("SELECT * FROM t ORDER BY id"),
        &[vec![int(10), text("ten")], vec![int(20), text("twenty")]],
    );
    assert_eq!(
        target.columns("t"),
        [("id", "INTEGER"), ("name", "TEXT")].map(|(n, t)| (n.into(), t.into(), false))
    );
    assert_rows(
        &target.rows("SELECT * FROM v ORDER BY id"),
        &[vec![int(10)], vec![int(20)]],
    );
    assert_eq!(target.tables(), ["other", "t"], "no staging table is left");
    assert_rows(&target.rows("SELECT * FROM other"), &[vec![int(99)]]);

    // Overwriting a missing table creates it.
    engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT id FROM s ORDER BY id",
        None,
        "fresh",
        true,
    )
    .await
    .expect("an overwrite of a missing table");
    assert_rows(
        &target.rows("SELECT * FROM fresh ORDER BY id"),
        &[vec![int(10)], vec![int(20)]],
    );
}

/// Rows 1..=n of a generated query; row `fail_at` raises "integer overflow".
fn failing_query(n: u64, fail_at: u64) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n})
         SELECT x AS id, CASE WHEN x = {fail_at} THEN abs(x - x - 9223372036854775807 - 1) ELSE x END AS v,
                'row ' || x AS label
         FROM c"
    )
}

#[actix_web::test]
async fn a_failure_after_100000_rows_leaves_the_target_unchanged_in_both_modes() {
    let source = TempDb::new("sqlite_fail_src");
    source.exec("CREATE TABLE unused (x INTEGER);");
    let target = TempDb::new("sqlite_fail_dst");
    target.exec(
        "CREATE TABLE t (id INTEGER, v INTEGER, label TEXT);
         INSERT INTO t VALUES (-1, -1, 'before');",
    );
    let before = target.rows("SELECT * FROM t");
    for overwrite in [false, true] {
        let err = engine_transfer(
            source.spec(),
            target.spec(),
            &failing_query(150_000, 100_001),
            None,
            "t",
            overwrite,
        )
        .await
        .expect_err("the source fails");
        match &err {
            EngineError::Source { message, .. } => {
                assert!(message.contains("integer overflow"), "{message}")
            }
            other => panic!("expected the source's error, got {other:?}"),
        }
        assert_eq!(
            target.rows("SELECT * FROM t"),
            before,
            "overwrite={overwrite}"
        );
        assert_eq!(target.tables(), ["t"], "overwrite={overwrite}");
    }

    // A new file that the failed transfer created is removed again.
    let fresh = TempDb::new("sqlite_fail_new");
    let err = engine_transfer(
        source.spec(),
        fresh.spec(),
        &failing_query(150_000, 100_001),
        None,
        "t",
        false,
    )
    .await
    .expect_err("the source fails");
    assert!(matches!(err, EngineError::Source { .. }), "{err:?}");
    assert!(!fresh.path().exists());
}

#[actix_web::test]
async fn a_constraint_violation_in_the_target_rolls_back_with_the_databases_message() {
    let source = TempDb::new("sqlite_constraint_src");
    source.exec("CREATE TABLE unused (x INTEGER);");
    let target = TempDb::new("sqlite_constraint_dst");
    target.exec(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, label TEXT);
         INSERT INTO t VALUES (120000, 0, 'taken');",
    );
    let err = engine_transfer(
        source.spec(),
        target.spec(),
        &failing_query(150_000, 0),
        None,
        "t",
        false,
    )
    .await
    .expect_err("a duplicate key");
    match &err {
        EngineError::Target { message, transient } => {
            assert!(
                message.contains("UNIQUE constraint failed: t.id"),
                "{message}"
            );
            assert!(message.contains("row 120000"), "{message}");
            assert!(!transient);
        }
        other => panic!("expected the target's error, got {other:?}"),
    }
    assert_rows(
        &target.rows("SELECT * FROM t"),
        &[vec![int(120000), int(0), text("taken")]],
    );
}

#[actix_web::test]
async fn hostile_identifiers_round_trip_without_touching_anything_else() {
    let table = r#"we"ird; DROP TABLE victim; --"#;
    let columns = [
        r#"a"b"#,
        "x; DROP TABLE victim",
        "with space",
        "ünïcödé 🚀",
        "select",
        "Capital",
    ];
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let source = TempDb::new("sqlite_hostile_src");
    source.exec(&format!(
        "CREATE TABLE {} ({});
         INSERT INTO {} VALUES (1, 'two', 3.5, 'four', x'05', 'six');
         CREATE TABLE victim (x INTEGER); INSERT INTO victim VALUES (1);",
        quote(table),
        columns.map(quote).join(", "),
        quote(table)
    ));
    let target = TempDb::new("sqlite_hostile_dst");
    target.exec("CREATE TABLE victim (x INTEGER); INSERT INTO victim VALUES (42);");
    let query = format!("SELECT * FROM {}", quote(table));
    for overwrite in [false, true, false] {
        engine_transfer(source.spec(), target.spec(), &query, None, table, overwrite)
            .await
            .unwrap_or_else(|e| panic!("overwrite={overwrite}: {e}"));
    }
    let names: Vec<String> = target.columns(table).into_iter().map(|c| c.0).collect();
    assert_eq!(names, columns);
    // Overwritten once, then appended once.
    let row = vec![
        int(1),
        text("two"),
        real(3.5),
        text("four"),
        blob(&[5]),
        text("six"),
    ];
    assert_rows(
        &target.rows(&format!("SELECT * FROM {}", quote(table))),
        &[row.clone(), row],
    );
    assert_rows(&target.rows("SELECT * FROM victim"), &[vec![int(42)]]);
    assert_rows(&source.rows("SELECT * FROM victim"), &[vec![int(1)]]);
    assert_eq!(target.tables().len(), 2);
}

#[actix_web::test]
async fn a_schema_other_than_main_and_bad_queries_are_refused() {
    let source = TempDb::new("sqlite_refuse_src");
    source.exec("CREATE TABLE s (x INTEGER); INSERT INTO s VALUES (1);");
    let target = TempDb::new("sqlite_refuse_dst");

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT x FROM s",
        Some("other"),
        "t",
        false,
    )
    .await
    .expect_err("SQLite has no schemas");
    assert!(
        matches!(&err, EngineError::Schema(m) if m.contains("\"other\"")),
        "{err:?}"
    );
    assert!(!target.path().exists());

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELEC x FROM s",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a syntax error");
    assert!(
        matches!(&err, EngineError::Source { message, .. } if message.contains("syntax error") && message.contains("SELEC")),
        "{err:?}"
    );

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT x FROM s; DELETE FROM s",
        None,
        "t",
        false,
    )
    .await
    .expect_err("two statements");
    assert!(
        matches!(&err, EngineError::Source { message, .. } if message.contains("more than one statement")),
        "{err:?}"
    );

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "DELETE FROM s RETURNING x",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a write");
    assert!(matches!(&err, EngineError::Source { .. }), "{err:?}");
    assert_rows(&source.rows("SELECT * FROM s"), &[vec![int(1)]]);

    let err = engine_transfer(
        source.spec(),
        target.spec(),
        "SELECT ?1 AS x",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a parameter");
    assert!(
        matches!(&err, EngineError::Source { message, .. } if message.contains("parameters")),
        "{err:?}"
    );
    let err = engine_transfer(
        source.spec(),
        target.spec(),
        " -- nothing",
        None,
        "t",
        false,
    )
    .await
    .expect_err("no statement");
    assert!(matches!(&err, EngineError::Schema(_)), "{err:?}");

    let missing = TempDb::new("sqlite_refuse_missing");
    let err = engine_transfer(
        missing.spec(),
        target.spec(),
        "SELECT 1 AS x",
        None,
        "t",
        false,
    )
    .await
    .expect_err("a missing source file");
    assert!(
        matches!(err, EngineError::Connect(ConnectError::DatabaseNotFound(_))),
        "{err:?}"
    );
    assert!(!missing.path().exists(), "the source never creates a file");
    assert!(!target.path().exists());
}

/// A transfer driven with our own cancellation token, cancelled after `after`.
async fn cancelled_transfer(
    source: &TempDb,
    target: &TempDb,
    query: &str,
    overwrite: bool,
    after: Duration,
) -> (Result<u64, EngineError>, Duration) {
    let request = TransferRequest {
        source: source.spec(),
        target: target.spec(),
        read: sluice::engine::SourceSpec::Query(query.into()),
        write: sluice::engine::SinkSpec::Table(TargetTable {
            schema: None,
            table: "t".into(),
            overwrite,
        }),
        batch_rows: 10_000,
        partitioning: None,
    };
    let cancel = CancellationToken::new();
    let progress = Arc::new(Progress::default());
    let transfer = tokio::spawn(run_transfer(request, progress.clone(), cancel.clone()));
    tokio::time::sleep(after).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), transfer)
        .await
        .expect("the transfer stops within 10 s of the cancel")
        .unwrap();
    (result, cancelled_at.elapsed())
}

/// Nobody holds a lock on the file: an exclusive transaction starts at once.
fn assert_unlocked(db: &TempDb) {
    let conn = db.conn();
    // The worker of an abandoned open may need a moment to see the interrupt.
    conn.busy_timeout(Duration::from_secs(1)).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;")
        .unwrap_or_else(|e| panic!("{} is still locked: {e}", db.path().display()));
}

#[actix_web::test]
async fn cancelling_a_long_read_stops_it_quickly_and_leaves_the_target_unchanged() {
    let source = TempDb::new("sqlite_cancel_src");
    source.exec("CREATE TABLE unused (x INTEGER);");
    let target = TempDb::new("sqlite_cancel_dst");
    target.exec(
        "CREATE TABLE t (id INTEGER, v INTEGER, label TEXT); INSERT INTO t VALUES (7, 7, 'kept');",
    );
    let before = target.rows("SELECT * FROM t");

    // Streaming rows: the reader checks the token between rows.
    for overwrite in [false, true] {
        let (result, took) = cancelled_transfer(
            &source,
            &target,
            &failing_query(1_000_000_000, 0),
            overwrite,
            Duration::from_secs(1),
        )
        .await;
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(target.rows("SELECT * FROM t"), before);
        assert_eq!(target.tables(), ["t"]);
        assert_unlocked(&source);
        assert_unlocked(&target);
    }

    // One long step (an aggregate over a billion rows) while describing the query, and one
    // after the first row: the query is interrupted.
    for query in [
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)
         SELECT count(*) AS id, 0 AS v, '' AS label FROM c",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)
         SELECT 1 AS id, 0 AS v, '' AS label UNION ALL SELECT count(*), 0, '' FROM c",
    ] {
        let (result, took) =
            cancelled_transfer(&source, &target, query, false, Duration::from_secs(1)).await;
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(target.rows("SELECT * FROM t"), before);
        assert_unlocked(&source);
        assert_unlocked(&target);
    }
}

// ---------------------------------------------------------------------------------------------
// The sink fed directly with every logical type.

fn column(name: &str, ty: LogicalType, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
        db_type: String::new(),
        native: None,
    }
}

/// Run the SQLite sink on `batches` (then End, unless `end` is false).
async fn sink_batches(
    target: &TempDb,
    table: &str,
    columns: Vec<Column>,
    batches: Vec<Vec<ArrayRef>>,
    end: bool,
) -> Result<u64, EngineError> {
    let schema = arrow_schema(&columns);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let ctx = SinkContext {
        rx,
        cancel: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
        columns,
        target: sluice::engine::SinkSpec::Table(TargetTable {
            schema: None,
            table: table.into(),
            overwrite: false,
        }),
        copy_offer: None,
    };
    let spec = target.spec();
    let sink = tokio::spawn(async move { run_sink(&spec, ctx).await });
    for arrays in batches {
        let batch = RecordBatch::try_new(schema.clone(), arrays).expect("a valid batch");
        if tx.send(Message::Batch(batch)).await.is_err() {
            break;
        }
    }
    if end {
        let _ = tx.send(Message::End).await;
    }
    drop(tx);
    sink.await.unwrap()
}

#[actix_web::test]
async fn the_sink_stores_every_logical_type_exactly() {
    let columns = vec![
        column("i16", LogicalType::Int16, false),
        column("i32", LogicalType::Int32, true),
        column("u64", LogicalType::UInt64, true),
        column("f32", LogicalType::Float32, true),
        column("b", LogicalType::Boolean, true),
        column(
            "d",
            LogicalType::Decimal {
                precision: 38,
                scale: 10,
            },
            true,
        ),
        column("ts", LogicalType::Timestamp, true),
        column("tz", LogicalType::TimestampTz, true),
        column("tm", LogicalType::Time, true),
        column("dt", LogicalType::Date, true),
        column("u", LogicalType::Uuid, true),
        column("iv", LogicalType::Interval, true),
        column(
            "arr",
            LogicalType::Array {
                db_type: "integer[]".into(),
            },
            true,
        ),
        column("bin", LogicalType::Binary { max_len: Some(4) }, true),
        column("i64", LogicalType::Int64, true),
        column(
            "other",
            LogicalType::Other {
                db_type: "money".into(),
            },
            true,
        ),
    ];
    let mut i16s = Int16Builder::new();
    let mut i32s = Int32Builder::new();
    let mut u64s = UInt64Builder::new();
    let mut f32s = Float32Builder::new();
    let mut bools = BooleanBuilder::new();
    let mut decimals = Decimal128Builder::new()
        .with_precision_and_scale(38, 10)
        .unwrap();
    let mut tss = TimestampMicrosecondBuilder::new();
    let mut tzs = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut tms = Time64MicrosecondBuilder::new();
    let mut dts = Date32Builder::new();
    let mut uuids = FixedSizeBinaryBuilder::new(16);
    let mut intervals = StringBuilder::new();
    let mut arrays = StringBuilder::new();
    let mut bins = BinaryBuilder::new();
    let mut i64s = Int64Builder::new();
    let mut others = StringBuilder::new();

    i16s.append_value(i16::MIN);
    i32s.append_value(i32::MAX);
    u64s.append_value(u64::MAX);
    f32s.append_value(f32::from_bits(1)); // the smallest subnormal
    bools.append_value(true);
    decimals.append_value(-99_999_999_999_999_999_999_999_999_999_999_999_999);
    tss.append_value(-62_135_596_800_000_000); // 0001-01-01 00:00:00
    tzs.append_value(2_208_988_800_123_456); // 2040-01-01 00:00:00.123456 UTC
    tms.append_value(86_400_000_000);
    dts.append_value(-719_162); // 0001-01-01
    uuids
        .append_value(
            uuid::Uuid::parse_str("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    intervals.append_value("P1Y2M3DT4H5M6.5S");
    arrays.append_value("[1,2,null]");
    bins.append_value([0u8, 0xff]);
    i64s.append_value(i64::MIN);
    others.append_value("$1.00");

    i16s.append_value(0);
    i32s.append_null();
    u64s.append_null();
    f32s.append_value(-1.5);
    bools.append_value(false);
    decimals.append_value(1);
    tss.append_value(4_102_444_800_000_001); // 2100-01-01 00:00:00.000001
    tzs.append_value(-1); // 1969-12-31 23:59:59.999999 UTC
    tms.append_value(0);
    dts.append_value(2_932_896); // 9999-12-31
    uuids.append_null();
    intervals.append_null();
    arrays.append_value("[]");
    bins.append_value([]);
    i64s.append_value(i64::MAX);
    others.append_null();

    let batch: Vec<ArrayRef> = vec![
        Arc::new(i16s.finish()),
        Arc::new(i32s.finish()),
        Arc::new(u64s.finish()),
        Arc::new(f32s.finish()),
        Arc::new(bools.finish()),
        Arc::new(decimals.finish()),
        Arc::new(tss.finish()),
        Arc::new(tzs.finish()),
        Arc::new(tms.finish()),
        Arc::new(dts.finish()),
        Arc::new(uuids.finish()),
        Arc::new(intervals.finish()),
        Arc::new(arrays.finish()),
        Arc::new(bins.finish()),
        Arc::new(i64s.finish()),
        Arc::new(others.finish()),
    ];
    let target = TempDb::new("sqlite_sink_types");
    let rows = sink_batches(&target, "all_types", columns, vec![batch], true)
        .await
        .expect("the sink succeeds");
    assert_eq!(rows, 2);
    let decl: Vec<(String, bool)> = target
        .columns("all_types")
        .into_iter()
        .map(|(_, t, notnull)| (t, notnull))
        .collect();
    assert_eq!(
        decl,
        [
            ("INTEGER", true),
            ("INTEGER", false),
            ("TEXT", false),
            ("REAL", false),
            ("BOOLEAN", false),
            ("DECIMAL TEXT(38,10)", false),
            ("TIMESTAMP", false),
            ("TIMESTAMPTZ", false),
            ("TIME", false),
            ("DATE", false),
            ("UUID", false),
            ("TEXT", false),
            ("JSON TEXT", false),
            ("BLOB", false),
            ("INTEGER", false),
            ("TEXT", false),
        ]
        .map(|(t, n)| (t.to_string(), n))
    );
    assert_rows(
        &target.rows("SELECT * FROM all_types ORDER BY i16"),
        &[
            vec![
                int(i16::MIN as i64),
                int(i32::MAX as i64),
                text("18446744073709551615"),
                real(f32::from_bits(1) as f64),
                int(1),
                text("-9999999999999999999999999999.9999999999"),
                text("0001-01-01 00:00:00"),
                text("2040-01-01 00:00:00.123456+00:00"),
                text("24:00:00"),
                text("0001-01-01"),
                text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                text("P1Y2M3DT4H5M6.5S"),
                text("[1,2,null]"),
                blob(&[0, 0xff]),
                int(i64::MIN),
                text("$1.00"),
            ],
            vec![
                int(0),
                NULL,
                NULL,
                real(-1.5),
                int(0),
                text("0.0000000001"),
                text("2100-01-01 00:00:00.000001"),
                text("1969-12-31 23:59:59.999999+00:00"),
                text("00:00:00"),
                text("9999-12-31"),
                NULL,
                NULL,
                text("[]"),
                blob(&[]),
                int(i64::MAX),
                NULL,
            ],
        ],
    );
}

#[actix_web::test]
async fn nan_and_out_of_range_values_fail_naming_column_and_row_and_negative_zero_is_zero() {
    let target = TempDb::new("sqlite_sink_refuse");
    target
        .exec("CREATE TABLE t (id INTEGER, f REAL, ts TEXT); INSERT INTO t VALUES (0, 0, 'kept');");
    let columns = || {
        vec![
            column("id", LogicalType::Int64, true),
            column("f", LogicalType::Float64, true),
            column("ts", LogicalType::Timestamp, true),
        ]
    };
    let batch = |ids: &[i64], floats: &[f64], ts: &[i64]| -> Vec<ArrayRef> {
        vec![
            Arc::new(arrow_array::Int64Array::from(ids.to_vec())),
            Arc::new(arrow_array::Float64Array::from(floats.to_vec())),
            Arc::new(arrow_array::TimestampMicrosecondArray::from(ts.to_vec())),
        ]
    };
    let cases: [(Vec<Vec<ArrayRef>>, &str, u64, &str); 2] = [
        (
            vec![
                batch(&[1, 2], &[1.0, 2.0], &[0, 0]),
                batch(&[3, 4], &[3.0, f64::NAN], &[0, 0]),
            ],
            "f",
            4,
            "NaN",
        ),
        (
            vec![batch(&[1, 2], &[1.0, 2.0], &[0, i64::MAX])],
            "ts",
            2,
            "range",
        ),
    ];
    for (batches, col, row, words) in cases {
        let err = sink_batches(&target, "t", columns(), batches, true)
            .await
            .expect_err(words);
        match &err {
            EngineError::Value {
                column,
                row: r,
                message,
            } => {
                assert_eq!((column.as_str(), *r), (col, row), "{err}");
                assert!(message.contains(words), "{err}");
            }
            other => panic!("expected a value error, got {other:?}"),
        }
        assert_rows(
            &target.rows("SELECT * FROM t"),
            &[vec![int(0), real(0.0), text("kept")]],
        );
    }

    // Infinity is a value SQLite holds.
    sink_batches(
        &target,
        "t",
        columns(),
        vec![batch(&[1, 2], &[f64::INFINITY, f64::NEG_INFINITY], &[0, 0])],
        true,
    )
    .await
    .expect("infinities are stored");
    // -0.0 equals 0.0 (IEEE 754): stored as the 0 SQLite keeps of it.
    sink_batches(
        &target,
        "t",
        columns(),
        vec![batch(&[3], &[-0.0], &[0])],
        true,
    )
    .await
    .expect("-0.0 is stored");
    let rows = target.rows("SELECT id, f FROM t WHERE id > 0 ORDER BY id");
    assert_rows(
        &rows,
        &[
            vec![int(1), real(f64::INFINITY)],
            vec![int(2), real(f64::NEG_INFINITY)],
            vec![int(3), real(0.0)],
        ],
    );
    match &rows[2][1] {
        Value::Real(f) => assert!(f.is_sign_positive(), "stored as 0, not -0: {f}"),
        other => panic!("{other:?}"),
    }
}

#[actix_web::test]
async fn a_channel_that_closes_without_end_rolls_back() {
    let target = TempDb::new("sqlite_sink_noend");
    target.exec("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (0);");
    let batch: Vec<ArrayRef> = vec![Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3]))];
    let err = sink_batches(
        &target,
        "t",
        vec![column("id", LogicalType::Int64, true)],
        vec![batch],
        false,
    )
    .await
    .expect_err("no End");
    assert!(matches!(err, EngineError::Cancelled), "{err:?}");
    assert_rows(&target.rows("SELECT * FROM t"), &[vec![int(0)]]);
    assert_unlocked(&target);

    // A file the sink created for the transfer is removed again.
    let fresh = TempDb::new("sqlite_sink_noend_new");
    let batch: Vec<ArrayRef> = vec![Arc::new(arrow_array::Int64Array::from(vec![1]))];
    let err = sink_batches(
        &fresh,
        "t",
        vec![column("id", LogicalType::Int64, true)],
        vec![batch],
        false,
    )
    .await
    .expect_err("no End");
    assert!(matches!(err, EngineError::Cancelled), "{err:?}");
    assert!(!fresh.path().exists());
}

// ---------------------------------------------------------------------------------------------
// SQLite → other dialects.

#[actix_web::test]
async fn sqlite_edge_values_arrive_exactly_in_postgresql() {
    let source = TempDb::new("sqlite_to_pg_src");
    create_edge(&source);
    let db = unique_name("sqlite_to_pg");
    pg_execute("test", &format!("CREATE DATABASE {db}")).await;
    let result = engine_transfer(
        source.spec(),
        pg_spec(&db),
        "SELECT id, i, b, f, d38, dn, big, t, v, c, bl, dt, tm, ts, tz, u, j FROM edge ORDER BY id",
        Some("from_sqlite"),
        "edge",
        false,
    )
    .await;
    result.expect("the transfer succeeds");
    let client = pg_client(&db).await;
    let types = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = 'from_sqlite.edge'::regclass AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
            &[],
        )
        .await
        .unwrap();
    let types: Vec<(String, String)> = types.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected_types = [
        ("id", "bigint"),
        ("i", "bigint"),
        ("b", "boolean"),
        ("f", "double precision"),
        ("d38", "numeric(38,10)"),
        ("dn", "numeric(10,2)"),
        ("big", "numeric"),
        ("t", "text"),
        ("v", "character varying(20)"),
        ("c", "character(3)"),
        ("bl", "bytea"),
        ("dt", "date"),
        ("tm", "time without time zone"),
        ("ts", "timestamp without time zone"),
        ("tz", "timestamp with time zone"),
        ("u", "uuid"),
        ("j", "jsonb"),
    ];
    assert_eq!(
        types,
        expected_types.map(|(n, t)| (n.to_string(), t.to_string()))
    );
    // Every cell as PostgreSQL's text, in UTC.
    client.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let rows = client
        .query(
            "SELECT id::text, i::text, b::text, f::text, d38::text, dn::text, big::text, t, v, c,
                    encode(bl, 'hex'), dt::text, tm::text, ts::text, tz::text, u::text, j::text
             FROM from_sqlite.edge ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let cells: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| (0..17).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect();
    let s = |t: &str| Some(t.to_string());
    assert_eq!(cells[0][1..], vec![None; 16][..]);
    assert_eq!(
        cells[1],
        [
            s("2"),
            s("-9223372036854775808"),
            s("false"),
            s("5e-324"),
            s("-9999999999999999999999999999.9999999999"),
            s("-1.10"),
            s("-123456789012345678901234567890.123456789012"),
            s(""),
            s("ab"),
            s("xyz"),
            s("00ff00"),
            s("0001-01-01"),
            s("00:00:00"),
            s("1900-01-01 00:00:00.000001"),
            s("1970-01-01 05:29:59.999999+00"),
            s("00000000-0000-0000-0000-000000000000"),
            s(r#"{"a": [1, 2, {"b": null}], "c": "x"}"#),
        ]
    );
    assert_eq!(
        cells[2],
        [
            s("3"),
            s("9223372036854775807"),
            s("true"),
            s("1.7976931348623157e+308"),
            s("9999999999999999999999999999.9999999999"),
            s("12345678.99"),
            s("123456789012345678901234567890"),
            s("héllo 🚀 مرحبا עברית"),
            s("𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
            s("é🚀x"),
            s("ff"),
            s("9999-12-31"),
            s("23:59:59.999999"),
            s("2100-06-15 12:34:56.789012"),
            s("2039-12-31 10:00:00+00"),
            s("123e4567-e89b-12d3-a456-426614174000"),
            s("[]"),
        ]
    );
    assert_eq!(cells[3][3], s("Infinity"));
    assert_eq!(cells[3][12], s("13:45:00"));
    assert_eq!(cells[4][3], s("-Infinity"));
    assert_eq!(cells[4][12], s("24:00:00"));
    assert_eq!(cells[4][14], s("2024-06-30 21:59:59.5+00"));
    drop(client);
    pg_execute("test", &format!("DROP DATABASE {db} WITH (FORCE)")).await;
}

#[actix_web::test]
async fn sqlite_edge_values_arrive_exactly_in_mariadb() {
    let source = TempDb::new("sqlite_to_maria_src");
    create_edge(&source);
    let db = unique_name("sqlite_to_maria");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    // Rows 1 to 3 (4 and 5 hold ±Infinity, which MariaDB has not).
    let result = engine_transfer(
        source.spec(),
        mariadb_spec(&db),
        "SELECT id, i, b, d38, dn, big, t, v, bl, tm, ts, tz, u FROM edge
         WHERE id IN (1, 2, 3) ORDER BY id",
        None,
        "edge",
        false,
    )
    .await;
    result.expect("the transfer succeeds");
    use mysql_async::prelude::Queryable;
    let mut conn = crate::helpers::mariadb_conn().await;
    conn.query_drop(format!("USE `{db}`")).await.unwrap();
    let rows: Vec<mysql_async::Row> = conn
        .query(
            "SELECT CAST(id AS CHAR), CAST(i AS CHAR), CAST(b AS CHAR), CAST(d38 AS CHAR),
                    CAST(dn AS CHAR), CAST(big AS CHAR), t, v, HEX(bl),
                    CAST(tm AS CHAR), CAST(ts AS CHAR), CAST(tz AS CHAR), u
             FROM edge ORDER BY id",
        )
        .await
        .unwrap();
    let cells: Vec<Vec<Option<String>>> = rows
        .into_iter()
        .map(|r| {
            (0..13)
                .map(|i| r.get::<Option<String>, _>(i).flatten())
                .collect()
        })
        .collect();
    let s = |t: &str| Some(t.to_string());
    assert_eq!(cells[0][1..], vec![None; 12][..]);
    assert_eq!(
        cells[1],
        [
            s("2"),
            s("-9223372036854775808"),
            s("0"),
            s("-9999999999999999999999999999.9999999999"),
            s("-1.10"),
            s("-123456789012345678901234567890.123456789012000000000000000000"),
            s(""),
            s("ab"),
            s("00FF00"),
            s("00:00:00.000000"),
            s("1900-01-01 00:00:00.000001"),
            s("1970-01-01 05:29:59.999999"),
            s("00000000-0000-0000-0000-000000000000"),
        ]
    );
    assert_eq!(
        cells[2],
        [
            s("3"),
            s("9223372036854775807"),
            s("1"),
            s("9999999999999999999999999999.9999999999"),
            s("12345678.99"),
            s("123456789012345678901234567890.000000000000000000000000000000"),
            s("héllo 🚀 مرحبا עברית"),
            s("𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
            s("FF"),
            s("23:59:59.999999"),
            s("2100-06-15 12:34:56.789012"),
            s("2039-12-31 10:00:00.000000"),
            s("123e4567-e89b-12d3-a456-426614174000"),
        ]
    );
    conn.disconnect().await.ok();
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}

#[actix_web::test]
async fn postgresql_edge_values_arrive_exactly_in_sqlite() {
    let db = unique_name("pg_to_sqlite");
    pg_execute("test", &format!("CREATE DATABASE {db}")).await;
    pg_execute(
        &db,
        r#"CREATE TABLE edge (
            id int, s smallint, i integer, b bigint, n numeric(38,10), nu numeric, r real,
            d double precision, t text, vc varchar(10), bo boolean, by bytea, dt date, tm time,
            ts timestamp, tz timestamptz, u uuid, j jsonb, arr integer[], iv interval);
        INSERT INTO edge (id) VALUES (1);
        INSERT INTO edge VALUES (2, -32768, -2147483648, -9223372036854775808,
            '-9999999999999999999999999999.9999999999', '-123456789012345678901234567890.123456789',
            '1.4e-45', '-Infinity', '', 'שָׁלוֹם', false, '\x00ff', '0001-01-01', '00:00:00',
            '1900-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999-05:30',
            '00000000-0000-0000-0000-000000000000', '{"a":[1,2,{"b":null}]}', '{1,2,NULL}',
            '1 year 2 months 3 days 04:05:06.5');
        INSERT INTO edge VALUES (3, 32767, 2147483647, 9223372036854775807,
            '9999999999999999999999999999.9999999999', 'NaN', '3.4028235e38', 'Infinity',
            'héllo 🚀 مرحبا', 'ab', true, '\x', '9999-12-31', '24:00:00',
            '2100-06-15 12:34:56.789012', '2040-01-01 00:00:00.123456+14:00',
            'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '[]', '{}', '-1 days');"#,
    )
    .await;
    let target = TempDb::new("pg_to_sqlite");
    let result = engine_transfer(
        pg_spec(&db),
        target.spec(),
        "SELECT * FROM edge ORDER BY id",
        None,
        "edge",
        false,
    )
    .await;
    result.expect("the transfer succeeds");
    let decl: Vec<String> = target.columns("edge").into_iter().map(|c| c.1).collect();
    assert_eq!(
        decl,
        [
            "INTEGER",
            "INTEGER",
            "INTEGER",
            "INTEGER",
            "DECIMAL TEXT(38,10)",
            "DECIMAL TEXT",
            "REAL",
            "REAL",
            "TEXT",
            "VARCHAR(10)",
            "BOOLEAN",
            "BLOB",
            "DATE",
            "TIME",
            "TIMESTAMP",
            "TIMESTAMPTZ",
            "UUID",
            "JSON TEXT",
            "JSON TEXT",
            "TEXT",
        ]
    );
    let mut null_row = vec![NULL; 20];
    null_row[0] = int(1);
    assert_rows(
        &target.rows("SELECT * FROM edge ORDER BY id"),
        &[
            null_row,
            vec![
                int(2),
                int(-32768),
                int(-2147483648),
                int(i64::MIN),
                text("-9999999999999999999999999999.9999999999"),
                text("-123456789012345678901234567890.123456789"),
                real(1.4e-45_f32 as f64),
                real(f64::NEG_INFINITY),
                text(""),
                text("שָׁלוֹם"),
                int(0),
                blob(&[0, 0xff]),
                text("0001-01-01"),
                text("00:00:00"),
                text("1900-01-01 00:00:00.000001"),
                text("1970-01-01 05:29:59.999999+00:00"),
                text("00000000-0000-0000-0000-000000000000"),
                text(r#"{"a": [1, 2, {"b": null}]}"#),
                text("[1,2,null]"),
                text("P1Y2M3DT4H5M6.5S"),
            ],
            vec![
                int(3),
                int(32767),
                int(2147483647),
                int(i64::MAX),
                text("9999999999999999999999999999.9999999999"),
                text("NaN"),
                real(3.402_823_5e38_f32 as f64),
                real(f64::INFINITY),
                text("héllo 🚀 مرحبا"),
                text("ab"),
                int(1),
                blob(&[]),
                text("9999-12-31"),
                text("24:00:00"),
                text("2100-06-15 12:34:56.789012"),
                text("2039-12-31 10:00:00.123456+00:00"),
                text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                text("[]"),
                text("[]"),
                text("P-1D"),
            ],
        ],
    );

    // What SQLite cannot hold fails naming the column and row, and nothing is written.
    for (query, column, words) in [(
        "SELECT x AS f FROM (VALUES (1.0::float8), ('NaN')) v(x)",
        "f",
        "NaN",
    )] {
        let err = engine_transfer(pg_spec(&db), target.spec(), query, None, "refused", false)
            .await
            .expect_err(query);
        match &err {
            EngineError::Value {
                column: c,
                row,
                message,
            } => {
                assert_eq!((c.as_str(), *row), (column, 2), "{err}");
                assert!(message.contains(words), "{err}");
            }
            other => panic!("{query}: expected a value error, got {other:?}"),
        }
        assert!(!target.tables().contains(&"refused".to_string()));
    }
    pg_execute("test", &format!("DROP DATABASE {db} WITH (FORCE)")).await;
}

#[actix_web::test]
async fn mariadb_edge_values_arrive_exactly_in_sqlite() {
    let db = unique_name("maria_to_sqlite");
    mariadb_execute(&format!("CREATE DATABASE {db}")).await;
    mariadb_execute(&format!(
        "CREATE TABLE {db}.edge (
            id INT, ti TINYINT, b TINYINT(1), bu BIGINT UNSIGNED, d DECIMAL(38,10), f FLOAT,
            db DOUBLE, vc VARCHAR(10), t TEXT, bl BLOB, dt DATE, tm TIME(6), ts DATETIME(6),
            tsz TIMESTAMP(6) NULL, e ENUM('a', 'b'));
        INSERT INTO {db}.edge (id) VALUES (1);
        INSERT INTO {db}.edge VALUES (2, -128, 0, 0, -9999999999999999999999999999.9999999999,
            -1.5, -2.2250738585072014e-308, '', 'مرحبا 🚀', X'00FF', '1000-01-01',
            '00:00:00', '1969-07-20 20:17:40.000001', '1970-01-01 00:00:01.000001', 'a');
        INSERT INTO {db}.edge VALUES (3, 127, 1, 18446744073709551615,
            9999999999999999999999999999.9999999999, 3.5, 1.7976931348623157e308, 'abcdefghij',
            '', X'', '9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999',
            '2038-01-19 03:14:07.999999', 'b');"
    ))
    .await;
    let target = TempDb::new("maria_to_sqlite");
    let result = engine_transfer(
        mariadb_spec(&db),
        target.spec(),
        "SELECT * FROM edge ORDER BY id",
        None,
        "edge",
        false,
    )
    .await;
    result.expect("the transfer succeeds");
    let decl: Vec<String> = target.columns("edge").into_iter().map(|c| c.1).collect();
    assert_eq!(
        decl,
        [
            "INTEGER",
            "INTEGER",
            "BOOLEAN",
            "TEXT",
            "DECIMAL TEXT(38,10)",
            "REAL",
            "REAL",
            "VARCHAR(10)",
            "TEXT",
            "BLOB",
            "DATE",
            "TIME",
            "TIMESTAMP",
            "TIMESTAMPTZ",
            "VARCHAR(1)",
        ]
    );
    let mut null_row = vec![NULL; 15];
    null_row[0] = int(1);
    assert_rows(
        &target.rows("SELECT * FROM edge ORDER BY id"),
        &[
            null_row,
            vec![
                int(2),
                int(-128),
                int(0),
                text("0"),
                text("-9999999999999999999999999999.9999999999"),
                real(-1.5),
                real(-2.225_073_858_507_201_4e-308),
                text(""),
                text("مرحبا 🚀"),
                blob(&[0, 0xff]),
                text("1000-01-01"),
                text("00:00:00"),
                text("1969-07-20 20:17:40.000001"),
                text("1970-01-01 00:00:01.000001+00:00"),
                text("a"),
            ],
            vec![
                int(3),
                int(127),
                int(1),
                text("18446744073709551615"),
                text("9999999999999999999999999999.9999999999"),
                real(3.5),
                real(f64::MAX),
                text("abcdefghij"),
                text(""),
                blob(&[]),
                text("9999-12-31"),
                text("23:59:59.999999"),
                text("9999-12-31 23:59:59.999999"),
                text("2038-01-19 03:14:07.999999+00:00"),
                text("b"),
            ],
        ],
    );
    mariadb_execute(&format!("DROP DATABASE {db}")).await;
}
