//! A file uploaded by a user (or, later, produced by a run): its metadata. The bytes live in
//! the file storage under `storage_key`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub owner_id: i32,
    /// The name the user gave (a base name, never a path).
    pub name: String,
    /// MIME type, from the name's extension.
    pub mime: String,
    /// csv | json | jsonl | parquet | sql, when the name says.
    pub format: Option<String>,
    /// Bytes: declared for a chunked upload, final once ready.
    pub size: i64,
    /// uploading | sealing | ready
    pub status: String,
    #[sea_orm(unique)]
    pub storage_key: String,
    pub sha256: Option<String>,
    /// The detected or user-set schema, as JSON.
    pub schema: Option<Json>,
    /// Why the schema could not be detected.
    pub schema_error: Option<String>,
    pub row_count: Option<i64>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
