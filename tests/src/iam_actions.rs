//! What IAM authorises each AWS call the deployer makes as: the actions, on
//! which resources, with which context keys, written from the AWS Service
//! Authorization Reference and the services' guides, independently of the
//! policy the deployer prints (`deployer policy`). The AWS-like proxy
//! judges every call against the caller's policy with these
//! (`e2e::access`), and tests judge recorded calls with them.
//!
//! Beyond the one action per operation, the calls that need more say so:
//! - a role handed to a service needs `iam:PassRole` (`iam:PassedToService`);
//! - tags sent with a create are also the service's tag action, with the
//!   create's own context (`aws:RequestTag/…`, `aws:TagKeys`, and for ACM
//!   `acm:DomainNames`); API Gateway names that tagging by the URL-encoded
//!   ARN of the new resource, a literal `*` standing for an id not chosen yet;
//! - a custom domain with mutual TLS needs `apigateway:AddCertificateToDomain`
//!   (and, when its truststore changes, `RemoveCertificateFromDomain`), and
//!   API Gateway reads its truststore object with the caller's credentials
//!   (`s3:GetObject`, `s3:GetObjectVersion`);
//! - a WAF association needs `apigateway:SetWebACL` on the stage; a web ACL
//!   is authorised on the IP sets its rules reference too;
//! - a Lambda permission carries `lambda:Principal`; a Route 53 change its
//!   record names, types and actions.
//!
//! What a call does not say itself (the tags of the resource it acts on,
//! inherited by a REST API's children and a domain's mappings as API Gateway
//! documents; the permissions boundary a role has now) is a [`Lookup`] the
//! judge fills in from the account.
//!
//! A call this module does not know is a panic: an operation the deployer
//! starts sending must be mapped (and so judged) before the tests pass.

use serde_json::Value;

use crate::iam::Request;
use crate::moto::Call;

/// Where the calls go.
pub struct Account<'a> {
    pub id: &'a str,
    /// The region of calls that do not say theirs.
    pub region: &'a str,
}

/// A context value the account holds, not the call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lookup {
    /// `aws:ResourceTag/…` of a REST API, or of a stage in it (its own tags
    /// over the API's).
    RestApiTags { region: String, api: String, stage: Option<String> },
    /// `aws:ResourceTag/…` of a custom domain (and its mappings).
    DomainTags { region: String, domain: String },
    /// `aws:ResourceTag/…` of an ACM certificate.
    CertificateTags { region: String, arn: String },
    /// `iam:PermissionsBoundary` of a role as it is.
    RoleBoundary(String),
    /// A Secrets Manager secret named by name or ARN: its ARN (the request's
    /// resource) and its tags.
    Secret { region: String, id: String },
}

/// One IAM request a call is authorised by, and what its context still needs.
#[derive(Debug, Clone)]
pub struct Needed {
    pub request: Request,
    pub lookup: Option<Lookup>,
}

impl From<Request> for Needed {
    fn from(request: Request) -> Needed {
        Needed { request, lookup: None }
    }
}

impl Needed {
    fn looking_up(request: Request, lookup: Lookup) -> Needed {
        Needed { request, lookup: Some(lookup) }
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// An ARN as API Gateway's tags path carries it: URL-encoded (what
/// `percent_encoding` escapes by default, upper case), a `*` kept.
fn encode_arn(arn: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'*');
    percent_encoding::utf8_percent_encode(arn, SET).to_string()
}

/// The SigV4 scope of a call (`Credential=AKID/DATE/REGION/SERVICE/…`): (region, service).
fn scope(call: &Call) -> (String, String) {
    scope_of(&call.request)
}

/// The SigV4 scope of a request: (region, service).
pub fn scope_of(request: &crate::server::Recorded) -> (String, String) {
    let parts: Vec<&str> = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split('/').collect())
        .unwrap_or_default();
    (parts.get(2).copied().unwrap_or_default().to_owned(), parts.get(3).copied().unwrap_or_default().to_owned())
}

/// The service a call is for (`iam`, `apigateway`, …).
pub fn service_of(call: &Call) -> String {
    scope(call).1
}

/// `Key=value` pairs of a query-protocol body or a query string.
fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(k, v)| (decode(k), decode(&v.replace('+', " "))))
        .collect()
}

