//! `deployer policy`: the IAM policy the role that runs the deployer for a
//! stack needs (`diff`, `plan`, `apply`, `teardown`, `output`), and nothing
//! more. Every action the deployer sends is here, on the stack's own names
//! and ARNs wherever the service allows resource-level permissions:
//!
//! - the two IAM roles and the function by name; a managed policy attached
//!   only if it is `AWSLambdaBasicExecutionRole`; `iam:PassRole` of each role
//!   only to the service it is for (`iam:PassedToService`);
//! - API Gateway by path (REST APIs, the stack's custom domain and its
//!   mappings, tags), with the permission-only actions it also checks:
//!   `apigateway:SetWebACL` for the stage's WAF association and
//!   `AddCertificateToDomain` for mutual TLS;
//! - the truststore bucket and the stack's object in the lock bucket (API
//!   Gateway reads the truststore with the caller's credentials, hence
//!   `s3:GetObject` and `GetObjectVersion`);
//! - the WAF IP sets and web ACL by name, the stage they protect;
//! - certificates requested only for the stack's domain (`acm:DomainNames`);
//! - the records of the stack's hosted zone, if it names one;
//! - the stack's log groups (the function's, the stage's access logs) and,
//!   with an access log, API Gateway's account setting: read always, set
//!   (with the account's CloudWatch role made and passed to API Gateway
//!   only) when the stack says `account_role: create`.
//!
//! Where a service offers no resource-level permission (listing WAF sets or
//! ACM certificates, RequestCertificate) the resource is `*`. REST API ids
//! are AWS's choice, so a created API is `/restapis/*`; an adopted one is
//! scoped to its id. Names the deployer derives from the stack name (roles,
//! function, WAF) are included whether or not the stack uses them now, so
//! the same policy also lets an `apply` prune them; names the stack file
//! gives (the domain, the truststore bucket, the hosted zone) are those of
//! this stack file: an `apply` that removes or renames one needs the policy
//! printed before the change as well.

use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

use crate::resources::iam_role;
use crate::stack::names;
use crate::stack::{ApiSource, CertificateSpec, Stack};

/// Where the policy is for.
pub struct Target<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub partition: &'a str,
}

/// The partition of a region, for ARNs when no AWS call says it.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// An identity-based policy document.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: &'static str,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

fn allow(sid: &'static str, actions: &[&str], resources: Vec<String>) -> Statement {
    Statement {
        sid,
        effect: "Allow",
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        resources,
        condition: None,
    }
}

impl Statement {
    fn when(mut self, condition: Value) -> Statement {
        self.condition = Some(condition);
        self
    }
}

