//! PostgreSQL → PostgreSQL without decoding: the source's `COPY … TO STDOUT (FORMAT binary)`
//! tuples are forwarded unchanged into the sink's `COPY … FROM STDIN (FORMAT binary)`.
//!
//! When: both ends are PostgreSQL, every result column has a built-in type (OID below 16384,
//! not a pseudo-type; so no enum, domain or other user-defined type, whose OIDs differ between
//! servers) read without a cast, and every column the sink copies into has exactly the
//! source's type OID (a created table, or an existing one being appended to or overwritten).
//! The target server's receive function then reads the very bytes the source's send function
//! wrote, applying the target column's type modifier as it would for any value. Otherwise the
//! transfer goes through Arrow batches as any other pair.
//!
//! What stays the same: rows are counted (progress, `rowsWritten`), NULLs in columns the source
//! describes as NOT NULL are caught with their column and row before the target sees them,
//! cancel stops the server's query, and the sink commits only after the last tuple.

use bytes::{Buf, BytesMut};

use super::wire::{bad_copy_stream, copy_header_len, null_in_not_null};
use crate::engine::batch::CopyChunk;
use crate::engine::types::Column;
use crate::engine::EngineError;

/// Tuples are handed to the sink in chunks of about this many bytes (below the 1 MiB mmap
/// threshold main.rs sets, so the buffers are reused from the heap rather than mapped afresh).
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Cuts a binary COPY stream into whole tuples, reading only field lengths.
pub struct TupleFramer {
    /// Per column: its name when it must not be NULL.
    not_null: Vec<Option<String>>,
    header_done: bool,
    finished: bool,
    /// Whole tuples (`..complete`), then the start of the next one.
    buf: BytesMut,
    complete: usize,
    /// Tuples in `buf[..complete]`.
    rows: u64,
    /// Tuples already taken.
    rows_before: u64,
}

impl TupleFramer {
    pub fn new(columns: &[Column]) -> Self {
        Self {
            not_null: columns
                .iter()
                .map(|c| (!c.nullable).then(|| c.name.clone()))
                .collect(),
            header_done: false,
            finished: false,
            buf: BytesMut::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            complete: 0,
            rows: 0,
            rows_before: 0,
        }
    }

    /// Take in the next piece of the stream.
    pub fn push(&mut self, data: &[u8]) -> Result<(), EngineError> {
        if self.finished {
            return if data.is_empty() {
                Ok(())
            } else {
                Err(bad_copy_stream("data after the trailer"))
            };
        }
        self.buf.extend_from_slice(data);
        if !self.header_done {
            let Some(header) = copy_header_len(&self.buf)? else {
                return Ok(());
            };
            // The sink writes its own header.
            self.buf.advance(header);
            self.header_done = true;
        }
        self.scan()
    }

    fn scan(&mut self) -> Result<(), EngineError> {
        let data = &self.buf[..];
        let mut pos = self.complete;
        let mut rows = self.rows;
        let mut trailer = None;
        while pos + 2 <= data.len() {
            let count = i16::from_be_bytes([data[pos], data[pos + 1]]);
            if count == -1 {
                if data.len() > pos + 2 {
                    return Err(bad_copy_stream("data after the trailer"));
                }
                trailer = Some(pos);
                break;
            }
            if count as usize != self.not_null.len() {
                return Err(bad_copy_stream("unexpected field count"));
            }
            let mut at = pos + 2;
            let mut whole = true;
            for not_null in &self.not_null {
                if at + 4 > data.len() {
                    whole = false;
                    break;
                }
                let len = i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                at += 4;
                if len >= 0 {
                    at += len as usize;
                    if at > data.len() {
                        whole = false;
                        break;
                    }
                } else if let Some(name) = not_null {
                    return Err(null_in_not_null(name, self.rows_before + rows + 1));
                }
            }
            if !whole {
                break;
            }
            pos = at;
            rows += 1;
        }
        self.complete = pos;
        self.rows = rows;
        if let Some(at) = trailer {
            // The sink writes its own trailer.
            self.buf.truncate(at);
            self.finished = true;
        }
        Ok(())
    }

    /// Whether a chunk's worth of whole tuples is waiting.
    pub fn ready(&self) -> bool {
        self.complete >= CHUNK_BYTES
    }