/// `aws:RequestTag/K` and `aws:TagKeys` of the tags a request sends.
fn with_tags(mut request: Request, tags: &[(String, String)]) -> Request {
    if tags.is_empty() {
        return request;
    }
    for (key, value) in tags {
        request.context.insert(format!("aws:RequestTag/{key}"), vec![value.clone()]);
    }
    request.context.insert("aws:TagKeys".into(), tags.iter().map(|(k, _)| k.clone()).collect());
    request
}

/// Tags as a JSON map (`{"k": "v"}`) or list (`[{"Key": "k", "Value": "v"}]`).
fn json_tags(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect(),
        Value::Array(items) => items
            .iter()
            .map(|t| {
                (t["Key"].as_str().unwrap_or_default().to_owned(), t["Value"].as_str().unwrap_or_default().to_owned())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The IAM requests a recorded call is authorised by.
pub fn requests(call: &Call, account: &Account<'_>) -> Vec<Needed> {
    let path_and_query = call.request.path.as_str();
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let body: Value = serde_json::from_str(&call.request.body).unwrap_or(Value::Null);
    let method = call.request.method.as_str();
    let (region, service) = scope(call);
    let region = if region.is_empty() { account.region.to_owned() } else { region };
    let at = Place { account: account.id, region: &region };
    match service.as_str() {
        "sts" => Vec::new(), // GetCallerIdentity needs no permission.
        "iam" => iam(&form(&call.request.body), &at),
        "lambda" => lambda(method, path, &body, &at),
        "apigateway" => apigateway(method, path, query, &body, &at),
        "acm" => acm(&call.service_operation, &body, &at),
        "s3" => s3(method, path, query, &call.request.body).into_iter().map(Needed::from).collect(),
        "wafv2" => wafv2(&call.service_operation, &body, &at)
            .into_iter()
            .map(|request| {
                // A stage is judged by its API's tags (and its own).
                let stage = (request.action == "apigateway:SetWebACL").then(|| stage_of(&request.resource)).flatten();
                Needed { lookup: stage, request }
            })
            .collect(),
        "route53" => route53(method, path, &call.request.body).into_iter().map(Needed::from).collect(),
        "logs" => logs(&call.service_operation, &body, &at).into_iter().map(Needed::from).collect(),
        "secretsmanager" => secretsmanager(&call.service_operation, &body, &at),
        "dynamodb" => dynamodb(&call.service_operation, &body, &at).into_iter().map(Needed::from).collect(),
        other => panic!("no IAM mapping for service {other:?}: {} {}", call.request.method, call.request.path),
    }
}

/// The account and region a call's ARNs are in.
struct Place<'a> {
    account: &'a str,
    region: &'a str,
}

impl Place<'_> {
    fn apigateway(&self, path: &str) -> String {
        format!("arn:aws:apigateway:{}::{path}", self.region)
    }
}

fn iam(form: &[(String, String)], at: &Place<'_>) -> Vec<Needed> {
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let action = get("Action").expect("an IAM call names its action");
    let role = get("RoleName").map(|r| format!("arn:aws:iam::{}:role/{r}", at.account));
    let policy = get("PolicyArn").map(str::to_owned).or_else(|| {
        get("PolicyName")
            .filter(|_| action == "CreatePolicy")
            .map(|n| format!("arn:aws:iam::{}:policy/{n}", at.account))
    });
    let tags: Vec<(String, String)> = (1..)
        .map_while(|i| {
            Some((get(&format!("Tags.member.{i}.Key"))?.to_owned(), get(&format!("Tags.member.{i}.Value"))?.to_owned()))
        })
        .collect();
    let resource = match (&role, &policy) {
        (Some(role), _) => role.clone(),
        (None, Some(policy)) => policy.clone(),
        (None, None) => "*".to_owned(),
    };
    let mut request = with_tags(Request::new(format!("iam:{action}"), &resource), &tags);
    if let (Some(_), Some(policy)) = (&role, get("PolicyArn")) {
        request = request.with("iam:PolicyARN", &[policy]);
    }
    let mut needed = Vec::new();
    match action {
        "CreateRole" | "PutRolePermissionsBoundary" => {
            if let Some(boundary) = get("PermissionsBoundary") {
                request = request.with("iam:PermissionsBoundary", &[boundary]);
            }
            needed.push(Needed::from(request));
        }
        "AttachRolePolicy" | "DetachRolePolicy" | "PutRolePolicy" | "DeleteRolePolicy" => {
            let name = get("RoleName").unwrap_or_default().to_owned();
            needed.push(Needed::looking_up(request, Lookup::RoleBoundary(name)));
        }
        _ => needed.push(Needed::from(request)),
    }
    if !tags.is_empty() {
        let tagging = match action {
            "CreateRole" => Some("iam:TagRole"),
            "CreatePolicy" => Some("iam:TagPolicy"),
            _ => None,
        };
        if let Some(tagging) = tagging {
            needed.push(with_tags(Request::new(tagging, &resource), &tags).into());
        }
    }
    needed
}

/// The lookup of a stage's tags, from its ARN (`…::/restapis/ID/stages/NAME`).
fn stage_of(arn: &str) -> Option<Lookup> {
    let (head, path) = arn.split_once("::/")?;
    let region = head.split(':').nth(3)?.to_owned();
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["restapis", api, "stages", stage] => {
            Some(Lookup::RestApiTags { region, api: (*api).to_owned(), stage: Some((*stage).to_owned()) })
        }
        _ => None,
    }
}

