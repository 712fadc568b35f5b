//! The order of things: which resource depends on which, and the three
//! commands on top of the per-kind modules.
//!
//! `diff` reads and compares, never writes. `apply` runs the same comparison
//! step by step and acts on it, feeding each step's outputs (ARNs, ids) to
//! the next; because every step re-reads AWS first, an interrupted apply is
//! finished by the next one. `teardown` walks the same steps in reverse and
//! deletes only what carries this stack's tag.

use std::collections::BTreeMap;

use anyhow::Context as _;

use crate::aws::Aws;
use crate::package::Package;
use crate::plan::{Action, Change, Plan};
use sha2::{Digest as _, Sha256};

use crate::resources::api_authorizer::ApiAuthorizer;
use crate::resources::api_route::ApiRoute;
use crate::resources::base_path_mapping::BasePathMapping;
use crate::resources::certificate::Certificate;
use crate::resources::domain_name::DomainName;
use crate::resources::gateway_response::GatewayResponse;
use crate::resources::iam_role::Role;
use crate::resources::ip_set::IpSet;
use crate::resources::lambda_function::Function;
use crate::resources::rest_api::RestApi;
use crate::resources::stage::Stage;
use crate::resources::truststore::Truststore;
use crate::resources::web_acl::WebAcl;
use crate::resources::web_acl_association::WebAclAssociation;
use crate::resources::{Diff, Resource};
use crate::stack::{ApiSource, CertificateSpec, DomainSpec, Stack};

/// Shown for values that only exist once an earlier step has run.
const KNOWN_AFTER_APPLY: &str = "(known after apply)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Diff,
    Apply,
}

/// Brings one resource in line (or, in `Diff` mode, only says what would change).
/// Returns what exists afterwards (`None` in `Diff` mode when it does not exist yet).
pub async fn converge<R: Resource>(
    resource: &R,
    aws: &Aws,
    stack: &str,
    mode: Mode,
    plan: &mut Plan,
) -> anyhow::Result<Option<R::Observed>> {
    let what = || format!("{} ({})", R::KIND, resource.id());
    let observed = resource.find(aws).await.with_context(|| format!("reading {}", what()))?;
    let change = |action, diff: Option<&Diff>| Change {
        kind: R::KIND,
        id: resource.id(),
        action,
        fields: diff.map(|d| d.fields.clone()).unwrap_or_default(),
    };
    match observed {
        None => {
            plan.push(change(Action::Create, None));
            if mode == Mode::Diff {
                return Ok(None);
            }
            eprintln!("  creating {}", what());
            Ok(Some(resource.create(aws).await.with_context(|| format!("creating {}", what()))?))
        }
        Some(observed) => {
            anyhow::ensure!(
                resource.owned_by(&observed, stack),
                "{} already exists but does not carry the tag of stack {stack:?}; refusing to take it over",
                what()
            );
            let diff = resource.diff(&observed);
            if diff.fields.is_empty() {
                plan.push(change(Action::NoOp, None));
                return Ok(Some(observed));
            }
            let action = if diff.replace { Action::Replace } else { Action::Update };
            plan.push(change(action.clone(), Some(&diff)));
            if mode == Mode::Diff {
                return Ok(Some(observed));
            }
            if diff.replace {
                eprintln!("  replacing {}", what());
                resource.delete(aws, &observed).await.with_context(|| format!("deleting {}", what()))?;
                return Ok(Some(resource.create(aws).await.with_context(|| format!("creating {}", what()))?));
            }
            eprintln!("  updating {}", what());
            Ok(Some(resource.update(aws, &observed, &diff).await.with_context(|| format!("updating {}", what()))?))
        }
    }
}

/// Deletes one resource if it exists and is ours.
async fn remove<R: Resource>(resource: &R, aws: &Aws, stack: &str, plan: &mut Plan, mode: Mode) -> anyhow::Result<()> {
    let what = || format!("{} ({})", R::KIND, resource.id());
    let Some(observed) = resource.find(aws).await.with_context(|| format!("reading {}", what()))? else {
        return Ok(());
    };
    if !resource.owned_by(&observed, stack) {
        eprintln!("  leaving {} in place: it does not carry the tag of stack {stack:?}", what());
        return Ok(());
    }
    plan.push(Change { kind: R::KIND, id: resource.id(), action: Action::Delete, fields: Vec::new() });
    if mode == Mode::Apply {
        eprintln!("  deleting {}", what());
        resource.delete(aws, &observed).await.with_context(|| format!("deleting {}", what()))?;
    }
    Ok(())
}

