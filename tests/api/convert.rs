//! Converting files: Sqlify's convert pipeline (its documented examples), convert runs that
//! make a new file, and values that do not fit.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp};

const EXAMPLE: &[u8] = br#"[{"id":1,"name":"Mark"}, {"id":2,"name":"Maria"}]"#;

fn example_form() -> Form {
    Form::new().part("file", Part::bytes(EXAMPLE).file_name("example.json"))
}

async fn convert(app: &TestApp, form: Form) -> reqwest::Response {
    app.admin(Method::POST, "/api/v1/pipelines/sqlify/convert/run")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn bytes_of(app: &TestApp, file: &Value) -> String {
    let response = app
        .admin(Method::GET, &format!("/api/v1/files/{file}/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[actix_web::test]
async fn the_seeds_convert_examples_give_exactly_the_documented_outputs() {
    let app = spawn_app().await;
    // With a JSONPath schema: the field has no type, so it is a string.
    let form = example_form()
        .text("options[to]", "csv")
        .text("options[schema][0][name]", "id")
        .text("options[schema][0][path]", "$[*].id")
        .text("return_output", "true");
    let response = convert(&app, form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv");
    assert_eq!(response.text().await.unwrap(), "\"id\"\n\"1\"\n\"2\"\n");

    // Without a schema: the detected one (id an integer), `;` between fields.
    let form = example_form()
        .text("options[to]", "csv")
        .text("options[output][separator]", ";")
        .text("return_output", "true");
    let response = convert(&app, form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "\"id\";\"name\"\n1;\"Mark\"\n2;\"Maria\"\n"
    );
}

#[actix_web::test]
async fn a_convert_run_writes_a_new_file_and_sqlifys_convert_to_csv_too() {
    let app = spawn_app().await;
    let file = app
        .upload_file("orders.csv", b"id,price,note\n1,12.50,\"a, b\"\n2,3,NULL\n")
        .await;
    let response = app
        .admin(Method::POST, "/api/v1/runs")
        .json(&json!({"step": "convert", "fileId": file, "options": {"to": "jsonl"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let run: Value = response.json().await.unwrap();
    let run = app.wait_run(run["id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(run["result"]["records"], 2);
    let output = &run["outputFileId"];
    assert_eq!(run["output_file_id"], *output);
    assert_eq!(
        bytes_of(&app, output).await,
        "{\"id\":1,\"price\":12.50,\"note\":\"a, b\"}\n{\"id\":2,\"price\":3,\"note\":null}\n"
    );
    let made: Value = app
        .admin(Method::GET, &format!("/api/v1/files/{output}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(made["name"], "orders.jsonl");
    assert_eq!(made["format"], "jsonl");
    assert_eq!(made["schema"]["fields"][0]["name"], "id");

    // Sqlify's convert-to-csv, from the JSON Lines file just made: the same rows back.
    let response = app
        .admin(Method::POST, "/api/v1/pipelines/sqlify/convert-to-csv/run")
        .form(&[("file_id", output.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let run: Value = response.json().await.unwrap();
    let run = app.wait_run(run["id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(
        bytes_of(&app, &run["outputFileId"]).await,
        "\"id\",\"price\",\"note\"\n1,12.5,\"a, b\"\n2,3,\n"
    );
}

#[actix_web::test]
async fn a_value_that_does_not_fit_fails_with_its_line_and_leaves_no_output() {
    let app = spawn_app().await;
    let file = app.upload_file("n.csv", b"n\n1\n2\n3.5\n").await;
    let schema = json!([{"name": "n", "type": "integer", "path": "0"}]);
    let response = app
        .admin(Method::POST, "/api/v1/pipelines/sqlify/convert/run")
        .json(&json!({"file_id": file, "options": {"to": "json", "schema": schema}, "return_output": true}))
        .send()
        .await
        .unwrap();
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_file_content",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("line 4") && detail.contains("3.5"),
        "{detail}"
    );

    let response = app
        .admin(Method::POST, "/api/v1/runs")
        .json(&json!({"step": "convert", "fileId": file, "options": {"to": "json", "schema": schema}}))
        .send()
        .await
        .unwrap();
    let run: Value = response.json().await.unwrap();
    let run = app.wait_run(run["id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "error");
    assert_eq!(run["errorCode"], "invalid_file_content");
    assert!(run["error"].as_str().unwrap().contains("line 4"), "{run}");
    assert_eq!(run["outputFileId"], Value::Null);
    assert_eq!(
        app.listed_ids("/api/v1/files").await,
        [file],
        "no output file"
    );
}

#[actix_web::test]
async fn convert_options_that_are_wrong_or_unknown_are_refused() {
    let app = spawn_app().await;
    let form = example_form()
        .text("options[to]", "xml")
        .text("return_output", "true");
    let body = assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "options[to]");
    let form = example_form()
        .text("options[to]", "csv")
        .text("options[colour]", "red");
    assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "unknown_field",
    )
    .await;
    let form = Form::new().text("options[to]", "csv");
    let body = assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "file");
    let form = example_form()
        .text("options[to]", "csv")
        .text("options[output][separator]", ";;");
    let body = assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "options[output][separator]");
}

#[actix_web::test]
async fn csv_converts_to_parquet_with_its_types_and_back_to_the_same_csv() {
    let app = spawn_app().await;
    let csv = "id,price,day,at,note\n\
               1,12.50,2024-02-29,2024-02-29T10:11:12.500000Z,\"a, \"\"b\"\"\"\n\
               2,-0.05,1999-12-31,1970-01-01T00:00:00.000000Z,\n";
    let file = app.upload_file("typed.csv", csv.as_bytes()).await;
    let run = app
        .run_step(json!({"step": "convert", "fileId": file, "options": {"to": "parquet"}}))
        .await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(run["result"]["records"], 2);
    let output = &run["outputFileId"];
    let made = app.file(output).await;
    assert_eq!(made["name"], "typed.parquet");
    assert_eq!(made["format"], "parquet");
    assert_eq!(made["type"], "application/vnd.apache.parquet");
    assert_eq!(made["rowCount"], 2);
    let fields: Vec<(String, String)> = made["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("id".to_string(), "integer".to_string()),
            ("price".into(), "decimal(4,2)".into()),
            ("day".into(), "date".into()),
            ("at".into(), "timestamptz".into()),
            ("note".into(), "string".into()),
        ],
        "read from the Parquet footer"
    );

    // Parquet back to CSV: the values as they went in.
    let form = Form::new()
        .text("file_id", output.to_string())
        .text("options[to]", "csv")
        .text("return_output", "true");
    let response = convert(&app, form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "\"id\",\"price\",\"day\",\"at\",\"note\"\n\
         1,12.50,\"2024-02-29\",\"2024-02-29T10:11:12.500000Z\",\"a, \"\"b\"\"\"\n\
         2,-0.05,\"1999-12-31\",\"1970-01-01T00:00:00.000000Z\",\n"
    );
}

#[actix_web::test]
async fn a_parquet_file_with_a_truncated_footer_says_so_and_cannot_be_read() {
    let app = spawn_app().await;
    let file = app
        .upload_file(
            "cut.parquet",
            b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00",
        )
        .await;
    let made = app.file(&json!(file)).await;
    assert_eq!(made["format"], "parquet");
    assert_eq!(made["schema"], Value::Null);
    let why = made["schemaError"].as_str().unwrap();
    assert!(why.contains("not a readable Parquet file"), "{why}");
    let response = app
        .admin(Method::POST, "/api/v1/transfers")
        .json(&json!({"sourceFileId": file, "targetFormat": "csv"}))
        .send()
        .await
        .unwrap();
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(
        error["detail"].as_str().unwrap().contains("has no schema"),
        "{error}"
    );
}

#[actix_web::test]
async fn a_file_converts_to_a_sql_script_for_each_dialect() {
    let app = spawn_app().await;
    let expected = [
        (
            "postgresql",
            "BEGIN;\nCREATE TABLE \"example\" (\"id\" integer, \"name\" text);\n\
             INSERT INTO \"example\" (\"id\", \"name\") VALUES\n(1, 'Mark'),\n(2, 'Maria');\nCOMMIT;\n",
        ),
        (
            "mysql",
            "BEGIN;\nCREATE TABLE `example` (`id` int NULL, `name` longtext NULL) CHARACTER SET utf8mb4;\n\
             INSERT INTO `example` (`id`, `name`) VALUES\n(1, 'Mark'),\n(2, 'Maria');\nCOMMIT;\n",
        ),
        (
            "sqlite",
            "BEGIN;\nCREATE TABLE \"example\" (\"id\" INTEGER, \"name\" TEXT);\n\
             INSERT INTO \"example\" (\"id\", \"name\") VALUES\n(1, 'Mark'),\n(2, 'Maria');\nCOMMIT;\n",
        ),
    ];
    for (dialect, script) in expected {
        let form = example_form()
            .text("options[to]", "sql")
            .text("options[output][dialect]", dialect)
            .text("return_output", "true");
        let response = convert(&app, form).await;
        assert_eq!(response.status(), StatusCode::OK, "{dialect}");
        assert_eq!(response.headers()["content-type"], "application/sql");
        assert_eq!(response.text().await.unwrap(), script, "{dialect}");
    }
    let form = example_form()
        .text("options[to]", "sql")
        .text("options[output][dialect]", "oracle");
    let response = convert(&app, form).await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error["field"], "options[output][dialect]");
    let form = example_form()
        .text("options[to]", "csv")
        .text("options[output][table]", "t");
    let response = convert(&app, form).await;
    assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
}

#[actix_web::test]
async fn null_words_given_to_detection_and_conversion_decide_which_cells_are_null() {
    let app = spawn_app().await;
    let file = app
        .upload_file("scores.csv", b"id,name,score\n1,,NA\n2,NULL,3\n3,n/a,4\n")
        .await;
    let detected = app.file(&json!(file)).await;
    assert_eq!(
        detected["schema"]["fields"][2]["type"], "string",
        "NA is not a NULL word by default"
    );
    assert_eq!(
        detected["schema"]["dialect"]["nullWords"],
        json!(["", "NULL", "\\N"])
    );

    let run = app
        .run_step(json!({"step": "detect-schema", "fileId": file,
            "options": {"input": {"null": ["NA", "n/a"]}}}))
        .await;
    assert_eq!(run["status"], "complete", "{run}");
    assert_eq!(run["result"]["dialect"]["nullWords"], json!(["NA", "n/a"]));
    let types: Vec<Value> = run["result"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| json!([f["type"], f["nullable"]]))
        .collect();
    assert_eq!(
        types,
        [
            json!(["integer", false]),
            json!(["string", true]),
            json!(["integer", true])
        ]
    );

    // The file's own NULL words now apply; an empty cell and "NULL" are text.
    let form = Form::new()
        .text("file_id", file.to_string())
        .text("options[to]", "jsonl")
        .text("return_output", "true");
    let response = convert(&app, form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "{\"id\":1,\"name\":\"\",\"score\":null}\n\
         {\"id\":2,\"name\":\"NULL\",\"score\":3}\n\
         {\"id\":3,\"name\":null,\"score\":4}\n"
    );

    // Words given to the conversion win; a NULL is written as the output's word.
    let form = Form::new()
        .text("file_id", file.to_string())
        .text("options[to]", "csv")
        .text("options[input][null][0]", "NA")
        .text("options[input][null][1]", "NULL")
        .text("options[output][null]", "\\N")
        .text("return_output", "true");
    let response = convert(&app, form).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "\"id\",\"name\",\"score\"\n1,\"\",\\N\n2,\\N,3\n3,\"n/a\",4\n"
    );

    let form = Form::new()
        .text("file_id", file.to_string())
        .text("options[to]", "csv")
        .text("options[input][null]", "a\nb");
    let body = assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "options[input][null]");
    let form = Form::new()
        .text("file_id", file.to_string())
        .text("options[to]", "json")
        .text("options[output][null]", "\\N");
    let body = assert_error(
        convert(&app, form).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "options[output]");
    let response = app
        .admin(Method::POST, "/api/v1/runs")
        .json(&json!({"step": "detect-schema", "fileId": file,
            "options": {"input": {"null": []}}}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(body["field"], "options[input][null]");
}
