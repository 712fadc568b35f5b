//! The secret values of this run, so that text the deployer did not write
//! is printed with them masked: an AWS error may quote what it was sent
//! (Lambda's 4 KB error quotes the function's whole environment as "String
//! measured: …"). [`super::Setting::secret`] registers every value it
//! holds, so a secret is known here as soon as it is read; every AWS error
//! message goes through [`masked`] (`error::describe`).

use std::sync::{Mutex, PoisonError};

/// How a secret is shown: in diffs, saved plans, JSON and errors.
pub const SENSITIVE: &str = "(sensitive)";

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `value` as a secret of this run.
pub fn register(value: &str) {
    if value.is_empty() {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|known| known == value) {
        secrets.push(value.to_owned());
        // Longest first: a secret that holds another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by `(sensitive)`; also as
/// AWS would quote it inside JSON (`"` and `\` escaped).
pub fn masked(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut text = text.to_owned();
    for secret in secrets.iter() {
        text = text.replace(secret.as_str(), SENSITIVE);
        let quoted = serde_json::to_string(secret).unwrap_or_default();
        if let Some(escaped) = quoted.get(1..quoted.len().saturating_sub(1))
            && escaped != secret
        {
            text = text.replace(escaped, SENSITIVE);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_is_masked_as_written_and_as_quoted_in_json() {
        register("s3cr\"et-7d1e");
        let echoed = r#"String measured: {"A":"s3cr\"et-7d1e","B":"x"}; raw s3cr"et-7d1e"#;
        let shown = masked(echoed);
        assert_eq!(shown, r#"String measured: {"A":"(sensitive)","B":"x"}; raw (sensitive)"#);
    }
}
