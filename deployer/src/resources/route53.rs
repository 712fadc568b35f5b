//! What the two Route 53 kinds (`validation_record`, `alias_record`) share:
//! reading one record set, creating it with CREATE (never over one someone
//! made since the plan read the zone) and replacing one of the stack's with
//! UPSERT, waiting until Route 53 serves the change, deleting it as it is (Route 53 deletes
//! only a record set given whole, and says "not found" of one that is
//! gone), and names as Route 53 spells them (lower case, a final dot).
//!
//! Records carry no tags: a record is the stack's when it points at what the
//! stack made (the certificate's own validation value, the stack's own
//! custom domain), so a look-alike pointing elsewhere is never changed.

use anyhow::Context as _;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};

/// What writing records of `types` named like `names` (IAM patterns,
/// lower case, no final dot, as Route 53's normalized names) in the stack's
/// hosted zone takes: the zone read, and its changes only for those names
/// and types, so the pipeline cannot touch any other record of the zone.
pub fn permissions(grants: &Grants<'_>, sid: &str, names: &[String], types: &[&str]) -> Vec<Statement> {
    let Some(zone) = grants.stack.domain.as_ref().and_then(|d| d.hosted_zone_id.as_ref()) else { return Vec::new() };
    let zone = vec![format!("arn:{}:route53:::hostedzone/{zone}", grants.arns.partition)];
    vec![
        Statement::allow(
            "StackDnsRecordsRead",
            Access::Read,
            &["route53:ListResourceRecordSets", "route53:GetHostedZone"],
            zone.clone(),
        ),
        // (A change's id is Route 53's; whether it is INSYNC tells nothing else.)
        Statement::allow(
            "StackDnsChangesRead",
            Access::Write,
            &["route53:GetChange"],
            vec![format!("arn:{}:route53:::change/*", grants.arns.partition)],
        ),
        Statement::allow(sid, Access::Write, &["route53:ChangeResourceRecordSets"], zone)
            .when(
                "ForAllValues:StringLike",
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                serde_json::json!(names),
            )
            .when("ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsRecordTypes", serde_json::json!(types)),
    ]
}

/// One record set, as written and as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Fully qualified, lower case, with the final dot.
    pub name: String,
    /// `CNAME`, `A`, `AAAA`.
    pub kind: String,
    /// A plain record's values (a CNAME's one target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// An alias record's target: DNS name (fully qualified) and hosted zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<(String, String)>,
    /// A plain record's TTL as read (a delete must name it exactly); `None`
    /// for one to write, which gets [`TTL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
}

/// `Api.Example.com` → `api.example.com.`: how Route 53 answers names.
pub fn fqdn(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') { name } else { format!("{name}.") }
}

/// Before a plan that writes records in the stack's hosted zone, what
/// Route 53 would refuse half-way or serve to no one: the zone must be
/// public (a private zone is not what ACM or clients on the internet
/// resolve) and hold the domain, and no CNAME may sit at the domain's name
/// (Route 53 allows no other record beside one, so the alias records would
/// fail once the domain exists).
pub async fn preflight(aws: &Aws, stack: &crate::stack::Stack) -> anyhow::Result<()> {
    let Some(domain) = &stack.domain else { return Ok(()) };
    let Some(zone) = &domain.hosted_zone_id else { return Ok(()) };
    check_zone(aws, zone, &domain.name).await?;
    if let Some(cname) = read(aws, zone, &domain.name, "CNAME").await? {
        anyhow::bail!(
            "zone {zone} holds a CNAME record {} → {}: Route 53 allows no other record beside a CNAME, so the \
             domain's A and AAAA alias records cannot be written; remove it, or move it once clients use the \
             custom domain",
            cname.name,
            cname.values.join(", ")
        );
    }
    Ok(())
}

async fn check_zone(aws: &Aws, zone: &str, domain: &str) -> anyhow::Result<()> {
    let read = aws.route53.get_hosted_zone().id(zone).send().await.aws("GetHostedZone")?;
    let hosted = read.hosted_zone().context("GetHostedZone answered without the zone")?;
    let zone_name = fqdn(hosted.name());
    let domain = fqdn(domain);
    anyhow::ensure!(
        !hosted.config().is_some_and(|c| c.private_zone()),
        "domain.hosted_zone_id: {zone} ({zone_name}) is a private hosted zone: ACM and clients on the internet \
         never see its records; give the public zone of {domain}"
    );
    anyhow::ensure!(
        domain == zone_name || domain.ends_with(&format!(".{zone_name}")),
        "domain.hosted_zone_id: {zone} is the zone of {zone_name}, which does not hold {domain}; give the public \
         zone of {domain} or of a parent of it"
    );
    Ok(())
}

/// The TTL of the plain records the deployer writes.
const TTL: i64 = 300;

