//! An IAM policy evaluator, written independently of the authorizer and of
//! the deployer (each has its own): tests use it to read an authorizer's
//! answer the way API Gateway would, and to judge whether a policy the
//! deployer prints allows what the deployer sends.
//!
//! An explicit Deny wins, then any Allow, else the request is denied.
//! Actions match case-insensitively, resources case-sensitively; in both,
//! `*` matches any run of characters (`/` included) and `?` exactly one; the
//! policy variables `${*}`, `${?}` and `${$}` are those characters
//! themselves. Conditions: `StringEquals`, `StringNotEquals`, `StringLike`,
//! `ArnEquals`, `ArnLike`, `Null`, and the `ForAllValues:`/`ForAnyValue:`
//! forms, as IAM evaluates them: keys ignore case; a missing key fails a
//! condition, except `ForAllValues:`, which a missing key satisfies, and a
//! negated operator, which it satisfies too. Anything else in a statement
//! (`NotAction`, `Principal`, another operator, a misspelt `Effect`) is not
//! guessed at: the evaluator panics, so a test never passes on a policy it
//! could not read.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

/// `expression` compiled, once per thread: the suites judge thousands of
/// requests against a few dozen patterns, and an unoptimised regex build
/// costs far more than the match.
pub fn cached_regex(expression: &str) -> Regex {
    thread_local! {
        static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
            std::cell::RefCell::default();
    }
    if let Some(regex) = COMPILED.with_borrow(|compiled| compiled.get(expression).cloned()) {
        return regex;
    }
    let regex = Regex::new(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
    COMPILED.with_borrow_mut(|compiled| compiled.insert(expression.to_owned(), regex.clone()));
    regex
}

/// A pattern as an anchored regular expression.
fn pattern(text: &str, case_insensitive: bool) -> Regex {
    let mut expression = String::from(if case_insensitive { "(?i)^" } else { "^" });
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        // The policy variables that stand for a special character itself.
        if let Some(literal) = ["${*}", "${?}", "${$}"].iter().find(|v| rest.starts_with(**v)) {
            expression.push_str(&regex::escape(&literal[2..3]));
            rest = &rest[literal.len()..];
            continue;
        }
        match c {
            '*' => expression.push_str(".*"),
            '?' => expression.push('.'),
            other => expression.push_str(&regex::escape(&other.to_string())),
        }
        rest = &rest[c.len_utf8()..];
    }
    expression.push('$');
    cached_regex(&expression)
}

/// One request as IAM judges it: an action on a resource, with the context
/// keys the request carries (`iam:PassedToService`, `acm:DomainNames`, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request { action: action.into(), resource: resource.into(), context: BTreeMap::new() }
    }

    pub fn with(mut self, key: &str, values: &[&str]) -> Request {
        self.context.insert(key.to_owned(), values.iter().map(|v| (*v).to_owned()).collect());
        self
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if !self.context.is_empty() {
            write!(f, " with {:?}", self.context)?;
        }
        Ok(())
    }
}

fn strings(value: &Value, what: &str) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().map(|v| v.as_str().expect("a string").to_owned()).collect(),
        other => panic!("{what} must be a string or a list: {other}"),
    }
}

/// Whether one condition operator's block holds for `request`.
fn condition_holds(operator: &str, block: &Value, request: &Request) -> bool {
    let block = block.as_object().unwrap_or_else(|| panic!("{operator}: a map of keys"));
    block.iter().all(|(key, wanted)| {
        let wanted = strings(wanted, key);
        let present = request.context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
        let matches = |value: &str, like: bool| {
            wanted.iter().any(|w| if like { pattern(w, false).is_match(value) } else { w == value })
        };
        let (set, base) = match operator.split_once(':') {
            Some((set, base)) => (Some(set), base),
            None => (None, operator),
        };
        let (like, negated) = match base {
            "StringEquals" | "ArnEquals" => (false, false),
            "StringLike" | "ArnLike" => (true, false),
            "StringNotEquals" | "ArnNotEquals" => (false, true),
            "Null" => {
                assert!(set.is_none(), "{operator} is not an operator");
                let null = wanted == ["true"];
                return present.is_none() == null;
            }
            other => panic!("condition operator {other} is not evaluated here"),
        };
        if negated {
            // True where no value matches; a missing key matches nothing.
            assert!(set.is_none(), "{operator}: only the plain negated form is evaluated here");
            return present.is_none_or(|values| !values.iter().any(|v| matches(v, like)));
        }
        match (set, present) {
            (Some("ForAllValues"), None) => true,
            (Some("ForAllValues"), Some(values)) => values.iter().all(|v| matches(v, like)),
            (Some("ForAnyValue"), Some(values)) => values.iter().any(|v| matches(v, like)),
            (None, Some(values)) => values.len() == 1 && matches(&values[0], like),
            (Some("ForAnyValue") | None, None) => false,
            (Some(other), _) => panic!("{other}: not a set operator"),
        }
    })
}

