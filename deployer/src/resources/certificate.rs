//! The ACM certificate of the custom domain: requested with DNS validation
//! (and tagged), or given by ARN (then only checked, never created or
//! deleted). ACM keeps a requested certificate PENDING_VALIDATION until the
//! CNAME record it names exists: creating one waits only until ACM names
//! that record (`validation_name`, `validation_value`: what
//! `validation_record` writes when the stack has a hosted zone); waiting for
//! ISSUED is `certificate_validation`'s. `plan`, `diff` and `output` show
//! the record while the certificate waits for it.
//!
//! Among the stack's certificates for a domain, an ISSUED one is preferred;
//! the others are the stack's leftovers and are deleted. One that expired,
//! was revoked or was never validated in time (VALIDATION_TIMED_OUT) is
//! never the domain's: a new one is requested, the domain is pointed at it,
//! and only then is the old one deleted (ACM refuses to delete a certificate
//! a domain still uses, however expired). One that FAILED stays the
//! domain's and blocks the run, its `FailureReason` shown: ACM fails a
//! request for a reason a new request meets again (a CAA record naming
//! another CA, a domain it may not issue for), so none is made until someone
//! fixes the cause and deletes it.
//!
//! RequestCertificate carries an idempotency token, new for every create: the
//! SDK's second attempt after a lost answer gets the same certificate back.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_acm::types::{CertificateSummary, Tag, ValidationMethod};
use serde::{Deserialize, Serialize};

use super::account_domains;
use super::kind::{Context, Diff, Found, HOSTED_ZONE_TAG, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs};
use crate::retry::{self, retry};
use crate::stack::CertificateSpec;

/// How long ACM may take to name the DNS record of a new certificate.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(120);

/// States a new request replaces.
const TERMINAL: &[&str] = &["VALIDATION_TIMED_OUT", "EXPIRED", "REVOKED"];

pub struct Certificate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub domain: String,
    /// A certificate given by ARN: checked, never created.
    pub existing_arn: Option<String>,
    /// The public ACM certificate API Gateway needs beside an imported or
    /// private one (`domain.ownership_verification_certificate_arn`).
    #[serde(default)]
    pub ownership_verification: Option<String>,
    /// The hosted zone its validation record is written in, if any.
    #[serde(default)]
    pub hosted_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub arn: String,
    pub domain: String,
    pub status: String,
    /// ACM's `FailureReason` of a FAILED certificate (`CAA_ERROR`, …).
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// `AMAZON_ISSUED`, `IMPORTED` or `PRIVATE`.
    pub kind: String,
    /// The DNS records ACM waits for: (name, type, value).
    pub validation_records: Vec<(String, String, String)>,
    pub in_use_by: Vec<String>,
    /// The hosted zone its validation record was written in (a tag).
    #[serde(default)]
    pub hosted_zone: Option<String>,
}

pub fn address(domain: &str) -> Address {
    Address::new(Certificate::NAME, domain)
}

/// Reading certificates and their tags (to tell the stack's apart).
pub fn read(grants: &Grants<'_>) -> Statement {
    let certificates =
        vec![format!("arn:{}:acm:{}:{}:certificate/*", grants.arns.partition, grants.arns.region, grants.arns.account)];
    Statement::allow(
        "CertificateRead",
        Access::Read,
        &["acm:DescribeCertificate", "acm:ListTagsForCertificate"],
        certificates,
    )
}

