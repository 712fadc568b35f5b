//! The answer API Gateway expects from a Lambda authorizer.
//!
//! The context is flat (API Gateway accepts only string, number and boolean
//! values); lists such as scopes and audiences are joined with spaces.
//!
//! The keys of [`ALWAYS_SET`] are in every answer, empty when unknown: a
//! stage maps them to headers the backend trusts
//! (`integration.request.header.X-Sub = context.authorizer.sub`), and a
//! mapping whose value is missing would let the header the client sent
//! through unchanged. The deployer maps no other key.

use serde::Serialize;

use crate::policy::PolicyDocument;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    pub context: Context,
}

/// The context keys every answer carries ("" when unknown): the only ones a
/// stage may map to a request header.
pub const ALWAYS_SET: [&str; 7] = ["sub", "client_id", "scope", "iss", "aud", "cert_thumbprint", "dpop_thumbprint"];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Context {
    pub sub: String,
    pub client_id: String,
    /// The token's scopes, space-separated.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    pub iss: String,
    /// The token's audiences, space-separated.
    pub aud: String,
    /// `x5t#S256` of the client certificate the token is bound to ("" for none).
    pub cert_thumbprint: String,
    /// `jkt` of the DPoP key the token is bound to and the request proved ("" for none).
    pub dpop_thumbprint: String,
    /// RFC 6750 `WWW-Authenticate` value, on Deny only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_a_stage_maps_to_headers_are_always_there() {
        let context = serde_json::to_value(Context::default()).expect("json");
        for key in ALWAYS_SET {
            assert_eq!(context[key], "", "{key} must be present even when unknown");
        }
        let keys = context.as_object().expect("an object").len();
        assert_eq!(keys, ALWAYS_SET.len(), "only optional keys are left out: {context}");
        assert!(context.get("exp").is_none() && context.get("challenge").is_none(), "{context}");
    }
}
