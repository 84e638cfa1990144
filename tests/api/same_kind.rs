//! Within one database kind a created table gets the source's exact column types (as
//! `COLUMN_TYPE` / `format_type()` print them) and identical values; a PostgreSQL enum or
//! domain is kept where the target has it, else it becomes its base type.

use mysql_async::prelude::Queryable;
use mysql_async::Value as MyValue;
use serde_json::{json, Value};

use crate::helpers::{
    mariadb_conn, mariadb_connection, mariadb_execute, pg_cells, pg_client, pg_column_types,
    pg_connection, pg_execute, spawn_app, unique_name, TestApp,
};

/// (name, COLUMN_TYPE, IS_NULLABLE) of a MariaDB table's columns.
async fn mariadb_column_types(db: &str, table: &str) -> Vec<(String, String, String)> {
    let mut conn = mariadb_conn().await;
    let types = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .unwrap();
    conn.disconnect().await.ok();
    types
}

async fn mariadb_rows(sql: &str) -> Vec<Vec<MyValue>> {
    let mut conn = mariadb_conn().await;
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    conn.disconnect().await.ok();
    rows.into_iter().map(|r| r.unwrap()).collect()
}

/// Transfer `query` from `source` into `table` of `target`; asserts it completes.
async fn transfer(app: &TestApp, source: &Value, target: &Value, query: &str, schema: &str) {
    let t = app
        .submit_transfer(json!({
            "sourceId": source["id"], "targetId": target["id"], "query": query,
            "targetSchema": schema, "targetTable": "copy"
        }))
        .await;
    let done = app.wait_transfer(&t["id"], 60).await;
    assert_eq!(done["status"], "complete", "{done}");
}

#[actix_web::test]
async fn mariadb_to_mariadb_creates_every_column_with_its_own_type_and_values() {
    let app = spawn_app().await;
    let src = unique_name("same_src");
    let dst = unique_name("same_dst");
    mariadb_execute(&format!(
        "CREATE DATABASE {src};
         CREATE TABLE {src}.every (
            id int NOT NULL PRIMARY KEY,
            ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
            mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint,
            biu bigint unsigned, dc decimal(20,6), dcu decimal(10,2) unsigned, f float,
            d double, b1 bit(1), b25 bit(25), bo boolean, y year, dt date, tm time(3),
            dtm datetime(6), ts timestamp NULL, ts3 timestamp(3) NULL, ch char(10),
            vc varchar(50), bn binary(50), vb varbinary(20), tt tinytext, tx text,
            mt mediumtext, lt longtext, tb tinyblob, bl blob, mb mediumblob, lb longblob,
            e enum('small','medium','large') NOT NULL DEFAULT 'small', st set('a','b','c'),
            j json, g geometry, pt point
         ) DEFAULT CHARSET=utf8mb4;
         SET time_zone = '+00:00';
         INSERT INTO {src}.every VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215,
            -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
            '12345678901234.123456', '99999999.99', 1.5, 2.25, b'1',
            b'1010101010101010101010101', true, 2024, '2024-02-29', '12:34:56.789',
            '2024-02-29 12:34:56.123456', '2038-01-19 03:14:07', '1970-01-01 00:00:01.001',
            'char', 'varchar ü 😀', x'0102', x'00ff', 'tiny', 'text', 'medium', 'long',
            x'01', x'0203', x'0405', x'0607', 'medium', 'a,c', '{{\"k\": [1, 2]}}',
            ST_GeomFromText('LINESTRING(0 0, 1 1)'), POINT(1, 2));
         INSERT INTO {src}.every (id) VALUES (2);"
    ))
    .await;
    let source = app
        .create_connection(mariadb_connection("maria-source", &src))
        .await;
    let target = app
        .create_connection(mariadb_connection("maria-target", &src))
        .await;
    transfer(&app, &source, &target, "SELECT * FROM every", &dst).await;

    let source_types = mariadb_column_types(&src, "every").await;
    let target_types = mariadb_column_types(&dst, "copy").await;
    assert_eq!(target_types, source_types);
    let source_rows = mariadb_rows(&format!("SELECT * FROM {src}.every ORDER BY id")).await;
    let target_rows = mariadb_rows(&format!("SELECT * FROM {dst}.copy ORDER BY id")).await;
    assert_eq!(target_rows, source_rows);
    // A few cells spelled out, in case both sides read alike but wrong.
    assert_eq!(target_rows[0][2], MyValue::Bytes(b"255".to_vec()));
    assert_eq!(
        target_rows[0][16],
        MyValue::Bytes(vec![0x01, 0x55, 0x55, 0x55])
    );
    assert_eq!(target_rows[0][36], MyValue::Bytes(b"medium".to_vec()));
    let geometry = mariadb_rows(&format!(
        "SELECT ST_AsText(g), ST_AsText(pt) FROM {dst}.copy WHERE id = 1"
    ))
    .await;
    assert_eq!(
        geometry,
        vec![vec![
            MyValue::Bytes(b"LINESTRING(0 0,1 1)".to_vec()),
            MyValue::Bytes(b"POINT(1 2)".to_vec())
        ]]
    );
    mariadb_execute(&format!("DROP DATABASE {src}; DROP DATABASE {dst}")).await;
}

