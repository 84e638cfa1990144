use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Queries {
    Table,
    Id,
    ConnectionId,
    Query,
    Status,
    Error,
    Columns,
    RowCount,
    RowsAffected,
    Truncated,
    Attempts,
    CreatedBy,
    CreatedAt,
    StartedAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum QueryResults {
    Table,
    QueryId,
    Rows,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Queries::Table)
                    .col(
                        ColumnDef::new(Queries::Id)
                            .integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Queries::ConnectionId).integer().not_null())
                    .col(ColumnDef::new(Queries::Query).text().not_null())
                    .col(ColumnDef::new(Queries::Status).string().not_null())
                    .col(ColumnDef::new(Queries::Error).text().null())
                    .col(ColumnDef::new(Queries::Columns).json().not_null())
                    .col(ColumnDef::new(Queries::RowCount).big_integer().not_null())
                    .col(ColumnDef::new(Queries::RowsAffected).big_integer().null())
                    .col(ColumnDef::new(Queries::Truncated).boolean().not_null())
                    .col(ColumnDef::new(Queries::Attempts).integer().not_null())
                    .col(ColumnDef::new(Queries::CreatedBy).integer().not_null())
                    .col(
                        ColumnDef::new(Queries::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Queries::StartedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Queries::StoppedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_queries_status")
                    .table(Queries::Table)
                    .col(Queries::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QueryResults::Table)
                    .col(
                        ColumnDef::new(QueryResults::QueryId)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(QueryResults::Rows).text().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QueryResults::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Queries::Table).to_owned())
            .await
    }
}
