//! Method ARNs, as API Gateway hands them to the authorizer, parsed once
//! and refused when they could mean more than one request:
//! - one holding an IAM wildcard character (`*`, `?`) or a policy variable
//!   (`${`), so a request path can never widen a policy;
//! - one whose path has a dot segment (`..`, `.`) or an encoded `.` or `/`
//!   (`%2E`, `%2F`): API Gateway's own paths have none, and a backend that
//!   resolved one would serve another route than the one judged;
//! - one that percent-encodes a letter, digit or `-._~:@`, which route
//!   literals spell plain.
//!
//! Routes ([`crate::routes`]) and policies ([`crate::policy`]) both read
//! what this parses; it reads neither. No I/O here.

/// The HTTP verbs of API Gateway methods; `ANY` stands for all of them.
pub const VERBS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A stage name as API Gateway allows it, or HTTP APIs' `$default`.
pub fn is_stage_name(stage: &str) -> bool {
    stage == "$default"
        || (!stage.is_empty() && stage.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodArn<'a> {
    /// The whole ARN.
    pub raw: &'a str,
    /// Everything up to and including `{apiId}/`: the prefix of every resource
    /// this authorizer may name in a policy.
    pub api_prefix: &'a str,
    pub stage: &'a str,
    /// One of [`VERBS`].
    pub verb: &'static str,
    /// The request path, without its leading `/`.
    pub path: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadMethodArn {
    #[error("method ARN is not of the form arn:PARTITION:execute-api:REGION:ACCOUNT:API/STAGE/VERB/PATH")]
    Malformed,
    #[error("method ARN holds an IAM wildcard or policy variable (*, ?, ${{), which no policy may name")]
    Wildcard,
    #[error("method ARN's path holds a dot segment or an encoded `.` or `/`")]
    DotSegment,
    /// `%3A` for `:`, `%41` for `A`: a route's literal is written plain, so
    /// an encoded one would match no route and leave the request to the
    /// default rule.
    #[error("method ARN's path holds a percent-encoded letter, digit or one of -._~:@, which route paths spell plain")]
    EncodedLiteral,
}

/// Whether `path` spells, percent-encoded, a character a route's literal
/// segment holds plain (`A-Za-z0-9-._~:@`).
pub fn has_encoded_literal(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.windows(3).any(|w| {
        let hex = |b: u8| (b as char).to_digit(16);
        match (w[0], hex(w[1]), hex(w[2])) {
            (b'%', Some(high), Some(low)) => {
                let decoded = (high * 16 + low) as u8;
                decoded.is_ascii_alphanumeric() || b"-._~:@".contains(&decoded)
            }
            _ => false,
        }
    })
}

/// Whether `path` has a `.` or `..` segment, raw or percent-encoded, or an
/// encoded `/` that could become a segment boundary once decoded.
pub fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e") || lower.contains("%2f") || path.split('/').any(|s| s == "." || s == "..")
}

impl<'a> MethodArn<'a> {
    pub fn parse(arn: &'a str) -> Result<MethodArn<'a>, BadMethodArn> {
        if arn.contains(['*', '?']) || arn.contains("${") {
            return Err(BadMethodArn::Wildcard);
        }
        let mut fields = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("execute-api"), Some(region), Some(account), Some(rest)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(BadMethodArn::Malformed);
        };
        // Every AWS partition: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...
        let is_name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !partition.starts_with("aws") || !is_name(partition) || !is_name(region) {
            return Err(BadMethodArn::Malformed);
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadMethodArn::Malformed);
        }
        let mut parts = rest.splitn(4, '/');
        let (Some(api_id), Some(stage), Some(verb), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadMethodArn::Malformed);
        };
        let verb = VERBS.iter().copied().find(|v| *v == verb).ok_or(BadMethodArn::Malformed)?;
        if has_dot_segment(path) {
            return Err(BadMethodArn::DotSegment);
        }
        if has_encoded_literal(path) {
            return Err(BadMethodArn::EncodedLiteral);
        }
        if !is_name(api_id) || !is_stage_name(stage) {
            return Err(BadMethodArn::Malformed);
        }
        let prefix_len = arn.len() - rest.len() + api_id.len() + 1;
        Ok(MethodArn { raw: arn, api_prefix: &arn[..prefix_len], stage, verb, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_partition() {
        for partition in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"] {
            let raw = format!("arn:{partition}:execute-api:eu-west-1:123456789012:abc123/prod/GET/pets/42");
            let arn = MethodArn::parse(&raw).unwrap();
            assert_eq!(arn.api_prefix, format!("arn:{partition}:execute-api:eu-west-1:123456789012:abc123/"));
            assert_eq!((arn.stage, arn.verb, arn.path), ("prod", "GET", "pets/42"));
        }
        let root = MethodArn::parse("arn:aws:execute-api:us-east-1:123456789012:abc/dev/GET/").unwrap();
        assert_eq!(root.path, "");
        let http_api = MethodArn::parse("arn:aws:execute-api:us-east-1:123456789012:abc/$default/GET/a").unwrap();
        assert_eq!(http_api.stage, "$default");
    }

    #[test]
    fn refuses_malformed_arns_and_wildcards() {
        for raw in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function:x",
            "arn:aws:execute-api:us-east-1:123:abc/prod/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod",
            "arn:evil:execute-api:us-east-1:123456789012:abc/prod/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/FETCH/",
            "arn:aws:execute-api:us-east-1:123456789012:abc/pr.od/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:abc//GET/",
        ] {
            assert_eq!(MethodArn::parse(raw), Err(BadMethodArn::Malformed), "{raw}");
        }
        for raw in [
            "arn:aws:execute-api:us-east-1:123456789012:a*c/prod/GET/",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets/*",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/pets/4?",
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/${aws:username}",
        ] {
            assert_eq!(MethodArn::parse(raw), Err(BadMethodArn::Wildcard), "{raw}");
        }
        for path in ["pets/..", "pets/.", "../admin", "pets/%2e%2E", "pets/7%2Fadmin", "pets/%2E", "a/./b"] {
            let raw = format!("arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/{path}");
            assert_eq!(MethodArn::parse(&raw), Err(BadMethodArn::DotSegment), "{raw}");
        }
        for path in ["pets%3Apurge", "pets%3apurge", "pets/%40me", "%70ets", "pets/%7E", "pets/%2D", "pets/%5F"] {
            let raw = format!("arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/{path}");
            assert_eq!(MethodArn::parse(&raw), Err(BadMethodArn::EncodedLiteral), "{raw}");
        }
        for path in
            ["pets/a.b", "pets/...", "files/v1.2/x", "", "pets:purge", "pets/@me", "files/a%20b", "x/%25", "%3B"]
        {
            let raw = format!("arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/{path}");
            assert!(MethodArn::parse(&raw).is_ok(), "{raw}");
        }
    }
}
