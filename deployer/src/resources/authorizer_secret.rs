//! The authorizer's secret variables (`INTROSPECTION_CLIENT_SECRET`,
//! `AUTHLETE_SERVICE_APISECRET`) in one Secrets Manager secret, a JSON
//! object the function reads at init (`authorizer::secrets`), instead of in
//! its environment, where every role allowed `lambda:GetFunction` would read
//! them: the function gets the secret's name and version
//! (`AUTHORIZER_SECRETS`, `AUTHORIZER_SECRETS_VERSION`), its execution role
//! may read that secret only, and a plan role may describe it and never read
//! its value.
//!
//! A plan compares values without reading them: each value is written
//! under a version id derived from it (PBKDF2-HMAC-SHA256, salted with the
//! stack's name, [`VERSION_ROUNDS`] rounds, about 20 ms), so the secret's current version
//! (DescribeSecret) says whether the value differs. The version id is
//! readable by whoever may describe the secret: a slow derivation makes
//! guessing a weak secret from it costly, not impossible; a client secret an
//! identity provider generated is out of reach.
//!
//! A run that does not know a value (a plan of a pull request, given no
//! secret) compares nothing and writes nothing: the plan says so.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_secretsmanager::types::Tag;
use serde::{Deserialize, Serialize};

use super::kind::{Context, Diff, Found, FunctionPolicy, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Outputs, Shown};
use crate::stack::{Setting, Stack, names};

pub struct AuthorizerSecret;

/// PBKDF2 rounds for a version id. OWASP's figure for stored *passwords*
/// is 600 000; this guards a machine credential an identity provider
/// generated, and every deployer run derives one id, so a sixth of that.
pub const VERSION_ROUNDS: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    /// The JSON object of the secret variables.
    pub value: Setting,
    /// The version id `value` is written under; `None` when this run does
    /// not know the value.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub arn: String,
    /// The version labelled `AWSCURRENT`.
    pub version: Option<String>,
}

/// The stack's secret variables, if it has any.
pub fn secret_variables(stack: &Stack) -> BTreeMap<&str, &Setting> {
    stack
        .authorizer
        .environment
        .iter()
        .filter(|(name, _)| authorizer::config::SECRET_VARIABLES.contains(&name.as_str()))
        .map(|(name, setting)| (name.as_str(), setting))
        .collect()
}

/// The version id of `value` for `stack`: 32 hex digits (Secrets Manager
/// takes 32 to 64 characters).
pub fn version_of(stack: &str, value: &str) -> String {
    // Two kinds ask in every run (the secret, the function's environment):
    // the derivation is made once. The process holds the value anyway.
    type Derived = (String, String, String);
    static LAST: std::sync::Mutex<Option<Derived>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((for_stack, for_value, version)) = last.as_ref()
        && for_stack == stack
        && for_value == value
    {
        return version.clone();
    }
    let version = derive_version(stack, value);
    *last = Some((stack.to_owned(), value.to_owned(), version.clone()));
    version
}

fn derive_version(stack: &str, value: &str) -> String {
    let salt = format!("oauth-gateway authorizer secret version\0{stack}");
    let mut derived = [0u8; 16];
    let rounds = std::num::NonZeroU32::new(VERSION_ROUNDS).unwrap_or(std::num::NonZeroU32::MIN);
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt.as_bytes(),
        value.as_bytes(),
        &mut derived,
    );
    derived.iter().map(|b| format!("{b:02x}")).collect()
}

/// The secret the stack wants (with its version), if it has secret variables.
pub fn wanted(stack: &Stack) -> Option<Spec> {
    let variables = secret_variables(stack);
    if variables.is_empty() {
        return None;
    }
    let unknown = variables.values().any(|s| s.is_unknown());
    let object: BTreeMap<&str, &str> = variables.iter().map(|(n, s)| (*n, s.reveal())).collect();
    let text = serde_json::to_string(&object).unwrap_or_default();
    Some(Spec {
        stack: stack.name.clone(),
        name: names::authorizer_secret(&stack.name),
        version: (!unknown).then(|| version_of(&stack.name, &text)),
        value: if unknown { Setting::unknown() } else { Setting::secret(text) },
    })
}

