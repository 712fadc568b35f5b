//! The checks, in the order a request meets what they check: the mutual TLS
//! handshake, the WAF, the default endpoint, the authorizer's 401, each
//! route's scopes (403 without them; the backend reached with them), the
//! certificate binding, and the mapped headers a client may not forge.
//!
//! A check that cannot tell (an input not given, a request that would write
//! to the backend, the WAF keeping this runner out) says so and why, rather
//! than passing. No request with a token can change data: tokens that should
//! be refused are sent on every route, tokens that should be allowed only on
//! GET (and HEAD) routes.

use authorizer::binding::BindingMode;
use reqwest::Method;

use super::client::{Answer, Target};
use super::facts::{self, Sent};
use super::legacy_tls;
use super::report::{Check, Outcome};
use super::tokens::{Credential, TokenCommand};
use crate::stack::template::Part;
use crate::stack::{ExecuteApiSwitch, RouteSpec, Stack};

/// The value a forged copy of a mapped header carries.
pub const FORGED: &str = "forged-by-deployer-verify";

/// Where the default endpoint is, if the checks know it.
pub enum ExecuteApi {
    /// Its URL (`https://ID.execute-api.REGION.amazonaws.com/STAGE`).
    At(url::Url),
    /// Not known, and why.
    Unknown(String),
}

pub struct Inputs<'a> {
    pub stack: &'a Stack,
    pub target: &'a Target,
    pub client: &'a Credential,
    /// Another certificate the truststore accepts (for the binding check).
    pub second: Option<&'a Credential>,
    /// `None`: the checks that need a token are not made.
    pub tokens: Option<&'a TokenCommand>,
    /// A path whose backend echoes the request's headers in its answer.
    pub echo_path: Option<&'a str>,
    pub execute_api: ExecuteApi,
    /// The runner's address is outside `waf.allow`.
    pub outside_allowlist: bool,
    /// Where the stage's access log and the authorizer's log are read, for the facts they record.
    pub logs: &'a facts::Logs,
}

fn pass(id: &str, promise: &str, seen: impl Into<String>) -> Check {
    Check::new(id, promise, Outcome::Pass(seen.into()))
}

fn fail(id: &str, promise: &str, seen: impl Into<String>) -> Check {
    Check::new(id, promise, Outcome::Fail(seen.into()))
}

fn not_checked(id: &str, promise: &str, why: impl Into<String>) -> Check {
    Check::new(id, promise, Outcome::NotChecked(why.into()))
}

/// A path that `route` applies to: each variable part is `verify`.
pub fn sample_path(route: &RouteSpec) -> String {
    route.template.sample("verify", "verify/path")
}

/// The GET route API Gateway would serve `path` with, as `deployer local`
/// routes it (the most specific from the left).
fn get_route<'r>(routes: &'r crate::local::routes::Routes, path: &str) -> Option<&'r RouteSpec> {
    let path = crate::local::path::RequestPath::parse(path).ok()?;
    routes.find("GET", &path).map(|matched| &matched.route.spec)
}

/// What a route is sent with: ANY is tried as GET.
fn method_of(route: &RouteSpec) -> Method {
    match route.method.as_str() {
        "ANY" => Method::GET,
        other => Method::from_bytes(other.as_bytes()).unwrap_or(Method::GET),
    }
}

fn safe(route: &RouteSpec) -> bool {
    matches!(method_of(route), Method::GET | Method::HEAD)
}

/// Every check, in order, then the facts the access log has of the requests.
pub async fn run(inputs: &Inputs<'_>) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut sent = Vec::new();
    in_order(inputs, &mut checks, &mut sent).await?;
    if !sent.is_empty() {
        checks.push(facts::record(inputs.logs, &sent).await);
    }
    Ok(checks)
}

