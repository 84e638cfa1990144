//! The SQLite source: the query runs on a blocking thread over a read-only connection; rows are
//! built into Arrow batches there and handed to the async channel.
//!
//! Column types come from the declared types of the result columns (see `dialect`); a column
//! without one (an expression) takes the storage class of its value in the first row. Every
//! value is converted exactly or the transfer fails with `EngineError::Value` naming the column
//! and row. Opening the source prepares the query and steps to the first row (needed to type
//! expression columns); the worker then waits for `run`.

use std::ffi::{CStr, CString};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, InterruptHandle};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::dialect;
use super::values::{self, clip, parse_decimal, write_f64, TextBuf};
use crate::engine::arrays::ArrayBuilder;
use crate::engine::batch::{SourceContext, MAX_BATCH_BYTES};
use crate::engine::types::{arrow_schema, Column, LogicalType};
use crate::engine::{Carrier, ConnectSpec, EngineError, SourceReader};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

/// Check the cancellation token every this many rows (a long single step is interrupted).
const CANCEL_CHECK_ROWS: u64 = 256;

pub struct SqliteSource {
    columns: Vec<Column>,
    go: oneshot::Sender<(SourceContext, Vec<Column>)>,
    worker: JoinHandle<Result<(), EngineError>>,
    interrupt: InterruptHandle,
}

/// Interrupts the query when dropped before `disarm` (the open was abandoned).
struct InterruptOnDrop(Option<InterruptHandle>);

impl InterruptOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.interrupt();
        }
    }
}

pub async fn open(
    spec: &ConnectSpec,
    query: &str,
    _carrier: Carrier,
) -> Result<SqliteSource, EngineError> {
    if query.contains('\0') {
        return Err(source_message("the query contains a NUL character"));
    }
    let spec = spec.clone();
    let conn = tokio::task::spawn_blocking(move || super::open_existing(&spec))
        .await
        .map_err(|e| EngineError::Internal(format!("SQLite worker failed: {e}")))??;
    let guard = InterruptOnDrop(Some(conn.get_interrupt_handle()));
    let interrupt = conn.get_interrupt_handle();
    let (described_tx, described_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let runtime = Handle::current();
    let query = query.to_owned();
    let worker =
        tokio::task::spawn_blocking(move || read(conn, &query, described_tx, go_rx, runtime));
    match described_rx.await {
        Ok(columns) => {
            guard.disarm();
            Ok(SqliteSource {
                columns,
                go: go_tx,
                worker,
                interrupt,
            })
        }
        Err(_) => {
            guard.disarm();
            // The worker stopped before describing the result: its error says why.
            match worker.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(EngineError::Internal(
                    "the SQLite reader stopped before describing the query".into(),
                )),
                Err(e) => Err(EngineError::Internal(format!("SQLite worker failed: {e}"))),
            }
        }
    }
}

