//! `/files`: simple and chunked uploads, downloads with ranges, limits and rights.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 5 * MIB;

/// Bytes that differ from place to place (so a chunk written at the wrong offset shows).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn file_form(name: &str, bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()))
}

async fn upload(app: &TestApp, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/files")
        .multipart(file_form(name, bytes))
        .send()
        .await
        .unwrap()
}

async fn send_chunk(app: &TestApp, id: i64, offset: usize, bytes: &[u8]) -> reqwest::Response {
    let form = Form::new()
        .part("file", Part::bytes(bytes.to_vec()).file_name("chunk"))
        .text("offset", offset.to_string())
        .text("size", bytes.len().to_string());
    app.admin(Method::POST, &format!("/api/v1/files/{id}/data"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn begin_chunked(app: &TestApp, size: usize, name: &str) -> i64 {
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .json(&json!({"size": size, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["status"], "uploading");
    assert_eq!(file["size"], size);
    file["id"].as_i64().unwrap()
}

async fn download(app: &TestApp, id: i64) -> Vec<u8> {
    let response = app
        .admin(Method::GET, &format!("/api/v1/files/{id}/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// Objects in the file storage directory (not counting its working directories).
fn stored_objects(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(app.data_dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".incoming")
        .collect();
    names.sort();
    names
}

#[actix_web::test]
async fn a_simple_upload_is_stored_and_downloads_byte_for_byte() {
    let app = spawn_app().await;
    let bytes = content(3 * MIB + 17, 1);
    let response = upload(&app, "orders.csv", bytes.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let file: Value = response.json().await.unwrap();
    let id = file["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/files/{id}"));
    assert_eq!(file["fileId"], id);
    assert_eq!(file["name"], "orders.csv");
    assert_eq!(file["type"], "text/csv");
    assert_eq!(file["format"], "csv");
    assert_eq!(file["status"], "ready");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha256(&bytes));
    assert_eq!(file["downloadUrl"], format!("/api/v1/files/{id}/data"));
    assert_eq!(file["uploadUrl"], Value::Null);
    // Sqlify's names, side by side.
    assert_eq!(file["file_id"], id);
    assert_eq!(file["download_url"], file["downloadUrl"]);
    assert_eq!(file["upload_url"], Value::Null);

    let response = app
        .admin(Method::GET, &format!("/api/v1/files/{id}/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["etag"], format!("\"{}\"", sha256(&bytes)).as_str());
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"orders.csv\""
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());

    assert_eq!(app.listed_ids("/api/v1/files").await, [id]);
    let listed: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sha256"], file["sha256"]);
}

#[actix_web::test]
async fn one_byte_range_answers_206_and_a_range_past_the_end_416() {
    let app = spawn_app().await;
    let bytes = content(1000, 2);
    let file: Value = upload(&app, "data.jsonl", bytes.clone())
        .await
        .json()
        .await
        .unwrap();
    let id = file["id"].as_i64().unwrap();
    assert_eq!(file["type"], "application/x-ndjson");
    let get = |range: &'static str| {
        app.admin(Method::GET, &format!("/api/v1/files/{id}/data"))
            .header("Range", range)
            .send()
    };
    for (range, from, to) in [
        ("bytes=10-19", 10, 20),
        ("bytes=990-", 990, 1000),
        ("bytes=-5", 995, 1000),
    ] {
        let response = get(range).await.unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {from}-{}/1000", to - 1).as_str()
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), &bytes[from..to]);
    }
    let response = get("bytes=1000-").await.unwrap();
    assert_eq!(response.headers()["content-range"], "bytes */1000");
    assert_error(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
    )
    .await;
    let response = get("bytes=0-1,5-6").await.unwrap();
    assert_error(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
    )
    .await;
}

#[actix_web::test]
async fn an_upload_past_the_size_limit_gets_413_and_leaves_nothing_on_disk() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.files.max_size = 100_000).await;
    let response = upload(&app, "big.csv", content(300_000, 3)).await;
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        body["detail"].as_str().unwrap().contains("100000"),
        "{body}"
    );
    assert!(
        stored_objects(&app).is_empty(),
        "{:?}",
        stored_objects(&app)
    );
    let incoming = std::fs::read_dir(app.data_dir.join("files").join(".incoming")).unwrap();
    assert_eq!(incoming.count(), 0);
    assert!(app.listed_ids("/api/v1/files").await.is_empty());

    // A chunked upload may not declare more either; exactly the limit is fine.
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .json(&json!({"size": 100_001}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let response = upload(&app, "fits.csv", content(100_000, 4)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn chunks_in_any_order_with_a_repeat_make_one_ready_file(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let bytes = content(2 * CHUNK + 1234, 5);
    let id = begin_chunked(&app, bytes.len(), "orders.csv").await;
    let chunks = [
        (2 * CHUNK, &bytes[2 * CHUNK..]),
        (0, &bytes[..CHUNK]),
        (CHUNK, &bytes[CHUNK..2 * CHUNK]),
    ];

    let response = send_chunk(&app, id, chunks[0].0, chunks[0].1).await;
    assert_eq!(response.status(), StatusCode::OK);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["status"], "uploading");
    assert_eq!(file["received"], 1234);
    assert_eq!(file["uploadUrl"], format!("/api/v1/files/{id}/data"));
    assert_eq!(file["upload_url"], file["uploadUrl"]);
    // Not listed, not downloadable while chunks are missing.
    assert!(app.listed_ids("/api/v1/files").await.is_empty());
    let response = app
        .admin(Method::GET, &format!("/api/v1/files/{id}/data"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "file_not_ready").await;

    let response = send_chunk(&app, id, chunks[1].0, chunks[1].1).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The same chunk again: accepted, not counted twice.
    let response = send_chunk(&app, id, chunks[1].0, chunks[1].1).await;
    assert_eq!(response.status(), StatusCode::OK);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["received"], CHUNK + 1234);

    let response = send_chunk(&app, id, chunks[2].0, chunks[2].1).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["status"], "ready");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha256(&bytes));
    assert_eq!(file["uploadUrl"], Value::Null);
    assert_eq!(download(&app, id).await, bytes);
    assert_eq!(app.listed_ids("/api/v1/files").await, [id]);

    // A chunk sent again after the end is answered with the ready file.
    let response = send_chunk(&app, id, chunks[0].0, chunks[0].1).await;
    assert_eq!(response.status(), StatusCode::OK);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["status"], "ready");
    assert_eq!(download(&app, id).await, bytes);
}

