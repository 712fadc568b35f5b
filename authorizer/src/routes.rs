//! The route table: which scopes each API route requires.
//!
//! Semantics, chosen so that an IAM policy can express them exactly (see
//! [`crate::policy`]):
//! - a route pattern is `VERB /path` where `{param}` and `*` are wildcards that,
//!   like IAM's `*`, match any run of characters (also across `/`);
//! - **every** route whose pattern matches applies, and the token must satisfy
//!   each of them (an explicit Deny in IAM overrides any Allow, so first-match
//!   semantics could not be represented in a cached policy);
//! - a request that matches no route gets the default rule.
//!
//! Broader matching only ever adds requirements, so it fails closed.
//!
//! No I/O here; the table is parsed and compiled once at start-up.

use serde::Deserialize;

/// What a route requires of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The token must carry every scope (an empty list: any valid token).
    AllOf(Vec<String>),
    /// The token must carry at least one of the scopes.
    AnyOf(Vec<String>),
    /// No token is good enough.
    Deny,
}

impl Requirement {
    pub fn is_satisfied_by(&self, granted: impl Fn(&str) -> bool) -> bool {
        match self {
            Requirement::AllOf(scopes) => scopes.iter().all(|s| granted(s)),
            Requirement::AnyOf(scopes) => scopes.iter().any(|s| granted(s)),
            Requirement::Deny => false,
        }
    }

    /// The scopes to name in an `insufficient_scope` challenge.
    pub fn scopes(&self) -> &[String] {
        match self {
            Requirement::AllOf(s) | Requirement::AnyOf(s) => s,
            Requirement::Deny => &[],
        }
    }
}

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// `GET`, …, or `*` for any verb.
    pub verb: String,
    /// Stage name, or `*`.
    pub stage: String,
    /// The path as written, e.g. `/pets/{id}`.
    pub path: String,
    /// The IAM resource suffix: `stage/VERB/path` with wildcards as `*`.
    pub resource_glob: String,
    pub requirement: Requirement,
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    pub default: Requirement,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    routes: Vec<RawRoute>,
    default: RawDefault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: String,
    path: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, rename = "match")]
    matching: Matching,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Matching {
    #[default]
    All,
    Any,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDefault {
    Keyword(DenyKeyword),
    Rule {
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default, rename = "match")]
        matching: Matching,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum DenyKeyword {
    Deny,
}

const VERBS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn requirement(scopes: Vec<String>, matching: Matching) -> Result<Requirement, String> {
    for scope in &scopes {
        // RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'.
        if scope.is_empty()
            || !scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(format!("scope {scope:?} is not a valid scope token (RFC 6749 §3.3)"));
        }
    }
    Ok(match matching {
        Matching::All => Requirement::AllOf(scopes),
        Matching::Any if scopes.is_empty() => {
            return Err("\"match\": \"any\" needs at least one scope".into());
        }
        Matching::Any => Requirement::AnyOf(scopes),
    })
}

/// `/pets/{id}/*` → `pets/*/*`. Refuses characters IAM would read as wildcards.
fn path_glob(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with '/'"));
    }
    let mut segments = Vec::new();
    for segment in path[1..].split('/') {
        if segment == "*" || (segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2) {
            segments.push("*");
        } else if segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()+,;=:@%".contains(&b)) {
            segments.push(segment);
        } else {
            return Err(format!("path {path:?}: segment {segment:?} has characters a route cannot use"));
        }
    }
    let glob = segments.join("/");
    Ok(glob)
}

impl RouteTable {
    /// The table used when `ROUTES` is not set: any valid token, any route.
    pub fn allow_any_valid_token() -> RouteTable {
        RouteTable { routes: Vec::new(), default: Requirement::AllOf(Vec::new()) }
    }

    /// Parses `{"routes":[{"method","path","stage"?,"scopes","match"?}], "default": {...} | "deny"}`.
    pub fn parse(json: &str) -> Result<RouteTable, String> {
        let raw: RawTable = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (index, route) in raw.routes.into_iter().enumerate() {
            let at = |e: String| format!("routes[{index}]: {e}");
            let verb = route.method.to_ascii_uppercase();
            let verb = match verb.as_str() {
                "ANY" | "*" => "*".to_owned(),
                v if VERBS.contains(&v) => verb,
                _ => {
                    return Err(at(format!("method {:?} is not an HTTP verb or ANY", route.method)));
                }
            };
            let stage = match route.stage {
                None => "*".to_owned(),
                Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => s,
                Some(s) => return Err(at(format!("stage {s:?} is not a valid stage name"))),
            };
            let glob = path_glob(&route.path).map_err(at)?;
            routes.push(Route {
                resource_glob: format!("{stage}/{verb}/{glob}"),
                verb,
                stage,
                path: route.path,
                requirement: requirement(route.scopes, route.matching).map_err(at)?,
            });
        }
        let default = match raw.default {
            RawDefault::Keyword(DenyKeyword::Deny) => Requirement::Deny,
            RawDefault::Rule { scopes, matching } => {
                requirement(scopes, matching).map_err(|e| format!("default: {e}"))?
            }
        };
        Ok(RouteTable { routes, default })
    }

