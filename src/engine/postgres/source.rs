//! The PostgreSQL source: the query is described with a prepare (exact types from the
//! RowDescription and the catalog), then read with `COPY (<query>) TO STDOUT (FORMAT binary)`,
//! whose stream is decoded straight into Arrow builders, or handed on undecoded to a PostgreSQL
//! sink that takes it (see `passthrough`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio_postgres::{Client, CopyOutStream};

use super::dialect::{self, quote_ident};
use super::passthrough::TupleFramer;
use super::wire::{self, NumericView};
use crate::engine::batch::{SourceContext, MAX_BATCH_BYTES};
use crate::engine::types::{arrow_schema, Column, Family, LogicalType, NativeType};
use crate::engine::{
    trim_query, within, Carrier, ConnectSpec, EngineError, SourceReader, CANCEL_GRACE,
};
use futures_util::future::BoxFuture;

/// First OID of objects created after initdb: below it, types are built in.
const FIRST_NORMAL_OID: u32 = 16_384;

mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const REGPROC: u32 = 24;
    pub const REGPROCEDURE: u32 = 2202;
    pub const REGOPER: u32 = 2203;
    pub const REGOPERATOR: u32 = 2204;
    pub const REGCLASS: u32 = 2205;
    pub const REGTYPE: u32 = 2206;
    pub const REGCONFIG: u32 = 3734;
    pub const REGDICTIONARY: u32 = 3769;
    pub const REGNAMESPACE: u32 = 4089;
    pub const REGROLE: u32 = 4096;
    pub const REGCOLLATION: u32 = 4191;
}

/// How a wire value becomes an Arrow value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decode {
    Bool,
    I16,
    I32,
    I64,
    Oid,
    F32,
    F64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    NumericText,
    Text,
    Jsonb,
    Bytes,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Uuid,
    IntervalIso,
    /// An array of a common element type, as JSON text.
    ArrayJson,
}

/// What the COPY selects for a column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Select {
    Plain,
    /// `col::text`: the type's own text form.
    TextCast,
    /// `to_json(col)::text`: arrays of element types not decoded here.
    ToJson,
}

/// An opened source: described, connected, not yet reading.
pub struct PgSource {
    columns: Vec<Column>,
    decoders: Vec<Decode>,
    client: Client,
    spec: ConnectSpec,
    copy_sql: String,
    /// Characters before the user's query in `copy_sql` (for error positions).
    offset: usize,
    /// The result's type OIDs when its COPY tuples may be passed through as they are (see
    /// `passthrough`).
    copy_oids: Option<Vec<u32>>,
}

/// Connect and describe `query`; `target` decides the carriers (PgRaw only towards PostgreSQL).
pub async fn open(
    spec: &ConnectSpec,
    query: &str,
    carrier: Carrier,
) -> Result<PgSource, EngineError> {
    let client = super::connect(spec).await?;
    within(
        spec.timeouts.io,
        "source",
        describe(client, spec, trim_query(query), carrier),
    )
    .await
}

