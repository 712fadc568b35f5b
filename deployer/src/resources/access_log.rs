//! The stage's access log (`stage.access_log`): one JSON line per request,
//! with what a security team audits, written to the stack's log group.
//!
//! API Gateway writes access logs with an account-level CloudWatch role
//! (`cloudwatchRoleArn`, one per account and region, shared by every API).
//! That setting is never changed silently: it is read with the stage, a
//! stack that does not say `account_role: create` is refused before the
//! stage is written when the account has none, and with `create` the
//! deployer makes its role and sets it, only if the account has none. An
//! account that has a role keeps it. Teardown removes the stage's settings
//! and never the account's (other APIs may log through it).

use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::rest_api::RestApi;
use super::stage::Stage;
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::retry::{ACCOUNT_ROLE_PROPAGATION, retry};
use crate::stack::names;

pub struct AccessLog;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub api_id: Val,
    pub stage: String,
    pub destination_arn: String,
    pub format: String,
    /// The role to make and set as the account's CloudWatch role when the
    /// account has none (`account_role: create`); `None`: never set it.
    pub account_role: Option<String>,
    /// The permissions boundary a role the deployer makes carries.
    #[serde(default)]
    pub boundary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub stage: String,
    pub destination_arn: String,
    pub format: String,
    /// The account's CloudWatch role as read with the stage.
    pub account_role: Option<String>,
    /// A `cloudwatchRoleArn` that names a role that no longer exists (so
    /// API Gateway writes no access log): reported, and replaced only with
    /// `account_role: create`.
    #[serde(default)]
    pub stale_account_role: Option<String>,
}

/// One JSON object per request: who called (address, certificate), what
/// (method, resource, status), and what the authorizer and WAF decided.
pub fn format() -> String {
    json!({
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "principalId": "$context.authorizer.principalId",
        "authorizerError": "$context.authorizer.error",
        "authorizerLatency": "$context.authorizer.latency",
        "clientCertSerialNumber": "$context.identity.clientCert.serialNumber",
        "clientCertSubjectDN": "$context.identity.clientCert.subjectDN",
        "wafStatus": "$context.waf.status"
    })
    .to_string()
}

/// The account's CloudWatch role: the role, if it exists; else the ARN the
/// account names, if it names a role IAM no longer has (a stale setting
/// API Gateway keeps without a word, and logs nothing through).
async fn account_role(aws: &Aws) -> anyhow::Result<(Option<String>, Option<String>)> {
    let account = aws.apigateway.get_account().send().await.aws("GetAccount")?;
    let Some(arn) = account.cloudwatch_role_arn().filter(|arn| !arn.is_empty()).map(str::to_owned) else {
        return Ok((None, None));
    };
    let name = arn.rsplit('/').next().unwrap_or_default();
    match aws.iam.get_role().role_name(name).send().await.found("GetRole (the account's CloudWatch role)")? {
        Some(_) => Ok((Some(arn), None)),
        None => Ok((None, Some(arn))),
    }
}

/// Why API Gateway writes no access log, when the account has no working role.
fn no_account_role(stale: Option<&String>) -> String {
    match stale {
        Some(arn) => format!(
            "the account's CloudWatch role for API Gateway (cloudwatchRoleArn) is {arn}, a role that no longer \
             exists, so API Gateway writes no access log in this account and region"
        ),
        None => "API Gateway has no CloudWatch role in this account and region, so it writes no access log".into(),
    }
}

/// The stage's access log, if it has one.
async fn read(
    aws: &Aws,
    api_id: &str,
    stage: &str,
    (role, stale): (Option<String>, Option<String>),
) -> anyhow::Result<Option<State>> {
    let Some(read) = aws.apigateway.get_stage().rest_api_id(api_id).stage_name(stage).send().await.found("GetStage")?
    else {
        return Ok(None);
    };
    let Some(settings) = read.access_log_settings().filter(|s| s.destination_arn().is_some()) else {
        return Ok(None);
    };
    Ok(Some(State {
        api_id: api_id.to_owned(),
        stage: stage.to_owned(),
        destination_arn: settings.destination_arn().unwrap_or_default().to_owned(),
        format: settings.format().unwrap_or_default().to_owned(),
        account_role: role,
        stale_account_role: stale,
    }))
}

/// Whose an access log is: the stack's when it writes to one of its groups.
fn ownership(stack: &str, state: &State) -> Ownership {
    let ours = format!(":log-group:{}", names::access_log_prefix(stack));
    if state.destination_arn.contains(&ours) { Ownership::Owned } else { Ownership::Foreign }
}