/// The policy for `stack` in `target`.
pub fn document(stack: &Stack, target: &Target<'_>) -> Policy {
    let Target { account, region, partition } = *target;
    let name = stack.name.as_str();
    let arns = names::Arns { partition, region, account };
    let execution_role = arns.role(&names::execution_role(name));
    let invoke_role = arns.role(&names::invoke_role(name));
    let apigateway = |path: &str| format!("arn:{partition}:apigateway:{region}::{path}");
    let wafv2 = |path: String| format!("arn:{partition}:wafv2:{region}:{account}:regional/{path}");
    let stage_arn = apigateway(&format!("/restapis/*/stages/{}", stack.stage.name));

    let mut statements = vec![
        allow(
            "StackRoles",
            &[
                "iam:GetRole",
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:TagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
            ],
            vec![execution_role.clone(), invoke_role.clone()],
        ),
        allow(
            "LambdaBasicExecutionOnly",
            &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            vec![execution_role.clone()],
        )
        .when(json!({"ArnEquals": {"iam:PolicyARN": arns.managed_policy(iam_role::LAMBDA_LOGGING_POLICY)}})),
        allow("PassExecutionRoleToLambda", &["iam:PassRole"], vec![execution_role])
            .when(json!({"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}})),
        allow("PassInvokeRoleToApiGateway", &["iam:PassRole"], vec![invoke_role])
            .when(json!({"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}})),
        allow(
            "AuthorizerFunction",
            &[
                "lambda:GetFunction",
                "lambda:CreateFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:DeleteFunction",
                "lambda:TagResource",
            ],
            vec![arns.function(name)],
        ),
        allow(
            "RestApi",
            &["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"],
            match &stack.api.source {
                ApiSource::Create(_) => vec![apigateway("/restapis"), apigateway("/restapis/*")],
                ApiSource::Adopt(id) => {
                    vec![apigateway(&format!("/restapis/{id}")), apigateway(&format!("/restapis/{id}/*"))]
                }
            },
        ),
        // Tags of the REST API, its stage and the custom domain (the tag
        // API names the tagged resource's ARN in its path).
        allow(
            "ApiGatewayTags",
            &["apigateway:GET", "apigateway:PUT", "apigateway:DELETE"],
            vec![apigateway("/tags/*")],
        ),
        // Every run looks for custom domains the stack owns, declared or not.
        allow("ListCustomDomains", &["apigateway:GET"], vec![apigateway("/domainnames")]),
        allow("ListCertificates", &["acm:ListCertificates"], vec!["*".into()]),
        allow(
            "ReadAndRemoveCertificates",
            &[
                "acm:DescribeCertificate",
                "acm:ListTagsForCertificate",
                "acm:AddTagsToCertificate",
                "acm:RemoveTagsFromCertificate",
                "acm:DeleteCertificate",
            ],
            vec![format!("arn:{partition}:acm:{region}:{account}:certificate/*")],
        ),
        allow("ListWaf", &["wafv2:ListIPSets", "wafv2:ListWebACLs"], vec!["*".into()]),
        allow(
            "StackWaf",
            &[
                "wafv2:CreateIPSet",
                "wafv2:GetIPSet",
                "wafv2:UpdateIPSet",
                "wafv2:DeleteIPSet",
                "wafv2:CreateWebACL",
                "wafv2:GetWebACL",
                "wafv2:UpdateWebACL",
                "wafv2:DeleteWebACL",
                "wafv2:AssociateWebACL",
                "wafv2:ListTagsForResource",
            ],
            vec![
                wafv2(format!("ipset/{}/*", names::ip_set(name, false))),
                wafv2(format!("ipset/{}/*", names::ip_set(name, true))),
                wafv2(format!("webacl/{}/*", names::web_acl(name))),
            ],
        ),
        allow(
            "StageWafAssociation",
            &["wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "wafv2:GetWebACLForResource"],
            vec![stage_arn.clone()],
        ),
        allow("SetStageWebAcl", &["apigateway:SetWebACL"], vec![stage_arn]),
    ];

    // The function's log group and the stage's access log groups (any stage
    // the stack had, for pruning); IAM names a group with or without `:*`.
    let log_group = |name: &str| [arns.log_group(name), format!("{}:*", arns.log_group(name))];
    let mut log_groups: Vec<String> = log_group(&names::function_log_group(name)).into();
    log_groups.push(format!("{}*", arns.log_group(&names::access_log_prefix(name))));
    statements.push(allow(
        "StackLogGroups",
        &[
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "logs:DeleteLogGroup",
            "logs:TagResource",
            "logs:ListTagsForResource",
        ],
        log_groups,
    ));
    statements.push(allow("ListLogGroups", &["logs:DescribeLogGroups"], vec![arns.log_group("*")]));
    if let Some(access_log) = &stack.stage.access_log {
        // API Gateway's account setting: read, and set only with `account_role: create`.
        let account_actions: &[&str] =
            if access_log.create_account_role { &["apigateway:GET", "apigateway:PATCH"] } else { &["apigateway:GET"] };
        statements.push(allow("ApiGatewayAccount", account_actions, vec![apigateway("/account")]));
        if access_log.create_account_role {
            let role = arns.role(names::ACCOUNT_LOG_ROLE);
            statements.push(allow("AccountLogRole", &["iam:CreateRole", "iam:TagRole"], vec![role.clone()]));
            statements.push(
                allow("AccountLogRolePolicy", &["iam:AttachRolePolicy"], vec![role.clone()]).when(json!({"ArnEquals":
                    {"iam:PolicyARN": arns.managed_policy(crate::resources::access_log::PUSH_TO_CLOUDWATCH_POLICY)}})),
            );
            statements.push(
                allow("PassAccountLogRoleToApiGateway", &["iam:PassRole"], vec![role])
                    .when(json!({"StringEquals": {"iam:PassedToService": "apigateway.amazonaws.com"}})),
            );
        }
    }

    let lock_bucket = format!("arn:{partition}:s3:::{}", names::lock_bucket(account, region));
    statements.push(allow(
        "LockBucket",
        &["s3:CreateBucket", "s3:ListBucket", "s3:DeleteBucket", "s3:PutBucketPublicAccessBlock"],
        vec![lock_bucket.clone()],
    ));
    statements.push(allow(
        "StackLock",
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        vec![format!("{lock_bucket}/{}", crate::lock::key(name))],
    ));

    if let Some(domain) = &stack.domain {
        let domain_path = format!("/domainnames/{}", domain.name);
        statements.push(allow(
            "StackCustomDomain",
            &["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
            vec![
                apigateway("/domainnames"),
                apigateway(&domain_path),
                apigateway(&format!("{domain_path}/basepathmappings")),
                apigateway(&format!("{domain_path}/basepathmappings/*")),
            ],
        ));
        statements.push(allow(
            "MutualTlsOfTheDomain",
            &["apigateway:AddCertificateToDomain"],
            vec![apigateway(&domain_path)],
        ));
        if domain.certificate == CertificateSpec::Request {
            statements.push(
                allow(
                    "RequestTheDomainsCertificate",
                    &["acm:RequestCertificate", "acm:AddTagsToCertificate"],
                    vec!["*".into()],
                )
                .when(json!({"ForAllValues:StringEquals": {"acm:DomainNames": [domain.name]}})),
            );
        }
        let bucket = format!("arn:{partition}:s3:::{}", domain.truststore_bucket);
        statements.push(allow(
            "TruststoreBucket",
            &[
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetBucketVersioning",
                "s3:PutBucketVersioning",
                "s3:GetBucketPublicAccessBlock",
                "s3:PutBucketPublicAccessBlock",
                "s3:GetBucketTagging",
                "s3:PutBucketTagging",
            ],
            vec![bucket.clone()],
        ));
        statements.push(allow(
            "TruststoreObjects",
            &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            vec![format!("{bucket}/*")],
        ));
        if let Some(zone) = &domain.hosted_zone_id {
            statements.push(allow(
                "StackDnsRecords",
                &["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"],
                vec![format!("arn:{partition}:route53:::hostedzone/{zone}")],
            ));
        }
    }
    Policy { version: "2012-10-17", statements }
}

impl Policy {
    /// Only what reads (for `diff`/`plan`, which never write): a role for
    /// jobs that must not change anything, such as plans of pull requests.
    pub fn read_only(mut self) -> Policy {
        let reads = |action: &String| {
            let verb = action.split_once(':').map_or(action.as_str(), |(_, verb)| verb);
            ["Get", "List", "Describe", "Head"].iter().any(|p| verb.starts_with(p)) || verb == "GET"
        };
        for statement in &mut self.statements {
            statement.actions.retain(reads);
        }
        self.statements.retain(|s| !s.actions.is_empty());
        self
    }

    /// How many distinct actions it allows.
    pub fn action_count(&self) -> usize {
        let actions: std::collections::BTreeSet<&str> =
            self.statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        actions.len()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "The IAM policy the deployer's role needs for this stack ({} actions):", self.action_count())?;
        for statement in &self.statements {
            writeln!(f, "  {}:", statement.sid)?;
            writeln!(f, "    {}", statement.actions.join(", "))?;
            for resource in &statement.resources {
                writeln!(f, "    on {resource}")?;
            }
            if let Some(condition) = &statement.condition {
                writeln!(f, "    when {condition}")?;
            }
        }
        writeln!(f, "As a policy document: deployer policy --json (only what diff and plan need: --read-only)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Stack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        Stack::load(&path, &|_| None).expect("the example stack is valid")
    }

    #[test]
    fn roles_are_passed_only_to_the_service_they_are_for() {
        let target = Target { account: "123456789012", region: "eu-west-1", partition: "aws" };
        let policy = serde_json::to_value(document(&example(), &target)).expect("policy");
        let passes: Vec<&Value> = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter(|s| s["Action"].as_array().is_some_and(|a| a.iter().any(|a| a == "iam:PassRole")))
            .collect();
        assert_eq!(passes.len(), 3, "{policy:#}");
        for pass in passes {
            let resources = pass["Resource"].as_array().expect("resources");
            assert_eq!(resources.len(), 1, "one role per statement: {pass}");
            let service = &pass["Condition"]["StringEquals"]["iam:PassedToService"];
            let role = resources[0].as_str().expect("ARN");
            match role {
                "arn:aws:iam::123456789012:role/pets-api-authorizer-exec" => {
                    assert_eq!(service, "lambda.amazonaws.com")
                }
                "arn:aws:iam::123456789012:role/pets-api-authorizer-invoke"
                | "arn:aws:iam::123456789012:role/oauth-gateway-apigateway-cloudwatch" => {
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
        // certificate request, limited to the domain by its condition).
        assert_eq!(
            anywhere,
            [
                "acm:ListCertificates",
                "wafv2:ListIPSets",
                "wafv2:ListWebACLs",
                "acm:RequestCertificate",
                "acm:AddTagsToCertificate"
            ]
        );
        for statement in &policy.statements {
            for resource in statement.resources.iter().filter(|r| *r != "*") {
                assert!(resource.starts_with("arn:aws-cn:"), "{resource}");
            }
        }
    }
}
