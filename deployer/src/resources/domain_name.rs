//! The custom domain: regional endpoint, TLS 1.2, and mutual TLS against the
//! truststore in S3 at a given object version. A new truststore version is
//! an in-place update of `truststoreVersion`.
//!
//! AWS checks the truststore when the domain is created or updated and
//! reports bad certificates in it (expired, not a CA, weak key) only as
//! `truststoreWarnings`, leaving mutual TLS on: the clients those certificates
//! were meant for are locked out. Such warnings stop `apply` unless the stack
//! says to accept them (`domain.accept_truststore_warnings`).
//!
//! Every change is waited out: API Gateway reports `domainNameStatus`
//! UPDATING (PENDING after a create) until it is done. A truststore update
//! that AWS answers with warnings the stack does not accept is rolled back
//! to the previous version, and the step fails: clients of the old
//! truststore keep working.
//!
//! A create AWS says exists (its first answer lost) is read back and updated.
//!
//! AWS reports `mutualTlsAuthentication` for a domain created with it: that
//! answer is the truststore in use, and what leads a domain the stack no
//! longer declares to its truststore.

use std::collections::HashMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::{
    EndpointConfiguration, EndpointType, IpAddressType, MutualTlsAuthenticationInput, Op, PatchOperation,
    SecurityPolicy,
};
use serde::{Deserialize, Serialize};

use super::kind::{Context, Diff, Found, HOSTED_ZONE_TAG, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Shown, Val};
use crate::retry;

/// How long a change of the domain may take to finish (unscaled).
const CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub struct DomainName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    pub certificate_arn: Val,
    pub security_policy: String,
    pub truststore_uri: String,
    pub truststore_version: Val,
    pub accept_truststore_warnings: bool,
    /// With an imported or private certificate.
    #[serde(default)]
    pub ownership_verification_certificate_arn: Option<String>,
    /// The Route 53 hosted zone of its alias records, kept in a tag.
    #[serde(default)]
    pub hosted_zone: Option<String>,
    /// `ipv4` or `dualstack` (`api.ip_address_type`).
    #[serde(default = "ipv4")]
    pub ip_address_type: String,
}

fn ipv4() -> String {
    "ipv4".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub certificate_arn: String,
    pub security_policy: String,
    pub regional: bool,
    /// `ipv4` or `dualstack` (`ipv4` when API Gateway says nothing).
    #[serde(default = "ipv4")]
    pub ip_address_type: String,
    pub truststore_uri: Option<String>,
    pub truststore_version: Option<String>,
    pub truststore_warnings: Vec<String>,
    /// Where DNS must point (an alias to this name, in this hosted zone).
    pub regional_domain_name: String,
    pub regional_hosted_zone_id: String,
    #[serde(default)]
    pub ownership_verification_certificate_arn: Option<String>,
    /// `domainNameStatus`: AVAILABLE, UPDATING, PENDING, PENDING_….
    #[serde(default = "available")]
    pub status: String,
    /// What API Gateway says about that status, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The hosted zone its alias records were written in (a tag).
    #[serde(default)]
    pub hosted_zone: Option<String>,
}

fn available() -> String {
    "AVAILABLE".into()
}

pub fn address(name: &str) -> Address {
    Address::new(DomainName::NAME, name)
}

/// The fields a domain is read from, the same in a `GetDomainNames` item and
/// a `GetDomainName` answer (two types with the same accessors).
struct Raw<'a> {
    name: Option<&'a str>,
    certificate_arn: Option<&'a str>,
    security_policy: Option<&'a SecurityPolicy>,
    endpoint: Option<&'a EndpointConfiguration>,
    mtls: Option<&'a aws_sdk_apigateway::types::MutualTlsAuthentication>,
    regional_domain_name: Option<&'a str>,
    regional_hosted_zone_id: Option<&'a str>,
    ownership_verification: Option<&'a str>,
    status: Option<&'a aws_sdk_apigateway::types::DomainNameStatus>,
    status_message: Option<&'a str>,
    tags: Option<&'a HashMap<String, String>>,
}

