//! An `export` run writes a connection's query into a new file: it reads no file, so a run's
//! `file_id` and `file_name` become optional.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns that become optional, as the files migration declared them on SQLite.
const SQLITE_REQUIRED: &[(&str, &str)] = &[
    ("\"file_id\" integer NOT NULL", "\"file_id\" integer NULL"),
    ("\"file_name\" text NOT NULL", "\"file_name\" text NULL"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            return crate::sqlite::relax(manager, "runs", SQLITE_REQUIRED).await;
        }
        for column in ["file_id", "file_name"] {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE runs ALTER COLUMN {column} DROP NOT NULL"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "export runs cannot be undone: their rows have no file".into(),
        ))
    }
}