/// The account's CloudWatch role, set if it has none and the stack allows
/// it; an error that says what to do if it has none and the stack does not.
async fn ensure_account_role(aws: &Aws, spec: &Spec) -> anyhow::Result<String> {
    let (role, stale) = account_role(aws).await?;
    if let Some(role) = role {
        return Ok(role);
    }
    let Some(role_arn) = &spec.account_role else {
        anyhow::bail!(
            "{}; nothing was written. Set stage.access_log.account_role: create to let the deployer make one \
             ({}) and set it, or set the account's cloudwatchRoleArn yourself",
            no_account_role(stale.as_ref()),
            names::ACCOUNT_LOG_ROLE
        );
    };
    let trust = super::iam_role::trust("apigateway.amazonaws.com");
    let tag = aws_sdk_iam::types::Tag::builder().key(ACCOUNT_SETTING_TAG).value("apigateway-cloudwatch");
    let created = aws
        .iam
        .create_role()
        .role_name(names::ACCOUNT_LOG_ROLE)
        .assume_role_policy_document(trust.to_string())
        .description("API Gateway's account-level CloudWatch role (access logs); shared by every API of the account")
        .permissions_boundary(&spec.boundary)
        .tags(tag.build()?)
        .send()
        .await;
    let policy = aws.arns().managed_policy(PUSH_TO_CLOUDWATCH_POLICY);
    let attached = match created {
        // Made before (by another stack, or a run whose answer was lost):
        // it keeps the boundary it was made with; attach only what it lacks.
        Err(e) if crate::error::already_exists(&e) => {
            let listed = aws.iam.list_attached_role_policies().role_name(names::ACCOUNT_LOG_ROLE).send().await;
            listed.aws("ListAttachedRolePolicies")?.attached_policies().iter().any(|p| p.policy_arn() == Some(&policy))
        }
        other => {
            drop(other.aws("CreateRole")?);
            false
        }
    };
    if !attached {
        let attach = aws.iam.attach_role_policy().role_name(names::ACCOUNT_LOG_ROLE).policy_arn(&policy);
        attach.send().await.aws("AttachRolePolicy")?;
    }
    let operation = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value(role_arn).build();
    // API Gateway refuses a role IAM has not propagated yet.
    retry(&ACCOUNT_ROLE_PROPAGATION, || aws.apigateway.update_account().patch_operations(operation.clone()).send())
        .await
        .aws("UpdateAccount")?;
    eprintln!("    set API Gateway's account CloudWatch role to {role_arn}");
    Ok(role_arn.clone())
}

/// The AWS managed policy that lets API Gateway write to CloudWatch Logs.
pub const PUSH_TO_CLOUDWATCH_POLICY: &str = "service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/// The tag on the account's CloudWatch role the deployer makes: an account
/// setting, not any one stack's.
const ACCOUNT_SETTING_TAG: &str = "oauth-gateway:account-setting";

/// What that policy allows, which the role's boundary must allow too: API
/// Gateway writes every API's logs of the account through it.
const PUSH_TO_CLOUDWATCH_ACTIONS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
];

async fn write_settings(aws: &Aws, spec: &Spec) -> anyhow::Result<()> {
    let replace = |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    aws.apigateway
        .update_stage()
        .rest_api_id(spec.api_id.known()?)
        .stage_name(&spec.stage)
        .patch_operations(replace("/accessLogSettings/destinationArn", &spec.destination_arn))
        .patch_operations(replace("/accessLogSettings/format", &spec.format))
        .send()
        .await
        .aws("UpdateStage")?;
    Ok(())
}

super::kind::fields! {
    DestinationArn = "destination_arn",
    Format = "format",
    AccountRole = "account_role",
}

