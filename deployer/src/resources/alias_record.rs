//! The custom domain's name in the stack's Route 53 hosted zone
//! (`domain.hosted_zone_id`): an A alias record to the domain's
//! `regionalDomainName`, in API Gateway's hosted zone for it, and an AAAA
//! one when the domain answers on IPv6 (`api.ip_address_type: dualstack`;
//! an IPv4-only domain serves no IPv6 client, so an AAAA alias to it would
//! only promise what it does not give). Clients reach
//! the API by its name only once these exist, so execute-api is turned off
//! after them.
//!
//! A record of that name pointing anywhere else is not the stack's: it is
//! never overwritten (the plan is refused), so an apply cannot move a name
//! someone else serves. The zone is also kept in the domain's tag, so that
//! teardown (and removing `hosted_zone_id`) finds and deletes exactly these.

use serde::{Deserialize, Serialize};

use super::domain_name::{self, DomainName};
use super::route53::{self, Record};
use super::kind::{Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::grants::{Grants, Statement};
use crate::plan::{Outputs, Val};

pub struct AliasRecord;

/// The record types written: for IPv4 clients, and for IPv6 clients when
/// the domain is dualstack. (The pipeline may write both: switching back
/// to IPv4 only deletes the AAAA record.)
const TYPES: [&str; 2] = ["A", "AAAA"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub domain: String,
    pub zone: String,
    /// `A` or `AAAA`.
    pub kind: String,
    /// The domain's regional name and API Gateway's hosted zone for it.
    pub target: Val,
    pub target_zone: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub zone: String,
    pub record: Record,
}

fn address_name(domain: &str, kind: &str) -> String {
    format!("{domain} {kind}")
}

fn record(spec: &Spec) -> anyhow::Result<Record> {
    Ok(Record {
        name: route53::fqdn(&spec.domain),
        kind: spec.kind.clone(),
        values: Vec::new(),
        alias: Some((route53::fqdn(spec.target.known()?), spec.target_zone.known()?.to_owned())),
        ttl: None,
    })
}

/// The `kind` record of `domain` in `zone`: the stack's when it is an alias
/// to `target` (the regional name of the stack's domain, if it has one).
async fn read(
    aws: &Aws,
    zone: &str,
    domain: &str,
    kind: &str,
    target: Option<&str>,
) -> anyhow::Result<Option<Found<State>>> {
    let Some(record) = route53::read(aws, zone, domain, kind).await? else { return Ok(None) };
    let ours = record.alias.as_ref().zip(target).is_some_and(|((name, _), target)| *name == route53::fqdn(target));
    let ownership = if ours { Ownership::Owned } else { Ownership::Foreign };
    Ok(Some(Found::new(address_name(domain, kind), ownership, State { zone: zone.to_owned(), record })))
}

super::kind::fields! {
    Target = "target",
    TargetZone = "target_zone",
    Zone = "zone",
}

impl Kind for AliasRecord {
    const NAME: &'static str = "alias_record";
    const DEPENDS_ON: &'static [&'static str] = &["domain_name"];
    const OBSERVED_UNDER: &'static [&'static str] = &["domain_name"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let Some(domain) = &context.stack.domain else { return Ok(Vec::new()) };
        let Some(zone) = &domain.hosted_zone_id else { return Ok(Vec::new()) };
        let of = domain_name::address(&domain.name);
        let dualstack = context.stack.api.ip_address_type == crate::stack::IpAddressType::Dualstack;
        Ok(TYPES
            .iter()
            .filter(|kind| dualstack || **kind == "A")
            .map(|kind| Spec {
                domain: domain.name.clone(),
                zone: zone.clone(),
                kind: (*kind).to_owned(),
                target: Val::output(of.clone(), "regional_domain_name"),
                target_zone: Val::output(of.clone(), "regional_hosted_zone_id"),
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        address_name(&spec.domain, &spec.kind)
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        let (target, target_zone) = state.record.alias.clone().unwrap_or_default();
        let wanted = match &spec.target {
            Val::Known(name) => crate::plan::Shown::Value(route53::fqdn(name)),
            unknown => unknown.shown(),
        };
        diff.text(Field::Target, target, wanted);
        diff.text(Field::TargetZone, target_zone, spec.target_zone.shown());
        if state.zone != spec.zone {
            // A record in another zone is another record.
            diff.text(Field::Zone, state.zone.clone(), spec.zone.clone());
            diff.replace = true;
        }
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("name".to_owned(), state.record.name.clone())].into()
    }

    /// The domain's own A and AAAA aliases, and no other record.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let Some(domain) = &grants.stack.domain else { return Vec::new() };
        route53::permissions(grants, "AliasRecordWrite", &[domain.name.to_ascii_lowercase()], &["A", "AAAA"])
    }
}

impl KindIo for AliasRecord {
    /// The records of each of the stack's domains, in the zone the stack
    /// declares for it or the one the domain's tag names; and where the
    /// stack wants records for a domain not made yet, whatever is there
    /// already (someone else's, so the plan is refused before any write).
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let domains = scope.parents.of::<DomainName>();
        let owned = domains.iter().filter(|d| d.ownership == Ownership::Owned);
        // (domain, zone, where it points if the stack made it)
        let mut places: Vec<(&str, &str, Option<&str>)> = Vec::new();
        for domain in owned {
            let declared = scope.desired.iter().find(|s| s.domain == domain.name).map(|s| s.zone.as_str());
            if let Some(zone) = declared.or(domain.state.hosted_zone.as_deref()) {
                places.push((&domain.name, zone, Some(&domain.state.regional_domain_name)));
            }
        }
        for spec in &scope.desired {
            if !places.iter().any(|(domain, ..)| *domain == spec.domain) {
                places.push((&spec.domain, &spec.zone, None));
            }
        }
        let reads = places
            .iter()
            .flat_map(|(domain, zone, target)| TYPES.map(|kind| read(scope.aws, zone, domain, kind, *target)));
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.zone, &spec.domain, &spec.kind, Some(spec.target.known()?)).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let record = record(spec)?;
        route53::create(aws, &spec.zone, &record).await?;
        Ok(State { zone: spec.zone.clone(), record })
    }

    async fn update(aws: &Aws, spec: &Spec, _: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        let record = record(spec)?;
        route53::upsert(aws, &spec.zone, &record).await?;
        Ok(State { zone: spec.zone.clone(), record })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        route53::delete(aws, &state.zone, &state.record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    #[test]
    fn diff() {
        let spec = Spec {
            domain: "api.example.com".into(),
            zone: "Z1".into(),
            kind: "AAAA".into(),
            target: Val::Known("d-abc.execute-api.eu-west-1.amazonaws.com".into()),
            target_zone: Val::Known("ZLY8HYME6SFDD".into()),
        };
        let state = State { zone: "Z1".into(), record: record(&spec).expect("known") };
        assert_eq!(state.record.name, "api.example.com.");
        let cases: &[Case<State>] = &[
            (
                |s| {
                    s.record.alias = Some(("d-old.execute-api.eu-west-1.amazonaws.com.".into(), "ZLY8HYME6SFDD".into()))
                },
                "target",
            ),
            (
                |s| s.record.alias = Some(("d-abc.execute-api.eu-west-1.amazonaws.com.".into(), "Z2".into())),
                "target_zone",
            ),
        ];
        check_diff::<AliasRecord>(&spec, &state, cases);
        let moved = State { zone: "Z9".into(), ..state };
        assert!(AliasRecord::diff(&spec, &moved).replace);
    }
}
