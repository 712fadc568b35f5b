//! `deployer policy`: the IAM policy the pipeline's role needs for a stack
//! (`diff`, `plan`, `apply`, `teardown`, `output`), and nothing more.
//!
//! Nothing here lists a kind's actions: every kind declares, beside its
//! calls, what IAM checks for them (`Kind::permissions`), including what AWS
//! checks beyond the call itself (tags sent with a create, the role a
//! service is handed, the truststore API Gateway reads with the caller's
//! credentials, the service-linked role of the first custom domain). This
//! module only assembles those declarations:
//!
//! - [`document`]: the pipeline's policy. Statements of the same `Sid`
//!   (several kinds inside one REST API declare the same one) are merged.
//!   What an operator owns (`Kind::OPERATOR`: the permissions boundary) the
//!   pipeline may read and nothing else: its write actions come back as an
//!   explicit `Deny`, so no other policy of the pipeline's role can grant
//!   them by accident.
//! - [`Policy::read_only`]: the statements a kind marked [`Access::Read`]:
//!   what `diff`, `plan` and `output` need, and nothing that returns secret
//!   material.
//! - [`operator_document`]: what `deployer bootstrap` needs.
//!
//! The vocabulary the kinds declare in ([`Statement`], [`Access`], [`Grants`])
//! is `grants.rs`, which knows no kind.

use std::fmt;

use serde::Serialize;

pub use crate::grants::{Access, Grants, Statement, Target, partition_of};
use crate::resources::REGISTRY;
use crate::stack::Stack;

/// IAM's limit on a customer managed policy, in characters without
/// whitespace (an inline policy may be larger, but a role's inline policies
/// together may not pass 10,240).
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// An identity-based policy, as the kinds declared it (one statement per
/// `Sid`). As a document ([`Policy::document`], what `--json` prints) it is
/// compacted: statements that differ only in their actions, or only in
/// their resources, become one, which allows exactly the same requests.
#[derive(Debug, Clone)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document().serialize(serializer)
    }
}

/// A policy document, as IAM takes it.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

impl Document {
    /// Its size as IAM counts it: JSON without whitespace.
    pub fn size(&self) -> usize {
        serde_json::to_string(self).map_or(usize::MAX, |text| text.chars().filter(|c| !c.is_whitespace()).count())
    }
}

impl Policy {
    fn of(statements: Vec<Statement>) -> Policy {
        Policy { statements: merged(statements) }
    }

    /// The document to attach.
    pub fn document(&self) -> Document {
        Document { version: "2012-10-17", statements: compacted(self.statements.clone()) }
    }

    /// The document in parts of at most [`MANAGED_POLICY_LIMIT`] characters
    /// each, to attach as that many managed policies (a role takes ten).
    pub fn parts(&self) -> Vec<Document> {
        let mut parts: Vec<Document> = Vec::new();
        for statement in self.document().statements {
            let fits = |part: &Document| {
                let mut grown = part.clone();
                grown.statements.push(statement.clone());
                grown.size() <= MANAGED_POLICY_LIMIT
            };
            match parts.last_mut() {
                Some(part) if fits(part) => part.statements.push(statement),
                _ => parts.push(Document { version: "2012-10-17", statements: vec![statement] }),
            }
        }
        parts
    }

    /// Only what reads and returns no secret (for `diff`/`plan`/`output`,
    /// which never write): a role for jobs that must not change anything,
    /// such as plans of pull requests. Denies stay.
    pub fn read_only(mut self) -> Policy {
        self.statements.retain(|s| s.is_deny() || s.access == Access::Read);
        self
    }

    /// How many distinct actions it allows.
    pub fn action_count(&self) -> usize {
        self.document().action_count()
    }
}

impl Document {
    /// How many distinct actions it allows.
    pub fn action_count(&self) -> usize {
        let actions: std::collections::BTreeSet<&str> = self
            .statements
            .iter()
            .filter(|s| !s.is_deny())
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        actions.len()
    }
}

/// The pipeline's policy for `stack` in `target`.
pub fn document(stack: &Stack, target: &Target<'_>) -> Policy {
    let grants = Grants::new(stack, target);
    let mut statements = Vec::new();
    for kind in REGISTRY {
        let declared = kind.permissions(&grants);
        if kind.operator() {
            // The pipeline reads what an operator made, and may never write it.
            for statement in declared {
                match statement.access {
                    Access::Read => statements.push(statement),
                    Access::Write => statements.push(Statement::deny(
                        &format!("OperatorOnly{}", statement.sid),
                        &statement.actions.iter().map(String::as_str).collect::<Vec<_>>(),
                        statement.resources.clone(),
                    )),
                }
            }
        } else {
            statements.extend(declared);
        }
    }
    statements.extend(crate::lock::permissions(&grants));
    Policy::of(statements)
}

