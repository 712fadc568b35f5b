//! Helpers for running the `deployer` binary against moto: a stack directory
//! with its files, the command itself, and SDK clients that read AWS back
//! (straight from moto, not through the proxy).
//!
//! The deployer runs as a pipeline runs it: as a principal whose policy is
//! what `deployer policy` prints for the stack (every policy printed for the
//! stack directory so far, as an operator would keep the old one through a
//! rename), judged by every proxy (`access`), after `deployer bootstrap` made
//! the stack's permissions boundary with an operator's rights.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_config::BehaviorVersion;

/// A temporary directory holding stack.yaml and the files it names.
pub struct StackDir {
    pub dir: PathBuf,
    /// The access key the deployer runs with for this stack.
    principal: String,
    /// Every statement printed for it so far, and the file last bootstrapped.
    policies: Mutex<Vec<serde_json::Value>>,
    bootstrapped: Mutex<Option<String>>,
    /// What `deployer policy` printed for a role and a stack file: the
    /// policy depends on nothing else, and printing it is a process of its
    /// own (as many as the runs judged).
    printed: Mutex<std::collections::HashMap<(Role, String), Option<serde_json::Value>>>,
    /// Run `deployer bootstrap` before the deployer (on unless a test
    /// checks what happens without it).
    pub auto_bootstrap: AtomicBool,
    /// Changes the pipeline's policy after it is printed (a test that takes
    /// a statement or an action away).
    edit: Mutex<Option<PolicyEdit>>,
}

/// A change to a printed policy.
pub type PolicyEdit = Box<dyn Fn(&mut serde_json::Value) + Send + Sync>;

/// Who runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The pipeline: `deployer policy`.
    Pipeline,
    /// The plan role: `deployer policy --read-only`.
    ReadOnly,
    /// The operator who runs `deployer bootstrap`: `deployer policy --operator`.
    Operator,
    /// An administrator (no policy judged).
    Admin,
}

impl StackDir {
    pub fn new(name: &str, yaml: &str) -> StackDir {
        Self::at(std::env::temp_dir(), name, yaml)
    }

    /// A stack directory inside this workspace (under `target/`), for a
    /// stack whose `code: { build: … }` cargo must find the workspace from.
    pub fn in_workspace(name: &str, yaml: &str) -> StackDir {
        Self::at(crate::workspace_root().join("target").join("e2e-stacks"), name, yaml)
    }

    fn at(base: PathBuf, name: &str, yaml: &str) -> StackDir {
        let dir = base.join(format!("deployer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("stack dir");
        std::fs::write(dir.join("stack.yaml"), yaml).expect("stack.yaml");
        std::fs::write(dir.join("code.zip"), code_zip(&tiny_bootstrap())).expect("code.zip");
        let ca = crate::certs::Ca::new("Clients CA");
        std::fs::write(dir.join("truststore.pem"), &ca.pem).expect("truststore");
        static STACKS: AtomicUsize = AtomicUsize::new(0);
        let principal = format!("AKIASTACK{}X{}", std::process::id(), STACKS.fetch_add(1, Ordering::SeqCst));
        StackDir {
            dir,
            principal,
            policies: Mutex::default(),
            bootstrapped: Mutex::default(),
            printed: Mutex::default(),
            auto_bootstrap: AtomicBool::new(true),
            edit: Mutex::default(),
        }
    }

    /// From now on, the pipeline runs with the printed policy as `edit` changes it.
    pub fn edit_policy(&self, edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static) {
        *self.edit.lock().expect("edit") = Some(Box::new(edit));
    }

    /// The access key the deployer runs with as `role` (`None`: an administrator's).
    pub fn access_key(&self, role: Role) -> Option<String> {
        match role {
            Role::Pipeline => Some(self.principal.clone()),
            Role::ReadOnly => Some(format!("{}R", self.principal)),
            Role::Operator => Some(format!("{}O", self.principal)),
            Role::Admin => None,
        }
    }

    /// The pipeline's principal: its policy and what was judged for it.
    pub fn principal(&self, role: Role) -> Option<std::sync::Arc<crate::access::Principal>> {
        self.access_key(role).map(|key| crate::access::principal(&key))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn write(&self, file: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.dir.join(file), contents).expect("write stack file");
    }
}

impl Drop for StackDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The smallest `bootstrap` Lambda could start: a static x86_64 ELF of 129
/// bytes that exits 0 (one loadable segment; `mov eax, 60; xor edi, edi;
/// syscall`). The deployer checks what it uploads; this passes.
pub fn tiny_bootstrap() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let code: &[u8] = &[0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];
    let size = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + 120).to_le_bytes()); // entry: right after the headers
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R + X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(code);
    elf
}

