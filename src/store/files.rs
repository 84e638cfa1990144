//! Files' metadata and the chunks of chunked uploads. A file is listed only once `ready`; the
//! chunks of one file are claimed one request at a time (the file's row is written first in
//! each claim, which takes its lock), so two overlapping chunks can never both be written.

use chrono::Utc;
use entities::{file, file_chunk};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};

use super::{order, ListParams, Store};

pub type File = file::Model;

pub const UPLOADING: &str = "uploading";
pub const SEALING: &str = "sealing";
pub const READY: &str = "ready";

/// A new file's metadata.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub owner_id: i32,
    pub name: String,
    pub mime: String,
    pub format: Option<String>,
    pub size: i64,
    pub status: &'static str,
    pub storage_key: String,
    pub sha256: Option<String>,
}

/// What claiming a chunk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The chunk is this caller's to write (the claim's id).
    Claimed(i32),
    /// The same chunk was uploaded before.
    AlreadyDone,
    /// The same chunk is being uploaded by another request.
    InProgress,
    /// Another chunk covers part of this one (its offset and size).
    Overlaps { offset: i64, size: i64 },
    /// The file is not (or no longer) taking chunks.
    NotUploading,
}

impl Store {
    pub async fn create_file(&self, new: NewFile) -> Result<File, DbErr> {
        let now = Utc::now();
        file::ActiveModel {
            owner_id: Set(new.owner_id),
            name: Set(new.name),
            mime: Set(new.mime),
            format: Set(new.format),
            size: Set(new.size),
            status: Set(new.status.to_string()),
            storage_key: Set(new.storage_key),
            sha256: Set(new.sha256),
            schema: Set(None),
            schema_error: Set(None),
            row_count: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db())
        .await
    }

    pub async fn get_file(&self, id: i32) -> Result<Option<File>, DbErr> {
        file::Entity::find_by_id(id).one(self.db()).await
    }

    /// Ready files, all or one owner's.
    pub async fn list_files(
        &self,
        owner: Option<i32>,
        params: &ListParams,
    ) -> Result<(Vec<File>, u64), DbErr> {
        let mut select = file::Entity::find().filter(file::Column::Status.eq(READY));
        if let Some(owner) = owner {
            select = select.filter(file::Column::OwnerId.eq(owner));
        }
        let total = select.clone().count(self.db()).await?;
        let rows = order(select, params, file::Column::Id, file::Column::CreatedAt)
            .all(self.db())
            .await?;
        Ok((rows, total))
    }

    /// Claim the chunk at `offset` of `size` bytes of an uploading file.
    pub async fn claim_chunk(&self, file_id: i32, offset: i64, size: i64) -> Result<Claim, DbErr> {
        let txn = self.db().begin().await?;
        // Written first: it locks the file's row (PostgreSQL) or the database (SQLite) for
        // the rest of this transaction, so claims of one file happen one after the other.
        let touched = file::Entity::update_many()
            .col_expr(file::Column::UpdatedAt, Utc::now().into())
            .filter(file::Column::Id.eq(file_id))
            .filter(file::Column::Status.eq(UPLOADING))
            .exec(&txn)
            .await?;
        if touched.rows_affected == 0 {
            return Ok(Claim::NotUploading);
        }
        let chunks = file_chunk::Entity::find()
            .filter(file_chunk::Column::FileId.eq(file_id))
            .all(&txn)
            .await?;
        let end = offset + size;
        if let Some(same) = chunks.iter().find(|c| c.offset == offset && c.size == size) {
            return Ok(if same.done {
                Claim::AlreadyDone
            } else {
                Claim::InProgress
            });
        }
        if let Some(other) = chunks
            .iter()
            .find(|c| c.offset < end && offset < c.offset + c.size)
        {
            return Ok(Claim::Overlaps {
                offset: other.offset,
                size: other.size,
            });
        }
        let claim = file_chunk::ActiveModel {
            file_id: Set(file_id),
            offset: Set(offset),
            size: Set(size),
            done: Set(false),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Claim::Claimed(claim.id))
    }

