//! The MySQL/MariaDB sink: `LOAD DATA LOCAL INFILE` fed as a stream from the batches (the
//! server's own bulk path), or multi-row prepared INSERTs where the server refuses local infile;
//! one transaction, and a staging table renamed into place for new tables and overwrite.

use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::commit::{append_committed, committing, lock_table, renamed, Unanswered, COMMITS_TABLE};
use super::dialect::{self, check_ident, column_definitions, qualified, quote};
use super::encode::{Field, TargetColumn};
use super::load::{insert_rows, load_data, load_statement, Loaded, Writing};
use super::{connect_with, target_error, OnTarget};
use crate::engine::batch::{Message, SinkContext};
use crate::engine::types::{Column, LogicalType};
use crate::engine::{ConnectSpec, EngineError, CANCEL_GRACE};

/// Session settings of a writing connection: refuse rather than adjust a value; DATETIME text
/// is UTC.
const SINK_SETUP: &[&str] = &[
    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_VALUE_ON_ZERO'",
    "SET time_zone = '+00:00'",
];

/// Write everything the channel brings into the target, atomically; returns rows written.
///
/// # Cancel safety
/// On `ctx.cancel`, or when the channel closes without `End`, the load is ended, the
/// transaction rolled back, and whatever this transfer created (staging table, database)
/// dropped again.
pub async fn run(spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
    let database = ctx
        .target
        .table()?
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
    check_ident("table", &ctx.target.table()?.table)?;
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

/// Where a transfer's rows go: the table (or its staging table) and its columns.
struct Destination {
    /// The qualified table the rows are loaded into.
    dest: String,
    /// The target column each result column goes into.
    targets: Vec<TargetColumn>,
    /// The staging table's bare name, for a new or replaced table.
    staging: Option<String>,
    /// The target table existed when the transfer looked (under the lock).
    exists: bool,
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
    let target = target.table()?;
    let table = target.table.as_str();
    let folded = ensure_database(conn, database, undo, io).await?;
    let place = Place {
        database,
        table,
        folded,
    };
    let destination = destination(
        conn,
        spec,
        &place,
        target.overwrite,
        &columns,
        &cancel,
        undo,
    )
    .await?;
    let fields: Arc<Vec<Field>> = Arc::new(
        columns
            .iter()
            .zip(&destination.targets)
            .map(|(c, t)| Field::new(c, t))
            .collect(),
    );
    // An append commits with COMMIT, and marks it: see COMMITS_TABLE.
    let commits = qualified(Some(database), COMMITS_TABLE);
    let token = destination
        .staging
        .is_none()
        .then(|| uuid::Uuid::new_v4().simple().to_string());
    if token.is_some() {
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
    let writing = Writing {
        cancel: cancel.clone(),
        progress,
        fields,
        limit: io,
    };
    let rows = load(conn, rx, &destination, &writing).await?;
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
    commit(conn, spec, &commits, token.as_deref(), undo).await?;
    if let Some(staging) = &destination.staging {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        swap_in(conn, spec, &place, staging, destination.exists, undo).await?;
    }
    undo.database = None;
    Ok(rows)
}

/// The target table's database and name, and how the server compares names.
struct Place<'a> {
    database: &'a str,
    table: &'a str,
    /// `lower_case_table_names` is on.
    folded: bool,
}

/// Create the target database when it is missing (to be dropped again on failure); whether
/// the server folds names.
async fn ensure_database(
    conn: &mut Conn,
    database: &str,
    undo: &mut Undo,
    io: Duration,
) -> Result<bool, EngineError> {
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
    Ok(folded)
}

/// Where the rows go. Creating and replacing a table are serialised per table, and the table
/// looked at again under the lock: of several transfers into one new table, one creates it
/// (through a staging table renamed into place) and the others append to it.
async fn destination(
    conn: &mut Conn,
    spec: &ConnectSpec,
    place: &Place<'_>,
    overwrite: bool,
    columns: &[Column],
    cancel: &CancellationToken,
    undo: &mut Undo,
) -> Result<Destination, EngineError> {
    let io = spec.timeouts.io;
    let Place {
        database,
        table,
        folded,
    } = *place;
    let mut existing = target_columns(conn, database, table, folded, io).await?;
    if existing.is_empty() || overwrite {
        let key = format!("{database}.{table}");
        let key = if folded { key.to_lowercase() } else { key };
        lock_table(conn, spec, &key, cancel).await?;
        existing = target_columns(conn, database, table, folded, io).await?;
    }
    let exists = !existing.is_empty();
    if exists && !overwrite {
        let targets = columns
            .iter()
            .map(|c| matching_column(&existing, c, database, table))
            .collect::<Result<_, _>>()?;
        return Ok(Destination {
            dest: qualified(Some(database), table),
            targets,
            staging: None,
            exists,
        });
    }
    let staging = derived_name(table, "");
    let staging_sql = qualified(Some(database), &staging);
    let create = format!(
        "CREATE TABLE {staging_sql} ({}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        column_definitions(columns).join(", ")
    );
    undo.staging = Some(staging_sql.clone());
    conn.query_drop(create).on_target(io).await?;
    Ok(Destination {
        dest: staging_sql,
        targets: columns.iter().map(created_column).collect(),
        staging: Some(staging),
        exists,
    })
}

/// The existing target column a result column appends into (by name, ignoring case as MySQL
/// does), or why there is none.
fn matching_column(
    existing: &[TargetColumn],
    c: &Column,
    database: &str,
    table: &str,
) -> Result<TargetColumn, EngineError> {
    let lower = c.name.to_lowercase();
    existing
        .iter()
        .find(|t| t.name == c.name)
        .or_else(|| existing.iter().find(|t| t.name.to_lowercase() == lower))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = existing.iter().map(|t| t.name.as_str()).collect();
            EngineError::Schema(format!(
                "the target table {database}.{table} has no column {:?} (its columns: {})",
                c.name,
                names.join(", ")
            ))
        })
}

