//! The authorizer event, as API Gateway sends it, and the credentials in it.
//!
//! One type reads all three payloads API Gateway can send: REST API REQUEST
//! (v1), REST API TOKEN, and HTTP API REQUEST (v2). Only what the decision
//! needs is kept: of the headers, only the `Authorization` and `DPoP` values
//! (every other header is skipped without being copied).
//!
//! Credentials follow RFC 6750 §2.1 and RFC 9449 §7.1: header name and scheme
//! are case-insensitive; more than one Authorization value, or a value that is
//! not `Bearer <token68>` or `DPoP <token68>`, is refused.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerEvent {
    /// `TOKEN` or `REQUEST`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// REST API (v1 REQUEST and TOKEN).
    #[serde(default)]
    pub method_arn: Option<String>,
    /// HTTP API (v2).
    #[serde(default)]
    pub route_arn: Option<String>,
    /// TOKEN payload: the value of the identity source header.
    #[serde(default)]
    pub authorization_token: Option<String>,
    /// REST API v1: the request's HTTP method.
    #[serde(default)]
    pub http_method: Option<String>,
    #[serde(default)]
    pub headers: CredentialHeaders,
    #[serde(default)]
    pub multi_value_headers: CredentialHeaders,
    #[serde(default)]
    pub request_context: Option<RequestContext>,
}

/// The TOKEN payload's `authorizationToken` is left out: tokens do not belong in logs.
impl fmt::Debug for AuthorizerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizerEvent")
            .field("kind", &self.kind)
            .field("method_arn", &self.method_arn())
            .field("http_method", &self.http_method())
            .field("headers", &self.headers)
            .field("multi_value_headers", &self.multi_value_headers)
            .field("request_context", &self.request_context)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// API Gateway's id of the request (`x-amzn-RequestId`, `$context.requestId`).
    #[serde(default)]
    pub request_id: Option<String>,
    /// The host the client called (the custom domain, or the execute-api host).
    #[serde(default)]
    pub domain_name: Option<String>,
    /// v1: the path the client called, base path (custom domain) or stage
    /// (execute-api) included, which the event's top-level `path` lacks.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub http_method: Option<String>,
    /// v2: method and path.
    #[serde(default)]
    pub http: Option<HttpDescription>,
    /// v1: `requestContext.identity.clientCert`.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// v2: `requestContext.authentication.clientCert`.
    #[serde(default)]
    pub authentication: Option<Identity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpDescription {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default)]
    pub client_cert: Option<ClientCert>,
}

/// The client certificate of an mTLS connection, as API Gateway reports it.
#[derive(Clone, Default, Deserialize)]
pub struct ClientCert {
    #[serde(rename = "clientCertPem")]
    pub pem: String,
    #[serde(rename = "subjectDN", default)]
    pub subject_dn: Option<String>,
    #[serde(rename = "issuerDN", default)]
    pub issuer_dn: Option<String>,
    #[serde(rename = "serialNumber", default)]
    pub serial_number: Option<String>,
}

/// The PEM is left out: certificates do not belong in logs.
impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("subject_dn", &self.subject_dn)
            .field("issuer_dn", &self.issuer_dn)
            .field("serial_number", &self.serial_number)
            .finish_non_exhaustive()
    }
}

/// The authentication scheme of the Authorization header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449: the token comes with a proof of possession in the `DPoP` header.
    Dpop,
}

/// The access token of a request and how it was presented.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
}

/// The token is left out: tokens do not belong in logs.
impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

/// An event as the Lambda runtime hands it over, parsed in one pass. A
/// payload that is not an authorizer event is `Unreadable`, never an error:
/// serde's own error message may quote the offending value, and the runtime
/// would log it (a token, a certificate).
#[derive(Debug)]
pub enum Incoming {
    Event(Box<AuthorizerEvent>),
    Unreadable,
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The inner error is dropped on purpose (see above). What is left
        // unread then fails the runtime's own check for trailing input, whose
        // message names a position only.
        Ok(AuthorizerEvent::deserialize(deserializer).map_or(Incoming::Unreadable, |e| Incoming::Event(Box::new(e))))
    }
}

