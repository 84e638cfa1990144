//! Files (metadata; the bytes are in the file storage), the chunks of chunked uploads, and runs
//! (steps of work on a file, as jobs).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Files {
    Table,
    Id,
    OwnerId,
    Name,
    Mime,
    Format,
    Size,
    Status,
    StorageKey,
    Sha256,
    Schema,
    SchemaError,
    RowCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    Step,
    FileId,
    FileName,
    OutputFileId,
    Options,
    Status,
    Error,
    ErrorCode,
    Result,
    Attempts,
    CreatedBy,
    CreatedAt,
    StartedAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum FileChunks {
    Table,
    Id,
    FileId,
    Offset,
    Size,
    Done,
}

fn id(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn runs_table() -> TableCreateStatement {
    Table::create()
        .table(Runs::Table)
        .col(id(Runs::Id))
        .col(ColumnDef::new(Runs::Step).string().not_null())
        .col(ColumnDef::new(Runs::FileId).integer().not_null())
        .col(ColumnDef::new(Runs::FileName).text().not_null())
        .col(ColumnDef::new(Runs::OutputFileId).integer().null())
        .col(ColumnDef::new(Runs::Options).json().not_null())
        .col(ColumnDef::new(Runs::Status).string().not_null())
        .col(ColumnDef::new(Runs::Error).text().null())
        .col(ColumnDef::new(Runs::ErrorCode).text().null())
        .col(ColumnDef::new(Runs::Result).json().null())
        .col(ColumnDef::new(Runs::Attempts).integer().not_null())
        .col(ColumnDef::new(Runs::CreatedBy).integer().not_null())
        .col(timestamp(Runs::CreatedAt))
        .col(
            ColumnDef::new(Runs::StartedAt)
                .timestamp_with_time_zone()
                .null(),
        )
        .col(
            ColumnDef::new(Runs::StoppedAt)
                .timestamp_with_time_zone()
                .null(),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(id(Files::Id))
                    .col(ColumnDef::new(Files::OwnerId).integer().not_null())
                    .col(ColumnDef::new(Files::Name).text().not_null())
                    .col(ColumnDef::new(Files::Mime).text().not_null())
                    .col(ColumnDef::new(Files::Format).text().null())
                    .col(ColumnDef::new(Files::Size).big_integer().not_null())
                    .col(ColumnDef::new(Files::Status).string().not_null())
                    .col(
                        ColumnDef::new(Files::StorageKey)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Files::Sha256).string().null())
                    .col(ColumnDef::new(Files::Schema).json().null())
                    .col(ColumnDef::new(Files::SchemaError).text().null())
                    .col(ColumnDef::new(Files::RowCount).big_integer().null())
                    .col(timestamp(Files::CreatedAt))
                    .col(timestamp(Files::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_files_owner")
                    .table(Files::Table)
                    .col(Files::OwnerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FileChunks::Table)
                    .col(id(FileChunks::Id))
                    .col(ColumnDef::new(FileChunks::FileId).integer().not_null())
                    .col(ColumnDef::new(FileChunks::Offset).big_integer().not_null())
                    .col(ColumnDef::new(FileChunks::Size).big_integer().not_null())
                    .col(ColumnDef::new(FileChunks::Done).boolean().not_null())
                    .to_owned(),
            )
            .await?;
        manager.create_table(runs_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_file")
                    .table(Runs::Table)
                    .col(Runs::FileId)
                    .to_owned(),
            )
            .await?;
        // One claim per offset: two requests for the same chunk cannot both write it.
        manager
            .create_index(
                Index::create()
                    .name("idx_file_chunks_offset")
                    .table(FileChunks::Table)
                    .col(FileChunks::FileId)
                    .col(FileChunks::Offset)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Runs::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(FileChunks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Files::Table).to_owned())
            .await
    }
}