/// The record set `name`/`kind` in `zone`, if any.
pub async fn read(aws: &Aws, zone: &str, name: &str, kind: &str) -> anyhow::Result<Option<Record>> {
    let name = fqdn(name);
    let page = aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(&name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .aws("ListResourceRecordSets")?;
    Ok(page.resource_record_sets().iter().find(|set| fqdn(set.name()) == name && set.r#type().as_str() == kind).map(
        |set| Record {
            name: name.clone(),
            kind: kind.to_owned(),
            values: set.resource_records().iter().map(|r| r.value().to_owned()).collect(),
            alias: set.alias_target().map(|a| (fqdn(a.dns_name()), a.hosted_zone_id().to_owned())),
            ttl: set.ttl(),
        },
    ))
}

fn record_set(record: &Record) -> anyhow::Result<ResourceRecordSet> {
    let mut set = ResourceRecordSet::builder().name(&record.name).r#type(RrType::from(record.kind.as_str()));
    match &record.alias {
        Some((dns_name, zone)) => {
            let target = AliasTarget::builder().dns_name(dns_name).hosted_zone_id(zone).evaluate_target_health(false);
            set = set.alias_target(target.build()?);
        }
        None => {
            set = set.ttl(record.ttl.unwrap_or(TTL));
            for value in &record.values {
                set = set.resource_records(ResourceRecord::builder().value(value).build()?);
            }
        }
    }
    Ok(set.build()?)
}

fn change(
    aws: &Aws,
    zone: &str,
    action: ChangeAction,
    record: &Record,
) -> anyhow::Result<
    aws_sdk_route53::operation::change_resource_record_sets::builders::ChangeResourceRecordSetsFluentBuilder,
> {
    let change = Change::builder().action(action).resource_record_set(record_set(record)?).build()?;
    let batch = ChangeBatch::builder()
        .comment("oauth-gateway deployer")
        .changes(change)
        .build()
        .context("a Route 53 change batch")?;
    Ok(aws.route53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch))
}

/// How long Route 53 may take to apply a change on its name servers.
const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(300);

/// Creates `record`, which the plan found absent: Route 53 refuses a CREATE
/// of a record that exists, so one someone made since is never overwritten.
/// Then waits until the change is served ([`insync`]).
pub async fn create(aws: &Aws, zone: &str, record: &Record) -> anyhow::Result<()> {
    write(aws, zone, ChangeAction::Create, record).await
}

/// Replaces `record`, one of the stack's, and waits until it is served.
pub async fn upsert(aws: &Aws, zone: &str, record: &Record) -> anyhow::Result<()> {
    write(aws, zone, ChangeAction::Upsert, record).await
}

async fn write(aws: &Aws, zone: &str, action: ChangeAction, record: &Record) -> anyhow::Result<()> {
    let sent = change(aws, zone, action.clone(), record)?.send().await;
    if let Err(e) = &sent
        && action == ChangeAction::Create
        && crate::error::code(e) == Some("InvalidChangeBatch")
        && e.as_service_error().and_then(|s| s.meta().message()).is_some_and(|m| m.contains("already exists"))
    {
        // The SDK sends a CREATE again when an answer is lost: a record that
        // is exactly the one written is this create's own.
        let now = read(aws, zone, &record.name, &record.kind).await?;
        if now.is_some_and(|now| now.values == record.values && now.alias == record.alias) {
            return Ok(());
        }
        anyhow::bail!(
            "{} {} appeared in zone {zone} after the plan read it (someone else made it): not overwritten",
            record.name,
            record.kind
        );
    }
    let changed = sent.aws(&format!("ChangeResourceRecordSets ({})", action.as_str()))?;
    insync(aws, record, changed.change_info().map(|c| c.id().to_owned())).await
}

/// Waits until Route 53 says change `id` is INSYNC: only then do its name
/// servers answer with it (and can ACM, or a client, resolve it).
async fn insync(aws: &Aws, record: &Record, id: Option<String>) -> anyhow::Result<()> {
    let Some(id) = id else { return Ok(()) };
    let waiting_for = format!("Route 53 to serve {} {} (change {id} INSYNC)", record.name, record.kind);
    crate::retry::wait_until(&waiting_for, PROPAGATION, || async {
        let now = aws.route53.get_change().id(&id).send().await.aws("GetChange")?;
        let insync = now.change_info().is_some_and(|c| c.status() == &aws_sdk_route53::types::ChangeStatus::Insync);
        Ok(insync.then_some(()))
    })
    .await
}

/// Deletes `record`, given as it is; one that is gone already is success.
pub async fn delete(aws: &Aws, zone: &str, record: &Record) -> anyhow::Result<()> {
    match change(aws, zone, ChangeAction::Delete, record)?.send().await {
        Err(e)
            if crate::error::code(&e) == Some("InvalidChangeBatch")
                && e.as_service_error().and_then(|s| s.meta().message()).is_some_and(|m| m.contains("not found")) =>
        {
            Ok(())
        }
        other => other.map(drop).aws("ChangeResourceRecordSets (DELETE)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_route_53_answers_them() {
        assert_eq!(fqdn("Api.Example.com"), "api.example.com.");
        assert_eq!(fqdn("_abc.api.example.com."), "_abc.api.example.com.");
    }
}
