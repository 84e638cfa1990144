//! Typed settings, layered from the compiled-in defaults, `config/*.toml`, an optional
//! `--config` file and `SLUICE__SECTION__KEY` environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The documented defaults; the same text as `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub security: SecuritySettings,
    pub bootstrap: BootstrapSettings,
    pub engine: EngineSettings,
    pub jobs: JobSettings,
    pub queries: QuerySettings,
    pub api: ApiSettings,
    pub files: FileSettings,
    /// `[[users]]` declared in the configuration.
    #[serde(default, rename = "users")]
    pub declared_users: Vec<DeclaredUser>,
    /// `[[connections]]` declared in the configuration.
    #[serde(default, rename = "connections")]
    pub declared_connections: Vec<DeclaredConnection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub body_limit_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub secret_key: SecretString,
    pub auth_cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    pub admin_username: String,
    pub admin_password: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    pub connect_timeout_secs: u64,
    pub io_timeout_secs: u64,
    pub list_timeout_secs: u64,
    /// Seconds an exact row count may take (`GET …/tables/{table}/count`).
    pub count_timeout_secs: u64,
}

impl EngineSettings {
    /// The limits every connection to a user's database keeps.
    pub fn timeouts(&self) -> crate::engine::Timeouts {
        crate::engine::Timeouts {
            connect: std::time::Duration::from_secs(self.connect_timeout_secs),
            io: std::time::Duration::from_secs(self.io_timeout_secs),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    pub max_concurrent: usize,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    pub batch_rows: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySettings {
    pub max_rows: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub public_docs: bool,
    /// Serve `/metrics` without credentials; when false it takes an admin's.
    pub metrics_public: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Largest file, in bytes (uploads past it get 413 and leave nothing behind).
    pub max_size: u64,
    /// Hosts `POST /files {"url"}` may fetch from although they resolve to private, loopback
    /// or link-local addresses.
    pub allowed_url_hosts: Vec<String>,
    /// Seconds a URL fetch may wait to connect, and for each further byte.
    pub url_timeout_secs: u64,
}

/// A user declared with `[[users]]`; reconciled into the store at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredUser {
    pub username: String,
    /// Name of the environment variable that holds the password.
    pub password_env: String,
    #[serde(default)]
    pub admin: bool,
}

/// A connection declared with `[[connections]]`; reconciled into the store at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredConnection {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub username: Option<String>,
    /// Name of the environment variable that holds the password.
    pub password_env: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}

/// Start-up failed because of a setting; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// The compiled-in defaults alone (what tests start from).
    pub fn defaults() -> Self {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("the compiled-in defaults are valid")
    }

    /// Load the layers described in `config/default.toml`, from `config_dir`.
    pub fn load(config_dir: &Path, extra_file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Toml::file(config_dir.join("default.toml")));
        if let Ok(env) = std::env::var("SLUICE_ENV") {
            if !env.is_empty() {
                let file = config_dir.join(format!("{env}.toml"));
                if !file.exists() {
                    return Err(SettingsError(format!(
                        "SLUICE_ENV is {env:?} but {} does not exist",
                        file.display()
                    )));
                }
                figment = figment.merge(Toml::file(file));
            }
        }
        figment = figment.merge(Toml::file(config_dir.join("local.toml")));
        if let Some(file) = extra_file {
            if !file.exists() {
                return Err(SettingsError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("SLUICE__").split("__"));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment.extract().map_err(describe_figment_error)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, why: &str| Err(SettingsError(format!("`{key}` {why}")));
        if self.server.host.trim().is_empty() {
            return bad("server.host", "must not be empty");
        }
        if self.server.body_limit_bytes < 1024 {
            return bad("server.body_limit_bytes", "must be at least 1024");
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        let url = self.database.url.expose_secret();
        let known = ["postgres://", "postgresql://", "sqlite:"];
        if !url.is_empty() && !known.iter().any(|prefix| url.starts_with(prefix)) {
            return bad(
                "database.url",
                "must be empty (SQLite in data_dir), postgres://… or sqlite:…",
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "is not a valid log filter (e.g. \"info\")");
        }
        let key = self.security.secret_key.expose_secret();
        if !key.is_empty() && crate::secrets::decode_key(key).is_none() {
            return bad(
                "security.secret_key",
                "must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)",
            );
        }
        if self.engine.connect_timeout_secs == 0 {
            return bad("engine.connect_timeout_secs", "must be at least 1");
        }
        if self.engine.io_timeout_secs == 0 {
            return bad("engine.io_timeout_secs", "must be at least 1");
        }
        if self.engine.list_timeout_secs == 0 {
            return bad("engine.list_timeout_secs", "must be at least 1");
        }
        if self.engine.count_timeout_secs == 0 {
            return bad("engine.count_timeout_secs", "must be at least 1");
        }
        if self.jobs.max_concurrent == 0 {
            return bad("jobs.max_concurrent", "must be at least 1");
        }
        if !(1..=1_000_000).contains(&self.jobs.batch_rows) {
            return bad("jobs.batch_rows", "must be from 1 to 1000000");
        }
        if self.queries.max_rows == 0 {
            return bad("queries.max_rows", "must be at least 1");
        }
        if self.queries.max_bytes < 1024 {
            return bad("queries.max_bytes", "must be at least 1024");
        }
        if self.bootstrap.admin_username.trim().is_empty() {
            return bad("bootstrap.admin_username", "must not be empty");
        }
        for (i, user) in self.declared_users.iter().enumerate() {
            if user.password_env.trim().is_empty() {
                return bad(&format!("users[{i}].password_env"), "must not be empty");
            }
        }
        Ok(())
    }

    /// The metadata store URL: the configured one, or the SQLite file in `data_dir`.
    pub fn database_url(&self) -> SecretString {
        let url = self.database.url.expose_secret();
        if url.is_empty() {
            SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("sluice.db").display()
            ))
        } else {
            self.database.url.clone()
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.server.host, self.server.port)
    }
}

fn describe_figment_error(error: figment::Error) -> SettingsError {
    let mut parts = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let mut kind = e.kind.to_string();
        // figment phrases env values as "string"; keep its wording but name the key first.
        if kind.is_empty() {
            kind = "invalid value".into();
        }
        if key.is_empty() {
            parts.push(kind);
        } else {
            parts.push(format!("`{key}`: {kind}"));
        }
    }
    SettingsError(parts.join("; "))
}