impl Kind for AccessLog {
    const NAME: &'static str = "access_log";
    const PLACEMENT: Placement = Placement::API_SETTING;
    const DEPENDS_ON: &'static [&'static str] = &["stage", "log_group"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let (stack, stage) = (&context.stack.name, &context.stack.stage);
        let Some(access_log) = &stage.access_log else { return Ok(Vec::new()) };
        Ok(vec![Spec {
            stack: stack.clone(),
            api_id: super::rest_api::id(context),
            stage: stage.name.clone(),
            destination_arn: context.arns().log_group(&names::access_log_group(stack, &stage.name)),
            format: format(),
            account_role: access_log.create_account_role.then(|| context.arns().role(names::ACCOUNT_LOG_ROLE)),
            boundary: super::permissions_boundary::arn(&context.grants()),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.stage.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::DestinationArn, state.destination_arn.as_str(), spec.destination_arn.as_str());
        diff.field(Field::Format, state.format.as_str(), spec.format.as_str());
        // Set only where the account has none: an account's role is kept.
        if state.account_role.is_none() && spec.account_role.is_some() {
            diff.field(Field::AccountRole, &state.stale_account_role, &spec.account_role);
        }
        diff
    }

    fn blockers(spec: Option<&Spec>, state: &State) -> Vec<String> {
        let may_set = spec.is_some_and(|s| s.account_role.is_some());
        match state.account_role {
            None if !may_set => vec![format!(
                "access_log {}: {}; set stage.access_log.account_role: create, or set the account's \
                 cloudwatchRoleArn",
                state.stage,
                no_account_role(state.stale_account_role.as_ref())
            )],
            _ => Vec::new(),
        }
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    /// The stage's settings in the stack's API; the account's setting read,
    /// and with `account_role: create` set, with the role made only under
    /// the stack's boundary and passed to API Gateway only.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let mut statements = vec![
            super::rest_api::inside(grants, Access::Read, &["GET"]),
            super::rest_api::inside(grants, Access::Write, &["PATCH"]),
            Statement::allow(
                "ApiGatewayAccountRead",
                Access::Read,
                &["apigateway:GET"],
                vec![grants.apigateway("/account")],
            ),
            // Whether the role the account names still exists (any name:
            // the account's setting may be anyone's).
            Statement::allow("ApiGatewayAccountRoleRead", Access::Read, &["iam:GetRole"], vec![grants.arns.role("*")]),
        ];
        if !grants.stack.stage.access_log.as_ref().is_some_and(|a| a.create_account_role) {
            return statements;
        }
        let role = grants.arns.role(names::ACCOUNT_LOG_ROLE);
        let boundary = super::permissions_boundary::arn(grants);
        let push = grants.arns.managed_policy(PUSH_TO_CLOUDWATCH_POLICY);
        statements.extend([
            Statement::allow(
                "ApiGatewayAccountWrite",
                Access::Write,
                &["apigateway:PATCH"],
                vec![grants.apigateway("/account")],
            ),
            Statement::allow("AccountLogRoleCreate", Access::Write, &["iam:CreateRole"], vec![role.clone()]).when(
                "StringEquals",
                "iam:PermissionsBoundary",
                boundary.as_str(),
            ),
            Statement::allow(
                "AccountLogRoleRead",
                Access::Write,
                &["iam:ListAttachedRolePolicies"],
                vec![role.clone()],
            ),
            Statement::allow("AccountLogRoleTags", Access::Write, &["iam:TagRole"], vec![role.clone()]).when(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                serde_json::json!([ACCOUNT_SETTING_TAG]),
            ),
            Statement::allow("AccountLogRolePolicy", Access::Write, &["iam:AttachRolePolicy"], vec![role.clone()])
                .when("ArnEquals", "iam:PolicyARN", push.as_str())
                .when("StringEquals", "iam:PermissionsBoundary", boundary.as_str()),
            Statement::allow("PassAccountLogRoleToApiGateway", Access::Write, &["iam:PassRole"], vec![role.clone()])
                .when("StringEquals", "iam:PassedToService", "apigateway.amazonaws.com"),
            Statement::deny(
                "AccountLogRoleKeepsItsBoundary",
                &["iam:DeleteRolePermissionsBoundary"],
                vec![role.clone()],
            ),
            Statement::deny(
                "AccountLogRoleGetsNoOtherBoundary",
                &["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
                vec![role],
            )
            .when("StringNotEquals", "iam:PermissionsBoundary", boundary.as_str()),
        ]);
        statements
    }

    /// API Gateway's logging, through the account's role, for every API of
    /// the account (the role is the account's): what its managed policy
    /// allows, on the account's log groups.
    fn role_permissions(grants: &Grants<'_>) -> Vec<Statement> {
        if !grants.stack.stage.access_log.as_ref().is_some_and(|a| a.create_account_role) {
            return Vec::new();
        }
        let role = grants.arns.role(names::ACCOUNT_LOG_ROLE);
        let groups = format!("arn:{}:logs:*:{}:log-group:*", grants.arns.partition, grants.arns.account);
        vec![Statement::allow("ApiGatewayWritesLogs", Access::Write, PUSH_TO_CLOUDWATCH_ACTIONS, vec![groups]).when(
            "ArnEquals",
            "aws:PrincipalArn",
            role,
        )]
    }
}

impl KindIo for AccessLog {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        // Every stage the stack declares, whether or not it wants an access
        // log: one it no longer wants is found to be removed.
        let apis = scope.parents.of::<RestApi>();
        let stages: Vec<&str> = scope.declared(Stage::NAME).collect();
        let Some(api) = apis.iter().find(|a| a.ownership != Ownership::Foreign) else { return Ok(Vec::new()) };
        // The account is read only where the stack wants an access log.
        let role = if scope.desired.is_empty() { (None, None) } else { account_role(scope.aws).await? };
        let mut found = Vec::new();
        for stage in stages {
            if let Some(state) = read(scope.aws, &api.state.id, stage, role.clone()).await? {
                let owner = ownership(scope.stack, &state);
                found.push(Found::new(stage, owner, state).inside(Address::new(Stage::NAME, stage)));
            }
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let role = account_role(aws).await?;
        let state = read(aws, spec.api_id.known()?, &spec.stage, role).await?;
        Ok(state.map(|s| Found::new(&spec.stage, ownership(&spec.stack, &s), s)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let role = ensure_account_role(aws, spec).await?;
        write_settings(aws, spec).await?;
        Ok(State {
            api_id: spec.api_id.known()?.to_owned(),
            stage: spec.stage.clone(),
            destination_arn: spec.destination_arn.clone(),
            format: spec.format.clone(),
            account_role: Some(role),
            stale_account_role: None,
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let role = match diff.has(Field::AccountRole) {
            true => Some(ensure_account_role(aws, spec).await?),
            false => state.account_role.clone(),
        };
        if diff.has(Field::DestinationArn) || diff.has(Field::Format) {
            write_settings(aws, spec).await?;
        }
        Ok(State {
            destination_arn: spec.destination_arn.clone(),
            format: spec.format.clone(),
            stale_account_role: if role.is_some() { None } else { state.stale_account_role.clone() },
            account_role: role,
            ..state.clone()
        })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        // The stage's settings only; the account's role stays.
        let remove = PatchOperation::builder().op(Op::Remove).path("/accessLogSettings").build();
        let update = aws.apigateway.update_stage().rest_api_id(&state.api_id).stage_name(&state.stage);
        update.patch_operations(remove).send().await.gone("UpdateStage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::check_diff;

    fn spec() -> Spec {
        Spec {
            stack: "pets".into(),
            api_id: Val::Known("a1".into()),
            stage: "prod".into(),
            destination_arn: "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/pets/prod/access".into(),
            format: format(),
            account_role: Some("arn:aws:iam::123456789012:role/oauth-gateway-apigateway-cloudwatch".into()),
            boundary: "arn:aws:iam::123456789012:policy/s-role-boundary".into(),
        }
    }

    fn state() -> State {
        State {
            api_id: "a1".into(),
            stage: "prod".into(),
            destination_arn: spec().destination_arn,
            format: format(),
            account_role: Some("arn:aws:iam::123456789012:role/someone-elses".into()),
            stale_account_role: None,
        }
    }

    #[test]
    fn diff() {
        check_diff::<AccessLog>(
            &spec(),
            &state(),
            &[
                (|s| s.destination_arn = "arn:aws:logs:eu-west-1:1:log-group:other".into(), "destination_arn"),
                (|s| s.format = "$context.requestId".into(), "format"),
                (|s| s.account_role = None, "account_role"),
            ],
        );
    }

    #[test]
    fn an_accounts_role_is_kept_and_never_set_unless_the_stack_says_so() {
        assert!(AccessLog::diff(&spec(), &state()).is_empty(), "another role of the account is kept");
        let without = Spec { account_role: None, ..spec() };
        let no_role = State { account_role: None, ..state() };
        assert!(AccessLog::diff(&without, &no_role).is_empty(), "not set without `create`");
        let blockers = AccessLog::blockers(Some(&without), &no_role);
        assert!(blockers.len() == 1 && blockers[0].contains("account_role: create"), "{blockers:?}");
        assert!(AccessLog::blockers(Some(&spec()), &no_role).is_empty(), "the deployer will set it");

        // A setting that names a role IAM no longer has is no role: said so,
        // and replaced only with `create` (the diff shows what it replaces).
        let stale = "arn:aws:iam::123456789012:role/deleted-long-ago";
        let stale_role = State { stale_account_role: Some(stale.into()), ..no_role };
        let blockers = AccessLog::blockers(Some(&without), &stale_role);
        assert!(blockers.len() == 1 && blockers[0].contains(&format!("is {stale}, a role that no longer exists")));
        let replaced = AccessLog::diff(&spec(), &stale_role);
        assert!(replaced.fields.iter().any(|f| f.old.to_string().contains("deleted-long-ago")), "{:?}", replaced.fields);
    }

    #[test]
    fn the_format_is_json_with_what_an_audit_needs() {
        let format: serde_json::Value = serde_json::from_str(&format()).expect("JSON");
        for variable in [
            "requestId",
            "identity.sourceIp",
            "requestTime",
            "httpMethod",
            "resourcePath",
            "status",
            "authorizer.principalId",
            "authorizer.error",
            "authorizer.latency",
            "identity.clientCert.serialNumber",
            "identity.clientCert.subjectDN",
            "waf.status",
        ] {
            let wanted = format!("$context.{variable}");
            assert!(format.as_object().unwrap().values().any(|v| v == &wanted), "{wanted}");
        }
        assert!(ownership("pets", &state()) == Ownership::Owned);
        let elsewhere = State { destination_arn: "arn:aws:logs:eu-west-1:1:log-group:/theirs".into(), ..state() };
        assert!(ownership("pets", &elsewhere) == Ownership::Foreign);
    }
}
