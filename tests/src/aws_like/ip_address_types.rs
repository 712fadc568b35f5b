//! API Gateway's `ipAddressType` (`ipv4` or `dualstack`) of REST APIs and
//! custom domains, and what it means for DNS: an IPv4-only regional domain
//! has no IPv6 address, so an AAAA alias to it serves no IPv6 client.
//!
//! moto keeps the type a create sends, but a PATCH of
//! `/endpointConfiguration/ipAddressType` overwrites the API's endpoint
//! *types* with it, and its domains take no PATCH at all (the layer answers
//! those). This keeps each API's and domain's type, puts it in every answer
//! that shows them, and counts AAAA aliases written to an IPv4-only domain
//! (`aaaa_to_ipv4_only`): Route 53 accepts them, clients get nothing.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::Call;
use crate::server::Recorded;

const PATH: &str = "/endpointConfiguration/ipAddressType";

#[derive(Default)]
pub(super) struct IpAddressTypes {
    /// REST API id → type.
    apis: HashMap<String, String>,
    /// Custom domain name → type.
    domains: HashMap<String, String>,
    /// A domain's regional name (lower case, final dot) → the domain name.
    regional: HashMap<String, String>,
}

fn of_create(body: &Value) -> String {
    body["endpointConfiguration"]["ipAddressType"].as_str().unwrap_or("ipv4").to_owned()
}

fn fqdn(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') { name } else { format!("{name}.") }
}

impl IpAddressTypes {
    /// Keeps the type an update sets, and says how to take it out of a REST
    /// API update before moto misreads it: the body to send instead, or
    /// `Some(None)` for an update left with nothing (sent as a GET).
    pub(super) fn before(&mut self, call: &Call<'_>) -> Option<Option<String>> {
        let target = call
            .rest("PATCH", &["restapis", "*"])
            .map(|c| (true, c[0].to_owned()))
            .or_else(|| call.rest("PATCH", &["domainnames", "*"]).map(|c| (false, super::url_decode(c[0]))));
        let (is_api, id) = target?;
        let operations = call.body["patchOperations"].as_array().cloned().unwrap_or_default();
        let (ours, rest): (Vec<Value>, Vec<Value>) = operations.into_iter().partition(|op| op["path"] == PATH);
        let value = ours.last().and_then(|op| op["value"].as_str())?;
        if !is_api {
            self.domains.insert(id, value.to_owned());
            return None;
        }
        self.apis.insert(id, value.to_owned());
        Some((!rest.is_empty()).then(|| json!({ "patchOperations": rest }).to_string()))
    }

    /// Applies what [`IpAddressTypes::before`] said to the request.
    pub(super) fn rewrite(request: &mut Recorded, rewrite: Option<Option<String>>) {
        match rewrite {
            Some(Some(body)) => request.body = body,
            Some(None) => {
                request.method = "GET".into();
                request.body.clear();
            }
            None => {}
        }
    }

    /// Records creates and deletes, and puts the kept type in each API or
    /// domain an answer shows. Whether the answer changed.
    pub(super) fn after(&mut self, call: &Call<'_>, answer: &mut Value) -> bool {
        if call.service != "apigateway" {
            return false;
        }
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        if call.rest("POST", &["restapis"]).is_some() {
            self.apis.insert(text(&answer["id"]), of_create(&call.body));
        } else if let Some(c) = call.rest("DELETE", &["restapis", "*"]) {
            self.apis.remove(c[0]);
        } else if call.rest("POST", &["domainnames"]).is_some() {
            self.domains.insert(text(&call.body["domainName"]), of_create(&call.body));
        } else if let Some(c) = call.rest("DELETE", &["domainnames", "*"]) {
            self.domains.remove(&super::url_decode(c[0]));
        }
        let shows_apis = call.rest("GET", &["restapis"]).is_some()
            || call.rest("GET", &["restapis", "*"]).is_some()
            || call.rest("PATCH", &["restapis", "*"]).is_some()
            || call.rest("POST", &["restapis"]).is_some();
        let shows_domains = call.rest("GET", &["domainnames"]).is_some()
            || call.rest("GET", &["domainnames", "*"]).is_some()
            || call.rest("PATCH", &["domainnames", "*"]).is_some()
            || call.rest("POST", &["domainnames"]).is_some();
        if !(shows_apis || shows_domains) {
            return false;
        }
        let items: Vec<&mut Value> = match answer.get_mut("item") {
            Some(Value::Array(items)) => items.iter_mut().collect(),
            _ => vec![answer],
        };
        let mut changed = false;
        for item in items {
            let kept = if shows_apis {
                item["id"].as_str().and_then(|id| self.apis.get(id))
            } else {
                let name = text(&item["domainName"]);
                if let Some(regional) = item["regionalDomainName"].as_str() {
                    self.regional.insert(fqdn(regional), name.clone());
                }
                self.domains.get(&name)
            };
            if let Some(kept) = kept
                && item.get("endpointConfiguration").is_some()
            {
                item["endpointConfiguration"]["ipAddressType"] = json!(kept);
                changed = true;
            }
        }
        changed
    }

    /// How many AAAA alias records a Route 53 change writes to a domain
    /// that answers on IPv4 only.
    pub(super) fn aaaa_to_ipv4_only(&self, route53_body: &str) -> usize {
        route53_body
            .split("<Change>")
            .skip(1)
            .filter(|change| !change.contains("<Action>DELETE</Action>") && change.contains("<Type>AAAA</Type>"))
            .filter_map(|change| change.split_once("<DNSName>")?.1.split_once("</DNSName>").map(|(n, _)| fqdn(n)))
            .filter(|target| {
                let domain = self.regional.get(target);
                domain.is_some_and(|d| self.domains.get(d).is_none_or(|t| t == "ipv4"))
            })
            .count()
    }
}
