//! The WAFv2 web ACL of the stage: allow requests from the allowlist's IP
//! sets, block everything else. Its name derives from the stack's name, so
//! it is found (and deleted) even when `waf:` is gone from stack.yaml.

use anyhow::Context as _;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, IpSetReferenceStatement, Rule, RuleAction, Scope as WafScope, Statement,
    Tag, VisibilityConfig,
};
use serde::{Deserialize, Serialize};

use super::ip_set;
use super::waf::{self, LockTokens};
use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{self, Access, Grants};
use crate::plan::{Address, Outputs, Val};
use crate::retry::{StepError, WAF_CHANGE, retry, retry_step};
use crate::stack::names;

pub struct WebAcl;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    /// ARNs of the IP sets to allow, in rule priority order.
    pub allowed_ip_sets: Vec<Val>,
}

/// One rule as compared: (name, priority, IP set ARN, allows).
type RuleSummary = (String, i32, String, bool);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    pub blocks_by_default: bool,
    pub rules: Vec<RuleSummary>,
}

pub fn address(stack: &str) -> Address {
    Address::new(WebAcl::NAME, names::web_acl(stack))
}

fn visibility(metric: &str) -> anyhow::Result<VisibilityConfig> {
    Ok(VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(metric.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "-"))
        .build()?)
}

fn wanted_rules(spec: &Spec) -> Vec<RuleSummary> {
    spec.allowed_ip_sets
        .iter()
        .enumerate()
        .map(|(i, arn)| (format!("allow-{i}"), i as i32, arn.shown().to_string(), true))
        .collect()
}

fn rules(spec: &Spec) -> anyhow::Result<Vec<Rule>> {
    spec.allowed_ip_sets
        .iter()
        .enumerate()
        .map(|(i, arn)| {
            let name = format!("allow-{i}");
            Ok(Rule::builder()
                .name(&name)
                .priority(i as i32)
                .statement(
                    Statement::builder()
                        .ip_set_reference_statement(IpSetReferenceStatement::builder().arn(arn.known()?).build()?)
                        .build(),
                )
                .action(RuleAction::builder().allow(AllowAction::builder().build()).build())
                .visibility_config(visibility(&format!("{}-{name}", spec.name))?)
                .build()?)
        })
        .collect()
}

fn block() -> DefaultAction {
    DefaultAction::builder().block(BlockAction::builder().build()).build()
}

/// The (id, ARN) of the regional web ACL called `name`, if any (paged by marker).
async fn id_of(aws: &Aws, name: &str) -> anyhow::Result<Option<(String, String)>> {
    let all = waf::list_all(|marker| async move {
        let page = aws
            .wafv2
            .list_web_acls()
            .scope(WafScope::Regional)
            .limit(100)
            .set_next_marker(marker)
            .send()
            .await
            .aws("ListWebACLs")?;
        let items = page
            .web_acls()
            .iter()
            .filter_map(|s| Some((s.name()?.to_owned(), s.id()?.to_owned(), s.arn()?.to_owned())));
        Ok((items.collect::<Vec<_>>(), page.next_marker().map(str::to_owned)))
    })
    .await?;
    Ok(all.into_iter().find(|(n, _, _)| n == name).map(|(_, id, arn)| (id, arn)))
}

async fn fresh_token(aws: &Aws, state: &State) -> Result<String, StepError> {
    let output = aws.wafv2.get_web_acl().name(&state.name).scope(WafScope::Regional).id(&state.id).send().await;
    Ok(output.map_err(|e| StepError::aws("GetWebACL", e))?.lock_token().unwrap_or_default().to_owned())
}

async fn read(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    let Some((id, arn)) = id_of(aws, name).await? else { return Ok(None) };
    // The list gave the ARN: the ACL and its tags are read at the same time.
    let (output, owner) = tokio::try_join!(
        async { aws.wafv2.get_web_acl().name(name).scope(WafScope::Regional).id(&id).send().await.found("GetWebACL") },
        waf::owner(aws, &arn)
    )?;
    let Some(output) = output else { return Ok(None) };
    let acl = output.web_acl().context("GetWebACL answered without an ACL")?;
    let rules = acl
        .rules()
        .iter()
        .map(|r| {
            let arn = r
                .statement()
                .and_then(|s| s.ip_set_reference_statement())
                .map(|s| s.arn().to_owned())
                .unwrap_or_default();
            (r.name().to_owned(), r.priority(), arn, r.action().is_some_and(|a| a.allow().is_some()))
        })
        .collect();
    let state = State {
        name: name.to_owned(),
        id,
        arn: acl.arn().to_owned(),
        lock_token: output.lock_token().unwrap_or_default().to_owned(),
        blocks_by_default: acl.default_action().is_some_and(|d| d.block().is_some()),
        rules,
    };
    let owned = owner.as_deref() == Some(stack);
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

super::kind::fields! {
    DefaultAction = "default_action",
    Rules = "rules",
}

impl Kind for WebAcl {
    const NAME: &'static str = "web_acl";
    const DEPENDS_ON: &'static [&'static str] = &["ip_set"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        if context.stack.waf.is_none() {
            return Ok(Vec::new());
        }
        let stack = &context.stack.name;
        Ok(vec![Spec {
            stack: stack.clone(),
            name: names::web_acl(stack),
            allowed_ip_sets: [false, true]
                .into_iter()
                .map(|v6| Val::output(ip_set::address(stack, v6), "arn"))
                .collect(),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::DefaultAction, if state.blocks_by_default { "BLOCK" } else { "ALLOW" }, "BLOCK");
        diff.field(Field::Rules, &state.rules, &wanted_rules(spec));
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone())].into()
    }

    /// The stack's web ACL by name; WAF also checks a create or update on
    /// the IP sets its rules reference.
    fn permissions(grants: &Grants<'_>) -> Vec<grants::Statement> {
        let acl = super::waf::arns(grants, "webacl", &[names::web_acl(grants.name())]);
        let referenced = super::waf::ip_set_arns(grants);
        vec![
            super::waf::list("wafv2:ListWebACLs"),
            grants::Statement::allow(
                "StackWebAclRead",
                Access::Read,
                &["wafv2:GetWebACL", "wafv2:ListTagsForResource"],
                acl.clone(),
            ),
            grants::Statement::allow(
                "StackWebAclWrite",
                Access::Write,
                &["wafv2:CreateWebACL", "wafv2:TagResource", "wafv2:UpdateWebACL", "wafv2:DeleteWebACL"],
                acl,
            ),
            grants::Statement::allow(
                "StackWebAclRules",
                Access::Write,
                &["wafv2:CreateWebACL", "wafv2:UpdateWebACL"],
                referenced,
            ),
        ]
    }
}

