//! The PostgreSQL sink: one transaction; the table (or a staging table) is created when
//! needed, rows go in with `COPY ... FROM STDIN (FORMAT binary)` encoded from the Arrow
//! batches into one reusable buffer (or, from a PostgreSQL source of the same column types,
//! forwarded as the source's own tuples: see `passthrough`), and the transaction commits only
//! after `End`.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, Transaction};

use super::dialect::{self, check_ident, column_ddl, column_ddl_type, qualified, quote_ident};
use super::encode::{encode_row, natural_oid, wire_for, Wire};
use super::wire;
use super::OnTarget;
use crate::engine::arrays::view_batch;
use crate::engine::batch::{copy_not_offered, Message, SinkContext, TargetTable};
use crate::engine::types::{Column, Family, LogicalType};
use crate::engine::{ConnectSpec, EngineError, CANCEL_GRACE};

/// Encoded bytes handed to the COPY at a time.
const FLUSH_BYTES: usize = 1 << 20;

/// Write everything the channel brings into the target, atomically; returns rows written.
///
/// # Cancel safety
/// On `ctx.cancel`, or when the channel closes without `End`, the transaction is dropped
/// unfinished: the COPY is aborted and everything (tables, schema) rolls back. Once COMMIT is
/// sent, a cancel no longer stops it: the outcome is learned (see `commit`).
pub async fn run(spec: &ConnectSpec, mut ctx: SinkContext) -> Result<u64, EngineError> {
    let cancel = ctx.cancel.clone();
    let mut client = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        client = super::connect(spec) => client?,
    };
    let token = client.cancel_token();
    let loaded = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            // Ends a wait for another transfer's lock (or a statement) on the server at once.
            let _ = tokio::time::timeout(CANCEL_GRACE, super::cancel_query(&token, spec)).await;
            return Err(EngineError::Cancelled);
        }
        loaded = write(&mut client, &mut ctx, spec.timeouts.io) => loaded?,
    };
    if cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    commit(loaded, spec).await
}

/// A transaction holding every row, ready to commit.
struct Loaded<'a> {
    tx: Transaction<'a>,
    written: u64,
    /// The transaction's id and its server process: to learn a lost COMMIT's outcome.
    xid: i64,
    pid: i32,
}

/// COMMIT, and when its answer does not come (the link broke, or nothing came back within the
/// I/O timeout) learn from a fresh connection whether the transaction committed, so that a
/// job is neither retried onto rows already committed nor reported failed when it is not.
async fn commit(loaded: Loaded<'_>, spec: &ConnectSpec) -> Result<u64, EngineError> {
    let Loaded {
        tx,
        written,
        xid,
        pid,
    } = loaded;
    let lost = match tokio::time::timeout(spec.timeouts.io, tx.commit()).await {
        Ok(Ok(())) => return Ok(written),
        // The server answered: it did not commit.
        Ok(Err(e)) if e.as_db_error().is_some() => return Err(dialect::target_error(&e)),
        Ok(Err(e)) => super::error_chain(&e),
        Err(_) => format!("no answer to COMMIT within {:?}", spec.timeouts.io),
    };
    tracing::warn!(xid, error = %lost, "COMMIT got no answer; asking the server whether it committed.");
    if super::transaction_committed(spec, xid, pid).await? {
        tracing::info!(xid, "The transaction committed; its answer was lost.");
        Ok(written)
    } else {
        Err(EngineError::Target {
            message: format!("the transaction did not commit ({lost})"),
            transient: true,
        })
    }
}

/// Where the COPY goes and what happens after it.
struct Plan {
    /// Quoted, qualified table the COPY fills.
    copy_into: String,
    /// Quoted column names of `copy_into`, in the order of the result's columns.
    copy_columns: Vec<String>,
    wires: Vec<Wire>,
    /// Type OIDs of `copy_columns` (a source whose tuples have exactly these may pass them
    /// through).
    copy_oids: Vec<u32>,
    /// SQL run after the COPY, before COMMIT (INSERT from the load table; swap for overwrite).
    finish: Vec<String>,
    /// Whether `finish[0]` is the INSERT whose count is the rows written.
    insert_counts: bool,
}

