//! Everything about a stack that can be checked without AWS, one function per
//! section of the file. Each check records every problem it finds and goes
//! on, so one run reports them all.
//!
//! What the authorizer will accept is not re-implemented here: its settings
//! go through `authorizer::Config::from_map`, its verbs, variable names and
//! secret settings come from the authorizer crate, and its 401 challenge from
//! `authorizer::error::unauthorized_challenge`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use authorizer::binding::BindingMode;
use authorizer::dpop::{DpopMode, DpopSettings};
use authorizer::routes::{DefaultSpec, Matching, Place, TableSpec};

use super::model::*;
use super::problem::{Problem, Unset};
use super::raw::*;
use super::template::{Part, RouteTemplate};

/// Context variables API Gateway can use as identity sources (the subset that
/// makes sense for a token authorizer on an mTLS domain).
pub const CONTEXT_IDENTITY_SOURCES: &[&str] = &[
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

/// The identity source that keys API Gateway's authorizer cache by the client
/// certificate itself. `subjectDN`, `issuerDN` and `serialNumber` do not: two
/// certificates of the same CA can share them (or be issued to share them).
const CERTIFICATE_IDENTITY_SOURCE: &str = "context.identity.clientCert.clientCertPem";

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// The identity source of the DPoP proof header.
const DPOP_IDENTITY_SOURCE: &str = "method.request.header.DPoP";

/// Why a secret may not go in an integration URI or a stage variable.
const READABLE_IN_API_GATEWAY: &str =
    "is readable by anyone allowed apigateway:GET on the API and is printed in every plan";

/// Why `${env:…}` is refused in a name: it is printed wherever the resource is.
const PART_OF_EVERY_NAME: &str =
    "names a resource: it is part of addresses, ARNs and URLs that plans, errors and outputs print";

/// The problems found so far, and how `${env:NAME}` is resolved.
struct Checks<'a> {
    problems: Vec<Problem>,
    env: &'a dyn Fn(&str) -> Option<String>,
    unset: Unset,
}

impl Checks<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { field: field.into(), line: None, message: message.into() });
    }

    /// Resolves `${env:NAME}` references in a value of the authorizer's
    /// environment; a value that used one is secret.
    fn resolve(&mut self, field: &str, text: &str) -> Setting {
        match interpolate(text, self.env) {
            Ok((value, false)) => Setting::public(value),
            Ok((value, true)) => Setting::secret(value),
            Err(message) => {
                self.problem(field, message);
                Setting::secret(String::new())
            }
        }
    }

    /// [`Checks::resolve`] for a secret variable of the authorizer: with
    /// [`Unset::SecretsUnknown`], one whose `${env:…}` is not set
    /// is unknown rather than a problem.
    fn resolve_secret(&mut self, field: &str, text: &str) -> Setting {
        let well_formed = interpolate(text, &|_| Some(String::new())).is_ok();
        if self.unset == Unset::SecretsIgnored && well_formed {
            return Setting::unknown();
        }
        // A reference that is not set makes it unknown; a malformed one stays a problem.
        if self.unset == Unset::SecretsUnknown && well_formed && interpolate(text, self.env).is_err() {
            return Setting::unknown();
        }
        Setting::secret(self.resolve(field, text).reveal())
    }

    /// A value that must be written out in stack.yaml: `${env:…}` marks a
    /// secret, and `where_it_shows` says who can read this field anyway.
    fn literal(&mut self, field: &str, text: &str, where_it_shows: &str) -> String {
        if text.contains("${") {
            self.problem(
                field,
                format!(
                    "takes no ${{env:…}}: a value from the environment is treated as a secret, and this one {where_it_shows}. \
                     Write the value here; a secret the authorizer needs goes in authorizer.environment (its secret \
                     variables are kept in Secrets Manager)"
                ),
            );
        }
        text.to_owned()
    }
}

pub(super) fn validate(
    raw: RawStack,
    file: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    unset: Unset,
) -> Result<Stack, Vec<Problem>> {
    let mut checks = Checks { problems: Vec::new(), env, unset };
    checks.stack_name(&raw.stack);
    let stage = checks.stage(raw.stage);
    let mut api = checks.api(&raw.api);
    let generated = checks.generated_settings(&raw.api);
    let (authorizer, dpop) = checks.authorizer(raw.authorizer, base, &stage.variables, generated, &raw.api, &raw.stack);
    if let Some(api) = &mut api {
        let dpop_off = DpopSettings { algorithms: Vec::new(), ..DpopSettings::default() };
        api.unauthorized_challenge =
            authorizer::error::unauthorized_challenge(&raw.api.realm, dpop.as_ref().unwrap_or(&dpop_off));
    }
    let domain = raw.domain.map(|d| checks.domain(d, base));
    if let (Some(domain), Some(region)) = (&domain, &raw.region) {
        checks.problems.extend(region_problems(domain, region));
    }
    let waf = raw.waf.map(|w| checks.waf(w, raw.api.ip_address_type));
    if !checks.problems.is_empty() {
        return Err(checks.problems);
    }
    Ok(Stack {
        file: file.to_owned(),
        fingerprint: String::new(),
        name: raw.stack,
        region: raw.region,
        authorizer,
        api: api.expect("an api section without problems is complete"),
        domain,
        waf,
        stage,
    })
}

