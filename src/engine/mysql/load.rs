//! Writing the rows: `LOAD DATA LOCAL INFILE` fed as a stream from the batches (the server's
//! own bulk path), or multi-row prepared INSERTs where the server refuses local infile, each
//! bounded by the I/O timeout; and the server's warnings as value errors.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, InfileData, Params, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::dialect::quote;
use super::encode::TargetColumn;
use super::encode::{encode_row, param, Field};
use super::target_error;
use crate::engine::arrays::view_batch;
use crate::engine::batch::{copy_not_offered, Message, Progress};
use crate::engine::EngineError;

/// LOAD DATA input is handed to the driver in pieces of about this size.
pub(super) const CHUNK_BYTES: usize = 1 << 20;

/// Pieces encoded ahead of the server.
pub(super) const CHUNKS_IN_FLIGHT: usize = 4;

/// Fallback INSERTs: rows per statement, placeholders per statement, bytes per statement.
pub(super) const INSERT_ROWS: usize = 500;

pub(super) const INSERT_PARAMS: usize = 65_000;

pub(super) const INSERT_BYTES: usize = 4 << 20;

pub(super) fn load_statement(dest: &str, targets: &[TargetColumn], fields: &[Field]) -> String {
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

pub(super) enum Loaded {
    Rows(u64),
    /// The server refused LOAD DATA LOCAL before reading anything; the channel comes back.
    Refused(mpsc::Receiver<Message>),
}

pub(super) enum FeedEnd {
    Rows(u64),
    /// The server never asked for the data.
    NotStarted,
}

pub(super) enum FeedError {
    Engine(EngineError),
    /// The driver stopped reading (the LOAD ended early).
    ServerGone,
}

impl From<EngineError> for FeedError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e)
    }
}

pub(super) fn refused(e: &mysql_async::Error) -> bool {
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
pub(super) struct Writing {
    pub(super) cancel: CancellationToken,
    pub(super) progress: Arc<Progress>,
    pub(super) fields: Arc<Vec<Field>>,
    /// The I/O timeout: the server must take a piece, or answer, within it.
    pub(super) limit: Duration,
}

/// Run LOAD DATA LOCAL with the batches streamed in as its file, encoded on another task so
/// encoding and the server's loading overlap; memory stays at a few chunks.
pub(super) async fn load_data(
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
pub(super) async fn feed(
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

pub(super) async fn encode_all(
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
                let view = view_batch(&batch, fields.len())?;
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
pub(super) async fn send_chunk(
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
pub(super) async fn insert_rows(
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
                let view = view_batch(&batch, fields.len())?;
                for row in 0..batch.num_rows() {
                    for (i, (column, field)) in view.iter().zip(fields).enumerate() {
                        if column.is_null(row) {
                            inserter.params.push(Value::NULL);
                            continue;
                        }
                        let value = param(&column.values, field, row).map_err(|message| {
                            EngineError::Value {
                                column: fields[i].name.clone(),
                                row: inserter.written + inserter.pending as u64 + 1,
                                message,
                            }
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

pub(super) struct Inserter {
    pub(super) per_statement: usize,
    pub(super) head: String,
    pub(super) tuple: String,
    /// INSERT text by row count (the driver caches the prepared statements).
    pub(super) statements: HashMap<usize, String>,
    pub(super) params: Vec<Value>,
    pub(super) pending: usize,
    pub(super) pending_bytes: usize,
    pub(super) written: u64,
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
pub(super) async fn warnings_error(
    conn: &mut Conn,
    fields: &[Field],
    row_offset: u64,
) -> EngineError {
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
pub(super) fn value_error(message: &str, fields: &[Field], row_offset: u64) -> Option<EngineError> {
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
}
