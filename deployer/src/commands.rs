//! The commands, on top of the engine: observe → plan (pure) → execute.
//!
//! - `diff` / `plan --out`: observe and plan; never writes.
//! - `apply`: under the stack's lock, observe, plan, print, execute exactly
//!   that plan, then check (without another read) that the states the
//!   executor ended with leave nothing to do. With a saved plan, the fresh
//!   plan must equal it, or nothing is changed.
//! - `teardown`: the plan of an empty stack, under the lock.
//! - `output`: observe, and show what a person needs next.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;

use crate::aws::Aws;
use crate::executor::{self, Report};
use crate::lock::{self, Timing};
use crate::outputs::{self, Outputs};
use crate::package::Package;
use crate::plan::{Address, Artifact, Plan, SAVED_PLAN_FORMAT, SavedPlan};
use crate::planner::{self, Desired, Planned, Runner};
use crate::resources::{self, Context, Observation, REGISTRY};
use crate::stack::Stack;

/// The desired resources of the stack, every kind's.
pub fn desired(stack: &Stack, aws: &Aws, package: Option<&Package>) -> anyhow::Result<Vec<Desired>> {
    desired_in(&resources::context(stack, &aws.account, &aws.region, &aws.partition, package))
}

/// The desired resources in `context` (no AWS call).
pub fn desired_in(context: &Context<'_>) -> anyhow::Result<Vec<Desired>> {
    let mut desired = Vec::new();
    for kind in REGISTRY {
        for (name, spec) in kind.desired(context)? {
            desired.push(Desired { address: Address::new(kind.name(), name), spec });
        }
    }
    Ok(desired)
}

/// What was read, and the plan made from it.
pub struct Prepared {
    pub observed: Observation,
    pub planned: Planned,
}

/// Observes the account and plans towards `desired` (teardown: towards nothing).
pub async fn prepare(aws: &Aws, stack: &Stack, desired: &[Desired], teardown: bool) -> anyhow::Result<Prepared> {
    if !teardown {
        crate::resources::route53::preflight(aws, stack).await?;
    }
    let observed = crate::observe::observe(aws, &stack.name, desired).await?;
    let wanted: &[Desired] = if teardown { &[] } else { desired };
    let mut planned = planner::plan(&stack.name, wanted, &observed)?;
    if !teardown {
        planned.plan.dns_validation = outputs::dns_validation(stack, &observed);
        planned.plan.not_compared = stack.unknown_secrets().into_iter().map(str::to_owned).collect();
        planned.plan.any_valid_token = stack.routes_open_to_any_valid_token();
        planned.plan.warnings = stack.plain_warnings();
    }
    Ok(Prepared { observed, planned })
}

/// What `deployer bootstrap` writes: the operator's kinds of `desired`,
/// observed and planned for the operator.
pub async fn prepare_bootstrap(aws: &Aws, stack: &Stack, desired: &[Desired]) -> anyhow::Result<Prepared> {
    let operators: Vec<Desired> = desired
        .iter()
        .filter(|d| crate::resources::plan_kind(&d.address.kind).is_ok_and(|k| k.operator()))
        .cloned()
        .collect();
    let observed = crate::observe::observe_kinds(aws, &stack.name, &operators, &|k| k.operator()).await?;
    let planned = planner::plan_as(Runner::Operator, &stack.name, &operators, &observed)?;
    Ok(Prepared { observed, planned })
}

/// Saves the plan as `plan --out` does: `path`, and beside it the zip the
/// plan uploads (`plan.json` → `plan.authorizer-HEX.zip`).
pub fn save(stack: &Stack, aws: &Aws, plan: &Plan, package: Option<&Package>, path: &Path) -> anyhow::Result<()> {
    let artifact = package
        .map(|package| {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
            let file = format!("{stem}.authorizer-{}.zip", package.hex());
            let beside = path.with_file_name(&file);
            std::fs::copy(&package.path, &beside)
                .with_context(|| format!("copying {} to {}", package.path.display(), beside.display()))?;
            anyhow::Ok(Artifact { file, sha256: package.sha256.clone() })
        })
        .transpose()?;
    let saved = SavedPlan {
        format: SAVED_PLAN_FORMAT,
        stack: stack.name.clone(),
        account: aws.account.clone(),
        region: aws.region.clone(),
        stack_fingerprint: stack.fingerprint.clone(),
        artifact,
        plan: plan.clone(),
    };
    std::fs::write(path, serde_json::to_string_pretty(&saved)?).with_context(|| format!("writing {}", path.display()))
}

