//! Users in the metadata store.

use chrono::Utc;
use entities::user;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set, TransactionTrait,
};

use super::{order, ListParams, Store};

pub type User = user::Model;

/// Changes of a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub password_hash: Option<String>,
    pub admin: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserWriteError {
    #[error("user not found")]
    NotFound,
    #[error("username taken")]
    UsernameTaken,
    #[error("that would leave no admin")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn map_unique(e: DbErr) -> UserWriteError {
    if super::is_unique_violation(&e) {
        UserWriteError::UsernameTaken
    } else {
        UserWriteError::Db(e)
    }
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: String,
        admin: bool,
    ) -> Result<User, UserWriteError> {
        if self.find_user_by_username(username).await?.is_some() {
            return Err(UserWriteError::UsernameTaken);
        }
        let now = Utc::now();
        user::ActiveModel {
            username: Set(username.to_string()),
            password_hash: Set(password_hash),
            admin: Set(admin),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.db())
        .await
        .map_err(map_unique)
    }

    pub async fn count_users(&self) -> Result<u64, DbErr> {
        user::Entity::find().count(self.db()).await
    }

    pub async fn list_users(&self, params: &ListParams) -> Result<(Vec<User>, u64), DbErr> {
        let total = user::Entity::find().count(self.db()).await?;
        let rows = order(
            user::Entity::find(),
            params,
            user::Column::Id,
            user::Column::CreatedAt,
        )
        .all(self.db())
        .await?;
        Ok((rows, total))
    }

    pub async fn get_user(&self, id: i32) -> Result<Option<User>, DbErr> {
        user::Entity::find_by_id(id).one(self.db()).await
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, DbErr> {
        user::Entity::find()
            .filter(user::Column::Username.eq(username))
            .one(self.db())
            .await
    }

    /// Update a user; demoting the last admin fails with `LastAdmin`.
    pub async fn update_user(&self, id: i32, changes: UserChanges) -> Result<User, UserWriteError> {
        let txn = self.db().begin().await?;
        let current = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(UserWriteError::NotFound)?;
        if current.admin && changes.admin == Some(false) && other_admins(&txn, id).await? == 0 {
            return Err(UserWriteError::LastAdmin);
        }
        if let Some(name) = &changes.username {
            if name != &current.username {
                let taken = user::Entity::find()
                    .filter(user::Column::Username.eq(name.as_str()))
                    .one(&txn)
                    .await?;
                if taken.is_some() {
                    return Err(UserWriteError::UsernameTaken);
                }
            }
        }
        let mut active: user::ActiveModel = current.into();
        if let Some(name) = changes.username {
            active.username = Set(name);
        }
        if let Some(hash) = changes.password_hash {
            active.password_hash = Set(hash);
        }
        if let Some(admin) = changes.admin {
            active.admin = Set(admin);
        }
        active.updated_at = Set(Utc::now());
        let updated = active.update(&txn).await.map_err(map_unique)?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Delete a user (and its tokens); deleting the last admin fails with `LastAdmin`.
    pub async fn delete_user(&self, id: i32) -> Result<(), UserWriteError> {
        let txn = self.db().begin().await?;
        let current = user::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(UserWriteError::NotFound)?;
        if current.admin && other_admins(&txn, id).await? == 0 {
            return Err(UserWriteError::LastAdmin);
        }
        entities::api_token::Entity::delete_many()
            .filter(entities::api_token::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Admins other than `id`, with their rows locked on PostgreSQL so that two concurrent
/// demotions cannot both see the other admin.
async fn other_admins(txn: &sea_orm::DatabaseTransaction, id: i32) -> Result<u64, DbErr> {
    use sea_orm::ConnectionTrait;
    let mut select = user::Entity::find()
        .filter(user::Column::Admin.eq(true))
        .filter(user::Column::Id.ne(id));
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        select = select.lock_exclusive();
    }
    Ok(select.all(txn).await?.len() as u64)
}
