//! OpenID Connect Discovery 1.0 and RFC 8414 authorization server metadata:
//! with only the issuer configured, where its JWKS and its introspection
//! endpoint are.
//!
//! Run once at init. The document is trusted only if it names exactly the
//! configured issuer (OIDC Discovery §4.3, RFC 8414 §3.3), and the URLs it
//! gives must pass the same checks as configured ones (https; http only on
//! loopback).

use reqwest::Url;
use serde::Deserialize;

use crate::config::{self, ConfigError};
use crate::http::{self, FetchError};

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("fetching {url}: {source}")]
    Fetch { url: String, source: FetchError },
    #[error("the discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document has no {0}")]
    Missing(&'static str),
    #[error("the discovery document's {0}")]
    BadUrl(ConfigError),
}

#[derive(Deserialize)]
struct Document {
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub jwks_uri: Option<Url>,
    pub introspection_endpoint: Option<Url>,
}

/// The places the metadata may be, in order: OpenID Connect's (issuer +
/// `/.well-known/openid-configuration`), then RFC 8414's (the well-known
/// segment inserted between host and path).
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Ok(url) = Url::parse(issuer) {
        let origin = url.origin().ascii_serialization();
        let path = url.path().trim_end_matches('/');
        urls.push(format!("{origin}/.well-known/oauth-authorization-server{path}"));
    }
    urls
}

/// Fetches the issuer's metadata and returns the endpoints it names.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, DiscoveryError> {
    let urls = metadata_urls(issuer);
    let mut last_error = None;
    for url in &urls {
        match http::json::<Document>(http.get(url.as_str())).await {
            Ok(document) => return endpoints(document, issuer),
            // Not there: try the other well-known place.
            Err(FetchError::Status(404)) => last_error = Some((url, FetchError::Status(404))),
            Err(source) => return Err(DiscoveryError::Fetch { url: url.clone(), source }),
        }
    }
    let (url, source) = last_error.expect("at least one metadata URL");
    Err(DiscoveryError::Fetch { url: url.clone(), source })
}

fn endpoints(document: Document, issuer: &str) -> Result<Endpoints, DiscoveryError> {
    if document.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch { expected: issuer.to_owned(), found: document.issuer });
    }
    let url = |name: &'static str, value: Option<String>| {
        value.map(|text| config::parse_identity_provider_url(name, &text).map_err(DiscoveryError::BadUrl)).transpose()
    };
    Ok(Endpoints {
        jwks_uri: url("jwks_uri", document.jwks_uri)?,
        introspection_endpoint: url("introspection_endpoint", document.introspection_endpoint)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_places() {
        assert_eq!(
            metadata_urls("https://idp.example.com/"),
            [
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(
            metadata_urls("https://idp.example.com/realms/a"),
            [
                "https://idp.example.com/realms/a/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/a"
            ]
        );
    }

    #[test]
    fn the_document_must_name_the_configured_issuer_exactly() {
        let document = |issuer: &str| Document {
            issuer: issuer.into(),
            jwks_uri: Some("https://idp.example.com/jwks".into()),
            introspection_endpoint: None,
        };
        assert!(endpoints(document("https://idp.example.com"), "https://idp.example.com").is_ok());
        for other in ["https://idp.example.com/", "https://IDP.example.com", "https://evil.example.com"] {
            assert!(
                matches!(
                    endpoints(document(other), "https://idp.example.com"),
                    Err(DiscoveryError::IssuerMismatch { .. })
                ),
                "{other}"
            );
        }
        let insecure = Document { jwks_uri: Some("http://idp.example.com/jwks".into()), ..document("https://i") };
        assert!(matches!(endpoints(insecure, "https://i"), Err(DiscoveryError::BadUrl(_))));
    }
}
