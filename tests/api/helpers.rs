//! `spawn_app()`: the real application on port 0 with a fresh metadata store (a SQLite file in a
//! temporary directory, or a fresh PostgreSQL database), and typed request helpers.

use std::path::PathBuf;

use actix_web::web;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sluice::api::AppState;
use sluice::settings::Settings;
use sluice::startup::Application;
use uuid::Uuid;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// The machine's database servers (see README: tests need them running).
pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: u16 = 5432;
pub const PG_USER: &str = "postgres";
pub const MARIADB_HOST: &str = "127.0.0.1";
pub const MARIADB_PORT: u16 = 3306;
pub const MARIADB_USER: &str = "root";

/// Which metadata store the app under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: web::Data<AppState>,
    pub data_dir: PathBuf,
    /// The PostgreSQL metadata database, for the Postgres backend.
    pub metadata_db: Option<String>,
    stopper: sluice::startup::Stopper,
    server_task: std::sync::Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

/// A unique lowercase name with a prefix that `.ci/run` sweeps up.
pub fn unique_name(prefix: &str) -> String {
    format!("sluice_test_{prefix}_{}", Uuid::new_v4().simple())
}

/// Settings for a test: port 0, one worker, a temporary data directory, a known admin.
pub fn test_settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.data_dir = std::env::temp_dir().join(unique_name("data"));
    settings.database.max_connections = 3;
    settings.bootstrap.admin_username = ADMIN.into();
    settings.bootstrap.admin_password = SecretString::from(ADMIN_PASSWORD);
    settings.engine.connect_timeout_secs = 5;
    settings
}

