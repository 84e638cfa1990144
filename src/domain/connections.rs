//! Connections: the input shapes the API and the config file share, merging an update
//! over a stored connection with the checks for its kind, and turning a stored connection into
//! what the engine opens (the password decrypted).

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DomainError;
use crate::engine::{ConnectSpec, DbKind, SslMode, Timeouts};
use crate::secrets::MasterKey;
use crate::store::connections::{Connection, ConnectionFields};

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Driver options of a connection.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionOptions {
    /// TLS to the server: `disable`, `prefer` (default), `require`, `verify-ca` or
    /// `verify-full`. `sslmode` is accepted as input.
    #[serde(
        default,
        alias = "sslmode",
        alias = "ssl_mode",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(example = "require")]
    pub ssl_mode: Option<String>,
    /// Path (on the Sluice host) of a PEM file with CA certificates to trust for
    /// `verify-ca` / `verify-full`.
    #[serde(
        default,
        alias = "sslrootcert",
        alias = "ssl_root_cert",
        skip_serializing_if = "Option::is_none"
    )]
    pub ssl_root_cert: Option<String>,
}

/// A port given as a number or as text (SQLpipe sends text).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortInput {
    Number(i64),
    Text(String),
}

/// DBConvert Streams' nesting of a connection's server fields: `spec.database.{host, port,
/// username, password, database}`, read as the flat fields of the same names.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedSpec {
    pub database: Option<NestedDatabase>,
}

/// The server fields of a DBConvert-style `spec.database`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedDatabase {
    #[schema(example = "127.0.0.1")]
    pub host: Option<String>,
    #[schema(value_type = Option<u16>, example = 3306)]
    pub port: Option<PortInput>,
    #[schema(example = "root")]
    pub username: Option<String>,
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    #[schema(example = "test")]
    pub database: Option<String>,
}

/// Input of `POST` (all required fields) and `PATCH`/`PUT` (any subset; `null` clears).
/// SQLpipe's names `dsType`, `hostname` and `dbName`, and DBConvert's nested
/// `spec.database` are accepted; any other field is refused (400 `unknown_field`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    #[schema(example = "warehouse")]
    pub name: Option<String>,
    /// `postgresql`, `mysql`, `mariadb` or `sqlite` (alias `dsType`).
    #[serde(rename = "type", alias = "dsType")]
    #[schema(example = "postgresql")]
    pub kind: Option<String>,
    /// Server host (alias `hostname`); server types only.
    #[serde(default, alias = "hostname", deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "127.0.0.1")]
    pub host: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u16>, example = 5432)]
    pub port: Option<Option<PortInput>>,
    /// Database name (aliases `dbName`, `db_name`); server types only.
    #[serde(
        default,
        alias = "dbName",
        alias = "db_name",
        deserialize_with = "nullable"
    )]
    #[schema(value_type = Option<String>, example = "test")]
    pub database: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "postgres")]
    pub username: Option<Option<String>>,
    /// Write-only; stored encrypted, never returned.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Option<SecretString>>,
    /// Database file (sqlite only).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, example = "/srv/data/app.db")]
    pub path: Option<Option<String>>,
    pub options: Option<ConnectionOptions>,
    /// DBConvert Streams' shape: `{"spec": {"database": {"host", "port", "username",
    /// "password", "database"}}}`, the same as the flat fields (which it must not contradict).
    pub spec: Option<NestedSpec>,
}

impl ConnectionInput {
    /// Move DBConvert's `spec.database` fields into the flat ones. A field given both ways
    /// must say the same thing.
    fn flatten_spec(&mut self) -> Result<(), DomainError> {
        let Some(nested) = self.spec.take().and_then(|s| s.database) else {
            return Ok(());
        };
        fn put<T>(
            flat: &mut Option<Option<T>>,
            nested: Option<T>,
            name: &str,
            same: impl Fn(&T, &T) -> bool,
        ) -> Result<(), DomainError> {
            let Some(value) = nested else { return Ok(()) };
            match flat {
                Some(Some(existing)) if !same(existing, &value) => Err(DomainError::validation(
                    &format!("spec.database.{name}"),
                    format!("{name} is given twice, differently (as `{name}` and as `spec.database.{name}`)"),
                )),
                _ => {
                    *flat = Some(Some(value));
                    Ok(())
                }
            }
        }
        put(&mut self.host, nested.host, "host", |a, b| a == b)?;
        put(&mut self.port, nested.port, "port", |a, b| {
            parse_port(a).ok() == parse_port(b).ok()
        })?;
        put(&mut self.username, nested.username, "username", |a, b| {
            a == b
        })?;
        put(&mut self.password, nested.password, "password", |a, b| {
            a.expose_secret() == b.expose_secret()
        })?;
        put(&mut self.database, nested.database, "database", |a, b| {
            a == b
        })?;
        Ok(())
    }
}

pub fn stored_options(c: &Connection) -> ConnectionOptions {
    serde_json::from_value(c.options.clone()).unwrap_or_default()
}

