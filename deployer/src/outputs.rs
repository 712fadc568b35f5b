//! What a person needs after `apply`, and from `deployer output`: where to
//! point DNS, the records ACM waits for, the URL to call, the ids of what was
//! made. Read from the resources' states, never guessed.

use std::fmt;

use serde::Serialize;

use crate::plan::{DnsRecord, DnsValidation};
use crate::resources::certificate::Certificate;
use crate::resources::domain_name::DomainName;
use crate::resources::execute_api::ExecuteApi;
use crate::resources::lambda_function::LambdaFunction;
use crate::resources::rest_api::RestApi;
use crate::resources::stage::Stage;
use crate::resources::{Observation, Ownership};
use crate::stack::{CertificateSpec, Stack};

#[derive(Debug, Default, Serialize)]
pub struct Outputs {
    pub stack: String,
    pub region: String,
    pub api_id: Option<String>,
    pub stage: Option<String>,
    /// The URL clients call: the custom domain (mutual TLS) when there is one.
    pub invoke_url: Option<String>,
    /// `execute-api`'s own URL, when it is not disabled.
    pub execute_api_url: Option<String>,
    pub function_name: Option<String>,
    pub function_arn: Option<String>,
    pub domain: Option<DomainTarget>,
    /// The DNS record ACM waits for before it issues the certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_validation: Option<DnsValidation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truststore_warnings: Vec<String>,
}

/// Where the custom domain's DNS must point: an alias (A/AAAA) to
/// `regional_domain_name` in hosted zone `regional_hosted_zone_id`.
#[derive(Debug, Serialize)]
pub struct DomainTarget {
    pub name: String,
    pub regional_domain_name: String,
    pub regional_hosted_zone_id: String,
    /// `domainNameStatus`: AVAILABLE once a change is done.
    pub status: String,
}

/// The record the stack's requested certificate still waits for, if it does
/// and ACM has named it (what `plan`, `diff` and `output` show).
pub fn dns_validation(stack: &Stack, observed: &Observation) -> Option<DnsValidation> {
    let domain = stack.domain.as_ref()?;
    if domain.certificate != CertificateSpec::Request {
        return None;
    }
    let certificate = observed.of::<Certificate>().into_iter().find(|c| c.name == domain.name)?;
    if certificate.state.status != "PENDING_VALIDATION" || certificate.state.validation_records.is_empty() {
        return None;
    }
    Some(DnsValidation {
        domain: domain.name.clone(),
        certificate_arn: certificate.state.arn,
        status: certificate.state.status,
        hosted_zone_id: domain.hosted_zone_id.clone(),
        records: certificate
            .state
            .validation_records
            .into_iter()
            .map(|(name, kind, value)| DnsRecord { name, kind, value })
            .collect(),
    })
}

/// The DNS suffix of AWS's own endpoints in a partition.
pub fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    }
}

