//! Which steps of a plan wait for which: the executor's order, pure.
//!
//! - A create or update waits for the creates and updates of the kinds its
//!   kind depends on, and for the steps whose outputs its spec refers to (a
//!   path resource for its parent resource).
//! - A delete waits for the deletes of what depends on it (a web ACL's
//!   association before the ACL).
//! - A delete of what a deployment snapshots (a method, a path resource, the
//!   authorizer, a gateway response) runs before the stage's next deployment:
//!   a deployment is a copy of the API, and a route removed after it was
//!   made would go on answering. It still waits for the writes of what
//!   refers to it, short of the deployment (routes moved to a new
//!   authorizer before the old one goes).
//! - A kind whose deletes clear the way for its creates (`DELETES_FIRST`: a
//!   renamed path parameter, `/pets/{id}` → `/pets/{petId}`) deletes first.
//! - Every other delete waits for every create and update: nothing is taken
//!   away while what replaces it is not in place (the old certificate goes
//!   once the domain uses the new one; the custom domain once execute-api
//!   serves again).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph;
use crate::plan::{Action, Address, Step};
use crate::planner::references;
use crate::resources::{self, DynPlan};

/// For each step, the steps among `steps` it must wait for. `specs` are the
/// planner's specs (their references order steps within a kind).
pub fn prerequisites(steps: &[&Step], specs: &BTreeMap<Address, Value>) -> BTreeMap<Address, Vec<Address>> {
    steps
        .iter()
        .map(|step| {
            let referenced: BTreeSet<Address> =
                specs.get(&step.address).map(references).unwrap_or_default().into_iter().map(|(a, _)| a).collect();
            let waits = steps
                .iter()
                .filter(|other| other.address != step.address && waits_for(step, other, &referenced))
                .map(|other| other.address.clone())
                .collect();
            (step.address.clone(), waits)
        })
        .collect()
}

fn kind(step: &Step) -> Option<&'static dyn DynPlan> {
    resources::plan_kind(&step.address.kind).ok()
}

/// Whether `kind` deploys the API or comes after a kind that does (the
/// stage, the base path mapping, the execute-api switch): what a snapshotted
/// delete must not wait for.
fn deployed_by_now(kind: &dyn DynPlan) -> bool {
    kind.placement().deploys
        || graph::ancestors(kind.name()).iter().any(|a| resources::plan_kind(a).is_ok_and(|k| k.placement().deploys))
}

