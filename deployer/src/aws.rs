//! The one place that builds AWS clients: region, profile and endpoint come
//! from aws-config's usual chain (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ENDPOINT_URL`, per-service `AWS_ENDPOINT_URL_*`).

use aws_config::BehaviorVersion;

pub struct Aws {
    pub region: String,
    pub account: String,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub acm: aws_sdk_acm::Client,
    pub s3: aws_sdk_s3::Client,
    pub wafv2: aws_sdk_wafv2::Client,
}

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
        let sts = aws_sdk_sts::Client::new(&config);
        let identity = sts.get_caller_identity().send().await.map_err(|e| {
            anyhow::anyhow!("reading the AWS account (sts:GetCallerIdentity): {}", crate::error::describe(&e))
        })?;
        let account = identity.account().unwrap_or_default().to_owned();
        // Path-style addressing works everywhere, including endpoints such as
        // localhost that cannot take a bucket subdomain.
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
        Ok(Aws {
            region,
            account,
            iam: aws_sdk_iam::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigateway: aws_sdk_apigateway::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            s3,
            wafv2: aws_sdk_wafv2::Client::new(&config),
        })
    }
}
