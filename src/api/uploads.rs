//! Multipart uploads into the file storage: a whole file (`POST /files`) or one chunk of a
//! chunked upload (`POST /files/{id}/data`). The request's parts are streamed through a small
//! channel into storage; nothing is gathered in memory.

use actix_multipart::{Field, Multipart};
use bytes::Bytes;
use futures_util::StreamExt;

use super::auth::Caller;
use super::error::{ApiError, ErrorCode};
use super::State;
use crate::domain::files::{kind_of, validate_chunk, validate_name};
use crate::storage::{ByteStream, FileStorage, StorageError};
use crate::store::files::{Claim, File, NewFile, READY, SEALING, UPLOADING};

/// Room for a multipart body's boundaries and part headers beyond the file's own bytes.
const MULTIPART_OVERHEAD: u64 = 1 << 20;
/// Largest text part (`offset`, `size`, an option).
const MAX_TEXT_PART: usize = 4096;
/// Bytes of an over-long upload read (and dropped) after refusing it, so that the client
/// reads the refusal rather than a reset connection.
const DRAIN_AFTER_REFUSAL: u64 = 64 << 20;

pub(super) fn not_found(id: i32) -> ApiError {
    ApiError::new(ErrorCode::FileNotFound, format!("file {id} does not exist"))
}

/// Storage failures as answers: limits are the client's, the rest is ours.
pub(super) fn storage_error(e: StorageError) -> ApiError {
    match e {
        StorageError::TooLarge { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file is larger than the limit of {limit} bytes (files.max_size)"),
        ),
        StorageError::LengthMismatch { declared, received } => ApiError {
            field: Some("size".into()),
            ..ApiError::new(
                ErrorCode::ChunkSizeMismatch,
                format!("the chunk holds {received} bytes, its size says {declared}"),
            )
        },
        StorageError::Body(e) => {
            ApiError::new(ErrorCode::InvalidBody, format!("the upload broke off: {e}"))
        }
        other => ApiError::internal(other),
    }
}

/// A fresh storage key (never derived from a user's input).
pub(super) fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A form body (`application/x-www-form-urlencoded`) as `T`; an unknown field is an error.
pub fn form<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(bytes).map_err(|e| {
        let message = e.to_string();
        let code = if message.starts_with("unknown field") {
            ErrorCode::UnknownField
        } else {
            ErrorCode::InvalidBody
        };
        ApiError::new(code, message)
    })
}

