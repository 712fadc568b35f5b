//! stack.yaml → a validated [`Stack`], before any AWS call.
//!
//! Two phases, as in ripgrep's low/high-level arguments: [`RawStack`] records
//! what the file says (serde, unknown fields refused, with the line serde_yaml
//! reports); [`Stack::load`] resolves `${env:NAME}` references and checks
//! everything that can be checked without AWS — CIDRs, base paths, cache TTL,
//! identity sources, the cache-replay hazard, and the authorizer's own
//! settings through the authorizer's configuration parser. Every problem is
//! reported, not only the first, each as `file: field.path: what is wrong`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

// ------------------------------------------------------------------ raw model

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    /// Name of the stack: tags every resource, prefixes every name.
    pub stack: String,
    pub region: Option<String>,
    pub authorizer: RawAuthorizer,
    pub api: RawApi,
    #[serde(default)]
    pub domain: Option<RawDomain>,
    #[serde(default)]
    pub waf: Option<RawWaf>,
    pub stage: RawStage,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    /// `{build: authorizer}` or `{zip: path}` (a one-key map, not a YAML tag).
    #[serde(with = "serde_yaml::with::singleton_map")]
    pub code: RawCode,
    #[serde(default = "default_memory")]
    pub memory_mb: i32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i32,
    #[serde(default)]
    pub architecture: Architecture,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default = "default_identity_sources")]
    pub identity_sources: Vec<String>,
    #[serde(default)]
    pub cache_ttl_seconds: i32,
    /// Accept certificate binding with a cache keyed only by the token
    /// (see the cache-replay note in README). Off unless the file says so.
    #[serde(default)]
    pub allow_cache_replay_with_binding: bool,
}

