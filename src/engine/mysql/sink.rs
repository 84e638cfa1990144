//! The MySQL/MariaDB sink: `LOAD DATA LOCAL INFILE` fed as a stream from the batches (the
//! server's own bulk path), or multi-row prepared INSERTs where the server refuses local infile;
//! one transaction, and a staging table renamed into place for new tables and overwrite.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryArray,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    Time64MicrosecondArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, InfileData, Params, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::dialect::{self, check_ident, column_definitions, qualified, quote};
use super::values::{
    check_decimal_text, civil_from_days, write_date, write_decimal, write_f64, write_hex,
    write_i64, write_time, write_timestamp, write_u64, write_uuid, MICROS_PER_DAY,
    MICROS_PER_SECOND,
};
use super::{connect_with, describe};
use crate::engine::batch::{copy_not_offered, Message, Progress, SinkContext};
use crate::engine::types::{Column, LogicalType};
use crate::engine::{within, ConnectSpec, EngineError, CANCEL_GRACE};

/// Session settings of a writing connection: refuse rather than adjust a value; DATETIME text
/// is UTC.
const SINK_SETUP: &[&str] = &[
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO'",
    "SET time_zone = '+00:00'",
];
/// LOAD DATA input is handed to the driver in pieces of about this size.
const CHUNK_BYTES: usize = 1 << 20;
/// Pieces encoded ahead of the server.
const CHUNKS_IN_FLIGHT: usize = 4;
/// Fallback INSERTs: rows per statement, placeholders per statement, bytes per statement.
const INSERT_ROWS: usize = 500;
const INSERT_PARAMS: usize = 65_000;
const INSERT_BYTES: usize = 4 << 20;

fn target_error(e: &mysql_async::Error) -> EngineError {
    let (message, transient) = describe(e);
    EngineError::Target { message, transient }
}

/// Write everything the channel brings into the target, atomically; returns rows written.
///
/// # Cancel safety
/// On `ctx.cancel`, or when the channel closes without `End`, the load is ended, the
/// transaction rolled back, and whatever this transfer created (staging table, database)
/// dropped again.
pub async fn run(spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
    let database = ctx
        .target
        .table()
        .schema
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| Some(spec.database.clone()).filter(|d| !d.is_empty()))
        .ok_or_else(|| {
            EngineError::Schema(
                "no target database: give the target schema or the connection's database".into(),
            )
        })?;
    check_ident("database", &database)?;
    check_ident("table", &ctx.target.table().table)?;
    for c in &ctx.columns {
        check_ident("column", &c.name)?;
    }
    let mut conn = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
        c = connect_with(spec, SINK_SETUP) => c?,
    };
    let mut undo = Undo::default();
    match write(&mut conn, spec, ctx, &database, &mut undo).await {
        Ok(rows) => {
            let _ = conn.disconnect().await;
            Ok(rows)
        }
        Err(e) => {
            undo.run(spec, conn).await;
            Err(e)
        }
    }
}

/// A statement on the target, bounded by the I/O timeout, its error in the engine's terms.
trait OnTarget<T>: std::future::Future<Output = Result<T, mysql_async::Error>> + Sized {
    async fn on_target(self, io: Duration) -> Result<T, EngineError> {
        within(io, "target", async {
            self.await.map_err(|e| target_error(&e))
        })
        .await
    }
}

impl<T, F> OnTarget<T> for F where F: std::future::Future<Output = Result<T, mysql_async::Error>> {}

/// The bookkeeping table of appends, in the target's database: an append writes a row keyed
/// by a token of its own in the same transaction as its rows, so that when the answer to its
/// COMMIT is lost, the row tells whether the COMMIT happened. The row is deleted right after.
const COMMITS_TABLE: &str = "_sluice_commits";

/// How long a transfer waits for another one creating or replacing the same table.
const TABLE_LOCK_WAIT_SECS: u64 = 24 * 3600;

/// What to take back when the transfer fails.
#[derive(Default)]
struct Undo {
    in_transaction: bool,
    /// Qualified name of the staging table.
    staging: Option<String>,
    /// A database this transfer created.
    database: Option<String>,
}

impl Undo {
    /// Each step is bounded: on a link that no longer answers, the connection is given up
    /// (the server rolls back when the session ends) and the staging table is dropped over a
    /// fresh one.
    async fn run(self, spec: &ConnectSpec, conn: Conn) {
        let mut conn = Some(conn);
        if self.in_transaction {
            if let Some(c) = conn.as_mut() {
                if !matches!(
                    timeout(CANCEL_GRACE, c.query_drop("ROLLBACK")).await,
                    Ok(Ok(()))
                ) {
                    // The server rolls back when the connection closes.
                    conn = None;
                }
            }
        }
        let step = spec.timeouts.io.min(CANCEL_GRACE * 10);
        let mut statements = Vec::new();
        if let Some(staging) = &self.staging {
            statements.push(format!("DROP TABLE IF EXISTS {staging}"));
        }
        for sql in statements {
            for _attempt in 0..2 {
                if conn.is_none() {
                    conn = connect_with(spec, &[]).await.ok();
                }
                let Some(c) = conn.as_mut() else { break };
                match timeout(step, c.query_drop(&sql)).await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, sql, "Cleanup after a failed transfer failed.");
                        conn = None;
                    }
                    Err(_) => {
                        tracing::warn!(sql, "Cleanup after a failed transfer got no answer.");
                        conn = None;
                    }
                }
            }
        }
        if let Some(database) = &self.database {
            if conn.is_none() {
                conn = connect_with(spec, &[]).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let _ = timeout(step, async {
                    // Only when nothing else has been put there meanwhile.
                    let tables: Result<Option<u64>, _> = c
                        .exec_first(
                            "SELECT COUNT(*) FROM information_schema.TABLES \
                             WHERE TABLE_SCHEMA = ?",
                            (database,),
                        )
                        .await;
                    if let Ok(Some(0)) = tables {
                        if let Err(e) = c
                            .query_drop(format!("DROP DATABASE IF EXISTS {}", quote(database)))
                            .await
                        {
                            tracing::warn!(error = %e, database, "Dropping a created database failed.");
                        }
                    }
                })
                .await;
            }
        }
        if let Some(c) = conn {
            let _ = timeout(CANCEL_GRACE, c.disconnect()).await;
        }
    }
}