async fn write<'a>(
    client: &'a mut Client,
    ctx: &mut SinkContext,
    io: Duration,
) -> Result<Loaded<'a>, EngineError> {
    let columns = ctx.columns.clone();
    let target = ctx.target.table()?.clone();
    if let Some(schema) = &target.schema {
        check_ident("schema", schema)?;
    }
    check_ident("table", &target.table)?;
    for c in &columns {
        check_ident("column", &c.name)?;
    }
    let tx = client.transaction().on_target(io).await?;
    let ids = tx
        .query_one("SELECT txid_current(), pg_backend_pid()", &[])
        .on_target(io)
        .await?;
    let (xid, pid): (i64, i32) = (ids.get(0), ids.get(1));
    let schema = target_schema(&tx, target.schema.as_deref(), io).await?;
    check_raw_types(&tx, &columns, io).await?;
    let plan = plan(&tx, &schema, &target, &columns, io).await?;

    // The sources wait for this answer before they read.
    let pass_through = match ctx.copy_offer.take() {
        Some(offer) => {
            let agreed = offer.oids == plan.copy_oids;
            if agreed {
                tracing::debug!(into = %plan.copy_into, "Passing the binary COPY tuples through.");
            }
            let _ = offer.answer.send(Some(agreed));
            agreed
        }
        None => false,
    };
    let rows = copy_rows(&tx, &plan, ctx, pass_through, io).await?;
    let mut written = rows;
    for (i, sql) in plan.finish.iter().enumerate() {
        if i == 0 && plan.insert_counts {
            written = tx.execute(sql.as_str(), &[]).on_target(io).await?;
        } else {
            tx.batch_execute(sql).on_target(io).await?;
        }
    }
    Ok(Loaded {
        tx,
        written,
        xid,
        pid,
    })
}

/// The schema the table goes in: the one named (created when missing: concurrent transfers
/// into a new schema take turns, since IF NOT EXISTS alone still races on the catalog's unique
/// index), or the connection's current schema.
async fn target_schema(
    tx: &Transaction<'_>,
    named: Option<&str>,
    io: Duration,
) -> Result<String, EngineError> {
    let Some(schema) = named else {
        return tx
            .query_one("SELECT current_schema()::text", &[])
            .on_target(io)
            .await?
            .get::<_, Option<String>>(0)
            .ok_or_else(|| {
                EngineError::Schema(
                    "no target schema was given and the connection's search_path names no \
                     existing schema"
                        .into(),
                )
            });
    };
    let exists = tx
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .on_target(io)
        .await?
        .is_some();
    if !exists {
        lock(tx, "schema", schema).await?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(schema)
        ))
        .on_target(io)
        .await?;
    }
    Ok(schema.to_string())
}

/// The table `(oid, relkind)` of `schema.table`, if there is one.
const FIND_TABLE: &str = "SELECT c.oid, c.relkind::text
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2";

/// Where the COPY goes. Creating and replacing a table are serialised per table, and the table
/// looked at again under the lock: of several transfers into one new table, one creates it
/// and the others (seeing it once the first commits) append to it. A created table has the
/// source's own column types when it is PostgreSQL too; the rows then go in as into any
/// existing table.
async fn plan(
    tx: &Transaction<'_>,
    schema: &str,
    target: &TargetTable,
    columns: &[Column],
    io: Duration,
) -> Result<Plan, EngineError> {
    let mut existing = tx
        .query_opt(FIND_TABLE, &[&schema, &target.table])
        .on_target(io)
        .await?;
    if existing.is_none() || target.overwrite {
        lock(tx, "table", &format!("{schema}.{}", target.table)).await?;
        existing = tx
            .query_opt(FIND_TABLE, &[&schema, &target.table])
            .on_target(io)
            .await?;
    }
    let Some(row) = existing else {
        let name = create_table(tx, schema, &target.table, columns, io).await?;
        return append_plan(tx, name, schema, &target.table, columns, io).await;
    };
    let (relid, relkind): (u32, String) = (row.get(0), row.get(1));
    if relkind != "r" && relkind != "p" {
        return Err(EngineError::Schema(format!(
            "{schema}.{} exists and is not a table (relkind {relkind})",
            target.table
        )));
    }
    if !target.overwrite {
        return append_plan(tx, relid, schema, &target.table, columns, io).await;
    }
    let staging = staging_name(&target.table);
    let staging_oid = create_table(tx, schema, &staging, columns, io).await?;
    let mut plan = append_plan(tx, staging_oid, schema, &staging, columns, io).await?;
    plan.finish.push(format!(
        "DROP TABLE {}; ALTER TABLE {} RENAME TO {}",
        qualified(schema, &target.table),
        qualified(schema, &staging),
        quote_ident(&target.table)
    ));
    Ok(plan)
}

