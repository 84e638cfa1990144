//! The rules of Sluice's own objects — connections and accounts — shared by the API, the
//! config-file provisioning, the CLI and the jobs. Below the api (which turns a `DomainError`
//! into its error body), above store and engine.

pub mod accounts;
pub mod connections;
pub mod convert;
pub mod files;

use crate::codes::ErrorCode;

/// A rule an input broke, in the code table's words, naming the field when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    pub code: ErrorCode,
    pub field: Option<String>,
    pub detail: String,
}

impl DomainError {
    /// `validation_failed` on `field`.
    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::ValidationFailed,
            field: Some(field.to_string()),
            detail: detail.into(),
        }
    }

    /// Something that should not happen (a stored value that no longer reads).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::InternalError,
            field: None,
            detail: cause.to_string(),
        }
    }
}

impl std::fmt::Display for DomainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for DomainError {}
