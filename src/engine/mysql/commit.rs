//! How a MySQL/MariaDB transfer commits and learns the outcome of a commit whose answer was
//! lost: the per-table lock that serialises creators, the bookkeeping row of an append, the
//! RENAME of a staging table, and ending the old session before looking.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::{connect_with, describe};
use super::{target_error, OnTarget};
use crate::engine::{ConnectSpec, EngineError, CANCEL_GRACE};

/// The bookkeeping table of appends, in the target's database: an append writes a row keyed
/// by a token of its own in the same transaction as its rows, so that when the answer to its
/// COMMIT is lost, the row tells whether the COMMIT happened. The row is deleted right after.
pub(super) const COMMITS_TABLE: &str = "_sluice_commits";

/// How long a transfer waits for another one creating or replacing the same table.
pub(super) const TABLE_LOCK_WAIT_SECS: u64 = 24 * 3600;

/// Serialise the transfers that create or replace one table: a named lock of the session
/// (the server releases it when the session ends, so a crash cannot leave it held).
///
/// # Cancel safety
/// On `cancel` the wait is stopped on the server (`KILL QUERY`) and the result is `Cancelled`.
pub(super) async fn lock_table(
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
pub(super) async fn settle(spec: &ConnectSpec, id: u32) -> Result<Conn, EngineError> {
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
pub(super) async fn append_committed(
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
pub(super) async fn renamed(
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
pub(super) enum Unanswered {
    Refused(EngineError),
    Lost(String),
}

pub(super) async fn committing(
    conn: &mut Conn,
    sql: String,
    io: Duration,
) -> Result<(), Unanswered> {
    match timeout(io, conn.query_drop(sql)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e @ mysql_async::Error::Server(_))) => Err(Unanswered::Refused(target_error(&e))),
        Ok(Err(e)) => Err(Unanswered::Lost(describe(&e).0)),
        Err(_) => Err(Unanswered::Lost(format!("no answer within {io:?}"))),
    }
}
