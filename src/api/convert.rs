//! Sqlify's convert pipeline, `POST /pipelines/sqlify/convert/run`: a file (uploaded in the
//! same request, or `file_id`) converted by `options[…]`; with `return_output=true` the
//! converted bytes are the answer, else the answer is a queued run whose output is a new file.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{body_error, ApiError};
use super::uploads::{
    self, new_key, next_field, number_part, stored_file, text_part, unknown_part,
};
use super::{Body, State};
use crate::domain::convert::{failure, output_name, plan, run, ConvertOptions};
use crate::storage::FileStorage;
use crate::store::files::File;

/// The convert request as JSON (the multipart form's fields, with `options` as an object).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertRequest {
    /// The file to convert (alias `fileId`).
    #[serde(alias = "fileId")]
    pub file_id: i32,
    #[serde(default)]
    pub options: Option<Value>,
    /// Answer with the converted bytes rather than a run.
    #[serde(default)]
    pub return_output: Option<bool>,
}

/// What the request asks.
pub struct Conversion {
    pub file: File,
    pub options: ConvertOptions,
    /// The options as given (kept on the run).
    pub raw: Value,
    pub return_output: bool,
}

/// Put `value` at `options[a][b][0][c]` of `root` (a part's name, without `options`).
fn insert(root: &mut Value, name: &str, value: String) -> Result<(), ApiError> {
    let bad = || ApiError::validation(name, format!("{name:?} is not options[…][…] form"));
    let rest = name.strip_prefix("options").ok_or_else(bad)?;
    let mut keys = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(bad)?;
        let (key, after) = inner.split_once(']').ok_or_else(bad)?;
        keys.push(key.to_string());
        rest = after;
    }
    let (last, parents) = keys.split_last().ok_or_else(bad)?;
    let mut here = root;
    for key in parents {
        let object = here.as_object_mut().ok_or_else(bad)?;
        here = object
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    here.as_object_mut()
        .ok_or_else(bad)?
        .insert(last.clone(), Value::String(value));
    Ok(())
}

/// Objects whose keys are all indexes (`schema[0]`, `schema[1]`) become arrays, in order.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexed: Option<Vec<(usize, Value)>> = map
                .iter()
                .map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v.clone())))
                .collect();
            match indexed {
                Some(mut items) if !items.is_empty() => {
                    items.sort_by_key(|(i, _)| *i);
                    Value::Array(items.into_iter().map(|(_, v)| arrays(v)).collect())
                }
                _ => Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect()),
            }
        }
        other => other,
    }
}

/// A step's `options`, checked (an unknown field is named with its path, `options.…`).
pub fn parse_options<T: serde::de::DeserializeOwned>(raw: &Value) -> Result<T, ApiError> {
    let prefixed = serde_json::json!({ "options": raw });
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapper<T> {
        options: T,
    }
    serde_path_to_error::deserialize::<_, Wrapper<T>>(prefixed)
        .map(|w| w.options)
        .map_err(|e| body_error(&e))
}

/// The multipart form: `file` or `file_id`, `options[…]`, `return_output`.
async fn from_form(
    state: &State,
    caller: &Caller,
    mut multipart: Multipart,
) -> Result<Conversion, ApiError> {
    let mut raw = Value::Object(Map::new());
    let mut file_id = None;
    let mut stored = None;
    let mut return_output = false;
    let read = async {
        while let Some(mut field) = next_field(&mut multipart).await? {
            let name = field.name().unwrap_or_default().to_string();
            match name.as_str() {
                "file" if stored.is_some() => {
                    return Err(ApiError::validation("file", "one `file` part per request"))
                }
                "file" => stored = Some(uploads::file_part(state, field).await?),
                "file_id" | "fileId" => file_id = Some(number_part(&mut field, "file_id").await?),
                "return_output" => {
                    let text = text_part(&mut field, "return_output").await?;
                    return_output = matches!(text.trim(), "true" | "1" | "yes");
                }
                n if n.starts_with("options[") => {
                    let text = text_part(&mut field, n).await?;
                    insert(&mut raw, n, text)?;
                }
                other => {
                    return Err(unknown_part(
                        other,
                        "file, file_id, options[…], return_output",
                    ))
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = read {
        if let Some((key, _, _)) = stored {
            let _ = state.files.delete(&key).await;
        }
        return Err(e);
    }
    let raw = arrays(raw);
    let file = match (stored, file_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "file_id",
                "give `file` or `file_id`, not both",
            ))
        }
        (Some((key, name, put)), None) => stored_file(state, caller, key, name, put).await?,
        (None, Some(id)) => super::files::ready(state, caller, id as i32, "file_id").await?,
        (None, None) => {
            return Err(ApiError::validation(
                "file",
                "`file` or `file_id` is required",
            ))
        }
    };
    Ok(Conversion {
        file,
        options: parse_options(&raw)?,
        raw,
        return_output,
    })
}

/// The conversion a request asks for, from a multipart form or JSON.
pub async fn request(
    state: &State,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
) -> actix_web::Result<Conversion> {
    let mut payload = payload.into_inner();
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    if multipart {
        let form = Multipart::from_request(req, &mut payload).await?;
        return Ok(from_form(state, caller, form).await?);
    }
    let body = Body::<ConvertRequest>::from_request(req, &mut payload)
        .await?
        .into_inner();
    let raw = body.options.unwrap_or_else(|| Value::Object(Map::new()));
    Ok(Conversion {
        file: super::files::ready(state, caller, body.file_id, "file_id").await?,
        options: parse_options(&raw)?,
        raw,
        return_output: body.return_output.unwrap_or(false),
    })
}

/// Convert now and answer with the converted bytes (held in the spool until complete, so that
/// a file that stops reading is an error answer, not a cut-off body).
pub async fn answer_output(
    state: &State,
    conversion: Conversion,
) -> Result<HttpResponse, ApiError> {
    let plan = plan(&conversion.file, &conversion.options)?;
    let (to, mime) = (plan.to, plan.mime);
    let key = new_key();
    let (records, stored) = run(
        &state.files,
        &conversion.file,
        plan,
        state.spool.as_ref(),
        &key,
        state.settings.files.max_size,
        CancellationToken::new(),
    )
    .await
    .map_err(|e| ApiError::from(failure(&e)))?;
    let body = state
        .spool
        .get(&key, None)
        .await
        .map_err(uploads::storage_error)?;
    // The open file stays readable once unlinked.
    let _ = state.spool.delete(&key).await;
    tracing::info!(file_id = conversion.file.id, records, to, "File converted.");
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(super::files::disposition(&output_name(
            &conversion.file.name,
            to,
        )))
        .insert_header(("X-Record-Count", records.to_string()))
        .no_chunking(stored.size)
        .streaming(body))
}
