//! The planner: `plan(desired, observed) → Plan`, pure and synchronous. No
//! AWS call, no clock, no choice left to execution: what it returns is what
//! `diff` prints, what `plan --out` saves and what `apply` carries out.
//!
//! For every address the stack wants or owns:
//! - wanted and absent → create; wanted and ours → update, replace or nothing,
//!   by the kind's own `diff`; wanted and someone else's → refused;
//! - ours and no longer wanted → delete (pruning), never what was adopted;
//! - a change AWS applies only with a new deployment (the API's execute-api
//!   flag, a route, the authorizer, a gateway response) makes the stage
//!   deploy again in the same run.
//!
//! Values other resources will only know after they are created stay typed
//! references ([`Val::Ref`]) until the executor resolves them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::graph;
use crate::plan::{Action, Address, FieldChange, Outputs, Plan, Shown, Step, Val};
use crate::resources::{self, Observation, Ownership};

/// A resource the stack wants: where, and its spec (JSON, references allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub address: Address,
    pub spec: Value,
}

/// What the executor needs beyond the plan: every desired spec, references
/// resolved as far as the observation allows.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    pub plan: Plan,
    pub specs: BTreeMap<Address, Value>,
}

/// Who runs the plan, which decides which kinds it may write: the
/// pipeline writes every kind but an operator's (`Kind::OPERATOR`), which it
/// only checks; `deployer bootstrap` writes the operator's kinds only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Pipeline,
    Operator,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{} already exist{} without the tag of stack {stack:?} (or, for a DNS record, pointing elsewhere); refusing \
         to take over:\n  {}",
        if addresses.len() == 1 { "this resource" } else { "these resources" },
        if addresses.len() == 1 { "s" } else { "" },
        addresses.iter().map(foreign_line).collect::<Vec<_>>().join("\n  ")
    )]
    Foreign { stack: String, addresses: Vec<Address> },
    #[error("{0}")]
    Kind(#[from] anyhow::Error),
}

/// A refused address, with why its kind's resource may look foreign.
fn foreign_line(address: &Address) -> String {
    match resources::plan_kind(&address.kind).map(|k| k.foreign_hint()) {
        Ok(hint) if !hint.is_empty() => format!("{address} ({hint})"),
        _ => address.to_string(),
    }
}

/// Plans the pipeline's run that brings `observed` to `desired`. Teardown
/// is the plan of an empty `desired`.
pub fn plan(stack: &str, desired: &[Desired], observed: &Observation) -> Result<Planned, PlanError> {
    plan_as(Runner::Pipeline, stack, desired, observed)
}

