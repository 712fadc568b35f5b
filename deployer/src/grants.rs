//! The vocabulary a kind declares its permissions in (`Kind::permissions`):
//! IAM statements, whether a statement is a read or a write ([`Access`]),
//! and [`Grants`], the stack and its ARNs with the condition shapes the
//! kinds share (the stack's tag on a resource or in a request). It knows no
//! kind: `policy.rs` assembles what the kinds declare with it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::stack::Stack;
use crate::stack::names::{self, Arns, OWNER_TAG};

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

/// What a statement is for, which decides who gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// What observing needs (`diff`, `plan`, `output`): reads that return no
    /// secret material. The read-only role gets these.
    Read,
    /// What changes AWS (`apply`, `teardown`), or reads what a plan must
    /// not see.
    Write,
}

/// One statement of an identity-based policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    /// Operator → key → value(s), as IAM writes it.
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(skip)]
    pub access: Access,
}

impl Statement {
    /// Allows `actions` on `resources`. `sid` must be letters and digits.
    pub fn allow(sid: &str, access: Access, actions: &[&str], resources: Vec<String>) -> Statement {
        Statement {
            sid: sid.to_owned(),
            effect: "Allow",
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            resources,
            condition: BTreeMap::new(),
            access,
        }
    }

    /// Denies `actions` on `resources`, whatever else allows them.
    pub fn deny(sid: &str, actions: &[&str], resources: Vec<String>) -> Statement {
        Statement { effect: "Deny", ..Statement::allow(sid, Access::Read, actions, resources) }
    }

    /// Adds a condition: `operator` (`StringEquals`, `ForAllValues:StringEquals`, …) on `key`.
    pub fn when(mut self, operator: &str, key: &str, value: impl Into<Value>) -> Statement {
        self.condition.entry(operator.to_owned()).or_default().insert(key.to_owned(), value.into());
        self
    }

    pub fn is_deny(&self) -> bool {
        self.effect == "Deny"
    }
}

/// What the kinds' declarations are made from: the stack and where it lives.
pub struct Grants<'a> {
    pub stack: &'a Stack,
    pub arns: Arns<'a>,
}

impl<'a> Grants<'a> {
    pub fn new(stack: &'a Stack, target: &Target<'a>) -> Grants<'a> {
        Grants { stack, arns: Arns { partition: target.partition, region: target.region, account: target.account } }
    }

    pub fn name(&self) -> &str {
        &self.stack.name
    }

    /// An API Gateway resource by path (`/restapis/*`).
    pub fn apigateway(&self, path: &str) -> String {
        format!("arn:{}:apigateway:{}::{path}", self.arns.partition, self.arns.region)
    }

    /// API Gateway's tags resource for the resource at `path`: IAM names it
    /// by the tagged resource's ARN, URL-encoded. `*` in `path` stands for
    /// an id AWS has not chosen yet (a create with tags), written as the
    /// policy variable `${*}`, a literal `*`, so the statement cannot match
    /// the tags of any existing resource.
    pub fn apigateway_tags(&self, path: &str) -> String {
        let tagged = self.apigateway(path);
        let encoded: String = percent_encoding::utf8_percent_encode(&tagged, TAG_ARN).to_string();
        self.apigateway(&format!("/tags/{}", encoded.replace('*', "${*}")))
    }

    /// Writing an inline policy into the function's execution role (a
    /// kind's `FunctionPolicy`), only while the role carries the stack's
    /// permissions boundary: whatever the policy says, the boundary is the
    /// role's ceiling.
    pub fn execution_role_inline_policy(&self, sid: &str) -> Statement {
        let role = self.arns.role(&names::execution_role(self.name()));
        let boundary = self.arns.policy(&names::permissions_boundary(self.name()));
        Statement::allow(sid, Access::Write, &["iam:PutRolePolicy"], vec![role]).when(
            "StringEquals",
            "iam:PermissionsBoundary",
            boundary,
        )
    }

    /// `statement`, only on resources that carry the stack's tag.
    pub fn on_stack_resources(&self, statement: Statement) -> Statement {
        statement.when("StringEquals", &format!("aws:ResourceTag/{OWNER_TAG}"), self.name())
    }

    /// `statement`, only for requests that tag what they create as the
    /// stack's and with no key outside `keys` (the stack's tag among them).
    pub fn tagged_as_stack(&self, statement: Statement, keys: &[&str]) -> Statement {
        statement.when("StringEquals", &format!("aws:RequestTag/{OWNER_TAG}"), self.name()).when(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            json!(keys),
        )
    }
}

/// What `percent_encoding` escapes in an ARN as API Gateway's tags path
/// carries it: everything but letters, digits and `-._~` (`:` and `/` included).
const TAG_ARN: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'*');
