//! Every pair of PostgreSQL, MariaDB and SQLite through the HTTP API, read back cell by cell;
//! and hostile identifiers that must round-trip without touching anything else. (Each engine
//! suite covers its own dialect's edge cases in depth.)

use serde_json::{json, Value};

use crate::helpers::{
    mariadb_connection, mariadb_execute, pg_client, pg_connection, pg_execute, spawn_app,
    unique_name, TestApp,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dialect {
    Postgres,
    MariaDb,
    Sqlite,
}

const ALL: [Dialect; 3] = [Dialect::Postgres, Dialect::MariaDb, Dialect::Sqlite];

/// A place to read from and write to, with its connection in the app.
struct Place {
    dialect: Dialect,
    connection: Value,
    /// PostgreSQL schema or MariaDB database; None for SQLite.
    schema: Option<String>,
    sqlite_path: Option<std::path::PathBuf>,
}

async fn place(app: &TestApp, dialect: Dialect, label: &str) -> Place {
    let name = unique_name(label);
    match dialect {
        Dialect::Postgres => {
            pg_execute("test", &format!("CREATE SCHEMA {name}")).await;
            let connection = app.create_connection(pg_connection(&name, "test")).await;
            Place {
                dialect,
                connection,
                schema: Some(name),
                sqlite_path: None,
            }
        }
        Dialect::MariaDb => {
            mariadb_execute(&format!("CREATE DATABASE {name}")).await;
            let connection = app
                .create_connection(mariadb_connection(&name, &name))
                .await;
            Place {
                dialect,
                connection,
                schema: Some(name),
                sqlite_path: None,
            }
        }
        Dialect::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            rusqlite::Connection::open(&path).unwrap();
            let connection = app
                .create_connection(json!({"name": name, "type": "sqlite", "path": path}))
                .await;
            Place {
                dialect,
                connection,
                schema: None,
                sqlite_path: Some(path),
            }
        }
    }
}

/// The same small table in each dialect, with values every pair must carry exactly.
async fn create_source(place: &Place) {
    let rows = "(1, 'plain', 123.4500, '2024-01-02 03:04:05.123456', TRUE),
                (2, 'ünïcødé 🚀 שלום', -0.0001, '1969-07-20 20:17:40.000001', FALSE),
                (3, '', 99999999.9999, '2038-01-19 03:14:08.999999', NULL),
                (4, NULL, NULL, NULL, TRUE)";
    match place.dialect {
        Dialect::Postgres => {
            let s = place.schema.as_ref().unwrap();
            pg_execute(
                "test",
                &format!(
                    "CREATE TABLE {s}.src (id integer NOT NULL, name varchar(40), amount numeric(12,4), ts timestamp, flag boolean);
                     INSERT INTO {s}.src VALUES {rows};"
                ),
            )
            .await
        }
        Dialect::MariaDb => {
            let s = place.schema.as_ref().unwrap();
            mariadb_execute(&format!(
                "CREATE TABLE {s}.src (id int NOT NULL, name varchar(40) CHARACTER SET utf8mb4, amount decimal(12,4), ts datetime(6), flag tinyint(1));
                 INSERT INTO {s}.src VALUES {rows};"
            ))
            .await
        }
        Dialect::Sqlite => {
            let conn = rusqlite::Connection::open(place.sqlite_path.as_ref().unwrap()).unwrap();
            conn.execute_batch(
                "CREATE TABLE src (id INTEGER NOT NULL, name VARCHAR(40), amount DECIMAL(12,4), ts DATETIME, flag BOOLEAN);
                 INSERT INTO src VALUES (1, 'plain', '123.4500', '2024-01-02 03:04:05.123456', 1),
                   (2, 'ünïcødé 🚀 שלום', '-0.0001', '1969-07-20 20:17:40.000001', 0),
                   (3, '', '99999999.9999', '2038-01-19 03:14:08.999999', NULL),
                   (4, NULL, NULL, NULL, 1);",
            )
            .unwrap();
        }
    }
}

fn source_query(place: &Place) -> String {
    match &place.schema {
        Some(s) if place.dialect == Dialect::Postgres => {
            format!("SELECT * FROM {s}.src ORDER BY id")
        }
        Some(s) => format!("SELECT * FROM `{s}`.src ORDER BY id"),
        None => "SELECT * FROM src ORDER BY id".into(),
    }
}