macro_rules! raw {
    ($domain:expr) => {
        Raw {
            name: $domain.domain_name(),
            certificate_arn: $domain.regional_certificate_arn(),
            security_policy: $domain.security_policy(),
            endpoint: $domain.endpoint_configuration(),
            mtls: $domain.mutual_tls_authentication(),
            regional_domain_name: $domain.regional_domain_name(),
            regional_hosted_zone_id: $domain.regional_hosted_zone_id(),
            ownership_verification: $domain.ownership_verification_certificate_arn(),
            status: $domain.domain_name_status(),
            status_message: $domain.domain_name_status_message(),
            tags: $domain.tags(),
        }
    };
}

fn found(raw: Raw<'_>, stack: &str) -> Found<State> {
    let tag = |name: &str| raw.tags.and_then(|t| t.get(name)).cloned();
    let state = State {
        name: raw.name.unwrap_or_default().to_owned(),
        certificate_arn: raw.certificate_arn.unwrap_or_default().to_owned(),
        security_policy: raw.security_policy.map(|p| p.as_str().to_owned()).unwrap_or_default(),
        regional: raw.endpoint.is_some_and(|c| c.types().contains(&EndpointType::Regional)),
        ip_address_type: raw.endpoint.and_then(|c| c.ip_address_type()).map_or_else(ipv4, |t| t.as_str().to_owned()),
        truststore_uri: raw.mtls.and_then(|m| m.truststore_uri().map(str::to_owned)),
        truststore_version: raw.mtls.and_then(|m| m.truststore_version().map(str::to_owned)),
        truststore_warnings: raw.mtls.map(|m| m.truststore_warnings().to_vec()).unwrap_or_default(),
        regional_domain_name: raw.regional_domain_name.unwrap_or_default().to_owned(),
        regional_hosted_zone_id: raw.regional_hosted_zone_id.unwrap_or_default().to_owned(),
        ownership_verification_certificate_arn: raw.ownership_verification.map(str::to_owned),
        status: raw.status.map_or_else(available, |s| s.as_str().to_owned()),
        status_message: raw.status_message.filter(|m| !m.is_empty()).map(str::to_owned),
        hosted_zone: tag(HOSTED_ZONE_TAG),
    };
    let owned = raw.tags.and_then(|t| t.get(OWNER_TAG)).is_some_and(|owner| owner == stack);
    Found::new(state.name.clone(), if owned { Ownership::Owned } else { Ownership::Foreign }, state)
}

super::kind::fields! {
    RegionalCertificateArn = "regional_certificate_arn",
    SecurityPolicy = "security_policy",
    TruststoreUri = "truststore_uri",
    TruststoreVersion = "truststore_version",
    OwnershipVerificationCertificateArn = "ownership_verification_certificate_arn",
    HostedZoneTag = "hosted_zone_tag",
    EndpointType = "endpoint_type",
    IpAddressType = "ip_address_type",
}