/// A zip holding `bootstrap` with `contents`.
pub fn code_zip(contents: &[u8]) -> Vec<u8> {
    code_zip_with_mode(contents, 0o755)
}

/// A zip holding `bootstrap` with `contents` and the Unix `mode`.
pub fn code_zip_with_mode(contents: &[u8], mode: u32) -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(mode)).expect("entry");
    zip.write_all(contents).expect("write");
    zip.finish().expect("finish");
    buffer.into_inner()
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How much faster than AWS time runs in these tests: the deployer's waits
/// and the AWS-like proxy's delays alike (30 s of AWS become 300 ms).
pub const TIME_SCALE: f64 = 0.01;

/// Runs `deployer ARGS --stack DIR/stack.yaml` with AWS pointed at
/// `endpoint`, as the pipeline (see the module's doc). Async, so the test's
/// own servers (the proxy) keep running meanwhile.
pub async fn deployer(stack: &StackDir, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    deployer_as(Role::Pipeline, stack, endpoint, args, env).await
}

/// [`deployer`] as `role`.
pub async fn deployer_as(role: Role, stack: &StackDir, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let key = prepare(role, stack, args).await;
    run(command_for(stack, endpoint, args, env, key.as_deref())).await
}

/// The deployer started as the pipeline, not awaited (to be killed).
pub async fn spawn_deployer(
    stack: &StackDir,
    endpoint: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> tokio::process::Child {
    let key = prepare(Role::Pipeline, stack, args).await;
    let mut command = command_for(stack, endpoint, args, env, key.as_deref());
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).kill_on_drop(true);
    command.spawn().expect("start deployer")
}

/// Before a command of `role`: the stack bootstrapped (once per stack file),
/// and the principal's policy the one printed for the stack now, added to
/// those printed before. Returns the access key to run with.
async fn prepare(role: Role, stack: &StackDir, args: &[&str]) -> Option<String> {
    let command = args.first().copied().unwrap_or_default();
    let judged = match role {
        Role::Operator => command == "bootstrap",
        _ => !["policy", "schema", "local", "bootstrap"].contains(&command),
    };
    if !judged {
        return None;
    }
    let key = stack.access_key(role)?;
    let text = std::fs::read_to_string(stack.path("stack.yaml")).unwrap_or_default();
    if role != Role::Operator && stack.auto_bootstrap.load(Ordering::SeqCst) {
        let done = stack.bootstrapped.lock().expect("bootstrapped").as_deref() == Some(text.as_str());
        if !done {
            // As the operator does it: straight to the account, with its rights.
            let outcome = run(command_for(stack, &crate::moto::endpoint(), &["bootstrap"], &[], None)).await;
            if outcome.code == 0 {
                *stack.bootstrapped.lock().expect("bootstrapped") = Some(text.clone());
            }
        }
    }
    if let Some(policy) = printed_policy(role, stack, text).await {
        let mut policies = stack.policies.lock().expect("policies");
        let statements: Vec<serde_json::Value> = policy["Statement"].as_array().cloned().unwrap_or_default();
        let kept = if role == Role::Pipeline { policies.clone() } else { Vec::new() };
        let merged = union(&kept, &statements);
        if role == Role::Pipeline {
            *policies = merged.clone();
        }
        let mut policy = serde_json::json!({"Version": "2012-10-17", "Statement": merged});
        if let Some(edit) = stack.edit.lock().expect("edit").as_ref().filter(|_| role == Role::Pipeline) {
            edit(&mut policy);
        }
        crate::access::principal(&key).set_policy(policy);
    }
    Some(key)
}

