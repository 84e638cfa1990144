//! Users and connections that come from configuration: the bootstrap admin on an empty store,
//! and the `[[users]]` / `[[connections]]` declared in the config files, reconciled at start.

use anyhow::{anyhow, bail, Context};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::accounts::{validate_password, validate_username};
use crate::domain::connections::{merge, ConnectionInput, PortInput};
use crate::secrets::{self, MasterKey};
use crate::settings::Settings;
use crate::store::users::UserChanges;
use crate::store::Store;

/// With no users at all, create the admin named in `bootstrap`; without a configured password,
/// generate one and print it once.
pub async fn bootstrap_admin(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let username = validate_username(&settings.bootstrap.admin_username)
        .map_err(|e| anyhow!("`bootstrap.admin_username`: {}", e.detail))?;
    let configured = settings.bootstrap.admin_password.expose_secret();
    let (password, generated) = if configured.is_empty() {
        (secrets::generate_password(), true)
    } else {
        validate_password(configured)
            .map_err(|e| anyhow!("`bootstrap.admin_password`: {}", e.detail))?;
        (settings.bootstrap.admin_password.clone(), false)
    };
    let hash = tokio::task::spawn_blocking({
        let password = password.clone();
        move || secrets::hash_password(&password)
    })
    .await?;
    store
        .create_user(&username, hash, true)
        .await
        .context("cannot create the bootstrap admin")?;
    if generated {
        // Printed once, on the terminal, not through the log.
        eprintln!(
            "\n  Sluice created the admin user {username:?} with the password:\n\n      {}\n\n  It is not shown again. Change it with PATCH /api/v1/users/me.\n",
            password.expose_secret()
        );
    }
    tracing::info!(%username, generated, "Bootstrap admin created.");
    Ok(())
}

fn env_secret(var: &str, what: &str) -> anyhow::Result<SecretString> {
    match std::env::var(var) {
        Ok(value) => Ok(SecretString::from(value)),
        Err(_) => bail!("{what}: the environment variable {var} is not set"),
    }
}

/// Create or update the declared users and connections.
pub async fn reconcile(store: &Store, key: &MasterKey, settings: &Settings) -> anyhow::Result<()> {
    for (i, declared) in settings.declared_users.iter().enumerate() {
        let what = format!("users[{i}] ({})", declared.username);
        let username =
            validate_username(&declared.username).map_err(|e| anyhow!("{what}: {}", e.detail))?;
        let password = env_secret(&declared.password_env, &what)?;
        validate_password(password.expose_secret()).map_err(|e| anyhow!("{what}: {}", e.detail))?;
        match store.find_user_by_username(&username).await? {
            None => {
                let hash =
                    tokio::task::spawn_blocking(move || secrets::hash_password(&password)).await?;
                store
                    .create_user(&username, hash, declared.admin)
                    .await
                    .with_context(|| what.clone())?;
                tracing::info!(%username, "Declared user created.");
            }
            Some(user) => {
                let stored = user.password_hash.clone();
                let (same, hash) = tokio::task::spawn_blocking(move || {
                    let same = secrets::verify_password(&password, &stored);
                    (same, (!same).then(|| secrets::hash_password(&password)))
                })
                .await?;
                if !same || user.admin != declared.admin {
                    store
                        .update_user(
                            user.id,
                            UserChanges {
                                password_hash: hash,
                                admin: Some(declared.admin),
                                ..Default::default()
                            },
                        )
                        .await
                        .with_context(|| what.clone())?;
                    tracing::info!(%username, "Declared user updated.");
                }
            }
        }
    }
    for (i, declared) in settings.declared_connections.iter().enumerate() {
        let what = format!("connections[{i}] ({})", declared.name);
        let password = declared
            .password_env
            .as_deref()
            .map(|var| env_secret(var, &what))
            .transpose()?;
        let options = serde_json::to_value(&declared.options)
            .and_then(serde_json::from_value)
            .map_err(|e| anyhow!("{what}: options: {e}"))?;
        // The file is the whole truth: a field it leaves out is cleared.
        let input = ConnectionInput {
            name: Some(declared.name.clone()),
            kind: Some(declared.kind.clone()),
            host: Some(declared.host.clone()),
            port: Some(declared.port.map(|p| PortInput::Number(p.into()))),
            database: Some(declared.database.clone()),
            username: Some(declared.username.clone()),
            password: Some(password),
            path: Some(declared.path.clone()),
            options: Some(options),
            spec: None,
        };
        let current = store.find_connection_by_name(&declared.name).await?;
        let fields = merge(current.as_ref(), input, key).map_err(|e| {
            anyhow!(
                "{what}: {}{}",
                e.field.map(|f| format!("{f}: ")).unwrap_or_default(),
                e.detail
            )
        })?;
        match current {
            None => {
                store
                    .create_connection(fields)
                    .await
                    .with_context(|| what.clone())?;
                tracing::info!(name = %declared.name, "Declared connection created.");
            }
            Some(c) => {
                store
                    .update_connection(c.id, fields)
                    .await
                    .with_context(|| what.clone())?;
                tracing::info!(name = %declared.name, "Declared connection updated.");
            }
        }
    }
    Ok(())
}
