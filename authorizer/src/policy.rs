//! Method ARNs and the IAM policy of an answer.
//!
//! API Gateway caches the policy per identity-source values. A policy naming
//! only this request's method ARN would, once cached, deny the same token on
//! every other route; the `full` shape instead lists every route of the table
//! with the effect this token earns there (see [`crate::routes`] for why the
//! table's semantics map one-to-one onto IAM's "explicit Deny wins").
//!
//! No I/O here.

use serde::Serialize;

use crate::config::PolicyShape;
use crate::routes::RouteTable;

/// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodArn<'a> {
    /// Everything up to and including `{apiId}/`: the prefix of every resource
    /// this authorizer may name in a policy.
    pub api_prefix: &'a str,
    /// `{stage}/{VERB}/{path}` (path without its leading `/`).
    pub resource: &'a str,
    pub stage: &'a str,
    pub verb: &'a str,
    /// The request path, without its leading `/`.
    pub path: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("method ARN is not of the form arn:PARTITION:execute-api:REGION:ACCOUNT:API/STAGE/VERB/PATH")]
pub struct BadMethodArn;

impl<'a> MethodArn<'a> {
    pub fn parse(arn: &'a str) -> Result<MethodArn<'a>, BadMethodArn> {
        let mut fields = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("execute-api"), Some(region), Some(account), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(BadMethodArn);
        };
        // Every AWS partition: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...
        let is_name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !partition.starts_with("aws") || !is_name(partition) || !is_name(region) {
            return Err(BadMethodArn);
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadMethodArn);
        }
        let mut parts = rest.splitn(4, '/');
        let (Some(api_id), Some(stage), Some(verb), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadMethodArn);
        };
        if !is_name(api_id) || stage.is_empty() || verb.is_empty() {
            return Err(BadMethodArn);
        }
        let prefix_len = arn.len() - rest.len() + api_id.len() + 1;
        Ok(MethodArn { api_prefix: &arn[..prefix_len], resource: &arn[prefix_len..], stage, verb, path })
    }
}

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

