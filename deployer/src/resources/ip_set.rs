//! A WAFv2 (REGIONAL) IP set holding one address family of the allowlist.
//! Updates carry the lock token WAF hands out with every read. Addresses are
//! compared as networks (`2001:DB8::/32` and `2001:db8::/32` are the same).
//!
//! The stack's IP sets have names derived from the stack's name, so they
//! are found (and deleted) even when `waf:` is gone from stack.yaml.

use anyhow::Context as _;
use aws_sdk_wafv2::types::{IpAddressVersion, Scope as WafScope, Tag};
use serde::{Deserialize, Serialize};

use super::waf::{self, LockTokens};
use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs};
use crate::retry::{StepError, WAF_CHANGE, retry, retry_step};
use crate::stack::names;

pub struct IpSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    pub ipv6: bool,
    /// Canonical CIDRs, sorted.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    /// Canonical CIDRs (as parsed networks), sorted.
    pub addresses: Vec<String>,
}

pub fn address(stack: &str, ipv6: bool) -> Address {
    Address::new(IpSet::NAME, names::ip_set(stack, ipv6))
}

async fn fresh_token(aws: &Aws, state: &State) -> Result<String, StepError> {
    let output = aws.wafv2.get_ip_set().name(&state.name).scope(WafScope::Regional).id(&state.id).send().await;
    Ok(output.map_err(|e| StepError::aws("GetIPSet", e))?.lock_token().unwrap_or_default().to_owned())
}

/// A regional IP set as WAF lists it.
struct Listed {
    name: String,
    id: String,
    arn: String,
}

/// Every regional IP set. WAF pages its lists with markers (the SDK has no
/// paginator for them): a busy account must not hide ours.
async fn list(aws: &Aws) -> anyhow::Result<Vec<Listed>> {
    waf::list_all(|marker| async move {
        let page = aws
            .wafv2
            .list_ip_sets()
            .scope(WafScope::Regional)
            .limit(100)
            .set_next_marker(marker)
            .send()
            .await
            .aws("ListIPSets")?;
        let items = page.ip_sets().iter().filter_map(|s| {
            Some(Listed { name: s.name()?.to_owned(), id: s.id()?.to_owned(), arn: s.arn()?.to_owned() })
        });
        Ok((items.collect(), page.next_marker().map(str::to_owned)))
    })
    .await
}

fn canonical(addresses: &[String]) -> Vec<String> {
    let mut canonical: Vec<String> =
        addresses.iter().map(|a| crate::stack::parse_cidr(a).map(|c| c.0).unwrap_or_else(|_| a.clone())).collect();
    canonical.sort();
    canonical
}

async fn read(aws: &Aws, stack: &str, listed: &Listed) -> anyhow::Result<Option<Found<State>>> {
    let Listed { name, id, arn } = listed;
    // The list gave the ARN: the set and its tags are read at the same time.
    let (output, owner) = tokio::try_join!(
        async { aws.wafv2.get_ip_set().name(name).scope(WafScope::Regional).id(id).send().await.found("GetIPSet") },
        waf::owner(aws, arn)
    )?;
    let Some(output) = output else { return Ok(None) };
    let set = output.ip_set().context("GetIPSet answered without a set")?;
    let state = State {
        name: name.to_owned(),
        id: id.to_owned(),
        arn: set.arn().to_owned(),
        lock_token: output.lock_token().unwrap_or_default().to_owned(),
        addresses: canonical(set.addresses()),
    };
    let owned = owner.as_deref() == Some(stack);
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

async fn find_named(aws: &Aws, stack: &str, names: &[String]) -> anyhow::Result<Vec<Found<State>>> {
    let listed = list(aws).await?;
    let reads = listed.iter().filter(|l| names.contains(&l.name)).map(|l| read(aws, stack, l));
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

super::kind::fields! {
    Addresses = "addresses",
}

impl Kind for IpSet {
    const NAME: &'static str = "ip_set";
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let Some(allow) = &context.stack.waf else { return Ok(Vec::new()) };
        let stack = &context.stack.name;
        Ok([false, true]
            .into_iter()
            .map(|ipv6| {
                let mut addresses: Vec<String> =
                    allow.iter().filter(|c| c.is_ipv6() == ipv6).map(|c| c.0.clone()).collect();
                addresses.sort();
                Spec { stack: stack.clone(), name: names::ip_set(stack, ipv6), ipv6, addresses }
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::Addresses, &state.addresses, &canonical(&spec.addresses));
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone())].into()
    }

    /// The stack's IP sets by name; tags sent with CreateIPSet are a
    /// `wafv2:TagResource`.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let sets = super::waf::ip_set_arns(grants);
        vec![
            super::waf::list("wafv2:ListIPSets"),
            Statement::allow(
                "StackIpSetsRead",
                Access::Read,
                &["wafv2:GetIPSet", "wafv2:ListTagsForResource"],
                sets.clone(),
            ),
            Statement::allow(
                "StackIpSetsWrite",
                Access::Write,
                &["wafv2:CreateIPSet", "wafv2:TagResource", "wafv2:UpdateIPSet", "wafv2:DeleteIPSet"],
                sets,
            ),
        ]
    }
}

