//! API tokens in the metadata store (hashes only).

use chrono::{DateTime, Utc};
use entities::{api_token, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::{order, ListParams, Store};

pub type ApiToken = api_token::Model;

impl Store {
    pub async fn create_token(
        &self,
        user_id: i32,
        name: &str,
        token_hash: String,
        prefix: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiToken, DbErr> {
        api_token::ActiveModel {
            user_id: Set(user_id),
            name: Set(name.to_string()),
            token_hash: Set(token_hash),
            prefix: Set(prefix),
            created_at: Set(Utc::now()),
            expires_at: Set(expires_at),
            last_used_at: Set(None),
            ..Default::default()
        }
        .insert(self.db())
        .await
    }

    /// Tokens of one user, or of everyone when `user_id` is `None`.
    pub async fn list_tokens(
        &self,
        user_id: Option<i32>,
        params: &ListParams,
    ) -> Result<(Vec<ApiToken>, u64), DbErr> {
        let mut select = api_token::Entity::find();
        if let Some(uid) = user_id {
            select = select.filter(api_token::Column::UserId.eq(uid));
        }
        let total = select.clone().count(self.db()).await?;
        let rows = order(
            select,
            params,
            api_token::Column::Id,
            api_token::Column::CreatedAt,
        )
        .all(self.db())
        .await?;
        Ok((rows, total))
    }

    pub async fn get_token(&self, id: i32) -> Result<Option<ApiToken>, DbErr> {
        api_token::Entity::find_by_id(id).one(self.db()).await
    }

    pub async fn delete_token(&self, id: i32) -> Result<bool, DbErr> {
        let result = api_token::Entity::delete_by_id(id).exec(self.db()).await?;
        Ok(result.rows_affected > 0)
    }

    /// The token with this hash and its user, expired or not (the caller tells the two apart
    /// so that an expired token is answered as such).
    pub async fn find_token_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ApiToken, super::users::User)>, DbErr> {
        let found = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(token_hash))
            .find_also_related(user::Entity)
            .one(self.db())
            .await?;
        Ok(match found {
            Some((token, Some(user))) => Some((token, user)),
            _ => None,
        })
    }

    /// Record a token's use; at most once a minute per token to spare the store writes.
    pub async fn touch_token(&self, token: &ApiToken) -> Result<(), DbErr> {
        let now = Utc::now();
        if token
            .last_used_at
            .is_some_and(|at| now.signed_duration_since(at).num_seconds() < 60)
        {
            return Ok(());
        }
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_token::Column::Id.eq(token.id))
            .exec(self.db())
            .await?;
        Ok(())
    }
}
