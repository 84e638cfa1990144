use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transfers {
    Table,
    Id,
    SourceId,
    TargetId,
    Query,
    TargetSchema,
    TargetTable,
    Overwrite,
    Status,
    Error,
    RowsWritten,
    BytesRead,
    Attempts,
    CreatedBy,
    CreatedAt,
    StartedAt,
    StoppedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Transfers::Table)
                    .col(
                        ColumnDef::new(Transfers::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Transfers::SourceId).integer().not_null())
                    .col(ColumnDef::new(Transfers::TargetId).integer().not_null())
                    .col(ColumnDef::new(Transfers::Query).text().not_null())
                    .col(ColumnDef::new(Transfers::TargetSchema).string().null())
                    .col(ColumnDef::new(Transfers::TargetTable).string().not_null())
                    .col(ColumnDef::new(Transfers::Overwrite).boolean().not_null())
                    .col(ColumnDef::new(Transfers::Status).string().not_null())
                    .col(ColumnDef::new(Transfers::Error).text().null())
                    .col(
                        ColumnDef::new(Transfers::RowsWritten)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Transfers::BytesRead)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Transfers::Attempts).integer().not_null())
                    .col(ColumnDef::new(Transfers::CreatedBy).integer().not_null())
                    .col(
                        ColumnDef::new(Transfers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Transfers::StartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Transfers::StoppedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_transfers_status")
                    .table(Transfers::Table)
                    .col(Transfers::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_transfers_created_by")
                    .table(Transfers::Table)
                    .col(Transfers::CreatedBy)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Transfers::Table).to_owned())
            .await
    }
}
