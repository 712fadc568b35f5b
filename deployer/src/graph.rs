//! The dependency graph of resource kinds, as the registry declares it:
//! the order creates follow, its reverse for deletes, and the waves in which
//! kinds can be read.

use std::collections::BTreeSet;

use crate::resources::{DynKind, DynPlan, REGISTRY};

/// Kinds in an order where every kind comes after the kinds it depends on
/// (ties broken by registry order, so the order is stable).
pub fn creation_order() -> Vec<&'static dyn DynPlan> {
    topological(|kind| kind.depends_on()).into_iter().map(|k| k as &dyn DynPlan).collect()
}

/// Waves of kinds that can be observed together: a kind comes after the
/// kinds it is observed under.
pub fn observation_waves() -> Vec<Vec<&'static dyn DynKind>> {
    let mut waves: Vec<Vec<&'static dyn DynKind>> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < REGISTRY.len() {
        let wave: Vec<&'static dyn DynKind> = REGISTRY
            .iter()
            .copied()
            .filter(|k| !placed.contains(k.name()) && k.observed_under().iter().all(|p| placed.contains(p)))
            .collect();
        assert!(!wave.is_empty(), "the registry's observed_under relation has a cycle");
        placed.extend(wave.iter().map(|k| k.name()));
        waves.push(wave);
    }
    waves
}

/// Every kind `kind` depends on, directly or not.
pub fn ancestors(kind: &str) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    let mut todo = vec![kind.to_owned()];
    while let Some(name) = todo.pop() {
        let Some(k) = REGISTRY.iter().find(|k| k.name() == name) else { continue };
        for parent in k.depends_on() {
            if found.insert(*parent) {
                todo.push((*parent).to_owned());
            }
        }
    }
    found
}

/// Every kind in creation order, with what it is created after and what
/// else the graph knows of it: what `deployer kinds` prints.
pub fn table() -> String {
    let order = creation_order();
    let width = order.iter().map(|k| k.name().len()).max().unwrap_or(0);
    let mut text = format!("{:width$}  created after (deleted before)\n", "kind");
    for kind in order {
        let mut notes = Vec::new();
        if kind.operator() {
            notes.push("the operator's: `deployer bootstrap`".to_owned());
        }
        if !kind.observed_under().is_empty() {
            notes.push(format!("read inside {}", kind.observed_under().join(", ")));
        }
        if kind.placement().deleted_with_parent {
            notes.push("deleted with its parent".to_owned());
        }
        let after = if kind.depends_on().is_empty() { "-".to_owned() } else { kind.depends_on().join(", ") };
        let notes = if notes.is_empty() { String::new() } else { format!("  ({})", notes.join("; ")) };
        text.push_str(&format!("{:width$}  {after}{notes}\n", kind.name()));
    }
    text
}

fn topological(edges: impl Fn(&dyn DynKind) -> &'static [&'static str]) -> Vec<&'static dyn DynKind> {
    let mut order: Vec<&'static dyn DynKind> = Vec::new();
    while order.len() < REGISTRY.len() {
        let next = REGISTRY
            .iter()
            .copied()
            .find(|k| {
                !order.iter().any(|o| o.name() == k.name())
                    && edges(*k).iter().all(|d| order.iter().any(|o| o.name() == *d))
            })
            .expect("the registry's depends_on relation has a cycle or names an unknown kind");
        order.push(next);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dependency_names_a_registered_kind() {
        let names: BTreeSet<&str> = REGISTRY.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), REGISTRY.len(), "kind names are unique");
        for kind in REGISTRY {
            for dependency in kind.depends_on().iter().chain(kind.observed_under()) {
                assert!(names.contains(dependency), "{} names unknown kind {dependency}", kind.name());
            }
        }
    }

    #[test]
    fn creation_order_respects_every_dependency() {
        let order: Vec<&str> = creation_order().iter().map(|k| k.name()).collect();
        let position = |name: &str| order.iter().position(|n| *n == name).unwrap();
        for kind in REGISTRY {
            for dependency in kind.depends_on() {
                assert!(position(dependency) < position(kind.name()), "{dependency} before {}", kind.name());
            }
        }
        // The orders deletes need, spelled out: association before ACL,
        // mapping before domain, domain before certificate.
        assert!(position("web_acl") < position("web_acl_association"));
        assert!(position("domain_name") < position("base_path_mapping"));
        assert!(position("certificate") < position("domain_name"));
    }

    #[test]
    fn observation_takes_two_waves_of_calls() {
        // What is found by name or tag; then what lives in those (routes,
        // stages, mappings, a stage's web ACL) or hangs off them (the
        // certificate and truststore of a domain no longer declared). Each
        // of these waves is at least one round of calls: another would show
        // in every `diff`. The execute-api switch comes third, read from
        // the API's and the stage's states without a call of its own.
        let waves = observation_waves();
        let names: Vec<Vec<&str>> = waves.iter().map(|w| w.iter().map(|k| k.name()).collect()).collect();
        assert_eq!(waves.len(), 3, "{names:?}");
        assert_eq!(names[2], ["execute_api"], "{names:?}");
        assert!(ancestors("stage").contains("api_route"));
        assert!(ancestors("base_path_mapping").contains("certificate"));
    }
}
