//! A run: one step of work on a file (`detect-schema`, `convert`, `load`) or into a new one
//! (`export`), as a job.

use sea_orm::entity::prelude::*;

pub use crate::job_status::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// detect-schema | convert | load | export
    pub step: String,
    /// The file worked on (none for `export`).
    pub file_id: Option<i32>,
    /// The file's name when the run was created (kept if it is deleted).
    #[sea_orm(column_type = "Text", nullable)]
    pub file_name: Option<String>,
    /// The file a run produced.
    pub output_file_id: Option<i32>,
    /// The step's options, as given.
    pub options: Json,
    pub status: JobStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_code: Option<String>,
    /// What the step found or made (a detected schema), as JSON.
    pub result: Option<Json>,
    pub attempts: i32,
    pub created_by: i32,
    pub created_at: ChronoDateTimeUtc,
    pub started_at: Option<ChronoDateTimeUtc>,
    pub stopped_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
