//! Transfers in the metadata store: the durable side of a job (status, counters, error).

use chrono::Utc;
use entities::transfer;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, Set};

use super::jobs::{JobStatus, ListColumns};
use super::{JobFilter, ListParams, Store};
use crate::codes::ErrorCode;

pub type Transfer = transfer::Model;

#[derive(Debug, Clone)]
pub struct NewTransfer {
    pub source_id: Option<i32>,
    pub target_id: Option<i32>,
    pub query: Option<String>,
    pub target_schema: Option<String>,
    pub target_table: Option<String>,
    pub overwrite: bool,
    pub created_by: i32,
    pub partition_column: Option<String>,
    pub partitions: Option<i32>,
    pub source_name: Option<String>,
    pub target_name: Option<String>,
    pub source_file_id: Option<i32>,
    pub target_format: Option<String>,
    pub target_options: Option<String>,
}

impl Store {
    pub async fn create_transfer(&self, new: NewTransfer) -> Result<Transfer, DbErr> {
        transfer::ActiveModel {
            source_id: Set(new.source_id),
            target_id: Set(new.target_id),
            query: Set(new.query),
            target_schema: Set(new.target_schema),
            target_table: Set(new.target_table),
            overwrite: Set(new.overwrite),
            status: Set(JobStatus::Queued),
            error: Set(None),
            rows_written: Set(0),
            bytes_read: Set(0),
            attempts: Set(0),
            created_by: Set(new.created_by),
            created_at: Set(Utc::now()),
            started_at: Set(None),
            stopped_at: Set(None),
            partition_column: Set(new.partition_column),
            partitions: Set(new.partitions),
            source_name: Set(new.source_name),
            target_name: Set(new.target_name),
            error_code: Set(None),
            source_file_id: Set(new.source_file_id),
            target_format: Set(new.target_format),
            target_options: Set(new.target_options),
            output_file_id: Set(None),
            ..Default::default()
        }
        .insert(self.db())
        .await
    }

    pub async fn list_transfers(
        &self,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Transfer>, u64), DbErr> {
        let mut select = transfer::Entity::find();
        if let Some(connection) = filter.connection {
            select = select.filter(
                Condition::any()
                    .add(transfer::Column::SourceId.eq(connection))
                    .add(transfer::Column::TargetId.eq(connection)),
            );
        }
        let columns = ListColumns {
            id: transfer::Column::Id,
            created_at: transfer::Column::CreatedAt,
            created_by: transfer::Column::CreatedBy,
            status: transfer::Column::Status,
        };
        self.list_jobs(select, filter, params, columns).await
    }

    pub async fn get_transfer(&self, id: i32) -> Result<Option<Transfer>, DbErr> {
        transfer::Entity::find_by_id(id).one(self.db()).await
    }

    pub async fn delete_transfer(&self, id: i32) -> Result<bool, DbErr> {
        let result = transfer::Entity::delete_by_id(id).exec(self.db()).await?;
        Ok(result.rows_affected > 0)
    }

    /// Save live counters while the job runs (so a restart can show how far it got).
    pub async fn save_transfer_progress(
        &self,
        id: i32,
        rows_written: u64,
        bytes_read: u64,
    ) -> Result<(), DbErr> {
        transfer::Entity::update_many()
            .col_expr(
                transfer::Column::RowsWritten,
                Expr::value(rows_written as i64),
            )
            .col_expr(transfer::Column::BytesRead, Expr::value(bytes_read as i64))
            .filter(transfer::Column::Id.eq(id))
            .filter(transfer::Column::Status.eq(JobStatus::Running))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// The final status of a job; `error` is (code, text) for status `error`.
    pub async fn finish_transfer(
        &self,
        id: i32,
        status: JobStatus,
        error: Option<(ErrorCode, String)>,
        rows_written: u64,
        bytes_read: u64,
        output_file_id: Option<i32>,
    ) -> Result<(), DbErr> {
        let (code, error) = error.map(|(c, e)| (c.code(), e)).unzip();
        transfer::Entity::update_many()
            .col_expr(transfer::Column::Status, Expr::value(status))
            .col_expr(transfer::Column::Error, Expr::value(error))
            .col_expr(transfer::Column::ErrorCode, Expr::value(code))
            .col_expr(
                transfer::Column::RowsWritten,
                Expr::value(rows_written as i64),
            )
            .col_expr(transfer::Column::BytesRead, Expr::value(bytes_read as i64))
            .col_expr(transfer::Column::StoppedAt, Expr::value(Utc::now()))
            .col_expr(transfer::Column::OutputFileId, Expr::value(output_file_id))
            .filter(transfer::Column::Id.eq(id))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Transfers that read a file.
    pub async fn transfers_of_file(&self, file_id: i32) -> Result<Vec<Transfer>, DbErr> {
        transfer::Entity::find()
            .filter(transfer::Column::SourceFileId.eq(file_id))
            .all(self.db())
            .await
    }
}
