//! Sluice: a service that runs SQL on one database and moves the result into another.
//! `startup::Application::build(settings)` is what `main` and the tests start.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod codes;
pub mod domain;
pub mod engine;
pub mod jobs;
pub mod provision;
pub mod secrets;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod store;
pub mod telemetry;
