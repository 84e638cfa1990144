//! The PostgreSQL source: the query is described with a prepare (exact types from the
//! RowDescription and the catalog), then read with `COPY (<query>) TO STDOUT (FORMAT binary)`,
//! whose stream is decoded straight into Arrow builders, or handed on undecoded to a PostgreSQL
//! sink that takes it (see `passthrough`).

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio_postgres::{Client, CopyOutStream};

use super::decode::Decoder;
use super::dialect::{self, quote_ident};
use super::passthrough::TupleFramer;
use super::typemap::{map_type, native_type, Decode, Select, TypeInfo};
use crate::engine::batch::SourceContext;
use crate::engine::types::{Column, Family, NativeType};
use crate::engine::{
    trim_query, within, Carrier, ConnectSpec, EngineError, SourceReader, CANCEL_GRACE,
};
use futures_util::future::BoxFuture;

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
    let (copy_sql, offset) = copy_statement(query, &columns, &selects);
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

/// The COPY that reads `query`, and how many characters precede the query in it (for error
/// positions). Columns that need a cast are selected from the query as a subquery.
fn copy_statement(query: &str, columns: &[Column], selects: &[Select]) -> (String, usize) {
    let plain = selects.iter().all(|s| *s == Select::Plain);
    if plain {
        let prefix = "COPY (\n";
        (
            format!("{prefix}{query}\n) TO STDOUT (FORMAT binary)"),
            prefix.chars().count(),
        )
    } else {
        let list: Vec<String> = columns
            .iter()
            .zip(selects)
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
    }
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
            Ok(_) => match Decoder::new(&columns, &decoders, ctx.batch_rows) {
                Ok(mut decoder) => {
                    read_all(stream.as_mut(), &ctx, &mut decoder, &mut done, offset, io).await
                }
                Err(e) => Err(e),
            },
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
