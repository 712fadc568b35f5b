//! WAF's eventual consistency: what is just made, changed or disassociated
//! is unavailable (or still associated, or missing from lists) for a while,
//! and a lock token is refused once when stale.

use std::time::Instant;

use serde_json::Value;

use super::call::{Call, error};
use super::{AwsLike, State, aws_time};
use crate::server::Reply;

impl AwsLike {
    /// The WAF error AWS would give now, with the behaviour it counts under.
    pub(super) fn waf_not_yet(
        &self,
        call: &Call<'_>,
        state: &mut State,
        now: Instant,
    ) -> Option<(&'static str, Reply)> {
        let unavailable = |arn: &str| state.waf_unavailable.get(arn).is_some_and(|until| now < *until);
        let associated = |arn: &str| state.waf_associated.get(arn).is_some_and(|until| now < *until);
        let unavailable_error = || {
            error(
                "wafv2",
                400,
                "WAFUnavailableEntityException",
                "AWS WAF couldn't retrieve a resource that you specified. Retry your request.",
            )
        };
        let associated_error = || {
            error(
                "wafv2",
                400,
                "WAFAssociatedItemException",
                "AWS WAF couldn't perform the operation because your resource is being used by another resource.",
            )
        };
        let name = call.body["Name"].as_str().unwrap_or_default();
        if ["CreateIPSet", "CreateWebACL"].contains(&call.operation.as_str()) && state.waf_names.contains_key(name) {
            return Some((
                "waf_duplicate",
                error(
                    "wafv2",
                    400,
                    "WAFDuplicateItemException",
                    "AWS WAF couldn't perform the operation because some resource in your request is a duplicate of an existing one.",
                ),
            ));
        }
        if !self.behaviours.waf_eventual {
            return None;
        }
        let reply = match call.operation.as_str() {
            "CreateWebACL" => {
                let rules = call.body["Rules"].as_array().cloned().unwrap_or_default();
                let referenced = rules.iter().filter_map(|r| r["Statement"]["IPSetReferenceStatement"]["ARN"].as_str());
                referenced.clone().any(unavailable).then(unavailable_error)
            }
            "AssociateWebACL" => {
                let acl = call.body["WebACLArn"].as_str().unwrap_or_default();
                let resource = call.body["ResourceArn"].as_str().unwrap_or_default();
                (unavailable(acl) || unavailable(resource)).then(unavailable_error)
            }
            "DeleteWebACL" | "DeleteIPSet" => {
                let id = call.body["Id"].as_str().unwrap_or_default();
                let arn = state.waf_arn_by_id.get(id).cloned().unwrap_or_default();
                associated(&arn).then(associated_error)
            }
            _ => None,
        };
        reply.map(|reply| ("waf_eventual", reply))
    }

    pub(super) fn remember_waf(&self, call: &Call<'_>, answer: &Value, state: &mut State, now: Instant) {
        match call.operation.as_str() {
            "CreateIPSet" | "CreateWebACL" => {
                let summary = &answer["Summary"];
                let (Some(id), Some(arn)) = (summary["Id"].as_str(), summary["ARN"].as_str()) else { return };
                state.waf_arn_by_id.insert(id.to_owned(), arn.to_owned());
                if let Some(name) = call.body["Name"].as_str() {
                    state.waf_names.insert(name.to_owned(), arn.to_owned());
                }
                state.waf_unavailable.insert(arn.to_owned(), now + self.scaled(aws_time::WAF_UNAVAILABLE));
                state.waf_hidden.insert(arn.to_owned(), now + self.scaled(aws_time::WAF_LIST_LAG));
                if call.operation == "CreateWebACL" {
                    let rules = call.body["Rules"].as_array().cloned().unwrap_or_default();
                    let sets = rules
                        .iter()
                        .filter_map(|r| r["Statement"]["IPSetReferenceStatement"]["ARN"].as_str().map(str::to_owned));
                    state.acl_ip_sets.insert(arn.to_owned(), sets.collect());
                }
            }
            "AssociateWebACL" => {
                let (Some(acl), Some(resource)) = (call.body["WebACLArn"].as_str(), call.body["ResourceArn"].as_str())
                else {
                    return;
                };
                state.associations.insert(resource.to_owned(), acl.to_owned());
            }
            "DisassociateWebACL" => {
                let resource = call.body["ResourceArn"].as_str().unwrap_or_default();
                if let Some(acl) = state.associations.remove(resource) {
                    state.waf_associated.insert(acl, now + self.scaled(aws_time::WAF_ASSOCIATED));
                }
            }
            "DeleteIPSet" => {
                let name = call.body["Name"].as_str().unwrap_or_default();
                state.waf_names.remove(name);
            }
            "DeleteWebACL" => {
                let id = call.body["Id"].as_str().unwrap_or_default();
                let arn = state.waf_arn_by_id.get(id).cloned().unwrap_or_default();
                state.waf_names.remove(call.body["Name"].as_str().unwrap_or_default());
                for set in state.acl_ip_sets.remove(&arn).unwrap_or_default() {
                    state.waf_associated.insert(set, now + self.scaled(aws_time::WAF_ASSOCIATED));
                }
            }
            _ => {}
        }
    }
}
