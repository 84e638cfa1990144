//! Converting a stored file into another format: the conversion's plan from the file's schema
//! (or the one given), and the run of it from storage to storage, streamed both ways through
//! the engine's converter on the blocking pool.

use std::io::{Read, Write};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::files::{validate_fields, FieldInput};
use super::DomainError;
use crate::codes::ErrorCode;
use crate::engine::convert::{convert, CsvInput, CsvOutput, Field, FieldPath, Input, Output};
use crate::engine::infer::{DetectedField, FieldType};
use crate::engine::json::path::{JsonPath, Step};
use crate::engine::EngineError;
use crate::storage::{ByteStream, FileStorage, StorageError, Stored};
use crate::store::files::File;

/// How a file is converted (Sqlify's `options`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertOptions {
    /// The input format (`csv`, `json`, `jsonl`); default: the file's.
    pub from: Option<String>,
    /// The output format: `csv`, `json` or `jsonl`.
    pub to: Option<String>,
    /// The fields to write, in order (default: the file's schema).
    pub schema: Option<Vec<FieldInput>>,
    pub output: Option<OutputOptions>,
    pub input: Option<InputOptions>,
}

/// How the output is written (CSV).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputOptions {
    /// One character (`\t` for a tab); default `,`.
    pub separator: Option<String>,
    /// One character; default `"`.
    pub quote: Option<String>,
    /// `true` (default) or `false`.
    pub header: Option<String>,
}

/// How a CSV input is read, where detection got it wrong.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputOptions {
    pub separator: Option<String>,
    pub quote: Option<String>,
    pub header: Option<String>,
}

fn option_error(field: &str, detail: impl Into<String>) -> DomainError {
    DomainError::validation(&format!("options[{field}]"), detail)
}

fn one_byte(field: &str, text: &str) -> Result<u8, DomainError> {
    let text = if text == "\\t" { "\t" } else { text };
    match text.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(option_error(
            field,
            format!("{text:?} is not one ASCII character"),
        )),
    }
}

fn flag(field: &str, text: &str) -> Result<bool, DomainError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(option_error(
            field,
            format!("{text:?} is not true or false"),
        )),
    }
}

/// The name of a file converted to `to`: `orders.csv` → `orders.jsonl`.
pub fn output_name(name: &str, to: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!("{stem}.{to}")
}

/// A conversion, planned.
#[derive(Debug, Clone)]
pub struct Plan {
    pub input: Input,
    pub fields: Vec<Field>,
    pub output: Output,
    /// The output format's name and MIME type.
    pub to: &'static str,
    pub mime: &'static str,
}

/// The conversion of `file` that `options` ask for.
pub fn plan(file: &File, options: &ConvertOptions) -> Result<Plan, DomainError> {
    let schema = file.schema.as_ref();
    let from = options
        .from
        .clone()
        .or_else(|| file.format.clone())
        .ok_or_else(|| option_error("from", "the file's format is unknown: give options[from]"))?;
    let (to, mime) = match options.to.as_deref() {
        Some("csv") => ("csv", "text/csv"),
        Some("json") => ("json", "application/json"),
        Some("jsonl") => ("jsonl", "application/x-ndjson"),
        Some(other) => {
            return Err(option_error(
                "to",
                format!("{other:?}: Sluice converts to csv, json or jsonl (sql and parquet are not there yet)"),
            ))
        }
        None => return Err(option_error("to", "options[to] is required: csv, json or jsonl")),
    };
    let dialect = schema.map(|s| &s["dialect"]).filter(|d| d.is_object());
    let input = match from.as_str() {
        "csv" => {
            let given = options.input.clone().unwrap_or_default();
            let detected = |key: &str| dialect.and_then(|d| d[key].as_str()).map(str::to_string);
            let delimiter = given
                .separator
                .or_else(|| detected("delimiter"))
                .unwrap_or(",".into());
            let quote = given
                .quote
                .or_else(|| detected("quote"))
                .unwrap_or("\"".into());
            let escape = detected("escape").unwrap_or_else(|| quote.clone());
            let header = match given.header {
                Some(h) => flag("input][header", &h)?,
                None => dialect.and_then(|d| d["header"].as_bool()).unwrap_or(true),
            };
            let quote = one_byte("input][quote", &quote)?;
            let escape = one_byte("input][quote", &escape)?;
            Input::Csv(CsvInput {
                delimiter: one_byte("input][separator", &delimiter)?,
                quote,
                escape: (escape != quote).then_some(escape),
                header,
            })
        }
        "json" => Input::Json,
        "jsonl" => Input::JsonLines,
        other => {
            return Err(option_error(
                "from",
                format!("{other:?}: Sluice converts from csv, json or jsonl"),
            ))
        }
    };
    let detected: Vec<DetectedField> = match &options.schema {
        Some(given) => {
            let columns = schema
                .filter(|s| s["format"] == "csv")
                .and_then(|s| s["fields"].as_array().map(Vec::len));
            validate_fields(given.clone(), Some(from.as_str()), columns)?
        }
        None => {
            let fields = schema.map(|s| s["fields"].clone()).unwrap_or_default();
            serde_json::from_value(fields).map_err(|_| {
                DomainError::validation(
                    "options[schema]",
                    format!(
                        "file {} has no schema ({}); give options[schema]",
                        file.id,
                        file.schema_error.as_deref().unwrap_or("none was detected")
                    ),
                )
            })?
        }
    };
    let fields = detected
        .into_iter()
        .map(|f| field(f, &input))
        .collect::<Result<_, _>>()?;
    let output = match to {
        "csv" => {
            let given = options.output.clone().unwrap_or_default();
            Output::Csv(CsvOutput {
                separator: one_byte(
                    "output][separator",
                    given.separator.as_deref().unwrap_or(","),
                )?,
                quote: one_byte("output][quote", given.quote.as_deref().unwrap_or("\""))?,
                header: given
                    .header
                    .map_or(Ok(true), |h| flag("output][header", &h))?,
            })
        }
        "json" => Output::Json,
        _ => Output::JsonLines,
    };
    Ok(Plan {
        input,
        fields,
        output,
        to,
        mime,
    })
}