/// The zip a saved plan uploads, from beside the plan file; refused when it
/// is missing or is not the one the plan was made with.
pub fn saved_artifact(saved: &SavedPlan, path: &Path, stack: &Stack) -> anyhow::Result<Option<Package>> {
    let Some(artifact) = &saved.artifact else { return Ok(None) };
    let zip = path.with_file_name(&artifact.file);
    anyhow::ensure!(
        zip.exists(),
        "{} is missing: the plan uploads that zip, so keep it beside {} (a pipeline's artifact holds both); \
         nothing was changed",
        zip.display(),
        path.display()
    );
    let package = crate::package::from_zip(&zip, stack.authorizer.architecture)?;
    anyhow::ensure!(
        package.sha256 == artifact.sha256,
        "{} is not the zip the plan was made with (its SHA-256 differs); nothing was changed. Make a new plan",
        zip.display()
    );
    Ok(Some(package))
}

/// Refuses a saved plan that is not for this stack, account and region, or
/// whose stack.yaml has changed since.
pub fn check_saved(saved: &SavedPlan, stack: &Stack, aws: &Aws) -> anyhow::Result<()> {
    anyhow::ensure!(
        saved.format == SAVED_PLAN_FORMAT,
        "the plan file has format {}, not {SAVED_PLAN_FORMAT}",
        saved.format
    );
    anyhow::ensure!(
        saved.stack == stack.name && saved.account == aws.account && saved.region == aws.region,
        "the plan is for stack {:?} in account {} {}, not stack {:?} in account {} {}",
        saved.stack,
        saved.account,
        saved.region,
        stack.name,
        aws.account,
        aws.region
    );
    anyhow::ensure!(
        saved.stack_fingerprint == stack.fingerprint,
        "{} (a file it names, or a ${{env:…}} value it uses) changed since the plan was made; nothing was \
         changed. Make a new plan",
        stack.file.display()
    );
    Ok(())
}

/// Why a saved plan no longer describes the account: the steps that differ.
pub fn moved(saved: &Plan, fresh: &Plan) -> Option<String> {
    // A wait the plan has a step for (a certificate being issued) that AWS
    // has finished since is no change to what the plan does.
    let finished = |step: &crate::plan::Step| {
        crate::resources::plan_kind(&step.address.kind).is_ok_and(|k| k.waits_only())
            && fresh.step(&step.address).is_none_or(|now| now.action == crate::plan::Action::NoOp)
    };
    let saved = &Plan { steps: saved.steps.iter().filter(|s| !finished(s)).cloned().collect(), ..saved.clone() };
    let fresh = &Plan { steps: fresh.steps.iter().filter(|s| !finished(s)).cloned().collect(), ..fresh.clone() };
    // (What the plan shows beside its steps, such as the DNS record a
    // certificate waits for, does not change what it does.)
    if saved.steps == fresh.steps && saved.blockers == fresh.blockers {
        return None;
    }
    let mut lines = Vec::new();
    let fields = |step: &crate::plan::Step| step.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>().join(", ");
    for step in &fresh.steps {
        match saved.step(&step.address) {
            Some(old) if old == step => {}
            Some(old) if old.action == step.action => lines.push(format!(
                "  {}: planned {} of [{}], now {} of [{}]",
                step.address,
                old.action,
                fields(old),
                step.action,
                fields(step)
            )),
            Some(old) => lines.push(format!("  {}: planned {}, now {}", step.address, old.action, step.action)),
            None => lines.push(format!("  {}: not in the plan, now {}", step.address, step.action)),
        }
    }
    for step in saved.steps.iter().filter(|s| fresh.step(&s.address).is_none()) {
        lines.push(format!("  {}: planned {}, now not at all", step.address, step.action));
    }
    if lines.is_empty() {
        lines.push("  the steps or their order changed".into());
    }
    Some(lines.join("\n"))
}