pub(super) async fn describe(aws: &Aws, arn: &str) -> anyhow::Result<Option<State>> {
    let Some(output) = aws.acm.describe_certificate().certificate_arn(arn).send().await.found("DescribeCertificate")?
    else {
        return Ok(None);
    };
    let c = output.certificate.context("DescribeCertificate answered without a certificate")?;
    Ok(Some(State {
        arn: arn.to_owned(),
        domain: c.domain_name().unwrap_or_default().to_owned(),
        status: c.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        failure_reason: c.failure_reason().map(|r| r.as_str().to_owned()),
        kind: c.r#type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
        validation_records: c
            .domain_validation_options()
            .iter()
            .filter_map(|o| o.resource_record())
            .map(|r| (r.name().to_owned(), r.r#type().as_str().to_owned(), r.value().to_owned()))
            .collect(),
        in_use_by: c.in_use_by().to_vec(),
        hosted_zone: None,
    }))
}

/// The certificate's owner tag and hosted-zone tag.
async fn tags(aws: &Aws, arn: &str) -> anyhow::Result<(Option<String>, Option<String>)> {
    let tags = aws.acm.list_tags_for_certificate().certificate_arn(arn).send().await.aws("ListTagsForCertificate")?;
    let tag = |key: &str| tags.tags().iter().find(|t| t.key() == key).and_then(|t| t.value()).map(str::to_owned);
    Ok((tag(OWNER_TAG), tag(HOSTED_ZONE_TAG)))
}

/// Every certificate summary of the region (ACM pages them).
async fn list(aws: &Aws) -> anyhow::Result<Vec<CertificateSummary>> {
    aws.acm
        .list_certificates()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("ListCertificates")
}

/// The regions whose certificates are checked for a validation record the
/// stack would delete: its own, and us-east-1, where CloudFront's are.
/// ACM has no account-wide list; a certificate for the same name in a
/// third region is not seen (docs/deployer.md says so).
pub fn sharing_regions(aws: &Aws) -> Vec<String> {
    let mut regions = vec![aws.region.clone()];
    if aws.region != "us-east-1" {
        regions.push("us-east-1".to_owned());
    }
    regions
}

/// The certificates, other than `own`, that ACM validates and renews by the
/// same DNS record as `domain` (the record is per account and name, in every
/// region: `*.name` shares `name`'s), as `ARN (STATUS)`: Amazon-issued
/// ones that are issued or waiting for validation, in [`sharing_regions`].
pub async fn sharing_validation_record(aws: &Aws, domain: &str, own: &[String]) -> anyhow::Result<Vec<String>> {
    use aws_sdk_acm::types::{CertificateStatus, CertificateType, Filters, KeyAlgorithm};
    let base = |name: &str| name.trim_start_matches("*.").trim_end_matches('.').to_ascii_lowercase();
    let domain = base(domain);
    // ListCertificates lists RSA 2048 certificates only unless asked for every key type.
    let every_key = Filters::builder()
        .set_key_types(Some(KeyAlgorithm::values().iter().map(|k| KeyAlgorithm::from(*k)).collect()))
        .build();
    let mut sharing = Vec::new();
    for region in sharing_regions(aws) {
        let acm = aws_sdk_acm::Client::from_conf(
            aws.acm.config().to_builder().region(aws_config::Region::new(region.clone())).build(),
        );
        let summaries: Vec<CertificateSummary> = acm
            .list_certificates()
            .certificate_statuses(CertificateStatus::Issued)
            .certificate_statuses(CertificateStatus::PendingValidation)
            .includes(every_key.clone())
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws(&format!("ListCertificates ({region})"))?;
        for summary in summaries {
            let arn = summary.certificate_arn().unwrap_or_default();
            let names = summary
                .domain_name()
                .into_iter()
                .chain(summary.subject_alternative_name_summaries().iter().map(String::as_str));
            let amazon_issued = summary.r#type().is_none_or(|t| *t == CertificateType::AmazonIssued);
            if amazon_issued && !own.iter().any(|o| o == arn) && names.into_iter().any(|n| base(n) == domain) {
                let status = summary.status().map(|s| s.as_str()).unwrap_or("unknown status");
                sharing.push(format!("{arn} ({status})"));
            }
        }
    }
    Ok(sharing)
}

/// The stack's certificates for `domain`, best first (ISSUED, then pending,
/// then the rest).
async fn owned_for(aws: &Aws, stack: &str, domain: &str) -> anyhow::Result<Vec<State>> {
    owned_among(aws, stack, domain, &list(aws).await?).await
}

async fn owned_among(
    aws: &Aws,
    stack: &str,
    domain: &str,
    summaries: &[CertificateSummary],
) -> anyhow::Result<Vec<State>> {
    // Each candidate's tags and details at the same time, all candidates at once.
    let candidates = summaries.iter().filter(|s| s.domain_name() == Some(domain)).filter_map(|s| s.certificate_arn());
    let reads = candidates.map(|arn| async move { tokio::try_join!(tags(aws, arn), describe(aws, arn)) });
    let mut found: Vec<State> = futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .filter(|((owner, _), _)| owner.as_deref() == Some(stack))
        .filter_map(|((_, hosted_zone), state)| state.map(|state| State { hosted_zone, ..state }))
        .collect();
    best_first(&mut found);
    Ok(found)
}

/// Orders the stack's certificates for one domain so that the first is the one
/// to use: ISSUED, then pending, then anything else, terminal states last (they
/// are replaced, never used). Ties break on the ARN so every run picks the same.
fn best_first(certificates: &mut [State]) {
    let rank = |s: &State| match s.status.as_str() {
        "ISSUED" => 0,
        "PENDING_VALIDATION" => 1,
        "FAILED" => 2,
        status if TERMINAL.contains(&status) => 3,
        _ => 2,
    };
    certificates.sort_by_key(|s| (rank(s), s.arn.clone()));
}

/// The stack's certificates for `domain` (best first), by address name: the
/// best is the domain's unless it is in a terminal state; every other one is
/// a leftover, `DOMAIN (ARN)`, to be deleted once nothing uses it.
fn named(domain: &str, best_first: Vec<State>) -> Vec<(String, State)> {
    best_first
        .into_iter()
        .enumerate()
        .map(|(i, state)| {
            let usable = i == 0 && !TERMINAL.contains(&state.status.as_str());
            (if usable { domain.to_owned() } else { format!("{domain} ({})", state.arn) }, state)
        })
        .collect()
}

/// Why a FAILED certificate blocks the run, and what to do.
fn failed(state: &State) -> String {
    let reason = state.failure_reason.as_deref().unwrap_or("no reason given");
    let cause = match reason {
        "CAA_ERROR" => ": a CAA record of the domain or a parent names another CA; add one for amazon.com",
        "DOMAIN_NOT_ALLOWED" | "INVALID_PUBLIC_DOMAIN" => ": ACM does not issue public certificates for this name",
        "ADDITIONAL_VERIFICATION_REQUIRED" => ": ACM wants more information; open a case with AWS Support",
        _ => "",
    };
    format!(
        "certificate {} for {} FAILED ({reason}{cause}). A new request would fail the same way, so none is made: \
         fix the cause, delete it (aws acm delete-certificate --certificate-arn {}) and run again",
        state.arn, state.domain, state.arn
    )
}

/// Waits until ACM names the DNS record it validates a new certificate by
/// (it takes a few seconds to); the certificate's state then.
async fn wait_for_records(aws: &Aws, arn: &str) -> anyhow::Result<State> {
    let waiting_for = format!("ACM to name the DNS record of certificate {arn}");
    retry::wait_until(&waiting_for, RECORDS_TIMEOUT, || async {
        let state = describe(aws, arn).await?.with_context(|| format!("certificate {arn} vanished"))?;
        Ok((!state.validation_records.is_empty() || state.status == "ISSUED").then_some(state))
    })
    .await
}

/// The CNAME record ACM validates the certificate by: (name, type, value).
pub fn validation_cname(state: &State) -> Option<&(String, String, String)> {
    state.validation_records.iter().find(|(_, kind, _)| kind == "CNAME")
}

/// The tags a requested certificate is created with: the owner's, and the
/// hosted zone its record is written in. Both travel in RequestCertificate
/// itself, so a run killed right after it still finds (and cleans up) both.
fn spec_tags(spec: &Spec) -> anyhow::Result<Vec<Tag>> {
    let mut tags = vec![Tag::builder().key(OWNER_TAG).value(&spec.stack).build()?];
    if let Some(zone) = &spec.hosted_zone {
        tags.push(Tag::builder().key(HOSTED_ZONE_TAG).value(zone).build()?);
    }
    Ok(tags)
}

/// 32 random hex digits (ACM takes at most 32 word characters).
fn idempotency_token() -> String {
    let random = || (retry::jitter() * u64::MAX as f64) as u64;
    format!("{:016x}{:016x}", random(), random() ^ u64::from(std::process::id()))
}

/// Waits until ACM no longer lists anything in the certificate's `InUseBy`
/// (it keeps a deleted domain there for minutes).
async fn wait_unused(aws: &Aws, arn: &str) -> anyhow::Result<()> {
    let waiting_for = format!("ACM to see certificate {arn} no longer in use");
    retry::wait_until(&waiting_for, retry::ACM_IN_USE.budget, || async {
        Ok(match describe(aws, arn).await? {
            Some(state) if !state.in_use_by.is_empty() => None,
            _ => Some(()),
        })
    })
    .await
}

super::kind::fields! {
    HostedZoneTag = "hosted_zone_tag",
}

impl Kind for Certificate {
    const NAME: &'static str = "certificate";
    /// No read back: the create waits for ACM to name the validation records, and returns that read.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(context
            .stack
            .domain
            .iter()
            .map(|domain| Spec {
                stack: context.stack.name.clone(),
                domain: domain.name.clone(),
                existing_arn: match &domain.certificate {
                    CertificateSpec::Existing(arn) => Some(arn.clone()),
                    CertificateSpec::Request => None,
                },
                ownership_verification: domain.ownership_verification_certificate_arn.clone(),
                // Only a requested certificate's record is the stack's to write.
                hosted_zone: match &domain.certificate {
                    CertificateSpec::Existing(_) => None,
                    CertificateSpec::Request => domain.hosted_zone_id.clone(),
                },
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        spec.domain.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        if spec.existing_arn.is_none() {
            // (Pending validation is `certificate_validation`'s to wait out;
            // a terminal certificate is never the domain's.)
            diff.field(Field::HostedZoneTag, state.hosted_zone.as_deref(), spec.hosted_zone.as_deref());
        }
        diff
    }

    fn blockers(spec: Option<&Spec>, state: &State) -> Vec<String> {
        if spec.is_some_and(|s| s.existing_arn.is_none()) && state.status == "FAILED" {
            return vec![failed(state)];
        }
        let Some(spec) = spec.filter(|s| s.existing_arn.is_some()) else { return Vec::new() };
        let mut blockers = Vec::new();
        if state.status != "ISSUED" {
            blockers.push(format!("certificate {} is {}, not ISSUED", state.arn, state.status));
        }
        // API Gateway refuses mutual TLS with such a certificate unless it
        // is shown a public ACM certificate for the same domain.
        if ["IMPORTED", "PRIVATE"].contains(&state.kind.as_str()) && spec.ownership_verification.is_none() {
            blockers.push(format!(
                "certificate {} is {}: API Gateway needs domain.ownership_verification_certificate_arn (an \
                 ACM-issued public certificate for {}) to use it with mutual TLS",
                state.arn, state.kind, spec.domain
            ));
        }
        blockers
    }

    fn outputs(state: &State) -> Outputs {
        let mut outputs: Outputs = [("arn".to_owned(), state.arn.clone())].into();
        if let Some((name, _, value)) = validation_cname(state) {
            outputs.insert("validation_name".to_owned(), name.clone());
            outputs.insert("validation_value".to_owned(), value.clone());
        }
        outputs
    }

    /// Certificates are read to find the stack's (by tag), and changed or
    /// deleted only while they carry its tag. A request must be for the
    /// stack's domain and tag the certificate as the stack's; ACM authorises
    /// the tags of a request as `acm:AddTagsToCertificate` with the
    /// request's domain names, which no tagging of an existing certificate
    /// has, so that statement cannot mark another's certificate as ours.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let certificates = vec![format!(
            "arn:{}:acm:{}:{}:certificate/*",
            grants.arns.partition, grants.arns.region, grants.arns.account
        )];
        let mut statements = vec![
            Statement::allow("CertificateList", Access::Read, &["acm:ListCertificates"], vec!["*".into()]),
            read(grants),
            grants
                .on_stack_resources(Statement::allow(
                    "StackCertificateZoneTag",
                    Access::Write,
                    &["acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate"],
                    certificates.clone(),
                ))
                .when("ForAllValues:StringEquals", "aws:TagKeys", serde_json::json!([HOSTED_ZONE_TAG])),
            grants.on_stack_resources(Statement::allow(
                "StackCertificateDelete",
                Access::Write,
                &["acm:DeleteCertificate"],
                certificates.clone(),
            )),
        ];
        if let Some(domain) = grants.stack.domain.as_ref().filter(|d| d.certificate == CertificateSpec::Request) {
            let for_the_domain = |statement: Statement| {
                grants
                    .tagged_as_stack(statement, &[OWNER_TAG, HOSTED_ZONE_TAG])
                    .when("ForAllValues:StringEquals", "acm:DomainNames", serde_json::json!([domain.name]))
                    .when("Null", "acm:DomainNames", "false")
            };
            statements.push(for_the_domain(Statement::allow(
                "CertificateRequest",
                Access::Write,
                &["acm:RequestCertificate"],
                vec!["*".into()],
            )));
            statements.push(for_the_domain(Statement::allow(
                "CertificateTagOnRequest",
                Access::Write,
                &["acm:AddTagsToCertificate"],
                certificates,
            )));
        }
        statements
    }
}

