//! An OpenID provider on 127.0.0.1 that issues both kinds of access token,
//! as many real ones do: JWTs signed with the fixture keys, and opaque tokens
//! it answers for at its RFC 7662 introspection endpoint. It publishes its
//! metadata (OpenID Connect Discovery, or only RFC 8414), its JWKS (which a
//! test can change, slow down or break), and records every request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::server::{AsyncHandler, Recorded, Reply, TestServer};

/// Where the provider publishes its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// `{issuer}/.well-known/openid-configuration`.
    OpenIdConnect,
    /// Only `/.well-known/oauth-authorization-server{path}` (RFC 8414).
    OAuthOnly,
}

/// What the JWKS endpoint does.
#[derive(Clone)]
pub enum JwksBehaviour {
    Serve {
        document: Value,
        cache_control: Option<String>,
    },
    Fail(u16),
    /// Hold the request until [`Provider::release_jwks`].
    Hang,
}

struct State {
    issuer: String,
    /// The issuer the metadata claims (normally `issuer`).
    claimed_issuer: Option<String>,
    jwks: JwksBehaviour,
    /// Opaque token → introspection answer. Other tokens (its JWTs among
    /// them) get 400 `unsupported_token_type`, as some providers answer.
    opaque: BTreeMap<String, Value>,
}

pub struct Provider {
    pub server: TestServer,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
}

impl Provider {
    /// A provider whose issuer is `{base}{issuer_path}` (`""` or `/realms/a`).
    pub async fn start(metadata: Metadata, issuer_path: &'static str) -> Provider {
        let state = Arc::new(Mutex::new(State {
            issuer: String::new(),
            claimed_issuer: None,
            jwks: JwksBehaviour::Serve { document: crate::fixture::published_jwks(), cache_control: None },
            opaque: BTreeMap::new(),
        }));
        let release = Arc::new(Notify::new());
        let (handler_state, handler_release) = (state.clone(), release.clone());
        let handler: Arc<AsyncHandler> = Arc::new(move |request: Recorded| {
            let state = handler_state.clone();
            let release = handler_release.clone();
            Box::pin(async move { answer(&request, &state, &release, metadata, issuer_path).await })
        });
        let server = TestServer::start_async(handler).await;
        state.lock().expect("state").issuer = format!("http://127.0.0.1:{}{issuer_path}", server.addr.port());
        Provider { server, state, release }
    }

    pub fn issuer(&self) -> String {
        self.state.lock().expect("state").issuer.clone()
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Makes the metadata name another issuer (a mix-up attack).
    pub fn claim_issuer(&self, issuer: &str) {
        self.state.lock().expect("state").claimed_issuer = Some(issuer.to_owned());
    }

    pub fn set_jwks(&self, behaviour: JwksBehaviour) {
        self.state.lock().expect("state").jwks = behaviour;
    }

    pub fn release_jwks(&self) {
        self.release.notify_waiters();
    }

    /// Issues an opaque token: introspection will answer `answer` for it.
    pub fn issue_opaque(&self, token: &str, answer: Value) {
        self.state.lock().expect("state").opaque.insert(token.to_owned(), answer);
    }

    /// How many requests reached `path`.
    pub fn requests_to(&self, path: &str) -> usize {
        self.server.requests().iter().filter(|r| r.path.split('?').next() == Some(path)).count()
    }
}

async fn answer(
    request: &Recorded,
    state: &Mutex<State>,
    release: &Notify,
    metadata: Metadata,
    issuer_path: &str,
) -> Reply {
    let path = request.path.split('?').next().unwrap_or_default().to_owned();
    let oidc = format!("{issuer_path}/.well-known/openid-configuration");
    let oauth = format!("/.well-known/oauth-authorization-server{issuer_path}");
    if (path == oidc && metadata == Metadata::OpenIdConnect) || path == oauth {
        let state = state.lock().expect("state");
        let base = state.issuer.trim_end_matches(issuer_path).to_owned();
        return Reply::json(json!({
            "issuer": state.claimed_issuer.clone().unwrap_or_else(|| state.issuer.clone()),
            "jwks_uri": format!("{base}/jwks"),
            "introspection_endpoint": format!("{base}/introspect"),
            "token_endpoint": format!("{base}/token"),
        }));
    }
    match path.as_str() {
        "/jwks" => {
            let behaviour = state.lock().expect("state").jwks.clone();
            match behaviour {
                JwksBehaviour::Serve { document, cache_control } => {
                    let reply = Reply::json(document);
                    match cache_control {
                        Some(value) => reply.header("cache-control", value),
                        None => reply,
                    }
                }
                JwksBehaviour::Fail(status) => Reply::status(status, "unavailable"),
                JwksBehaviour::Hang => {
                    // Bounded, so a forgotten release cannot hang a test run.
                    let _ = tokio::time::timeout(Duration::from_secs(10), release.notified()).await;
                    Reply::status(503, "released")
                }
            }
        }
        "/introspect" => {
            let token = request
                .body
                .split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(|t| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            let state = state.lock().expect("state");
            match state.opaque.get(&token) {
                Some(answer) => Reply::json(answer),
                None => Reply::status(400, r#"{"error":"unsupported_token_type"}"#)
                    .header("content-type", "application/json"),
            }
        }
        _ => Reply::status(404, "not found"),
    }
}
