//! IAM, as AWS applies it to the deployer's calls. moto authorises nothing;
//! AWS judges every call by the caller's policy. Here each principal (an
//! access key the tests hand the deployer, see `deploy::deployer`) has a
//! policy, and every proxy judges each call of a known principal before moto
//! sees it: the call is mapped to what IAM authorises it as
//! (`iam_actions`), its context completed from the account (the tags of the
//! resource it acts on, inherited by a REST API's children and a domain's
//! mappings; the permissions boundary a role has now), and the first request
//! the policy does not allow is answered `AccessDenied`, in the service's own
//! protocol, naming the action and the resource, as AWS does.
//!
//! It also gives the answers AWS shapes by permission: `GetFunction` shows
//! the function's tags only to a caller allowed `lambda:ListTags`; the first
//! custom domain of an account makes API Gateway create its service-linked
//! role with the caller's rights (`iam:CreateServiceLinkedRole`), which the
//! judge remembers per proxy, a proxy being one account.
//!
//! A call of an unknown principal (the tests' own SDK clients) is not judged:
//! it stands for an administrator. A resource that does not exist is not
//! judged by its tags; moto answers it "not found".
//!
//! Every judged request is kept with the principal, so a test can replay a
//! whole run against a policy with one statement fewer.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use aws_config::BehaviorVersion;
use serde_json::{Value, json};

use crate::iam::{Decision, Request, decide};
use crate::iam_actions::{Account, Lookup, requests};
use crate::moto::{Call, classify};
use crate::server::{Recorded, Reply};

/// The account every call is in (moto's default).
pub const ACCOUNT: &str = "123456789012";

/// One request judged for a principal, and what was decided.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The call it was part of (`CreateIPSet`, `POST /restapis`, …).
    pub operation: String,
    pub request: Request,
    pub decision: Decision,
}

/// A principal: its policy, and every request judged for it.
#[derive(Default)]
pub struct Principal {
    policy: Mutex<Value>,
    judged: Mutex<Vec<Judged>>,
}

impl Principal {
    pub fn set_policy(&self, policy: Value) {
        *self.policy.lock().unwrap_or_else(PoisonError::into_inner) = policy;
    }