fn default_memory() -> i32 {
    128
}
fn default_timeout() -> i32 {
    5
}
fn default_identity_sources() -> Vec<String> {
    vec!["method.request.header.Authorization".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawCode {
    /// Build a crate of this workspace (`authorizer`) for Lambda.
    Build(String),
    /// A zip holding `bootstrap`, relative to stack.yaml.
    Zip(PathBuf),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn as_lambda(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Create and own a REST API of this name...
    pub name: Option<String>,
    /// ...or adopt an existing one by id (never deleted by teardown).
    pub id: Option<String>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// `realm` of the 401 challenge configured on the UNAUTHORIZED response.
    #[serde(default = "default_realm")]
    pub realm: String,
}

fn default_realm() -> String {
    "api".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub method: String,
    pub path: String,
    pub backend: String,
    /// Request header → authorizer context key, e.g. `X-Sub: sub`.
    #[serde(default)]
    pub context_headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    pub name: String,
    /// `{request: true}` or `{arn: ...}`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    pub certificate: RawCertificate,
    #[serde(default = "default_security_policy")]
    pub security_policy: String,
    pub truststore: RawTruststore,
    /// Base path mapped to the stage; empty for the root.
    #[serde(default)]
    pub base_path: String,
}

fn default_security_policy() -> String {
    "TLS_1_2".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawCertificate {
    /// Request a certificate for the domain, validated by DNS.
    Request(bool),
    /// Use an existing ACM certificate.
    Arn(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTruststore {
    /// PEM bundle of the CAs that issue client certificates, relative to stack.yaml.
    pub file: PathBuf,
    pub bucket: String,
    #[serde(default = "default_truststore_key")]
    pub key: String,
}

fn default_truststore_key() -> String {
    "truststore.pem".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaf {
    pub allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub throttling: Option<Throttling>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttling {
    pub rate_limit: f64,
    pub burst_limit: i32,
}

// ------------------------------------------------------------------ validated

/// A value that may hold a secret: displayed masked unless known public.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub secret: bool,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Setting {
    /// What may be printed.
    pub fn display(&self) -> String {
        if self.secret { "(sensitive)".into() } else { format!("{:?}", self.value) }
    }
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub file: PathBuf,
    pub name: String,
    pub region: Option<String>,
    pub authorizer: AuthorizerSpec,
    pub api: ApiSpec,
    pub domain: Option<DomainSpec>,
    pub waf: Option<Vec<Cidr>>,
    pub stage: StageSpec,
}

#[derive(Debug, Clone)]
pub enum Code {
    Build(String),
    Zip(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AuthorizerSpec {
    pub code: Code,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, Setting>,
    pub identity_sources: Vec<String>,
    pub cache_ttl_seconds: i32,
}

#[derive(Debug, Clone)]
pub enum ApiSource {
    Create(String),
    Adopt(String),
}

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub source: ApiSource,
    pub routes: Vec<RouteSpec>,
    /// The `WWW-Authenticate` value of every 401 (realm and accepted schemes).
    pub unauthorized_challenge: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
    pub backend: String,
    pub context_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct DomainSpec {
    pub name: String,
    pub certificate: CertificateSpec,
    pub security_policy: String,
    pub truststore_pem: Vec<u8>,
    pub truststore_bucket: String,
    pub truststore_key: String,
    pub base_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSpec {
    Request,
    Existing(String),
}

/// An IPv4 or IPv6 network in canonical form (`203.0.113.0/24`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr(pub String);

impl Cidr {
    pub fn is_ipv6(&self) -> bool {
        self.0.contains(':')
    }
}

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<Throttling>,
}

// ------------------------------------------------------------------ errors

/// Everything wrong with a stack file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StackError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `authorizer.cache_ttl_seconds`, `api.routes[2].path`, ...
    pub field: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.problems.len() == 1 { "" } else { "s" };
        writeln!(
            f,
            "{} is not a valid stack ({} problem{plural}); nothing was changed:",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            match p.line {
                Some(line) => writeln!(f, "  {}:{line}: {}: {}", self.file.display(), p.field, p.message)?,
                None => writeln!(f, "  {}: {}: {}", self.file.display(), p.field, p.message)?,
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { field: field.into(), line: None, message: message.into() });
    }
}

// ------------------------------------------------------------------ loading

/// Context variables API Gateway can use as identity sources (the subset that
/// makes sense for a token authorizer on an mTLS domain).
const CONTEXT_IDENTITY_SOURCES: &[&str] = &[
    "context.identity.sourceIp",
    "context.identity.clientCert.clientCertPem",
    "context.identity.clientCert.subjectDN",
    "context.identity.clientCert.issuerDN",
    "context.identity.clientCert.serialNumber",
    "context.identity.userAgent",
    "context.domainName",
    "context.httpMethod",
    "context.resourcePath",
    "context.stage",
];

impl Stack {
    /// Reads and validates `path`; `env` resolves `${env:NAME}`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Stack, StackError> {
        let error = |problems| StackError { file: path.to_owned(), problems };
        let text = std::fs::read_to_string(path).map_err(|e| {
            error(vec![Problem { field: "(file)".into(), line: None, message: format!("cannot be read: {e}") }])
        })?;
        let raw: RawStack = serde_yaml::from_str(&text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            let message = e.to_string();
            // serde_yaml's message is "path: what is wrong at line L column C".
            let (field, message) = match message.split_once(": ") {
                Some((field, rest)) if !field.contains(' ') => (field.to_owned(), rest.to_owned()),
                _ => ("(document)".to_owned(), message),
            };
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            error(vec![Problem { field, line, message }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        validate(raw, path, base, env).map_err(|p| error(p.0))
    }
}

fn validate(raw: RawStack, file: &Path, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Stack, Problems> {
    let mut problems = Problems::default();
    let mut resolve = |field: &str, text: &str| -> Setting {
        match interpolate(text, env) {
            Ok((value, secret)) => Setting { value, secret },
            Err(message) => {
                problems.add(field, message);
                Setting { value: String::new(), secret: true }
            }
        }
    };

    // Names become parts of AWS resource names (roles, functions, buckets).
    let name_ok = !raw.stack.is_empty()
        && raw.stack.len() <= 40
        && raw.stack.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && raw.stack.as_bytes()[0].is_ascii_alphabetic();
    let mut stack_problem = None;
    if !name_ok {
        stack_problem = Some("must be 1-40 letters, digits or '-', starting with a letter");
    }

    // --- authorizer
    let a = raw.authorizer;
    let environment: BTreeMap<String, Setting> = a
        .environment
        .iter()
        .map(|(k, v)| {
            let mut setting = resolve(&format!("authorizer.environment.{k}"), v);
            setting.secret |= authorizer::config::SECRET_VARIABLES.contains(&k.as_str());
            (k.clone(), setting)
        })
        .collect();
    let code = match &a.code {
        RawCode::Build(krate) => Code::Build(krate.clone()),
        RawCode::Zip(zip) => Code::Zip(base.join(zip)),
    };
    let api_source = match (raw.api.name, raw.api.id) {
        (Some(name), None) => Some(ApiSource::Create(name)),
        (None, Some(id)) => Some(ApiSource::Adopt(resolve("api.id", &id).value)),
        _ => None,
    };
    let domain_name = raw.domain.as_ref().map(|d| resolve("domain.name", &d.name).value);
    let certificate_arn = raw.domain.as_ref().and_then(|d| match &d.certificate {
        RawCertificate::Arn(arn) => Some(resolve("domain.certificate.arn", arn).value),
        RawCertificate::Request(_) => None,
    });
    let backends: Vec<String> = raw
        .api
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| resolve(&format!("api.routes[{i}].backend"), &r.backend).value)
        .collect();
    let stage_variables: BTreeMap<String, String> = raw
        .stage
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), resolve(&format!("stage.variables.{k}"), v).value))
        .collect();
    if let Some(message) = stack_problem {
        problems.add("stack", message);
    }

    if !(128..=10240).contains(&a.memory_mb) {
        problems.add("authorizer.memory_mb", format!("{} is outside 128..=10240", a.memory_mb));
    }
    if !(1..=30).contains(&a.timeout_seconds) {
        // API Gateway waits at most 29 s for an authorizer; more is never useful.
        problems.add("authorizer.timeout_seconds", format!("{} is outside 1..=30", a.timeout_seconds));
    }
    if !(0..=3600).contains(&a.cache_ttl_seconds) {
        problems.add(
            "authorizer.cache_ttl_seconds",
            format!("{} is outside 0..=3600 (API Gateway's limit)", a.cache_ttl_seconds),
        );
    }
    if a.identity_sources.is_empty() {
        problems.add("authorizer.identity_sources", "needs at least one source");
    }
    for (i, source) in a.identity_sources.iter().enumerate() {
        if let Err(message) = check_identity_source(source, &stage_variables) {
            problems.add(format!("authorizer.identity_sources[{i}]"), message);
        }
    }

    // The authorizer's settings, checked by the authorizer's own parser, so
    // what would fail the function's init fails here instead.
    let plain: BTreeMap<String, String> = environment.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
    for name in plain.keys() {
        let reserved = name.starts_with("AWS_") || name == "_HANDLER" || name == "LAMBDA_TASK_ROOT";
        if reserved {
            problems.add(format!("authorizer.environment.{name}"), "is reserved by Lambda");
        } else if !authorizer::config::VARIABLES.contains(&name.as_str())
            && name != "RUST_LOG"
            && name != "SSL_CERT_FILE"
        {
            problems.add(format!("authorizer.environment.{name}"), "is not a setting the authorizer reads");
        }
    }
    let authorizer_config = match authorizer::Config::from_map(&plain) {
        Ok(config) => Some(config),
        Err(e) => {
            problems.add(format!("authorizer.environment.{}", e.variable), e.problem);
            None
        }
    };
    if let Some(config) = &authorizer_config {
        check_cache_keys(config, &a, &mut problems);
    }
    if raw.api.realm.is_empty()
        || raw.api.realm.contains(['"', '\'', '\\'])
        || raw.api.realm.chars().any(char::is_control)
    {
        problems.add("api.realm", "must be non-empty, without quotes, backslashes or control characters");
    }
    let unauthorized_challenge = authorizer::error::unauthorized_challenge(
        &raw.api.realm,
        &authorizer_config.map(|c| c.dpop).unwrap_or_else(|| authorizer::config::DpopSettings {
            mode: authorizer::config::DpopMode::Off,
            algorithms: Vec::new(),
            iat_window: std::time::Duration::ZERO,
        }),
    );

    // --- api
    if api_source.is_none() {
        problems.add("api", "set exactly one of `name` (create the REST API) or `id` (adopt an existing one)");
    }
    let mut seen = BTreeSet::new();
    let mut routes = Vec::new();
    for (i, route) in raw.api.routes.iter().enumerate() {
        let field = |f: &str| format!("api.routes[{i}].{f}");
        let method = route.method.to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"].contains(&method.as_str()) {
            problems.add(field("method"), format!("{:?} is not an HTTP method or ANY", route.method));
        }
        if let Err(message) = check_resource_path(&route.path) {
            problems.add(field("path"), message);
        }
        if !seen.insert((method.clone(), route.path.clone())) {
            problems.add(field("path"), format!("{method} {} is declared twice", route.path));
        }
        if !(backends[i].starts_with("https://") || backends[i].starts_with("http://")) {
            problems.add(field("backend"), "must be an http(s) URL");
        }
        for (header, key) in &route.context_headers {
            if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                problems.add(field("context_headers"), format!("{header:?} is not a header name"));
            }
            if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || key.is_empty() {
                problems.add(field("context_headers"), format!("{key:?} is not an authorizer context key"));
            }
        }
        routes.push(RouteSpec {
            method,
            path: route.path.clone(),
            backend: backends[i].clone(),
            context_headers: route.context_headers.clone(),
        });
    }

    // --- domain
    let domain = match raw.domain {
        None => None,
        Some(d) => {
            let name = domain_name.unwrap_or_default();
            if !is_domain_name(&name) {
                problems.add("domain.name", format!("{name:?} is not a domain name"));
            }
            if let Err(message) = check_base_path(&d.base_path) {
                problems.add("domain.base_path", message);
            }
            if !["TLS_1_2"].contains(&d.security_policy.as_str()) {
                // mTLS custom domains require TLS 1.2.
                problems.add("domain.security_policy", "must be TLS_1_2 (required for mutual TLS)");
            }
            let certificate = match d.certificate {
                RawCertificate::Request(true) => CertificateSpec::Request,
                RawCertificate::Request(false) => {
                    problems.add(
                        "domain.certificate.request",
                        "use `request: true`, or `arn:` for an existing certificate",
                    );
                    CertificateSpec::Request
                }
                RawCertificate::Arn(_) => {
                    let arn = certificate_arn.unwrap_or_default();
                    if !arn.starts_with("arn:") || !arn.contains(":acm:") {
                        problems.add("domain.certificate.arn", format!("{arn:?} is not an ACM certificate ARN"));
                    }
                    CertificateSpec::Existing(arn)
                }
            };
            let file = base.join(&d.truststore.file);
            let pem = match std::fs::read(&file) {
                Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => pem,
                Ok(_) => {
                    problems.add("domain.truststore.file", format!("{} holds no PEM certificate", file.display()));
                    Vec::new()
                }
                Err(e) => {
                    problems.add("domain.truststore.file", format!("{}: {e}", file.display()));
                    Vec::new()
                }
            };
            if !is_bucket_name(&d.truststore.bucket) {
                problems.add(
                    "domain.truststore.bucket",
                    format!("{:?} is not a valid S3 bucket name", d.truststore.bucket),
                );
            }
            Some(DomainSpec {
                name,
                certificate,
                security_policy: d.security_policy,
                truststore_pem: pem,
                truststore_bucket: d.truststore.bucket,
                truststore_key: d.truststore.key,
                base_path: d.base_path,
            })
        }
    };

    // --- waf
    let waf = raw.waf.map(|w| {
        if w.allow.is_empty() {
            problems.add("waf.allow", "an empty allowlist would block every request; remove `waf` instead");
        }
        w.allow
            .iter()
            .enumerate()
            .filter_map(|(i, text)| match parse_cidr(text) {
                Ok(cidr) => Some(cidr),
                Err(message) => {
                    problems.add(format!("waf.allow[{i}]"), message);
                    None
                }
            })
            .collect::<Vec<_>>()
    });

    // --- stage
    let stage_name_ok = !raw.stage.name.is_empty()
        && raw.stage.name.len() <= 128
        && raw.stage.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !stage_name_ok {
        problems.add("stage.name", "must be letters, digits, '-' or '_'");
    }
    for key in stage_variables.keys() {
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            problems.add(format!("stage.variables.{key}"), "names may hold only letters, digits and '_'");
        }
    }
    if let Some(t) = raw.stage.throttling
        && (t.rate_limit < 0.0 || t.burst_limit < 0)
    {
        problems.add("stage.throttling", "limits must not be negative");
    }

    if !problems.0.is_empty() {
        return Err(problems);
    }
    Ok(Stack {
        file: file.to_owned(),
        name: raw.stack,
        region: raw.region,
        authorizer: AuthorizerSpec {
            code,
            memory_mb: a.memory_mb,
            timeout_seconds: a.timeout_seconds,
            architecture: a.architecture,
            environment,
            identity_sources: a.identity_sources,
            cache_ttl_seconds: a.cache_ttl_seconds,
        },
        api: ApiSpec { source: api_source.expect("checked above"), routes, unauthorized_challenge },
        domain,
        waf,
        stage: StageSpec { name: raw.stage.name, variables: stage_variables, throttling: raw.stage.throttling },
    })
}

/// The identity source that keys API Gateway's authorizer cache by the client
/// certificate itself. `subjectDN`, `issuerDN` and `serialNumber` do not: two
/// certificates of the same CA can share them (or be issued to share them).
const CERTIFICATE_IDENTITY_SOURCE: &str = "context.identity.clientCert.clientCertPem";

/// The identity source of the DPoP proof header.
const DPOP_IDENTITY_SOURCE: &str = "method.request.header.DPoP";

/// What API Gateway's authorizer cache would replay wrongly. A cached answer
/// is reused for every request with the same identity-source values:
/// - with certificate binding or a certificate allowlist, an answer is about
///   one certificate, so the cache must be keyed by the certificate (or off),
///   or a cached Allow reaches every certificate the truststore accepts;
/// - a DPoP proof is good for one request, so a cached answer would let a
///   proof (or none) be replayed: the cache must be off.
fn check_cache_keys(config: &authorizer::Config, a: &RawAuthorizer, problems: &mut Problems) {
    use authorizer::binding::BindingMode;
    use authorizer::config::DpopMode;
    let cached = a.cache_ttl_seconds > 0;
    let keyed_by_certificate = a.identity_sources.iter().any(|s| s == CERTIFICATE_IDENTITY_SOURCE);
    let about_one_certificate = config.binding != BindingMode::Off || config.cert_allowlist.is_some();
    if cached && about_one_certificate && !keyed_by_certificate && !a.allow_cache_replay_with_binding {
        let why = if config.cert_allowlist.is_some() && config.binding == BindingMode::Off {
            "a client certificate allowlist is set"
        } else {
            "certificate binding is on"
        };
        problems.add(
            "authorizer.cache_ttl_seconds",
            format!(
                "{why} and the authorizer cache is not keyed by the client certificate: API Gateway would replay a \
                 cached Allow to any client certificate the truststore accepts. Set cache_ttl_seconds: 0, add the \
                 identity source {CERTIFICATE_IDENTITY_SOURCE} (subjectDN, issuerDN and serialNumber do not identify \
                 a certificate), or set allow_cache_replay_with_binding: true"
            ),
        );
    }
    if config.dpop.mode != DpopMode::Off && cached {
        problems.add(
            "authorizer.cache_ttl_seconds",
            "DPoP is on and a DPoP proof is good for one request only: a cached answer would accept a replayed \
             proof. Set cache_ttl_seconds: 0",
        );
    }
    if config.dpop.mode == DpopMode::Required && !a.identity_sources.iter().any(|s| s == DPOP_IDENTITY_SOURCE) {
        problems.add(
            "authorizer.identity_sources",
            format!(
                "DPOP is required: add {DPOP_IDENTITY_SOURCE}, so API Gateway answers 401 to a request without a proof"
            ),
        );
    }
}

/// Replaces every `${env:NAME}`; the result is secret if any reference was used.
fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut secret = false;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated reference in {text:?}"))?;
        let reference = &after[..end];
        let name = reference
            .strip_prefix("env:")
            .ok_or_else(|| format!("unknown reference ${{{reference}}}: only ${{env:NAME}} is supported"))?;
        let value =
            env(name).ok_or_else(|| format!("refers to ${{env:{name}}}, but {name} is not set in the environment"))?;
        out.push_str(&value);
        secret = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, secret))
}

fn check_identity_source(source: &str, stage_variables: &BTreeMap<String, String>) -> Result<(), String> {
    let valid_name = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if let Some(header) = source.strip_prefix("method.request.header.") {
        return if valid_name(header) { Ok(()) } else { Err(format!("{header:?} is not a header name")) };
    }
    if let Some(param) = source.strip_prefix("method.request.querystring.") {
        return if valid_name(param) { Ok(()) } else { Err(format!("{param:?} is not a query parameter name")) };
    }
    if let Some(variable) = source.strip_prefix("stageVariables.") {
        return if stage_variables.contains_key(variable) {
            Ok(())
        } else {
            Err(format!("stage variable {variable:?} is not defined in stage.variables"))
        };
    }
    if source.starts_with("context.") {
        return if CONTEXT_IDENTITY_SOURCES.contains(&source) {
            Ok(())
        } else {
            Err(format!("{source:?} is not an API Gateway context variable usable as an identity source"))
        };
    }
    Err(format!(
        "{source:?} is not an identity source: use method.request.header.NAME, method.request.querystring.NAME, \
         stageVariables.NAME or a context variable"
    ))
}

fn check_resource_path(path: &str) -> Result<(), String> {
    if path == "/" {
        return Ok(());
    }
    if !path.starts_with('/') || path.ends_with('/') || path.contains("//") {
        return Err(format!("{path:?} must start with '/', not end with '/', and have no empty segment"));
    }
    for segment in path[1..].split('/') {
        let inner = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        let ok = match inner {
            Some(param) => {
                let param = param.strip_suffix('+').unwrap_or(param);
                !param.is_empty() && param.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            None => segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:@".contains(&b)),
        };
        if !ok {
            return Err(format!("segment {segment:?} of {path:?} is not a valid resource path part"));
        }
    }
    Ok(())
}

fn check_base_path(base_path: &str) -> Result<(), String> {
    if base_path.starts_with('/') {
        return Err(format!("{base_path:?} must not start with '/' (write \"v1\", not \"/v1\"; empty for the root)"));
    }
    if base_path.contains("//") || base_path.ends_with('/') {
        return Err(format!("{base_path:?} has an empty segment"));
    }
    if !base_path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b)) {
        return Err(format!("{base_path:?} may hold only letters, digits, '-', '.', '_' and '/'"));
    }
    Ok(())
}

