//! What the two WAFv2 kinds (`ip_set`, `web_acl`) share: reading the owner
//! tag, paging WAF's lists (by marker; the SDK has no paginator for them),
//! and the lock token every WAF write needs.

use std::future::Future;
use std::sync::Mutex;

use super::kind::OWNER_TAG;
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::retry::StepError;
use crate::stack::names;

/// Listing WAF's IP sets and web ACLs: WAF has no resource for a list.
pub fn list(action: &str) -> Statement {
    Statement::allow("WafList", Access::Read, &[action], vec!["*".into()])
}

/// The ARNs (any id) of the stack's WAF resources of `kind` (`ipset`, `webacl`) named `names`.
pub fn arns(grants: &Grants<'_>, kind: &str, names: &[String]) -> Vec<String> {
    let a = &grants.arns;
    names
        .iter()
        .map(|name| format!("arn:{}:wafv2:{}:{}:regional/{kind}/{name}/*", a.partition, a.region, a.account))
        .collect()
}

/// The stack's two IP sets' ARNs.
pub fn ip_set_arns(grants: &Grants<'_>) -> Vec<String> {
    let stack = grants.name();
    arns(grants, "ipset", &[names::ip_set(stack, false), names::ip_set(stack, true)])
}

/// The owner tag of a WAF resource.
pub async fn owner(aws: &Aws, arn: &str) -> anyhow::Result<Option<String>> {
    let tags = aws.wafv2.list_tags_for_resource().resource_arn(arn).send().await.aws("ListTagsForResource")?;
    Ok(tags
        .tag_info_for_resource()
        .map(|info| info.tag_list())
        .unwrap_or_default()
        .iter()
        .find(|t| t.key() == OWNER_TAG)
        .map(|t| t.value().to_owned()))
}

/// Every item of a WAF list: `page(marker)` returns one page's items and the
/// next marker. A busy account must not hide ours behind the first page.
pub async fn list_all<T, F, Fut>(mut page: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = anyhow::Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut marker = None;
    // Bounded: 1 000 pages of 100 is far beyond WAF's quotas per account.
    for _ in 0..1_000 {
        let (items, next) = page(marker).await?;
        let last = items.is_empty();
        all.extend(items);
        match next {
            Some(next) if !last => marker = Some(next),
            _ => return Ok(all),
        }
    }
    anyhow::bail!("WAF kept answering with more pages")
}

/// The lock token for the next write: the one last read, then, once WAF has
/// refused it as stale (`WAFOptimisticLockException`, retried by the step),
/// a fresh one.
pub struct LockTokens {
    first: Mutex<Option<String>>,
}

impl LockTokens {
    pub fn new(token: &str) -> LockTokens {
        LockTokens { first: Mutex::new(Some(token.to_owned())) }
    }

    /// The token to write with; `read` fetches a fresh one.
    pub async fn current<Fut>(&self, read: impl FnOnce() -> Fut) -> Result<String, StepError>
    where
        Fut: Future<Output = Result<String, StepError>>,
    {
        let first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match first {
            Some(token) => Ok(token),
            None => read().await,
        }
    }
}
