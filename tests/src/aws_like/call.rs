//! A call as the layer reads it (service, region, operation, path,
//! body), and an error as the service's protocol spells it.

use serde_json::{Value, json};

use crate::server::{Recorded, Reply};

/// A call, as the layer reads it.
pub(super) struct Call<'a> {
    pub(super) service: String,
    pub(super) region: String,
    /// The operation for JSON and query protocols (`CreateIPSet`); the
    /// method for REST ones.
    pub(super) operation: String,
    pub(super) path: &'a str,
    pub(super) body: Value,
}

impl<'a> Call<'a> {
    pub(super) fn read(request: &'a Recorded) -> Call<'a> {
        // SigV4: Credential=AKID/DATE/REGION/SERVICE/aws4_request
        let scope = request
            .header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .map(|c| c.split('/').collect::<Vec<_>>())
            .unwrap_or_default();
        let operation = match request.header("x-amz-target") {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_owned(),
            None => request
                .body
                .split('&')
                .find_map(|pair| pair.strip_prefix("Action="))
                .map_or_else(|| request.method.clone(), str::to_owned),
        };
        Call {
            service: scope.get(3).copied().unwrap_or_default().to_owned(),
            region: scope.get(2).copied().unwrap_or_default().to_owned(),
            operation,
            path: request.path.split('?').next().unwrap_or(""),
            body: serde_json::from_str(&request.body).unwrap_or(Value::Null),
        }
    }

    pub(super) fn is(&self, service: &str, operation: &str) -> bool {
        self.service == service && self.operation == operation
    }

    /// REST: method and path segments.
    pub(super) fn rest(&self, method: &str, pattern: &[&str]) -> Option<Vec<&'a str>> {
        if self.operation != method {
            return None;
        }
        let segments: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        if segments.len() != pattern.len() {
            return None;
        }
        let mut captured = Vec::new();
        for (segment, wanted) in segments.iter().zip(pattern) {
            match *wanted {
                "*" => captured.push(*segment),
                literal if literal == *segment => {}
                _ => return None,
            }
        }
        Some(captured)
    }
}

pub(super) fn url_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// An error as the service's protocol spells it.
/// The bucket a path-style S3 request is about (`/BUCKET/key?query`).
pub(super) fn s3_bucket(path: &str) -> String {
    let path = path.trim_start_matches('/');
    path.split(['/', '?']).next().unwrap_or_default().to_owned()
}

pub(super) fn error(service: &str, status: u16, code: &str, message: &str) -> Reply {
    match service {
        // JSON 1.1 (WAFv2, ACM).
        "wafv2" | "acm" => Reply::json(json!({"__type": code, "message": message}))
            .with_status(status)
            .header("content-type", "application/x-amz-json-1.1"),
        // JSON 1.0, the code with its namespace.
        "dynamodb" => {
            Reply::json(json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message}))
                .with_status(status)
                .header("content-type", "application/x-amz-json-1.0")
        }
        // REST-JSON (API Gateway, Lambda): the code in a header.
        _ => Reply::json(json!({"message": message, "Type": "User"}))
            .with_status(status)
            .header("x-amzn-errortype", code),
    }
}
