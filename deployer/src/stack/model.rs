//! The validated stack: what every other module of the deployer reads.
//! Everything in it was checked without AWS ([`super::checks`]); values from
//! `${env:…}` are resolved, and secrets are marked so they are never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use super::raw::{Architecture, Monitoring, Throttling};

/// A value of the authorizer's environment, the one place a `${env:…}`
/// value may go (elsewhere it is refused: `checks::literal`). Its text is
/// private: `Debug` and [`Setting::display`] mask a secret, and only
/// [`Setting::reveal`] gives the text, for the AWS call that writes it and
/// the comparison with what AWS holds. So a new field, diff or error that
/// holds a `Setting` cannot print a secret by forgetting to mask it.
/// (Serialised only in memory, between planner and executor, where kinds
/// carry their specs as JSON; never saved, never printed.)
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Setting {
    value: String,
    secret: bool,
    /// A secret whose `${env:…}` is not set for this run (a plan of a pull
    /// request, which gets no secret): not compared, never written.
    #[serde(default)]
    unknown: bool,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Setting {
    /// What may be printed.
    pub fn display(&self) -> String {
        match (self.unknown, self.secret) {
            (true, _) => "(not set for this run)".into(),
            (false, true) => SENSITIVE.into(),
            (false, false) => format!("{:?}", self.value),
        }
    }

    /// A known value that may be printed.
    pub fn public(value: impl Into<String>) -> Setting {
        Setting { value: value.into(), secret: false, unknown: false }
    }

    /// A value never printed: a secret variable, or any that used `${env:…}`.
    /// (Registered with [`super::masked`], so AWS quoting it back is masked too.)
    pub fn secret(value: impl Into<String>) -> Setting {
        let value = value.into();
        super::masked::register(&value);
        Setting { value, secret: true, unknown: false }
    }

    /// A value this run was not given: never compared, never written.
    pub fn unknown() -> Setting {
        Setting { value: String::new(), secret: true, unknown: true }
    }

    pub fn is_secret(&self) -> bool {
        self.secret
    }

    pub fn is_unknown(&self) -> bool {
        self.unknown
    }

    /// The text itself: for the call that writes it to AWS and for comparing
    /// it with what AWS holds. Never for output.
    pub fn reveal(&self) -> &str {
        &self.value
    }
}

pub use super::masked::SENSITIVE;

#[derive(Debug, Clone)]
pub struct Stack {
    pub file: PathBuf,
    /// SHA-256 of stack.yaml and the files it names, as read: a saved plan
    /// is refused when it changed.
    pub fingerprint: String,
    pub name: String,
    pub region: Option<String>,
    pub authorizer: AuthorizerSpec,
    pub api: ApiSpec,
    pub domain: Option<DomainSpec>,
    pub waf: Option<Vec<Cidr>>,
    pub stage: StageSpec,
}

#[derive(Debug, Clone)]
pub enum Code {
    Build(String),
    Zip(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AuthorizerSpec {
    pub code: Code,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub architecture: Architecture,
    pub environment: BTreeMap<String, Setting>,
    /// Secret variables the team keeps in SSM or Secrets Manager itself
    /// (`${ssm:…}`, `${secretsmanager:…}`): read by the function at init,
    /// never by the deployer; not in `environment`.
    pub secret_references: BTreeMap<String, authorizer::secrets::Reference>,
    pub identity_sources: Vec<String>,
    pub cache_ttl_seconds: i32,
    /// Days CloudWatch keeps the function's logs.
    pub log_retention_days: i32,
    /// Accepted DPoP proofs remembered in a DynamoDB table every instance
    /// shares (the `dpop_replay_table` kind), not only in each instance.
    pub dpop_replay_table: bool,
}

impl AuthorizerSpec {
    /// Whether the authorizer accepts DPoP (`DPOP` set, and not `off`).
    pub fn dpop_on(&self) -> bool {
        dpop_on(&self.environment)
    }
}

/// Whether these authorizer variables turn DPoP on.
pub fn dpop_on(environment: &BTreeMap<String, Setting>) -> bool {
    environment.get("DPOP").is_some_and(|mode| mode.reveal().trim() != "off")
}

#[derive(Debug, Clone)]
pub enum ApiSource {
    Create(String),
    Adopt(String),
}

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub source: ApiSource,
    pub routes: Vec<RouteSpec>,
    /// The `WWW-Authenticate` value of every 401 (realm and accepted schemes).
    pub unauthorized_challenge: String,
    /// The REST API's and the custom domain's `ipAddressType`.
    pub ip_address_type: super::raw::IpAddressType,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    /// The resource template as written (`/pets/{id}`)...
    pub path: String,
    /// ...and parsed, once: what everything else reads.
    pub template: super::template::RouteTemplate,
    pub backend: String,
    pub context_headers: BTreeMap<String, String>,
    /// `scopes: any_valid_token`: no scope needed (every plan lists these).
    pub any_valid_token: bool,
    /// The scopes a token needs (empty with `any_valid_token`).
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DomainSpec {
    pub name: String,
    pub certificate: CertificateSpec,
    pub security_policy: String,
    pub truststore_pem: Vec<u8>,
    pub truststore_bucket: String,
    pub truststore_key: String,
    pub base_path: String,
    pub accept_truststore_warnings: bool,
    /// Required by API Gateway when the certificate is imported or from a
    /// private CA (checked against ACM when the certificate is read).
    pub ownership_verification_certificate_arn: Option<String>,
    /// The Route 53 hosted zone the deployer writes the certificate's
    /// validation record and the domain's alias records in, if any.
    pub hosted_zone_id: Option<String>,
    /// `domain.execute_api` as written (`None`: not stated, which means
    /// off, except where it would cut off the clients of a live stage).
    pub execute_api: Option<super::raw::ExecuteApi>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateSpec {
    Request,
    Existing(String),
}

/// An IPv4 or IPv6 network in canonical form (`203.0.113.0/24`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Cidr(pub String);

impl Cidr {
    pub fn is_ipv6(&self) -> bool {
        self.0.contains(':')
    }

    /// Whether `address` is in this network. An IPv4-mapped IPv6 address
    /// counts as the IPv4 address it carries.
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let Some((network, prefix)) = self.0.split_once('/') else { return false };
        let (Ok(network), Ok(prefix)) = (network.parse::<IpAddr>(), prefix.parse::<u32>()) else { return false };
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<Throttling>,
    pub access_log: Option<AccessLogSpec>,
    pub monitoring: Option<Monitoring>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSpec {
    pub retention_days: i32,
    /// The stack may create and set API Gateway's account-level CloudWatch
    /// role when the account has none.
    pub create_account_role: bool,
}
