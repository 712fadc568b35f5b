//! One request through the local edge, in API Gateway's order: WAF, the
//! path's canonical form, base path, route, stage throttling, identity
//! sources, authorizer (or its cache),
//! the policy against the method ARN, then the integration. Every step that
//! ends the request answers as API Gateway does (status, body, error type) and
//! the access log records how far it got.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Request, Response};
use serde_json::{Value, json};

use super::access_log::AccessLog;
use super::cache::{Authorization, AuthorizerCache};
use super::event::{ApiIdentity, RequestFacts, request_event};
use super::integration::{Forward, Integration, IntegrationError};
use super::lambda::{Failure, Function};
use super::path::RequestPath;
use super::policy::{self, Decision};
use super::routes::Routes;
use super::throttle::Throttle;
use super::tls::ClientCert;
use super::waf::Allowlist;

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// What the TLS handshake established, for every request of a connection.
pub struct Connection {
    pub source: IpAddr,
    pub client_cert: Option<ClientCert>,
}

pub struct Edge {
    pub api: ApiIdentity,
    /// The custom domain's base path, without slashes ("" for the root).
    pub base_path: String,
    pub allowlist: Option<Allowlist>,
    pub routes: Routes,
    pub throttle: Option<Throttle>,
    pub identity_sources: Vec<String>,
    pub cache: AuthorizerCache,
    pub function: Function,
    pub integration: Integration,
    pub stage_variables: BTreeMap<String, String>,
    /// `WWW-Authenticate` of the UNAUTHORIZED gateway response.
    pub unauthorized_challenge: String,
    /// How long a request body may take to arrive once the request is authorised.
    pub body_timeout: std::time::Duration,
    pub requests: AtomicU64,
}

type Answer = Response<Full<Bytes>>;

impl Edge {
    pub async fn handle(&self, request: Request<hyper::body::Incoming>, connection: &Connection) -> Answer {
        let request_id = format!("{:016x}", self.requests.fetch_add(1, Ordering::Relaxed) + 1);
        let method = request.method().as_str().to_owned();
        let raw_path = request.uri().path().to_owned();
        let subject_dn = connection.client_cert.as_ref().map(|c| c.subject_dn.as_str());
        let mut log = AccessLog::start(&request_id, connection.source, &method, &raw_path, subject_dn);
        let answer = self.pipeline(request, connection, &request_id, &method, &raw_path, &mut log).await;
        log.finish(answer.status().as_u16());
        with_request_id(answer, &request_id)
    }