/// Whether `step` waits for `other`; `referenced`: what `step`'s spec refers to.
fn waits_for(step: &Step, other: &Step, referenced: &BTreeSet<Address>) -> bool {
    let (Some(mine), Some(theirs)) = (kind(step), kind(other)) else { return false };
    let is_delete = |s: &Step| s.action == Action::Delete;
    let above_me = graph::ancestors(mine.name()).contains(theirs.name());
    let below_me = graph::ancestors(theirs.name()).contains(mine.name());
    match (is_delete(step), is_delete(other)) {
        (false, false) => above_me || referenced.contains(&other.address),
        (false, true) => {
            (mine.placement().deploys && theirs.placement().snapshotted)
                || (mine.name() == theirs.name() && mine.placement().deletes_first)
        }
        (true, true) => below_me && (!mine.placement().snapshotted || theirs.placement().snapshotted),
        (true, false) if mine.placement().snapshotted => {
            below_me && !deployed_by_now(theirs) && !mine.placement().deletes_first
        }
        (true, false) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::REGISTRY;

    fn step(kind: &str, name: &str, action: Action) -> Step {
        Step { address: Address::new(kind, name), action, fields: Vec::new() }
    }

    /// The steps in an order that respects every wait, or the steps left
    /// when none of them can run (a cycle: the executor would hang).
    fn run_order(steps: &[Step]) -> Result<Vec<Address>, Vec<Address>> {
        let refs: Vec<&Step> = steps.iter().collect();
        let waits = prerequisites(&refs, &BTreeMap::new());
        let mut done: Vec<Address> = Vec::new();
        while done.len() < steps.len() {
            let next =
                steps.iter().find(|s| !done.contains(&s.address) && waits[&s.address].iter().all(|w| done.contains(w)));
            match next {
                Some(s) => done.push(s.address.clone()),
                None => return Err(steps.iter().map(|s| s.address.clone()).filter(|a| !done.contains(a)).collect()),
            }
        }
        Ok(done)
    }

    fn position(order: &[Address], kind: &str, name: &str) -> usize {
        order.iter().position(|a| a.kind == kind && a.name == name).unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn every_kind_written_and_deleted_in_one_run_never_waits_in_a_cycle() {
        let mut steps = Vec::new();
        for kind in REGISTRY {
            steps.push(step(kind.name(), "new", Action::Create));
            steps.push(step(kind.name(), "changed", Action::Update));
            steps.push(step(kind.name(), "old", Action::Delete));
        }
        let order = run_order(&steps).unwrap_or_else(|stuck| panic!("these wait for each other: {stuck:?}"));
        assert_eq!(order.len(), steps.len());
    }

    #[test]
    fn what_a_deployment_snapshots_is_deleted_before_the_stage_deploys() {
        let steps = [
            step("stage", "prod", Action::Update),
            step("api_route", "POST /pets", Action::Delete),
            step("api_resource", "/pets/{id}", Action::Delete),
            step("gateway_response", "ACCESS_DENIED", Action::Delete),
            step("api_authorizer", "old-oauth", Action::Delete),
            step("api_route", "GET /pets/{petId}", Action::Create),
        ];
        let order = run_order(&steps).expect("no cycle");
        let stage = position(&order, "stage", "prod");
        for (kind, name) in [
            ("api_route", "POST /pets"),
            ("api_resource", "/pets/{id}"),
            ("gateway_response", "ACCESS_DENIED"),
            ("api_authorizer", "old-oauth"),
        ] {
            assert!(position(&order, kind, name) < stage, "{kind} {name} is deleted before the deployment");
        }
        // Routes leave the old authorizer before it goes.
        assert!(position(&order, "api_route", "GET /pets/{petId}") < position(&order, "api_authorizer", "old-oauth"));
        let waits = prerequisites(&steps.iter().collect::<Vec<_>>(), &BTreeMap::new());
        assert!(waits[&Address::new("api_route", "POST /pets")].is_empty(), "a route delete waits for nothing");
    }

    #[test]
    fn a_renamed_path_parameter_is_deleted_before_its_sibling_is_created() {
        let steps = [
            step("api_route", "GET /pets/{id}", Action::Delete),
            step("api_resource", "/pets/{id}", Action::Delete),
            step("api_resource", "/pets/{petId}", Action::Create),
            step("api_route", "GET /pets/{petId}", Action::Create),
            step("stage", "prod", Action::Update),
        ];
        let order = run_order(&steps).expect("no cycle");
        assert!(position(&order, "api_route", "GET /pets/{id}") < position(&order, "api_resource", "/pets/{id}"));
        assert!(position(&order, "api_resource", "/pets/{id}") < position(&order, "api_resource", "/pets/{petId}"));
        assert!(position(&order, "api_resource", "/pets/{petId}") < position(&order, "api_route", "GET /pets/{petId}"));
        assert!(position(&order, "api_route", "GET /pets/{petId}") < position(&order, "stage", "prod"));
    }

    #[test]
    fn other_deletes_wait_for_every_write_and_for_their_dependents() {
        let steps = [
            step("certificate", "api.example.com (old)", Action::Delete),
            step("certificate", "api.example.com", Action::Create),
            step("domain_name", "api.example.com", Action::Update),
            step("web_acl_association", "prod", Action::Delete),
            step("web_acl", "acl", Action::Delete),
            step("lambda_function", "f", Action::Update),
        ];
        let waits = prerequisites(&steps.iter().collect::<Vec<_>>(), &BTreeMap::new());
        let old = &waits[&Address::new("certificate", "api.example.com (old)")];
        for write in ["certificate", "domain_name", "lambda_function"] {
            assert!(old.iter().any(|a| a.kind == write), "the old certificate goes after the {write} write");
        }
        assert!(waits[&Address::new("web_acl", "acl")].contains(&Address::new("web_acl_association", "prod")));
        assert!(waits[&Address::new("certificate", "api.example.com")].is_empty(), "a create waits for no delete");
    }

    #[test]
    fn a_step_waits_for_the_steps_its_spec_refers_to() {
        let parent = step("api_resource", "/pets", Action::Create);
        let child = step("api_resource", "/pets/{id}", Action::Create);
        let specs: BTreeMap<Address, Value> = [(
            child.address.clone(),
            serde_json::json!({"parent_id": {"output_of": {"kind": "api_resource", "name": "/pets"}, "output": "id"}}),
        )]
        .into();
        let waits = prerequisites(&[&child, &parent], &specs);
        assert_eq!(waits[&child.address], std::slice::from_ref(&parent.address));
        assert!(waits[&parent.address].is_empty());
    }
}