/// The desired resources, derived from the stack (names are deterministic,
/// so dependents can be planned before their dependencies exist).
pub struct Desired {
    pub execution_role: Role,
    pub function: Function,
    pub invoke_role: Role,
    pub rest_api: RestApi,
}

impl Desired {
    pub fn new(stack: &Stack, aws: &Aws, package: Package) -> Desired {
        let execution_role = Role::execution(&stack.name);
        let a = &stack.authorizer;
        let function = Function {
            stack: stack.name.clone(),
            name: format!("{}-authorizer", stack.name),
            role_arn: execution_role.arn(&aws.account),
            zip: package.zip,
            code_sha256: package.sha256,
            environment: a.environment.clone(),
            timeout_seconds: a.timeout_seconds,
            memory_mb: a.memory_mb,
            architecture: a.architecture.as_lambda(),
        };
        let invoke_role = Role::invoker(&stack.name, &function.arn(aws));
        let rest_api = RestApi {
            stack: stack.name.clone(),
            source: match &stack.api.source {
                ApiSource::Create(name) => Ok(name.clone()),
                ApiSource::Adopt(id) => Err(id.clone()),
            },
            disable_execute_api_endpoint: stack.domain.is_some(),
        };
        Desired { execution_role, function, invoke_role, rest_api }
    }

    fn authorizer(&self, stack: &Stack, aws: &Aws, api_id: &str) -> ApiAuthorizer {
        ApiAuthorizer {
            api_id: api_id.to_owned(),
            name: format!("{}-oauth", stack.name),
            function_arn: self.function.arn(aws),
            invoke_role_arn: self.invoke_role.arn(&aws.account),
            identity_sources: stack.authorizer.identity_sources.clone(),
            ttl_seconds: stack.authorizer.cache_ttl_seconds,
            region: aws.region.clone(),
        }
    }
}

fn routes(stack: &Stack, api_id: &str, authorizer_id: &str) -> Vec<ApiRoute> {
    stack
        .api
        .routes
        .iter()
        .map(|r| ApiRoute {
            api_id: api_id.to_owned(),
            authorizer_id: authorizer_id.to_owned(),
            method: r.method.clone(),
            path: r.path.clone(),
            backend: r.backend.clone(),
            context_headers: r.context_headers.clone(),
        })
        .collect()
}

fn gateway_responses(stack: &Stack, api_id: &str) -> [GatewayResponse; 2] {
    [GatewayResponse::unauthorized(api_id, &stack.api.unauthorized_challenge), GatewayResponse::access_denied(api_id)]
}