impl KindIo for IpSet {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        find_named(scope.aws, scope.stack, &[names::ip_set(scope.stack, false), names::ip_set(scope.stack, true)]).await
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        Ok(find_named(aws, &spec.stack, std::slice::from_ref(&spec.name)).await?.into_iter().next())
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let tag = Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?;
        let created = retry(&WAF_CHANGE, || {
            aws.wafv2
                .create_ip_set()
                .name(&spec.name)
                .scope(WafScope::Regional)
                .ip_address_version(if spec.ipv6 { IpAddressVersion::Ipv6 } else { IpAddressVersion::Ipv4 })
                .set_addresses(Some(spec.addresses.clone()))
                .description(format!("Allowlist of stack {}", spec.stack))
                .tags(tag.clone())
                .send()
        })
        .await;
        let output = match created {
            // Made by this create (its first answer lost), or by a run a
            // moment ago that WAF's lagging lists hid from the observation.
            Err(e) if crate::error::already_exists(&e) => return super::kind::made_already::<Self>(aws, spec).await,
            other => other.aws("CreateIPSet")?,
        };
        // The answer holds what a list might not show yet (WAF's lists lag).
        let summary = output.summary().context("CreateIPSet answered without a summary")?;
        Ok(State {
            name: spec.name.clone(),
            id: summary.id().context("CreateIPSet answered without an id")?.to_owned(),
            arn: summary.arn().context("CreateIPSet answered without an ARN")?.to_owned(),
            lock_token: summary.lock_token().unwrap_or_default().to_owned(),
            addresses: canonical(&spec.addresses),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        let tokens = LockTokens::new(&state.lock_token);
        let next_token = retry_step(&WAF_CHANGE, || async {
            let token = tokens.current(|| fresh_token(aws, state)).await?;
            let output = aws
                .wafv2
                .update_ip_set()
                .name(&spec.name)
                .scope(WafScope::Regional)
                .id(&state.id)
                .set_addresses(Some(spec.addresses.clone()))
                .lock_token(token)
                .send()
                .await
                .map_err(|e| StepError::aws("UpdateIPSet", e))?;
            Ok(output.next_lock_token().unwrap_or_default().to_owned())
        })
        .await?;
        Ok(State { lock_token: next_token, addresses: canonical(&spec.addresses), ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        let tokens = LockTokens::new(&state.lock_token);
        retry_step(&WAF_CHANGE, || async {
            let token = tokens.current(|| fresh_token(aws, state)).await?;
            let request = aws.wafv2.delete_ip_set().name(&state.name).scope(WafScope::Regional).id(&state.id);
            match request.lock_token(token).send().await {
                Err(e) if crate::error::is_not_found(&e) => Ok(()),
                other => other.map(drop).map_err(|e| StepError::aws("DeleteIPSet", e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_as_networks() {
        let spec = Spec {
            stack: "s".into(),
            name: "s-allow-ipv6".into(),
            ipv6: true,
            addresses: vec!["2001:db8::/32".into()],
        };
        let state = State {
            name: "s-allow-ipv6".into(),
            id: "i".into(),
            arn: "arn".into(),
            lock_token: "t".into(),
            addresses: canonical(&["2001:DB8:0::/32".to_owned()]),
        };
        assert!(IpSet::diff(&spec, &state).is_empty(), "{:?}", state.addresses);
        let other = State { addresses: vec!["2001:db9::/32".into()], ..state };
        assert!(IpSet::diff(&spec, &other).has(Field::Addresses));
    }
}
