//! The one integration-test binary: the real HTTP API against real databases.

mod helpers;

mod auth;
mod bad_input;
mod browser;
mod cli;
mod config;
mod connections;
mod convert;
mod engine_mysql;
mod engine_postgres;
mod engine_sqlite;
mod events;
mod faults;
mod file_transfers;
mod files;
mod metrics;
mod pairs;
mod partitions;
mod passthrough;
mod queries;
mod relay;
mod runs;
mod same_kind;
mod service;
mod tokens;
mod transfers;
mod users;