    async fn pipeline(
        &self,
        request: Request<hyper::body::Incoming>,
        connection: &Connection,
        request_id: &str,
        method: &str,
        raw_path: &str,
        log: &mut AccessLog,
    ) -> Answer {
        // 1. TLS is done: this connection's certificate chained to the truststore.
        // 2. WAF: the web ACL on the stage allows only the stack's networks.
        if let Some(allowlist) = &self.allowlist
            && !allowlist.allows(connection.source)
        {
            return gateway_error(403, "ForbiddenException", json!({"message": "Forbidden"}));
        }
        // The path, in the one form routing, the authorizer and the backend all use.
        let Ok(requested) = RequestPath::parse(raw_path) else {
            return gateway_error(400, "BadRequestException", json!({"message": "Bad Request"}));
        };
        // The custom domain maps its base path to the stage.
        let Some(path) = requested.strip_base_path(&self.base_path) else {
            return gateway_error(403, "ForbiddenException", json!({"message": "Forbidden"}));
        };
        let (full_path, stage_path) = (requested.encoded(), path.encoded());
        // 3. Routing.
        let Some(matched) = self.routes.find(method, &path) else {
            return gateway_error(
                403,
                "MissingAuthenticationTokenException",
                json!({"message": "Missing Authentication Token"}),
            );
        };
        log.route(&matched.route.spec.path);
        // Stage throttling, before the authorizer is paid for.
        if let Some(throttle) = &self.throttle
            && !throttle.admit()
        {
            return gateway_error(429, "TooManyRequestsException", json!({"message": "Too Many Requests"}));
        }
        let headers = header_pairs(&request);
        let query_text = request.uri().query().map(str::to_owned);
        let query = query_pairs(query_text.as_deref());
        let facts = RequestFacts {
            request_id,
            method,
            path: &stage_path,
            full_path: &full_path,
            resource: &matched.route.spec.path,
            headers: &headers,
            query: &query,
            path_parameters: &matched.parameters,
            stage_variables: &self.stage_variables,
            source_ip: connection.source.to_string(),
            client_cert: connection.client_cert.as_ref(),
        };
        // 4. Identity sources: one missing or empty is a 401 without invoking the authorizer.
        let Some(cache_key) = self.identity_values(&facts) else {
            return self.unauthorized();
        };
        // 6. The authorizer cache, keyed by those values; a miss invokes the authorizer.
        let authorization = match self.cache.get(&cache_key) {
            Some(cached) => {
                log.authorizer(None, true);
                cached
            }
            None => {
                let started = Instant::now();
                let outcome = self.function.invoke(request_event(&self.api, &facts)).await;
                log.authorizer(Some(started.elapsed()), false);
                // 5. The authorizer's answer.
                match outcome.map(parse_authorization) {
                    Ok(Some(authorization)) => {
                        let authorization = std::sync::Arc::new(authorization);
                        self.cache.put(cache_key, authorization.clone());
                        authorization
                    }
                    Err(Failure::FunctionError(error)) if error["errorMessage"] == "Unauthorized" => {
                        return self.unauthorized();
                    }
                    failed => {
                        log.note(&match failed {
                            Err(Failure::FunctionError(error)) => {
                                format!("the authorizer failed: {}", error["errorType"])
                            }
                            Err(Failure::Timeout) => "the authorizer timed out".to_owned(),
                            Err(Failure::Crashed(how)) => format!("the authorizer's process {how}"),
                            Ok(_) => "the authorizer answered without a policy".to_owned(),
                        });
                        return gateway_error(500, "AuthorizerConfigurationException", json!({"message": null}));
                    }
                }
            }
        };
        log.principal(authorization.principal.as_deref());
        // The policy (fresh or cached) against this request's own method ARN.
        let method_arn = self.api.method_arn(method, &stage_path);
        match policy::evaluate(&authorization.policy, &method_arn) {
            Decision::Allow => {}
            Decision::Unevaluable => {
                log.note("the authorizer's policy holds what the local edge cannot evaluate");
                return gateway_error(500, "AuthorizerConfigurationException", json!({"message": null}));
            }
            denied => return access_denied(denied, &authorization),
        }
        // 7. The integration.
        let body = match tokio::time::timeout(self.body_timeout, Limited::new(request.into_body(), MAX_BODY).collect())
            .await
        {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => {
                return gateway_error(413, "RequestTooLargeException", json!({"message": "Request Too Long"}));
            }
            Err(_) => {
                // The rest of the body never came: the connection cannot be reused.
                let mut answer = gateway_error(408, "RequestTimeoutException", json!({"message": "Request Timeout"}));
                answer
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
                return answer;
            }
        };
        let started = Instant::now();
        let forwarded = self
            .integration
            .forward(Forward {
                method,
                source: connection.source,
                backend: &matched.route.spec.backend,
                path_parameters: &matched.parameters,
                query: query_text.as_deref(),
                headers: &headers,
                context_headers: &matched.route.spec.context_headers,
                context: &authorization.context,
                body,
            })
            .await;
        log.integration(started.elapsed());
        match forwarded {
            Ok(answer) => {
                let mut response = Response::new(Full::new(answer.body));
                *response.status_mut() =
                    hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
                for (name, value) in answer.headers {
                    if let (Ok(name), Ok(value)) =
                        (hyper::header::HeaderName::try_from(name), hyper::header::HeaderValue::from_bytes(&value))
                    {
                        response.headers_mut().append(name, value);
                    }
                }
                response
            }
            Err(IntegrationError::TooLarge) => {
                log.note(&format!("the backend's answer is over {} bytes", super::integration::MAX_ANSWER));
                gateway_error(502, "BadGatewayException", json!({"message": "Internal server error"}))
            }
            Err(IntegrationError::Timeout) => {
                gateway_error(504, "IntegrationTimeout", json!({"message": "Endpoint request timed out"}))
            }
            Err(IntegrationError::Failed(error)) => {
                log.note(&format!("integration failed: {error:#}"));
                gateway_error(500, "InternalServerErrorException", json!({"message": "Internal server error"}))
            }
        }
    }

    /// The identity-source values in the stack's order (the cache key), or
    /// None when one is missing or empty.
    fn identity_values(&self, request: &RequestFacts<'_>) -> Option<Vec<String>> {
        self.identity_sources
            .iter()
            .map(|source| {
                let value = if let Some(name) = source.strip_prefix("method.request.header.") {
                    request.header(name).map(str::to_owned)
                } else if let Some(name) = source.strip_prefix("method.request.querystring.") {
                    request.query_value(name).map(str::to_owned)
                } else if let Some(name) = source.strip_prefix("stageVariables.") {
                    self.stage_variables.get(name).cloned()
                } else {
                    context_value(source, request, &self.api).flatten()
                };
                value.filter(|v| !v.is_empty())
            })
            .collect()
    }

