//! sea-orm entities of Sluice's metadata store. Only `src/store` uses them.

pub mod api_token;
pub mod connection;
pub mod user;

pub mod prelude {
    pub use super::api_token::Entity as ApiToken;
    pub use super::connection::Entity as Connection;
    pub use super::user::Entity as User;
}
