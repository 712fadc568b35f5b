//! The REST API (v1) REQUEST authorizer event, as API Gateway builds it for a
//! request that reached a route through an mTLS custom domain.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::tls::ClientCert;

/// Where the API lives, for the method ARN and the request context.
#[derive(Debug, Clone)]
pub struct ApiIdentity {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub api_id: String,
    pub stage: String,
    pub domain: Option<String>,
}

impl ApiIdentity {
    /// `arn:{partition}:execute-api:{region}:{account}:{api}/{stage}/{VERB}/{path}`
    /// with the request's own path (without the leading `/`).
    pub fn method_arn(&self, method: &str, path: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{}/{}/{method}/{}",
            self.partition,
            self.region,
            self.account,
            self.api_id,
            self.stage,
            path.trim_start_matches('/')
        )
    }
}

/// One request as the edge saw it.
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    /// The path after the base path, as API Gateway reports it to the stage.
    pub path: &'a str,
    /// The path the client asked for, base path included (`requestContext.path`).
    pub full_path: &'a str,
    /// The route's resource template (`/pets/{id}`).
    pub resource: &'a str,
    pub headers: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub path_parameters: &'a BTreeMap<String, String>,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub source_ip: String,
    pub client_cert: Option<&'a ClientCert>,
}

impl RequestFacts<'_> {
    /// The last value of a header (names compare without case), as API
    /// Gateway's single-value view keeps it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The last value of a query-string parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub fn request_event(api: &ApiIdentity, request: &RequestFacts<'_>) -> Value {
    let (headers, multi_headers) = single_and_multi(request.headers);
    let (query, multi_query) = single_and_multi(request.query);
    let or_null = |map: Map<String, Value>| if map.is_empty() { Value::Null } else { Value::Object(map) };
    let path_parameters: Map<String, Value> =
        request.path_parameters.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let stage_variables: Map<String, Value> =
        request.stage_variables.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    json!({
        "type": "REQUEST",
        "methodArn": api.method_arn(request.method, request.path),
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": or_null(headers),
        "multiValueHeaders": or_null(multi_headers),
        "queryStringParameters": or_null(query),
        "multiValueQueryStringParameters": or_null(multi_query),
        "pathParameters": or_null(path_parameters),
        "stageVariables": or_null(stage_variables),
        "requestContext": {
            "resourceId": "local",
            "resourcePath": request.resource,
            "httpMethod": request.method,
            "extendedRequestId": request.request_id,
            "requestTime": request_time(now.as_secs()),
            "requestTimeEpoch": now.as_millis() as u64,
            "path": request.full_path,
            "accountId": api.account,
            "protocol": "HTTP/1.1",
            "stage": api.stage,
            "domainPrefix": api.domain.as_deref().and_then(|d| d.split('.').next()),
            "domainName": api.domain,
            "requestId": request.request_id,
            "apiId": api.api_id,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header("user-agent"),
                "clientCert": request.client_cert.map(ClientCert::to_json),
            },
        },
    })
}

/// API Gateway's `requestTime`: `09/Apr/2015:12:34:56 +0000` (UTC).
fn request_time(epoch_seconds: u64) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    i64::try_from(epoch_seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// `headers` keeps the last value of a repeated name, `multiValueHeaders` all.
fn single_and_multi(pairs: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in pairs {
        single.insert(name.clone(), Value::String(value.clone()));
        match multi.get_mut(name) {
            Some(Value::Array(values)) => values.push(Value::String(value.clone())),
            _ => {
                multi.insert(name.clone(), json!([value]));
            }
        }
    }
    (single, multi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time_is_in_api_gateways_format() {
        assert_eq!(request_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(request_time(1_428_582_896), "09/Apr/2015:12:34:56 +0000");
        assert_eq!(request_time(1_709_210_096), "29/Feb/2024:12:34:56 +0000");
    }

    #[test]
    fn the_event_carries_what_the_authorizer_reads() {
        let api = ApiIdentity {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            api_id: "local".into(),
            stage: "prod".into(),
            domain: Some("api.example.com".into()),
        };
        let headers = vec![
            ("authorization".to_owned(), "Bearer t".to_owned()),
            ("x-a".into(), "1".into()),
            ("x-a".into(), "2".into()),
        ];
        let query = vec![("q".to_owned(), "v".to_owned())];
        let parameters = BTreeMap::from([("id".to_owned(), "7".to_owned())]);
        let variables = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
        let event = request_event(
            &api,
            &RequestFacts {
                request_id: "r1",
                method: "GET",
                path: "/pets/7",
                full_path: "/v1/pets/7",
                resource: "/pets/{id}",
                headers: &headers,
                query: &query,
                path_parameters: &parameters,
                stage_variables: &variables,
                source_ip: "127.0.0.1".into(),
                client_cert: None,
            },
        );
        assert_eq!(event["methodArn"], "arn:aws:execute-api:eu-west-1:123456789012:local/prod/GET/pets/7");
        assert_eq!(event["headers"]["x-a"], "2");
        assert_eq!(event["multiValueHeaders"]["x-a"], json!(["1", "2"]));
        assert_eq!(event["pathParameters"]["id"], "7");
        assert_eq!(event["stageVariables"]["tier"], "gold");
        assert_eq!(event["queryStringParameters"]["q"], "v");
        assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
        let parsed: authorizer::request::AuthorizerEvent =
            serde_json::from_value(event).expect("the authorizer reads it");
        assert_eq!(parsed.method_arn(), Some("arn:aws:execute-api:eu-west-1:123456789012:local/prod/GET/pets/7"));
        assert_eq!(parsed.request_url().as_deref(), Some("https://api.example.com/v1/pets/7"));
    }
}
