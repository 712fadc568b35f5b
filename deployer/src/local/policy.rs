//! How API Gateway applies an authorizer's IAM policy to a request: the
//! statements whose Action (or NotAction) covers `execute-api:Invoke` and
//! whose Resource (or NotResource) matches the method ARN decide; an explicit
//! Deny wins, and no matching Allow is a deny. `*` matches any run of
//! characters (`/` included) and `?` one, as in IAM.
//!
//! What this evaluator cannot judge exactly (a `Condition`, a `Principal`,
//! an unknown key, an `Effect` other than `Allow` or `Deny`, a statement with
//! both or neither of Action/NotAction) makes the policy unevaluable, and the
//! request gets 500, as API Gateway answers a policy it cannot use. Ignoring
//! such a statement could make a Deny vanish.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit Deny statement matched.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
    /// The policy holds something this evaluator cannot judge.
    Unevaluable,
}

/// The keys a statement may hold that this evaluator understands.
const KNOWN_KEYS: &[&str] = &["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"];

pub fn evaluate(policy: &Value, method_arn: &str) -> Decision {
    let statements: Vec<&Map<String, Value>> = match policy.get("Statement") {
        Some(Value::Array(items)) => match items.iter().map(Value::as_object).collect::<Option<Vec<_>>>() {
            Some(statements) => statements,
            None => return Decision::Unevaluable,
        },
        Some(Value::Object(single)) => vec![single],
        None => Vec::new(),
        Some(_) => return Decision::Unevaluable,
    };
    let (mut allowed, mut denied) = (false, false);
    for statement in statements {
        let Some(applies) = applies(statement, method_arn) else {
            return Decision::Unevaluable;
        };
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => allowed |= applies,
            Some("Deny") => denied |= applies,
            _ => return Decision::Unevaluable,
        }
    }
    match (denied, allowed) {
        (true, _) => Decision::ExplicitDeny,
        (false, true) => Decision::Allow,
        (false, false) => Decision::ImplicitDeny,
    }
}

/// Whether the statement covers `execute-api:Invoke` on `method_arn`, or
/// None when it cannot be judged.
fn applies(statement: &Map<String, Value>, method_arn: &str) -> Option<bool> {
    if statement.keys().any(|key| !KNOWN_KEYS.contains(&key.as_str())) {
        return None;
    }
    // Action names are case-insensitive in IAM; resource ARNs are not.
    let action = one_of(statement, "Action", "NotAction", "execute-api:invoke", true)?;
    let resource = one_of(statement, "Resource", "NotResource", method_arn, false)?;
    Some(action && resource)
}

/// `key` matches `text`, or `not_key` does not; None unless exactly one of
/// them is there, as a string or a list of strings.
fn one_of(statement: &Map<String, Value>, key: &str, not_key: &str, text: &str, fold_case: bool) -> Option<bool> {
    match (statement.get(key), statement.get(not_key)) {
        (Some(patterns), None) => any_matches(patterns, text, fold_case),
        (None, Some(patterns)) => any_matches(patterns, text, fold_case).map(|matched| !matched),
        _ => None,
    }
}

/// A string or list of strings (IAM's two shapes), any of which matches;
/// None for any other shape.
fn any_matches(patterns: &Value, text: &str, fold_case: bool) -> Option<bool> {
    let matches = |pattern: &str| match fold_case {
        true => glob(pattern.to_ascii_lowercase().as_bytes(), text.as_bytes()),
        false => glob(pattern.as_bytes(), text.as_bytes()),
    };
    match patterns {
        Value::String(pattern) => Some(matches(pattern)),
        Value::Array(items) => {
            let patterns = items.iter().map(Value::as_str).collect::<Option<Vec<_>>>()?;
            Some(patterns.into_iter().any(matches))
        }
        _ => None,
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
    fn not_action_and_not_resource_are_evaluated() {
        let allow = statement("Allow", json!("*"));
        // A Deny of everything but S3 covers execute-api:Invoke.
        let deny_but_s3 = json!({"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"});
        assert_eq!(evaluate(&json!({"Statement": [allow.clone(), deny_but_s3]}), ARN), Decision::ExplicitDeny);
        let deny_but_invoke = json!({"Effect": "Deny", "NotAction": ["execute-api:Invoke"], "Resource": "*"});
        assert_eq!(evaluate(&json!({"Statement": [allow.clone(), deny_but_invoke]}), ARN), Decision::Allow);
        // A Deny of every resource but another one covers this one.
        let deny_elsewhere = json!({"Effect": "Deny", "Action": "execute-api:Invoke", "NotResource": "arn:aws:execute-api:*:*:*/prod/POST/*"});
        assert_eq!(evaluate(&json!({"Statement": [allow.clone(), deny_elsewhere]}), ARN), Decision::ExplicitDeny);
        let allow_but_pets =
            json!({"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": ["*/GET/pets/*"]});
        assert_eq!(evaluate(&json!({"Statement": [allow_but_pets]}), ARN), Decision::ImplicitDeny);
        let allow_but_post = json!({"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": "*/POST/*"});
        assert_eq!(evaluate(&json!({"Statement": allow_but_post}), ARN), Decision::Allow);
    }

    #[test]
    fn what_cannot_be_judged_is_unevaluable_not_ignored() {
        let allow = statement("Allow", json!("*"));
        for odd in [
            json!({"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
            json!({"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}),
            json!({"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*", "Resources": "*"}),
            json!({"Effect": "deny", "Action": "execute-api:Invoke", "Resource": "*"}),
            json!({"Effect": "Denny", "Action": "execute-api:Invoke", "Resource": "*"}),
            json!({"Action": "execute-api:Invoke", "Resource": "*"}),
            json!({"Effect": "Deny", "Action": "execute-api:Invoke", "NotAction": "s3:*", "Resource": "*"}),
            json!({"Effect": "Deny", "Action": "execute-api:Invoke"}),
            json!({"Effect": "Deny", "Action": 7, "Resource": "*"}),
            json!({"Effect": "Deny", "Action": ["execute-api:Invoke", 7], "Resource": "*"}),
            json!("Deny everything"),
        ] {
            assert_eq!(
                evaluate(&json!({"Statement": [allow.clone(), odd.clone()]}), ARN),
                Decision::Unevaluable,
                "{odd}"
            );
        }
        assert_eq!(evaluate(&json!({"Statement": "x"}), ARN), Decision::Unevaluable);
        let with_sid = json!({"Sid": "a", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"});
        assert_eq!(evaluate(&json!({"Version": "2012-10-17", "Statement": [with_sid]}), ARN), Decision::Allow);
    }

    #[test]
    fn wildcards_are_iams() {
        assert!(glob(b"a*c", b"abbbc") && glob(b"a*", b"a/b/c") && glob(b"a?c", b"abc") && glob(b"*", b""));
        assert!(!glob(b"a?c", b"ac") && !glob(b"a*d", b"abc") && !glob(b"abc", b"abcd"));
        assert!(glob(b"*/GET/*", b"prod/GET/x/y"), "IAM's * crosses '/'");
    }
}
