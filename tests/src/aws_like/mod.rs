//! What real AWS does that moto does not, between the deployer and moto:
//! rate quotas, eventual consistency, conflicts while a change is in
//! progress, and faults. Each behaviour has its own switch; its durations are
//! AWS's (as `shared/notes/aws-behaviours.md` gives them) times `scale`, so a
//! test waits 300 ms where AWS makes a pipeline wait 30 s. The deployer under
//! test is run with the same `DEPLOYER_TIME_SCALE`.
//!
//! It sits in the recording proxy (`moto::Proxy::aws_like`): `before` may
//! answer a call itself (an error AWS would give now) or change it before
//! moto sees it; `after` may change moto's answer (a field moto drops, a
//! status AWS would still report) and remembers what the next calls depend
//! on (what was created when, which certificate a domain uses).
//!
//! It also keeps its own model of custom domains (`scripts/moto_server.py`
//! corrects moto 5.2.5, which drops their mutual TLS fields and cannot
//! update or tag them, but knows no domain status or warning): the status
//! AWS reports while a change is in progress, and `truststoreWarnings` for a
//! truststore holding an expired certificate or one that is not a CA; and it refuses a second WAF IP set
//! or web ACL of a name, as AWS does and moto does not.
//!
//! This module holds the switches (`Behaviours`), the shared state and the
//! two entry points; each behaviour with more than a few lines is a module
//! of its own: `quotas` (API Gateway's per-account rates), `waf` (WAF's
//! eventual consistency and lock tokens), `acm` (DNS validation), `domains`
//! (custom domains' mutual TLS fields, status and truststore warnings),
//! `rest_apis` (API Gateway's own rules on a REST API: one write at a time,
//! one variable path part per parent, deployments as snapshots),
//! `ip_address_types` and `dynamodb` (tables still being created, tags
//! listed late, TTL's hour); `call` reads a call and spells a service's errors.

mod acm;
mod call;
mod domains;
mod dynamodb;
mod ip_address_types;
mod quotas;
mod rest_apis;
mod waf;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acm::PendingCertificate;
use call::{Call, error, s3_bucket, url_decode};
use domains::{Domain, fill_in_domains, truststore_warnings};
use quotas::Bucket;

use serde_json::{Value, json};

use crate::server::{Recorded, Reply};

/// Which behaviours are on, and how much faster than AWS time runs.
#[derive(Debug, Clone)]
pub struct Behaviours {
    /// AWS's durations are multiplied by this (0.01: 30 s become 300 ms).
    pub scale: f64,
    /// API Gateway's per-operation quotas and its general 10 rps: 429 `TooManyRequestsException`.
    pub throttling: bool,
    /// ACM: a certificate stays in use (`InUseBy`, `ResourceInUseException`)
    /// while its domain exists and for a while after the domain is deleted.
    pub acm_in_use: bool,
    /// WAFv2: `WAFUnavailableEntityException` after a create,
    /// `WAFAssociatedItemException` after a disassociation or an ACL
    /// deletion. (`WAFDuplicateItemException` for a name that exists is
    /// always given: moto does not refuse a duplicate IP set.)
    pub waf_eventual: bool,
    /// WAFv2: lists that do not show what was just created.
    pub waf_list_lag: bool,
    /// WAFv2: the first write to each IP set or web ACL finds its lock token
    /// stale (`WAFOptimisticLockException`), as after someone else's change.
    pub waf_stale_tokens: bool,
    /// IAM: Lambda cannot assume a role for a while after it is created.
    pub iam_propagation: bool,
    /// Lambda: `LastUpdateStatus: InProgress` for a while after each change,
    /// and `ResourceConflictException` on a change meanwhile.
    pub lambda_in_progress: bool,
    /// Lambda: an environment over this many bytes (AWS: 4096), measured
    /// on the variables as JSON, refused with an error that quotes the
    /// whole environment ("String measured: …"). moto accepts any size.
    pub lambda_environment_limit: Option<usize>,
    /// API Gateway custom domains: mutual TLS fields kept, `UpdateDomainName`
    /// answered, `truststoreWarnings` for expired certificates.
    pub domain_mtls: bool,
    /// A share of all calls answered 500 or 503, or the connection dropped,
    /// before they reach moto.
    pub faults: Option<Faults>,
    /// API Gateway serialises changes to one REST API: a write to it while
    /// another is in flight gets 409 `ConflictException` ("concurrent
    /// modification").
    pub concurrent_writes: bool,
    /// API Gateway's refusals on a REST API that moto lacks: a second
    /// variable path part under one parent, a path part or method that
    /// exists, an authorizer name in use, a custom domain that exists.
    pub api_rules: bool,
    /// Mutating calls forwarded to moto, then answered 500 or 503 or their
    /// connection dropped: AWS acted, the caller does not know it.
    pub lost_answers: Option<LostAnswers>,
    /// S3: right after versioning is enabled, `GetBucketVersioning` does not
    /// say Enabled yet, and an upload may get no version id.
    pub s3_versioning_lag: bool,
    /// S3: the first request about a bucket just made by CreateBucket is
    /// answered 404 NoSuchBucket (S3's buckets are eventually consistent;
    /// terraform retries for two minutes). moto knows the bucket at once.
    pub s3_create_lag: bool,
    /// S3 buckets that belong to another account: every request about one
    /// is answered 403 (HeadBucket: a bare 403), as S3 answers a request
    /// whose `x-amz-expected-bucket-owner` is not the bucket's owner.
    pub foreign_buckets: &'static [&'static str],
    /// API Gateway custom domains: `domainNameStatus` is UPDATING (PENDING
    /// after a create) for a while after each change.
    pub domain_updating: bool,
    /// ACM: a requested certificate stays PENDING_VALIDATION until its
    /// validation CNAME is written through Route 53 (then it is issued
    /// shortly after), or until the test says someone made the record
    /// outside Route 53 ([`AwsLike::validation_records_made_elsewhere`]).
    /// moto issues at once.
    pub acm_dns_validation: bool,
    /// With `acm_dns_validation`: how long after its record is written ACM
    /// issues a certificate, in AWS time (minutes to over an hour on AWS;
    /// `None`: [`aws_time::ACM_ISSUE`]).
    pub acm_issue_after: Option<Duration>,
    /// Route 53: a change is PENDING at its first GetChange, INSYNC after
    /// (moto answers INSYNC at once).
    pub route53_propagation: bool,
    /// ACM: every requested certificate FAILED with this `FailureReason`
    /// (`CAA_ERROR`: the domain's CAA record names another CA).
    pub acm_failure: Option<&'static str>,
    /// DynamoDB: a new table is `CREATING` for a while (changes to it
    /// refused), its tags are listed a while after the create, and its TTL
    /// changes once an hour.
    pub dynamodb_settling: bool,
}

