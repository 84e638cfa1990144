//! Converting a stored file into another format: the conversion's plan from the file's schema
//! (or the one given), and the run of it from storage to storage, streamed both ways through
//! the engine's converter on the blocking pool.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::files::{validate_fields, FieldInput};
use super::DomainError;
use crate::codes::ErrorCode;
use crate::engine::batch::{Progress, SinkSpec, SourceSpec};
use crate::engine::convert::{convert, CsvInput, CsvOutput, Field, FieldPath, Input, Output};
use crate::engine::file::parquet::Ranged;
use crate::engine::file::{field_type as file_field_type, FileBytes, FileRead, FileWrite, Handoff};
use crate::engine::infer::{default_null_words, DetectedField, FieldType};
use crate::engine::json::path::{JsonPath, Step};
use crate::engine::pipeline::{run_transfer, TransferRequest};
use crate::engine::types::Column;
use crate::engine::EngineError;
use crate::engine::{ConnectSpec, DbKind};
use crate::storage::bridge::{stream_of, StreamReader};
use crate::storage::{FileStorage, StorageError, Stored};
use crate::store::files::File;

/// How a file is converted (Sqlify's `options`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertOptions {
    /// The input format (`csv`, `json`, `jsonl`, `parquet`); default: the file's.
    pub from: Option<String>,
    /// The output format: `csv`, `json`, `jsonl` or `parquet`.
    pub to: Option<String>,
    /// The fields to write, in order (default: the file's schema).
    pub schema: Option<Vec<FieldInput>>,
    pub output: Option<OutputOptions>,
    pub input: Option<InputOptions>,
}

/// How the output is written (CSV).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputOptions {
    /// One character (`\t` for a tab); default `,`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// One character; default `"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// `true` (default) or `false` (a JSON boolean or its text).
    #[serde(
        default,
        deserialize_with = "text_or_bool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<bool>)]
    pub header: Option<String>,
    /// For `sql`: `postgresql` (default), `mysql`, `mariadb` or `sqlite`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// For `sql`: the table the script creates (default: the file's name without extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// For `csv`: what a NULL is written as (default: an empty cell; text is always quoted,
    /// so an empty string stays `""` — but readers that do not look at quotes, Sluice's among
    /// them, read both as NULL: write `\N` to tell them apart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
}

/// Words given as one text or a list of texts.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Words {
    One(String),
    Many(Vec<String>),
}

impl Words {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Words::One(word) => vec![word],
            Words::Many(words) => words,
        }
    }
}

/// A flag given as a JSON boolean or as text (multipart fields are text).
fn text_or_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    Ok(Option::<Flag>::deserialize(d)?.map(|f| match f {
        Flag::Bool(b) => b.to_string(),
        Flag::Text(t) => t,
    }))
}

/// Where a `load` run writes a file's records: a table of a connection, as a transfer would.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadOptions {
    /// The connection written (alias `target_id`).
    #[serde(alias = "target_id")]
    pub target_id: i32,
    /// PostgreSQL schema / MySQL database; the connection's default when absent.
    #[serde(default, alias = "target_schema")]
    pub target_schema: Option<String>,
    /// The table (created when missing; alias `target_table`).
    #[serde(alias = "target_table")]
    pub target_table: String,
    /// Replace the table's rows atomically instead of appending.
    #[serde(default)]
    pub overwrite: bool,
}

/// What an `export` run writes into a new file: a connection's query, as a transfer with a
/// `targetFormat` would.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportOptions {
    /// The connection read (alias `source_id`).
    #[serde(alias = "source_id")]
    pub source_id: i32,
    /// The query whose rows are written.
    pub query: String,
    /// `csv`, `json`, `jsonl`, `parquet` or `sql`.
    pub to: String,
    /// How the file is written, as for a conversion's `options[output]`.
    #[serde(default)]
    pub output: Option<OutputOptions>,
    /// The new file's name (default `export-<run id>.<to>`).
    #[serde(default)]
    pub name: Option<String>,
}

/// How a CSV input is read, where detection got it wrong.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputOptions {
    pub separator: Option<String>,
    pub quote: Option<String>,
    pub header: Option<String>,
    /// The cells that mean NULL: one word or a list (default: those detection used, else
    /// `""`, `NULL` and `\N`).
    #[schema(value_type = Option<Vec<String>>)]
    pub null: Option<Words>,
}

/// The options of a `detect-schema` run: `{input: {null: [...]}}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectOptions {
    pub input: Option<DetectInput>,
}

