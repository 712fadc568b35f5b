//! [`TokenInfo`]: what a validated token says, whichever way it was validated.
//!
//! A JWT's claims, an RFC 7662 introspection response and an Authlete answer
//! all end up here, so scope checks, binding and the answer's context are
//! written once. The standard members are moved out of the claim set (not
//! copied); what remains stays available to custom claim checks.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenInfo {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub exp: Option<u64>,
    pub iss: Option<String>,
    pub aud: Vec<String>,
    /// What the token is bound to (`cnf`, RFC 7800).
    pub cnf: Confirmation,
    /// The other claims (JWT payload or introspection response), for custom checks.
    pub claims: Map<String, Value>,
}

/// The confirmation (`cnf`) a token carries: the key or certificate its
/// holder must prove possession of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 8705: `x5t#S256`, the SHA-256 thumbprint of the client certificate.
    pub x5t_s256: Option<String>,
    /// RFC 9449: `jkt`, the JWK thumbprint of the DPoP key.
    pub jkt: Option<String>,
    /// A confirmation this authorizer cannot verify (another member, or a
    /// `cnf` that is not an object of strings). Such a token is refused: it is
    /// bound to something, and we cannot tell whether the caller holds it.
    pub unverifiable: Option<String>,
}

impl Confirmation {
    fn from_claim(cnf: Option<Value>) -> Confirmation {
        let mut confirmation = Confirmation::default();
        match cnf {
            None => {}
            Some(Value::Object(members)) => {
                for (name, value) in members {
                    match (name.as_str(), value) {
                        ("x5t#S256", Value::String(thumbprint)) => confirmation.x5t_s256 = Some(thumbprint),
                        ("jkt", Value::String(thumbprint)) => confirmation.jkt = Some(thumbprint),
                        _ => confirmation.unverifiable = Some(format!("cnf.{name}")),
                    }
                }
            }
            Some(_) => confirmation.unverifiable = Some("cnf".to_owned()),
        }
        confirmation
    }
}

impl TokenInfo {
    /// Reads the standard members of a JWT payload or RFC 7662 response.
    /// Scopes come from `scope` (RFC 9068 / 7662, space-separated) or, for
    /// identity providers that use it, `scp` (array or string).
    pub fn from_claims(mut claims: Map<String, Value>) -> TokenInfo {
        let mut string = |name: &str| match claims.remove(name) {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                // Not ours to interpret: leave it for custom checks.
                claims.insert(name.to_owned(), other);
                None
            }
            None => None,
        };
        let sub = string("sub");
        let client_id = string("client_id").or_else(|| string("azp")).or_else(|| string("cid"));
        let iss = string("iss");
        let strings = |value: Option<Value>| -> Vec<String> {
            match value {
                Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                Some(Value::Array(items)) => {
                    items.into_iter().filter_map(|v| if let Value::String(s) = v { Some(s) } else { None }).collect()
                }
                _ => Vec::new(),
            }
        };
        let scopes = match claims.remove("scope") {
            Some(scope) => strings(Some(scope)),
            None => strings(claims.remove("scp")),
        };
        TokenInfo {
            sub,
            client_id,
            scopes,
            exp: claims.get("exp").and_then(Value::as_u64),
            iss,
            aud: strings(claims.remove("aud")),
            cnf: Confirmation::from_claim(claims.remove("cnf")),
            claims,
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `sub`, else `client_id` (a client-credentials token has no user).
    pub fn principal(&self) -> Option<&str> {
        self.sub.as_deref().or(self.client_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(value: Value) -> TokenInfo {
        let Value::Object(map) = value else { unreachable!() };
        TokenInfo::from_claims(map)
    }

    #[test]
    fn reads_standard_members() {
        let t = info(
            json!({"sub":"u1","client_id":"c1","scope":"a  b","exp":5,"iss":"i","aud":["x","y"],"cnf":{"x5t#S256":"T"},"tenant":"acme"}),
        );
        assert_eq!((t.sub.as_deref(), t.client_id.as_deref()), (Some("u1"), Some("c1")));
        assert_eq!(t.scopes, ["a", "b"]);
        assert_eq!(
            (t.exp, t.aud.clone(), t.cnf.x5t_s256.as_deref()),
            (Some(5), vec!["x".into(), "y".into()], Some("T"))
        );
        assert_eq!(t.principal(), Some("u1"));
        assert_eq!(t.claims.get("tenant"), Some(&json!("acme")), "other claims stay for custom checks");
    }

    #[test]
    fn scp_arrays_and_fallbacks() {
        let t = info(json!({"scp":["r","w"],"azp":"c2","aud":"one"}));
        assert_eq!(t.scopes, ["r", "w"]);
        assert_eq!(t.principal(), Some("c2"));
        assert_eq!(t.aud, ["one"]);
        assert!(info(json!({"exp": -1})).exp.is_none());
        assert!(info(json!({"exp": "1"})).exp.is_none());
        assert_eq!(info(json!({"sub": 7})).sub, None);
    }

    #[test]
    fn confirmations() {
        let none = info(json!({}));
        assert_eq!(none.cnf, Confirmation::default());
        let dpop = info(json!({"cnf": {"jkt": "K"}}));
        assert_eq!((dpop.cnf.jkt.as_deref(), dpop.cnf.unverifiable.as_deref()), (Some("K"), None));
        for cnf in [json!({"jwk": {}}), json!({"x5t#S256": 5}), json!("T"), json!(["T"])] {
            assert!(info(json!({"cnf": cnf})).cnf.unverifiable.is_some(), "{cnf}");
        }
    }
}