    pub fn policy(&self) -> Value {
        self.policy.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every request judged for it so far.
    pub fn judged(&self) -> Vec<Judged> {
        self.judged.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn forget_judged(&self) {
        self.judged.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn record(&self, judged: Judged) {
        self.judged.lock().unwrap_or_else(PoisonError::into_inner).push(judged);
    }
}

fn principals() -> &'static Mutex<HashMap<String, Arc<Principal>>> {
    static PRINCIPALS: OnceLock<Mutex<HashMap<String, Arc<Principal>>>> = OnceLock::new();
    PRINCIPALS.get_or_init(Mutex::default)
}

/// The principal of access key `key`, made known to every proxy.
pub fn principal(key: &str) -> Arc<Principal> {
    let mut all = principals().lock().unwrap_or_else(PoisonError::into_inner);
    all.entry(key.to_owned()).or_default().clone()
}

fn known(key: &str) -> Option<Arc<Principal>> {
    principals().lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
}

/// The access key a call was signed with.
fn access_key(request: &Recorded) -> Option<&str> {
    request.header("authorization")?.split("Credential=").nth(1)?.split('/').next()
}

/// What a lookup found: tags, or a role's boundary (`None`: the resource
/// does not exist).
#[derive(Debug, Clone)]
enum Found {
    Tags(BTreeMap<String, String>),
    Boundary(Option<String>),
    /// A resource named by name: its ARN, and its tags.
    Named {
        arn: String,
        tags: BTreeMap<String, String>,
    },
}

/// SDK clients straight to moto, in one region, for the lookups.
struct Readers {
    apigateway: aws_sdk_apigateway::Client,
    acm: aws_sdk_acm::Client,
    iam: aws_sdk_iam::Client,
    secretsmanager: aws_sdk_secretsmanager::Client,
}

/// The judge of one proxy (one account).
#[derive(Default)]
pub struct Judge {
    readers: tokio::sync::Mutex<HashMap<String, Arc<Readers>>>,
    cache: Mutex<HashMap<Lookup, Found>>,
    /// API Gateway's service-linked role exists in this account.
    service_linked_role: AtomicBool,
}

impl Judge {
    /// AWS's refusal of `request`, if its principal may not make it.
    pub async fn before(&self, request: &Recorded) -> Option<Reply> {
        let principal = known(access_key(request)?)?;
        let policy = principal.policy();
        let (operation, mutating) = classify(request);
        let call = Call {
            service_operation: operation.clone(),
            mutating,
            request: request.clone(),
            at: std::time::Instant::now(),
        };
        let account = Account { id: ACCOUNT, region: "eu-west-1" };
        let mut judged = Vec::new();
        for needed in requests(&call, &account) {
            let mut request = needed.request;
            if let Some(lookup) = &needed.lookup {
                match self.look_up(lookup).await {
                    // Not there: moto answers it.
                    None => continue,
                    Some(found) => add_context(&mut request, &found),
                }
            }
            judged.push(request);
        }
        // The account's first custom domain makes API Gateway's service-linked role.
        if operation == "POST /domainnames" && !self.service_linked_role.load(Ordering::SeqCst) {
            let role = format!(
                "arn:aws:iam::{ACCOUNT}:role/aws-service-role/ops.apigateway.amazonaws.com/AWSServiceRoleForAPIGateway"
            );
            judged.push(
                Request::new("iam:CreateServiceLinkedRole", role)
                    .with("iam:AWSServiceName", &["ops.apigateway.amazonaws.com"]),
            );
        }
        let service = crate::iam_actions::service_of(&call);
        for request in judged {
            let decision = decide(&policy, &request);
            principal.record(Judged { operation: operation.clone(), request: request.clone(), decision });
            if decision != Decision::Allowed {
                return Some(access_denied(&service, &request, decision));
            }
        }
        None
    }

    /// Changes moto's answer where AWS's depends on the caller's rights, and
    /// forgets what the call changed.
    pub fn after(&self, request: &Recorded, reply: &mut Reply) {
        let ok = (200..300).contains(&reply.status);
        let (operation, mutating) = classify(request);
        if ok && operation == "POST /domainnames" {
            self.service_linked_role.store(true, Ordering::SeqCst);
        }
        if ok && mutating {
            self.forget(request, &operation);
        }
        let Some(principal) = access_key(request).and_then(known) else { return };
        let path = request.path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let (true, "GET", ["2015-03-31", "functions", name]) = (ok, request.method.as_str(), segments.as_slice()) {
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            let (region, _) = crate::iam_actions::scope_of(request);
            let function = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}");
            let list_tags = Request::new("lambda:ListTags", &function);
            let decision = decide(&principal.policy(), &list_tags);
            principal.record(Judged { operation, request: list_tags, decision });
            if decision != Decision::Allowed
                && let Ok(mut answer) = serde_json::from_str::<Value>(&reply.body)
                && let Some(object) = answer.as_object_mut()
                && object.remove("Tags").is_some()
            {
                reply.body = answer.to_string();
            }
        }
    }

    /// What a write may have changed (the tags, boundary or existence of
    /// what it acted on) is read again next time.
    fn forget(&self, request: &Recorded, operation: &str) {
        let call = Call {
            service_operation: operation.to_owned(),
            mutating: true,
            request: request.clone(),
            at: std::time::Instant::now(),
        };
        let account = Account { id: ACCOUNT, region: "eu-west-1" };
        let mut stale: Vec<Lookup> = requests(&call, &account).into_iter().filter_map(|n| n.lookup).collect();
        // API Gateway's tags API names the tagged resource by its ARN.
        if let Some(encoded) = request.path.split('?').next().and_then(|p| p.strip_prefix("/tags/")) {
            let arn = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy().into_owned();
            let region = arn.split(':').nth(3).unwrap_or_default().to_owned();
            let path: Vec<&str> = arn.split("::/").nth(1).unwrap_or_default().split('/').collect();
            match path.as_slice() {
                ["restapis", api, ..] => {
                    stale.push(Lookup::RestApiTags { region, api: (*api).to_owned(), stage: None })
                }
                ["domainnames", domain] => stale.push(Lookup::DomainTags { region, domain: (*domain).to_owned() }),
                _ => {}
            }
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        for lookup in stale {
            match &lookup {
                // A stage's tags are the API's: every entry of the API goes.
                Lookup::RestApiTags { region, api, .. } => cache.retain(
                    |key, _| !matches!(key, Lookup::RestApiTags { region: r, api: a, .. } if r == region && a == api),
                ),
                _ => drop(cache.remove(&lookup)),
            }
        }
    }

    async fn look_up(&self, lookup: &Lookup) -> Option<Found> {
        if let Some(found) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(lookup) {
            return Some(found.clone());
        }
        let found = self.read(lookup).await;
        // (What is not there yet may be made by any create: not remembered.)
        if let Some(found) = &found {
            self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(lookup.clone(), found.clone());
        }
        found
    }

    async fn readers(&self, region: &str) -> Arc<Readers> {
        let mut readers = self.readers.lock().await;
        if let Some(r) = readers.get(region) {
            return r.clone();
        }
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(crate::moto::endpoint())
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_iam::config::Credentials::new("testing", "testing", None, None, "judge"))
            .load()
            .await;
        let made = Arc::new(Readers {
            apigateway: aws_sdk_apigateway::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&config),
        });
        readers.insert(region.to_owned(), made.clone());
        made
    }