    /// Give a claim up (its bytes did not all arrive).
    pub async fn release_chunk(&self, claim: i32) -> Result<(), DbErr> {
        file_chunk::Entity::delete_by_id(claim)
            .exec(self.db())
            .await
            .map(drop)
    }

    /// Mark a claimed chunk written; the bytes of the file now written.
    pub async fn finish_chunk(&self, claim: i32, file_id: i32) -> Result<i64, DbErr> {
        file_chunk::Entity::update_many()
            .col_expr(file_chunk::Column::Done, true.into())
            .filter(file_chunk::Column::Id.eq(claim))
            .exec(self.db())
            .await?;
        self.written_bytes(file_id).await
    }

    /// Bytes of a chunked upload written so far.
    pub async fn written_bytes(&self, file_id: i32) -> Result<i64, DbErr> {
        let sizes: Vec<i64> = file_chunk::Entity::find()
            .select_only()
            .column(file_chunk::Column::Size)
            .filter(file_chunk::Column::FileId.eq(file_id))
            .filter(file_chunk::Column::Done.eq(true))
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(sizes.into_iter().sum())
    }

    /// Move a file from `from` to `to`; false when it was not in `from` (someone else moved it).
    pub async fn move_file(&self, id: i32, from: &str, to: &str) -> Result<bool, DbErr> {
        let moved = file::Entity::update_many()
            .col_expr(file::Column::Status, to.into())
            .col_expr(file::Column::UpdatedAt, Utc::now().into())
            .filter(file::Column::Id.eq(id))
            .filter(file::Column::Status.eq(from))
            .exec(self.db())
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// A sealed file becomes ready with its final size and hash; its chunks are forgotten.
    pub async fn file_ready(&self, id: i32, size: i64, sha256: &str) -> Result<(), DbErr> {
        let txn = self.db().begin().await?;
        file::Entity::update_many()
            .col_expr(file::Column::Status, READY.into())
            .col_expr(file::Column::Size, size.into())
            .col_expr(file::Column::Sha256, sha256.into())
            .col_expr(file::Column::UpdatedAt, Utc::now().into())
            .filter(file::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        delete_chunks(&txn, id).await?;
        txn.commit().await
    }

    /// Record what schema detection found (and the format it read), or why it failed.
    pub async fn set_file_schema(
        &self,
        id: i32,
        format: Option<String>,
        schema: Result<serde_json::Value, String>,
    ) -> Result<Option<File>, DbErr> {
        let (schema, error) = match schema {
            Ok(schema) => (Some(schema), None),
            Err(error) => (None, Some(error)),
        };
        // Every record was read (or a footer says how many): the count is known.
        let rows = schema
            .as_ref()
            .filter(|s| s["wholeFile"] == true)
            .and_then(|s| s["sampledRows"].as_i64());
        let mut update = file::Entity::update_many()
            .col_expr(file::Column::RowCount, rows.into())
            .col_expr(file::Column::Schema, schema.into())
            .col_expr(file::Column::SchemaError, error.into())
            .col_expr(file::Column::UpdatedAt, Utc::now().into())
            .filter(file::Column::Id.eq(id));
        if let Some(format) = format {
            update = update.col_expr(file::Column::Format, Some(format).into());
        }
        update.exec(self.db()).await?;
        self.get_file(id).await
    }

    /// Forget a file (its bytes are the caller's to remove).
    pub async fn delete_file(&self, id: i32) -> Result<bool, DbErr> {
        let txn = self.db().begin().await?;
        delete_chunks(&txn, id).await?;
        let deleted = file::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(deleted.rows_affected == 1)
    }
}

async fn delete_chunks(db: &impl ConnectionTrait, file_id: i32) -> Result<(), DbErr> {
    file_chunk::Entity::delete_many()
        .filter(file_chunk::Column::FileId.eq(file_id))
        .exec(db)
        .await
        .map(drop)
}