    /// The routes that apply to `stage/VERB/path` (the tail of a method ARN).
    pub fn matching<'a>(&'a self, resource: &'a str) -> impl Iterator<Item = &'a Route> + 'a {
        self.routes.iter().filter(move |route| glob_matches(&route.resource_glob, resource))
    }
}

/// IAM-style glob: `*` matches any run of characters, including `/`.
/// Iterative with single backtrack point: linear in practice, no allocation.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"{
        "routes": [
            {"method": "GET", "path": "/pets", "scopes": ["pets:read"]},
            {"method": "GET", "path": "/pets/{id}", "scopes": ["pets:read"]},
            {"method": "POST", "path": "/pets", "scopes": ["pets:write", "admin"], "match": "any"},
            {"method": "ANY", "path": "/admin/*", "stage": "prod", "scopes": ["admin"]},
            {"method": "GET", "path": "/health"}
        ],
        "default": "deny"
    }"#;

    fn required(table: &RouteTable, resource: &str) -> Vec<Requirement> {
        table.matching(resource).map(|r| r.requirement.clone()).collect()
    }

    #[test]
    fn glob() {
        assert!(glob_matches("prod/GET/pets/*", "prod/GET/pets/42"));
        assert!(glob_matches("prod/GET/pets/*", "prod/GET/pets/42/photos"));
        assert!(!glob_matches("prod/GET/pets/*", "prod/GET/pets"));
        assert!(glob_matches("*/*/*", "prod/GET/"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("prod/GET/", "prod/GET/"));
    }

    #[test]
    fn routes_compile_to_iam_globs() {
        let table = RouteTable::parse(TABLE).unwrap();
        let globs: Vec<&str> = table.routes.iter().map(|r| r.resource_glob.as_str()).collect();
        assert_eq!(globs, ["*/GET/pets", "*/GET/pets/*", "*/POST/pets", "prod/*/admin/*", "*/GET/health"]);
    }

    #[test]
    fn every_matching_route_applies() {
        let table = RouteTable::parse(TABLE).unwrap();
        assert_eq!(required(&table, "prod/GET/pets/7"), [Requirement::AllOf(vec!["pets:read".into()])]);
        assert_eq!(required(&table, "prod/GET/health"), [Requirement::AllOf(vec![])]);
        assert_eq!(required(&table, "dev/DELETE/admin/x"), []);
        assert_eq!(required(&table, "prod/DELETE/admin/x").len(), 1);
    }

    #[test]
    fn bad_tables_are_refused_with_the_route_index() {
        for (json, needle) in [
            (r#"{"routes":[{"method":"FETCH","path":"/a"}],"default":"deny"}"#, "routes[0]: method"),
            (r#"{"routes":[{"method":"GET","path":"a"}],"default":"deny"}"#, "must start with '/'"),
            (r#"{"routes":[{"method":"GET","path":"/a?b"}],"default":"deny"}"#, "characters"),
            (r#"{"routes":[{"method":"GET","path":"/a","scopes":["a b"]}],"default":"deny"}"#, "scope token"),
            (r#"{"routes":[{"method":"GET","path":"/a","match":"any"}],"default":"deny"}"#, "at least one scope"),
            (r#"{"routes":[{"method":"GET","path":"/a","colour":1}],"default":"deny"}"#, "unknown field"),
            (r#"{"routes":[]}"#, "default"),
        ] {
            let error = RouteTable::parse(json).unwrap_err();
            assert!(error.contains(needle), "{json}: {error}");
        }
    }

    #[test]
    fn requirements() {
        let has = |s: &str| s == "a";
        assert!(Requirement::AllOf(vec![]).is_satisfied_by(has));
        assert!(Requirement::AllOf(vec!["a".into()]).is_satisfied_by(has));
        assert!(!Requirement::AllOf(vec!["a".into(), "b".into()]).is_satisfied_by(has));
        assert!(Requirement::AnyOf(vec!["a".into(), "b".into()]).is_satisfied_by(has));
        assert!(!Requirement::Deny.is_satisfied_by(has));
    }
}
