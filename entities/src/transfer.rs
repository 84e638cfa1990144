//! A transfer: run a query on one connection, write its result into a table of another.

use sea_orm::entity::prelude::*;

pub use crate::job_status::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transfers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub source_id: i32,
    pub target_id: i32,
    #[sea_orm(column_type = "Text")]
    pub query: String,
    pub target_schema: Option<String>,
    pub target_table: String,
    pub overwrite: bool,
    pub status: JobStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub rows_written: i64,
    pub bytes_read: i64,
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub stopped_at: Option<ChronoDateTimeUtc>,
    /// Read in ranges of this integer column of the result (with `partitions`).
    #[sea_orm(column_type = "Text", nullable)]
    pub partition_column: Option<String>,
    pub partitions: Option<i32>,
    /// The connections' names when the transfer was created (kept if they are deleted).
    #[sea_orm(column_type = "Text", nullable)]
    pub source_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub target_name: Option<String>,
    /// A stable word for why the transfer failed (with status `error`).
    #[sea_orm(column_type = "Text", nullable)]
    pub error_code: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
