//! `sluice transfer`: the one-shot command runs the same engine without the server.

use std::process::Command;

use crate::helpers::{pg_client, pg_execute, unique_name};

fn sluice() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // Start from the compiled-in defaults, whatever config/ holds on this machine.
    command
        .env(
            "SLUICE_CONFIG_DIR",
            std::env::temp_dir().join(unique_name("noconfig")),
        )
        .env_remove("SLUICE_ENV");
    command
}

#[actix_web::test]
async fn the_transfer_command_copies_a_result_and_prints_plain_progress_off_a_terminal() {
    let schema = unique_name("cli");
    pg_execute(
        "test",
        &format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.src AS SELECT g AS id, 'row ' || g AS label FROM generate_series(1, 2500) g;"
        ),
    )
    .await;
    let output = sluice()
        .args([
            "transfer",
            "--source",
            "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
            "--target",
            "postgres://postgres@127.0.0.1:5432/test",
            "--query",
            &format!("SELECT * FROM {schema}.src"),
            "--schema",
            &schema,
            "--table",
            "copy",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Done: 2500 rows written"), "{stderr}");
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!("SELECT count(*), sum(id), max(label) FROM {schema}.copy"),
            &[],
        )
        .await
        .unwrap();
    let (n, sum, max): (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((n, sum, max.as_str()), (2500, 2500 * 2501 / 2, "row 999"));
}

#[actix_web::test]
async fn the_transfer_command_exits_non_zero_with_the_database_error() {
    let output = sluice()
        .args([
            "transfer",
            "--source",
            "postgres://postgres@127.0.0.1:5432/test",
            "--target",
            "postgres://postgres@127.0.0.1:5432/test",
            "--query",
            "SELECT * FROM no_such_table_anywhere",
            "--table",
            "never",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no_such_table_anywhere"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn a_bad_url_is_refused_before_anything_runs() {
    let output = sluice()
        .args([
            "transfer",
            "--source",
            "oracle://x/y",
            "--target",
            "sqlite://t.db",
            "--query",
            "SELECT 1",
            "--table",
            "t",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown scheme"), "{stderr}");
}

#[actix_web::test]
async fn the_transfer_command_loads_a_local_csv_file_with_its_detected_types() {
    let schema = unique_name("cli_file");
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let path = std::env::temp_dir().join(format!("{schema}.csv"));
    let mut csv = String::from("id,price,day,label\n");
    for i in 1..=3000 {
        csv.push_str(&format!(
            "{i},{i}.25,2024-01-{:02},\"row, {i}\"\n",
            i % 28 + 1
        ));
    }
    std::fs::write(&path, csv).unwrap();
    let source = format!("file://{}", path.display());
    let output = sluice()
        .args([
            "transfer",
            "--source",
            &source,
            "--target",
            "postgres://postgres@127.0.0.1:5432/test",
            "--schema",
            &schema,
            "--table",
            "orders",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Done: 3000 rows written"), "{stderr}");
    let client = pg_client("test").await;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), sum(id)::bigint, sum(price)::text, max(day)::text, max(label)
                 FROM {schema}.orders"
            ),
            &[],
        )
        .await
        .unwrap();
    let (n, sum, total, day, label): (i64, i64, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (n, sum, total.as_str(), day.as_str(), label.as_str()),
        (3000, 4_501_500, "4502250.00", "2024-01-28", "row, 999")
    );

    // A query with a file is refused before anything runs.
    let output = sluice()
        .args([
            "transfer",
            "--source",
            &source,
            "--target",
            "postgres://postgres@127.0.0.1:5432/test",
            "--query",
            "SELECT 1",
            "--table",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("read whole"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
