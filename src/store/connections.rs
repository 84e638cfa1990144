//! Connections in the metadata store (passwords only in encrypted form).

use chrono::Utc;
use entities::connection;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::{order, ListParams, Store};

pub type Connection = connection::Model;

/// Every stored field of a connection but its id and timestamps.
#[derive(Debug, Clone)]
pub struct ConnectionFields {
    pub name: String,
    pub kind: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub database: Option<String>,
    pub username: Option<String>,
    pub password_encrypted: Option<String>,
    pub path: Option<String>,
    pub options: serde_json::Value,
}

impl From<&Connection> for ConnectionFields {
    fn from(c: &Connection) -> Self {
        Self {
            name: c.name.clone(),
            kind: c.kind.clone(),
            host: c.host.clone(),
            port: c.port,
            database: c.database.clone(),
            username: c.username.clone(),
            password_encrypted: c.password_encrypted.clone(),
            path: c.path.clone(),
            options: c.options.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionWriteError {
    #[error("connection not found")]
    NotFound,
    #[error("connection name taken")]
    NameTaken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn map_unique(e: DbErr) -> ConnectionWriteError {
    if super::is_unique_violation(&e) {
        ConnectionWriteError::NameTaken
    } else {
        ConnectionWriteError::Db(e)
    }
}

fn apply(active: &mut connection::ActiveModel, f: ConnectionFields) {
    active.name = Set(f.name);
    active.kind = Set(f.kind);
    active.host = Set(f.host);
    active.port = Set(f.port);
    active.database = Set(f.database);
    active.username = Set(f.username);
    active.password_encrypted = Set(f.password_encrypted);
    active.path = Set(f.path);
    active.options = Set(f.options);
    active.updated_at = Set(Utc::now());
}

impl Store {
    pub async fn create_connection(
        &self,
        fields: ConnectionFields,
    ) -> Result<Connection, ConnectionWriteError> {
        if self.find_connection_by_name(&fields.name).await?.is_some() {
            return Err(ConnectionWriteError::NameTaken);
        }
        let mut active = connection::ActiveModel {
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        apply(&mut active, fields);
        active.insert(self.db()).await.map_err(map_unique)
    }

    pub async fn update_connection(
        &self,
        id: i32,
        fields: ConnectionFields,
    ) -> Result<Connection, ConnectionWriteError> {
        let current = self
            .get_connection(id)
            .await?
            .ok_or(ConnectionWriteError::NotFound)?;
        if fields.name != current.name {
            if let Some(other) = self.find_connection_by_name(&fields.name).await? {
                if other.id != id {
                    return Err(ConnectionWriteError::NameTaken);
                }
            }
        }
        let mut active: connection::ActiveModel = current.into();
        apply(&mut active, fields);
        active.update(self.db()).await.map_err(map_unique)
    }

    pub async fn list_connections(
        &self,
        params: &ListParams,
    ) -> Result<(Vec<Connection>, u64), DbErr> {
        let total = connection::Entity::find().count(self.db()).await?;
        let rows = order(
            connection::Entity::find(),
            params,
            connection::Column::Id,
            connection::Column::CreatedAt,
        )
        .all(self.db())
        .await?;
        Ok((rows, total))
    }

    pub async fn get_connection(&self, id: i32) -> Result<Option<Connection>, DbErr> {
        connection::Entity::find_by_id(id).one(self.db()).await
    }

    pub async fn find_connection_by_name(&self, name: &str) -> Result<Option<Connection>, DbErr> {
        connection::Entity::find()
            .filter(connection::Column::Name.eq(name))
            .one(self.db())
            .await
    }

    pub async fn delete_connection(&self, id: i32) -> Result<bool, DbErr> {
        let result = connection::Entity::delete_by_id(id).exec(self.db()).await?;
        Ok(result.rows_affected > 0)
    }
}
