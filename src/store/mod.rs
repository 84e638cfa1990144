//! The metadata store: sea-orm queries and mutations per entity. The only module that touches
//! `entities`.

pub mod connections;
pub mod files;
pub mod jobs;
pub mod queries;
pub mod runs;
pub mod tokens;
pub mod transfers;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
};
use secrecy::{ExposeSecret, SecretString};

/// How a list is cut and ordered (built by `api::pagination`).
#[derive(Debug, Clone, Copy)]
pub struct ListParams {
    pub offset: u64,
    pub limit: u64,
    pub sort: SortField,
    pub descending: bool,
}

/// Which jobs (transfers, queries) a list shows.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this user's (non-admins).
    pub owner: Option<i32>,
    /// Only these statuses.
    pub statuses: Vec<jobs::JobStatus>,
    /// Only jobs touching this connection (a transfer's source or target; a query's connection).
    pub connection: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    CreatedAt,
}

/// Whether a store error is a violated unique constraint (name taken by a concurrent request).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connect to the metadata store (SQLite file or PostgreSQL).
    pub async fn connect(
        url: &SecretString,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Self, DbErr> {
        let url = url.expose_secret();
        if let Some(path) = sqlite_file(url) {
            if let Some(dir) = std::path::Path::new(&path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        DbErr::Custom(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
        }
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(timeout)
            .acquire_timeout(timeout)
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        if db.get_database_backend() == DatabaseBackend::Sqlite {
            // WAL lets readers run beside the one writer; busy_timeout waits instead of failing.
            for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000"] {
                db.execute(Statement::from_string(DatabaseBackend::Sqlite, pragma))
                    .await?;
            }
        }
        Ok(Self { db })
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.db, None).await
    }

    /// Ready: the store answers and no migration is pending.
    pub async fn ready(&self) -> Result<(), String> {
        self.db
            .execute(Statement::from_string(self.backend(), "SELECT 1"))
            .await
            .map_err(|e| format!("metadata store does not answer: {e}"))?;
        let pending = Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(|e| format!("cannot read migrations: {e}"))?;
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("{} migration(s) not applied", pending.len()))
        }
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn close(self) {
        let _ = self.db.close().await;
    }
}

/// The file path of a `sqlite:` URL, if it names a file.
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

pub(crate) fn order<E, C>(
    select: sea_orm::Select<E>,
    params: &ListParams,
    id: C,
    created_at: C,
) -> sea_orm::Select<E>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ColumnTrait,
{
    use sea_orm::{QueryOrder, QuerySelect};
    let column = match params.sort {
        SortField::Id => id,
        SortField::CreatedAt => created_at,
    };
    let select = if params.descending {
        select.order_by_desc(column)
    } else {
        select.order_by_asc(column)
    };
    // A stable tie-break for equal timestamps.
    let select = if params.sort == SortField::CreatedAt {
        if params.descending {
            select.order_by_desc(id)
        } else {
            select.order_by_asc(id)
        }
    } else {
        select
    };
    select.offset(params.offset).limit(params.limit)
}
