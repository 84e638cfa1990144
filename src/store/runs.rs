//! Runs (steps of work on a file, or into a new one) in the metadata store.

use chrono::Utc;
use entities::run;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::jobs::{JobStatus, ListColumns};
use super::{JobFilter, ListParams, Store};
use crate::codes::ErrorCode;

pub type Run = run::Model;

/// A new run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub step: String,
    /// The file worked on (none for `export`) and its name.
    pub file_id: Option<i32>,
    pub file_name: Option<String>,
    pub options: serde_json::Value,
    pub created_by: i32,
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: JobStatus,
    /// (code, text) for status `error`.
    pub error: Option<(ErrorCode, String)>,
    pub result: Option<serde_json::Value>,
    pub output_file_id: Option<i32>,
}

impl Store {
    pub async fn create_run(&self, new: NewRun) -> Result<Run, DbErr> {
        run::ActiveModel {
            step: Set(new.step),
            file_id: Set(new.file_id),
            file_name: Set(new.file_name),
            output_file_id: Set(None),
            options: Set(new.options),
            status: Set(JobStatus::Queued),
            error: Set(None),
            error_code: Set(None),
            result: Set(None),
            attempts: Set(0),
            created_by: Set(new.created_by),
            created_at: Set(Utc::now()),
            started_at: Set(None),
            stopped_at: Set(None),
            ..Default::default()
        }
        .insert(self.db())
        .await
    }

    /// Runs, newest first by default. Runs touch no connection: a connection filter matches
    /// none.
    pub async fn list_runs(
        &self,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Run>, u64), DbErr> {
        let mut select = run::Entity::find();
        if filter.connection.is_some() {
            select = select.filter(run::Column::Id.lt(0));
        }
        let columns = ListColumns {
            id: run::Column::Id,
            created_at: run::Column::CreatedAt,
            created_by: run::Column::CreatedBy,
            status: run::Column::Status,
        };
        self.list_jobs(select, filter, params, columns).await
    }

    pub async fn get_run(&self, id: i32) -> Result<Option<Run>, DbErr> {
        run::Entity::find_by_id(id).one(self.db()).await
    }

    /// The ids of a file's runs, oldest first.
    pub async fn runs_of_file(&self, file_id: i32) -> Result<Vec<Run>, DbErr> {
        use sea_orm::QueryOrder;
        run::Entity::find()
            .filter(run::Column::FileId.eq(file_id))
            .order_by_asc(run::Column::Id)
            .all(self.db())
            .await
    }

    pub async fn delete_run(&self, id: i32) -> Result<bool, DbErr> {
        let result = run::Entity::delete_by_id(id).exec(self.db()).await?;
        Ok(result.rows_affected > 0)
    }

    pub async fn finish_run(&self, id: i32, end: RunEnd) -> Result<(), DbErr> {
        let (code, error) = end.error.map(|(c, e)| (c.code(), e)).unzip();
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(end.status))
            .col_expr(run::Column::Error, Expr::value(error))
            .col_expr(run::Column::ErrorCode, Expr::value(code))
            .col_expr(run::Column::Result, Expr::value(end.result))
            .col_expr(run::Column::OutputFileId, Expr::value(end.output_file_id))
            .col_expr(run::Column::StoppedAt, Expr::value(Utc::now()))
            .filter(run::Column::Id.eq(id))
            .exec(self.db())
            .await?;
        Ok(())
    }
}
