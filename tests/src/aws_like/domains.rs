//! Custom domains as AWS reports them and moto does not keep them: their
//! mutual TLS fields, the status while a change is in progress, and the
//! truststore warnings.

use std::time::Instant;

use serde_json::{Value, json};

use super::State;
use super::call::{Call, url_decode};

#[derive(Debug, Clone, Default)]
pub(super) struct Domain {
    pub(super) certificate_arn: String,
    pub(super) truststore_uri: Option<String>,
    pub(super) truststore_version: Option<String>,
    pub(super) ownership_verification: Option<String>,
    /// Status while a change is in progress, until when, and whether a read
    /// has reported it yet (it always is once: on a loaded machine the scaled
    /// window can pass before the first read).
    pub(super) pending: Option<(&'static str, Instant, bool)>,
}

/// Keeps the mutual TLS fields of the domains created through this proxy
/// and puts them in every answer that shows those domains.
/// `pending`: the status a new domain reports for a while (with
/// `domain_updating` on).
pub(super) fn fill_in_domains(
    call: &Call<'_>,
    ok: bool,
    answer: &mut Value,
    state: &mut State,
    pending: Option<(&'static str, Instant, bool)>,
    now: Instant,
) -> bool {
    if ok && call.rest("POST", &["domainnames"]).is_some() {
        let body = &call.body;
        let name = body["domainName"].as_str().unwrap_or_default().to_owned();
        state.domains.insert(
            name,
            Domain {
                certificate_arn: body["regionalCertificateArn"].as_str().unwrap_or_default().to_owned(),
                truststore_uri: body["mutualTlsAuthentication"]["truststoreUri"].as_str().map(str::to_owned),
                truststore_version: body["mutualTlsAuthentication"]["truststoreVersion"].as_str().map(str::to_owned),
                ownership_verification: body["ownershipVerificationCertificateArn"].as_str().map(str::to_owned),
                pending,
            },
        );
    }
    if ok && let Some(name) = call.rest("DELETE", &["domainnames", "*"]).and_then(|c| c.first().map(|n| url_decode(n)))
    {
        state.domains.remove(&name);
    }
    let shows_domains = call.rest("POST", &["domainnames"]).is_some()
        || call.rest("GET", &["domainnames"]).is_some()
        || call.rest("GET", &["domainnames", "*"]).is_some()
        || call.rest("PATCH", &["domainnames", "*"]).is_some();
    if !ok || !shows_domains {
        return false;
    }
    let mut changed = false;
    let items: Vec<&mut Value> = match answer.get_mut("item") {
        Some(Value::Array(items)) => items.iter_mut().collect(),
        _ => vec![answer],
    };
    let State { domains, truststores, counts, .. } = state;
    for item in items {
        let Some(name) = item["domainName"].as_str() else { continue };
        let Some(domain) = domains.get_mut(name) else { continue };
        if let (Some(uri), Some(version)) = (&domain.truststore_uri, &domain.truststore_version) {
            let place = uri.strip_prefix("s3://").and_then(|p| p.split_once('/'));
            let warnings = place
                .and_then(|(bucket, key)| truststores.get(&(bucket.to_owned(), key.to_owned(), version.clone())))
                .cloned()
                .unwrap_or_default();
            item["mutualTlsAuthentication"] =
                json!({"truststoreUri": uri, "truststoreVersion": version, "truststoreWarnings": warnings});
        }
        if let Some(arn) = &domain.ownership_verification {
            item["ownershipVerificationCertificateArn"] = json!(arn);
        }
        if !domain.certificate_arn.is_empty() {
            item["regionalCertificateArn"] = json!(domain.certificate_arn);
        }
        if let Some((status, until, reported)) = &mut domain.pending {
            if now < *until || !*reported {
                item["domainNameStatus"] = json!(status);
                *reported = true;
                *counts.entry("domain_updating").or_default() += 1;
            } else {
                domain.pending = None;
            }
        }
        changed = true;
    }
    changed
}

/// The warnings API Gateway gives for a truststore: one per expired
/// certificate, one per certificate that is not a CA.
pub(super) fn truststore_warnings(pem: &str) -> Vec<String> {
    let now = x509_parser::time::ASN1Time::now();
    let mut warnings = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).flatten() {
        let Ok(certificate) = block.parse_x509() else { continue };
        if certificate.validity().not_after < now {
            warnings.push(format!("Certificate {} is expired", certificate.subject()));
        }
        if !certificate.is_ca() {
            warnings.push(format!("Certificate {} is not a CA certificate", certificate.subject()));
        }
    }
    warnings
}