/// A target column: its name and, for checks and encodings, its type.
#[derive(Debug, Clone)]
struct TargetColumn {
    name: String,
    data_type: String,
    precision: Option<u64>,
    scale: Option<u64>,
}

/// The target table's columns as the catalog has them now (none: it does not exist).
async fn target_columns(
    conn: &mut Conn,
    database: &str,
    table: &str,
    folded: bool,
    io: Duration,
) -> Result<Vec<TargetColumn>, EngineError> {
    type CatalogRow = (String, String, String, String, Option<u64>, Option<u64>);
    let rows: Vec<CatalogRow> = conn
        .exec(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION,
                    NUMERIC_SCALE
             FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
             ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        .on_target(io)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|(s, t, ..)| same_name(folded, s, database) && same_name(folded, t, table))
        .map(|(_, _, name, data_type, precision, scale)| TargetColumn {
            name,
            data_type: data_type.to_lowercase(),
            precision,
            scale,
        })
        .collect())
}

/// Names compare as the server does (`lower_case_table_names`).
fn same_name(folded: bool, a: &str, b: &str) -> bool {
    if folded {
        a.to_lowercase() == b.to_lowercase()
    } else {
        a == b
    }
}

/// Serialise the transfers that create or replace one table: a named lock of the session
/// (the server releases it when the session ends, so a crash cannot leave it held).
///
/// # Cancel safety
/// On `cancel` the wait is stopped on the server (`KILL QUERY`) and the result is `Cancelled`.
async fn lock_table(
    conn: &mut Conn,
    spec: &ConnectSpec,
    qualified_name: &str,
    cancel: &CancellationToken,
) -> Result<(), EngineError> {
    use sha2::{Digest, Sha256};
    // Lock names are at most 64 characters.
    let digest = hex::encode(Sha256::digest(qualified_name.as_bytes()));
    let name = format!("sluice:{}", &digest[..40]);
    let id = conn.id();
    let got: Option<Option<i64>> = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            let _ = timeout(CANCEL_GRACE, super::kill_query(spec, id)).await;
            return Err(EngineError::Cancelled);
        }
        got = conn.exec_first("SELECT GET_LOCK(?, ?)", (&name, TABLE_LOCK_WAIT_SECS)) => {
            got.map_err(|e| target_error(&e))?
        }
    };
    match got.flatten() {
        Some(1) => Ok(()),
        _ => Err(EngineError::Target {
            message: format!(
                "another transfer into {qualified_name} held it for more than \
                 {TABLE_LOCK_WAIT_SECS} s"
            ),
            transient: true,
        }),
    }
}

