//! API tokens: shown once, stored hashed, usable as Bearer and X-API-Key, revocable; on both
//! metadata stores.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app_on, Backend, ADMIN, ADMIN_PASSWORD};

async fn a_token_is_shown_once_and_works_as_bearer_and_api_key(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let response = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("slc_") && token.len() > 40);
    assert_eq!(created["name"], "ci");
    assert!(token.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(location, format!("/api/v1/tokens/{}", created["id"]));

    // Never again in a listing or a detail.
    let list = app
        .admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap();
    assert_eq!(list.headers()["x-total-count"], "1");
    let text = list.text().await.unwrap();
    assert!(!text.contains(&token));
    let listed: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0].get("token").is_none());
    let detail = app
        .admin(Method::GET, &location)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!detail.contains(&token));

    let bearer = app
        .anon(Method::GET, "/api/v1/users/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let me: Value = bearer.json().await.unwrap();
    assert_eq!(me["username"], ADMIN);
    let api_key = app
        .anon(Method::GET, "/api/v1/users/me")
        .header("X-API-Key", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(api_key.status(), StatusCode::OK);

    // The use is recorded.
    let detail: Value = app
        .admin(Method::GET, &location)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(detail["lastUsedAt"].is_string(), "{detail}");
}

async fn the_store_keeps_only_a_hash_of_the_token(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let token = app.create_token(ADMIN, ADMIN_PASSWORD).await;
    match backend {
        Backend::Sqlite => {
            // Every file under the data dir (its subdirectories too: file storage, spool).
            let mut dirs = vec![app.data_dir.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    let bytes = std::fs::read(&path).unwrap();
                    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
                }
            }
        }
        Backend::Postgres => {
            let client = crate::helpers::pg_client(app.metadata_db.as_deref().unwrap()).await;
            let rows = client
                .query("SELECT row_to_json(t)::text FROM api_tokens t", &[])
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            let row: String = rows[0].get(0);
            assert!(!row.contains(&token), "{row}");
        }
    }
}

async fn a_revoked_token_stops_working(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let token = app.create_token(ADMIN, ADMIN_PASSWORD).await;
    let list: Vec<Value> = app
        .admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_i64().unwrap();
    let revoke = app
        .anon(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let after = app
        .anon(Method::GET, "/api/v1/users/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(after, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let again = app
        .admin(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::NOT_FOUND, "token_not_found").await;
}

async fn users_see_only_their_own_tokens_and_admins_see_all(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("ivy", "ivy-password", false).await;
    app.create_user("jack", "jack-password", false).await;
    app.create_token("ivy", "ivy-password").await;
    app.create_token("jack", "jack-password").await;
    let ivy: Vec<Value> = app
        .as_user(Method::GET, "/api/v1/tokens", "ivy", "ivy-password")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ivy.len(), 1);
    let all: Vec<Value> = app
        .admin(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let jacks = all
        .iter()
        .find(|t| t["userId"] != ivy[0]["userId"])
        .unwrap();
    // ivy cannot see or revoke jack's token: it does not exist for her.
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .as_user(
                method,
                &format!("/api/v1/tokens/{}", jacks["id"]),
                "ivy",
                "ivy-password",
            )
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "token_not_found").await;
    }
}

async fn an_expired_token_is_refused_as_expired_saying_when(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let past = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "old", "expiresAt": "2001-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(past, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["field"], "expiresAt");

    let soon_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let soon = soon_at.to_rfc3339();
    let created: Value = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "short-lived", "expiresAt": soon}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap();
    let fresh = app
        .anon(Method::GET, "/api/v1/users/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let stale = app
        .anon(Method::GET, "/api/v1/users/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body = assert_error(stale, StatusCode::UNAUTHORIZED, "token_expired").await;
    let when = soon_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&when), "{detail} names {when}");
    assert!(detail.contains("short-lived"), "{detail}");
    // The same expired token as a Sqlify-style user name is refused the same way.
    let stale = app
        .anon(Method::GET, "/api/v1/users/me")
        .basic_auth(token, Some(""))
        .send()
        .await
        .unwrap();
    assert_error(stale, StatusCode::UNAUTHORIZED, "token_expired").await;
}

crate::on_both_backends!(
    a_token_is_shown_once_and_works_as_bearer_and_api_key,
    the_store_keeps_only_a_hash_of_the_token,
    a_revoked_token_stops_working,
    users_see_only_their_own_tokens_and_admins_see_all,
    an_expired_token_is_refused_as_expired_saying_when,
);
