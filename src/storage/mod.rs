//! Where the bytes of uploaded and produced files live, behind one small trait, so that an
//! object store can replace the local disk (and several nodes share one store) without the API
//! or the engine changing. Metadata (names, sizes, schemas) is the store's; bytes are here.
//!
//! Objects are named by opaque keys that Sluice makes itself (never a user's file name). An
//! object appears whole or not at all: `put` writes aside and publishes at the end, and a
//! multi-part object is readable only after `seal`.

pub mod bridge;
mod local;
pub mod remote;

use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::Stream;

pub use local::LocalDisk;

/// A stream of an object's bytes (or of a request's body going into one).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// What was stored: its length and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// More bytes came than the limit allows; nothing was kept.
    #[error("the data is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// A part's bytes did not match its declared length; the part is not counted.
    #[error("{received} bytes arrived where {declared} were declared")]
    LengthMismatch { declared: u64, received: u64 },
    #[error("no object {0}")]
    NotFound(String),
    /// The client's body stream failed (connection dropped, malformed multipart).
    #[error("the upload broke off: {0}")]
    Body(String),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
}

/// Byte storage for files. Every method is cancel-safe in the sense that an abandoned call
/// leaves no visible object behind.
pub trait FileStorage: Send + Sync + 'static {
    /// Store `body` as the object `key`, at most `limit` bytes; visible only when complete.
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteStream,
        limit: u64,
    ) -> BoxFuture<'a, Result<Stored, StorageError>>;

    /// Begin a multi-part object of `size` bytes (parts come later, in any order).
    fn begin_parts<'a>(
        &'a self,
        key: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<(), StorageError>>;

    /// Write one part: exactly `len` bytes of `body` at `offset` of a begun object.
    fn put_part<'a>(
        &'a self,
        key: &'a str,
        offset: u64,
        len: u64,
        body: ByteStream,
    ) -> BoxFuture<'a, Result<(), StorageError>>;

    /// Publish a multi-part object once all its parts are written.
    fn seal<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Stored, StorageError>>;

    /// Read `range` of an object (the whole object for `None`).
    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, Result<ByteStream, StorageError>>;

    /// Remove an object, sealed or not; removing one that is gone is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;

    /// The keys of sealed objects (for finding orphans).
    fn list(&self) -> BoxFuture<'_, Result<Vec<String>, StorageError>>;
}
