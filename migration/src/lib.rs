//! Migrations of the metadata store; run at start and by `sluice migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_users_tokens_connections;
mod m20261125_000002_transfers;
mod m20261125_000003_queries;
mod m20261126_000004_transfer_partitions;
mod m20261202_000005_job_names_and_codes;
mod m20261202_000006_files;
mod m20261207_000007_transfer_files;
mod m20261208_000008_export_runs;
mod sqlite;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_users_tokens_connections::Migration),
            Box::new(m20261125_000002_transfers::Migration),
            Box::new(m20261125_000003_queries::Migration),
            Box::new(m20261126_000004_transfer_partitions::Migration),
            Box::new(m20261202_000005_job_names_and_codes::Migration),
            Box::new(m20261202_000006_files::Migration),
            Box::new(m20261207_000007_transfer_files::Migration),
            Box::new(m20261208_000008_export_runs::Migration),
        ]
    }
}
