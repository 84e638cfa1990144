//! The MySQL/MariaDB engine: source and sink against the machine's MariaDB, value by value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use mysql_async::prelude::Queryable;
use mysql_async::Value;
use sluice::engine::batch::{Progress, TargetTable};
use sluice::engine::pipeline::{run_transfer, TransferRequest};
use sluice::engine::types::LogicalType;
use sluice::engine::{Carrier, EngineError, SourceReader};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    engine_transfer, mariadb_spec, pg_client, pg_execute, sqlite_spec, unique_name,
};

/// A connection to the machine's MariaDB with the session in UTC.
async fn conn() -> mysql_async::Conn {
    let mut conn = crate::helpers::mariadb_conn().await;
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    conn
}

async fn run(sql: &str) {
    let mut c = conn().await;
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.disconnect().await.ok();
}

/// Rows of a query over the binary protocol (typed values).
async fn fetch(sql: &str) -> Vec<Vec<Value>> {
    let mut c = conn().await;
    let rows: Vec<mysql_async::Row> = c
        .exec(sql, ())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.disconnect().await.ok();
    rows.into_iter().map(|r| r.unwrap()).collect()
}

fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A fresh database on the machine's MariaDB.
async fn database(prefix: &str) -> String {
    let db = unique_name(prefix);
    run(&format!("CREATE DATABASE {} CHARACTER SET utf8mb4", q(&db))).await;
    db
}

async fn drop_database(db: &str) {
    run(&format!("DROP DATABASE IF EXISTS {}", q(db))).await;
}

async fn table_exists(db: &str, table: &str) -> bool {
    let rows = fetch(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}'",
        db.replace('\'', "''")
    ))
    .await;
    rows.iter()
        .any(|r| r[0] == Value::Bytes(table.as_bytes().to_vec()))
}

async fn leftover_staging_tables(db: &str) -> Vec<Vec<Value>> {
    fetch(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' \
         AND TABLE_NAME LIKE '%\\_\\_sluice\\_%'",
        db.replace('\'', "''")
    ))
    .await
}

/// Values compared across integer widths (a tinyint may become a smallint).
#[derive(Debug, PartialEq)]
enum Cell {
    Null,
    Int(i128),
    F32(u32),
    F64(u64),
    Bytes(Vec<u8>),
    Date(u16, u8, u8, u8, u8, u8, u32),
    Time(bool, u32, u8, u8, u8, u32),
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::NULL => Cell::Null,
        Value::Int(i) => Cell::Int(i128::from(*i)),
        Value::UInt(u) => Cell::Int(i128::from(*u)),
        Value::Float(f) => Cell::F32(f.to_bits()),
        Value::Double(d) => Cell::F64(d.to_bits()),
        Value::Bytes(b) => Cell::Bytes(b.clone()),
        Value::Date(a, b, c, d, e, f, g) => Cell::Date(*a, *b, *c, *d, *e, *f, *g),
        Value::Time(a, b, c, d, e, f) => Cell::Time(*a, *b, *c, *d, *e, *f),
    }
}

const EDGE_COLUMNS: &str = "id, b, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, f, d, dec38, dec65, \
     vc, ch, tx, lt, vb, bl, dt, tm, dtm, ts, j, e, y, bt, b12";

/// The edge-case table: NULL everywhere, minimums, maximums, and awkward values.
async fn create_edge_table(db: &str) {
    let big_text: String = "é😀\t\\\n".repeat(1 << 17);
    assert!(big_text.len() > 1 << 20);
    let mut c = conn().await;
    c.query_drop(format!("USE {}", q(db))).await.unwrap();
    c.query_drop(
        "CREATE TABLE edge (
            id int NOT NULL PRIMARY KEY,
            b tinyint(1), ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
            mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint,
            biu bigint unsigned, f float, d double, dec38 decimal(38,10), dec65 decimal(65,30),
            vc varchar(20), ch char(5), tx text, lt longtext, vb varbinary(10), bl blob,
            dt date, tm time(6), dtm datetime(6), ts timestamp(6) NULL DEFAULT NULL,
            j json, e enum('a','b'), y year, bt bit(1), b12 bit(12)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await
    .unwrap();
    c.query_drop("INSERT INTO edge (id) VALUES (1)")
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO edge VALUES (2, 0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
            -9223372036854775808, 0, -3.40282e38, -1.7976931348623157e308,
            '-9999999999999999999999999999.9999999999',
            '-99999999999999999999999999999999999.999999999999999999999999999999',
            '', '', '', '', '', x'00FF00', '0001-01-01', '00:00:00', '0001-01-01 00:00:00',
            '1970-01-01 00:00:01', '{}', 'a', 1901, b'0', b'0')",
    )
    .await
    .unwrap();
    c.exec_drop(
        "INSERT INTO edge VALUES (3, 1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647,
            4294967295, 9223372036854775807, 18446744073709551615, 3.40282e38,
            1.7976931348623157e308, '9999999999999999999999999999.9999999999',
            '99999999999999999999999999999999999.999999999999999999999999999999',
            'emoji 😀 שלום עולם', 'abcde', ?, ?, x'00FF', x'FF00FF', '9999-12-31',
            '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
            '{\"a\": [1, {\"b\": null}], \"c\": \"ü\"}', 'b', 2155, b'1', b'111111111111')",
        (
            "tab\there\nnewline \\backslash \0nul NULL \\N \r\n end",
            big_text.as_str(),
        ),
    )
    .await
    .unwrap();
    // The timestamp is given in +05:30; MariaDB stores the instant.
    c.query_drop("SET time_zone = '+05:30'").await.unwrap();
    c.query_drop(
        "INSERT INTO edge (id, f, d, dec38, dec65, vc, ch, tx, dt, tm, dtm, ts, j, b12)
         VALUES (4, 1.4e-45, 4.9e-324, '0.0000000001', '-0.000000000000000000000000000001',
            'NULL', '\\\\N', 'right-to-left: مرحبا بالعالم', '1969-07-20', '12:34:56.5',
            '1969-07-20 20:17:40.123456', '2024-01-31 13:45:00.123456', '[]', b'101')",
    )
    .await
    .unwrap();
    c.query_drop("SET time_zone = '+00:00'").await.unwrap();
    c.query_drop(
        "INSERT INTO edge (id, d, dtm, tx) VALUES
            (5, 2.2250738585072014e-308, '2100-02-28 12:00:00.000001', ''),
            (6, 0.1, '2262-04-11 23:47:16.854775', 'x')",
    )
    .await
    .unwrap();
    c.disconnect().await.ok();
}

