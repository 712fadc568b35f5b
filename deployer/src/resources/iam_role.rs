//! The Lambda execution role, tagged with the stack and bounded by the
//! stack's permissions boundary (`permissions_boundary`): whatever policy it
//! is given, it can do no more than the boundary allows.
//!
//! API Gateway invokes the authorizer through the function's resource
//! policy (`authorizer_permission`), not through a role. The invoke role an
//! earlier deployer made (`names::legacy_invoke_role`) is still read, so the
//! next `apply` removes it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_iam::types::Tag;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use super::permissions_boundary;
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::Outputs;
use crate::stack::names;

/// The managed policy that lets the function write its logs.
pub const LAMBDA_LOGGING_POLICY: &str = "service-role/AWSLambdaBasicExecutionRole";

pub struct IamRole;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    /// `lambda.amazonaws.com` or `apigateway.amazonaws.com`.
    pub trusted_service: String,
    pub managed_policies: Vec<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, Value>,
    /// The permissions boundary's ARN.
    pub boundary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub arn: String,
    pub trust: Value,
    /// Sorted.
    pub managed_policies: Vec<String>,
    pub inline_policies: BTreeMap<String, Value>,
    #[serde(default)]
    pub boundary: Option<String>,
}

/// The trust policy that lets `service` assume a role.
pub(super) fn trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    })
}

/// IAM returns policy documents URL-encoded.
fn parse_document(text: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8()?;
    Ok(serde_json::from_str(&decoded)?)
}

async fn read(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    let Some(output) = aws.iam.get_role().role_name(name).send().await.found("GetRole")? else {
        return Ok(None);
    };
    let role = output.role.context("GetRole answered without a role")?;
    let (attached, inline) = tokio::join!(
        aws.iam.list_attached_role_policies().role_name(name).send(),
        aws.iam.list_role_policies().role_name(name).send(),
    );
    let mut managed_policies: Vec<String> = attached
        .aws("ListAttachedRolePolicies")?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    managed_policies.sort();
    let mut inline_policies = BTreeMap::new();
    for policy in inline.aws("ListRolePolicies")?.policy_names() {
        let read = aws.iam.get_role_policy().role_name(name).policy_name(policy).send().await;
        if let Some(read) = read.found("GetRolePolicy")? {
            inline_policies.insert(policy.clone(), parse_document(read.policy_document())?);
        }
    }
    let owned = role.tags().iter().any(|t| t.key() == OWNER_TAG && t.value() == stack);
    let state = State {
        name: name.to_owned(),
        arn: role.arn().to_owned(),
        trust: parse_document(role.assume_role_policy_document().unwrap_or("{}"))?,
        managed_policies,
        inline_policies,
        boundary: role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_owned),
    };
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

/// The state of a role IAM accepted `spec` for.
fn wanted_state(spec: &Spec, arn: &str) -> State {
    let mut managed_policies = spec.managed_policies.clone();
    managed_policies.sort();
    State {
        name: spec.name.clone(),
        arn: arn.to_owned(),
        trust: trust(&spec.trusted_service),
        managed_policies,
        inline_policies: spec.inline_policies.clone(),
        boundary: spec.boundary.clone(),
    }
}

super::kind::fields! {
    PermissionsBoundary = "permissions_boundary",
    AssumeRolePolicy = "assume_role_policy",
    ManagedPolicies = "managed_policies",
    InlinePolicies = "inline_policies",
}

