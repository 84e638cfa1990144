//! Files in transfers: a stored file read as a transfer's source (through its schema) into
//! PostgreSQL, MariaDB and SQLite tables, and a query's rows written as a new file (CSV, JSON
//! Lines), read back cell by cell.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, mariadb_conn, mariadb_connection, mariadb_execute, pg_cells, pg_client,
    pg_column_types, pg_schema_and_connection, spawn_app, unique_name, TestApp,
};

const ORDERS_CSV: &[u8] = b"id,price,placed,note,paid\n\
1,12.50,2024-02-29,\"say \"\"hi\"\", then go\",true\n\
2,0.05,1999-12-31,,false\n\
3,-7.00,2000-01-01,\"caf\xc3\xa9, \xe2\x82\xac\",true\n";

/// How many files the admin sees.
async fn file_total(app: &TestApp) -> Value {
    let list: Value = app
        .admin(Method::GET, "/api/v1/files")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["total"].clone()
}

/// The types of a file's schema's fields, in order.
fn field_types(file: &Value) -> Vec<&str> {
    file["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect()
}

async fn file_text(app: &TestApp, id: &Value) -> String {
    app.admin(Method::GET, &format!("/api/v1/files/{id}/data"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_csv_file_loads_into_postgres_mariadb_and_sqlite_tables_with_the_types_of_its_schema() {
    let app = spawn_app().await;
    let file = app.upload_file("orders.csv", ORDERS_CSV).await;

    // PostgreSQL: the table is created with the schema's types.
    let (schema, pg) = pg_schema_and_connection(&app, "file_src").await;
    let t = app.submit_transfer(json!({"sourceFileId": file, "targetId": pg["id"], "targetSchema": schema, "targetTable": "orders"}),
    )
    .await;
    assert_eq!(t["sourceFileId"], file);
    assert_eq!(t["sourceId"], Value::Null);
    assert_eq!(t["query"], Value::Null);
    assert_eq!(t["sourceName"], "orders.csv");
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], 3);
    assert!(
        done["bytesRead"].as_i64().unwrap() >= ORDERS_CSV.len() as i64 - 1,
        "{done}"
    );
    let client = pg_client("test").await;
    let types: Vec<(String, String)> = pg_column_types(&client, &schema, "orders")
        .await
        .into_iter()
        .map(|(name, ty, _)| (name, ty))
        .collect();
    assert_eq!(
        types,
        [
            ("id".to_string(), "integer".to_string()),
            ("price".into(), "numeric(4,2)".into()),
            ("placed".into(), "date".into()),
            ("note".into(), "text".into()),
            ("paid".into(), "boolean".into()),
        ]
    );
    let cells = pg_cells(
        &client,
        &format!("SELECT id, price, placed, note, paid FROM {schema}.orders ORDER BY id"),
    )
    .await;
    let some = |v: &str| Some(v.to_string());
    assert_eq!(
        cells,
        [
            vec![
                some("1"),
                some("12.50"),
                some("2024-02-29"),
                some("say \"hi\", then go"),
                some("t")
            ],
            vec![some("2"), some("0.05"), some("1999-12-31"), None, some("f")],
            vec![
                some("3"),
                some("-7.00"),
                some("2000-01-01"),
                some("café, €"),
                some("t")
            ],
        ]
    );

    // MariaDB.
    let database = unique_name("file_src");
    mariadb_execute(&format!("CREATE DATABASE {database}")).await;
    let my = app
        .create_connection(mariadb_connection(&database, &database))
        .await;
    let t = app
        .submit_transfer(
            json!({"source_file_id": file, "targetId": my["id"], "targetTable": "orders"}),
        )
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    let rows: Vec<(i32, String, String, Option<String>, i8)> = conn
        .query(format!(
            "SELECT id, CAST(price AS CHAR), CAST(placed AS CHAR), note, paid FROM {database}.orders ORDER BY id"
        ))
        .await
        .unwrap();
    assert_eq!(
        rows[0],
        (
            1,
            "12.50".into(),
            "2024-02-29".into(),
            Some("say \"hi\", then go".into()),
            1
        )
    );
    assert_eq!(rows[1].3, None);
    assert_eq!(rows[2].3.as_deref(), Some("café, €"));

    // SQLite.
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("file_src")));
    rusqlite::Connection::open(&path).unwrap();
    let lite = app
        .create_connection(json!({"name": unique_name("lite"), "type": "sqlite", "path": path}))
        .await;
    let t = app.submit_transfer(json!({"sourceFileId": file.to_string(), "targetId": lite["id"], "targetTable": "orders"}),
    )
    .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let db = rusqlite::Connection::open(&path).unwrap();
    let total: f64 = db
        .query_row("SELECT sum(price) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert!((total - 5.55).abs() < 1e-9, "{total}");
    let note: String = db
        .query_row("SELECT note FROM orders WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "café, €");
}

#[actix_web::test]
async fn a_postgres_query_written_as_csv_and_json_lines_loads_back_cell_for_cell() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "file_out").await;
    let client = pg_client("test").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {schema}.edge (
                id integer PRIMARY KEY, big bigint, amount numeric(20,6), ratio double precision,
                label text, blob bytea, day date, at timestamp, at_tz timestamptz, ref uuid,
                doc jsonb, ok boolean);
             INSERT INTO {schema}.edge VALUES
              (1, 9223372036854775807, 12345678901234.123456, -0.5,
               'comma, \"quote\" and
newline', '\\x00ff10', '0001-01-01', '2024-02-29 23:59:59.999999',
               '1970-01-01 00:00:00+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
               '{{\"a\": [1, 2.5, null]}}', true),
              (2, -1, -0.000001, 1e300, 'ünïcødé ✓', '\\x', '9999-12-31',
               '1900-01-01 00:00:00', '2038-01-19 03:14:08+02', NULL, '[]', false),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();
    let columns =
        "id, big, amount, ratio, label, encode(blob, 'hex'), day, at, at_tz, ref, doc, ok";
    let expected = pg_cells(
        &client,
        &format!("SELECT {columns} FROM {schema}.edge ORDER BY id"),
    )
    .await;

    // CSV twice: as is (NULL and "" both empty), and with NULL written as \N.
    for (format, options) in [
        ("csv", Value::Null),
        ("csv", json!({"null": "\\N"})),
        ("jsonl", Value::Null),
        ("json", Value::Null),
        ("parquet", Value::Null),
    ] {
        let t = app.submit_transfer(json!({"sourceId": pg["id"], "query": format!("SELECT * FROM {schema}.edge ORDER BY id"),
                   "targetFormat": format, "targetOptions": options}),
        )
        .await;
        assert_eq!(t["targetFormat"], format);
        assert_eq!(t["targetId"], Value::Null);
        let done = app.wait_transfer(&t["id"], 30).await;
        assert_eq!(done["status"], "complete", "{done}");
        assert_eq!(done["rowsWritten"], 3);
        let output = &done["outputFileId"];
        let file = app.file(output).await;
        assert_eq!(file["format"], format);
        assert_eq!(file["status"], "ready");
        assert_eq!(
            field_types(&file),
            [
                "integer",
                "bigint",
                "decimal(20,6)",
                "float",
                "string",
                "bytes",
                "date",
                "timestamp",
                "timestamptz",
                "uuid",
                "json",
                "boolean"
            ],
            "the file's schema is the columns' own types"
        );
        assert_eq!(file["rowCount"], 3);
        if format == "parquet" {
            let bytes = file_text(&app, output).await;
            assert!(bytes.starts_with("PAR1"), "a Parquet file");
        }
        let text = if format == "parquet" {
            String::new()
        } else {
            file_text(&app, output).await
        };
        if format == "csv" && options.is_null() {
            assert!(
                text.starts_with("\"id\",\"big\",\"amount\",\"ratio\",\"label\""),
                "{text}"
            );
            assert!(
                text.contains("1,9223372036854775807,12345678901234.123456,-0.5,"),
                "{text}"
            );
            assert!(text.ends_with("\n3,,,,,,,,,,,\n"), "{text}");
        } else if format == "csv" {
            assert!(
                text.ends_with("\n3,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N,\\N\n"),
                "{text}"
            );
            assert!(
                text.contains(",\"\","),
                "an empty bytea is an empty text: {text}"
            );
            assert_eq!(file["schema"]["dialect"]["nullWords"], json!(["\\N"]));
        } else if format == "jsonl" {
            let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(first["big"], json!(9223372036854775807i64));
            assert_eq!(first["doc"], json!({"a": [1, 2.5, null]}));
            assert_eq!(first["blob"], "AP8Q");
        }

        // Back into a new table: every cell as it left.
        let table = format!("back_{format}_{}", options.is_null());
        let t = app.submit_transfer(json!({"sourceFileId": output, "targetId": pg["id"], "targetSchema": schema, "targetTable": table}),
        )
        .await;
        let done = app.wait_transfer(&t["id"], 30).await;
        assert_eq!(done["status"], "complete", "{format}: {done}");
        let back = pg_cells(
            &client,
            &format!("SELECT {columns} FROM {schema}.{table} ORDER BY id"),
        )
        .await;
        let mut expected = expected.clone();
        if format == "csv" && options.is_null() {
            // As documented: CSV cannot tell an empty value from NULL unless NULL is written
            // as a word; with the default, both read back as NULL.
            assert_eq!(expected[1][5].as_deref(), Some(""));
            expected[1][5] = None;
        }
        assert_eq!(back, expected, "{format}");
    }
}

