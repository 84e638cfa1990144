//! Jobs: the `JobRegistry` actor queues and starts one supervised `JobActor` per transfer or
//! query, on a job arbiter; the actors run the engine on the engine runtime and write the final
//! status.

pub mod actor;
pub mod events;
pub mod kinds;
pub mod messages;
pub mod outcome;
pub mod progress;
pub mod query;
pub mod registry;
pub mod run;
pub mod transfer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::secrets::MasterKey;
use crate::settings::Settings;
use crate::store::Store;
use crate::telemetry::Metrics;

pub use events::JobEvents;
pub use messages::JobId;
pub use progress::ProgressMap;
pub use registry::JobRegistry;

/// What every job needs from the service.
#[derive(Clone)]
pub struct JobDeps {
    pub store: Store,
    pub key: MasterKey,
    pub settings: Arc<Settings>,
    pub progress: ProgressMap,
    /// Status changes, to live-event streams and metrics.
    pub events: JobEvents,
    pub metrics: Arc<Metrics>,
    /// The bytes of files (runs read and write them).
    pub files: Arc<dyn crate::storage::FileStorage>,
    /// Set while the service shuts down: cancelled jobs then keep their `running` status and
    /// are resumed at the next start instead of being marked `cancelled`.
    pub shutting_down: Arc<AtomicBool>,
}

impl JobDeps {
    pub fn new(
        store: Store,
        key: MasterKey,
        settings: Arc<Settings>,
        files: Arc<dyn crate::storage::FileStorage>,
    ) -> Self {
        let metrics = Metrics::new();
        Self {
            store,
            key,
            settings,
            files,
            progress: progress::new_map(),
            events: JobEvents::new(metrics.clone()),
            metrics,
            shutting_down: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// The multi-threaded runtime the data plane runs on, apart from the HTTP workers and the
/// actors' single-threaded arbiters, so that decoding and encoding use every core.
pub fn engine_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sluice-engine")
            .enable_all()
            .build()
            .expect("the engine runtime starts")
    })
}

/// Test hooks: a job whose query contains the marker panics inside the engine, to prove that
/// a panic becomes an `error` status and harms nothing else. Built only with the
/// `fail-points` feature (the tests'); otherwise `check` is nothing.
pub mod fail_points {
    #[cfg(feature = "fail-points")]
    static PANIC_MARKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

    #[cfg(feature = "fail-points")]
    #[doc(hidden)]
    pub fn panic_when_query_contains(marker: &str) {
        let _ = PANIC_MARKER.set(marker.to_string());
    }

    #[cfg(feature = "fail-points")]
    pub(crate) fn check(query: &str) {
        if let Some(marker) = PANIC_MARKER.get() {
            if query.contains(marker.as_str()) {
                panic!("fail point: the query contains {marker:?}");
            }
        }
    }

    #[cfg(not(feature = "fail-points"))]
    pub(crate) fn check(_query: &str) {}
}