/// A multipart part as a `Send` byte stream for storage, and the future that feeds it (run
/// both together). Parts are not `Send`; the channel is.
fn pump(mut field: Field) -> (ByteStream, impl std::future::Future<Output = Field>) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, StorageError>>(4);
    let feed = async move {
        while let Some(item) = field.next().await {
            let item = item.map_err(|e| StorageError::Body(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
        field
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (Box::pin(stream), feed)
}

/// Read what is left of a refused part, up to a bound, so the answer reaches the client.
async fn drain(mut field: Field) {
    let mut read = 0u64;
    while let Some(Ok(bytes)) = field.next().await {
        read += bytes.len() as u64;
        if read > DRAIN_AFTER_REFUSAL {
            break;
        }
    }
}

pub async fn text_part(field: &mut Field, name: &str) -> Result<String, ApiError> {
    let mut text = Vec::new();
    while let Some(bytes) = field.next().await {
        let bytes = bytes.map_err(|e| ApiError::new(ErrorCode::InvalidBody, e.to_string()))?;
        text.extend_from_slice(&bytes);
        if text.len() > MAX_TEXT_PART {
            return Err(ApiError::validation(name, format!("`{name}` is too long")));
        }
    }
    String::from_utf8(text).map_err(|_| ApiError::validation(name, format!("`{name}` is not text")))
}

pub async fn number_part(field: &mut Field, name: &str) -> Result<u64, ApiError> {
    let text = text_part(field, name).await?;
    text.trim().parse::<u64>().map_err(|_| {
        ApiError::validation(
            name,
            format!("`{name}` must be a whole number of bytes, not {text:?}"),
        )
    })
}

pub fn unknown_part(name: &str, known: &str) -> ApiError {
    ApiError {
        field: Some(name.to_string()),
        ..ApiError::new(
            ErrorCode::UnknownField,
            format!("unknown multipart part {name:?} (known parts: {known})"),
        )
    }
}

pub async fn next_field(multipart: &mut Multipart) -> Result<Option<Field>, ApiError> {
    match multipart.next().await {
        None => Ok(None),
        Some(Ok(field)) => Ok(Some(field)),
        Some(Err(e)) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("the multipart body cannot be read: {e}"),
        )),
    }
}

/// A `file` part streamed into storage (at most `files.max_size`): its storage key, its name
/// (from the part's file name) and what was stored. Its row is the caller's to make
/// (`stored_file`), or its bytes to delete.
pub async fn file_part(
    state: &State,
    field: Field,
) -> Result<(String, String, crate::storage::Stored), ApiError> {
    let given = field
        .content_disposition()
        .and_then(|d| d.get_filename())
        .unwrap_or("upload")
        .to_string();
    let name = validate_name(&given)?;
    let key = new_key();
    let (body, feed) = pump(field);
    let limit = state.settings.files.max_size;
    let (put, field) = tokio::join!(state.files.put(&key, body, limit), feed);
    match put {
        Ok(put) => Ok((key, name, put)),
        Err(e) => {
            drain(field).await;
            Err(storage_error(e))
        }
    }
}

/// A simple upload: the `file` part streamed into storage, then the file's row, ready.
pub async fn simple(
    state: &State,
    caller: &Caller,
    content_length: Option<u64>,
    mut multipart: Multipart,
) -> Result<File, ApiError> {
    let limit = state.settings.files.max_size;
    if content_length.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(storage_error(StorageError::TooLarge { limit }));
    }
    let mut stored = None;
    let result = async {
        while let Some(field) = next_field(&mut multipart).await? {
            let part = field.name().unwrap_or_default().to_string();
            if part != "file" {
                return Err(unknown_part(&part, "file"));
            }
            if stored.is_some() {
                return Err(ApiError::validation("file", "one `file` part per upload"));
            }
            stored = Some(file_part(state, field).await?);
        }
        Ok(())
    }
    .await;
    match (result, stored) {
        (Ok(()), Some((key, name, put))) => stored_file(state, caller, key, name, put).await,
        (Ok(()), None) => Err(ApiError::validation("file", "the `file` part is missing")),
        (Err(e), stored) => {
            if let Some((key, _, _)) = stored {
                let _ = state.files.delete(&key).await;
            }
            Err(e)
        }
    }
}

/// A file fetched from an http(s) URL, streamed into storage, ready.
pub async fn from_url(
    state: &State,
    caller: &Caller,
    url: &str,
    name: Option<String>,
) -> Result<File, ApiError> {
    use crate::storage::remote::{fetch, FetchError, UrlPolicy};
    let settings = &state.settings.files;
    let policy = UrlPolicy {
        allowed_hosts: settings.allowed_url_hosts.clone(),
        timeout: std::time::Duration::from_secs(settings.url_timeout_secs),
    };
    let fetched = fetch(url, &policy).await.map_err(|e| match e {
        FetchError::NotAllowed(why) => ApiError {
            field: Some("url".into()),
            ..ApiError::new(ErrorCode::UrlNotAllowed, why)
        },
        FetchError::Failed(why) => ApiError::new(ErrorCode::UrlFetchFailed, why),
    })?;
    let limit = settings.max_size;
    if fetched.length.is_some_and(|n| n > limit) {
        return Err(storage_error(StorageError::TooLarge { limit }));
    }
    let name = validate_name(name.or(fetched.name).as_deref().unwrap_or("download"))?;
    let key = new_key();
    let put = state
        .files
        .put(&key, fetched.body, limit)
        .await
        .map_err(|e| match e {
            StorageError::Body(why) => {
                ApiError::new(ErrorCode::UrlFetchFailed, format!("reading {url}: {why}"))
            }
            other => storage_error(other),
        })?;
    stored_file(state, caller, key, name, put).await
}

