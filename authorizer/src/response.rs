//! The answer API Gateway expects from a Lambda authorizer.
//!
//! The context is flat (API Gateway accepts only string, number and boolean
//! values); lists such as scopes and audiences are joined with spaces.
//!
//! `sub`, `client_id`, `cert_thumbprint` and `dpop_thumbprint` are always
//! there, empty when unknown: a stage maps them to headers the backend trusts
//! (`integration.request.header.X-Sub = context.authorizer.sub`), and a
//! mapping whose value is missing would let the header the client sent
//! through unchanged.

use serde::Serialize;

use crate::policy::PolicyDocument;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    pub context: Context,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Context {
    /// Always present ("" when unknown), like the thumbprints.
    pub sub: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
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
        for key in ["sub", "client_id", "cert_thumbprint", "dpop_thumbprint"] {
            assert_eq!(context[key], "", "{key} must be present even when unknown");
        }
        assert!(context.get("scope").is_none() && context.get("challenge").is_none(), "{context}");
    }
}