/// Which answers are lost (see [`Behaviours::lost_answers`]).
#[derive(Debug, Clone, Copy)]
pub struct LostAnswers {
    /// Share of mutating calls, 0.0–1.0.
    pub rate: f64,
    pub seed: u64,
    /// Only calls of this operation (`POST /restapis` for REST protocols,
    /// the operation name otherwise), if set.
    pub only: Option<&'static str>,
    /// At most this many answers are lost.
    pub at_most: usize,
}

impl LostAnswers {
    /// A share of every mutating call, with a seed.
    pub fn rate(rate: f64, seed: u64) -> LostAnswers {
        LostAnswers { rate, seed, only: None, at_most: usize::MAX }
    }

    /// The answer to the first call of `operation`.
    pub fn first(operation: &'static str) -> LostAnswers {
        LostAnswers { rate: 1.0, seed: 0, only: Some(operation), at_most: 1 }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Share of calls, 0.0–1.0.
    pub rate: f64,
    pub seed: u64,
}

/// Lambda's limit on a function's environment, as JSON.
pub const LAMBDA_ENVIRONMENT_LIMIT: usize = 4096;

impl Behaviours {
    /// Nothing but the moto fill-ins for custom domains.
    pub fn none(scale: f64) -> Behaviours {
        Behaviours {
            scale,
            throttling: false,
            acm_in_use: false,
            waf_eventual: false,
            waf_list_lag: false,
            waf_stale_tokens: false,
            iam_propagation: false,
            lambda_in_progress: false,
            lambda_environment_limit: None,
            domain_mtls: true,
            faults: None,
            concurrent_writes: false,
            api_rules: false,
            lost_answers: None,
            s3_versioning_lag: false,
            s3_create_lag: false,
            foreign_buckets: &[],
            domain_updating: false,
            acm_dns_validation: false,
            acm_failure: None,
            acm_issue_after: None,
            route53_propagation: false,
            dynamodb_settling: false,
        }
    }

