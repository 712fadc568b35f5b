//! API Gateway authorizer events in their documented shape.

use serde_json::{Value, json};

use crate::certs::ClientCertificate;

pub const METHOD_ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET/pets/42";

/// A REST API REQUEST event (payload v1) for `GET /pets/42` on an mTLS domain.
pub fn request(authorization: Option<&str>, cert: Option<&ClientCertificate>) -> Value {
    request_for(METHOD_ARN, "GET", "/pets/{id}", "/pets/42", authorization, cert)
}

pub fn request_for(
    method_arn: &str,
    verb: &str,
    resource: &str,
    path: &str,
    authorization: Option<&str>,
    cert: Option<&ClientCertificate>,
) -> Value {
    let mut headers =
        json!({ "Host": "api.example.com", "User-Agent": "curl/8.5.0", "X-Forwarded-For": "198.51.100.7" });
    let mut multi =
        json!({ "Host": ["api.example.com"], "User-Agent": ["curl/8.5.0"], "X-Forwarded-For": ["198.51.100.7"] });
    if let Some(value) = authorization {
        headers["Authorization"] = json!(value);
        multi["Authorization"] = json!([value]);
    }
    let identity = match cert {
        None => json!({ "sourceIp": "198.51.100.7", "clientCert": null }),
        Some(cert) => json!({
            "sourceIp": "198.51.100.7",
            "clientCert": {
                "clientCertPem": cert.pem,
                "subjectDN": cert.subject_dn,
                "issuerDN": "CN=Test CA",
                "serialNumber": cert.serial,
                "validity": { "notBefore": "May 28 12:30:02 2019 GMT", "notAfter": "Aug  5 09:36:04 2029 GMT" }
            }
        }),
    };
    json!({
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": resource,
        "path": path,
        "httpMethod": verb,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": { "id": "42" },
        "stageVariables": {},
        "requestContext": {
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "path": format!("/v1{path}"),
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": identity,
            "resourcePath": resource,
            "httpMethod": verb,
            "apiId": "a1b2c3d4e5"
        }
    })
}

/// The URL a client called for `path` on the test API's custom domain
/// (`api.example.com`, base path `v1`), as RFC 9449's `htu` names it.
pub fn url_of(path: &str) -> String {
    format!("https://api.example.com/v1{path}")
}

/// Adds `DPoP` header values to an event (more than one: a malformed request).
pub fn with_dpop(mut event: Value, proofs: &[&str]) -> Value {
    if let Some(last) = proofs.last() {
        event["headers"]["DPoP"] = json!(last);
    }
    event["multiValueHeaders"]["DPoP"] = json!(proofs);
    event
}

/// A REST API TOKEN event.
pub fn token(authorization: &str) -> Value {
    json!({ "type": "TOKEN", "authorizationToken": authorization, "methodArn": METHOD_ARN })
}

pub fn parse(event: &Value) -> authorizer::AuthorizerEvent {
    serde_json::from_value(event.clone()).expect("event deserializes")
}
