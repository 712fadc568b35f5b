//! What IAM authorises each AWS call the deployer makes as: the actions, on
//! which resources, with which context keys, written from the AWS Service
//! Authorization Reference and the services' guides, independently of the
//! policy the deployer prints (`deployer policy`). The tests evaluate every
//! call the proxy recorded against that policy with `iam::allows_request`.
//!
//! Beyond the one action per operation, the calls that need more say so:
//! a role handed to a service needs `iam:PassRole` (with
//! `iam:PassedToService`); tags sent with a create need the service's tag
//! action; a custom domain with mutual TLS needs
//! `apigateway:AddCertificateToDomain`, and API Gateway reads its truststore
//! object with the caller's credentials (`s3:GetObject`,
//! `s3:GetObjectVersion`); a WAF association needs `apigateway:SetWebACL`.
//!
//! A call this module does not know is a panic: an operation the deployer
//! starts sending must be mapped (and so judged) before the tests pass.

use serde_json::Value;

use crate::iam::Request;
use crate::moto::Call;

/// Where the calls go.
pub struct Account<'a> {
    pub id: &'a str,
    pub region: &'a str,
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The SigV4 service of a call (`Credential=AKID/DATE/REGION/SERVICE/…`).
fn service(call: &Call) -> String {
    call.request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or_default()
        .to_owned()
}

/// `Key=value` pairs of a query-protocol body or a query string.
fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(k, v)| (decode(k), decode(&v.replace('+', " "))))
        .collect()
}

/// The IAM requests a recorded call is authorised by.
pub fn requests(call: &Call, account: &Account<'_>) -> Vec<Request> {
    let path_and_query = call.request.path.as_str();
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let body: Value = serde_json::from_str(&call.request.body).unwrap_or(Value::Null);
    let method = call.request.method.as_str();
    match service(call).as_str() {
        "sts" => Vec::new(), // GetCallerIdentity needs no permission.
        "iam" => iam(&form(&call.request.body), account),
        "lambda" => lambda(method, path, &body, account),
        "apigateway" => apigateway(method, &decode(path), &body, account),
        "acm" => acm(&call.service_operation, &body),
        "s3" => s3(method, path, query, &call.request.body),
        "wafv2" => wafv2(&call.service_operation, &body, account),
        "route53" => route53(method, path),
        "logs" => logs(&call.service_operation, &body, account),
        other => panic!("no IAM mapping for service {other:?}: {} {}", call.request.method, call.request.path),
    }
}

fn iam(form: &[(String, String)], account: &Account<'_>) -> Vec<Request> {
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let action = get("Action").expect("an IAM call names its action");
    let resource = get("RoleName").map_or_else(|| "*".to_owned(), |r| format!("arn:aws:iam::{}:role/{r}", account.id));
    let mut requests = vec![Request::new(format!("iam:{action}"), &resource)];
    if let Some(policy) = get("PolicyArn") {
        requests[0] = requests[0].clone().with("iam:PolicyARN", &[policy]);
    }
    if action == "CreateRole" && form.iter().any(|(k, _)| k.starts_with("Tags.member.")) {
        requests.push(Request::new("iam:TagRole", &resource));
    }
    requests
}