/// What `deployer bootstrap` needs: the operator's kinds, read and written.
pub fn operator_document(stack: &Stack, target: &Target<'_>) -> Policy {
    let grants = Grants::new(stack, target);
    Policy::of(REGISTRY.iter().filter(|k| k.operator()).flat_map(|k| k.permissions(&grants)).collect())
}

/// The same allowances in fewer statements: first those with the same
/// effect, condition and resources are one statement of all their actions;
/// then those with the same effect, condition and actions, one statement of
/// all their resources. Each is exactly the union of what it replaces. A
/// merged statement is named by what its `Sid`s share (`StackRestApiRead`
/// and `StackRestApiWrite` → `StackRestApi`).
fn compacted(statements: Vec<Statement>) -> Vec<Statement> {
    fn merge(
        statements: Vec<Statement>,
        same: impl Fn(&Statement, &Statement) -> bool,
        join: impl Fn(&mut Statement, Statement),
    ) -> Vec<Statement> {
        let mut out: Vec<Statement> = Vec::new();
        for statement in statements {
            match out.iter_mut().find(|s| same(s, &statement)) {
                Some(existing) => {
                    existing.sid = shared_name(&existing.sid, &statement.sid);
                    join(existing, statement);
                }
                None => out.push(statement),
            }
        }
        out
    }
    let union = |into: &mut Vec<String>, from: Vec<String>| {
        for item in from {
            if !into.contains(&item) {
                into.push(item);
            }
        }
    };
    let by_resources = merge(
        statements,
        |a, b| a.effect == b.effect && a.condition == b.condition && a.resources == b.resources,
        |into, from| union(&mut into.actions, from.actions),
    );
    let sorted = |actions: &[String]| {
        let mut sorted = actions.to_vec();
        sorted.sort();
        sorted
    };
    let mut out = merge(
        by_resources,
        |a, b| a.effect == b.effect && a.condition == b.condition && sorted(&a.actions) == sorted(&b.actions),
        |into, from| union(&mut into.resources, from.resources),
    );
    // Names stay unique.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for statement in &mut out {
        let count = seen.entry(statement.sid.clone()).or_default();
        *count += 1;
        if *count > 1 {
            statement.sid = format!("{}{count}", statement.sid);
        }
    }
    out
}

/// The name of merged statements: what the first is about, without its
/// `Read` or `Write` (`StackRestApiRead` and `StackRestApiWrite` →
/// `StackRestApi`), since the merged statement may hold both.
fn shared_name(a: &str, _b: &str) -> String {
    let base = a.strip_suffix("Read").or_else(|| a.strip_suffix("Write")).unwrap_or(a);
    if base.is_empty() { a.to_owned() } else { base.to_owned() }
}