impl KindIo for WebAcl {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        Ok(read(scope.aws, scope.stack, &names::web_acl(scope.stack)).await?.into_iter().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.name).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let (rules, visibility, tag) =
            (rules(spec)?, visibility(&spec.name)?, Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?);
        // WAF may not see the IP sets created a moment ago yet.
        let created = retry(&WAF_CHANGE, || {
            aws.wafv2
                .create_web_acl()
                .name(&spec.name)
                .scope(WafScope::Regional)
                .default_action(block())
                .set_rules(Some(rules.clone()))
                .visibility_config(visibility.clone())
                .description(format!("Allowlist of stack {}: allow listed networks, block the rest", spec.stack))
                .tags(tag.clone())
                .send()
        })
        .await;
        let output = match created {
            // Made by this create or a run a moment ago (see ip_set).
            Err(e) if crate::error::already_exists(&e) => return super::kind::made_already::<Self>(aws, spec).await,
            other => other.aws("CreateWebACL")?,
        };
        // The answer holds what a list might not show yet (WAF's lists lag).
        let summary = output.summary().context("CreateWebACL answered without a summary")?;
        Ok(State {
            name: spec.name.clone(),
            id: summary.id().context("CreateWebACL answered without an id")?.to_owned(),
            arn: summary.arn().context("CreateWebACL answered without an ARN")?.to_owned(),
            lock_token: summary.lock_token().unwrap_or_default().to_owned(),
            blocks_by_default: true,
            rules: wanted_rules(spec),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        let (rules, visibility) = (rules(spec)?, visibility(&spec.name)?);
        let tokens = LockTokens::new(&state.lock_token);
        let next_token = retry_step(&WAF_CHANGE, || async {
            let token = tokens.current(|| fresh_token(aws, state)).await?;
            let output = aws
                .wafv2
                .update_web_acl()
                .name(&spec.name)
                .scope(WafScope::Regional)
                .id(&state.id)
                .default_action(block())
                .set_rules(Some(rules.clone()))
                .visibility_config(visibility.clone())
                .lock_token(token)
                .send()
                .await
                .map_err(|e| StepError::aws("UpdateWebACL", e))?;
            Ok(output.next_lock_token().unwrap_or_default().to_owned())
        })
        .await?;
        Ok(State { lock_token: next_token, blocks_by_default: true, rules: wanted_rules(spec), ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        // WAF may still see the association removed a moment ago.
        let tokens = LockTokens::new(&state.lock_token);
        retry_step(&WAF_CHANGE, || async {
            let token = tokens.current(|| fresh_token(aws, state)).await?;
            let request = aws.wafv2.delete_web_acl().name(&state.name).scope(WafScope::Regional).id(&state.id);
            match request.lock_token(token).send().await {
                Err(e) if crate::error::is_not_found(&e) => Ok(()),
                other => other.map(drop).map_err(|e| StepError::aws("DeleteWebACL", e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff() {
        let spec = Spec {
            stack: "s".into(),
            name: "s-allowlist".into(),
            allowed_ip_sets: vec![Val::Known("arn:v4".into()), Val::Known("arn:v6".into())],
        };
        let state = State {
            name: "s-allowlist".into(),
            id: "i".into(),
            arn: "arn".into(),
            lock_token: "t".into(),
            blocks_by_default: true,
            rules: wanted_rules(&spec),
        };
        assert!(WebAcl::diff(&spec, &state).is_empty());
        let open = State { blocks_by_default: false, ..state.clone() };
        assert!(WebAcl::diff(&spec, &open).has(Field::DefaultAction));
        let mut one_rule = state;
        one_rule.rules.pop();
        assert!(WebAcl::diff(&spec, &one_rule).has(Field::Rules));
    }
}
