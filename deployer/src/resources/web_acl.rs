//! The WAFv2 web ACL of the stage: allow requests from the allowlist's IP
//! sets, block everything else.

use anyhow::Context as _;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, IpSetReferenceStatement, Rule, RuleAction, Scope, Statement, Tag,
    VisibilityConfig,
};

use super::ip_set::waf_owner;
use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct WebAcl {
    pub stack: String,
    pub name: String,
    /// ARNs of the IP sets to allow, in rule priority order.
    pub allowed_ip_sets: Vec<String>,
}

#[derive(Debug)]
pub struct ObservedWebAcl {
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    pub blocks_by_default: bool,
    /// (rule name, priority, IP set ARN, allows)
    pub rules: Vec<(String, i32, String, bool)>,
    pub owner: Option<String>,
}

impl WebAcl {
    fn visibility(&self, metric: &str) -> anyhow::Result<VisibilityConfig> {
        Ok(VisibilityConfig::builder()
            .sampled_requests_enabled(true)
            .cloud_watch_metrics_enabled(true)
            .metric_name(metric.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "-"))
            .build()?)
    }

    fn wanted_rules(&self) -> Vec<(String, i32, String, bool)> {
        self.allowed_ip_sets
            .iter()
            .enumerate()
            .map(|(i, arn)| (format!("allow-{i}"), i as i32, arn.clone(), true))
            .collect()
    }

    fn rules(&self) -> anyhow::Result<Vec<Rule>> {
        self.wanted_rules()
            .into_iter()
            .map(|(name, priority, arn, _)| {
                Ok(Rule::builder()
                    .name(&name)
                    .priority(priority)
                    .statement(
                        Statement::builder()
                            .ip_set_reference_statement(IpSetReferenceStatement::builder().arn(arn).build()?)
                            .build(),
                    )
                    .action(RuleAction::builder().allow(AllowAction::builder().build()).build())
                    .visibility_config(self.visibility(&format!("{}-{name}", self.name))?)
                    .build()?)
            })
            .collect()
    }

    fn block() -> DefaultAction {
        DefaultAction::builder().block(BlockAction::builder().build()).build()
    }
}

impl Resource for WebAcl {
    const KIND: &'static str = "waf_web_acl";
    type Observed = ObservedWebAcl;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedWebAcl>> {
        // WAF pages its lists: a busy account must not hide ours (and get a duplicate).
        let mut marker = None;
        let summary = loop {
            let page = aws
                .wafv2
                .list_web_acls()
                .scope(Scope::Regional)
                .limit(100)
                .set_next_marker(marker)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("ListWebACLs: {}", describe(&e)))?;
            if let Some(found) = page.web_acls().iter().find(|s| s.name() == Some(self.name.as_str())) {
                break found.clone();
            }
            match page.next_marker() {
                Some(next) if !page.web_acls().is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(None),
            }
        };
        let id = summary.id().context("web ACL without id")?;
        let output = aws
            .wafv2
            .get_web_acl()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetWebACL: {}", describe(&e)))?;
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
                let allows = r.action().is_some_and(|a| a.allow().is_some());
                (r.name().to_owned(), r.priority(), arn, allows)
            })
            .collect();
        Ok(Some(ObservedWebAcl {
            id: id.to_owned(),
            arn: acl.arn().to_owned(),
            lock_token: output.lock_token().unwrap_or_default().to_owned(),
            blocks_by_default: acl.default_action().is_some_and(|d| d.block().is_some()),
            rules,
            owner: waf_owner(aws, acl.arn()).await?,
        }))
    }

    fn diff(&self, o: &ObservedWebAcl) -> Diff {
        let mut diff = Diff::default();
        diff.field("default_action", if o.blocks_by_default { "BLOCK" } else { "ALLOW" }, "BLOCK");
        diff.field("rules", &o.rules, &self.wanted_rules());
        diff
    }

    fn owned_by(&self, o: &ObservedWebAcl, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedWebAcl> {
        aws.wafv2
            .create_web_acl()
            .name(&self.name)
            .scope(Scope::Regional)
            .default_action(Self::block())
            .set_rules(Some(self.rules()?))
            .visibility_config(self.visibility(&self.name)?)
            .description(format!("Allowlist of stack {}: allow listed networks, block the rest", self.stack))
            .tags(Tag::builder().key(OWNER_TAG).value(&self.stack).build()?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateWebACL: {}", describe(&e)))?;
        self.find(aws).await?.context("web ACL missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedWebAcl, _: &Diff) -> anyhow::Result<ObservedWebAcl> {
        aws.wafv2
            .update_web_acl()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(&o.id)
            .default_action(Self::block())
            .set_rules(Some(self.rules()?))
            .visibility_config(self.visibility(&self.name)?)
            .lock_token(&o.lock_token)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("UpdateWebACL: {}", describe(&e)))?;
        self.find(aws).await?.context("web ACL vanished during update")
    }

    async fn delete(&self, aws: &Aws, o: &ObservedWebAcl) -> anyhow::Result<()> {
        match aws
            .wafv2
            .delete_web_acl()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(&o.id)
            .lock_token(&o.lock_token)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_waf_nonexistent_item_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DeleteWebACL: {}", describe(&e)),
        }
    }
}
