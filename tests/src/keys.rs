//! Signing keys of every supported type, their public JWKs, and tokens
//! signed with them.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub struct SigningKey {
    pub alg: Algorithm,
    pub kid: String,
    pub encoding: EncodingKey,
    /// The private key in PKCS#8 PEM (for attacks that need the raw material).
    pub private_pem: String,
    pub jwk: Jwk,
}

impl SigningKey {
    pub fn generate(alg: Algorithm, kid: &str) -> SigningKey {
        let rcgen_alg = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => &rcgen::PKCS_RSA_SHA256,
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Algorithm::EdDSA => &rcgen::PKCS_ED25519,
            other => panic!("no asymmetric key for {other:?}"),
        };
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("key generation");
        let private_pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(private_pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
        }
        .expect("encoding key");
        let mut jwk = match alg {
            // jsonwebtoken derives Ed25519 JWKs only from PKCS#8 v1 keys, and
            // rcgen writes v2 (with the public key inside): build it directly.
            Algorithm::EdDSA => {
                use base64::Engine as _;
                let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key_raw());
                serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "x": x})).expect("Ed25519 JWK")
            }
            _ => Jwk::from_encoding_key(&encoding, alg).expect("public JWK"),
        };
        jwk.common.key_id = Some(kid.to_owned());
        // Most identity providers publish keys without `alg`; keep ours the same
        // so the authorizer's kty-based checks are what is exercised.
        jwk.common.key_algorithm = None;
        SigningKey { alg, kid: kid.to_owned(), encoding, private_pem, jwk }
    }

    /// A token with this key's alg and kid over `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        self.sign_with(header, claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing")
    }
}

/// `{"keys": [...]}` for these keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| serde_json::to_value(&k.jwk).expect("jwk json")).collect::<Vec<_>>() })
}

/// Builds a JWS by hand from arbitrary header and payload JSON and a raw
/// signature: for tokens no honest library would produce (`alg: none`, ...).
pub fn raw_jws(header: &Value, payload: &Value, signature: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.{}", b64.encode(header.to_string()), b64.encode(payload.to_string()), b64.encode(signature))
}
