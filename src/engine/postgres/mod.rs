//! PostgreSQL: connecting (with TLS per `sslMode`) and reading the catalog.

mod decode;
pub mod dialect;
mod encode;
pub mod passthrough;
pub mod sink;
pub mod source;
mod typemap;
pub(crate) mod wire;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use tokio_util::sync::CancellationToken;

use super::batch::{SinkContext, SourceSpec};
use super::connector::{
    quoted_literal, standard_literal, Carrier, Connector, Literal, Registered, Scope, SourceReader,
};
use super::types::Column;
use super::EngineError;
use super::{
    group_columns, tls, ColumnInfo, ConnectError, ConnectSpec, RelationInfo, SchemaInfo, SslMode,
};

/// Open a connection within `spec.timeouts.connect` (TCP, TLS and log-in together); its
/// driver task runs on the current runtime until the client drops. The socket keeps TCP
/// keepalive and a `TCP_USER_TIMEOUT` of `spec.timeouts.io`, so a far end that has gone is
/// noticed even while nothing is asked of it. A `read_only` spec makes every transaction of
/// the session read-only.
pub async fn connect(spec: &ConnectSpec) -> Result<Client, ConnectError> {
    let limit = spec.timeouts.connect;
    match tokio::time::timeout(limit, connect_unbounded(spec)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(limit)),
    }
}

async fn connect_unbounded(spec: &ConnectSpec) -> Result<Client, ConnectError> {
    use secrecy::ExposeSecret;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&spec.host)
        .port(spec.port)
        .dbname(&spec.database)
        .user(&spec.username)
        .application_name("sluice")
        .connect_timeout(spec.timeouts.connect)
        .keepalives(true)
        .keepalives_idle(super::KEEPALIVE_IDLE.min(spec.timeouts.io))
        .keepalives_interval(super::KEEPALIVE_INTERVAL)
        .keepalives_retries(super::KEEPALIVE_RETRIES)
        .tcp_user_timeout(spec.timeouts.io);
    if spec.read_only {
        config.options("-c default_transaction_read_only=on");
    }
    if let Some(password) = &spec.password {
        config.password(password.expose_secret());
    }
    let target = format!("{}:{}", spec.host, spec.port);
    let tls_config = tls::client_config(spec.ssl_mode, spec.ssl_root_cert.as_deref())?;
    let client = match tls_config {
        None => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| classify(&e, &target))?;
            tokio::spawn(connection);
            client
        }
        Some(tls_config) => {
            config.ssl_mode(if spec.ssl_mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let (client, connection) = config
                .connect(MakeRustlsConnect::new(tls_config))
                .await
                .map_err(|e| classify(&e, &target))?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

/// A statement on the target, bounded by the I/O timeout, its error in the engine's terms.
pub(crate) trait OnTarget<T>:
    std::future::Future<Output = Result<T, tokio_postgres::Error>> + Sized
{
    async fn on_target(self, io: std::time::Duration) -> Result<T, super::EngineError> {
        super::within(io, "target", async {
            self.await.map_err(|e| dialect::target_error(&e))
        })
        .await
    }
}

impl<T, F> OnTarget<T> for F where F: std::future::Future<Output = Result<T, tokio_postgres::Error>> {}

/// Sort a driver error into what the user can act on.
pub fn classify(e: &tokio_postgres::Error, target: &str) -> ConnectError {
    if let Some(db) = e.as_db_error() {
        let text = db.message().to_string();
        let code = db.code();
        return if code == &SqlState::INVALID_PASSWORD
            || code == &SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            ConnectError::Auth(text)
        } else if code == &SqlState::INVALID_CATALOG_NAME {
            ConnectError::DatabaseNotFound(text)
        } else {
            ConnectError::Other(text)
        };
    }
    let chain = error_chain(e);
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // rustls reports certificate failures wrapped in io::Error(InvalidData).
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    return ConnectError::Tls(tls::explain(&chain));
                }
            }
            return ConnectError::from_io(io, target);
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            return ConnectError::Tls(tls::explain(&chain));
        }
        source = err.source();
    }
    if chain.contains("TLS") || chain.contains("tls") || chain.contains("SSL") {
        return ConnectError::Tls(tls::explain(&chain));
    }
    if chain.contains("timed out") {
        return ConnectError::Other(format!("{target}: {chain}"));
    }
    ConnectError::Other(chain)
}

