//! How API Gateway applies an authorizer's IAM policy to a request: the
//! statements whose Action covers `execute-api:Invoke` and whose Resource
//! matches the method ARN decide; an explicit Deny wins, and no matching Allow
//! is a deny. `*` matches any run of characters (`/` included) and `?` one, as
//! in IAM.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit Deny statement matched.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

pub fn evaluate(policy: &Value, method_arn: &str) -> Decision {
    let statements = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    };
    // Action names are case-insensitive in IAM; resource ARNs are not.
    let applies = |statement: &Value| {
        any_matches(statement.get("Action"), "execute-api:invoke", true)
            && any_matches(statement.get("Resource"), method_arn, false)
    };
    fn effect(statement: &Value) -> &str {
        statement.get("Effect").and_then(Value::as_str).unwrap_or_default()
    }
    let matching: Vec<&Value> = statements.into_iter().filter(|s| applies(s)).collect();
    if matching.iter().any(|s| effect(s) == "Deny") {
        Decision::ExplicitDeny
    } else if matching.iter().any(|s| effect(s) == "Allow") {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// A string or list of strings (IAM's two shapes), any of which matches.
fn any_matches(patterns: Option<&Value>, text: &str, fold_case: bool) -> bool {
    let matches = |pattern: &str| match fold_case {
        true => glob(pattern.to_ascii_lowercase().as_bytes(), text.as_bytes()),
        false => glob(pattern.as_bytes(), text.as_bytes()),
    };
    match patterns {
        Some(Value::String(pattern)) => matches(pattern),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

/// IAM wildcard matching, iterative with one backtrack point (linear in
/// practice, never exponential).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:eu-west-1:123456789012:local/prod/GET/pets/7";

    fn statement(effect: &str, resource: Value) -> Value {
        json!({"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource})
    }

    #[test]
    fn explicit_deny_wins_and_no_allow_denies() {
        let allow = statement("Allow", json!("arn:aws:execute-api:eu-west-1:123456789012:local/prod/GET/pets/*"));
        let deny = statement("Deny", json!(["arn:aws:execute-api:*:*:*/prod/GET/pets/7"]));
        assert_eq!(evaluate(&json!({"Statement": [allow.clone()]}), ARN), Decision::Allow);
        assert_eq!(evaluate(&json!({"Statement": [allow.clone(), deny]}), ARN), Decision::ExplicitDeny);
        assert_eq!(evaluate(&json!({"Statement": []}), ARN), Decision::ImplicitDeny);
        let other = statement("Allow", json!("arn:aws:execute-api:eu-west-1:123456789012:local/prod/POST/pets"));
        assert_eq!(evaluate(&json!({"Statement": other}), ARN), Decision::ImplicitDeny);
        let wrong_action = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        assert_eq!(evaluate(&json!({"Statement": [wrong_action]}), ARN), Decision::ImplicitDeny);
    }

    #[test]
    fn wildcards_are_iams() {
        assert!(glob(b"a*c", b"abbbc") && glob(b"a*", b"a/b/c") && glob(b"a?c", b"abc") && glob(b"*", b""));
        assert!(!glob(b"a?c", b"ac") && !glob(b"a*d", b"abc") && !glob(b"abc", b"abcd"));
        assert!(glob(b"*/GET/*", b"prod/GET/x/y"), "IAM's * crosses '/'");
    }
}
