//! The dashboard at `/` in a real headless Chromium, driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`; `.ci/run` installs them). Each test starts its own
//! chromedriver on a free port with a fresh profile; screenshots go to
//! `target/browser-screenshots/<test>.png`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    pg_connection, pg_schema_and_connection, spawn_app_with, unique_name, Backend, TestApp, ADMIN,
    ADMIN_PASSWORD,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser at a time: two cores cannot run several Chromiums and a transfer at once.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A transfer of 3,000,000 generated rows that takes at least `30 × pause` seconds.
fn long_query(pause: f64) -> String {
    crate::helpers::paced_query(3_000_000, pause)
}

/// How the window is sized.
enum Screen {
    Laptop,
    /// A 390 px wide phone (Chromium's mobile emulation).
    Phone,
}

/// A chromedriver (and the Chromium it starts) owned by one test; killed on drop.
struct Browser {
    client: Option<Client>,
    driver: Child,
    profile: PathBuf,
    name: &'static str,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start(name: &'static str, screen: Screen) -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER}: `apt-get install -y chromium \
             chromium-driver` (.ci/run installs them when missing)"
        );
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that drop can end Chromium with it.
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let profile = std::env::temp_dir().join(unique_name("chromium"));
        let mut browser = Self {
            client: None,
            driver,
            profile,
            name,
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{webdriver}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1366,768",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if let Screen::Phone = screen {
            options["mobileEmulation"] =
                json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0}});
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .expect("a Chromium session starts");
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    async fn js(&self, script: &str) -> Value {
        self.client()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Run `script` until it returns something other than null/false, and return that.
    async fn wait_for(&self, what: &str, seconds: u64, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.js(script).await;
            if !(value.is_null() || value == json!(false)) {
                return value;
            }
            if Instant::now() > deadline {
                self.snapshot("failure").await;
                panic!("waited {seconds}s for {what}; last value {value}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, selector: &str) {
        self.client()
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let field = self.client().find(Locator::Css(selector)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Open the dashboard and sign in with the admin's username and password.
    /// Choose `value` in the `<select>` with id `id`, once that option is there (the page
    /// fills some lists from the API).
    async fn select(&self, id: &str, value: &str) {
        self.wait_for(
            &format!("option {value} in #{id}"),
            20,
            &format!(
                "return [...document.querySelectorAll('#{id} option')].some(o => o.value === '{value}')"
            ),
        )
        .await;
        self.client()
            .find(Locator::Id(id))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap();
    }

    async fn sign_in(&self, app: &TestApp) {
        self.client().goto(&app.url("/")).await.unwrap();
        self.wait_for(
            "the sign-in form",
            20,
            "return !document.getElementById('view-signin').hidden",
        )
        .await;
        self.type_into("#signin-username", ADMIN).await;
        self.type_into("#signin-password", ADMIN_PASSWORD).await;
        self.click("#signin-submit").await;
        let who = self
            .wait_for(
                "the signed-in jobs view",
                20,
                "return !document.getElementById('view-jobs').hidden \
                 && document.getElementById('whoami-name').textContent",
            )
            .await;
        assert_eq!(who, "admin (admin)");
    }

    /// The job card's status, row count and bar width (percent) as the page shows them.
    async fn job_card(&self, kind: &str, id: &Value) -> Option<(String, u64, f64)> {
        let script = format!(
            "const card = document.querySelector('[data-testid=\"job-{kind}-{id}\"]');
             if (!card) return null;
             return [card.dataset.status, Number(card.dataset.rows),
                     parseFloat(card.querySelector('[data-testid=\"job-bar\"]').style.width),
                     card.querySelector('[data-testid=\"job-rows\"]').textContent];"
        );
        let value = self.js(&script).await;
        let card = value.as_array()?;
        let rows = card[1].as_u64().unwrap();
        // The visible count is the same number, formatted.
        assert_eq!(
            card[3].as_str().unwrap().replace(',', ""),
            rows.to_string(),
            "{value}"
        );
        Some((
            card[0].as_str().unwrap().to_string(),
            rows,
            card[2].as_f64().unwrap(),
        ))
    }

    async fn screenshot(&self) {
        self.save_screenshot(self.name.to_string()).await
    }

    /// A screenshot of one step: `<test>-<step>.png`.
    async fn snapshot(&self, step: &str) {
        self.save_screenshot(format!("{}-{step}", self.name)).await
    }

    async fn save_screenshot(&self, file: String) {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let dir = target.join("browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        if let Ok(png) = self.client().screenshot().await {
            std::fs::write(dir.join(format!("{file}.png")), png).unwrap();
        }
    }

    /// The page met no error (window.onerror, unhandled rejections, console.error).
    async fn assert_no_errors(&self) {
        let errors = self.js("return window.__errors").await;
        assert_eq!(errors, json!([]), "errors in the page");
    }

    /// Screenshot, check the page's error log, end the session.
    async fn finish(mut self) {
        self.screenshot().await;
        self.assert_no_errors().await;
        if let Some(client) = self.client.take() {
            client.close().await.unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group that chromedriver leads (it and the Chromium it started), by its id.
        let group = self.driver.id() as libc::pid_t;
        if group > 1 {
            // SAFETY: killpg only sends a signal; the group is our own child's.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn spawn_app() -> TestApp {
    // Small batches: progress is published more often than with the default 65,536 rows.
    spawn_app_with(Backend::Sqlite, |s| s.jobs.batch_rows = 20_000).await
}

#[actix_web::test]
async fn an_admin_sees_a_transfer_advance_live_and_complete() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "browser_live").await;
    let browser = Browser::start(
        "an_admin_sees_a_transfer_advance_live_and_complete",
        Screen::Laptop,
    )
    .await;
    browser.sign_in(&app).await;
    browser
        .wait_for(
            "the live event stream",
            20,
            "return document.getElementById('live-status').textContent === 'live'",
        )
        .await;
    // Anything that reloaded the page would lose this.
    browser
        .js("window.__sameDocument = 'yes'; return null")
        .await;

    let transfer = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": long_query(0.1),
            "targetSchema": schema, "targetTable": "big"
        }))
        .await;
    let id = &transfer["id"];

    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.is_none() {
        if let Some((status, rows, width)) = browser.job_card("transfer", id).await {
            assert_ne!(
                status, "complete",
                "the transfer ended before it was seen running"
            );
            if status == "running" && rows > 0 {
                first = Some((rows, width));
            }
        }
        assert!(
            Instant::now() < deadline,
            "the transfer never showed progress"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rows1, width1) = first.unwrap();
    let mut second = None;
    while second.is_none() {
        let (status, rows, width) = browser.job_card("transfer", id).await.unwrap();
        if status == "running" && rows > rows1 {
            second = Some((rows, width));
        }
        assert!(
            status == "running" || rows > rows1,
            "no second reading before the end: {status} with {rows} rows"
        );
        assert!(Instant::now() < deadline, "the row count did not grow");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rows2, width2) = second.unwrap();
    assert!(
        rows2 > rows1 && width2 > width1,
        "{rows1}/{width1}% then {rows2}/{width2}%"
    );
    assert!(width2 < 100.0, "a running bar is never full: {width2}%");
    browser.snapshot("running").await;

    browser
        .wait_for(
            "the transfer to complete",
            180,
            &format!(
                "const c = document.querySelector('[data-testid=\"job-transfer-{id}\"]');
                 return c && c.dataset.status === 'complete'"
            ),
        )
        .await;
    let (status, rows, width) = browser.job_card("transfer", id).await.unwrap();
    assert_eq!(
        (status.as_str(), rows, width),
        ("complete", 3_000_000, 100.0)
    );
    let bar = browser
        .js(&format!(
            "const c = document.querySelector('[data-testid=\"job-transfer-{id}\"]');
             return [c.querySelector('.bar').className, getComputedStyle(c.querySelector('.fill')).backgroundColor,
                     c.querySelector('[data-testid=\"job-cancel\"]').hidden]"
        ))
        .await;
    assert_eq!(bar, json!(["bar complete", "rgb(31, 157, 85)", true]));
    assert_eq!(browser.js("return window.__sameDocument").await, "yes");
    let done = app.transfer(id).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["rowsWritten"], 3_000_000);
    browser.finish().await;
}

#[actix_web::test]
async fn an_admin_cancels_a_running_transfer_with_the_button_after_confirming() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "browser_cancel").await;
    let browser = Browser::start(
        "an_admin_cancels_a_running_transfer_with_the_button_after_confirming",
        Screen::Laptop,
    )
    .await;
    browser.sign_in(&app).await;
    let transfer = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": long_query(1.0),
            "targetSchema": schema, "targetTable": "cancelled"
        }))
        .await;
    let id = &transfer["id"];
    let card = format!("[data-testid=\"job-transfer-{id}\"]");
    browser
        .wait_for(
            "the transfer running with rows",
            60,
            &format!(
                "const c = document.querySelector('{card}');
                 return c && c.dataset.status === 'running' && Number(c.dataset.rows) > 0"
            ),
        )
        .await;

    // "Keep it" leaves the job alone.
    browser
        .click(&format!("{card} [data-testid=\"job-cancel\"]"))
        .await;
    browser
        .wait_for(
            "the confirmation",
            10,
            "return document.getElementById('confirm-dialog').open",
        )
        .await;
    browser.click("#confirm-no").await;
    browser
        .wait_for(
            "the dialog to close",
            10,
            "return !document.getElementById('confirm-dialog').open",
        )
        .await;
    assert_eq!(app.transfer(id).await["status"], "running");

    browser
        .click(&format!("{card} [data-testid=\"job-cancel\"]"))
        .await;
    let message = browser
        .wait_for(
            "the confirmation",
            10,
            "const d = document.getElementById('confirm-dialog');
             return d.open && document.getElementById('confirm-message').textContent",
        )
        .await;
    assert!(
        message
            .as_str()
            .unwrap()
            .contains(&format!("transfer #{id}")),
        "{message}"
    );
    browser.snapshot("confirm").await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for(
            "the transfer shown cancelled",
            30,
            &format!(
                "const c = document.querySelector('{card}');
                 return c.dataset.status === 'cancelled'
                     && c.querySelector('[data-testid=\"job-status\"]').textContent === 'cancelled'"
            ),
        )
        .await;
    let done = app.transfer(id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    browser.finish().await;
}

