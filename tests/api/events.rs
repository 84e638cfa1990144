//! Live events (Server-Sent Events): a job's status and progress, the admins' stream of every
//! job, ownership, and clients that read slowly or go away.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, pg_count, pg_schema_and_connection, spawn_app, spawn_app_with, Backend, TestApp,
};

/// Rows of the long transfers: generated in the SELECT list, so PostgreSQL streams them.
const LONG_ROWS: i64 = 2_000_000;

/// At least 0.1 s per 100,000 rows, so progress events are seen whatever the machine's speed.
fn long_query(rows: i64) -> String {
    crate::helpers::paced_query(rows, 0.1)
}

/// One server-sent event.
#[derive(Debug, Clone)]
struct Event {
    name: String,
    data: Value,
}

/// A client reading an event stream as it arrives.
struct Sse {
    response: Response,
    buffer: String,
    /// Comment lines seen (`: keep-alive`).
    comments: usize,
}

impl Sse {
    async fn open(request: RequestBuilder) -> Sse {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Sse {
            response,
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` when the server has closed the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (None, None);
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(value) = line.strip_prefix("event: ") {
                        name = Some(value.to_string());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(value).unwrap_or_else(|e| {
                            panic!("data is not one line of JSON ({e}): {value}")
                        }));
                    } else if !line.is_empty() {
                        panic!("unexpected line in the stream: {line:?}");
                    }
                }
                match (name, data) {
                    (Some(name), Some(data)) => return Some(Event { name, data }),
                    (None, None) => continue,
                    other => panic!("an event needs a name and data: {other:?}"),
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(120), self.response.chunk())
                .await
                .expect("no event within 120 s")
                .expect("the stream broke");
            match chunk {
                Some(bytes) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => {
                    assert!(self.buffer.trim().is_empty(), "left over: {}", self.buffer);
                    return None;
                }
            }
        }
    }

    /// Every event until the server closes the stream.
    async fn until_end(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

async fn submit(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app
        .admin(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{value}");
    value
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    app.admin(Method::GET, path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn statuses(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.name == "status")
        .map(|e| e.data["status"].as_str().unwrap())
        .collect()
}

/// Poll until the app's live-event subscribers are `n` (or panic after `seconds`).
async fn wait_subscribers(app: &TestApp, n: usize, seconds: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while app.state.events.subscribers() != n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} live-event subscribers after {seconds} s, expected {n}",
            app.state.events.subscribers()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_transfer_stream_shows_queued_running_progress_and_complete() {
    // One slot: the second transfer waits behind the first, so its stream starts at `queued`.
    let app = spawn_app_with(Backend::Sqlite, |s| s.jobs.max_concurrent = 1).await;
    let (schema, pg) = pg_schema_and_connection(&app, "sse").await;
    let first = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x FROM pg_sleep(2)",
               "targetSchema": schema, "targetTable": "first"}),
    )
    .await;
    let second = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": long_query(LONG_ROWS),
               "targetSchema": schema, "targetTable": "second"}),
    )
    .await;
    let id = second["id"].as_i64().unwrap();
    let path = format!("/api/v1/transfers/{id}/events");
    let mut stream = Sse::open(app.admin(Method::GET, &path)).await;
    let events = stream.until_end().await;

    assert_eq!(
        statuses(&events),
        ["queued", "running", "complete"],
        "{events:?}"
    );
    assert_eq!(events[0].name, "status");
    let last = events.last().unwrap();
    assert_eq!(last.name, "status");
    // Status data is the resource exactly as GET answers it.
    let got = get_json(&app, &format!("/api/v1/transfers/{id}")).await;
    assert_eq!(last.data, got);
    assert_eq!(last.data["rowsWritten"], LONG_ROWS);
    assert_eq!(pg_count(&schema, "second").await, LONG_ROWS);

    let running_at = events
        .iter()
        .position(|e| e.name == "status" && e.data["status"] == "running")
        .unwrap();
    let progress: Vec<&Value> = events
        .iter()
        .filter(|e| e.name == "progress")
        .map(|e| &e.data)
        .collect();
    assert!(progress.len() >= 2, "too few progress events: {events:?}");
    assert!(
        events[..running_at].iter().all(|e| e.name != "progress"),
        "progress before running: {events:?}"
    );
    for p in &progress {
        assert_eq!(p["kind"], "transfer");
        assert_eq!(p["id"], id);
        for field in ["rowsWritten", "bytesRead", "elapsedMs"] {
            assert!(p[field].is_u64(), "{field}: {p}");
        }
        assert!(p["rowsPerSecond"].is_f64(), "{p}");
    }
    for pair in progress.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            b["rowsWritten"].as_u64() >= a["rowsWritten"].as_u64(),
            "rows went down: {a} then {b}"
        );
        // At most one progress event per 500 ms (measured by the server's own clock).
        assert!(
            b["elapsedMs"].as_u64().unwrap() >= a["elapsedMs"].as_u64().unwrap() + 450,
            "progress events too close: {a} then {b}"
        );
    }
    let rows: Vec<u64> = progress
        .iter()
        .map(|p| p["rowsWritten"].as_u64().unwrap())
        .collect();
    assert!(
        rows.first() < rows.last() && *rows.last().unwrap() <= LONG_ROWS as u64,
        "rowsWritten did not grow: {rows:?}"
    );
    assert!(progress.last().unwrap()["bytesRead"].as_u64().unwrap() > 0);

    let first = get_json(&app, &format!("/api/v1/transfers/{}", first["id"])).await;
    assert_eq!(first["status"], "complete", "{first}");
    wait_subscribers(&app, 0, 5).await;
}

#[actix_web::test]
async fn a_finished_job_stream_sends_the_final_status_at_once_and_ends() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "ssedone").await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x",
               "targetSchema": schema, "targetTable": "done"}),
    )
    .await;
    let done = app.wait_transfer(&t["id"], 30).await;
    assert_eq!(done["status"], "complete", "{done}");
    let q = app.submit_query(&pg, "SELECT 42 AS answer").await;
    let q_path = format!("/api/v1/queries/{}", q["id"]);
    let q_done = app.wait_query(&q["id"]).await;
    assert_eq!(q_done["status"], "complete", "{q_done}");

    for (path, resource) in [
        (format!("/api/v1/transfers/{}/events", t["id"]), &done),
        (format!("{q_path}/events"), &q_done),
    ] {
        let mut stream = Sse::open(app.admin(Method::GET, &path)).await;
        // The whole stream arrives at once: no keep-alive interval passes before it ends.
        let events = tokio::time::timeout(Duration::from_secs(5), stream.until_end())
            .await
            .expect("the stream of a finished job ends at once");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].name, "status");
        assert_eq!(&events[0].data, resource, "{path}");
    }
    assert_eq!(q_done["rowCount"], 1);
    wait_subscribers(&app, 0, 5).await;
}

#[actix_web::test]
async fn live_events_follow_the_ownership_and_roles_of_the_api() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "sseauth").await;
    app.create_user("bob", "bob-password-123", false).await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x",
               "targetSchema": schema, "targetTable": "mine"}),
    )
    .await;
    let q = submit(
        &app,
        "/api/v1/queries",
        json!({"connectionId": pg["id"], "query": "SELECT 1 AS x"}),
    )
    .await;
    let bob = |path: &str| app.as_user(Method::GET, path, "bob", "bob-password-123");

    // Another user's job is not found, as for its GET.
    let transfer_path = format!("/api/v1/transfers/{}/events", t["id"]);
    let query_path = format!("/api/v1/queries/{}/events", q["id"]);
    assert_error(
        bob(&transfer_path).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "transfer_not_found",
    )
    .await;
    assert_error(
        bob(&query_path).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "query_not_found",
    )
    .await;
    // No credentials: 401, with the challenge.
    for path in [&transfer_path, &query_path, "/api/v1/events"] {
        let response = app.anon(Method::GET, path).send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        assert_error(
            response,
            StatusCode::UNAUTHORIZED,
            "authentication_required",
        )
        .await;
    }
    // The stream of every job is for admins.
    assert_error(
        bob("/api/v1/events").send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "admin_required",
    )
    .await;
    // Unknown and malformed ids.
    assert_error(
        app.admin(Method::GET, "/api/v1/transfers/999999/events")
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "transfer_not_found",
    )
    .await;
    assert_error(
        app.admin(Method::GET, "/api/v1/queries/abc/events")
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_path_parameter",
    )
    .await;
    // Bob follows his own query.
    let own = app
        .as_user(Method::POST, "/api/v1/queries", "bob", "bob-password-123")
        .json(&json!({"connectionId": pg["id"], "query": "SELECT 2 AS y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::ACCEPTED);
    let own: Value = own.json().await.unwrap();
    let mut stream = Sse::open(bob(&format!("/api/v1/queries/{}/events", own["id"]))).await;
    let events = stream.until_end().await;
    assert_eq!(statuses(&events).last(), Some(&"complete"), "{events:?}");
    assert_eq!(events.last().unwrap().data["createdBy"], own["createdBy"]);
    wait_subscribers(&app, 0, 5).await;
}

#[actix_web::test]
async fn the_admin_stream_reports_transfers_and_queries_from_start_to_finish() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "ssefire").await;
    let mut stream = Sse::open(app.admin(Method::GET, "/api/v1/events")).await;
    wait_subscribers(&app, 1, 5).await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": long_query(1_000_000),
               "targetSchema": schema, "targetTable": "fire"}),
    )
    .await;
    let q = submit(
        &app,
        "/api/v1/queries",
        json!({"connectionId": pg["id"], "query": "SELECT n FROM generate_series(1, 5) n"}),
    )
    .await;

    let mut seen: Vec<Event> = Vec::new();
    let finished = |seen: &[Event], kind: &str, id: &Value| {
        seen.iter()
            .any(|e| e.name == "finished" && e.data["kind"] == kind && e.data["id"] == *id)
    };
    while !(finished(&seen, "transfer", &t["id"]) && finished(&seen, "query", &q["id"])) {
        let event = stream.next().await.expect("the admin stream stays open");
        seen.push(event);
    }
    let of = |kind: &str, id: &Value| -> Vec<Event> {
        seen.iter()
            .filter(|e| e.data["kind"] == kind && e.data["id"] == *id)
            .cloned()
            .collect()
    };
    for (kind, id, resource) in [
        ("transfer", &t["id"], "transfers"),
        ("query", &q["id"], "queries"),
    ] {
        let events = of(kind, id);
        let names: Vec<&str> = events
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| *n != "progress")
            .collect();
        assert_eq!(
            names,
            ["queued", "started", "finished"],
            "{kind}: {events:?}"
        );
        let last = events.last().unwrap();
        assert_eq!(last.name, "finished");
        let got = get_json(&app, &format!("/api/v1/{resource}/{id}")).await;
        assert_eq!(last.data["job"], got, "{kind}");
        assert_eq!(got["status"], "complete");
        for e in &events {
            assert_eq!(e.data["job"].is_object(), e.name != "progress", "{e:?}");
        }
    }
    let progress: Vec<Event> = of("transfer", &t["id"])
        .into_iter()
        .filter(|e| e.name == "progress")
        .collect();
    assert!(
        !progress.is_empty(),
        "no progress for the transfer: {seen:?}"
    );
    assert!(progress
        .iter()
        .all(|p| p.data["rowsWritten"].as_u64().unwrap() <= 1_000_000));
    assert_eq!(
        get_json(&app, &format!("/api/v1/transfers/{}", t["id"])).await["rowsWritten"],
        1_000_000
    );
}

#[actix_web::test]
async fn a_slow_sse_client_never_slows_a_transfer() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "sseslow").await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": long_query(LONG_ROWS),
               "targetSchema": schema, "targetTable": "slow"}),
    )
    .await;
    // Two clients that read one event and then nothing while the transfer runs.
    let mut own = Sse::open(app.admin(
        Method::GET,
        &format!("/api/v1/transfers/{}/events", t["id"]),
    ))
    .await;
    let first = own.next().await.unwrap();
    assert_eq!(first.name, "status");
    let all = Sse::open(app.admin(Method::GET, "/api/v1/events")).await;
    assert_eq!(app.state.events.subscribers(), 2);

    let done = app.wait_transfer(&t["id"], 300).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["rowsWritten"], LONG_ROWS);
    assert_eq!(pg_count(&schema, "slow").await, LONG_ROWS);
    // The admin stream is still open; the job's stream has ended on the server: its final
    // status waits in the connection's buffers for the client that has not read it yet.
    wait_subscribers(&app, 1, 10).await;

    // The slow client, reading at last, still gets the final status and the end of its stream.
    let rest = own.until_end().await;
    let last = rest.last().expect("events after the first");
    assert_eq!(last.name, "status");
    assert_eq!(last.data["status"], "complete");
    assert_eq!(last.data["rowsWritten"], LONG_ROWS);
    drop(all);
    wait_subscribers(&app, 0, 30).await;
}

#[actix_web::test]
async fn a_vanished_sse_client_is_unsubscribed() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "ssegone").await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"],
               "query": "SELECT g AS id FROM generate_series(1, 500000000) g",
               "targetSchema": schema, "targetTable": "gone"}),
    )
    .await;
    let path = format!("/api/v1/transfers/{}/events", t["id"]);
    let mut own = Sse::open(app.admin(Method::GET, &path)).await;
    let mut all = Sse::open(app.admin(Method::GET, "/api/v1/events")).await;
    // Both streams are live: progress flows.
    loop {
        let e = own.next().await.unwrap();
        if e.name == "progress" {
            break;
        }
    }
    loop {
        let e = all.next().await.unwrap();
        if e.name == "progress" {
            break;
        }
    }
    assert_eq!(app.state.events.subscribers(), 2);

    // The clients go away without a word; the server notices and drops their streams.
    drop(own);
    drop(all);
    wait_subscribers(&app, 0, 30).await;
    let metrics = app
        .anon(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "sluice_sse_clients 0"),
        "{metrics}"
    );

    let cancelled = app
        .admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", t["id"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_queued_job_cancelled_before_it_starts_ends_its_stream_with_cancelled() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.jobs.max_concurrent = 1).await;
    let (schema, pg) = pg_schema_and_connection(&app, "ssecq").await;
    let slow = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x FROM pg_sleep(30)",
               "targetSchema": schema, "targetTable": "slow"}),
    )
    .await;
    let waiting = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x",
               "targetSchema": schema, "targetTable": "waiting"}),
    )
    .await;
    let mut all = Sse::open(app.admin(Method::GET, "/api/v1/events")).await;
    let mut own = Sse::open(app.admin(
        Method::GET,
        &format!("/api/v1/transfers/{}/events", waiting["id"]),
    ))
    .await;
    let first = own.next().await.unwrap();
    assert_eq!(first.data["status"], "queued");
    for t in [&waiting, &slow] {
        let response = app
            .admin(
                Method::POST,
                &format!("/api/v1/transfers/{}/cancel", t["id"]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let rest = own.until_end().await;
    assert_eq!(statuses(&rest), ["cancelled"], "{rest:?}");
    // The admin stream says `finished` for both, the queued one first.
    let mut finished = Vec::new();
    while finished.len() < 2 {
        let e = all.next().await.unwrap();
        if e.name == "finished" {
            assert_eq!(e.data["job"]["status"], "cancelled", "{e:?}");
            finished.push(e.data["id"].clone());
        }
    }
    assert_eq!(finished, [waiting["id"].clone(), slow["id"].clone()]);
}

#[actix_web::test]
async fn stopping_the_service_ends_open_event_streams_instead_of_waiting_for_them() {
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "ssestop").await;
    let t = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"],
               "query": "SELECT 1 AS id", "targetSchema": schema, "targetTable": "done"}),
    )
    .await;
    app.wait_transfer(&t["id"], 30).await;
    // An idle admin stream (nothing running) and the stream of a running job are open.
    let mut all = Sse::open(app.admin(Method::GET, "/api/v1/events")).await;
    let long = submit(
        &app,
        "/api/v1/transfers",
        json!({"sourceId": pg["id"], "targetId": pg["id"],
               "query": "SELECT g AS id FROM generate_series(1, 500000000) g",
               "targetSchema": schema, "targetTable": "long"}),
    )
    .await;
    let mut own = Sse::open(app.admin(
        Method::GET,
        &format!("/api/v1/transfers/{}/events", long["id"]),
    ))
    .await;
    assert_eq!(own.next().await.unwrap().name, "status");
    assert_eq!(app.state.events.subscribers(), 2);

    // A graceful stop waits for in-flight responses (up to 30 s): the streams must end first.
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("the service stops without waiting out its 30 s drain for open streams");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Both streams have ended (events sent before the stop may still be buffered).
    for sse in [&mut all, &mut own] {
        while sse.next().await.is_some() {}
    }
    assert_eq!(app.state.events.subscribers(), 0);
}
