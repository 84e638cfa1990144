//! A transfer: run a query on one connection (or read a file), write its result into a table
//! of another (or a new file).

use sea_orm::entity::prelude::*;

pub use crate::job_status::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transfers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The connection read (null when a file is read).
    pub source_id: Option<i32>,
    /// The connection written (null when a file is written).
    pub target_id: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub query: Option<String>,
    pub target_schema: Option<String>,
    pub target_table: Option<String>,
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
    /// The file read instead of a query.
    pub source_file_id: Option<i32>,
    /// The format of the file written instead of a table (csv, json, jsonl, parquet).
    #[sea_orm(column_type = "Text", nullable)]
    pub target_format: Option<String>,
    /// How that file is written, as JSON.
    #[sea_orm(column_type = "Text", nullable)]
    pub target_options: Option<String>,
    /// The file the transfer wrote.
    pub output_file_id: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