impl AuthorizerEvent {
    /// The ARN the policy must cover: `methodArn` (REST) or `routeArn` (HTTP API).
    pub fn method_arn(&self) -> Option<&str> {
        self.method_arn.as_deref().or(self.route_arn.as_deref())
    }

    pub fn client_cert(&self) -> Option<&ClientCert> {
        let context = self.request_context.as_ref()?;
        fn cert_of(identity: &Option<Identity>) -> Option<&ClientCert> {
            identity.as_ref().and_then(|i| i.client_cert.as_ref())
        }
        cert_of(&context.identity).or_else(|| cert_of(&context.authentication))
    }

    /// The access token and its scheme (RFC 6750 §2.1, RFC 9449 §7.1).
    pub fn credentials(&self) -> Result<Credentials<'_>, CredentialsError> {
        let header = if self.kind.as_deref() == Some("TOKEN") {
            self.authorization_token.as_deref().ok_or(CredentialsError::Missing)?
        } else {
            self.header_values(|h| &h.authorization)?.ok_or(CredentialsError::Missing)?
        };
        parse_authorization(header)
    }

    /// The `DPoP` proof header, if there is exactly one (RFC 9449 §4.3
    /// refuses a request with several).
    pub fn dpop_proof(&self) -> Result<Option<&str>, CredentialsError> {
        self.header_values(|h| &h.dpop)
    }

    /// The request's HTTP method.
    pub fn http_method(&self) -> Option<&str> {
        let context = self.request_context.as_ref();
        self.http_method
            .as_deref()
            .or_else(|| context.and_then(|c| c.http_method.as_deref()))
            .or_else(|| context.and_then(|c| c.http.as_ref()).and_then(|h| h.method.as_deref()))
    }

    /// The URL the client called, without query (RFC 9449's `htu`): API
    /// Gateway only speaks https, on the host and path in the request context.
    pub fn request_url(&self) -> Option<String> {
        let context = self.request_context.as_ref()?;
        let authority = context.domain_name.as_deref()?;
        let path = context.path.as_deref().or_else(|| context.http.as_ref().and_then(|h| h.path.as_deref()))?;
        // API Gateway names no port (it serves 443); a local edge on another port names it.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (host, Some(port.parse::<u16>().ok()?)),
            _ => (authority, None),
        };
        // Built, not concatenated: a host that smuggles a path, a user or a
        // second port is refused, and a path with dot segments is not resolved.
        if !path.starts_with('/') || crate::arn::has_dot_segment(path) {
            return None;
        }
        let mut url = url::Url::parse("https://host.invalid/").ok()?;
        url.set_host(Some(host)).ok()?;
        url.set_port(port).ok()?;
        url.set_path(path);
        Some(url.into())
    }

    /// The one value of a header: `multiValueHeaders` holds every value API
    /// Gateway received, `headers` only the last, so the complete view wins.
    fn header_values(
        &self,
        which: impl Fn(&CredentialHeaders) -> &HeaderValues,
    ) -> Result<Option<&str>, CredentialsError> {
        let multi = which(&self.multi_value_headers);
        let values = if multi.count > 0 { multi } else { which(&self.headers) };
        match (values.count, values.first.as_deref()) {
            (0, _) | (_, None) => Ok(None),
            (1, Some(value)) => Ok(Some(value)),
            _ => Err(CredentialsError::Multiple),
        }
    }
}

/// What is wrong with the credentials before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no Authorization header")]
    Missing,
    #[error("more than one Authorization or DPoP value")]
    Multiple,
    #[error("Authorization is not `Bearer <token>` or `DPoP <token>`")]
    Malformed,
}