/// What detection takes as given.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectInput {
    /// The cells that mean NULL (default `""`, `NULL` and `\N`).
    #[schema(value_type = Option<Vec<String>>)]
    pub null: Option<Words>,
}

impl DetectOptions {
    /// The NULL words detection reads with.
    pub fn null_words(&self) -> Result<Vec<String>, DomainError> {
        match self.input.as_ref().and_then(|i| i.null.clone()) {
            None => Ok(default_null_words()),
            Some(words) => null_words("input][null", words),
        }
    }
}

/// Words that mean NULL, checked: at least one, none longer than a line of text.
fn null_words(field: &str, words: Words) -> Result<Vec<String>, DomainError> {
    let words = words.into_vec();
    if words.is_empty() {
        return Err(option_error(
            field,
            "give at least one word (\"\" for an empty cell)",
        ));
    }
    if let Some(long) = words
        .iter()
        .find(|w| w.len() > 64 || w.contains(['\n', '\r']))
    {
        return Err(option_error(
            field,
            format!("{long:?} is not a NULL word (at most 64 characters, one line)"),
        ));
    }
    Ok(words)
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
    format!("{}.{to}", stem(name))
}

/// A file's name without its extension.
pub fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(stem, _)| stem)
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
    /// The table a SQL script creates.
    pub table: String,
}

/// An output format as asked for.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    pub output: Output,
    /// Its name and MIME type.
    pub to: &'static str,
    pub mime: &'static str,
    /// The table a SQL script creates, when given.
    pub table: Option<String>,
}

/// The table a SQL script made from a file named `name` creates by default: the name without
/// its extension.
pub fn default_table(name: &str) -> String {
    match stem(name) {
        "" => "data".into(),
        stem => stem.to_string(),
    }
}

/// The conversion of `file` that `options` ask for.
pub fn plan(file: &File, options: &ConvertOptions) -> Result<Plan, DomainError> {
    let format = output_format(options.to.as_deref(), options.output.clone())?;
    let (input, fields) = read_plan(
        file,
        options.from.clone(),
        options.input.clone(),
        options.schema.clone(),
    )?;
    Ok(Plan {
        input,
        fields,
        output: format.output,
        to: format.to,
        mime: format.mime,
        table: format.table.unwrap_or_else(|| default_table(&file.name)),
    })
}

/// The output format `to` names, written as `given` asks: the writer's settings, the format's
/// name and its MIME type.
pub fn output_format(
    to: Option<&str>,
    given: Option<OutputOptions>,
) -> Result<OutputFormat, DomainError> {
    let given = given.unwrap_or_default();
    let (to, mime) = match to {
        Some("csv") => ("csv", "text/csv"),
        Some("json") => ("json", "application/json"),
        Some("jsonl") => ("jsonl", "application/x-ndjson"),
        Some("parquet") => ("parquet", "application/vnd.apache.parquet"),
        Some("sql") => ("sql", "application/sql"),
        Some(other) => {
            return Err(option_error(
                "to",
                format!("{other:?}: Sluice writes csv, json, jsonl, parquet or sql"),
            ))
        }
        None => {
            return Err(option_error(
                "to",
                "options[to] is required: csv, json, jsonl, parquet or sql",
            ))
        }
    };
    let csv_options = given.separator.is_some()
        || given.quote.is_some()
        || given.header.is_some()
        || given.null.is_some();
    if to != "csv" && csv_options {
        return Err(option_error(
            "output",
            format!("separator, quote, header and null apply to csv, not {to}"),
        ));
    }
    if to != "sql" && (given.dialect.is_some() || given.table.is_some()) {
        return Err(option_error(
            "output",
            format!("dialect and table apply to sql, not {to}"),
        ));
    }
    let output = match to {
        "csv" => Output::Csv(CsvOutput {
            separator: one_byte(
                "output][separator",
                given.separator.as_deref().unwrap_or(","),
            )?,
            quote: one_byte("output][quote", given.quote.as_deref().unwrap_or("\""))?,
            header: given
                .header
                .map_or(Ok(true), |h| flag("output][header", &h))?,
            null: match given.null {
                None => String::new(),
                Some(word) => null_words("output][null", Words::One(word))?.remove(0),
            },
        }),
        "json" => Output::Json,
        "parquet" => Output::Parquet,
        "sql" => Output::Sql {
            dialect: match given.dialect.as_deref() {
                None => DbKind::named("postgresql"),
                Some(name) => DbKind::parse(name).ok_or_else(|| {
                    option_error(
                        "output][dialect",
                        format!("{name:?}: postgresql, mysql, mariadb or sqlite"),
                    )
                })?,
            },
        },
        _ => Output::JsonLines,
    };
    let table = given.table.map(|t| t.trim().to_string());
    if let Some(table) = &table {
        if table.is_empty() || table.contains('\0') || table.chars().count() > 63 {
            return Err(option_error(
                "output][table",
                "a table name of 1 to 63 characters, without NUL",
            ));
        }
    }
    Ok(OutputFormat {
        output,
        to,
        mime,
        table,
    })
}

