//! The statement of the function's resource policy that lets API Gateway
//! invoke the authorizer function for the stack's authorizer, and for
//! nothing else: principal `apigateway.amazonaws.com`, the authorizer's own
//! ARN as the source, the account as the source account (as CDK does).
//!
//! It replaces the invoke role an earlier deployer made: a role is one more
//! thing the pipeline could widen; a resource policy statement names who
//! may invoke and nothing more. The pipeline may add statements only for
//! API Gateway (`lambda:Principal`).
//!
//! It lives in the function's policy (deleted with the function); a change
//! of its source (the API or the authorizer made again) replaces it.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lambda_function::LambdaFunction;
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::stack::names;

pub struct AuthorizerPermission;

/// Who may invoke.
const PRINCIPAL: &str = "apigateway.amazonaws.com";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub function: String,
    pub statement_id: String,
    /// `arn:{partition}:execute-api:{region}:{account}`: the authorizer's
    /// ARN is this, the API's id and the authorizer's.
    pub execute_api_prefix: String,
    pub account: String,
    pub api_id: Val,
    pub authorizer_id: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub function: String,
    pub statement_id: String,
    pub principal: String,
    pub source_arn: String,
}

impl Spec {
    /// The authorizer's ARN, as a plan shows it (parts not known yet say so).
    fn source_arn(&self) -> String {
        format!("{}:{}/authorizers/{}", self.execute_api_prefix, self.api_id.shown(), self.authorizer_id.shown())
    }

    fn known_source_arn(&self) -> anyhow::Result<String> {
        Ok(format!("{}:{}/authorizers/{}", self.execute_api_prefix, self.api_id.known()?, self.authorizer_id.known()?))
    }
}

/// The statement `statement_id` of the function's policy, if any.
async fn read(aws: &Aws, function: &str, statement_id: &str) -> anyhow::Result<Option<State>> {
    let Some(output) = aws.lambda.get_policy().function_name(function).send().await.found("GetPolicy")? else {
        return Ok(None);
    };
    let policy: Value = serde_json::from_str(output.policy().unwrap_or("{}")).context("GetPolicy: not a policy")?;
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let Some(statement) = statements.iter().find(|s| s["Sid"] == statement_id) else { return Ok(None) };
    let condition = &statement["Condition"];
    let source = condition["ArnLike"]["AWS:SourceArn"].as_str().or(condition["ArnEquals"]["AWS:SourceArn"].as_str());
    Ok(Some(State {
        function: function.to_owned(),
        statement_id: statement_id.to_owned(),
        principal: statement["Principal"]["Service"].as_str().unwrap_or_default().to_owned(),
        source_arn: source.unwrap_or_default().to_owned(),
    }))
}

super::kind::fields! {
    Principal = "principal",
    SourceArn = "source_arn",
}

impl Kind for AuthorizerPermission {
    const NAME: &'static str = "authorizer_permission";
    const PLACEMENT: Placement = Placement::INSIDE;
    const DEPENDS_ON: &'static [&'static str] = &["lambda_function", "api_authorizer"];
    const OBSERVED_UNDER: &'static [&'static str] = &["lambda_function"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stack = &context.stack.name;
        Ok(vec![Spec {
            function: names::function(stack),
            statement_id: names::invoke_permission(stack),
            execute_api_prefix: format!("arn:{}:execute-api:{}:{}", context.partition, context.region, context.account),
            account: context.account.to_owned(),
            api_id: super::rest_api::id(context),
            authorizer_id: Val::output(super::api_authorizer::address(context), "id"),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.statement_id.clone()
    }

    /// A statement is not changed in place: removed and added again.
    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::Principal, state.principal.as_str(), PRINCIPAL);
        diff.text(Field::SourceArn, state.source_arn.clone(), spec.source_arn());
        diff.replace = !diff.is_empty();
        diff
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let function = vec![grants.arns.function(grants.name())];
        vec![
            Statement::allow("AuthorizerInvokePermissionRead", Access::Read, &["lambda:GetPolicy"], function.clone()),
            Statement::allow("AuthorizerInvokePermission", Access::Write, &["lambda:AddPermission"], function.clone())
                .when("StringEquals", "lambda:Principal", PRINCIPAL),
            Statement::allow(
                "AuthorizerInvokePermissionRemoval",
                Access::Write,
                &["lambda:RemovePermission"],
                function,
            ),
        ]
    }
}