/// Every family of PostgreSQL types, an enum and a domain.
const PG_EVERY: &str = "
    id integer NOT NULL, si smallint, bi bigint, n numeric(12,3), nu numeric, r real,
    dp double precision, m money, t text, vc varchar, vc20 varchar(20), ch char(5),
    by bytea, b boolean, d date, tm time(3), ttz time with time zone, ts0 timestamp(0),
    tz3 timestamptz(3), iv interval, ivd interval day to second, u uuid, j json, jb jsonb,
    x xml, tsv tsvector, ip inet, cid cidr, mac macaddr, pt point, bx box, pa path,
    po polygon, ci circle, bit5 bit(5), vbit bit varying(8), ir int4range, tr tstzrange,
    ia integer[], ta text[], md mood, pi posint";

const PG_ROW: &str = "
    1, -32768, 9223372036854775807, 123456789.123, 1e-30, 1.5, 2.25, 12.34, 'text ü',
    'unbounded', 'twenty', 'ab', '\\x00ff', true, '2024-02-29', '12:34:56.789',
    '12:00:00+05:30', '2024-02-29 12:34:56', '2024-02-29 12:34:56.789+00', '1 year 2 mons',
    '3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\" :  1}', '{\"b\": 2}',
    '<a>x</a>', 'fat cat', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1,2)',
    '((0,0),(1,1))', '[(0,0),(1,1)]', '((0,0),(1,0),(0,1))', '<(1,1),2>', B'10101',
    B'101', '[1,10)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)', '{1,NULL,3}',
    '{\"a b\",c}', 'happy', 7";

#[actix_web::test]
async fn postgresql_to_postgresql_creates_every_column_with_its_own_type_and_values() {
    let app = spawn_app().await;
    let src = unique_name("same_src");
    let dst = unique_name("same_dst");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {src}; CREATE SCHEMA {dst};
             CREATE TYPE {src}.mood AS ENUM ('sad', 'happy');
             CREATE DOMAIN {src}.posint AS integer CHECK (VALUE > 0);
             SET search_path = {src};
             CREATE TABLE {src}.every ({PG_EVERY});
             INSERT INTO {src}.every VALUES ({PG_ROW});
             INSERT INTO {src}.every (id) VALUES (2);"
        ),
    )
    .await;
    let pg = app.create_connection(pg_connection("pg", "test")).await;
    transfer(&app, &pg, &pg, &format!("SELECT * FROM {src}.every"), &dst).await;

    let client = pg_client("test").await;
    // The enum and the domain exist in the target database: they are kept too.
    let source_types = pg_column_types(&client, &src, "every").await;
    assert_eq!(pg_column_types(&client, &dst, "copy").await, source_types);
    let rows = |schema: &str, table: &str| {
        format!("SELECT whole::text FROM {schema}.{table} whole ORDER BY id")
    };
    let source_rows = pg_cells(&client, &rows(&src, "every")).await;
    assert_eq!(pg_cells(&client, &rows(&dst, "copy")).await, source_rows);
    let spelled = pg_cells(
        &client,
        &format!("SELECT vc, tz3::text, j::text, md::text FROM {dst}.copy WHERE id = 1"),
    )
    .await;
    assert_eq!(
        spelled,
        vec![vec![
            Some("unbounded".into()),
            Some("2024-02-29 12:34:56.789+00".into()),
            Some("{\"a\" :  1}".into()),
            Some("happy".into())
        ]]
    );

    // Into another database, which has neither: the enum becomes text, the domain its base.
    let other = unique_name("same_db");
    pg_execute("test", &format!("CREATE DATABASE {other}")).await;
    let elsewhere = app
        .create_connection(pg_connection("elsewhere", &other))
        .await;
    transfer(
        &app,
        &pg,
        &elsewhere,
        &format!("SELECT * FROM {src}.every"),
        "public",
    )
    .await;
    let other_client = pg_client(&other).await;
    let mut expected = source_types.clone();
    let md = expected.iter().position(|c| c.0 == "md").unwrap();
    let pi = expected.iter().position(|c| c.0 == "pi").unwrap();
    expected[md].1 = "text".into();
    expected[pi].1 = "integer".into();
    assert_eq!(
        pg_column_types(&other_client, "public", "copy").await,
        expected
    );
    assert_eq!(
        pg_cells(&other_client, &rows("public", "copy")).await,
        source_rows
    );
    drop(other_client);
    pg_execute(
        "test",
        &format!("DROP SCHEMA {src} CASCADE; DROP SCHEMA {dst} CASCADE"),
    )
    .await;
    pg_execute("test", &format!("DROP DATABASE {other} WITH (FORCE)")).await;
}