fn text_field(input: Option<Option<String>>, current: Option<String>) -> Option<String> {
    match input {
        None => current,
        Some(value) => value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
    }
}

fn parse_port(input: &PortInput) -> Result<i32, DomainError> {
    let bad = || DomainError::validation("port", "port must be a number from 1 to 65535");
    let n = match input {
        PortInput::Number(n) => *n,
        PortInput::Text(t) => t.trim().parse::<i64>().map_err(|_| bad())?,
    };
    if (1..=65535).contains(&n) {
        Ok(n as i32)
    } else {
        Err(bad())
    }
}

/// Merge an input over the current connection (if any), validate the result for its type,
/// and encrypt a new password.
pub fn merge(
    current: Option<&Connection>,
    mut input: ConnectionInput,
    key: &MasterKey,
) -> Result<ConnectionFields, DomainError> {
    input.flatten_spec()?;
    let name = match input.name {
        Some(n) => n.trim().to_string(),
        None => current.map(|c| c.name.clone()).unwrap_or_default(),
    };
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation(
            "name",
            "name is required: 1 to 100 characters",
        ));
    }
    let kind_text = input
        .kind
        .or_else(|| current.map(|c| c.kind.clone()))
        .ok_or_else(|| {
            DomainError::validation(
                "type",
                format!("type is required: one of {}", DbKind::names().join(", ")),
            )
        })?;
    let kind = DbKind::parse(&kind_text).ok_or_else(|| {
        DomainError::validation(
            "type",
            format!(
                "type {kind_text:?} is not one of {}",
                DbKind::names().join(", ")
            ),
        )
    })?;
    let options = match input.options {
        Some(o) => o,
        None => current.map(stored_options).unwrap_or_default(),
    };
    if let Some(mode) = &options.ssl_mode {
        if SslMode::parse(mode).is_none() {
            return Err(DomainError::validation(
                "options.sslMode",
                format!("sslMode {mode:?} is not one of {}", SslMode::WORDS),
            ));
        }
    }
    let options_json = serde_json::to_value(&options).map_err(DomainError::internal)?;

    if !kind.is_server() {
        let path =
            text_field(input.path, current.and_then(|c| c.path.clone())).ok_or_else(|| {
                DomainError::validation(
                    "path",
                    "a sqlite connection needs the database file's path",
                )
            })?;
        return Ok(ConnectionFields {
            name,
            kind: kind.as_str().to_string(),
            host: None,
            port: None,
            database: None,
            username: None,
            password_encrypted: None,
            path: Some(path),
            options: options_json,
        });
    }

    let required = |field: &str, value: Option<String>| {
        value.ok_or_else(|| {
            DomainError::validation(
                field,
                format!("a {} connection needs {field}", kind.as_str()),
            )
        })
    };
    let host = required(
        "host",
        text_field(input.host, current.and_then(|c| c.host.clone())),
    )?;
    let port = match input.port {
        None => current.and_then(|c| c.port),
        Some(None) => None,
        Some(Some(p)) => Some(parse_port(&p)?),
    }
    .ok_or_else(|| {
        DomainError::validation("port", format!("a {} connection needs port", kind.as_str()))
    })?;
    let database = required(
        "database",
        text_field(input.database, current.and_then(|c| c.database.clone())),
    )?;
    let username = required(
        "username",
        text_field(input.username, current.and_then(|c| c.username.clone())),
    )?;
    let password_encrypted = match input.password {
        None => current.and_then(|c| c.password_encrypted.clone()),
        Some(None) => None,
        Some(Some(p)) if p.expose_secret().is_empty() => None,
        Some(Some(p)) => Some(key.encrypt(&p)),
    };
    Ok(ConnectionFields {
        name,
        kind: kind.as_str().to_string(),
        host: Some(host),
        port: Some(port),
        database: Some(database),
        username: Some(username),
        password_encrypted,
        path: None,
        options: options_json,
    })
}

/// What the engine needs to open a stored connection (the password decrypted).
pub fn connect_spec(
    c: &Connection,
    key: &MasterKey,
    timeouts: Timeouts,
) -> Result<ConnectSpec, DomainError> {
    let kind = DbKind::parse(&c.kind)
        .ok_or_else(|| DomainError::internal(format!("stored connection type {:?}", c.kind)))?;
    let options = stored_options(c);
    let password = c
        .password_encrypted
        .as_deref()
        .map(|stored| key.decrypt(stored))
        .transpose()
        .map_err(|e| DomainError::internal(format!("connection {}: {e}", c.id)))?;
    Ok(ConnectSpec {
        kind,
        host: c.host.clone().unwrap_or_default(),
        port: c.port.unwrap_or_default() as u16,
        database: c.database.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        password,
        path: c.path.as_ref().map(PathBuf::from),
        ssl_mode: options
            .ssl_mode
            .as_deref()
            .and_then(SslMode::parse)
            .unwrap_or_default(),
        ssl_root_cert: options.ssl_root_cert.map(PathBuf::from),
        timeouts,
        read_only: false,
    })
}