/// Create `schema.name` for the result's columns; its oid.
async fn create_table(
    tx: &Transaction<'_>,
    schema: &str,
    name: &str,
    columns: &[Column],
    io: Duration,
) -> Result<u32, EngineError> {
    let user_types = target_user_types(tx, columns, io).await?;
    let list: Vec<String> = columns
        .iter()
        .map(|c| column_ddl(c, |t| user_types.contains(t)))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TABLE {} ({})",
        qualified(schema, name),
        list.join(", ")
    ))
    .on_target(io)
    .await?;
    let row = tx
        .query_one(FIND_TABLE, &[&schema, &name])
        .on_target(io)
        .await?;
    Ok(row.get(0))
}

/// Stream the channel into the plan's `COPY … FROM STDIN (FORMAT binary)`: batches encoded,
/// or a PostgreSQL source's tuples passed through. The rows copied, checked against the
/// server's own count.
///
/// # Cancel safety
/// A channel that closes without `End` is `Cancelled`; the caller drops the transaction.
async fn copy_rows(
    tx: &Transaction<'_>,
    plan: &Plan,
    ctx: &mut SinkContext,
    pass_through: bool,
    io: Duration,
) -> Result<u64, EngineError> {
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        plan.copy_into,
        plan.copy_columns.join(", ")
    );
    let sink = tx
        .copy_in::<_, bytes::Bytes>(statement.as_str())
        .on_target(io)
        .await?;
    let mut sink = std::pin::pin!(sink);
    let mut buf = BytesMut::with_capacity(FLUSH_BYTES + FLUSH_BYTES / 4);
    buf.put_slice(wire::COPY_SIGNATURE);
    buf.put_i32(0);
    buf.put_i32(0);
    let mut rows: u64 = 0;
    loop {
        let Some(message) = ctx.rx.recv().await else {
            // The source failed or was cancelled: roll back.
            return Err(EngineError::Cancelled);
        };
        match message {
            Message::Batch(batch) => {
                let n = batch.num_rows();
                if n == 0 {
                    continue;
                }
                let cols = view_batch(&batch, plan.wires.len())?;
                for i in 0..n {
                    let row = rows + i as u64 + 1;
                    encode_row(&cols, &ctx.columns, &plan.wires, i, row, &mut buf)?;
                    if buf.len() >= FLUSH_BYTES {
                        sink.send(buf.split().freeze()).on_target(io).await?;
                    }
                }
                if !buf.is_empty() {
                    sink.send(buf.split().freeze()).on_target(io).await?;
                }
                rows += n as u64;
                ctx.progress.add_written(n as u64);
            }
            Message::Copy(chunk) if pass_through => {
                if !buf.is_empty() {
                    // The header.
                    sink.send(buf.split().freeze()).on_target(io).await?;
                }
                sink.send(chunk.data).on_target(io).await?;
                rows += chunk.rows;
                ctx.progress.add_written(chunk.rows);
            }
            Message::Copy(_) => return Err(copy_not_offered()),
            Message::End => break,
        }
    }
    buf.put_i16(-1);
    sink.send(buf.split().freeze()).on_target(io).await?;
    let copied = sink.as_mut().finish().on_target(io).await?;
    if copied != rows {
        return Err(EngineError::Internal(format!(
            "the target's COPY took {copied} rows where {rows} were sent"
        )));
    }
    Ok(copied)
}

