//! The ACM certificate of the custom domain, requested with DNS validation.
//! ACM keeps it PENDING_VALIDATION until the CNAME records it names exist,
//! so creation prints those records and waits (with progress, bounded) for
//! ISSUED. A certificate given by ARN is only checked, never created.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct Certificate {
    pub stack: String,
    pub domain: String,
    /// How long to wait for ISSUED.
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct ObservedCertificate {
    pub arn: String,
    pub status: String,
    pub owner: Option<String>,
}

/// Checks a certificate given by ARN (never created or deleted by the stack).
pub async fn require_issued(aws: &Aws, arn: &str) -> anyhow::Result<()> {
    let output = aws
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading certificate {arn}: {}", describe(&e)))?;
    let status = output.certificate().and_then(|c| c.status());
    anyhow::ensure!(
        status == Some(&CertificateStatus::Issued),
        "certificate {arn} is {}, not ISSUED",
        status.map_or("unknown", |s| s.as_str())
    );
    Ok(())
}

impl Certificate {
    async fn describe(&self, aws: &Aws, arn: &str) -> anyhow::Result<ObservedCertificate> {
        let certificate = aws
            .acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("DescribeCertificate: {}", describe(&e)))?
            .certificate
            .context("DescribeCertificate answered without a certificate")?;
        let tags = aws
            .acm
            .list_tags_for_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ListTagsForCertificate: {}", describe(&e)))?;
        Ok(ObservedCertificate {
            arn: arn.to_owned(),
            status: certificate.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            owner: tags.tags().iter().find(|t| t.key() == OWNER_TAG).and_then(|t| t.value()).map(str::to_owned),
        })
    }

    async fn wait_issued(&self, aws: &Aws, arn: &str) -> anyhow::Result<ObservedCertificate> {
        let started = Instant::now();
        let mut shown_records = false;
        loop {
            let output = aws
                .acm
                .describe_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("DescribeCertificate: {}", describe(&e)))?;
            let certificate = output.certificate.context("no certificate in answer")?;
            match certificate.status() {
                Some(CertificateStatus::Issued) => return self.describe(aws, arn).await,
                Some(CertificateStatus::PendingValidation) | None => {}
                Some(other) => anyhow::bail!(
                    "certificate {arn} is {}: {}",
                    other.as_str(),
                    certificate.failure_reason().map(|r| r.as_str()).unwrap_or("")
                ),
            }
            if !shown_records {
                let records: Vec<String> = certificate
                    .domain_validation_options()
                    .iter()
                    .filter_map(|o| o.resource_record())
                    .map(|r| format!("      {} {} {}", r.name(), r.r#type().as_str(), r.value()))
                    .collect();
                if !records.is_empty() {
                    eprintln!(
                        "    ACM validates {} by DNS; these records must exist:\n{}",
                        self.domain,
                        records.join("\n")
                    );
                    shown_records = true;
                }
            }
            anyhow::ensure!(
                started.elapsed() < self.timeout,
                "certificate {arn} for {} still PENDING_VALIDATION after {}s: create the DNS records above, then run apply again",
                self.domain,
                self.timeout.as_secs()
            );
            eprintln!("    waiting for the certificate to be issued ({}s)...", started.elapsed().as_secs());
            tokio::time::sleep(Duration::from_secs(10).min(self.timeout)).await;
        }
    }
}

impl Resource for Certificate {
    const KIND: &'static str = "acm_certificate";
    type Observed = ObservedCertificate;

    fn id(&self) -> String {
        self.domain.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedCertificate>> {
        let mut next = None;
        loop {
            let page = aws
                .acm
                .list_certificates()
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("ListCertificates: {}", describe(&e)))?;
            for summary in page.certificate_summary_list() {
                if summary.domain_name() == Some(self.domain.as_str())
                    && let Some(arn) = summary.certificate_arn()
                {
                    let observed = self.describe(aws, arn).await?;
                    if observed.owner.as_deref() == Some(self.stack.as_str()) {
                        return Ok(Some(observed));
                    }
                }
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(None),
            }
        }
    }

    fn diff(&self, o: &ObservedCertificate) -> Diff {
        let mut diff = Diff::default();
        diff.field("status", o.status.as_str(), "ISSUED");
        diff
    }

    fn owned_by(&self, o: &ObservedCertificate, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedCertificate> {
        let output = aws
            .acm
            .request_certificate()
            .domain_name(&self.domain)
            .validation_method(ValidationMethod::Dns)
            // No idempotency token: ACM would answer a token reused within the
            // hour with the earlier certificate, even one a teardown deleted.
            // The owner tag travels in this same request, so after an
            // interruption the next run finds the certificate by its tag.
            .tags(Tag::builder().key(OWNER_TAG).value(&self.stack).build()?)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("RequestCertificate: {}", describe(&e)))?;
        let arn = output.certificate_arn().context("RequestCertificate answered without an ARN")?.to_owned();
        self.wait_issued(aws, &arn).await
    }

    async fn update(&self, aws: &Aws, o: &ObservedCertificate, _: &Diff) -> anyhow::Result<ObservedCertificate> {
        // Nothing to change: pending validation is waited out.
        self.wait_issued(aws, &o.arn).await
    }

    async fn delete(&self, aws: &Aws, o: &ObservedCertificate) -> anyhow::Result<()> {
        match aws.acm.delete_certificate().certificate_arn(&o.arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DeleteCertificate: {}", describe(&e)),
        }
    }
}