/// A hash of everything a deployment snapshots, from the desired state only
/// (ids excluded), so it is the same on every run until stack.yaml changes.
fn config_hash(stack: &Stack, authorizer: &ApiAuthorizer) -> String {
    let mut text = format!(
        "authorizer {} {} {:?} {}\n",
        authorizer.function_arn, authorizer.invoke_role_arn, authorizer.identity_sources, authorizer.ttl_seconds
    );
    for r in &stack.api.routes {
        text.push_str(&format!("route {} {} {} {:?}\n", r.method, r.path, r.backend, r.context_headers));
    }
    text.push_str(&format!("challenge {}\n", stack.api.unauthorized_challenge));
    Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Planned creations under an API that does not exist yet (`diff` only).
fn plan_children_of_missing_api(stack: &Stack, plan: &mut Plan) {
    let create = |kind, id: String| Change { kind, id, action: Action::Create, fields: Vec::new() };
    plan.push(create(ApiAuthorizer::KIND, format!("{}-oauth", stack.name)));
    for r in &stack.api.routes {
        plan.push(create(ApiRoute::KIND, format!("{} {}", r.method, r.path)));
    }
    plan.push(create(GatewayResponse::KIND, "UNAUTHORIZED".into()));
    plan.push(create(GatewayResponse::KIND, "ACCESS_DENIED".into()));
    plan.push(create(Stage::KIND, stack.stage.name.clone()));
}

/// `diff` (mode Diff) or `apply` (mode Apply): converges every resource in
/// dependency order and returns the plan of what was (to be) done.
pub async fn run(stack: &Stack, aws: &Aws, desired: &Desired, mode: Mode) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let name = &stack.name;
    // Independent: the two roles (the invoke role's policy names the
    // function by its deterministic ARN, so it need not wait for it).
    let mut exec_plan = Plan::default();
    let mut invoke_plan = Plan::default();
    let (exec, invoke) = tokio::join!(
        converge(&desired.execution_role, aws, name, mode, &mut exec_plan),
        converge(&desired.invoke_role, aws, name, mode, &mut invoke_plan),
    );
    exec?;
    invoke?;
    plan.changes.extend(exec_plan.changes);
    plan.changes.extend(invoke_plan.changes);
    converge(&desired.function, aws, name, mode, &mut plan).await?;

    // The API chain and the domain's prerequisites (certificate, truststore)
    // do not depend on each other: read and converge them concurrently.
    let mut api_plan = Plan::default();
    let mut prerequisites_plan = Plan::default();
    let (api, prerequisites) = tokio::join!(
        converge_api(stack, aws, desired, mode, &mut api_plan),
        domain_prerequisites(stack, aws, mode, &mut prerequisites_plan),
    );
    let api_id = api?;
    let prerequisites = prerequisites?;
    plan.changes.extend(api_plan.changes);
    plan.changes.extend(prerequisites_plan.changes);

    if let (Some(domain), Some((certificate_arn, truststore))) = (&stack.domain, prerequisites) {
        let domain_name = DomainName {
            stack: name.clone(),
            name: domain.name.clone(),
            certificate_arn,
            security_policy: domain.security_policy.clone(),
            truststore_uri: truststore.0,
            truststore_version: truststore.1,
        };
        let exists = converge(&domain_name, aws, name, mode, &mut plan).await?.is_some();
        let created_now = plan.changes.last().is_some_and(|c| c.kind == DomainName::KIND && c.action == Action::Create);
        let mapping = BasePathMapping {
            domain: domain.name.clone(),
            base_path: domain.base_path.clone(),
            api_id: api_id.clone().unwrap_or_else(|| KNOWN_AFTER_APPLY.to_owned()),
            stage: stack.stage.name.clone(),
        };
        if exists && api_id.is_some() && !created_now {
            converge(&mapping, aws, name, mode, &mut plan).await?;
        } else {
            // A domain that does not exist yet, or was created a moment ago,
            // has no mapping: nothing to read. (Reading one there also trips
            // moto 5.2.5, which answers 500 instead of NotFoundException.)
            plan.push(Change {
                kind: BasePathMapping::KIND,
                id: mapping.id(),
                action: Action::Create,
                fields: Vec::new(),
            });
            if mode == Mode::Apply {
                eprintln!("  creating {} ({})", BasePathMapping::KIND, mapping.id());
                mapping.create(aws).await.with_context(|| format!("creating base_path_mapping ({})", mapping.id()))?;
            }
        }
    }

    if let Some(allow) = &stack.waf {
        converge_waf(stack, aws, allow, api_id.as_deref(), mode, &mut plan).await?;
    }
    Ok(plan)
}

fn ip_sets(stack: &Stack, allow: &[crate::stack::Cidr]) -> [IpSet; 2] {
    let family = |ipv6: bool| {
        let mut addresses: Vec<String> = allow.iter().filter(|c| c.is_ipv6() == ipv6).map(|c| c.0.clone()).collect();
        addresses.sort();
        IpSet {
            stack: stack.name.clone(),
            name: format!("{}-allow-{}", stack.name, if ipv6 { "ipv6" } else { "ipv4" }),
            ipv6,
            addresses,
        }
    };
    [family(false), family(true)]
}

fn web_acl(stack: &Stack, allowed_ip_sets: Vec<String>) -> WebAcl {
    WebAcl { stack: stack.name.clone(), name: format!("{}-allowlist", stack.name), allowed_ip_sets }
}