impl Checks<'_> {
    /// Names become parts of AWS resource names (roles, functions, buckets).
    fn stack_name(&mut self, name: &str) {
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && name.as_bytes()[0].is_ascii_alphabetic();
        if !ok {
            self.problem("stack", "must be 1-40 letters, digits or '-', starting with a letter");
        }
    }

    fn stage(&mut self, raw: RawStage) -> StageSpec {
        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 128
            && raw.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            self.problem("stage.name", "must be letters, digits, '-' or '_'");
        }
        let mut variables = BTreeMap::new();
        for (key, value) in &raw.variables {
            if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                self.problem(format!("stage.variables.{key}"), "names may hold only letters, digits and '_'");
            }
            let value = self.literal(&format!("stage.variables.{key}"), value, READABLE_IN_API_GATEWAY);
            variables.insert(key.clone(), value);
        }
        if let Some(t) = raw.throttling
            && (t.rate_limit < 0.0 || t.burst_limit < 0)
        {
            self.problem("stage.throttling", "limits must not be negative");
        }
        let access_log = raw.access_log.map(|log| {
            self.retention("stage.access_log.retention_days", log.retention_days);
            AccessLogSpec {
                retention_days: log.retention_days,
                create_account_role: log.account_role == Some(AccountRole::Create),
            }
        });
        StageSpec { name: raw.name, variables, throttling: raw.throttling, access_log, monitoring: raw.monitoring }
    }

    /// CloudWatch Logs takes only some retention periods.
    fn retention(&mut self, field: &str, days: i32) {
        if !RETENTION_DAYS.contains(&days) {
            self.problem(field, format!("{days} is not a retention CloudWatch Logs offers: one of {RETENTION_DAYS:?}"));
        }
    }

    /// The function, its settings (through the authorizer's own parser, so
    /// what would fail its init fails here), and the authorizer cache.
    /// Returns the DPoP settings too: the API's 401 challenge names them.
    fn authorizer(
        &mut self,
        raw: RawAuthorizer,
        base: &Path,
        stage_variables: &BTreeMap<String, String>,
        generated: BTreeMap<String, Setting>,
        api: &RawApi,
        stack_name: &str,
    ) -> (AuthorizerSpec, Option<DpopSettings>) {
        if !(128..=10240).contains(&raw.memory_mb) {
            self.problem("authorizer.memory_mb", format!("{} is outside 128..=10240", raw.memory_mb));
        }
        if !(1..=30).contains(&raw.timeout_seconds) {
            // API Gateway waits at most 29 s for an authorizer; more is never useful.
            self.problem("authorizer.timeout_seconds", format!("{} is outside 1..=30", raw.timeout_seconds));
        }
        if !(0..=3600).contains(&raw.cache_ttl_seconds) {
            self.problem(
                "authorizer.cache_ttl_seconds",
                format!("{} is outside 0..=3600 (API Gateway's limit)", raw.cache_ttl_seconds),
            );
        }
        self.retention("authorizer.log_retention_days", raw.log_retention_days);
        if raw.identity_sources.is_empty() {
            self.problem("authorizer.identity_sources", "needs at least one source");
        }
        for (i, source) in raw.identity_sources.iter().enumerate() {
            if let Err(message) = check_identity_source(source, stage_variables) {
                self.problem(format!("authorizer.identity_sources[{i}]"), message);
            }
        }

        let mut environment = BTreeMap::new();
        let mut secret_references = BTreeMap::new();
        for (name, value) in &raw.environment {
            let field = format!("authorizer.environment.{name}");
            let reserved = name.starts_with("AWS_") || name == "_HANDLER" || name == "LAMBDA_TASK_ROOT";
            if reserved {
                self.problem(&field, "is reserved by Lambda");
            } else if let Some(how) = by_hand(name, value, api) {
                self.problem(&field, how);
            } else if !authorizer::config::VARIABLES.contains(&name.as_str())
                && !authorizer::config::RUNTIME_VARIABLES.contains(&name.as_str())
            {
                self.problem(&field, "is not a setting the authorizer reads");
            }
            let secret_variable = authorizer::config::SECRET_VARIABLES.contains(&name.as_str());
            if let Some(reference) = secret_reference(value) {
                match reference {
                    Ok(reference) if secret_variable => drop(secret_references.insert(name.clone(), reference)),
                    Ok(_) => self.problem(&field, format!("{REFERENCE_FORMS} are taken only by {}", secret_names())),
                    Err(message) => self.problem(&field, message),
                }
                continue;
            }
            let setting =
                if secret_variable { self.resolve_secret(&field, value) } else { self.resolve(&field, value) };
            environment.insert(name.clone(), setting);
        }
        environment.extend(generated);
        // The variable only with DPoP on: off, the authorizer's parser would
        // refuse it too, a second problem of the same cause.
        if raw.dpop_replay_store == DpopReplayStore::Dynamodb {
            if dpop_on(&environment) {
                let table = super::names::dpop_replay_table(stack_name);
                let store = authorizer::replay_store::ReplayStore::DynamoDb { table }.to_string();
                environment.insert(authorizer::replay_store::VARIABLE.to_owned(), Setting::public(store));
            } else {
                self.problem(
                    "authorizer.dpop_replay_store",
                    "is dynamodb but DPoP is off: set DPOP: allowed or required in authorizer.environment, or remove it",
                );
            }
        }
        self.environment_size(stack_name, &environment, &secret_references);
        // (An unknown secret is checked as if it were set: its value is not for this run.)
        // (A reference is checked as set: the function reads it at init.)
        let plain: BTreeMap<String, String> = environment
            .iter()
            .map(|(k, v)| (k.clone(), if v.is_unknown() { "not-set-for-this-run" } else { v.reveal() }.to_owned()))
            .chain(secret_references.keys().map(|name| (name.clone(), "read-at-init".to_owned())))
            .collect();
        let config = match authorizer::Config::from_map(&plain) {
            Ok(config) => Some(config),
            Err(e) => {
                // The authorizer's parser may quote the value it refuses.
                let problem = environment
                    .values()
                    .filter(|s| s.is_secret() && !s.reveal().is_empty())
                    .fold(e.problem, |problem, secret| problem.replace(secret.reveal(), SENSITIVE));
                self.problem(format!("authorizer.environment.{}", e.variable), problem);
                None
            }
        };
        if let Some(config) = &config {
            self.cache_keys(config, &raw);
        }
        let code = match raw.code {
            RawCode::Build(krate) => Code::Build(krate),
            RawCode::Zip(zip) => Code::Zip(base.join(zip)),
        };
        let spec = AuthorizerSpec {
            code,
            memory_mb: raw.memory_mb,
            timeout_seconds: raw.timeout_seconds,
            architecture: raw.architecture,
            environment,
            secret_references,
            identity_sources: raw.identity_sources,
            cache_ttl_seconds: raw.cache_ttl_seconds,
            log_retention_days: raw.log_retention_days,
            dpop_replay_table: raw.dpop_replay_store == DpopReplayStore::Dynamodb,
        };
        (spec, config.map(|c| c.dpop))
    }

    /// Lambda refuses a function whose environment is over 4 KB, measured
    /// on the variables serialised as JSON (its error quotes "String
    /// measured: {…}"): quotes, colons and commas count, and every `"` or
    /// `\\` inside a value counts twice. Measured here on the environment
    /// the function gets ([`function_environment_json`]), so the stack is
    /// refused before anything is made rather than after half of it exists.
    fn environment_size(
        &mut self,
        stack: &str,
        environment: &BTreeMap<String, Setting>,
        references: &BTreeMap<String, authorizer::secrets::Reference>,
    ) {
        const LIMIT: usize = 4096;
        let variables = function_environment_json(stack, environment, references);
        let measured = serde_json::to_string(&variables).map_or(0, |json| json.len());
        if measured > LIMIT {
            let share = |(name, value): (&String, &String)| {
                serde_json::to_string(name).map_or(0, |n| n.len())
                    + serde_json::to_string(value).map_or(0, |v| v.len())
                    + 2
            };
            let (largest, bytes) =
                variables.iter().map(|e| (e.0.as_str(), share(e))).max_by_key(|(_, bytes)| *bytes).unwrap_or(("", 0));
            let from = match largest {
                "ROUTES" => " (written from api.routes and their scopes)",
                _ => "",
            };
            self.problem(
                "authorizer.environment",
                format!(
                    "is {measured} bytes as Lambda measures it (the variables as JSON, every quote in a value \
                     escaped), over its limit of {LIMIT}; the largest is {largest}, {bytes} bytes{from}"
                ),
            );
        }
    }

    /// What API Gateway's authorizer cache would replay wrongly. A cached
    /// answer is reused for every request with the same identity-source values:
    /// - with certificate binding or a certificate allowlist, an answer is
    ///   about one certificate, so the cache must be keyed by the certificate
    ///   (or off), or a cached Allow reaches every certificate the truststore
    ///   accepts;
    /// - a DPoP proof is good for one request, so a cached answer would let a
    ///   proof (or none) be replayed: the cache must be off.
    fn cache_keys(&mut self, config: &authorizer::Config, raw: &RawAuthorizer) {
        let cached = raw.cache_ttl_seconds > 0;
        let keyed_by_certificate = raw.identity_sources.iter().any(|s| s == CERTIFICATE_IDENTITY_SOURCE);
        let about_one_certificate = config.binding != BindingMode::Off || config.cert_allowlist.is_some();
        if cached && about_one_certificate && !keyed_by_certificate && !raw.allow_cache_replay_with_binding {
            let why = if config.cert_allowlist.is_some() && config.binding == BindingMode::Off {
                "a client certificate allowlist is set"
            } else {
                "certificate binding is on"
            };
            self.problem(
                "authorizer.cache_ttl_seconds",
                format!(
                    "{why} and the authorizer cache is not keyed by the client certificate: API Gateway would \
                     replay a cached Allow to any client certificate the truststore accepts. Set \
                     cache_ttl_seconds: 0, add the identity source {CERTIFICATE_IDENTITY_SOURCE} (subjectDN, \
                     issuerDN and serialNumber do not identify a certificate), or set \
                     allow_cache_replay_with_binding: true"
                ),
            );
        }
        if config.dpop.mode != DpopMode::Off && cached {
            self.problem(
                "authorizer.cache_ttl_seconds",
                "DPoP is on and a DPoP proof is good for one request only: a cached answer would accept a \
                 replayed proof. Set cache_ttl_seconds: 0",
            );
        }
        if config.dpop.mode == DpopMode::Required && !raw.identity_sources.iter().any(|s| s == DPOP_IDENTITY_SOURCE) {
            self.problem(
                "authorizer.identity_sources",
                format!(
                    "DPOP is required: add {DPOP_IDENTITY_SOURCE}, so API Gateway answers 401 to a request \
                     without a proof"
                ),
            );
        }
    }

    /// The REST API and its routes. `None` when the section is too broken
    /// to build. The 401 challenge is filled in once the authorizer's DPoP
    /// settings are known.
    fn api(&mut self, raw: &RawApi) -> Option<ApiSpec> {
        let source = match (&raw.name, &raw.id) {
            (Some(name), None) => Some(ApiSource::Create(name.clone())),
            (None, Some(id)) => Some(ApiSource::Adopt(self.literal("api.id", id, PART_OF_EVERY_NAME))),
            _ => {
                self.problem("api", "set exactly one of `name` (create the REST API) or `id` (adopt an existing one)");
                None
            }
        };
        if raw.realm.is_empty() || raw.realm.contains(['"', '\'', '\\']) || raw.realm.chars().any(char::is_control) {
            self.problem("api.realm", "must be non-empty, without quotes, backslashes or control characters");
        }

        if raw.routes.is_empty() {
            // API Gateway refuses to deploy an API without a method.
            self.problem(
                "api.routes",
                "a stack needs at least one route: API Gateway cannot deploy an API without one",
            );
        }
        let mut seen = BTreeSet::new();
        let mut routes = Vec::new();
        for (i, route) in raw.routes.iter().enumerate() {
            let field = |f: &str| format!("api.routes[{i}].{f}");
            let method = route.method.to_ascii_uppercase();
            if !authorizer::arn::VERBS.contains(&method.as_str()) && method != "ANY" {
                self.problem(field("method"), format!("{:?} is not an HTTP method or ANY", route.method));
            }
            let template = RouteTemplate::parse(&route.path).unwrap_or_else(|message| {
                self.problem(field("path"), message);
                RouteTemplate::default()
            });
            if !seen.insert((method.clone(), route.path.clone())) {
                self.problem(field("path"), format!("{method} {} is declared twice", route.path));
            }
            let backend = self.literal(&field("backend"), &route.backend, READABLE_IN_API_GATEWAY);
            if !(backend.starts_with("https://") || backend.starts_with("http://")) {
                self.problem(field("backend"), "must be an http(s) URL");
            }
            let any_valid_token = self.route_scopes(&field("scopes"), route.scopes.as_ref());
            for (header, key) in &route.context_headers {
                if header.is_empty() || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    self.problem(field("context_headers"), format!("{header:?} is not a header name"));
                }
                // A mapping whose key the authorizer left out would let the
                // client's own header through to the backend.
                if !authorizer::response::ALWAYS_SET.contains(&key.as_str()) {
                    self.problem(
                        format!("{}.{header}", field("context_headers")),
                        format!(
                            "{key:?} is not a key the authorizer sets on every answer; a header mapped from a key \
                             with no value would pass the client's own header to the backend. Map one of: {}",
                            authorizer::response::ALWAYS_SET.join(", ")
                        ),
                    );
                }
            }
            routes.push(RouteSpec {
                method,
                path: route.path.clone(),
                template,
                backend,
                context_headers: route.context_headers.clone(),
                any_valid_token,
                scopes: match &route.scopes {
                    Some(RawScopes::List(scopes)) => scopes.clone(),
                    _ => Vec::new(),
                },
            });
        }
        self.one_variable_per_parent(&routes);
        if let Some(RawRule::Scopes(rule)) = &raw.default
            && rule.scopes.is_empty()
        {
            self.problem(
                "api.default",
                "`scopes: []` would let any valid token through wherever no route applies: list the scopes, or \
                 write `default: deny`",
            );
        }
        Some(ApiSpec {
            source: source?,
            routes,
            unauthorized_challenge: String::new(),
            ip_address_type: raw.ip_address_type,
        })
    }

    /// A route's `scopes`: a non-empty list, or `any_valid_token` said in
    /// so many words (returned `true`). Missing, null or `[]` is refused:
    /// each reads as "any valid token" without saying so.
    fn route_scopes(&mut self, field: &str, scopes: Option<&RawScopes>) -> bool {
        match scopes {
            Some(RawScopes::Keyword(_)) => true,
            Some(RawScopes::List(list)) if !list.is_empty() => false,
            Some(RawScopes::List(_)) => {
                self.problem(
                    field,
                    format!(
                        "an empty list would let any valid token through: list the scopes a token needs, or write \
                         `scopes: {ANY_VALID_TOKEN}` to say so"
                    ),
                );
                false
            }
            None => {
                self.problem(
                    field,
                    format!(
                        "missing or empty: every route says the scopes a token needs (`scopes: [pets:read]`), or \
                         `scopes: {ANY_VALID_TOKEN}` for a route any valid token may call"
                    ),
                );
                false
            }
        }
    }

    /// The authorizer settings the API section decides: `ROUTES`, the table
    /// of the scopes each route needs, written from `api.routes` in the
    /// order given (the authorizer's semantics: every route whose pattern
    /// applies must be satisfied, `{param}` matching like IAM's `*`), and
    /// `REALM`, from `api.realm`. Checked with the authorizer's own parser,
    /// so a scope it would refuse is refused here, on the route that has it.
    fn generated_settings(&mut self, raw: &RawApi) -> BTreeMap<String, Setting> {
        let table = route_table(raw);
        if let Err(error) = authorizer::routes::RouteTable::compile(table.clone()) {
            let field = match error.place {
                Place::Route(index) => format!("api.routes[{index}]"),
                Place::Default | Place::Table => "api.default".to_owned(),
            };
            let message = error.message;
            // A bad method or path is reported by `api` already.
            if !self.problems.iter().any(|p| p.field.starts_with(&field)) {
                self.problem(field, message);
            }
        }
        let public = Setting::public;
        // Serialised once, here: the authorizer parses this text at init.
        let routes = serde_json::to_string(&table).unwrap_or_default();
        BTreeMap::from([("ROUTES".to_owned(), public(routes)), ("REALM".to_owned(), public(raw.realm.clone()))])
    }

    /// API Gateway allows one variable path part per parent resource:
    /// `/pets/{id}` beside `/pets/{petId}/toys` cannot be made (it answers
    /// "A sibling ({id}) of this resource already has a variable path part").
    fn one_variable_per_parent(&mut self, routes: &[RouteSpec]) {
        let mut variables: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (i, route) in routes.iter().enumerate() {
            let mut parent = String::new();
            for part in route.template.parts() {
                let variable = !matches!(part, Part::Literal(_));
                let part = part.text();
                if variable {
                    match variables.get(&parent) {
                        Some((other, j)) if *other != part => {
                            let under = if parent.is_empty() { "/" } else { parent.as_str() };
                            self.problem(
                                format!("api.routes[{i}].path"),
                                format!(
                                    "{part} beside {other} (api.routes[{j}].path) under {under}: API Gateway allows \
                                     one variable path part per parent; give both the same name"
                                ),
                            );
                            break;
                        }
                        Some(_) => {}
                        None => drop(variables.insert(parent.clone(), (part.clone(), i))),
                    }
                }
                parent = format!("{parent}/{part}");
            }
        }
    }

    /// The custom domain: name, certificate, TLS policy, truststore, base path.
    fn domain(&mut self, raw: RawDomain, base: &Path) -> DomainSpec {
        let name = self.literal("domain.name", &raw.name, PART_OF_EVERY_NAME);
        if !is_domain_name(&name) {
            self.problem("domain.name", format!("{name:?} is not a domain name"));
        }
        if let Err(message) = check_base_path(&raw.base_path) {
            self.problem("domain.base_path", message);
        }
        if raw.security_policy != "TLS_1_2" {
            // mTLS custom domains require TLS 1.2.
            self.problem("domain.security_policy", "must be TLS_1_2 (required for mutual TLS)");
        }
        let certificate = match raw.certificate {
            RawCertificate::Request(true) => CertificateSpec::Request,
            RawCertificate::Request(false) => {
                self.problem(
                    "domain.certificate.request",
                    "use `request: true`, or `arn:` for an existing certificate",
                );
                CertificateSpec::Request
            }
            RawCertificate::Arn(arn) => {
                let arn = self.literal("domain.certificate.arn", &arn, PART_OF_EVERY_NAME);
                if certificate_region(&arn).is_none() {
                    self.problem("domain.certificate.arn", format!("{arn:?} is not an ACM certificate ARN"));
                }
                CertificateSpec::Existing(arn)
            }
        };
        let ownership_verification = raw.ownership_verification_certificate_arn.map(|arn| {
            let field = "domain.ownership_verification_certificate_arn";
            let arn = self.literal(field, &arn, PART_OF_EVERY_NAME);
            if certificate_region(&arn).is_none() {
                self.problem(field, format!("{arn:?} is not an ACM certificate ARN"));
            }
            if certificate == CertificateSpec::Request {
                self.problem(
                    field,
                    "only for an imported or private certificate (`certificate: {arn: …}`); a requested one is \
                     ACM-issued already",
                );
            }
            arn
        });
        let hosted_zone_id = raw.hosted_zone_id.map(|zone| {
            check_hosted_zone_id(&zone).unwrap_or_else(|why| {
                self.problem("domain.hosted_zone_id", why);
                zone
            })
        });
        let file = base.join(&raw.truststore.file);
        let pem = match std::fs::read(&file) {
            Ok(pem) if pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => {
                // What API Gateway would only warn about once it is uploaded
                // (and refuse those clients), unless the stack accepts it.
                if !raw.accept_truststore_warnings {
                    let now = x509_parser::time::ASN1Time::now();
                    for problem in super::truststore::problems(&pem, now) {
                        self.problem("domain.truststore.file", format!("{}: {problem}", file.display()));
                    }
                }
                pem
            }
            Ok(_) => {
                self.problem("domain.truststore.file", format!("{} holds no PEM certificate", file.display()));
                Vec::new()
            }
            Err(e) => {
                self.problem("domain.truststore.file", format!("{}: {e}", file.display()));
                Vec::new()
            }
        };
        if !is_bucket_name(&raw.truststore.bucket) {
            self.problem(
                "domain.truststore.bucket",
                format!("{:?} is not a valid S3 bucket name", raw.truststore.bucket),
            );
        }
        DomainSpec {
            name,
            certificate,
            security_policy: raw.security_policy,
            truststore_pem: pem,
            truststore_bucket: raw.truststore.bucket,
            truststore_key: raw.truststore.key,
            base_path: raw.base_path,
            accept_truststore_warnings: raw.accept_truststore_warnings,
            ownership_verification_certificate_arn: ownership_verification,
            hosted_zone_id,
            execute_api: raw.execute_api,
        }
    }

    /// The allowlist of source networks.
    /// An IPv6 network is taken only when the API answers on IPv6: on an
    /// IPv4-only endpoint no IPv6 client ever connects, so it would match
    /// nothing.
    fn waf(&mut self, raw: RawWaf, addresses: IpAddressType) -> Vec<Cidr> {
        if raw.allow.is_empty() {
            self.problem("waf.allow", "an empty allowlist would block every request; remove `waf` instead");
        }
        let mut cidrs = Vec::new();
        for (i, text) in raw.allow.iter().enumerate() {
            match parse_cidr(text) {
                Ok(cidr) if cidr.is_ipv6() && addresses == IpAddressType::Ipv4 => self.problem(
                    format!("waf.allow[{i}]"),
                    format!(
                        "{} is an IPv6 network, but the API answers on IPv4 only (api.ip_address_type: ipv4, API \
                         Gateway's default), so no IPv6 client ever reaches it: set api.ip_address_type: dualstack, \
                         or remove it",
                        cidr.0
                    ),
                ),
                Ok(cidr) => cidrs.push(cidr),
                Err(message) => self.problem(format!("waf.allow[{i}]"), message),
            }
        }
        cidrs
    }
}

