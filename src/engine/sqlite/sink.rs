//! The SQLite sink: one `BEGIN IMMEDIATE` transaction on a blocking thread holds everything —
//! creating the table (or a staging table for overwrite), one prepared INSERT re-used for every
//! row, the swap (drop the old table, rename the staging table) — and commits only after the
//! source's `End`. Any failure, a cancel, or a channel that closes without `End` rolls it all
//! back; a database file created for the transfer is removed again.
//!
//! Values are bound with the target column's affinity in mind so that SQLite never converts
//! one silently: exact decimals go in as text (or as a number only when the number is exactly
//! the same value), numeric-looking text is refused by columns that would turn it into a
//! number, and NaN (which SQLite turns into NULL) is refused. -0.0 is stored as 0, the value
//! IEEE 754 holds equal to it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::affinity::{check_text_affinity, Affinity};
use super::dialect::{self, quote_ident};
use super::values::{self, parse_decimal, TextBuf};
use crate::engine::batch::{copy_not_offered, Message, SinkContext};
use crate::engine::types::{Column, LogicalType};
use crate::engine::{ConnectSpec, EngineError};

/// How long to wait for another connection's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(spec: &ConnectSpec, ctx: SinkContext) -> Result<u64, EngineError> {
    let path = spec
        .path
        .clone()
        .ok_or_else(|| target_message("no database file path"))?;
    if let Some(schema) = ctx.target.table()?.schema.as_deref() {
        if !schema.is_empty() && !schema.eq_ignore_ascii_case("main") {
            return Err(EngineError::Schema(format!(
                "SQLite has no schemas: the target schema must be empty or \"main\", not {schema:?}"
            )));
        }
    }
    quote_ident(&ctx.target.table()?.table)?;
    for c in &ctx.columns {
        quote_ident(&c.name)?;
        dialect::column_ddl(c)?;
    }
    let runtime = Handle::current();
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || write(&path, &spec, ctx, &runtime))
        .await
        .map_err(|e| EngineError::Internal(format!("SQLite worker failed: {e}")))?
}

fn target_message(message: &str) -> EngineError {
    EngineError::Target {
        message: message.into(),
        transient: false,
    }
}

fn target_error(e: &rusqlite::Error) -> EngineError {
    let (message, transient) = super::error_message(e);
    EngineError::Target { message, transient }
}

fn write(
    path: &Path,
    spec: &ConnectSpec,
    mut ctx: SinkContext,
    runtime: &Handle,
) -> Result<u64, EngineError> {
    let existed = path.exists();
    let conn = super::open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        spec,
    )
    .map_err(|e| {
        target_message(&format!(
            "{}: {}",
            path.display(),
            super::error_message(&e).0
        ))
    })?;
    // A larger page cache (for this connection only) spills less often in a big transaction;
    // 16 MiB: the table is appended to in order, and a bigger cache only adds to the RSS
    // (64 MiB took the service past 150 MB in bench/RESULTS.md).
    let loaded = conn
        .busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.execute_batch("PRAGMA cache_size = -16384"))
        .map_err(|e| target_error(&e))
        .and_then(|()| load(&conn, &mut ctx, runtime, spec.timeouts.io));
    if loaded.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let result = match loaded {
        Ok(Committed::Yes { rows, token }) => {
            forget_commit(&conn, &token);
            Ok(rows)
        }
        // The transaction is still open (the file was busy): it did not commit.
        Ok(Committed::Unknown { error, .. }) if !conn.is_autocommit() => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(target_error(&error))
        }
        Ok(Committed::Unknown { rows, token, error }) => {
            drop(conn);
            // A fresh connection sees the file as it is after the failed COMMIT (a hot
            // journal rolled back), and the bookkeeping row tells whether it committed.
            let conn = super::open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, spec);
            let committed = conn.as_ref().ok().and_then(|c| {
                c.busy_timeout(BUSY_TIMEOUT).ok()?;
                let found: i64 = c
                    .query_row(
                        &format!("SELECT count(*) FROM \"main\".{COMMITS} WHERE token = ?1"),
                        [&token],
                        |row| row.get(0),
                    )
                    .ok()?;
                Some(found > 0)
            });
            match (committed, conn) {
                (Some(true), Ok(c)) => {
                    tracing::info!("The COMMIT failed yet committed; the transfer is complete.");
                    forget_commit(&c, &token);
                    Ok(rows)
                }
                (Some(false), _) => Err(target_error(&error)),
                _ => Err(EngineError::CommitUnknown(format!(
                    "COMMIT failed ({}) and whether it committed could not be read back from \
                     {}; check the target table before running the transfer again",
                    super::error_message(&error).0,
                    path.display()
                ))),
            }
        }
        Err(e) => Err(e),
    };
    if result.is_err() && !existed {
        remove_created_file(path);
    }
    result
}

