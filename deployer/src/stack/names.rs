//! Every name and ARN the deployer derives from the stack, in one place: the
//! resource kinds create under these names, `deployer policy` scopes the
//! pipeline's permissions to them, and a renamed resource is renamed
//! everywhere at once. Names the stack file gives itself (the domain, the
//! truststore bucket, the stage) are the file's and are not here.

/// Tag carried by everything the deployer creates; nothing without it (or
/// outside an API that carries it) is ever changed or deleted.
pub const OWNER_TAG: &str = "oauth-gateway:stack";

/// Tag on a requested certificate and on the custom domain: the Route 53
/// hosted zone their records were written in, so that teardown (or a stack
/// that drops `hosted_zone_id`) finds and deletes exactly those records.
pub const HOSTED_ZONE_TAG: &str = "oauth-gateway:hosted-zone";

/// The authorizer's Lambda function.
pub fn function(stack: &str) -> String {
    format!("{stack}-authorizer")
}

/// The function's execution role (Lambda assumes it).
pub fn execution_role(stack: &str) -> String {
    format!("{stack}-authorizer-exec")
}

/// The role API Gateway assumed to invoke the function before it was
/// allowed by the function's resource policy instead: no longer created,
/// still found and removed where an earlier deployer made it.
pub fn legacy_invoke_role(stack: &str) -> String {
    format!("{stack}-authorizer-invoke")
}

/// The permissions boundary of every role the stack creates: a managed
/// policy an operator makes (`deployer bootstrap`), the ceiling of what
/// those roles may ever do, whatever the pipeline writes into them.
pub fn permissions_boundary(stack: &str) -> String {
    format!("{stack}-role-boundary")
}

/// The Secrets Manager secret holding the authorizer's secret variables
/// (the introspection client secret, Authlete's API secret), read by the
/// function at init: never in its environment.
pub fn authorizer_secret(stack: &str) -> String {
    format!("oauth-gateway/{stack}/authorizer")
}

/// The DynamoDB table every instance of the function records accepted
/// DPoP proofs in (`authorizer.dpop_replay_store: dynamodb`).
pub fn dpop_replay_table(stack: &str) -> String {
    format!("{stack}-dpop-replay")
}

/// The statement of the function's resource policy that lets API Gateway
/// invoke it for the stack's authorizer.
pub fn invoke_permission(stack: &str) -> String {
    format!("{stack}-apigateway-invoke")
}

/// The REQUEST authorizer in the REST API.
pub fn api_authorizer(stack: &str) -> String {
    format!("{stack}-oauth")
}

/// The WAF IP set of one address family.
pub fn ip_set(stack: &str, ipv6: bool) -> String {
    format!("{stack}-allow-{}", if ipv6 { "ipv6" } else { "ipv4" })
}

/// The WAF web ACL on the stage.
pub fn web_acl(stack: &str) -> String {
    format!("{stack}-allowlist")
}

/// The function's log group: where Lambda writes, and the name under which
/// it would create an untagged, never-expiring group if none existed.
pub fn function_log_group(stack: &str) -> String {
    format!("/aws/lambda/{}", function(stack))
}

/// The stage's access log group.
pub fn access_log_group(stack: &str, stage: &str) -> String {
    format!("{}{stage}/access", access_log_prefix(stack))
}

/// What the access log groups of every stage of the stack start with.
pub fn access_log_prefix(stack: &str) -> String {
    format!("/aws/apigateway/{stack}/")
}

/// API Gateway's account-level CloudWatch role, when the deployer creates
/// it (`stage.access_log.account_role: create`). One per account, shared by
/// every API that logs, so it is named for the account, not the stack, and
/// never deleted.
pub const ACCOUNT_LOG_ROLE: &str = "oauth-gateway-apigateway-cloudwatch";

/// The deployer's lock bucket of an account and region.
pub fn lock_bucket(account: &str, region: &str) -> String {
    format!("oauth-gateway-{account}-{region}")
}

/// Where ARNs point: partition, region and account.
#[derive(Debug, Clone, Copy)]
pub struct Arns<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
}

impl Arns<'_> {
    pub fn role(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{name}", self.partition, self.account)
    }

    pub fn function(&self, stack: &str) -> String {
        format!("arn:{}:lambda:{}:{}:function:{}", self.partition, self.region, self.account, function(stack))
    }

    /// A log group's ARN as API Gateway's access log destination takes it
    /// (without the `:*` DescribeLogGroups appends to `arn`).
    pub fn dynamodb_table(&self, name: &str) -> String {
        format!("arn:{}:dynamodb:{}:{}:table/{name}", self.partition, self.region, self.account)
    }

    pub fn log_group(&self, name: &str) -> String {
        format!("arn:{}:logs:{}:{}:log-group:{name}", self.partition, self.region, self.account)
    }

    /// A stage, as WAF associations and tags name it.
    pub fn stage(&self, api_id: &str, stage: &str) -> String {
        format!("arn:{}:apigateway:{}::/restapis/{api_id}/stages/{stage}", self.partition, self.region)
    }

    /// A custom domain, as tags name it.
    pub fn domain(&self, name: &str) -> String {
        format!("arn:{}:apigateway:{}::/domainnames/{name}", self.partition, self.region)
    }

    /// What a secret variable's reference reads: an SSM parameter by name
    /// (`/pets/x` → `parameter/pets/x`) or ARN; a Secrets Manager secret by
    /// ARN, or by name (its ARN ends with six characters AWS adds).
    pub fn secret_reference(&self, reference: &authorizer::secrets::Reference) -> String {
        use authorizer::secrets::Reference;
        match reference {
            Reference::Ssm(arn) | Reference::SecretsManager(arn) if arn.starts_with("arn:") => arn.clone(),
            Reference::Ssm(name) => format!(
                "arn:{}:ssm:{}:{}:parameter/{}",
                self.partition,
                self.region,
                self.account,
                name.trim_start_matches('/')
            ),
            Reference::SecretsManager(name) => {
                format!("arn:{}:secretsmanager:{}:{}:secret:{name}-??????", self.partition, self.region, self.account)
            }
        }
    }

    /// The authorizer's secret, whatever suffix Secrets Manager gave its ARN.
    pub fn authorizer_secret(&self, stack: &str) -> String {
        format!(
            "arn:{}:secretsmanager:{}:{}:secret:{}-??????",
            self.partition,
            self.region,
            self.account,
            authorizer_secret(stack)
        )
    }

    /// A customer managed policy of the account.
    pub fn policy(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:policy/{name}", self.partition, self.account)
    }

    /// API Gateway's service-linked role, made with the first custom domain
    /// of an account (by the caller's rights).
    pub fn api_gateway_service_linked_role(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway",
            self.partition, self.account
        )
    }

    /// An AWS managed policy.
    pub fn managed_policy(&self, path: &str) -> String {
        format!("arn:{}:iam::aws:policy/{path}", self.partition)
    }
}