/// `api.routes` and `api.default` as the authorizer's route table, typed
/// (`ROUTES` is its JSON). The API has one stage, so no entry names one.
fn route_table(raw: &RawApi) -> TableSpec {
    let matching = |m: ScopeMatch| match m {
        ScopeMatch::All => Matching::All,
        ScopeMatch::Any => Matching::Any,
    };
    let routes = raw
        .routes
        .iter()
        .map(|r| authorizer::routes::RouteSpec {
            method: r.method.to_ascii_uppercase(),
            path: r.path.clone(),
            stage: None,
            scopes: match &r.scopes {
                Some(RawScopes::List(scopes)) => scopes.clone(),
                // Refused by `api`; only `any_valid_token` reaches a table.
                Some(RawScopes::Keyword(_)) | None => Vec::new(),
            },
            matching: matching(r.matching),
        })
        .collect();
    let default = match &raw.default {
        None | Some(RawRule::Deny(_)) => DefaultSpec::deny(),
        Some(RawRule::Scopes(r)) => DefaultSpec::Rule { scopes: r.scopes.clone(), matching: matching(r.matching) },
    };
    TableSpec { routes, default }
}

/// Why `name` may not be set by hand in `authorizer.environment`, with what
/// to write instead, when the deployer writes it from the `api` section.
fn by_hand(name: &str, value: &str, api: &RawApi) -> Option<String> {
    match name {
        "REALM" => Some(format!(
            "is written by the deployer from api.realm (now {:?}): remove it{}",
            api.realm,
            if value == api.realm { String::new() } else { format!(" and set api.realm: {value}") }
        )),
        "AUTHORIZER_SECRET_REFERENCES" => Some(format!(
            "is written by the deployer from the secret variables given as {REFERENCE_FORMS}: remove it and write \
             e.g. `INTROSPECTION_CLIENT_SECRET: ${{ssm:/pets/introspection}}`"
        )),
        "AUTHORIZER_SECRETS" | "AUTHORIZER_SECRETS_VERSION" => Some(
            "is written by the deployer, which keeps the secret variables (INTROSPECTION_CLIENT_SECRET, \
             AUTHLETE_SERVICE_APISECRET) in Secrets Manager for the function to read at start: remove it"
                .to_owned(),
        ),
        "DPOP_REPLAY_STORE" => Some(
            "is written by the deployer, with the table it makes: remove it and set \
             authorizer.dpop_replay_store: dynamodb"
                .to_owned(),
        ),
        "ROUTES" => Some(format!(
            "is written by the deployer from api.routes, where each route carries its own scopes: remove it and \
             move its entries there:\n{}",
            routes_to_move(value, api)
        )),
        _ => None,
    }
}