fn lambda(method: &str, path: &str, body: &Value, account: &Account<'_>) -> Vec<Request> {
    let function = |name: &str| format!("arn:aws:lambda:{}:{}:function:{}", account.region, account.id, decode(name));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pass_role = |requests: &mut Vec<Request>| {
        if let Some(role) = body["Role"].as_str() {
            requests.push(Request::new("iam:PassRole", role).with("iam:PassedToService", &["lambda.amazonaws.com"]));
        }
    };
    match (method, segments.as_slice()) {
        ("POST", ["2015-03-31", "functions"]) => {
            let arn = function(body["FunctionName"].as_str().unwrap_or_default());
            let mut requests = vec![Request::new("lambda:CreateFunction", &arn)];
            if body["Tags"].as_object().is_some_and(|t| !t.is_empty()) {
                requests.push(Request::new("lambda:TagResource", &arn));
            }
            pass_role(&mut requests);
            requests
        }
        ("GET", ["2015-03-31", "functions"]) => vec![Request::new("lambda:ListFunctions", "*")],
        ("GET", ["2015-03-31", "functions", name]) => vec![Request::new("lambda:GetFunction", function(name))],
        ("DELETE", ["2015-03-31", "functions", name]) => vec![Request::new("lambda:DeleteFunction", function(name))],
        ("GET", ["2015-03-31", "functions", name, "configuration"]) => {
            vec![Request::new("lambda:GetFunctionConfiguration", function(name))]
        }
        ("PUT", ["2015-03-31", "functions", name, "configuration"]) => {
            let mut requests = vec![Request::new("lambda:UpdateFunctionConfiguration", function(name))];
            pass_role(&mut requests);
            requests
        }
        ("PUT", ["2015-03-31", "functions", name, "code"]) => {
            vec![Request::new("lambda:UpdateFunctionCode", function(name))]
        }
        (method, ["2017-03-31", "tags", arn]) => {
            let action = match method {
                "GET" => "lambda:ListTags",
                "POST" => "lambda:TagResource",
                "DELETE" => "lambda:UntagResource",
                other => panic!("Lambda tags: {other}"),
            };
            vec![Request::new(action, decode(arn))]
        }
        _ => panic!("no IAM mapping for Lambda {method} {path}"),
    }
}

