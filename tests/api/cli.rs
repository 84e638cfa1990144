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
