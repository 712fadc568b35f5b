//! The policy oracle: random route tables × random requests × random token
//! scopes, each decided by the real authorizer for a really signed token, and
//! checked against two models written here, independently of the code under
//! test:
//!
//! - the route table's documented meaning (`model_allows`): a route applies
//!   when its stage (if any) and its verb (or ANY) are the request's and its
//!   path pattern matches the request path, `{param}` and `*` matching any run
//!   of characters; every applicable route must be satisfied; a request no
//!   route applies to gets the default rule;
//! - IAM's evaluation of a policy (`iam_allows`): an explicit Deny wins, then
//!   any Allow, else deny; `*` matches any run of characters and `?` one,
//!   both compiled to a regular expression here, not with the authorizer's
//!   own matcher.
//!
//! For every request of a batch: the decision equals the model's; the policy
//! answered for it, evaluated by IAM on its own ARN, gives that same
//! decision; and that policy, replayed by API Gateway's cache on every other
//! request of the batch that shares its cache entry (same token, same stage:
//! API Gateway keeps the authorizer cache per stage), gives exactly the
//! model's decision there. A request whose path holds an IAM wildcard
//! character is never allowed.

use std::sync::OnceLock;

use authorizer::{Decision, Status};
use e2e::fixture::{self, ISSUER, keys};
use e2e::iam::iam_allows;
use e2e::server::TestServer;
use proptest::prelude::*;
use regex::Regex;
use serde_json::{Value, json};

const API_PREFIX: &str = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/";
const VERBS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const SCOPES: [&str; 3] = ["read", "write", "admin"];

#[derive(Debug, Clone)]
struct Route {
    method: &'static str,
    stage: Option<&'static str>,
    /// Segments without the leading '/'.
    segments: Vec<&'static str>,
    scopes: Vec<&'static str>,
    any: bool,
}

#[derive(Debug, Clone)]
enum Default {
    Deny,
    Rule { scopes: Vec<&'static str>, any: bool },
}

#[derive(Debug, Clone)]
struct Table {
    routes: Vec<Route>,
    default: Default,
}

#[derive(Debug, Clone)]
struct Request {
    stage: &'static str,
    verb: &'static str,
    segments: Vec<&'static str>,
}

impl Request {
    fn path(&self) -> String {
        self.segments.join("/")
    }
    fn arn(&self) -> String {
        format!("{API_PREFIX}{}/{}/{}", self.stage, self.verb, self.path())
    }
    fn has_wildcard(&self) -> bool {
        self.path().contains(['*', '?'])
    }
}

// ------------------------------------------------------------------ models

fn rule_satisfied(scopes: &[&str], any: bool, granted: &[&str]) -> bool {
    if any { scopes.iter().any(|s| granted.contains(s)) } else { scopes.iter().all(|s| granted.contains(s)) }
}

/// A route path pattern as a regular expression over the request path.
fn route_regex(segments: &[&str]) -> Regex {
    let parts: Vec<String> = segments
        .iter()
        .map(|s| if *s == "*" || (s.starts_with('{') && s.ends_with('}')) { ".*".to_owned() } else { regex::escape(s) })
        .collect();
    e2e::iam::cached_regex(&format!("^{}$", parts.join("/")))
}

fn model_allows(table: &Table, request: &Request, granted: &[&str]) -> bool {
    let path = request.path();
    let applicable: Vec<&Route> = table
        .routes
        .iter()
        .filter(|r| r.stage.is_none_or(|s| s == request.stage))
        .filter(|r| r.method == "ANY" || r.method == request.verb)
        .filter(|r| route_regex(&r.segments).is_match(&path))
        .collect();
    if applicable.is_empty() {
        match &table.default {
            Default::Deny => false,
            Default::Rule { scopes, any } => rule_satisfied(scopes, *any, granted),
        }
    } else {
        applicable.iter().all(|r| rule_satisfied(&r.scopes, r.any, granted))
    }
}

// ------------------------------------------------------------------ generators

fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(SCOPES.to_vec(), 0..=SCOPES.len())
}

fn rule() -> impl Strategy<Value = (Vec<&'static str>, bool)> {
    (scopes(), any::<bool>()).prop_map(|(scopes, any)| {
        let any = any && !scopes.is_empty();
        (scopes, any)
    })
}

fn route() -> impl Strategy<Value = Route> {
    let method = prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "ANY", "ANY"]);
    let stage = prop::option::of(prop::sample::select(vec!["prod", "dev"]));
    let segment = prop::sample::select(vec!["pets", "admin", "public", "GET", "prod", "{p}", "{id}", "*", "x"]);
    (method, stage, prop::collection::vec(segment, 1..4), rule())
        .prop_map(|(method, stage, segments, (scopes, any))| Route { method, stage, segments, scopes, any })
}

fn table() -> impl Strategy<Value = Table> {
    let default = prop_oneof![Just(Default::Deny), rule().prop_map(|(scopes, any)| Default::Rule { scopes, any })];
    (prop::collection::vec(route(), 0..5), default).prop_map(|(routes, default)| Table { routes, default })
}

