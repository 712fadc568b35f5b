//! IAM roles: the Lambda execution role and the role API Gateway assumes to
//! invoke the authorizer. Both are tagged with the stack; the invoke role's
//! inline policy allows `lambda:InvokeFunction` on the authorizer only.

use anyhow::Context as _;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;

pub const BASIC_EXECUTION_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
const INLINE_POLICY_NAME: &str = "invoke-authorizer";

pub struct Role {
    pub stack: String,
    pub name: String,
    /// `lambda.amazonaws.com` or `apigateway.amazonaws.com`.
    pub trusted_service: &'static str,
    pub managed_policies: Vec<String>,
    /// The inline policy document, if any.
    pub inline_policy: Option<Value>,
}

#[derive(Debug)]
pub struct ObservedRole {
    pub arn: String,
    pub trust: Value,
    pub managed_policies: Vec<String>,
    pub inline_policy: Option<Value>,
    pub owner: Option<String>,
}

impl Role {
    pub fn execution(stack: &str) -> Role {
        Role {
            stack: stack.to_owned(),
            name: format!("{stack}-authorizer-exec"),
            trusted_service: "lambda.amazonaws.com",
            managed_policies: vec![BASIC_EXECUTION_POLICY.to_owned()],
            inline_policy: None,
        }
    }

    pub fn invoker(stack: &str, function_arn: &str) -> Role {
        Role {
            stack: stack.to_owned(),
            name: format!("{stack}-authorizer-invoke"),
            trusted_service: "apigateway.amazonaws.com",
            managed_policies: Vec::new(),
            inline_policy: Some(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn}]
            })),
        }
    }

    /// The role's ARN, known before it exists.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{}", self.name)
    }

    fn trust(&self) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": self.trusted_service}, "Action": "sts:AssumeRole"}]
        })
    }
}

/// IAM returns policy documents URL-encoded.
fn parse_document(text: &str) -> anyhow::Result<Value> {
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8()?;
    Ok(serde_json::from_str(&decoded)?)
}

impl Resource for Role {
    const KIND: &'static str = "iam_role";
    type Observed = ObservedRole;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedRole>> {
        let role = match aws.iam.get_role().role_name(&self.name).send().await {
            Ok(output) => output.role.context("GetRole answered without a role")?,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => return Ok(None),
            Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
        };
        let trust = parse_document(role.assume_role_policy_document().unwrap_or("{}"))?;
        let attached = aws
            .iam
            .list_attached_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
        let mut managed_policies: Vec<String> =
            attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
        managed_policies.sort();
        let inline_policy =
            match aws.iam.get_role_policy().role_name(&self.name).policy_name(INLINE_POLICY_NAME).send().await {
                Ok(output) => Some(parse_document(output.policy_document())?),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => None,
                Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
            };
        let owner = role.tags().iter().find(|t| t.key() == OWNER_TAG).map(|t| t.value().to_owned());
        Ok(Some(ObservedRole { arn: role.arn().to_owned(), trust, managed_policies, inline_policy, owner }))
    }

    fn diff(&self, observed: &ObservedRole) -> Diff {
        let mut diff = Diff::default();
        diff.text("assume_role_policy", observed.trust.to_string(), self.trust().to_string());
        let mut wanted = self.managed_policies.clone();
        wanted.sort();
        diff.field("managed_policies", &observed.managed_policies, &wanted);
        diff.text(
            "inline_policy",
            observed.inline_policy.as_ref().map_or("none".into(), Value::to_string),
            self.inline_policy.as_ref().map_or("none".into(), Value::to_string),
        );
        diff
    }

    fn owned_by(&self, observed: &ObservedRole, stack: &str) -> bool {
        observed.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedRole> {
        let tag = Tag::builder().key(OWNER_TAG).value(&self.stack).build()?;
        aws.iam
            .create_role()
            .role_name(&self.name)
            .assume_role_policy_document(self.trust().to_string())
            .description(format!("API Gateway OAuth authorizer of stack {}", self.stack))
            .tags(tag)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
        self.converge_policies(aws, None).await?;
        self.find(aws).await?.context("role missing right after creation")
    }

    async fn update(&self, aws: &Aws, observed: &ObservedRole, diff: &Diff) -> anyhow::Result<ObservedRole> {
        if diff.fields.iter().any(|f| f.field == "assume_role_policy") {
            aws.iam
                .update_assume_role_policy()
                .role_name(&self.name)
                .policy_document(self.trust().to_string())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
        }
        self.converge_policies(aws, Some(observed)).await?;
        self.find(aws).await?.context("role vanished during update")
    }

    async fn delete(&self, aws: &Aws, observed: &ObservedRole) -> anyhow::Result<()> {
        // IAM refuses to delete a role that still has policies (DeleteConflict).
        for arn in &observed.managed_policies {
            let _ = aws.iam.detach_role_policy().role_name(&self.name).policy_arn(arn).send().await;
        }
        if observed.inline_policy.is_some() {
            let _ = aws.iam.delete_role_policy().role_name(&self.name).policy_name(INLINE_POLICY_NAME).send().await;
        }
        match aws.iam.delete_role().role_name(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
        }
    }
}

impl Role {
    async fn converge_policies(&self, aws: &Aws, observed: Option<&ObservedRole>) -> anyhow::Result<()> {
        let attached: &[String] = observed.map_or(&[], |o| &o.managed_policies);
        for arn in self.managed_policies.iter().filter(|a| !attached.contains(a)) {
            aws.iam
                .attach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("attaching {arn}: {}", crate::error::describe(&e)))?;
        }
        for arn in attached.iter().filter(|a| !self.managed_policies.contains(a)) {
            aws.iam
                .detach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("detaching {arn}: {}", crate::error::describe(&e)))?;
        }
        let current = observed.and_then(|o| o.inline_policy.as_ref());
        match (&self.inline_policy, current) {
            (Some(wanted), current) if current != Some(wanted) => {
                aws.iam
                    .put_role_policy()
                    .role_name(&self.name)
                    .policy_name(INLINE_POLICY_NAME)
                    .policy_document(wanted.to_string())
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
            }
            (None, Some(_)) => {
                aws.iam
                    .delete_role_policy()
                    .role_name(&self.name)
                    .policy_name(INLINE_POLICY_NAME)
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
            }
            _ => {}
        }
        Ok(())
    }
}
