//! The custom domain: regional endpoint, TLS 1.2, and mutual TLS against the
//! truststore in S3 at a given object version. A new truststore version is
//! an in-place update of `truststoreVersion`.
//!
//! The truststore version the deployer last set is also kept in a tag. AWS
//! always reports `mutualTlsAuthentication` for a domain created with it,
//! and that answer wins; the tag is only read when the answer lacks the
//! field (moto 5.2.5 drops it), so such a stand-in still converges.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::{
    EndpointConfiguration, EndpointType, MutualTlsAuthenticationInput, Op, PatchOperation, SecurityPolicy,
};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::error::describe;

const TRUSTSTORE_VERSION_TAG: &str = "oauth-gateway:truststore-version";

pub struct DomainName {
    pub stack: String,
    pub name: String,
    pub certificate_arn: String,
    pub security_policy: String,
    pub truststore_uri: String,
    pub truststore_version: String,
}

#[derive(Debug)]
pub struct ObservedDomain {
    pub certificate_arn: String,
    pub security_policy: String,
    pub regional: bool,
    pub truststore_uri: Option<String>,
    pub truststore_version: Option<String>,
    pub owner: Option<String>,
}

impl Resource for DomainName {
    const KIND: &'static str = "domain_name";
    type Observed = ObservedDomain;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedDomain>> {
        let domain = match aws.apigateway.get_domain_name().domain_name(&self.name).send().await {
            Ok(domain) => domain,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        };
        let tags = domain.tags();
        let tagged_version = tags.and_then(|t| t.get(TRUSTSTORE_VERSION_TAG)).cloned();
        let mtls = domain.mutual_tls_authentication();
        Ok(Some(ObservedDomain {
            certificate_arn: domain.regional_certificate_arn().unwrap_or_default().to_owned(),
            security_policy: domain.security_policy().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            regional: domain.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
            truststore_uri: match mtls {
                Some(m) => m.truststore_uri().map(str::to_owned),
                None => tagged_version.as_ref().map(|_| self.truststore_uri.clone()),
            },
            truststore_version: match mtls {
                Some(m) => m.truststore_version().map(str::to_owned),
                None => tagged_version,
            },
            owner: tags.and_then(|t| t.get(OWNER_TAG)).cloned(),
        }))
    }

    fn diff(&self, o: &ObservedDomain) -> Diff {
        let mut diff = Diff::default();
        diff.field("regional_certificate_arn", o.certificate_arn.as_str(), self.certificate_arn.as_str());
        diff.field("security_policy", o.security_policy.as_str(), self.security_policy.as_str());
        diff.field("truststore_uri", o.truststore_uri.as_deref(), Some(self.truststore_uri.as_str()));
        diff.field("truststore_version", o.truststore_version.as_deref(), Some(self.truststore_version.as_str()));
        // The endpoint type cannot be changed to REGIONAL in place by us.
        diff.field("endpoint_type", if o.regional { "REGIONAL" } else { "EDGE" }, "REGIONAL");
        diff.replace = !o.regional;
        diff
    }

    fn owned_by(&self, o: &ObservedDomain, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedDomain> {
        let tags: HashMap<String, String> = [
            (OWNER_TAG.to_owned(), self.stack.clone()),
            (TRUSTSTORE_VERSION_TAG.to_owned(), self.truststore_version.clone()),
        ]
        .into();
        aws.apigateway
            .create_domain_name()
            .domain_name(&self.name)
            .regional_certificate_arn(&self.certificate_arn)
            .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
            .security_policy(SecurityPolicy::from(self.security_policy.as_str()))
            .mutual_tls_authentication(
                MutualTlsAuthenticationInput::builder()
                    .truststore_uri(&self.truststore_uri)
                    .truststore_version(&self.truststore_version)
                    .build(),
            )
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateDomainName: {}", describe(&e)))?;
        self.find(aws).await?.context("domain missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedDomain, _: &Diff) -> anyhow::Result<ObservedDomain> {
        let replace =
            |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        let mut operations = Vec::new();
        if o.certificate_arn != self.certificate_arn {
            operations.push(replace("/regionalCertificateArn", &self.certificate_arn));
        }
        if o.security_policy != self.security_policy {
            operations.push(replace("/securityPolicy", &self.security_policy));
        }
        if o.truststore_uri.as_deref() != Some(self.truststore_uri.as_str()) {
            operations.push(replace("/mutualTlsAuthentication/truststoreUri", &self.truststore_uri));
        }
        if o.truststore_version.as_deref() != Some(self.truststore_version.as_str()) {
            operations.push(replace("/mutualTlsAuthentication/truststoreVersion", &self.truststore_version));
        }
        aws.apigateway
            .update_domain_name()
            .domain_name(&self.name)
            .set_patch_operations(Some(operations))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("UpdateDomainName: {}", describe(&e)))?;
        let arn = format!("arn:aws:apigateway:{}::/domainnames/{}", aws.region, self.name);
        aws.apigateway
            .tag_resource()
            .resource_arn(arn)
            .tags(TRUSTSTORE_VERSION_TAG, &self.truststore_version)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("TagResource: {}", describe(&e)))?;
        self.find(aws).await?.context("domain vanished during update")
    }

    async fn delete(&self, aws: &Aws, _: &ObservedDomain) -> anyhow::Result<()> {
        match aws.apigateway.delete_domain_name().domain_name(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DeleteDomainName: {}", describe(&e)),
        }
    }
}