#[actix_web::test]
async fn a_query_run_in_the_query_view_shows_its_rows_and_a_bad_one_its_error() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let pg = app
        .create_connection(pg_connection(&unique_name("browser_query"), "test"))
        .await;
    let browser = Browser::start(
        "a_query_run_in_the_query_view_shows_its_rows_and_a_bad_one_its_error",
        Screen::Laptop,
    )
    .await;
    browser.sign_in(&app).await;
    browser.click("#nav-query").await;
    browser
        .select("query-connection", &pg["id"].to_string())
        .await;
    browser
        .type_into(
            "#query-sql",
            "SELECT g AS id, md5(g::text) AS hash, NULL::text AS nothing \
             FROM generate_series(1, 3) g ORDER BY g",
        )
        .await;
    browser.click("#query-run").await;
    let status = browser
        .wait_for(
            "the query to complete",
            30,
            "const s = document.getElementById('query-status').textContent;
             return s.startsWith('complete ·') && s",
        )
        .await;
    assert!(
        status.as_str().unwrap().starts_with("complete · 3 rows"),
        "{status}"
    );
    let table = browser
        .js("const t = document.getElementById('query-result');
             return [[...t.tHead.rows[0].cells].map(c => c.textContent),
                     ...[...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))]")
        .await;
    assert_eq!(
        table,
        json!([
            ["id", "hash", "nothing"],
            ["1", "c4ca4238a0b923820dcc509a6f75849b", "NULL"],
            ["2", "c81e728d9d4c2f636f067f89cc14862c", "NULL"],
            ["3", "eccbc87e4b5ce2fe28308fd9f2a7baf3", "NULL"],
        ])
    );
    browser.snapshot("result").await;

    browser
        .type_into("#query-sql", "SELECT * FROM no_such_table_here")
        .await;
    browser.click("#query-run").await;
    let error = browser
        .wait_for(
            "the query's error",
            30,
            "const e = document.getElementById('query-error');
             return !e.hidden && e.textContent",
        )
        .await;
    assert!(
        error.as_str().unwrap().contains("no_such_table_here"),
        "{error}"
    );
    assert_eq!(
        browser
            .js("return document.getElementById('query-result').tBodies[0].rows.length")
            .await,
        0
    );
    browser.finish().await;
}

