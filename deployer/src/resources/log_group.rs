//! CloudWatch log groups of the stack, each with its retention: the
//! function's (`/aws/lambda/NAME`) and, with `stage.access_log`, the
//! stage's access log.
//!
//! The function's group is created, tagged and given its retention before
//! the function (`lambda_function` depends on this kind): otherwise Lambda
//! creates it on the first invocation, untagged and kept forever. An
//! untagged group of exactly that name is the one Lambda made for the
//! stack's own function (under a deployer that did not make it yet), so it
//! is taken back and tagged; any other untagged group is not the stack's.

use serde::{Deserialize, Serialize};

use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::Outputs;
use crate::stack::names;

pub struct LogGroup;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    pub retention_days: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    /// Without the `:*` suffix: the form API Gateway's access log takes.
    pub arn: String,
    /// `None`: kept forever.
    pub retention_days: Option<i32>,
    /// Carries the stack's tag (an untagged group taken back does not yet).
    pub tagged: bool,
}

/// Whether an untagged group of this name is the stack's all the same.
fn taken_back_untagged(stack: &str, name: &str) -> bool {
    name == names::function_log_group(stack)
}

/// The stack's groups whose names start with `prefix`; untagged ones only
/// where the stack wants one of that name (to be refused, or taken back).
async fn read(aws: &Aws, stack: &str, prefix: &str, wanted: &[&str]) -> anyhow::Result<Vec<Found<State>>> {
    let mut found = Vec::new();
    let mut pages = aws.logs.describe_log_groups().log_group_name_prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        for group in page.aws("DescribeLogGroups")?.log_groups() {
            let name = group.log_group_name().unwrap_or_default().to_owned();
            let arn = aws.arns().log_group(&name);
            let tags =
                aws.logs.list_tags_for_resource().resource_arn(&arn).send().await.found("ListTagsForResource")?;
            let tagged =
                tags.and_then(|t| t.tags().and_then(|t| t.get(OWNER_TAG).cloned())).is_some_and(|o| o == stack);
            let ownership = match tagged {
                true => Ownership::Owned,
                false if taken_back_untagged(stack, &name) => Ownership::Owned,
                false if wanted.contains(&name.as_str()) => Ownership::Foreign,
                false => continue,
            };
            let state = State { name: name.clone(), arn, retention_days: group.retention_in_days(), tagged };
            found.push(Found::new(name, ownership, state));
        }
    }
    Ok(found)
}

async fn set_retention(aws: &Aws, spec: &Spec) -> anyhow::Result<()> {
    let put = aws.logs.put_retention_policy().log_group_name(&spec.name).retention_in_days(spec.retention_days);
    put.send().await.aws("PutRetentionPolicy")?;
    Ok(())
}

super::kind::fields! {
    RetentionDays = "retention_days",
    Tagged = "tagged",
}

impl Kind for LogGroup {
    const NAME: &'static str = "log_group";
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stack = &context.stack.name;
        let mut groups = vec![Spec {
            stack: stack.clone(),
            name: names::function_log_group(stack),
            retention_days: context.stack.authorizer.log_retention_days,
        }];
        if let Some(access_log) = &context.stack.stage.access_log {
            groups.push(Spec {
                stack: stack.clone(),
                name: names::access_log_group(stack, &context.stack.stage.name),
                retention_days: access_log.retention_days,
            });
        }
        Ok(groups)
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::RetentionDays, state.retention_days, Some(spec.retention_days));
        diff.field(Field::Tagged, state.tagged, true);
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone())].into()
    }

    /// The stack's groups by name (the function's, and every stage's access
    /// log, also of stages it no longer has); listing covers the account.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let stack = grants.name();
        let function = grants.arns.log_group(&names::function_log_group(stack));
        let groups = vec![
            function.clone(),
            format!("{function}:*"),
            format!("{}*", grants.arns.log_group(&names::access_log_prefix(stack))),
        ];
        vec![
            Statement::allow(
                "LogGroupList",
                Access::Read,
                &["logs:DescribeLogGroups"],
                vec![grants.arns.log_group("*")],
            ),
            Statement::allow("StackLogGroupsRead", Access::Read, &["logs:ListTagsForResource"], groups.clone()),
            Statement::allow(
                "StackLogGroupsWrite",
                Access::Write,
                &["logs:CreateLogGroup", "logs:TagResource", "logs:PutRetentionPolicy", "logs:DeleteLogGroup"],
                groups,
            ),
        ]
    }
}