/// How `file` is read: its format (`from`, else the file's), its CSV dialect (`given`, else
/// the detected one) and its fields (`schema`, else the file's schema).
pub fn read_plan(
    file: &File,
    from: Option<String>,
    given: Option<InputOptions>,
    schema_given: Option<Vec<FieldInput>>,
) -> Result<(Input, Vec<Field>), DomainError> {
    let missing = || {
        format!(
            "file {} has no schema ({}); give options[schema]",
            file.id,
            file.schema_error.as_deref().unwrap_or("none was detected")
        )
    };
    let described = Described {
        format: file.format.as_deref(),
        schema: file.schema.as_ref(),
    };
    reading(described, from, given, schema_given, missing)
}

/// What is known of a file: its format and detected (or given) schema.
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    pub format: Option<&'a str>,
    pub schema: Option<&'a serde_json::Value>,
}

/// How a file `described` so is read (see `read_plan`); `missing` says why there is no
/// schema when there is none.
pub fn reading(
    described: Described<'_>,
    from: Option<String>,
    given: Option<InputOptions>,
    schema_given: Option<Vec<FieldInput>>,
    missing: impl FnOnce() -> String,
) -> Result<(Input, Vec<Field>), DomainError> {
    let schema = described.schema;
    let from = from
        .or_else(|| described.format.map(str::to_string))
        .ok_or_else(|| option_error("from", "the file's format is unknown: give options[from]"))?;
    let dialect = schema.map(|s| &s["dialect"]).filter(|d| d.is_object());
    let input = match from.as_str() {
        "csv" => {
            let given = given.unwrap_or_default();
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
            let nulls = match given.null {
                Some(words) => null_words("input][null", words)?,
                None => dialect
                    .and_then(|d| serde_json::from_value(d["nullWords"].clone()).ok())
                    .unwrap_or_else(default_null_words),
            };
            let quote = one_byte("input][quote", &quote)?;
            let escape = one_byte("input][quote", &escape)?;
            Input::Csv(CsvInput {
                delimiter: one_byte("input][separator", &delimiter)?,
                quote,
                escape: (escape != quote).then_some(escape),
                header,
                nulls,
            })
        }
        "json" => Input::Json,
        "jsonl" => Input::JsonLines,
        "parquet" => Input::Parquet,
        other => {
            return Err(option_error(
                "from",
                format!("{other:?}: Sluice reads csv, json, jsonl or parquet"),
            ))
        }
    };
    let detected: Vec<DetectedField> = match schema_given {
        Some(given) => {
            let columns = schema
                .filter(|s| s["format"] == "csv" || s["format"] == "parquet")
                .and_then(|s| s["fields"].as_array().map(Vec::len));
            validate_fields(given, Some(from.as_str()), columns)?
        }
        None => {
            let fields = schema.map(|s| s["fields"].clone()).unwrap_or_default();
            serde_json::from_value(fields)
                .map_err(|_| DomainError::validation("options[schema]", missing()))?
        }
    };
    let fields = detected
        .into_iter()
        .map(|f| field(f, &input))
        .collect::<Result<_, _>>()?;
    Ok((input, fields))
}

/// How a source reads `file`'s bytes for `input`: streamed, or by range (Parquet).
pub async fn file_bytes(
    files: Arc<dyn FileStorage>,
    file: &File,
    input: &Input,
) -> Result<FileBytes, EngineError> {
    if input.is_columnar() {
        let ranged = Ranged::new(files, file.storage_key.clone(), file.size.max(0) as u64);
        return Ok(FileBytes::Ranged(ranged));
    }
    let stream = files
        .get(&file.storage_key, None)
        .await
        .map_err(|e| EngineError::Internal(format!("reading file {}: {e}", file.id)))?;
    Ok(FileBytes::Stream(Handoff::new(stream)))
}