#[actix_web::test]
async fn history_filters_finished_jobs_opens_one_and_connections_can_be_tested() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "browser_history").await;
    let other = app
        .create_connection(pg_connection(&format!("other-{schema}"), "test"))
        .await;
    let ok = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": "SELECT 1 AS x",
            "targetSchema": schema, "targetTable": "one"
        }))
        .await;
    let failed = app
        .submit_transfer(json!({
            "sourceId": other["id"], "targetId": pg["id"], "query": "SELECT * FROM missing_table_xyz",
            "targetSchema": schema, "targetTable": "two"
        }))
        .await;
    assert_eq!(app.wait_transfer(&ok["id"], 30).await["status"], "complete");
    assert_eq!(
        app.wait_transfer(&failed["id"], 30).await["status"],
        "error"
    );

    let browser = Browser::start(
        "history_filters_finished_jobs_opens_one_and_connections_can_be_tested",
        Screen::Laptop,
    )
    .await;
    browser.sign_in(&app).await;
    browser.click("#nav-history").await;
    let rows_script = "return [...document.querySelectorAll('#history-table tbody tr')]
                        .map(r => r.dataset.testid)";
    browser
        .wait_for(
            "both transfers in the history",
            20,
            &format!("const r = (() => {{ {rows_script} }})(); return r.length === 2 && r"),
        )
        .await;
    // The status filter.
    browser.select("history-status", "error").await;
    let only_failed = json!([format!("history-transfers-{}", failed["id"])]);
    browser
        .wait_for(
            "only the failed transfer",
            20,
            &format!(
                "const r = (() => {{ {rows_script} }})(); return JSON.stringify(r) === '{only_failed}'"
            ),
        )
        .await;
    // The connection filter: the failed transfer read from `other`, the good one did not.
    browser
        .select("history-status", "complete,error,cancelled")
        .await;
    browser
        .select("history-connection", &other["id"].to_string())
        .await;
    browser
        .wait_for(
            "the transfers on the other connection",
            20,
            &format!(
                "const r = (() => {{ {rows_script} }})(); return JSON.stringify(r) === '{only_failed}'"
            ),
        )
        .await;
    // The detail of the failed one: its query and the database's error.
    browser
        .click(&format!(
            "[data-testid=\"history-transfers-{}\"] a",
            failed["id"]
        ))
        .await;
    let detail = browser
        .wait_for(
            "the transfer's detail",
            20,
            "const s = document.querySelector('[data-testid=\"detail-status\"]');
             return !document.getElementById('view-detail').hidden && s
                 && document.getElementById('detail-fields').textContent",
        )
        .await;
    let detail = detail.as_str().unwrap();
    assert!(
        detail.contains("SELECT * FROM missing_table_xyz"),
        "{detail}"
    );
    assert!(detail.contains("error"), "{detail}");
    assert!(
        detail.matches("missing_table_xyz").count() >= 2,
        "the error names the table: {detail}"
    );

    // Connections: test one.
    browser.click("#nav-connections").await;
    let button = format!(
        "[data-testid=\"connection-{}\"] [data-testid=\"connection-test\"]",
        pg["id"]
    );
    browser
        .wait_for(
            "the connections table",
            20,
            &format!("return !!document.querySelector('{button}')"),
        )
        .await;
    browser.click(&button).await;
    let result = browser
        .wait_for(
            "the test result",
            30,
            &format!(
                "const r = document.querySelector('[data-testid=\"connection-{}\"] [data-testid=\"connection-test-result\"]').textContent;
                 return r.startsWith('OK') || r.startsWith('Failed') ? r : null",
                pg["id"]
            ),
        )
        .await;
    assert!(
        result.as_str().unwrap().starts_with("OK · PostgreSQL"),
        "{result}"
    );
    browser.finish().await;
}