impl KindIo for LogGroup {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let wanted: Vec<&str> = scope.desired.iter().map(|s| s.name.as_str()).collect();
        // The two places the stack's groups live; access logs of every stage
        // the stack ever had, for pruning.
        let (function, access) = (names::function_log_group(scope.stack), names::access_log_prefix(scope.stack));
        let (function, access) = tokio::try_join!(
            read(scope.aws, scope.stack, &function, &wanted),
            read(scope.aws, scope.stack, &access, &wanted),
        )?;
        // A prefix also matches longer names: keep exact ones.
        let functions = function.into_iter().filter(|f| f.name == names::function_log_group(scope.stack));
        Ok(functions.chain(access).collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let found = read(aws, &spec.stack, &spec.name, &[spec.name.as_str()]).await?;
        Ok(found.into_iter().find(|f| f.name == spec.name))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let created = aws
            .logs
            .create_log_group()
            .log_group_name(&spec.name)
            .set_tags(Some(super::kind::owner_tags(&spec.stack)))
            .send()
            .await;
        match created {
            // Made by this create (its first answer lost), or by Lambda for
            // the function in the meantime: find it and bring it in line.
            Err(e) if crate::error::already_exists(&e) => return super::kind::made_already::<Self>(aws, spec).await,
            other => other.aws("CreateLogGroup")?,
        };
        set_retention(aws, spec).await?;
        Ok(State {
            name: spec.name.clone(),
            arn: aws.arns().log_group(&spec.name),
            retention_days: Some(spec.retention_days),
            tagged: true,
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        if diff.has(Field::Tagged) {
            let tag = aws.logs.tag_resource().resource_arn(&state.arn).set_tags(Some(super::kind::owner_tags(&spec.stack)));
            tag.send().await.aws("TagResource")?;
        }
        if diff.has(Field::RetentionDays) {
            set_retention(aws, spec).await?;
        }
        Ok(State { retention_days: Some(spec.retention_days), tagged: true, ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.logs.delete_log_group().log_group_name(&state.name).send().await.gone("DeleteLogGroup")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::check_diff;

    #[test]
    fn diff() {
        let spec = Spec { stack: "pets".into(), name: "/aws/lambda/pets-authorizer".into(), retention_days: 90 };
        let state = State {
            name: spec.name.clone(),
            arn: "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/pets-authorizer".into(),
            retention_days: Some(90),
            tagged: true,
        };
        check_diff::<LogGroup>(
            &spec,
            &state,
            &[(|s| s.retention_days = None, "retention_days"), (|s| s.tagged = false, "tagged")],
        );
    }

    #[test]
    fn a_diff_read_back_by_name_must_name_this_kinds_fields() {
        let spec = Spec { stack: "pets".into(), name: "/aws/lambda/pets-authorizer".into(), retention_days: 30 };
        let state = State { name: spec.name.clone(), arn: String::new(), retention_days: None, tagged: true };
        let erased = LogGroup::diff(&spec, &state).erased();
        let typed = Diff::<Field>::typed(&erased).expect("its own fields");
        assert!(typed.has(Field::RetentionDays) && !typed.has(Field::Tagged));
        let mut foreign = erased;
        foreign.fields[0].field = "memory_size".into();
        assert!(Diff::<Field>::typed(&foreign).is_err(), "a field of another kind is refused");
    }

    #[test]
    fn only_the_functions_own_group_is_taken_back_untagged() {
        assert!(taken_back_untagged("pets", "/aws/lambda/pets-authorizer"));
        assert!(!taken_back_untagged("pets", "/aws/lambda/pets-authorizer-old"));
        assert!(!taken_back_untagged("pets", "/aws/apigateway/pets/prod/access"));
    }
}