/// What the function's environment says instead of the secret variables:
/// where they are, and which version to read (unknown when the run does not
/// know the value).
pub fn function_variables(stack: &Stack) -> BTreeMap<String, Setting> {
    let mut variables = BTreeMap::new();
    // The team's own secrets: only where they are, compared like any setting.
    let references = &stack.authorizer.secret_references;
    if !references.is_empty() {
        let text = authorizer::secrets::references_variable(references);
        variables.insert(authorizer::secrets::REFERENCES.to_owned(), Setting::public(text));
    }
    let Some(spec) = wanted(stack) else { return variables };
    let version = match &spec.version {
        Some(version) => Setting::public(version.clone()),
        None => Setting::unknown(),
    };
    variables.insert(authorizer::secrets::SECRETS.to_owned(), Setting::public(spec.name));
    variables.insert(authorizer::secrets::SECRETS_VERSION.to_owned(), version);
    variables
}

/// What the execution role may do with the secret: read it, and nothing else.
fn read_by_the_function(grants: &Grants<'_>) -> Vec<Statement> {
    let mut statements = Vec::new();
    if !secret_variables(grants.stack).is_empty() {
        statements.push(Statement::allow(
            "FunctionReadsItsSecret",
            Access::Write,
            &["secretsmanager:GetSecretValue"],
            vec![grants.arns.authorizer_secret(grants.name())],
        ));
    }
    // What its secret variables' references name: exactly those. (An SSM
    // SecureString under the account's default key needs no
    // `kms:Decrypt`; one under a key of the team's own needs that key's
    // policy to let the role decrypt.)
    let (mut ssm, mut secrets): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for reference in grants.stack.authorizer.secret_references.values() {
        match reference {
            authorizer::secrets::Reference::Ssm(_) => ssm.push(grants.arns.secret_reference(reference)),
            authorizer::secrets::Reference::SecretsManager(_) => secrets.push(grants.arns.secret_reference(reference)),
        }
    }
    for (sid, action, resources) in [
        ("FunctionReadsItsSsmReferences", "ssm:GetParameter", ssm),
        ("FunctionReadsItsSecretReferences", "secretsmanager:GetSecretValue", secrets),
    ] {
        if !resources.is_empty() {
            statements.push(Statement::allow(sid, Access::Write, &[action], resources));
        }
    }
    statements
}

async fn read(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    let described = aws.secretsmanager.describe_secret().secret_id(name).send().await.found("DescribeSecret")?;
    let Some(described) = described else { return Ok(None) };
    // A secret scheduled for deletion is as good as gone (it is deleted
    // without a recovery window, so this is someone else's doing).
    if described.deleted_date().is_some() {
        anyhow::bail!("secret {name} is scheduled for deletion; restore it (RestoreSecret) or wait until it is gone");
    }
    let version = described
        .version_ids_to_stages()
        .and_then(|versions| versions.iter().find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT")))
        .map(|(id, _)| id.clone());
    let owned = described.tags().iter().any(|t| t.key() == Some(OWNER_TAG) && t.value() == Some(stack));
    let state = State { name: name.to_owned(), arn: described.arn().unwrap_or_default().to_owned(), version };
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

super::kind::fields! {
    Value = "value",
}

impl Kind for AuthorizerSecret {
    const NAME: &'static str = "authorizer_secret";
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(wanted(context.stack).into_iter().collect())
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    /// By version id: the value itself is never read. Not known for this
    /// run: not compared.
    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        if let Some(version) = &spec.version
            && state.version.as_ref() != Some(version)
        {
            diff.changed(Field::Value, None, Shown::Sensitive, Shown::Sensitive);
        }
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone())].into()
    }

    /// Described (never read) by plans; written only tagged as the stack's,
    /// and only by a stack that has secret variables; deleted by any (one
    /// that no longer has them prunes its secret).
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let secret = vec![grants.arns.authorizer_secret(grants.name())];
        let mut statements = vec![
            Statement::allow("AuthorizerSecretRead", Access::Read, &["secretsmanager:DescribeSecret"], secret.clone()),
            Statement::allow(
                "AuthorizerSecretRemoval",
                Access::Write,
                &["secretsmanager:DeleteSecret"],
                secret.clone(),
            ),
        ];
        if !secret_variables(grants.stack).is_empty() {
            statements.extend([
                grants.tagged_as_stack(
                    Statement::allow(
                        "AuthorizerSecretCreate",
                        Access::Write,
                        &["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
                        secret.clone(),
                    ),
                    &[OWNER_TAG],
                ),
                Statement::allow("AuthorizerSecretWrite", Access::Write, &["secretsmanager:PutSecretValue"], secret),
            ]);
        }
        if Self::function_policy(grants).is_some() {
            statements.push(grants.execution_role_inline_policy("ExecutionRoleInlinePolicy"));
        }
        statements
    }

    /// Reading its secret and its secret variables' references, if the stack has any.
    fn function_policy(grants: &Grants<'_>) -> Option<FunctionPolicy> {
        let statements = read_by_the_function(grants);
        (!statements.is_empty()).then_some(FunctionPolicy { name: "read-authorizer-secret", statements })
    }
}

