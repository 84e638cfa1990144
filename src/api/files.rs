//! `/files`: files users upload (whole, or in chunks) and download. A user sees their own
//! files, admins every file. Bytes stream between the client and the file storage; no file is
//! ever held whole in memory. A file is listed once all its bytes are there (`ready`).

use std::ops::Range;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::pagination::PageQuery;
use super::uploads::{self, new_key, not_found, storage_error};
use super::{created, parse_id, resource, Body, State};
use crate::domain::files::{kind_of, validate_fields, validate_name, validate_size, FieldInput};
use crate::store::files::{File, NewFile, READY, SEALING, UPLOADING};

/// A file as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub id: i32,
    /// The same as `id` (Sqlify's `file_id`).
    pub file_id: i32,
    pub name: String,
    /// MIME type, from the name's extension.
    #[serde(rename = "type")]
    #[schema(example = "text/csv")]
    pub mime: String,
    /// `csv`, `json`, `jsonl`, `parquet` or `sql` when the name says; else null.
    pub format: Option<String>,
    /// Bytes (declared, for a chunked upload still uploading).
    pub size: i64,
    /// `uploading` (chunks missing), `sealing` (all bytes in, being published) or `ready`.
    pub status: String,
    /// SHA-256 of the bytes, hex (once ready).
    pub sha256: Option<String>,
    /// The file's schema, detected when its last byte arrived: `format`, `encoding`, the CSV
    /// `dialect` (delimiter, quote, escape, header, lineEnding), and `fields` of
    /// `{name, type, path, nullable}` (path: a CSV column index or a JSONPath).
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// Why the schema could not be detected (the file does not read as its format).
    pub schema_error: Option<String>,
    pub row_count: Option<i64>,
    /// Bytes received so far (chunked uploads not yet ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<i64>,
    /// The runs that used the file, oldest first (`GET /files/{id}`; not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<i32>>,
    /// Where the bytes are read (once ready).
    pub download_url: Option<String>,
    /// Where chunks go (while uploading).
    pub upload_url: Option<String>,
    pub owner_id: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sqlify: `fileId`.
    #[serde(rename = "file_id")]
    pub file_id_sqlify: i32,
    /// Sqlify: `downloadUrl`.
    #[serde(rename = "download_url")]
    pub download_url_sqlify: Option<String>,
    /// Sqlify: `uploadUrl`.
    #[serde(rename = "upload_url")]
    pub upload_url_sqlify: Option<String>,
}