#[actix_web::test]
async fn on_a_phone_the_jobs_panel_fits_the_width_and_a_wrong_password_is_refused() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "browser_phone").await;
    let browser = Browser::start(
        "on_a_phone_the_jobs_panel_fits_the_width_and_a_wrong_password_is_refused",
        Screen::Phone,
    )
    .await;
    browser.client().goto(&app.url("/")).await.unwrap();
    browser
        .wait_for(
            "the sign-in form",
            20,
            "return !document.getElementById('view-signin').hidden",
        )
        .await;
    browser.type_into("#signin-username", ADMIN).await;
    browser
        .type_into("#signin-password", "not-the-password")
        .await;
    browser.click("#signin-submit").await;
    let refused = browser
        .wait_for(
            "the refusal",
            20,
            "const e = document.getElementById('signin-error'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(
        refused.as_str().unwrap().contains("Sign-in failed"),
        "{refused}"
    );
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('sluice.auth')")
            .await,
        Value::Null
    );
    browser.sign_in(&app).await;
    assert!(browser
        .js("return sessionStorage.getItem('sluice.auth')")
        .await
        .as_str()
        .unwrap()
        .starts_with("Basic "));

    let transfer = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": long_query(0.3),
            "targetSchema": schema, "targetTable": "phone"
        }))
        .await;
    let id = &transfer["id"];
    browser
        .wait_for(
            "the job card",
            60,
            &format!(
                "const c = document.querySelector('[data-testid=\"job-transfer-{id}\"]');
                 return c && c.dataset.status === 'running'"
            ),
        )
        .await;
    let widths = browser
        .js(
            "return [window.innerWidth, document.documentElement.scrollWidth,
                     document.querySelector('#jobs-list li').getBoundingClientRect().right]",
        )
        .await;
    let (inner, scroll, card_right) = (
        widths[0].as_f64().unwrap(),
        widths[1].as_f64().unwrap(),
        widths[2].as_f64().unwrap(),
    );
    browser.snapshot("jobs").await;
    assert_eq!(inner, 390.0, "{widths}");
    assert!(scroll <= inner && card_right <= inner, "{widths}");

    // Stop it through the API; the card follows.
    let response = app
        .admin(Method::POST, &format!("/api/v1/transfers/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    browser
        .wait_for(
            "the card to show cancelled",
            30,
            &format!(
                "return document.querySelector('[data-testid=\"job-transfer-{id}\"]').dataset.status === 'cancelled'"
            ),
        )
        .await;
    // The history table scrolls inside its box; the page itself does not.
    browser.click("#nav-history").await;
    let widths = browser
        .wait_for(
            "the history at phone width",
            20,
            &format!(
                "const row = document.querySelector('[data-testid=\"history-transfers-{id}\"]');
                 return row && [window.innerWidth, document.documentElement.scrollWidth,
                                document.getElementById('history-table').scrollWidth]"
            ),
        )
        .await;
    browser.snapshot("history").await;
    assert!(
        widths[1].as_f64() <= widths[0].as_f64() && widths[2].as_f64() > widths[0].as_f64(),
        "the page fits and the table scrolls: {widths}"
    );
    // Signing out forgets the credentials.
    browser.click("#signout").await;
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('sluice.auth')")
            .await,
        Value::Null
    );
    assert_eq!(
        browser
            .js("return !document.getElementById('view-signin').hidden")
            .await,
        true
    );
    browser.finish().await;
}

