//! The one place that builds AWS clients: region, profile and endpoint come
//! from aws-config's usual chain (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, per-service `AWS_ENDPOINT_URL_*`).

use aws_config::BehaviorVersion;

/// How the SDK retries what every service may answer: throttling (429
/// `TooManyRequestsException`, `Throttling`), 5xx, timeouts and dropped
/// connections. API Gateway allows CreateDomainName once every 30 s per
/// account: the default (3 attempts, about 1 s apart) cannot wait that out;
/// 10 attempts with backoff up to 20 s (jittered) span about a minute.
/// The SDK's retry quota (a token bucket that stops retries after many
/// failures, meant for long-running services) is off: each call's attempts
/// are bounded anyway, and a deployer that gives up half-way leaves more
/// behind than one that waits.
///
/// Every call is bounded in time too (an attempt 2 minutes, a call with its
/// retries 15, scaled, never under 5 s and 20 s): a call that hangs cannot
/// hold the stack's lock forever.
macro_rules! with_retries {
    ($service:ident, $config:expr) => {{
        use $service::config::retry::{RetryConfig, RetryPartition, TokenBucket};
        use $service::config::timeout::TimeoutConfig;
        let (attempt, call) = crate::aws::call_timeouts();
        $service::config::Builder::from($config)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(10)
                    .with_initial_backoff(crate::retry::scaled(std::time::Duration::from_secs(1)))
                    .with_max_backoff(crate::retry::scaled(std::time::Duration::from_secs(20))),
            )
            .retry_partition(RetryPartition::custom("deployer").token_bucket(TokenBucket::unlimited()).build())
            .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(attempt).operation_timeout(call).build())
            .build()
    }};
}

/// How long one attempt of a call, and a call with all its attempts, may take.
pub fn call_timeouts() -> (std::time::Duration, std::time::Duration) {
    use std::time::Duration;
    let attempt = crate::retry::scaled(Duration::from_secs(120)).max(Duration::from_secs(5));
    let call = crate::retry::scaled(Duration::from_secs(15 * 60)).max(Duration::from_secs(20));
    (attempt, call)
}

/// Every S3 call names the account its bucket must belong to
/// (`x-amz-expected-bucket-owner`): bucket names are global, and a bucket of
/// the stack's name that was deleted and taken by another account must never
/// get the truststore or hold the lock (S3 answers 403 instead). CreateBucket
/// takes no owner: the bucket is the caller's once made.
#[derive(Debug)]
struct ExpectedBucketOwner(String);

impl aws_sdk_s3::config::Intercept for ExpectedBucketOwner {
    fn name(&self) -> &'static str {
        "ExpectedBucketOwner"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let operation = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().map(|m| m.name());
        if operation != Some("CreateBucket") {
            context.request_mut().headers_mut().insert("x-amz-expected-bucket-owner", self.0.clone());
        }
        Ok(())
    }
}

/// Declares the [`Aws`] handle with one client per service, each built by
/// [`with_retries!`] and then by its own adjustment, if any: one line per
/// AWS service (and its crate in `deployer/Cargo.toml`).
macro_rules! services {
    ($($field:ident: $service:ident $(=> $adjust:expr)?),+ $(,)?) => {
        #[derive(Clone)]
        pub struct Aws {
            pub region: String,
            pub account: String,
            /// `aws`, `aws-cn`, `aws-us-gov`: from the caller's ARN, for every ARN the deployer builds.
            pub partition: String,
            $(pub $field: $service::Client,)+
            /// How long `apply` waits for ACM to issue a requested certificate
            /// before it leaves the rest for a later run (unscaled;
            /// `apply --wait-for-certificate`).
            pub certificate_wait: std::time::Duration,
        }

        impl Aws {
            fn with_clients(config: &aws_config::SdkConfig, region: String, account: String, partition: String) -> Aws {
                $(
                    let conf = with_retries!($service, config);
                    $(let conf = $adjust(conf, &account);)?
                    let $field = $service::Client::from_conf(conf);
                )+
                Aws { region, account, partition, $($field,)+ certificate_wait: CERTIFICATE_WAIT }
            }
        }
    };
}