/// The schema of a file written from `columns` (`rows` of them), in the shape detection
/// records: every field's type is the column's own, not one guessed from the values.
pub fn written_schema(
    output: &Output,
    to: &str,
    columns: &[Column],
    rows: u64,
) -> serde_json::Value {
    let root = if to == "json" { "$[*]" } else { "$" };
    let fields: Vec<serde_json::Value> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = match output {
                Output::Csv(_) | Output::Parquet => i.to_string(),
                _ => format!("{root}{}", Step::Key(c.name.clone())),
            };
            serde_json::json!({
                "name": c.name,
                "type": file_field_type(&c.ty).name(),
                "path": path,
                "nullable": c.nullable,
            })
        })
        .collect();
    let mut schema = serde_json::json!({
        "format": to,
        "encoding": if output.is_columnar() { "binary" } else { "utf-8" },
        "fields": fields,
        "sampledRows": rows,
        "wholeFile": true,
    });
    if let Output::Csv(csv) = output {
        let quote = (csv.quote as char).to_string();
        schema["dialect"] = serde_json::json!({
            "delimiter": (csv.separator as char).to_string(),
            "quote": quote,
            "escape": quote,
            "header": csv.header,
            "lineEnding": "lf",
            "nullWords": [csv.null],
        });
    }
    schema
}

/// A field of a schema as the converter reads it.
fn field(f: DetectedField, input: &Input) -> Result<Field, DomainError> {
    let bad = |why: String| {
        DomainError::validation("options[schema]", format!("field {:?}: {why}", f.name))
    };
    let field_type = FieldType::parse(&f.field_type)
        .ok_or_else(|| bad(format!("{:?} is not a type", f.field_type)))?;
    let path = match input {
        Input::Csv(_) | Input::Parquet => FieldPath::Column(
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

/// Rows of a conversion to batch when it goes through Arrow (Parquet on either side): small
/// enough that the batches in flight stay a few MB (the Parquet writer gathers its row groups
/// itself), large enough that per-batch work does not show.
const COLUMNAR_BATCH_ROWS: usize = 16_384;

/// Convert the stored file `source` by `plan` into the object `target` of `into` (at most
/// `limit` bytes): the records written and what was stored. A failure leaves no `target`.
/// Text to text goes a record at a time; Parquet on either side goes through Arrow batches,
/// the same pipeline as a transfer between files.
pub async fn run(
    from: &Arc<dyn FileStorage>,
    source: &File,
    plan: Plan,
    into: &dyn FileStorage,
    target: &str,
    limit: u64,
    cancel: CancellationToken,
) -> Result<(u64, Stored), EngineError> {
    if plan.input.is_columnar() || plan.output.is_columnar() {
        let bytes = file_bytes(from.clone(), source, &plan.input).await?;
        let (writer, output) = stream_of();
        let request = TransferRequest {
            source: ConnectSpec::file(),
            read: SourceSpec::File(FileRead {
                bytes,
                input: plan.input,
                fields: plan.fields,
            }),
            target: ConnectSpec::file(),
            write: SinkSpec::File(FileWrite {
                output: plan.output,
                bytes: Handoff::new(writer),
                columns: Arc::new(OnceLock::new()),
                table: plan.table,
            }),
            batch_rows: COLUMNAR_BATCH_ROWS,
            partitioning: None,
        };
        let progress = Arc::new(Progress::default());
        let (rows, stored) = tokio::join!(
            run_transfer(request, progress, cancel),
            into.put(target, output, limit)
        );
        return stored_output(rows, stored);
    }
    let bytes = from
        .get(&source.storage_key, None)
        .await
        .map_err(|e| EngineError::Internal(format!("reading the file: {e}")))?;
    let reader = StreamReader::new(bytes);
    let (mut writer, output) = stream_of();
    let work = tokio::task::spawn_blocking(move || {
        let result = convert(
            reader,
            &plan.input,
            &plan.fields,
            plan.output,
            &mut writer,
            &cancel,
        );
        if let Err(e) = &result {
            // The stored output is abandoned, not published.
            writer.fail(&e.to_string());
        }
        result
    });
    let (stored, converted) = tokio::join!(into.put(target, output, limit), work);
    let converted =
        converted.map_err(|e| EngineError::Internal(format!("the conversion stopped: {e}")))?;
    stored_output(converted, stored)
}

/// The end of writing an output while storing it: the records and what was stored, or the
/// cause of the failure.
pub fn stored_output(
    written: Result<u64, EngineError>,
    stored: Result<Stored, StorageError>,
) -> Result<(u64, Stored), EngineError> {
    match (written, stored) {
        // The output outgrew the limit (the writer then failed to write): that is the cause.
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
