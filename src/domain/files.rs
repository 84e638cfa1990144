//! Files: what a file name may be, what its name says of its type, and the rules of chunked
//! uploads.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::DomainError;
use crate::codes::ErrorCode;
use crate::engine::detect::{detect_schema, SAMPLE_BYTES};
use crate::engine::file::parquet::Ranged;
use crate::engine::infer::{Detected, DetectedField, FieldType};
use crate::engine::json::path::{JsonPath, Step};
use crate::storage::FileStorage;
use crate::store::files::File;
use crate::store::Store;
use parquet::file::reader::ChunkReader;

/// Chunks of a chunked upload are multiples of this many bytes, but the last.
pub const CHUNK_UNIT: u64 = 5 * 1024 * 1024;
const MAX_NAME_BYTES: usize = 255;

fn refused(code: ErrorCode, field: &str, detail: impl Into<String>) -> DomainError {
    DomainError {
        code,
        field: Some(field.to_string()),
        detail: detail.into(),
    }
}

/// Check a file's name: a base name of 1 to 255 bytes, no path, no control characters.
pub fn validate_name(name: &str) -> Result<String, DomainError> {
    let bad = |why: &str| {
        refused(
            ErrorCode::InvalidFileName,
            "name",
            format!("file name {name:?} {why}"),
        )
    };
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_NAME_BYTES {
        return Err(bad("must be 1 to 255 bytes"));
    }
    if trimmed.contains(['/', '\\']) || trimmed == "." || trimmed == ".." {
        return Err(bad("must be a plain name, not a path"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(bad("must not hold control characters"));
    }
    Ok(trimmed.to_string())
}

/// The MIME type and the data format (when Sluice reads it) a file name's extension says.
pub fn kind_of(name: &str) -> (&'static str, Option<&'static str>) {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => ("text/csv", Some("csv")),
        "tsv" => ("text/tab-separated-values", Some("csv")),
        "json" => ("application/json", Some("json")),
        "jsonl" | "ndjson" => ("application/x-ndjson", Some("jsonl")),
        "parquet" => ("application/vnd.apache.parquet", Some("parquet")),
        "sql" => ("application/sql", Some("sql")),
        "txt" => ("text/plain", None),
        _ => ("application/octet-stream", None),
    }
}

/// The declared size of a chunked upload.
pub fn validate_size(size: u64, max: u64) -> Result<(), DomainError> {
    if size == 0 {
        return Err(refused(
            ErrorCode::EmptyFile,
            "size",
            "a file must hold at least one byte",
        ));
    }
    if size > max {
        return Err(refused(
            ErrorCode::PayloadTooLarge,
            "size",
            format!("{size} bytes is more than the {max} bytes a file may hold"),
        ));
    }
    Ok(())
}

/// Check a chunk of `size` bytes at `offset` of a file of `declared` bytes.
pub fn validate_chunk(declared: u64, offset: u64, size: u64) -> Result<(), DomainError> {
    let end = offset.checked_add(size);
    if size == 0 || end.is_none_or(|end| end > declared) {
        return Err(refused(
            ErrorCode::ChunkOutOfBounds,
            "size",
            format!(
                "a chunk of {size} bytes at offset {offset} does not fit in the file's \
                 {declared} bytes"
            ),
        ));
    }
    let last = end == Some(declared);
    if offset % CHUNK_UNIT != 0 || (!last && size % CHUNK_UNIT != 0) {
        return Err(refused(
            ErrorCode::ChunkMisaligned,
            if offset % CHUNK_UNIT != 0 {
                "offset"
            } else {
                "size"
            },
            format!(
                "chunks are multiples of {CHUNK_UNIT} bytes (5 MiB) but the last one; a chunk \
                 of {size} bytes at offset {offset} of {declared} is not"
            ),
        ));
    }
    Ok(())
}

/// A field of a schema as a user sets it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldInput {
    #[schema(example = "price")]
    pub name: String,
    /// `string` (the default), `integer`, `float`, `json` (Sqlify's words) or `bigint`,
    /// `decimal(p,s)`, `boolean`, `date`, `timestamp`, `timestamptz`, `uuid`, `bytes`.
    #[serde(rename = "type", default)]
    #[schema(example = "decimal(10,2)")]
    pub field_type: Option<String>,
    /// A CSV column index (from 0) or a JSONPath (`$[*].id`, `$.items[*].price`); default: the
    /// field's position (CSV) or `$.name` (JSON).
    #[schema(example = "$[*].price")]
    pub path: Option<String>,
    /// Whether values may be missing (default true).
    pub nullable: Option<bool>,
}