/// The outputs of `stack` in `observed` (the states after apply, or as read).
pub fn collect(stack: &Stack, region: &str, partition: &str, observed: &Observation) -> Outputs {
    let mut outputs = Outputs { stack: stack.name.clone(), region: region.to_owned(), ..Outputs::default() };
    let api_name = match &stack.api.source {
        crate::stack::ApiSource::Create(name) | crate::stack::ApiSource::Adopt(name) => name.clone(),
    };
    let api = observed.of::<RestApi>().into_iter().find(|a| a.name == api_name && a.ownership != Ownership::Foreign);
    if let Some(api) = &api {
        outputs.api_id = Some(api.state.id.clone());
        // The switch as the stage's deployment has it, once known.
        let execute_api = observed.of::<ExecuteApi>().into_iter().find(|e| e.name == api.name);
        let disabled =
            execute_api.and_then(|e| e.state.deployed_disabled).unwrap_or(api.state.disable_execute_api_endpoint);
        if !disabled {
            outputs.execute_api_url = Some(format!(
                "https://{}.execute-api.{region}.{}/{}",
                api.state.id,
                dns_suffix(partition),
                stack.stage.name
            ));
        }
    }
    if let Some(stage) = observed.of::<Stage>().into_iter().find(|s| s.name == stack.stage.name) {
        outputs.stage = Some(stage.name);
    }
    if let Some(function) = observed.of::<LambdaFunction>().into_iter().find(|f| f.ownership == Ownership::Owned) {
        outputs.function_name = Some(function.state.name);
        outputs.function_arn = Some(function.state.arn);
    }
    if let Some(domain) = &stack.domain {
        if let Some(found) = observed.of::<DomainName>().into_iter().find(|d| d.name == domain.name) {
            outputs.invoke_url = Some(match domain.base_path.as_str() {
                "" => format!("https://{}/", domain.name),
                base => format!("https://{}/{base}", domain.name),
            });
            outputs.truststore_warnings = found.state.truststore_warnings.clone();
            outputs.domain = Some(DomainTarget {
                name: found.name,
                regional_domain_name: found.state.regional_domain_name,
                regional_hosted_zone_id: found.state.regional_hosted_zone_id,
                status: found.state.status,
            });
        }
        outputs.dns_validation = dns_validation(stack, observed);
    } else {
        outputs.invoke_url = outputs.execute_api_url.clone();
    }
    outputs
}

impl fmt::Display for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not created)".into());
        writeln!(f, "Outputs of stack {} ({}):", self.stack, self.region)?;
        writeln!(f, "  invoke URL:        {}", show(&self.invoke_url))?;
        if let Some(url) = &self.execute_api_url
            && Some(url) != self.invoke_url.as_ref()
        {
            writeln!(f, "  execute-api URL:   {url}")?;
        }
        writeln!(f, "  REST API id:       {}", show(&self.api_id))?;
        writeln!(f, "  stage:             {}", show(&self.stage))?;
        writeln!(f, "  function:          {} ({})", show(&self.function_name), show(&self.function_arn))?;
        if let Some(domain) = &self.domain {
            writeln!(
                f,
                "  DNS: point {} (alias A/AAAA) at {} in hosted zone {}",
                domain.name, domain.regional_domain_name, domain.regional_hosted_zone_id
            )?;
            if domain.status != "AVAILABLE" {
                writeln!(f, "  domain status:     {} (a change is still in progress)", domain.status)?;
            }
        }
        if let Some(validation) = &self.dns_validation {
            write!(f, "  {validation}")?;
        }
        for warning in &self.truststore_warnings {
            writeln!(f, "  truststore warning: {warning}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Found;
    use crate::resources::Kind as _;
    use crate::resources::rest_api::{self, RestApi};

    #[test]
    fn the_execute_api_url_is_named_in_the_callers_partition() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        let stack = Stack::load(&path, &|_| None).expect("the example stack is valid");
        let api = rest_api::State {
            id: "a1".into(),
            name: "pets-api".into(),
            disable_execute_api_endpoint: false,
            regional: true,
            ip_address_type: "ipv4".into(),
            root_resource_id: "r0".into(),
            ambiguous_with: Vec::new(),
        };
        let mut observed = Observation::default();
        let found = Found::new("pets-api", Ownership::Owned, serde_json::to_value(api).expect("state"));
        observed.found.insert(RestApi::NAME.to_owned(), vec![found]);
        for (region, partition, url) in [
            ("cn-north-1", "aws-cn", "https://a1.execute-api.cn-north-1.amazonaws.com.cn/prod"),
            ("us-gov-west-1", "aws-us-gov", "https://a1.execute-api.us-gov-west-1.amazonaws.com/prod"),
            ("eu-west-1", "aws", "https://a1.execute-api.eu-west-1.amazonaws.com/prod"),
        ] {
            assert_eq!(collect(&stack, region, partition, &observed).execute_api_url.as_deref(), Some(url));
        }
    }
}