fn stage_arn(aws: &Aws, api_id: &str, stage: &str) -> String {
    format!("arn:aws:apigateway:{}::/restapis/{api_id}/stages/{stage}", aws.region)
}

/// The IP allowlist: one IP set per address family, a web ACL that allows
/// them and blocks the rest, and its association with the stage.
async fn converge_waf(
    stack: &Stack,
    aws: &Aws,
    allow: &[crate::stack::Cidr],
    api_id: Option<&str>,
    mode: Mode,
    plan: &mut Plan,
) -> anyhow::Result<()> {
    let mut arns = Vec::new();
    for set in ip_sets(stack, allow) {
        let observed = converge(&set, aws, &stack.name, mode, plan).await?;
        arns.push(observed.map_or_else(|| format!("{} {KNOWN_AFTER_APPLY}", set.name), |o| o.arn));
    }
    let acl = converge(&web_acl(stack, arns), aws, &stack.name, mode, plan).await?;
    match (acl, api_id) {
        (Some(acl), Some(api_id)) => {
            let association =
                WebAclAssociation { web_acl_arn: acl.arn, stage_arn: stage_arn(aws, api_id, &stack.stage.name) };
            converge(&association, aws, &stack.name, mode, plan).await?;
        }
        _ => plan.push(Change {
            kind: WebAclAssociation::KIND,
            id: format!("stage {}", stack.stage.name),
            action: Action::Create,
            fields: Vec::new(),
        }),
    }
    Ok(())
}

/// The REST API and everything in it, ending with the stage. Returns the
/// API's id (`None` in `diff` when it does not exist yet).
async fn converge_api(
    stack: &Stack,
    aws: &Aws,
    desired: &Desired,
    mode: Mode,
    plan: &mut Plan,
) -> anyhow::Result<Option<String>> {
    let name = &stack.name;
    let Some(api) = converge(&desired.rest_api, aws, name, mode, plan).await? else {
        plan_children_of_missing_api(stack, plan);
        return Ok(None);
    };
    let before = plan.changes.len();
    let authorizer = desired.authorizer(stack, aws, &api.id);
    let authorizer_id = match converge(&authorizer, aws, name, mode, plan).await? {
        Some(observed) => observed.id,
        None => "(known after apply)".to_owned(),
    };
    for route in routes(stack, &api.id, &authorizer_id) {
        converge(&route, aws, name, mode, plan).await?;
    }
    if !desired.rest_api.adopted() {
        // The stack owns this API: a method it does not declare (a route
        // removed from stack.yaml, or one added by hand) goes.
        let declared: Vec<(String, String)> =
            stack.api.routes.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
        for extra in crate::resources::api_route::undeclared(aws, &api.id, &declared).await? {
            remove(&extra, aws, name, plan, mode).await?;
        }
    }
    for response in gateway_responses(stack, &api.id) {
        converge(&response, aws, name, mode, plan).await?;
    }
    let api_changed = plan.changes[before..].iter().any(|c| c.action != Action::NoOp);
    let stage = Stage {
        stack: stack.name.clone(),
        api_id: api.id.clone(),
        name: stack.stage.name.clone(),
        variables: stack.stage.variables.clone(),
        throttling: stack.stage.throttling,
        config_hash: config_hash(stack, &authorizer),
        force_redeploy: api_changed,
    };
    converge(&stage, aws, name, mode, plan).await?;
    Ok(Some(api.id))
}

/// The custom domain's certificate ARN and its truststore (URI, object
/// version), when the stack has a domain. In `diff`, values that only exist
/// after apply are shown as such.
async fn domain_prerequisites(
    stack: &Stack,
    aws: &Aws,
    mode: Mode,
    plan: &mut Plan,
) -> anyhow::Result<Option<(String, (String, String))>> {
    let Some(domain) = &stack.domain else { return Ok(None) };
    let certificate_arn = match &domain.certificate {
        CertificateSpec::Existing(arn) => {
            crate::resources::certificate::require_issued(aws, arn).await?;
            arn.clone()
        }
        CertificateSpec::Request => match converge(&certificate(stack, domain), aws, &stack.name, mode, plan).await? {
            Some(observed) => observed.arn,
            None => KNOWN_AFTER_APPLY.to_owned(),
        },
    };
    let truststore = truststore(stack, domain);
    let uri = truststore.uri();
    let pending_upload = |observed: &crate::resources::truststore::ObservedTruststore| {
        truststore.diff(observed).fields.iter().any(|f| f.field == "content_sha256")
    };
    let version = match converge(&truststore, aws, &stack.name, mode, plan).await? {
        Some(observed) if mode == Mode::Diff && pending_upload(&observed) => "(new version after apply)".to_owned(),
        Some(observed) => observed.version_id.unwrap_or_else(|| KNOWN_AFTER_APPLY.to_owned()),
        None => KNOWN_AFTER_APPLY.to_owned(),
    };
    Ok(Some((certificate_arn, (uri, version))))
}