fn request() -> impl Strategy<Value = Request> {
    let stage = prop::sample::select(vec!["prod", "dev"]);
    let verb = prop::sample::select(VERBS.to_vec());
    let segment = prop::sample::select(vec![
        "pets", "admin", "public", "users", "GET", "DELETE", "POST", "prod", "dev", "1", "x", "*", "?", "a*b",
    ]);
    (stage, verb, prop::collection::vec(segment, 0..5)).prop_map(|(stage, verb, segments)| Request {
        stage,
        verb,
        segments,
    })
}

// ------------------------------------------------------------------ the authorizer

fn routes_json(table: &Table) -> String {
    let rule_json = |scopes: &[&str], any: bool| json!({"scopes": scopes, "match": if any { "any" } else { "all" }});
    let routes: Vec<Value> = table
        .routes
        .iter()
        .map(|r| {
            let mut route = rule_json(&r.scopes, r.any);
            route["method"] = json!(r.method);
            route["path"] = json!(format!("/{}", r.segments.join("/")));
            if let Some(stage) = r.stage {
                route["stage"] = json!(stage);
            }
            route
        })
        .collect();
    let default = match &table.default {
        Default::Deny => json!("deny"),
        Default::Rule { scopes, any } => rule_json(scopes, *any),
    };
    json!({ "routes": routes, "default": default }).to_string()
}

struct Shared {
    runtime: tokio::runtime::Runtime,
    jwks: TestServer,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let jwks = runtime.block_on(fixture::jwks_server());
        Shared { runtime, jwks }
    })
}

fn event(request: &Request, token: &str) -> Value {
    let path = format!("/{}", request.path());
    let mut event = e2e::events::request_for(&request.arn(), request.verb, &path, &path, Some(token), None);
    event["requestContext"]["stage"] = json!(request.stage);
    event
}

/// The policy API Gateway would cache for this decision, if any.
fn cached_policy(decision: &Decision) -> Option<Value> {
    let response = match (&decision.result, &decision.deny_response) {
        (Ok(response), _) => response,
        (Err(rejection), Some(response)) if rejection.status() == Status::Forbidden => response,
        _ => return None,
    };
    Some(serde_json::to_value(&response.policy_document).expect("policy serialises"))
}

fn check(table: &Table, requests: &[Request], granted: &[&str]) -> Result<(), TestCaseError> {
    let shared = shared();
    let now = e2e::now();
    let claims = json!({
        "iss": ISSUER, "aud": fixture::AUDIENCE, "sub": "oracle", "iat": now, "exp": now + 300,
        "scope": granted.join(" "),
    });
    let token = format!("Bearer {}", keys().ed.sign(&claims));
    let routes = routes_json(table);
    let vars = fixture::jwt_vars(&shared.jwks.url("/jwks"), &[("ROUTES", &routes), ("CERT_BINDING", "off")]);
    let decisions: Vec<Decision> = shared.runtime.block_on(async {
        let authorizer = fixture::authorizer(vars).await;
        let mut decisions = Vec::new();
        for request in requests {
            decisions.push(fixture::decide(&authorizer, &event(request, &token)).await);
        }
        decisions
    });

    for (request, decision) in requests.iter().zip(&decisions) {
        let expected = model_allows(table, request, granted);
        let allowed = decision.result.is_ok();
        if request.has_wildcard() {
            prop_assert!(!allowed, "a method ARN holding * or ? was allowed: {}\n{decision:?}", request.arn());
        } else {
            prop_assert_eq!(allowed, expected, "decision for {} (routes {})\n{:?}", request.arn(), routes, decision);
        }
        let Some(policy) = cached_policy(decision) else { continue };
        prop_assert_eq!(
            iam_allows(&policy, &request.arn()),
            allowed,
            "IAM's reading of the answer for {} contradicts the decision\npolicy {}",
            request.arn(),
            policy
        );
        for other in requests.iter().filter(|o| o.stage == request.stage) {
            prop_assert_eq!(
                iam_allows(&policy, &other.arn()),
                model_allows(table, other, granted),
                "the policy cached for {} gives the wrong answer on {} (routes {}, scopes {:?})\npolicy {}",
                request.arn(),
                other.arn(),
                routes,
                granted,
                policy
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decisions_and_cached_policies_agree_with_iam(
        table in table(),
        requests in prop::collection::vec(request(), 1..10),
        granted in scopes(),
    ) {
        check(&table, &requests, &granted)?;
    }
}

/// The first false Allow the oracle found, pinned so it never comes back.
#[test]
fn any_verb_route_does_not_reach_into_other_paths() {
    let table = Table {
        routes: vec![Route { method: "ANY", stage: None, segments: vec!["public", "{p}"], scopes: vec![], any: false }],
        default: Default::Deny,
    };
    let requests = [
        Request { stage: "prod", verb: "DELETE", segments: vec!["admin", "users", "public", "x"] },
        Request { stage: "prod", verb: "GET", segments: vec!["public", "x"] },
    ];
    check(&table, &requests, &[]).unwrap();
}
