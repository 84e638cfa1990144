//! Partitioned reads: a transfer may name an integer column and a number of ranges to read
//! in parallel. Both nullable (unset: one stream).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transfers {
    Table,
    PartitionColumn,
    Partitions,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Transfers::Table)
                    .add_column(ColumnDef::new(Transfers::PartitionColumn).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Transfers::Table)
                    .add_column(ColumnDef::new(Transfers::Partitions).integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Transfers::Table)
                    .drop_column(Transfers::Partitions)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Transfers::Table)
                    .drop_column(Transfers::PartitionColumn)
                    .to_owned(),
            )
            .await
    }
}
