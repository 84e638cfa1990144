//! The one integration-test binary: the real HTTP API against real databases.

mod helpers;

mod auth;
mod bad_input;
mod config;
mod connections;
mod service;
mod tokens;
mod users;