impl From<File> for FileView {
    fn from(f: File) -> Self {
        let data_url = format!("/api/v1/files/{}/data", f.id);
        let ready = f.status == READY;
        Self {
            id: f.id,
            file_id: f.id,
            name: f.name,
            mime: f.mime,
            format: f.format,
            size: f.size,
            sha256: f.sha256,
            schema: f.schema,
            schema_error: f.schema_error,
            row_count: f.row_count,
            received: None,
            runs: None,
            file_id_sqlify: f.id,
            download_url_sqlify: ready.then(|| data_url.clone()),
            upload_url_sqlify: (f.status == UPLOADING).then(|| data_url.clone()),
            download_url: ready.then(|| data_url.clone()),
            upload_url: (f.status == UPLOADING).then_some(data_url),
            status: f.status,
            owner_id: f.owner_id,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// A file made without a multipart body (JSON or form fields): either `size`, an empty file
/// whose bytes come in chunks (`POST /files/{id}/data`), or `url`, fetched now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFile {
    /// Bytes the file will hold (at least 1, at most `files.max_size`).
    #[schema(example = 12582912)]
    pub size: Option<u64>,
    /// An http(s) URL to fetch the file from (streamed; private and loopback addresses are
    /// refused unless listed in `files.allowed_url_hosts`).
    #[schema(example = "https://example.com/orders.csv")]
    pub url: Option<String>,
    /// The file's name; its extension gives `type` and `format` (default: from the URL, or
    /// `upload`).
    #[schema(example = "orders.csv")]
    pub name: Option<String>,
}

/// A file the caller may see that is ready to be worked on (`field`: the request's name for
/// its id).
pub(super) async fn ready(
    state: &State,
    caller: &Caller,
    id: i32,
    field: &str,
) -> Result<File, ApiError> {
    let file = visible(state, caller, id).await.map_err(|e| ApiError {
        field: Some(field.into()),
        ..e
    })?;
    if file.status != READY {
        return Err(ApiError::new(
            ErrorCode::FileNotReady,
            format!(
                "file {} is {}: it is worked on once it is ready",
                file.id, file.status
            ),
        ));
    }
    Ok(file)
}

/// The file, when the caller may see it (its owner or an admin); 404 otherwise.
pub(super) async fn visible(state: &State, caller: &Caller, id: i32) -> Result<File, ApiError> {
    match state.store.get_file(id).await? {
        Some(f) if caller.admin || f.owner_id == caller.id => Ok(f),
        _ => Err(not_found(id)),
    }
}

#[utoipa::path(post, path = "/api/v1/files", tag = "files",
    description = "Three ways in. `multipart/form-data` with a `file` part: a simple upload, streamed to storage (the answer is the ready file). JSON or form fields `{size, name}`: an empty file for a chunked upload (send its chunks to `uploadUrl`). `{url, name}`: the file fetched from an http(s) URL, streamed (400 `url_not_allowed` for private, loopback and link-local addresses unless allowed; 502 `url_fetch_failed` when the server cannot be reached or answers an error).",
    request_body(content = CreateFile, description = "JSON or form fields for a chunked upload; or multipart `file=@…` for a simple one"),
    responses((status = 201, body = FileView, headers(("Location" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, description = "Past files.max_size; nothing is kept", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn create_file(
    state: State,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let mut payload = payload.into_inner();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let multipart = actix_multipart::Multipart::from_request(&req, &mut payload).await?;
        let file = uploads::simple(&state, &caller, declared, multipart).await?;
        return Ok(created_file(file));
    }
    let input = if content_type.starts_with("application/x-www-form-urlencoded") {
        let bytes = web::Bytes::from_request(&req, &mut payload).await?;
        uploads::form::<CreateFile>(&bytes)?
    } else if content_type.is_empty() || content_type.starts_with("application/json") {
        Body::<CreateFile>::from_request(&req, &mut payload)
            .await?
            .into_inner()
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "POST /files takes multipart/form-data (an upload), JSON or form fields (a chunked upload)",
        )
        .into());
    };
    let file = match (input.size, input.url) {
        (Some(size), None) => begin_chunked(&state, &caller, size, input.name).await?,
        (None, Some(url)) => uploads::from_url(&state, &caller, &url, input.name).await?,
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "url",
                "give `size` (a chunked upload) or `url`, not both",
            )
            .into())
        }
        (None, None) => {
            return Err(ApiError::validation(
                "size",
                "`size` (a chunked upload) or `url` is required",
            )
            .into())
        }
    };
    Ok(created_file(file))
}

fn created_file(file: File) -> HttpResponse {
    created(format!("/api/v1/files/{}", file.id), FileView::from(file))
}

async fn begin_chunked(
    state: &State,
    caller: &Caller,
    size: u64,
    name: Option<String>,
) -> Result<File, ApiError> {
    let name = validate_name(name.as_deref().unwrap_or("upload"))?;
    validate_size(size, state.settings.files.max_size)?;
    let key = new_key();
    state
        .files
        .begin_parts(&key, size)
        .await
        .map_err(storage_error)?;
    let (mime, format) = kind_of(&name);
    let new = NewFile {
        owner_id: caller.id,
        name,
        mime: mime.into(),
        format: format.map(Into::into),
        size: size as i64,
        status: UPLOADING,
        storage_key: key.clone(),
        sha256: None,
    };
    match state.store.create_file(new).await {
        Ok(file) => {
            tracing::info!(file_id = file.id, size, "Chunked upload begun.");
            Ok(file)
        }
        Err(e) => {
            let _ = state.files.delete(&key).await;
            Err(e.into())
        }
    }
}

