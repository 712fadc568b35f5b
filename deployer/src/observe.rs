//! Reads what exists: every kind's `observe`, each as soon as the kinds it is
//! observed under are read (a route after its REST API; the IAM roles, the
//! certificate and the domain at once). Only reads; the planner decides what
//! they mean.

use std::collections::BTreeMap;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared, join_all};
use serde_json::Value;

use crate::aws::Aws;
use crate::graph;
use crate::planner::Desired;
use crate::resources::{Found, Observation, SharedReads};

type Read = Shared<BoxFuture<'static, Result<Vec<Found<Value>>, String>>>;

/// Observes every kind. `desired` names what to look for (by name, where a
/// name cannot be found by tag alone); teardown passes the stack's desired
/// resources too, and plans against none.
pub async fn observe(aws: &Aws, stack: &str, desired: &[Desired]) -> anyhow::Result<Observation> {
    observe_kinds(aws, stack, desired, &|_| true).await
}

/// [`observe`], of the kinds `wanted` picks only (`deployer bootstrap`
/// reads the operator's kinds, which are observed under no other).
pub async fn observe_kinds(
    aws: &Aws,
    stack: &str,
    desired: &[Desired],
    wanted: &dyn Fn(&dyn crate::resources::DynKind) -> bool,
) -> anyhow::Result<Observation> {
    let read_at = std::time::Instant::now();
    let declared: std::sync::Arc<[crate::plan::Address]> = desired.iter().map(|d| d.address.clone()).collect();
    let mut reads: BTreeMap<&'static str, Read> = BTreeMap::new();
    let shared = SharedReads::default();
    for kind in graph::observation_waves().into_iter().flatten().filter(|k| wanted(*k)) {
        let parents: Vec<(&'static str, Read)> = kind.observed_under().iter().map(|p| (*p, reads[p].clone())).collect();
        let specs: Vec<Value> =
            desired.iter().filter(|d| d.address.kind == kind.name()).map(|d| d.spec.clone()).collect();
        let (aws, stack, declared, shared) = (aws.clone(), stack.to_owned(), declared.clone(), shared.clone());
        let read = async move {
            let mut seen = Observation::default();
            for (name, parent) in parents {
                seen.found.insert(name.to_owned(), parent.await?);
            }
            kind.observe(&aws, &stack, specs, &declared, &seen, &shared)
                .await
                .map_err(|e| format!("reading {}: {e:#}", kind.name()))
        };
        reads.insert(kind.name(), read.boxed().shared());
    }
    let names: Vec<&'static str> = reads.keys().copied().collect();
    let results = join_all(reads.into_values()).await;
    let mut observation = Observation { read_at: Some(read_at), ..Observation::default() };
    for (name, result) in names.into_iter().zip(results) {
        observation.found.insert(name.to_owned(), result.map_err(anyhow::Error::msg)?);
    }
    Ok(observation)
}