async fn describe(
    client: Client,
    spec: &ConnectSpec,
    query: &str,
    carrier: Carrier,
) -> Result<PgSource, EngineError> {
    let statement = client
        .prepare(query)
        .await
        .map_err(|e| dialect::source_error(&e, 0))?;
    if !statement.params().is_empty() {
        return Err(EngineError::Source {
            message: "the query has parameters ($1, ...); a transfer query must be complete".into(),
            transient: false,
        });
    }
    let described = statement.columns();
    let type_oids: Vec<u32> = described.iter().map(|c| c.type_().oid()).collect();
    let typmods: Vec<i32> = described.iter().map(|c| c.type_modifier()).collect();
    let tables: Vec<u32> = described
        .iter()
        .map(|c| c.table_oid().unwrap_or(0))
        .collect();
    let attnums: Vec<i16> = described
        .iter()
        .map(|c| c.column_id().unwrap_or(0))
        .collect();
    let catalog = client
        .query(
            "SELECT format_type(u.t, u.m),
                    COALESCE(ty.typcategory::text, ''),
                    COALESCE(ty.typtype::text, ''),
                    COALESCE(ty.typelem, 0::oid),
                    COALESCE(a.attnotnull, false),
                    CASE WHEN dom.typtype = 'd' THEN format_type(a.atttypid, a.atttypmod) END
             FROM unnest($1::oid[], $2::int4[], $3::oid[], $4::int2[])
                  WITH ORDINALITY AS u(t, m, rel, att, i)
             LEFT JOIN pg_catalog.pg_type ty ON ty.oid = u.t
             LEFT JOIN pg_catalog.pg_attribute a
                    ON a.attrelid = u.rel AND a.attnum = u.att AND u.att > 0
                   AND NOT a.attisdropped
             LEFT JOIN pg_catalog.pg_type dom ON dom.oid = a.atttypid
             ORDER BY u.i",
            &[&type_oids, &typmods, &tables, &attnums],
        )
        .await
        .map_err(|e| dialect::source_error(&e, 0))?;
    if catalog.len() != described.len() {
        return Err(EngineError::Internal(
            "the catalog lookup of the result's types did not answer every column".into(),
        ));
    }
    let any_not_null = catalog.iter().any(|row| row.get::<_, bool>(4));
    let may_add_nulls = any_not_null && plan_may_add_nulls(&client, query).await;

    let mut columns = Vec::with_capacity(described.len());
    let mut decoders = Vec::with_capacity(described.len());
    let mut selects = Vec::with_capacity(described.len());
    let mut all_builtin = true;
    for (i, (col, row)) in described.iter().zip(&catalog).enumerate() {
        let info = TypeInfo {
            oid: type_oids[i],
            typmod: typmods[i],
            format: row.get(0),
            category: row.get(1),
            typtype: row.get(2),
            elem: row.get(3),
        };
        all_builtin &= info.is_builtin();
        let (ty, decode, select) = map_type(&info, carrier);
        let not_null: bool = row.get(4);
        // A table column of a domain type: the result describes it as the domain's base type.
        let domain: Option<String> = row.get(5);
        let native = match domain {
            Some(domain) => Some(NativeType {
                family: Family::Postgres,
                ddl: domain,
                user_defined: true,
            }),
            None => native_type(&info),
        };
        columns.push(Column {
            name: col.name().to_string(),
            ty,
            nullable: !not_null || may_add_nulls,
            native,
            db_type: info.format,
        });
        decoders.push(decode);
        selects.push(select);
    }

    let plain = selects.iter().all(|s| *s == Select::Plain);
    let copy_oids =
        (carrier == Carrier::PostgresBinary && all_builtin && plain).then_some(type_oids);
    let (copy_sql, offset) = if plain {
        let prefix = "COPY (\n";
        (
            format!("{prefix}{query}\n) TO STDOUT (FORMAT binary)"),
            prefix.chars().count(),
        )
    } else {
        let list: Vec<String> = columns
            .iter()
            .zip(&selects)
            .map(|(c, s)| {
                let name = format!("sluice_q.{}", quote_ident(&c.name));
                match s {
                    Select::Plain => name,
                    Select::TextCast => format!("{name}::text"),
                    Select::ToJson => format!("to_json({name})::text"),
                }
            })
            .collect();
        let prefix = format!("COPY (SELECT {} FROM (\n", list.join(", "));
        (
            format!("{prefix}{query}\n) AS sluice_q) TO STDOUT (FORMAT binary)"),
            prefix.chars().count(),
        )
    };
    Ok(PgSource {
        columns,
        decoders,
        client,
        spec: spec.clone(),
        copy_sql,
        offset,
        copy_oids,
    })
}

/// A table column declared NOT NULL can still be NULL in a result: the inner side of an
/// outer join, or a grouping-sets aggregate. Look at the plan for those.
async fn plan_may_add_nulls(client: &Client, query: &str) -> bool {
    let Ok(row) = client
        .query_one(&format!("EXPLAIN (FORMAT JSON) {query}"), &[])
        .await
    else {
        return true;
    };
    let Ok(plan) = row.try_get::<_, serde_json::Value>(0) else {
        return true;
    };
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
                (k == "Join Type" && matches!(v.as_str(), Some("Left" | "Right" | "Full")))
                    || k == "Grouping Sets"
                    || walk(v)
            }),
            serde_json::Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    walk(&plan)
}

struct TypeInfo {
    oid: u32,
    typmod: i32,
    format: String,
    category: String,
    typtype: String,
    elem: u32,
}

impl TypeInfo {
    /// Created by initdb (the same OID and binary form on every server), not a pseudo-type.
    fn is_builtin(&self) -> bool {
        self.oid < FIRST_NORMAL_OID && self.typtype != "p"
    }
}

/// Element types whose arrays are decoded here (others go through `to_json`).
fn decodable_element(elem: u32) -> bool {
    matches!(
        elem,
        oid::BOOL
            | oid::INT2
            | oid::INT4
            | oid::INT8
            | oid::FLOAT4
            | oid::FLOAT8
            | oid::NUMERIC
            | oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::DATE
            | oid::TIMESTAMP
            | oid::TIMESTAMPTZ
            | oid::UUID
            | oid::JSON
            | oid::JSONB
    )
}

/// `regclass`, `regtype` and the other OID aliases: their binary form is the object's OID.
fn is_reg_type(oid: u32) -> bool {
    matches!(
        oid,
        oid::REGPROC
            | oid::REGPROCEDURE
            | oid::REGOPER
            | oid::REGOPERATOR
            | oid::REGCLASS
            | oid::REGTYPE
            | oid::REGCONFIG
            | oid::REGDICTIONARY
            | oid::REGNAMESPACE
            | oid::REGROLE
            | oid::REGCOLLATION
    )
}

fn text_len(typmod: i32) -> Option<u32> {
    (typmod >= 4).then(|| (typmod - 4) as u32)
}