impl Kind for IamRole {
    const NAME: &'static str = "iam_role";
    const DEPENDS_ON: &'static [&'static str] = &["permissions_boundary"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stack = &context.stack.name;
        let grants = context.grants();
        // What the kinds whose resources the function uses give it (its
        // secret, its replay table), each an inline policy.
        let inline_policies = context.function_policies.iter().map(|policy| {
            (policy.name.to_owned(), json!({"Version": "2012-10-17", "Statement": policy.statements}))
        });
        Ok(vec![Spec {
            stack: stack.clone(),
            name: names::execution_role(stack),
            trusted_service: "lambda.amazonaws.com".into(),
            managed_policies: vec![context.arns().managed_policy(LAMBDA_LOGGING_POLICY)],
            inline_policies: inline_policies.collect(),
            boundary: Some(permissions_boundary::arn(&grants)),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::PermissionsBoundary, &state.boundary, &spec.boundary);
        diff.text(Field::AssumeRolePolicy, state.trust.to_string(), trust(&spec.trusted_service).to_string());
        let mut wanted = spec.managed_policies.clone();
        wanted.sort();
        diff.field(Field::ManagedPolicies, &state.managed_policies, &wanted);
        let shown = |policies: &BTreeMap<String, Value>| {
            if policies.is_empty() { "none".to_owned() } else { serde_json::to_string(policies).unwrap_or_default() }
        };
        diff.text(Field::InlinePolicies, shown(&state.inline_policies), shown(&spec.inline_policies));
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone()), ("name".to_owned(), state.name.clone())].into()
    }

    /// Every write that could give a role power (create, attach) only with
    /// the stack's boundary on it; the boundary never removed or replaced.
    /// Detaching the logging policy and deleting the roles take away only,
    /// so they need no boundary: an earlier deployer's roles have none.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let stack = grants.name();
        let execution = grants.arns.role(&names::execution_role(stack));
        let legacy = grants.arns.role(&names::legacy_invoke_role(stack));
        let boundary = permissions_boundary::arn(grants);
        let logging = grants.arns.managed_policy(LAMBDA_LOGGING_POLICY);
        let bounded =
            |statement: Statement| statement.when("StringEquals", "iam:PermissionsBoundary", boundary.as_str());
        // Writing an inline policy into the execution role is the statement
        // of each kind that gives the function one
        // (`Grants::execution_role_inline_policy`).
        vec![
            Statement::allow(
                "StackRolesRead",
                Access::Read,
                &["iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"],
                vec![execution.clone(), legacy.clone()],
            ),
            bounded(Statement::allow(
                "ExecutionRoleBounded",
                Access::Write,
                &["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
                vec![execution.clone()],
            )),
            // An inline policy is removed by any stack (one that no longer
            // has a secret); put by one that has.
            bounded(Statement::allow(
                "ExecutionRoleInlinePolicyRemoval",
                Access::Write,
                &["iam:DeleteRolePolicy"],
                vec![execution.clone()],
            )),
            grants.tagged_as_stack(
                Statement::allow("ExecutionRoleTags", Access::Write, &["iam:TagRole"], vec![execution.clone()]),
                &[OWNER_TAG],
            ),
            Statement::allow(
                "ExecutionRoleTrust",
                Access::Write,
                &["iam:UpdateAssumeRolePolicy"],
                vec![execution.clone()],
            ),
            bounded(Statement::allow(
                "ExecutionRoleLogging",
                Access::Write,
                &["iam:AttachRolePolicy"],
                vec![execution.clone()],
            ))
            .when("ArnEquals", "iam:PolicyARN", logging.as_str()),
            Statement::allow(
                "ExecutionRoleLoggingRemoval",
                Access::Write,
                &["iam:DetachRolePolicy"],
                vec![execution.clone()],
            )
            .when("ArnEquals", "iam:PolicyARN", logging.as_str()),
            Statement::allow(
                "StackRolesDelete",
                Access::Write,
                &["iam:DeleteRole"],
                vec![execution.clone(), legacy.clone()],
            ),
            Statement::allow("LegacyInvokeRoleCleanup", Access::Write, &["iam:DeleteRolePolicy"], vec![legacy]),
            Statement::deny(
                "StackRolesKeepTheirBoundary",
                &["iam:DeleteRolePermissionsBoundary"],
                vec![execution.clone()],
            ),
            Statement::deny(
                "StackRolesGetNoOtherBoundary",
                &["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
                vec![execution],
            )
            .when("StringNotEquals", "iam:PermissionsBoundary", boundary.as_str()),
        ]
    }
}

