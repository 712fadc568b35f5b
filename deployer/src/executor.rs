//! The executor: carries out a plan's steps, and only those, each as soon as
//! the steps it waits for are done ([`crate::order`]), with independent steps
//! running at the same time (bounded), and steps that write inside one REST
//! API one at a time (API Gateway answers overlapping writes to one API with
//! 409 "concurrent modification").
//!
//! Before an update or a replacement the resource is read again (`find`),
//! and the step goes on only if that read calls for what the plan printed:
//! the same action, the same fields, from the same old values
//! ([`Step::deviation`]). If AWS moved, the step fails with what changed
//! and writes nothing; the next run plans again. The one move that is no
//! change to the plan is AWS arriving where a wait step waits for it (a
//! certificate ISSUED since the plan: `Kind::WAITS_ONLY`). A create trusts the
//! observation instead when it is fresh (read under this run's lock less
//! than [`FRESH`] ago): no other run can have written since, and a read per
//! level of the graph would double the rounds of a first apply; after a long
//! wait (a certificate being issued) it reads again. Either way, a resource a
//! killed run already made is found, not made twice. A step that fails stops
//! only the steps that depend on it; the others go on, and the run ends with
//! the list of what failed and what was left undone. A step that waits for
//! something outside the deployer's reach ([`LeftForLater`]: a certificate's
//! DNS record) is not a failure: it and what depends on it are left for a
//! later run, and `apply` says so with its own exit code.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::aws::Aws;
use crate::error::LeftForLater;
use crate::order;
use crate::plan::{Action, Address, Outputs, Plan, Step};
use crate::planner::{references, resolve};
use crate::resources::{self, Found, Observation, Ownership};

/// How many steps may run at the same time.
pub const CONCURRENCY: usize = 8;

/// How long an observation made under the lock counts as current for a create.
pub const FRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// What a run ended with.
#[derive(Debug, Default)]
pub struct Report {
    /// The state of every resource the plan touched, as read after its step.
    pub states: BTreeMap<Address, Value>,
    /// Resources deleted.
    pub deleted: BTreeSet<Address>,
    pub failed: Vec<(Address, String)>,
    /// Steps left for a later run ([`LeftForLater`]), with what they wait for.
    pub waiting: Vec<(Address, String)>,
    /// Steps not run because a step they depend on failed or is waiting.
    pub skipped: Vec<Address>,
    /// Reasons `apply` must report failure although every step ran.
    pub blockers: Vec<String>,
}

impl Report {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.waiting.is_empty() && self.skipped.is_empty() && self.blockers.is_empty()
    }

    /// Nothing failed, but some steps wait for something outside (and what
    /// depends on them was left too): a later run finishes.
    pub fn only_waiting(&self) -> bool {
        self.failed.is_empty() && self.blockers.is_empty() && !self.waiting.is_empty()
    }
}

/// Runs `plan`. `specs` are the planner's specs; `observed` is what the plan
/// was made from (the outputs of resources no step touches come from it).
/// `stop` set (the lock was lost) means: start no further step.
pub async fn execute(
    aws: &Aws,
    plan: &Plan,
    specs: &BTreeMap<Address, Value>,
    observed: &Observation,
    stop: &AtomicBool,
) -> Report {
    let mut outputs: BTreeMap<Address, Outputs> = BTreeMap::new();
    for (address, found) in observed.all() {
        if found.ownership != Ownership::Foreign
            && let Ok(kind) = resources::kind(&address.kind)
            && let Ok(values) = kind.outputs(&found.state)
        {
            outputs.insert(address, values);
        }
    }
    let steps: Vec<&Step> = plan.steps.iter().filter(|s| s.action != Action::NoOp).collect();
    let waits = order::prerequisites(&steps, specs);
    let mut report = Report::default();
    let mut done: BTreeSet<Address> = BTreeSet::new();
    let mut failed: BTreeSet<Address> = BTreeSet::new();
    let mut started: BTreeSet<Address> = BTreeSet::new();
    let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
    let groups: BTreeMap<&str, Arc<Semaphore>> = steps
        .iter()
        .filter_map(|s| resources::kind(&s.address.kind).ok()?.placement().write_group)
        .map(|group| (group, Arc::new(Semaphore::new(1))))
        .collect();
    let mut running = tokio::task::JoinSet::new();

    loop {
        for step in &steps {
            let address = &step.address;
            if started.contains(address) {
                continue;
            }
            let before = &waits[address];
            if before.iter().any(|a| failed.contains(a) || report.skipped.contains(a)) {
                started.insert(address.clone());
                report.skipped.push(address.clone());
                continue;
            }
            if !before.iter().all(|a| done.contains(a)) {
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                started.insert(address.clone());
                report.skipped.push(address.clone());
                continue;
            }
            started.insert(address.clone());
            let job = Job {
                step: (*step).clone(),
                spec: specs.get(address).map(|spec| resolve(spec, &|of, output| outputs.get(of)?.get(output).cloned())),
                observed: observed.get(address).cloned(),
                fresh: observed.read_at.is_some_and(|at| at.elapsed() < FRESH),
            };
            let aws = aws.clone();
            let semaphore = semaphore.clone();
            let group =
                resources::kind(&address.kind).ok().and_then(|k| groups.get(k.placement().write_group?)).cloned();
            running.spawn(async move {
                // The group first: a step waiting for its group holds no
                // place another service's step could use.
                let _group = match group {
                    Some(group) => Some(group.acquire_owned().await),
                    None => None,
                };
                let _permit = semaphore.acquire_owned().await;
                let address = job.step.address.clone();
                (address, job.run(&aws).await)
            });
        }
        let Some(finished) = running.join_next().await else { break };
        let (address, outcome) = match finished {
            Ok(result) => result,
            Err(panic) => {
                // A panicking step is a bug; report it rather than abort the run.
                report.failed.push((Address::new("executor", "task"), panic.to_string()));
                continue;
            }
        };
        match outcome {
            Ok(Outcome::Deleted) => {
                outputs.remove(&address);
                report.deleted.insert(address.clone());
                done.insert(address);
            }
            Ok(Outcome::Written { state, outputs: values, blockers }) => {
                eprintln!("  done: {address}");
                outputs.insert(address.clone(), values);
                report.blockers.extend(blockers);
                report.states.insert(address.clone(), state);
                done.insert(address);
            }
            Err(error) => {
                match error.chain().find_map(|e| e.downcast_ref::<LeftForLater>()) {
                    Some(waiting) => {
                        eprintln!("  waiting: {address}: {waiting}");
                        report.waiting.push((address.clone(), waiting.to_string()));
                    }
                    None => {
                        eprintln!("  failed: {address}: {error:#}");
                        report.failed.push((address.clone(), format!("{error:#}")));
                    }
                }
                failed.insert(address);
            }
        }
    }
    report
}