impl KindIo for AuthorizerSecret {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        // Looked for whether the stack wants it or not: one it no longer wants is removed.
        Ok(read(scope.aws, scope.stack, &names::authorizer_secret(scope.stack)).await?.into_iter().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.name).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let version = spec.version.clone().context("the secret's value is not known to this run")?;
        let created = aws
            .secretsmanager
            .create_secret()
            .name(&spec.name)
            .description(format!("Secret variables of the OAuth authorizer of stack {}", spec.stack))
            .secret_string(spec.value.reveal())
            .client_request_token(&version)
            .tags(Tag::builder().key(OWNER_TAG).value(&spec.stack).build())
            .send()
            .await;
        match created {
            Ok(created) => Ok(State {
                name: spec.name.clone(),
                arn: created.arn().unwrap_or_default().to_owned(),
                version: Some(version),
            }),
            // Made by this create, its first answer lost (the token makes a
            // second create of the same value the same version).
            Err(e) if crate::error::already_exists(&e) => super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => Err(e).aws("CreateSecret"),
        }
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        let version = spec.version.clone().context("the secret's value is not known to this run")?;
        aws.secretsmanager
            .put_secret_value()
            .secret_id(&state.arn)
            .secret_string(spec.value.reveal())
            .client_request_token(&version)
            .send()
            .await
            .aws("PutSecretValue")?;
        Ok(State { version: Some(version), ..state.clone() })
    }

    /// At once, without a recovery window: the value lives in the pipeline's
    /// own secret store, and a window would block the next create of the name.
    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        let deleted = aws.secretsmanager.delete_secret().secret_id(&state.arn).force_delete_without_recovery(true);
        deleted.send().await.gone("DeleteSecret")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_id_follows_the_value_and_the_stack() {
        let a = version_of("pets", r#"{"INTROSPECTION_CLIENT_SECRET":"one"}"#);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, version_of("pets", r#"{"INTROSPECTION_CLIENT_SECRET":"one"}"#));
        assert_ne!(a, version_of("pets", r#"{"INTROSPECTION_CLIENT_SECRET":"two"}"#));
        assert_ne!(a, version_of("cats", r#"{"INTROSPECTION_CLIENT_SECRET":"one"}"#), "salted by the stack");
    }

    #[test]
    fn diff_by_version_and_not_at_all_when_the_value_is_unknown() {
        let spec = |version: Option<&str>| Spec {
            stack: "s".into(),
            name: "oauth-gateway/s/authorizer".into(),
            value: if version.is_none() { Setting::unknown() } else { Setting::secret("{}") },
            version: version.map(str::to_owned),
        };
        let state = State { name: "n".into(), arn: "arn".into(), version: Some("v1".into()) };
        assert!(AuthorizerSecret::diff(&spec(Some("v1")), &state).is_empty());
        let changed = AuthorizerSecret::diff(&spec(Some("v2")), &state);
        assert_eq!(changed.fields.len(), 1);
        assert_eq!((&changed.fields[0].old, &changed.fields[0].new), (&Shown::Sensitive, &Shown::Sensitive));
        assert!(AuthorizerSecret::diff(&spec(None), &state).is_empty(), "not compared");
    }
}
