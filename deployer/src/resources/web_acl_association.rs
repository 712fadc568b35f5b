//! The web ACL attached to the API's stage. WAF may refuse the association
//! for a short while after the ACL is created (`WAFUnavailableEntityException`);
//! that one error is retried, briefly.

use std::time::Duration;

use anyhow::Context as _;

use super::{Diff, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct WebAclAssociation {
    pub web_acl_arn: String,
    /// `arn:aws:apigateway:{region}::/restapis/{api}/stages/{stage}`.
    pub stage_arn: String,
}

#[derive(Debug)]
pub struct ObservedAssociation {
    pub web_acl_arn: String,
}

impl Resource for WebAclAssociation {
    const KIND: &'static str = "waf_association";
    type Observed = ObservedAssociation;

    fn id(&self) -> String {
        self.stage_arn.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedAssociation>> {
        match aws.wafv2.get_web_acl_for_resource().resource_arn(&self.stage_arn).send().await {
            Ok(output) => Ok(output.web_acl().map(|acl| ObservedAssociation { web_acl_arn: acl.arn().to_owned() })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_waf_nonexistent_item_exception()) => Ok(None),
            Err(e) => anyhow::bail!("GetWebACLForResource: {}", describe(&e)),
        }
    }

    fn diff(&self, o: &ObservedAssociation) -> Diff {
        let mut diff = Diff::default();
        diff.field("web_acl", o.web_acl_arn.as_str(), self.web_acl_arn.as_str());
        diff
    }

    fn owned_by(&self, _: &ObservedAssociation, _: &str) -> bool {
        true // on the stack's own stage
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedAssociation> {
        for attempt in 0.. {
            match aws
                .wafv2
                .associate_web_acl()
                .web_acl_arn(&self.web_acl_arn)
                .resource_arn(&self.stage_arn)
                .send()
                .await
            {
                Ok(_) => break,
                Err(e)
                    if attempt < 10
                        && e.as_service_error().is_some_and(|s| s.is_waf_unavailable_entity_exception()) =>
                {
                    eprintln!("    web ACL not yet available to WAF; retrying in 3s");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                Err(e) => anyhow::bail!("AssociateWebACL: {}", describe(&e)),
            }
        }
        self.find(aws).await?.context("association missing right after creation")
    }

    async fn update(&self, aws: &Aws, _: &ObservedAssociation, _: &Diff) -> anyhow::Result<ObservedAssociation> {
        // Associating replaces the stage's current web ACL.
        self.create(aws).await
    }

    async fn delete(&self, aws: &Aws, _: &ObservedAssociation) -> anyhow::Result<()> {
        match aws.wafv2.disassociate_web_acl().resource_arn(&self.stage_arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_waf_nonexistent_item_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DisassociateWebACL: {}", describe(&e)),
        }
    }
}