/// The source's own enum and domain types (of a PostgreSQL source) that the target has too,
/// by name.
async fn target_user_types(
    tx: &Transaction<'_>,
    columns: &[Column],
    io: Duration,
) -> Result<std::collections::HashSet<String>, EngineError> {
    let names: Vec<String> = columns
        .iter()
        .filter_map(|c| c.native_for(Family::Postgres))
        .filter(|n| n.user_defined)
        .map(|n| n.ddl.clone())
        .collect();
    if names.is_empty() {
        return Ok(Default::default());
    }
    let rows = tx
        .query(
            "SELECT u.t FROM unnest($1::text[]) AS u(t)
             JOIN pg_catalog.pg_type ty ON ty.oid = to_regtype(u.t)
             WHERE ty.typtype IN ('e', 'd')",
            &[&names],
        )
        .on_target(io)
        .await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// Wait for the transaction-scoped advisory lock of one schema or table (released at COMMIT or
/// ROLLBACK). Not bounded by the I/O timeout: the wait is for another transfer, not the link;
/// a cancel ends it with the cancel request `run` sends.
async fn lock(tx: &Transaction<'_>, kind: &str, name: &str) -> Result<(), EngineError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('sluice'), hashtext($1))",
        &[&format!("{kind}:{name}")],
    )
    .await
    .map_err(|e| dialect::target_error(&e))?;
    Ok(())
}

/// `<table>__sluice_<8 hex>`, within PostgreSQL's 63 bytes.
fn staging_name(table: &str) -> String {
    let suffix = format!(
        "__sluice_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut cut = table.len().min(dialect::MAX_IDENT_BYTES - suffix.len());
    while !table.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &table[..cut])
}

/// A PgRaw column is created with its source type name: make sure that name is exactly one
/// type on this server, the one whose binary form the bytes are.
async fn check_raw_types(
    tx: &Transaction<'_>,
    columns: &[Column],
    io: Duration,
) -> Result<(), EngineError> {
    let raw: Vec<(&Column, &str, u32)> = columns
        .iter()
        .filter_map(|c| match &c.ty {
            LogicalType::PgRaw { db_type, oid } => Some((c, db_type.as_str(), *oid)),
            _ => None,
        })
        .collect();
    if raw.is_empty() {
        return Ok(());
    }
    for (column, db_type, _) in &raw {
        let safe = !db_type.is_empty()
            && db_type.chars().all(|ch| {
                ch.is_ascii_alphanumeric()
                    || matches!(ch, ' ' | '_' | '(' | ')' | ',' | '[' | ']' | '"')
            });
        if !safe {
            return Err(EngineError::Schema(format!(
                "column {:?}: the source type {db_type:?} is not a plain type name",
                column.name
            )));
        }
    }
    let names: Vec<String> = raw.iter().map(|(_, t, _)| t.to_string()).collect();
    let rows = tx
        .query(
            "SELECT COALESCE(to_regtype(t)::oid, 0::oid)
             FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i",
            &[&names],
        )
        .on_target(io)
        .await?;
    for ((column, db_type, oid), row) in raw.iter().zip(rows) {
        let found: u32 = row.get(0);
        if found != *oid {
            return Err(EngineError::Schema(format!(
                "column {:?}: the source type {db_type:?} (oid {oid}) is not the same type on \
                 the target (oid {found})",
                column.name
            )));
        }
    }
    Ok(())
}

