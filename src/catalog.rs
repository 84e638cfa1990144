//! What the catalog of a user's database looks like to API users, and the answer of a
//! connection test: plain data, documented for the OpenAPI schema.

use serde::Serialize;
use utoipa::ToSchema;

/// The answer of a connection test.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub latency_ms: u64,
    /// What failed (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `auth_failed`, `host_not_found`, `connection_refused`, `timeout`, `tls_error`,
    /// `database_not_found` or `connection_failed` (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A database of a server, or a schema of a database.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct CatalogName {
    pub name: String,
}

/// A table or view of a schema, with what the database knows of its size without reading it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RelationInfo {
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    /// The database's own estimate of its rows (PostgreSQL's statistics, MySQL's
    /// `TABLE_ROWS`); `null` where there is none (views, tables never analysed, SQLite).
    pub row_estimate: Option<i64>,
    /// Bytes on disk with indexes; `null` where unknown (views, SQLite).
    pub size_bytes: Option<i64>,
    pub comment: Option<String>,
}

/// The statement that recreates a table or view.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Ddl {
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub ddl: String,
}

/// A table's exact row count.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RowCount {
    pub table: String,
    pub rows: u64,
    /// Always `true`: the rows were counted (an estimate is `rowEstimate` in table lists).
    pub exact: bool,
}

/// A column of a table in a user's database.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub name: String,
    /// The column's type as the database names it, e.g. `numeric(10,2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SchemaInfo {
    pub name: String,
    pub tables: Vec<TableInfo>,
}

/// Group `(schema, table, kind, column)` rows, already ordered, into the nested answer.
pub fn group_columns(
    rows: impl IntoIterator<Item = (String, String, String, ColumnInfo)>,
) -> Vec<SchemaInfo> {
    let mut schemas: Vec<SchemaInfo> = Vec::new();
    for (schema, table, kind, column) in rows {
        if schemas.last().map(|s| &s.name) != Some(&schema) {
            schemas.push(SchemaInfo {
                name: schema,
                tables: Vec::new(),
            });
        }
        let tables = &mut schemas.last_mut().expect("pushed above").tables;
        if tables.last().map(|t| &t.name) != Some(&table) {
            tables.push(TableInfo {
                name: table,
                kind,
                columns: Vec::new(),
            });
        }
        tables
            .last_mut()
            .expect("pushed above")
            .columns
            .push(column);
    }
    schemas
}