/// What `deployer policy` prints for `role` and the stack file `text`
/// (printed once per role and file).
async fn printed_policy(role: Role, stack: &StackDir, text: String) -> Option<serde_json::Value> {
    let cached = stack.printed.lock().expect("printed").get(&(role, text.clone())).cloned();
    if let Some(policy) = cached {
        return policy;
    }
    let mut printed = vec!["policy", "--json", "--account", crate::access::ACCOUNT];
    match role {
        Role::ReadOnly => printed.push("--read-only"),
        Role::Operator => printed.push("--operator"),
        Role::Pipeline | Role::Admin => {}
    }
    let outcome = run(command_for(stack, "http://127.0.0.1:9", &printed, &[], None)).await;
    let policy = serde_json::from_str::<serde_json::Value>(&outcome.stdout).ok();
    stack.printed.lock().expect("printed").insert((role, text), policy.clone());
    policy
}

/// The access key to run the deployer with as the pipeline, for a test
/// that starts it as a process of its own: the stack bootstrapped and the
/// key's policy the printed one, as [`deployer`] does.
pub async fn pipeline_key(stack: &StackDir) -> String {
    prepare(Role::Pipeline, stack, &["apply"]).await.expect("the pipeline is judged")
}

/// The statements of `old` and `new`, each once (a `Sid` reused for other
/// content keeps both, the later one renamed).
fn union(old: &[serde_json::Value], new: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut all = old.to_vec();
    for statement in new {
        if all.contains(statement) {
            continue;
        }
        let mut statement = statement.clone();
        if all.iter().any(|s| s["Sid"] == statement["Sid"]) {
            statement["Sid"] = format!("{}Earlier{}", statement["Sid"].as_str().unwrap_or("S"), all.len()).into();
        }
        all.push(statement);
    }
    all
}

