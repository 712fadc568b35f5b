//! stack.yaml → a validated [`Stack`], before any AWS call.
//!
//! Two phases, as in ripgrep's low/high-level arguments: [`raw`] records what
//! the file says (serde, unknown fields refused, with the line serde_yaml
//! reports); [`checks`] resolves `${env:NAME}` references and checks
//! everything that can be checked without AWS, one function per section of
//! the file, into the [`model`] the rest of the deployer reads. Every problem
//! is reported, not only the first, each as `file: field.path: what is wrong`.

mod checks;
pub mod masked;
pub mod model;
pub mod names;
mod problem;
mod raw;
pub mod schema;
pub mod template;
pub mod truststore;

use std::path::Path;

use sha2::{Digest as _, Sha256};

pub use checks::{CONTEXT_IDENTITY_SOURCES, function_environment_json, parse_cidr};
pub use model::*;
pub use problem::{Problem, StackError, Unset};
pub use raw::{ExecuteApi as ExecuteApiSwitch, IpAddressType};

impl Stack {
    /// The authorizer's secret variables whose value this run does not know.
    pub fn unknown_secrets(&self) -> Vec<&str> {
        self.authorizer.environment.iter().filter(|(_, s)| s.is_unknown()).map(|(n, _)| n.as_str()).collect()
    }

    /// `METHOD /path` of each route with `scopes: any_valid_token`.
    pub fn routes_open_to_any_valid_token(&self) -> Vec<String> {
        let open = self.api.routes.iter().filter(|r| r.any_valid_token);
        open.map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    /// Whether the stack wants the API's default endpoint (execute-api) off:
    /// with a custom domain, unless it says `domain.execute_api: keep`.
    pub fn execute_api_off(&self) -> bool {
        self.domain.as_ref().is_some_and(|d| d.execute_api != Some(ExecuteApiSwitch::Keep))
    }

    /// What every plan says plainly about what the stack leaves open or
    /// does not serve, changed or not.
    pub fn plain_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(domain) = &self.domain else { return warnings };
        if domain.execute_api == Some(ExecuteApiSwitch::Keep) {
            warnings.push(format!(
                "domain.execute_api: keep: the API's default endpoint (execute-api) stays on, and whoever reaches it \
                 calls the API without mutual TLS; set off once clients use https://{}",
                domain.name
            ));
        }
        if domain.hosted_zone_id.is_some() && self.api.ip_address_type == IpAddressType::Ipv4 {
            warnings.push(format!(
                "api.ip_address_type: ipv4: {} answers IPv4 clients only (an A record, no AAAA); dualstack serves \
                 IPv6 too",
                domain.name
            ));
        }
        warnings
    }

    /// What can only be checked once the region is known (when stack.yaml
    /// leaves it to the environment): still before any AWS write.
    pub fn check_region(&self, region: &str) -> Result<(), StackError> {
        let problems = self.domain.as_ref().map(|d| checks::region_problems(d, region)).unwrap_or_default();
        if problems.is_empty() { Ok(()) } else { Err(StackError { file: self.file.clone(), problems }) }
    }