async fn wrong_chunks_get_400_with_their_codes_and_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let bytes = content(3 * CHUNK + 10, 6);
    let id = begin_chunked(&app, bytes.len(), "x.bin").await;
    let ten_mib = &bytes[..2 * CHUNK];
    assert_eq!(
        send_chunk(&app, id, 0, ten_mib).await.status(),
        StatusCode::OK
    );

    let cases: [(usize, &[u8], &str); 4] = [
        (1, &bytes[1..CHUNK + 1], "chunk_misaligned"),
        (
            2 * CHUNK,
            &bytes[2 * CHUNK..3 * CHUNK - 1],
            "chunk_misaligned",
        ),
        (3 * CHUNK, &bytes[..20], "chunk_out_of_bounds"),
        (CHUNK, &bytes[CHUNK..2 * CHUNK], "chunk_overlap"),
    ];
    for (offset, chunk, code) in cases {
        let response = send_chunk(&app, id, offset, chunk).await;
        assert_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    // A `size` that does not match the bytes sent.
    let form = Form::new()
        .text("offset", (2 * CHUNK).to_string())
        .text("size", CHUNK.to_string())
        .part(
            "file",
            Part::bytes(bytes[2 * CHUNK..3 * CHUNK - 1].to_vec()),
        );
    let response = app
        .admin(Method::POST, &format!("/api/v1/files/{id}/data"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "chunk_size_mismatch").await;
    // Missing and unknown parts.
    let form = Form::new().part("file", Part::bytes(vec![1, 2, 3]));
    let response = app
        .admin(Method::POST, &format!("/api/v1/files/{id}/data"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["field"], "offset");
    let form = Form::new().text("ofset", "0");
    let response = app
        .admin(Method::POST, &format!("/api/v1/files/{id}/data"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;

    // None of it counted: the right chunks still complete the file exactly.
    let file: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["received"], 2 * CHUNK);
    let response = send_chunk(&app, id, 2 * CHUNK, &bytes[2 * CHUNK..]).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(download(&app, id).await, bytes);
}

async fn chunks_sent_all_at_once_seal_the_file_exactly_once(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let bytes = content(4 * CHUNK + 99, 7);
    let id = begin_chunked(&app, bytes.len(), "parallel.bin").await;
    let offsets = [0, CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK];
    // Every chunk twice, all at once: each is written once, and one answer completes the file.
    let sends = offsets.iter().chain(offsets.iter()).map(|&offset| {
        let end = (offset + CHUNK).min(bytes.len());
        send_chunk(&app, id, offset, &bytes[offset..end])
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut created = 0;
    for answer in answers {
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            // The twin of a chunk still being written, or the file being sealed: retried below.
            StatusCode::CONFLICT => assert!(
                ["chunk_in_progress", "file_not_ready"].contains(&body["code"].as_str().unwrap()),
                "{body}"
            ),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1, "exactly one answer completes the file");
    let file: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["status"], "ready");
    assert_eq!(file["sha256"], sha256(&bytes));
    assert_eq!(download(&app, id).await, bytes);
}

on_both_backends!(
    chunks_in_any_order_with_a_repeat_make_one_ready_file,
    wrong_chunks_get_400_with_their_codes_and_change_nothing,
    chunks_sent_all_at_once_seal_the_file_exactly_once,
);

#[actix_web::test]
async fn a_chunked_upload_begins_from_json_or_form_fields_and_refuses_unknown_ones() {
    let app = spawn_app().await;
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .form(&[("size", "3"), ("name", "tiny.json")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["type"], "application/json");
    assert_eq!(file["format"], "json");
    assert_eq!(
        file["received"],
        Value::Null,
        "a new upload answers its row"
    );
    let id = file["id"].as_i64().unwrap();
    let response = send_chunk(&app, id, 0, b"[1]").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(download(&app, id).await, b"[1]");

    let response = app
        .admin(Method::POST, "/api/v1/files")
        .json(&json!({"size": 10, "nmae": "a.csv"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .form(&[("size", "10"), ("colour", "red")])
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .json(&json!({"size": 0}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "empty_file").await;
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .header("Content-Type", "text/plain")
        .body("size=10")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[actix_web::test]
async fn a_path_as_a_file_name_or_an_empty_file_is_refused_and_nothing_is_kept() {
    let app = spawn_app().await;
    let response = upload(&app, "../../etc/passwd", b"root:x:0:0".to_vec()).await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_file_name").await;
    assert_eq!(body["field"], "name");
    let response = upload(&app, "empty.csv", Vec::new()).await;
    assert_error(response, StatusCode::BAD_REQUEST, "empty_file").await;
    let form = file_form("a.csv", b"a\n".to_vec()).text("colour", "red");
    let response = app
        .admin(Method::POST, "/api/v1/files")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert!(
        stored_objects(&app).is_empty(),
        "{:?}",
        stored_objects(&app)
    );
    assert!(app.listed_ids("/api/v1/files").await.is_empty());
}

#[actix_web::test]
async fn users_see_and_delete_only_their_own_files_and_admins_see_all() {
    let app = spawn_app().await;
    app.create_user("alice", "alice-password", false).await;
    app.create_user("bob", "bob-password", false).await;
    let response = app
        .as_user(Method::POST, "/api/v1/files", "alice", "alice-password")
        .multipart(file_form("notes.txt", b"alice's".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    let id = file["id"].as_i64().unwrap();
    assert_eq!(file["type"], "text/plain");
    // The name says no format; the bytes read as one column of text.
    assert_eq!(file["format"], "csv");
    assert_eq!(file["schema"]["fields"][0]["name"], "column1");

    for path in [
        format!("/api/v1/files/{id}"),
        format!("/api/v1/files/{id}/data"),
    ] {
        let response = app
            .as_user(Method::GET, &path, "bob", "bob-password")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "file_not_found").await;
    }
    let bobs: Vec<Value> = app
        .as_user(Method::GET, "/api/v1/files", "bob", "bob-password")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(bobs.is_empty());
    let response = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            "bob",
            "bob-password",
        )
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "file_not_found").await;
    assert_eq!(app.listed_ids("/api/v1/files").await, [id], "admins see it");
    assert_eq!(download(&app, id).await, b"alice's");

    let response = app
        .as_user(
            Method::DELETE,
            &format!("/api/v1/files/{id}"),
            "alice",
            "alice-password",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .admin(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "file_not_found").await;
    assert!(stored_objects(&app).is_empty(), "the bytes are gone too");
    let response = app.anon(Method::GET, "/api/v1/files").send().await.unwrap();
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "authentication_required",
    )
    .await;
}

#[actix_web::test]
async fn an_upload_answers_with_its_detected_schema_or_why_it_has_none() {
    let app = spawn_app().await;
    let csv = "id;name;price;sold_at\r\n1;\"Mark\";12.50;2024-01-02 10:00:00\r\n2;\"Maria\";3;2024-01-03 11:30:00\r\n3;NULL;;2024-01-04 00:00:00\r\n";
    let file: Value = upload(&app, "sales.csv", csv.as_bytes().to_vec())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["schemaError"], Value::Null, "{file}");
    let schema = &file["schema"];
    assert_eq!(schema["format"], "csv");
    assert_eq!(schema["encoding"], "utf-8");
    assert_eq!(
        schema["dialect"],
        json!({"delimiter": ";", "quote": "\"", "escape": "\"", "header": true, "lineEnding": "crlf",
            "nullWords": ["", "NULL", "\\N"]})
    );
    assert_eq!(
        schema["fields"],
        json!([
            {"name": "id", "type": "integer", "path": "0", "nullable": false},
            {"name": "name", "type": "string", "path": "1", "nullable": true},
            {"name": "price", "type": "decimal(4,2)", "path": "2", "nullable": true},
            {"name": "sold_at", "type": "timestamp", "path": "3", "nullable": false},
        ])
    );
    assert_eq!(schema["sampledRows"], 3);
    assert_eq!(schema["wholeFile"], true);

    // A name that says nothing: the bytes say JSON Lines.
    let jsonl =
        b"{\"id\": 1, \"meta\": {\"ok\": true}}\n{\"id\": 2, \"meta\": {\"ok\": false}}\n".to_vec();
    let file: Value = upload(&app, "export", jsonl).await.json().await.unwrap();
    assert_eq!(file["format"], "jsonl");
    assert_eq!(
        file["schema"]["fields"],
        json!([
            {"name": "id", "type": "integer", "path": "$.id", "nullable": false},
            {"name": "meta.ok", "type": "boolean", "path": "$.meta.ok", "nullable": false},
        ])
    );

    // Files that do not read as their format are kept, with the reason.
    let file: Value = upload(&app, "ragged.csv", b"a,b\n1,2\n3,4,5\n".to_vec())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["status"], "ready");
    assert_eq!(file["schema"], Value::Null);
    let why = file["schemaError"].as_str().unwrap();
    assert!(why.contains("line 3"), "{why}");
    let file: Value = upload(&app, "broken.json", b"{\"a\": 1,}".to_vec())
        .await
        .json()
        .await
        .unwrap();
    let why = file["schemaError"].as_str().unwrap();
    assert!(why.contains("line 1"), "{why}");

    // A chunked upload is detected when its last byte arrives.
    let id = begin_chunked(&app, 8, "tiny.csv").await;
    let response = send_chunk(&app, id, 0, b"x,y\n1,2\n").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["schema"]["fields"][1]["name"], "y");
    assert_eq!(file["schema"]["fields"][1]["type"], "integer");
}

#[actix_web::test]
async fn a_schema_set_by_hand_replaces_the_detected_fields_and_bad_ones_are_refused() {
    let app = spawn_app().await;
    let file: Value = upload(&app, "prices.csv", b"sku,price\nA1,10\nB2,11\n".to_vec())
        .await
        .json()
        .await
        .unwrap();
    let id = file["id"].as_i64().unwrap();
    assert_eq!(file["schema"]["fields"][1]["type"], "integer");

    let response = app
        .admin(Method::PATCH, &format!("/api/v1/files/{id}"))
        .json(&json!({"schema": [
            {"name": "code", "type": "string", "path": "0", "nullable": false},
            {"name": "price", "type": "decimal(10,2)", "path": "1"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let file: Value = response.json().await.unwrap();
    assert_eq!(
        file["schema"]["fields"],
        json!([
            {"name": "code", "type": "string", "path": "0", "nullable": false},
            {"name": "price", "type": "decimal(10,2)", "path": "1", "nullable": true},
        ])
    );
    assert_eq!(file["schema"]["edited"], true);
    assert_eq!(
        file["schema"]["dialect"]["delimiter"], ",",
        "the dialect stays"
    );

    // POST does the same; a type, a column or a field that does not exist is refused.
    for (body, field) in [
        (
            json!({"schema": [{"name": "x", "type": "varchar", "path": "0"}]}),
            "schema[0].type",
        ),
        (
            json!({"schema": [{"name": "x", "type": "string", "path": "2"}]}),
            "schema[0].path",
        ),
        (
            json!({"schema": [{"name": "x", "type": "string", "colour": "red"}]}),
            "schema[0].colour",
        ),
    ] {
        let response = app
            .admin(Method::POST, &format!("/api/v1/files/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = if field.ends_with("colour") {
            "unknown_field"
        } else {
            "validation_failed"
        };
        let error = assert_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(error["field"], field, "{error}");
    }
    let kept: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["schema"]["fields"][0]["name"], "code");
}

/// A tiny HTTP server on 127.0.0.1 for URL uploads: `/dir/data.csv`, `/big` (with a length),
/// `/big-unsized` (no length, ends when the connection closes), `/redirect` (to the same file
/// by way of `localhost`), anything else 404. Returns its port.
async fn file_server(csv: &'static [u8], big: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, extra, body): (&str, String, Vec<u8>) = match path.as_str() {
                    "/dir/data.csv" => ("200 OK", format!("Content-Length: {}\r\n", csv.len()), csv.to_vec()),
                    "/big" => ("200 OK", format!("Content-Length: {big}\r\n"), vec![b'x'; big]),
                    "/big-unsized" => ("200 OK", String::new(), vec![b'x'; big]),
                    "/redirect" => (
                        "302 Found",
                        format!("Location: http://localhost:{port}/dir/data.csv\r\nContent-Length: 0\r\n"),
                        Vec::new(),
                    ),
                    _ => ("404 Not Found", "Content-Length: 0\r\n".into(), Vec::new()),
                };
                let head = format!("HTTP/1.1 {status}\r\n{extra}Connection: close\r\n\r\n");
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    port
}

async fn from_url(app: &TestApp, body: Value) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/files")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_file_is_fetched_from_an_allowed_url_and_private_addresses_are_refused() {
    const CSV: &[u8] = b"id,name\n1,Mark\n2,Maria\n";
    let port = file_server(CSV, 0).await;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.files.allowed_url_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let response = from_url(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/dir/data.csv")}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["name"], "data.csv");
    assert_eq!(file["size"], CSV.len());
    assert_eq!(file["sha256"], sha256(CSV));
    assert_eq!(file["schema"]["fields"][0]["type"], "integer");
    assert_eq!(download(&app, file["id"].as_i64().unwrap()).await, CSV);

    for url in [
        format!("http://localhost:{port}/dir/data.csv"),
        format!("http://127.0.0.1:{port}/redirect"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/x.csv".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let response = from_url(&app, json!({"url": url})).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "url_not_allowed").await;
        assert_eq!(body["field"], "url", "{url}");
    }
    let response = from_url(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/missing")}),
    )
    .await;
    let body = assert_error(response, StatusCode::BAD_GATEWAY, "url_fetch_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("404"), "{body}");
    let response = from_url(&app, json!({"url": "http://127.0.0.1:9/x", "size": 3})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(app.listed_ids("/api/v1/files").await.len(), 1);
}

#[actix_web::test]
async fn a_url_larger_than_the_limit_gets_413_with_or_without_a_length() {
    let port = file_server(b"", 300_000).await;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.files.allowed_url_hosts = vec!["127.0.0.1".into()];
        s.files.max_size = 100_000;
    })
    .await;
    for path in ["big", "big-unsized"] {
        let response = from_url(
            &app,
            json!({"url": format!("http://127.0.0.1:{port}/{path}")}),
        )
        .await;
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    }
    assert!(stored_objects(&app).is_empty());
}