/// The bookkeeping table of a transfer's commit, in the target file: a row keyed by a token
/// of the transfer's own is written in the same transaction as its rows, so that a COMMIT that
/// fails can be told apart from one that failed to say it succeeded. Dropped again when empty.
const COMMITS: &str = "\"_sluice_commits\"";

/// How a transfer's transaction ended.
enum Committed {
    Yes {
        rows: u64,
        token: String,
    },
    /// COMMIT returned an error: whether it committed is read back by the bookkeeping row.
    Unknown {
        rows: u64,
        token: String,
        error: rusqlite::Error,
    },
}

/// Remove a committed transfer's bookkeeping row (and the table once empty). Best effort: a
/// row left behind is harmless.
fn forget_commit(conn: &Connection, token: &str) {
    let done = conn
        .execute_batch("BEGIN IMMEDIATE")
        .and_then(|()| {
            conn.execute(
                &format!("DELETE FROM \"main\".{COMMITS} WHERE token = ?1"),
                [token],
            )
        })
        .and_then(|_| {
            conn.query_row(
                &format!("SELECT count(*) FROM \"main\".{COMMITS}"),
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .and_then(|left| {
            if left == 0 {
                conn.execute_batch(&format!("DROP TABLE \"main\".{COMMITS}"))
            } else {
                Ok(())
            }
        })
        .and_then(|()| conn.execute_batch("COMMIT"));
    if let Err(e) = done {
        tracing::warn!(error = %e, "Could not remove a commit's bookkeeping row.");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

/// `BEGIN IMMEDIATE`: the file's write lock, which serialises the transfers into one file
/// (each then sees the tables as the one before left them). Waits while another writer holds
/// it, up to the I/O timeout, unless cancelled.
fn begin(
    conn: &Connection,
    cancel: &CancellationToken,
    limit: Duration,
) -> Result<(), EngineError> {
    let started = Instant::now();
    loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(e) => {
                let busy = matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                );
                if !busy || started.elapsed() >= limit {
                    return Err(target_error(&e));
                }
                if cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
            }
        }
    }
}

/// The file did not exist before this transfer: take it away again (with its journal).
fn remove_created_file(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
}

/// The target as it is now.
enum Existing {
    Missing,
    Table {
        /// (name, declared type) of each column.
        columns: Vec<(String, String)>,
    },
}

fn existing(conn: &Connection, table: &str) -> Result<Existing, EngineError> {
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM main.sqlite_schema WHERE name = ?1 COLLATE NOCASE
             AND type IN ('table', 'view') LIMIT 1",
            [table],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(target_error(&e)),
        })?;
    match kind.as_deref() {
        None => Ok(Existing::Missing),
        Some("view") => Err(EngineError::Schema(format!(
            "the target {table:?} is a view, not a table"
        ))),
        Some(_) => {
            let mut stmt = conn
                .prepare("SELECT name, type FROM pragma_table_info(?1, 'main') ORDER BY cid")
                .map_err(|e| target_error(&e))?;
            let columns = stmt
                .query_map([table], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| target_error(&e))?
                .collect::<Result<Vec<(String, String)>, _>>()
                .map_err(|e| target_error(&e))?;
            Ok(Existing::Table { columns })
        }
    }
}

/// A staging table name next to `table`, unused so far.
fn staging_name(table: &str) -> String {
    format!("{table}__sluice_{:08x}", rand::random::<u32>())
}