impl SourceReader for SqliteSource {
    fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Read the result into `columns` rather than the types this source inferred (a
    /// partition's first row may type an expression column differently from the whole
    /// query's); each value is converted exactly or the transfer fails naming it.
    fn set_columns(&mut self, columns: Vec<Column>) {
        self.columns = columns;
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), EngineError>> {
        (*self).stream(ctx).boxed()
    }
}

impl SqliteSource {
    async fn stream(self, ctx: SourceContext) -> Result<(), EngineError> {
        // A step that runs long (a big sort, a huge join) is stopped by interrupting it.
        let finished = CancellationToken::new();
        let watcher = tokio::spawn({
            let cancel = ctx.cancel.clone();
            let finished = finished.clone();
            let interrupt = self.interrupt;
            async move {
                tokio::select! {
                    _ = cancel.cancelled() => interrupt.interrupt(),
                    _ = finished.cancelled() => {}
                }
            }
        });
        let _ = self.go.send((ctx, self.columns));
        let result = self
            .worker
            .await
            .unwrap_or_else(|e| Err(EngineError::Internal(format!("SQLite worker failed: {e}"))));
        finished.cancel();
        let _ = watcher.await;
        // (The worker itself reports an interrupted query as `Cancelled`; any other error is
        // the cause, even when the sink has meanwhile stopped because the channel closed.)
        result
    }
}

fn source_message(message: &str) -> EngineError {
    EngineError::Source {
        message: message.into(),
        transient: false,
    }
}

use super::source_error;

/// The worker: prepare, describe, wait for `run`, stream.
fn read(
    conn: Connection,
    query: &str,
    described: oneshot::Sender<Vec<Column>>,
    go: oneshot::Receiver<(SourceContext, Vec<Column>)>,
    runtime: Handle,
) -> Result<(), EngineError> {
    let mut stmt = conn.prepare(query).map_err(|e| source_error(&e))?;
    if stmt.column_count() == 0 {
        // Empty, or a statement without a result: nothing to describe (the pipeline refuses
        // a result without columns), and nothing is run.
        let _ = described.send(Vec::new());
        return Ok(());
    }
    let declared = declared_types(&conn, query)?;
    if stmt.parameter_count() > 0 {
        return Err(source_message(
            "the query has parameters (?, :name); a transfer query takes none",
        ));
    }
    if !stmt.readonly() {
        return Err(source_message(
            "the query would change the database; a transfer reads with SELECT, WITH or VALUES",
        ));
    }
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let count = names.len();
    let mut rows = stmt.raw_query();
    let first: Option<Vec<Value>> = rows
        .next()
        .map_err(|e| source_error(&e))?
        .map(|row| (0..count).map(|i| row.get_ref_unwrap(i).into()).collect());

    let columns: Vec<Column> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let decl = declared.get(i).cloned().flatten().unwrap_or_default();
            let first_value = first.as_ref().map(|v| ValueRef::from(&v[i]));
            let (ty, db_type) = match dialect::logical_type(&decl) {
                Some(ty) => (ty, decl),
                None => {
                    let (ty, class) = infer(first_value.unwrap_or(ValueRef::Null));
                    (ty, if decl.is_empty() { class.into() } else { decl })
                }
            };
            Column {
                name,
                ty,
                nullable: true,
                db_type,
                native: None,
            }
        })
        .collect();

    if described.send(columns).is_err() {
        return Ok(()); // the open was abandoned
    }
    let Ok((ctx, columns)) = go.blocking_recv() else {
        return Ok(()); // the source was dropped without running
    };

    let schema = arrow_schema(&columns);
    let mut batch = BatchBuilder::new(&columns, ctx.batch_rows)?;
    let mut row_no: u64 = 0;
    if let Some(values) = &first {
        row_no = 1;
        batch.append(|i| ValueRef::from(&values[i]), row_no)?;
    }
    drop(first);
    loop {
        if batch.rows >= ctx.batch_rows || batch.bytes >= MAX_BATCH_BYTES {
            send(&runtime, &ctx, &schema, &mut batch)?;
        }
        if row_no % CANCEL_CHECK_ROWS == 0 && ctx.cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        match rows.next() {
            Ok(Some(row)) => {
                row_no += 1;
                batch.append(|i| row.get_ref_unwrap(i), row_no)?;
            }
            Ok(None) => break,
            Err(_) if ctx.cancel.is_cancelled() => return Err(EngineError::Cancelled),
            Err(e) => return Err(source_error(&e)),
        }
    }
    if batch.rows > 0 {
        send(&runtime, &ctx, &schema, &mut batch)?;
    }
    // Release the read lock before the sink commits (it may write to the same file).
    drop(rows);
    drop(stmt);
    drop(conn);
    runtime.block_on(ctx.finish())
}

fn send(
    runtime: &Handle,
    ctx: &SourceContext,
    schema: &SchemaRef,
    batch: &mut BatchBuilder,
) -> Result<(), EngineError> {
    let bytes = batch.bytes as u64;
    let record = batch.finish(schema)?;
    runtime.block_on(ctx.send(record, bytes))
}

/// The declared type of each result column (`None` for expressions), and a check that the
/// query is a single statement. Uses the C API because rusqlite's `Statement::columns()` needs
/// its `column_decltype` feature.
fn declared_types(conn: &Connection, query: &str) -> Result<Vec<Option<String>>, EngineError> {
    use rusqlite::ffi;
    let sql = CString::new(query).map_err(|_| source_message("the query contains NUL"))?;
    let mut declared = Vec::new();
    let mut more_statements = false;
    // SAFETY: `db` is the open handle of `conn`, used on this thread only while `conn` lives;
    // each statement prepared here is finalized before returning, and the declared-type
    // strings are copied while their statement lives. `tail` points into `sql`.
    unsafe {
        let db = conn.handle();
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const std::os::raw::c_char = std::ptr::null();
        if ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, &mut tail) != ffi::SQLITE_OK {
            ffi::sqlite3_finalize(stmt);
            return Ok(declared); // rusqlite's prepare succeeded; nothing more to learn
        }
        for i in 0..ffi::sqlite3_column_count(stmt) {
            let p = ffi::sqlite3_column_decltype(stmt, i);
            declared.push((!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned()));
        }
        ffi::sqlite3_finalize(stmt);
        if !tail.is_null() && *tail != 0 {
            // Only white space and comments may follow; those prepare to no statement.
            let mut next: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
            let rc = ffi::sqlite3_prepare_v2(db, tail, -1, &mut next, std::ptr::null_mut());
            more_statements = rc != ffi::SQLITE_OK || !next.is_null();
            ffi::sqlite3_finalize(next);
        }
    }
    if more_statements {
        return Err(source_message(
            "the query holds more than one statement; a transfer runs exactly one",
        ));
    }
    Ok(declared)
}