/// Rows of a target table as text cells (booleans as 0/1), ordered by the first column.
async fn read_back(place: &Place, table: &str, columns: &[&str]) -> Vec<Vec<Option<String>>> {
    match place.dialect {
        Dialect::Postgres => {
            let q = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
            let cols: Vec<String> = columns
                .iter()
                .map(|c| format!("({})::text", q(c)))
                .collect();
            let client = pg_client("test").await;
            client
                .query(
                    &format!(
                        "SELECT {} FROM {}.{} ORDER BY 1",
                        cols.join(", "),
                        q(place.schema.as_ref().unwrap()),
                        q(table)
                    ),
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (0..columns.len()).map(|i| r.get(i)).collect())
                .collect()
        }
        Dialect::MariaDb => {
            use mysql_async::prelude::Queryable;
            let s = place.schema.as_ref().unwrap();
            let cols: Vec<String> = columns
                .iter()
                .map(|c| format!("CAST(`{}` AS CHAR)", c.replace('`', "``")))
                .collect();
            let mut conn = crate::helpers::mariadb_conn().await;
            let rows: Vec<mysql_async::Row> = conn
                .query(format!(
                    "SELECT {} FROM `{}`.`{}` ORDER BY 1",
                    cols.join(", "),
                    s.replace('`', "``"),
                    table.replace('`', "``")
                ))
                .await
                .unwrap();
            conn.disconnect().await.ok();
            rows.into_iter()
                .map(|r| {
                    (0..columns.len())
                        .map(|i| r.get::<Option<String>, _>(i).unwrap())
                        .collect()
                })
                .collect()
        }
        Dialect::Sqlite => {
            let conn = rusqlite::Connection::open(place.sqlite_path.as_ref().unwrap()).unwrap();
            let cols: Vec<String> = columns
                .iter()
                .map(|c| format!("CAST(\"{}\" AS TEXT)", c.replace('"', "\"\"")))
                .collect();
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {} FROM \"{}\" ORDER BY 1",
                    cols.join(", "),
                    table.replace('"', "\"\"")
                ))
                .unwrap();
            stmt.query_map([], |r| {
                (0..columns.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
        }
    }
}

fn expected() -> Vec<Vec<Option<String>>> {
    let s = |v: &str| Some(v.to_string());
    vec![
        vec![
            s("1"),
            s("plain"),
            s("123.4500"),
            s("2024-01-02 03:04:05.123456"),
            s("1"),
        ],
        vec![
            s("2"),
            s("ünïcødé 🚀 שלום"),
            s("-0.0001"),
            s("1969-07-20 20:17:40.000001"),
            s("0"),
        ],
        vec![
            s("3"),
            s(""),
            s("99999999.9999"),
            s("2038-01-19 03:14:08.999999"),
            None,
        ],
        vec![s("4"), None, None, None, s("1")],
    ]
}

async fn transfer(app: &TestApp, from: &Place, to: &Place, query: String, table: &str) -> Value {
    let mut body = json!({
        "sourceId": from.connection["id"], "targetId": to.connection["id"],
        "query": query, "targetTable": table,
    });
    if let Some(s) = &to.schema {
        body["targetSchema"] = json!(s);
    }
    let t = app.submit_transfer(body).await;
    app.wait_transfer(&t["id"], 60).await
}

#[actix_web::test]
async fn all_nine_pairs_carry_the_same_values_through_the_api() {
    let app = spawn_app().await;
    let mut places = Vec::new();
    for dialect in ALL {
        let p = place(&app, dialect, "pair").await;
        create_source(&p).await;
        places.push(p);
    }
    let columns = ["id", "name", "amount", "ts", "flag"];
    for from in &places {
        for to in &places {
            let table = format!("from_{:?}", from.dialect).to_lowercase();
            let done = transfer(&app, from, to, source_query(from), &table).await;
            assert_eq!(
                done["status"], "complete",
                "{:?} → {:?}: {done}",
                from.dialect, to.dialect
            );
            assert_eq!(
                done["rowsWritten"], 4,
                "{:?} → {:?}",
                from.dialect, to.dialect
            );
            let mut rows = read_back(to, &table, &columns).await;
            for row in &mut rows {
                // Booleans read back as true/false from some drivers' text forms.
                if let Some(flag) = row[4].as_mut() {
                    if flag == "true" || flag == "t" {
                        *flag = "1".into();
                    } else if flag == "false" || flag == "f" {
                        *flag = "0".into();
                    }
                }
            }
            assert_eq!(rows, expected(), "{:?} → {:?}", from.dialect, to.dialect);
        }
    }
}

#[actix_web::test]
async fn hostile_names_round_trip_and_touch_nothing_else() {
    let app = spawn_app().await;
    let source = place(&app, Dialect::Postgres, "hostile_src").await;
    let s = source.schema.as_ref().unwrap();
    pg_execute(
        "test",
        &format!("CREATE TABLE {s}.victim (id int); INSERT INTO {s}.victim VALUES (1);"),
    )
    .await;
    let query =
        r#"SELECT 1 AS "we""ird; drop table victim; --", 'x' AS "Ünï Cöde ✓", 2 AS "select""#
            .to_string();
    let columns = ["", "Ünï Cöde ✓", "select"];
    let table = "t\"able`; DROP TABLE victim; --";
    for dialect in ALL {
        let mut to = place(&app, dialect, "hostile").await;
        if dialect != Dialect::Sqlite {
            // A schema / database name that needs quoting too (created by the transfer).
            let hostile_schema = format!("{} sch\"ema`", to.schema.as_ref().unwrap());
            to.schema = Some(hostile_schema);
        }
        let done = transfer(&app, &source, &to, query.clone(), table).await;
        assert_eq!(done["status"], "complete", "{dialect:?}: {done}");
        let full_first = r#"we"ird; drop table victim; --"#.to_string();
        let cols = [full_first.as_str(), columns[1], columns[2]];
        let rows = read_back(&to, table, &cols).await;
        assert_eq!(
            rows,
            vec![vec![Some("1".into()), Some("x".into()), Some("2".into())]],
            "{dialect:?}"
        );
    }
    let client = pg_client("test").await;
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {s}.victim"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the victim table was touched");
}