fn apigateway(method: &str, path: &str, body: &Value, account: &Account<'_>) -> Vec<Request> {
    let arn = |path: &str| format!("arn:aws:apigateway:{}::{path}", account.region);
    let mut requests = vec![Request::new(format!("apigateway:{method}"), arn(path))];
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let truststore_read = |uri: &str, version: Option<&str>| {
        let object = format!("arn:aws:s3:::{}", uri.trim_start_matches("s3://"));
        let mut reads = vec![Request::new("s3:GetObject", &object)];
        if version.is_some() {
            reads.push(Request::new("s3:GetObjectVersion", &object));
        }
        reads
    };
    let patched = |prefix: &str| {
        body["patchOperations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|op| op["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
            .cloned()
            .collect::<Vec<Value>>()
    };
    let pass_to_api_gateway =
        |role: &str| Request::new("iam:PassRole", role).with("iam:PassedToService", &["apigateway.amazonaws.com"]);
    match (method, segments.as_slice()) {
        // A custom domain with mutual TLS, created or changed: the extra
        // permission, and the truststore read with the caller's credentials.
        ("POST", ["domainnames"]) => {
            let mtls = &body["mutualTlsAuthentication"];
            if let Some(uri) = mtls["truststoreUri"].as_str() {
                let domain = body["domainName"].as_str().unwrap_or_default();
                requests
                    .push(Request::new("apigateway:AddCertificateToDomain", arn(&format!("/domainnames/{domain}"))));
                requests.extend(truststore_read(uri, mtls["truststoreVersion"].as_str()));
            }
        }
        ("PATCH", ["domainnames", domain]) if !patched("/mutualTlsAuthentication").is_empty() => {
            requests.push(Request::new("apigateway:AddCertificateToDomain", arn(&format!("/domainnames/{domain}"))));
        }
        ("POST", ["restapis", _, "authorizers"]) if body["authorizerCredentials"].is_string() => {
            requests.push(pass_to_api_gateway(body["authorizerCredentials"].as_str().unwrap_or_default()));
        }
        ("PATCH", ["account"]) => {
            for op in patched("/cloudwatchRoleArn") {
                requests.push(pass_to_api_gateway(op["value"].as_str().unwrap_or_default()));
            }
        }
        ("PATCH", ["restapis", _, "authorizers", _]) => {
            for op in patched("/authorizerCredentials") {
                requests.push(pass_to_api_gateway(op["value"].as_str().unwrap_or_default()));
            }
        }
        _ => {}
    }
    // Tags sent with a create are authorised as a tagging of the new resource.
    if method == "POST" && body["tags"].as_object().is_some_and(|t| !t.is_empty()) {
        requests.push(Request::new("apigateway:PUT", arn("/tags/*")));
    }
    requests
}

fn acm(operation: &str, body: &Value) -> Vec<Request> {
    match operation {
        "ListCertificates" => vec![Request::new("acm:ListCertificates", "*")],
        "RequestCertificate" => {
            let mut names: Vec<&str> = vec![body["DomainName"].as_str().unwrap_or_default()];
            names.extend(body["SubjectAlternativeNames"].as_array().into_iter().flatten().filter_map(Value::as_str));
            let mut requests = vec![Request::new("acm:RequestCertificate", "*").with("acm:DomainNames", &names)];
            if body["Tags"].as_array().is_some_and(|t| !t.is_empty()) {
                requests.push(Request::new("acm:AddTagsToCertificate", "*").with("acm:DomainNames", &names));
            }
            requests
        }
        operation => {
            let arn = body["CertificateArn"].as_str().unwrap_or_else(|| panic!("ACM {operation}: no CertificateArn"));
            vec![Request::new(format!("acm:{operation}"), arn)]
        }
    }
}

fn s3(method: &str, path: &str, query: &str, body: &str) -> Vec<Request> {
    let path = decode(path);
    let (bucket, key) = path.trim_start_matches('/').split_once('/').unwrap_or((path.trim_start_matches('/'), ""));
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let object_arn = format!("arn:aws:s3:::{bucket}/{key}");
    let params = form(query);
    let has = |name: &str| params.iter().any(|(k, _)| k == name);
    let on_bucket = |action: &str| vec![Request::new(action, &bucket_arn)];
    if key.is_empty() {
        return match method {
            "PUT" if has("versioning") => on_bucket("s3:PutBucketVersioning"),
            "GET" if has("versioning") => on_bucket("s3:GetBucketVersioning"),
            "PUT" | "DELETE" if has("publicAccessBlock") => on_bucket("s3:PutBucketPublicAccessBlock"),
            "GET" if has("publicAccessBlock") => on_bucket("s3:GetBucketPublicAccessBlock"),
            "PUT" | "DELETE" if has("tagging") => on_bucket("s3:PutBucketTagging"),
            "GET" if has("tagging") => on_bucket("s3:GetBucketTagging"),
            "GET" if has("versions") => on_bucket("s3:ListBucketVersions"),
            "GET" if has("location") => on_bucket("s3:GetBucketLocation"),
            "POST" if has("delete") => {
                // DeleteObjects: each object (and version) named in the body.
                let mut requests = Vec::new();
                for object in body.split("<Object>").skip(1) {
                    let field = |tag: &str| {
                        object.split_once(&format!("<{tag}>")).and_then(|(_, r)| r.split_once(&format!("</{tag}>")))
                    };
                    let key = field("Key").map(|(k, _)| k).unwrap_or_default();
                    let action =
                        if field("VersionId").is_some() { "s3:DeleteObjectVersion" } else { "s3:DeleteObject" };
                    requests.push(Request::new(action, format!("{bucket_arn}/{key}")));
                }
                requests
            }
            "GET" | "HEAD" => on_bucket("s3:ListBucket"),
            "PUT" if params.is_empty() => on_bucket("s3:CreateBucket"),
            "DELETE" if params.is_empty() => on_bucket("s3:DeleteBucket"),
            _ => panic!("no IAM mapping for S3 {method} /{bucket}?{query}"),
        };
    }
    let versioned = has("versionId");
    let action = match method {
        "GET" | "HEAD" if has("tagging") => "s3:GetObjectTagging",
        "PUT" if has("tagging") => "s3:PutObjectTagging",
        "GET" | "HEAD" if versioned => "s3:GetObjectVersion",
        "GET" | "HEAD" => "s3:GetObject",
        "PUT" => "s3:PutObject",
        "DELETE" if versioned => "s3:DeleteObjectVersion",
        "DELETE" => "s3:DeleteObject",
        _ => panic!("no IAM mapping for S3 {method} /{bucket}/{key}?{query}"),
    };
    vec![Request::new(action, object_arn)]
}

fn wafv2(operation: &str, body: &Value, account: &Account<'_>) -> Vec<Request> {
    let regional = |kind: &str, name: &str, id: &str| {
        format!("arn:aws:wafv2:{}:{}:regional/{kind}/{name}/{id}", account.region, account.id)
    };
    let text = |field: &str| body[field].as_str().unwrap_or_default();
    let action = format!("wafv2:{operation}");
    match operation {
        "ListIPSets" | "ListWebACLs" => vec![Request::new(action, "*")],
        "CreateIPSet" => vec![Request::new(action, regional("ipset", text("Name"), "*"))],
        "CreateWebACL" => vec![Request::new(action, regional("webacl", text("Name"), "*"))],
        "GetIPSet" | "UpdateIPSet" | "DeleteIPSet" => {
            vec![Request::new(action, regional("ipset", text("Name"), text("Id")))]
        }
        "GetWebACL" | "UpdateWebACL" | "DeleteWebACL" => match body.get("ARN").and_then(Value::as_str) {
            Some(arn) => vec![Request::new(action, arn)],
            None => vec![Request::new(action, regional("webacl", text("Name"), text("Id")))],
        },
        "ListTagsForResource" | "TagResource" | "UntagResource" => vec![Request::new(action, text("ResourceARN"))],
        "AssociateWebACL" => vec![
            Request::new(&action, text("WebACLArn")),
            Request::new(&action, text("ResourceArn")),
            Request::new("apigateway:SetWebACL", text("ResourceArn")),
        ],
        "DisassociateWebACL" => {
            vec![Request::new(&action, text("ResourceArn")), Request::new("apigateway:SetWebACL", text("ResourceArn"))]
        }
        "GetWebACLForResource" => vec![Request::new(action, text("ResourceArn"))],
        other => panic!("no IAM mapping for WAFv2 {other}"),
    }
}

/// CloudWatch Logs: log groups by ARN (`log-group:NAME`); a create with
/// tags is a tagging too; listing is on every group of the account.
fn logs(operation: &str, body: &Value, account: &Account<'_>) -> Vec<Request> {
    let group = |name: &str| format!("arn:aws:logs:{}:{}:log-group:{name}", account.region, account.id);
    let action = format!("logs:{operation}");
    let name = body["logGroupName"].as_str().unwrap_or_default();
    match operation {
        "DescribeLogGroups" => vec![Request::new(action, group("*"))],
        "CreateLogGroup" => {
            let mut requests = vec![Request::new(action, group(name))];
            if body["tags"].as_object().is_some_and(|t| !t.is_empty()) {
                requests.push(Request::new("logs:TagResource", group(name)));
            }
            requests
        }
        "PutRetentionPolicy" | "DeleteLogGroup" => vec![Request::new(action, group(name))],
        "ListTagsForResource" | "TagResource" => {
            vec![Request::new(action, body["resourceArn"].as_str().unwrap_or_default())]
        }
        other => panic!("no IAM mapping for CloudWatch Logs {other}"),
    }
}

fn route53(method: &str, path: &str) -> Vec<Request> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["2013-04-01", "hostedzone", zone, "rrset"]) => {
            vec![Request::new("route53:ListResourceRecordSets", format!("arn:aws:route53:::hostedzone/{zone}"))]
        }
        ("POST", ["2013-04-01", "hostedzone", zone, "rrset"]) => {
            vec![Request::new("route53:ChangeResourceRecordSets", format!("arn:aws:route53:::hostedzone/{zone}"))]
        }
        _ => panic!("no IAM mapping for Route 53 {method} {path}"),
    }
}
