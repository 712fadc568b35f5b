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
use crate::resources::gateway_response::GatewayResponse;
use crate::resources::iam_role::Role;
use crate::resources::lambda_function::Function;
use crate::resources::rest_api::RestApi;
use crate::resources::stage::Stage;
use crate::resources::{Diff, Resource};
use crate::stack::{ApiSource, Stack};

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
    [GatewayResponse::unauthorized(api_id, &stack.api.realm), GatewayResponse::access_denied(api_id)]
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
    text.push_str(&format!("realm {}\n", stack.api.realm));
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

    let Some(api) = converge(&desired.rest_api, aws, name, mode, &mut plan).await? else {
        plan_children_of_missing_api(stack, &mut plan);
        return Ok(plan);
    };
    let before = plan.changes.len();
    let authorizer = desired.authorizer(stack, aws, &api.id);
    let authorizer_id = match converge(&authorizer, aws, name, mode, &mut plan).await? {
        Some(observed) => observed.id,
        None => "(known after apply)".to_owned(),
    };
    for route in routes(stack, &api.id, &authorizer_id) {
        converge(&route, aws, name, mode, &mut plan).await?;
    }
    for response in gateway_responses(stack, &api.id) {
        converge(&response, aws, name, mode, &mut plan).await?;
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
    converge(&stage, aws, name, mode, &mut plan).await?;
    Ok(plan)
}

/// Deletes, in reverse dependency order, everything of the stack that exists
/// and carries its tag. `Mode::Diff` only lists it.
pub async fn teardown(stack: &Stack, aws: &Aws, desired: &Desired, mode: Mode) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let name = &stack.name;
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
