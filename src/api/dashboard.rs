//! The dashboard at `/`: one page of plain HTML, CSS and JavaScript (in `src/api/dashboard/`),
//! compiled into the binary and talking to `/api/v1` like any other client.
//!
//! The page is sent with `no-cache` so a new binary is picked up at once; the script and style
//! sheet are addressed by a hash of their content (`/assets/app.js?v=…`) and cached for a year.
//! The Content-Security-Policy allows nothing but this origin: no inline script or style, no
//! third-party host.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::resource;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// A short content hash, used as the assets' version and the page's ETag.
fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The page with its asset URLs pointing at the current versions, and its ETag.
static PAGE: LazyLock<(String, String)> = LazyLock::new(|| {
    let page = INDEX
        .replace("{{script_version}}", &digest(&[SCRIPT]))
        .replace("{{style_version}}", &digest(&[STYLE]));
    let etag = format!("\"{}\"", digest(&[&page]));
    (page, etag)
});

fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    builder
}

async fn index(req: HttpRequest) -> HttpResponse {
    let (page, etag) = &*PAGE;
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == HeaderValue::from_str(etag).expect("hex is a valid header"));
    let mut response = secured(if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    });
    response
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag.as_str()));
    if unchanged {
        response.finish()
    } else {
        response
            .content_type("text/html; charset=utf-8")
            .body(page.clone())
    }
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// `/`, `/assets/app.js`, `/assets/app.css` (no credentials: the page signs in through the API).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/").route(web::get().to(index)))
        .service(resource("/assets/app.js").route(web::get().to(script)))
        .service(resource("/assets/app.css").route(web::get().to(style)));
}
