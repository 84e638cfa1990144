//! The PostgreSQL sink: one transaction; the table (or a staging table) is created when
//! needed, rows go in with `COPY ... FROM STDIN (FORMAT binary)` encoded from the Arrow
//! batches into one reusable buffer (or, from a PostgreSQL source of the same column types,
//! forwarded as the source's own tuples: see `passthrough`), and the transaction commits only
//! after `End`.

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
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::{Client, Transaction};

use super::dialect::{self, check_ident, column_ddl, column_ddl_type, qualified, quote_ident};
use super::wire;
use super::OnTarget;
use crate::engine::batch::{copy_not_offered, Message, SinkContext};
use crate::engine::types::{Column, Family, LogicalType};
use crate::engine::{ConnectSpec, EngineError, CANCEL_GRACE};

/// Encoded bytes handed to the COPY at a time.
const FLUSH_BYTES: usize = 1 << 20;

/// How a value is written on the wire, chosen per column from its logical type and the
/// target column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    /// text, varchar, char, name, json: the UTF-8 bytes.
    Text,
    /// jsonb: version 1, then the text.
    Jsonb,
    Bytea,
    Date,
    Time,
    /// timestamp and timestamptz (µs since 2000-01-01).
    Timestamp,
    Uuid,
    /// PgRaw: the source's bytes as they came.
    Raw,
    /// PgRaw `json` into jsonb: version 1, then the bytes.
    RawJsonb,
}

mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// The type OID of the column `column_ddl` creates for a result column.
fn natural_oid(column: &Column) -> u32 {
    match &column.ty {
        LogicalType::Boolean => oid::BOOL,
        LogicalType::Int16 => oid::INT2,
        LogicalType::Int32 => oid::INT4,
        LogicalType::Int64 => oid::INT8,
        LogicalType::UInt64 | LogicalType::Decimal { .. } | LogicalType::BigDecimal { .. } => {
            oid::NUMERIC
        }
        LogicalType::Float32 => oid::FLOAT4,
        LogicalType::Float64 => oid::FLOAT8,
        LogicalType::Text { .. } => match dialect::ddl_type(&column.ty).as_str() {
            t if t.starts_with("varchar") => oid::VARCHAR,
            t if t.starts_with("char") => oid::BPCHAR,
            _ => oid::TEXT,
        },
        LogicalType::Binary { .. } => oid::BYTEA,
        LogicalType::Date => oid::DATE,
        LogicalType::Time => oid::TIME,
        LogicalType::Timestamp => oid::TIMESTAMP,
        LogicalType::TimestampTz => oid::TIMESTAMPTZ,
        LogicalType::Uuid => oid::UUID,
        LogicalType::Json | LogicalType::Array { .. } => oid::JSONB,
        LogicalType::Interval | LogicalType::Other { .. } => oid::TEXT,
        LogicalType::PgRaw { oid, .. } => *oid,
    }
}

