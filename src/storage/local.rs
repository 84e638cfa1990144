//! Files on the local disk under one directory: `<root>/<key>` for sealed objects,
//! `<root>/<key>.part` for multi-part objects being uploaded, `<root>/.incoming/` for whole
//! objects being written. Hashing and writing run on the blocking pool, a MiB at a time, so an
//! upload never holds more than that in memory and never stalls an HTTP worker.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};

use super::{ByteStream, FileStorage, StorageError, Stored};

/// Bytes gathered before one blocking write.
const WRITE_BLOCK: usize = 1 << 20;
/// Bytes per item of a read stream.
const READ_BLOCK: usize = 256 << 10;
const INCOMING: &str = ".incoming";
const PART: &str = ".part";

/// Objects in a directory of the local file system.
#[derive(Debug, Clone)]
pub struct LocalDisk {
    root: PathBuf,
}

impl LocalDisk {
    /// Storage under `root` (created, with its `.incoming` directory, when missing). Writes
    /// abandoned by an earlier run are removed.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let incoming = root.join(INCOMING);
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming)?;
        }
        std::fs::create_dir_all(&incoming)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Storage under `root` that starts empty each time: for data held only while a request
    /// runs (upload spool).
    pub fn scratch(root: &Path) -> std::io::Result<Self> {
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        Self::open(root)
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let valid = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(self.root.join(key))
        } else {
            Err(StorageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid storage key {key:?}"),
            )))
        }
    }

    fn part_path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let mut path = self.path(key)?.into_os_string();
        path.push(PART);
        Ok(path.into())
    }
}

/// Removes a file unless disarmed: what an abandoned or failed write leaves is cleaned up even
/// when its future is dropped.
struct Removal(Option<PathBuf>);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A file written from async code a block at a time on the blocking pool, hashed on the way
/// when asked.
struct BlockWriter {
    file: Option<std::fs::File>,
    hasher: Option<Sha256>,
    buffer: BytesMut,
    written: u64,
}

impl BlockWriter {
    fn new(file: std::fs::File, hash: bool) -> Self {
        Self {
            file: Some(file),
            hasher: hash.then(Sha256::new),
            buffer: BytesMut::with_capacity(WRITE_BLOCK),
            written: 0,
        }
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.buffer.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buffer.len() >= WRITE_BLOCK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StorageError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let block = self.buffer.split().freeze();
        let mut file = self.file.take().expect("a writer keeps its file");
        let mut hasher = self.hasher.take();
        let (file, hasher, result) = tokio::task::spawn_blocking(move || {
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&block);
            }
            let result = file.write_all(&block);
            (file, hasher, result)
        })
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?;
        self.file = Some(file);
        self.hasher = hasher;
        result.map_err(StorageError::Io)
    }

    /// Write what is buffered and make it durable; the SHA-256 when hashing.
    async fn finish(mut self) -> Result<Option<String>, StorageError> {
        self.flush().await?;
        let file = self.file.take().expect("a writer keeps its file");
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| StorageError::Io(std::io::Error::other(e)))??;
        Ok(self.hasher.map(|h| hex::encode(h.finalize())))
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
        .map_err(StorageError::Io)
}

fn not_found(key: &str, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        StorageError::Io(e)
    }
}

/// SHA-256 and length of a file, read a block at a time (blocking).
fn hash_file(path: &Path) -> std::io::Result<Stored> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; WRITE_BLOCK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
        size += n as u64;
    }
    Ok(Stored {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

impl LocalDisk {
    /// Keep `body` as the object `key` without hashing it: for bytes held only until they are
    /// copied elsewhere (an upload's chunk in the spool). Its size.
    pub async fn hold(&self, key: &str, body: ByteStream, limit: u64) -> Result<u64, StorageError> {
        self.put_stream(key, body, limit, false)
            .await
            .map(|s| s.size)
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        limit: u64,
        hash: bool,
    ) -> Result<Stored, StorageError> {
        let target = self.path(key)?;
        let temp = self
            .root
            .join(INCOMING)
            .join(format!("{key}-{}", uuid::Uuid::new_v4().simple()));
        let file = {
            let temp = temp.clone();
            blocking(move || std::fs::File::create_new(temp)).await?
        };
        let mut cleanup = Removal(Some(temp.clone()));
        let mut writer = BlockWriter::new(file, hash);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if writer.written + chunk.len() as u64 > limit {
                return Err(StorageError::TooLarge { limit });
            }
            writer.write(&chunk).await?;
        }
        let size = writer.written;
        let sha256 = writer.finish().await?.unwrap_or_default();
        blocking(move || std::fs::rename(temp, target)).await?;
        cleanup.0 = None;
        Ok(Stored { size, sha256 })
    }

    async fn write_part(
        &self,
        key: &str,
        offset: u64,
        len: u64,
        mut body: ByteStream,
    ) -> Result<(), StorageError> {
        let path = self.part_path(key)?;
        let file = blocking(move || {
            let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(file)
        })
        .await
        .map_err(|e| match e {
            StorageError::Io(e) => not_found(key, e),
            e => e,
        })?;
        let mut writer = BlockWriter::new(file, false);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if writer.written + chunk.len() as u64 > len {
                return Err(StorageError::LengthMismatch {
                    declared: len,
                    received: writer.written + chunk.len() as u64,
                });
            }
            writer.write(&chunk).await?;
        }
        if writer.written != len {
            return Err(StorageError::LengthMismatch {
                declared: len,
                received: writer.written,
            });
        }
        writer.finish().await?;
        Ok(())
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        let owned_key = key.to_string();
        let (file, remaining) = blocking(move || {
            let mut file = std::fs::File::open(path)?;
            let size = file.metadata()?.len();
            let range = range.unwrap_or(0..size);
            file.seek(SeekFrom::Start(range.start))?;
            Ok((file, range.end.min(size).saturating_sub(range.start)))
        })
        .await
        .map_err(|e| match e {
            StorageError::Io(e) => not_found(&owned_key, e),
            e => e,
        })?;
        let stream =
            futures_util::stream::try_unfold((file, remaining), |(mut file, left)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = left.min(READ_BLOCK as u64) as usize;
                let (file, block) = blocking(move || {
                    let mut block = vec![0u8; want];
                    file.read_exact(&mut block)?;
                    Ok((file, block))
                })
                .await?;
                Ok(Some((Bytes::from(block), (file, left - want as u64))))
            });
        Ok(Box::pin(stream))
    }
}