/// Statements of one `Sid` become one: their actions, in order, once. Two
/// declarations of one `Sid` must agree on everything else.
fn merged(statements: Vec<Statement>) -> Vec<Statement> {
    let mut out: Vec<Statement> = Vec::new();
    for statement in statements {
        match out.iter_mut().find(|s| s.sid == statement.sid) {
            Some(existing) => {
                assert!(
                    existing.effect == statement.effect
                        && existing.resources == statement.resources
                        && existing.condition == statement.condition
                        && existing.access == statement.access,
                    "two declarations of statement {} differ beyond their actions",
                    statement.sid
                );
                for action in statement.actions {
                    if !existing.actions.contains(&action) {
                        existing.actions.push(action);
                    }
                }
            }
            None => out.push(statement),
        }
    }
    out
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let document = self.document();
        let size = document.size();
        let fits = if size <= MANAGED_POLICY_LIMIT {
            "fits one managed policy".to_owned()
        } else {
            format!("{} managed policies with --split", self.parts().len())
        };
        writeln!(
            f,
            "The IAM policy the deployer's role needs for this stack ({} actions, {} statements, {size} characters: {fits}):",
            document.action_count(),
            document.statements.len()
        )?;
        for statement in &document.statements {
            let effect = if statement.is_deny() { " (Deny)" } else { "" };
            writeln!(f, "  {}{effect}:", statement.sid)?;
            writeln!(f, "    {}", statement.actions.join(", "))?;
            for resource in &statement.resources {
                writeln!(f, "    on {resource}")?;
            }
            for (operator, keys) in &statement.condition {
                for (key, value) in keys {
                    writeln!(f, "    when {operator} {key} {value}")?;
                }
            }
        }
        writeln!(
            f,
            "As a policy document: deployer policy --json (in managed-policy parts: --split; only what diff and plan \
             need: --read-only)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn example() -> Stack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        Stack::load(&path, &|_| None).expect("the example stack is valid")
    }

    const TARGET: Target<'static> = Target { account: "123456789012", region: "eu-west-1", partition: "aws" };

    fn statement<'p>(policy: &'p Policy, sid: &str) -> &'p Statement {
        policy.statements.iter().find(|s| s.sid == sid).unwrap_or_else(|| panic!("no statement {sid}"))
    }

    #[test]
    fn sids_are_unique_letters_and_digits() {
        let policy = document(&example(), &TARGET);
        let mut seen = std::collections::BTreeSet::new();
        for s in &policy.statements {
            assert!(s.sid.chars().all(|c| c.is_ascii_alphanumeric()), "{}", s.sid);
            assert!(seen.insert(s.sid.clone()), "{} twice", s.sid);
        }
    }

    #[test]
    fn roles_are_passed_only_to_the_service_they_are_for() {
        let policy = serde_json::to_value(document(&example(), &TARGET)).expect("policy");
        let passes: Vec<&Value> = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["Action"].as_array().is_some_and(|a| a.iter().any(|a| a == "iam:PassRole")))
            .collect();
        assert_eq!(passes.len(), 2, "{policy:#}");
        for pass in passes {
            let resources = pass["Resource"].as_array().expect("resources");
            assert_eq!(resources.len(), 1, "one role per statement: {pass}");
            let service = &pass["Condition"]["StringEquals"]["iam:PassedToService"];
            match resources[0].as_str().expect("ARN") {
                "arn:aws:iam::123456789012:role/pets-api-authorizer-exec" => {
                    assert_eq!(service, "lambda.amazonaws.com")
                }
                "arn:aws:iam::123456789012:role/oauth-gateway-apigateway-cloudwatch" => {
                    assert_eq!(service, "apigateway.amazonaws.com")
                }
                other => panic!("PassRole on {other}"),
            }
        }
    }

    #[test]
    fn arns_are_in_the_stacks_partition_and_nothing_is_allowed_on_everything_without_need() {
        let target = Target { account: "1", region: "cn-north-1", partition: partition_of("cn-north-1") };
        let policy = document(&example(), &target);
        let anywhere: Vec<&str> = policy
            .statements
            .iter()
            .filter(|s| s.resources.iter().any(|r| r == "*"))
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        // Services without resource-level permissions for these (and a
        // certificate request, limited to the domain and the stack's tag by
        // its conditions).
        assert_eq!(
            anywhere,
            ["acm:ListCertificates", "acm:RequestCertificate", "wafv2:ListIPSets", "wafv2:ListWebACLs"]
        );
        for statement in &policy.statements {
            for resource in statement.resources.iter().filter(|r| *r != "*") {
                assert!(resource.starts_with("arn:aws-cn:"), "{resource}");
            }
        }
    }

    #[test]
    fn what_an_operator_owns_the_pipeline_may_read_and_is_denied_to_write() {
        let policy = document(&example(), &TARGET);
        let boundary = "arn:aws:iam::123456789012:policy/pets-api-role-boundary";
        let read = statement(&policy, "PermissionsBoundaryRead");
        assert_eq!(read.effect, "Allow");
        assert_eq!(read.resources, [boundary]);
        let denied = statement(&policy, "OperatorOnlyPermissionsBoundaryWrite");
        assert_eq!(denied.effect, "Deny");
        assert!(denied.actions.contains(&"iam:CreatePolicyVersion".to_owned()), "{denied:?}");
        let operator = operator_document(&example(), &TARGET);
        assert!(operator.statements.iter().all(|s| s.effect == "Allow" && s.resources == [boundary]));
        assert!(operator.action_count() >= 4, "{operator}");
    }

    #[test]
    fn the_read_only_policy_keeps_reads_and_denies_only() {
        let full = document(&example(), &TARGET);
        let read_only = full.clone().read_only();
        assert!(read_only.action_count() < full.action_count());
        for statement in &read_only.statements {
            if statement.effect == "Allow" {
                for action in &statement.actions {
                    let verb = action.split_once(':').map_or(action.as_str(), |(_, v)| v);
                    assert!(
                        ["Get", "List", "Describe", "Head", "GET"].iter().any(|p| verb.starts_with(p)),
                        "{action} in the read-only policy"
                    );
                }
            }
        }
    }

    #[test]
    fn tags_of_a_resource_aws_has_not_named_yet_are_a_literal_star() {
        let stack = example();
        let grants = Grants::new(&stack, &TARGET);
        assert_eq!(
            grants.apigateway_tags("/restapis/*"),
            "arn:aws:apigateway:eu-west-1::/tags/arn%3Aaws%3Aapigateway%3Aeu-west-1%3A%3A%2Frestapis%2F${*}"
        );
    }
}