/// The declaration that creates the same column on another PostgreSQL server: every built-in
/// type as `format_type()` prints it (typmods included), and an enum where the target has one
/// of the same name (a domain, likewise: see `describe`; elsewhere its base type, which is how
/// the result describes it). Object references (`regclass`, …) are not carried: their OIDs
/// mean nothing elsewhere.
fn native_type(t: &TypeInfo) -> Option<NativeType> {
    if is_reg_type(t.oid) || is_reg_type(t.elem) {
        return None;
    }
    let user_defined = if t.is_builtin() {
        false
    } else if t.typtype == "e" {
        true
    } else {
        return None;
    };
    Some(NativeType {
        family: Family::Postgres,
        ddl: t.format.clone(),
        user_defined,
    })
}

fn map_type(t: &TypeInfo, carrier: Carrier) -> (LogicalType, Decode, Select) {
    let to_pg = carrier == Carrier::PostgresBinary;
    let plain = |ty, decode| (ty, decode, Select::Plain);
    match t.oid {
        oid::BOOL => plain(LogicalType::Boolean, Decode::Bool),
        oid::INT2 => plain(LogicalType::Int16, Decode::I16),
        oid::INT4 => plain(LogicalType::Int32, Decode::I32),
        oid::INT8 => plain(LogicalType::Int64, Decode::I64),
        oid::OID => plain(LogicalType::Int64, Decode::Oid),
        oid::FLOAT4 => plain(LogicalType::Float32, Decode::F32),
        oid::FLOAT8 => plain(LogicalType::Float64, Decode::F64),
        oid::NUMERIC => {
            if t.typmod >= 4 {
                let tm = t.typmod - 4;
                let precision = ((tm >> 16) & 0xffff) as u32;
                let scale = (((tm & 0x7ff) ^ 1024) - 1024) as i64;
                if (1..=38).contains(&precision) && scale >= 0 && scale <= precision as i64 {
                    return plain(
                        LogicalType::Decimal {
                            precision: precision as u8,
                            scale: scale as i8,
                        },
                        Decode::Decimal {
                            precision: precision as u8,
                            scale: scale as i8,
                        },
                    );
                }
                if scale >= 0 && scale <= precision as i64 {
                    return plain(
                        LogicalType::BigDecimal {
                            precision: Some(precision),
                            scale: Some(scale as u32),
                        },
                        Decode::NumericText,
                    );
                }
            }
            plain(
                LogicalType::BigDecimal {
                    precision: None,
                    scale: None,
                },
                Decode::NumericText,
            )
        }
        oid::TEXT | oid::NAME => plain(
            LogicalType::Text {
                max_len: None,
                fixed: false,
            },
            Decode::Text,
        ),
        oid::VARCHAR => plain(
            LogicalType::Text {
                max_len: text_len(t.typmod),
                fixed: false,
            },
            Decode::Text,
        ),
        oid::BPCHAR => plain(
            LogicalType::Text {
                max_len: text_len(t.typmod),
                fixed: true,
            },
            Decode::Text,
        ),
        oid::BYTEA => plain(LogicalType::Binary { max_len: None }, Decode::Bytes),
        oid::DATE => plain(LogicalType::Date, Decode::Date),
        oid::TIME => plain(LogicalType::Time, Decode::Time),
        oid::TIMESTAMP => plain(LogicalType::Timestamp, Decode::Timestamp),
        oid::TIMESTAMPTZ => plain(LogicalType::TimestampTz, Decode::TimestampTz),
        oid::UUID => plain(LogicalType::Uuid, Decode::Uuid),
        // `json` keeps its exact text and type towards PostgreSQL (jsonb would reformat it).
        oid::JSON if to_pg => plain(
            LogicalType::PgRaw {
                db_type: "json".into(),
                oid: oid::JSON,
            },
            Decode::Bytes,
        ),
        oid::JSON => plain(LogicalType::Json, Decode::Text),
        oid::JSONB => plain(LogicalType::Json, Decode::Jsonb),
        oid::INTERVAL if !to_pg => plain(LogicalType::Interval, Decode::IntervalIso),
        // An object's OID means nothing on another server: carry its name.
        _ if is_reg_type(t.oid) || is_reg_type(t.elem) => (
            LogicalType::Other {
                db_type: t.format.clone(),
            },
            Decode::Text,
            Select::TextCast,
        ),
        _ => {
            let builtin = t.is_builtin();
            let is_array = t.category == "A" && t.elem != 0;
            if to_pg && builtin {
                plain(
                    LogicalType::PgRaw {
                        db_type: t.format.clone(),
                        oid: t.oid,
                    },
                    Decode::Bytes,
                )
            } else if !to_pg && is_array {
                let ty = LogicalType::Array {
                    db_type: t.format.clone(),
                };
                if decodable_element(t.elem) {
                    (ty, Decode::ArrayJson, Select::Plain)
                } else {
                    (ty, Decode::Text, Select::ToJson)
                }
            } else {
                (
                    LogicalType::Other {
                        db_type: t.format.clone(),
                    },
                    Decode::Text,
                    Select::TextCast,
                )
            }
        }
    }
}