impl FileStorage for LocalDisk {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteStream,
        limit: u64,
    ) -> BoxFuture<'a, Result<Stored, StorageError>> {
        self.put_stream(key, body, limit, true).boxed()
    }

    fn begin_parts<'a>(
        &'a self,
        key: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        async move {
            let path = self.part_path(key)?;
            blocking(move || std::fs::File::create_new(path)?.set_len(size)).await
        }
        .boxed()
    }

    fn put_part<'a>(
        &'a self,
        key: &'a str,
        offset: u64,
        len: u64,
        body: ByteStream,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        self.write_part(key, offset, len, body).boxed()
    }

    fn seal<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Stored, StorageError>> {
        async move {
            let part = self.part_path(key)?;
            let target = self.path(key)?;
            blocking(move || {
                let stored = hash_file(&part)?;
                std::fs::rename(&part, target)?;
                Ok(stored)
            })
            .await
            .map_err(|e| match e {
                StorageError::Io(e) => not_found(key, e),
                e => e,
            })
        }
        .boxed()
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, Result<ByteStream, StorageError>> {
        self.read(key, range).boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        async move {
            let paths = [self.path(key)?, self.part_path(key)?];
            blocking(move || {
                for path in paths {
                    match std::fs::remove_file(path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
                Ok(())
            })
            .await
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, StorageError>> {
        let root = self.root.clone();
        async move {
            blocking(move || {
                let mut keys = Vec::new();
                for entry in std::fs::read_dir(root)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !name.contains('.') && entry.file_type()?.is_file() {
                        keys.push(name);
                    }
                }
                keys.sort();
                Ok(keys)
            })
            .await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory.
    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-storage-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, StorageError>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn read_all(disk: &LocalDisk, key: &str, range: Option<Range<u64>>) -> Vec<u8> {
        let mut stream = disk.get(key, range).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_put_object_reads_back_whole_and_by_range_with_its_hash() {
        let dir = scratch();
        let disk = LocalDisk::open(&dir).unwrap();
        let stored = disk
            .put("k1", body(&[b"hello ", b"world"]), 100)
            .await
            .unwrap();
        assert_eq!(stored.size, 11);
        assert_eq!(
            stored.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(read_all(&disk, "k1", None).await, b"hello world");
        assert_eq!(read_all(&disk, "k1", Some(6..11)).await, b"world");
        assert_eq!(disk.list().await.unwrap(), ["k1"]);
    }

    #[tokio::test]
    async fn a_put_past_its_limit_leaves_nothing_behind() {
        let dir = scratch();
        let disk = LocalDisk::open(&dir).unwrap();
        let err = disk
            .put("k2", body(&[b"12345", b"678"]), 6)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { limit: 6 }), "{err}");
        assert!(disk.list().await.unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.join(INCOMING)).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn parts_in_any_order_seal_into_one_object() {
        let dir = scratch();
        let disk = LocalDisk::open(&dir).unwrap();
        disk.begin_parts("k3", 6).await.unwrap();
        disk.put_part("k3", 3, 3, body(&[b"def"])).await.unwrap();
        let short = disk.put_part("k3", 0, 3, body(&[b"ab"])).await.unwrap_err();
        assert!(matches!(
            short,
            StorageError::LengthMismatch {
                declared: 3,
                received: 2
            }
        ));
        disk.put_part("k3", 0, 3, body(&[b"a", b"bc"]))
            .await
            .unwrap();
        assert!(
            disk.list().await.unwrap().is_empty(),
            "not visible before it is sealed"
        );
        let stored = disk.seal("k3").await.unwrap();
        assert_eq!(stored.size, 6);
        assert_eq!(read_all(&disk, "k3", None).await, b"abcdef");
        disk.delete("k3").await.unwrap();
        disk.delete("k3").await.unwrap();
        assert!(matches!(
            disk.get("k3", None).await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[test]
    fn keys_that_could_leave_the_directory_are_refused() {
        let disk = LocalDisk {
            root: PathBuf::from("/nonexistent"),
        };
        assert!(disk.path("../etc/passwd").is_err());
        assert!(disk.path("a/b").is_err());
        assert!(disk.path("").is_err());
        assert!(disk.path("0f3a-11").is_ok());
    }
}