async fn in_order(inputs: &Inputs<'_>, checks: &mut Vec<Check>, sent: &mut Vec<Sent>) -> anyhow::Result<()> {
    let stack = inputs.stack;
    let target = inputs.target;
    let Some(first) = stack.api.routes.first() else { anyhow::bail!("the stack has no route to send requests to") };
    let first_url = target.url(&sample_path(first));
    let with_certificate = target.client(Some(&inputs.client.pem))?;

    // The handshake with the configured certificate, without a token: what
    // every other check builds on.
    const ACCEPTED: &str = "the configured client certificate completes the handshake";
    let reached = target.send(with_certificate.get(&first_url)).await;
    let reached = match reached {
        Ok(answer) => {
            checks.push(pass("tls.certificate_accepted", ACCEPTED, format!("HTTP {}", answer.status)));
            answer
        }
        Err(error) => {
            checks.push(fail("tls.certificate_accepted", ACCEPTED, error));
            checks.push(not_checked("*", "every other check", "the API could not be reached with the certificate"));
            return Ok(());
        }
    };

    if let Some(request_id) = &reached.request_id {
        let label = format!("GET {} without a token", sample_path(first));
        sent.push(Sent { label, request_id: request_id.clone(), authorized: false });
    }
    tls(inputs, &first_url, checks).await?;
    let reaches_api = waf(inputs, &reached, checks);
    execute_api(inputs, checks).await?;
    if !reaches_api {
        let why = "the WAF keeps this runner out (--outside-allowlist)";
        checks.push(not_checked("authorizer.*", "the authorizer's answers, route by route", why));
        return Ok(());
    }

    const NO_TOKEN: &str = "a request without a token is refused with 401 and the stack's WWW-Authenticate";
    let expected = &stack.api.unauthorized_challenge;
    checks.push(match (&reached.status, &reached.challenge) {
        (401, Some(challenge)) if challenge == expected => {
            pass("authorizer.no_token", NO_TOKEN, format!("401, {challenge}"))
        }
        (status, challenge) => fail(
            "authorizer.no_token",
            NO_TOKEN,
            format!("HTTP {status}, WWW-Authenticate {challenge:?} (expected 401, {expected:?})"),
        ),
    });

    let Some(tokens) = inputs.tokens else {
        let what = "each route's scopes, certificate binding, forged mapped headers";
        checks.push(not_checked("authorizer.tokens", what, "give --token-command"));
        return Ok(());
    };
    for route in &stack.api.routes {
        route_scopes(inputs, tokens, &with_certificate, route, checks).await?;
    }
    binding(inputs, tokens, &with_certificate, checks).await?;
    forged_headers(inputs, tokens, &with_certificate, checks).await?;
    sent.extend(path_spellings(inputs, tokens, &with_certificate, checks).await?);
    Ok(())
}

/// Without a certificate, and with one of a CA the truststore does not hold:
/// no HTTP answer (the handshake is refused).
async fn tls(inputs: &Inputs<'_>, url: &str, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    const NONE: &str = "a client without a certificate gets no answer (handshake refused)";
    const OTHER_CA: &str = "a certificate of a CA outside the truststore gets no answer";
    if inputs.stack.domain.is_none() {
        let why = "the stack has no custom domain, so no mutual TLS";
        checks.push(not_checked("tls.certificate_required", NONE, why));
        checks.push(not_checked("tls.other_ca_refused", OTHER_CA, why));
        checks.push(not_checked("tls.legacy_version_refused", "a TLS 1.1 hello is refused", why));
        return Ok(());
    }
    let target = inputs.target;
    // Held when no HTTP answer comes.
    let refused = |id: &str, promise: &str, answer: Result<Answer, String>| match answer {
        Ok(answer) => fail(id, promise, format!("answered HTTP {}", answer.status)),
        Err(error) => pass(id, promise, format!("refused: {error}")),
    };
    let without = target.send(target.client(None)?.get(url)).await;
    checks.push(refused("tls.certificate_required", NONE, without));
    // A certificate made here, of its own CA: one no truststore holds.
    let stranger = rcgen::generate_simple_self_signed(vec!["deployer-verify".to_owned()])?;
    let pem = format!("{}{}", stranger.cert.pem(), stranger.signing_key.serialize_pem());
    let other = target.send(target.client(Some(pem.as_bytes()))?.get(url)).await;
    checks.push(refused("tls.other_ca_refused", OTHER_CA, other));
    const LEGACY: &str = "a TLS 1.1 hello is refused (the domain's security policy)";
    let id = "tls.legacy_version_refused";
    target.count_one();
    let server_name = target.base.host_str().unwrap_or_default();
    checks.push(match legacy_tls::offer_tls_1_1(&target.address(), server_name).await {
        Ok(legacy_tls::Answer::Refused(how)) => pass(id, LEGACY, format!("refused: {how}")),
        Ok(legacy_tls::Answer::Accepted(version)) => {
            fail(id, LEGACY, format!("the server answered with a ServerHello for version {version:#06x}"))
        }
        Err(error) => fail(id, LEGACY, format!("{error:#}")),
    });
    Ok(())
}