/// Whether `statement` applies to `request`.
fn applies(statement: &Value, request: &Request) -> bool {
    let object = statement.as_object().expect("a statement is an object");
    for key in object.keys() {
        assert!(
            ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&key.as_str()),
            "{key} is not evaluated here: {statement}"
        );
    }
    let actions = strings(&statement["Action"], "Action");
    let resources = strings(&statement["Resource"], "Resource");
    actions.iter().any(|a| pattern(a, true).is_match(&request.action))
        && resources.iter().any(|r| pattern(r, false).is_match(&request.resource))
        && statement
            .get("Condition")
            .map(|c| c.as_object().expect("Condition is a map"))
            .is_none_or(|conditions| conditions.iter().all(|(op, block)| condition_holds(op, block, request)))
}

/// What IAM decides for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it.
    NotAllowed,
    /// A `Deny` statement applies.
    ExplicitlyDenied,
}

/// What `policy` (a policy document as JSON) decides for `request`.
pub fn decide(policy: &Value, request: &Request) -> Decision {
    let statements = policy["Statement"].as_array().expect("Statement is a list");
    for statement in statements {
        assert!(["Allow", "Deny"].contains(&statement["Effect"].as_str().unwrap_or_default()), "{statement}");
    }
    if statements.iter().any(|s| s["Effect"] == "Deny" && applies(s, request)) {
        Decision::ExplicitlyDenied
    } else if statements.iter().any(|s| s["Effect"] == "Allow" && applies(s, request)) {
        Decision::Allowed
    } else {
        Decision::NotAllowed
    }
}

/// Whether `policy` (a policy document as JSON) allows `request`.
pub fn allows_request(policy: &Value, request: &Request) -> bool {
    decide(policy, request) == Decision::Allowed
}

/// Whether `policy` (an authorizer's `policyDocument` as JSON) lets a
/// caller invoke `arn`; every statement must be about `execute-api:Invoke`.
pub fn iam_allows(policy: &Value, arn: &str) -> bool {
    for statement in policy["Statement"].as_array().expect("Statement is a list") {
        assert_eq!(statement["Action"], "execute-api:Invoke", "{statement}");
    }
    allows_request(policy, &Request::new("execute-api:Invoke", arn))
}

/// [`iam_allows`] for a typed policy document.
pub fn allows(policy: &authorizer::policy::PolicyDocument, arn: &str) -> bool {
    iam_allows(&serde_json::to_value(policy).expect("policy serialises"), arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deny_wins_and_wildcards_cross_slashes() {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ["a/*"]},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "a/b?/*"}
        ]});
        assert!(iam_allows(&policy, "a/x/y"));
        assert!(!iam_allows(&policy, "a/bc/d"));
        assert!(iam_allows(&policy, "a/b/d"), "? is exactly one character");
        assert!(!iam_allows(&policy, "b/x"), "no Allow: denied");
        assert!(!iam_allows(&policy, "A/x"), "case-sensitive");
    }

    #[test]
    fn conditions_as_iam_evaluates_them() {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/r",
             "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
            {"Effect": "Allow", "Action": ["ACM:Request*"], "Resource": "*",
             "Condition": {"ForAllValues:StringEquals": {"acm:DomainNames": ["a.example.com"]}}}
        ]});
        let pass = Request::new("iam:PassRole", "arn:aws:iam::1:role/r");
        assert!(allows_request(&policy, &pass.clone().with("iam:PassedToService", &["lambda.amazonaws.com"])));
        assert!(!allows_request(&policy, &pass.clone().with("iam:PassedToService", &["ec2.amazonaws.com"])));
        assert!(!allows_request(&policy, &pass), "a missing key fails StringEquals");
        let request = Request::new("acm:RequestCertificate", "*");
        assert!(
            allows_request(&policy, &request.clone().with("acm:DomainNames", &["a.example.com"])),
            "actions ignore case"
        );
        assert!(!allows_request(
            &policy,
            &request.clone().with("acm:DomainNames", &["a.example.com", "b.example.com"])
        ));
        assert!(allows_request(&policy, &request), "ForAllValues holds for a missing key, as in IAM");
    }

    #[test]
    fn negated_conditions_and_literal_stars() {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "apigateway:PUT", "Resource": "arn:aws:apigateway:r::/tags/x%2F${*}"},
            {"Effect": "Allow", "Action": "iam:CreateRole", "Resource": "*"},
            {"Effect": "Deny", "Action": "iam:CreateRole", "Resource": "*",
             "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": "arn:b"}}}
        ]});
        assert!(allows_request(&policy, &Request::new("apigateway:PUT", "arn:aws:apigateway:r::/tags/x%2F*")));
        assert!(!allows_request(&policy, &Request::new("apigateway:PUT", "arn:aws:apigateway:r::/tags/x%2Fabc")));
        let create = Request::new("iam:CreateRole", "arn:aws:iam::1:role/r");
        assert!(
            allows_request(&policy, &create.clone().with("IAM:PermissionsBoundary", &["arn:b"])),
            "keys ignore case"
        );
        assert!(!allows_request(&policy, &create.clone().with("iam:PermissionsBoundary", &["arn:c"])));
        assert!(!allows_request(&policy, &create), "a missing key satisfies a negated operator");
    }

    #[test]
    #[should_panic(expected = "NotAction is not evaluated here")]
    fn what_it_cannot_evaluate_it_refuses() {
        let policy = json!({"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]});
        allows_request(&policy, &Request::new("iam:PassRole", "*"));
    }
}
