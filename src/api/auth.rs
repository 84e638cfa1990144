//! Authentication of API calls (Basic, Bearer token, X-API-Key) and the cache of verified Basic
//! credentials.
//!
//! A Basic password is checked with argon2 once; a success is remembered for
//! `security.auth_cache_ttl_secs` under a SHA-256 of (process salt, user id, stored hash,
//! password). The stored hash is part of the key, so a password change misses the cache at once.

use std::future::{ready, Ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorCode};
use super::State;
use crate::secrets;

/// Entries kept at most; past this, expired entries are swept and, if still full, all dropped.
const CACHE_CAPACITY: usize = 10_000;

pub struct AuthCache {
    entries: DashMap<[u8; 32], Instant>,
    salt: [u8; 32],
    ttl: Duration,
    /// argon2 verifications run so far (for the closing measurement and tests).
    verifications: AtomicU64,
    /// A hash to verify against when the user does not exist, so that both cases cost the same.
    dummy_hash: String,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        let mut salt = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self {
            entries: DashMap::new(),
            salt,
            ttl,
            verifications: AtomicU64::new(0),
            dummy_hash: secrets::hash_password(&secrets::generate_password()),
        }
    }

    /// How many argon2 verifications this process has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    fn key(&self, user_id: i32, stored_hash: &str, password: &SecretString) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(user_id.to_be_bytes());
        h.update((stored_hash.len() as u64).to_be_bytes());
        h.update(stored_hash.as_bytes());
        h.update(password.expose_secret().as_bytes());
        h.finalize().into()
    }

    fn hit(&self, key: &[u8; 32]) -> bool {
        // Copy the expiry out first: removing while holding the read guard would deadlock.
        let expiry = self.entries.get(key).map(|entry| *entry);
        match expiry {
            Some(expiry) if expiry > Instant::now() => true,
            Some(_) => {
                self.entries.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: [u8; 32]) {
        if self.entries.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            self.entries.retain(|_, expiry| *expiry > now);
            if self.entries.len() >= CACHE_CAPACITY {
                self.entries.clear();
            }
        }
        self.entries.insert(key, Instant::now() + self.ttl);
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: i32,
    pub username: String,
    pub admin: bool,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.admin {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::AdminRequired,
                "this route is for admins only",
            ))
        }
    }
}

/// The caller, who must be an admin (403 `admin_required` otherwise).
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

enum Credentials {
    Basic {
        username: String,
        password: SecretString,
    },
    Token(SecretString),
}

fn credentials(req: &HttpRequest) -> Result<Credentials, ApiError> {
    let invalid = |why: &str| ApiError::new(ErrorCode::InvalidCredentials, why.to_string());
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| invalid("the Authorization header is not readable text"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = B64
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| invalid("the Basic credentials are not valid base64 text"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("the Basic credentials have no ':' separator"))?;
            // Sqlify-style API keys: `curl -u "TOKEN:"`, the token as the user name and no
            // password. No user has an empty password (they have at least 8 characters).
            if password.is_empty() && !username.is_empty() {
                return Ok(Credentials::Token(SecretString::from(username.to_string())));
            }
            return Ok(Credentials::Basic {
                username: username.to_string(),
                password: SecretString::from(password.to_string()),
            });
        }
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Ok(Credentials::Token(SecretString::from(rest.to_string())));
        }
        return Err(invalid(
            "the Authorization header must be Basic or Bearer credentials",
        ));
    }
    if let Some(value) = req.headers().get("x-api-key") {
        let token = value
            .to_str()
            .map_err(|_| invalid("the X-API-Key header is not readable text"))?
            .trim();
        if !token.is_empty() {
            return Ok(Credentials::Token(SecretString::from(token.to_string())));
        }
    }
    Err(ApiError::new(
        ErrorCode::AuthenticationRequired,
        "send Basic credentials, a Bearer token or an X-API-Key header",
    ))
}

async fn authenticate(state: State, creds: Credentials) -> Result<Caller, ApiError> {
    let wrong = || {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the username, password or token is not valid",
        )
    };
    match creds {
        Credentials::Token(token) => {
            let hash = secrets::token_hash(token.expose_secret());
            let (token, user) = state
                .store
                .find_token_user(&hash)
                .await?
                .ok_or_else(wrong)?;
            if let Some(at) = token.expires_at.filter(|at| *at <= chrono::Utc::now()) {
                return Err(ApiError::new(
                    ErrorCode::TokenExpired,
                    format!(
                        "the token {:?} expired at {}; create a new one",
                        token.name,
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                ));
            }
            if let Err(e) = state.store.touch_token(&token).await {
                tracing::warn!(error = %e, "Could not record token use.");
            }
            Ok(Caller {
                id: user.id,
                username: user.username,
                admin: user.admin,
            })
        }
        Credentials::Basic { username, password } => {
            let user = state.store.find_user_by_username(&username).await?;
            let Some(user) = user else {
                // Same cost as a real check, so that timing does not reveal which names exist.
                let dummy = state.auth.dummy_hash.clone();
                super::blocking(move || secrets::verify_password(&password, &dummy)).await?;
                state.auth.verifications.fetch_add(1, Ordering::Relaxed);
                return Err(wrong());
            };
            let key = state.auth.key(user.id, &user.password_hash, &password);
            if !state.auth.hit(&key) {
                let hash = user.password_hash.clone();
                let ok =
                    super::blocking(move || secrets::verify_password(&password, &hash)).await?;
                state.auth.verifications.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    return Err(wrong());
                }
                state.auth.remember(key);
            }
            Ok(Caller {
                id: user.id,
                username: user.username,
                admin: user.admin,
            })
        }
    }
}

/// Middleware on `/api/v1`: authenticates every request before any body is read, so that a
/// request without valid credentials gets 401 whatever else is wrong with it. The caller is
/// left in the request's extensions for the `Caller` and `Admin` extractors.
pub async fn require_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<State>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let api = &state.settings.api;
    if (api.public_docs && req.path() == "/api/v1/openapi.json")
        || (api.metrics_public && req.path() == "/metrics")
    {
        return next.call(req).await;
    }
    let creds = credentials(req.request())?;
    let caller = authenticate(state, creds).await?;
    tracing::Span::current().record("user", caller.username.as_str());
    req.extensions_mut().insert(caller);
    next.call(req).await
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .ok_or_else(|| ApiError::internal("route is outside the authenticated scope")),
        )
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(
            Caller::from_request(req, payload)
                .into_inner()
                .and_then(|caller| {
                    caller.require_admin()?;
                    Ok(Admin(caller))
                }),
        )
    }
}