/// `Bearer <token68>` or `DPoP <token68>`: scheme case-insensitive, one or
/// more spaces, token68.
pub fn parse_authorization(header: &str) -> Result<Credentials<'_>, CredentialsError> {
    let (scheme, rest) = header.split_once(' ').ok_or(CredentialsError::Malformed)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(CredentialsError::Malformed);
    };
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let is_token68_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    if body.is_empty() || !body.bytes().all(is_token68_char) {
        return Err(CredentialsError::Malformed);
    }
    Ok(Credentials { scheme, token })
}

/// The credential-bearing headers of a `headers` or `multiValueHeaders` object.
#[derive(Debug, Clone, Default)]
pub struct CredentialHeaders {
    pub authorization: HeaderValues,
    pub dpop: HeaderValues,
}

/// How many values a header has (across case variants of its name), and the first one.
#[derive(Clone, Default)]
pub struct HeaderValues {
    pub count: usize,
    pub first: Option<String>,
}

/// Values are left out: they are credentials.
impl fmt::Debug for HeaderValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderValues").field("count", &self.count).finish_non_exhaustive()
    }
}

impl HeaderValues {
    fn push(&mut self, value: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(value);
        }
    }
}

impl<'de> Deserialize<'de> for CredentialHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OptionalMapVisitor)
    }
}

struct OptionalMapVisitor;

