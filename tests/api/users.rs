//! Users: the seed routes, the last-admin rule and admin-only access; on both metadata stores.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app_on, Backend, ADMIN};

async fn creating_a_user_returns_201_with_location_and_no_password(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let response = app
        .admin(Method::POST, "/api/v1/users")
        .json(&json!({"username": "alice", "password": "alice-password", "admin": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let text = response.text().await.unwrap();
    assert!(!text.contains("alice-password") && !text.contains("argon2"));
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["admin"], false);
    assert!(body.get("password").is_none() && body.get("passwordHash").is_none());
    let id = body["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/users/{id}"));

    let fetched: Value = app
        .admin(Method::GET, &location)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, body);
}

async fn users_are_listed_with_paging_headers(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for name in ["u1", "u2", "u3"] {
        app.create_user(name, "password-123", false).await;
    }
    let response = app
        .admin(Method::GET, "/api/v1/users?page_size=2&sort=id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-total-count"], "4");
    let link = response.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains(r#"rel="next""#) && link.contains(r#"rel="last""#),
        "{link}"
    );
    assert!(link.contains("page=2"), "{link}");
    let users: Vec<Value> = response.json().await.unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ADMIN, "u1"]);

    let newest_first: Vec<Value> = app
        .admin(Method::GET, "/api/v1/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = newest_first
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["u3", "u2", "u1", ADMIN]);
}

async fn a_user_can_be_updated_with_patch_or_put(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let user = app.create_user("bob", "bob-password", false).await;
    let path = format!("/api/v1/users/{}", user["id"]);
    for (method, admin) in [(Method::PATCH, true), (Method::PUT, false)] {
        let response = app
            .admin(method, &path)
            .json(&json!({"admin": admin}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["admin"], admin);
        assert_eq!(body["username"], "bob");
    }
    // A new password replaces the old one.
    app.admin(Method::PATCH, &path)
        .json(&json!({"password": "bob-new-password"}))
        .send()
        .await
        .unwrap();
    let old = app
        .as_user(Method::GET, "/api/v1/users/me", "bob", "bob-password")
        .send()
        .await
        .unwrap();
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app
        .as_user(Method::GET, "/api/v1/users/me", "bob", "bob-new-password")
        .send()
        .await
        .unwrap();
    assert_eq!(new.status(), StatusCode::OK);
}

async fn a_user_is_deleted_by_either_route(backend: Backend) {
    let app = spawn_app_on(backend).await;
    for route in ["/api/v1/users", "/api/v1/user"] {
        let user = app.create_user("carol", "carol-password", false).await;
        let response = app
            .admin(Method::DELETE, &format!("{route}/{}", user["id"]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let gone = app
            .admin(Method::GET, &format!("/api/v1/users/{}", user["id"]))
            .send()
            .await
            .unwrap();
        assert_error(gone, StatusCode::NOT_FOUND, "user_not_found").await;
        let login = app
            .as_user(Method::GET, "/api/v1/users/me", "carol", "carol-password")
            .send()
            .await
            .unwrap();
        assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
}

async fn the_last_admin_cannot_be_deleted_or_demoted(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let me: Value = app
        .admin(Method::GET, "/api/v1/users/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/users/{}", me["id"]);
    let delete = app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_error(delete, StatusCode::CONFLICT, "last_admin").await;
    let demote = app
        .admin(Method::PATCH, &path)
        .json(&json!({"admin": false}))
        .send()
        .await
        .unwrap();
    assert_error(demote, StatusCode::CONFLICT, "last_admin").await;
    let still: Value = app
        .admin(Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(still["admin"], true);

    // With a second admin, the first may go.
    app.create_user("second-admin", "second-password", true)
        .await;
    let delete = app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
}

async fn a_non_admin_gets_403_on_every_user_route_but_me(backend: Backend) {
    let app = spawn_app_on(backend).await;
    let dave = app.create_user("dave", "dave-password", false).await;
    let id = dave["id"].as_i64().unwrap();
    let cases = [
        (
            Method::POST,
            "/api/v1/users".to_string(),
            Some(json!({"username": "x", "password": "12345678"})),
        ),
        (Method::GET, "/api/v1/users".to_string(), None),
        (Method::GET, format!("/api/v1/users/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{id}"),
            Some(json!({"admin": true})),
        ),
        (
            Method::PUT,
            format!("/api/v1/users/{id}"),
            Some(json!({"admin": true})),
        ),
        (Method::DELETE, format!("/api/v1/users/{id}"), None),
        (Method::DELETE, format!("/api/v1/user/{id}"), None),
    ];
    for (method, path, body) in cases {
        let mut request = app.as_user(method.clone(), &path, "dave", "dave-password");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "admin_required").await;
    }
    let me: Value = app
        .as_user(Method::GET, "/api/v1/users/me", "dave", "dave-password")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "dave");
    assert_eq!(me["admin"], false);
    // dave is still not an admin after all those attempts.
    let check: Value = app
        .admin(Method::GET, &format!("/api/v1/users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["admin"], false);
}

async fn a_user_changes_its_own_password_through_me(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("erin", "erin-password", false).await;
    let short = app
        .as_user(Method::PATCH, "/api/v1/users/me", "erin", "erin-password")
        .json(&json!({"password": "short"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(short, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["field"], "password");
    let changed = app
        .as_user(Method::PATCH, "/api/v1/users/me", "erin", "erin-password")
        .json(&json!({"password": "erin-new-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let ok = app
        .as_user(Method::GET, "/api/v1/users/me", "erin", "erin-new-password")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn a_taken_username_is_a_409(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.create_user("frank", "frank-password", false).await;
    let again = app
        .admin(Method::POST, "/api/v1/users")
        .json(&json!({"username": "frank", "password": "other-password"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(again, StatusCode::CONFLICT, "username_taken").await;
    assert_eq!(body["field"], "username");
    let other = app.create_user("grace", "grace-password", false).await;
    let rename = app
        .admin(Method::PATCH, &format!("/api/v1/users/{}", other["id"]))
        .json(&json!({"username": "frank"}))
        .send()
        .await
        .unwrap();
    assert_error(rename, StatusCode::CONFLICT, "username_taken").await;
}

crate::on_both_backends!(
    creating_a_user_returns_201_with_location_and_no_password,
    users_are_listed_with_paging_headers,
    a_user_can_be_updated_with_patch_or_put,
    a_user_is_deleted_by_either_route,
    the_last_admin_cannot_be_deleted_or_demoted,
    a_non_admin_gets_403_on_every_user_route_but_me,
    a_user_changes_its_own_password_through_me,
    a_taken_username_is_a_409,
);