/// The row of a file whose bytes are stored, with its schema; the bytes are removed when the
/// file cannot be kept.
pub async fn stored_file(
    state: &State,
    caller: &Caller,
    key: String,
    name: String,
    put: crate::storage::Stored,
) -> Result<File, ApiError> {
    let outcome = if put.size == 0 {
        Err(ApiError {
            field: Some("file".into()),
            ..ApiError::new(ErrorCode::EmptyFile, "the file is empty (0 bytes)")
        })
    } else {
        let (mime, format) = kind_of(&name);
        let new = NewFile {
            owner_id: caller.id,
            name,
            mime: mime.into(),
            format: format.map(Into::into),
            size: put.size as i64,
            status: READY,
            storage_key: key.clone(),
            sha256: Some(put.sha256),
        };
        state.store.create_file(new).await.map_err(ApiError::from)
    };
    match outcome {
        Ok(file) => {
            tracing::info!(file_id = file.id, size = file.size, "File stored.");
            Ok(with_schema(state, file).await)
        }
        Err(e) => {
            let _ = state.files.delete(&key).await;
            Err(e)
        }
    }
}

/// A chunk's parts, its bytes held in the spool.
struct Chunk {
    offset: Option<u64>,
    size: Option<u64>,
    spooled: Option<(String, u64)>,
}

/// Read a chunk's parts in whatever order they come; the bytes go to the spool (at most the
/// file's size).
async fn read_chunk(
    state: &State,
    declared: u64,
    multipart: &mut Multipart,
) -> Result<Chunk, ApiError> {
    let mut chunk = Chunk {
        offset: None,
        size: None,
        spooled: None,
    };
    while let Some(mut field) = next_field(multipart).await? {
        let part = field.name().unwrap_or_default().to_string();
        match part.as_str() {
            "offset" => chunk.offset = Some(number_part(&mut field, "offset").await?),
            "size" => chunk.size = Some(number_part(&mut field, "size").await?),
            "file" if chunk.spooled.is_some() => {
                return Err(ApiError::validation("file", "one `file` part per chunk"))
            }
            "file" => {
                let key = new_key();
                let (body, feed) = pump(field);
                let (held, field) = tokio::join!(state.spool.hold(&key, body, declared), feed);
                match held {
                    Ok(size) => chunk.spooled = Some((key, size)),
                    Err(StorageError::TooLarge { .. }) => {
                        drain(field).await;
                        return Err(ApiError {
                            field: Some("file".into()),
                            ..ApiError::new(
                                ErrorCode::ChunkOutOfBounds,
                                format!("the chunk is larger than the file's {declared} bytes"),
                            )
                        });
                    }
                    Err(e) => return Err(storage_error(e)),
                }
            }
            other => return Err(unknown_part(other, "file, offset, size")),
        }
    }
    Ok(chunk)
}

/// A chunk's upload as it left the file: whether it completed it, and the file now.
pub struct Placed {
    pub file: File,
    pub complete: bool,
}

/// One chunk of a chunked upload: checked, claimed, written at its offset; the upload is
/// sealed when it was the last one missing.
pub async fn chunk(state: State, file: File, mut multipart: Multipart) -> Result<Placed, ApiError> {
    let declared = file.size as u64;
    let parts = read_chunk(&state, declared, &mut multipart).await;
    let spooled = parts.as_ref().ok().and_then(|c| c.spooled.clone());
    let result = async {
        let parts = parts?;
        let missing =
            |name: &str| ApiError::validation(name, format!("the `{name}` part is missing"));
        let offset = parts.offset.ok_or_else(|| missing("offset"))?;
        let size = parts.size.ok_or_else(|| missing("size"))?;
        let (key, received) = parts.spooled.ok_or_else(|| missing("file"))?;
        validate_chunk(declared, offset, size)?;
        if received != size {
            return Err(storage_error(StorageError::LengthMismatch {
                declared: size,
                received,
            }));
        }
        // The claim, the write and the seal finish even if the client goes away meanwhile:
        // a claim is never left behind half-done.
        let state = state.clone();
        actix_web::rt::spawn(async move { place_chunk(&state, file, offset, size, &key).await })
            .await
            .map_err(ApiError::internal)?
    }
    .await;
    if let Some((key, _)) = spooled {
        let _ = state.spool.delete(&key).await;
    }
    result
}