impl SourceReader for PgSource {
    fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Describe the result with `columns` (same types, as the caller has checked: the
    /// decoders stay those of this source's own description).
    fn set_columns(&mut self, columns: Vec<Column>) {
        self.columns = columns;
    }

    fn fixed_types(&self) -> bool {
        true
    }

    /// The result's type OIDs when its COPY tuples could go to a PostgreSQL sink as they are.
    fn copy_oids(&self) -> Option<&[u32]> {
        self.copy_oids.as_deref()
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), EngineError>> {
        (*self).stream(ctx).boxed()
    }
}

impl PgSource {
    /// Stream every row to the sink, then `End`.
    ///
    /// # Cancel safety
    /// On `ctx.cancel` (or any failure while the COPY runs) the COPY is cancelled on the
    /// server and its end awaited before returning, so no query of this transfer keeps running.
    async fn stream(self, mut ctx: SourceContext) -> Result<(), EngineError> {
        let PgSource {
            columns,
            decoders,
            client,
            spec,
            copy_sql,
            offset,
            copy_oids: _,
        } = self;
        let token = client.cancel_token();
        let io = spec.timeouts.io;
        let start = client.copy_out(copy_sql.as_str());
        tokio::pin!(start);
        let started = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => None,
            started = tokio::time::timeout(io, &mut start) => started.ok(),
        };
        let stream = match started {
            Some(Ok(stream)) => stream,
            // The server refused the COPY: nothing runs.
            Some(Err(e)) => return Err(dialect::source_error(&e, offset)),
            None => {
                // Cancelled, or no answer: the COPY may be running (or starting) on the
                // server. Stop it, but give up on the answer after the grace (the connection
                // is dropped then).
                let _ = tokio::time::timeout(CANCEL_GRACE, async {
                    let _ = super::cancel_query(&token, &spec).await;
                    if let Ok(stream) = (&mut start).await {
                        drain(std::pin::pin!(stream)).await;
                    }
                })
                .await;
                return Err(if ctx.cancel.is_cancelled() {
                    EngineError::Cancelled
                } else {
                    EngineError::Stalled {
                        side: "source",
                        waited: io,
                    }
                });
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut done = false;
        // The COPY runs on the server while the sink decides (it answers once it knows the
        // target's column types).
        let outcome = match ctx.copy_accepted().await {
            // Offered only when `copy_oids` is set.
            Ok(true) => {
                let framer = TupleFramer::new(&columns);
                pass_through(stream.as_mut(), &ctx, framer, &mut done, offset, io).await
            }
            Ok(_) => {
                let mut decoder = Decoder::new(&columns, &decoders, ctx.batch_rows);
                read_all(stream.as_mut(), &ctx, &mut decoder, &mut done, offset, io).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => ctx.finish().await,
            Err(e) => {
                if !done {
                    // Whatever the link does, the job ends within the grace: past it the
                    // connection is dropped, which ends the COPY when the server notices.
                    let _ = tokio::time::timeout(CANCEL_GRACE, async {
                        let _ = super::cancel_query(&token, &spec).await;
                        drain(stream.as_mut()).await;
                    })
                    .await;
                }
                if ctx.cancel.is_cancelled() {
                    Err(EngineError::Cancelled)
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Read what is left of a cancelled COPY until the server ends it.
async fn drain(mut stream: Pin<&mut CopyOutStream>) {
    while let Some(item) = stream.next().await {
        if item.is_err() {
            break;
        }
    }
}

/// The next message of the COPY stream; `None` at its end. `done` is set once the server has
/// ended the COPY (nothing left to cancel).
async fn next_chunk(
    stream: &mut Pin<&mut CopyOutStream>,
    ctx: &SourceContext,
    done: &mut bool,
    offset: usize,
    io: Duration,
) -> Result<Option<Bytes>, EngineError> {
    if ctx.cancel.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let next = match stream.next().now_or_never() {
        Some(next) => next,
        None => tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(EngineError::Cancelled),
            next = tokio::time::timeout(io, stream.next()) => match next {
                Ok(next) => next,
                Err(_) => return Err(EngineError::Stalled { side: "source", waited: io }),
            },
        },
    };
    match next {
        None => {
            *done = true;
            Ok(None)
        }
        Some(Err(e)) => {
            *done = true;
            if dialect::is_query_canceled(&e) && ctx.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            Err(dialect::source_error(&e, offset))
        }
        Some(Ok(chunk)) => Ok(Some(chunk)),
    }
}

/// Forward the COPY stream's tuples to the sink as they are, in chunks.
async fn pass_through(
    mut stream: Pin<&mut CopyOutStream>,
    ctx: &SourceContext,
    mut framer: TupleFramer,
    done: &mut bool,
    offset: usize,
    io: Duration,
) -> Result<(), EngineError> {
    while let Some(chunk) = next_chunk(&mut stream, ctx, done, offset, io).await? {
        framer.push(&chunk)?;
        if framer.ready() {
            if let Some(tuples) = framer.take() {
                ctx.send_copy(tuples).await?;
            }
        }
    }
    if let Some(tuples) = framer.finish()? {
        ctx.send_copy(tuples).await?;
    }
    Ok(())
}

async fn read_all(
    mut stream: Pin<&mut CopyOutStream>,
    ctx: &SourceContext,
    decoder: &mut Decoder,
    done: &mut bool,
    offset: usize,
    io: Duration,
) -> Result<(), EngineError> {
    // Bytes of a tuple split across messages wait here for the rest.
    let mut carry: Vec<u8> = Vec::new();
    while let Some(chunk) = next_chunk(&mut stream, ctx, done, offset, io).await? {
        let from_carry = !carry.is_empty();
        if from_carry {
            carry.extend_from_slice(&chunk);
        }
        let mut pos = 0;
        loop {
            let data = if from_carry {
                &carry[pos..]
            } else {
                &chunk[pos..]
            };
            let (used, full) = decoder.parse(data)?;
            pos += used;
            if !full {
                break;
            }
            let (batch, bytes) = decoder.take_batch()?;
            ctx.send(batch, bytes).await?;
        }
        if from_carry {
            carry.drain(..pos);
        } else {
            carry.extend_from_slice(&chunk[pos..]);
        }
    }
    if !carry.is_empty() || !decoder.finished {
        return Err(EngineError::Source {
            message: "the COPY stream ended in the middle of a row".into(),
            transient: true,
        });
    }
    if decoder.rows_in_batch > 0 {
        let (batch, bytes) = decoder.take_batch()?;
        ctx.send(batch, bytes).await?;
    }
    Ok(())
}

/// One Arrow builder per column.
enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Ts(TimestampMicrosecondBuilder),
    Uuid(FixedSizeBinaryBuilder),
}

/// Bytes of variable-length values in a finished text or binary array.
fn value_bytes(array: &ArrayRef) -> usize {
    use arrow_array::cast::AsArray;
    match array.data_type() {
        arrow_schema::DataType::Utf8 => array.as_string::<i32>().values().len(),
        arrow_schema::DataType::Binary => array.as_binary::<i32>().values().len(),
        _ => 0,
    }
}

impl Builder {
    fn new(decode: Decode, rows: usize) -> Self {
        Self::with_data(decode, rows, rows * 8)
    }

    /// A builder for `rows` values, with room for `data` bytes of text or binary values.
    fn with_data(decode: Decode, rows: usize, data: usize) -> Self {
        let data = data.max(rows * 8);
        match decode {
            Decode::Bool => Self::Bool(BooleanBuilder::with_capacity(rows)),
            Decode::I16 => Self::I16(Int16Builder::with_capacity(rows)),
            Decode::I32 => Self::I32(Int32Builder::with_capacity(rows)),
            Decode::I64 | Decode::Oid => Self::I64(Int64Builder::with_capacity(rows)),
            Decode::F32 => Self::F32(Float32Builder::with_capacity(rows)),
            Decode::F64 => Self::F64(Float64Builder::with_capacity(rows)),
            Decode::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(precision, scale)
                    .expect("precision and scale checked when describing"),
            ),
            Decode::NumericText
            | Decode::Text
            | Decode::Jsonb
            | Decode::IntervalIso
            | Decode::ArrayJson => Self::Str(StringBuilder::with_capacity(rows, data)),
            Decode::Bytes => Self::Bin(BinaryBuilder::with_capacity(rows, data)),
            Decode::Date => Self::Date(Date32Builder::with_capacity(rows)),
            Decode::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            Decode::Timestamp => Self::Ts(TimestampMicrosecondBuilder::with_capacity(rows)),
            Decode::TimestampTz => {
                Self::Ts(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
            Decode::Uuid => Self::Uuid(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::I16(b) => b.append_null(),
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Str(b) => b.append_null(),
            Self::Bin(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Ts(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
            Self::Bin(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Ts(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
        }
    }
}

struct ColumnDecoder {
    name: String,
    nullable: bool,
    decode: Decode,
    builder: Builder,
}

/// The binary COPY stream parser: header, then tuples, then the trailer.
struct Decoder {
    schema: SchemaRef,
    columns: Vec<ColumnDecoder>,
    batch_rows: usize,
    header_done: bool,
    finished: bool,
    rows_in_batch: usize,
    bytes_in_batch: usize,
    /// Rows decoded before the current batch (for row numbers in errors).
    rows_before: u64,
    /// (start, length) of each field of the tuple being decoded; length -1 is NULL.
    spans: Vec<(usize, i32)>,
    scratch: String,
}

impl Decoder {
    fn new(columns: &[Column], decoders: &[Decode], batch_rows: usize) -> Self {
        let capacity = batch_rows.min(65_536);
        Self {
            schema: arrow_schema(columns),
            columns: columns
                .iter()
                .zip(decoders)
                .map(|(c, d)| ColumnDecoder {
                    name: c.name.clone(),
                    nullable: c.nullable,
                    decode: *d,
                    builder: Builder::new(*d, capacity),
                })
                .collect(),
            batch_rows,
            header_done: false,
            finished: false,
            rows_in_batch: 0,
            bytes_in_batch: 0,
            rows_before: 0,
            spans: Vec::with_capacity(columns.len()),
            scratch: String::new(),
        }
    }

    /// Decode whole tuples from `data`. Returns the bytes used and whether the batch is full
    /// (the caller sends it and calls again with the rest).
    fn parse(&mut self, data: &[u8]) -> Result<(usize, bool), EngineError> {
        let mut pos = 0;
        if !self.header_done {
            let Some(header) = wire::copy_header_len(data)? else {
                return Ok((0, false));
            };
            pos = header;
            self.header_done = true;
        }
        while pos + 2 <= data.len() {
            if self.finished {
                return Err(wire::bad_copy_stream("data after the trailer"));
            }
            let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
            if count == -1 {
                self.finished = true;
                pos += 2;
                continue;
            }
            if count as usize != self.columns.len() {
                return Err(wire::bad_copy_stream("unexpected field count"));
            }
            // Find every field of the tuple before touching the builders.
            self.spans.clear();
            let mut at = pos + 2;
            let mut complete = true;
            for _ in 0..count {
                if at + 4 > data.len() {
                    complete = false;
                    break;
                }
                let len = i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                at += 4;
                if len >= 0 {
                    if at + len as usize > data.len() {
                        complete = false;
                        break;
                    }
                    self.spans.push((at, len));
                    at += len as usize;
                } else {
                    self.spans.push((at, -1));
                }
            }
            if !complete {
                break;
            }
            let row = self.rows_before + self.rows_in_batch as u64 + 1;
            for (column, &(start, len)) in self.columns.iter_mut().zip(&self.spans) {
                if len < 0 {
                    if !column.nullable {
                        return Err(wire::null_in_not_null(&column.name, row));
                    }
                    column.builder.append_null();
                } else {
                    let value = &data[start..start + len as usize];
                    decode_value(column.decode, &mut column.builder, value, &mut self.scratch)
                        .map_err(|message| EngineError::Value {
                            column: column.name.clone(),
                            row,
                            message,
                        })?;
                }
            }
            self.bytes_in_batch += at - pos;
            self.rows_in_batch += 1;
            pos = at;
            if self.rows_in_batch >= self.batch_rows || self.bytes_in_batch >= MAX_BATCH_BYTES {
                return Ok((pos, true));
            }
        }
        Ok((pos, false))
    }

    fn take_batch(&mut self) -> Result<(RecordBatch, u64), EngineError> {
        // Arrow's `finish` leaves a builder with no capacity; give each the room the batch
        // just taken needed, so the next one is filled without regrowing (memmove, page faults).
        let rows = self.batch_rows.min(65_536);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| {
                let array = c.builder.finish();
                c.builder = Builder::with_data(c.decode, rows, value_bytes(&array));
                array
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| EngineError::Internal(format!("building a batch: {e}")))?;
        let bytes = self.bytes_in_batch as u64;
        self.rows_before += self.rows_in_batch as u64;
        self.rows_in_batch = 0;
        self.bytes_in_batch = 0;
        Ok((batch, bytes))
    }
}

fn fixed<const N: usize>(value: &[u8]) -> Result<[u8; N], String> {
    value
        .try_into()
        .map_err(|_| format!("expected {N} bytes on the wire, got {}", value.len()))
}

fn utf8(value: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(value).map_err(|e| format!("text is not valid UTF-8: {e}"))
}

/// Days since 2000 to days since 1970; ±infinity stay as i32::MAX / i32::MIN.
fn shift_date(days: i32) -> i32 {
    if days == i32::MAX || days == i32::MIN {
        days
    } else {
        days + wire::PG_EPOCH_DAYS
    }
}

/// µs since 2000 to µs since 1970; ±infinity stay as i64::MAX / i64::MIN.
fn shift_timestamp(micros: i64) -> Result<i64, String> {
    if micros == i64::MAX || micros == i64::MIN {
        return Ok(micros);
    }
    micros
        .checked_add(wire::PG_EPOCH_MICROS)
        .ok_or_else(|| "the timestamp is beyond the year 294246, the limit of the transfer".into())
}

fn decode_value(
    decode: Decode,
    builder: &mut Builder,
    value: &[u8],
    scratch: &mut String,
) -> Result<(), String> {
    match (decode, builder) {
        (Decode::Bool, Builder::Bool(b)) => b.append_value(fixed::<1>(value)?[0] != 0),
        (Decode::I16, Builder::I16(b)) => b.append_value(i16::from_be_bytes(fixed(value)?)),
        (Decode::I32, Builder::I32(b)) => b.append_value(i32::from_be_bytes(fixed(value)?)),
        (Decode::I64, Builder::I64(b)) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Decode::Oid, Builder::I64(b)) => b.append_value(u32::from_be_bytes(fixed(value)?) as i64),
        (Decode::F32, Builder::F32(b)) => b.append_value(f32::from_be_bytes(fixed(value)?)),
        (Decode::F64, Builder::F64(b)) => b.append_value(f64::from_be_bytes(fixed(value)?)),
        (Decode::Decimal { precision, scale }, Builder::Decimal(b)) => {
            b.append_value(NumericView::parse(value)?.to_i128(precision, scale)?)
        }
        (Decode::NumericText, Builder::Str(b)) => {
            scratch.clear();
            NumericView::parse(value)?.write_text(scratch);
            b.append_value(&*scratch);
        }
        (Decode::Text, Builder::Str(b)) => b.append_value(utf8(value)?),
        (Decode::Jsonb, Builder::Str(b)) => match value.split_first() {
            Some((1, text)) => b.append_value(utf8(text)?),
            _ => return Err("unknown jsonb wire version".into()),
        },
        (Decode::Bytes, Builder::Bin(b)) => b.append_value(value),
        (Decode::Date, Builder::Date(b)) => {
            b.append_value(shift_date(i32::from_be_bytes(fixed(value)?)))
        }
        (Decode::Time, Builder::Time(b)) => b.append_value(i64::from_be_bytes(fixed(value)?)),
        (Decode::Timestamp | Decode::TimestampTz, Builder::Ts(b)) => {
            b.append_value(shift_timestamp(i64::from_be_bytes(fixed(value)?))?)
        }
        (Decode::Uuid, Builder::Uuid(b)) => b
            .append_value(fixed::<16>(value)?)
            .map_err(|e| e.to_string())?,
        (Decode::IntervalIso, Builder::Str(b)) => {
            let v: [u8; 16] = fixed(value)?;
            let micros = i64::from_be_bytes(v[0..8].try_into().expect("8 bytes"));
            let days = i32::from_be_bytes(v[8..12].try_into().expect("4 bytes"));
            let months = i32::from_be_bytes(v[12..16].try_into().expect("4 bytes"));
            scratch.clear();
            wire::write_interval_iso(scratch, micros, days, months);
            b.append_value(&*scratch);
        }
        (Decode::ArrayJson, Builder::Str(b)) => {
            scratch.clear();
            array_to_json(value, scratch)?;
            b.append_value(&*scratch);
        }
        _ => return Err("internal: decoder and builder disagree".into()),
    }
    Ok(())
}

/// A PostgreSQL binary array as JSON text (nested per dimension; lower bounds dropped).
fn array_to_json(value: &[u8], out: &mut String) -> Result<(), String> {
    let bad = || "malformed array value".to_string();
    let int = |at: usize| -> Result<i32, String> {
        value
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(bad)
    };
    let ndim = int(0)?;
    let elem = int(8)? as u32;
    if !(0..=6).contains(&ndim) {
        return Err(bad());
    }
    if ndim == 0 {
        out.push_str("[]");
        return Ok(());
    }
    let mut dims = [0usize; 6];
    for (d, dim) in dims.iter_mut().enumerate().take(ndim as usize) {
        let len = int(12 + 8 * d)?;
        if len < 0 {
            return Err(bad());
        }
        *dim = len as usize;
    }
    let mut pos = 12 + 8 * ndim as usize;
    write_dim(value, &mut pos, &dims[..ndim as usize], elem, out)?;
    if pos != value.len() {
        return Err(bad());
    }
    Ok(())
}

fn write_dim(
    value: &[u8],
    pos: &mut usize,
    dims: &[usize],
    elem: u32,
    out: &mut String,
) -> Result<(), String> {
    out.push('[');
    for i in 0..dims[0] {
        if i > 0 {
            out.push(',');
        }
        if dims.len() > 1 {
            write_dim(value, pos, &dims[1..], elem, out)?;
            continue;
        }
        let len_bytes = value
            .get(*pos..*pos + 4)
            .ok_or_else(|| "malformed array value".to_string())?;
        let len = i32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
        *pos += 4;
        if len < 0 {
            out.push_str("null");
            continue;
        }
        let item = value
            .get(*pos..*pos + len as usize)
            .ok_or_else(|| "malformed array value".to_string())?;
        *pos += len as usize;
        write_json_element(elem, item, out)?;
    }
    out.push(']');
    Ok(())
}

fn write_json_float(out: &mut String, v: f64, text: impl FnOnce(&mut String)) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        text(out);
    }
}

fn write_json_element(elem: u32, item: &[u8], out: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;
    match elem {
        oid::BOOL => out.push_str(if fixed::<1>(item)?[0] != 0 {
            "true"
        } else {
            "false"
        }),
        oid::INT2 => {
            let _ = write!(out, "{}", i16::from_be_bytes(fixed(item)?));
        }
        oid::INT4 => {
            let _ = write!(out, "{}", i32::from_be_bytes(fixed(item)?));
        }
        oid::INT8 => {
            let _ = write!(out, "{}", i64::from_be_bytes(fixed(item)?));
        }
        oid::FLOAT4 => {
            let v = f32::from_be_bytes(fixed(item)?);
            write_json_float(out, v as f64, |o| {
                let _ = write!(o, "{v:?}");
            });
        }
        oid::FLOAT8 => {
            let v = f64::from_be_bytes(fixed(item)?);
            write_json_float(out, v, |o| {
                let _ = write!(o, "{v:?}");
            });
        }
        oid::NUMERIC => {
            let view = NumericView::parse(item)?;
            let mut text = String::new();
            view.write_text(&mut text);
            if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') && text != "-Infinity" {
                out.push_str(&text);
            } else {
                wire::write_json_string(out, &text);
            }
        }
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => {
            wire::write_json_string(out, utf8(item)?)
        }
        oid::DATE => {
            let days = i32::from_be_bytes(fixed(item)?);
            match days {
                i32::MAX => out.push_str("\"infinity\""),
                i32::MIN => out.push_str("\"-infinity\""),
                _ => {
                    out.push('"');
                    wire::write_date(out, days as i64 + wire::PG_EPOCH_DAYS as i64);
                    out.push('"');
                }
            }
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(fixed(item)?);
            match micros {
                i64::MAX => out.push_str("\"infinity\""),
                i64::MIN => out.push_str("\"-infinity\""),
                _ => {
                    out.push('"');
                    wire::write_pg_timestamp(out, micros);
                    if elem == oid::TIMESTAMPTZ {
                        out.push_str("+00:00");
                    }
                    out.push('"');
                }
            }
        }
        oid::UUID => {
            out.push('"');
            wire::write_uuid(out, &fixed::<16>(item)?);
            out.push('"');
        }
        oid::JSON => out.push_str(utf8(item)?),
        oid::JSONB => match item.split_first() {
            Some((1, text)) => out.push_str(utf8(text)?),
            _ => return Err("unknown jsonb wire version".into()),
        },
        _ => return Err(format!("array elements of type oid {elem} are not decoded")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn array(elem: u32, dims: &[i32], items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        v.extend_from_slice(&(items.iter().any(|i| i.is_none()) as i32).to_be_bytes());
        v.extend_from_slice(&elem.to_be_bytes());
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&1i32.to_be_bytes());
        }
        for item in items {
            match item {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }

    #[test]
    fn arrays_become_nested_json() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let three = 3i32.to_be_bytes();
        let v = array(
            oid::INT4,
            &[2, 2],
            &[Some(&one), Some(&two), None, Some(&three)],
        );
        let mut s = String::new();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, "[[1,2],[null,3]]");
        let v = array(oid::TEXT, &[2], &[Some(b"a\"b"), Some("é".as_bytes())]);
        s.clear();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, r#"["a\"b","é"]"#);
        let nan = f64::NAN.to_be_bytes();
        let tenth = 0.1f64.to_be_bytes();
        let v = array(oid::FLOAT8, &[2], &[Some(&nan), Some(&tenth)]);
        s.clear();
        array_to_json(&v, &mut s).unwrap();
        assert_eq!(s, r#"["NaN",0.1]"#);
        s.clear();
        array_to_json(&array(oid::INT4, &[], &[]), &mut s).unwrap();
        assert_eq!(s, "[]");
    }

    fn column(name: &str, ty: LogicalType) -> Column {
        Column {
            name: name.into(),
            ty,
            nullable: true,
            db_type: String::new(),
            native: None,
        }
    }

    #[test]
    fn tuples_split_across_chunks_decode_once_whole() {
        let columns = vec![
            column("a", LogicalType::Int32),
            column(
                "b",
                LogicalType::Text {
                    max_len: None,
                    fixed: false,
                },
            ),
        ];
        let mut stream = Vec::new();
        stream.extend_from_slice(wire::COPY_SIGNATURE);
        stream.extend_from_slice(&0i32.to_be_bytes());
        stream.extend_from_slice(&0i32.to_be_bytes());
        for (a, b) in [(1i32, Some("x")), (2, None)] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&4i32.to_be_bytes());
            stream.extend_from_slice(&a.to_be_bytes());
            match b {
                Some(b) => {
                    stream.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    stream.extend_from_slice(b.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        // Feed one byte at a time through a carry buffer.
        let mut decoder = Decoder::new(&columns, &[Decode::I32, Decode::Text], 100);
        let mut carry = Vec::new();
        for byte in &stream {
            carry.push(*byte);
            let (used, full) = decoder.parse(&carry).unwrap();
            assert!(!full);
            carry.drain(..used);
        }
        assert!(carry.is_empty());
        assert!(decoder.finished);
        let (batch, _) = decoder.take_batch().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let b = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(b.value(0), "x");
        assert!(b.is_null(1));
    }
}
