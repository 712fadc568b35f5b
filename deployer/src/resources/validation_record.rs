//! The CNAME record ACM validates a requested certificate by, written in
//! the stack's Route 53 hosted zone (`domain.hosted_zone_id`), so that a
//! stack with a hosted zone deploys unattended end to end. ACM keeps using
//! the record to renew the certificate: it stays as long as the certificate.
//!
//! Which records are the stack's: the one named by an owned certificate's
//! validation record, in the zone the certificate's tag names, holding the
//! value ACM gave. Another value at that name is not the stack's and is
//! never overwritten. Teardown (and removing `hosted_zone_id`) deletes the
//! record through the same tag, once nothing wants it: ACM names one record
//! per account and name, in every region, and renews every certificate of
//! that name by it, so while a certificate outside the stack (in the stack's
//! region or in us-east-1, CloudFront's) uses it, it is left in place and
//! the plan says so.

use serde::{Deserialize, Serialize};

use super::certificate::{self, Certificate};
use super::route53::{self, Record};
use super::kind::{Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::grants::{Grants, Statement};
use crate::plan::{Outputs, Val};
use crate::stack::CertificateSpec;

pub struct ValidationRecord;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub domain: String,
    pub zone: String,
    /// The record's name and value, as ACM names them for the certificate.
    pub name: Val,
    pub value: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub zone: String,
    pub record: Record,
    /// Certificates outside the stack that ACM validates and renews by the
    /// same record (`ARN (STATUS)`): while there is one, the record is left
    /// when the stack no longer wants it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed_by: Vec<String>,
}

fn record(spec: &Spec) -> anyhow::Result<Record> {
    Ok(Record {
        name: route53::fqdn(spec.name.known()?),
        kind: "CNAME".into(),
        values: vec![route53::fqdn(spec.value.known()?)],
        alias: None,
        ttl: None,
    })
}

/// The record `name` in `zone`, the stack's when it holds `value`.
async fn read(aws: &Aws, address: &str, zone: &str, name: &str, value: &str) -> anyhow::Result<Option<Found<State>>> {
    let Some(record) = route53::read(aws, zone, name, "CNAME").await? else { return Ok(None) };
    let ownership = if record.values == [route53::fqdn(value)] { Ownership::Owned } else { Ownership::Foreign };
    Ok(Some(Found::new(address, ownership, State { zone: zone.to_owned(), record, needed_by: Vec::new() })))
}

super::kind::fields! {
    Zone = "zone",
    Name = "name",
}

impl Kind for ValidationRecord {
    const NAME: &'static str = "validation_record";
    const DEPENDS_ON: &'static [&'static str] = &["certificate"];
    const OBSERVED_UNDER: &'static [&'static str] = &["certificate"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let Some(domain) = &context.stack.domain else { return Ok(Vec::new()) };
        let (Some(zone), CertificateSpec::Request) = (&domain.hosted_zone_id, &domain.certificate) else {
            return Ok(Vec::new());
        };
        let certificate = certificate::address(&domain.name);
        Ok(vec![Spec {
            domain: domain.name.clone(),
            zone: zone.clone(),
            name: Val::output(certificate.clone(), "validation_name"),
            value: Val::output(certificate, "validation_value"),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.domain.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::Zone, state.zone.clone(), spec.zone.clone());
        diff.text(Field::Name, state.record.name.clone(), spec.name.shown());
        // Another zone or name is another record: write the new, delete the old.
        diff.replace = !diff.is_empty();
        diff
    }

    fn left_in_place(state: &State) -> Option<String> {
        (!state.needed_by.is_empty()).then(|| {
            format!(
                "{} {} in zone {} stays: ACM renews {} by it (the record is the account's for that name, in every \
                 region); once none does, delete it by hand",
                state.record.name,
                state.record.kind,
                state.zone,
                state.needed_by.join(", ")
            )
        })
    }

    fn outputs(state: &State) -> Outputs {
        [("name".to_owned(), state.record.name.clone())].into()
    }

    /// ACM's validation CNAME, `_<token>.<domain>`, and no other record.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let Some(domain) = &grants.stack.domain else { return Vec::new() };
        route53::permissions(
            grants,
            "ValidationRecordWrite",
            &[format!("_*.{}", domain.name.to_ascii_lowercase())],
            &["CNAME"],
        )
    }
}