/// Whether the runner reaches the API past the WAF, checked against what
/// the person running it says of its address.
fn waf(inputs: &Inputs<'_>, reached: &Answer, checks: &mut Vec<Check>) -> bool {
    const PROMISE: &str = "only addresses in waf.allow reach the API (others get 403 from the WAF)";
    // The WAF answers 403 before the authorizer, which answers a request without a token 401.
    let blocked = reached.status == 403 && reached.challenge.is_none();
    if inputs.stack.waf.is_none() {
        checks.push(not_checked("waf.allowlist", PROMISE, "the stack has no waf"));
        return !blocked;
    }
    checks.push(match (inputs.outside_allowlist, blocked) {
        (true, true) => pass("waf.allowlist", PROMISE, "this runner, outside the allowlist, got 403"),
        (true, false) => fail(
            "waf.allowlist",
            PROMISE,
            format!("this runner, said to be outside the allowlist, got HTTP {}", reached.status),
        ),
        (false, false) => pass("waf.allowlist", PROMISE, "this runner is inside the allowlist and reaches the API"),
        (false, true) => fail(
            "waf.allowlist",
            PROMISE,
            "this runner got 403 without a challenge (the WAF's): if its address is outside waf.allow, say \
             --outside-allowlist",
        ),
    });
    !blocked
}

/// With a custom domain whose stack says execute-api is off, the default
/// endpoint does not answer, or answers 403 (API Gateway's answer for a
/// disabled endpoint).
async fn execute_api(inputs: &Inputs<'_>, checks: &mut Vec<Check>) -> anyhow::Result<()> {
    const PROMISE: &str = "the default endpoint (execute-api) is off: no way in without mutual TLS";
    let id = "execute_api.off";
    let Some(domain) = &inputs.stack.domain else {
        checks.push(not_checked(id, PROMISE, "no custom domain: execute-api is the way in"));
        return Ok(());
    };
    if domain.execute_api == Some(ExecuteApiSwitch::Keep) {
        checks.push(not_checked(id, PROMISE, "domain.execute_api: keep"));
        return Ok(());
    }
    let url = match &inputs.execute_api {
        ExecuteApi::At(url) => url,
        ExecuteApi::Unknown(why) => {
            checks.push(not_checked(id, PROMISE, why.clone()));
            return Ok(());
        }
    };
    let target = inputs.target;
    checks.push(match target.send(target.client(None)?.get(url.as_str())).await {
        Err(error) => pass(id, PROMISE, format!("no answer: {error}")),
        Ok(answer) if answer.status == 403 && answer.challenge.is_none() => {
            pass(id, PROMISE, "403 without a challenge (API Gateway's answer for a disabled endpoint)")
        }
        Ok(answer) => fail(id, PROMISE, format!("{url} answered HTTP {}", answer.status)),
    });
    Ok(())
}

/// A route refuses a token without its scopes (403 with the challenge), and
/// lets one with them through to the backend (GET routes only).
async fn route_scopes(
    inputs: &Inputs<'_>,
    tokens: &TokenCommand,
    client: &reqwest::Client,
    route: &RouteSpec,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let target = inputs.target;
    let name = format!("{} {}", route.method, route.path);
    let url = target.url(&sample_path(route));
    let scopes = &route.scopes;
    let send = |token: super::tokens::Token| target.send(token.on(client.request(method_of(route), &url)));

    let refused_id = format!("authorizer.scopes {name}");
    if route.any_valid_token {
        let why = "scopes: any_valid_token (any valid token may call it; every plan lists it)";
        checks.push(not_checked(&refused_id, "a token without the route's scopes is refused with 403", why));
    } else {
        let promise = format!("a token without {} is refused with 403 insufficient_scope", scopes.join(" "));
        let token = tokens.token(&[], inputs.client).await?;
        checks.push(match send(token).await {
            Ok(a) if a.status == 403 && a.challenge.as_deref().is_some_and(|c| c.contains("insufficient_scope")) => {
                pass(&refused_id, &promise, "403, insufficient_scope")
            }
            Ok(a) => fail(&refused_id, &promise, format!("HTTP {}, WWW-Authenticate {:?}", a.status, a.challenge)),
            Err(error) => fail(&refused_id, &promise, error),
        });
    }

    let allowed_id = format!("authorizer.allows {name}");
    let promise = "a token with the route's scopes reaches the backend";
    if !safe(route) {
        let why = format!("a {} with a valid token would reach the backend and may change data", route.method);
        checks.push(not_checked(&allowed_id, promise, why));
        return Ok(());
    }
    let token = tokens.token(scopes, inputs.client).await?;
    checks.push(match send(token).await {
        Ok(a) if !a.refused_by_authorizer() => {
            pass(&allowed_id, promise, format!("HTTP {} from the backend", a.status))
        }
        Ok(a) => fail(&allowed_id, promise, format!("refused: HTTP {}, WWW-Authenticate {:?}", a.status, a.challenge)),
        Err(error) => fail(&allowed_id, promise, error),
    });
    Ok(())
}

