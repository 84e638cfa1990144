//! Logging: the tracing subscriber (`log.format` pretty or json) and one span per request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
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

/// Middleware: one span per request with method, route template, status, latency and user
/// (recorded by the auth middleware). Query strings and bodies are never logged.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
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
    match &result {
        Ok(response) => {
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(unmatched)".to_string());
            let status = response.status().as_u16();
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
            span.record("status", e.as_response_error().status_code().as_u16());
            tracing::warn!(error = %e, "Request failed.");
        }
    }
    result
}
