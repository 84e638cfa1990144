//! Configuration: layered settings with errors that name the key, and users and connections
//! declared in the config file, reconciled at every start.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sluice::settings::{DeclaredConnection, DeclaredUser, Settings};
use sluice::startup::Application;

use crate::helpers::{spawn_app_with, test_settings, unique_name, Backend};

fn config_dir_with(local_toml: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("config"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("local.toml"), local_toml).unwrap();
    dir
}

fn load_error(local_toml: &str) -> String {
    let dir = config_dir_with(local_toml);
    match Settings::load(&dir, None) {
        Ok(_) => panic!("{local_toml:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_invalid_setting_is_refused_with_its_key_named() {
    for (toml, key) in [
        ("[server]\nport = \"abc\"\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nprot = 1\n", "prot"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        (
            "[security]\nsecret_key = \"too-short\"\n",
            "security.secret_key",
        ),
        (
            "[engine]\nconnect_timeout_secs = 0\n",
            "engine.connect_timeout_secs",
        ),
        ("[[users]]\nusername = \"a\"\n", "password_env"),
    ] {
        let message = load_error(toml);
        assert!(message.contains(key), "{toml:?} → {message}");
    }
}

#[test]
fn layers_override_the_defaults_and_declare_users_and_connections() {
    let dir = config_dir_with(
        r#"
data_dir = "/var/lib/sluice-test"
[server]
port = 9555
[log]
format = "json"

[[users]]
username = "etl"
password_env = "ETL_PASSWORD"

[[connections]]
name = "warehouse"
type = "postgresql"
host = "db.example.com"
port = 5432
database = "dwh"
username = "loader"
password_env = "WAREHOUSE_PASSWORD"
options = { sslMode = "verify-full" }
"#,
    );
    let extra = dir.join("extra.toml");
    std::fs::write(&extra, "[server]\nhost = \"0.0.0.0\"\n").unwrap();
    let settings = Settings::load(&dir, Some(&extra)).unwrap();
    assert_eq!(settings.server.port, 9555);
    assert_eq!(settings.server.host, "0.0.0.0");
    assert_eq!(
        settings.data_dir,
        std::path::PathBuf::from("/var/lib/sluice-test")
    );
    assert_eq!(settings.log.format, sluice::settings::LogFormat::Json);
    // Untouched values keep the documented defaults.
    assert_eq!(settings.server.body_limit_bytes, 1_048_576);
    assert_eq!(settings.declared_users[0].username, "etl");
    assert!(!settings.declared_users[0].admin);
    let warehouse = &settings.declared_connections[0];
    assert_eq!(warehouse.kind, "postgresql");
    assert_eq!(
        warehouse.password_env.as_deref(),
        Some("WAREHOUSE_PASSWORD")
    );
    assert_eq!(warehouse.options["sslMode"], "verify-full");
}

fn declared(password_var: &str, database: &str) -> (DeclaredUser, DeclaredConnection) {
    (
        DeclaredUser {
            username: "operator".into(),
            password_env: password_var.into(),
            admin: true,
        },
        DeclaredConnection {
            name: "declared-pg".into(),
            kind: "postgresql".into(),
            host: Some("127.0.0.1".into()),
            port: Some(5432),
            database: Some(database.into()),
            username: Some("postgres".into()),
            password_env: Some(password_var.into()),
            path: None,
            options: BTreeMap::from([("sslMode".to_string(), Value::from("disable"))]),
        },
    )
}

#[actix_web::test]
async fn declared_users_and_connections_are_created_and_then_updated_at_start() {
    let var = format!("SLUICE_TEST_PW_{}", uuid::Uuid::new_v4().simple());
    std::env::set_var(&var, "operator-password-1");
    let (user, connection) = declared(&var, "test");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.declared_users = vec![user.clone()];
        s.declared_connections = vec![connection.clone()];
    })
    .await;
    let connections: Vec<Value> = app
        .as_user(
            Method::GET,
            "/api/v1/connections",
            "operator",
            "operator-password-1",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["name"], "declared-pg");
    assert_eq!(connections[0]["database"], "test");
    assert_eq!(connections[0]["hasPassword"], true);
    let test: Value = app
        .as_user(
            Method::POST,
            &format!("/api/v1/connections/{}/test", connections[0]["id"]),
            "operator",
            "operator-password-1",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(test["ok"], true, "{test}");
    app.stop().await;

    // Next start on the same store with a changed file: updated in place, not duplicated.
    std::env::set_var(&var, "operator-password-2");
    let (user, connection) = declared(&var, "postgres");
    let data_dir = app.data_dir.clone();
    let mut settings = test_settings();
    settings.data_dir = data_dir;
    settings.declared_users = vec![user];
    settings.declared_connections = vec![connection];
    let restarted = Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", restarted.port());
    actix_web::rt::spawn(restarted.run_until_stopped());
    let client = reqwest::Client::new();
    let old = client
        .get(format!("{url}/api/v1/connections"))
        .basic_auth("operator", Some("operator-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let connections: Vec<Value> = client
        .get(format!("{url}/api/v1/connections"))
        .basic_auth("operator", Some("operator-password-2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["database"], "postgres");
}

#[actix_web::test]
async fn a_missing_password_variable_stops_start_up_with_a_clear_message() {
    let var = format!("SLUICE_TEST_UNSET_{}", uuid::Uuid::new_v4().simple());
    let (_, connection) = declared(&var, "test");
    let mut settings = test_settings();
    settings.declared_connections = vec![connection];
    let error = match Application::build(settings).await {
        Ok(_) => panic!("start-up succeeded without {var}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains(&var), "{error}");
    assert!(error.contains("declared-pg"), "{error}");
}

#[actix_web::test]
async fn a_declared_connection_that_fails_validation_stops_start_up() {
    let mut settings = test_settings();
    settings.declared_connections = vec![DeclaredConnection {
        name: "broken".into(),
        kind: "postgresql".into(),
        host: None,
        port: Some(5432),
        database: Some("x".into()),
        username: Some("y".into()),
        password_env: None,
        path: None,
        options: BTreeMap::new(),
    }];
    let error = match Application::build(settings).await {
        Ok(_) => panic!("start-up succeeded with a connection without host"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("broken") && error.contains("host"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_generated_bootstrap_password_is_not_logged_and_the_admin_exists() {
    let mut settings = test_settings();
    settings.bootstrap.admin_password = secrecy::SecretString::from("");
    let app = Application::build(settings).await.unwrap();
    let state = app.state();
    let admin = state
        .store
        .find_user_by_username("admin")
        .await
        .unwrap()
        .unwrap();
    assert!(admin.admin);
    assert!(admin.password_hash.starts_with("$argon2id$"));
}
