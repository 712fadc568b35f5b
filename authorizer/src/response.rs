//! The answer API Gateway expects from a Lambda authorizer.
//!
//! The context is flat (API Gateway accepts only string, number and boolean
//! values); lists such as scopes and audiences are joined with spaces.

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// `x5t#S256` of the client certificate the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_thumbprint: Option<String>,
    /// `jkt` of the DPoP key the token is bound to (and the request proved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_thumbprint: Option<String>,
    /// RFC 6750 `WWW-Authenticate` value, on Deny only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}
