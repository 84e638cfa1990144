//! sea-orm entities of Sluice's metadata store. Only `src/store` uses them.

pub mod api_token;
pub mod connection;
pub mod file;
pub mod file_chunk;
pub mod job_status;
pub mod query;
pub mod query_result;
pub mod run;
pub mod transfer;
pub mod user;

pub mod prelude {
    pub use super::api_token::Entity as ApiToken;
    pub use super::connection::Entity as Connection;
    pub use super::file::Entity as File;
    pub use super::file_chunk::Entity as FileChunk;
    pub use super::query::Entity as Query;
    pub use super::query_result::Entity as QueryResult;
    pub use super::run::Entity as Run;
    pub use super::transfer::Entity as Transfer;
    pub use super::user::Entity as User;
}