/// Runs the plan under the lock, then checks the result converged.
pub async fn execute(
    aws: &Aws,
    stack: &Stack,
    desired: &[Desired],
    prepared: &Prepared,
    teardown: bool,
    stop: &AtomicBool,
) -> anyhow::Result<(Report, Observation)> {
    execute_as(Runner::Pipeline, aws, stack, desired, prepared, teardown, stop).await
}

/// [`execute`] for `runner` (`deployer bootstrap`: the operator).
pub async fn execute_as(
    runner: Runner,
    aws: &Aws,
    stack: &Stack,
    desired: &[Desired],
    prepared: &Prepared,
    teardown: bool,
    stop: &AtomicBool,
) -> anyhow::Result<(Report, Observation)> {
    let planned = &prepared.planned;
    let report = executor::execute(aws, &planned.plan, &planned.specs, &prepared.observed, stop).await;
    let after = merged(&prepared.observed, &report);
    if report.succeeded() {
        // Convergence check, on the states the executor ended with: planning
        // again must find nothing to do.
        let wanted: Vec<Desired> = match (teardown, runner) {
            (true, _) => Vec::new(),
            (false, Runner::Pipeline) => desired.to_vec(),
            (false, Runner::Operator) => desired
                .iter()
                .filter(|d| crate::resources::plan_kind(&d.address.kind).is_ok_and(|k| k.operator()))
                .cloned()
                .collect(),
        };
        let again = planner::plan_as(runner, &stack.name, &wanted, &after)?;
        anyhow::ensure!(!again.plan.has_changes(), "AWS still differs from the stack after the run:\n{}", again.plan);
    }
    Ok((report, after))
}

/// The observation updated with what the executor did.
fn merged(observed: &Observation, report: &Report) -> Observation {
    let mut after = observed.clone();
    // What lived inside a deleted resource (a route in its REST API) went with it.
    let mut gone: std::collections::BTreeSet<Address> = report.deleted.clone();
    loop {
        let before = gone.len();
        for (address, found) in after.all() {
            if found.parent.as_ref().is_some_and(|p| gone.contains(p)) {
                gone.insert(address);
            }
        }
        if gone.len() == before {
            break;
        }
    }
    for (kind, found) in after.found.iter_mut() {
        found.retain(|f| !gone.contains(&Address::new(kind, &f.name)));
        for f in found.iter_mut() {
            if let Some(state) = report.states.get(&Address::new(kind, &f.name)) {
                f.state = state.clone();
            }
        }
    }
    for (address, state) in &report.states {
        let found = after.found.entry(address.kind.clone()).or_default();
        if !found.iter().any(|f| f.name == address.name) {
            found.push(crate::resources::Found::new(
                address.name.clone(),
                crate::resources::Ownership::Owned,
                state.clone(),
            ));
        }
    }
    after
}

/// The failure message of a run that did not complete.
pub fn failure(report: &Report) -> Option<String> {
    if report.succeeded() {
        return None;
    }
    let mut lines = Vec::new();
    for (address, error) in &report.failed {
        lines.push(format!("  failed: {address}: {error}"));
    }
    for (address, what) in &report.waiting {
        lines.push(format!("  waiting: {address}: {what}"));
    }
    for address in &report.skipped {
        lines.push(format!("  not done (depends on a step that failed or waits): {address}"));
    }
    for blocker in &report.blockers {
        lines.push(format!("  blocked: {blocker}"));
    }
    Some(lines.join("\n"))
}

/// The stack's outputs, from an observation.
pub fn outputs(stack: &Stack, aws: &Aws, observed: &Observation) -> Outputs {
    outputs::collect(stack, &aws.region, &aws.partition, observed)
}

/// Takes the lock for `command`.
pub async fn lock(
    aws: &Aws,
    stack: &Stack,
    command: &str,
    lease: Duration,
    wait: Duration,
) -> anyhow::Result<lock::Held> {
    lock::acquire(aws, &stack.name, command, Timing { lease, wait }).await.context("taking the stack's lock")
}

/// Reads a saved plan.
pub fn load_saved(path: &std::path::Path) -> anyhow::Result<SavedPlan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a plan saved by `deployer plan --out`", path.display()))
}
