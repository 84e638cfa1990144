//! A transfer may read a file instead of a query (`source_file_id`) and write a file instead
//! of a table (`target_format`, its `target_options`, and the `output_file_id` it made): the
//! source, query, target and table columns become optional.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

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

/// SQLite cannot drop NOT NULL: the table is rebuilt from its own definition with those
/// columns optional, rows and indexes kept.
async fn relax_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let row = db
        .query_one(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'transfers'",
        ))
        .await?
        .ok_or_else(|| DbErr::Migration("the transfers table is missing".into()))?;
    let mut sql: String = row.try_get("", "sql")?;
    for (required, optional) in SQLITE_REQUIRED {
        if !sql.contains(required) {
            return Err(DbErr::Migration(format!(
                "transfers: {required} not found in {sql}"
            )));
        }
        sql = sql.replacen(required, optional, 1);
    }
    let sql = sql.replacen("\"transfers\"", "\"transfers_rebuilt\"", 1);
    let indexes: Vec<String> = db
        .query_all(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'transfers' \
             AND sql IS NOT NULL",
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "sql"))
        .collect::<Result<_, _>>()?;
    let mut steps = vec![
        sql,
        "INSERT INTO transfers_rebuilt SELECT * FROM transfers".into(),
        "DROP TABLE transfers".into(),
        "ALTER TABLE transfers_rebuilt RENAME TO transfers".into(),
    ];
    steps.extend(indexes);
    // One batch on one connection: another connection of the pool could still see the old
    // table.
    db.execute_unprepared(&steps.join(";\n")).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            relax_sqlite(manager).await?;
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