/// Check a schema a user sets on a file of `format` whose detected schema had `columns` CSV
/// columns (when known).
pub fn validate_fields(
    fields: Vec<FieldInput>,
    format: Option<&str>,
    columns: Option<usize>,
) -> Result<Vec<DetectedField>, DomainError> {
    if fields.is_empty() {
        return Err(DomainError::validation(
            "schema",
            "a schema has at least one field",
        ));
    }
    let mut checked: Vec<DetectedField> = Vec::with_capacity(fields.len());
    for (i, field) in fields.into_iter().enumerate() {
        let at = |part: &str| format!("schema[{i}].{part}");
        let name = field.name.trim().to_string();
        if name.is_empty() || name.len() > 255 {
            return Err(DomainError::validation(
                &at("name"),
                "a field name is 1 to 255 bytes",
            ));
        }
        if checked.iter().any(|f| f.name == name) {
            return Err(DomainError::validation(
                &at("name"),
                format!("the field {name:?} appears twice"),
            ));
        }
        let type_text = field.field_type.as_deref().unwrap_or("string");
        let field_type = FieldType::parse(type_text).ok_or_else(|| {
            DomainError::validation(
                &at("type"),
                format!(
                    "{:?} is not a type: string, integer, float, json, bigint, decimal(p,s), \
                     boolean, date, timestamp, timestamptz, uuid or bytes",
                    type_text
                ),
            )
        })?;
        let path = match field.path {
            Some(path) => check_path(&path, format, columns)
                .map_err(|why| DomainError::validation(&at("path"), why))?,
            None if matches!(format, Some("csv" | "parquet")) => i.to_string(),
            None if format == Some("json") => {
                JsonPath(vec![Step::Each, Step::Key(name.clone())]).to_string()
            }
            None => JsonPath(vec![Step::Key(name.clone())]).to_string(),
        };
        checked.push(DetectedField {
            name,
            field_type: field_type.name(),
            path,
            nullable: field.nullable.unwrap_or(true),
        });
    }
    Ok(checked)
}

fn check_path(path: &str, format: Option<&str>, columns: Option<usize>) -> Result<String, String> {
    let path = path.trim();
    let json =
        matches!(format, Some("json" | "jsonl")) || (format.is_none() && path.starts_with('$'));
    if json {
        return JsonPath::parse(path).map(|p| p.to_string());
    }
    let index: usize = path
        .parse()
        .map_err(|_| format!("{path:?} is not a column index (0, 1, …)"))?;
    match columns {
        Some(n) if index >= n => Err(format!(
            "column {index} does not exist: the file has {n} columns"
        )),
        _ => Ok(index.to_string()),
    }
}

/// Detect a ready file's schema from its first bytes and record it on the file, with the
/// format it was read as; a file that does not read records why instead. The file as stored
/// afterwards. CSV cells equal to one of `nulls` are NULL.
pub async fn detect(
    store: &Store,
    files: &Arc<dyn FileStorage>,
    file: &File,
    nulls: Vec<String>,
) -> Result<File, DomainError> {
    let size = file.size.max(0) as u64;
    if file.format.as_deref() == Some("parquet") || starts_as_parquet(files.as_ref(), file).await {
        let ranged = Ranged::new(files.clone(), file.storage_key.clone(), size);
        let found = tokio::task::spawn_blocking(move || parquet_schema(ranged))
            .await
            .map_err(DomainError::internal)?;
        return record_schema(store, file, found).await;
    }
    let take = size.min(SAMPLE_BYTES);
    let mut stream = files
        .get(&file.storage_key, Some(0..take))
        .await
        .map_err(DomainError::internal)?;
    let mut sample = Vec::with_capacity(take as usize);
    while let Some(chunk) = stream.next().await {
        sample.extend_from_slice(&chunk.map_err(DomainError::internal)?);
    }
    let whole = take == size;
    let format = file.format.clone();
    let found = tokio::task::spawn_blocking(move || {
        detect_schema(&sample, whole, format.as_deref(), &nulls)
    })
    .await
    .map_err(DomainError::internal)?;
    record_schema(store, file, found).await
}

/// Whether a file without a known format begins with Parquet's magic bytes.
async fn starts_as_parquet(files: &dyn FileStorage, file: &File) -> bool {
    if file.format.is_some() || file.size < 12 {
        return false;
    }
    let Ok(mut stream) = files.get(&file.storage_key, Some(0..4)).await else {
        return false;
    };
    let mut head = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        head.extend_from_slice(&chunk);
    }
    head == b"PAR1"
}