/// A hand-written `ROUTES` table as the `api` entries it becomes.
fn routes_to_move(value: &str, api: &RawApi) -> String {
    let Ok(table) = serde_json::from_str::<serde_json::Value>(value) else {
        return "    (it is not valid JSON; write `scopes:` on each api.routes entry)".to_owned();
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let rule = |entry: &serde_json::Value| {
        let scopes = entry["scopes"].as_array().map(|s| s.iter().map(text).collect::<Vec<_>>().join(", "));
        let matching = entry["match"].as_str().map(|m| format!(", match: {m}")).unwrap_or_default();
        match scopes.unwrap_or_default() {
            none if none.is_empty() => format!("scopes: {ANY_VALID_TOKEN}"),
            scopes => format!("scopes: [{scopes}]{matching}"),
        }
    };
    let mut lines = Vec::new();
    for entry in table["routes"].as_array().into_iter().flatten() {
        let (method, path) = (text(&entry["method"]).to_ascii_uppercase(), text(&entry["path"]));
        let served = api.routes.iter().any(|r| r.method.eq_ignore_ascii_case(&method) && r.path == path);
        let note = match (&entry["stage"], served) {
            (serde_json::Value::String(stage), _) => format!("  (limited to stage {stage}: the stack has one stage)"),
            (_, false) => "  (no api.routes entry has this method and path)".to_owned(),
            _ => String::new(),
        };
        lines.push(format!("    {method} {path}: {}{note}", rule(entry)));
    }
    match &table["default"] {
        serde_json::Value::String(keyword) => lines.push(format!("    api.default: {keyword}")),
        serde_json::Value::Null => {}
        default => lines.push(format!("    api.default: {{ {} }}", rule(default))),
    }
    lines.join("\n")
}

/// The function's environment as Lambda measures it: the stack's settings
/// without the secret variables (kept in Secrets Manager or named by
/// reference), and what the deployer writes in their place, at their exact
/// sizes (the secret's name, a 32-digit version, the references).
/// `lambda_function`'s tests check this against the environment it sends.
pub fn function_environment_json(
    stack: &str,
    environment: &BTreeMap<String, Setting>,
    references: &BTreeMap<String, authorizer::secrets::Reference>,
) -> BTreeMap<String, String> {
    let secret = |name: &String| authorizer::config::SECRET_VARIABLES.contains(&name.as_str());
    let mut variables: BTreeMap<String, String> =
        environment.iter().filter(|(n, _)| !secret(n)).map(|(n, s)| (n.clone(), s.reveal().to_owned())).collect();
    if environment.keys().any(secret) {
        variables.insert(authorizer::secrets::SECRETS.to_owned(), super::names::authorizer_secret(stack));
        variables.insert(authorizer::secrets::SECRETS_VERSION.to_owned(), "0".repeat(32));
    }
    if !references.is_empty() {
        variables
            .insert(authorizer::secrets::REFERENCES.to_owned(), authorizer::secrets::references_variable(references));
    }
    variables
}

/// How a secret variable names where the team keeps it.
const REFERENCE_FORMS: &str = "${ssm:NAME} and ${secretsmanager:NAME-OR-ARN}";

fn secret_names() -> String {
    authorizer::config::SECRET_VARIABLES.join(" and ")
}

/// `${ssm:NAME}` or `${secretsmanager:NAME-OR-ARN}` as a whole value: the
/// reference, or why it is not one; `None` for any other value.
fn secret_reference(text: &str) -> Option<Result<authorizer::secrets::Reference, String>> {
    let inner = text.trim().strip_prefix("${")?.strip_suffix('}')?;
    if !(inner.starts_with("ssm:") || inner.starts_with("secretsmanager:")) {
        return None;
    }
    let valid_name = |name: &str, extra: &[u8]| {
        !name.is_empty() && name.len() <= 2048 && name.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    use authorizer::secrets::Reference;
    let reference = Reference::parse(inner).filter(|reference| match reference {
        Reference::Ssm(name) => name.starts_with("arn:") || valid_name(name, b"_.-/"),
        Reference::SecretsManager(id) => valid_name(id, b"/_+=.@-:"),
    });
    Some(reference.ok_or_else(|| format!("{text:?} is not a reference: write {REFERENCE_FORMS}")))
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
        let name = reference.strip_prefix("env:").ok_or_else(|| {
            format!(
                "unknown reference ${{{reference}}}: only ${{env:NAME}} is supported here ({REFERENCE_FORMS}, as a \
                     whole value, are taken by {})",
                secret_names()
            )
        })?;
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

/// The region of an ACM certificate ARN
/// (`arn:PARTITION:acm:REGION:ACCOUNT:certificate/ID`), if it is one.
pub fn certificate_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "acm", region, account, resource]
            if !partition.is_empty()
                && !region.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("certificate/").is_some_and(|id| !id.is_empty()) =>
        {
            Some(region)
        }
        _ => None,
    }
}