/// "outer: inner: innermost", the way the driver nests its causes.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

pub async fn server_version(spec: &ConnectSpec) -> Result<String, ConnectError> {
    let client = connect(spec).await?;
    let row = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| ConnectError::Other(error_chain(&e)))?;
    let version: String = row.get(0);
    Ok(format!("PostgreSQL {version}"))
}

pub async fn list_tables(
    spec: &ConnectSpec,
    schema: Option<&str>,
) -> Result<Vec<SchemaInfo>, ConnectError> {
    let client = connect(spec).await?;
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text,
                    CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END,
                    a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
             FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
               AND ($1::text IS NULL OR n.nspname = $1)
               AND has_schema_privilege(n.oid, 'USAGE')
             ORDER BY n.nspname, c.relname, a.attnum",
            &[&schema],
        )
        .await
        .map_err(|e| ConnectError::Other(error_chain(&e)))?;
    Ok(group_columns(rows.into_iter().map(|row| {
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            ColumnInfo {
                name: row.get(3),
                data_type: row.get(4),
                nullable: row.get(5),
            },
        )
    })))
}

/// A table or view as the catalogs know it.
struct Relation {
    oid: u32,
    /// `pg_class.relkind`: `r`, `p`, `v`, `m` or `f`.
    kind: String,
    comment: Option<String>,
    /// `schema.name`, quoted as PostgreSQL prints them (only where they need it).
    name: String,
}

/// The table or view at `at` (`None`: no such one), or `SchemaNotFound`.
async fn locate(
    client: &Client,
    at: crate::engine::connector::TableAt<'_>,
) -> Result<Option<Relation>, ConnectError> {
    let row = client
        .query_one(
            "SELECT n.oid IS NOT NULL, c.oid, c.relkind::text,
                    pg_catalog.obj_description(c.oid, 'pg_class'),
                    pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident($2)
             FROM (SELECT 1) one
             LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1
             LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = $2
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            &[&at.schema, &at.table],
        )
        .await
        .map_err(|e| ConnectError::Other(error_chain(&e)))?;
    if !row.get::<_, bool>(0) {
        return Err(ConnectError::SchemaNotFound(format!(
            "no schema {:?} in database {:?}",
            at.schema, at.database
        )));
    }
    Ok(row.get::<_, Option<u32>>(1).map(|oid| Relation {
        oid,
        kind: row.get(2),
        comment: row.get(3),
        name: row.get(4),
    }))
}

/// A connection to `database` on the server `spec` names.
async fn connect_to(spec: &ConnectSpec, database: &str) -> Result<Client, ConnectError> {
    connect(&ConnectSpec {
        database: database.to_string(),
        ..spec.clone()
    })
    .await
}

