//! A database that transfers and queries read from or write to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    /// postgresql | mysql | mariadb | sqlite
    pub kind: String,
    pub host: Option<String>,
    pub port: Option<i32>,
    pub database: Option<String>,
    pub username: Option<String>,
    /// The password encrypted under the master key (`v1:` + base64 of nonce and ciphertext).
    pub password_encrypted: Option<String>,
    /// Path of the database file (sqlite).
    pub path: Option<String>,
    /// Driver options such as `sslMode`, as a JSON object.
    pub options: Json,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