/// The logical type of an expression column from its first value, and the storage class.
fn infer(value: ValueRef<'_>) -> (LogicalType, &'static str) {
    match value {
        ValueRef::Integer(_) => (LogicalType::Int64, "INTEGER"),
        ValueRef::Real(_) => (LogicalType::Float64, "REAL"),
        ValueRef::Blob(_) => (LogicalType::Binary { max_len: None }, "BLOB"),
        ValueRef::Text(_) | ValueRef::Null => (
            LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            "TEXT",
        ),
    }
}

fn class(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an INTEGER",
        ValueRef::Real(_) => "a REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "a BLOB",
    }
}

// ---------------------------------------------------------------------------------------------
// Building batches.

struct BatchBuilder {
    columns: Vec<(String, ColumnBuilder)>,
    rows: usize,
    bytes: usize,
    scratch: Scratch,
}

/// Reusable text buffers for conversions.
#[derive(Default)]
struct Scratch {
    a: String,
    b: String,
}

/// How a column's SQLite values are read: each storage class is taken only where it converts
/// exactly to the column's type.
#[derive(Clone, Copy)]
enum Parse {
    Boolean,
    Integer,
    Real,
    Decimal(u8, i8),
    BigDecimal,
    Text,
    Json,
    Binary,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
}

impl Parse {
    fn of(ty: &LogicalType) -> Self {
        match ty {
            LogicalType::Boolean => Self::Boolean,
            LogicalType::Int16 | LogicalType::Int32 | LogicalType::Int64 => Self::Integer,
            LogicalType::Float32 | LogicalType::Float64 => Self::Real,
            LogicalType::Decimal { precision, scale } => Self::Decimal(*precision, *scale),
            LogicalType::BigDecimal { .. } | LogicalType::UInt64 => Self::BigDecimal,
            LogicalType::Json => Self::Json,
            LogicalType::Binary { .. } => Self::Binary,
            LogicalType::Date => Self::Date,
            LogicalType::Time => Self::Time,
            LogicalType::Timestamp => Self::Timestamp,
            LogicalType::TimestampTz => Self::TimestampTz,
            LogicalType::Uuid => Self::Uuid,
            _ => Self::Text,
        }
    }
}

/// One result column being read.
struct ColumnBuilder {
    parse: Parse,
    array: ArrayBuilder,
}

impl ColumnBuilder {
    fn new(ty: &LogicalType, rows: usize) -> Result<Self, EngineError> {
        let rows = rows.min(1 << 20);
        Ok(Self {
            parse: Parse::of(ty),
            array: ArrayBuilder::new(ty, rows, rows * 16)?,
        })
    }