/// A token bound to another certificate than the one presented is refused.
async fn binding(
    inputs: &Inputs<'_>,
    tokens: &TokenCommand,
    client: &reqwest::Client,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    const PROMISE: &str = "a token bound to another certificate is refused with 401 (RFC 8705)";
    let id = "authorizer.binding";
    let mode = inputs.stack.authorizer.environment.get("CERT_BINDING").map(|s| s.reveal().to_owned());
    if mode.as_deref().and_then(BindingMode::parse) == Some(BindingMode::Off) {
        checks.push(not_checked(id, PROMISE, "CERT_BINDING: off"));
        return Ok(());
    }
    let Some(second) = inputs.second else {
        checks.push(not_checked(
            id,
            PROMISE,
            "give --second-cert and --second-key (another certificate the truststore accepts)",
        ));
        return Ok(());
    };
    // A GET route, so that a binding not enforced reaches no backend write.
    let Some(route) = inputs.stack.api.routes.iter().find(|r| safe(r)) else {
        checks.push(not_checked(id, PROMISE, "no GET route to send the token to safely"));
        return Ok(());
    };
    let token = tokens.token(&route.scopes, second).await?;
    let url = inputs.target.url(&sample_path(route));
    let sent = inputs.target.send(token.on(client.get(&url))).await;
    checks.push(match sent {
        Ok(a) if a.status == 401 => pass(id, PROMISE, format!("401 on {} {}", route.method, route.path)),
        Ok(a) => fail(id, PROMISE, format!("HTTP {} on {} {}", a.status, route.method, route.path)),
        Err(error) => fail(id, PROMISE, error),
    });
    Ok(())
}

/// A client's own copy of a header the stack maps from the authorizer's
/// context never reaches the backend: seen through a route whose backend
/// echoes the request's headers.
async fn forged_headers(
    inputs: &Inputs<'_>,
    tokens: &TokenCommand,
    client: &reqwest::Client,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    const PROMISE: &str = "a client's copy of a mapped header never reaches the backend";
    let id = "headers.forged";
    let Some(path) = inputs.echo_path else {
        checks.push(not_checked(id, PROMISE, "give --echo-path (a GET route whose backend echoes request headers)"));
        return Ok(());
    };
    let routes = crate::local::routes::Routes::new(&inputs.stack.api.routes);
    let Some(route) = get_route(&routes, path) else {
        checks.push(fail(id, PROMISE, format!("no GET route of the stack applies to --echo-path {path}")));
        return Ok(());
    };
    if route.context_headers.is_empty() {
        checks.push(not_checked(id, PROMISE, format!("{} {} maps no header", route.method, route.path)));
        return Ok(());
    }
    let token = tokens.token(&route.scopes, inputs.client).await?;
    let mut request = token.on(client.get(inputs.target.url(path)));
    for header in route.context_headers.keys() {
        request = request.header(header.as_str(), FORGED);
    }
    let headers: Vec<&str> = route.context_headers.keys().map(String::as_str).collect();
    checks.push(match inputs.target.send(request).await {
        Ok(a) if a.refused_by_authorizer() => fail(id, PROMISE, format!("the request was refused: HTTP {}", a.status)),
        Ok(a) if a.body.contains(FORGED) => {
            fail(id, PROMISE, format!("the backend received a client's copy of one of {}", headers.join(", ")))
        }
        Ok(a) => {
            pass(id, PROMISE, format!("{} set by the gateway (backend answered HTTP {})", headers.join(", "), a.status))
        }
        Err(error) => fail(id, PROMISE, error),
    });
    Ok(())
}

/// Spellings of a path part that gateways and authorizers have read
/// differently: an encoded `/`, `.` and `:`, and a trailing slash.
const SPELLINGS: [&str; 4] = ["a%2Fb", "a%2Eb", "a%3Ab", "verify/"];