impl<'de> Visitor<'de> for OptionalMapVisitor {
    type Value = CredentialHeaders;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of header names to values, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CredentialHeaders::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(CredentialHeaders::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut headers = CredentialHeaders::default();
        while let Some(name) = map.next_key::<HeaderName>()? {
            let values = match name {
                HeaderName::Authorization => &mut headers.authorization,
                HeaderName::Dpop => &mut headers.dpop,
                HeaderName::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            match map.next_value::<OneOrMany>()? {
                OneOrMany::One(value) => values.push(value),
                OneOrMany::Many(list) => list.into_iter().for_each(|value| values.push(value)),
                OneOrMany::Null => {}
            }
        }
        Ok(headers)
    }
}

/// A header name, reduced to the ones we read, without allocating.
enum HeaderName {
    Authorization,
    Dpop,
    Other,
}

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = HeaderName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<HeaderName, E> {
                Ok(if name.eq_ignore_ascii_case("authorization") {
                    HeaderName::Authorization
                } else if name.eq_ignore_ascii_case("dpop") {
                    HeaderName::Dpop
                } else {
                    HeaderName::Other
                })
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
    Null,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> AuthorizerEvent {
        serde_json::from_str(json).unwrap()
    }

    fn token(json: &str) -> Result<(Scheme, String), CredentialsError> {
        event(json).credentials().map(|c| (c.scheme, c.token.to_owned()))
    }

    #[test]
    fn scheme_and_header_name_are_case_insensitive() {
        for json in [
            r#"{"type":"REQUEST","headers":{"Authorization":"Bearer abc.def"}}"#,
            r#"{"type":"REQUEST","headers":{"authorization":"bearer abc.def"}}"#,
            r#"{"type":"REQUEST","headers":{"AUTHORIZATION":"BEARER   abc.def"}}"#,
            r#"{"type":"REQUEST","multiValueHeaders":{"authorization":["BeArEr abc.def"]}}"#,
            r#"{"type":"TOKEN","authorizationToken":"Bearer abc.def"}"#,
        ] {
            assert_eq!(token(json), Ok((Scheme::Bearer, "abc.def".into())), "{json}");
        }
        assert_eq!(token(r#"{"headers":{"Authorization":"dpop abc.def"}}"#), Ok((Scheme::Dpop, "abc.def".into())));
    }

    #[test]
    fn more_than_one_value_is_refused() {
        for json in [
            r#"{"headers":{"Authorization":"Bearer a"},"multiValueHeaders":{"Authorization":["Bearer a","Bearer b"]}}"#,
            r#"{"headers":{"Authorization":"Bearer a","authorization":"Bearer b"}}"#,
        ] {
            assert_eq!(token(json), Err(CredentialsError::Multiple), "{json}");
        }
        let proofs = event(r#"{"multiValueHeaders":{"DPoP":["a.b.c"],"dpop":["d.e.f"]}}"#);
        assert_eq!(proofs.dpop_proof(), Err(CredentialsError::Multiple));
        assert_eq!(event(r#"{"headers":{"DPoP":"a.b.c"}}"#).dpop_proof(), Ok(Some("a.b.c")));
        assert_eq!(event("{}").dpop_proof(), Ok(None));
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(token(r#"{"headers":{"Host":"x"}}"#), Err(CredentialsError::Missing));
        assert_eq!(token(r#"{"headers":null,"multiValueHeaders":null}"#), Err(CredentialsError::Missing));
        assert_eq!(token(r#"{"type":"TOKEN"}"#), Err(CredentialsError::Missing));
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ===",
            "Bearer é",
            "DPoP",
            "DPoPabc",
        ] {
            assert_eq!(parse_authorization(value), Err(CredentialsError::Malformed), "{value:?}");
        }
        assert_eq!(parse_authorization("Bearer abc==").map(|c| c.token), Ok("abc=="));
    }

    #[test]
    fn certificate_from_v1_and_v2_payloads() {
        let v1 = event(
            r#"{"requestContext":{"identity":{"clientCert":{"clientCertPem":"P1","subjectDN":"CN=a","validity":{"notBefore":"x","notAfter":"y"}}}}}"#,
        );
        assert_eq!(v1.client_cert().map(|c| c.pem.as_str()), Some("P1"));
        assert_eq!(v1.client_cert().and_then(|c| c.subject_dn.as_deref()), Some("CN=a"));
        assert!(!format!("{v1:?}").contains("P1"), "the PEM stays out of Debug output");
        let token = event(r#"{"type":"TOKEN","authorizationToken":"Bearer s3cret"}"#);
        assert!(!format!("{token:?}").contains("s3cret"), "the token stays out of Debug output");
        let v2 = event(
            r#"{"version":"2.0","routeArn":"arn:x","requestContext":{"authentication":{"clientCert":{"clientCertPem":"P2"}}}}"#,
        );
        assert_eq!(v2.client_cert().map(|c| c.pem.as_str()), Some("P2"));
        assert_eq!(v2.method_arn(), Some("arn:x"));
        assert!(event("{}").client_cert().is_none());
    }

    #[test]
    fn method_and_url_of_v1_and_v2_payloads() {
        let v1 = event(
            r#"{"httpMethod":"GET","path":"/pets/1","requestContext":{"domainName":"api.example.com","path":"/v1/pets/1"}}"#,
        );
        assert_eq!(v1.http_method(), Some("GET"));
        assert_eq!(v1.request_url().as_deref(), Some("https://api.example.com/v1/pets/1"));
        let v2 = event(r#"{"requestContext":{"domainName":"h.example.com","http":{"method":"POST","path":"/a"}}}"#);
        assert_eq!(v2.http_method(), Some("POST"));
        assert_eq!(v2.request_url().as_deref(), Some("https://h.example.com/a"));
        assert_eq!(event("{}").request_url(), None);
        let url = |domain: &str, path: &str| {
            let json = serde_json::json!({"requestContext": {"domainName": domain, "path": path}});
            event(&json.to_string()).request_url()
        };
        assert_eq!(url("api.example.com:8443", "/v1/a").as_deref(), Some("https://api.example.com:8443/v1/a"));
        assert_eq!(url("api.example.com:443", "/v1/a").as_deref(), Some("https://api.example.com/v1/a"));
        assert_eq!(url("API.Example.com", "/a%20b").as_deref(), Some("https://api.example.com/a%20b"));
        for (domain, path) in [
            ("evil.example/x", "/a"),
            ("user@api.example.com", "/a"),
            ("api.example.com:99999", "/a"),
            ("api.example.com", "/v1/../admin"),
            ("api.example.com", "/v1/%2e%2e/admin"),
            ("api.example.com", "v1/a"),
        ] {
            assert_eq!(url(domain, path), None, "{domain} {path}");
        }
    }
}
