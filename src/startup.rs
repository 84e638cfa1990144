//! Building the application: metadata store, migrations, master key, bootstrap and declared
//! users/connections, then the HTTP server. Used by `main` and by the tests (port 0).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::api::{self, auth::AuthCache, error, AppState};
use crate::jobs::messages::{GetLoad, Shutdown};
use crate::jobs::{JobDeps, JobRegistry};
use crate::secrets::MasterKey;
use crate::settings::Settings;
use crate::storage::{FileStorage, LocalDisk};
use crate::store::Store;
use crate::{provision, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Use rustls's `ring` provider everywhere, whatever else a dependency enables.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Open the metadata store and bring its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    let store = Store::connect(
        &settings.database_url(),
        settings.database.max_connections,
        Duration::from_secs(settings.database.connect_timeout_secs),
    )
    .await
    .context("cannot open the metadata store (database.url)")?;
    store
        .migrate()
        .await
        .context("cannot migrate the metadata store")?;
    Ok(store)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        install_crypto_provider();
        let settings = Arc::new(settings);
        let store = open_store(&settings).await?;
        let key = MasterKey::load(&settings.security.secret_key, &settings.data_dir)
            .context("cannot load the master key")?;
        provision::bootstrap_admin(&store, &settings).await?;
        provision::reconcile(&store, &key, &settings).await?;

        let files: Arc<dyn FileStorage> = Arc::new(
            LocalDisk::open(&settings.data_dir.join("files"))
                .context("cannot open the file storage ({data_dir}/files)")?,
        );
        let deps = JobDeps::new(store.clone(), key.clone(), settings.clone(), files.clone());
        let progress = deps.progress.clone();
        let events = deps.events.clone();
        let metrics = deps.metrics.clone();
        let jobs = JobRegistry::new(deps).start();
        let spool = LocalDisk::scratch(&settings.data_dir.join("spool"))
            .context("cannot open the upload spool ({data_dir}/spool)")?;
        let state = web::Data::new(AppState {
            store,
            key,
            settings: settings.clone(),
            auth: AuthCache::new(Duration::from_secs(settings.security.auth_cache_ttl_secs)),
            jobs,
            progress,
            events,
            metrics,
            files,
            spool: Arc::new(spool),
        });
        let listener = TcpListener::bind(settings.address())
            .with_context(|| format!("cannot listen on {}", settings.address()))?;
        let port = listener.local_addr()?.port();
        let limit = settings.server.body_limit_bytes;
        let app_state = state.clone();
        // The request middleware's own handle on the metrics (it knows nothing of the api).
        let http_metrics = web::Data::from(state.metrics.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(http_metrics.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(limit)
                        .content_type_required(false)
                        .error_handler(|e, _| error::json_error(e).into()),
                )
                .app_data(web::PayloadConfig::default().limit(limit))
                .app_data(
                    web::QueryConfig::default().error_handler(|e, _| error::query_error(e).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()),
                )
                .wrap(from_fn(telemetry::request_span))
                .configure(api::configure)
                .default_service(web::to(api::route_not_found))
        })
        .shutdown_timeout(30)
        // Signals are ours (`run_until_stopped`): live-event streams must end before the drain.
        .disable_signals();
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(address = %settings.address(), port, "Listening.");
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stop serving: end the open live-event streams, then stop the HTTP server, gracefully
    /// (in-flight requests finish, up to 30 s) or not.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            events: self.state.events.clone(),
        }
    }

    /// Serve until SIGTERM or SIGINT (graceful: in-flight requests finish; a second signal
    /// stops at once), then stop the running jobs so that their targets roll back; they are
    /// resumed at the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        actix_web::rt::spawn(async move {
            if wait_for_stop_signal().await.is_err() {
                return;
            }
            tracing::info!(
                "Stopping: in-flight requests may finish; a second signal stops at once."
            );
            let graceful = stopper.clone();
            actix_web::rt::spawn(async move { graceful.stop(true).await });
            if wait_for_stop_signal().await.is_ok() {
                stopper.stop(false).await;
            }
        });
        let result = self.server.await;
        let jobs = &self.state.jobs;
        if jobs.send(Shutdown).await.is_ok() {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                match jobs.send(GetLoad).await {
                    Ok(load) if load.running > 0 => {
                        actix_web::rt::time::sleep(Duration::from_millis(50)).await
                    }
                    _ => break,
                }
            }
        }
        self.state.store.clone().close().await;
        result
    }
}

/// Stops the HTTP server of an [`Application`].
#[derive(Clone)]
pub struct Stopper {
    server: actix_web::dev::ServerHandle,
    events: crate::jobs::events::JobEvents,
}

impl Stopper {
    pub async fn stop(&self, graceful: bool) {
        self.events.close();
        self.server.stop(graceful).await;
    }
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