impl Kind for DomainName {
    const NAME: &'static str = "domain_name";
    /// No read back: the create waits until the domain is AVAILABLE, and returns that read.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &["certificate", "certificate_validation", "truststore"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let Some(domain) = &context.stack.domain else { return Ok(Vec::new()) };
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            name: domain.name.clone(),
            certificate_arn: super::certificate_validation::arn(context).context("a domain has a certificate")?,
            security_policy: domain.security_policy.clone(),
            truststore_uri: format!("s3://{}/{}", domain.truststore_bucket, domain.truststore_key),
            truststore_version: Val::output(super::truststore::address(&domain.truststore_bucket), "version_id"),
            accept_truststore_warnings: domain.accept_truststore_warnings,
            ownership_verification_certificate_arn: domain.ownership_verification_certificate_arn.clone(),
            hosted_zone: domain.hosted_zone_id.clone(),
            ip_address_type: context.stack.api.ip_address_type.as_str().to_owned(),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::RegionalCertificateArn, state.certificate_arn.clone(), spec.certificate_arn.shown());
        diff.field(Field::SecurityPolicy, state.security_policy.as_str(), spec.security_policy.as_str());
        let or_none = |value: &Option<String>| value.clone().map_or(Shown::Absent, Shown::Value);
        diff.text(Field::TruststoreUri, or_none(&state.truststore_uri), spec.truststore_uri.clone());
        diff.text(Field::TruststoreVersion, or_none(&state.truststore_version), spec.truststore_version.shown());
        if spec.ownership_verification_certificate_arn.is_some() {
            diff.field(
                Field::OwnershipVerificationCertificateArn,
                state.ownership_verification_certificate_arn.as_deref(),
                spec.ownership_verification_certificate_arn.as_deref(),
            );
        }
        diff.field(Field::HostedZoneTag, state.hosted_zone.as_deref(), spec.hosted_zone.as_deref());
        // The endpoint type cannot be changed to REGIONAL in place by us.
        diff.field(Field::EndpointType, if state.regional { "REGIONAL" } else { "EDGE" }, "REGIONAL");
        diff.replace = !state.regional;
        diff.text(Field::IpAddressType, state.ip_address_type.clone(), spec.ip_address_type.clone());
        diff
    }

    fn blockers(spec: Option<&Spec>, state: &State) -> Vec<String> {
        let accepted = spec.is_some_and(|s| s.accept_truststore_warnings);
        if state.truststore_warnings.is_empty() || accepted {
            return Vec::new();
        }
        vec![format!(
            "API Gateway warns about the truststore of {} (clients with these certificates are refused): {}; fix \
             the truststore, or set domain.accept_truststore_warnings: true",
            state.name,
            state.truststore_warnings.join("; ")
        )]
    }

    fn outputs(state: &State) -> Outputs {
        [
            ("name".to_owned(), state.name.clone()),
            ("regional_domain_name".to_owned(), state.regional_domain_name.clone()),
            ("regional_hosted_zone_id".to_owned(), state.regional_hosted_zone_id.clone()),
        ]
        .into()
    }

    /// The stack's domain: created only tagged as the stack's; changed and
    /// deleted only while it carries the stack's tag (also a domain the
    /// stack had under another name); its tags written only on its own
    /// tags resource, and after creation only the hosted-zone key. The
    /// permission-only actions API Gateway checks for mutual TLS, the
    /// truststore it reads with the caller's credentials, and the
    /// service-linked role the account's first custom domain makes.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let mut statements = vec![
            Statement::allow("DomainList", Access::Read, &["apigateway:GET"], vec![grants.apigateway("/domainnames")]),
            grants.on_stack_resources(Statement::allow(
                "StackDomainWrite",
                Access::Write,
                &["apigateway:PATCH", "apigateway:DELETE"],
                vec![grants.apigateway("/domainnames/*")],
            )),
        ];
        let Some(domain) = &grants.stack.domain else { return statements };
        let path = format!("/domainnames/{}", domain.name);
        let tags = grants.apigateway_tags(&path);
        statements.extend([
            Statement::allow("StackDomainRead", Access::Read, &["apigateway:GET"], vec![grants.apigateway(&path)]),
            grants.tagged_as_stack(
                Statement::allow(
                    "StackDomainCreate",
                    Access::Write,
                    &["apigateway:POST"],
                    vec![grants.apigateway("/domainnames")],
                ),
                &[OWNER_TAG, HOSTED_ZONE_TAG],
            ),
            grants.tagged_as_stack(
                Statement::allow("StackDomainTagOnCreate", Access::Write, &["apigateway:PUT"], vec![tags.clone()]),
                &[OWNER_TAG, HOSTED_ZONE_TAG],
            ),
            Statement::allow("StackDomainZoneTag", Access::Write, &["apigateway:PUT", "apigateway:DELETE"], vec![tags])
                .when("ForAllValues:StringEquals", "aws:TagKeys", serde_json::json!([HOSTED_ZONE_TAG])),
            Statement::allow(
                "StackDomainMutualTls",
                Access::Write,
                &["apigateway:AddCertificateToDomain", "apigateway:RemoveCertificateFromDomain"],
                vec![grants.apigateway(&path)],
            ),
            super::truststore::object_read(grants),
            Statement::allow(
                "ApiGatewayServiceLinkedRole",
                Access::Write,
                &["iam:CreateServiceLinkedRole"],
                vec![grants.arns.api_gateway_service_linked_role()],
            )
            .when("StringEquals", "iam:AWSServiceName", "ops.apigateway.amazonaws.com"),
        ]);
        statements
    }
}

