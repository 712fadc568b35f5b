//! The route table and the method ARN parsers, and the policy built from
//! them: no Allow ever names a wildcard in the stage or verb position, and
//! the policy's verdict on the request's own ARN is the table's.
#![no_main]

use authorizer::arn::MethodArn;
use authorizer::policy::{self, Effect};
use authorizer::routes::{Requirement, RouteTable, glob_matches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "<routes JSON>\n<method ARN>\n<granted scopes>"
    let mut parts = text.splitn(3, '\n');
    let (Some(table), Some(arn), scopes) = (parts.next(), parts.next(), parts.next().unwrap_or("")) else {
        return;
    };
    let parsed_arn = MethodArn::parse(arn);
    if let Ok(parsed) = &parsed_arn {
        assert!(!parsed.raw.contains(['*', '?']) && !parsed.raw.contains("${"));
    }
    let (Ok(table), Ok(arn)) = (RouteTable::parse(table), parsed_arn) else {
        return;
    };
    let granted: Vec<&str> = scopes.split(' ').collect();
    let satisfied = |r: &Requirement| r.is_satisfied_by(|s| granted.contains(&s));
    let allowed = table.requirements(&arn).all(satisfied);
    let document = policy::for_table(&arn, &table, satisfied);
    let own_stage = format!("{}{}/", arn.api_prefix, arn.stage);
    let mut matched_allow = false;
    let mut matched_deny = false;
    for statement in &document.statements {
        for resource in &statement.resources {
            if statement.effect == Effect::Allow {
                let rest = resource.strip_prefix(&own_stage).expect("an Allow names the request's stage");
                let (verb, _) = rest.split_once('/').expect("stage/VERB/path");
                assert!(authorizer::arn::VERBS.contains(&verb), "{resource}");
            }
            if glob_matches(resource, arn.raw) {
                match statement.effect {
                    Effect::Allow => matched_allow = true,
                    Effect::Deny => matched_deny = true,
                }
            }
        }
    }
    assert_eq!(matched_allow && !matched_deny, allowed, "{document:?}");
});
