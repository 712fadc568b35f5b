//! ACM's DNS validation: a requested certificate stays PENDING_VALIDATION
//! until its validation CNAME is written through Route 53 (or the test says
//! someone made it elsewhere), then is issued a while later.

use std::time::Instant;

use serde_json::{Value, json};

use super::call::Call;
use super::{AwsLike, State, aws_time};
use crate::server::Recorded;

/// A requested certificate on its way to ISSUED.
#[derive(Debug, Clone)]
pub(super) struct PendingCertificate {
    /// The record ACM named for it (from the first DescribeCertificate).
    pub(super) record: Option<(String, String)>,
    /// When its record was written through Route 53.
    pub(super) record_written_at: Option<Instant>,
    /// Someone made its record outside Route 53 (the test says when).
    pub(super) made_elsewhere: bool,
}

impl AwsLike {
    /// ACM's DNS validation: remembers requested certificates and the
    /// records written through Route 53, and reports a certificate
    /// PENDING_VALIDATION until it would be issued.
    pub(super) fn dns_validation(
        &self,
        call: &Call<'_>,
        request: &Recorded,
        answer: &mut Value,
        state: &mut State,
        now: Instant,
    ) -> bool {
        if call.is("acm", "RequestCertificate")
            && let Some(arn) = answer["CertificateArn"].as_str()
        {
            let pending = PendingCertificate { record: None, record_written_at: None, made_elsewhere: false };
            state.pending_certificates.entry(arn.to_owned()).or_insert(pending);
            return false;
        }
        if call.service == "route53" && call.operation == "POST" && call.path.trim_end_matches('/').ends_with("/rrset")
        {
            for (action, name, kind, value) in route53_changes(&request.body) {
                if !(action == "CREATE" || action == "UPSERT") || kind != "CNAME" {
                    continue;
                }
                for pending in state.pending_certificates.values_mut() {
                    let written = |(n, v): &(String, String)| fqdn(n) == fqdn(&name) && fqdn(v) == fqdn(&value);
                    if pending.record.as_ref().is_some_and(written) {
                        pending.record_written_at.get_or_insert(now);
                    }
                }
            }
            return false;
        }
        let issued = |pending: &PendingCertificate| {
            let issue_after = self.behaviours.acm_issue_after.unwrap_or(aws_time::ACM_ISSUE);
            let by_route53 = pending.record_written_at.is_some_and(|at| now >= at + self.scaled(issue_after));
            by_route53 || pending.made_elsewhere
        };
        if call.is("acm", "DescribeCertificate") {
            let arn = call.body["CertificateArn"].as_str().unwrap_or_default();
            let Some(pending) = state.pending_certificates.get_mut(arn) else { return false };
            let options = answer["Certificate"]["DomainValidationOptions"].as_array_mut();
            if pending.record.is_none()
                && let Some(record) = options.as_ref().and_then(|o| o.first()).map(|o| &o["ResourceRecord"])
                && let (Some(name), Some(value)) = (record["Name"].as_str(), record["Value"].as_str())
            {
                pending.record = Some((name.to_owned(), value.to_owned()));
            }
            if issued(pending) {
                state.pending_certificates.remove(arn);
                return false;
            }
            answer["Certificate"]["Status"] = json!("PENDING_VALIDATION");
            answer["Certificate"].as_object_mut().map(|c| c.remove("IssuedAt"));
            for option in answer["Certificate"]["DomainValidationOptions"].as_array_mut().into_iter().flatten() {
                option["ValidationStatus"] = json!("PENDING_VALIDATION");
            }
            *state.counts.entry("acm_dns_validation").or_default() += 1;
            return true;
        }
        if call.is("acm", "ListCertificates") {
            let mut changed = false;
            for summary in answer["CertificateSummaryList"].as_array_mut().into_iter().flatten() {
                let arn = summary["CertificateArn"].as_str().unwrap_or_default();
                if state.pending_certificates.get(arn).is_some_and(|p| !issued(p)) {
                    summary["Status"] = json!("PENDING_VALIDATION");
                    changed = true;
                }
            }
            return changed;
        }
        false
    }
}

/// `Api.Example.com` → `api.example.com.`, as DNS compares names.
pub(super) fn fqdn(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') { name } else { format!("{name}.") }
}

/// The changes of a Route 53 ChangeResourceRecordSets request (XML):
/// (action, name, type, first value) of each.
pub(super) fn route53_changes(body: &str) -> Vec<(String, String, String, String)> {
    let element = |text: &str, tag: &str| -> String {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        text.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&close))
            .map(|(inner, _)| inner.trim().to_owned())
            .unwrap_or_default()
    };
    body.split("<Change>")
        .skip(1)
        .map(|change| {
            let value = element(&element(change, "ResourceRecord"), "Value");
            (element(change, "Action"), element(change, "Name"), element(change, "Type"), value)
        })
        .collect()
}