impl KindIo for ValidationRecord {
    /// The record of each of the stack's certificates: in the zone the stack
    /// declares for its domain, or (teardown, a zone removed) in the one the
    /// certificate's tag names. Certificates of one domain may share a
    /// record: it is listed once, under the domain's name if in use.
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let certificates = scope.parents.of::<Certificate>();
        let mut wanted: Vec<(String, String, String, String)> = Vec::new();
        for found in certificates.iter().filter(|c| c.ownership == Ownership::Owned) {
            let declared = scope.desired.iter().find(|s| s.domain == found.name).map(|s| s.zone.clone());
            let Some(zone) = declared.or_else(|| found.state.hosted_zone.clone()) else { continue };
            let Some((name, _, value)) = certificate::validation_cname(&found.state) else { continue };
            let name = route53::fqdn(name);
            if wanted.iter().any(|(_, z, n, _)| *z == zone && *n == name) {
                continue;
            }
            wanted.push((found.name.clone(), zone, name, value.clone()));
        }
        // The certificate in use first: its address is the domain's.
        wanted.sort_by_key(|(address, ..)| address.contains(' '));
        let reads = wanted.iter().map(|(address, zone, name, value)| read(scope.aws, address, zone, name, value));
        let mut found: Vec<Found<State>> = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        // Which other certificates of the account need each of the stack's
        // records: only those decide whether teardown may delete it.
        let own: Vec<String> = certificates.iter().map(|c| c.state.arn.clone()).collect();
        for record in found.iter_mut().filter(|f| f.ownership == Ownership::Owned) {
            let domain = certificates
                .iter()
                .find(|c| {
                    certificate::validation_cname(&c.state)
                        .is_some_and(|(n, ..)| route53::fqdn(n) == record.state.record.name)
                })
                .map(|c| c.state.domain.clone());
            if let Some(domain) = domain {
                record.state.needed_by = certificate::sharing_validation_record(scope.aws, &domain, &own).await?;
            }
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.domain, &spec.zone, spec.name.known()?, spec.value.known()?).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let record = record(spec)?;
        route53::create(aws, &spec.zone, &record).await?;
        Ok(State { zone: spec.zone.clone(), record, needed_by: Vec::new() })
    }

    async fn update(aws: &Aws, spec: &Spec, _: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        let record = record(spec)?;
        route53::upsert(aws, &spec.zone, &record).await?;
        Ok(State { zone: spec.zone.clone(), record, needed_by: Vec::new() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        route53::delete(aws, &state.zone, &state.record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_zone_or_name_is_another_record() {
        let spec = Spec {
            domain: "api.example.com".into(),
            zone: "Z1".into(),
            name: Val::Known("_a.api.example.com.".into()),
            value: Val::Known("_b.acm-validations.aws.".into()),
        };
        let state = State { zone: "Z1".into(), record: record(&spec).expect("known"), needed_by: Vec::new() };
        assert!(ValidationRecord::diff(&spec, &state).is_empty());
        assert_eq!(state.record.values, ["_b.acm-validations.aws."]);
        let moved = State { zone: "Z2".into(), ..state.clone() };
        let renamed = State { record: Record { name: "_c.api.example.com.".into(), ..state.record.clone() }, ..state };
        for (changed, field) in [(moved, "zone"), (renamed, "name")] {
            let diff = ValidationRecord::diff(&spec, &changed);
            let fields: Vec<&str> = diff.fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(fields, [field]);
            assert!(diff.replace, "{field}: write the new record, delete the old");
        }
    }
}
