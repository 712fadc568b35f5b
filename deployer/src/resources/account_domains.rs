//! The account's custom domains as `GetDomainNames` lists them, read once
//! per observation ([`SharedReads`]): the domain kind finds its instances
//! in the list, and the certificate and truststore kinds find there the
//! stack's domains that stack.yaml no longer declares (and so their
//! certificates and truststores, to delete). A shared read below the three
//! kinds, so none of them needs another's module.

use std::sync::Arc;

use aws_sdk_apigateway::types::DomainName;

use super::kind::{OWNER_TAG, SharedReads};
use crate::aws::Aws;
use crate::error::SdkResult as _;

/// Every custom domain of the account and region.
pub async fn listed(aws: &Aws, shared: &SharedReads) -> anyhow::Result<Arc<Vec<DomainName>>> {
    let aws = aws.clone();
    shared.get("GetDomainNames".to_owned(), async move { list(&aws).await }).await
}

/// Every custom domain of the account and region, read now.
async fn list(aws: &Aws) -> anyhow::Result<Vec<DomainName>> {
    aws.apigateway
        .get_domain_names()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("GetDomainNames")
}

/// Whether `domain` carries `stack`'s tag.
fn is_owned_by(domain: &DomainName, stack: &str) -> bool {
    domain.tags().and_then(|t| t.get(OWNER_TAG)).is_some_and(|owner| owner == stack)
}

/// The stack's domains: their names and the truststore each uses (`s3://…`).
pub async fn owned(aws: &Aws, shared: &SharedReads, stack: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    Ok(listed(aws, shared)
        .await?
        .iter()
        .filter(|d| is_owned_by(d, stack))
        .filter_map(|d| {
            let truststore = d.mutual_tls_authentication().and_then(|m| m.truststore_uri()).map(str::to_owned);
            Some((d.domain_name()?.to_owned(), truststore))
        })
        .collect())
}
