//! A transfer may read a file instead of a query (`source_file_id`) and write a file instead
//! of a table (`target_format`, its `target_options`, and the `output_file_id` it made): the
//! source, query, target and table columns become optional.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Transfers {
    Table,
    SourceId,
    TargetId,
    Query,
    TargetTable,
    SourceFileId,
    TargetFormat,
    TargetOptions,
    OutputFileId,
}

/// The columns that become optional, as the first migration declared them on SQLite.
const SQLITE_REQUIRED: &[(&str, &str)] = &[
    (
        "\"source_id\" integer NOT NULL",
        "\"source_id\" integer NULL",
    ),
    (
        "\"target_id\" integer NOT NULL",
        "\"target_id\" integer NULL",
    ),
    ("\"query\" text NOT NULL", "\"query\" text NULL"),
    (
        "\"target_table\" varchar NOT NULL",
        "\"target_table\" varchar NULL",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            crate::sqlite::relax(manager, "transfers", SQLITE_REQUIRED).await?;
        } else {
            for column in [
                Transfers::SourceId,
                Transfers::TargetId,
                Transfers::Query,
                Transfers::TargetTable,
            ] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE transfers ALTER COLUMN {} DROP NOT NULL",
                        column.to_string()
                    ))
                    .await?;
            }
        }
        for (column, integer) in [
            (Transfers::SourceFileId, true),
            (Transfers::TargetFormat, false),
            (Transfers::TargetOptions, false),
            (Transfers::OutputFileId, true),
        ] {
            let mut def = ColumnDef::new(column);
            if integer {
                def.integer().null();
            } else {
                def.text().null();
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(Transfers::Table)
                        .add_column(def)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "transfers of files cannot be undone: their rows have no source or target table".into(),
        ))
    }
}