fn command_for(
    stack: &StackDir,
    endpoint: &str,
    args: &[&str],
    env: &[(&str, &str)],
    key: Option<&str>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(crate::workspace_binary("debug", "deployer"));
    command
        .args(args)
        .arg("--stack")
        .arg(stack.path("stack.yaml"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", key.unwrap_or("testing"))
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // AWS's waits, scaled down as the AWS-like proxy scales its delays.
        .env("DEPLOYER_TIME_SCALE", TIME_SCALE.to_string());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

async fn run(mut command: tokio::process::Command) -> Outcome {
    let output = tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("deployer finished within 5 minutes")
        .expect("run deployer");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// SDK clients on moto, for reading back and for changes behind the deployer's back.
pub struct Clients {
    pub region: &'static str,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub s3: aws_sdk_s3::Client,
    pub wafv2: aws_sdk_wafv2::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
}

pub async fn clients() -> Clients {
    clients_in("eu-west-1").await
}

pub async fn clients_in(region: &'static str) -> Clients {
    clients_of(&crate::moto::endpoint(), region).await
}

/// SDK clients that go through `endpoint` (a proxy) instead of straight to moto.
pub async fn clients_at(endpoint: &str) -> Clients {
    clients_of(endpoint, "eu-west-1").await
}

/// SDK clients that go through `endpoint` with access key `key`: as a
/// principal the proxy judges (a stack's pipeline role, see [`StackDir::access_key`]).
pub async fn clients_as(endpoint: &str, key: &str) -> Clients {
    clients_with(endpoint, "eu-west-1", key).await
}

async fn clients_of(endpoint: &str, region: &'static str) -> Clients {
    clients_with(endpoint, region, "testing").await
}

async fn clients_with(endpoint: &str, region: &'static str, key: &str) -> Clients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_iam::config::Credentials::new(key, "testing", None, None, "tests"))
        .load()
        .await;
    Clients {
        region,
        iam: aws_sdk_iam::Client::new(&config),
        lambda: aws_sdk_lambda::Client::new(&config),
        apigateway: aws_sdk_apigateway::Client::new(&config),
        s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build()),
        wafv2: aws_sdk_wafv2::Client::new(&config),
        acm: aws_sdk_acm::Client::new(&config),
        route53: aws_sdk_route53::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        secretsmanager: aws_sdk_secretsmanager::Client::new(&config),
        ssm: aws_sdk_ssm::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
    }
}

/// A DynamoDB table shaped as the `dpop_replay_table` kind makes it (key
/// `proof`, a string; on demand), in moto: for the authorizer's shared
/// replay store without a deployment.
pub async fn create_replay_table(clients: &Clients, name: &str) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let key = KeySchemaElement::builder().attribute_name("proof").key_type(KeyType::Hash).build().expect("key");
    let attribute = AttributeDefinition::builder()
        .attribute_name("proof")
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute");
    let create = clients.dynamodb.create_table().table_name(name).key_schema(key).attribute_definitions(attribute);
    create.billing_mode(BillingMode::PayPerRequest).send().await.expect("create the table in moto");
}

/// A stack file for stack `name` (routes, stage), with `extra` YAML appended.
pub fn stack_yaml(name: &str, extra: &str) -> String {
    format!(
        r#"stack: {name}
region: eu-west-1
authorizer:
  code: {{ zip: code.zip }}
  memory_mb: 256
  timeout_seconds: 5
  environment:
    TOKEN_VALIDATION: introspection
    INTROSPECTION_ENDPOINT: https://idp.example.com/introspect
    INTROSPECTION_CLIENT_ID: gateway
    INTROSPECTION_CLIENT_SECRET: ${{env:INTROSPECTION_SECRET}}
    CERT_BINDING: required
  identity_sources:
    - method.request.header.Authorization
    - context.identity.clientCert.clientCertPem
  cache_ttl_seconds: 300
api:
  name: {name}-api
  realm: pets
  ip_address_type: dualstack
  routes:
    - method: GET
      path: /pets/{{id}}
      scopes: [pets:read]
      backend: https://backend.example.com/pets/{{id}}
      context_headers: {{ X-Sub: sub, X-Client-Id: client_id }}
    - method: POST
      path: /pets
      scopes: [pets:write]
      backend: https://backend.example.com/pets
stage:
  name: prod
  variables: {{ tier: gold }}
  throttling: {{ rate_limit: 50, burst_limit: 100 }}
{extra}"#
    )
}

pub const SECRET: &str = "very-secret-introspection-password";

/// The deployer's lock bucket in the tests' account and region.
pub const LOCK_BUCKET: &str = "oauth-gateway-123456789012-eu-west-1";

/// Writes `body` at `key` in the lock bucket (created if needed), as another
/// run of the deployer would. Another test's teardown may remove the empty
/// bucket meanwhile, so it tries a few times.
pub async fn put_in_lock_bucket(aws: &Clients, key: &str, body: &[u8]) {
    for _ in 0..5 {
        let _ = aws
            .s3
            .create_bucket()
            .bucket(LOCK_BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await;
        let put = aws.s3.put_object().bucket(LOCK_BUCKET).key(key).body(body.to_vec().into()).send().await;
        if put.is_ok() {
            return;
        }
    }
    panic!("could not write {key} in the lock bucket");
}

/// The stack's `domain:`, truststore and `waf:` sections, with names derived
/// from `name` (so stacks in one account do not share them).
pub fn edge_yaml(name: &str) -> String {
    format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\nwaf:\n  allow: [203.0.113.0/24, \"2001:db8::/32\"]\n"
    )
}

/// Everything of stack `name` in the account, one line per resource, ids
/// left out: what two runs that leave the same resources agree on, and
/// where a duplicate or a lost tag shows. Read straight from moto. Each
/// line starts with the deployer's name for the kind (the tidy test checks
/// that every kind has its line, or says here why not):
/// not in the snapshot: validation_record, alias_record — Route 53 records,
/// checked against the zone itself by tests/deployer/dns.rs;
/// not in the snapshot: certificate_validation — a wait for ACM, with no
/// resource of its own.
/// not in the snapshot: permissions_boundary — the operator's, which teardown leaves.
pub async fn snapshot(aws: &Clients, name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let prefix = format!("{name}-");
    let tagged = |tags: Option<&std::collections::HashMap<String, String>>| {
        if tags.and_then(|t| t.get("oauth-gateway:stack")).is_some_and(|v| v == name) { "tagged" } else { "UNTAGGED" }
    };
    for role in aws.iam.list_roles().send().await.expect("roles").roles() {
        if role.role_name().starts_with(&prefix) {
            let tags = aws.iam.list_role_tags().role_name(role.role_name()).send().await.expect("role tags");
            let owned = tags.tags().iter().any(|t| t.key() == "oauth-gateway:stack" && t.value() == name);
            lines.push(format!("iam_role {} {}", role.role_name(), if owned { "tagged" } else { "UNTAGGED" }));
        }
    }
    for function in aws.lambda.list_functions().send().await.expect("functions").functions() {
        let function_name = function.function_name().unwrap_or_default();
        if function_name.starts_with(&prefix) {
            let read = aws.lambda.get_function().function_name(function_name).send().await.expect("function");
            lines.push(format!("lambda_function {function_name} {}", tagged(read.tags())));
            if let Ok(policy) = aws.lambda.get_policy().function_name(function_name).send().await {
                let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or("{}")).expect("policy");
                for statement in policy["Statement"].as_array().into_iter().flatten() {
                    lines.push(format!("  authorizer_permission {}", statement["Sid"].as_str().unwrap_or_default()));
                }
            }
        }
    }
    let apis = aws.apigateway.get_rest_apis().limit(500).send().await.expect("apis");
    for api in apis.items().iter().filter(|a| a.name().is_some_and(|n| n.starts_with(&prefix))) {
        let id = api.id().unwrap_or_default();
        lines.push(format!("rest_api {} {}", api.name().unwrap_or_default(), tagged(api.tags())));
        if api.disable_execute_api_endpoint() {
            lines.push("  execute_api off".to_owned());
        }
        let authorizers = aws.apigateway.get_authorizers().rest_api_id(id).send().await.expect("authorizers");
        lines.extend(authorizers.items().iter().map(|a| format!("  api_authorizer {}", a.name().unwrap_or_default())));
        let responses = aws.apigateway.get_gateway_responses().rest_api_id(id).send().await.expect("responses");
        for response in responses.items().iter().filter(|r| !r.default_response()) {
            let kind = response.response_type().map(|t| t.as_str().to_owned()).unwrap_or_default();
            lines.push(format!("  gateway_response {kind}"));
        }
        let resources =
            aws.apigateway.get_resources().rest_api_id(id).embed("methods").limit(500).send().await.expect("resources");
        for resource in resources.items() {
            let path = resource.path().unwrap_or_default();
            lines.push(format!("  api_resource {path}"));
            for method in resource.resource_methods().into_iter().flat_map(|m| m.keys()) {
                lines.push(format!("  api_route {method} {path}"));
            }
        }
        let stages = aws.apigateway.get_stages().rest_api_id(id).send().await.expect("stages");
        for stage in stages.item() {
            let stage_name = stage.stage_name().unwrap_or_default();
            // (A stage is the stack's as part of its API: it carries no tag of its own.)
            lines.push(format!("  stage {stage_name}"));
            // (moto has no ListResourcesForWebACL; the stage's side it has.)
            let arn = format!("arn:aws:apigateway:{}::/restapis/{id}/stages/{stage_name}", aws.region);
            let acl = aws.wafv2.get_web_acl_for_resource().resource_arn(arn).send().await;
            if let Some(acl) = acl.ok().and_then(|a| a.web_acl().map(|acl| acl.name().to_owned())) {
                lines.push(format!("  web_acl_association {stage_name} {acl}"));
            }
            if let Some(log) = stage.access_log_settings().and_then(|s| s.destination_arn()) {
                let group = log.rsplit_once(":log-group:").map_or(log, |(_, group)| group);
                lines.push(format!("  access_log {stage_name} {group}"));
            }
        }
    }
    let domain = format!("api.{name}.example.com");
    if let Ok(found) = aws.apigateway.get_domain_name().domain_name(&domain).send().await {
        lines.push(format!("domain_name {domain} {}", tagged(found.tags())));
        let mappings = aws.apigateway.get_base_path_mappings().domain_name(&domain).send().await.expect("mappings");
        lines.extend(
            mappings.items().iter().map(|m| format!("  base_path_mapping {}", m.base_path().unwrap_or_default())),
        );
    }
    let certificates = aws.acm.list_certificates().send().await.expect("certificates");
    for summary in certificates.certificate_summary_list().iter().filter(|c| c.domain_name() == Some(domain.as_str())) {
        let arn = summary.certificate_arn().unwrap_or_default();
        let tags = aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await.expect("certificate tags");
        let owned = tags.tags().iter().any(|t| t.key() == "oauth-gateway:stack" && t.value() == Some(name));
        lines.push(format!("certificate {domain} {}", if owned { "tagged" } else { "UNTAGGED" }));
    }
    let bucket = format!("{name}-truststore");
    if aws.s3.head_bucket().bucket(&bucket).send().await.is_ok() {
        let owned = aws
            .s3
            .get_bucket_tagging()
            .bucket(&bucket)
            .send()
            .await
            .is_ok_and(|t| t.tag_set().iter().any(|t| t.key() == "oauth-gateway:stack" && t.value() == name));
        let objects = aws.s3.list_objects_v2().bucket(&bucket).send().await.expect("objects");
        lines.push(format!(
            "truststore {bucket} {} objects={}",
            if owned { "tagged" } else { "UNTAGGED" },
            objects.contents().len()
        ));
    }
    let regional = aws_sdk_wafv2::types::Scope::Regional;
    let sets = aws.wafv2.list_ip_sets().scope(regional.clone()).limit(100).send().await.expect("ip sets");
    for set in sets.ip_sets().iter().filter(|s| s.name().is_some_and(|n| n.starts_with(&prefix))) {
        lines.push(format!("ip_set {}", set.name().unwrap_or_default()));
    }
    let acls = aws.wafv2.list_web_acls().scope(regional).limit(100).send().await.expect("web acls");
    for acl in acls.web_acls().iter().filter(|a| a.name().is_some_and(|n| n.starts_with(&prefix))) {
        lines.push(format!("web_acl {}", acl.name().unwrap_or_default()));
    }
    let table = format!("{name}-dpop-replay");
    if let Ok(described) = aws.dynamodb.describe_table().table_name(&table).send().await {
        let arn = described.table().and_then(|t| t.table_arn()).unwrap_or_default();
        let tags = aws.dynamodb.list_tags_of_resource().resource_arn(arn).send().await.expect("table tags");
        let owned = tags.tags().iter().any(|t| t.key() == "oauth-gateway:stack" && t.value() == name);
        lines.push(format!("dpop_replay_table {table} {}", if owned { "tagged" } else { "UNTAGGED" }));
    }
    let secret = format!("oauth-gateway/{name}/authorizer");
    if let Ok(described) = aws.secretsmanager.describe_secret().secret_id(&secret).send().await {
        let owned = described.tags().iter().any(|t| t.key() == Some("oauth-gateway:stack") && t.value() == Some(name));
        lines.push(format!("authorizer_secret {secret} {}", if owned { "tagged" } else { "UNTAGGED" }));
    }
    for prefix in [format!("/aws/lambda/{name}-"), format!("/aws/apigateway/{name}/")] {
        let groups = aws.logs.describe_log_groups().log_group_name_prefix(prefix).send().await.expect("log groups");
        for group in groups.log_groups() {
            let arn = group.log_group_arn().unwrap_or_default();
            let tags = aws.logs.list_tags_for_resource().resource_arn(arn).send().await.expect("log group tags");
            let retention = group.retention_in_days().map_or("never".to_owned(), |d| d.to_string());
            let group = group.log_group_name().unwrap_or_default();
            lines.push(format!("log_group {group} {} retention={retention}", tagged(tags.tags())));
        }
    }
    lines.sort();
    lines
}

/// One step of a plan as `--json` prints it: what tests assert on, rather
/// than the printed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub kind: String,
    pub name: String,
    /// `create`, `update`, `replace`, `delete`.
    pub action: String,
    /// `(field, old, new)`, values as the plan shows them.
    pub fields: Vec<(String, String, String)>,
}

/// The steps of a `--json` plan (`diff --json`, `apply --json`) that change
/// something. Panics, quoting it, on anything but a JSON plan.
pub fn planned(stdout: &str) -> Vec<Planned> {
    let plan: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not a JSON plan ({e}): {stdout}"));
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    plan["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|step| step["action"] != "no_op")
        .map(|step| Planned {
            kind: text(&step["address"]["kind"]),
            name: text(&step["address"]["name"]),
            action: text(&step["action"]),
            fields: step["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| (text(&f["field"]), text(&f["old"]), text(&f["new"])))
                .collect(),
        })
        .collect()
}

/// The step of `steps` for `address` (`kind name`), if the plan has one.
pub fn step<'a>(steps: &'a [Planned], address: &str) -> Option<&'a Planned> {
    steps.iter().find(|s| address.split_once(' ') == Some((s.kind.as_str(), s.name.as_str())))
}

/// `snapshot` with the stack's name replaced by `STACK`, so two stacks of
/// the same shape compare equal.
pub async fn shape(aws: &Clients, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = snapshot(aws, name).await.into_iter().map(|l| l.replace(name, "STACK")).collect();
    lines.sort();
    lines
}

/// The shape a clean apply of `stack_yaml(NAME, edge_yaml(NAME))` leaves,
/// read once per test process (a stack of its own, applied through a plain
/// proxy, then torn down).
pub async fn clean_apply_shape() -> Vec<String> {
    static SHAPE: tokio::sync::OnceCell<Vec<String>> = tokio::sync::OnceCell::const_new();
    SHAPE
        .get_or_init(|| async {
            let name = "t-reference";
            let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
            let proxy = crate::moto::Proxy::start().await;
            let secrets = [("INTROSPECTION_SECRET", SECRET)];
            for command in [&["teardown"][..], &["apply"]] {
                let outcome = deployer(&stack, &proxy.url(), command, &secrets).await;
                assert_eq!(outcome.code, 0, "reference {command:?}: {}", outcome.stderr);
            }
            let shape = shape(&clients().await, name).await;
            let teardown = deployer(&stack, &proxy.url(), &["teardown"], &secrets).await;
            assert_eq!(teardown.code, 0, "reference teardown: {}", teardown.stderr);
            assert!(shape.iter().any(|l| l.starts_with("web_acl ")) && !shape.iter().any(|l| l.contains("UNTAGGED")));
            shape
        })
        .await
        .clone()
}

/// Held by the tests that change what is one per account (API Gateway's
/// CloudWatch role, a global IAM role, and its account setting), so that
/// each sees the account as it set it.
pub static ACCOUNT_SETTINGS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The environment every test stack needs: its introspection secret.
pub fn env() -> [(&'static str, &'static str); 1] {
    [("INTROSPECTION_SECRET", SECRET)]
}

/// Runs `args` through `proxy` (with [`env`]) and asserts it succeeded.
pub async fn must(stack: &StackDir, proxy: &crate::moto::Proxy, args: &[&str]) -> Outcome {
    let outcome = deployer(stack, &proxy.url(), args, &env()).await;
    assert_eq!(outcome.code, 0, "{args:?}:\n{}\n{}", outcome.stdout, outcome.stderr);
    outcome
}

/// Stack `name` from `yaml`, with whatever an earlier run left of it torn down.
pub async fn fresh_stack(name: &str, yaml: &str, proxy: &crate::moto::Proxy) -> StackDir {
    let stack = StackDir::new(name, yaml);
    clean_slate(&stack, proxy).await;
    stack
}

/// Removes what an earlier run against the same moto server left behind, so a
/// test starts from an empty account whether moto is fresh or not. As an
/// administrator: what is left may be under names this stack file no longer
/// gives (the pipeline would need the policy printed for them).
pub async fn clean_slate(stack: &StackDir, proxy: &crate::moto::Proxy) {
    let outcome = deployer_as(Role::Admin, stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(outcome.code, 0, "cleaning up:\n{}\n{}", outcome.stdout, outcome.stderr);
    proxy.reset();
}

pub async fn api_id(aws: &Clients, name: &str) -> String {
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let api = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(name) && a.tags().is_some_and(|t| t.contains_key("oauth-gateway:stack")));
    api.and_then(|a| a.id()).expect("the stack's REST API").to_owned()
}

pub async fn set_authorizer_ttl(aws: &Clients, api_id: &str, authorizer_id: &str, ttl: &str) {
    aws.apigateway
        .update_authorizer()
        .rest_api_id(api_id)
        .authorizer_id(authorizer_id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/authorizerResultTtlInSeconds")
                .value(ttl)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Applies, and returns the AWS writes it made, in order.
pub async fn apply_in_order(stack: &StackDir, proxy: &crate::moto::Proxy) -> Vec<String> {
    proxy.reset();
    let apply = deployer(stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    proxy.changes()
}

pub fn position(order: &[String], operation: &str) -> usize {
    order.iter().position(|o| o == operation).unwrap_or_else(|| panic!("{operation} not in {order:?}"))
}

/// The `+`, `~`, `-` lines of a printed plan.
pub fn pending(plan: &str) -> Vec<String> {
    let mut lines: Vec<String> = plan
        .lines()
        .filter(|l| l.trim_start().starts_with(['+', '~', '-']))
        .map(|l| l.trim_start().to_owned())
        .collect();
    lines.sort();
    lines
}

pub fn body_of<'a>(proxy_calls: &'a [crate::moto::Call], operation: &str) -> Vec<&'a str> {
    proxy_calls.iter().filter(|c| c.service_operation == operation).map(|c| c.request.body.as_str()).collect()
}