impl KindIo for DomainName {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let domains = super::account_domains::listed(scope.aws, scope.shared).await?;
        Ok(domains
            .iter()
            .map(|d| found(raw!(d), scope.stack))
            // Someone else's domain matters only where the stack wants one.
            .filter(|f| f.ownership == Ownership::Owned || scope.desired.iter().any(|s| s.name == f.name))
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let domain = aws.apigateway.get_domain_name().domain_name(&spec.name).send().await.found("GetDomainName")?;
        Ok(domain.map(|d| found(raw!(d), &spec.stack)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let version = spec.truststore_version.known()?;
        let mut tags: HashMap<String, String> = [(OWNER_TAG.to_owned(), spec.stack.clone())].into();
        if let Some(zone) = &spec.hosted_zone {
            tags.insert(HOSTED_ZONE_TAG.to_owned(), zone.clone());
        }
        let created = aws
            .apigateway
            .create_domain_name()
            .domain_name(&spec.name)
            .regional_certificate_arn(spec.certificate_arn.known()?)
            .endpoint_configuration(
                EndpointConfiguration::builder()
                    .types(EndpointType::Regional)
                    .ip_address_type(IpAddressType::from(spec.ip_address_type.as_str()))
                    .build(),
            )
            .security_policy(SecurityPolicy::from(spec.security_policy.as_str()))
            .mutual_tls_authentication(
                MutualTlsAuthenticationInput::builder()
                    .truststore_uri(&spec.truststore_uri)
                    .truststore_version(version)
                    .build(),
            )
            .set_ownership_verification_certificate_arn(spec.ownership_verification_certificate_arn.clone())
            .set_tags(Some(tags))
            .send()
            .await;
        match created {
            Ok(_) => Ok(wait_available(aws, spec).await?),
            // Made by this create, its first answer lost: bring it in line.
            Err(e) if crate::error::already_exists(&e) => {
                super::kind::made_already::<Self>(aws, spec).await?;
                wait_available(aws, spec).await
            }
            Err(e) => Err(e).aws("CreateDomainName"),
        }
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let updated = patch(aws, spec, diff).await?;
        let warnings = Self::blockers(Some(spec), &updated);
        let previous = state.truststore_version.as_deref().filter(|_| diff.has(Field::TruststoreVersion));
        match previous {
            Some(previous) if !warnings.is_empty() => {
                // Clients of the truststore in use keep working: go back to it.
                let back = PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/mutualTlsAuthentication/truststoreVersion")
                    .value(previous)
                    .build();
                send_patch(aws, &spec.name, vec![back]).await?;
                wait_available(aws, spec).await?;
                anyhow::bail!(
                    "{}; the domain was set back to the truststore version it used before ({previous})",
                    warnings.join("; ")
                )
            }
            _ => Ok(updated),
        }
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway.delete_domain_name().domain_name(&state.name).send().await.gone("DeleteDomainName")
    }
}

/// Waits until the domain's last change is done (AVAILABLE); its state then.
/// UPDATING and PENDING pass by themselves; PENDING_OWNERSHIP_VERIFICATION
/// once the ownership certificate is issued; PENDING_CERTIFICATE_REIMPORT
/// only once someone reimports the certificate: each is shown (with what
/// API Gateway says of it) and waited out within the budget.
async fn wait_available(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
    let waiting_for = format!("API Gateway to finish the change of domain {}", spec.name);
    let shown = std::sync::Mutex::new(String::new());
    retry::wait_until(&waiting_for, CHANGE_TIMEOUT, || async {
        let found = DomainName::find(aws, spec).await?.with_context(|| format!("domain {} vanished", spec.name))?;
        let state = found.state;
        if state.status == "AVAILABLE" {
            return Ok(Some(state));
        }
        let mut last = shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last != state.status {
            let why = state.status_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
            eprintln!("    domain {} is {}{why}", spec.name, state.status);
            last.clone_from(&state.status);
        }
        Ok(None)
    })
    .await
}

async fn send_patch(aws: &Aws, name: &str, operations: Vec<PatchOperation>) -> anyhow::Result<()> {
    aws.apigateway
        .update_domain_name()
        .domain_name(name)
        .set_patch_operations(Some(operations))
        .send()
        .await
        .aws("UpdateDomainName")?;
    Ok(())
}

fn arn(aws: &Aws, name: &str) -> String {
    aws.arns().domain(name)
}

/// Records the hosted zone of the alias records in the domain's tags (or
/// removes it with `hosted_zone_id`).
async fn tag_hosted_zone(aws: &Aws, spec: &Spec) -> anyhow::Result<()> {
    let arn = arn(aws, &spec.name);
    match &spec.hosted_zone {
        Some(zone) => {
            aws.apigateway
                .tag_resource()
                .resource_arn(arn)
                .tags(HOSTED_ZONE_TAG, zone)
                .send()
                .await
                .aws("TagResource")?;
        }
        None => {
            aws.apigateway
                .untag_resource()
                .resource_arn(arn)
                .tag_keys(HOSTED_ZONE_TAG)
                .send()
                .await
                .aws("UntagResource")?;
        }
    }
    Ok(())
}

/// Writes `diff`'s fields, then waits until the change is done.
async fn patch(aws: &Aws, spec: &Spec, diff: &Diff<Field>) -> anyhow::Result<State> {
    let replace = |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    let mut operations = Vec::new();
    if diff.has(Field::RegionalCertificateArn) {
        operations.push(replace("/regionalCertificateArn", spec.certificate_arn.known()?));
    }
    if diff.has(Field::SecurityPolicy) {
        operations.push(replace("/securityPolicy", &spec.security_policy));
    }
    if diff.has(Field::IpAddressType) {
        operations.push(replace("/endpointConfiguration/ipAddressType", &spec.ip_address_type));
    }
    if diff.has(Field::TruststoreUri) {
        operations.push(replace("/mutualTlsAuthentication/truststoreUri", &spec.truststore_uri));
    }
    if diff.has(Field::TruststoreVersion) {
        operations.push(replace("/mutualTlsAuthentication/truststoreVersion", spec.truststore_version.known()?));
    }
    if let Some(arn) = spec
        .ownership_verification_certificate_arn
        .as_deref()
        .filter(|_| diff.has(Field::OwnershipVerificationCertificateArn))
    {
        operations.push(replace("/ownershipVerificationCertificateArn", arn));
    }
    if !operations.is_empty() {
        send_patch(aws, &spec.name, operations).await?;
    }
    if diff.has(Field::HostedZoneTag) {
        tag_hosted_zone(aws, spec).await?;
    }
    wait_available(aws, spec).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            name: "api.example.com".into(),
            certificate_arn: Val::Known("arn:aws:acm:eu-west-1:1:certificate/c".into()),
            security_policy: "TLS_1_2".into(),
            truststore_uri: "s3://b/truststore.pem".into(),
            truststore_version: Val::Known("v2".into()),
            accept_truststore_warnings: false,
            ownership_verification_certificate_arn: None,
            hosted_zone: Some("Z1".into()),
            ip_address_type: "ipv4".into(),
        }
    }