/// A Parquet file's schema from its footer, in the shape detection records (a field's path is
/// its column index; every row is counted).
pub fn parquet_schema<T: ChunkReader + 'static>(file: T) -> Result<Detected, String> {
    let (columns, rows) = crate::engine::file::parquet::detect(file)?;
    let fields = columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| DetectedField {
            name: c.name,
            field_type: c.field_type.name(),
            path: i.to_string(),
            nullable: c.nullable,
        })
        .collect();
    Ok(Detected {
        format: "parquet".into(),
        encoding: "binary".into(),
        dialect: None,
        fields,
        sampled_rows: rows,
        whole_file: true,
    })
}

async fn record_schema(
    store: &Store,
    file: &File,
    found: Result<Detected, String>,
) -> Result<File, DomainError> {
    let (format, schema) = match found {
        Ok(detected) => (
            Some(detected.format.clone()),
            serde_json::to_value(&detected).map_err(|e| e.to_string()),
        ),
        Err(why) => (None, Err(why)),
    };
    store
        .set_file_schema(file.id, format, schema)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| DomainError::internal(format!("file {} is gone", file.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_base_names_without_paths_or_control_characters() {
        assert_eq!(validate_name(" orders.csv ").unwrap(), "orders.csv");
        for bad in [
            "../../etc/passwd",
            "a\\b",
            "..",
            "",
            "x\ny",
            &"n".repeat(256),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidFileName, "{bad:?}");
        }
    }

    fn field(name: &str, t: &str, path: Option<&str>) -> FieldInput {
        FieldInput {
            name: name.into(),
            field_type: Some(t.into()),
            path: path.map(Into::into),
            nullable: None,
        }
    }

    #[test]
    fn a_schema_set_by_hand_has_known_types_and_paths_that_exist() {
        let fields = validate_fields(
            vec![
                field("id", "Integer", None),
                field("price", "decimal(10,2)", Some("2")),
            ],
            Some("csv"),
            Some(3),
        )
        .unwrap();
        assert_eq!(
            (fields[0].path.as_str(), fields[0].field_type.as_str()),
            ("0", "integer")
        );
        assert_eq!(fields[1].field_type, "decimal(10,2)");
        let json = validate_fields(
            vec![field("p", "float", Some("$.items[*].price"))],
            Some("jsonl"),
            None,
        )
        .unwrap();
        assert_eq!(json[0].path, "$.items[*].price");
        let fail =
            |fields, format, columns| validate_fields(fields, format, columns).unwrap_err().field;
        assert_eq!(
            fail(vec![field("x", "varchar", None)], Some("csv"), None),
            Some("schema[0].type".into())
        );
        assert_eq!(
            fail(vec![field("x", "string", Some("3"))], Some("csv"), Some(3)),
            Some("schema[0].path".into())
        );
        assert_eq!(
            fail(vec![field("x", "string", Some("id"))], Some("json"), None),
            Some("schema[0].path".into())
        );
        assert_eq!(
            fail(
                vec![field("x", "string", None), field("x", "json", None)],
                None,
                None
            ),
            Some("schema[1].name".into())
        );
        assert_eq!(fail(vec![], None, None), Some("schema".into()));
    }

    #[test]
    fn extensions_give_mime_and_format() {
        assert_eq!(kind_of("a.CSV"), ("text/csv", Some("csv")));
        assert_eq!(kind_of("a.ndjson"), ("application/x-ndjson", Some("jsonl")));
        assert_eq!(kind_of("noext"), ("application/octet-stream", None));
    }

    #[test]
    fn chunks_are_five_mib_multiples_but_the_last_and_fit_the_file() {
        let declared = 2 * CHUNK_UNIT + 7;
        assert!(validate_chunk(declared, 0, CHUNK_UNIT).is_ok());
        assert!(validate_chunk(declared, 0, 2 * CHUNK_UNIT).is_ok());
        assert!(validate_chunk(declared, 2 * CHUNK_UNIT, 7).is_ok());
        let code = |o, s| validate_chunk(declared, o, s).unwrap_err().code;
        assert_eq!(code(0, CHUNK_UNIT - 1), ErrorCode::ChunkMisaligned);
        assert_eq!(code(1, CHUNK_UNIT), ErrorCode::ChunkMisaligned);
        assert_eq!(code(2 * CHUNK_UNIT, 8), ErrorCode::ChunkOutOfBounds);
        assert_eq!(code(u64::MAX, 2), ErrorCode::ChunkOutOfBounds);
        assert_eq!(code(0, 0), ErrorCode::ChunkOutOfBounds);
    }
}