async fn place_chunk(
    state: &State,
    file: File,
    offset: u64,
    size: u64,
    spooled: &str,
) -> Result<Placed, ApiError> {
    let claim = state
        .store
        .claim_chunk(file.id, offset as i64, size as i64)
        .await?;
    let written = match claim {
        Claim::Claimed(claim) => {
            let body = state
                .spool
                .get(spooled, None)
                .await
                .map_err(storage_error)?;
            if let Err(e) = state
                .files
                .put_part(&file.storage_key, offset, size, body)
                .await
            {
                let _ = state.store.release_chunk(claim).await;
                return Err(storage_error(e));
            }
            state.store.finish_chunk(claim, file.id).await?
        }
        Claim::AlreadyDone => state.store.written_bytes(file.id).await?,
        Claim::InProgress => {
            return Err(ApiError::new(
                ErrorCode::ChunkInProgress,
                format!("the chunk at offset {offset} is being uploaded by another request"),
            ))
        }
        Claim::Overlaps {
            offset: other,
            size: other_size,
        } => {
            return Err(ApiError {
                field: Some("offset".into()),
                ..ApiError::new(
                    ErrorCode::ChunkOverlap,
                    format!(
                        "a chunk of {size} bytes at offset {offset} overlaps the chunk of \
                         {other_size} bytes at offset {other}"
                    ),
                )
            })
        }
        Claim::NotUploading => return settled(state, file.id).await,
    };
    if written as u64 == file.size as u64 {
        seal(state, file).await
    } else {
        answer(state, file.id, false).await
    }
}

/// The file is past uploading: a chunk of a ready file is answered with the file (it was
/// sent before); one being sealed must wait.
async fn settled(state: &State, id: i32) -> Result<Placed, ApiError> {
    let file = state
        .store
        .get_file(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if file.status == SEALING {
        return Err(ApiError::new(
            ErrorCode::FileNotReady,
            format!("file {id} is being sealed; its chunks are all in"),
        ));
    }
    answer(state, id, false).await
}

/// Publish an upload whose bytes are all in; of concurrent last chunks, one seals.
async fn seal(state: &State, file: File) -> Result<Placed, ApiError> {
    if !state.store.move_file(file.id, UPLOADING, SEALING).await? {
        return settled(state, file.id).await;
    }
    match state.files.seal(&file.storage_key).await {
        Ok(stored) => {
            state
                .store
                .file_ready(file.id, stored.size as i64, &stored.sha256)
                .await?;
            tracing::info!(
                file_id = file.id,
                size = stored.size,
                "Chunked upload complete."
            );
            if let Some(ready) = state.store.get_file(file.id).await? {
                with_schema(state, ready).await;
            }
            answer(state, file.id, true).await
        }
        Err(e) => {
            let _ = state.store.move_file(file.id, SEALING, UPLOADING).await;
            Err(storage_error(e))
        }
    }
}

/// The file with its schema detected (a file whose bytes do not read gets `schemaError`; a
/// failure of Sluice's own is logged and leaves the file without a schema).
async fn with_schema(state: &State, file: File) -> File {
    match crate::domain::files::detect(
        &state.store,
        &state.files,
        &file,
        crate::engine::infer::default_null_words(),
    )
    .await
    {
        Ok(detected) => detected,
        Err(e) => {
            tracing::warn!(file_id = file.id, error = %e, "Schema detection failed.");
            file
        }
    }
}

async fn answer(state: &State, id: i32, complete: bool) -> Result<Placed, ApiError> {
    let file = state
        .store
        .get_file(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Placed { file, complete })
}