/// Run SQL on the machine's PostgreSQL, database `db`.
pub async fn pg_execute(db: &str, sql: &str) {
    let client = pg_client(db).await;
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub async fn pg_client(db: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 must be running (see README)");
    tokio::spawn(connection);
    client
}

/// A PostgreSQL query of `rows` generated rows (id, md5 text) whose source sleeps `pause`
/// seconds every 100,000 rows, so a transfer of it runs at least `rows / 100,000 × pause`
/// seconds and its progress is seen to grow whatever the machine's speed.
pub fn paced_query(rows: i64, pause: f64) -> String {
    format!(
        "SELECT g AS id, md5(g::text) AS t FROM (SELECT generate_series(1, {rows}) g) s \
         WHERE g % 100000 <> 0 OR pg_sleep({pause})::text = ''"
    )
}

/// How many statements containing `marker` PostgreSQL is running, waiting up to 2 s for the
/// count to become `expected` (a cancelled query takes a moment to leave `pg_stat_activity`).
pub async fn active_pg_queries_with(marker: &str, expected: i64) -> i64 {
    let client = pg_client("test").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let active: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE state = 'active' AND query LIKE '%' || $1 || '%'
                   AND pid <> pg_backend_pid()",
                &[&marker],
            )
            .await
            .unwrap()
            .get(0);
        if active == expected || std::time::Instant::now() > deadline {
            return active;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The rows of `schema.table` in PostgreSQL database `test`.
pub async fn pg_count(schema: &str, table: &str) -> i64 {
    pg_client("test")
        .await
        .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Every cell of a query's result in PostgreSQL's text form.
pub async fn pg_cells(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(String::from))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// (name, type as PostgreSQL formats it, NOT NULL) of a table's columns.
pub async fn pg_column_types(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Vec<(String, String, bool)> {
    client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A connection to the machine's MariaDB (no default database).
pub async fn mariadb_conn() -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(MARIADB_HOST)
        .tcp_port(MARIADB_PORT)
        .user(Some(MARIADB_USER))
        .prefer_socket(false);
    mysql_async::Conn::new(opts)
        .await
        .expect("MariaDB on 127.0.0.1:3306 must be running (see README)")
}

/// Run SQL on the machine's MariaDB (no default database).
pub async fn mariadb_execute(sql: &str) {
    use mysql_async::prelude::Queryable;
    let mut conn = mariadb_conn().await;
    conn.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.disconnect().await.ok();
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |_| {}).await
}

pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Start the app with a fresh metadata store of `backend`, after `customize` edits the settings.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logging();
    let mut settings = test_settings();
    let mut metadata_db = None;
    if backend == Backend::Postgres {
        let db = unique_name("meta");
        pg_execute("test", &format!("CREATE DATABASE {db}")).await;
        settings.database.url =
            SecretString::from(format!("postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db}"));
        metadata_db = Some(db);
    }
    customize(&mut settings);
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let port = app.port();
    let state = app.state();
    let stopper = app.stopper();
    let server_task = actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        data_dir,
        metadata_db,
        stopper,
        server_task: std::sync::Mutex::new(Some(server_task)),
    }
}

/// `TEST_LOG=1 cargo test` shows the service's log.
fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        let mut log = Settings::defaults().log;
        log.level = "debug".into();
        sluice::telemetry::init(&log);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the given Basic credentials.
    pub fn as_user(
        &self,
        method: Method,
        path: &str,
        user: &str,
        password: &str,
    ) -> RequestBuilder {
        self.anon(method, path).basic_auth(user, Some(password))
    }

    /// The ids a list (transfers, queries, ...) answers to the admin, in its order.
    pub async fn listed_ids(&self, path: &str) -> Vec<i64> {
        let response = self.admin(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let list: Vec<Value> = response.json().await.unwrap();
        list.iter()
            .map(|item| item["id"].as_i64().unwrap())
            .collect()
    }

    /// A request as the bootstrap admin.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_user(method, path, ADMIN, ADMIN_PASSWORD)
    }

    /// Create a user as the admin; returns its JSON.
    pub async fn create_user(&self, username: &str, password: &str, admin: bool) -> Value {
        let response = self
            .admin(Method::POST, "/api/v1/users")
            .json(&json!({"username": username, "password": password, "admin": admin}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "creating user {username}"
        );
        response.json().await.unwrap()
    }

    /// Create a token for the given user; returns the secret.
    pub async fn create_token(&self, user: &str, password: &str) -> String {
        let response = self
            .as_user(Method::POST, "/api/v1/tokens", user, password)
            .json(&json!({"name": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// Create a connection as the admin; returns its JSON.
    pub async fn create_connection(&self, body: Value) -> Value {
        let response = self
            .admin(Method::POST, "/api/v1/connections")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "creating connection: {value}");
        value
    }

    /// Stop the service as SIGTERM would: the server, then the running jobs (left to resume).
    pub async fn stop(&self) {
        self.stopper.stop(true).await;
        let task = self.server_task.lock().unwrap().take();
        if let Some(task) = task {
            task.await.unwrap().unwrap();
        }
    }
}

/// A connection body for the machine's PostgreSQL, database `database`.
pub fn pg_connection(name: &str, database: &str) -> Value {
    json!({
        "name": name, "type": "postgresql", "host": PG_HOST, "port": PG_PORT,
        "database": database, "username": PG_USER, "password": "not-needed-with-trust",
        "options": {"sslMode": "disable"}
    })
}

/// A connection body for the machine's MariaDB, database `database`.
pub fn mariadb_connection(name: &str, database: &str) -> Value {
    json!({
        "name": name, "type": "mariadb", "host": MARIADB_HOST, "port": MARIADB_PORT,
        "database": database, "username": MARIADB_USER, "options": {"sslMode": "disable"}
    })
}

/// Assert an error response: its status, its `code`, and the shape of the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("error body is not JSON ({actual}): {e}"));
    assert_eq!(actual, status, "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status.as_u16(), "body: {body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "body: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "body: {body}"
    );
    body
}

/// Declare each test once and run it against both metadata backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// An engine-level connection to the machine's PostgreSQL, database `database`.
pub fn pg_spec(database: &str) -> sluice::engine::ConnectSpec {
    sluice::engine::ConnectSpec {
        kind: sluice::engine::DbKind::named("postgresql"),
        host: PG_HOST.into(),
        port: PG_PORT,
        database: database.into(),
        username: PG_USER.into(),
        password: None,
        path: None,
        ssl_mode: sluice::engine::SslMode::Disable,
        ssl_root_cert: None,
        timeouts: sluice::engine::Timeouts {
            connect: std::time::Duration::from_secs(5),
            io: std::time::Duration::from_secs(60),
        },
        read_only: false,
    }
}

/// An engine-level connection to the machine's MariaDB, database `database`.
pub fn mariadb_spec(database: &str) -> sluice::engine::ConnectSpec {
    sluice::engine::ConnectSpec {
        kind: sluice::engine::DbKind::named("mariadb"),
        host: MARIADB_HOST.into(),
        port: MARIADB_PORT,
        username: MARIADB_USER.into(),
        database: database.into(),
        ..pg_spec("")
    }
}

/// An engine-level connection to a SQLite file (created by the sink when missing).
pub fn sqlite_spec(path: &std::path::Path) -> sluice::engine::ConnectSpec {
    sluice::engine::ConnectSpec {
        kind: sluice::engine::DbKind::named("sqlite"),
        path: Some(path.to_path_buf()),
        ..pg_spec("")
    }
}

/// Run a transfer through the engine directly (no HTTP); for the engine suites.
pub async fn engine_transfer(
    source: sluice::engine::ConnectSpec,
    target: sluice::engine::ConnectSpec,
    query: &str,
    schema: Option<&str>,
    table: &str,
    overwrite: bool,
) -> Result<u64, sluice::engine::EngineError> {
    use sluice::engine::batch::{Progress, TargetTable};
    use sluice::engine::pipeline::{run_transfer, TransferRequest};
    let request = TransferRequest {
        source,
        read: sluice::engine::SourceSpec::Query(query.into()),
        target,
        write: sluice::engine::SinkSpec::Table(TargetTable {
            schema: schema.map(String::from),
            table: table.into(),
            overwrite,
        }),
        batch_rows: 1000,
        partitioning: None,
    };
    run_transfer(
        request,
        std::sync::Arc::new(Progress::default()),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
}

impl TestApp {
    /// POST a transfer as the admin; asserts 202 and returns its JSON.
    pub async fn submit_transfer(&self, body: Value) -> Value {
        let response = self
            .admin(Method::POST, "/api/v1/transfers")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let value: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "submitting a transfer: {value}"
        );
        assert_eq!(value["status"], "queued", "{value}");
        value
    }

    /// The transfer's JSON as the admin sees it.
    pub async fn transfer(&self, id: &Value) -> Value {
        self.admin(Method::GET, &format!("/api/v1/transfers/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Poll until the transfer has a final status (or panic after `seconds`).
    pub async fn wait_transfer(&self, id: &Value, seconds: u64) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let t = self.transfer(id).await;
            if ["complete", "error", "cancelled"].contains(&t["status"].as_str().unwrap_or("")) {
                return t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "transfer {id} still {} after {seconds}s: {t}",
                t["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl TestApp {
    /// POST a query as the admin; asserts 202 and returns its JSON.
    pub async fn submit_query(&self, connection: &Value, sql: &str) -> Value {
        let response = self
            .admin(Method::POST, "/api/v1/queries")
            .json(&json!({"connectionId": connection["id"], "query": sql}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json().await.unwrap()
    }

    /// The query's JSON as the admin sees it.
    pub async fn query_state(&self, id: &Value) -> Value {
        self.admin(Method::GET, &format!("/api/v1/queries/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Poll until the query has a final status (or panic after 30 s).
    pub async fn wait_query(&self, id: &Value) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let q = self.query_state(id).await;
            if ["complete", "error", "cancelled"].contains(&q["status"].as_str().unwrap()) {
                return q;
            }
            assert!(std::time::Instant::now() < deadline, "query still {q}");
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }
}

/// A fresh PostgreSQL schema in database `test`, and a connection to that database.
pub async fn pg_schema_and_connection(app: &TestApp, label: &str) -> (String, Value) {
    let schema = unique_name(label);
    pg_execute("test", &format!("CREATE SCHEMA {schema}")).await;
    let connection = app
        .create_connection(pg_connection(&format!("pg-{schema}"), "test"))
        .await;
    (schema, connection)
}

impl TestApp {
    /// Upload a file as the admin (multipart `file`); returns its id.
    pub async fn upload_file(&self, name: &str, bytes: &'static [u8]) -> i64 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
        let response = self
            .admin(Method::POST, "/api/v1/files")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let file: Value = response.json().await.unwrap();
        file["id"].as_i64().unwrap()
    }

    /// A file as the admin sees it (`GET /files/{id}`).
    pub async fn file(&self, id: &Value) -> Value {
        self.admin(Method::GET, &format!("/api/v1/files/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST path` with `body` must be refused: 400 with `code`, naming `field`.
    pub async fn refused(&self, path: &str, body: &Value, code: &str, field: &str) {
        let response = self
            .admin(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(error["field"], field, "{body}");
    }

    /// Queue a run (`POST /runs` with `body`) and wait for its end; returns it.
    pub async fn run_step(&self, body: Value) -> Value {
        let response = self
            .admin(Method::POST, "/api/v1/runs")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let run: Value = response.json().await.unwrap();
        self.wait_run(run["id"].as_i64().unwrap()).await
    }

    /// Poll a run until it has ended (at most 30 s); returns it.
    pub async fn wait_run(&self, id: i64) -> Value {
        let started = std::time::Instant::now();
        loop {
            let run: Value = self
                .admin(Method::GET, &format!("/api/v1/runs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if run["finished"] == true {
                return run;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "run {id} did not end: {run}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
