//! The MySQL/MariaDB source: a prepared statement described up front, then its result streamed
//! over the binary protocol (typed values, exact floats) into Arrow batches.

use std::collections::HashMap;
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Statement, Value};

use super::values::{days_from_civil, is_valid_date, parse_decimal, MICROS_PER_DAY};
use super::{connect, connect_with, dialect};
use crate::engine::arrays::ArrayBuilder;
use crate::engine::batch::{SourceContext, MAX_BATCH_BYTES};
use crate::engine::types::{arrow_schema, Column, Family, LogicalType, NativeType};
use crate::engine::{within, Carrier, ConnectSpec, EngineError, SourceReader, CANCEL_GRACE};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

/// Session settings of a reading connection: TIMESTAMP values arrive as UTC.
const SOURCE_SETUP: &[&str] = &["SET time_zone = '+00:00'"];

pub struct MySource {
    columns: Vec<Column>,
    spec: ConnectSpec,
    conn: Conn,
    stmt: Statement,
}

use super::source_error;

/// Connect and prepare `query`: the server describes its columns without running it.
pub async fn open(
    spec: &ConnectSpec,
    query: &str,
    _carrier: Carrier,
) -> Result<MySource, EngineError> {
    let mut conn = connect_with(spec, SOURCE_SETUP).await?;
    let io = spec.timeouts.io;
    let stmt = within(io, "source", async {
        conn.prep(query).await.map_err(|e| source_error(&e))
    })
    .await?;
    if stmt.num_params() > 0 {
        return Err(EngineError::Source {
            message: format!(
                "the query has {} parameter placeholder(s) (?); a transfer query takes none",
                stmt.num_params()
            ),
            transient: false,
        });
    }
    let meta = stmt.columns();
    let declared = within(io, "source", async {
        Ok(declared_columns(&mut conn, &meta).await)
    })
    .await?;
    let columns = meta
        .iter()
        .zip(declared)
        .map(|(c, declared)| {
            let (ty, db_type) = dialect::source_type(c, declared.json);
            Column {
                name: c.name_str().into_owned(),
                ty,
                // Only a NOT NULL table column promises no NULL.
                nullable: !c.flags().contains(ColumnFlags::NOT_NULL_FLAG)
                    || c.org_table_ref().is_empty(),
                db_type,
                native: declared.column_type.map(|ddl| NativeType {
                    family: Family::MySql,
                    ddl,
                    user_defined: false,
                }),
            }
        })
        .collect();
    Ok(MySource {
        columns,
        spec: spec.clone(),
        conn,
        stmt,
    })
}

/// What the catalog declares of a result column that comes from a table (or view) column.
#[derive(Debug, Default)]
struct Declared {
    /// `COLUMN_TYPE`, exactly (`int(10) unsigned`, `enum('a','b')`, `bit(25)`); `json` for a
    /// MariaDB JSON column.
    column_type: Option<String>,
    /// A MariaDB JSON column: longtext with the `json_valid` check MariaDB adds.
    json: bool,
}

/// The declared types of the result's table columns, from `information_schema` (one query
/// per table). Best effort: a column the catalog does not show (an expression, a table gone
/// meanwhile) has none, and is mapped from its logical type.
async fn declared_columns(conn: &mut Conn, meta: &[mysql_async::Column]) -> Vec<Declared> {
    let from_table = |c: &mysql_async::Column| {
        !c.org_table_ref().is_empty() && !c.org_name_ref().is_empty() && !c.schema_ref().is_empty()
    };
    let mut tables: Vec<(String, String)> = meta
        .iter()
        .filter(|c| from_table(c))
        .map(|c| (c.schema_str().into_owned(), c.org_table_str().into_owned()))
        .collect();
    tables.sort();
    tables.dedup();
    // (schema, table) → (column → type, json_valid clauses)
    type TableInfo = (HashMap<String, String>, Vec<String>);
    let mut catalog: HashMap<(String, String), TableInfo> = HashMap::new();
    for (schema, table) in tables {
        let types: Vec<(String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&schema, &table),
            )
            .await
            .unwrap_or_default();
        let checks: Vec<(String, String)> = conn
            .exec(
                "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
                 WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
                (&schema, &table),
            )
            .await
            .unwrap_or_default();
        let clauses = checks
            .into_iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, clause)| clause)
            .collect();
        catalog.insert((schema, table), (types.into_iter().collect(), clauses));
    }
    meta.iter()
        .map(|c| {
            if !from_table(c) {
                return Declared::default();
            }
            let key = (c.schema_str().into_owned(), c.org_table_str().into_owned());
            let Some((types, clauses)) = catalog.get(&key) else {
                return Declared::default();
            };
            let name = c.org_name_str();
            let text = matches!(
                c.column_type(),
                ColumnType::MYSQL_TYPE_BLOB | ColumnType::MYSQL_TYPE_LONG_BLOB
            ) && c.character_set() != 63;
            let json = text && clauses.contains(&format!("json_valid({})", dialect::quote(&name)));
            let column_type = if json {
                Some("json".to_string())
            } else {
                types.get(name.as_ref()).cloned()
            };
            Declared { column_type, json }
        })
        .collect()
}

