//! The authentication matrix and the cache of verified Basic credentials.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, ADMIN, ADMIN_PASSWORD};

#[actix_web::test]
async fn every_way_in_and_every_way_out() {
    let app = spawn_app().await;
    app.create_user("kim", "kim-password", false).await;
    let token = app.create_token(ADMIN, ADMIN_PASSWORD).await;
    let revoked = app.create_token(ADMIN, ADMIN_PASSWORD).await;
    let tokens: Vec<Value> = app
        .admin(Method::GET, "/api/v1/tokens?sort=-id")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revoked_id = tokens[0]["id"].as_i64().unwrap();
    let response = app
        .admin(Method::DELETE, &format!("/api/v1/tokens/{revoked_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let route = "/api/v1/users";
    let get = || app.anon(Method::GET, route);
    // (case, request, expected status, expected code or None for success)
    let cases = vec![
        (
            "no credentials",
            get(),
            StatusCode::UNAUTHORIZED,
            Some("authentication_required"),
        ),
        (
            "wrong password",
            get().basic_auth(ADMIN, Some("not-the-password")),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "unknown user",
            get().basic_auth("nobody", Some("whatever-pass")),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "garbage basic",
            get().header("Authorization", "Basic !!!notbase64"),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "unknown scheme",
            get().header("Authorization", "Digest abc"),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "wrong bearer",
            get().bearer_auth("slc_not-a-real-token"),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "wrong api key",
            get().header("X-API-Key", "slc_nope"),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "revoked token",
            get().bearer_auth(&revoked),
            StatusCode::UNAUTHORIZED,
            Some("invalid_credentials"),
        ),
        (
            "non-admin on admin route",
            get().basic_auth("kim", Some("kim-password")),
            StatusCode::FORBIDDEN,
            Some("admin_required"),
        ),
        (
            "basic",
            get().basic_auth(ADMIN, Some(ADMIN_PASSWORD)),
            StatusCode::OK,
            None,
        ),
        ("bearer", get().bearer_auth(&token), StatusCode::OK, None),
        (
            "api key",
            get().header("X-API-Key", &token),
            StatusCode::OK,
            None,
        ),
    ];
    for (case, request, status, code) in cases {
        let response = request.send().await.unwrap();
        match code {
            Some(code) => {
                if status == StatusCode::UNAUTHORIZED {
                    assert_eq!(
                        response.headers()["www-authenticate"],
                        r#"Basic realm="sluice""#,
                        "{case}"
                    );
                }
                let body = assert_error(response, status, code).await;
                assert!(!body.to_string().contains("not-the-password"), "{case}");
            }
            None => {
                assert_eq!(response.status(), status, "{case}");
                let users: Vec<Value> = response.json().await.unwrap();
                assert_eq!(users.len(), 2, "{case}");
            }
        }
    }
}

#[actix_web::test]
async fn a_token_given_as_the_basic_user_name_with_no_password_signs_in_sqlify_style() {
    let app = spawn_app().await;
    app.create_user("sam", "sam-password", false).await;
    let token = app.create_token("sam", "sam-password").await;
    // curl -u "TOKEN:" sends the token as the user name and an empty password.
    let response = app
        .anon(Method::GET, "/api/v1/users/me")
        .basic_auth(&token, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], "sam");
    assert_eq!(me["admin"], false);
    // Without the colon's empty password too (`-u TOKEN:` and `TOKEN:` alike).
    let header = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{token}:")
        )
    );
    let response = app
        .anon(Method::GET, "/api/v1/users/me")
        .header("Authorization", header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A wrong token that way is a wrong credential, as any other.
    let response = app
        .anon(Method::GET, "/api/v1/users/me")
        .basic_auth("slc_not-a-real-token", Some(""))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[actix_web::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let app = spawn_app().await;
    let response = app
        .anon(Method::POST, "/api/v1/users")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNAUTHORIZED,
        "authentication_required",
    )
    .await;
}

#[actix_web::test]
async fn a_thousand_basic_requests_cost_one_argon2_verification() {
    let app = spawn_app().await;
    let before = app.state.auth.verifications();
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        let response = app
            .admin(Method::GET, "/api/v1/users/me")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let elapsed = started.elapsed();
    let runs = app.state.auth.verifications() - before;
    println!("1000 authenticated GETs: {runs} argon2 verification(s), {elapsed:?}");
    assert!(runs <= 1, "{runs} argon2 runs for 1000 requests");
}

#[actix_web::test]
async fn a_password_change_drops_the_cached_credentials_at_once() {
    let app = spawn_app().await;
    let lee = app.create_user("lee", "lee-password-1", false).await;
    let me = app
        .as_user(Method::GET, "/api/v1/users/me", "lee", "lee-password-1")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    app.admin(Method::PATCH, &format!("/api/v1/users/{}", lee["id"]))
        .json(&json!({"password": "lee-password-2"}))
        .send()
        .await
        .unwrap();
    let old = app
        .as_user(Method::GET, "/api/v1/users/me", "lee", "lee-password-1")
        .send()
        .await
        .unwrap();
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[actix_web::test]
async fn a_deleted_user_is_refused_even_while_cached() {
    let app = spawn_app().await;
    let max = app.create_user("max", "max-password", false).await;
    let ok = app
        .as_user(Method::GET, "/api/v1/users/me", "max", "max-password")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    app.admin(Method::DELETE, &format!("/api/v1/users/{}", max["id"]))
        .send()
        .await
        .unwrap();
    let after = app
        .as_user(Method::GET, "/api/v1/users/me", "max", "max-password")
        .send()
        .await
        .unwrap();
    assert_error(after, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