#[actix_web::test]
async fn the_dashboard_is_served_with_its_types_a_strict_policy_and_caching() {
    let app = spawn_app().await;
    let page = app.anon(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    let etag = headers["etag"].to_str().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(!html.contains("{{"), "versions are filled in");
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "nothing inline"
    );

    let again = app
        .anon(Method::GET, "/")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    for (asset, content_type) in [
        ("/assets/app.js?v=", "text/javascript; charset=utf-8"),
        ("/assets/app.css?v=", "text/css; charset=utf-8"),
    ] {
        let start = html
            .find(asset)
            .unwrap_or_else(|| panic!("{asset} in {html}"));
        let end = start + html[start..].find('"').unwrap();
        let response = app
            .anon(Method::GET, &html[start..end])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert!(response.headers().contains_key("content-security-policy"));
        assert!(response.text().await.unwrap().len() > 1000);
    }
    // The other open routes and the API are as they were.
    let docs = app.anon(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::PERMANENT_REDIRECT);
    let me = app
        .anon(Method::GET, "/api/v1/users/me")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let missing = app.anon(Method::GET, "/nothing-here").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_user_signed_in_with_a_token_follows_only_their_own_jobs_by_polling() {
    let _one = ONE_BROWSER.lock().await;
    let app = spawn_app().await;
    let (schema, pg) = pg_schema_and_connection(&app, "browser_token").await;
    app.create_user("bob", "bob-password-1", false).await;
    let token = app.create_token("bob", "bob-password-1").await;
    let browser = Browser::start(
        "a_user_signed_in_with_a_token_follows_only_their_own_jobs_by_polling",
        Screen::Laptop,
    )
    .await;
    browser.client().goto(&app.url("/")).await.unwrap();
    browser
        .wait_for(
            "the sign-in form",
            20,
            "return !document.getElementById('view-signin').hidden",
        )
        .await;
    browser.click("#signin-mode-token").await;
    browser.type_into("#signin-token", &token).await;
    browser.click("#signin-submit").await;
    let who = browser
        .wait_for(
            "the signed-in jobs view",
            20,
            "return !document.getElementById('view-jobs').hidden \
             && document.getElementById('whoami-name').textContent",
        )
        .await;
    assert_eq!(who, "bob");
    // The admins' firehose is not for Bob: the page polls instead.
    let live = browser
        .wait_for(
            "the polling badge",
            20,
            "const t = document.getElementById('live-status').textContent; \
             return t.startsWith('polling') && t",
        )
        .await;
    assert_eq!(live, "polling every 2 s");

    // The admin's job runs too, but Bob may not see it.
    let admins = app
        .submit_transfer(json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": long_query(0.1),
            "targetSchema": schema, "targetTable": "admins"
        }))
        .await;
    let response = app
        .anon(Method::POST, "/api/v1/transfers")
        .bearer_auth(&token)
        .json(&json!({
            "sourceId": pg["id"], "targetId": pg["id"], "query": long_query(0.05),
            "targetSchema": schema, "targetTable": "bobs"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let bobs: Value = response.json().await.unwrap();
    let id = &bobs["id"];

    browser
        .wait_for(
            "Bob's transfer to run with rows",
            60,
            &format!(
                "const c = document.querySelector('[data-testid=\"job-transfer-{id}\"]');
                 return c && c.dataset.status === 'running' && Number(c.dataset.rows) > 0"
            ),
        )
        .await;
    browser
        .wait_for(
            "Bob's transfer to complete",
            180,
            &format!(
                "const c = document.querySelector('[data-testid=\"job-transfer-{id}\"]');
                 return c && c.dataset.status === 'complete'"
            ),
        )
        .await;
    let (status, rows, _) = browser.job_card("transfer", id).await.unwrap();
    assert_eq!((status.as_str(), rows), ("complete", 3_000_000));
    let admins_card = browser
        .js(&format!(
            "return !!document.querySelector('[data-testid=\"job-transfer-{}\"]')",
            admins["id"]
        ))
        .await;
    assert_eq!(admins_card, json!(false), "Bob sees the admin's transfer");
    let cancelled = app
        .admin(
            Method::POST,
            &format!("/api/v1/transfers/{}/cancel", admins["id"]),
        )
        .send()
        .await
        .unwrap();
    assert!(cancelled.status() == StatusCode::OK || cancelled.status() == StatusCode::CONFLICT);
    browser.finish().await;
}
