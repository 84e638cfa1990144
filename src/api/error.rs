//! The API's error body and its one table of stable error codes.
//!
//! Every error response is `{"title", "status", "code", "detail"}` (+ `"field"` for validation,
//! + `"correlationId"` for 500s). Codes are stable: clients may match on them.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub use crate::codes::ErrorCode;

/// The error body of every failed request.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[schema(example = "Not found")]
    pub title: &'static str,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "connection_not_found")]
    pub code: &'static str,
    #[schema(example = "connection 42 does not exist")]
    pub detail: String,
    /// The request field that failed validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For 500s: the id under which the cause was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub field: Option<String>,
    pub correlation_id: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field: None,
            correlation_id: None,
        }
    }

    /// A 400 `validation_failed` naming the field.
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }

    /// A 500: the cause is logged under a fresh correlation id that the body repeats.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        tracing::error!(correlation_id = %id, error = %cause, "Request failed unexpectedly.");
        Self {
            correlation_id: Some(id.clone()),
            ..Self::new(
                ErrorCode::InternalError,
                format!("an unexpected error occurred; it was logged under correlation id {id}"),
            )
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            title: self.code.title(),
            status: self.code.status(),
            code: self.code.code(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="sluice""#));
        }
        response.json(self.body())
    }
}

impl From<crate::domain::DomainError> for ApiError {
    fn from(e: crate::domain::DomainError) -> Self {
        if e.code == ErrorCode::InternalError {
            return ApiError::internal(e.detail);
        }
        ApiError {
            field: e.field,
            ..ApiError::new(e.code, e.detail)
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal(format!("metadata store: {e}"))
    }
}

/// Errors of the JSON body extractor: syntax → `malformed_json`, shape → `invalid_body`,
/// size → `payload_too_large`.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { length, limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is {length} bytes; the limit is {limit}"),
        ),
        E::Overflow { limit } => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be JSON (Content-Type: application/json)",
        ),
        E::Deserialize(e) => {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::new(ErrorCode::InvalidBody, e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::new(ErrorCode::MalformedJson, e.to_string())
                }
            }
        }
        E::Payload(e) => match e {
            actix_web::error::PayloadError::Overflow => ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the body is larger than the limit",
            ),
            other => ApiError::new(ErrorCode::InvalidBody, other.to_string()),
        },
        other => ApiError::new(ErrorCode::InvalidBody, other.to_string()),
    }
}

/// A request body that JSON-parsed but does not fit its resource: an unknown field gets
/// `unknown_field` naming it and the closest known name (a typo must not silently become a
/// default); anything else `invalid_body`. `field` is the path of the offending field.
pub fn body_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    let field = (path != "." && !path.is_empty()).then(|| path.clone());
    if let Some((name, expected)) = unknown_field(&message) {
        let mut detail = format!("unknown field {path:?}");
        if let Some(close) = closest(name, &expected) {
            let full = match path.rsplit_once('.') {
                Some((parent, _)) => format!("{parent}.{close}"),
                None => close.to_string(),
            };
            detail.push_str(&format!("; did you mean {full:?}?"));
        }
        if !expected.is_empty() {
            detail.push_str(&format!(" (known fields: {})", expected.join(", ")));
        }
        return ApiError {
            field,
            ..ApiError::new(ErrorCode::UnknownField, detail)
        };
    }
    let detail = match &field {
        Some(f) => format!("{f}: {message}"),
        None => message,
    };
    ApiError {
        field,
        ..ApiError::new(ErrorCode::InvalidBody, detail)
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are no
/// fields"): the field and the known names.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((name, expected))
}

/// The known name a typo most likely meant: the nearest by edit distance (ignoring case and
/// `_`), if near enough to be a slip rather than another word.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| s.to_lowercase().replace('_', "");
    let wanted = fold(name);
    known
        .iter()
        .map(|k| (strsim::levenshtein(&wanted, &fold(k)), *k))
        .filter(|(distance, k)| *distance <= (k.chars().count() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Errors of the query-string extractor.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(ErrorCode::InvalidQueryParameter, err.to_string())
}

/// Errors of the path extractor (e.g. `/users/abc`).
pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::new(ErrorCode::InvalidPathParameter, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_names_the_closest_known_one() {
        assert_eq!(
            closest("overwite", &["sourceId", "overwrite", "query"]),
            Some("overwrite")
        );
        assert_eq!(closest("isAdmin", &["username", "admin"]), Some("admin"));
        assert_eq!(
            closest("target_tabel", &["targetTable", "targetSchema"]),
            Some("targetTable")
        );
        assert_eq!(closest("zzzzzz", &["name"]), None);
        let (name, known) = unknown_field("unknown field `x`, expected one of `a`, `b`").unwrap();
        assert_eq!((name, known), ("x", vec!["a", "b"]));
        let (_, known) = unknown_field("unknown field `x`, expected `a`").unwrap();
        assert_eq!(known, vec!["a"]);
        let (_, known) = unknown_field("unknown field `x`, there are no fields").unwrap();
        assert!(known.is_empty());
    }
}