fn lambda(method: &str, path: &str, body: &Value, at: &Place<'_>) -> Vec<Needed> {
    let function = |name: &str| format!("arn:aws:lambda:{}:{}:function:{}", at.region, at.account, decode(name));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let pass_role = |requests: &mut Vec<Request>| {
        if let Some(role) = body["Role"].as_str() {
            requests.push(Request::new("iam:PassRole", role).with("iam:PassedToService", &["lambda.amazonaws.com"]));
        }
    };
    let requests = match (method, segments.as_slice()) {
        ("POST", ["2015-03-31", "functions"]) => {
            let arn = function(body["FunctionName"].as_str().unwrap_or_default());
            let tags = json_tags(&body["Tags"]);
            let mut requests = vec![with_tags(Request::new("lambda:CreateFunction", &arn), &tags)];
            if !tags.is_empty() {
                requests.push(with_tags(Request::new("lambda:TagResource", &arn), &tags));
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
        ("GET", ["2015-03-31", "functions", name, "policy"]) => vec![Request::new("lambda:GetPolicy", function(name))],
        ("POST", ["2015-03-31", "functions", name, "policy"]) => {
            let principal = body["Principal"].as_str().unwrap_or_default();
            vec![Request::new("lambda:AddPermission", function(name)).with("lambda:Principal", &[principal])]
        }
        ("DELETE", ["2015-03-31", "functions", name, "policy", _]) => {
            vec![Request::new("lambda:RemovePermission", function(name))]
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
    };
    requests.into_iter().map(Needed::from).collect()
}

fn apigateway(method: &str, raw_path: &str, query: &str, body: &Value, at: &Place<'_>) -> Vec<Needed> {
    let region = at.region.to_owned();
    // The tags API: its resource is the tagged resource's ARN as the path
    // carries it (URL-encoded), and it has no tags of its own to judge by.
    if let Some(encoded) = raw_path.strip_prefix("/tags/") {
        let resource = at.apigateway(&format!("/tags/{}", encode_arn(&decode(encoded))));
        let request = Request::new(format!("apigateway:{method}"), resource);
        let keys: Vec<String> = form(query).into_iter().filter(|(k, _)| k == "tagKeys").map(|(_, v)| v).collect();
        let request = match method {
            "PUT" => with_tags(request, &json_tags(&body["tags"])),
            "DELETE" if !keys.is_empty() => {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                request.with("aws:TagKeys", &keys)
            }
            _ => request,
        };
        return vec![request.into()];
    }
    let path = decode(raw_path);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let tags = json_tags(&body["tags"]);
    let request = with_tags(Request::new(format!("apigateway:{method}"), at.apigateway(&path)), &tags);
    // What the resource's tags are, for IAM: a REST API's children inherit
    // the API's, a domain's mappings the domain's.
    let lookup = match segments.as_slice() {
        ["restapis", api, "stages", stage, ..] => Some(Lookup::RestApiTags {
            region: region.clone(),
            api: (*api).to_owned(),
            stage: Some((*stage).to_owned()),
        }),
        ["restapis", api, ..] => {
            Some(Lookup::RestApiTags { region: region.clone(), api: (*api).to_owned(), stage: None })
        }
        ["domainnames", domain, ..] => {
            Some(Lookup::DomainTags { region: region.clone(), domain: (*domain).to_owned() })
        }
        _ => None,
    };
    let mut needed = vec![Needed { request, lookup: lookup.clone() }];
    let truststore_read = |uri: &str, version: Option<&str>| {
        let object = format!("arn:aws:s3:::{}", uri.trim_start_matches("s3://"));
        let mut reads = vec![Needed::from(Request::new("s3:GetObject", &object))];
        if version.is_some() {
            reads.push(Request::new("s3:GetObjectVersion", &object).into());
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
    let pass_to_api_gateway = |role: &str| {
        Needed::from(Request::new("iam:PassRole", role).with("iam:PassedToService", &["apigateway.amazonaws.com"]))
    };
    // Tags sent with a create: a PUT on the new resource's tags.
    let tag_on_create = |created: &str| {
        Needed::from(with_tags(
            Request::new("apigateway:PUT", at.apigateway(&format!("/tags/{}", encode_arn(&at.apigateway(created))))),
            &tags,
        ))
    };
    match (method, segments.as_slice()) {
        ("POST", ["restapis"]) if !tags.is_empty() => needed.push(tag_on_create("/restapis/*")),
        ("POST", ["restapis", api, "stages"]) if !tags.is_empty() => {
            let stage = body["stageName"].as_str().unwrap_or_default();
            needed.push(tag_on_create(&format!("/restapis/{api}/stages/{stage}")));
        }
        // A custom domain with mutual TLS, created or changed: the extra
        // permission, and the truststore read with the caller's credentials.
        ("POST", ["domainnames"]) => {
            let domain = body["domainName"].as_str().unwrap_or_default();
            if !tags.is_empty() {
                needed.push(tag_on_create(&format!("/domainnames/{domain}")));
            }
            let mtls = &body["mutualTlsAuthentication"];
            if let Some(uri) = mtls["truststoreUri"].as_str() {
                needed.push(
                    Request::new("apigateway:AddCertificateToDomain", at.apigateway(&format!("/domainnames/{domain}")))
                        .into(),
                );
                needed.extend(truststore_read(uri, mtls["truststoreVersion"].as_str()));
            }
        }
        ("PATCH", ["domainnames", domain]) if !patched("/mutualTlsAuthentication").is_empty() => {
            // The truststore replaced: its certificates added, the old ones removed.
            for action in ["apigateway:AddCertificateToDomain", "apigateway:RemoveCertificateFromDomain"] {
                let request = Request::new(action, at.apigateway(&format!("/domainnames/{domain}")));
                needed.push(Needed { request, lookup: lookup.clone() });
            }
        }
        ("POST", ["restapis", _, "authorizers"]) if body["authorizerCredentials"].is_string() => {
            needed.push(pass_to_api_gateway(body["authorizerCredentials"].as_str().unwrap_or_default()));
        }
        ("PATCH", ["account"]) => {
            for op in patched("/cloudwatchRoleArn") {
                needed.push(pass_to_api_gateway(op["value"].as_str().unwrap_or_default()));
            }
        }
        ("PATCH", ["restapis", _, "authorizers", _]) => {
            for op in patched("/authorizerCredentials")
                .iter()
                .filter(|op| op["value"].as_str().is_some_and(|v| !v.is_empty()))
            {
                needed.push(pass_to_api_gateway(op["value"].as_str().unwrap_or_default()));
            }
        }
        _ => {}
    }
    needed
}

fn acm(operation: &str, body: &Value, at: &Place<'_>) -> Vec<Needed> {
    let tags = json_tags(&body["Tags"]);
    match operation {
        "ListCertificates" => vec![Request::new("acm:ListCertificates", "*").into()],
        "RequestCertificate" => {
            let mut names: Vec<&str> = vec![body["DomainName"].as_str().unwrap_or_default()];
            names.extend(body["SubjectAlternativeNames"].as_array().into_iter().flatten().filter_map(Value::as_str));
            let request = |action: &str, resource: String| {
                with_tags(Request::new(action, resource).with("acm:DomainNames", &names), &tags)
            };
            let mut requests = vec![request("acm:RequestCertificate", "*".into()).into()];
            if !tags.is_empty() {
                // The tags of a certificate not made yet, with the request's context.
                let new = format!("arn:aws:acm:{}:{}:certificate/*", at.region, at.account);
                requests.push(request("acm:AddTagsToCertificate", new).into());
            }
            requests
        }
        operation => {
            let arn = body["CertificateArn"].as_str().unwrap_or_else(|| panic!("ACM {operation}: no CertificateArn"));
            let request = Request::new(format!("acm:{operation}"), arn);
            let request = match operation {
                "AddTagsToCertificate" => with_tags(request, &tags),
                "RemoveTagsFromCertificate" => {
                    let keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
                    request.with("aws:TagKeys", &keys)
                }
                _ => request,
            };
            let lookup = Lookup::CertificateTags { region: at.region.to_owned(), arn: arn.to_owned() };
            vec![Needed::looking_up(request, lookup)]
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

fn wafv2(operation: &str, body: &Value, at: &Place<'_>) -> Vec<Request> {
    let regional = |kind: &str, name: &str, id: &str| {
        format!("arn:aws:wafv2:{}:{}:regional/{kind}/{name}/{id}", at.region, at.account)
    };
    let text = |field: &str| body[field].as_str().unwrap_or_default();
    let action = format!("wafv2:{operation}");
    let tags = json_tags(&body["Tags"]);
    // A web ACL's rules: the IP sets it references are judged too.
    let referenced = || -> Vec<Request> {
        body["Rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["Statement"]["IPSetReferenceStatement"]["ARN"].as_str())
            .map(|arn| Request::new(&action, arn))
            .collect()
    };
    let created = |kind: &str| {
        let arn = regional(kind, text("Name"), "*");
        let mut requests = vec![with_tags(Request::new(&action, &arn), &tags)];
        if !tags.is_empty() {
            requests.push(with_tags(Request::new("wafv2:TagResource", &arn), &tags));
        }
        requests
    };
    match operation {
        "ListIPSets" | "ListWebACLs" => vec![Request::new(action, "*")],
        "CreateIPSet" => created("ipset"),
        "CreateWebACL" => [created("webacl"), referenced()].concat(),
        "GetIPSet" | "UpdateIPSet" | "DeleteIPSet" => {
            vec![Request::new(action, regional("ipset", text("Name"), text("Id")))]
        }
        "GetWebACL" | "DeleteWebACL" => match body.get("ARN").and_then(Value::as_str) {
            Some(arn) => vec![Request::new(action, arn)],
            None => vec![Request::new(action, regional("webacl", text("Name"), text("Id")))],
        },
        "UpdateWebACL" => {
            [vec![Request::new(&action, regional("webacl", text("Name"), text("Id")))], referenced()].concat()
        }
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

/// Secrets Manager: a secret by its ARN (a name is looked up); a create with
/// tags is a tagging too, of the ARN the new secret gets.
fn secretsmanager(operation: &str, body: &Value, at: &Place<'_>) -> Vec<Needed> {
    let action = format!("secretsmanager:{operation}");
    let tags = json_tags(&body["Tags"]);
    match operation {
        "CreateSecret" => {
            // The new secret's ARN ends in six characters Secrets Manager picks.
            let arn = format!(
                "arn:aws:secretsmanager:{}:{}:secret:{}-Ab12Cd",
                at.region,
                at.account,
                body["Name"].as_str().unwrap_or_default()
            );
            let mut requests = vec![Needed::from(with_tags(Request::new(&action, &arn), &tags))];
            if !tags.is_empty() {
                requests.push(with_tags(Request::new("secretsmanager:TagResource", &arn), &tags).into());
            }
            requests
        }
        "ListSecrets" => vec![Request::new(action, "*").into()],
        _ => {
            let id = body["SecretId"].as_str().unwrap_or_else(|| panic!("Secrets Manager {operation}: no SecretId"));
            let lookup = Lookup::Secret { region: at.region.to_owned(), id: id.to_owned() };
            vec![Needed::looking_up(Request::new(action, id), lookup)]
        }
    }
}

/// DynamoDB: a table by its ARN (`table/NAME`); a create with tags is a
/// tagging too, with the create's tags as its context.
fn dynamodb(operation: &str, body: &Value, at: &Place<'_>) -> Vec<Request> {
    let action = format!("dynamodb:{operation}");
    let table = || {
        let name = body["TableName"].as_str().unwrap_or_else(|| panic!("DynamoDB {operation}: no TableName"));
        format!("arn:aws:dynamodb:{}:{}:table/{name}", at.region, at.account)
    };
    match operation {
        "CreateTable" => {
            let tags = json_tags(&body["Tags"]);
            let mut requests = vec![with_tags(Request::new(&action, table()), &tags)];
            if !tags.is_empty() {
                requests.push(with_tags(Request::new("dynamodb:TagResource", table()), &tags));
            }
            requests
        }
        "DescribeTable" | "DeleteTable" | "UpdateTable" | "UpdateTimeToLive" | "DescribeTimeToLive" | "PutItem"
        | "Scan" => vec![Request::new(action, table())],
        "TagResource" => {
            let arn = body["ResourceArn"].as_str().unwrap_or_default();
            vec![with_tags(Request::new(action, arn), &json_tags(&body["Tags"]))]
        }
        "ListTagsOfResource" | "UntagResource" => {
            vec![Request::new(action, body["ResourceArn"].as_str().unwrap_or_default())]
        }
        "ListTables" => vec![Request::new(action, "*")],
        other => panic!("no IAM mapping for DynamoDB {other}"),
    }
}

/// CloudWatch Logs: log groups by ARN (`log-group:NAME`); a create with
/// tags is a tagging too; listing is on every group of the account.
fn logs(operation: &str, body: &Value, at: &Place<'_>) -> Vec<Request> {
    let group = |name: &str| format!("arn:aws:logs:{}:{}:log-group:{name}", at.region, at.account);
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

/// Route 53: the zone's records; a change with the names (normalized:
/// lower case, no final dot), types and actions it touches.
fn route53(method: &str, path: &str, body: &str) -> Vec<Request> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["2013-04-01", "hostedzone", zone, "rrset"]) => {
            vec![Request::new("route53:ListResourceRecordSets", format!("arn:aws:route53:::hostedzone/{zone}"))]
        }
        ("POST", ["2013-04-01", "hostedzone", zone, "rrset"]) => {
            let element = |text: &str, tag: &str| -> String {
                text.split_once(&format!("<{tag}>"))
                    .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
                    .map(|(inner, _)| inner.trim().to_owned())
                    .unwrap_or_default()
            };
            let changes: Vec<&str> = body.split("<Change>").skip(1).collect();
            let names: Vec<String> = changes
                .iter()
                .map(|c| {
                    element(&element(c, "ResourceRecordSet"), "Name")
                        .to_ascii_lowercase()
                        .trim_end_matches('.')
                        .to_owned()
                })
                .collect();
            let types: Vec<String> =
                changes.iter().map(|c| element(&element(c, "ResourceRecordSet"), "Type")).collect();
            let actions: Vec<String> = changes.iter().map(|c| element(c, "Action")).collect();
            fn strs(v: &[String]) -> Vec<&str> {
                v.iter().map(String::as_str).collect()
            }
            vec![
                Request::new("route53:ChangeResourceRecordSets", format!("arn:aws:route53:::hostedzone/{zone}"))
                    .with("route53:ChangeResourceRecordSetsNormalizedRecordNames", &strs(&names))
                    .with("route53:ChangeResourceRecordSetsRecordTypes", &strs(&types))
                    .with("route53:ChangeResourceRecordSetsActions", &strs(&actions)),
            ]
        }
        ("GET", ["2013-04-01", "hostedzone", zone]) => {
            vec![Request::new("route53:GetHostedZone", format!("arn:aws:route53:::hostedzone/{zone}"))]
        }
        ("GET", ["2013-04-01", "change", id]) => {
            vec![Request::new("route53:GetChange", format!("arn:aws:route53:::change/{id}"))]
        }
        _ => panic!("no IAM mapping for Route 53 {method} {path}"),
    }
}