services! {
    iam: aws_sdk_iam,
    lambda: aws_sdk_lambda,
    // Every API Gateway call is retried on "concurrent modification" too.
    apigateway: aws_sdk_apigateway => |conf: aws_sdk_apigateway::Config, _: &str| {
        conf.to_builder().retry_classifier(crate::retry::ConcurrentModification).build()
    },
    acm: aws_sdk_acm,
    // Path-style addressing works everywhere, including endpoints such as
    // localhost that cannot take a bucket subdomain; every call names the
    // account its bucket must belong to.
    s3: aws_sdk_s3 => |conf: aws_sdk_s3::Config, account: &str| {
        conf.to_builder().force_path_style(true).interceptor(ExpectedBucketOwner(account.to_owned())).build()
    },
    wafv2: aws_sdk_wafv2,
    route53: aws_sdk_route53,
    logs: aws_sdk_cloudwatchlogs,
    dynamodb: aws_sdk_dynamodb,
    secretsmanager: aws_sdk_secretsmanager,
}

impl Aws {
    /// ARNs in this client's partition, region and account.
    pub fn arns(&self) -> crate::stack::names::Arns<'_> {
        crate::stack::names::Arns { partition: &self.partition, region: &self.region, account: &self.account }
    }
}

/// How long `apply` waits for a certificate's DNS validation by default,
/// when someone else writes its record (the run then exits 3, and the next
/// one finishes once the record exists)...
pub const CERTIFICATE_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// ...and when the deployer writes it in the stack's hosted zone: ACM takes
/// minutes to over an hour after the record is served (terraform waits 75
/// minutes by default, the SDKs' waiter 40), and one run should be enough.
pub const CERTIFICATE_WAIT_WITH_HOSTED_ZONE: std::time::Duration = std::time::Duration::from_secs(45 * 60);

impl Aws {
    /// `region` from stack.yaml wins over the environment's.
    pub async fn connect(region: Option<&str>) -> anyhow::Result<Aws> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        let config = loader.load().await;
        let region = config
            .region()
            .map(ToString::to_string)
            .ok_or_else(|| anyhow::anyhow!("no AWS region: set `region` in stack.yaml or AWS_REGION"))?;
        let sts = aws_sdk_sts::Client::from_conf(with_retries!(aws_sdk_sts, &config));
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            anyhow::anyhow!("reading the AWS account (sts:GetCallerIdentity): {}", crate::error::describe(&e))
        })?;
        let account = identity.account().unwrap_or_default().to_owned();
        let partition = identity.arn().and_then(|arn| arn.split(':').nth(1)).unwrap_or("aws").to_owned();
        Ok(Aws::with_clients(&config, region, account, partition))
    }
}

/// The per-call configuration that keeps the SDK from sending a create
/// again after a lost answer (`retry::AnswerMayBeLost`), for
/// `.customize().config_override(..)` on the creates `retry::create_or_find`
/// sends.
pub fn answer_may_be_lost() -> aws_sdk_apigateway::config::Builder {
    aws_sdk_apigateway::config::Builder::default().retry_classifier(crate::retry::AnswerMayBeLost)
}

/// S3 buckets as the deployer makes them (the lock bucket, truststores).
pub mod buckets {
    use aws_sdk_s3::operation::create_bucket::builders::CreateBucketFluentBuilder;
    use aws_sdk_s3::operation::put_public_access_block::builders::PutPublicAccessBlockFluentBuilder;
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration};

    use super::Aws;

    /// CreateBucket in the stack's region. us-east-1 is the one region that
    /// refuses an explicit location constraint.
    pub fn create(aws: &Aws, bucket: &str) -> CreateBucketFluentBuilder {
        let create = aws.s3.create_bucket().bucket(bucket);
        if aws.region == "us-east-1" {
            return create;
        }
        create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(aws.region.as_str()))
                .build(),
        )
    }

    /// How long S3 may take to show a bucket just made (terraform waits two minutes).
    const NEW_BUCKET: std::time::Duration = std::time::Duration::from_secs(120);

    /// Waits until S3 shows a bucket this run just made: right after
    /// CreateBucket, requests about it may be answered NoSuchBucket.
    pub async fn wait_visible(aws: &Aws, bucket: &str) -> anyhow::Result<()> {
        use crate::error::SdkResult as _;
        let waiting_for = format!("S3 to show the new bucket {bucket}");
        crate::retry::wait_until(&waiting_for, NEW_BUCKET, || async {
            Ok(aws.s3.head_bucket().bucket(bucket).send().await.found("HeadBucket")?.map(drop))
        })
        .await
    }

    /// PutPublicAccessBlock with all four blocks on.
    pub fn block_public_access(aws: &Aws, bucket: &str) -> PutPublicAccessBlockFluentBuilder {
        aws.s3.put_public_access_block().bucket(bucket).public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
    }
}