/// However the variable part of a route is spelled, a token without the
/// route's scopes never reaches the backend; what a token with them gets is
/// recorded (the status, and the path the backend saw when it echoes it).
async fn path_spellings(
    inputs: &Inputs<'_>,
    tokens: &TokenCommand,
    client: &reqwest::Client,
    checks: &mut Vec<Check>,
) -> anyhow::Result<Vec<Sent>> {
    const PROMISE: &str = "no spelling of a path lets a token without the route's scopes reach the backend";
    let id = "authorizer.path_spellings";
    let variable = |r: &&RouteSpec| r.template.parts().last().is_some_and(|p| matches!(p, Part::Param(_)));
    let Some(route) = inputs.stack.api.routes.iter().filter(|r| safe(r) && !r.any_valid_token).find(variable) else {
        checks.push(not_checked(id, PROMISE, "no GET route that needs scopes ends in a variable part"));
        return Ok(Vec::new());
    };
    let sample = sample_path(route);
    let stem = sample.trim_end_matches("verify");
    let without = tokens.token(&[], inputs.client).await?;
    let with = tokens.token(&route.scopes, inputs.client).await?;
    let mut reached = Vec::new();
    let mut recorded = Vec::new();
    let mut sent = Vec::new();
    for spelling in SPELLINGS {
        let url = inputs.target.url(&format!("{stem}{spelling}"));
        let send = |token: &super::tokens::Token| inputs.target.send(token.on(client.get(&url)));
        match send(&without).await {
            Ok(answer) if answer.status < 400 => reached.push(format!("{stem}{spelling} → HTTP {}", answer.status)),
            Ok(_) | Err(_) => {}
        }
        let seen = match send(&with).await {
            Ok(answer) => {
                if let Some(request_id) = &answer.request_id {
                    let label = format!("GET {stem}{spelling}");
                    sent.push(Sent { label, request_id: request_id.clone(), authorized: true });
                }
                let path = serde_json::from_str::<serde_json::Value>(&answer.body).ok();
                let path = path.as_ref().and_then(|b| b["path"].as_str()).map(|p| format!(", backend saw {p}"));
                format!("{spelling}: {}{}", answer.status, path.unwrap_or_default())
            }
            Err(error) => format!("{spelling}: {error}"),
        };
        recorded.push(seen);
    }
    let on = format!("{} {}", route.method, route.path);
    checks.push(if reached.is_empty() {
        pass(id, PROMISE, format!("{on}, refused every spelling; with its scopes: {}", recorded.join("; ")))
    } else {
        fail(id, PROMISE, format!("{on}: a token without its scopes reached the backend: {}", reached.join("; ")))
    });
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::stack::template::RouteTemplate;

    fn route(method: &str, path: &str) -> RouteSpec {
        RouteSpec {
            method: method.into(),
            path: path.into(),
            template: RouteTemplate::parse(path).expect("valid"),
            backend: "https://b".into(),
            context_headers: BTreeMap::new(),
            any_valid_token: false,
            scopes: vec!["pets:read".into()],
        }
    }

    #[test]
    fn a_sample_path_is_one_its_route_applies_to() {
        for (path, sample) in
            [("/pets/{id}", "/pets/verify"), ("/files/{path+}", "/files/verify/path"), ("/pets:purge", "/pets:purge")]
        {
            let route = route("GET", path);
            assert_eq!(sample_path(&route), sample);
            let routes = crate::local::routes::Routes::new(std::slice::from_ref(&route));
            assert_eq!(get_route(&routes, sample).map(|r| r.path.as_str()), Some(path), "{path}");
        }
        let pets = crate::local::routes::Routes::new(&[route("GET", "/pets/{id}")]);
        for elsewhere in ["/pets", "/pets/7/toys", "/users/7"] {
            assert!(get_route(&pets, elsewhere).is_none(), "{elsewhere}");
        }
        let files = crate::local::routes::Routes::new(&[route("GET", "/files/{path+}")]);
        assert!(get_route(&files, "/files/a/b/c").is_some());
    }

    #[test]
    fn only_reads_are_sent_with_a_token_that_should_pass() {
        assert!(safe(&route("GET", "/pets")) && safe(&route("ANY", "/pets")) && safe(&route("HEAD", "/pets")));
        for write in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(!safe(&route(write, "/pets")), "{write}");
        }
    }
}
