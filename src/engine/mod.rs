//! The data plane: connecting to users' databases and moving rows. No HTTP and no sea-orm here.
//! Each kind of endpoint is a folder implementing `connector::Connector`, listed in `registry`.

pub mod arrays;
pub mod batch;
pub mod connector;
pub mod convert;
pub mod csv;
pub mod detect;
pub mod encoding;
pub mod error;
pub mod file;
pub mod infer;
pub mod json;
pub mod mysql;
pub mod parse;
pub mod partition;
pub mod pipeline;
pub mod postgres;
pub mod query;
pub mod registry;
pub mod sqlite;
pub mod tls;
pub mod types;
pub mod values;

use std::time::{Duration, Instant};

pub(crate) use crate::catalog::group_columns;
pub use crate::catalog::{ColumnInfo, RelationInfo, SchemaInfo, TableInfo, TestResult};
pub use batch::{SinkSpec, SourceSpec};
pub use connector::{
    Carrier, ConnectSpec, Connector, DbKind, DynConnector, Scope, SourceReader, SslMode, Timeouts,
};
pub(crate) use connector::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES};
pub(crate) use error::{within, CANCEL_GRACE};
pub use error::{ConnectError, EngineError};

/// Connect, ask the server's version, and report how long it took. Never fails: a failure is
/// an answer with `ok: false`.
pub async fn test_connection(spec: &ConnectSpec) -> TestResult {
    let started = Instant::now();
    let outcome = with_timeout(
        spec.timeouts.connect,
        spec.kind.connector().server_version(spec),
    )
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(version) => TestResult {
            ok: true,
            server_version: Some(version),
            latency_ms,
            error: None,
            error_code: None,
        },
        Err(e) => TestResult {
            ok: false,
            server_version: None,
            latency_ms,
            error: Some(e.to_string()),
            error_code: Some(e.code().code().to_string()),
        },
    }
}

/// Schemas, tables and columns of a user's database, read live. `schema` narrows to one;
/// MySQL/MariaDB list only the connection's database unless `schema` is `*` (every database
/// the user can see). Connecting takes at most `spec.timeouts.connect`, reading the catalog
/// then at most `list_timeout`.
pub async fn list_tables(
    spec: &ConnectSpec,
    schema: Option<&str>,
    list_timeout: Duration,
) -> Result<Vec<SchemaInfo>, ConnectError> {
    let scope = match schema {
        None => Scope::Default,
        Some("*") => Scope::All,
        Some(name) => Scope::Named(name),
    };
    with_timeout(
        spec.timeouts.connect + list_timeout,
        spec.kind.connector().list_tables(spec, scope),
    )
    .await
}

/// The databases of the server `spec` names (`system`: with the server's own).
pub async fn list_databases(
    spec: &ConnectSpec,
    system: bool,
    list_timeout: Duration,
) -> Result<Vec<String>, ConnectError> {
    let work = spec.kind.connector().list_databases(spec, system);
    with_timeout(spec.timeouts.connect + list_timeout, work).await
}

/// The schemas of `database` on the server `spec` names.
pub async fn list_schemas(
    spec: &ConnectSpec,
    database: &str,
    list_timeout: Duration,
) -> Result<Vec<String>, ConnectError> {
    let work = spec.kind.connector().list_schemas(spec, database);
    with_timeout(spec.timeouts.connect + list_timeout, work).await
}

/// The tables and views of `schema` in `database` on the server `spec` names.
pub async fn list_relations(
    spec: &ConnectSpec,
    database: &str,
    schema: &str,
    list_timeout: Duration,
) -> Result<Vec<RelationInfo>, ConnectError> {
    let work = spec.kind.connector().list_relations(spec, database, schema);
    with_timeout(spec.timeouts.connect + list_timeout, work).await
}

/// The exact row count of a table or view, stopped by the database after `limit`.
pub async fn count_rows(
    spec: &ConnectSpec,
    at: connector::TableAt<'_>,
    limit: Duration,
) -> Result<u64, ConnectError> {
    let work = spec.kind.connector().count_rows(spec, at, limit);
    // The database's own limit ends the count; this one only ends a wait it did not.
    let backstop = spec.timeouts.connect + limit + Duration::from_secs(5);
    with_timeout(backstop, work).await
}

/// The statement that recreates a table (or, `view`, a view).
pub async fn table_ddl(
    spec: &ConnectSpec,
    at: connector::TableAt<'_>,
    view: bool,
    list_timeout: Duration,
) -> Result<String, ConnectError> {
    let work = spec.kind.connector().table_ddl(spec, at, view);
    with_timeout(spec.timeouts.connect + list_timeout, work).await
}

async fn with_timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

/// A query without surrounding blanks and trailing semicolons, ready to be wrapped (in COPY,
/// a subquery).
pub(crate) fn trim_query(query: &str) -> &str {
    let mut q = query.trim();
    while let Some(rest) = q.strip_suffix(';') {
        q = rest.trim_end();
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    use secrecy::SecretString;

    #[test]
    fn the_debug_output_of_a_connect_spec_hides_the_password() {
        let spec = ConnectSpec {
            kind: DbKind::named("postgresql"),
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            username: "u".into(),
            password: Some(SecretString::from("p4ssw0rd-visible?")),
            path: None,
            ssl_mode: SslMode::Require,
            ssl_root_cert: None,
            timeouts: Timeouts::default(),
            read_only: false,
        };
        let text = format!("{spec:?}");
        assert!(!text.contains("p4ssw0rd-visible?"), "{text}");
        assert!(text.contains("REDACTED"), "{text}");
    }

    #[test]
    fn trailing_semicolons_and_blanks_are_trimmed_before_a_query_is_wrapped() {
        assert_eq!(trim_query("  SELECT 1 ;; \n"), "SELECT 1");
        assert_eq!(trim_query("SELECT ';'"), "SELECT ';'");
    }

    #[test]
    fn ssl_modes_parse_from_their_usual_spellings() {
        assert_eq!(SslMode::parse("verify-full"), Some(SslMode::VerifyFull));
        assert_eq!(SslMode::parse("REQUIRED"), Some(SslMode::Require));
        assert_eq!(SslMode::parse("sometimes"), None);
    }
}