    /// Every behaviour (faults, lost answers and DNS validation aside: add
    /// them with `faults`, `lost_answers` and `acm_dns_validation`).
    pub fn all(scale: f64) -> Behaviours {
        Behaviours {
            throttling: true,
            acm_in_use: true,
            waf_eventual: true,
            waf_list_lag: true,
            waf_stale_tokens: true,
            iam_propagation: true,
            lambda_in_progress: true,
            lambda_environment_limit: Some(LAMBDA_ENVIRONMENT_LIMIT),
            concurrent_writes: true,
            api_rules: true,
            s3_versioning_lag: true,
            s3_create_lag: true,
            domain_updating: true,
            dynamodb_settling: true,
            ..Behaviours::none(scale)
        }
    }
}

/// AWS's durations, before scaling.
mod aws_time {
    use std::time::Duration;
    /// ACM lets go of a deleted domain's certificate after minutes.
    pub const ACM_RELEASE: Duration = Duration::from_secs(120);
    /// WAF sees a new IP set, web ACL or stage after up to minutes.
    pub const WAF_UNAVAILABLE: Duration = Duration::from_secs(60);
    /// WAF still sees a removed association or ACL for a while.
    pub const WAF_ASSOCIATED: Duration = Duration::from_secs(30);
    /// WAF's lists lag its creates.
    pub const WAF_LIST_LAG: Duration = Duration::from_secs(30);
    /// A new IAM role reaches Lambda after seconds.
    pub const IAM_PROPAGATION: Duration = Duration::from_secs(10);
    /// A Lambda create or update is in progress for seconds.
    pub const LAMBDA_UPDATE: Duration = Duration::from_secs(10);
    /// S3 versioning reaches every write of a bucket after a while.
    pub const S3_VERSIONING: Duration = Duration::from_secs(30);
    /// A custom domain is UPDATING (or PENDING) for a while after a change.
    pub const DOMAIN_UPDATE: Duration = Duration::from_secs(60);
    /// A new DynamoDB table is CREATING for seconds to a minute.
    pub const DYNAMODB_CREATE: Duration = Duration::from_secs(20);
    /// DynamoDB lists a new table's tags a few seconds after the create.
    pub const DYNAMODB_TAGS: Duration = Duration::from_secs(10);
    /// DynamoDB takes one TTL change per table per hour.
    pub const DYNAMODB_TTL_INTERVAL: Duration = Duration::from_secs(3600);
    /// ACM issues a certificate a while after its validation record exists
    /// (minutes on AWS). At the tests' scale that is 1.8 s: long enough that
    /// a run slowed by a loaded machine does not find it issued on its first
    /// read after writing the record (at 30 s, 0.3 s scaled, one did).
    pub const ACM_ISSUE: Duration = Duration::from_secs(3 * 60);
}

/// The layer, shared by every call through one proxy.
pub struct AwsLike {
    behaviours: Behaviours,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Calls answered by a behaviour rather than by moto, by behaviour.
    counts: BTreeMap<&'static str, usize>,
    /// Certificates requested while ACM fails every request.
    failed_certificates: HashSet<String>,
    /// Route 53 changes already read once (PENDING then).
    changes_seen: HashSet<String>,
    /// Buckets just made, whose next request S3 does not see yet.
    new_buckets: HashSet<String>,
    /// Lambda function → the statement ids of its resource policy (moto
    /// adds a second statement of an id AWS refuses).
    permissions: HashMap<String, HashSet<String>>,
    quotas: HashMap<&'static str, Bucket>,
    /// Custom domain → what moto does not keep.
    domains: HashMap<String, Domain>,
    /// Certificate ARN → in use until (None: by a live domain).
    certificate_in_use: HashMap<String, Option<Instant>>,
    /// WAF ARN (IP set, web ACL, stage) → unavailable until.
    waf_unavailable: HashMap<String, Instant>,
    /// WAF ARN (web ACL, IP set) → still associated until.
    waf_associated: HashMap<String, Instant>,
    /// WAF ARN → hidden from lists until.
    waf_hidden: HashMap<String, Instant>,
    /// WAF id → ARN (deletes and updates name the id).
    waf_arn_by_id: HashMap<String, String>,
    /// Web ACL ARN → the IP set ARNs its rules reference.
    acl_ip_sets: HashMap<String, Vec<String>>,
    /// Resource (stage) ARN → web ACL ARN.
    associations: HashMap<String, String>,
    /// WAF name → ARN of what exists (moto does not refuse a duplicate IP
    /// set, and names the web ACL one wrong).
    waf_names: HashMap<String, String>,
    /// WAF ids whose lock token was already refused once.
    stale_refused: HashSet<String>,
    /// IAM role name → created at.
    roles: HashMap<String, Instant>,
    /// Roles Lambda has refused at least once.
    roles_refused: HashSet<String>,
    /// Lambda function → (busy until, just created, InProgress reported since).
    functions: HashMap<String, (Instant, bool, bool)>,
    /// (bucket, key, version) of a truststore → its warnings.
    truststores: HashMap<(String, String, String), Vec<String>>,
    faults_seen: u64,
    /// REST APIs as API Gateway keeps them.
    rest_apis: rest_apis::RestApis,
    /// The `ipAddressType` of REST APIs and domains.
    ip_address_types: ip_address_types::IpAddressTypes,
    /// REST API id → writes to it in flight.
    writes_in_flight: HashMap<String, usize>,
    /// Mutating calls seen, and answers lost so far.
    lost_seen: u64,
    lost: usize,
    /// Bucket → when versioning was enabled; buckets whose first versioned
    /// upload already went without a version id.
    versioning_enabled_at: HashMap<String, Instant>,
    unversioned_upload: HashSet<String>,
    /// Certificate ARN → its DNS validation, while it is not issued.
    pending_certificates: HashMap<String, PendingCertificate>,
    /// DynamoDB tables still being created, and their tags not yet listed.
    tables: dynamodb::Tables,
}

/// What `before` decided.
pub enum Before {
    /// Answer this, without moto.
    Answer(Reply),
    /// Pass on (possibly changed); the write stays in flight until the
    /// [`InFlight`] is dropped, answered or not (a caller that hangs up).
    Forward(Option<InFlight>),
}

/// A write to a REST API in flight.
pub struct InFlight {
    layer: Arc<AwsLike>,
    api: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.layer.state();
        if let Some(count) = state.writes_in_flight.get_mut(&self.api) {
            *count = count.saturating_sub(1);
        }
    }
}