/// Append into an existing table by column name: COPY straight into it when every column's
/// type takes the values as they are; else COPY into a temporary table of the mapped types
/// and INSERT ... SELECT, letting PostgreSQL's assignment casts convert (or refuse).
async fn append_plan(
    tx: &Transaction<'_>,
    relid: u32,
    schema: &str,
    table: &str,
    columns: &[Column],
    io: Duration,
) -> Result<Plan, EngineError> {
    let targets = target_columns(tx, relid, io).await?;
    let matched = match_columns(&targets, columns, schema, table)?;
    let table_sql = qualified(schema, table);
    let target_columns: Vec<String> = matched.iter().map(|t| quote_ident(&t.name)).collect();
    let direct: Option<Vec<Wire>> = columns
        .iter()
        .zip(&matched)
        .map(|(c, t)| wire_for(&c.ty, t.oid))
        .collect();
    if let Some(wires) = direct {
        return Ok(Plan {
            copy_into: table_sql,
            copy_columns: target_columns,
            wires,
            copy_oids: matched.iter().map(|t| t.oid).collect(),
            finish: Vec::new(),
            insert_counts: false,
        });
    }
    // Through a temporary load table of the mapped types.
    let load = format!("sluice_load_{}", uuid::Uuid::new_v4().simple());
    let load_sql = qualified("pg_temp", &load);
    let list: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), column_ddl_type(c)))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {} ({}) ON COMMIT DROP",
        quote_ident(&load),
        list.join(", ")
    ))
    .on_target(io)
    .await?;
    let select: Vec<String> = columns
        .iter()
        .zip(&matched)
        .map(|(c, t)| {
            let name = quote_ident(&c.name);
            let textual = matches!(
                c.ty,
                LogicalType::Text { .. } | LogicalType::Other { .. } | LogicalType::Interval
            );
            // Text into a non-string type (an enum, a number): convert through the type's
            // input function, which refuses what it cannot read.
            if textual && t.category != "S" && wire_for(&c.ty, t.oid).is_none() {
                format!("CAST({name} AS {})", t.format)
            } else {
                name
            }
        })
        .collect();
    let insert = format!(
        "INSERT INTO {table_sql} ({}) SELECT {} FROM {load_sql}",
        target_columns.join(", "),
        select.join(", ")
    );
    Ok(Plan {
        copy_into: load_sql,
        copy_columns: columns.iter().map(|c| quote_ident(&c.name)).collect(),
        wires: columns
            .iter()
            .map(|c| wire_for(&c.ty, natural_oid(c)).expect("natural wire"))
            .collect(),
        copy_oids: columns.iter().map(natural_oid).collect(),
        finish: vec![insert],
        insert_counts: true,
    })
}

/// A column of an existing target table.
struct TargetColumn {
    name: String,
    oid: u32,
    /// `format_type(atttypid, atttypmod)`.
    format: String,
    /// `pg_type.typcategory` ("S" for strings).
    category: String,
}

async fn target_columns(
    tx: &Transaction<'_>,
    relid: u32,
    io: Duration,
) -> Result<Vec<TargetColumn>, EngineError> {
    let rows = tx
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod),
                    t.typcategory::text
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&relid],
        )
        .on_target(io)
        .await?;
    Ok(rows
        .iter()
        .map(|r| TargetColumn {
            name: r.get(0),
            oid: r.get(1),
            format: r.get(2),
            category: r.get(3),
        })
        .collect())
}

/// The target column each result column goes into: the same name, or else the one name
/// equal to it ignoring case.
fn match_columns<'a>(
    targets: &'a [TargetColumn],
    columns: &[Column],
    schema: &str,
    table: &str,
) -> Result<Vec<&'a TargetColumn>, EngineError> {
    columns
        .iter()
        .map(|c| {
            let exact = targets.iter().find(|t| t.name == c.name);
            let found = exact.or_else(|| {
                let mut folded = targets
                    .iter()
                    .filter(|t| t.name.to_lowercase() == c.name.to_lowercase());
                match (folded.next(), folded.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            });
            found.ok_or_else(|| {
                let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                EngineError::Schema(format!(
                    "column {:?} of the result does not exist in the target table \
                     {schema}.{table} (its columns: {})",
                    c.name,
                    names.join(", ")
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_fit_postgresql_identifiers() {
        let name = staging_name(&"é".repeat(40));
        assert!(name.len() <= 63, "{name}");
        assert!(name.contains("__sluice_"));
    }
}