/// How to write a value of `ty` into a column of type `target`, when COPY can do it directly
/// (the same type, or an exact widening).
fn wire_for(ty: &LogicalType, target: u32) -> Option<Wire> {
    use LogicalType as L;
    let text_family = matches!(
        target,
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON
    );
    Some(match (ty, target) {
        (L::Boolean, oid::BOOL) => Wire::Bool,
        (L::Int16, oid::INT2) => Wire::Int2,
        (L::Int16 | L::Int32, oid::INT4) => Wire::Int4,
        (L::Int16 | L::Int32 | L::Int64, oid::INT8) => Wire::Int8,
        (
            L::Int16 | L::Int32 | L::Int64 | L::UInt64 | L::Decimal { .. } | L::BigDecimal { .. },
            oid::NUMERIC,
        ) => Wire::Numeric,
        (L::Float32, oid::FLOAT4) => Wire::Float4,
        (L::Float32 | L::Float64, oid::FLOAT8) => Wire::Float8,
        (
            L::Text { .. }
            | L::Json
            | L::Array { .. }
            | L::Interval
            | L::Other { .. }
            | L::BigDecimal { .. },
            _,
        ) if text_family => Wire::Text,
        (L::Text { .. } | L::Json | L::Array { .. } | L::Other { .. }, oid::JSONB) => Wire::Jsonb,
        (L::Binary { .. }, oid::BYTEA) => Wire::Bytea,
        (L::Date, oid::DATE) => Wire::Date,
        (L::Time, oid::TIME) => Wire::Time,
        (L::Timestamp, oid::TIMESTAMP) | (L::TimestampTz, oid::TIMESTAMPTZ) => Wire::Timestamp,
        (L::Uuid, oid::UUID) => Wire::Uuid,
        (L::PgRaw { oid, .. }, t) if *oid == t => Wire::Raw,
        // `json` is UTF-8 text on the wire.
        (L::PgRaw { oid: oid::JSON, .. }, _) if text_family => Wire::Raw,
        (L::PgRaw { oid: oid::JSON, .. }, oid::JSONB) => Wire::RawJsonb,
        _ => return None,
    })
}

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
    let target = ctx.target.table().clone();
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

    let schema = match &target.schema {
        Some(schema) => {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                    &[schema],
                )
                .on_target(io)
                .await?
                .is_some();
            if !exists {
                // Concurrent transfers into a new schema take turns creating it (IF NOT
                // EXISTS alone still races on the catalog's unique index).
                lock(&tx, "schema", schema).await?;
                tx.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {}",
                    quote_ident(schema)
                ))
                .on_target(io)
                .await?;
            }
            schema.clone()
        }
        None => tx
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
            })?,
    };
    check_raw_types(&tx, &columns, io).await?;

    let find = "SELECT c.oid, c.relkind::text
                FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2";
    let mut existing = tx
        .query_opt(find, &[&schema, &target.table])
        .on_target(io)
        .await?;
    // Creating and replacing a table are serialised per table, and the table looked at again
    // under the lock: of several transfers into one new table, one creates it and the others
    // (seeing it once the first commits) append to it.
    if existing.is_none() || target.overwrite {
        lock(&tx, "table", &format!("{schema}.{}", target.table)).await?;
        existing = tx
            .query_opt(find, &[&schema, &target.table])
            .on_target(io)
            .await?;
    }
    let table = qualified(&schema, &target.table);
    // A created table has the source's own column types when it is PostgreSQL too (enums
    // where the target has them); the rows then go in as into any existing table.
    let user_types = target_user_types(&tx, &columns, io).await?;
    let create = |name: &str| {
        let list: Vec<String> = columns
            .iter()
            .map(|c| column_ddl(c, |t| user_types.contains(t)))
            .collect();
        format!("CREATE TABLE {name} ({})", list.join(", "))
    };
    let created = |name: String| {
        let (tx, schema, columns, find) = (&tx, &schema, &columns, find);
        async move {
            let row = tx.query_one(find, &[schema, &name]).on_target(io).await?;
            append_plan(tx, row.get(0), schema, &name, columns, io).await
        }
    };

    let plan = match existing {
        None => {
            tx.batch_execute(&create(&table)).on_target(io).await?;
            created(target.table.clone()).await?
        }
        Some(row) => {
            let relid: u32 = row.get(0);
            let relkind: String = row.get(1);
            if relkind != "r" && relkind != "p" {
                return Err(EngineError::Schema(format!(
                    "{schema}.{} exists and is not a table (relkind {relkind})",
                    target.table
                )));
            }
            if target.overwrite {
                let staging = staging_name(&target.table);
                let staging_table = qualified(&schema, &staging);
                tx.batch_execute(&create(&staging_table))
                    .on_target(io)
                    .await?;
                let mut plan = created(staging).await?;
                plan.finish.push(format!(
                    "DROP TABLE {table}; ALTER TABLE {staging_table} RENAME TO {}",
                    quote_ident(&target.table)
                ));
                plan
            } else {
                append_plan(&tx, relid, &schema, &target.table, &columns, io).await?
            }
        }
    };

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
                let cols = typed_columns(&batch, &plan.wires)?;
                for i in 0..n {
                    encode_row(
                        &cols,
                        &columns,
                        &plan.wires,
                        i,
                        rows + i as u64 + 1,
                        &mut buf,
                    )?;
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
    let mut written = copied;
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
    let target_rows = tx
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
    struct TargetColumn {
        name: String,
        oid: u32,
        format: String,
        category: String,
    }
    let targets: Vec<TargetColumn> = target_rows
        .iter()
        .map(|r| TargetColumn {
            name: r.get(0),
            oid: r.get(1),
            format: r.get(2),
            category: r.get(3),
        })
        .collect();
    let mut matched = Vec::with_capacity(columns.len());
    for c in columns {
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
        let Some(found) = found else {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            return Err(EngineError::Schema(format!(
                "column {:?} of the result does not exist in the target table {schema}.{table} \
                 (its columns: {})",
                c.name,
                names.join(", ")
            )));
        };
        matched.push(found);
    }
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

/// A batch column, downcast once per batch.
enum Typed<'a> {
    Bool(&'a BooleanArray),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Dec(&'a Decimal128Array, u32),
    Str(&'a StringArray),
    Bin(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    Ts(&'a TimestampMicrosecondArray),
    Uuid(&'a FixedSizeBinaryArray),
}

impl Typed<'_> {
    fn is_null(&self, i: usize) -> bool {
        match self {
            Self::Bool(a) => a.is_null(i),
            Self::I16(a) => a.is_null(i),
            Self::I32(a) => a.is_null(i),
            Self::I64(a) => a.is_null(i),
            Self::U64(a) => a.is_null(i),
            Self::F32(a) => a.is_null(i),
            Self::F64(a) => a.is_null(i),
            Self::Dec(a, _) => a.is_null(i),
            Self::Str(a) => a.is_null(i),
            Self::Bin(a) => a.is_null(i),
            Self::Date(a) => a.is_null(i),
            Self::Time(a) => a.is_null(i),
            Self::Ts(a) => a.is_null(i),
            Self::Uuid(a) => a.is_null(i),
        }
    }
}

fn typed_columns<'a>(
    batch: &'a RecordBatch,
    wires: &[Wire],
) -> Result<Vec<Typed<'a>>, EngineError> {
    use arrow_schema::DataType as D;
    if batch.num_columns() != wires.len() {
        return Err(EngineError::Internal(format!(
            "a batch has {} columns, the transfer {}",
            batch.num_columns(),
            wires.len()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|a| {
            Ok(match a.data_type() {
                D::Boolean => Typed::Bool(a.as_boolean()),
                D::Int16 => Typed::I16(a.as_primitive::<Int16Type>()),
                D::Int32 => Typed::I32(a.as_primitive::<Int32Type>()),
                D::Int64 => Typed::I64(a.as_primitive::<Int64Type>()),
                D::UInt64 => Typed::U64(a.as_primitive::<UInt64Type>()),
                D::Float32 => Typed::F32(a.as_primitive::<Float32Type>()),
                D::Float64 => Typed::F64(a.as_primitive::<Float64Type>()),
                D::Decimal128(_, s) if *s >= 0 => {
                    Typed::Dec(a.as_primitive::<Decimal128Type>(), *s as u32)
                }
                D::Utf8 => Typed::Str(a.as_string::<i32>()),
                D::Binary => Typed::Bin(a.as_binary::<i32>()),
                D::Date32 => Typed::Date(a.as_primitive::<Date32Type>()),
                D::Time64(arrow_schema::TimeUnit::Microsecond) => {
                    Typed::Time(a.as_primitive::<Time64MicrosecondType>())
                }
                D::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
                    Typed::Ts(a.as_primitive::<TimestampMicrosecondType>())
                }
                D::FixedSizeBinary(16) => Typed::Uuid(a.as_fixed_size_binary()),
                other => {
                    return Err(EngineError::Internal(format!(
                        "unexpected Arrow type {other} in a batch"
                    )))
                }
            })
        })
        .collect()
}

fn encode_row(
    cols: &[Typed<'_>],
    columns: &[Column],
    wires: &[Wire],
    i: usize,
    row: u64,
    buf: &mut BytesMut,
) -> Result<(), EngineError> {
    buf.put_i16(cols.len() as i16);
    for (k, col) in cols.iter().enumerate() {
        if col.is_null(i) {
            buf.put_i32(-1);
            continue;
        }
        encode_value(col, wires[k], i, buf).map_err(|message| EngineError::Value {
            column: columns[k].name.clone(),
            row,
            message,
        })?;
    }
    Ok(())
}

fn put_text(buf: &mut BytesMut, bytes: &[u8], jsonb: bool) -> Result<(), String> {
    if bytes.contains(&0) {
        return Err(
            "the text contains a NUL (0x00) character, which PostgreSQL cannot store".into(),
        );
    }
    if jsonb {
        buf.put_i32(bytes.len() as i32 + 1);
        buf.put_u8(1);
    } else {
        buf.put_i32(bytes.len() as i32);
    }
    buf.put_slice(bytes);
    Ok(())
}

fn length_of(bytes: &[u8]) -> Result<i32, String> {
    i32::try_from(bytes.len()).map_err(|_| "the value is larger than PostgreSQL's 1 GB".into())
}

fn encode_value(col: &Typed<'_>, wire: Wire, i: usize, buf: &mut BytesMut) -> Result<(), String> {
    match (wire, col) {
        (Wire::Bool, Typed::Bool(a)) => {
            buf.put_i32(1);
            buf.put_u8(a.value(i) as u8);
        }
        (Wire::Int2, Typed::I16(a)) => {
            buf.put_i32(2);
            buf.put_i16(a.value(i));
        }
        (Wire::Int4, Typed::I16(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i) as i32);
        }
        (Wire::Int4, Typed::I32(a)) => {
            buf.put_i32(4);
            buf.put_i32(a.value(i));
        }
        (Wire::Int8, Typed::I16(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Typed::I32(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i) as i64);
        }
        (Wire::Int8, Typed::I64(a)) => {
            buf.put_i32(8);
            buf.put_i64(a.value(i));
        }
        (Wire::Numeric, Typed::I16(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::I32(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::I64(a)) => wire::put_numeric_i128(buf, a.value(i) as i128, 0),
        (Wire::Numeric, Typed::U64(a)) => wire::put_numeric_u64(buf, a.value(i)),
        (Wire::Numeric, Typed::Dec(a, scale)) => wire::put_numeric_i128(buf, a.value(i), *scale),
        (Wire::Numeric, Typed::Str(a)) => wire::put_numeric_text(buf, a.value(i))?,
        (Wire::Float4, Typed::F32(a)) => {
            buf.put_i32(4);
            buf.put_f32(a.value(i));
        }
        (Wire::Float8, Typed::F32(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i) as f64);
        }
        (Wire::Float8, Typed::F64(a)) => {
            buf.put_i32(8);
            buf.put_f64(a.value(i));
        }
        (Wire::Text, Typed::Str(a)) => put_text(buf, a.value(i).as_bytes(), false)?,
        (Wire::Jsonb, Typed::Str(a)) => put_text(buf, a.value(i).as_bytes(), true)?,
        (Wire::Bytea | Wire::Raw, Typed::Bin(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)?);
            buf.put_slice(v);
        }
        (Wire::RawJsonb, Typed::Bin(a)) => {
            let v = a.value(i);
            buf.put_i32(length_of(v)? + 1);
            buf.put_u8(1);
            buf.put_slice(v);
        }
        (Wire::Date, Typed::Date(a)) => {
            let days = a.value(i);
            let pg = match days {
                i32::MAX | i32::MIN => days,
                _ => match days.checked_sub(wire::PG_EPOCH_DAYS) {
                    Some(d) if (wire::PG_MIN_DATE..wire::PG_END_DATE).contains(&d) => d,
                    _ => {
                        return Err(
                            "the date is outside PostgreSQL's range (4713 BC to 5874897 AD)".into(),
                        )
                    }
                },
            };
            buf.put_i32(4);
            buf.put_i32(pg);
        }
        (Wire::Time, Typed::Time(a)) => {
            let micros = a.value(i);
            if !(0..=wire::MICROS_PER_DAY).contains(&micros) {
                return Err("the time is outside 00:00:00 to 24:00:00".into());
            }
            buf.put_i32(8);
            buf.put_i64(micros);
        }
        (Wire::Timestamp, Typed::Ts(a)) => {
            let micros = a.value(i);
            let pg = match micros {
                i64::MAX | i64::MIN => micros,
                _ => match micros.checked_sub(wire::PG_EPOCH_MICROS) {
                    Some(t) if (wire::PG_MIN_TIMESTAMP..wire::PG_END_TIMESTAMP).contains(&t) => t,
                    _ => {
                        return Err(
                            "the timestamp is outside PostgreSQL's range (4713 BC to 294276 AD)"
                                .into(),
                        )
                    }
                },
            };
            buf.put_i32(8);
            buf.put_i64(pg);
        }
        (Wire::Uuid, Typed::Uuid(a)) => {
            buf.put_i32(16);
            buf.put_slice(a.value(i));
        }
        (wire, _) => {
            return Err(format!(
                "internal: no encoding of this Arrow column as {wire:?}"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text_column(name: &str) -> Column {
        Column {
            name: name.into(),
            ty: LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            nullable: true,
            db_type: "text".into(),
            native: None,
        }
    }

    #[test]
    fn nul_in_text_is_a_value_error_naming_column_and_row() {
        let columns = vec![text_column("note")];
        let schema = crate::engine::types::arrow_schema(&columns);
        let array = StringArray::from(vec![Some("fine"), Some("bad\0byte")]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
        let wires = vec![Wire::Text];
        let cols = typed_columns(&batch, &wires).unwrap();
        let mut buf = BytesMut::new();
        encode_row(&cols, &columns, &wires, 0, 41, &mut buf).unwrap();
        match encode_row(&cols, &columns, &wires, 1, 42, &mut buf) {
            Err(EngineError::Value { column, row, .. }) => {
                assert_eq!(column, "note");
                assert_eq!(row, 42);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exact_widenings_are_copied_directly_and_others_are_not() {
        assert_eq!(wire_for(&LogicalType::Int32, oid::INT8), Some(Wire::Int8));
        assert_eq!(wire_for(&LogicalType::Int64, oid::INT4), None);
        assert_eq!(
            wire_for(&LogicalType::Float32, oid::FLOAT8),
            Some(Wire::Float8)
        );
        assert_eq!(wire_for(&LogicalType::Float64, oid::FLOAT4), None);
        assert_eq!(wire_for(&LogicalType::Timestamp, oid::TIMESTAMPTZ), None);
        assert_eq!(
            wire_for(
                &LogicalType::PgRaw {
                    db_type: "integer[]".into(),
                    oid: 1007
                },
                1007
            ),
            Some(Wire::Raw)
        );
    }

    #[test]
    fn staging_names_fit_postgresql_identifiers() {
        let name = staging_name(&"é".repeat(40));
        assert!(name.len() <= 63, "{name}");
        assert!(name.contains("__sluice_"));
    }
}