/// What AWS reports of what a create made, for kinds that read it back
/// ([`resources::DynPlan::read_back`]): the re-plan after the run then
/// checks AWS, and a write AWS dropped shows. Where AWS does not list it
/// yet (WAF's and IAM's reads lag their writes), what the create returned.
async fn read_back(aws: &Aws, kind: &dyn resources::DynKind, spec: &Value, created: Value) -> anyhow::Result<Value> {
    if !kind.read_back() {
        return Ok(created);
    }
    Ok(kind.find(aws, spec).await?.map_or(created, |found| found.state))
}

/// One step, with everything it needs to run on its own.
struct Job {
    step: Step,
    /// The desired spec, references resolved as far as known now.
    spec: Option<Value>,
    /// What the plan saw (deletes work from it).
    observed: Option<Found<Value>>,
    /// Whether that observation is recent enough to stand for a read now.
    fresh: bool,
}

enum Outcome {
    Written { state: Value, outputs: Outputs, blockers: Vec<String> },
    Deleted,
}

impl Job {
    async fn run(&self, aws: &Aws) -> anyhow::Result<Outcome> {
        let address = &self.step.address;
        let kind = resources::kind(&address.kind)?;
        if self.step.action == Action::Delete {
            let found = self.observed.as_ref().ok_or_else(|| anyhow::anyhow!("{address}: nothing to delete"))?;
            eprintln!("  deleting {address}");
            kind.delete(aws, &found.state).await.map_err(|e| e.context(format!("deleting {address}")))?;
            return Ok(Outcome::Deleted);
        }
        let spec = self.spec.as_ref().ok_or_else(|| anyhow::anyhow!("{address}: the plan has no spec for it"))?;
        if let Some((of, output)) = references(spec).into_iter().next() {
            anyhow::bail!("{address}: {output} of {of} is still unknown");
        }
        // Read again before writing (the plan may be minutes old), unless
        // this is a create that a fresh observation says is needed.
        let current = if self.step.action == Action::Create && self.fresh && self.observed.is_none() {
            None
        } else {
            kind.find(aws, spec).await.map_err(|e| e.context(format!("reading {address}")))?
        };
        let state = match current {
            Some(found) if found.ownership == Ownership::Foreign => {
                anyhow::bail!("{address} exists but does not carry the stack's tag; refusing to take it over")
            }
            None => {
                if let Some(moved) = self.step.deviation(Action::Create, &[], false) {
                    return Err(moved.into());
                }
                eprintln!("  creating {address}");
                let created = kind.create(aws, spec).await.map_err(|e| e.context(format!("creating {address}")))?;
                read_back(aws, kind, spec, created).await?
            }
            Some(found) => {
                let mut diff = kind.diff(spec, &found.state)?;
                if let Some(moved) = self.step.deviation(diff.action(), &diff.fields, kind.waits_only()) {
                    return Err(moved.into());
                }
                for planned in self.step.fields.iter().filter(|f| f.forced) {
                    if !diff.has_name(&planned.field) {
                        diff.fields.push(planned.clone());
                    }
                }
                if diff.is_empty() {
                    found.state
                } else if diff.replace {
                    eprintln!("  replacing {address}");
                    kind.delete(aws, &found.state).await.map_err(|e| e.context(format!("deleting {address}")))?;
                    let created = kind.create(aws, spec).await.map_err(|e| e.context(format!("creating {address}")))?;
                    read_back(aws, kind, spec, created).await?
                } else {
                    eprintln!("  updating {address}");
                    kind.update(aws, spec, &found.state, &diff)
                        .await
                        .map_err(|e| e.context(format!("updating {address}")))?
                }
            }
        };
        let blockers = kind.blockers(Some(spec), &state);
        let outputs = kind.outputs(&state)?;
        Ok(Outcome::Written { state, outputs, blockers })
    }
}
