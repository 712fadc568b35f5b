//! An IAM policy evaluator for `execute-api:Invoke`, written independently of
//! the authorizer (which has its own matcher): tests use it to read an answer
//! the way API Gateway would.
//!
//! An explicit Deny wins, then any Allow, else the request is denied. In a
//! resource, `*` matches any run of characters (`/` included) and `?` exactly
//! one; comparison is case-sensitive, as for ARNs.

use regex::Regex;
use serde_json::Value;

/// A resource pattern as an anchored regular expression.
fn pattern(resource: &str) -> Regex {
    let mut expression = String::from("^");
    for c in resource.chars() {
        match c {
            '*' => expression.push_str(".*"),
            '?' => expression.push('.'),
            other => expression.push_str(&regex::escape(&other.to_string())),
        }
    }
    expression.push('$');
    Regex::new(&expression).expect("IAM resource pattern")
}

/// Whether `policy` (a `policyDocument` as JSON) lets a caller invoke `arn`.
pub fn iam_allows(policy: &Value, arn: &str) -> bool {
    let statements = policy["Statement"].as_array().expect("Statement is a list");
    let matches = |statement: &Value| {
        assert_eq!(statement["Action"], "execute-api:Invoke", "{statement}");
        let resources = match &statement["Resource"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().map(|r| r.as_str().expect("resource is a string")).collect(),
            other => panic!("Resource must be a string or a list: {other}"),
        };
        resources.iter().any(|resource| pattern(resource).is_match(arn))
    };
    let denied = statements.iter().any(|s| s["Effect"] == "Deny" && matches(s));
    let allowed = statements.iter().any(|s| s["Effect"] == "Allow" && matches(s));
    !denied && allowed
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
}