    /// Reads and validates `path`; `env` resolves `${env:NAME}`.
    ///
    /// The fingerprint (what a saved plan is checked against) covers the
    /// file, the files it names and the value of every `${env:…}` it used:
    /// a secret rotated between `plan` and `apply` is a different stack. The
    /// values only go into the SHA-256, never anywhere in clear.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Stack, StackError> {
        Self::load_with_overrides(path, env, &[])
    }

    /// [`Stack::load`], with `unset` saying what an authorizer secret whose
    /// `${env:…}` is not set (or any, with [`Unset::SecretsIgnored`]) is:
    /// for runs that write no secret (`diff` of a pull request, which is
    /// given none; `output`; `teardown`).
    pub fn load_without_secrets(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        unset: Unset,
    ) -> Result<Stack, StackError> {
        Self::load_with(path, env, &[], unset)
    }

    /// [`Stack::load`], with `authorizer.environment` entries replaced or
    /// added (`deployer local --env NAME=VALUE`) before anything is checked:
    /// an override meets every check a value in the file meets.
    pub fn load_with_overrides(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &[(String, String)],
    ) -> Result<Stack, StackError> {
        Self::load_with(path, env, overrides, Unset::Refused)
    }

    fn load_with(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &[(String, String)],
        unset: Unset,
    ) -> Result<Stack, StackError> {
        let used = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let recording = |name: &str| {
            let value = env(name);
            used.borrow_mut().insert(name.to_owned(), value.clone());
            value
        };
        let (mut stack, text) = Self::read(path, &recording, overrides, unset)?;
        let mut hasher = Sha256::new();
        hasher.update(text.as_bytes());
        if let Some(domain) = &stack.domain {
            hasher.update(&domain.truststore_pem);
        }
        for (name, value) in used.into_inner() {
            // Length-prefixed, so no two sets of values hash alike.
            for part in [name.as_bytes(), value.as_deref().unwrap_or_default().as_bytes()] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
        }
        stack.fingerprint = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(stack)
    }

    /// The validated stack, and the file's text.
    fn read(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: &[(String, String)],
        unset: Unset,
    ) -> Result<(Stack, String), StackError> {
        let error = |problems| StackError { file: path.to_owned(), problems };
        let text = std::fs::read_to_string(path).map_err(|e| {
            error(vec![Problem { field: "(file)".into(), line: None, message: format!("cannot be read: {e}") }])
        })?;
        let mut raw: raw::RawStack = serde_yaml::from_str(&text).map_err(|e| {
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
        raw.authorizer.environment.extend(overrides.iter().cloned());
        let base = path.parent().unwrap_or(Path::new("."));
        Ok((checks::validate(raw, path, base, env, unset).map_err(error)?, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `yaml` as a stack.yaml in a directory of its own.
    fn load_yaml(yaml: &str) -> Result<Stack, StackError> {
        let dir = std::env::temp_dir().join(format!("stack-test-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stack.yaml");
        std::fs::write(&path, yaml).unwrap();
        let result = Stack::load(&path, &|_| None);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    /// Loads `authorizer:` settings in an otherwise minimal stack.
    fn load_authorizer(environment: &str, identity_sources: &[&str], ttl: i32) -> Result<Stack, StackError> {
        let sources: String = identity_sources.iter().map(|s| format!("    - {s}\n")).collect();
        load_yaml(&format!(
            "stack: guard\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{environment}  identity_sources:\n{sources}  cache_ttl_seconds: {ttl}\napi:\n  name: guard\n  routes: [{{ method: GET, path: /pets, scopes: [pets:read], backend: \"https://b.example.com\" }}]\nstage:\n  name: prod\n"
        ))
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
    fn the_fingerprint_covers_resolved_env_values_without_holding_them() {
        let dir = std::env::temp_dir().join(format!("stack-fingerprint-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stack.yaml");
        let yaml = include_str!("../../../stack.yaml")
            .replace("code: { build: authorizer }", "code: { zip: code.zip }")
            .replace("file: examples/truststore.pem", "file: truststore.pem")
            .replace("AUDIENCE: api://pets", "AUDIENCE: ${env:PETS_AUDIENCE}");
        std::fs::write(&path, yaml).unwrap();
        std::fs::write(dir.join("truststore.pem"), include_str!("../../../examples/truststore.pem")).unwrap();
        let with = |value: &'static str| move |name: &str| (name == "PETS_AUDIENCE").then(|| value.to_owned());
        let first = Stack::load(&path, &with("api://pets")).expect("valid").fingerprint;
        assert_eq!(Stack::load(&path, &with("api://pets")).expect("valid").fingerprint, first);
        let rotated = Stack::load(&path, &with("api://pets-v2")).expect("valid").fingerprint;
        assert_ne!(rotated, first, "a changed value is a changed stack");
        assert!(!rotated.contains("pets-v2") && rotated.len() == 64, "only a hash");
        std::fs::remove_dir_all(&dir).unwrap();
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

    /// `authorizer.dpop_replay_store: dynamodb` writes the variable naming
    /// the stack's table; it needs DPoP on, and the variable is never
    /// written by hand (the table would not exist).
    #[test]
    fn the_shared_replay_store_is_asked_for_in_one_place_and_needs_dpop() {
        let load = |environment: &str, store: &str| {
            load_yaml(&format!(
                "stack: guard\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{JWT_ENV}{environment}  cache_ttl_seconds: 0\n  dpop_replay_store: {store}\napi:\n  name: guard\n  routes: [{{ method: GET, path: /pets, scopes: [pets:read], backend: \"https://b.example.com\" }}]\nstage:\n  name: prod\n"
            ))
        };
        let shared = load("    DPOP: allowed\n", "dynamodb").expect("valid");
        assert!(shared.authorizer.dpop_replay_table);
        let variable = shared.authorizer.environment.get("DPOP_REPLAY_STORE").map(|s| s.reveal().to_owned());
        assert_eq!(variable.as_deref(), Some("dynamodb:guard-dpop-replay"));
        let memory = load("    DPOP: allowed\n", "memory").expect("valid");
        assert!(
            !memory.authorizer.dpop_replay_table && !memory.authorizer.environment.contains_key("DPOP_REPLAY_STORE")
        );

        let fields = |result: Result<Stack, StackError>| -> Vec<String> {
            result.expect_err("refused").problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect()
        };
        let off = fields(load("", "dynamodb"));
        assert!(
            off.iter().any(|p| p.starts_with("authorizer.dpop_replay_store: is dynamodb but DPoP is off")),
            "{off:?}"
        );
        assert_eq!(off.len(), 1, "one problem for one cause: {off:?}");
        let by_hand = fields(load("    DPOP: allowed\n    DPOP_REPLAY_STORE: dynamodb:mine\n", "memory"));
        assert!(
            by_hand
                .iter()
                .any(|p| p.starts_with("authorizer.environment.DPOP_REPLAY_STORE: is written by the deployer")),
            "{by_hand:?}"
        );
        let unknown = fields(load("    DPOP: allowed\n", "redis"));
        assert!(unknown.iter().any(|p| p.starts_with("authorizer.dpop_replay_store")), "{unknown:?}");
    }

    /// Loads a stack with `api` as its API section (and the JWT settings).
    fn load_api(api: &str, extra_environment: &str) -> Result<Stack, StackError> {
        load_yaml(&format!(
            "stack: routes\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{JWT_ENV}{extra_environment}api:\n{api}stage:\n  name: prod\n"
        ))
    }

    const ROUTED_API: &str = "  name: pets\n  realm: pets\n  routes:\n    - { method: GET, path: '/pets/{id}', backend: 'https://b.example.com/pets/{id}', scopes: [pets:read] }\n    - { method: post, path: /pets, backend: 'https://b.example.com/pets', scopes: [pets:write, admin], match: any }\n    - { method: GET, path: /health, backend: 'https://b.example.com/health', scopes: any_valid_token }\n";

    #[test]
    fn the_authorizer_routes_and_realm_are_written_from_the_api_section() {
        let stack = load_api(ROUTED_API, "").expect("valid");
        let environment = &stack.authorizer.environment;
        assert_eq!(environment["REALM"].reveal(), "pets");
        let table =
            authorizer::routes::RouteTable::parse(environment["ROUTES"].reveal()).expect("the authorizer reads it");
        let needs = |verb: &str, path: &str| {
            let arn = format!("arn:aws:execute-api:eu-west-1:123456789012:abc/prod/{verb}/{path}");
            let arn = authorizer::arn::MethodArn::parse(&arn).expect("arn");
            table.requirements(&arn).cloned().collect::<Vec<_>>()
        };
        use authorizer::routes::Requirement::*;
        assert_eq!(needs("GET", "pets/7"), [AllOf(vec!["pets:read".into()])]);
        assert_eq!(needs("POST", "pets"), [AnyOf(vec!["pets:write".into(), "admin".into()])]);
        assert_eq!(needs("GET", "health"), [AllOf(vec![])], "any_valid_token: no scope needed");
        assert_eq!(stack.routes_open_to_any_valid_token(), ["GET /health"], "what every plan lists");
        assert_eq!(needs("DELETE", "pets/7"), [Deny], "not a route: the default, deny");
        let with_default =
            ROUTED_API.replace("  realm: pets\n", "  realm: pets\n  default: { scopes: [pets:admin] }\n");
        let stack = load_api(&with_default, "").expect("valid");
        let table = authorizer::routes::RouteTable::parse(stack.authorizer.environment["ROUTES"].reveal()).unwrap();
        assert_eq!(table.default, AllOf(vec!["pets:admin".into()]));
    }

    /// `ROUTES` is the text earlier versions wrote (keys in order), so a
    /// deployed function's configuration does not change by an upgrade.
    #[test]
    fn the_route_table_text_is_what_earlier_versions_wrote() {
        let stack = load_api(ROUTED_API, "").expect("valid");
        assert_eq!(
            stack.authorizer.environment["ROUTES"].reveal(),
            r#"{"default":"deny","routes":[{"match":"all","method":"GET","path":"/pets/{id}","scopes":["pets:read"]},{"match":"any","method":"POST","path":"/pets","scopes":["pets:write","admin"]},{"match":"all","method":"GET","path":"/health","scopes":[]}]}"#
        );
    }

    #[test]
    fn routes_or_realm_set_by_hand_are_refused_with_what_to_move() {
        let by_hand = "    REALM: other\n    ROUTES: '{\"routes\": [{\"method\": \"GET\", \"path\": \"/pets/{id}\", \"scopes\": [\"pets:read\"]}, {\"method\": \"DELETE\", \"path\": \"/pets/{id}\", \"scopes\": [\"pets:admin\"]}], \"default\": \"deny\"}'\n";
        let problems = load_api(ROUTED_API, by_hand).expect_err("set twice").problems;
        let routes = problems.iter().find(|p| p.field == "authorizer.environment.ROUTES").expect("ROUTES refused");
        assert!(routes.message.contains("GET /pets/{id}: scopes: [pets:read]\n"), "{}", routes.message);
        assert!(
            routes.message.contains("DELETE /pets/{id}: scopes: [pets:admin]  (no api.routes entry"),
            "{}",
            routes.message
        );
        assert!(routes.message.contains("api.default: deny"), "{}", routes.message);
        let realm = problems.iter().find(|p| p.field == "authorizer.environment.REALM").expect("REALM refused");
        assert!(realm.message.contains("set api.realm: other"), "{}", realm.message);
    }

    #[test]
    fn a_bad_scope_is_refused_on_its_route() {
        let api = ROUTED_API.replace("[pets:read]", "['pets read']");
        let problems = load_api(&api, "").expect_err("a space is not a scope token").problems;
        assert!(problems.iter().any(|p| p.field == "api.routes[0]" && p.message.contains("scope")), "{problems:?}");
        let api = ROUTED_API.replace("  realm: pets\n", "  realm: pets\n  default: { match: any }\n");
        let problems = load_api(&api, "").expect_err("any of nothing").problems;
        assert!(problems.iter().any(|p| p.field == "api.default"), "{problems:?}");
    }

    /// The problem `api` makes (one), as `field: message`.
    fn api_problem(api: &str) -> String {
        let problems = load_api(api, "").expect_err("refused").problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        format!("{}: {}", problems[0].field, problems[0].message)
    }

    #[test]
    fn a_shape_that_would_mean_any_valid_token_without_saying_so_is_refused() {
        let route = "    - { method: GET, path: '/pets/{id}', backend: 'https://b.example.com/pets/{id}', scopes: [pets:read] }\n";
        let api = |default: &str, second: &str| format!("  name: pets\n{default}  routes:\n{route}{second}");
        let second = |scopes: &str| {
            format!("    - method: POST\n      path: /pets\n      backend: https://b.example.com\n{scopes}")
        };
        for (scopes, says) in [
            ("", "api.routes[1].scopes: missing or empty"),
            ("      scopes:\n", "api.routes[1].scopes: missing or empty"),
            ("      scopes: []\n", "api.routes[1].scopes: an empty list would let any valid token through"),
            (
                "      scopes: pets:write\n",
                "api.routes[1].scopes: \"pets:write\": scopes are a list (`scopes: [pets:write]`)",
            ),
        ] {
            let problem = api_problem(&api("", &second(scopes)));
            assert!(problem.starts_with(says), "{scopes:?}: {problem}");
            assert!(problem.contains("any_valid_token"), "the explicit form is named: {problem}");
        }
        for (default, says) in [
            ("  default: []\n", "api.default: "),
            ("  default: [[]]\n", "api.default: "),
            ("  default: {}\n", "api.default: missing field `scopes`"),
            ("  default: { scopes: [] }\n", "api.default: `scopes: []` would let any valid token through"),
            ("  default: allow\n", "api.default: \"allow\": write `deny` or `{ scopes: [...] }`"),
        ] {
            let problem = api_problem(&api(default, ""));
            assert!(problem.starts_with(says), "{default:?}: {problem}");
        }
        assert!(api_problem(&api("  default: []\n", "")).contains("`deny` or `{ scopes: [...] }`"));

        let stack = load_api(&api("", &second("      scopes: any_valid_token\n")), "").expect("said in so many words");
        assert_eq!(stack.routes_open_to_any_valid_token(), ["POST /pets"]);
        let table = authorizer::routes::RouteTable::parse(stack.authorizer.environment["ROUTES"].reveal()).unwrap();
        assert_eq!(table.routes[1].requirement, authorizer::routes::Requirement::AllOf(vec![]));
    }

    #[test]
    fn a_context_header_may_map_only_a_key_every_answer_carries() {
        let api = |headers: &str| {
            format!(
                "  name: pets\n  routes:\n    - method: GET\n      path: /pets\n      scopes: [pets:read]\n      backend: https://b.example.com\n      context_headers: {{ {headers} }}\n"
            )
        };
        for key in authorizer::response::ALWAYS_SET {
            assert!(load_api(&api(&format!("X-Key: {key}")), "").is_ok(), "{key}");
        }
        for key in ["tennant", "exp", "challenge"] {
            let problem = api_problem(&api(&format!("X-Sub: sub, X-Other: {key}")));
            assert!(problem.starts_with("api.routes[0].context_headers.X-Other: "), "{problem}");
            assert!(problem.contains("would pass the client's own header"), "{problem}");
            assert!(problem.contains("sub, client_id, scope"), "names what may be mapped: {problem}");
        }
    }

    #[test]
    fn env_references_outside_the_authorizers_environment_are_refused_saying_why() {
        let yaml = |api: &str, stage: &str, domain: &str| {
            format!(
                "stack: refs\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{JWT_ENV}api:\n{api}stage:\n  name: prod\n{stage}{domain}"
            )
        };
        let routes = "  routes:\n    - { method: GET, path: /pets, scopes: [pets:read], backend: 'https://b.example.com/pets' }\n";
        let named = format!("  name: pets\n{routes}");
        let domain = |name: &str, arn: &str| {
            format!(
                "domain:\n  name: {name}\n  certificate: {{ arn: '{arn}' }}\n  truststore: {{ file: t.pem, bucket: b }}\n"
            )
        };
        let arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0d6a1b6c-2a4e-4d1f-9b8e-3f2c1a0e9d7b";
        for (yaml, field, why) in [
            (
                yaml(&named.replace("/pets' }", "/pets?key=${env:BACKEND_KEY}' }"), "", ""),
                "api.routes[0].backend",
                "apigateway:GET",
            ),
            (yaml(&named, "  variables: { key: '${env:KEY}' }\n", ""), "stage.variables.key", "apigateway:GET"),
            (yaml(&format!("  id: '${{env:API_ID}}'\n{routes}"), "", ""), "api.id", "names a resource"),
            (yaml(&named, "", &domain("'${env:DOMAIN}'", arn)), "domain.name", "names a resource"),
            (yaml(&named, "", &domain("api.example.com", "${env:CERT}")), "domain.certificate.arn", "names a resource"),
        ] {
            let problems = load_yaml(&yaml).expect_err("refused").problems;
            let problem = problems.iter().find(|p| p.field == field).unwrap_or_else(|| panic!("{field}: {problems:?}"));
            assert!(problem.message.starts_with("takes no ${env:…}"), "{field}: {}", problem.message);
            assert!(problem.message.contains(why), "{field}: {}", problem.message);
        }
    }

    #[test]
    fn an_authorizer_setting_refused_for_its_value_does_not_show_a_secret_value() {
        let dir = std::env::temp_dir().join(format!("stack-masked-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stack.yaml");
        let marker = "not-a-url-4f1c9e-secret";
        let environment = JWT_ENV.replace("https://idp.example.com/jwks", "${env:JWKS}");
        std::fs::write(
            &path,
            format!(
                "stack: masked\nauthorizer:\n  code: {{ zip: code.zip }}\n  environment:\n{environment}api:\n  name: pets\n  routes: [{{ method: GET, path: /pets, scopes: [a], backend: 'https://b.example.com' }}]\nstage:\n  name: prod\n"
            ),
        )
        .unwrap();
        let error = Stack::load(&path, &|name| (name == "JWKS").then(|| marker.to_owned())).expect_err("not a URL");
        let shown = error.to_string();
        assert!(shown.contains("authorizer.environment.JWKS_URI"), "{shown}");
        assert!(!shown.contains(marker), "the value is masked: {shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_variable_may_name_where_the_team_keeps_it() {
        let introspection = "    TOKEN_VALIDATION: introspection\n    INTROSPECTION_ENDPOINT: https://idp.example.com/introspect\n    INTROSPECTION_CLIENT_ID: gateway\n";
        let sources = ["method.request.header.Authorization"];
        let with = |secret: &str| {
            load_authorizer(&format!("{introspection}    INTROSPECTION_CLIENT_SECRET: {secret}\n"), &sources, 0)
        };
        use authorizer::secrets::Reference;
        for (written, reference) in [
            ("${ssm:/pets/introspection}", Reference::Ssm("/pets/introspection".into())),
            ("'${secretsmanager:pets/introspection}'", Reference::SecretsManager("pets/introspection".into())),
            (
                "'${secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:pets-AbCdEf}'",
                Reference::SecretsManager("arn:aws:secretsmanager:eu-west-1:123456789012:secret:pets-AbCdEf".into()),
            ),
        ] {
            let stack = with(written).unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(stack.authorizer.secret_references["INTROSPECTION_CLIENT_SECRET"], reference);
            assert!(
                !stack.authorizer.environment.contains_key("INTROSPECTION_CLIENT_SECRET"),
                "never in the environment"
            );
            assert!(stack.unknown_secrets().is_empty(), "nothing a plan cannot compare");
        }
        let problem = |result: Result<Stack, StackError>| {
            let problems = result.expect_err("refused").problems;
            problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("\n")
        };
        let refused = problem(with("'${ssm:/pets/bad name}'"));
        assert!(
            refused.contains("INTROSPECTION_CLIENT_SECRET: \"${ssm:/pets/bad name}\" is not a reference"),
            "{refused}"
        );
        let elsewhere =
            problem(load_authorizer(&JWT_ENV.replace("https://idp.example.com/jwks", "${ssm:/jwks}"), &sources, 0));
        assert!(
            elsewhere.contains("JWKS_URI: ${ssm:NAME} and ${secretsmanager:NAME-OR-ARN} are taken only by"),
            "{elsewhere}"
        );
        let inside = problem(with("'x${ssm:/pets/introspection}'"));
        assert!(inside.contains("as a whole value"), "{inside}");
        let by_hand =
            problem(load_authorizer(&format!("{JWT_ENV}    AUTHORIZER_SECRET_REFERENCES: '{{}}'\n"), &sources, 0));
        assert!(by_hand.contains("AUTHORIZER_SECRET_REFERENCES: is written by the deployer"), "{by_hand}");
    }
}