/// [`plan`] for `runner`. An operator's kind the pipeline finds missing or
/// different is a blocker, not a step: `apply` stops before any write.
pub fn plan_as(runner: Runner, stack: &str, desired: &[Desired], observed: &Observation) -> Result<Planned, PlanError> {
    let mut outputs: BTreeMap<Address, Outputs> = BTreeMap::new();
    for (address, found) in observed.all() {
        if found.ownership != Ownership::Foreign {
            outputs.insert(address.clone(), resources::plan_kind(&address.kind)?.outputs(&found.state)?);
        }
    }

    let mut planned = Planned::default();
    let mut foreign = Vec::new();
    // What this run creates or replaces (every output new) or updates (the
    // outputs its kind's update changes): references to them stay unresolved.
    let mut created: BTreeSet<Address> = BTreeSet::new();
    let mut updated: BTreeSet<Address> = BTreeSet::new();
    let order = graph::creation_order();
    let writes = |kind: &dyn resources::DynPlan| kind.operator() == (runner == Runner::Operator);
    for kind in &order {
        if !writes(*kind) {
            if runner == Runner::Pipeline {
                for wanted in desired.iter().filter(|d| d.address.kind == kind.name()) {
                    planned.plan.blockers.extend(operator_blocker(*kind, wanted, observed)?);
                }
            }
            continue;
        }
        for wanted in desired.iter().filter(|d| d.address.kind == kind.name()) {
            let spec = resolve(&wanted.spec, &|of, output| {
                let changes_it = updated.contains(of)
                    && resources::plan_kind(&of.kind).is_ok_and(|k| k.update_changes().contains(&output));
                if created.contains(of) || changes_it { None } else { outputs.get(of)?.get(output).cloned() }
            });
            let step = match observed.get(&wanted.address) {
                Some(found) if found.ownership == Ownership::Foreign => {
                    foreign.push(wanted.address.clone());
                    continue;
                }
                None => Step { address: wanted.address.clone(), action: Action::Create, fields: Vec::new() },
                // A field that refers to a value this run changes differs by
                // the kind's own diff: it shows as "(…, known after apply)".
                Some(found) => {
                    let diff = kind.diff(&spec, &found.state)?;
                    if diff.is_empty() {
                        planned.plan.blockers.extend(kind.blockers(Some(&spec), &found.state));
                    } else {
                        planned.plan.blockers.extend(kind.change_needs_consent(&spec, &found.state)?);
                    }
                    Step { address: wanted.address.clone(), action: diff.action(), fields: diff.fields }
                }
            };
            match step.action {
                Action::Create | Action::Replace => created.insert(step.address.clone()),
                Action::Update => updated.insert(step.address.clone()),
                Action::Delete | Action::NoOp => false,
            };
            planned.specs.insert(wanted.address.clone(), spec);
            planned.plan.steps.push(step);
        }
    }
    if !foreign.is_empty() {
        return Err(PlanError::Foreign { stack: stack.to_owned(), addresses: foreign });
    }

    redeploy_if_needed(&mut planned.plan);

    // Pruning: what the stack owns and no longer wants, dependents first.
    // What goes with its parent (a route with its REST API) needs no step.
    let wanted: BTreeSet<&Address> = desired.iter().map(|d| &d.address).collect();
    let unwanted = |address: &Address, ownership: Ownership| ownership == Ownership::Owned && !wanted.contains(address);
    for kind in order.iter().rev().filter(|k| writes(**k)) {
        let mut prune: Vec<Address> = observed
            .all()
            .filter(|(address, found)| address.kind == kind.name() && unwanted(address, found.ownership))
            .filter(|(_, found)| {
                let parent_goes = found
                    .parent
                    .as_ref()
                    .is_some_and(|parent| observed.get(parent).is_some_and(|p| unwanted(parent, p.ownership)));
                !(kind.placement().deleted_with_parent && parent_goes)
            })
            .map(|(address, _)| address)
            .collect();
        prune.sort();
        for address in prune {
            let state = observed.get(&address).map(|found| &found.state).unwrap_or(&serde_json::Value::Null);
            match kind.left_in_place(state)? {
                Some(why) => planned.plan.left_in_place.push(format!("{address}: {why}")),
                None => planned.plan.steps.push(Step { address, action: Action::Delete, fields: Vec::new() }),
            }
        }
    }
    Ok(planned)
}

/// Why the pipeline may not go on with an operator's resource as it is
/// (`None`: it is as the stack needs it).
fn operator_blocker(
    kind: &dyn resources::DynPlan,
    wanted: &Desired,
    observed: &Observation,
) -> Result<Option<String>, PlanError> {
    let what = match observed.get(&wanted.address) {
        None => "is missing".to_owned(),
        Some(found) if found.ownership == Ownership::Foreign => "exists without the stack's tag".to_owned(),
        Some(found) => {
            let diff = kind.diff(&wanted.spec, &found.state)?;
            if diff.is_empty() {
                return Ok(None);
            }
            let fields: Vec<&str> = diff.fields.iter().map(|f| f.field.as_str()).collect();
            format!("differs from what the stack needs ({})", fields.join(", "))
        }
    };
    Ok(Some(format!(
        "{} {what}: an operator creates or updates it with `deployer bootstrap` (the pipeline's role may only read it)",
        wanted.address
    )))
}

/// A change to a kind that AWS applies only on a deployment makes every
/// deploying resource (the stage) deploy again, even if it has no change of
/// its own: otherwise `diff` would say "nothing to do" while the old
/// deployment is still what clients reach.
fn redeploy_if_needed(plan: &mut Plan) {
    let kind_of = |step: &Step| resources::plan_kind(&step.address.kind).ok();
    let causes: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action != Action::NoOp && kind_of(s).is_some_and(|k| k.placement().needs_deployment))
        .map(|s| s.address.to_string())
        .collect();
    if causes.is_empty() {
        return;
    }
    for step in plan.steps.iter_mut().filter(|s| kind_of(s).is_some_and(|k| k.placement().deploys)) {
        if matches!(step.action, Action::NoOp | Action::Update) {
            step.action = Action::Update;
            step.fields.push(FieldChange {
                field: "deployment".into(),
                old: Shown::text("current"),
                new: Shown::text(format!("new (for {})", causes.join(", "))),
                forced: true,
            });
        }
    }
}

