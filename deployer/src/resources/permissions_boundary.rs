//! The permissions boundary of every role the stack creates: a customer
//! managed policy that allows exactly what those roles need when they run
//! (each kind's `role_permissions`: the function writing its own logs, API
//! Gateway's account role writing access logs), and so caps whatever the
//! pipeline writes into them. IAM cannot limit what an inline or trust
//! policy says; a boundary is what keeps the pipeline's role from making a
//! role more powerful than itself.
//!
//! An operator owns it (`OPERATOR`): `deployer bootstrap` creates and
//! updates it with the operator's credentials; the pipeline may read it and
//! is denied every write, and `apply` refuses to go on while it is missing
//! or out of date. Each statement names the role it is for
//! (`aws:PrincipalArn`), so one role never gets what another needs.
//!
//! IAM keeps at most five versions of a managed policy: an update deletes
//! the oldest version that is not the default before it adds the new one.

use anyhow::Context as _;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::Outputs;
use crate::stack::names;

pub struct PermissionsBoundary;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    pub arn: String,
    pub document: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub arn: String,
    pub default_version: String,
    pub document: Value,
}

/// The boundary's document: what the stack's roles need when they run.
pub fn document(role_permissions: &[Statement]) -> Value {
    serde_json::json!({"Version": "2012-10-17", "Statement": role_permissions})
}

/// The boundary's ARN, for the roles that carry it.
pub fn arn(grants: &Grants<'_>) -> String {
    grants.arns.policy(&names::permissions_boundary(grants.name()))
}

/// IAM returns policy documents URL-encoded.
fn parse_document(text: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8()?;
    Ok(serde_json::from_str(&decoded)?)
}

async fn read(aws: &Aws, stack: &str, arn: &str) -> anyhow::Result<Option<Found<State>>> {
    let Some(output) = aws.iam.get_policy().policy_arn(arn).send().await.found("GetPolicy")? else {
        return Ok(None);
    };
    let policy = output.policy.context("GetPolicy answered without a policy")?;
    let default_version = policy.default_version_id().unwrap_or("v1").to_owned();
    let version = aws.iam.get_policy_version().policy_arn(arn).version_id(&default_version).send().await;
    let version = version.aws("GetPolicyVersion")?.policy_version.context("GetPolicyVersion answered without one")?;
    let document = parse_document(version.document().unwrap_or("{}"))?;
    let owned = policy.tags().iter().any(|t| t.key() == OWNER_TAG && t.value() == stack);
    let name = policy.policy_name().unwrap_or_default().to_owned();
    let state = State { name: name.clone(), arn: arn.to_owned(), default_version, document };
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

super::kind::fields! {
    Document = "document",
}

impl Kind for PermissionsBoundary {
    const NAME: &'static str = "permissions_boundary";
    const DEPENDS_ON: &'static [&'static str] = &[];
    const OPERATOR: bool = true;
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            name: names::permissions_boundary(&context.stack.name),
            arn: arn(&context.grants()),
            document: document(&context.role_permissions),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::Document, state.document.to_string(), spec.document.to_string());
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone())].into()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let boundary = vec![arn(grants)];
        vec![
            Statement::allow(
                "PermissionsBoundaryRead",
                Access::Read,
                &["iam:GetPolicy", "iam:GetPolicyVersion"],
                boundary.clone(),
            ),
            Statement::allow(
                "PermissionsBoundaryWrite",
                Access::Write,
                &[
                    "iam:CreatePolicy",
                    "iam:TagPolicy",
                    "iam:ListPolicyVersions",
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicyVersion",
                    "iam:SetDefaultPolicyVersion",
                    "iam:DeletePolicy",
                ],
                boundary,
            ),
        ]
    }
}

impl KindIo for PermissionsBoundary {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        Ok(read(scope.aws, scope.stack, &spec.arn).await?.into_iter().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.arn).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let tag = Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?;
        let created = aws
            .iam
            .create_policy()
            .policy_name(&spec.name)
            .policy_document(spec.document.to_string())
            .description(format!(
                "Permissions boundary of the roles of stack {} (made by deployer bootstrap)",
                spec.stack
            ))
            .tags(tag)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if crate::error::already_exists(&e) => return super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => return Err(e).aws("CreatePolicy"),
        }
        Ok(State {
            name: spec.name.clone(),
            arn: spec.arn.clone(),
            default_version: "v1".into(),
            document: spec.document.clone(),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _diff: &Diff<Field>) -> anyhow::Result<State> {
        let versions = aws.iam.list_policy_versions().policy_arn(&spec.arn).send().await.aws("ListPolicyVersions")?;
        let mut old: Vec<_> = versions.versions().iter().filter(|v| !v.is_default_version()).collect();
        if versions.versions().len() >= 5 {
            old.sort_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or_default());
            if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
                aws.iam
                    .delete_policy_version()
                    .policy_arn(&spec.arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .gone("DeletePolicyVersion")?;
            }
        }
        let created = aws
            .iam
            .create_policy_version()
            .policy_arn(&spec.arn)
            .policy_document(spec.document.to_string())
            .set_as_default(true)
            .send()
            .await
            .aws("CreatePolicyVersion")?;
        let version = created.policy_version().and_then(|v| v.version_id()).unwrap_or(&state.default_version);
        Ok(State { default_version: version.to_owned(), document: spec.document.clone(), ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        let versions =
            aws.iam.list_policy_versions().policy_arn(&state.arn).send().await.found("ListPolicyVersions")?;
        for version in versions.iter().flat_map(|v| v.versions()).filter(|v| !v.is_default_version()) {
            let id = version.version_id().unwrap_or_default();
            aws.iam
                .delete_policy_version()
                .policy_arn(&state.arn)
                .version_id(id)
                .send()
                .await
                .gone("DeletePolicyVersion")?;
        }
        aws.iam.delete_policy().policy_arn(&state.arn).send().await.gone("DeletePolicy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            name: "s-role-boundary".into(),
            arn: "arn:aws:iam::1:policy/s-role-boundary".into(),
            document: serde_json::json!({"Version": "2012-10-17", "Statement": []}),
        }
    }

    #[test]
    fn diff() {
        let state = State {
            name: "s-role-boundary".into(),
            arn: "arn:aws:iam::1:policy/s-role-boundary".into(),
            default_version: "v2".into(),
            document: spec().document,
        };
        let cases: &[Case<State>] =
            &[(|s| s.document = serde_json::json!({"Version": "2012-10-17", "Statement": [{}]}), "document")];
        check_diff::<PermissionsBoundary>(&spec(), &state, cases);
    }
}