#[actix_web::test]
async fn a_file_that_does_not_fit_its_schema_fails_the_load_naming_line_and_field_and_leaves_no_table(
) {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "file_bad").await;
    let file = app
        .upload_file("bad.csv", b"n,label\n1,a\n2,b\nthree,c\n")
        .await;
    // The detected schema reads `n` as text; say it is an integer.
    let response = app
        .admin(Method::PATCH, &format!("/api/v1/files/{file}"))
        .json(&json!({"schema": [
            {"name": "n", "type": "integer", "path": "0"},
            {"name": "label", "type": "string", "path": "1"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let t = app.submit_transfer(json!({"sourceFileId": file, "targetId": pg["id"], "targetSchema": schema, "targetTable": "t"}),
    )
    .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["errorCode"], "invalid_file_content");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("line 4") && error.contains("\"n\"") && error.contains("three"),
        "{error}"
    );
    let client = pg_client("test").await;
    let tables = pg_cells(
        &client,
        &format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"),
    )
    .await;
    assert_eq!(
        tables,
        [vec![Some("0".to_string())]],
        "no table is left behind"
    );

    // A query that fails half-way leaves no file.
    let before = file_total(&app).await;
    let t = app
        .submit_transfer(json!({"sourceId": pg["id"], "targetFormat": "csv",
               "query": "SELECT g, 1 / (50000 - g) AS boom FROM generate_series(1, 100000) g"}))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["outputFileId"], Value::Null);
    assert_eq!(file_total(&app).await, before, "no file was recorded");
}

#[actix_web::test]
async fn file_endpoints_of_a_transfer_are_checked_before_it_is_queued() {
    let app = spawn_app().await;
    let (_, pg) = pg_schema_and_connection(&app, "file_check").await;
    let file = app.upload_file("ok.csv", b"a\n1\n").await;
    let cases = [
        (
            json!({"sourceId": pg["id"], "sourceFileId": file, "query": "SELECT 1", "targetFormat": "csv"}),
            "sourceFileId",
        ),
        (
            json!({"sourceFileId": file, "query": "SELECT 1", "targetFormat": "csv"}),
            "query",
        ),
        (
            json!({"sourceFileId": 999999, "targetFormat": "csv"}),
            "sourceFileId",
        ),
        (
            json!({"sourceFileId": file, "targetFormat": "csv", "targetTable": "t"}),
            "targetTable",
        ),
        (
            json!({"sourceFileId": file, "targetFormat": "xml"}),
            "targetFormat",
        ),
        (
            json!({"sourceFileId": file, "targetId": pg["id"], "targetFormat": "csv"}),
            "targetFormat",
        ),
        (
            json!({"sourceFileId": file, "targetId": pg["id"], "targetTable": "t",
                   "targetOptions": {"separator": ";"}}),
            "targetOptions",
        ),
        (
            json!({"sourceFileId": file, "targetFormat": "jsonl", "targetOptions": {"header": false}}),
            "targetFormat",
        ),
        (
            json!({"sourceFileId": file, "targetFormat": "csv", "partitionColumn": "a", "partitions": 2}),
            "partitionColumn",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .admin(Method::POST, "/api/v1/transfers")
            .json(&body)
            .send()
            .await
            .unwrap();
        // An unknown file is not found; every other case is a body that does not fit.
        let (status, code) = if body["sourceFileId"] == 999999 {
            (StatusCode::NOT_FOUND, "file_not_found")
        } else {
            (StatusCode::BAD_REQUEST, "validation_failed")
        };
        let error = assert_error(response, status, code).await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let response = app
        .admin(Method::POST, "/api/v1/transfers")
        .json(&json!({"sourceFileId": file, "targetFormat": "csv", "targetOptions": {"colour": "red"}}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;

    // A file to a file, with CSV options.
    let t = app.submit_transfer(json!({"sourceFileId": file, "targetFormat": "csv", "targetOptions": {"separator": ";", "header": false}}),
    )
    .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(
        done["targetOptions"],
        json!({"separator": ";", "header": "false"})
    );
    assert_eq!(file_text(&app, &done["outputFileId"]).await, "1\n");
}

#[actix_web::test]
async fn a_query_written_as_a_sql_script_loads_into_postgres_mariadb_and_sqlite() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "file_sql").await;
    let client = pg_client("test").await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {schema}.src (id integer PRIMARY KEY, amount numeric(12,2),
                ratio double precision, label text, blob bytea, at timestamptz, ok boolean,
                doc jsonb);
             INSERT INTO {schema}.src VALUES
              (1, 12.50, 'NaN', 'it''s a \\ back\\slash; DROP TABLE x; --', '\\x00ff',
               '2024-02-29 10:11:12.5+00', true, '{{\"a\": 1}}'),
              (2, -0.01, -0.5, '', '\\x', '1970-01-01 00:00:00+00', false, '[]'),
              (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();

    // PostgreSQL: every cell as it left, NaN and the empty string included.
    let t = app
        .submit_transfer(
            json!({"sourceId": pg["id"], "query": format!("SELECT * FROM {schema}.src"),
            "targetFormat": "sql", "targetOptions": {"table": "copy"}}),
        )
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let file = app.file(&done["outputFileId"]).await;
    assert_eq!(file["format"], "sql");
    assert_eq!(file["type"], "application/sql");
    let script = file_text(&app, &done["outputFileId"]).await;
    assert!(
        script.starts_with("BEGIN;\nCREATE TABLE \"copy\" ("),
        "{script}"
    );
    assert!(script.ends_with(");\nCOMMIT;\n"), "{script}");
    client
        .batch_execute(&format!("SET search_path TO {schema}; {script}"))
        .await
        .unwrap_or_else(|e| panic!("{e}: {script}"));
    let columns = "id, amount, ratio, label, encode(blob, 'hex'), at, ok, doc";
    assert_eq!(
        pg_cells(
            &client,
            &format!("SELECT {columns} FROM {schema}.copy ORDER BY id")
        )
        .await,
        pg_cells(
            &client,
            &format!("SELECT {columns} FROM {schema}.src ORDER BY id")
        )
        .await
    );

    // MariaDB and SQLite have no NaN: the same query without it.
    let query = format!("SELECT id, amount, label, blob, at, ok FROM {schema}.src ORDER BY id");
    let database = unique_name("file_sql");
    mariadb_execute(&format!("CREATE DATABASE {database}")).await;
    let t = app
        .submit_transfer(json!({"sourceId": pg["id"], "query": query,
            "targetFormat": "sql", "targetOptions": {"dialect": "mariadb", "table": "copy"}}))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let script = file_text(&app, &done["outputFileId"]).await;
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    conn.query_drop(format!("USE {database}")).await.unwrap();
    conn.query_drop(&script)
        .await
        .unwrap_or_else(|e| panic!("{e}: {script}"));
    /// id, amount, label, blob, at
    type Row = (
        i32,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
        Option<String>,
    );
    let rows: Vec<Row> = conn
        .query(
            "SELECT id, CAST(amount AS CHAR), label, `blob`, CAST(`at` AS CHAR) FROM copy ORDER BY id",
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        [
            (
                1,
                Some("12.50".into()),
                Some("it's a \\ back\\slash; DROP TABLE x; --".into()),
                Some(vec![0, 255]),
                Some("2024-02-29 10:11:12.500000".into())
            ),
            (
                2,
                Some("-0.01".into()),
                Some(String::new()),
                Some(vec![]),
                Some("1970-01-01 00:00:00.000000".into())
            ),
            (3, None, None, None, None),
        ]
    );

    let t = app
        .submit_transfer(json!({"sourceId": pg["id"], "query": query,
            "targetFormat": "sql", "targetOptions": {"dialect": "sqlite"}}))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let script = file_text(&app, &done["outputFileId"]).await;
    let table = script
        .split('"')
        .nth(1)
        .expect("CREATE TABLE names the table")
        .to_string();
    assert!(table.starts_with("pg-sluice_test_file_sql"), "{table}");
    let lite = rusqlite::Connection::open_in_memory().unwrap();
    lite.execute_batch(&script)
        .unwrap_or_else(|e| panic!("{e}: {script}"));
    let (label, blob): (String, Vec<u8>) = lite
        .query_row(
            &format!("SELECT label, blob FROM \"{table}\" WHERE id = 1"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(label, "it's a \\ back\\slash; DROP TABLE x; --");
    assert_eq!(blob, vec![0, 255]);
    let count: i64 = lite
        .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(count, 3);
}

#[actix_web::test]
async fn a_load_run_writes_a_files_records_into_a_table_and_checks_its_options_first() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "file_load").await;
    let file = app.upload_file("orders.csv", ORDERS_CSV).await;
    let run = app
        .run_step(json!({"step": "load", "fileId": file, "options": {
            "targetId": pg["id"], "targetSchema": schema, "targetTable": "loaded"}}))
        .await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(run["result"]["rows"], 3);
    assert_eq!(run["result"]["targetTable"], "loaded");
    let client = pg_client("test").await;
    assert_eq!(
        pg_cells(
            &client,
            &format!("SELECT sum(price)::text FROM {schema}.loaded")
        )
        .await,
        [vec![Some("5.55".to_string())]]
    );

    for (options, status, code, field) in [
        (
            json!({"targetId": pg["id"], "targetTable": "t", "colour": 1}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            "options.colour",
        ),
        (
            json!({"targetId": 999999, "targetTable": "t"}),
            StatusCode::BAD_REQUEST,
            "unknown_connection",
            "options.targetId",
        ),
        (
            json!({"targetId": pg["id"], "targetTable": " "}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "options.targetTable",
        ),
    ] {
        let response = app
            .admin(Method::POST, "/api/v1/runs")
            .json(&json!({"step": "load", "fileId": file, "options": options}))
            .send()
            .await
            .unwrap();
        let error = assert_error(response, status, code).await;
        assert_eq!(error["field"], field, "{options}");
    }
}

#[actix_web::test]
async fn a_line_longer_than_a_record_may_be_fails_the_load_without_holding_it() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "file_long").await;
    // 65 MiB in one line, past the 64 MiB a record may take (a 2 GB line fails the same way,
    // at the same point: the reader never holds more than the limit).
    let mut bytes = b"a,b\n1,".to_vec();
    bytes.resize(bytes.len() + (65 << 20), b'x');
    bytes.push(b'\n');
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let file = app.upload_file("long.csv", bytes).await;
    let response = app
        .admin(Method::PATCH, &format!("/api/v1/files/{file}"))
        .json(&json!({"schema": [
            {"name": "a", "type": "string", "path": "0"},
            {"name": "b", "type": "string", "path": "1"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let t = app
        .submit_transfer(json!({"sourceFileId": file, "targetId": pg["id"],
            "targetSchema": schema, "targetTable": "t"}))
        .await;
    let done = app.wait_transfer(&t["id"], 60).await;
    assert_eq!(done["status"], "error", "{done}");
    assert_eq!(done["errorCode"], "invalid_file_content");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("longer than 67108864 bytes"),
        "{done}"
    );
    let client = pg_client("test").await;
    assert_eq!(
        pg_cells(
            &client,
            &format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'")
        )
        .await,
        [vec![Some("0".to_string())]]
    );
}

/// Every cell of `sql` on MariaDB as text (NULL as `None`).
async fn mariadb_text_cells(sql: &str) -> Vec<Vec<Option<String>>> {
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    conn.disconnect().await.ok();
    rows.into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| match row.as_ref(i).unwrap() {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    other => Some(other.as_sql(true)),
                })
                .collect()
        })
        .collect()
}

#[actix_web::test]
async fn an_export_run_writes_a_mariadb_query_into_a_new_file_that_loads_back_cell_for_cell() {
    let app = spawn_app().await;
    let database = unique_name("export");
    mariadb_execute(&format!(
        "CREATE DATABASE {database};
         CREATE TABLE {database}.items (
            id int PRIMARY KEY, qty bigint, price decimal(12,3), ratio double, label varchar(40),
            blob_col varbinary(8), at datetime(6), day date, ok tinyint(1));
         INSERT INTO {database}.items VALUES
            (1, 9223372036854775807, 123456789.125, -0.5, 'a \"quoted\", text', x'00ff',
             '2024-02-29 23:59:59.999999', '0001-01-01', 1),
            (2, -1, -0.001, 1e300, '', x'', '1970-01-01 00:00:00', '9999-12-31', 0),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
    ))
    .await;
    let my = app
        .create_connection(mariadb_connection(&database, &database))
        .await;
    let columns = "id, qty, CAST(price AS CHAR), ratio, label, HEX(blob_col), \
                   CAST(at AS CHAR), CAST(day AS CHAR), ok";
    let expected = mariadb_text_cells(&format!(
        "SELECT {columns} FROM {database}.items ORDER BY id"
    ))
    .await;

    for (to, output) in [
        ("parquet", Value::Null),
        ("jsonl", Value::Null),
        ("csv", json!({"null": "\\N", "separator": ";"})),
    ] {
        let run = app
            .run_step(json!({"step": "export", "options": {
                "sourceId": my["id"], "query": "SELECT * FROM items ORDER BY id",
                "to": to, "output": output, "name": format!("items.{to}")}}))
            .await;
        assert_eq!(run["status"], "complete", "{run}");
        assert_eq!(run["fileId"], Value::Null);
        assert_eq!(run["fileName"], Value::Null);
        assert_eq!(run["result"]["rows"], 3);
        assert_eq!(run["result"]["to"], to);
        let output_file = &run["outputFileId"];
        let file = app.file(output_file).await;
        assert_eq!(file["name"], format!("items.{to}"));
        assert_eq!(file["rowCount"], 3);
        assert_eq!(
            field_types(&file),
            [
                "integer",
                "bigint",
                "decimal(12,3)",
                "float",
                "string",
                "bytes",
                "timestamp",
                "date",
                "boolean"
            ],
            "{to}"
        );
        if to == "csv" {
            let text = file_text(&app, output_file).await;
            assert!(
                text.ends_with("\n3;\\N;\\N;\\N;\\N;\\N;\\N;\\N;\\N\n"),
                "{text}"
            );
        }

        let table = format!("back_{to}");
        let run = app
            .run_step(json!({"step": "load", "fileId": output_file, "options": {
                "targetId": my["id"], "targetTable": table}}))
            .await;
        assert_eq!(run["status"], "complete", "{to}: {run}");
        let back = mariadb_text_cells(&format!(
            "SELECT {columns} FROM {database}.{table} ORDER BY id"
        ))
        .await;
        assert_eq!(back, expected, "{to}");
    }

    // Checked before anything is queued.
    let file = app.upload_file("orders.csv", ORDERS_CSV).await;
    for (body, code, field) in [
        (
            json!({"step": "export", "fileId": file, "options": {
                "sourceId": my["id"], "query": "SELECT 1", "to": "csv"}}),
            "validation_failed",
            "fileId",
        ),
        (
            json!({"step": "convert", "options": {"to": "csv"}}),
            "validation_failed",
            "fileId",
        ),
        (
            json!({"step": "export", "options": {
                "sourceId": 999999, "query": "SELECT 1", "to": "csv"}}),
            "unknown_connection",
            "options.sourceId",
        ),
        (
            json!({"step": "export", "options": {
                "sourceId": my["id"], "query": " ", "to": "csv"}}),
            "validation_failed",
            "options.query",
        ),
        (
            json!({"step": "export", "options": {
                "sourceId": my["id"], "query": "SELECT 1", "to": "xml"}}),
            "validation_failed",
            "options[to]",
        ),
        (
            json!({"step": "export", "options": {
                "sourceId": my["id"], "query": "SELECT 1", "to": "csv", "name": "../../etc/passwd"}}),
            "invalid_file_name",
            "name",
        ),
        (
            json!({"step": "export", "options": {
                "sourceId": my["id"], "query": "SELECT 1", "to": "csv", "colour": "red"}}),
            "unknown_field",
            "options.colour",
        ),
    ] {
        app.refused("/api/v1/runs", &body, code, field).await;
    }

    // A query that fails ends the run with the database's error and leaves no file behind.
    let files_before = file_total(&app).await;
    let run = app
        .run_step(json!({"step": "export", "options": {
            "sourceId": my["id"], "query": "SELECT * FROM no_such_table", "to": "parquet"}}))
        .await;
    assert_eq!(run["status"], "error", "{run}");
    assert_eq!(run["outputFileId"], Value::Null);
    assert!(
        run["error"].as_str().unwrap().contains("no_such_table"),
        "{run}"
    );
    assert_eq!(file_total(&app).await, files_before);
}

#[actix_web::test]
async fn a_sqlite_edge_case_table_exported_to_each_format_loads_back_as_a_direct_copy_writes_it() {
    use crate::engine_sqlite::{assert_rows, create_edge, TempDb};
    let app = spawn_app().await;
    let db = TempDb::new("file_edge");
    create_edge(&db);
    let lite = app
        .create_connection(
            json!({"name": unique_name("lite"), "type": "sqlite", "path": db.path()}),
        )
        .await;
    let query = "SELECT * FROM edge ORDER BY id";
    let t = app
        .submit_transfer(json!({"sourceId": lite["id"], "query": query,
            "targetId": lite["id"], "targetTable": "direct"}))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let columns = "id, i, b, f, d38, dn, big, t, v, c, bl, dt, tm, ts, tz, u, j";
    let reference = db.rows(&format!("SELECT {columns} FROM direct ORDER BY id"));
    assert_eq!(reference.len(), 5);

    for (to, output) in [
        ("parquet", Value::Null),
        ("jsonl", Value::Null),
        ("json", Value::Null),
        ("csv", json!({"null": "\\N"})),
    ] {
        let run = app
            .run_step(json!({"step": "export", "options": {
                "sourceId": lite["id"], "query": query, "to": to, "output": output}}))
            .await;
        assert_eq!(run["status"], "complete", "{to}: {run}");
        let table = format!("back_{to}");
        let run = app
            .run_step(
                json!({"step": "load", "fileId": run["outputFileId"], "options": {
                "targetId": lite["id"], "targetTable": table}}),
            )
            .await;
        assert_eq!(run["status"], "complete", "{to}: {run}");
        let mut back = db.rows(&format!("SELECT {columns} FROM {table} ORDER BY id"));
        let mut expected = reference.clone();
        if to.starts_with("json") {
            // As documented: JSON embedded in a JSON file is the same value, but its text is
            // written anew (`1.5e300` comes back as `1.5e+300`), and a JSON `null` in a json
            // column is a JSON file's NULL.
            for row in back.iter_mut().chain(expected.iter_mut()) {
                if let rusqlite::types::Value::Text(j) = &row[16] {
                    row[16] = match serde_json::from_str::<Value>(j).unwrap() {
                        Value::Null => rusqlite::types::Value::Null,
                        v => rusqlite::types::Value::Text(v.to_string()),
                    };
                }
            }
        }
        assert_rows(&back, &expected);
    }
}

#[actix_web::test]
async fn postgresqls_own_csv_notation_loads_as_booleans_and_bytes() {
    let app = spawn_app().await;
    // As `COPY … TO … CSV HEADER` writes booleans and bytea.
    let file = app
        .upload_file(
            "from_psql.csv",
            b"id,ok,blob\n1,t,\\x00ff10\n2,f,\\x\n3,,\n",
        )
        .await;
    let detected = app.file(&json!(file)).await;
    assert_eq!(field_types(&detected), ["integer", "boolean", "bytes"]);

    let (schema, pg) = pg_schema_and_connection(&app, "pg_notation").await;
    let t = app
        .submit_transfer(json!({"sourceFileId": file, "targetId": pg["id"],
            "targetSchema": schema, "targetTable": "back"}))
        .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let client = pg_client("test").await;
    let types: Vec<String> = pg_column_types(&client, &schema, "back")
        .await
        .into_iter()
        .map(|(_, ty, _)| ty)
        .collect();
    assert_eq!(types, ["integer", "boolean", "bytea"]);
    let some = |v: &str| Some(v.to_string());
    assert_eq!(
        pg_cells(
            &client,
            &format!("SELECT id, ok, encode(blob, 'hex') FROM {schema}.back ORDER BY id")
        )
        .await,
        [
            vec![some("1"), some("t"), some("00ff10")],
            vec![some("2"), some("f"), some("")],
            vec![some("3"), None, None],
        ]
    );

    // Converted to JSON Lines, the bytes are base64 like every file Sluice writes.
    let run = app
        .run_step(json!({"step": "convert", "fileId": file, "options": {"to": "jsonl"}}))
        .await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(
        file_text(&app, &run["outputFileId"]).await,
        "{\"id\":1,\"ok\":true,\"blob\":\"AP8Q\"}\n\
         {\"id\":2,\"ok\":false,\"blob\":\"\"}\n\
         {\"id\":3,\"ok\":null,\"blob\":null}\n"
    );
}