impl SourceReader for MySource {
    fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Read the result into `columns` (each value is converted to its column's logical type
    /// exactly, or the transfer fails naming the column and row).
    fn set_columns(&mut self, columns: Vec<Column>) {
        self.columns = columns;
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), EngineError>> {
        (*self).stream(ctx).boxed()
    }
}

impl MySource {
    /// Stream every row into `ctx.tx`, then `End`.
    ///
    /// # Cancel safety
    /// On `ctx.cancel` (or when the sink has gone) the query is stopped on the server with
    /// `KILL QUERY` from a second connection, the reading connection is closed, and the result
    /// is `Cancelled`.
    async fn stream(self, ctx: SourceContext) -> Result<(), EngineError> {
        let MySource {
            columns,
            spec,
            mut conn,
            stmt,
        } = self;
        let id = conn.id();
        let mut state = ReadState::NotStarted;
        let io = spec.timeouts.io;
        let outcome = read(&mut conn, &stmt, &columns, &ctx, &mut state, io).await;
        match outcome {
            Ok(()) => {
                let _ = conn.disconnect().await;
                Ok(())
            }
            Err(e) => {
                if state == ReadState::Running {
                    // Whatever the link does, give up on the server's confirmation after the
                    // grace: the connection is dropped then.
                    let _ =
                        tokio::time::timeout(CANCEL_GRACE, stop_on_server(&spec, id, conn)).await;
                } else {
                    drop(conn);
                }
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    NotStarted,
    /// The query may be running on the server.
    Running,
    /// The server has ended the result (all rows read, or it reported an error).
    Ended,
}

async fn read(
    conn: &mut Conn,
    stmt: &Statement,
    columns: &[Column],
    ctx: &SourceContext,
    state: &mut ReadState,
    io: Duration,
) -> Result<(), EngineError> {
    *state = ReadState::Running;
    let stalled = || EngineError::Stalled {
        side: "source",
        waited: io,
    };
    let mut result = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
        r = tokio::time::timeout(io, conn.exec_iter(stmt, ())) => r.map_err(|_| stalled())?.map_err(|e| {
            if matches!(e, mysql_async::Error::Server(_)) {
                *state = ReadState::Ended;
            }
            source_error(&e)
        })?,
    };
    let schema = arrow_schema(columns);
    let capacity = ctx.batch_rows.min(8192);
    let mut builders: Vec<ColumnBuilder> = columns
        .iter()
        .map(|c| ColumnBuilder::new(&c.ty, capacity))
        .collect::<Result<_, _>>()?;
    let mut rows_in_batch = 0usize;
    let mut batch_bytes = 0usize;
    let mut row_number = 0u64;
    loop {
        let row = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
            r = tokio::time::timeout(io, result.next()) => r.map_err(|_| stalled())?.map_err(|e| {
                if matches!(e, mysql_async::Error::Server(_)) {
                    *state = ReadState::Ended;
                }
                source_error(&e)
            })?,
        };
        let Some(row) = row else {
            *state = ReadState::Ended;
            break;
        };
        row_number += 1;
        for ((value, builder), column) in row.unwrap().into_iter().zip(&mut builders).zip(columns) {
            batch_bytes += builder
                .push(value, column)
                .map_err(|message| EngineError::Value {
                    column: column.name.clone(),
                    row: row_number,
                    message,
                })?;
        }
        rows_in_batch += 1;
        if rows_in_batch >= ctx.batch_rows || batch_bytes >= MAX_BATCH_BYTES {
            let batch = finish_batch(&schema, &mut builders, columns)?;
            ctx.send(batch, batch_bytes as u64).await?;
            rows_in_batch = 0;
            batch_bytes = 0;
        }
    }
    if rows_in_batch > 0 {
        let batch = finish_batch(&schema, &mut builders, columns)?;
        ctx.send(batch, batch_bytes as u64).await?;
    }
    // A CALL may bring more result sets; only the first is transferred.
    let _ = result.drop_result().await;
    let _ = conn.close(stmt.clone()).await;
    ctx.finish().await
}

fn finish_batch(
    schema: &SchemaRef,
    builders: &mut [ColumnBuilder],
    columns: &[Column],
) -> Result<RecordBatch, EngineError> {
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(|b| b.array.finish()).collect();
    for (array, column) in arrays.iter().zip(columns) {
        if !column.nullable && array.null_count() > 0 {
            return Err(EngineError::Source {
                message: format!(
                    "column {:?} is declared NOT NULL but the server sent a NULL",
                    column.name
                ),
                transient: false,
            });
        }
    }
    RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| EngineError::Internal(format!("building a batch: {e}")))
}

/// Stop a query that may still be running: `KILL QUERY` from a second connection, close the
/// reading connection, and make sure it leaves the server's process list.
async fn stop_on_server(spec: &ConnectSpec, id: u32, conn: Conn) {
    let killer = connect(spec).await;
    let Ok(mut killer) = killer else {
        // Without a second connection, closing ours is all we can do.
        drop(conn);
        return;
    };
    let _ = killer.query_drop(format!("KILL QUERY {id}")).await;
    // Dropping reads what the server still sends (up to the "interrupted" error) and quits.
    drop(conn);
    for attempt in 0..100 {
        let present = killer
            .exec_first::<u64, _, _>(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                (id,),
            )
            .await;
        match present {
            Ok(Some(0)) | Err(_) => break,
            _ => {}
        }
        if attempt == 50 {
            // Still there after a second: end the connection itself.
            let _ = killer.query_drop(format!("KILL {id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = killer.disconnect().await;
}

/// One result column being read: its array, and for a decimal its scale and the bound its
/// unscaled values stay below (10^precision).
struct ColumnBuilder {
    array: ArrayBuilder,
    scale: u32,
    limit: i128,
}

impl ColumnBuilder {
    fn new(ty: &LogicalType, capacity: usize) -> Result<Self, EngineError> {
        if *ty == LogicalType::Uuid {
            return Err(EngineError::Internal(
                "the MySQL source has no uuid columns (MySQL has no uuid type)".into(),
            ));
        }
        let (scale, limit) = match ty {
            LogicalType::Decimal { precision, scale } => {
                (*scale as u32, 10i128.pow(u32::from(*precision)))
            }
            _ => (0, 0),
        };
        Ok(Self {
            array: ArrayBuilder::new(ty, capacity, capacity * 16)?,
            scale,
            limit,
        })
    }

    /// Append one value; returns about how many bytes it took. `Err` is a Value message.
    fn push(&mut self, value: Value, column: &Column) -> Result<usize, String> {
        if value == Value::NULL {
            self.array.append_null();
            return Ok(1);
        }
        self.push_value(value, column)
    }

    /// Append a non-NULL value; returns the bytes it takes in the batch.
    fn push_value(&mut self, value: Value, column: &Column) -> Result<usize, String> {
        let Self {
            array,
            scale,
            limit,
        } = self;
        match array {
            ArrayBuilder::Bool(b) => {
                b.append_value(boolean(&value, column)?);
                Ok(1)
            }
            ArrayBuilder::I16(b) => {
                b.append_value(narrow(integer(&value)?, column)?);
                Ok(2)
            }
            ArrayBuilder::I32(b) => {
                b.append_value(narrow(integer(&value)?, column)?);
                Ok(4)
            }
            ArrayBuilder::I64(b) => {
                b.append_value(narrow(integer(&value)?, column)?);
                Ok(8)
            }
            ArrayBuilder::U64(b) => {
                b.append_value(narrow(integer(&value)?, column)?);
                Ok(8)
            }
            ArrayBuilder::F32(b) => {
                b.append_value(float32(value)?);
                Ok(4)
            }
            ArrayBuilder::F64(b) => {
                b.append_value(float(&value)?);
                Ok(8)
            }
            ArrayBuilder::Decimal(b) => {
                let Value::Bytes(text) = &value else {
                    return Err(format!("unexpected decimal value {value:?}"));
                };
                let v = parse_decimal(text, *scale)
                    .filter(|v| v.unsigned_abs() < limit.unsigned_abs())
                    .ok_or_else(|| {
                        format!(
                            "{} does not fit {}",
                            String::from_utf8_lossy(text),
                            column.db_type
                        )
                    })?;
                b.append_value(v);
                Ok(16)
            }
            ArrayBuilder::Text(b) => match value {
                Value::Bytes(bytes) => {
                    let text = std::str::from_utf8(&bytes)
                        .map_err(|e| format!("the text is not valid UTF-8: {e}"))?;
                    b.append_value(text);
                    Ok(bytes.len() + 4)
                }
                other => {
                    let text = value_text(&other);
                    b.append_value(&text);
                    Ok(text.len() + 4)
                }
            },
            ArrayBuilder::Binary(b) => match value {
                Value::Bytes(bytes) => {
                    b.append_value(&bytes);
                    Ok(bytes.len() + 4)
                }
                other => Err(format!("unexpected binary value {other:?}")),
            },
            ArrayBuilder::Date(b) => {
                let Value::Date(y, m, d, ..) = value else {
                    return Err(format!("unexpected date value {value:?}"));
                };
                b.append_value(day_number(y, m, d)?);
                Ok(4)
            }
            ArrayBuilder::Time(b) => {
                b.append_value(time_micros(value)?);
                Ok(8)
            }
            ArrayBuilder::Timestamp(b) => {
                let Value::Date(y, mo, d, h, mi, s, us) = value else {
                    return Err(format!("unexpected datetime value {value:?}"));
                };
                let days = day_number(y, mo, d)?;
                b.append_value(
                    i64::from(days) * MICROS_PER_DAY
                        + (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000
                        + i64::from(us),
                );
                Ok(8)
            }
            // `new` refuses uuid columns.
            ArrayBuilder::Uuid(_) => Err("internal: a uuid column in a MySQL result".into()),
        }
    }
}

/// `bool`/`tinyint(1)` as 0 or 1; `bit(1)` arrives as one byte.
fn boolean(value: &Value, column: &Column) -> Result<bool, String> {
    let v = match value {
        Value::Bytes(bytes) if bytes.len() == 1 && bytes[0] <= 1 => i128::from(bytes[0]),
        _ => integer(value)?,
    };
    match v {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(format!(
            "{} value {other} is not a boolean (0 or 1)",
            column.db_type
        )),
    }
}

/// A `float` value, or a double that is exactly a 32-bit float.
fn float32(value: Value) -> Result<f32, String> {
    Ok(match value {
        Value::Float(f) => f,
        Value::Double(d) if (d as f32) as f64 == d || d.is_nan() => d as f32,
        other => {
            let d = float(&other)?;
            if (d as f32) as f64 != d && !d.is_nan() {
                return Err(format!("{d} does not fit a 32-bit float"));
            }
            d as f32
        }
    })
}

/// A `time` as µs since midnight; MySQL's durations outside one day are refused.
fn time_micros(value: Value) -> Result<i64, String> {
    let Value::Time(negative, days, h, m, s, us) = value else {
        return Err(format!("unexpected time value {value:?}"));
    };
    let micros = ((i64::from(days) * 24 + i64::from(h)) * 3600 + i64::from(m) * 60 + i64::from(s))
        * 1_000_000
        + i64::from(us);
    if (negative && micros != 0) || micros > MICROS_PER_DAY {
        return Err(format!(
            "time {}{}:{m:02}:{s:02} is outside 00:00:00..24:00:00",
            if negative { "-" } else { "" },
            u64::from(days) * 24 + u64::from(h)
        ));
    }
    Ok(micros)
}

fn day_number(y: u16, m: u8, d: u8) -> Result<i32, String> {
    let (y, m, d) = (i32::from(y), u32::from(m), u32::from(d));
    if !is_valid_date(y, m, d) || y == 0 {
        return Err(format!(
            "{y:04}-{m:02}-{d:02} is not a real date (MySQL zero or partial date)"
        ));
    }
    Ok(days_from_civil(y, m, d))
}

fn integer(value: &Value) -> Result<i128, String> {
    match value {
        Value::Int(i) => Ok(i128::from(*i)),
        Value::UInt(u) => Ok(i128::from(*u)),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse::<i128>().ok())
            .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(b))),
        other => Err(format!("unexpected integer value {other:?}")),
    }
}

fn narrow<T: TryFrom<i128>>(v: i128, column: &Column) -> Result<T, String> {
    T::try_from(v).map_err(|_| format!("{v} does not fit the {} column", column.db_type))
}

fn float(value: &Value) -> Result<f64, String> {
    match value {
        Value::Double(d) => Ok(*d),
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| format!("{:?} is not a number", String::from_utf8_lossy(b))),
        other => Err(format!("unexpected float value {other:?}")),
    }
}

/// Text form of a value that is not bytes (a column typed as text by its metadata).
fn value_text(value: &Value) -> String {
    match value {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, m, d, h, mi, s, us) => {
            format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(neg, d, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*d) * 24 + u64::from(*h)
        ),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::NULL => String::new(),
    }
}
