//! Connections in the metadata store (passwords only in encrypted form).

use chrono::Utc;
use entities::connection;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};

use super::jobs::JobStatus;
use super::{order, ListParams, Store};

pub type Connection = connection::Model;

/// What deleting a connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteConnection {
    Deleted,
    NotFound,
    /// Queued or running jobs use it (their ids); nothing was deleted.
    InUse {
        transfers: Vec<i32>,
        queries: Vec<i32>,
    },
}

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

    /// Delete a connection that no queued or running job uses. Finished jobs keep the
    /// connection's name (`source_name`, `target_name`, `connection_name`).
    pub async fn delete_connection(&self, id: i32) -> Result<DeleteConnection, DbErr> {
        use entities::{query, transfer};
        let txn = self.db().begin().await?;
        let active = [JobStatus::Queued, JobStatus::Running];
        let transfers: Vec<i32> = transfer::Entity::find()
            .select_only()
            .column(transfer::Column::Id)
            .filter(
                Condition::any()
                    .add(transfer::Column::SourceId.eq(id))
                    .add(transfer::Column::TargetId.eq(id)),
            )
            .filter(transfer::Column::Status.is_in(active))
            .into_tuple()
            .all(&txn)
            .await?;
        let queries: Vec<i32> = query::Entity::find()
            .select_only()
            .column(query::Column::Id)
            .filter(query::Column::ConnectionId.eq(id))
            .filter(query::Column::Status.is_in(active))
            .into_tuple()
            .all(&txn)
            .await?;
        if !transfers.is_empty() || !queries.is_empty() {
            return Ok(DeleteConnection::InUse { transfers, queries });
        }
        let result = connection::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(if result.rows_affected > 0 {
            DeleteConnection::Deleted
        } else {
            DeleteConnection::NotFound
        })
    }
}
