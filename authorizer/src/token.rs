//! [`TokenInfo`]: what a validated token says, whichever way it was validated.
//!
//! A JWT's claims, an RFC 7662 introspection response and an Authlete answer
//! all end up here, so scope checks, binding and the answer's context are
//! written once. The full claim set stays available to custom claim checks.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenInfo {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub exp: Option<u64>,
    pub iss: Option<String>,
    pub aud: Vec<String>,
    /// RFC 8705 `cnf.x5t#S256`.
    pub cnf_x5t_s256: Option<String>,
    /// Every claim (JWT payload or introspection response), for custom checks.
    pub claims: Map<String, Value>,
}

impl TokenInfo {
    /// Reads the standard members of a JWT payload or RFC 7662 response.
    /// Scopes come from `scope` (RFC 9068 / 7662, space-separated) or, for
    /// identity providers that use it, `scp` (array or string).
    pub fn from_claims(claims: Map<String, Value>) -> TokenInfo {
        let string = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let strings = |value: Option<&Value>| -> Vec<String> {
            match value {
                Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            }
        };
        let scopes = match claims.get("scope") {
            Some(scope) => strings(Some(scope)),
            None => strings(claims.get("scp")),
        };
        let cnf_x5t_s256 =
            claims.get("cnf").and_then(|cnf| cnf.get("x5t#S256")).and_then(Value::as_str).map(str::to_owned);
        TokenInfo {
            sub: string("sub"),
            client_id: string("client_id").or_else(|| string("azp")).or_else(|| string("cid")),
            scopes,
            exp: claims.get("exp").and_then(Value::as_u64),
            iss: string("iss"),
            aud: strings(claims.get("aud")),
            cnf_x5t_s256,
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
            json!({"sub":"u1","client_id":"c1","scope":"a  b","exp":5,"iss":"i","aud":["x","y"],"cnf":{"x5t#S256":"T"}}),
        );
        assert_eq!((t.sub.as_deref(), t.client_id.as_deref()), (Some("u1"), Some("c1")));
        assert_eq!(t.scopes, ["a", "b"]);
        assert_eq!(
            (t.exp, t.aud.clone(), t.cnf_x5t_s256.as_deref()),
            (Some(5), vec!["x".into(), "y".into()], Some("T"))
        );
        assert_eq!(t.principal(), Some("u1"));
    }

    #[test]
    fn scp_arrays_and_fallbacks() {
        let t = info(json!({"scp":["r","w"],"azp":"c2","aud":"one"}));
        assert_eq!(t.scopes, ["r", "w"]);
        assert_eq!(t.principal(), Some("c2"));
        assert_eq!(t.aud, ["one"]);
        assert!(info(json!({"exp": -1})).exp.is_none());
        assert!(info(json!({"exp": "1"})).exp.is_none());
    }
}