impl AwsLike {
    pub fn new(behaviours: Behaviours) -> AwsLike {
        AwsLike { behaviours, state: Mutex::new(State::default()) }
    }

    /// How many calls each behaviour answered instead of moto.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.state().counts.clone()
    }

    /// The routes (`GET /pets/{id}`) a stage of a REST API created through
    /// the layer serves: those of its deployment, as it was made.
    pub fn served_routes(&self, api_id: &str, stage: &str) -> Option<BTreeSet<String>> {
        self.state().rest_apis.served(api_id, stage)
    }

    /// Someone has made the validation record of every certificate still
    /// pending outside Route 53: ACM issues them on its next look. (An event
    /// the test triggers rather than a time: a loaded machine must not make
    /// the record appear before the test has looked at the wait.)
    pub fn validation_records_made_elsewhere(&self) {
        for pending in self.state().pending_certificates.values_mut() {
            pending.made_elsewhere = true;
        }
    }

    /// The resource paths of a REST API created through the layer.
    pub fn resource_paths(&self, api_id: &str) -> Option<BTreeSet<String>> {
        self.state().rest_apis.paths(api_id)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.behaviours.scale)
    }

    /// Decides, before moto sees it, whether AWS would refuse this call now;
    /// may rewrite the call (UpdateDomainName becomes a read of the domain).
    pub fn before(self: &Arc<Self>, request: &mut Recorded) -> Before {
        let call = Call::read(request);
        let now = Instant::now();
        let b = &self.behaviours;
        let mut state = self.state();

        if let Some(faults) = b.faults {
            state.faults_seen += 1;
            let roll = splitmix(faults.seed ^ state.faults_seen);
            if (roll % 1_000_000) as f64 / 1_000_000.0 < faults.rate {
                *state.counts.entry("fault").or_default() += 1;
                return Before::Answer(match roll % 3 {
                    0 => Reply::hang_up(),
                    1 => Reply::status(503, "{}").header("content-type", "application/json"),
                    _ => Reply::status(500, "{}").header("content-type", "application/json"),
                });
            }
        }

        if call.service == "s3" && b.foreign_buckets.contains(&s3_bucket(&request.path).as_str()) {
            *state.counts.entry("foreign_bucket").or_default() += 1;
            let body = if request.method == "HEAD" {
                String::new()
            } else {
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access \
                 Denied</Message></Error>"
                    .to_owned()
            };
            return Before::Answer(Reply::status(403, &body).header("content-type", "application/xml"));
        }

        if b.s3_create_lag && call.service == "s3" {
            let bucket = s3_bucket(&request.path);
            if state.new_buckets.remove(&bucket) {
                *state.counts.entry("s3_create_lag").or_default() += 1;
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchBucket</Code><Message>The \
                     specified bucket does not exist</Message><BucketName>{bucket}</BucketName></Error>"
                );
                let body = if request.method == "HEAD" { String::new() } else { body };
                return Before::Answer(Reply::status(404, &body).header("content-type", "application/xml"));
            }
        }

        if b.throttling && call.service == "apigateway" && !self.within_quota(&call, &mut state) {
            *state.counts.entry("throttling").or_default() += 1;
            return Before::Answer(error("apigateway", 429, "TooManyRequestsException", "Too Many Requests"));
        }

        if b.api_rules {
            let refusal = state.rest_apis.refusal(&call).or_else(|| {
                let name = call.body["domainName"].as_str().unwrap_or_default();
                (call.rest("POST", &["domainnames"]).is_some() && state.domains.contains_key(name))
                    .then(|| (400, "BadRequestException", "The domain name you provided already exists.".to_owned()))
            });
            if let Some((status, code, message)) = refusal {
                *state.counts.entry("api_rules").or_default() += 1;
                return Before::Answer(error("apigateway", status, code, &message));
            }
        }

        if b.dynamodb_settling
            && let Some((behaviour, reply)) = state.tables.refusal(&call, now)
        {
            *state.counts.entry(behaviour).or_default() += 1;
            return Before::Answer(reply);
        }

        if b.acm_in_use && call.is("acm", "DeleteCertificate") {
            let arn = call.body["CertificateArn"].as_str().unwrap_or_default();
            if state.certificate_in_use.get(arn).is_some_and(|until| until.is_none_or(|t| now < t)) {
                *state.counts.entry("acm_in_use").or_default() += 1;
                return Before::Answer(error(
                    "acm",
                    400,
                    "ResourceInUseException",
                    &format!("Certificate {arn} is in use."),
                ));
            }
        }

        // (A duplicate WAF name is refused whatever the switches: moto
        // creates a second IP set where AWS refuses.)
        if call.service == "wafv2"
            && let Some((behaviour, reply)) = self.waf_not_yet(&call, &mut state, now)
        {
            *state.counts.entry(behaviour).or_default() += 1;
            return Before::Answer(reply);
        }

        if b.waf_stale_tokens
            && ["UpdateIPSet", "UpdateWebACL", "DeleteIPSet", "DeleteWebACL"].iter().any(|op| call.is("wafv2", op))
        {
            let id = call.body["Id"].as_str().unwrap_or_default().to_owned();
            if state.stale_refused.insert(id) {
                *state.counts.entry("waf_stale_token").or_default() += 1;
                return Before::Answer(error(
                    "wafv2",
                    400,
                    "WAFOptimisticLockException",
                    "AWS WAF couldn't save your changes because someone changed the resource after you started to edit it.",
                ));
            }
        }

        // (A statement id a function's policy has is refused whatever the
        // switches: moto adds a second one.)
        if let Some(function) = call.rest("POST", &["2015-03-31", "functions", "*", "policy"]).map(|c| url_decode(c[0]))
            && let Some(id) = call.body["StatementId"].as_str()
            && state.permissions.get(&function).is_some_and(|ids| ids.contains(id))
        {
            *state.counts.entry("lambda_duplicate_statement").or_default() += 1;
            return Before::Answer(error(
                "lambda",
                409,
                "ResourceConflictException",
                &format!(
                    "The statement id ({id}) provided already exists. Please provide a new statement id, or remove \
                     the existing statement."
                ),
            ));
        }

        if let Some(limit) = b.lambda_environment_limit {
            let sets_environment = call.rest("POST", &["2015-03-31", "functions"]).is_some()
                || call.rest("PUT", &["2015-03-31", "functions", "*", "configuration"]).is_some();
            let variables = &call.body["Environment"]["Variables"];
            let measured = variables.to_string();
            if sets_environment && variables.is_object() && measured.len() > limit {
                *state.counts.entry("lambda_environment_limit").or_default() += 1;
                return Before::Answer(error(
                    "lambda",
                    400,
                    "InvalidParameterValueException",
                    &format!(
                        "Lambda was unable to configure your environment variables because the environment \
                         variables you have provided exceeded the 4KB limit. String measured: {measured}"
                    ),
                ));
            }
        }

        if b.iam_propagation && call.rest("POST", &["2015-03-31", "functions"]).is_some() {
            let role = call.body["Role"].as_str().unwrap_or_default();
            let name = role.rsplit('/').next().unwrap_or_default();
            // Refused while the role propagates, and always the first time: on
            // a loaded machine the scaled window can pass before the first
            // CreateFunction, and the behaviour must still be met.
            let propagating =
                state.roles.get(name).is_some_and(|at| now < *at + self.scaled(aws_time::IAM_PROPAGATION));
            let first = state.roles.contains_key(name) && !state.roles_refused.contains(name);
            if propagating || first {
                state.roles_refused.insert(name.to_owned());
                *state.counts.entry("iam_propagation").or_default() += 1;
                return Before::Answer(error(
                    "lambda",
                    400,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                ));
            }
        }

        if b.lambda_in_progress {
            let changing = call
                .rest("PUT", &["2015-03-31", "functions", "*", "configuration"])
                .or_else(|| call.rest("PUT", &["2015-03-31", "functions", "*", "code"]));
            if let Some(name) = changing.and_then(|c| c.first().map(|n| url_decode(n)))
                && state.functions.get(&name).is_some_and(|(until, _, _)| now < *until)
            {
                *state.counts.entry("lambda_in_progress").or_default() += 1;
                return Before::Answer(error(
                    "lambda",
                    409,
                    "ResourceConflictException",
                    &format!(
                        "The operation cannot be performed at this time. An update is in progress for resource: {name}"
                    ),
                ));
            }
        }

        // Domain tags are the layer's, as the rest of its domain model.
        if b.domain_mtls
            && call.rest("PUT", &["tags", "*"]).is_some_and(|c| url_decode(c[0]).contains(":/domainnames/"))
        {
            *state.counts.entry("domain_update_filled_in").or_default() += 1;
            return Before::Answer(Reply::status(204, ""));
        }

        let writes_to = if b.concurrent_writes { rest_apis::RestApis::written_by(&call) } else { None };
        let ip_rewrite = state.ip_address_types.before(&call);

        // Domain updates are the layer's too: it keeps the mutual TLS fields
        // itself, and answers with the domain as moto has it otherwise.
        if b.domain_mtls
            && let Some(name) = call.rest("PATCH", &["domainnames", "*"]).and_then(|c| c.first().map(|n| url_decode(n)))
        {
            let Some(domain) = state.domains.get_mut(&name) else {
                return Before::Answer(error(
                    "apigateway",
                    404,
                    "NotFoundException",
                    "Invalid domain name identifier specified",
                ));
            };
            let mut released = None;
            for operation in call.body["patchOperations"].as_array().into_iter().flatten() {
                let value = operation["value"].as_str().map(str::to_owned);
                match operation["path"].as_str().unwrap_or_default() {
                    "/mutualTlsAuthentication/truststoreUri" => domain.truststore_uri = value,
                    "/mutualTlsAuthentication/truststoreVersion" => domain.truststore_version = value,
                    "/ownershipVerificationCertificateArn" => domain.ownership_verification = value,
                    "/regionalCertificateArn" => {
                        let new = value.unwrap_or_default();
                        released = Some((std::mem::replace(&mut domain.certificate_arn, new.clone()), new));
                    }
                    _ => {}
                }
            }
            if b.domain_updating {
                domain.pending = Some(("UPDATING", now + self.scaled(aws_time::DOMAIN_UPDATE), false));
            }
            // ACM: the new certificate is in use; the old one for a while yet.
            if b.acm_in_use
                && let Some((old, new)) = released
            {
                state.certificate_in_use.insert(old, Some(now + self.scaled(aws_time::ACM_RELEASE)));
                state.certificate_in_use.insert(new, None);
            }
            *state.counts.entry("domain_update_filled_in").or_default() += 1;
            request.method = "GET".into();
            request.body.clear();
        }

        ip_address_types::IpAddressTypes::rewrite(request, ip_rewrite);

        // Last, so that a write counted in flight is one moto will see.
        if let Some(api) = writes_to {
            let in_flight = state.writes_in_flight.entry(api.clone()).or_default();
            if *in_flight > 0 {
                *state.counts.entry("concurrent_modification").or_default() += 1;
                return Before::Answer(error(
                    "apigateway",
                    409,
                    "ConflictException",
                    "Unable to complete operation due to concurrent modification. Please try again later.",
                ));
            }
            *in_flight += 1;
            return Before::Forward(Some(InFlight { layer: self.clone(), api }));
        }
        Before::Forward(None)
    }

    /// Changes moto's answer to what AWS would answer, and remembers what
    /// later calls depend on.
    /// `request` is the call as the deployer sent it (before `before` changed it).
    pub fn after(&self, request: &Recorded, reply: &mut Reply) {
        let call = Call::read(request);
        let now = Instant::now();
        let ok = (200..300).contains(&reply.status);
        let mut answer: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
        let mut changed = false;
        let mut state = self.state();

        // What was created when.
        if ok && call.is("iam", "CreateRole") {
            let name = request.body.split('&').find_map(|p| p.strip_prefix("RoleName=")).unwrap_or_default();
            state.roles.insert(url_decode(name), now);
        }
        if ok && call.service == "wafv2" {
            self.remember_waf(&call, &answer, &mut state, now);
        }
        if ok && call.service == "apigateway" {
            // A new stage (CreateStage, or CreateDeployment with a stage name).
            let stage = call
                .rest("POST", &["restapis", "*", "stages"])
                .and_then(|c| Some((c[0], call.body["stageName"].as_str()?)))
                .or_else(|| {
                    call.rest("POST", &["restapis", "*", "deployments"])
                        .and_then(|c| Some((c[0], call.body["stageName"].as_str()?)))
                });
            if let Some((api, stage)) = stage {
                let arn = format!("arn:aws:apigateway:{}::/restapis/{api}/stages/{stage}", call.region);
                state.waf_unavailable.insert(arn, now + self.scaled(aws_time::WAF_UNAVAILABLE));
            }
        }
        if ok && call.service == "lambda" {
            if let Some(function) =
                call.rest("POST", &["2015-03-31", "functions", "*", "policy"]).map(|c| url_decode(c[0]))
                && let Some(id) = call.body["StatementId"].as_str()
            {
                state.permissions.entry(function).or_default().insert(id.to_owned());
            }
            if let Some(c) = call.rest("DELETE", &["2015-03-31", "functions", "*", "policy", "*"]) {
                state.permissions.entry(url_decode(c[0])).or_default().remove(&url_decode(c[1]));
            }
            if let Some(c) = call.rest("DELETE", &["2015-03-31", "functions", "*"]) {
                state.permissions.remove(&url_decode(c[0]));
            }
            let created = call
                .rest("POST", &["2015-03-31", "functions"])
                .map(|_| (call.body["FunctionName"].as_str().unwrap_or_default().to_owned(), true));
            let updated = call
                .rest("PUT", &["2015-03-31", "functions", "*", "configuration"])
                .or_else(|| call.rest("PUT", &["2015-03-31", "functions", "*", "code"]))
                .map(|c| (url_decode(c[0]), false));
            if let Some((name, new)) = created.or(updated) {
                state.functions.insert(name, (now + self.scaled(aws_time::LAMBDA_UPDATE), new, false));
            }
        }
        if ok && call.service == "s3" && call.operation == "PUT" && request.body.contains("-----BEGIN CERTIFICATE-----")
        {
            let mut parts = call.path.trim_start_matches('/').splitn(2, '/');
            let (bucket, key) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let version = reply
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-version-id"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            state.truststores.insert((bucket.to_owned(), url_decode(key), version), truststore_warnings(&request.body));
            // S3: an upload right after versioning was enabled may store an
            // unversioned object, answered without a version id (the first
            // upload of each bucket always is, however late).
            if self.behaviours.s3_versioning_lag
                && let Some(enabled_at) = state.versioning_enabled_at.get(bucket).copied()
                && (now < enabled_at + self.scaled(aws_time::S3_VERSIONING)
                    || !state.unversioned_upload.contains(bucket))
            {
                state.unversioned_upload.insert(bucket.to_owned());
                reply.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-version-id"));
                *state.counts.entry("s3_versioning_lag").or_default() += 1;
            }
        }
        // CreateBucket: `PUT /BUCKET/`, nothing after the name.
        let path = request.path.trim_start_matches('/').trim_end_matches('/');
        if ok
            && self.behaviours.s3_create_lag
            && call.service == "s3"
            && request.method == "PUT"
            && !path.contains(['/', '?'])
        {
            state.new_buckets.insert(path.to_owned());
        }
        if ok && call.service == "s3" && request.path.contains("?versioning") {
            let bucket = call.path.trim_matches('/').to_owned();
            if call.operation == "PUT" && request.body.contains("<Status>Enabled</Status>") {
                state.versioning_enabled_at.entry(bucket).or_insert(now);
            } else if self.behaviours.s3_versioning_lag
                && call.operation == "GET"
                && state
                    .versioning_enabled_at
                    .get(&bucket)
                    .is_some_and(|at| now < *at + self.scaled(aws_time::S3_VERSIONING))
            {
                reply.body = r#"<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>"#.into();
                *state.counts.entry("s3_versioning_lag").or_default() += 1;
            }
        }

        if ok {
            state.rest_apis.record(&call, &answer);
            changed |= state.ip_address_types.after(&call, &mut answer);
        }
        if ok && call.service == "route53" && call.path.trim_end_matches('/').ends_with("/rrset") {
            let unserved = state.ip_address_types.aaaa_to_ipv4_only(&request.body);
            if unserved > 0 {
                *state.counts.entry("aaaa_to_ipv4_only").or_default() += unserved;
            }
        }

        if let Some(reason) = self.behaviours.acm_failure
            && ok
            && call.service == "acm"
        {
            if call.is("acm", "RequestCertificate")
                && let Some(arn) = answer["CertificateArn"].as_str()
            {
                state.failed_certificates.insert(arn.to_owned());
            }
            let arn = call.body["CertificateArn"].as_str().unwrap_or_default();
            if call.is("acm", "DescribeCertificate") && state.failed_certificates.contains(arn) {
                answer["Certificate"]["Status"] = json!("FAILED");
                answer["Certificate"]["FailureReason"] = json!(reason);
                *state.counts.entry("acm_failure").or_default() += 1;
                changed = true;
            }
            for summary in answer["CertificateSummaryList"].as_array_mut().into_iter().flatten() {
                if state.failed_certificates.contains(summary["CertificateArn"].as_str().unwrap_or_default()) {
                    summary["Status"] = json!("FAILED");
                    changed = true;
                }
            }
        }

        if self.behaviours.route53_propagation
            && ok
            && call.service == "route53"
            && request.method == "GET"
            && let Some(id) = request.path.split("/change/").nth(1)
            && state.changes_seen.insert(id.to_owned())
        {
            reply.body = reply.body.replace("<Status>INSYNC</Status>", "<Status>PENDING</Status>");
            *state.counts.entry("route53_pending").or_default() += 1;
        }

        if self.behaviours.dynamodb_settling && ok && call.service == "dynamodb" {
            let (creating, tags) = (self.scaled(aws_time::DYNAMODB_CREATE), self.scaled(aws_time::DYNAMODB_TAGS));
            let ttl = self.scaled(aws_time::DYNAMODB_TTL_INTERVAL);
            if let Some(behaviour) = state.tables.after(&call, &mut answer, now, creating, tags, ttl) {
                *state.counts.entry(behaviour).or_default() += 1;
                changed = true;
            }
        }

        if self.behaviours.acm_dns_validation && ok {
            changed |= self.dns_validation(&call, request, &mut answer, &mut state, now);
        }

        // Lambda: still in progress.
        if self.behaviours.lambda_in_progress && ok && call.service == "lambda" {
            let read = call.rest("GET", &["2015-03-31", "functions", "*"]).map(|c| (c[0], true)).or_else(|| {
                call.rest("GET", &["2015-03-31", "functions", "*", "configuration"]).map(|c| (c[0], false))
            });
            // In progress for the window, and always at the first read after a
            // change (on a loaded machine the scaled window can pass first).
            if let Some((name, wrapped)) = read
                && let Some((until, new, reported)) = state.functions.get(&url_decode(name)).copied()
                && (now < until || !reported)
            {
                if let Some(entry) = state.functions.get_mut(&url_decode(name)) {
                    entry.2 = true;
                }
                let configuration = if wrapped { &mut answer["Configuration"] } else { &mut answer };
                if configuration.is_object() {
                    configuration["LastUpdateStatus"] = json!("InProgress");
                    if new {
                        configuration["State"] = json!("Pending");
                    }
                    *state.counts.entry("lambda_in_progress").or_default() += 1;
                    changed = true;
                }
            }
        }

        // ACM: in use while the domain lives, and for a while after.
        if self.behaviours.acm_in_use && ok && call.service == "apigateway" {
            if call.rest("POST", &["domainnames"]).is_some()
                && let Some(arn) = call.body["regionalCertificateArn"].as_str()
            {
                state.certificate_in_use.insert(arn.to_owned(), None);
            }
            if let Some(name) =
                call.rest("DELETE", &["domainnames", "*"]).and_then(|c| c.first().map(|n| url_decode(n)))
                && let Some(domain) = state.domains.get(&name).cloned()
            {
                let until = now + self.scaled(aws_time::ACM_RELEASE);
                state.certificate_in_use.insert(domain.certificate_arn, Some(until));
            }
        }
        if self.behaviours.acm_in_use && ok && call.is("acm", "DescribeCertificate") {
            let arn = call.body["CertificateArn"].as_str().unwrap_or_default();
            if state.certificate_in_use.get(arn).is_some_and(|until| until.is_none_or(|t| now < t)) {
                let domain_arn = format!("arn:aws:apigateway:{}::/domainnames/(in use)", call.region);
                answer["Certificate"]["InUseBy"] = json!([domain_arn]);
                *state.counts.entry("acm_in_use").or_default() += 1;
                changed = true;
            }
        }

        // WAF: lists lag creates.
        if self.behaviours.waf_list_lag && ok && (call.is("wafv2", "ListIPSets") || call.is("wafv2", "ListWebACLs")) {
            let field = if call.operation == "ListIPSets" { "IPSets" } else { "WebACLs" };
            if let Some(items) = answer[field].as_array_mut() {
                let before = items.len();
                items.retain(|item| {
                    let arn = item["ARN"].as_str().unwrap_or_default();
                    state.waf_hidden.get(arn).is_none_or(|until| now >= *until)
                });
                if items.len() != before {
                    *state.counts.entry("waf_list_lag").or_default() += before - items.len();
                    changed = true;
                }
            }
        }

        // Custom domains: the mutual TLS fields moto drops, and the status
        // of a change in progress.
        if self.behaviours.domain_mtls && call.service == "apigateway" {
            let pending =
                self.behaviours.domain_updating.then(|| ("PENDING", now + self.scaled(aws_time::DOMAIN_UPDATE), false));
            changed |= fill_in_domains(&call, ok, &mut answer, &mut state, pending, now);
        }

        if changed {
            reply.body = answer.to_string();
        }

        // Last: AWS acted, and the answer never reaches the caller.
        if let Some(lost) = self.behaviours.lost_answers
            && ok
        {
            let (operation, mutating) = crate::moto::classify(request);
            if mutating && lost.only.is_none_or(|only| only == operation) && state.lost < lost.at_most {
                state.lost_seen += 1;
                let roll = splitmix(lost.seed ^ state.lost_seen.rotate_left(32));
                if (roll % 1_000_000) as f64 / 1_000_000.0 < lost.rate {
                    state.lost += 1;
                    *state.counts.entry("lost_answer").or_default() += 1;
                    *reply = match roll % 3 {
                        0 => Reply::hang_up(),
                        1 => Reply::status(503, "{}").header("content-type", "application/json"),
                        _ => Reply::status(500, "{}").header("content-type", "application/json"),
                    };
                }
            }
        }
    }
}

/// A well-mixed 64-bit number from `seed` (SplitMix64): the same faults for
/// the same seed and call order.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
