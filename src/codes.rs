//! The one table of stable error codes: what the API answers with, and why a job failed (its
//! `errorCode`). Below every layer (no HTTP type here: a status is its number), so that the
//! engine names a failure with the same words the API uses.

macro_rules! error_codes {
    ($( $variant:ident => ($status:literal, $code:literal, $title:literal, $job:literal), )*) => {
        /// Every error code, each with its HTTP status and title; `job` codes are also a failed
        /// job's `errorCode`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The HTTP status an answer with this code has.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }
            /// The stable machine-readable code.
            pub fn code(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }
            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )* }
            }
            /// Whether a failed job may carry it as its `errorCode`.
            pub fn is_job_code(self) -> bool {
                match self { $( ErrorCode::$variant => $job, )* }
            }
        }
    };
}

error_codes! {
    // 400: the request itself is wrong.
    MalformedJson => (400, "malformed_json", "Malformed JSON", false),
    InvalidBody => (400, "invalid_body", "Invalid request body", false),
    UnknownField => (400, "unknown_field", "Unknown field", false),
    ValidationFailed => (400, "validation_failed", "Validation failed", false),
    InvalidQueryParameter => (400, "invalid_query_parameter", "Invalid query parameter", false),
    InvalidPathParameter => (400, "invalid_path_parameter", "Invalid path parameter", false),
    UnknownConnection => (400, "unknown_connection", "Unknown connection", false),
    InvalidPartitions => (400, "invalid_partitions", "Invalid partitions", false),
    PartitioningIncomplete => (400, "partitioning_incomplete", "Partitioning incomplete", false),
    InvalidFileName => (400, "invalid_file_name", "Invalid file name", false),
    EmptyFile => (400, "empty_file", "Empty file", false),
    ChunkOutOfBounds => (400, "chunk_out_of_bounds", "Chunk out of bounds", false),
    ChunkMisaligned => (400, "chunk_misaligned", "Chunk misaligned", false),
    ChunkOverlap => (400, "chunk_overlap", "Chunk overlap", false),
    ChunkSizeMismatch => (400, "chunk_size_mismatch", "Chunk size mismatch", false),
    UrlNotAllowed => (400, "url_not_allowed", "URL not allowed", false),
    UnsupportedMediaType => (415, "unsupported_media_type", "Unsupported media type", false),
    // 401 / 403
    AuthenticationRequired => (401, "authentication_required", "Authentication required", false),
    InvalidCredentials => (401, "invalid_credentials", "Invalid credentials", false),
    TokenExpired => (401, "token_expired", "Token expired", false),
    AdminRequired => (403, "admin_required", "Admin required", false),
    // A job's statement refused for what it would do.
    ReadOnly => (403, "read_only", "Read-only session", true),
    StatementNotAllowed => (403, "statement_not_allowed", "Statement not allowed", true),
    // 404
    RouteNotFound => (404, "route_not_found", "Not found", false),
    UserNotFound => (404, "user_not_found", "Not found", false),
    TokenNotFound => (404, "token_not_found", "Not found", false),
    ConnectionNotFound => (404, "connection_not_found", "Not found", true),
    TransferNotFound => (404, "transfer_not_found", "Not found", false),
    QueryNotFound => (404, "query_not_found", "Not found", false),
    FileNotFound => (404, "file_not_found", "Not found", true),
    RunNotFound => (404, "run_not_found", "Not found", false),
    DatabaseNotFound => (404, "database_not_found", "Database not found", true),
    SchemaNotFound => (404, "schema_not_found", "Schema not found", false),
    TableNotFound => (404, "table_not_found", "Table not found", false),
    // 405
    MethodNotAllowed => (405, "method_not_allowed", "Method not allowed", false),
    // 409
    UsernameTaken => (409, "username_taken", "Conflict", false),
    ConnectionNameTaken => (409, "connection_name_taken", "Conflict", false),
    ConnectionInUse => (409, "connection_in_use", "Conflict", false),
    LastAdmin => (409, "last_admin", "Conflict", false),
    TransferFinished => (409, "transfer_finished", "Conflict", false),
    TransferActive => (409, "transfer_active", "Conflict", false),
    QueryFinished => (409, "query_finished", "Conflict", false),
    QueryActive => (409, "query_active", "Conflict", false),
    FileNotReady => (409, "file_not_ready", "Conflict", true),
    FileInUse => (409, "file_in_use", "Conflict", false),
    RunFinished => (409, "run_finished", "Conflict", false),
    RunActive => (409, "run_active", "Conflict", false),
    ChunkInProgress => (409, "chunk_in_progress", "Conflict", false),
    ResultNotAvailable => (409, "result_not_available", "Conflict", false),
    // A job's rows do not fit its target.
    SchemaMismatch => (409, "schema_mismatch", "Schema mismatch", true),
    Cancelled => (409, "cancelled", "Cancelled", true),
    // 422: a file's bytes do not read as its format.
    InvalidFileContent => (422, "invalid_file_content", "Invalid file content", true),
    // 413
    PayloadTooLarge => (413, "payload_too_large", "Payload too large", false),
    // 416
    RangeNotSatisfiable => (416, "range_not_satisfiable", "Range not satisfiable", false),
    // 5xx: a user's database failed, refused or went silent.
    ConnectionFailed => (502, "connection_failed", "Connection failed", true),
    AuthFailed => (502, "auth_failed", "Authentication failed", true),
    HostNotFound => (502, "host_not_found", "Host not found", true),
    ConnectionRefused => (502, "connection_refused", "Connection refused", true),
    TlsError => (502, "tls_error", "TLS error", true),
    SourceQueryFailed => (502, "source_query_failed", "Source query failed", true),
    TargetRejected => (502, "target_rejected", "Target rejected", true),
    ValueOutOfRange => (502, "value_out_of_range", "Value out of range", true),
    UrlFetchFailed => (502, "url_fetch_failed", "URL fetch failed", false),
    CommitOutcomeUnknown => (502, "commit_outcome_unknown", "Commit outcome unknown", true),
    Timeout => (504, "timeout", "Timeout", true),
    IoTimeout => (504, "io_timeout", "I/O timeout", true),
    InternalError => (500, "internal_error", "Internal server error", true),
    ServiceUnavailable => (503, "service_unavailable", "Service unavailable", false),
}

impl ErrorCode {
    /// The codes a failed job may carry, for documentation.
    pub fn job_codes() -> impl Iterator<Item = ErrorCode> {
        Self::ALL.iter().copied().filter(|c| c.is_job_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate code {}", code.code());
            assert!(code
                .code()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!((400..600).contains(&code.status()), "{code:?}");
        }
    }
}