    /// Append one value; the bytes it counts, or why it cannot be carried.
    fn push(&mut self, value: ValueRef<'_>, scratch: &mut Scratch) -> Result<usize, String> {
        if let ValueRef::Null = value {
            self.array.append_null();
            return Ok(0);
        }
        let size = match value {
            ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
            _ => 8,
        };
        match (self.parse, &mut self.array) {
            (Parse::Boolean, ArrayBuilder::Bool(b)) => match value {
                ValueRef::Integer(0) => b.append_value(false),
                ValueRef::Integer(1) => b.append_value(true),
                ValueRef::Integer(i) => {
                    return Err(format!("boolean column holds {i}, not 0 or 1"))
                }
                other => return wrong(&other, "an INTEGER 0 or 1"),
            },
            (Parse::Integer, ArrayBuilder::I64(b)) => match value {
                ValueRef::Integer(i) => b.append_value(i),
                ValueRef::Real(f) => match values::exact_i64(f) {
                    Some(i) => b.append_value(i),
                    None => return Err(format!("holds the REAL {f}, which is not a whole number")),
                },
                other => return wrong(&other, "an INTEGER"),
            },
            (Parse::Real, ArrayBuilder::F64(b)) => match value {
                ValueRef::Real(f) => b.append_value(f),
                ValueRef::Integer(i) => match values::exact_f64(i) {
                    Some(f) => b.append_value(f),
                    None => {
                        return Err(format!(
                            "holds the INTEGER {i}, which a REAL cannot hold exactly"
                        ))
                    }
                },
                other => return wrong(&other, "a REAL"),
            },
            (Parse::Decimal(precision, scale), ArrayBuilder::Decimal(b)) => {
                b.append_value(decimal(value, precision, scale, scratch)?)
            }
            (Parse::BigDecimal, ArrayBuilder::Text(b)) => match value {
                ValueRef::Integer(i) => {
                    let mut t = TextBuf::default();
                    push_i64(&mut t, i);
                    b.append_value(t.as_str());
                }
                ValueRef::Real(f) => {
                    write_f64(&mut scratch.a, f);
                    values::normalize_big_decimal(&scratch.a, &mut scratch.b)?;
                    b.append_value(&scratch.b);
                }
                ValueRef::Text(t) => {
                    values::normalize_big_decimal(utf8(t)?, &mut scratch.b)?;
                    b.append_value(&scratch.b);
                }
                other => return wrong(&other, "a number"),
            },
            (Parse::Text, ArrayBuilder::Text(b)) => match value {
                ValueRef::Text(t) => b.append_value(utf8(t)?),
                ValueRef::Integer(i) => {
                    let mut t = TextBuf::default();
                    push_i64(&mut t, i);
                    b.append_value(t.as_str());
                }
                ValueRef::Real(f) => {
                    write_f64(&mut scratch.a, f);
                    b.append_value(&scratch.a);
                }
                other => return wrong(&other, "TEXT"),
            },
            (Parse::Json, ArrayBuilder::Text(b)) => match value {
                ValueRef::Text(t) => {
                    let text = utf8(t)?;
                    serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .map_err(|e| format!("is not valid JSON: {e}"))?;
                    b.append_value(text);
                }
                ValueRef::Integer(i) => {
                    let mut t = TextBuf::default();
                    push_i64(&mut t, i);
                    b.append_value(t.as_str());
                }
                ValueRef::Real(f) if f.is_finite() => {
                    write_f64(&mut scratch.a, f);
                    b.append_value(&scratch.a);
                }
                other => return wrong(&other, "JSON text"),
            },
            (Parse::Binary, ArrayBuilder::Binary(b)) => match value {
                ValueRef::Blob(v) | ValueRef::Text(v) => b.append_value(v),
                other => return wrong(&other, "a BLOB"),
            },
            (Parse::Date, ArrayBuilder::Date(b)) => match value {
                ValueRef::Text(t) => {
                    b.append_value(values::parse_date(utf8(t)?).map_err(|m| text_error(t, &m))?)
                }
                other => return wrong(
                    &other,
                    "date text (YYYY-MM-DD); convert it in the query, e.g. date(x, 'unixepoch')",
                ),
            },
            (Parse::Time, ArrayBuilder::Time(b)) => match value {
                ValueRef::Text(t) => {
                    b.append_value(values::parse_time(utf8(t)?).map_err(|m| text_error(t, &m))?)
                }
                other => return wrong(&other, "time text (HH:MM:SS)"),
            },
            (Parse::Timestamp, ArrayBuilder::Timestamp(b)) => b.append_value(timestamp(value)?),
            (Parse::TimestampTz, ArrayBuilder::Timestamp(b)) => {
                b.append_value(timestamp_tz(value)?)
            }
            (Parse::Uuid, ArrayBuilder::Uuid(b)) => b
                .append_value(uuid(value)?.as_bytes())
                .map_err(|e| format!("UUID: {e}"))?,
            _ => return Err("internal: the column's reader and array disagree".into()),
        }
        Ok(size)
    }
}

fn wrong<T>(value: &ValueRef<'_>, what: &str) -> Result<T, String> {
    Err(format!("holds {} where {what} was expected", class(value)))
}