/// Problems of certificates given by ARN that are not in `region`: a
/// regional custom domain takes a certificate of its own region only, and
/// CreateDomainName would fail after everything before it was created.
pub fn region_problems(domain: &DomainSpec, region: &str) -> Vec<Problem> {
    let mut arns = Vec::new();
    if let CertificateSpec::Existing(arn) = &domain.certificate {
        arns.push(("domain.certificate.arn", arn));
    }
    if let Some(arn) = &domain.ownership_verification_certificate_arn {
        arns.push(("domain.ownership_verification_certificate_arn", arn));
    }
    arns.into_iter()
        .filter_map(|(field, arn)| {
            let theirs = certificate_region(arn)?;
            (theirs != region).then(|| Problem {
                field: field.to_owned(),
                line: None,
                message: format!(
                    "the certificate is in {theirs}, the stack in {region}: a regional custom domain needs a \
                     certificate of its own region"
                ),
            })
        })
        .collect()
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
    if base_path.contains('/') {
        return Err(format!(
            "{base_path:?} has more than one segment: a REST API's base path mapping takes one segment (\"v1\"); \
             multi-level paths exist only as API mappings of API Gateway v2, which this deployer does not manage"
        ));
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

/// A Route 53 hosted zone id (`Z0123…`, also accepted as `/hostedzone/Z0123…`,
/// as the console and the API show it), without the prefix.
fn check_hosted_zone_id(zone: &str) -> Result<String, String> {
    let id = zone.trim_start_matches("/hostedzone/");
    let ok = !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok { Ok(id.to_owned()) } else { Err(format!("{zone:?} is not a Route 53 hosted zone id (Z…)")) }
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
    fn certificate_arns_and_their_region() {
        assert_eq!(certificate_region("arn:aws:acm:eu-west-1:123456789012:certificate/abc"), Some("eu-west-1"));
        assert_eq!(certificate_region("arn:aws-cn:acm:cn-north-1:123456789012:certificate/abc"), Some("cn-north-1"));
        for bad in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws:acm:eu-west-1:123:certificate/abc",
            "arn:aws:acm::123456789012:certificate/abc",
            "arn:aws:acm:eu-west-1:123456789012:certificate/",
            "not an arn",
        ] {
            assert_eq!(certificate_region(bad), None, "{bad}");
        }
        let domain = |certificate, ownership: Option<&str>| DomainSpec {
            name: "api.example.com".into(),
            certificate,
            security_policy: "TLS_1_2".into(),
            truststore_pem: Vec::new(),
            truststore_bucket: "b".into(),
            truststore_key: "k".into(),
            base_path: String::new(),
            accept_truststore_warnings: false,
            ownership_verification_certificate_arn: ownership.map(str::to_owned),
            hosted_zone_id: None,
            execute_api: None,
        };
        let here = "arn:aws:acm:eu-west-1:123456789012:certificate/a";
        let there = "arn:aws:acm:us-east-1:123456789012:certificate/b";
        assert!(region_problems(&domain(CertificateSpec::Existing(here.into()), Some(here)), "eu-west-1").is_empty());
        assert!(region_problems(&domain(CertificateSpec::Request, None), "eu-west-1").is_empty());
        let problems = region_problems(&domain(CertificateSpec::Existing(there.into()), Some(there)), "eu-west-1");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["domain.certificate.arn", "domain.ownership_verification_certificate_arn"]);
        assert!(problems[0].message.contains("the certificate is in us-east-1, the stack in eu-west-1"));
    }

    #[test]
    fn one_variable_path_part_per_parent() {
        let route = |path: &str| RouteSpec {
            method: "GET".into(),
            path: path.into(),
            template: RouteTemplate::parse(path).expect("valid"),
            backend: "https://b".into(),
            context_headers: BTreeMap::new(),
            any_valid_token: false,
            scopes: Vec::new(),
        };
        let problems = |paths: &[&str]| {
            let mut checks = Checks { problems: Vec::new(), env: &|_| None, unset: crate::stack::Unset::Refused };
            checks.one_variable_per_parent(&paths.iter().map(|p| route(p)).collect::<Vec<_>>());
            checks.problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>()
        };
        assert!(problems(&["/pets/{id}", "/pets/{id}/toys", "/owners/{id}", "/{tenant}"]).is_empty());
        assert_eq!(
            problems(&["/pets/{id}", "/pets/{petId}/toys"]),
            ["api.routes[1].path: {petId} beside {id} (api.routes[0].path) under /pets: API Gateway allows one \
              variable path part per parent; give both the same name"]
        );
        assert_eq!(problems(&["/{tenant}/pets", "/{proxy+}"]).len(), 1, "a greedy one is a variable too");
    }

    #[test]
    fn hosted_zone_ids() {
        assert_eq!(check_hosted_zone_id("Z0123456789ABCDEFGHIJ"), Ok("Z0123456789ABCDEFGHIJ".into()));
        assert_eq!(check_hosted_zone_id("/hostedzone/Z2FDTNDATAQYW2"), Ok("Z2FDTNDATAQYW2".into()));
        for wrong in ["", "example.com", "z2fdtndataqyw2", "Z2FD TNDA", "/hostedzone/"] {
            assert!(check_hosted_zone_id(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn base_paths() {
        assert!(check_base_path("").is_ok());
        assert!(check_base_path("v1").is_ok());
        for bad in ["/v1", "v1//pets", "v1/", "v 1"] {
            assert!(check_base_path(bad).is_err(), "{bad}");
        }
        // API Gateway's base path mappings (REST APIs) take one segment; CreateBasePathMapping refuses more.
        let error = check_base_path("v1/pets").expect_err("two segments");
        assert!(error.contains("one segment"), "{error}");
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