/// Whether transaction `xid` (of server process `pid`) committed, asked over fresh connections
/// after its COMMIT got no answer. While the transaction is still open (its COMMIT may never
/// have arrived, and the old connection may linger half-open), its process is terminated so
/// that the answer is final. Gives up with `CommitUnknown` after the I/O timeout (at most a
/// minute) without an answer.
pub(crate) async fn transaction_committed(
    spec: &ConnectSpec,
    xid: i64,
    pid: i32,
) -> Result<bool, super::EngineError> {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let deadline = started + spec.timeouts.io.min(Duration::from_secs(60));
    loop {
        let ask = async {
            let client = connect(spec).await.map_err(|e| e.to_string())?;
            let status: Option<String> = client
                .query_one("SELECT txid_status($1)", &[&xid])
                .await
                .map_err(|e| error_chain(&e))?
                .get(0);
            if status.as_deref() == Some("in progress")
                && started.elapsed() > Duration::from_millis(500)
            {
                // Ours, so the role may end it (or it has pg_signal_backend).
                let _ = client
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .await;
            }
            Ok::<_, String>(status)
        };
        let last = match tokio::time::timeout(spec.timeouts.connect * 2, ask).await {
            Ok(Ok(Some(status))) if status == "committed" => return Ok(true),
            Ok(Ok(Some(status))) if status == "aborted" => return Ok(false),
            Ok(Ok(status)) => format!("transaction status {status:?}"),
            Ok(Err(e)) => e,
            Err(_) => "no answer".into(),
        };
        if Instant::now() >= deadline {
            return Err(super::EngineError::CommitUnknown(format!(
                "the target did not answer COMMIT and its outcome could not be learned \
                 ({last}); check the target table before running the transfer again"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ask the server to stop what `token`'s connection is running, over the same TLS setting
/// that `connect` uses.
pub(crate) async fn cancel_query(
    token: &tokio_postgres::CancelToken,
    spec: &ConnectSpec,
) -> Result<(), String> {
    let tls_config = tls::client_config(spec.ssl_mode, spec.ssl_root_cert.as_deref())
        .map_err(|e| e.to_string())?;
    match tls_config {
        None => token.cancel_query(NoTls).await,
        Some(config) => token.cancel_query(MakeRustlsConnect::new(config)).await,
    }
    .map_err(|e| error_chain(&e))
}

/// PostgreSQL as a kind of endpoint.
pub static KIND: Registered = Registered {
    name: "postgresql",
    aliases: &["postgres", "pg"],
    connector: &Postgres,
};

pub struct Postgres;

impl Connector for Postgres {
    fn create_table_sql(&self, table: &str, columns: &[Column]) -> Result<String, EngineError> {
        dialect::check_ident("table", table)?;
        let mut defs = Vec::with_capacity(columns.len());
        for c in columns {
            dialect::check_ident("column", &c.name)?;
            // A type of the source's own making is not assumed to exist on the reader's server.
            defs.push(dialect::column_ddl(c, |_| false));
        }
        Ok(format!(
            "CREATE TABLE {} ({})",
            dialect::quote_ident(table),
            defs.join(", ")
        ))
    }

    fn write_literal(&self, value: Literal<'_>, out: &mut String) -> Result<(), String> {
        match value {
            Literal::Float(f) if f.is_nan() => out.push_str("'NaN'"),
            Literal::Float(f) if f.is_infinite() => {
                out.push_str(if f > 0.0 { "'Infinity'" } else { "'-Infinity'" })
            }
            Literal::Text(t) if t.contains('\0') => {
                return Err("text with a NUL character, which PostgreSQL cannot hold".into())
            }
            // `X'…'` is a bit string to PostgreSQL; bytea takes its hex form.
            Literal::Bytes(b) => {
                out.push_str("'\\x");
                out.push_str(&hex::encode(b));
                out.push('\'');
            }
            Literal::Timestamp { text, utc: true } => {
                quoted_literal(&format!("{text}+00"), out);
            }
            other => standard_literal(other, out)?,
        }
        Ok(())
    }

    fn is_server(&self) -> bool {
        true
    }

    fn defaults(&self) -> (u16, &'static str) {
        (5432, "postgres")
    }

    fn carrier(&self) -> Carrier {
        Carrier::PostgresBinary
    }

    fn quote_ident(&self, name: &str) -> Result<String, EngineError> {
        Ok(dialect::quote_ident(name))
    }

    fn text_type(&self) -> &'static str {
        "text"
    }

    async fn server_version(&self, spec: &ConnectSpec) -> Result<String, ConnectError> {
        server_version(spec).await
    }

    async fn list_tables(
        &self,
        spec: &ConnectSpec,
        scope: Scope<'_>,
    ) -> Result<Vec<SchemaInfo>, ConnectError> {
        list_tables(spec, scope.schema(None)).await
    }

    /// The databases the role may connect to (`system`: the templates too).
    async fn list_databases(
        &self,
        spec: &ConnectSpec,
        system: bool,
    ) -> Result<Vec<String>, ConnectError> {
        let client = connect(spec).await?;
        let rows = client
            .query(
                "SELECT datname::text FROM pg_catalog.pg_database
                 WHERE ($1 OR NOT datistemplate) AND datallowconn
                   AND has_database_privilege(datname, 'CONNECT')
                 ORDER BY 1",
                &[&system],
            )
            .await
            .map_err(|e| ConnectError::Other(error_chain(&e)))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The schemas of `database` the role may use (connecting to it), less the system's.
    async fn list_schemas(
        &self,
        spec: &ConnectSpec,
        database: &str,
    ) -> Result<Vec<String>, ConnectError> {
        let client = connect_to(spec, database).await?;
        let rows = client
            .query(
                "SELECT nspname::text FROM pg_catalog.pg_namespace
                 WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
                   AND has_schema_privilege(oid, 'USAGE')
                 ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| ConnectError::Other(error_chain(&e)))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    async fn list_relations(
        &self,
        spec: &ConnectSpec,
        database: &str,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, ConnectError> {
        let client = connect_to(spec, database).await?;
        let query_error = |e: tokio_postgres::Error| ConnectError::Other(error_chain(&e));
        let known = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_namespace
                 WHERE nspname = $1 AND has_schema_privilege(oid, 'USAGE')",
                &[&schema],
            )
            .await
            .map_err(query_error)?;
        if known.is_none() {
            return Err(ConnectError::SchemaNotFound(format!(
                "no schema {schema:?} in database {database:?}"
            )));
        }
        let rows = client
            .query(
                "SELECT c.relname::text,
                        CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END,
                        CASE WHEN c.relkind IN ('r', 'p', 'm') AND c.reltuples >= 0
                             THEN c.reltuples::bigint END,
                        CASE WHEN c.relkind IN ('r', 'p', 'm')
                             THEN pg_catalog.pg_total_relation_size(c.oid) END,
                        pg_catalog.obj_description(c.oid, 'pg_class')
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                 ORDER BY 1",
                &[&schema],
            )
            .await
            .map_err(query_error)?;
        Ok(rows
            .iter()
            .map(|row| RelationInfo {
                name: row.get(0),
                kind: row.get(1),
                row_estimate: row.get(2),
                size_bytes: row.get(3),
                comment: row.get(4),
            })
            .collect())
    }

    async fn count_rows(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        limit: std::time::Duration,
    ) -> Result<u64, ConnectError> {
        let client = connect_to(spec, at.database).await?;
        let query_error = |e: tokio_postgres::Error| ConnectError::Other(error_chain(&e));
        let relation = locate(&client, at).await?;
        if relation.is_none() {
            return Err(ConnectError::TableNotFound(format!(
                "no table or view {:?} in schema {:?}",
                at.table, at.schema
            )));
        }
        client
            .batch_execute(&format!("SET statement_timeout = {}", limit.as_millis()))
            .await
            .map_err(query_error)?;
        let sql = format!(
            "SELECT count(*) FROM {}",
            relation.map(|r| r.name).unwrap_or_default()
        );
        match client.query_one(&sql, &[]).await {
            Ok(row) => Ok(row.get::<_, i64>(0).max(0) as u64),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) => {
                Err(ConnectError::Timeout(limit))
            }
            Err(e) => Err(query_error(e)),
        }
    }

    /// Built from the catalogs: columns (types, identity, defaults, NOT NULL), constraints,
    /// the indexes no constraint makes, and the table's comment; a view's definition.
    async fn table_ddl(
        &self,
        spec: &ConnectSpec,
        at: crate::engine::connector::TableAt<'_>,
        view: bool,
    ) -> Result<String, ConnectError> {
        use crate::engine::connector::no_such_relation;
        let client = connect_to(spec, at.database).await?;
        let query_error = |e: tokio_postgres::Error| ConnectError::Other(error_chain(&e));
        let Some(Relation {
            oid,
            kind,
            comment,
            name,
        }) = locate(&client, at).await?
        else {
            return Err(no_such_relation(at, view));
        };
        let is_view = kind == "v" || kind == "m";
        if is_view != view {
            return Err(no_such_relation(at, view));
        }
        if is_view {
            let row = client
                .query_one("SELECT pg_catalog.pg_get_viewdef($1::oid, true)", &[&oid])
                .await
                .map_err(query_error)?;
            let what = if kind == "m" {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            let body: String = row.get(0);
            return Ok(format!("CREATE {what} {name} AS\n{}", body.trim_end()));
        }
        let columns = client
            .query(
                "SELECT pg_catalog.quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod),
                        a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                        a.attidentity::text, a.attgenerated::text
                 FROM pg_catalog.pg_attribute a
                 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(query_error)?;
        let mut parts: Vec<String> = columns
            .iter()
            .map(|c| {
                let mut def = format!("    {} {}", c.get::<_, &str>(0), c.get::<_, String>(1));
                match c.get::<_, &str>(4) {
                    "a" => def.push_str(" GENERATED ALWAYS AS IDENTITY"),
                    "d" => def.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                    _ => {}
                }
                if let Some(expr) = c.get::<_, Option<String>>(3) {
                    if c.get::<_, &str>(5) == "s" {
                        def.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
                    } else {
                        def.push_str(&format!(" DEFAULT {expr}"));
                    }
                }
                if c.get::<_, bool>(2) {
                    def.push_str(" NOT NULL");
                }
                def
            })
            .collect();
        let constraints = client
            .query(
                "SELECT pg_catalog.quote_ident(conname), pg_catalog.pg_get_constraintdef(oid, true)
                 FROM pg_catalog.pg_constraint
                 WHERE conrelid = $1 AND contype IN ('p', 'u', 'f', 'c', 'x')
                 ORDER BY contype <> 'p', contype, conname",
                &[&oid],
            )
            .await
            .map_err(query_error)?;
        parts.extend(constraints.iter().map(|c| {
            format!(
                "    CONSTRAINT {} {}",
                c.get::<_, &str>(0),
                c.get::<_, String>(1)
            )
        }));
        let mut ddl = format!("CREATE TABLE {name} (\n{}\n);", parts.join(",\n"));
        let indexes = client
            .query(
                "SELECT pg_catalog.pg_get_indexdef(i.indexrelid)
                 FROM pg_catalog.pg_index i
                 WHERE i.indrelid = $1 AND NOT EXISTS
                   (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid)
                 ORDER BY 1",
                &[&oid],
            )
            .await
            .map_err(query_error)?;
        for index in &indexes {
            ddl.push_str(&format!("\n{};", index.get::<_, String>(0)));
        }
        if let Some(comment) = comment {
            let mut literal = String::new();
            crate::engine::connector::quoted_literal(&comment, &mut literal);
            ddl.push_str(&format!("\nCOMMENT ON TABLE {name} IS {literal};"));
        }
        Ok(ddl)
    }

    async fn open_source(
        &self,
        spec: &ConnectSpec,
        source: &SourceSpec,
        carrier: Carrier,
    ) -> Result<Box<dyn SourceReader>, EngineError> {
        let query = source.query()?;
        Ok(Box::new(source::open(spec, query, carrier).await?))
    }

    async fn run_sink(&self, spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
        sink::run(spec, ctx).await
    }

    async fn execute(
        &self,
        spec: &ConnectSpec,
        sql: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<u64>, EngineError> {
        execute(spec, sql, cancel).await
    }
}

/// Prepare `sql`; when it returns no rows, run it and answer the affected rows; `None` when it
/// returns rows (the caller reads them with a source).
///
/// # Cancel safety
/// On `cancel` the statement is stopped on the server.
async fn execute(
    spec: &ConnectSpec,
    sql: &str,
    cancel: &CancellationToken,
) -> Result<Option<u64>, EngineError> {
    let client = connect(spec).await?;
    let statement = client
        .prepare(sql)
        .await
        .map_err(|e| dialect::source_error(&e, 0))?;
    if !statement.columns().is_empty() {
        return Ok(None);
    }
    let token = client.cancel_token();
    tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            let _ = tokio::time::timeout(
                super::CANCEL_GRACE,
                cancel_query(&token, spec),
            )
            .await;
            Err(EngineError::Cancelled)
        }
        // The simple protocol runs any statement (some cannot be prepared and bound).
        done = client.execute(sql, &[]) => done
            .map(Some)
            .map_err(|e| dialect::source_error(&e, 0)),
    }
}
