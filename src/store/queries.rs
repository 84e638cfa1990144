//! Queries and their kept results in the metadata store.

use chrono::Utc;
use entities::{query, query_result};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::jobs::{JobStatus, ListColumns};
use super::{JobFilter, ListParams, Store};
use crate::codes::ErrorCode;

pub type Query = query::Model;

/// The end of a query job.
#[derive(Debug, Clone)]
pub struct QueryEnd {
    pub status: JobStatus,
    /// (code, text) for status `error`.
    pub error: Option<(ErrorCode, String)>,
    pub columns: serde_json::Value,
    pub row_count: u64,
    pub rows_affected: Option<u64>,
    pub truncated: bool,
    /// The kept rows as a JSON array of arrays (complete queries that return rows).
    pub rows: Option<String>,
}

impl Store {
    pub async fn create_query(
        &self,
        connection_id: i32,
        connection_name: String,
        sql: String,
        created_by: i32,
    ) -> Result<Query, DbErr> {
        query::ActiveModel {
            connection_id: Set(connection_id),
            connection_name: Set(Some(connection_name)),
            error_code: Set(None),
            query: Set(sql),
            status: Set(JobStatus::Queued),
            error: Set(None),
            columns: Set(serde_json::json!([])),
            row_count: Set(0),
            rows_affected: Set(None),
            truncated: Set(false),
            attempts: Set(0),
            created_by: Set(created_by),
            created_at: Set(Utc::now()),
            started_at: Set(None),
            stopped_at: Set(None),
            ..Default::default()
        }
        .insert(self.db())
        .await
    }

    pub async fn list_queries(
        &self,
        filter: &JobFilter,
        params: &ListParams,
    ) -> Result<(Vec<Query>, u64), DbErr> {
        let mut select = query::Entity::find();
        if let Some(connection) = filter.connection {
            select = select.filter(query::Column::ConnectionId.eq(connection));
        }
        let columns = ListColumns {
            id: query::Column::Id,
            created_at: query::Column::CreatedAt,
            created_by: query::Column::CreatedBy,
            status: query::Column::Status,
        };
        self.list_jobs(select, filter, params, columns).await
    }

    pub async fn get_query(&self, id: i32) -> Result<Option<Query>, DbErr> {
        query::Entity::find_by_id(id).one(self.db()).await
    }

    /// The kept rows (JSON array of arrays) of a complete query.
    pub async fn get_query_rows(&self, id: i32) -> Result<Option<String>, DbErr> {
        Ok(query_result::Entity::find_by_id(id)
            .one(self.db())
            .await?
            .map(|r| r.rows))
    }

    /// Delete a query and its kept result.
    pub async fn delete_query(&self, id: i32) -> Result<bool, DbErr> {
        let txn = self.db().begin().await?;
        query_result::Entity::delete_by_id(id).exec(&txn).await?;
        let result = query::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(result.rows_affected > 0)
    }

    /// Save the final status, and the result rows, in one transaction.
    pub async fn finish_query(&self, id: i32, end: QueryEnd) -> Result<(), DbErr> {
        let txn = self.db().begin().await?;
        if let Some(rows) = end.rows {
            query_result::Entity::delete_by_id(id).exec(&txn).await?;
            query_result::ActiveModel {
                query_id: Set(id),
                rows: Set(rows),
            }
            .insert(&txn)
            .await?;
        }
        let (code, error) = end.error.map(|(c, e)| (c.code(), e)).unzip();
        query::Entity::update_many()
            .col_expr(query::Column::Status, Expr::value(end.status))
            .col_expr(query::Column::Error, Expr::value(error))
            .col_expr(query::Column::ErrorCode, Expr::value(code))
            .col_expr(query::Column::Columns, Expr::value(end.columns))
            .col_expr(query::Column::RowCount, Expr::value(end.row_count as i64))
            .col_expr(
                query::Column::RowsAffected,
                Expr::value(end.rows_affected.map(|n| n as i64)),
            )
            .col_expr(query::Column::Truncated, Expr::value(end.truncated))
            .col_expr(query::Column::StoppedAt, Expr::value(Utc::now()))
            .filter(query::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await
    }
}