fn load(
    conn: &Connection,
    ctx: &mut SinkContext,
    runtime: &Handle,
    limit: Duration,
) -> Result<Committed, EngineError> {
    begin(conn, &ctx.cancel, limit)?;
    let table = ctx.target.table()?.table.clone();
    let (insert_table, affinities, swap) = destination(conn, ctx, &table)?;
    let written = insert_all(conn, ctx, runtime, &insert_table, affinities)?;
    if swap {
        swap_in(conn, &table, &insert_table)?;
    }
    commit(conn, ctx, &table, written)
}

/// Where rows go (the table, or a staging table that replaces it), the affinity of each
/// target column in result column order, and whether a staging table is to be swapped in.
fn destination(
    conn: &Connection,
    ctx: &SinkContext,
    table: &str,
) -> Result<(String, Vec<Affinity>, bool), EngineError> {
    let overwrite = ctx.target.table()?.overwrite;
    let table = table.to_string();
    Ok(match existing(conn, &table)? {
        Existing::Table { columns } if !overwrite => {
            let mut affinities = Vec::with_capacity(ctx.columns.len());
            for c in &ctx.columns {
                // SQLite compares column names without regard to ASCII case.
                let Some((_, declared)) = columns
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&c.name))
                else {
                    return Err(EngineError::Schema(format!(
                        "the target table {table:?} has no column {:?} (its columns: {})",
                        c.name,
                        columns
                            .iter()
                            .map(|(n, _)| format!("{n:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                affinities.push(Affinity::of(declared));
            }
            (table.clone(), affinities, false)
        }
        existing => {
            let swap = matches!(existing, Existing::Table { .. });
            let name = if swap {
                staging_name(&table)
            } else {
                table.clone()
            };
            conn.execute_batch(&dialect::create_table(&name, &ctx.columns)?)
                .map_err(|e| target_error(&e))?;
            let affinities = ctx
                .columns
                .iter()
                .map(|c| Affinity::of(&dialect::column_ddl(c).unwrap_or_default()))
                .collect();
            (name, affinities, swap)
        }
    })
}

/// Insert every batch the channel brings; returns the rows written.
fn insert_all(
    conn: &Connection,
    ctx: &mut SinkContext,
    runtime: &Handle,
    insert_table: &str,
    affinities: Vec<Affinity>,
) -> Result<u64, EngineError> {
    let names: Vec<&str> = ctx.columns.iter().map(|c| c.name.as_str()).collect();
    let mut insert = conn
        .prepare(&dialect::insert(insert_table, &names)?)
        .map_err(|e| target_error(&e))?;
    let binders: Vec<Binder> = ctx
        .columns
        .iter()
        .zip(affinities)
        .map(|(c, affinity)| Binder::new(c, affinity))
        .collect();

    let mut written: u64 = 0;
    loop {
        let message = runtime.block_on(async {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => None,
                message = ctx.rx.recv() => message,
            }
        });
        match message {
            Some(Message::Batch(batch)) => {
                write_batch(&mut insert, &binders, &batch, written)?;
                written += batch.num_rows() as u64;
                ctx.progress.add_written(batch.num_rows() as u64);
            }
            Some(Message::Copy(_)) => return Err(copy_not_offered()),
            Some(Message::End) => break,
            // The source failed or the transfer was cancelled: nothing is committed.
            None => return Err(EngineError::Cancelled),
        }
    }
    Ok(written)
}

/// Replace `table` with the filled staging table.
fn swap_in(conn: &Connection, table: &str, staging: &str) -> Result<(), EngineError> {
    // Legacy renaming leaves views and triggers that name the table alone (they then see
    // the new table); modern renaming would refuse while the old table is gone.
    conn.execute_batch(&format!(
        "PRAGMA legacy_alter_table = ON;
         DROP TABLE \"main\".{old};
         ALTER TABLE \"main\".{staging} RENAME TO {old};
         PRAGMA legacy_alter_table = OFF;",
        old = quote_ident(table)?,
        staging = quote_ident(staging)?,
    ))
    .map_err(|e| target_error(&e))
}

/// Record the commit marker, then commit (see `Committed`).
fn commit(
    conn: &Connection,
    ctx: &SinkContext,
    table: &str,
    written: u64,
) -> Result<Committed, EngineError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"main\".{COMMITS} \
         (token TEXT PRIMARY KEY, target_table TEXT NOT NULL, committed_at TEXT NOT NULL)"
    ))
    .and_then(|()| {
        conn.execute(
            &format!(
                "INSERT INTO \"main\".{COMMITS} VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ'))"
            ),
            [token.as_str(), table],
        )
    })
    .map_err(|e| target_error(&e))?;
    if ctx.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    Ok(match conn.execute_batch("COMMIT") {
        Ok(()) => Committed::Yes {
            rows: written,
            token,
        },
        Err(error) => Committed::Unknown {
            rows: written,
            token,
            error,
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Binding values.

/// How one source column is bound into its target column.
struct Binder {
    name: String,
    ty: LogicalType,
    affinity: Affinity,
}

impl Binder {
    fn new(column: &Column, affinity: Affinity) -> Self {
        Self {
            name: column.name.clone(),
            ty: column.ty.clone(),
            affinity,
        }
    }
}

fn write_batch(
    insert: &mut Statement<'_>,
    binders: &[Binder],
    batch: &RecordBatch,
    rows_before: u64,
) -> Result<(), EngineError> {
    if batch.num_columns() != binders.len() {
        return Err(EngineError::Internal(format!(
            "a batch has {} columns, the transfer {}",
            batch.num_columns(),
            binders.len()
        )));
    }
    for (i, binder) in binders.iter().enumerate() {
        let expected = binder.ty.arrow_type();
        if batch.column(i).data_type() != &expected {
            return Err(EngineError::Internal(format!(
                "column {:?} arrives as {}, not {expected}",
                binder.name,
                batch.column(i).data_type()
            )));
        }
    }
    let mut text = TextBuf::default();
    let mut scratch = String::new();
    for row in 0..batch.num_rows() {
        let row_no = rows_before + row as u64 + 1;
        for (i, binder) in binders.iter().enumerate() {
            let array = batch.column(i);
            let value = if array.is_null(row) {
                ToSqlOutput::Borrowed(ValueRef::Null)
            } else {
                value_of(binder, array.as_ref(), row, &mut text, &mut scratch).map_err(
                    |message| EngineError::Value {
                        column: binder.name.clone(),
                        row: row_no,
                        message,
                    },
                )?
            };
            insert
                .raw_bind_parameter(i + 1, value)
                .map_err(|e| target_error(&e))?;
        }
        insert.raw_execute().map_err(|e| {
            let (message, transient) = super::error_message(&e);
            EngineError::Target {
                message: format!("{message} (at row {row_no})"),
                transient,
            }
        })?;
    }
    Ok(())
}

fn integer<'a>(i: i64) -> ToSqlOutput<'a> {
    ToSqlOutput::Borrowed(ValueRef::Integer(i))
}

fn real<'a>(f: f64) -> ToSqlOutput<'a> {
    ToSqlOutput::Borrowed(ValueRef::Real(f))
}

fn text(t: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(t))
}

/// The value to bind for row `row` of `array`, which is not NULL.
fn value_of<'a>(
    binder: &Binder,
    array: &'a dyn Array,
    row: usize,
    buf: &'a mut TextBuf,
    scratch: &'a mut String,
) -> Result<ToSqlOutput<'a>, String> {
    let affinity = binder.affinity;
    buf.clear();
    Ok(match &binder.ty {
        LogicalType::Boolean => integer(array.as_boolean().value(row) as i64),
        LogicalType::Int16 => integer(array.as_primitive::<Int16Type>().value(row) as i64),
        LogicalType::Int32 => integer(array.as_primitive::<Int32Type>().value(row) as i64),
        LogicalType::Int64 => {
            let i = array.as_primitive::<Int64Type>().value(row);
            if affinity == Affinity::Real && values::exact_f64(i).is_none() {
                return Err(format!(
                    "{i} cannot be stored exactly in a REAL column (more than 53 bits)"
                ));
            }
            integer(i)
        }
        LogicalType::UInt64 => {
            let u = array.as_primitive::<UInt64Type>().value(row);
            buf.push_u64(u);
            return exact_number(buf.as_str(), affinity, scratch);
        }
        LogicalType::Float32 => float(
            array.as_primitive::<Float32Type>().value(row) as f64,
            affinity,
            scratch,
        )?,
        LogicalType::Float64 => float(
            array.as_primitive::<Float64Type>().value(row),
            affinity,
            scratch,
        )?,
        LogicalType::Decimal { .. } => {
            let decimals = array.as_primitive::<Decimal128Type>();
            buf.push_decimal(decimals.value(row), decimals.scale());
            return exact_number(buf.as_str(), affinity, scratch);
        }
        LogicalType::BigDecimal { .. } => {
            let t = array.as_string::<i32>().value(row);
            return exact_number(t, affinity, scratch);
        }
        LogicalType::Binary { .. } | LogicalType::PgRaw { .. } => {
            ToSqlOutput::Borrowed(ValueRef::Blob(array.as_binary::<i32>().value(row)))
        }
        LogicalType::Date => {
            buf.push_date(array.as_primitive::<Date32Type>().value(row))?;
            text(buf.as_bytes())
        }
        LogicalType::Time => {
            buf.push_time(array.as_primitive::<Time64MicrosecondType>().value(row))?;
            text(buf.as_bytes())
        }
        LogicalType::Timestamp => {
            buf.push_timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))?;
            text(buf.as_bytes())
        }
        LogicalType::TimestampTz => {
            buf.push_timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))?;
            buf.push_str("+00:00");
            text(buf.as_bytes())
        }
        LogicalType::Uuid => {
            let bytes = array.as_fixed_size_binary().value(row);
            let uuid = uuid::Uuid::from_slice(bytes).map_err(|e| format!("UUID: {e}"))?;
            let mut encoded = [0u8; uuid::fmt::Hyphenated::LENGTH];
            buf.push_str(uuid.hyphenated().encode_lower(&mut encoded));
            text(buf.as_bytes())
        }
        LogicalType::Text { .. }
        | LogicalType::Json
        | LogicalType::Array { .. }
        | LogicalType::Interval
        | LogicalType::Other { .. } => {
            let t = array.as_string::<i32>().value(row);
            match check_text_affinity(t.as_bytes(), affinity)? {
                Some(i) => integer(i),
                None => text(t.as_bytes()),
            }
        }
    })
}