/// After a statement whose answer was lost: end the session that sent it (`KILL`) and wait
/// until the server has let it go, so that what the statement did is final. Returns a fresh
/// connection to look with; `CommitUnknown` when none could be had within the I/O timeout
/// (at most a minute).
async fn settle(spec: &ConnectSpec, id: u32) -> Result<Conn, EngineError> {
    let started = Instant::now();
    let deadline = started + spec.timeouts.io.min(Duration::from_secs(60));
    loop {
        let attempt = async {
            let mut c = connect_with(spec, &[]).await.map_err(|e| e.to_string())?;
            loop {
                let present: Option<u64> = c
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                        (id,),
                    )
                    .await
                    .map_err(|e| describe(&e).0)?;
                if present == Some(0) {
                    return Ok::<_, String>(c);
                }
                // An unfinished transaction rolls back with its session.
                let _ = c.query_drop(format!("KILL {id}")).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let why = match timeout(spec.timeouts.connect * 2, attempt).await {
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(e)) => e,
            Err(_) => "no answer".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(EngineError::CommitUnknown(format!(
                "the target did not answer the statement that commits the transfer, and its \
                 outcome could not be learned ({why}); check the target table before running \
                 the transfer again"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the append whose COMMIT went unanswered committed: its bookkeeping row is there.
/// The row is removed again either way.
async fn append_committed(
    spec: &ConnectSpec,
    id: u32,
    commits: &str,
    token: &str,
) -> Result<bool, EngineError> {
    let mut c = settle(spec, id).await?;
    let io = spec.timeouts.io;
    let found: Option<u64> = c
        .exec_first(
            format!("SELECT COUNT(*) FROM {commits} WHERE token = ?"),
            (token,),
        )
        .on_target(io)
        .await?;
    let _ = c
        .exec_drop(format!("DELETE FROM {commits} WHERE token = ?"), (token,))
        .on_target(io)
        .await;
    let _ = c.disconnect().await;
    Ok(found.unwrap_or(0) > 0)
}

/// Whether the RENAME that went unanswered happened: the staging table is gone.
async fn renamed(
    spec: &ConnectSpec,
    id: u32,
    database: &str,
    staging: &str,
) -> Result<bool, EngineError> {
    let mut c = settle(spec, id).await?;
    let left: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (database, staging),
        )
        .on_target(spec.timeouts.io)
        .await?;
    let _ = c.disconnect().await;
    Ok(left == Some(0))
}

/// The failure of a statement that commits: the server's own refusal (it did not happen), or
/// no answer (a broken or stalled link: it may have happened).
enum Unanswered {
    Refused(EngineError),
    Lost(String),
}

async fn committing(conn: &mut Conn, sql: String, io: Duration) -> Result<(), Unanswered> {
    match timeout(io, conn.query_drop(sql)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ mysql_async::Error::Server(_))) => Err(Unanswered::Refused(target_error(&e))),
        Ok(Err(e)) => Err(Unanswered::Lost(describe(&e).0)),
        Err(_) => Err(Unanswered::Lost(format!("no answer within {io:?}"))),
    }
}

async fn write(
    conn: &mut Conn,
    spec: &ConnectSpec,
    ctx: SinkContext,
    database: &str,
    undo: &mut Undo,
) -> Result<u64, EngineError> {
    let SinkContext {
        rx,
        cancel,
        progress,
        columns,
        target,
        copy_offer: _,
    } = ctx;
    let io = spec.timeouts.io;
    let target = target.table();
    let table = target.table.as_str();
    let folded = conn
        .query_first::<u64, _>("SELECT @@lower_case_table_names")
        .on_target(io)
        .await?
        .unwrap_or(0)
        != 0;

    let databases: Vec<String> = conn
        .exec(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (database,),
        )
        .on_target(io)
        .await?;
    if !databases.iter().any(|d| same_name(folded, d, database)) {
        let create = format!("CREATE DATABASE {} CHARACTER SET utf8mb4", quote(database));
        match timeout(io, conn.query_drop(create)).await {
            Ok(Ok(())) => undo.database = Some(database.to_string()),
            // Created by someone else meanwhile.
            Ok(Err(mysql_async::Error::Server(s))) if s.code == 1007 => {}
            Ok(Err(e)) => return Err(target_error(&e)),
            Err(_) => {
                return Err(EngineError::Stalled {
                    side: "target",
                    waited: io,
                })
            }
        }
    }

    let mut existing = target_columns(conn, database, table, folded, io).await?;
    // Creating and replacing a table are serialised per table, and the table looked at again
    // under the lock: of several transfers into one new table, one creates it and the others
    // append to it.
    if existing.is_empty() || target.overwrite {
        let key = format!("{database}.{table}");
        let key = if folded { key.to_lowercase() } else { key };
        lock_table(conn, spec, &key, &cancel).await?;
        existing = target_columns(conn, database, table, folded, io).await?;
    }
    let exists = !existing.is_empty();
    let append = exists && !target.overwrite;

    // Where the rows go, under which column names, with which target types.
    let (dest, targets, staging) = if append {
        let mut targets = Vec::with_capacity(columns.len());
        for c in &columns {
            let found = existing
                .iter()
                .find(|t| t.name == c.name)
                .or_else(|| {
                    // MySQL column names are case-insensitive.
                    let lower = c.name.to_lowercase();
                    existing.iter().find(|t| t.name.to_lowercase() == lower)
                })
                .ok_or_else(|| {
                    EngineError::Schema(format!(
                        "the target table {}.{} has no column {:?} (its columns: {})",
                        database,
                        table,
                        c.name,
                        existing
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            targets.push(found.clone());
        }
        (qualified(Some(database), table), targets, None)
    } else {
        let staging = derived_name(table, "");
        let staging_sql = qualified(Some(database), &staging);
        let create = format!(
            "CREATE TABLE {staging_sql} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            column_definitions(&columns).join(", ")
        );
        undo.staging = Some(staging_sql.clone());
        conn.query_drop(create).on_target(io).await?;
        let targets = columns
            .iter()
            .map(|c| {
                let ddl = dialect::column_type(c);
                let (precision, scale) = match (&c.ty, dialect::decimal_shape(&ddl)) {
                    (_, Some((p, s))) => (Some(p), Some(s)),
                    (LogicalType::BigDecimal { precision, scale }, None) => {
                        let (p, s) = dialect::big_decimal_shape(*precision, *scale);
                        (Some(u64::from(p)), Some(u64::from(s)))
                    }
                    _ => (None, None),
                };
                TargetColumn {
                    name: c.name.clone(),
                    data_type: ddl
                        .split(['(', ' '])
                        .next()
                        .unwrap_or_default()
                        .to_lowercase(),
                    precision,
                    scale,
                }
            })
            .collect();
        (staging_sql, targets, Some(staging))
    };
    let fields: Arc<Vec<Field>> = Arc::new(
        columns
            .iter()
            .zip(&targets)
            .map(|(c, t)| Field::new(c, t))
            .collect(),
    );

    // An append commits with COMMIT, and marks it: see COMMITS_TABLE.
    let commits = qualified(Some(database), COMMITS_TABLE);
    let token = append.then(|| uuid::Uuid::new_v4().simple().to_string());
    if append {
        conn.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {commits} (token CHAR(32) NOT NULL PRIMARY KEY, \
             target_table VARCHAR(64) NOT NULL, committed_at DATETIME(6) NOT NULL) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 \
             COMMENT='Sluice: one row per append being committed; empty otherwise'"
        ))
        .on_target(io)
        .await?;
    }

    conn.query_drop("START TRANSACTION").on_target(io).await?;
    undo.in_transaction = true;

    let load_sql = load_statement(&dest, &targets, &fields);
    let writing = Writing {
        cancel: cancel.clone(),
        progress,
        fields,
        limit: io,
    };
    let rows = match load_data(conn, load_sql, rx, &writing).await? {
        Loaded::Rows(rows) => rows,
        Loaded::Refused(rx) => {
            tracing::debug!("The server refuses LOAD DATA LOCAL; writing with INSERTs.");
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            insert_rows(conn, rx, &writing, &dest, &names).await?
        }
    };
    if let Some(token) = &token {
        conn.exec_drop(
            format!(
                "INSERT INTO {commits} (token, target_table, committed_at) \
                 VALUES (?, ?, UTC_TIMESTAMP(6))"
            ),
            (token, table),
        )
        .on_target(io)
        .await?;
    }

    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    // From here on a cancel no longer stops the transfer: once the statement that commits it
    // is sent, its outcome is learned instead.
    let id = conn.id();
    match committing(conn, "COMMIT".into(), io).await {
        Ok(()) => undo.in_transaction = false,
        Err(Unanswered::Refused(e)) => return Err(e),
        Err(Unanswered::Lost(why)) => {
            undo.in_transaction = false;
            let Some(token) = &token else {
                // A staging table's load: not visible yet, dropped with the undo; retrying is
                // safe.
                return Err(EngineError::Target {
                    message: format!("COMMIT got no answer ({why})"),
                    transient: true,
                });
            };
            tracing::warn!(error = %why, "COMMIT got no answer; asking the server whether it committed.");
            return if append_committed(spec, id, &commits, token).await? {
                tracing::info!("The append committed; its answer was lost.");
                Ok(rows)
            } else {
                Err(EngineError::Target {
                    message: format!("the transaction did not commit ({why})"),
                    transient: true,
                })
            };
        }
    }
    if let Some(token) = &token {
        if let Err(e) = conn
            .exec_drop(format!("DELETE FROM {commits} WHERE token = ?"), (token,))
            .on_target(io)
            .await
        {
            tracing::warn!(error = %e, "Could not remove the commit's bookkeeping row.");
        }
    }

    if let Some(staging_sql) = undo.staging.clone() {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        // The RENAME is the commit point of a new or replaced table.
        let target_sql = qualified(Some(database), table);
        let old_sql = exists.then(|| qualified(Some(database), &derived_name(table, "old_")));
        let rename = match &old_sql {
            Some(old_sql) => {
                format!("RENAME TABLE {target_sql} TO {old_sql}, {staging_sql} TO {target_sql}")
            }
            None => format!("RENAME TABLE {staging_sql} TO {target_sql}"),
        };
        let mut conn_lost = false;
        match committing(conn, rename, io).await {
            Ok(()) => {}
            Err(Unanswered::Refused(e)) => return Err(e),
            Err(Unanswered::Lost(why)) => {
                tracing::warn!(error = %why, "RENAME got no answer; asking the server whether it happened.");
                let staging = staging.as_deref().unwrap_or_default();
                if !renamed(spec, id, database, staging).await? {
                    return Err(EngineError::Target {
                        message: format!("the staging table was not renamed into place ({why})"),
                        transient: true,
                    });
                }
                tracing::info!("The RENAME happened; its answer was lost.");
                conn_lost = true;
            }
        }
        undo.staging = None;
        undo.database = None;
        if let Some(old_sql) = old_sql {
            let drop_old = format!("DROP TABLE {old_sql}");
            let dropped = if conn_lost {
                match connect_with(spec, &[]).await {
                    Ok(mut c) => {
                        let r = c.query_drop(drop_old).on_target(io).await;
                        let _ = c.disconnect().await;
                        r
                    }
                    Err(e) => Err(e.into()),
                }
            } else {
                conn.query_drop(drop_old).on_target(io).await
            };
            if let Err(e) = dropped {
                tracing::warn!(error = %e, table = old_sql, "Dropping the replaced table failed.");
            }
        }
    }
    undo.database = None;
    Ok(rows)
}

/// `<table>__sluice_<tag><random>`, cut to MySQL's 64 characters.
fn derived_name(table: &str, tag: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let suffix = format!("__sluice_{tag}{}", &random[..8]);
    let keep = dialect::MAX_IDENT_CHARS - suffix.chars().count();
    let mut name: String = table.chars().take(keep).collect();
    name.push_str(&suffix);
    name
}

fn load_statement(dest: &str, targets: &[TargetColumn], fields: &[Field]) -> String {
    let mut list = Vec::with_capacity(fields.len());
    let mut sets = Vec::new();
    for (i, (t, f)) in targets.iter().zip(fields).enumerate() {
        if f.hex {
            list.push(format!("@v{i}"));
            sets.push(format!("{} = UNHEX(@v{i})", quote(&t.name)));
        } else {
            list.push(quote(&t.name));
        }
    }
    let mut sql = format!(
        "LOAD DATA LOCAL INFILE 'sluice.tsv' INTO TABLE {dest} CHARACTER SET utf8mb4 \
         FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
        list.join(", ")
    );
    if !sets.is_empty() {
        sql.push_str(" SET ");
        sql.push_str(&sets.join(", "));
    }
    sql
}

/// How one source column is written.
#[derive(Debug)]
struct Field {
    /// The source column's name (for errors).
    name: String,
    /// Binary data: hex text in the LOAD input, raw bytes as an INSERT parameter.
    hex: bool,
    /// BigDecimal text into decimal(p,s): checked to fit.
    decimal: Option<(u32, u32)>,
}

impl Field {
    fn new(column: &Column, target: &TargetColumn) -> Self {
        let binary_target = matches!(
            target.data_type.as_str(),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
        );
        let hex = match column.ty.arrow_type() {
            DataType::Binary => true,
            DataType::FixedSizeBinary(_) => binary_target,
            // LOAD DATA would read "1" as the byte 0x31.
            DataType::Boolean => target.data_type == "bit",
            _ => false,
        };
        let decimal = match (&column.ty, target.data_type.as_str()) {
            (LogicalType::BigDecimal { .. }, "decimal") => match (target.precision, target.scale) {
                (Some(p), Some(s)) => Some((p as u32, s as u32)),
                _ => None,
            },
            _ => None,
        };
        Field {
            name: column.name.clone(),
            hex,
            decimal,
        }
    }
}

/// A batch column, downcast once per batch.
enum View<'a> {
    Bool(&'a BooleanArray),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Decimal(&'a Decimal128Array, u32),
    Text(&'a StringArray),
    Binary(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    Uuid(&'a FixedSizeBinaryArray),
}

struct BatchView<'a> {
    columns: Vec<(View<'a>, Option<&'a NullBuffer>)>,
}

impl<'a> BatchView<'a> {
    fn new(batch: &'a RecordBatch, fields: &[Field]) -> Result<Self, EngineError> {
        if batch.num_columns() != fields.len() {
            return Err(EngineError::Internal(format!(
                "a batch has {} columns, the transfer {}",
                batch.num_columns(),
                fields.len()
            )));
        }
        let mut columns = Vec::with_capacity(fields.len());
        for array in batch.columns() {
            let view = match array.data_type() {
                DataType::Boolean => View::Bool(array.as_boolean()),
                DataType::Int16 => View::I16(array.as_primitive::<Int16Type>()),
                DataType::Int32 => View::I32(array.as_primitive::<Int32Type>()),
                DataType::Int64 => View::I64(array.as_primitive::<Int64Type>()),
                DataType::UInt64 => View::U64(array.as_primitive::<UInt64Type>()),
                DataType::Float32 => View::F32(array.as_primitive::<Float32Type>()),
                DataType::Float64 => View::F64(array.as_primitive::<Float64Type>()),
                DataType::Decimal128(_, scale) => View::Decimal(
                    array.as_primitive::<Decimal128Type>(),
                    (*scale).max(0) as u32,
                ),
                DataType::Utf8 => View::Text(array.as_string::<i32>()),
                DataType::Binary => View::Binary(array.as_binary::<i32>()),
                DataType::Date32 => View::Date(array.as_primitive::<Date32Type>()),
                DataType::Time64(TimeUnit::Microsecond) => {
                    View::Time(array.as_primitive::<Time64MicrosecondType>())
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    View::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
                }
                DataType::FixedSizeBinary(16) => View::Uuid(array.as_fixed_size_binary()),
                other => {
                    return Err(EngineError::Internal(format!(
                        "the MySQL sink has no encoding for Arrow type {other}"
                    )))
                }
            };
            columns.push((view, array.nulls()));
        }
        Ok(BatchView { columns })
    }
}

fn float_check(v: f64) -> Result<(), String> {
    if v.is_nan() {
        Err("NaN cannot be stored: MySQL/MariaDB FLOAT and DOUBLE hold no NaN".into())
    } else if v.is_infinite() {
        Err(format!(
            "{v} cannot be stored: MySQL/MariaDB FLOAT and DOUBLE hold no infinity"
        ))
    } else {
        Ok(())
    }
}

/// -0.0 as 0.0: IEEE 754 holds them equal, and 0 is what MySQL/MariaDB keep of it.
fn unsigned_zero(v: f64) -> f64 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

fn date_range_error(days: i64) -> String {
    let (y, m, d) = civil_from_days(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
    format!("{y}-{m:02}-{d:02} is outside MySQL's date range 0001-01-01..9999-12-31")
}

fn time_check(micros: i64) -> Result<(), String> {
    if (0..=MICROS_PER_DAY).contains(&micros) {
        Ok(())
    } else {
        Err(format!("time of {micros} µs is outside 00:00:00..24:00:00"))
    }
}

/// Append one row as a LOAD DATA line. `Err((column index, message))` for a value the target
/// cannot hold.
fn encode_row(
    buf: &mut Vec<u8>,
    view: &BatchView<'_>,
    fields: &[Field],
    row: usize,
) -> Result<(), (usize, String)> {
    for (i, ((column, nulls), field)) in view.columns.iter().zip(fields).enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        if nulls.is_some_and(|n| n.is_null(row)) {
            buf.extend_from_slice(b"\\N");
            continue;
        }
        encode_value(buf, column, field, row).map_err(|m| (i, m))?;
    }
    buf.push(b'\n');
    Ok(())
}

fn encode_value(
    buf: &mut Vec<u8>,
    column: &View<'_>,
    field: &Field,
    row: usize,
) -> Result<(), String> {
    match column {
        View::Bool(a) if field.hex => {
            buf.extend_from_slice(if a.value(row) { b"01" } else { b"00" })
        }
        View::Bool(a) => buf.push(if a.value(row) { b'1' } else { b'0' }),
        View::I16(a) => write_i64(buf, i64::from(a.value(row))),
        View::I32(a) => write_i64(buf, i64::from(a.value(row))),
        View::I64(a) => write_i64(buf, a.value(row)),
        View::U64(a) => write_u64(buf, a.value(row)),
        View::F32(a) => {
            // Printed as the (exact) double so the server's double → float step is exact.
            let v = unsigned_zero(f64::from(a.value(row)));
            float_check(v)?;
            write_f64(buf, v);
        }
        View::F64(a) => {
            let v = unsigned_zero(a.value(row));
            float_check(v)?;
            write_f64(buf, v);
        }
        View::Decimal(a, scale) => write_decimal(buf, a.value(row), *scale),
        View::Text(a) => {
            let text = a.value(row);
            if let Some((p, s)) = field.decimal {
                check_decimal_text(text, p, s)?;
            }
            escape(buf, text.as_bytes());
        }
        View::Binary(a) => write_hex(buf, a.value(row)),
        View::Date(a) => {
            let days = a.value(row);
            if !write_date(buf, days) {
                return Err(date_range_error(i64::from(days)));
            }
        }
        View::Time(a) => {
            let micros = a.value(row);
            time_check(micros)?;
            write_time(buf, micros);
        }
        View::Timestamp(a) => {
            let micros = a.value(row);
            if !write_timestamp(buf, micros) {
                return Err(date_range_error(micros.div_euclid(MICROS_PER_DAY)));
            }
        }
        View::Uuid(a) => {
            if field.hex {
                write_hex(buf, a.value(row));
            } else {
                write_uuid(buf, a.value(row));
            }
        }
    }
    Ok(())
}

/// LOAD DATA escaping (ESCAPED BY '\\'): backslash, tab, newline and NUL.
fn escape(buf: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escaped = match b {
            b'\\' => b'\\',
            b'\t' => b't',
            b'\n' => b'n',
            0 => b'0',
            _ => continue,
        };
        buf.extend_from_slice(&text[start..i]);
        buf.push(b'\\');
        buf.push(escaped);
        start = i + 1;
    }
    buf.extend_from_slice(&text[start..]);
}

/// One value as an INSERT parameter.
fn param(column: &View<'_>, field: &Field, row: usize) -> Result<Value, String> {
    Ok(match column {
        View::Bool(a) => Value::Int(i64::from(a.value(row))),
        View::I16(a) => Value::Int(i64::from(a.value(row))),
        View::I32(a) => Value::Int(i64::from(a.value(row))),
        View::I64(a) => Value::Int(a.value(row)),
        View::U64(a) => Value::UInt(a.value(row)),
        View::F32(a) => {
            let v = a.value(row);
            float_check(f64::from(v))?;
            Value::Float(if v == 0.0 { 0.0 } else { v })
        }
        View::F64(a) => {
            let v = unsigned_zero(a.value(row));
            float_check(v)?;
            Value::Double(v)
        }
        View::Decimal(a, scale) => {
            let mut text = Vec::with_capacity(24);
            write_decimal(&mut text, a.value(row), *scale);
            Value::Bytes(text)
        }
        View::Text(a) => {
            let text = a.value(row);
            if let Some((p, s)) = field.decimal {
                check_decimal_text(text, p, s)?;
            }
            Value::Bytes(text.as_bytes().to_vec())
        }
        View::Binary(a) => Value::Bytes(a.value(row).to_vec()),
        View::Date(a) => {
            let days = a.value(row);
            let (y, m, d) = civil_from_days(days);
            if !(1..=9999).contains(&y) {
                return Err(date_range_error(i64::from(days)));
            }
            Value::Date(y as u16, m as u8, d as u8, 0, 0, 0, 0)
        }
        View::Time(a) => {
            let micros = a.value(row);
            time_check(micros)?;
            let secs = micros / MICROS_PER_SECOND;
            Value::Time(
                false,
                0,
                (secs / 3600) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (micros % MICROS_PER_SECOND) as u32,
            )
        }
        View::Timestamp(a) => {
            let micros = a.value(row);
            let days = micros.div_euclid(MICROS_PER_DAY);
            let (y, m, d) = civil_from_days(days.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
            if !(1..=9999).contains(&y) {
                return Err(date_range_error(days));
            }
            let of_day = micros.rem_euclid(MICROS_PER_DAY);
            let secs = of_day / MICROS_PER_SECOND;
            Value::Date(
                y as u16,
                m as u8,
                d as u8,
                (secs / 3600) as u8,
                (secs / 60 % 60) as u8,
                (secs % 60) as u8,
                (of_day % MICROS_PER_SECOND) as u32,
            )
        }
        View::Uuid(a) => {
            if field.hex {
                Value::Bytes(a.value(row).to_vec())
            } else {
                let mut text = Vec::with_capacity(36);
                write_uuid(&mut text, a.value(row));
                Value::Bytes(text)
            }
        }
    })
}

enum Loaded {
    Rows(u64),
    /// The server refused LOAD DATA LOCAL before reading anything; the channel comes back.
    Refused(mpsc::Receiver<Message>),
}

enum FeedEnd {
    Rows(u64),
    /// The server never asked for the data.
    NotStarted,
}

enum FeedError {
    Engine(EngineError),
    /// The driver stopped reading (the LOAD ended early).
    ServerGone,
}

impl From<EngineError> for FeedError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

fn refused(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(s) => {
            let m = s.message.to_lowercase();
            matches!(s.code, 1148 | 3948 | 3950 | 2068)
                || (m.contains("local") && (m.contains("not allowed") || m.contains("disabled")))
        }
        _ => false,
    }
}

/// What writing the rows takes, for LOAD DATA and the INSERT fallback alike.
#[derive(Clone)]
struct Writing {
    cancel: CancellationToken,
    progress: Arc<Progress>,
    fields: Arc<Vec<Field>>,
    /// The I/O timeout: the server must take a piece, or answer, within it.
    limit: Duration,
}

/// Run LOAD DATA LOCAL with the batches streamed in as its file, encoded on another task so
/// encoding and the server's loading overlap; memory stays at a few chunks.
async fn load_data(
    conn: &mut Conn,
    sql: String,
    rx: mpsc::Receiver<Message>,
    writing: &Writing,
) -> Result<Loaded, EngineError> {
    let (fields, limit) = (&writing.fields, writing.limit);
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
    let (start_tx, start_rx) = oneshot::channel::<()>();
    conn.set_infile_handler(async move {
        let _ = start_tx.send(());
        let stream = futures_util::stream::poll_fn(move |cx| chunk_rx.poll_recv(cx));
        Ok(Box::pin(stream) as InfileData)
    });
    let abort = CancellationToken::new();
    let mut feeder = tokio::spawn(feed(rx, writing.clone(), chunk_tx, start_rx, abort.clone()));
    // The LOAD runs as long as rows come; once the encoder is done, the server owes its
    // answer within the I/O timeout (an encoder that could not hand on a piece for that long
    // has already found the link stalled).
    let mut fed = None;
    let loaded = {
        let load = conn.query_drop(sql);
        tokio::pin!(load);
        loop {
            tokio::select! {
                loaded = &mut load => break Some(loaded),
                done = &mut feeder, if fed.is_none() => {
                    let stalled = matches!(
                        &done,
                        Ok((Err(FeedError::Engine(EngineError::Stalled { .. })), _))
                    );
                    fed = Some(done);
                    if stalled {
                        break None;
                    }
                }
                _ = tokio::time::sleep(limit), if fed.is_some() => break None,
            }
        }
    };
    // Releases a feeder still waiting for the server's request (the LOAD failed first).
    abort.cancel();
    let done = match fed {
        Some(done) => done,
        None => feeder.await,
    };
    let (fed, rx) = done.map_err(|e| EngineError::Internal(format!("LOAD DATA encoder: {e}")))?;
    let Some(loaded) = loaded else {
        return Err(match fed {
            Err(FeedError::Engine(e)) => e,
            _ => EngineError::Stalled {
                side: "target",
                waited: limit,
            },
        });
    };
    match (loaded, fed) {
        (Err(e), Ok(FeedEnd::NotStarted)) if refused(&e) => Ok(Loaded::Refused(rx)),
        // The encoder's own cause (a value, a cancel) comes first.
        (_, Err(FeedError::Engine(e))) => Err(e),
        (Err(e), _) => Err(target_error(&e)),
        (Ok(()), Err(FeedError::ServerGone)) | (Ok(()), Ok(FeedEnd::NotStarted)) => Err(
            EngineError::Internal("the server ended LOAD DATA before reading all rows".into()),
        ),
        (Ok(()), Ok(FeedEnd::Rows(rows))) => {
            if conn.get_warnings() > 0 {
                return Err(warnings_error(conn, fields, 0).await);
            }
            let stored = conn.affected_rows();
            if stored != rows {
                return Err(EngineError::Target {
                    message: format!("LOAD DATA stored {stored} of {rows} rows"),
                    transient: false,
                });
            }
            Ok(Loaded::Rows(rows))
        }
    }
}

/// The encoder: batches in, LOAD DATA lines out. Gives the channel back with its result.
async fn feed(
    mut rx: mpsc::Receiver<Message>,
    writing: Writing,
    chunk_tx: mpsc::Sender<io::Result<Bytes>>,
    start: oneshot::Receiver<()>,
    abort: CancellationToken,
) -> (Result<FeedEnd, FeedError>, mpsc::Receiver<Message>) {
    tokio::select! {
        biased;
        _ = abort.cancelled() => return (Ok(FeedEnd::NotStarted), rx),
        started = start => {
            if started.is_err() {
                return (Ok(FeedEnd::NotStarted), rx);
            }
        }
    }
    let result = encode_all(&mut rx, &writing, &chunk_tx).await;
    // Dropping the sender ends the server's input; on an error the partial load is rolled back.
    drop(chunk_tx);
    (result.map(FeedEnd::Rows), rx)
}

async fn encode_all(
    rx: &mut mpsc::Receiver<Message>,
    writing: &Writing,
    chunk_tx: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<u64, FeedError> {
    let Writing {
        cancel,
        progress,
        fields,
        limit,
    } = writing;
    let fields: &[Field] = fields;
    let limit = *limit;
    let mut rows: u64 = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    loop {
        let message = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(EngineError::Cancelled.into()),
            m = rx.recv() => m,
        };
        match message {
            None => return Err(EngineError::Cancelled.into()),
            Some(Message::Copy(_)) => return Err(copy_not_offered().into()),
            Some(Message::End) => {
                if !buf.is_empty() {
                    send_chunk(chunk_tx, cancel, std::mem::take(&mut buf), limit).await?;
                }
                return Ok(rows);
            }
            Some(Message::Batch(batch)) => {
                let view = BatchView::new(&batch, fields)?;
                for row in 0..batch.num_rows() {
                    encode_row(&mut buf, &view, fields, row).map_err(|(i, message)| {
                        EngineError::Value {
                            column: fields[i].name.clone(),
                            row: rows + row as u64 + 1,
                            message,
                        }
                    })?;
                    if buf.len() >= CHUNK_BYTES {
                        let full = std::mem::replace(
                            &mut buf,
                            Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
                        );
                        send_chunk(chunk_tx, cancel, full, limit).await?;
                    }
                }
                rows += batch.num_rows() as u64;
                progress.add_written(batch.num_rows() as u64);
            }
        }
    }
}

/// Hand encoded lines to the driver, in pieces small enough for one protocol packet each.
/// A piece the driver does not take within `limit` means the server has stopped reading: the
/// link is taken for dead.
async fn send_chunk(
    chunk_tx: &mpsc::Sender<io::Result<Bytes>>,
    cancel: &CancellationToken,
    data: Vec<u8>,
    limit: Duration,
) -> Result<(), FeedError> {
    let mut data = Bytes::from(data);
    while !data.is_empty() {
        let piece = data.split_to(data.len().min(CHUNK_BYTES));
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(EngineError::Cancelled.into()),
            sent = tokio::time::timeout(limit, chunk_tx.send(Ok(piece))) => match sent {
                Ok(sent) => sent.map_err(|_| FeedError::ServerGone)?,
                Err(_) => {
                    return Err(EngineError::Stalled {
                        side: "target",
                        waited: limit,
                    }
                    .into())
                }
            },
        }
    }
    Ok(())
}

/// The fallback: multi-row prepared INSERTs, in the same transaction.
async fn insert_rows(
    conn: &mut Conn,
    mut rx: mpsc::Receiver<Message>,
    writing: &Writing,
    dest: &str,
    names: &[&str],
) -> Result<u64, EngineError> {
    let Writing {
        cancel,
        progress,
        fields,
        limit,
    } = writing;
    let fields: &[Field] = fields;
    let limit = *limit;
    let width = fields.len();
    let mut inserter = Inserter {
        per_statement: (INSERT_PARAMS / width).clamp(1, INSERT_ROWS),
        head: format!(
            "INSERT INTO {dest} ({}) VALUES ",
            names
                .iter()
                .map(|n| quote(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        tuple: format!("({})", vec!["?"; width].join(",")),
        statements: HashMap::new(),
        params: Vec::new(),
        pending: 0,
        pending_bytes: 0,
        written: 0,
    };
    loop {
        let message = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            m = rx.recv() => m,
        };
        match message {
            None => return Err(EngineError::Cancelled),
            Some(Message::Copy(_)) => return Err(copy_not_offered()),
            Some(Message::End) => {
                inserter.flush(conn, fields, progress, limit).await?;
                return Ok(inserter.written);
            }
            Some(Message::Batch(batch)) => {
                let view = BatchView::new(&batch, fields)?;
                for row in 0..batch.num_rows() {
                    for (i, ((column, nulls), field)) in view.columns.iter().zip(fields).enumerate()
                    {
                        if nulls.is_some_and(|n| n.is_null(row)) {
                            inserter.params.push(Value::NULL);
                            continue;
                        }
                        let value =
                            param(column, field, row).map_err(|message| EngineError::Value {
                                column: fields[i].name.clone(),
                                row: inserter.written + inserter.pending as u64 + 1,
                                message,
                            })?;
                        if let Value::Bytes(b) = &value {
                            inserter.pending_bytes += b.len();
                        }
                        inserter.params.push(value);
                    }
                    inserter.pending += 1;
                    if inserter.pending == inserter.per_statement
                        || inserter.pending_bytes >= INSERT_BYTES
                    {
                        inserter.flush(conn, fields, progress, limit).await?;
                    }
                }
            }
        }
    }
}

struct Inserter {
    per_statement: usize,
    head: String,
    tuple: String,
    /// INSERT text by row count (the driver caches the prepared statements).
    statements: HashMap<usize, String>,
    params: Vec<Value>,
    pending: usize,
    pending_bytes: usize,
    written: u64,
}

impl Inserter {
    async fn flush(
        &mut self,
        conn: &mut Conn,
        fields: &[Field],
        progress: &Progress,
        limit: Duration,
    ) -> Result<(), EngineError> {
        if self.pending == 0 {
            return Ok(());
        }
        let (head, tuple, pending) = (&self.head, &self.tuple, self.pending);
        let sql = self.statements.entry(pending).or_insert_with(|| {
            let mut sql = head.clone();
            sql.push_str(&vec![tuple.as_str(); pending].join(","));
            sql
        });
        let values = std::mem::take(&mut self.params);
        let done = timeout(
            limit,
            conn.exec_drop(sql.as_str(), Params::Positional(values)),
        )
        .await
        .map_err(|_| EngineError::Stalled {
            side: "target",
            waited: limit,
        })?;
        if let Err(e) = done {
            if let mysql_async::Error::Server(s) = &e {
                if let Some(v) = value_error(&s.message, fields, self.written) {
                    return Err(v);
                }
            }
            return Err(target_error(&e));
        }
        if conn.get_warnings() > 0 {
            return Err(warnings_error(conn, fields, self.written).await);
        }
        self.written += pending as u64;
        progress.add_written(pending as u64);
        self.pending = 0;
        self.pending_bytes = 0;
        Ok(())
    }
}

/// The first warning of the last statement as the transfer's error.
async fn warnings_error(conn: &mut Conn, fields: &[Field], row_offset: u64) -> EngineError {
    let warnings: Vec<(String, u32, String)> = match conn.query("SHOW WARNINGS LIMIT 20").await {
        Ok(w) => w,
        Err(e) => return target_error(&e),
    };
    let first = warnings
        .iter()
        .find(|(level, ..)| level != "Note")
        .or(warnings.first());
    let Some((level, code, message)) = first else {
        return EngineError::Target {
            message: "the server reported warnings but did not list them".into(),
            transient: false,
        };
    };
    if let Some(e) = value_error(&format!("{level} {code}: {message}"), fields, row_offset) {
        return e;
    }
    EngineError::Target {
        message: format!("{level} {code}: {message}"),
        transient: false,
    }
}

/// A server message naming a column and a row ("... for column `db`.`t`.`c` at row 7",
/// "... column 'c' at row 7") as a Value error on the transfer's row.
fn value_error(message: &str, fields: &[Field], row_offset: u64) -> Option<EngineError> {
    let at = message.rfind(" at row ")?;
    let row: u64 = message[at + 8..]
        .trim()
        .trim_end_matches('.')
        .parse()
        .ok()?;
    let before = &message[..at];
    let column_at = before.rfind("column ")?;
    let named = before[column_at + 7..].trim();
    let name = if let Some(quoted) = named.strip_suffix('\'') {
        quoted.strip_prefix('\'')?.to_string()
    } else if let Some(quoted) = named.strip_suffix('`') {
        // The last backquoted part of `db`.`table`.`column`.
        let start = quoted.rfind("`.`").map(|i| i + 3).unwrap_or(1);
        quoted.get(start..)?.replace("``", "`")
    } else {
        return None;
    };
    let lower = name.to_lowercase();
    let column = fields
        .iter()
        .find(|f| f.name == name)
        .or_else(|| fields.iter().find(|f| f.name.to_lowercase() == lower))
        .map(|f| f.name.clone())
        .unwrap_or(name);
    Some(EngineError::Value {
        column,
        row: row_offset + row,
        message: message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_load_data() {
        let mut buf = Vec::new();
        escape(&mut buf, b"a\\b\tc\nd\0e\\N");
        assert_eq!(buf, b"a\\\\b\\tc\\nd\\0e\\\\N");
    }

    #[test]
    fn server_messages_with_a_column_and_row_become_value_errors() {
        let fields = vec![Field {
            name: "Amount".into(),
            hex: false,
            decimal: None,
        }];
        let e = value_error(
            "Warning 1264: Out of range value for column 'amount' at row 7",
            &fields,
            100,
        )
        .unwrap();
        match e {
            EngineError::Value { column, row, .. } => {
                assert_eq!(column, "Amount");
                assert_eq!(row, 107);
            }
            other => panic!("{other:?}"),
        }
        let e = value_error(
            "Incorrect double value: 'x' for column `db`.`t`.`Amount` at row 2",
            &fields,
            0,
        )
        .unwrap();
        assert!(matches!(e, EngineError::Value { row: 2, .. }));
        assert!(value_error("Something else", &fields, 0).is_none());
    }

    #[test]
    fn derived_names_stay_within_64_characters() {
        let name = derived_name(&"x".repeat(64), "old_");
        assert_eq!(name.chars().count(), 64);
        assert!(name.contains("__sluice_old_"));
    }
}
