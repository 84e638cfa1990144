//! `/runs` and Sqlify's pipeline routes: steps of work on a file, as jobs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app};

#[actix_web::test]
async fn a_detect_schema_run_queued_sqlify_style_ends_complete_with_the_schema() {
    let app = spawn_app().await;
    let file = app
        .upload_file(
            "people.csv",
            b"id,name,born\n1,Ann,1990-01-02\n2,Bo,1985-12-31\n",
        )
        .await;
    let response = app
        .admin(Method::POST, "/api/v1/pipelines/sqlify/detect-schema/run")
        .form(&[("file_id", file.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let run: Value = response.json().await.unwrap();
    let id = run["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/runs/{id}"));
    assert_eq!(run["step"], "detect-schema");
    assert_eq!(run["fileId"], file);
    assert_eq!(run["fileName"], "people.csv");

    let run = app.wait_run(id).await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(run["errorCode"], Value::Null);
    assert_eq!(run["error_code"], Value::Null);
    assert_eq!(run["output_file_id"], Value::Null);
    assert_eq!(run["attempts"], 1);
    assert_eq!(
        run["result"]["fields"],
        json!([
            {"name": "id", "type": "integer", "path": "0", "nullable": false},
            {"name": "name", "type": "string", "path": "1", "nullable": false},
            {"name": "born", "type": "date", "path": "2", "nullable": false},
        ])
    );
    let listed: Vec<Value> = app
        .admin(Method::GET, "/api/v1/runs?status=complete")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    let used: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{file}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        used["runs"],
        json!([id]),
        "the file lists the runs that used it"
    );

    let response = app
        .admin(Method::DELETE, &format!("/api/v1/runs/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .admin(Method::GET, &format!("/api/v1/runs/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "run_not_found").await;
}

#[actix_web::test]
async fn a_run_on_a_file_that_does_not_read_ends_error_with_line_and_code() {
    let app = spawn_app().await;
    let file = app.upload_file("ragged.csv", b"a,b\n1,2\n3,4,5\n").await;
    let response = app
        .admin(Method::POST, "/api/v1/runs")
        .json(&json!({"step": "detect-schema", "file_id": file}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let run: Value = response.json().await.unwrap();
    let run = app.wait_run(run["id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "error");
    assert_eq!(run["errorCode"], "invalid_file_content");
    assert_eq!(run["error_code"], "invalid_file_content");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("line 3"), "{error}");
    assert_eq!(run["error_message"], run["error"]);
    assert_eq!(
        run["error_details"],
        json!({"step": "detect-schema", "fileId": file})
    );
}

#[actix_web::test]
async fn runs_refuse_unknown_steps_files_of_others_and_files_not_ready() {
    let app = spawn_app().await;
    let file = app.upload_file("a.csv", b"x\n1\n").await;
    app.create_user("eve", "eve-password", false).await;

    let post = |body: Value| app.admin(Method::POST, "/api/v1/runs").json(&body).send();
    let response = post(json!({"step": "explode", "fileId": file}))
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["field"], "step");
    let response = post(json!({"step": "detect-schema", "fileId": 999}))
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "file_not_found").await;
    let response = post(json!({"step": "detect-schema", "fileId": file, "force": true}))
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "unknown_field").await;

    let response = app
        .as_user(Method::POST, "/api/v1/runs", "eve", "eve-password")
        .json(&json!({"step": "detect-schema", "fileId": file}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "file_not_found").await;

    let pending: Value = app
        .admin(Method::POST, "/api/v1/files")
        .json(&json!({"size": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = app
        .admin(Method::POST, "/api/v1/pipelines/sqlify/detect-schema/run")
        .json(&json!({"file_id": pending["id"]}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "file_not_ready").await;
    assert!(app.listed_ids("/api/v1/runs").await.is_empty());
}
