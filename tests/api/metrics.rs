//! `GET /metrics`: Prometheus text, parsed with a Prometheus parser, moved by a transfer and by
//! HTTP requests (labelled with route templates); and closed to non-admins when configured.

use std::collections::HashMap;

use prom_text_format_parser::{Sample, Scrape, ValueType};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    assert_error, pg_count, pg_schema_and_connection, spawn_app, spawn_app_with, Backend, TestApp,
};

async fn scrape(app: &TestApp) -> Scrape {
    let response = app.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    Scrape::parse(&text).unwrap_or_else(|e| panic!("not Prometheus text ({e:?}): {text}"))
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| {
        sample
            .labels
            .iter()
            .any(|label| label.key == *k && label.value == *v)
    })
}

/// The samples of `metric` (of `kind`: plain, `_sum` or `_count`) whose labels include `labels`.
fn samples<'a>(
    scrape: &'a Scrape,
    metric: &str,
    kind: ValueType,
    labels: &[(&str, &str)],
) -> Vec<&'a Sample> {
    scrape
        .metrics
        .iter()
        .filter(|m| m.name == metric)
        .flat_map(|m| m.samples.iter())
        .filter(|s| s.value.value_type == kind && has_labels(s, labels))
        .collect()
}

/// The value of a counter or gauge (0 when absent: not yet incremented).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, metric, ValueType::Sample, labels);
    assert!(
        found.len() <= 1,
        "{metric} {labels:?} is ambiguous: {found:?}"
    );
    found.first().map_or(0.0, |s| s.value.value.as_f64())
}

/// A histogram's buckets (upper bound `le` -> cumulative count) and its `_count`.
fn buckets(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> (HashMap<String, f64>, f64) {
    let buckets: HashMap<String, f64> = samples(scrape, metric, ValueType::Sample, labels)
        .into_iter()
        .map(|s| {
            let le = s
                .labels
                .iter()
                .find(|l| l.key == "le")
                .expect("a bucket has le");
            (le.value.clone(), s.value.value.as_f64())
        })
        .collect();
    let count = samples(scrape, metric, ValueType::Count, labels);
    assert_eq!(count.len(), 1, "{metric} {labels:?}: {count:?}");
    (buckets, count[0].value.value.as_f64())
}

#[actix_web::test]
async fn a_transfer_and_requests_move_the_metrics_by_what_they_did() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "metrics").await;
    let before = scrape(&app).await;

    let t = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"],
            "query": "SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 12345) g",
            "targetSchema": schema, "targetTable": "dst"
        }))
        .await;
    let done = app.wait_transfer(&t["id"], 60).await;
    assert_eq!(done["status"], "complete", "{done}");
    let bytes = done["bytesRead"].as_f64().unwrap();
    assert!(bytes > 0.0);
    assert_eq!(pg_count(&schema, "dst").await, 12345);

    // The job's metrics are recorded just after its status is stored: wait for them.
    let transfer = [("kind", "transfer")];
    let complete = [("kind", "transfer"), ("status", "complete")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let middle = loop {
        let now = scrape(&app).await;
        let recorded = value(&now, "sluice_jobs_total", &complete)
            > value(&before, "sluice_jobs_total", &complete)
            && value(&now, "sluice_jobs_running", &transfer) == 0.0;
        if recorded || std::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let moved = |metric: &str, labels: &[(&str, &str)]| {
        value(&middle, metric, labels) - value(&before, metric, labels)
    };
    assert_eq!(moved("sluice_rows_written_total", &transfer), 12345.0);
    assert_eq!(moved("sluice_bytes_read_total", &transfer), bytes);
    assert_eq!(
        moved(
            "sluice_jobs_total",
            &[("kind", "transfer"), ("status", "complete")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "sluice_jobs_total",
            &[("kind", "transfer"), ("status", "error")]
        ),
        0.0
    );
    assert_eq!(value(&middle, "sluice_jobs_running", &transfer), 0.0);
    assert_eq!(value(&middle, "sluice_jobs_queued", &transfer), 0.0);
    let (durations, count) = buckets(
        &middle,
        "sluice_job_duration_seconds",
        &[("kind", "transfer"), ("status", "complete")],
    );
    assert_eq!(count, 1.0);
    assert_eq!(durations["+Inf"], 1.0, "{durations:?}");
    assert!(durations.len() > 5, "{durations:?}");

    // Requests are counted by route template and status, never by raw path.
    let id = t["id"].as_i64().unwrap();
    for _ in 0..3 {
        let ok = app
            .admin(Method::GET, &format!("/api/v1/transfers/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let missing = app
        .admin(Method::GET, "/api/v1/transfers/999999")
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "transfer_not_found").await;
    let nowhere = app
        .anon(Method::GET, "/no/such/route")
        .send()
        .await
        .unwrap();
    assert_error(nowhere, StatusCode::NOT_FOUND, "route_not_found").await;

    let after = scrape(&app).await;
    let route = "/api/v1/transfers/{id}";
    let requests = |scrape: &Scrape, status: &str| {
        value(
            scrape,
            "sluice_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(
        requests(&after, "200") - requests(&middle, "200"),
        3.0,
        "{:?}",
        samples(&after, "sluice_http_requests_total", ValueType::Sample, &[])
    );
    assert_eq!(requests(&after, "404") - requests(&middle, "404"), 1.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(
        value(&after, "sluice_http_requests_total", &unmatched)
            - value(&middle, "sluice_http_requests_total", &unmatched),
        1.0
    );
    let raw = format!("/api/v1/transfers/{id}");
    assert!(
        samples(
            &after,
            "sluice_http_requests_total",
            ValueType::Sample,
            &[("route", &raw)]
        )
        .is_empty(),
        "a raw path became a label"
    );
    let latency = |scrape: &Scrape| {
        buckets(
            scrape,
            "sluice_http_request_duration_seconds",
            &[("method", "GET"), ("route", route)],
        )
    };
    let ((_, then), (now, count)) = (latency(&middle), latency(&after));
    assert_eq!(count - then, 4.0, "{now:?}");
    assert_eq!(now["+Inf"], count);
    assert!(
        now.contains_key("0.005") && now.contains_key("1"),
        "{now:?}"
    );
    // The documentation lines are there too.
    let jobs = after
        .metrics
        .iter()
        .find(|m| m.name == "sluice_jobs_total")
        .unwrap();
    assert!(jobs.help_desc.is_some(), "{jobs:?}");
    // And the POST that queued the transfer.
    assert_eq!(
        value(
            &after,
            "sluice_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/transfers"),
                ("status", "202")
            ]
        ) - value(
            &before,
            "sluice_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/api/v1/transfers"),
                ("status", "202")
            ]
        ),
        1.0
    );
}

#[actix_web::test]
async fn metrics_can_be_closed_to_all_but_admins() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.api.metrics_public = false).await;
    app.create_user("carol", "carol-password-123", false).await;
    let response = app.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "authentication_required",
    )
    .await;
    let response = app
        .as_user(Method::GET, "/metrics", "carol", "carol-password-123")
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    let response = app.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("sluice_http_requests_total"), "{text}");

    // Open by default.
    let open = spawn_app().await;
    let response = open.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
