//! Blocking I/O over the storage's async byte streams, for work that runs on the blocking pool
//! (parsing and writing files): a `Read` fed from a `ByteStream` by a task, and a `Write` whose
//! bytes become a `ByteStream` for `FileStorage::put`. Both hold at most a few blocks.

use std::io::{Read, Write};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{ByteStream, StorageError};

/// Blocks in flight each way.
const BLOCKS: usize = 4;
/// Bytes gathered before a written block is handed on.
const WRITE_BLOCK: usize = 256 << 10;

/// A blocking reader of a byte stream. Made inside a Tokio runtime (its feeding task runs
/// there); read from a blocking thread. Dropping it stops the feeding.
pub struct StreamReader {
    rx: mpsc::Receiver<Result<Bytes, StorageError>>,
    current: Bytes,
    feed: tokio::task::JoinHandle<()>,
}

impl StreamReader {
    pub fn new(mut stream: ByteStream) -> Self {
        let (tx, rx) = mpsc::channel(BLOCKS);
        let feed = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            current: Bytes::new(),
            feed,
        }
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.feed.abort();
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A blocking writer whose bytes come out of the stream `stream_of` made with it. The stream
/// ends when the writer is dropped after `flush`; `fail` ends it with an error instead, so
/// that whatever stores it abandons the object.
pub struct StreamWriter {
    tx: mpsc::Sender<Result<Bytes, StorageError>>,
    buffer: BytesMut,
}

/// A writer and the stream of what is written to it.
pub fn stream_of() -> (StreamWriter, ByteStream) {
    let (tx, rx) = mpsc::channel(BLOCKS);
    let writer = StreamWriter {
        tx,
        buffer: BytesMut::with_capacity(WRITE_BLOCK),
    };
    let stream = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    (writer, stream)
}

impl StreamWriter {
    /// End the stream with an error (`why`): the object is not stored.
    pub fn fail(&mut self, why: &str) {
        self.buffer.clear();
        let _ = self
            .tx
            .blocking_send(Err(StorageError::Body(why.to_string())));
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let block = self.buffer.split().freeze();
        self.tx
            .blocking_send(Ok(block))
            .map_err(|_| std::io::Error::other("the output's storage stopped taking bytes"))
    }
}

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= WRITE_BLOCK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_written_on_a_blocking_thread_come_out_of_the_stream_and_read_back() {
        let (mut writer, stream) = stream_of();
        let write = tokio::task::spawn_blocking(move || {
            for i in 0..100_000u32 {
                writer.write_all(&i.to_le_bytes()).unwrap();
            }
            writer.flush().unwrap();
        });
        let mut reader = StreamReader::new(stream);
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        write.await.unwrap();
        let all = read.await.unwrap();
        assert_eq!(all.len(), 400_000);
        assert_eq!(&all[399_996..], &99_999u32.to_le_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_writer_ends_its_stream_with_an_error() {
        let (mut writer, mut stream) = stream_of();
        tokio::task::spawn_blocking(move || {
            writer.write_all(b"half").unwrap();
            writer.fail("the source broke");
        });
        let first = stream.next().await.unwrap();
        assert!(first.unwrap_err().to_string().contains("the source broke"));
    }
}
