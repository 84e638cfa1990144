//! Jobs keep the names of the connections they used (so a finished job stays readable after a
//! connection is deleted) and a stable `error_code` beside the `error` text.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Transfers {
    Table,
    SourceName,
    TargetName,
    ErrorCode,
}

#[derive(DeriveIden, Clone, Copy)]
enum Queries {
    Table,
    ConnectionName,
    ErrorCode,
}

/// One column per statement: SQLite alters one thing at a time.
async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .add_column(ColumnDef::new(column).text().null())
                .to_owned(),
        )
        .await
}

async fn drop(
    manager: &SchemaManager<'_>,
    table: impl IntoTableRef,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(manager, Transfers::Table, Transfers::SourceName).await?;
        add(manager, Transfers::Table, Transfers::TargetName).await?;
        add(manager, Transfers::Table, Transfers::ErrorCode).await?;
        add(manager, Queries::Table, Queries::ConnectionName).await?;
        add(manager, Queries::Table, Queries::ErrorCode).await?;
        // Jobs of connections that still exist learn their names.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE transfers SET
               source_name = (SELECT name FROM connections WHERE connections.id = transfers.source_id),
               target_name = (SELECT name FROM connections WHERE connections.id = transfers.target_id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE queries SET
               connection_name = (SELECT name FROM connections WHERE connections.id = queries.connection_id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, Queries::Table, Queries::ErrorCode).await?;
        drop(manager, Queries::Table, Queries::ConnectionName).await?;
        drop(manager, Transfers::Table, Transfers::ErrorCode).await?;
        drop(manager, Transfers::Table, Transfers::TargetName).await?;
        drop(manager, Transfers::Table, Transfers::SourceName).await
    }
}