/// The column a created (staging) table has for a result column.
fn created_column(c: &Column) -> TargetColumn {
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
}

/// Stream the rows in: LOAD DATA, or INSERTs where the server refuses it.
async fn load(
    conn: &mut Conn,
    rx: mpsc::Receiver<Message>,
    destination: &Destination,
    writing: &Writing,
) -> Result<u64, EngineError> {
    let Destination { dest, targets, .. } = destination;
    let load_sql = load_statement(dest, targets, &writing.fields);
    Ok(match load_data(conn, load_sql, rx, writing).await? {
        Loaded::Rows(rows) => rows,
        Loaded::Refused(rx) => {
            tracing::debug!("The server refuses LOAD DATA LOCAL; writing with INSERTs.");
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            insert_rows(conn, rx, writing, dest, &names).await?
        }
    })
}

/// COMMIT. An append (`token`) whose COMMIT got no answer learns from its bookkeeping row
/// whether it committed; a staging table's load that got none is retried (it is not visible,
/// and the undo drops it).
async fn commit(
    conn: &mut Conn,
    spec: &ConnectSpec,
    commits: &str,
    token: Option<&str>,
    undo: &mut Undo,
) -> Result<(), EngineError> {
    let io = spec.timeouts.io;
    let id = conn.id();
    match committing(conn, "COMMIT".into(), io).await {
        Ok(()) => {
            undo.in_transaction = false;
            if let Some(token) = token {
                if let Err(e) = conn
                    .exec_drop(format!("DELETE FROM {commits} WHERE token = ?"), (token,))
                    .on_target(io)
                    .await
                {
                    tracing::warn!(error = %e, "Could not remove the commit's bookkeeping row.");
                }
            }
            Ok(())
        }
        Err(Unanswered::Refused(e)) => Err(e),
        Err(Unanswered::Lost(why)) => {
            undo.in_transaction = false;
            let Some(token) = token else {
                return Err(EngineError::Target {
                    message: format!("COMMIT got no answer ({why})"),
                    transient: true,
                });
            };
            tracing::warn!(error = %why, "COMMIT got no answer; asking the server whether it committed.");
            if append_committed(spec, id, commits, token).await? {
                tracing::info!("The append committed; its answer was lost.");
                Ok(())
            } else {
                Err(EngineError::Target {
                    message: format!("the transaction did not commit ({why})"),
                    transient: true,
                })
            }
        }
    }
}

/// RENAME the staging table into place (the commit point of a new or replaced table) and drop
/// the replaced one. A RENAME whose answer was lost happened if the staging table is gone.
async fn swap_in(
    conn: &mut Conn,
    spec: &ConnectSpec,
    place: &Place<'_>,
    staging: &str,
    exists: bool,
    undo: &mut Undo,
) -> Result<(), EngineError> {
    let io = spec.timeouts.io;
    let (database, table) = (place.database, place.table);
    let staging_sql = qualified(Some(database), staging);
    let target_sql = qualified(Some(database), table);
    let old_sql = exists.then(|| qualified(Some(database), &derived_name(table, "old_")));
    let rename = match &old_sql {
        Some(old_sql) => {
            format!("RENAME TABLE {target_sql} TO {old_sql}, {staging_sql} TO {target_sql}")
        }
        None => format!("RENAME TABLE {staging_sql} TO {target_sql}"),
    };
    let id = conn.id();
    let mut conn_lost = false;
    match committing(conn, rename, io).await {
        Ok(()) => {}
        Err(Unanswered::Refused(e)) => return Err(e),
        Err(Unanswered::Lost(why)) => {
            tracing::warn!(error = %why, "RENAME got no answer; asking the server whether it happened.");
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
    let Some(old_sql) = old_sql else {
        return Ok(());
    };
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_stay_within_64_characters() {
        let name = derived_name(&"x".repeat(64), "old_");
        assert_eq!(name.chars().count(), 64);
        assert!(name.contains("__sluice_old_"));
    }
}
