//! Logging and metrics: the tracing subscriber (`log.format` pretty or json), one span per
//! request, and the application's Prometheus recorder (`GET /metrics`) with the HTTP metrics
//! recorded by the same request middleware.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tracing::field::Empty;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Install the global subscriber; a second call (tests) is a no-op.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Metric names (the README lists them).
pub mod names {
    pub const JOBS_TOTAL: &str = "sluice_jobs_total";
    pub const JOBS_RUNNING: &str = "sluice_jobs_running";
    pub const JOBS_QUEUED: &str = "sluice_jobs_queued";
    pub const ROWS_WRITTEN_TOTAL: &str = "sluice_rows_written_total";
    pub const BYTES_READ_TOTAL: &str = "sluice_bytes_read_total";
    pub const JOB_DURATION_SECONDS: &str = "sluice_job_duration_seconds";
    pub const HTTP_REQUESTS_TOTAL: &str = "sluice_http_requests_total";
    pub const HTTP_REQUEST_DURATION_SECONDS: &str = "sluice_http_request_duration_seconds";
    pub const SSE_CLIENTS: &str = "sluice_sse_clients";
}

/// One application's metrics: a Prometheus recorder of the `metrics` facade and its renderer.
///
/// The recorder is the application's own rather than the process-wide one: it is entered with
/// `metrics::with_local_recorder` around each recording, so several applications in one process
/// (the tests) keep separate counts, and nothing else in the process can install over it.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        const HTTP_BUCKETS: &[f64] = &[
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        const JOB_BUCKETS: &[f64] = &[
            0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::HTTP_REQUEST_DURATION_SECONDS.into()),
                HTTP_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(names::JOB_DURATION_SECONDS.into()),
                    JOB_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let this = Arc::new(Self { recorder, handle });
        this.record(|| {
            use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
            describe_counter!(
                names::JOBS_TOTAL,
                "Jobs finished, by kind and final status."
            );
            describe_gauge!(names::JOBS_RUNNING, "Jobs running now, by kind.");
            describe_gauge!(names::JOBS_QUEUED, "Jobs waiting for a slot, by kind.");
            describe_counter!(
                names::ROWS_WRITTEN_TOTAL,
                "Rows committed by transfers and kept by queries, by kind."
            );
            describe_counter!(
                names::BYTES_READ_TOTAL,
                Unit::Bytes,
                "Bytes read from sources by finished jobs, by kind."
            );
            describe_histogram!(
                names::JOB_DURATION_SECONDS,
                Unit::Seconds,
                "Run time of finished jobs, by kind and final status."
            );
            describe_counter!(
                names::HTTP_REQUESTS_TOTAL,
                "HTTP requests, by method, route template and status."
            );
            describe_histogram!(
                names::HTTP_REQUEST_DURATION_SECONDS,
                Unit::Seconds,
                "Time to answer HTTP requests (to the response head), by method and route template."
            );
            describe_gauge!(names::SSE_CLIENTS, "Open live-event (SSE) streams.");
        });
        // Histograms are folded into their buckets at each scrape; without scrapes this bounds
        // what they hold. The task ends with the application.
        let weak = Arc::downgrade(&this);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                match weak.upgrade() {
                    Some(metrics) => metrics.handle.run_upkeep(),
                    None => break,
                }
            }
        });
        this
    }

    /// Run `f` (which uses the `metrics` macros) against this application's recorder.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Middleware: one span per request with method, route template, status, latency and user
/// (recorded by the auth middleware), and the HTTP metrics by route template. Query strings and
/// bodies are never logged.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // The template (`/api/v1/transfers/{id}`), never the raw path: bounded label values.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let recorder = req
        .app_data::<actix_web::web::Data<Metrics>>()
        .map(|metrics| metrics.clone().into_inner());
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = Empty,
        status = Empty,
        latency_ms = Empty,
        user = Empty,
    );
    let result = next.call(req).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let _entered = span.enter();
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    if let Some(recorder) = recorder {
        recorder.record(|| {
            metrics::counter!(names::HTTP_REQUESTS_TOTAL,
                "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
            .increment(1);
            metrics::histogram!(names::HTTP_REQUEST_DURATION_SECONDS,
                "method" => method, "route" => route.clone())
            .record(latency_ms / 1000.0);
        });
    }
    match &result {
        Ok(_) => {
            span.record("route", route.as_str());
            span.record("status", status);
            span.record("latency_ms", format!("{latency_ms:.2}").as_str());
            if status >= 500 {
                tracing::error!("Request failed.");
            } else {
                tracing::info!("Request handled.");
            }
        }
        Err(e) => {
            span.record("route", route.as_str());
            span.record("status", status);
            tracing::warn!(error = %e, "Request failed.");
        }
    }
    result
}