impl KindIo for AuthorizerPermission {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let functions = scope.parents.of::<LambdaFunction>();
        let Some(function) = functions.iter().find(|f| f.ownership == Ownership::Owned) else { return Ok(Vec::new()) };
        let statement_id = names::invoke_permission(scope.stack);
        let parent = Address::new(LambdaFunction::NAME, &function.name);
        let found = read(scope.aws, &function.name, &statement_id).await?;
        Ok(found.map(|state| Found::new(&statement_id, Ownership::Owned, state).inside(parent)).into_iter().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let found = read(aws, &spec.function, &spec.statement_id).await?;
        Ok(found.map(|state| Found::new(&spec.statement_id, Ownership::Owned, state)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        add(aws, spec).await
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        remove(aws, state).await?;
        add(aws, spec).await
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        remove(aws, state).await
    }
}

async fn add(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
    {
        let source_arn = spec.known_source_arn()?;
        let added = aws
            .lambda
            .add_permission()
            .function_name(&spec.function)
            .statement_id(&spec.statement_id)
            .action("lambda:InvokeFunction")
            .principal(PRINCIPAL)
            .source_arn(&source_arn)
            .source_account(&spec.account)
            .send()
            .await;
        match added {
            Ok(_) => {}
            // Added by this create, its first answer lost: it must be as
            // wanted (a statement of this id is never changed in place).
            Err(e) if crate::error::already_exists(&e) => {
                let found = read(aws, &spec.function, &spec.statement_id).await?;
                let found = found.context("AddPermission: the statement exists, but the policy does not show it")?;
                anyhow::ensure!(
                    AuthorizerPermission::diff(spec, &found).is_empty(),
                    "statement {} of {} exists with another source ({})",
                    spec.statement_id,
                    spec.function,
                    found.source_arn
                );
                return Ok(found);
            }
            Err(e) => return Err(e).aws("AddPermission"),
        }
        Ok(State {
            function: spec.function.clone(),
            statement_id: spec.statement_id.clone(),
            principal: PRINCIPAL.to_owned(),
            source_arn,
        })
    }
}

async fn remove(aws: &Aws, state: &State) -> anyhow::Result<()> {
    let removed =
        aws.lambda.remove_permission().function_name(&state.function).statement_id(&state.statement_id).send();
    removed.await.gone("RemovePermission")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            function: "s-authorizer".into(),
            statement_id: "s-apigateway-invoke".into(),
            execute_api_prefix: "arn:aws:execute-api:eu-west-1:1".into(),
            account: "1".into(),
            api_id: Val::Known("a1".into()),
            authorizer_id: Val::Known("z9".into()),
        }
    }

    #[test]
    fn diff_replaces_a_statement_for_another_source_or_principal() {
        let state = State {
            function: "s-authorizer".into(),
            statement_id: "s-apigateway-invoke".into(),
            principal: PRINCIPAL.into(),
            source_arn: "arn:aws:execute-api:eu-west-1:1:a1/authorizers/z9".into(),
        };
        assert!(AuthorizerPermission::diff(&spec(), &state).is_empty());
        for (change, field) in [
            (
                (|s: &mut State| s.source_arn = "arn:aws:execute-api:eu-west-1:1:a1/authorizers/old".into())
                    as fn(&mut State),
                "source_arn",
            ),
            (|s: &mut State| s.principal = "lambda.amazonaws.com".into(), "principal"),
        ] {
            let mut changed = state.clone();
            change(&mut changed);
            let diff = AuthorizerPermission::diff(&spec(), &changed);
            assert_eq!(diff.fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), [field]);
            assert!(diff.replace);
        }
    }
}
