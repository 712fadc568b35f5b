//! The route table: which scopes each API route requires.
//!
//! Semantics, chosen so that an IAM policy can express them exactly (see
//! [`crate::policy`]):
//! - a route is a verb (or ANY: every verb), a path pattern and optionally a
//!   stage; in the pattern, `{param}` and `*` are wildcards that, like IAM's
//!   `*`, match any run of characters within the path (also across `/`);
//! - **every** route that applies to a request must be satisfied (an explicit
//!   Deny in IAM overrides any Allow, so first-match semantics could not be
//!   represented in a cached policy);
//! - a request no route applies to gets the default rule.
//!
//! The stage and the verb are always named, never wildcards: a `*` there would
//! match `/` too and reach into the path of other routes (`*/*/public/*`
//! matches `prod/DELETE/admin/public/x`).
//!
//! No I/O here; the table is parsed and compiled once at start-up.

use serde::{Deserialize, Serialize};

use crate::arn::{MethodArn, VERBS, is_stage_name};

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
    /// The verbs it applies to: one, or all of [`VERBS`] for ANY.
    pub verbs: &'static [&'static str],
    /// The stage it is limited to, if any.
    pub stage: Option<String>,
    /// The path pattern as an IAM glob, without its leading `/` (`pets/*`).
    pub path_glob: String,
    pub requirement: Requirement,
}

impl Route {
    pub fn applies_to(&self, arn: &MethodArn<'_>) -> bool {
        self.stage.as_deref().is_none_or(|s| s == arn.stage)
            && self.verbs.contains(&arn.verb)
            && glob_matches(&self.path_glob, arn.path)
    }

    /// The IAM resources this route covers on the request's API and stage:
    /// one per verb, stage and verb named. Nothing when the route is limited
    /// to another stage (API Gateway keeps its authorizer cache per stage, so
    /// a policy only ever meets requests of its own stage).
    pub fn resources<'a>(&'a self, arn: &'a MethodArn<'_>) -> impl Iterator<Item = String> + 'a {
        let on_this_stage = self.stage.as_deref().is_none_or(|s| s == arn.stage);
        let verbs = if on_this_stage { self.verbs } else { &[] };
        verbs.iter().map(move |verb| format!("{}{}/{verb}/{}", arn.api_prefix, arn.stage, self.path_glob))
    }
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    pub default: Requirement,
}

/// The route table as `ROUTES` spells it, typed: what the deployer builds
/// from `api.routes` and serialises once, and what [`RouteTable::parse`]
/// reads. [`RouteTable::compile`] checks it. (Fields in alphabetical
/// order: the text is what earlier versions wrote, so a deployed function's
/// `ROUTES` does not change by an upgrade.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub default: DefaultSpec,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

/// One entry of `ROUTES`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(default, rename = "match")]
    pub matching: Matching,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

/// Whether a rule needs all of its scopes or any one.
#[derive(Debug, Serialize, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Matching {
    #[default]
    All,
    Any,
}

/// What a request no route applies to needs: `"deny"`, or a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefaultSpec {
    Keyword(DenyKeyword),
    Rule {
        #[serde(default, rename = "match")]
        matching: Matching,
        #[serde(default)]
        scopes: Vec<String>,
    },
}

impl DefaultSpec {
    /// `"deny"`.
    pub fn deny() -> DefaultSpec {
        DefaultSpec::Keyword(DenyKeyword::Deny)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenyKeyword {
    Deny,
}

/// Where in a [`TableSpec`] a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `routes[i]`.
    Route(usize),
    Default,
    /// The JSON as a whole.
    Table,
}

/// `routes[2]: `, `default: `, or nothing: how a message names its place.
impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Route(index) => write!(f, "routes[{index}]: "),
            Place::Default => f.write_str("default: "),
            Place::Table => Ok(()),
        }
    }
}

/// A problem of a route table, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}{message}")]
pub struct RouteError {
    pub place: Place,
    pub message: String,
}

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
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("path {path:?} must start with '/'"));
    };
    let mut segments = Vec::new();
    for segment in rest.split('/') {
        if segment == "*" || (segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2) {
            segments.push("*");
        } else if segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!&'()+,;=:@%".contains(&b)) {
            segments.push(segment);
        } else {
            return Err(format!("path {path:?}: segment {segment:?} has characters a route cannot use"));
        }
    }
    Ok(segments.join("/"))
}

impl RouteTable {
    /// The table used when `ROUTES` is not set: any valid token, any route.
    pub fn allow_any_valid_token() -> RouteTable {
        RouteTable { routes: Vec::new(), default: Requirement::AllOf(Vec::new()) }
    }

    /// Parses `{"routes":[{"method","path","stage"?,"scopes","match"?}], "default": {...} | "deny"}`.
    pub fn parse(json: &str) -> Result<RouteTable, RouteError> {
        let spec: TableSpec =
            serde_json::from_str(json).map_err(|e| RouteError { place: Place::Table, message: e.to_string() })?;
        RouteTable::compile(spec)
    }