/// A field of a schema as the converter reads it.
fn field(f: DetectedField, input: &Input) -> Result<Field, DomainError> {
    let bad = |why: String| {
        DomainError::validation("options[schema]", format!("field {:?}: {why}", f.name))
    };
    let field_type = FieldType::parse(&f.field_type)
        .ok_or_else(|| bad(format!("{:?} is not a type", f.field_type)))?;
    let path = match input {
        Input::Csv(_) => FieldPath::Column(
            f.path
                .parse()
                .map_err(|_| bad(format!("{:?} is not a column index", f.path)))?,
        ),
        Input::Json | Input::JsonLines => {
            let mut steps = JsonPath::parse(&f.path).map_err(bad)?.0;
            // `$[*].a` of an array of records: the record is the array's element.
            if matches!(input, Input::Json) && steps.first() == Some(&Step::Each) {
                steps.remove(0);
            }
            FieldPath::Json(steps)
        }
    };
    Ok(Field {
        name: f.name,
        field_type,
        path,
    })
}

/// A blocking reader of an async byte stream (fed by a task).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, StorageError>>,
    current: Bytes,
}

impl Read for ChannelReader {
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

/// A blocking writer into an async byte stream.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, StorageError>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the output's storage stopped taking bytes"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn receiver_stream(rx: tokio::sync::mpsc::Receiver<Result<Bytes, StorageError>>) -> ByteStream {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Convert the stored object `source` by `plan` into the object `target` of `into` (at most
/// `limit` bytes): the records written and what was stored. A failure leaves no `target`.
pub async fn run(
    from: &dyn FileStorage,
    source: &str,
    plan: Plan,
    into: &dyn FileStorage,
    target: &str,
    limit: u64,
    cancel: CancellationToken,
) -> Result<(u64, Stored), EngineError> {
    let mut bytes = from
        .get(source, None)
        .await
        .map_err(|e| EngineError::Internal(format!("reading the file: {e}")))?;
    let (in_tx, in_rx) = tokio::sync::mpsc::channel(4);
    let feed = tokio::spawn(async move {
        while let Some(item) = bytes.next().await {
            if in_tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let (out_tx, out_rx) = tokio::sync::mpsc::channel(4);
    let failed_tx = out_tx.clone();
    let work = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: in_rx,
            current: Bytes::new(),
        };
        let result = convert(
            reader,
            &plan.input,
            &plan.fields,
            plan.output,
            ChannelWriter { tx: out_tx },
            &cancel,
        );
        if let Err(e) = &result {
            // The stored output is abandoned, not published.
            let _ = failed_tx.blocking_send(Err(StorageError::Body(e.to_string())));
        }
        result
    });
    let (stored, converted) = tokio::join!(into.put(target, receiver_stream(out_rx), limit), work);
    feed.abort();
    let converted =
        converted.map_err(|e| EngineError::Internal(format!("the conversion stopped: {e}")))?;
    match (converted, stored) {
        // The output outgrew the limit (the converter then failed to write): that is the cause.
        (_, Err(StorageError::TooLarge { limit })) => Err(EngineError::File(format!(
            "the output is larger than {limit} bytes (files.max_size)"
        ))),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(EngineError::Internal(format!("storing the output: {e}"))),
        (Ok(records), Ok(stored)) => Ok((records, stored)),
    }
}

/// The code of a conversion's failure, for an answer.
pub fn failure(e: &EngineError) -> DomainError {
    DomainError {
        code: match e {
            EngineError::Cancelled => ErrorCode::Cancelled,
            EngineError::File(_) => ErrorCode::InvalidFileContent,
            _ => ErrorCode::InternalError,
        },
        field: None,
        detail: e.to_string(),
    }
}