fn certificate(stack: &Stack, domain: &DomainSpec) -> Certificate {
    Certificate {
        stack: stack.name.clone(),
        domain: domain.name.clone(),
        timeout: std::time::Duration::from_secs(15 * 60),
    }
}

fn truststore(stack: &Stack, domain: &DomainSpec) -> Truststore {
    Truststore {
        stack: stack.name.clone(),
        bucket: domain.truststore_bucket.clone(),
        key: domain.truststore_key.clone(),
        pem: domain.truststore_pem.clone(),
    }
}

/// Deletes, in reverse dependency order, everything of the stack that exists
/// and carries its tag. `Mode::Diff` only lists it.
pub async fn teardown(stack: &Stack, aws: &Aws, desired: &Desired, mode: Mode) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let name = &stack.name;
    if let Some(allow) = &stack.waf {
        // The association first: WAF refuses to delete an ACL still in use.
        if let Some(api) = desired.rest_api.find(aws).await.context("reading the REST API")? {
            // The stage alone identifies an association; which ACL it holds does not matter here.
            let association =
                WebAclAssociation { web_acl_arn: String::new(), stage_arn: stage_arn(aws, &api.id, &stack.stage.name) };
            remove(&association, aws, name, &mut plan, mode).await?;
        }
        remove(&web_acl(stack, Vec::new()), aws, name, &mut plan, mode).await?;
        for set in ip_sets(stack, allow) {
            remove(&set, aws, name, &mut plan, mode).await?;
        }
    }
    if let Some(domain) = &stack.domain {
        // The mapping goes with the domain; the domain must go before its certificate.
        let domain_name = DomainName {
            stack: name.clone(),
            name: domain.name.clone(),
            certificate_arn: String::new(),
            security_policy: String::new(),
            truststore_uri: String::new(),
            truststore_version: String::new(),
        };
        if let Some(observed) = domain_name.find(aws).await.context("reading the domain")?
            && domain_name.owned_by(&observed, name)
        {
            let mapping = BasePathMapping {
                domain: domain.name.clone(),
                base_path: domain.base_path.clone(),
                api_id: String::new(),
                stage: String::new(),
            };
            remove(&mapping, aws, name, &mut plan, mode).await?;
        }
        remove(&domain_name, aws, name, &mut plan, mode).await?;
        if domain.certificate == CertificateSpec::Request {
            remove(&certificate(stack, domain), aws, name, &mut plan, mode).await?;
        }
        remove(&truststore(stack, domain), aws, name, &mut plan, mode).await?;
    }
    if let Some(api) = desired.rest_api.find(aws).await.context("reading the REST API")? {
        let stage = Stage {
            stack: name.clone(),
            api_id: api.id.clone(),
            name: stack.stage.name.clone(),
            variables: BTreeMap::new(),
            throttling: None,
            config_hash: String::new(),
            force_redeploy: false,
        };
        remove(&stage, aws, name, &mut plan, mode).await?;
        if desired.rest_api.adopted() {
            eprintln!("  leaving the adopted REST API {} in place", api.id);
        } else {
            // Deleting the API deletes its routes, authorizer and responses.
            remove(&desired.rest_api, aws, name, &mut plan, mode).await?;
        }
    }
    remove(&desired.function, aws, name, &mut plan, mode).await?;
    remove(&desired.invoke_role, aws, name, &mut plan, mode).await?;
    remove(&desired.execution_role, aws, name, &mut plan, mode).await?;
    Ok(plan)
}
