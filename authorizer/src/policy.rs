//! The IAM policy of an answer.
//!
//! API Gateway caches the policy per identity-source values, per stage, and
//! evaluates it against every later request that hits the same cache entry.
//! So every resource a policy names must mean exactly what the decision meant:
//! - the method ARN is one [`crate::arn`] accepted: no IAM wildcard, policy
//!   variable, dot segment or encoded literal, so a request path can never
//!   widen a policy;
//! - the `full` shape lists every route of the table on the request's stage
//!   with the effect this token earns there, stage and verbs named (see
//!   [`crate::routes`] for why the table's semantics map one-to-one onto
//!   IAM's "explicit Deny wins");
//! - the `request` shape names this method ARN only.
//!
//! No I/O here.

use serde::Serialize;

use crate::arn::{MethodArn, VERBS};
use crate::routes::{Requirement, RouteTable};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Action")]
    pub action: &'static str,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
}

fn statement(effect: Effect, resources: Vec<String>) -> Statement {
    Statement { action: "execute-api:Invoke", effect, resources }
}

fn document(statements: Vec<Statement>) -> PolicyDocument {
    PolicyDocument { version: "2012-10-17", statements }
}

/// `effect` on this method ARN only.
pub fn this_request(arn: &MethodArn<'_>, effect: Effect) -> PolicyDocument {
    document(vec![statement(effect, vec![arn.raw.to_owned()])])
}

/// Deny on every route of the API: for refusals that are not about a route
/// (a client certificate refused everywhere). A Deny may be as wide as it
/// likes; only an Allow must never reach further than the decision.
pub fn deny_everywhere(arn: &MethodArn<'_>) -> PolicyDocument {
    document(vec![statement(Effect::Deny, vec![format!("{}*", arn.api_prefix)])])
}

/// The token's policy on every route of the table on the request's stage,
/// given which requirements it satisfies: cache-safe, because it is the same
/// whichever route of the stage the request was for.
pub fn for_table(arn: &MethodArn<'_>, table: &RouteTable, satisfied: impl Fn(&Requirement) -> bool) -> PolicyDocument {
    let default_satisfied = satisfied(&table.default);
    let mut allow = Vec::new();
    let mut deny = Vec::new();
    if default_satisfied {
        allow.extend(VERBS.iter().map(|verb| format!("{}{}/{verb}/*", arn.api_prefix, arn.stage)));
    }
    for route in &table.routes {
        if !satisfied(&route.requirement) {
            deny.extend(route.resources(arn));
        } else if !default_satisfied {
            allow.extend(route.resources(arn));
        }
    }
    if allow.is_empty() {
        // Nothing on this stage is open to this token: say so in one line.
        return document(vec![statement(Effect::Deny, vec![format!("{}{}/*", arn.api_prefix, arn.stage)])]);
    }
    let mut statements = vec![statement(Effect::Allow, allow)];
    if !deny.is_empty() {
        statements.push(statement(Effect::Deny, deny));
    }
    document(statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_no_route_is_open_to_gets_one_deny_line() {
        let table =
            RouteTable::parse(r#"{"routes":[{"method":"GET","path":"/a","scopes":["x"]}],"default":"deny"}"#).unwrap();
        let raw = "arn:aws:execute-api:us-east-1:123456789012:api/prod/GET/a";
        let arn = MethodArn::parse(raw).unwrap();
        let policy = for_table(&arn, &table, |r| r.is_satisfied_by(|_| false));
        assert_eq!(policy.statements, [statement(Effect::Deny, vec![format!("{}prod/*", arn.api_prefix)])]);
    }

    #[test]
    fn request_policy_names_only_this_arn() {
        let raw = "arn:aws:execute-api:us-east-1:123456789012:api1/prod/GET/x";
        let arn = MethodArn::parse(raw).unwrap();
        let policy = this_request(&arn, Effect::Deny);
        assert_eq!(policy.statements, [statement(Effect::Deny, vec![raw.to_owned()])]);
    }
}
