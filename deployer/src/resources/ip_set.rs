//! A WAFv2 (REGIONAL) IP set holding one address family of the allowlist.
//! Updates carry the lock token WAF hands out with every read.

use anyhow::Context as _;
use aws_sdk_wafv2::types::{IpAddressVersion, Scope, Tag};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct IpSet {
    pub stack: String,
    pub name: String,
    pub ipv6: bool,
    /// Canonical CIDRs, sorted.
    pub addresses: Vec<String>,
}

#[derive(Debug)]
pub struct ObservedIpSet {
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    pub addresses: Vec<String>,
    pub owner: Option<String>,
}

/// The owner tag of a WAF resource.
pub(super) async fn waf_owner(aws: &Aws, arn: &str) -> anyhow::Result<Option<String>> {
    let tags = aws
        .wafv2
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("ListTagsForResource: {}", describe(&e)))?;
    Ok(tags
        .tag_info_for_resource()
        .map(|info| info.tag_list())
        .unwrap_or_default()
        .iter()
        .find(|t| t.key() == OWNER_TAG)
        .map(|t| t.value().to_owned()))
}

impl Resource for IpSet {
    const KIND: &'static str = "waf_ip_set";
    type Observed = ObservedIpSet;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedIpSet>> {
        // WAF pages its lists: a busy account must not hide ours (and get a duplicate).
        let mut marker = None;
        let summary = loop {
            let page = aws
                .wafv2
                .list_ip_sets()
                .scope(Scope::Regional)
                .limit(100)
                .set_next_marker(marker)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("ListIPSets: {}", describe(&e)))?;
            if let Some(found) = page.ip_sets().iter().find(|s| s.name() == Some(self.name.as_str())) {
                break found.clone();
            }
            match page.next_marker() {
                Some(next) if !page.ip_sets().is_empty() => marker = Some(next.to_owned()),
                _ => return Ok(None),
            }
        };
        let id = summary.id().context("IP set without id")?;
        let output = aws
            .wafv2
            .get_ip_set()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetIPSet: {}", describe(&e)))?;
        let set = output.ip_set().context("GetIPSet answered without a set")?;
        let mut addresses = set.addresses().to_vec();
        addresses.sort();
        Ok(Some(ObservedIpSet {
            id: id.to_owned(),
            arn: set.arn().to_owned(),
            lock_token: output.lock_token().unwrap_or_default().to_owned(),
            addresses,
            owner: waf_owner(aws, set.arn()).await?,
        }))
    }

    fn diff(&self, o: &ObservedIpSet) -> Diff {
        let mut diff = Diff::default();
        diff.field("addresses", &o.addresses, &self.addresses);
        diff
    }

    fn owned_by(&self, o: &ObservedIpSet, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedIpSet> {
        aws.wafv2
            .create_ip_set()
            .name(&self.name)
            .scope(Scope::Regional)
            .ip_address_version(if self.ipv6 { IpAddressVersion::Ipv6 } else { IpAddressVersion::Ipv4 })
            .set_addresses(Some(self.addresses.clone()))
            .description(format!("Allowlist of stack {}", self.stack))
            .tags(Tag::builder().key(OWNER_TAG).value(&self.stack).build()?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateIPSet: {}", describe(&e)))?;
        self.find(aws).await?.context("IP set missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedIpSet, _: &Diff) -> anyhow::Result<ObservedIpSet> {
        aws.wafv2
            .update_ip_set()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(&o.id)
            .set_addresses(Some(self.addresses.clone()))
            .lock_token(&o.lock_token)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("UpdateIPSet: {}", describe(&e)))?;
        self.find(aws).await?.context("IP set vanished during update")
    }

    async fn delete(&self, aws: &Aws, o: &ObservedIpSet) -> anyhow::Result<()> {
        match aws
            .wafv2
            .delete_ip_set()
            .name(&self.name)
            .scope(Scope::Regional)
            .id(&o.id)
            .lock_token(&o.lock_token)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_waf_nonexistent_item_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DeleteIPSet: {}", describe(&e)),
        }
    }
}