impl KindIo for Certificate {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let mut found = Vec::new();
        let mut requested: Vec<&str> = Vec::new();
        for spec in &scope.desired {
            match &spec.existing_arn {
                Some(arn) => {
                    let state =
                        describe(scope.aws, arn).await?.with_context(|| format!("certificate {arn} does not exist"))?;
                    found.push(Found::new(spec.domain.clone(), Ownership::Adopted, state));
                }
                None => requested.push(&spec.domain),
            }
        }
        // And the certificates of the stack's domains that stack.yaml no longer
        // declares. The domains are listed here rather than observed first
        // (OBSERVED_UNDER): one more call, but not one more round for every run.
        let (summaries, owned_domains) =
            tokio::try_join!(list(scope.aws), account_domains::owned(scope.aws, scope.shared, scope.stack))?;
        let undeclared: Vec<String> = owned_domains
            .into_iter()
            .map(|(name, _)| name)
            .filter(|d| !scope.desired.iter().any(|s| s.domain == *d))
            .collect();
        requested.extend(undeclared.iter().map(String::as_str));
        let reads = requested.iter().map(|domain| owned_among(scope.aws, scope.stack, domain, &summaries));
        for (domain, states) in requested.iter().zip(futures::future::try_join_all(reads).await?) {
            found.extend(
                named(domain, states).into_iter().map(|(name, state)| Found::new(name, Ownership::Owned, state)),
            );
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        if let Some(arn) = &spec.existing_arn {
            return Ok(describe(aws, arn).await?.map(|s| Found::new(spec.domain.clone(), Ownership::Adopted, s)));
        }
        let certificates = owned_for(aws, &spec.stack, &spec.domain).await?;
        let best = named(&spec.domain, certificates).into_iter().find(|(name, _)| *name == spec.domain);
        Ok(best.map(|(name, state)| Found::new(name, Ownership::Owned, state)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        anyhow::ensure!(spec.existing_arn.is_none(), "certificate {} does not exist", spec.domain);
        let output = aws
            .acm
            .request_certificate()
            .domain_name(&spec.domain)
            .validation_method(ValidationMethod::Dns)
            // A token of this create only: ACM answers a token reused within
            // the hour with the earlier certificate, even one a teardown
            // deleted, so it is never derived from the stack. The owner tag
            // travels in this same request, so after an interruption the next
            // run finds the certificate by its tag.
            .idempotency_token(idempotency_token())
            .set_tags(Some(spec_tags(spec)?))
            .send()
            .await
            .aws("RequestCertificate")?;
        let arn = output.certificate_arn().context("RequestCertificate answered without an ARN")?;
        Ok(State { hosted_zone: spec.hosted_zone.clone(), ..wait_for_records(aws, arn).await? })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        if diff.has(Field::HostedZoneTag) {
            match &spec.hosted_zone {
                Some(zone) => {
                    let tag = Tag::builder().key(HOSTED_ZONE_TAG).value(zone).build()?;
                    aws.acm
                        .add_tags_to_certificate()
                        .certificate_arn(&state.arn)
                        .tags(tag)
                        .send()
                        .await
                        .aws("AddTagsToCertificate")?;
                }
                None => {
                    let tag = Tag::builder().key(HOSTED_ZONE_TAG).build()?;
                    aws.acm
                        .remove_tags_from_certificate()
                        .certificate_arn(&state.arn)
                        .tags(tag)
                        .send()
                        .await
                        .aws("RemoveTagsFromCertificate")?;
                }
            }
        }
        let now = describe(aws, &state.arn).await?.with_context(|| format!("certificate {} vanished", state.arn))?;
        Ok(State { hosted_zone: spec.hosted_zone.clone(), ..now })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        // The domain that used it was deleted before (the graph's order), but
        // ACM lets go of it only minutes later.
        wait_unused(aws, &state.arn).await?;
        retry(&retry::ACM_IN_USE, || aws.acm.delete_certificate().certificate_arn(&state.arn).send())
            .await
            .gone("DeleteCertificate")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate the stack requests (none given by ARN).
    fn requested() -> Spec {
        Spec {
            stack: "s".into(),
            domain: "api.example.com".into(),
            existing_arn: None,
            ownership_verification: None,
            hosted_zone: None,
        }
    }

    fn state(status: &str) -> State {
        State {
            arn: "arn:aws:acm:eu-west-1:1:certificate/c".into(),
            domain: "api.example.com".into(),
            status: status.into(),
            kind: "AMAZON_ISSUED".into(),
            failure_reason: None,
            validation_records: Vec::new(),
            in_use_by: Vec::new(),
            hosted_zone: None,
        }
    }

    #[test]
    fn an_issued_certificate_is_preferred_and_terminal_ones_come_last() {
        let with = |arn: &str, status: &str| State { arn: arn.into(), ..state(status) };
        let mut found = vec![
            with("arn-a", "EXPIRED"),
            with("arn-b", "PENDING_VALIDATION"),
            with("arn-c", "FAILED"),
            with("arn-d", "ISSUED"),
            with("arn-e", "INACTIVE"),
        ];
        best_first(&mut found);
        let order: Vec<&str> = found.iter().map(|s| s.arn.as_str()).collect();
        assert_eq!(order, ["arn-d", "arn-b", "arn-c", "arn-e", "arn-a"]);
    }

    #[test]
    fn a_certificate_in_a_terminal_state_is_never_the_domains_and_goes_once_a_new_one_is_used() {
        let with = |arn: &str, status: &str| State { arn: arn.into(), ..state(status) };
        for terminal in TERMINAL {
            let names: Vec<String> =
                named("api.example.com", vec![with("arn-a", terminal)]).into_iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["api.example.com (arn-a)"], "{terminal}: a leftover, so a new one is requested");
        }
        let names: Vec<String> = named("api.example.com", vec![with("arn-b", "ISSUED"), with("arn-a", "EXPIRED")])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["api.example.com", "api.example.com (arn-a)"]);
        // FAILED is not replaced: it stays the domain's and blocks, saying why.
        let failed = State { failure_reason: Some("CAA_ERROR".into()), ..with("arn-f", "FAILED") };
        let names: Vec<String> = named("api.example.com", vec![failed.clone()]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["api.example.com"]);
        let requested = requested();
        let blockers = Certificate::blockers(Some(&requested), &failed);
        assert!(blockers.len() == 1 && blockers[0].contains("FAILED (CAA_ERROR: a CAA record"), "{blockers:?}");
        assert!(blockers[0].contains("delete-certificate --certificate-arn arn-f"), "{blockers:?}");
        assert!(Certificate::blockers(Some(&requested), &with("arn-g", "ISSUED")).is_empty());
        let token = idempotency_token();
        assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert_ne!(token, idempotency_token());
    }

    #[test]
    fn diff() {
        let requested = requested();
        assert!(Certificate::diff(&requested, &state("ISSUED")).is_empty());
        assert!(
            Certificate::diff(&requested, &state("PENDING_VALIDATION")).is_empty(),
            "validation is certificate_validation's"
        );
        let in_zone = Spec { hosted_zone: Some("Z1".into()), ..requested.clone() };
        let tagging = Certificate::diff(&in_zone, &state("ISSUED"));
        assert!(tagging.has(Field::HostedZoneTag) && !tagging.replace, "the zone is a tag, changed in place");
        let existing = Spec { existing_arn: Some("arn:aws:acm:eu-west-1:1:certificate/c".into()), ..requested };
        assert!(Certificate::diff(&existing, &state("PENDING_VALIDATION")).is_empty(), "never changed");
        assert_eq!(Certificate::blockers(Some(&existing), &state("PENDING_VALIDATION")).len(), 1);
        assert!(Certificate::blockers(Some(&existing), &state("ISSUED")).is_empty());
    }

    #[test]
    fn an_imported_or_private_certificate_needs_an_ownership_verification_certificate() {
        let given = Spec {
            stack: "s".into(),
            domain: "api.example.com".into(),
            existing_arn: Some("arn:aws:acm:eu-west-1:123456789012:certificate/c".into()),
            ownership_verification: None,
            hosted_zone: None,
        };
        for kind in ["IMPORTED", "PRIVATE"] {
            let state = State { kind: kind.into(), ..state("ISSUED") };
            let blockers = Certificate::blockers(Some(&given), &state);
            assert_eq!(blockers.len(), 1, "{kind}");
            assert!(blockers[0].contains("domain.ownership_verification_certificate_arn"), "{}", blockers[0]);
            let verified = Spec {
                ownership_verification: Some("arn:aws:acm:eu-west-1:123456789012:certificate/p".into()),
                ..given.clone()
            };
            assert!(Certificate::blockers(Some(&verified), &state).is_empty(), "{kind} with verification");
        }
        assert!(Certificate::blockers(Some(&given), &state("ISSUED")).is_empty(), "ACM-issued needs none");
    }
}