impl KindIo for IamRole {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let mut names: Vec<String> = scope.desired.iter().map(|spec| spec.name.clone()).collect();
        // An earlier deployer's invoke role: found so that it is removed.
        names.push(names::legacy_invoke_role(scope.stack));
        let reads = names.iter().map(|name| read(scope.aws, scope.stack, name));
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.name).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let tag = Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?;
        let created = aws
            .iam
            .create_role()
            .role_name(&spec.name)
            .assume_role_policy_document(trust(&spec.trusted_service).to_string())
            .description(format!("API Gateway OAuth authorizer of stack {}", spec.stack))
            .set_permissions_boundary(spec.boundary.clone())
            .tags(tag)
            .send()
            .await;
        match created {
            Ok(created) => {
                converge_policies(aws, spec, &[], &BTreeMap::new()).await?;
                // What IAM accepted, not read back: IAM's reads lag its writes
                // by seconds, and a GetRole now may answer NoSuchEntity.
                Ok(wanted_state(spec, created.role().map(|r| r.arn()).context("CreateRole answered without a role")?))
            }
            // Made by this create, its first answer lost: once IAM shows it,
            // give it what it lacks.
            Err(e) if crate::error::already_exists(&e) => super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => Err(e).aws("CreateRole"),
        }
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        // First: every other write is allowed only on a role that has it.
        if let Some(boundary) = spec.boundary.as_deref().filter(|_| diff.has(Field::PermissionsBoundary)) {
            aws.iam
                .put_role_permissions_boundary()
                .role_name(&spec.name)
                .permissions_boundary(boundary)
                .send()
                .await
                .aws("PutRolePermissionsBoundary")?;
        }
        if diff.has(Field::AssumeRolePolicy) {
            aws.iam
                .update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(trust(&spec.trusted_service).to_string())
                .send()
                .await
                .aws("UpdateAssumeRolePolicy")?;
        }
        if diff.has(Field::ManagedPolicies) || diff.has(Field::InlinePolicies) {
            converge_policies(aws, spec, &state.managed_policies, &state.inline_policies).await?;
        }
        Ok(wanted_state(spec, &state.arn))
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        // IAM refuses to delete a role that still has policies (DeleteConflict).
        for arn in &state.managed_policies {
            aws.iam
                .detach_role_policy()
                .role_name(&state.name)
                .policy_arn(arn)
                .send()
                .await
                .gone("DetachRolePolicy")?;
        }
        for policy in state.inline_policies.keys() {
            aws.iam
                .delete_role_policy()
                .role_name(&state.name)
                .policy_name(policy)
                .send()
                .await
                .gone("DeleteRolePolicy")?;
        }
        aws.iam.delete_role().role_name(&state.name).send().await.gone("DeleteRole")
    }
}

/// Attaches and detaches managed policies, and puts or deletes inline
/// ones, so the role has exactly what `spec` says.
async fn converge_policies(
    aws: &Aws,
    spec: &Spec,
    attached: &[String],
    inline: &BTreeMap<String, Value>,
) -> anyhow::Result<()> {
    for arn in spec.managed_policies.iter().filter(|a| !attached.contains(a)) {
        aws.iam.attach_role_policy().role_name(&spec.name).policy_arn(arn).send().await.aws("AttachRolePolicy")?;
    }
    for arn in attached.iter().filter(|a| !spec.managed_policies.contains(a)) {
        aws.iam.detach_role_policy().role_name(&spec.name).policy_arn(arn).send().await.aws("DetachRolePolicy")?;
    }
    for (name, wanted) in &spec.inline_policies {
        if inline.get(name) != Some(wanted) {
            let put = aws.iam.put_role_policy().role_name(&spec.name).policy_name(name);
            put.policy_document(wanted.to_string()).send().await.aws("PutRolePolicy")?;
        }
    }
    for name in inline.keys().filter(|name| !spec.inline_policies.contains_key(*name)) {
        aws.iam.delete_role_policy().role_name(&spec.name).policy_name(name).send().await.aws("DeleteRolePolicy")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            name: "s-authorizer-invoke".into(),
            trusted_service: "apigateway.amazonaws.com".into(),
            managed_policies: vec!["arn:aws:iam::aws:policy/b".into(), "arn:aws:iam::aws:policy/a".into()],
            inline_policies: [("read".to_owned(), json!({"Version": "2012-10-17"}))].into(),
            boundary: Some("arn:aws:iam::123456789012:policy/s-role-boundary".into()),
        }
    }

    fn matching_state() -> State {
        State {
            name: "s-authorizer-invoke".into(),
            arn: "arn:aws:iam::123456789012:role/s-authorizer-invoke".into(),
            trust: trust("apigateway.amazonaws.com"),
            managed_policies: vec!["arn:aws:iam::aws:policy/a".into(), "arn:aws:iam::aws:policy/b".into()],
            inline_policies: [("read".to_owned(), json!({"Version": "2012-10-17"}))].into(),
            boundary: Some("arn:aws:iam::123456789012:policy/s-role-boundary".into()),
        }
    }

    #[test]
    fn diff() {
        let cases: &[Case<State>] = &[
            (|s| s.trust = trust("lambda.amazonaws.com"), "assume_role_policy"),
            (|s| s.managed_policies.pop().map(drop).unwrap_or(()), "managed_policies"),
            (|s| s.inline_policies.clear(), "inline_policies"),
            (|s| drop(s.inline_policies.insert("read".into(), json!({"Version": "2008-10-17"}))), "inline_policies"),
            (|s| drop(s.inline_policies.insert("more".into(), json!({}))), "inline_policies"),
            (|s| s.boundary = None, "permissions_boundary"),
        ];
        check_diff::<IamRole>(&spec(), &matching_state(), cases);
    }
}