/// Builds the policy for a token whose verdict on this request is `effect`.
///
/// `satisfies(route_index)` says whether the token meets a route's requirement;
/// `default_satisfied` whether it meets the default rule.
pub fn build(
    shape: PolicyShape,
    arn: &MethodArn<'_>,
    raw_arn: &str,
    effect: Effect,
    table: &RouteTable,
    satisfies: impl Fn(usize) -> bool,
    default_satisfied: bool,
) -> PolicyDocument {
    let statement = |effect, resources| Statement { action: "execute-api:Invoke", effect, resources };
    let statements = match shape {
        PolicyShape::Request => vec![statement(effect, vec![raw_arn.to_owned()])],
        PolicyShape::Full => {
            let resource = |glob: &str| format!("{}{}", arn.api_prefix, glob);
            let mut allow = Vec::new();
            let mut deny = Vec::new();
            if default_satisfied {
                allow.push(resource("*/*/*"));
            }
            for (index, route) in table.routes.iter().enumerate() {
                if satisfies(index) {
                    if !default_satisfied {
                        allow.push(resource(&route.resource_glob));
                    }
                } else {
                    deny.push(resource(&route.resource_glob));
                }
            }
            // The verdict for this very request was computed by the caller (a
            // custom scope resolver may have overridden the table): state it
            // explicitly so the policy can never contradict the decision.
            match effect {
                Effect::Allow
                    if !allow.iter().any(|g| crate::routes::glob_matches(&g[arn.api_prefix.len()..], arn.resource)) =>
                {
                    allow.push(raw_arn.to_owned())
                }
                Effect::Deny => deny.push(raw_arn.to_owned()),
                Effect::Allow => {}
            }
            let mut statements = Vec::with_capacity(2);
            if !allow.is_empty() {
                statements.push(statement(Effect::Allow, allow));
            }
            if !deny.is_empty() {
                statements.push(statement(Effect::Deny, deny));
            }
            statements
        }
    };
    PolicyDocument { version: "2012-10-17", statements }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::glob_matches;

    #[test]
    fn parses_every_partition() {
        for partition in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"] {
            let raw = format!("arn:{partition}:execute-api:eu-west-1:123456789012:abc123/prod/GET/pets/42");
            let arn = MethodArn::parse(&raw).unwrap();
            assert_eq!(arn.api_prefix, format!("arn:{partition}:execute-api:eu-west-1:123456789012:abc123/"));
            assert_eq!((arn.stage, arn.verb, arn.path, arn.resource), ("prod", "GET", "pets/42", "prod/GET/pets/42"));
        }
        let root = MethodArn::parse("arn:aws:execute-api:us-east-1:123456789012:abc/dev/GET/").unwrap();
        assert_eq!(root.path, "");
    }

    #[test]
    fn refuses_malformed_arns() {
        for raw in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:x",
            "arn:aws:execute-api:us-east-1:123:abc/prod/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod",
            "arn:evil:execute-api:us-east-1:123456789012:abc/prod/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:a*c/prod/GET/",
        ] {
            assert_eq!(MethodArn::parse(raw), Err(BadMethodArn), "{raw}");
        }
    }

    /// Evaluates a policy as IAM does: explicit Deny wins, then any Allow.
    fn iam_allows(policy: &PolicyDocument, arn: &str) -> bool {
        let matches = |s: &Statement| s.resources.iter().any(|r| glob_matches(r, arn));
        !policy.statements.iter().any(|s| s.effect == Effect::Deny && matches(s))
            && policy.statements.iter().any(|s| s.effect == Effect::Allow && matches(s))
    }

    #[test]
    fn full_policy_agrees_with_the_table_on_every_route() {
        let table = RouteTable::parse(
            r#"{"routes":[
                {"method":"GET","path":"/pets/{id}","scopes":["read"]},
                {"method":"GET","path":"/pets/{id}/secret","scopes":["admin"]},
                {"method":"POST","path":"/pets","scopes":["write"]}
            ],"default":{"scopes":["read"]}}"#,
        )
        .unwrap();
        let prefix = "arn:aws:execute-api:us-east-1:123456789012:api1/";
        let probes =
            ["prod/GET/pets/1", "prod/GET/pets/1/secret", "prod/POST/pets", "prod/GET/other", "prod/DELETE/pets/1"];
        for granted in [vec![], vec!["read"], vec!["read", "admin"], vec!["write"], vec!["read", "write", "admin"]] {
            let satisfies = |i: usize| table.routes[i].requirement.is_satisfied_by(|s| granted.contains(&s));
            let default_ok = table.default.is_satisfied_by(|s| granted.contains(&s));
            let this = format!("{prefix}prod/GET/pets/1");
            let arn = MethodArn::parse(&this).unwrap();
            for probe in probes {
                let matching: Vec<usize> =
                    (0..table.routes.len()).filter(|&i| glob_matches(&table.routes[i].resource_glob, probe)).collect();
                let expected = if matching.is_empty() { default_ok } else { matching.iter().all(|&i| satisfies(i)) };
                let this_effect = {
                    let m: Vec<usize> = table
                        .matching(arn.resource)
                        .map(|r| table.routes.iter().position(|x| std::ptr::eq(x, r)).unwrap())
                        .collect();
                    if m.iter().all(|&i| satisfies(i)) { Effect::Allow } else { Effect::Deny }
                };
                let policy = build(PolicyShape::Full, &arn, &this, this_effect, &table, satisfies, default_ok);
                assert_eq!(
                    iam_allows(&policy, &format!("{prefix}{probe}")),
                    expected,
                    "granted {granted:?}, probe {probe}"
                );
            }
        }
    }

    #[test]
    fn request_policy_names_only_this_arn() {
        let raw = "arn:aws:execute-api:us-east-1:123456789012:api1/prod/GET/x";
        let arn = MethodArn::parse(raw).unwrap();
        let table = RouteTable::allow_any_valid_token();
        let policy = build(PolicyShape::Request, &arn, raw, Effect::Deny, &table, |_| true, true);
        assert_eq!(policy.statements.len(), 1);
        assert_eq!(policy.statements[0].resources, [raw]);
        assert_eq!(policy.statements[0].effect, Effect::Deny);
    }
}