/// Copy the edge table with the engine and compare every cell with the source.
async fn edge_round_trip() {
    let src = database("my_edge_src").await;
    let dst_db = unique_name("my_edge_dst");
    create_edge_table(&src).await;

    let written = engine_transfer(
        mariadb_spec(&src),
        mariadb_spec(&src),
        &format!("SELECT {EDGE_COLUMNS} FROM edge"),
        Some(&dst_db),
        "copy",
        false,
    )
    .await
    .expect("the transfer succeeds");
    assert_eq!(written, 6);

    // Every column reads back identically: MariaDB to MariaDB keeps each column's own type.
    let columns: Vec<&str> = EDGE_COLUMNS.split(", ").collect();
    let list = columns.join(", ");
    let source = fetch(&format!("SELECT {list} FROM {}.edge ORDER BY id", q(&src))).await;
    let target = fetch(&format!(
        "SELECT {list} FROM {}.copy ORDER BY id",
        q(&dst_db)
    ))
    .await;
    assert_eq!(source.len(), target.len());
    for (s, t) in source.iter().zip(&target) {
        for (i, name) in columns.iter().enumerate() {
            assert_eq!(
                cell(&s[i]),
                cell(&t[i]),
                "column {name}, id {:?}",
                cell(&s[0])
            );
        }
    }
    // A few cells spelled out.
    let by_id = |id: usize, col: &str| {
        target[id - 1][columns.iter().position(|c| *c == col).unwrap()].clone()
    };
    assert_eq!(by_id(3, "biu"), Value::UInt(18_446_744_073_709_551_615));
    assert_eq!(by_id(2, "bi"), Value::Int(i64::MIN));
    assert_eq!(
        by_id(3, "dec65"),
        Value::Bytes(
            b"99999999999999999999999999999999999.999999999999999999999999999999".to_vec()
        )
    );
    assert_eq!(by_id(4, "ts"), Value::Date(2024, 1, 31, 8, 15, 0, 123_456));
    assert_eq!(by_id(4, "d"), Value::Double(4.9e-324));
    assert_eq!(by_id(4, "f"), Value::Float(1.4e-45));
    assert_eq!(by_id(4, "vc"), Value::Bytes(b"NULL".to_vec()));
    assert_eq!(by_id(4, "ch"), Value::Bytes(b"\\N".to_vec()));
    assert_eq!(by_id(2, "vc"), Value::Bytes(Vec::new()));
    assert_eq!(by_id(1, "vc"), Value::NULL);
    assert_eq!(by_id(2, "bl"), Value::Bytes(vec![0, 0xFF, 0]));
    assert_eq!(by_id(2, "dt"), Value::Date(1, 1, 1, 0, 0, 0, 0));
    assert_eq!(
        by_id(4, "dtm"),
        Value::Date(1969, 7, 20, 20, 17, 40, 123_456)
    );
    assert_eq!(
        by_id(3, "tx"),
        Value::Bytes(b"tab\there\nnewline \\backslash \0nul NULL \\N \r\n end".to_vec())
    );
    assert_eq!(by_id(3, "bt"), Value::Bytes(vec![1]));
    assert_eq!(by_id(3, "e"), Value::Bytes(b"b".to_vec()));
    assert_eq!(by_id(3, "y"), Value::Int(2155));

    let types = fetch(&format!(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = '{dst_db}' AND TABLE_NAME = 'copy' ORDER BY ORDINAL_POSITION"
    ))
    .await;
    let types: Vec<(String, String, String)> = types
        .into_iter()
        .map(|r| {
            let s = |v: &Value| match v {
                Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
                other => format!("{other:?}"),
            };
            (s(&r[0]), s(&r[1]), s(&r[2]))
        })
        .collect();
    // The source's own types, exactly (MariaDB's json is longtext with a json_valid check).
    let expected = [
        ("id", "int(11)", "NO"),
        ("b", "tinyint(1)", "YES"),
        ("ti", "tinyint(4)", "YES"),
        ("tiu", "tinyint(3) unsigned", "YES"),
        ("si", "smallint(6)", "YES"),
        ("siu", "smallint(5) unsigned", "YES"),
        ("mi", "mediumint(9)", "YES"),
        ("miu", "mediumint(8) unsigned", "YES"),
        ("i", "int(11)", "YES"),
        ("iu", "int(10) unsigned", "YES"),
        ("bi", "bigint(20)", "YES"),
        ("biu", "bigint(20) unsigned", "YES"),
        ("f", "float", "YES"),
        ("d", "double", "YES"),
        ("dec38", "decimal(38,10)", "YES"),
        ("dec65", "decimal(65,30)", "YES"),
        ("vc", "varchar(20)", "YES"),
        ("ch", "char(5)", "YES"),
        ("tx", "text", "YES"),
        ("lt", "longtext", "YES"),
        ("vb", "varbinary(10)", "YES"),
        ("bl", "blob", "YES"),
        ("dt", "date", "YES"),
        ("tm", "time(6)", "YES"),
        ("dtm", "datetime(6)", "YES"),
        ("ts", "timestamp(6)", "YES"),
        ("j", "longtext", "YES"),
        ("e", "enum('a','b')", "YES"),
        ("y", "year(4)", "YES"),
        ("bt", "bit(1)", "YES"),
        ("b12", "bit(12)", "YES"),
    ];
    assert_eq!(
        types,
        expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    let json_check = fetch(&format!(
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = '{dst_db}' AND TABLE_NAME = 'copy'"
    ))
    .await;
    assert_eq!(
        json_check,
        vec![vec![Value::Bytes(b"json_valid(`j`)".to_vec())]]
    );
    assert!(leftover_staging_tables(&dst_db).await.is_empty());

    drop_database(&src).await;
    drop_database(&dst_db).await;
}

#[actix_web::test]
async fn an_edge_case_table_round_trips_cell_for_cell_through_load_data() {
    edge_round_trip().await;
}

/// Run `work` with the server's local_infile off, restoring it whatever happens.
async fn with_local_infile_off<F: std::future::Future<Output = ()>>(work: F) {
    run("SET GLOBAL local_infile = 0").await;
    let outcome = std::panic::AssertUnwindSafe(work).catch_unwind().await;
    run("SET GLOBAL local_infile = 1").await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[actix_web::test]
async fn the_insert_fallback_gives_the_same_result_when_the_server_refuses_local_infile() {
    with_local_infile_off(async {
        edge_round_trip().await;
        value_too_long_fails_with_its_column_and_row().await;
        every_logical_type_is_written_exactly().await;
        values_mysql_cannot_hold_fail_with_their_column_and_row().await;
    })
    .await;
}

#[actix_web::test]
async fn the_source_describes_mariadb_column_types_exactly() {
    let src = database("my_types").await;
    create_edge_table(&src).await;
    let source = sluice::engine::mysql::source::open(
        &mariadb_spec(&src),
        &format!("SELECT {EDGE_COLUMNS}, 1.5 AS lit, CAST(NULL AS CHAR) AS nothing FROM edge"),
        Carrier::PostgresBinary,
    )
    .await
    .unwrap();
    let described: Vec<(String, LogicalType, bool, String)> = source
        .columns()
        .iter()
        .map(|c| (c.name.clone(), c.ty.clone(), c.nullable, c.db_type.clone()))
        .collect();
    let text = |n: Option<u32>, fixed: bool| LogicalType::Text { max_len: n, fixed };
    let expected: Vec<(&str, LogicalType, bool, &str)> = vec![
        ("id", LogicalType::Int32, false, "int"),
        ("b", LogicalType::Boolean, true, "tinyint(1)"),
        ("ti", LogicalType::Int16, true, "tinyint"),
        ("tiu", LogicalType::Int16, true, "tinyint unsigned"),
        ("si", LogicalType::Int16, true, "smallint"),
        ("siu", LogicalType::Int32, true, "smallint unsigned"),
        ("mi", LogicalType::Int32, true, "mediumint"),
        ("miu", LogicalType::Int32, true, "mediumint unsigned"),
        ("i", LogicalType::Int32, true, "int"),
        ("iu", LogicalType::Int64, true, "int unsigned"),
        ("bi", LogicalType::Int64, true, "bigint"),
        ("biu", LogicalType::UInt64, true, "bigint unsigned"),
        ("f", LogicalType::Float32, true, "float"),
        ("d", LogicalType::Float64, true, "double"),
        (
            "dec38",
            LogicalType::Decimal {
                precision: 38,
                scale: 10,
            },
            true,
            "decimal(38,10)",
        ),
        (
            "dec65",
            LogicalType::BigDecimal {
                precision: Some(65),
                scale: Some(30),
            },
            true,
            "decimal(65,30)",
        ),
        ("vc", text(Some(20), false), true, "varchar(20)"),
        ("ch", text(Some(5), true), true, "char(5)"),
        ("tx", text(None, false), true, "text"),
        ("lt", text(None, false), true, "longtext"),
        (
            "vb",
            LogicalType::Binary { max_len: Some(10) },
            true,
            "varbinary(10)",
        ),
        ("bl", LogicalType::Binary { max_len: None }, true, "blob"),
        ("dt", LogicalType::Date, true, "date"),
        ("tm", LogicalType::Time, true, "time(6)"),
        ("dtm", LogicalType::Timestamp, true, "datetime(6)"),
        ("ts", LogicalType::TimestampTz, true, "timestamp(6)"),
        ("j", LogicalType::Json, true, "json"),
        ("e", text(Some(1), false), true, "enum"),
        ("y", LogicalType::Int16, true, "year"),
        ("bt", LogicalType::Boolean, true, "bit(1)"),
        (
            "b12",
            LogicalType::Binary { max_len: Some(2) },
            true,
            "bit(12)",
        ),
        (
            "lit",
            LogicalType::Decimal {
                precision: 2,
                scale: 1,
            },
            true,
            "decimal(2,1)",
        ),
        ("nothing", text(None, false), true, "varchar(0)"),
    ];
    assert_eq!(
        described,
        expected
            .into_iter()
            .map(|(n, t, null, db)| (n.to_string(), t, null, db.to_string()))
            .collect::<Vec<_>>()
    );
    drop(source);
    drop_database(&src).await;
}

#[actix_web::test]
async fn a_zero_row_result_creates_the_table_with_the_source_column_types() {
    let src = database("my_zero").await;
    create_edge_table(&src).await;
    let written = engine_transfer(
        mariadb_spec(&src),
        mariadb_spec(&src),
        &format!("SELECT {EDGE_COLUMNS} FROM edge WHERE id < 0"),
        None,
        "empty",
        false,
    )
    .await
    .unwrap();
    assert_eq!(written, 0);
    let types = fetch(&format!(
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = '{src}' AND TABLE_NAME = 'empty' ORDER BY ORDINAL_POSITION"
    ))
    .await;
    let types: Vec<String> = types
        .into_iter()
        .map(|r| match &r[0] {
            Value::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        types.join(" "),
        "int(11) tinyint(1) tinyint(4) tinyint(3) unsigned smallint(6) smallint(5) unsigned \
         mediumint(9) mediumint(8) unsigned int(11) int(10) unsigned bigint(20) \
         bigint(20) unsigned float double decimal(38,10) decimal(65,30) varchar(20) char(5) \
         text longtext varbinary(10) blob date time(6) datetime(6) timestamp(6) longtext \
         enum('a','b') year(4) bit(1) bit(12)"
    );
    assert!(fetch(&format!("SELECT * FROM {}.empty", q(&src)))
        .await
        .is_empty());
    drop_database(&src).await;
}

#[actix_web::test]
async fn appending_matches_columns_by_name_whatever_their_order() {
    let db = database("my_append").await;
    run(&format!(
        "CREATE TABLE {}.t (c varchar(10), a int, extra int DEFAULT 7) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!("INSERT INTO {}.t VALUES ('old', 1, 1)", q(&db))).await;
    let written = engine_transfer(
        mariadb_spec(&db),
        mariadb_spec(&db),
        "SELECT 2 AS A, 'new' AS c UNION ALL SELECT 3, NULL",
        None,
        "t",
        false,
    )
    .await
    .unwrap();
    assert_eq!(written, 2);
    let rows = fetch(&format!("SELECT c, a, extra FROM {}.t ORDER BY a", q(&db))).await;
    assert_eq!(
        rows,
        vec![
            vec![Value::Bytes(b"old".to_vec()), Value::Int(1), Value::Int(1)],
            vec![Value::Bytes(b"new".to_vec()), Value::Int(2), Value::Int(7)],
            vec![Value::NULL, Value::Int(3), Value::Int(7)],
        ]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn appending_a_column_the_target_lacks_fails_naming_it_and_leaves_the_target_untouched() {
    let db = database("my_mismatch").await;
    run(&format!("CREATE TABLE {}.t (a int) ENGINE=InnoDB", q(&db))).await;
    run(&format!("INSERT INTO {}.t VALUES (1)", q(&db))).await;
    let error = engine_transfer(
        mariadb_spec(&db),
        mariadb_spec(&db),
        "SELECT 2 AS a, 'x' AS `not there`",
        None,
        "t",
        false,
    )
    .await
    .unwrap_err();
    match &error {
        EngineError::Schema(message) => assert!(message.contains("\"not there\""), "{message}"),
        other => panic!("expected a schema error, got {other:?}"),
    }
    assert_eq!(
        fetch(&format!("SELECT a FROM {}.t", q(&db))).await,
        vec![vec![Value::Int(1)]]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn overwrite_swaps_in_a_new_table_and_leaves_no_staging_table_behind() {
    let db = database("my_overwrite").await;
    run(&format!(
        "CREATE TABLE {}.t (a int, old text) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!(
        "INSERT INTO {}.t VALUES (1, 'x'), (2, 'y')",
        q(&db)
    ))
    .await;
    let written = engine_transfer(
        mariadb_spec(&db),
        mariadb_spec(&db),
        "SELECT seq AS a, CONCAT('row ', seq) AS b FROM seq_1_to_2500",
        None,
        "t",
        true,
    )
    .await
    .unwrap();
    assert_eq!(written, 2500);
    let rows = fetch(&format!(
        "SELECT COUNT(*), SUM(a), MIN(b), MAX(b) FROM {}.t",
        q(&db)
    ))
    .await;
    assert_eq!(cell(&rows[0][0]), Cell::Int(2500));
    assert_eq!(rows[0][1], Value::Bytes(b"3126250".to_vec()));
    assert_eq!(rows[0][2], Value::Bytes(b"row 1".to_vec()));
    assert_eq!(rows[0][3], Value::Bytes(b"row 999".to_vec()));
    let columns = fetch(&format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' \
         AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION"
    ))
    .await;
    assert_eq!(
        columns,
        vec![
            vec![Value::Bytes(b"a".to_vec())],
            vec![Value::Bytes(b"b".to_vec())]
        ]
    );
    assert!(leftover_staging_tables(&db).await.is_empty());
    drop_database(&db).await;
}

/// A query that fails on the server after 150,000 rows.
const FAILS_AFTER_150000: &str = "SELECT seq AS n, \
     IF(seq = 150000, (SELECT 1 UNION ALL SELECT 2), seq) AS v FROM seq_1_to_200000";

#[actix_web::test]
async fn a_source_error_after_150000_rows_leaves_the_target_unchanged_in_every_mode() {
    let db = database("my_midfail").await;
    run(&format!(
        "CREATE TABLE {}.t (n bigint, v bigint) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!("INSERT INTO {}.t VALUES (-1, -1)", q(&db))).await;
    for overwrite in [false, true] {
        let error = engine_transfer(
            mariadb_spec(&db),
            mariadb_spec(&db),
            FAILS_AFTER_150000,
            None,
            "t",
            overwrite,
        )
        .await
        .unwrap_err();
        match &error {
            EngineError::Source { message, .. } => {
                assert!(
                    message.contains("Subquery returns more than 1 row"),
                    "{message}"
                )
            }
            other => panic!("expected the source's error, got {other:?}"),
        }
        assert_eq!(
            fetch(&format!("SELECT n, v FROM {}.t", q(&db))).await,
            vec![vec![Value::Int(-1), Value::Int(-1)]],
            "overwrite={overwrite}"
        );
        assert!(leftover_staging_tables(&db).await.is_empty());
    }
    // A new table in a new database: neither is left behind.
    let new_db = unique_name("my_midfail_new");
    let error = engine_transfer(
        mariadb_spec(&db),
        mariadb_spec(&db),
        FAILS_AFTER_150000,
        Some(&new_db),
        "t",
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, EngineError::Source { .. }), "{error:?}");
    let databases = fetch(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{new_db}'"
    ))
    .await;
    assert!(
        databases.is_empty(),
        "the created database is dropped again"
    );
    drop_database(&db).await;
}

async fn value_too_long_fails_with_its_column_and_row() {
    let db = database("my_toolong").await;
    run(&format!(
        "CREATE TABLE {}.t (n int, v varchar(3)) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!("INSERT INTO {}.t VALUES (0, 'old')", q(&db))).await;
    let error = engine_transfer(
        mariadb_spec(&db),
        mariadb_spec(&db),
        "SELECT seq AS n, IF(seq = 1234, 'too long', 'ok') AS v FROM seq_1_to_3000",
        None,
        "t",
        false,
    )
    .await
    .unwrap_err();
    match &error {
        EngineError::Value {
            column,
            row,
            message,
        } => {
            assert_eq!(column, "v");
            assert_eq!(*row, 1234);
            // LOAD DATA reports a truncation warning, an INSERT the strict-mode error.
            assert!(
                message.contains("Data truncated") || message.contains("Data too long"),
                "{message}"
            );
        }
        other => panic!("expected a value error, got {other:?}"),
    }
    assert_eq!(
        fetch(&format!("SELECT n, v FROM {}.t", q(&db))).await,
        vec![vec![Value::Int(0), Value::Bytes(b"old".to_vec())]]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn a_value_too_long_for_an_existing_column_fails_with_its_column_and_row() {
    value_too_long_fails_with_its_column_and_row().await;
}

#[actix_web::test]
async fn values_the_logical_types_cannot_carry_fail_as_value_errors() {
    let db = database("my_badvalues").await;
    run(&format!(
        "CREATE TABLE {}.flags (id int, b tinyint(1)) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!(
        "INSERT INTO {}.flags VALUES (1, 0), (2, 1), (3, 2)",
        q(&db)
    ))
    .await;
    let cases = [
        ("SELECT b FROM flags ORDER BY id", "b", 3, "not a boolean"),
        (
            "SELECT CAST('25:00:00' AS TIME) AS t",
            "t",
            1,
            "outside 00:00:00..24:00:00",
        ),
        (
            "SELECT CAST('-00:00:01' AS TIME) AS t",
            "t",
            1,
            "outside 00:00:00..24:00:00",
        ),
    ];
    for (query, col, at, text) in cases {
        let error = engine_transfer(
            mariadb_spec(&db),
            mariadb_spec(&db),
            query,
            None,
            "out",
            false,
        )
        .await
        .unwrap_err();
        match &error {
            EngineError::Value {
                column,
                row,
                message,
            } => {
                assert_eq!((column.as_str(), *row), (col, at), "{query}");
                assert!(message.contains(text), "{message}");
            }
            other => panic!("{query}: expected a value error, got {other:?}"),
        }
        assert!(!table_exists(&db, "out").await, "{query}");
    }
    drop_database(&db).await;
}

#[actix_web::test]
async fn hostile_identifiers_round_trip_without_touching_anything_else() {
    let src = database("my_hostile_src").await;
    let dst = format!(
        "sluice_test_h{} `x`; DROP y; -- é",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let table = "Robert'); DROP TABLE students;-- `q` \"dq\" é 名前";
    let columns = [
        "a`b",
        "c'd",
        "e\"f",
        "g; DROP TABLE students; --",
        "spaces in name",
        "名前",
        "SELECT",
    ];
    run(&format!("CREATE DATABASE {}", q(&dst))).await;
    run(&format!(
        "CREATE TABLE {}.students (id int) ENGINE=InnoDB",
        q(&dst)
    ))
    .await;
    run(&format!("INSERT INTO {}.students VALUES (42)", q(&dst))).await;
    let defs: Vec<String> = columns.iter().map(|c| format!("{} text", q(c))).collect();
    run(&format!(
        "CREATE TABLE {}.src ({}) ENGINE=InnoDB",
        q(&src),
        defs.join(", ")
    ))
    .await;
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("'{}'", c.replace('\'', "''")))
        .collect();
    run(&format!(
        "INSERT INTO {}.src VALUES ({})",
        q(&src),
        values.join(", ")
    ))
    .await;

    for overwrite in [false, true] {
        let written = engine_transfer(
            mariadb_spec(&src),
            mariadb_spec(&src),
            "SELECT * FROM src",
            Some(&dst),
            table,
            overwrite,
        )
        .await
        .unwrap();
        assert_eq!(written, 1);
    }
    let list: Vec<String> = columns.iter().map(|c| q(c)).collect();
    let rows = fetch(&format!(
        "SELECT {} FROM {}.{}",
        list.join(", "),
        q(&dst),
        q(table)
    ))
    .await;
    assert_eq!(
        rows,
        vec![columns
            .iter()
            .map(|c| Value::Bytes(c.as_bytes().to_vec()))
            .collect::<Vec<_>>()]
    );
    assert_eq!(
        fetch(&format!("SELECT id FROM {}.students", q(&dst))).await,
        vec![vec![Value::Int(42)]]
    );
    let tables = fetch(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' \
         ORDER BY TABLE_NAME",
        dst.replace('\'', "''")
    ))
    .await;
    assert_eq!(
        tables,
        vec![
            vec![Value::Bytes(table.as_bytes().to_vec())],
            vec![Value::Bytes(b"students".to_vec())],
        ]
    );
    // Names MySQL cannot hold are refused before anything happens.
    let error = engine_transfer(
        mariadb_spec(&src),
        mariadb_spec(&src),
        "SELECT * FROM src",
        Some(&dst),
        &"x".repeat(65),
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, EngineError::Schema(_)), "{error:?}");
    drop_database(&src).await;
    drop_database(&dst).await;
}

/// Start a transfer, cancel it after a second, and check it stops at once, leaving nothing
/// running on the server and nothing in the target.
async fn cancel_after_a_second(select_list: &str, from: &str) {
    let db = database("my_cancel").await;
    let marker = unique_name("marker");
    let query = format!("SELECT {select_list}, '{marker}' AS marker {from}");
    let cancel = CancellationToken::new();
    let request = TransferRequest {
        source: mariadb_spec(&db),
        target: mariadb_spec(&db),
        read: sluice::engine::SourceSpec::Query(query),
        write: sluice::engine::SinkSpec::Table(TargetTable {
            schema: None,
            table: "t".into(),
            overwrite: false,
        }),
        batch_rows: 10_000,
        partitioning: None,
    };
    let progress = Arc::new(Progress::default());
    let task = tokio::spawn(run_transfer(request, progress.clone(), cancel.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    cancel.cancel();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the transfer stops within 10 s of the cancel")
        .unwrap();
    let took = started.elapsed();
    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let running = fetch(&format!(
        "SELECT ID, INFO FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
    ))
    .await;
    assert!(running.is_empty(), "still running: {running:?}");
    let loading = fetch(&format!(
        "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{db}%' \
         AND ID <> CONNECTION_ID()"
    ))
    .await;
    assert!(loading.is_empty(), "still running: {loading:?}");
    assert!(!table_exists(&db, "t").await);
    assert!(leftover_staging_tables(&db).await.is_empty());
    drop_database(&db).await;
}

#[actix_web::test]
async fn cancelling_a_long_read_stops_the_query_on_the_server_at_once() {
    cancel_after_a_second(
        "seq AS n, REPEAT('x', 100) AS pad",
        "FROM seq_1_to_1000000000",
    )
    .await;
}

#[actix_web::test]
async fn cancelling_before_the_first_row_stops_the_query_on_the_server_at_once() {
    cancel_after_a_second("SLEEP(60) AS s", "").await;
}

/// Whether another helper's half has landed yet.

#[actix_web::test]
async fn mariadb_rows_arrive_exactly_in_postgresql() {
    let src = database("my_to_pg").await;
    create_edge_table(&src).await;
    let pg_db = unique_name("my_to_pg");
    pg_execute("test", &format!("CREATE DATABASE {pg_db}")).await;
    let result = engine_transfer(
        mariadb_spec(&src),
        crate::helpers::pg_spec(&pg_db),
        &format!("SELECT {EDGE_COLUMNS} FROM edge ORDER BY id"),
        None,
        "copy",
        false,
    )
    .await;
    // PostgreSQL text cannot hold NUL: a value error naming the cell, nothing created.
    match &result {
        Err(EngineError::Value { column, row, .. }) => {
            assert_eq!((column.as_str(), *row), ("tx", 3))
        }
        other => panic!("expected the NUL to be refused, got {other:?}"),
    }
    let columns = EDGE_COLUMNS.replace("tx,", "REPLACE(tx, CHAR(0 USING utf8mb4), '<NUL>') AS tx,");
    let result = engine_transfer(
        mariadb_spec(&src),
        crate::helpers::pg_spec(&pg_db),
        &format!("SELECT {columns} FROM edge"),
        None,
        "copy",
        false,
    )
    .await;
    assert_eq!(result.unwrap(), 6);
    let client = pg_client(&pg_db).await;
    let row = client
        .query_one(
            "SELECT biu::text, bi, dec65::text, (ts AT TIME ZONE 'UTC')::text, dtm::text, tm::text, vc, ch, tx,
                    encode(bl, 'hex'), j::text, b, bt, d, f, dt::text, e, y
             FROM copy WHERE id = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "18446744073709551615");
    assert_eq!(row.get::<_, i64>(1), i64::MAX);
    assert_eq!(
        row.get::<_, String>(2),
        "99999999999999999999999999999999999.999999999999999999999999999999"
    );
    assert_eq!(row.get::<_, String>(3), "2038-01-19 03:14:07.999999");
    assert_eq!(row.get::<_, String>(4), "9999-12-31 23:59:59.999999");
    assert_eq!(row.get::<_, String>(5), "23:59:59.999999");
    assert_eq!(row.get::<_, String>(6), "emoji 😀 שלום עולם");
    assert_eq!(row.get::<_, String>(7), "abcde");
    assert_eq!(
        row.get::<_, String>(8),
        "tab\there\nnewline \\backslash <NUL>nul NULL \\N \r\n end"
    );
    assert_eq!(row.get::<_, String>(9), "ff00ff");
    assert_eq!(
        row.get::<_, String>(10),
        r#"{"a": [1, {"b": null}], "c": "ü"}"#
    );
    assert!(row.get::<_, bool>(11));
    assert!(row.get::<_, bool>(12));
    assert_eq!(row.get::<_, f64>(13), 1.7976931348623157e308);
    assert_eq!(row.get::<_, f32>(14), 3.40282e38);
    assert_eq!(row.get::<_, String>(15), "9999-12-31");
    assert_eq!(row.get::<_, String>(16), "b");
    assert_eq!(row.get::<_, i16>(17), 2155);
    let nulls: i32 = client
        .query_one(
            "SELECT num_nulls(b, ti, biu, vc, bl, ts, j, dtm, tm, dec38) FROM copy WHERE id = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 10);
    let subnormal: f64 = client
        .query_one("SELECT d FROM copy WHERE id = 4", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subnormal, 4.9e-324);
    drop(client);
    pg_execute("test", &format!("DROP DATABASE {pg_db} WITH (FORCE)")).await;
    drop_database(&src).await;
}

#[actix_web::test]
async fn mariadb_rows_arrive_exactly_in_sqlite() {
    let src = database("my_to_sqlite").await;
    create_edge_table(&src).await;
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("my_to_sqlite")));
    let result = engine_transfer(
        mariadb_spec(&src),
        sqlite_spec(&path),
        &format!("SELECT {EDGE_COLUMNS} FROM edge"),
        None,
        "copy",
        false,
    )
    .await;
    assert_eq!(result.unwrap(), 6);
    let db = rusqlite::Connection::open(&path).unwrap();
    let (biu, dec65, ts, dtm, vc, bl, b, d): (
        String,
        String,
        String,
        String,
        String,
        Vec<u8>,
        i64,
        f64,
    ) = db
        .query_row(
            "SELECT biu, dec65, ts, dtm, vc, bl, b, d FROM copy WHERE id = 3",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(biu, "18446744073709551615");
    assert_eq!(
        dec65,
        "99999999999999999999999999999999999.999999999999999999999999999999"
    );
    assert_eq!(ts, "2038-01-19 03:14:07.999999+00:00");
    assert_eq!(dtm, "9999-12-31 23:59:59.999999");
    assert_eq!(vc, "emoji 😀 שלום עולם");
    assert_eq!(bl, vec![0xFF, 0, 0xFF]);
    assert_eq!(b, 1);
    assert_eq!(d, 1.7976931348623157e308);
    let subnormal: f64 = db
        .query_row("SELECT d FROM copy WHERE id = 4", [], |r| r.get(0))
        .unwrap();
    assert_eq!(subnormal, 4.9e-324);
    drop(db);
    let _ = std::fs::remove_file(&path);
    drop_database(&src).await;
}

/// Feed the MySQL sink hand-made batches (types no MariaDB source produces); `end` says
/// whether the stream finishes with `End`.
async fn sink_batches(
    db: &str,
    table: &str,
    columns: Vec<sluice::engine::types::Column>,
    batches: Vec<Vec<arrow_array::ArrayRef>>,
    end: bool,
) -> Result<u64, EngineError> {
    use sluice::engine::batch::{Message, SinkContext};
    let schema = sluice::engine::types::arrow_schema(&columns);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let ctx = SinkContext {
        rx,
        cancel: CancellationToken::new(),
        progress: Arc::new(Progress::default()),
        columns,
        target: sluice::engine::SinkSpec::Table(TargetTable {
            schema: Some(db.to_string()),
            table: table.to_string(),
            overwrite: false,
        }),
        copy_offer: None,
    };
    // No default database: the sink creates the target's when missing.
    let spec = mariadb_spec("");
    let sink = tokio::spawn(async move { sluice::engine::mysql::sink::run(&spec, ctx).await });
    for arrays in batches {
        let batch = arrow_array::RecordBatch::try_new(schema.clone(), arrays).unwrap();
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

fn column(name: &str, ty: LogicalType) -> sluice::engine::types::Column {
    sluice::engine::types::Column {
        name: name.into(),
        ty,
        nullable: true,
        db_type: String::new(),
        native: None,
    }
}

async fn every_logical_type_is_written_exactly() {
    use arrow_array::builder::FixedSizeBinaryBuilder;
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int16Array, Int32Array, Int64Array, StringArray, Time64MicrosecondArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    let db = unique_name("my_sink_types");
    let text = |s: [Option<&str>; 2]| Arc::new(StringArray::from(s.to_vec())) as ArrayRef;
    let columns = vec![
        column("u", LogicalType::Uuid),
        column("j", LogicalType::Json),
        column(
            "arr",
            LogicalType::Array {
                db_type: "integer[]".into(),
            },
        ),
        column("iv", LogicalType::Interval),
        column(
            "d",
            LogicalType::Decimal {
                precision: 20,
                scale: 5,
            },
        ),
        column(
            "bd",
            LogicalType::BigDecimal {
                precision: None,
                scale: None,
            },
        ),
        column("tz", LogicalType::TimestampTz),
        column("ts", LogicalType::Timestamp),
        column("t", LogicalType::Time),
        column("dt", LogicalType::Date),
        column("f", LogicalType::Float32),
        column("g", LogicalType::Float64),
        column("bin", LogicalType::Binary { max_len: None }),
        column("b", LogicalType::Boolean),
        column("s", LogicalType::Int16),
        column("i", LogicalType::Int32),
        column("l", LogicalType::Int64),
        column("ul", LogicalType::UInt64),
        column(
            "o",
            LogicalType::Other {
                db_type: "point".into(),
            },
        ),
        column(
            "vc",
            LogicalType::Text {
                max_len: Some(3),
                fixed: false,
            },
        ),
    ];
    let mut uuids = FixedSizeBinaryBuilder::new(16);
    uuids
        .append_value(
            uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    uuids.append_null();
    let micros = |days: i64, secs: i64, us: i64| days * 86_400_000_000 + secs * 1_000_000 + us;
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(uuids.finish()),
        text([Some(r#"{"k": [1, 2, {"n": null}]}"#), None]),
        text([Some("[1, null, 3]"), None]),
        text([Some("P1Y2M3DT4H5M6.5S"), None]),
        Arc::new(
            Decimal128Array::from(vec![Some(-12_345_600i128), None])
                .with_precision_and_scale(20, 5)
                .unwrap(),
        ),
        text([
            Some("-12345678901234567890123456789012345.12345678901234567890123456789"),
            None,
        ]),
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(micros(19_753, 29_700, 123_456)), None])
                .with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(micros(-719_162, 0, 1)),
            None,
        ])),
        Arc::new(Time64MicrosecondArray::from(vec![
            Some(86_400_000_000),
            None,
        ])),
        Arc::new(Date32Array::from(vec![Some(2_932_896), None])),
        Arc::new(Float32Array::from(vec![Some(f32::MAX), None])),
        Arc::new(Float64Array::from(vec![Some(5e-324), None])),
        Arc::new(BinaryArray::from(vec![
            Some(&[0u8, 0xFF, b'\t', b'\\'][..]),
            None,
        ])),
        Arc::new(BooleanArray::from(vec![Some(true), None])),
        Arc::new(Int16Array::from(vec![Some(i16::MIN), None])),
        Arc::new(Int32Array::from(vec![Some(i32::MAX), None])),
        Arc::new(Int64Array::from(vec![Some(i64::MIN), None])),
        Arc::new(UInt64Array::from(vec![Some(u64::MAX), None])),
        text([Some("(1,2)"), None]),
        text([Some(""), None]),
    ];
    let written = sink_batches(&db, "types", columns, vec![arrays], true)
        .await
        .unwrap();
    assert_eq!(written, 2);
    let rows = fetch(&format!(
        "SELECT u, j, arr, iv, d, bd, tz, ts, t, dt, f, g, bin, b, s, i, l, ul, o, vc \
         FROM {}.types ORDER BY u IS NULL",
        q(&db)
    ))
    .await;
    let bytes = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    assert_eq!(
        rows[0],
        vec![
            bytes("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            bytes(r#"{"k": [1, 2, {"n": null}]}"#),
            bytes("[1, null, 3]"),
            bytes("P1Y2M3DT4H5M6.5S"),
            bytes("-123.45600"),
            bytes("-12345678901234567890123456789012345.123456789012345678901234567890"),
            Value::Date(2024, 1, 31, 8, 15, 0, 123_456),
            Value::Date(1, 1, 1, 0, 0, 0, 1),
            Value::Time(false, 1, 0, 0, 0, 0),
            Value::Date(9999, 12, 31, 0, 0, 0, 0),
            Value::Float(f32::MAX),
            Value::Double(5e-324),
            Value::Bytes(vec![0, 0xFF, b'\t', b'\\']),
            Value::Int(1),
            Value::Int(i16::MIN.into()),
            Value::Int(i32::MAX.into()),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            bytes("(1,2)"),
            bytes(""),
        ]
    );
    assert!(rows[1].iter().all(|v| *v == Value::NULL), "{:?}", rows[1]);
    let types = fetch(&format!(
        "SELECT GROUP_CONCAT(COLUMN_TYPE ORDER BY ORDINAL_POSITION SEPARATOR ' ') \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'types'"
    ))
    .await;
    assert_eq!(
        types[0][0],
        bytes(
            "char(36) longtext longtext text decimal(20,5) decimal(65,30) datetime(6) \
             datetime(6) time(6) date float double longblob tinyint(1) smallint(6) int(11) \
             bigint(20) bigint(20) unsigned longtext varchar(3)"
        )
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn the_sink_writes_every_logical_type_exactly() {
    every_logical_type_is_written_exactly().await;
}

async fn values_mysql_cannot_hold_fail_with_their_column_and_row() {
    use arrow_array::{
        ArrayRef, Date32Array, Float32Array, Float64Array, StringArray, TimestampMicrosecondArray,
    };
    let db = unique_name("my_sink_refuse");
    type Case = (
        &'static str,
        LogicalType,
        fn(bool) -> ArrayRef,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "nan",
            LogicalType::Float64,
            |bad| {
                Arc::new(Float64Array::from(vec![
                    1.0,
                    if bad { f64::NAN } else { 2.0 },
                ]))
            },
            "NaN",
        ),
        (
            "inf",
            LogicalType::Float32,
            |bad| {
                Arc::new(Float32Array::from(vec![
                    1.0,
                    if bad { f32::NEG_INFINITY } else { 2.0 },
                ]))
            },
            "infinity",
        ),
        (
            "year 0",
            LogicalType::Date,
            |bad| Arc::new(Date32Array::from(vec![0, if bad { -719_529 } else { 1 }])),
            "outside MySQL's date range",
        ),
        (
            "year 10000",
            LogicalType::Timestamp,
            |bad| {
                Arc::new(TimestampMicrosecondArray::from(vec![
                    0,
                    if bad { 253_402_300_800_000_000 } else { 1 },
                ]))
            },
            "outside MySQL's date range",
        ),
        (
            "numeric nan",
            LogicalType::BigDecimal {
                precision: None,
                scale: None,
            },
            |bad| Arc::new(StringArray::from(vec!["1", if bad { "NaN" } else { "2" }])),
            "not a decimal",
        ),
        (
            "36 digits",
            LogicalType::BigDecimal {
                precision: None,
                scale: None,
            },
            |bad| {
                Arc::new(StringArray::from(vec![
                    "1",
                    if bad {
                        "123456789012345678901234567890123456"
                    } else {
                        "2"
                    },
                ]))
            },
            "does not fit decimal(65,30)",
        ),
    ];
    for (name, ty, make, text) in cases {
        let columns = vec![column(name, ty)];
        // Rows 1–4 are fine; the second row of the third batch (row 6) is not.
        let batches = vec![vec![make(false)], vec![make(false)], vec![make(true)]];
        let error = sink_batches(&db, "refused", columns, batches, true)
            .await
            .unwrap_err();
        match &error {
            EngineError::Value {
                column,
                row,
                message,
            } => {
                assert_eq!((column.as_str(), *row), (name, 6));
                assert!(message.contains(text), "{name}: {message}");
            }
            other => panic!("{name}: expected a value error, got {other:?}"),
        }
    }
    // Nothing was created: not the table, not the database.
    let databases = fetch(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
    ))
    .await;
    assert!(databases.is_empty());
}

#[actix_web::test]
async fn negative_zero_is_stored_as_zero_since_ieee_754_holds_them_equal() {
    use arrow_array::{Float32Array, Float64Array};
    let db = unique_name("my_sink_neg_zero");
    let columns = vec![
        column("d", LogicalType::Float64),
        column("f", LogicalType::Float32),
    ];
    let batches = vec![vec![
        Arc::new(Float64Array::from(vec![-0.0, 1.5])) as arrow_array::ArrayRef,
        Arc::new(Float32Array::from(vec![-0.0f32, -2.5])),
    ]];
    let rows = sink_batches(&db, "zeros", columns, batches, true)
        .await
        .expect("-0.0 is written");
    assert_eq!(rows, 2);
    let stored = fetch(&format!(
        "SELECT CAST(d AS CHAR), CAST(f AS CHAR) FROM {}.zeros ORDER BY d",
        q(&db)
    ))
    .await;
    assert_eq!(
        stored,
        vec![
            vec![Value::Bytes(b"0".to_vec()), Value::Bytes(b"0".to_vec())],
            vec![
                Value::Bytes(b"1.5".to_vec()),
                Value::Bytes(b"-2.5".to_vec())
            ],
        ]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn values_mysql_cannot_hold_fail_with_their_column_and_row_and_nothing_is_created() {
    values_mysql_cannot_hold_fail_with_their_column_and_row().await;
}

#[actix_web::test]
async fn a_stream_that_ends_without_its_end_marker_is_rolled_back() {
    use arrow_array::{ArrayRef, Int32Array};
    let db = database("my_no_end").await;
    run(&format!("CREATE TABLE {}.t (n int) ENGINE=InnoDB", q(&db))).await;
    run(&format!("INSERT INTO {}.t VALUES (1)", q(&db))).await;
    let batch = || vec![Arc::new(Int32Array::from(vec![2, 3])) as ArrayRef];
    let result = sink_batches(
        &db,
        "t",
        vec![column("n", LogicalType::Int32)],
        vec![batch(), batch()],
        false,
    )
    .await;
    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    assert_eq!(
        fetch(&format!("SELECT n FROM {}.t", q(&db))).await,
        vec![vec![Value::Int(1)]]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn postgresql_rows_arrive_exactly_in_mariadb() {
    let db = unique_name("my_from_pg");
    let query = "SELECT 1::int AS id,
        '12345678901234567890123456789012345.123456789'::numeric AS big,
        123.45::numeric(38,10) AS dec,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
        '{\"a\": [1, {\"b\": null}]}'::jsonb AS j,
        ARRAY[1, NULL, 3]::int[] AS arr,
        interval '1 year 2 months 3 days 04:05:06.5' AS iv,
        timestamptz '2024-01-31 13:45:00.123456+05:30' AS tz,
        timestamp '1969-07-20 20:17:40.123456' AS ts,
        date '0001-01-01' AS d,
        time '24:00:00' AS t,
        'שלום 😀'::varchar(10) AS vc,
        '\\x00ff'::bytea AS b,
        true AS flag,
        5e-324::float8 AS sub,
        (-32768)::int2 AS s,
        NULL::text AS nothing";
    let result = engine_transfer(
        crate::helpers::pg_spec("test"),
        mariadb_spec(""),
        query,
        Some(&db),
        "from_pg",
        false,
    )
    .await;
    assert_eq!(result.unwrap(), 1);
    let rows = fetch(&format!(
        "SELECT big, `dec`, u, j, JSON_COMPACT(arr), iv, tz, ts, d, t, vc, b, flag, sub, s, nothing \
         FROM {}.from_pg",
        q(&db)
    ))
    .await;
    let bytes = |s: &str| Value::Bytes(s.as_bytes().to_vec());
    assert_eq!(
        rows,
        vec![vec![
            bytes("12345678901234567890123456789012345.123456789000000000000000000000"),
            bytes("123.4500000000"),
            bytes("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            bytes(r#"{"a": [1, {"b": null}]}"#),
            bytes("[1,null,3]"),
            bytes("P1Y2M3DT4H5M6.5S"),
            Value::Date(2024, 1, 31, 8, 15, 0, 123_456),
            Value::Date(1969, 7, 20, 20, 17, 40, 123_456),
            Value::Date(1, 1, 1, 0, 0, 0, 0),
            Value::Time(false, 1, 0, 0, 0, 0),
            bytes("שלום 😀"),
            Value::Bytes(vec![0, 0xFF]),
            Value::Int(1),
            Value::Double(5e-324),
            Value::Int(-32768),
            Value::NULL,
        ]]
    );
    drop_database(&db).await;
}

#[actix_web::test]
async fn postgresql_values_mariadb_cannot_hold_fail_with_their_column_and_row() {
    let db = unique_name("my_from_pg_bad");
    let cases = [
        ("'NaN'::float8", "NaN"),
        ("'-Infinity'::float4", "infinity"),
        ("'NaN'::numeric", "not a decimal"),
        ("'1e40'::numeric", "does not fit decimal(65,30)"),
        ("date '0001-01-01' - 1", "outside MySQL's date range"),
        (
            "timestamp '10000-01-01 00:00:00'",
            "outside MySQL's date range",
        ),
    ];
    for (expression, text) in cases {
        let query = format!(
            "SELECT CASE WHEN g = 3 THEN {expression} END AS x FROM generate_series(1, 5) g"
        );
        let result = engine_transfer(
            crate::helpers::pg_spec("test"),
            mariadb_spec(""),
            &query,
            Some(&db),
            "bad",
            false,
        )
        .await;
        match &result {
            Err(EngineError::Value {
                column,
                row,
                message,
            }) => {
                assert_eq!((column.as_str(), *row), ("x", 3), "{expression}");
                assert!(message.contains(text), "{expression}: {message}");
            }
            other => panic!("{expression}: expected a value error, got {other:?}"),
        }
    }
    let databases = fetch(&format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
    ))
    .await;
    assert!(databases.is_empty(), "nothing is left behind");
}

#[actix_web::test]
async fn a_postgresql_division_by_zero_after_100000_rows_leaves_the_mariadb_target_unchanged() {
    let db = database("my_pg_divzero").await;
    run(&format!(
        "CREATE TABLE {}.t (g int, x int) ENGINE=InnoDB",
        q(&db)
    ))
    .await;
    run(&format!("INSERT INTO {}.t VALUES (0, 0)", q(&db))).await;
    for overwrite in [false, true] {
        let result = engine_transfer(
            crate::helpers::pg_spec("test"),
            mariadb_spec(&db),
            "SELECT g, 1 / (g - 100001) AS x FROM generate_series(1, 200000) g",
            None,
            "t",
            overwrite,
        )
        .await;
        match &result {
            Err(EngineError::Source { message, .. }) => {
                assert!(message.contains("division by zero"), "{message}")
            }
            other => panic!("expected the source's error, got {other:?}"),
        }
        assert_eq!(
            fetch(&format!("SELECT g, x FROM {}.t", q(&db))).await,
            vec![vec![Value::Int(0), Value::Int(0)]]
        );
        assert!(leftover_staging_tables(&db).await.is_empty());
    }
    drop_database(&db).await;
}

#[actix_web::test]
async fn sqlite_rows_arrive_exactly_in_mariadb() {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("my_from_sqlite")));
    {
        let file = rusqlite::Connection::open(&path).unwrap();
        file.execute_batch(
            "CREATE TABLE src (i INTEGER, r REAL, t TEXT, b BLOB);
             INSERT INTO src VALUES (-9223372036854775808, 2.2250738585072014e-308, 'שלום 😀', x'00ff');
             INSERT INTO src VALUES (9223372036854775807, -1.5, '', x'');
             INSERT INTO src VALUES (NULL, NULL, NULL, NULL);",
        )
        .unwrap();
    }
    let db = unique_name("my_from_sqlite");
    let result = engine_transfer(
        sqlite_spec(&path),
        mariadb_spec(""),
        "SELECT i, r, t, b FROM src ORDER BY rowid",
        Some(&db),
        "from_sqlite",
        false,
    )
    .await;
    assert_eq!(result.unwrap(), 3);
    let rows = fetch(&format!("SELECT i, r, t, b FROM {}.from_sqlite", q(&db))).await;
    let cells: Vec<Vec<Cell>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    assert_eq!(
        cells,
        vec![
            vec![
                Cell::Int(i64::MIN.into()),
                Cell::F64(2.2250738585072014e-308f64.to_bits()),
                Cell::Bytes("שלום 😀".as_bytes().to_vec()),
                Cell::Bytes(vec![0, 0xFF]),
            ],
            vec![
                Cell::Int(i64::MAX.into()),
                Cell::F64((-1.5f64).to_bits()),
                Cell::Bytes(Vec::new()),
                Cell::Bytes(Vec::new()),
            ],
            vec![Cell::Null, Cell::Null, Cell::Null, Cell::Null],
        ]
    );
    let _ = std::fs::remove_file(&path);
    drop_database(&db).await;
}