#[utoipa::path(get, path = "/api/v1/files", tag = "files",
    description = "Ready files: the caller's own (admins: everyone's).",
    params(PageQuery),
    responses((status = 200, body = [FileView], headers(("X-Total-Count" = u64), ("Link" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_files(
    state: State,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.validate()?;
    let owner = (!caller.admin).then_some(caller.id);
    let (rows, total) = state.store.list_files(owner, &page.params()).await?;
    let items: Vec<FileView> = rows.into_iter().map(Into::into).collect();
    Ok(page.respond(&req, items, total))
}

#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files",
    params(("id" = i32, Path)),
    responses((status = 200, body = FileView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_file(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<FileView>, ApiError> {
    let file = visible(&state, &caller, parse_id(&path)?).await?;
    let runs = state.store.runs_of_file(file.id).await?;
    let view = with_received(&state, file).await?;
    Ok(web::Json(FileView {
        runs: Some(runs.into_iter().map(|r| r.id).collect()),
        ..view
    }))
}

/// The view of a file, with the bytes received so far while it is uploading.
async fn with_received(state: &State, file: File) -> Result<FileView, ApiError> {
    let received = if file.status == READY {
        None
    } else {
        Some(state.store.written_bytes(file.id).await?)
    };
    Ok(FileView {
        received,
        ..file.into()
    })
}

#[utoipa::path(get, path = "/api/v1/files/{id}/data", tag = "files",
    description = "The file's bytes, streamed, with `Content-Type`, `Content-Length`, `Content-Disposition` and `ETag` (its SHA-256). One HTTP `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gives 206 with `Content-Range`.",
    params(("id" = i32, Path), ("Range" = Option<String>, Header)),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not ready (chunks missing)", body = ErrorBody),
        (status = 416, body = ErrorBody)))]
pub async fn download_file(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = visible(&state, &caller, parse_id(&path)?).await?;
    if file.status != READY {
        return Err(ApiError::new(
            ErrorCode::FileNotReady,
            format!(
                "file {} is {}: its bytes are not all there yet",
                file.id, file.status
            ),
        ));
    }
    let size = file.size as u64;
    let range = match parse_range(req.headers().get(header::RANGE), size) {
        Ok(range) => range,
        Err(detail) => {
            let mut response =
                ApiError::new(ErrorCode::RangeNotSatisfiable, detail).error_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let body = state
        .files
        .get(&file.storage_key, range.clone())
        .await
        .map_err(storage_error)?;
    let mut response = match &range {
        Some(r) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    response
        .insert_header((header::CONTENT_TYPE, file.mime.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(disposition(&file.name));
    if let Some(sha) = &file.sha256 {
        response.insert_header((header::ETAG, format!("\"{sha}\"")));
    }
    let length = range.map_or(size, |r| r.end - r.start);
    Ok(response.no_chunking(length).streaming(body))
}

/// `attachment` with the name: ASCII-safe `filename` and the exact name as `filename*`.
pub(super) fn disposition(name: &str) -> header::ContentDisposition {
    use header::{Charset, DispositionParam, DispositionType, ExtendedValue};
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut parameters = vec![DispositionParam::Filename(ascii)];
    if !name.is_ascii() {
        parameters.push(DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".into()),
            language_tag: None,
            value: name.as_bytes().to_vec(),
        }));
    }
    header::ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters,
    }
}

/// One byte range of a file of `size` bytes, from a `Range` header; `Err` says why it cannot
/// be served (416).
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<Option<Range<u64>>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| "the Range header is not text".to_string())?;
    let spec = text
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("Range {text:?} is not a byte range (bytes=…)"))?;
    if spec.contains(',') {
        return Err(format!(
            "Range {text:?} asks for several ranges; one is served"
        ));
    }
    let (first, last) = spec
        .split_once('-')
        .ok_or_else(|| format!("Range {text:?} is not first-last"))?;
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let range = match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) if n > 0 => size.saturating_sub(n)..size,
        // bytes=a-
        (false, Some(a), None) if last.trim().is_empty() && a < size => a..size,
        // bytes=a-b
        (false, Some(a), Some(b)) if a <= b && a < size => a..(b + 1).min(size),
        _ => {
            return Err(format!(
                "Range {text:?} does not fit the file's {size} bytes"
            ))
        }
    };
    if range.is_empty() {
        return Err(format!("Range {text:?} is empty"));
    }
    Ok(Some(range))
}

#[utoipa::path(post, path = "/api/v1/files/{id}/data", tag = "files",
    description = "One chunk of a chunked upload: multipart parts `file` (the bytes), `offset` and `size`, in any order. Chunks are multiples of 5 MiB but the last; they may come in any order, and a chunk sent again is accepted once more without being written twice. 200 with the file for a chunk; 201 when the last missing byte arrives (the file is then ready).",
    params(("id" = i32, Path)),
    responses((status = 200, body = FileView), (status = 201, body = FileView),
        (status = 400, description = "chunk_out_of_bounds, chunk_misaligned, chunk_overlap, chunk_size_mismatch", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The same chunk is being uploaded, or the file is being sealed", body = ErrorBody)))]
pub async fn upload_chunk(
    state: State,
    caller: Caller,
    path: web::Path<String>,
    multipart: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let file = visible(&state, &caller, parse_id(&path)?).await?;
    let placed = uploads::chunk(state.clone(), file, multipart).await?;
    let id = placed.file.id;
    let view = with_received(&state, placed.file).await?;
    Ok(if placed.complete {
        created(format!("/api/v1/files/{id}"), view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// A schema set by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSchema {
    /// The fields, in order; they replace the detected ones.
    pub schema: Vec<FieldInput>,
}

#[utoipa::path(patch, path = "/api/v1/files/{id}", tag = "files",
    description = "Set or edit a ready file's schema (`POST /files/{id}` does the same): its fields replace the detected ones; format, encoding and CSV dialect stay as detected. Paths are CSV column indexes or JSONPath expressions.",
    params(("id" = i32, Path)), request_body = SetSchema,
    responses((status = 200, body = FileView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not ready", body = ErrorBody)))]
pub async fn set_schema(
    state: State,
    caller: Caller,
    path: web::Path<String>,
    body: Body<SetSchema>,
) -> Result<web::Json<FileView>, ApiError> {
    let file = visible(&state, &caller, parse_id(&path)?).await?;
    if file.status != READY {
        return Err(ApiError::new(
            ErrorCode::FileNotReady,
            format!(
                "file {} is {}: its schema is set once it is ready",
                file.id, file.status
            ),
        ));
    }
    let detected = file.schema.clone().filter(serde_json::Value::is_object);
    let columns = detected
        .as_ref()
        .filter(|s| s["format"] == "csv" || s["format"] == "parquet")
        .and_then(|s| s["fields"].as_array().map(Vec::len));
    let fields = validate_fields(body.into_inner().schema, file.format.as_deref(), columns)?;
    let mut schema = detected.unwrap_or_else(|| serde_json::json!({ "format": file.format }));
    schema["fields"] = serde_json::to_value(fields).map_err(ApiError::internal)?;
    schema["edited"] = true.into();
    let updated = state
        .store
        .set_file_schema(file.id, None, Ok(schema))
        .await?
        .ok_or_else(|| not_found(file.id))?;
    tracing::info!(file_id = file.id, "File schema set.");
    Ok(web::Json(updated.into()))
}

#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files",
    description = "The file and its bytes. A chunked upload may be abandoned this way.",
    params(("id" = i32, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Being sealed, or used by a queued or running run", body = ErrorBody)))]
pub async fn delete_file(
    state: State,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = visible(&state, &caller, parse_id(&path)?).await?;
    if file.status == SEALING {
        return Err(ApiError::new(
            ErrorCode::FileNotReady,
            format!(
                "file {} is being sealed; delete it once it is ready",
                file.id
            ),
        ));
    }
    let runs: Vec<String> = state
        .store
        .runs_of_file(file.id)
        .await?
        .into_iter()
        .filter(|r| !r.status.is_final())
        .map(|r| format!("run {}", r.id))
        .collect();
    let transfers = state
        .store
        .transfers_of_file(file.id)
        .await?
        .into_iter()
        .filter(|t| !t.status.is_final())
        .map(|t| format!("transfer {}", t.id));
    let active: Vec<String> = runs.into_iter().chain(transfers).collect();
    if !active.is_empty() {
        return Err(ApiError::new(
            ErrorCode::FileInUse,
            format!(
                "file {} is used by queued or running jobs ({}); cancel them first",
                file.id,
                active.join(", ")
            ),
        ));
    }
    if !state.store.delete_file(file.id).await? {
        return Err(not_found(file.id));
    }
    if let Err(e) = state.files.delete(&file.storage_key).await {
        tracing::warn!(file_id = file.id, error = %e, "The bytes of a deleted file stay behind.");
    }
    tracing::info!(file_id = file.id, "File deleted.");
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/files")
            .route(web::post().to(create_file))
            .route(web::get().to(list_files)),
    )
    .service(
        resource("/files/{id}")
            .route(web::get().to(get_file))
            .route(web::patch().to(set_schema))
            .route(web::post().to(set_schema))
            .route(web::delete().to(delete_file)),
    )
    .service(
        resource("/files/{id}/data")
            .route(web::get().to(download_file))
            .route(web::post().to(upload_chunk)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str, size: u64) -> Result<Option<Range<u64>>, String> {
        parse_range(Some(&HeaderValue::from_str(text).unwrap()), size)
    }

    #[test]
    fn byte_ranges_are_read_as_rfc_9110_says() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(range("bytes=0-3", 10), Ok(Some(0..4)));
        assert_eq!(range("bytes=5-", 10), Ok(Some(5..10)));
        assert_eq!(range("bytes=-3", 10), Ok(Some(7..10)));
        assert_eq!(range("bytes=-30", 10), Ok(Some(0..10)));
        assert_eq!(range("bytes=8-100", 10), Ok(Some(8..10)));
        for bad in [
            "bytes=10-",
            "bytes=4-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert!(range(bad, 10).is_err(), "{bad}");
        }
    }
}