    /// The whole tuples taken in so far, if any.
    pub fn take(&mut self) -> Option<CopyChunk> {
        if self.rows == 0 {
            return None;
        }
        let data = self.buf.split_to(self.complete).freeze();
        let rows = std::mem::take(&mut self.rows);
        self.rows_before += rows;
        self.complete = 0;
        self.buf.reserve(CHUNK_BYTES + CHUNK_BYTES / 4);
        Some(CopyChunk { data, rows })
    }

    /// The stream has ended: the last tuples, or an error when it stopped inside a tuple or
    /// before the trailer.
    pub fn finish(mut self) -> Result<Option<CopyChunk>, EngineError> {
        if !self.finished || self.buf.len() != self.complete {
            return Err(EngineError::Source {
                message: "the COPY stream ended in the middle of a row".into(),
                transient: true,
            });
        }
        Ok(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::postgres::wire::COPY_SIGNATURE;
    use crate::engine::types::LogicalType;

    fn column(name: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            ty: LogicalType::Int32,
            nullable,
            db_type: "integer".into(),
            native: None,
        }
    }

    fn header() -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&4u32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        out
    }

    fn tuple(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out
    }

    #[test]
    fn tuples_split_anywhere_come_out_whole_without_header_or_trailer() {
        let t1 = tuple(&[Some(b"\0\0\0\x01"), None]);
        let t2 = tuple(&[Some(b"\0\0\0\x02"), Some(b"")]);
        let mut stream = header();
        stream.extend_from_slice(&t1);
        stream.extend_from_slice(&t2);
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        for cut in 1..stream.len() {
            let mut framer = TupleFramer::new(&[column("a", false), column("b", true)]);
            let mut out = Vec::new();
            let mut rows = 0;
            for piece in [&stream[..cut], &stream[cut..]] {
                framer.push(piece).unwrap();
                if let Some(chunk) = framer.take() {
                    rows += chunk.rows;
                    out.extend_from_slice(&chunk.data);
                }
            }
            if let Some(chunk) = framer.finish().unwrap() {
                rows += chunk.rows;
                out.extend_from_slice(&chunk.data);
            }
            assert_eq!(rows, 2, "cut at {cut}");
            assert_eq!(out, [t1.clone(), t2.clone()].concat(), "cut at {cut}");
        }
    }

    #[test]
    fn a_null_where_the_source_promised_none_names_column_and_row() {
        let mut framer = TupleFramer::new(&[column("a", true), column("b", false)]);
        let mut stream = header();
        stream.extend_from_slice(&tuple(&[None, Some(b"x")]));
        framer.push(&stream).unwrap();
        framer.take().unwrap();
        let err = framer.push(&tuple(&[Some(b"y"), None])).unwrap_err();
        match err {
            EngineError::Value { column, row, .. } => {
                assert_eq!(column, "b");
                assert_eq!(row, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stream_cut_short_or_malformed_is_an_error() {
        let mut framer = TupleFramer::new(&[column("a", true)]);
        let mut stream = header();
        stream.extend_from_slice(&tuple(&[Some(b"abc")])[..5]);
        framer.push(&stream).unwrap();
        assert!(framer.finish().is_err());

        let mut framer = TupleFramer::new(&[column("a", true)]);
        let mut stream = header();
        stream.extend_from_slice(&tuple(&[Some(b"a"), Some(b"b")]));
        assert!(framer.push(&stream).is_err());

        let mut framer = TupleFramer::new(&[column("a", true)]);
        assert!(framer.push(b"PGCOPY\n\xff\r\n\x01........").is_err());
    }

    #[test]
    fn chunks_are_handed_over_once_half_a_megabyte_of_tuples_is_waiting() {
        let value = vec![7u8; 1000];
        let mut framer = TupleFramer::new(&[column("a", true)]);
        framer.push(&header()).unwrap();
        let one = tuple(&[Some(&value)]);
        let mut pushed = 0;
        while !framer.ready() {
            framer.push(&one).unwrap();
            pushed += 1;
        }
        assert_eq!(pushed, CHUNK_BYTES.div_ceil(one.len()));
        let chunk = framer.take().unwrap();
        assert_eq!(chunk.rows, pushed as u64);
        assert_eq!(chunk.data.len(), pushed * one.len());
        assert!(!framer.ready());
        assert!(framer.take().is_none());
    }
}
