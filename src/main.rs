//! The `sluice` command: serve | migrate | transfer | user add.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use sluice::settings::Settings;
use sluice::startup::{self, Application};
use sluice::{secrets, telemetry};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Moves query results between databases."
)]
struct Cli {
    /// A settings file applied over config/default.toml, config/{SLUICE_ENV}.toml and
    /// config/local.toml (environment variables SLUICE__SECTION__KEY still win).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding default.toml, {SLUICE_ENV}.toml and local.toml.
    #[arg(
        long,
        global = true,
        env = "SLUICE_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (migrates the metadata store first).
    Serve,
    /// Apply the metadata store's migrations and exit.
    Migrate,
    /// Run one transfer now, without the server: the same engine, a progress line, exit
    /// status 1 with the error on failure. Ctrl-C cancels (the target is left as it was).
    Transfer {
        /// Source URL: postgres://user:pass@host:port/db, mysql://…, mariadb://…, sqlite://path,
        /// or a CSV, JSON, JSON Lines or Parquet file: file:///path/orders.csv
        #[arg(long)]
        source: String,
        /// Target URL, same forms as --source.
        #[arg(long)]
        target: String,
        /// The SQL to run on the source (not with a file:// source, which is read whole).
        #[arg(long)]
        query: Option<String>,
        /// The target table (created when missing).
        #[arg(long)]
        table: String,
        /// The target schema (PostgreSQL) or database (MySQL); created when missing.
        #[arg(long)]
        schema: Option<String>,
        /// Replace the table's rows atomically instead of appending.
        #[arg(long)]
        overwrite: bool,
        /// Read the source in ranges of this integer column of the result, in parallel
        /// (with --partitions).
        #[arg(long, requires = "partitions")]
        partition_column: Option<String>,
        /// How many ranges to read in parallel, 1 to 32 (with --partition-column).
        #[arg(long, requires = "partition_column")]
        partitions: Option<u32>,
    },
    /// Manage users without the API.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from --password-env, or from the first line of
    /// standard input with --password-stdin; without either, one is generated and printed.
    Add {
        username: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Name of an environment variable holding the password.
        #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
        password_env: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config_dir, cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let system = actix_web::rt::System::new();
    let result = system.block_on(run(cli.command, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Buffers of 1 MiB and more (the Arrow batches a transfer passes along) are mapped and unmapped
/// by the allocator itself. Left alone, glibc raises that threshold to the size of the first
/// freed batch and from then on keeps every batch's memory on its heaps, so a long transfer's
/// RSS creeps up with the row count instead of staying flat (bench/PROFILE.md).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            tracing::info!("Stopped.");
            Ok(())
        }
        Command::Transfer {
            source,
            target,
            query,
            table,
            schema,
            overwrite,
            partition_column,
            partitions,
        } => {
            startup::install_crypto_provider();
            let args = sluice::cli::TransferArgs {
                source,
                target,
                query,
                table,
                schema,
                overwrite,
                partition_column,
                partitions,
            };
            sluice::cli::transfer(args, &settings).await?;
            Ok(())
        }
        Command::Migrate => {
            startup::install_crypto_provider();
            let store = startup::open_store(&settings).await?;
            store.close().await;
            println!("Migrations applied.");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    admin,
                    password_env,
                    password_stdin,
                },
        } => {
            let username = sluice::domain::accounts::validate_username(&username)
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            let (password, generated) = if let Some(var) = password_env {
                let value = std::env::var(&var)
                    .map_err(|_| anyhow::anyhow!("the environment variable {var} is not set"))?;
                (SecretString::from(value), false)
            } else if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                (
                    SecretString::from(line.trim_end_matches(['\r', '\n']).to_string()),
                    false,
                )
            } else {
                (secrets::generate_password(), true)
            };
            sluice::domain::accounts::validate_password(password.expose_secret())
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            startup::install_crypto_provider();
            let store = startup::open_store(&settings).await?;
            let hash = tokio::task::spawn_blocking({
                let password = password.clone();
                move || secrets::hash_password(&password)
            })
            .await?;
            let user = store
                .create_user(&username, hash, admin)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create {username:?}: {e}"))?;
            store.close().await;
            println!(
                "Created user {:?} (id {}{}).",
                user.username,
                user.id,
                if admin { ", admin" } else { "" }
            );
            if generated {
                println!("Password (not shown again): {}", password.expose_secret());
            }
            Ok(())
        }
    }
}
