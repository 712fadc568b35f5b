//! The authorizer event, as API Gateway sends it, and the bearer token in it.
//!
//! One type reads all three payloads API Gateway can send: REST API REQUEST
//! (v1), REST API TOKEN, and HTTP API REQUEST (v2). Only what the decision
//! needs is kept: of the headers, only the Authorization values (every other
//! header is skipped without being copied).
//!
//! Token extraction follows RFC 6750 §2.1: header name and scheme are
//! case-insensitive; more than one Authorization value, or a value that is
//! not `Bearer <token68>`, is refused.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Default, Deserialize)]
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
    #[serde(default)]
    pub headers: AuthorizationValues,
    #[serde(default)]
    pub multi_value_headers: AuthorizationValues,
    #[serde(default)]
    pub request_context: Option<RequestContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default)]
    pub request_id: Option<String>,
    /// v1: `requestContext.identity.clientCert`.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// v2: `requestContext.authentication.clientCert`.
    #[serde(default)]
    pub authentication: Option<Identity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default)]
    pub client_cert: Option<ClientCert>,
}

/// The client certificate of an mTLS connection, as API Gateway reports it.
#[derive(Debug, Clone, Default, Deserialize)]
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

    /// The bearer token, per RFC 6750 §2.1.
    pub fn bearer_token(&self) -> Result<&str, CredentialsError> {
        let header = if self.kind.as_deref() == Some("TOKEN") {
            self.authorization_token.as_deref().ok_or(CredentialsError::Missing)?
        } else {
            // multiValueHeaders holds every value API Gateway received;
            // headers only the last one. Prefer the complete view.
            let values = if self.multi_value_headers.count > 0 { &self.multi_value_headers } else { &self.headers };
            match (values.count, values.first.as_deref()) {
                (0, _) | (_, None) => return Err(CredentialsError::Missing),
                (1, Some(value)) => value,
                _ => return Err(CredentialsError::Multiple),
            }
        };
        parse_bearer(header)
    }
}

/// What is wrong with the credentials before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no Authorization header")]
    Missing,
    #[error("more than one Authorization value")]
    Multiple,
    #[error("Authorization is not `Bearer <token>`")]
    Malformed,
}

/// `Bearer <token68>`: scheme case-insensitive, one or more spaces, token68.
pub fn parse_bearer(header: &str) -> Result<&str, CredentialsError> {
    let (scheme, rest) = header.split_once(' ').ok_or(CredentialsError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialsError::Malformed);
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let is_token68_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
    if body.is_empty() || !body.bytes().all(is_token68_char) {
        return Err(CredentialsError::Malformed);
    }
    Ok(token)
}

/// The Authorization values of a `headers` or `multiValueHeaders` object:
/// how many there are (across case variants of the name), and the first one.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationValues {
    pub count: usize,
    pub first: Option<String>,
}

impl<'de> Deserialize<'de> for AuthorizationValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OptionalMapVisitor)
    }
}

struct OptionalMapVisitor;

impl<'de> Visitor<'de> for OptionalMapVisitor {
    type Value = AuthorizationValues;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of header names to values, or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AuthorizationValues::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(AuthorizationValues::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = AuthorizationValues::default();
        while let Some(HeaderName(is_authorization)) = map.next_key()? {
            if !is_authorization {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            match map.next_value::<OneOrMany>()? {
                OneOrMany::One(value) => values.push(value),
                OneOrMany::Many(list) => list.into_iter().for_each(|value| values.push(value)),
                OneOrMany::Null => {}
            }
        }
        Ok(values)
    }
}

impl AuthorizationValues {
    fn push(&mut self, value: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(value);
        }
    }
}

/// A header name, reduced to "is it Authorization?" without allocating.
struct HeaderName(bool);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = HeaderName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a header name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<HeaderName, E> {
                Ok(HeaderName(name.eq_ignore_ascii_case("authorization")))
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

    #[test]
    fn scheme_and_header_name_are_case_insensitive() {
        for json in [
            r#"{"type":"REQUEST","headers":{"Authorization":"Bearer abc.def"}}"#,
            r#"{"type":"REQUEST","headers":{"authorization":"bearer abc.def"}}"#,
            r#"{"type":"REQUEST","headers":{"AUTHORIZATION":"BEARER   abc.def"}}"#,
            r#"{"type":"REQUEST","multiValueHeaders":{"authorization":["BeArEr abc.def"]}}"#,
            r#"{"type":"TOKEN","authorizationToken":"Bearer abc.def"}"#,
        ] {
            assert_eq!(event(json).bearer_token(), Ok("abc.def"), "{json}");
        }
    }

    #[test]
    fn more_than_one_value_is_refused() {
        for json in [
            r#"{"headers":{"Authorization":"Bearer a"},"multiValueHeaders":{"Authorization":["Bearer a","Bearer b"]}}"#,
            r#"{"headers":{"Authorization":"Bearer a","authorization":"Bearer b"}}"#,
        ] {
            assert_eq!(event(json).bearer_token(), Err(CredentialsError::Multiple), "{json}");
        }
    }

    #[test]
    fn missing_and_malformed() {
        assert_eq!(event(r#"{"headers":{"Host":"x"}}"#).bearer_token(), Err(CredentialsError::Missing));
        assert_eq!(
            event(r#"{"headers":null,"multiValueHeaders":null}"#).bearer_token(),
            Err(CredentialsError::Missing)
        );
        assert_eq!(event(r#"{"type":"TOKEN"}"#).bearer_token(), Err(CredentialsError::Missing));
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ===",
            "Bearer é",
        ] {
            assert_eq!(parse_bearer(value), Err(CredentialsError::Malformed), "{value:?}");
        }
        assert_eq!(parse_bearer("Bearer abc=="), Ok("abc=="));
    }

    #[test]
    fn certificate_from_v1_and_v2_payloads() {
        let v1 = event(
            r#"{"requestContext":{"identity":{"clientCert":{"clientCertPem":"P1","subjectDN":"CN=a","validity":{"notBefore":"x","notAfter":"y"}}}}}"#,
        );
        assert_eq!(v1.client_cert().map(|c| c.pem.as_str()), Some("P1"));
        assert_eq!(v1.client_cert().and_then(|c| c.subject_dn.as_deref()), Some("CN=a"));
        let v2 = event(
            r#"{"version":"2.0","routeArn":"arn:x","requestContext":{"authentication":{"clientCert":{"clientCertPem":"P2"}}}}"#,
        );
        assert_eq!(v2.client_cert().map(|c| c.pem.as_str()), Some("P2"));
        assert_eq!(v2.method_arn(), Some("arn:x"));
        assert!(event("{}").client_cert().is_none());
    }
}