/// A float as SQLite stores it exactly: REAL, or its shortest exact text in a TEXT column.
fn float(f: f64, affinity: Affinity, scratch: &mut String) -> Result<ToSqlOutput<'_>, String> {
    if f.is_nan() {
        return Err("NaN cannot be stored in SQLite (it would become NULL)".into());
    }
    // -0.0 equals 0.0 (IEEE 754), and 0 is what SQLite keeps of it: no value is lost.
    let f = if f == 0.0 { 0.0 } else { f };
    Ok(if affinity == Affinity::Text {
        values::write_f64(scratch, f);
        text(scratch.as_bytes())
    } else {
        real(f)
    })
}

/// Exact decimal text: as text, except into a column whose affinity would turn it into a
/// number; there it is bound as the INTEGER or REAL that is exactly the same value, or refused.
fn exact_number<'a>(
    t: &'a str,
    affinity: Affinity,
    scratch: &mut String,
) -> Result<ToSqlOutput<'a>, String> {
    if !affinity.is_numeric() {
        return Ok(text(t.as_bytes()));
    }
    let refuse = || {
        format!(
            "{} cannot be stored exactly in a column with {affinity:?} affinity (SQLite would round it); declare the column TEXT",
            values::clip(t)
        )
    };
    let Some(number) = parse_decimal(t.as_bytes()) else {
        // NaN and ±Infinity.
        return match t {
            "Infinity" if affinity != Affinity::Integer => Ok(real(f64::INFINITY)),
            "-Infinity" if affinity != Affinity::Integer => Ok(real(f64::NEG_INFINITY)),
            _ => Err(refuse()),
        };
    };
    if affinity != Affinity::Real {
        if let Some(i) = number.to_i64() {
            return Ok(integer(i));
        }
    }
    let f: f64 = t.parse().map_err(|_| refuse())?;
    values::write_f64(scratch, f);
    match parse_decimal(scratch.as_bytes()) {
        // (+ 0.0 turns -0.0 into 0.0: the decimal zero has no sign to keep.)
        Some(back) if f.is_finite() && back.same_value(&number) => Ok(real(f + 0.0)),
        _ => Err(refuse()),
    }
}