/// A number (or its text) scaled to `numeric(precision, scale)`.
fn decimal(
    value: ValueRef<'_>,
    precision: u8,
    scale: i8,
    scratch: &mut Scratch,
) -> Result<i128, String> {
    Ok(match value {
        ValueRef::Integer(i) => (i as i128)
            .checked_mul(10i128.pow(scale as u32))
            .filter(|v| v.unsigned_abs() < 10u128.pow(precision as u32))
            .ok_or_else(|| format!("{i} does not fit numeric({precision},{scale})"))?,
        ValueRef::Real(f) => {
            write_f64(&mut scratch.a, f);
            decimal_text(scratch.a.as_bytes())?
                .to_scaled(precision, scale)
                .map_err(|m| format!("{} {m}", scratch.a))?
        }
        ValueRef::Text(t) => decimal_text(t)?
            .to_scaled(precision, scale)
            .map_err(|m| format!("{:?} {m}", clip(&String::from_utf8_lossy(t))))?,
        other => return wrong(&other, "a number"),
    })
}

/// Timestamp text without an offset, as µs since 1970.
fn timestamp(value: ValueRef<'_>) -> Result<i64, String> {
    let ValueRef::Text(t) = value else {
        return wrong(&value, "timestamp text (YYYY-MM-DD HH:MM:SS); convert it in the query, e.g. datetime(x, 'unixepoch')");
    };
    let (micros, offset) = values::parse_timestamp(utf8(t)?).map_err(|m| text_error(t, &m))?;
    if offset.is_some() {
        return Err(text_error(
            t,
            "has a UTC offset, but the column is a timestamp without time zone (declare it TIMESTAMPTZ, or convert it in the query, e.g. datetime(x))",
        ));
    }
    Ok(micros)
}

/// Timestamp text as µs since 1970 UTC; without an offset the time is taken as UTC, as
/// SQLite's functions do.
fn timestamp_tz(value: ValueRef<'_>) -> Result<i64, String> {
    let ValueRef::Text(t) = value else {
        return wrong(&value, "timestamp text with an offset");
    };
    let (micros, offset) = values::parse_timestamp(utf8(t)?).map_err(|m| text_error(t, &m))?;
    micros
        .checked_sub(offset.unwrap_or(0) * 1_000_000)
        .ok_or_else(|| text_error(t, "is out of range"))
}

/// A UUID as text or as its 16 bytes.
fn uuid(value: ValueRef<'_>) -> Result<uuid::Uuid, String> {
    match value {
        ValueRef::Text(t) => {
            uuid::Uuid::try_parse_ascii(t).map_err(|_| text_error(t, "is not a UUID"))
        }
        ValueRef::Blob(v) => uuid::Uuid::from_slice(v)
            .map_err(|_| format!("holds a BLOB of {} bytes, not a 16-byte UUID", v.len())),
        other => wrong(&other, "a UUID"),
    }
}

fn push_i64(t: &mut TextBuf, i: i64) {
    if i < 0 {
        t.push_str("-");
    }
    t.push_u64(i.unsigned_abs());
}

fn utf8(t: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(t).map_err(|e| format!("holds text that is not valid UTF-8 ({e})"))
}

fn text_error(t: &[u8], message: &str) -> String {
    format!("{:?} {message}", clip(&String::from_utf8_lossy(t)))
}

fn decimal_text(t: &[u8]) -> Result<values::DecimalText<'_>, String> {
    parse_decimal(t).ok_or_else(|| text_error(t, "is not a decimal number"))
}

impl BatchBuilder {
    fn new(columns: &[Column], batch_rows: usize) -> Result<Self, EngineError> {
        Ok(Self {
            columns: columns
                .iter()
                .map(|c| Ok((c.name.clone(), ColumnBuilder::new(&c.ty, batch_rows)?)))
                .collect::<Result<_, EngineError>>()?,
            rows: 0,
            bytes: 0,
            scratch: Scratch::default(),
        })
    }

    fn append<'v>(
        &mut self,
        value: impl Fn(usize) -> ValueRef<'v>,
        row: u64,
    ) -> Result<(), EngineError> {
        for (i, (name, builder)) in self.columns.iter_mut().enumerate() {
            match builder.push(value(i), &mut self.scratch) {
                Ok(bytes) => self.bytes += bytes,
                Err(message) => {
                    return Err(EngineError::Value {
                        column: name.clone(),
                        row,
                        message,
                    })
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, EngineError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(_, b)| b.array.finish())
            .collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| EngineError::Internal(format!("building a batch: {e}")))
    }
}