/// Replaces every reference `lookup` knows with its value.
pub fn resolve(spec: &Value, lookup: &dyn Fn(&Address, &str) -> Option<String>) -> Value {
    match spec {
        Value::Object(members) => {
            if let Ok(Val::Ref { output_of, output }) = serde_json::from_value::<Val>(spec.clone())
                && members.len() == 2
            {
                return match lookup(&output_of, &output) {
                    Some(value) => Value::String(value),
                    None => spec.clone(),
                };
            }
            Value::Object(members.iter().map(|(k, v)| (k.clone(), resolve(v, lookup))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, lookup)).collect()),
        other => other.clone(),
    }
}

/// The references left in a spec: (resource, output).
pub fn references(spec: &Value) -> Vec<(Address, String)> {
    let mut found = Vec::new();
    collect_references(spec, &mut found);
    found
}

fn collect_references(spec: &Value, found: &mut Vec<(Address, String)>) {
    match spec {
        Value::Object(members) => {
            if members.len() == 2
                && let Ok(Val::Ref { output_of, output }) = serde_json::from_value::<Val>(spec.clone())
            {
                found.push((output_of, output));
                return;
            }
            members.values().for_each(|v| collect_references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Address};
    use crate::resources::{
        Found, api_authorizer, base_path_mapping, certificate, certificate_validation, domain_name, ip_set, rest_api,
        truststore, web_acl, web_acl_association,
    };
    use crate::stack::Stack;

    /// The desired resources of the shipped example stack (domain, WAF and all).
    fn example() -> Vec<Desired> {
        example_in("aws")
    }

    fn example_in(partition: &'static str) -> Vec<Desired> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        let stack = Stack::load(&path, &|_| None).expect("the example stack is valid");
        let package = crate::package::Package { path: "bootstrap.zip".into(), sha256: "c2hh".into() };
        let context = crate::resources::context(&stack, "123456789012", "eu-west-1", partition, Some(&package));
        crate::commands::desired_in(&context).expect("desired")
    }

    fn observed(found: Vec<(&str, Found<Value>)>) -> Observation {
        let mut observation = Observation::default();
        for (kind, f) in found {
            observation.found.entry(kind.to_owned()).or_default().push(f);
        }
        observation
    }

    fn found<S: serde::Serialize>(name: &str, ownership: Ownership, state: S) -> Found<Value> {
        Found::new(name, ownership, serde_json::to_value(state).expect("state"))
    }

    fn actions(planned: &Planned) -> Vec<(String, Action)> {
        planned.plan.steps.iter().map(|s| (s.address.to_string(), s.action)).collect()
    }

    fn position(planned: &Planned, kind: &str) -> usize {
        planned.plan.steps.iter().position(|s| s.address.kind == kind).unwrap_or_else(|| panic!("no {kind} step"))
    }

    #[test]
    fn the_pipeline_only_checks_what_an_operator_owns_and_the_operator_writes_only_that() {
        use crate::resources::Kind as _;
        use crate::resources::permissions_boundary::{PermissionsBoundary, State};
        let desired = example();
        let boundary = desired.iter().find(|d| d.address.kind == "permissions_boundary").expect("boundary");
        let spec: crate::resources::permissions_boundary::Spec =
            serde_json::from_value(boundary.spec.clone()).expect("spec");
        let state = |document: Value| State {
            name: spec.name.clone(),
            arn: spec.arn.clone(),
            default_version: "v1".into(),
            document,
        };
        let as_wanted = observed(vec![(
            PermissionsBoundary::NAME,
            found(&spec.name, Ownership::Owned, state(spec.document.clone())),
        )]);
        let planned = plan("pets-api", &desired, &as_wanted).expect("plan");
        assert!(planned.plan.blockers.is_empty(), "{:?}", planned.plan.blockers);
        assert!(planned.plan.steps.iter().all(|s| s.address.kind != "permissions_boundary"));

        let outdated =
            observed(vec![(PermissionsBoundary::NAME, found(&spec.name, Ownership::Owned, state(Value::Null)))]);
        let planned = plan("pets-api", &desired, &outdated).expect("plan");
        assert_eq!(planned.plan.blockers.len(), 1);
        assert!(planned.plan.blockers[0].contains("differs from what the stack needs (document)"));
        // Teardown never deletes it.
        let planned = plan("pets-api", &[], &outdated).expect("teardown plan");
        assert!(planned.plan.steps.is_empty() && planned.plan.blockers.is_empty(), "{:?}", planned.plan);

        // The operator's plan: the boundary only, updated.
        let planned = plan_as(Runner::Operator, "pets-api", &desired, &outdated).expect("operator plan");
        assert_eq!(actions(&planned), [("permissions_boundary pets-api-role-boundary".to_owned(), Action::Update)]);
    }

    #[test]
    fn every_arn_the_stack_builds_is_in_the_caller_partition() {
        for (partition, foreign) in [("aws-cn", "arn:aws:"), ("aws-us-gov", "arn:aws:"), ("aws", "arn:aws-")] {
            let desired = example_in(partition);
            let specs = serde_json::to_string(&desired.iter().map(|d| &d.spec).collect::<Vec<_>>()).expect("json");
            assert!(specs.contains(&format!("arn:{partition}:")), "{partition}: the example stack builds ARNs");
            assert!(!specs.contains(foreign), "{partition}: an ARN of another partition in {specs}");
        }
    }

    #[test]
    fn from_nothing_everything_is_created_after_what_it_depends_on() {
        let desired = example();
        let planned = plan("pets-api", &desired, &Observation::default()).expect("plan");
        // Every kind but the operator's (the permissions boundary), which blocks instead.
        assert_eq!(planned.plan.steps.len(), desired.len() - 1);
        assert!(planned.plan.steps.iter().all(|s| s.action == Action::Create), "{:?}", actions(&planned));
        assert_eq!(planned.plan.blockers.len(), 1, "{:?}", planned.plan.blockers);
        assert!(
            planned.plan.blockers[0].starts_with("permissions_boundary pets-api-role-boundary is missing")
                && planned.plan.blockers[0].contains("deployer bootstrap"),
            "{:?}",
            planned.plan.blockers
        );
        for (i, step) in planned.plan.steps.iter().enumerate() {
            for dependency in resources::plan_kind(&step.address.kind).unwrap().depends_on() {
                let before = planned.plan.steps[..i].iter().any(|s| s.address.kind == *dependency);
                let planned_at_all = planned.plan.steps.iter().any(|s| s.address.kind == *dependency);
                assert!(before || !planned_at_all, "{} is planned before its {dependency}", step.address);
            }
        }
        // What only a create will tell stays a typed reference.
        let authorizer = planned.specs.iter().find(|(a, _)| a.kind == "api_authorizer").expect("authorizer").1;
        let refs = references(authorizer);
        assert!(refs.contains(&(Address::new("rest_api", "pets-api"), "id".to_owned())), "{refs:?}");
        let route = planned.specs.iter().find(|(a, _)| a.kind == "api_route").expect("route").1;
        assert!(references(route).iter().any(|(of, output)| of.kind == "api_authorizer" && output == "id"));
    }

    #[test]
    fn a_look_alike_where_the_stack_wants_its_own_is_refused_by_address() {
        let observation =
            observed(vec![("iam_role", found("pets-api-authorizer-exec", Ownership::Foreign, Value::Null))]);
        match plan("pets-api", &example(), &observation) {
            Err(PlanError::Foreign { addresses, .. }) => {
                assert_eq!(addresses, [Address::new("iam_role", "pets-api-authorizer-exec")])
            }
            other => panic!("expected a refusal, got {:?}", other.map(|p| actions(&p))),
        }
    }

    fn domain_state(version: &str) -> domain_name::State {
        domain_name::State {
            name: "api.pets.example.com".into(),
            certificate_arn: "arn:aws:acm:eu-west-1:123456789012:certificate/c1".into(),
            security_policy: "TLS_1_2".into(),
            regional: true,
            ip_address_type: "dualstack".into(),
            truststore_uri: Some("s3://pets-api-truststore-example/truststore.pem".into()),
            truststore_version: Some(version.into()),
            truststore_warnings: Vec::new(),
            regional_domain_name: "d-1.execute-api.eu-west-1.amazonaws.com".into(),
            regional_hosted_zone_id: "Z1".into(),
            ownership_verification_certificate_arn: None,
            status: "AVAILABLE".into(),
            status_message: None,
            hosted_zone: None,
        }
    }

    /// Everything the stack owns at the edge, plus an adopted API with an
    /// authorizer in it, none of it wanted any more (teardown).
    fn edge_and_adopted() -> Observation {
        let owned = Ownership::Owned;
        let api = Address::new("rest_api", "a1");
        let mut authorizer = found(
            "pets-oauth",
            Ownership::Adopted,
            api_authorizer::State {
                api_id: "a1".into(),
                id: "au1".into(),
                name: "pets-oauth".into(),
                kind: "REQUEST".into(),
                uri: "u".into(),
                credentials: "c".into(),
                identity_source: "s".into(),
                ttl_seconds: 300,
            },
        );
        authorizer.parent = Some(api.clone());
        let mut mapping = found(
            "api.pets.example.com/v1",
            owned,
            base_path_mapping::State {
                domain: "api.pets.example.com".into(),
                base_path: "v1".into(),
                api_id: "a1".into(),
                stage: "prod".into(),
            },
        );
        mapping.parent = Some(Address::new("domain_name", "api.pets.example.com"));
        observed(vec![
            (
                "rest_api",
                found(
                    "a1",
                    Ownership::Adopted,
                    rest_api::State {
                        id: "a1".into(),
                        name: "theirs".into(),
                        disable_execute_api_endpoint: true,
                        regional: true,
                        ip_address_type: "ipv4".into(),
                        root_resource_id: "r0".into(),
                        ambiguous_with: Vec::new(),
                    },
                ),
            ),
            ("api_authorizer", authorizer),
            ("domain_name", found("api.pets.example.com", owned, domain_state("v1"))),
            ("base_path_mapping", mapping),
            (
                "certificate",
                found(
                    "api.pets.example.com",
                    owned,
                    certificate::State {
                        arn: "arn:aws:acm:eu-west-1:123456789012:certificate/c1".into(),
                        domain: "api.pets.example.com".into(),
                        status: "ISSUED".into(),
                        failure_reason: None,
                        kind: "AMAZON_ISSUED".into(),
                        validation_records: Vec::new(),
                        in_use_by: Vec::new(),
                        hosted_zone: None,
                    },
                ),
            ),
            (
                "certificate_validation",
                found(
                    "api.pets.example.com",
                    owned,
                    certificate_validation::State {
                        arn: "arn:aws:acm:eu-west-1:123456789012:certificate/c1".into(),
                        status: "ISSUED".into(),
                        validation_records: Vec::new(),
                    },
                )
                .inside(Address::new("certificate", "api.pets.example.com")),
            ),
            (
                "truststore",
                found(
                    "pets-api-truststore-example",
                    owned,
                    truststore::State {
                        bucket: "pets-api-truststore-example".into(),
                        key: "truststore.pem".into(),
                        versioning: true,
                        public_access_blocked: true,
                        content_sha256: Some("x".into()),
                        version_id: Some("v1".into()),
                        tagged: true,
                    },
                ),
            ),
            (
                "ip_set",
                found(
                    "pets-api-allow-ipv4",
                    owned,
                    ip_set::State {
                        name: "pets-api-allow-ipv4".into(),
                        id: "i1".into(),
                        arn: "arn:ip".into(),
                        lock_token: "t".into(),
                        addresses: vec!["203.0.113.0/24".into()],
                    },
                ),
            ),
            (
                "web_acl",
                found(
                    "pets-api-allowlist",
                    owned,
                    web_acl::State {
                        name: "pets-api-allowlist".into(),
                        id: "w1".into(),
                        arn: "arn:acl".into(),
                        lock_token: "t".into(),
                        blocks_by_default: true,
                        rules: Vec::new(),
                    },
                ),
            ),
            (
                "web_acl_association",
                found(
                    "prod",
                    owned,
                    web_acl_association::State {
                        stage_arn: "arn:aws:apigateway:eu-west-1::/restapis/a1/stages/prod".into(),
                        web_acl_arn: "arn:acl".into(),
                    },
                ),
            ),
        ])
    }

    #[test]
    fn teardown_deletes_what_is_owned_dependents_first_and_never_what_was_adopted() {
        let planned = plan("pets-api", &[], &edge_and_adopted()).expect("plan");
        assert!(planned.plan.steps.iter().all(|s| s.action == Action::Delete));
        let deleted: BTreeSet<String> = planned.plan.steps.iter().map(|s| s.address.kind.clone()).collect();
        let expected = [
            "base_path_mapping",
            "certificate",
            "domain_name",
            "ip_set",
            "truststore",
            "web_acl",
            "web_acl_association",
        ];
        assert_eq!(deleted, expected.iter().map(|k| k.to_string()).collect(), "adopted API and its authorizer stay");
        assert!(position(&planned, "web_acl_association") < position(&planned, "web_acl"));
        assert!(position(&planned, "web_acl") < position(&planned, "ip_set"));
        assert!(position(&planned, "base_path_mapping") < position(&planned, "domain_name"));
        assert!(position(&planned, "domain_name") < position(&planned, "certificate"));
        assert!(position(&planned, "domain_name") < position(&planned, "truststore"));
    }

    #[test]
    fn what_goes_with_its_parent_gets_no_step_of_its_own() {
        let mut observation = edge_and_adopted();
        // The same API, now the stack's own.
        for found in observation.found.values_mut().flatten() {
            if found.name == "a1" || found.name == "pets-oauth" {
                found.ownership = Ownership::Owned;
            }
        }
        let planned = plan("pets-api", &[], &observation).expect("plan");
        assert!(planned.plan.step(&Address::new("rest_api", "a1")).is_some_and(|s| s.action == Action::Delete));
        assert!(planned.plan.step(&Address::new("api_authorizer", "pets-oauth")).is_none(), "deleted with its API");
        // A mapping is deleted on its own, although its domain goes too:
        // AWS refuses to delete a domain that still has mappings.
        assert!(planned.plan.step(&Address::new("base_path_mapping", "api.pets.example.com/v1")).is_some());
    }

    #[test]
    fn a_change_that_needs_a_deployment_redeploys_the_stage_and_others_do_not() {
        let step = |kind: &str, action| Step { address: Address::new(kind, "x"), action, fields: Vec::new() };
        for (changed, redeploys) in [
            ("api_authorizer", true),
            ("api_resource", true),
            ("api_route", true),
            ("gateway_response", true),
            // The execute-api switch deploys by itself (execute_api).
            ("rest_api", false),
            ("execute_api", false),
            ("ip_set", false),
            ("lambda_function", false),
        ] {
            let mut plan =
                Plan { steps: vec![step(changed, Action::Update), step("stage", Action::NoOp)], ..Plan::default() };
            redeploy_if_needed(&mut plan);
            let stage = &plan.steps[1];
            assert_eq!(stage.action == Action::Update, redeploys, "{changed}");
            if redeploys {
                assert_eq!(stage.fields.len(), 1);
                assert!(stage.fields[0].forced && stage.fields[0].new.to_string().contains(&format!("{changed} x")));
            }
        }
        // A stage being created deploys anyway: no extra field.
        let mut plan =
            Plan { steps: vec![step("api_route", Action::Create), step("stage", Action::Create)], ..Plan::default() };
        redeploy_if_needed(&mut plan);
        assert!(plan.steps[1].fields.is_empty());
    }

    const EDGE: [&str; 4] = ["certificate", "certificate_validation", "truststore", "domain_name"];

    #[test]
    fn a_new_truststore_version_reaches_the_domain_as_known_after_apply() {
        let desired: Vec<Desired> = example().into_iter().filter(|d| EDGE.contains(&d.address.kind.as_str())).collect();
        let mut observation = edge_and_adopted();
        observation.found.retain(|kind, _| EDGE.contains(&kind.as_str()));
        // The bucket holds other contents than stack.yaml's truststore file.
        let planned = plan("pets-api", &desired, &observation).expect("plan");
        let actions = actions(&planned);
        assert!(actions.contains(&("truststore pets-api-truststore-example".into(), Action::Update)), "{actions:?}");
        let domain = planned.plan.step(&Address::new("domain_name", "api.pets.example.com")).expect("domain step");
        assert_eq!(domain.action, Action::Update);
        let fields: Vec<&str> = domain.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["truststore_version"]);
        assert_eq!(
            domain.fields[0].new,
            Shown::KnownAfterApply { output: "version_id".into(), of: "truststore pets-api-truststore-example".into() }
        );
        assert_eq!(
            domain.fields[0].new.to_string(),
            "(version_id of truststore pets-api-truststore-example, known after apply)"
        );
        let spec = &planned.specs[&domain.address];
        assert_eq!(
            references(spec),
            [(Address::new("truststore", "pets-api-truststore-example"), "version_id".to_owned())]
        );
    }
}
