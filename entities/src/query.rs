//! A query: SQL run on one connection, its result kept (up to limits).

use sea_orm::entity::prelude::*;

pub use crate::job_status::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub connection_id: i32,
    #[sea_orm(column_type = "Text")]
    pub query: String,
    pub status: JobStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The result's columns (name, logical type, database type) as JSON.
    pub columns: Json,
    pub row_count: i64,
    pub rows_affected: Option<i64>,
    pub truncated: bool,
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub stopped_at: Option<ChronoDateTimeUtc>,
    /// The connection's name when the query was created (kept if it is deleted).
    #[sea_orm(column_type = "Text", nullable)]
    pub connection_name: Option<String>,
    /// A stable word for why the query failed (with status `error`).
    #[sea_orm(column_type = "Text", nullable)]
    pub error_code: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