    async fn read(&self, lookup: &Lookup) -> Option<Found> {
        let map = |tags: Option<&std::collections::HashMap<String, String>>| {
            tags.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>()).unwrap_or_default()
        };
        match lookup {
            Lookup::RestApiTags { region, api, stage } => {
                let readers = self.readers(region).await;
                let read = readers.apigateway.get_rest_api().rest_api_id(api).send().await.ok()?;
                let mut tags = map(read.tags());
                if let Some(stage) = stage
                    && let Ok(stage) = readers.apigateway.get_stage().rest_api_id(api).stage_name(stage).send().await
                {
                    tags.extend(map(stage.tags()));
                }
                Some(Found::Tags(tags))
            }
            Lookup::DomainTags { region, domain } => {
                let readers = self.readers(region).await;
                let read = readers.apigateway.get_domain_name().domain_name(domain).send().await.ok()?;
                Some(Found::Tags(map(read.tags())))
            }
            Lookup::CertificateTags { region, arn } => {
                let readers = self.readers(region).await;
                let read = readers.acm.list_tags_for_certificate().certificate_arn(arn).send().await.ok()?;
                Some(Found::Tags(
                    read.tags()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
                        .collect(),
                ))
            }
            Lookup::Secret { region, id } => {
                let readers = self.readers(region).await;
                let read = readers.secretsmanager.describe_secret().secret_id(id).send().await.ok()?;
                let tags = read
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                    .collect();
                Some(Found::Named { arn: read.arn().unwrap_or_default().to_owned(), tags })
            }
            Lookup::RoleBoundary(name) => {
                let readers = self.readers("us-east-1").await;
                let read = readers.iam.get_role().role_name(name).send().await.ok()?;
                let boundary =
                    read.role().and_then(|r| r.permissions_boundary()).and_then(|b| b.permissions_boundary_arn());
                Some(Found::Boundary(boundary.map(str::to_owned)))
            }
        }
    }
}

fn add_context(request: &mut Request, found: &Found) {
    match found {
        Found::Tags(tags) => {
            for (key, value) in tags {
                request.context.insert(format!("aws:ResourceTag/{key}"), vec![value.clone()]);
            }
        }
        Found::Boundary(Some(boundary)) => {
            request.context.insert("iam:PermissionsBoundary".into(), vec![boundary.clone()]);
        }
        Found::Boundary(None) => {}
        Found::Named { arn, tags } => {
            request.resource.clone_from(arn);
            add_context(request, &Found::Tags(tags.clone()));
        }
    }
}

/// `AccessDenied` as `service` spells it, naming what was refused.
fn access_denied(service: &str, request: &Request, decision: Decision) -> Reply {
    let why = match decision {
        Decision::ExplicitlyDenied => "with an explicit deny in an identity-based policy".to_owned(),
        _ => format!("because no identity-based policy allows the {} action", request.action),
    };
    let message = format!(
        "User: arn:aws:sts::{ACCOUNT}:assumed-role/deployer/pipeline is not authorized to perform: {} on resource: {} {why}",
        request.action, request.resource
    );
    let xml = |namespace: &str| {
        format!(
            "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>{message}</Message></Error><RequestId>denied</RequestId></ErrorResponse>"
        )
    };
    match service {
        "iam" => {
            Reply::status(403, &xml("https://iam.amazonaws.com/doc/2010-05-08/")).header("content-type", "text/xml")
        }
        "route53" => {
            Reply::status(403, &xml("https://route53.amazonaws.com/doc/2013-04-01/")).header("content-type", "text/xml")
        }
        "s3" => Reply::status(403, &format!("<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"))
            .header("content-type", "application/xml"),
        "wafv2" | "acm" | "logs" => Reply::json(json!({"__type": "AccessDeniedException", "message": message}))
            .with_status(400)
            .header("content-type", "application/x-amz-json-1.1"),
        _ => Reply::json(json!({"message": message, "Type": "User"}))
            .with_status(403)
            .header("x-amzn-errortype", "AccessDeniedException"),
    }
}