fn is_domain_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

/// `203.0.113.0/24` or `2001:db8::/32`; host bits must be zero (WAF refuses
/// them, and a typo there usually means a wrong prefix length).
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (address, prefix) = text.split_once('/').ok_or_else(|| format!("{text:?} is not a CIDR (missing /prefix)"))?;
    let address: IpAddr = address.parse().map_err(|_| format!("{text:?}: {address:?} is not an IP address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| format!("{text:?}: {prefix:?} is not a prefix length"))?;
    let canonical = match address {
        IpAddr::V4(v4) => {
            if prefix > 32 || prefix == 0 {
                return Err(format!("{text:?}: an IPv4 prefix length is 1..=32"));
            }
            let bits = u32::from(v4);
            let mask = u32::MAX << (32 - prefix);
            if bits & !mask != 0 {
                return Err(format!(
                    "{text:?} has host bits set; did you mean {}/{prefix}?",
                    std::net::Ipv4Addr::from(bits & mask)
                ));
            }
            format!("{v4}/{prefix}")
        }
        IpAddr::V6(v6) => {
            if prefix > 128 || prefix == 0 {
                return Err(format!("{text:?}: an IPv6 prefix length is 1..=128"));
            }
            let bits = u128::from(v6);
            let mask = u128::MAX << (128 - u32::from(prefix));
            if bits & !mask != 0 {
                return Err(format!(
                    "{text:?} has host bits set; did you mean {}/{prefix}?",
                    std::net::Ipv6Addr::from(bits & mask)
                ));
            }
            format!("{v6}/{prefix}")
        }
    };
    Ok(Cidr(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("203.0.113.0/24").unwrap().0, "203.0.113.0/24");
        assert_eq!(parse_cidr("2001:DB8::/32").unwrap().0, "2001:db8::/32");
        assert!(parse_cidr("203.0.113.5/24").unwrap_err().contains("did you mean 203.0.113.0/24"));
        for bad in ["203.0.113.0", "300.0.0.0/8", "10.0.0.0/33", "10.0.0.0/0", "2001:db8::/129", "x/8"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_paths() {
        assert!(check_base_path("").is_ok());
        assert!(check_base_path("v1").is_ok());
        assert!(check_base_path("v1/pets").is_ok());
        for bad in ["/v1", "v1//pets", "v1/", "v 1"] {
            assert!(check_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interpolation() {
        let env = |name: &str| (name == "SECRET").then(|| "s3cr3t".to_owned());
        assert_eq!(interpolate("plain", &env), Ok(("plain".into(), false)));
        assert_eq!(interpolate("a${env:SECRET}b", &env), Ok(("as3cr3tb".into(), true)));
        assert!(interpolate("${env:MISSING}", &env).unwrap_err().contains("MISSING is not set"));
        assert!(interpolate("${ssm:/x}", &env).unwrap_err().contains("only ${env:NAME}"));
        assert!(interpolate("${env:SECRET", &env).is_err());
    }

    /// Loads `authorizer:` settings in an otherwise minimal stack.
    fn load_authorizer(environment: &str, identity_sources: &[&str], ttl: i32) -> Result<Stack, StackError> {
        let dir = std::env::temp_dir().join(format!("stack-guard-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let sources: String = identity_sources.iter().map(|s| format!("    - {s}\n")).collect();
        let yaml = format!(
            "stack: guard\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{environment}  identity_sources:\n{sources}  cache_ttl_seconds: {ttl}\napi:\n  name: guard\nstage:\n  name: prod\n"
        );
        let path = dir.join("stack.yaml");
        std::fs::write(&path, yaml).unwrap();
        let result = Stack::load(&path, &|_| None);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    const JWT_ENV: &str = "    TOKEN_VALIDATION: jwt\n    JWKS_URI: https://idp.example.com/jwks\n    TOKEN_ISSUER: https://idp.example.com/\n    AUDIENCE: api\n";

    fn refused_for_replay(result: Result<Stack, StackError>) -> bool {
        result.is_err_and(|e| e.problems.iter().any(|p| p.message.contains("replay")))
    }

    #[test]
    fn only_the_certificate_pem_keys_the_cache_by_certificate() {
        let bound = format!("{JWT_ENV}    CERT_BINDING: required\n");
        for weak in ["subjectDN", "issuerDN", "serialNumber"] {
            let source = format!("context.identity.clientCert.{weak}");
            let sources = ["method.request.header.Authorization", source.as_str()];
            assert!(refused_for_replay(load_authorizer(&bound, &sources, 300)), "{weak} does not key by certificate");
        }
        let pem = ["method.request.header.Authorization", "context.identity.clientCert.clientCertPem"];
        assert!(load_authorizer(&bound, &pem, 300).is_ok());
        assert!(load_authorizer(&bound, &["method.request.header.Authorization"], 0).is_ok(), "no cache, no replay");
    }

    #[test]
    fn an_allowlist_needs_a_cache_keyed_by_the_certificate() {
        let allowlist =
            format!("{JWT_ENV}    CERT_BINDING: \"off\"\n    CLIENT_CERT_ALLOWLIST: '[{{\"subject\":\"CN=a\"}}]'\n");
        assert!(refused_for_replay(load_authorizer(&allowlist, &["method.request.header.Authorization"], 300)));
        let pem = ["method.request.header.Authorization", "context.identity.clientCert.clientCertPem"];
        assert!(load_authorizer(&allowlist, &pem, 300).is_ok());
        let unbound = format!("{JWT_ENV}    CERT_BINDING: \"off\"\n");
        assert!(load_authorizer(&unbound, &["method.request.header.Authorization"], 300).is_ok());
    }

    #[test]
    fn identity_sources() {
        let vars: BTreeMap<String, String> = [("tenant".to_owned(), "a".to_owned())].into();
        assert!(check_identity_source("method.request.header.Authorization", &vars).is_ok());
        assert!(check_identity_source("context.identity.clientCert.clientCertPem", &vars).is_ok());
        assert!(check_identity_source("stageVariables.tenant", &vars).is_ok());
        assert!(check_identity_source("stageVariables.missing", &vars).is_err());
        assert!(check_identity_source("context.identity.clientCert.fingerprint", &vars).is_err());
        assert!(check_identity_source("header.Authorization", &vars).is_err());
    }
}