    fn state() -> State {
        State {
            name: "api.example.com".into(),
            certificate_arn: "arn:aws:acm:eu-west-1:1:certificate/c".into(),
            security_policy: "TLS_1_2".into(),
            regional: true,
            ip_address_type: "ipv4".into(),
            truststore_uri: Some("s3://b/truststore.pem".into()),
            truststore_version: Some("v2".into()),
            truststore_warnings: Vec::new(),
            regional_domain_name: "d-abc.execute-api.eu-west-1.amazonaws.com".into(),
            regional_hosted_zone_id: "ZLY8HYME6SFDD".into(),
            ownership_verification_certificate_arn: None,
            status: "AVAILABLE".into(),
            status_message: None,
            hosted_zone: Some("Z1".into()),
        }
    }

    #[test]
    fn diff() {
        let cases: &[Case<State>] = &[
            (|s| s.certificate_arn = "arn:aws:acm:eu-west-1:1:certificate/old".into(), "regional_certificate_arn"),
            (|s| s.security_policy = "TLS_1_0".into(), "security_policy"),
            (|s| s.truststore_uri = None, "truststore_uri"),
            (|s| s.truststore_version = Some("v1".into()), "truststore_version"),
            (|s| s.hosted_zone = None, "hosted_zone_tag"),
        ];
        check_diff::<DomainName>(&spec(), &state(), cases);
        let edge = State { regional: false, ..state() };
        assert!(DomainName::diff(&spec(), &edge).replace);
    }

    #[test]
    fn truststore_warnings_block_unless_accepted() {
        let warned = State { truststore_warnings: vec!["certificate CN=old expired".into()], ..state() };
        let blockers = DomainName::blockers(Some(&spec()), &warned);
        assert_eq!(blockers.len(), 1);
        assert!(blockers[0].contains("CN=old expired") && blockers[0].contains("accept_truststore_warnings"));
        let accepting = Spec { accept_truststore_warnings: true, ..spec() };
        assert!(DomainName::blockers(Some(&accepting), &warned).is_empty());
        assert!(DomainName::blockers(Some(&spec()), &state()).is_empty());
    }
}
