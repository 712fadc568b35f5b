//! The order of things: which resource depends on which, and the three
//! commands on top of the per-kind modules.
//!
//! `diff` reads and compares, never writes. `apply` runs the same comparison
//! step by step and acts on it, feeding each step's outputs (ARNs, ids) to
//! the next; because every step re-reads AWS first, an interrupted apply is
//! finished by the next one. `teardown` walks the same steps in reverse and
//! deletes only what carries this stack's tag.

use anyhow::Context as _;

use crate::aws::Aws;
use crate::package::Package;
use crate::plan::{Action, Change, Plan};
use crate::resources::iam_role::Role;
use crate::resources::lambda_function::Function;
use crate::resources::{Diff, Resource};
use crate::stack::Stack;

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
        Desired { execution_role, function, invoke_role }
    }
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
    Ok(plan)
}

/// Deletes, in reverse dependency order, everything of the stack that exists
/// and carries its tag. `Mode::Diff` only lists it.
pub async fn teardown(stack: &Stack, aws: &Aws, desired: &Desired, mode: Mode) -> anyhow::Result<Plan> {
    let mut plan = Plan::default();
    let name = &stack.name;
    remove(&desired.function, aws, name, &mut plan, mode).await?;
    remove(&desired.invoke_role, aws, name, &mut plan, mode).await?;
    remove(&desired.execution_role, aws, name, &mut plan, mode).await?;
    Ok(plan)
}