    /// Checks a typed table and compiles it for matching.
    pub fn compile(spec: TableSpec) -> Result<RouteTable, RouteError> {
        let mut routes = Vec::with_capacity(spec.routes.len());
        for (index, route) in spec.routes.into_iter().enumerate() {
            let at = |message: String| RouteError { place: Place::Route(index), message };
            let method = route.method.to_ascii_uppercase();
            let verbs: &'static [&'static str] = match VERBS.iter().position(|v| *v == method) {
                Some(i) => &VERBS[i..=i],
                None if method == "ANY" => VERBS,
                None => return Err(at(format!("method {:?} is not an HTTP verb or ANY", route.method))),
            };
            if let Some(stage) = &route.stage
                && (!is_stage_name(stage) || stage == "$default")
            {
                return Err(at(format!("stage {stage:?} is not a valid stage name")));
            }
            routes.push(Route {
                verbs,
                stage: route.stage,
                path_glob: path_glob(&route.path).map_err(at)?,
                requirement: requirement(route.scopes, route.matching).map_err(at)?,
            });
        }
        let default = match spec.default {
            DefaultSpec::Keyword(DenyKeyword::Deny) => Requirement::Deny,
            DefaultSpec::Rule { scopes, matching } => {
                requirement(scopes, matching).map_err(|message| RouteError { place: Place::Default, message })?
            }
        };
        Ok(RouteTable { routes, default })
    }

    /// What a request must satisfy: every route that applies to it, or the
    /// default rule when none does.
    pub fn requirements<'a>(&'a self, arn: &'a MethodArn<'_>) -> impl Iterator<Item = &'a Requirement> + 'a {
        let mut applicable = self.routes.iter().filter(move |route| route.applies_to(arn)).peekable();
        let fallback = applicable.peek().is_none().then_some(&self.default);
        applicable.map(|route| &route.requirement).chain(fallback)
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

    fn arn(resource: &str) -> String {
        format!("arn:aws:execute-api:eu-west-1:123456789012:api/{resource}")
    }

    fn required(table: &RouteTable, resource: &str) -> Vec<Requirement> {
        let raw = arn(resource);
        let arn = MethodArn::parse(&raw).unwrap();
        table.requirements(&arn).cloned().collect()
    }

    #[test]
    fn glob() {
        assert!(glob_matches("pets/*", "pets/42"));
        assert!(glob_matches("pets/*", "pets/42/photos"));
        assert!(!glob_matches("pets/*", "pets"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("", ""));
    }

    #[test]
    fn routes_name_their_verbs_and_leave_the_stage_to_the_request() {
        let table = RouteTable::parse(TABLE).unwrap();
        let raw = arn("dev/GET/pets/1");
        let request = MethodArn::parse(&raw).unwrap();
        let resources: Vec<Vec<String>> = table.routes.iter().map(|r| r.resources(&request).collect()).collect();
        let prefix = "arn:aws:execute-api:eu-west-1:123456789012:api/";
        assert_eq!(resources[1], [format!("{prefix}dev/GET/pets/*")]);
        assert!(resources[3].is_empty(), "the admin route is limited to prod");
        let raw = arn("prod/GET/pets/1");
        let prod = MethodArn::parse(&raw).unwrap();
        let admin: Vec<String> = table.routes[3].resources(&prod).collect();
        assert_eq!(admin.len(), VERBS.len());
        assert!(admin.iter().all(|r| !r[prefix.len()..].starts_with('*') && r.ends_with("/admin/*")));
    }

    #[test]
    fn every_applicable_route_counts_else_the_default() {
        let table = RouteTable::parse(TABLE).unwrap();
        assert_eq!(required(&table, "prod/GET/pets/7"), [Requirement::AllOf(vec!["pets:read".into()])]);
        assert_eq!(required(&table, "prod/GET/health"), [Requirement::AllOf(vec![])]);
        assert_eq!(required(&table, "dev/DELETE/admin/x"), [Requirement::Deny], "admin is prod-only: default");
        assert_eq!(required(&table, "prod/DELETE/admin/x"), [Requirement::AllOf(vec!["admin".into()])]);
        assert_eq!(required(&table, "prod/DELETE/x/GET/pets/1"), [Requirement::Deny], "verbs never cross segments");
    }

    #[test]
    fn bad_tables_are_refused_with_the_route_index() {
        for (json, needle) in [
            (r#"{"routes":[{"method":"FETCH","path":"/a"}],"default":"deny"}"#, "routes[0]: method"),
            (r#"{"routes":[{"method":"GET","path":"a"}],"default":"deny"}"#, "must start with '/'"),
            (r#"{"routes":[{"method":"GET","path":"/a?b"}],"default":"deny"}"#, "characters"),
            (r#"{"routes":[{"method":"GET","path":"/a$b"}],"default":"deny"}"#, "characters"),
            (r#"{"routes":[{"method":"GET","path":"/a","stage":"p*"}],"default":"deny"}"#, "stage"),
            (r#"{"routes":[{"method":"GET","path":"/a","scopes":["a b"]}],"default":"deny"}"#, "scope token"),
            (r#"{"routes":[{"method":"GET","path":"/a","match":"any"}],"default":"deny"}"#, "at least one scope"),
            (r#"{"routes":[{"method":"GET","path":"/a","colour":1}],"default":"deny"}"#, "unknown field"),
            (r#"{"routes":[]}"#, "default"),
        ] {
            let error = RouteTable::parse(json).unwrap_err();
            assert!(error.to_string().contains(needle), "{json}: {error}");
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