    fn unauthorized(&self) -> Answer {
        let mut answer = gateway_error(401, "UnauthorizedException", json!({"message": "Unauthorized"}));
        if let Ok(value) = hyper::header::HeaderValue::from_str(&self.unauthorized_challenge) {
            answer.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, value);
        }
        answer
    }
}

/// The value of a `context.…` identity source for this request (None inside
/// when the request has none); None for a source the edge does not know.
fn context_value(source: &str, request: &RequestFacts<'_>, api: &ApiIdentity) -> Option<Option<String>> {
    let certificate = request.client_cert;
    Some(match source {
        "context.identity.sourceIp" => Some(request.source_ip.clone()),
        "context.identity.userAgent" => request.header("user-agent").map(str::to_owned),
        "context.identity.clientCert.clientCertPem" => certificate.map(|c| c.pem.clone()),
        "context.identity.clientCert.subjectDN" => certificate.map(|c| c.subject_dn.clone()),
        "context.identity.clientCert.issuerDN" => certificate.map(|c| c.issuer_dn.clone()),
        "context.identity.clientCert.serialNumber" => certificate.map(|c| c.serial_number.clone()),
        "context.domainName" => api.domain.clone(),
        "context.httpMethod" => Some(request.method.to_owned()),
        "context.resourcePath" => Some(request.resource.to_owned()),
        "context.stage" => Some(api.stage.clone()),
        _ => return None,
    })
}

/// The ACCESS_DENIED gateway response, with the authorizer's challenge
/// (`context.authorizer.challenge`) as the stack configures it.
fn access_denied(decision: Decision, authorization: &Authorization) -> Answer {
    let message = match decision {
        Decision::ExplicitDeny => "User is not authorized to access this resource with an explicit deny",
        _ => "User is not authorized to access this resource",
    };
    let mut answer = gateway_error(403, "AccessDeniedException", json!({"Message": message}));
    if let Some(challenge) = authorization.context.get("challenge").and_then(Value::as_str)
        && let Ok(value) = hyper::header::HeaderValue::from_str(challenge)
    {
        answer.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, value);
    }
    answer
}

/// A policy answer (`principalId`, `policyDocument`, `context`), or None for
/// anything else (API Gateway's AUTHORIZER_FAILURE).
fn parse_authorization(answer: Value) -> Option<Authorization> {
    let policy = answer.get("policyDocument")?.clone();
    let context = match answer.get("context") {
        Some(Value::Object(context)) => context.clone(),
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(_) => return None,
    };
    let principal = answer.get("principalId").and_then(Value::as_str).map(str::to_owned);
    Some(Authorization { policy, context, principal })
}

fn header_pairs(request: &Request<hyper::body::Incoming>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn gateway_error(status: u16, error_type: &str, body: Value) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body.to_string())));
    *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    if let Ok(value) = hyper::header::HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", value);
    }
    answer
}

fn with_request_id(mut answer: Answer, request_id: &str) -> Answer {
    if let Ok(value) = hyper::header::HeaderValue::from_str(request_id) {
        answer.headers_mut().insert("x-amzn-requestid", value);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_identity_source_a_stack_may_name_is_read() {
        let api = ApiIdentity {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "1".into(),
            api_id: "local".into(),
            stage: "prod".into(),
            domain: Some("api.example.com".into()),
        };
        let headers = vec![("user-agent".to_owned(), "curl".to_owned())];
        let empty = BTreeMap::new();
        let request = RequestFacts {
            request_id: "r",
            method: "GET",
            path: "/pets/7",
            full_path: "/pets/7",
            resource: "/pets/{id}",
            headers: &headers,
            query: &[],
            path_parameters: &empty,
            stage_variables: &empty,
            source_ip: "127.0.0.1".into(),
            client_cert: None,
        };
        // Every context source the stack's checks accept is read here.
        for source in crate::stack::CONTEXT_IDENTITY_SOURCES {
            assert!(context_value(source, &request, &api).is_some(), "{source} is accepted but not read");
        }
        assert_eq!(context_value("context.stage", &request, &api), Some(Some("prod".into())));
        assert_eq!(context_value("context.identity.clientCert.clientCertPem", &request, &api), Some(None));
        assert_eq!(context_value("context.bogus", &request, &api), None);
    }

    #[test]
    fn only_a_policy_answer_authorizes() {
        let answer = json!({"principalId": "u", "policyDocument": {"Statement": []}, "context": {"sub": "u"}});
        let authorization = parse_authorization(answer).expect("a policy");
        assert_eq!((authorization.principal.as_deref(), authorization.context["sub"].as_str()), (Some("u"), Some("u")));
        assert!(parse_authorization(json!({"context": {}})).is_none());
        assert!(parse_authorization(json!({"policyDocument": {}, "context": "x"})).is_none());
    }
}
