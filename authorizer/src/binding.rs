//! Proof of possession: is the token used by the holder it was issued to?
//!
//! A token's `cnf` names what its holder must prove possession of: a client
//! certificate (RFC 8705 `x5t#S256`, compared with the certificate of the
//! mTLS connection) or a DPoP key (RFC 9449 `jkt`, compared with the key of a
//! proof [`crate::dpop`] verified). A `cnf` naming anything else is refused:
//! the token is bound, and nothing here can tell whether the caller holds
//! what it is bound to. Also here: the thumbprint of a client certificate,
//! and the optional allowlist of client certificates.
//!
//! Thumbprints are compared in constant time, so response timing says
//! nothing about how much of one an attacker guessed right.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::dpop::DpopMode;
use crate::request::{ClientCert, Scheme};
use crate::token::Confirmation;

/// How strictly tokens must be bound to the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMode {
    /// Every token must carry `cnf.x5t#S256`, and it must match.
    Required,
    /// A token that carries `cnf.x5t#S256` must match; unbound tokens pass.
    IfBound,
    /// `cnf.x5t#S256` is not looked at (an API without mTLS).
    Off,
}

impl BindingMode {
    pub fn parse(value: &str) -> Option<BindingMode> {
        match value {
            "required" => Some(BindingMode::Required),
            "if-bound" => Some(BindingMode::IfBound),
            "off" => Some(BindingMode::Off),
            _ => None,
        }
    }
}

/// Why a token may not be used on this request. Every variant means "this
/// token is not usable here": the caller answers 401 `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("token is certificate-bound but the request carried no client certificate")]
    NoCertificate,
    #[error("token is bound to another certificate")]
    Mismatch,
    #[error("token is not certificate-bound, and binding is required")]
    Unbound,
    #[error("client certificate could not be parsed")]
    BadCertificate,
    #[error("token is bound by a confirmation method this authorizer cannot verify")]
    Unverifiable,
    #[error("token is DPoP-bound but was presented as a bearer token")]
    DpopBoundAsBearer,
    #[error("token presented with a DPoP proof is not DPoP-bound")]
    NotDpopBound,
    #[error("the DPoP proof was signed by another key than the token is bound to")]
    DpopKeyMismatch,
    #[error("DPoP is required and the request is not DPoP")]
    DpopRequired,
}

/// The thumbprint of a client certificate, as RFC 8705 §3.1 defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprint(pub String);

/// Computes `base64url(SHA-256(DER))` from the PEM API Gateway passes.
/// The PEM may arrive URL-encoded (as in a header forwarded by a proxy).
pub fn thumbprint_of_pem(pem: &str) -> Result<Thumbprint, BindingError> {
    let decoded;
    let pem = if pem.contains('%') {
        decoded = percent_encoding::percent_decode_str(pem).decode_utf8().map_err(|_| BindingError::BadCertificate)?;
        decoded.as_ref()
    } else {
        pem
    };
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| BindingError::BadCertificate)?;
    Ok(Thumbprint(URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref()))))
}

/// Remembers the thumbprints of recently seen certificates, keyed by the
/// exact PEM text API Gateway passed (a lookup compares the whole string, so
/// two certificates can never share an entry). A client calling again skips
/// the PEM decoding and the SHA-256. Bounded; when full, the certificates
/// seen least often go first.
pub struct ThumbprintCache {
    entries: quick_cache::sync::Cache<Box<str>, Thumbprint>,
}

const THUMBPRINT_CACHE_ENTRIES: usize = 256;

impl Default for ThumbprintCache {
    fn default() -> Self {
        ThumbprintCache { entries: quick_cache::sync::Cache::new(THUMBPRINT_CACHE_ENTRIES) }
    }
}

impl ThumbprintCache {
    pub fn thumbprint(&self, pem: &str) -> Result<Thumbprint, BindingError> {
        if let Some(thumbprint) = self.entries.get(pem) {
            return Ok(thumbprint);
        }
        let thumbprint = thumbprint_of_pem(pem)?;
        self.entries.insert(pem.into(), thumbprint.clone());
        Ok(thumbprint)
    }
}

/// What the caller proved to hold, for the answer's context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Possession {
    /// The certificate thumbprint the token is bound to, when checked.
    pub certificate: Option<String>,
    /// The DPoP key thumbprint the token is bound to, when checked.
    pub dpop_key: Option<String>,
}

/// What the request presented: the scheme, the client certificate, and the
/// thumbprint of the key of a DPoP proof that was verified.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    pub certificate: Option<&'a Thumbprint>,
    pub dpop_key: Option<&'a str>,
}

/// Checks a token's confirmation against what the request presented.
pub fn check(
    certificate_mode: BindingMode,
    dpop_mode: DpopMode,
    cnf: &Confirmation,
    presented: Presented<'_>,
) -> Result<Possession, BindingError> {
    if cnf.unverifiable.is_some() {
        return Err(BindingError::Unverifiable);
    }
    let dpop_key = match (presented.scheme, &cnf.jkt, presented.dpop_key) {
        // RFC 9449 §7.1: a DPoP-bound token is never accepted as a bearer token.
        (Scheme::Bearer, Some(_), _) => return Err(BindingError::DpopBoundAsBearer),
        (Scheme::Bearer, None, _) if dpop_mode == DpopMode::Required => return Err(BindingError::DpopRequired),
        (Scheme::Bearer, None, _) => None,
        (Scheme::Dpop, None, _) => return Err(BindingError::NotDpopBound),
        (Scheme::Dpop, Some(_), None) => return Err(BindingError::DpopKeyMismatch),
        (Scheme::Dpop, Some(expected), Some(proven)) => {
            if !bool::from(proven.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(BindingError::DpopKeyMismatch);
            }
            Some(expected.clone())
        }
    };
    let certificate =
        check_certificate(certificate_mode, cnf.x5t_s256.as_deref(), presented.certificate)?.map(|t| t.0.clone());
    Ok(Possession { certificate, dpop_key })
}

/// RFC 8705: applies `mode` to a token's `cnf.x5t#S256` (if any) and the
/// request's certificate thumbprint (if any). Returns the thumbprint the token
/// is bound to.
pub fn check_certificate<'a>(
    mode: BindingMode,
    token_cnf: Option<&str>,
    client_cert: Option<&'a Thumbprint>,
) -> Result<Option<&'a Thumbprint>, BindingError> {
    match (mode, token_cnf) {
        (BindingMode::Off, _) => Ok(None),
        (BindingMode::Required, None) => Err(BindingError::Unbound),
        (BindingMode::IfBound, None) => Ok(None),
        (_, Some(expected)) => {
            let presented = client_cert.ok_or(BindingError::NoCertificate)?;
            if bool::from(presented.0.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(Some(presented))
            } else {
                Err(BindingError::Mismatch)
            }
        }
    }
}

/// Which client certificates may call the API at all, beyond "issued by a CA
/// in the truststore". A certificate matches if any one entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAllowlist {
    entries: Vec<AllowEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
enum AllowEntry {
    /// `x5t#S256` of the certificate.
    Thumbprint(String),
    /// Subject DN exactly as API Gateway reports it in `subjectDN`.
    Subject(String),
    /// Issuer DN exactly as API Gateway reports it in `issuerDN`.
    Issuer(String),
    /// Serial number exactly as API Gateway reports it in `serialNumber`.
    Serial(String),
}

impl CertAllowlist {
    /// Parses a JSON array such as `[{"subject":"CN=client-a,O=Example"},{"thumbprint":"…"}]`.
    pub fn parse(json: &str) -> Result<CertAllowlist, String> {
        let entries: Vec<AllowEntry> = serde_json::from_str(json).map_err(|e| {
            format!("{e}: expected a JSON array of {{\"thumbprint\"|\"subject\"|\"issuer\"|\"serial\": \"…\"}}")
        })?;
        if entries.is_empty() {
            return Err("the list is empty, which would refuse every certificate; unset it instead".into());
        }
        Ok(CertAllowlist { entries })
    }

    pub fn permits(&self, cert: &ClientCert, thumbprint: &Thumbprint) -> bool {
        self.entries.iter().any(|entry| match entry {
            AllowEntry::Thumbprint(t) => bool::from(t.as_bytes().ct_eq(thumbprint.0.as_bytes())),
            AllowEntry::Subject(dn) => cert.subject_dn.as_deref() == Some(dn.as_str()),
            AllowEntry::Issuer(dn) => cert.issuer_dn.as_deref() == Some(dn.as_str()),
            AllowEntry::Serial(serial) => cert.serial_number.as_deref() == Some(serial.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed_pem() -> (String, Vec<u8>) {
        let cert = rcgen::generate_simple_self_signed(vec!["client.example".into()]).unwrap().cert;
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn thumbprint_is_base64url_sha256_of_der() {
        let (pem, der) = self_signed_pem();
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
        assert_eq!(thumbprint_of_pem(&pem).unwrap().0, expected);
        assert_eq!(expected.len(), 43);
    }

    #[test]
    fn url_encoded_pem_gives_the_same_thumbprint() {
        let (pem, _) = self_signed_pem();
        let encoded: String =
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert!(encoded.contains("%2D%2D%2D%2D%2DBEGIN"));
        assert_eq!(thumbprint_of_pem(&encoded).unwrap(), thumbprint_of_pem(&pem).unwrap());
    }

    #[test]
    fn garbage_pem_is_refused() {
        assert_eq!(thumbprint_of_pem("not a certificate"), Err(BindingError::BadCertificate));
        assert_eq!(
            thumbprint_of_pem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            Err(BindingError::BadCertificate)
        );
    }

    #[test]
    fn cached_thumbprints_match_computed_ones() {
        let cache = ThumbprintCache::default();
        let (a, _) = self_signed_pem();
        let (b, _) = self_signed_pem();
        for _ in 0..2 {
            assert_eq!(cache.thumbprint(&a).unwrap(), thumbprint_of_pem(&a).unwrap());
            assert_eq!(cache.thumbprint(&b).unwrap(), thumbprint_of_pem(&b).unwrap());
        }
        assert_ne!(cache.thumbprint(&a).unwrap(), cache.thumbprint(&b).unwrap());
        assert_eq!(cache.thumbprint("garbage"), Err(BindingError::BadCertificate));
    }

    #[test]
    fn certificate_binding_modes() {
        let a = Thumbprint("aaaa".into());
        use BindingMode::*;
        assert_eq!(check_certificate(Required, None, Some(&a)), Err(BindingError::Unbound));
        assert_eq!(check_certificate(Required, Some("aaaa"), Some(&a)), Ok(Some(&a)));
        assert_eq!(check_certificate(IfBound, None, Some(&a)), Ok(None));
        assert_eq!(check_certificate(IfBound, None, None), Ok(None));
        assert_eq!(check_certificate(IfBound, Some("aaaa"), None), Err(BindingError::NoCertificate));
        assert_eq!(check_certificate(IfBound, Some("aaab"), Some(&a)), Err(BindingError::Mismatch));
        assert_eq!(check_certificate(Off, Some("zzzz"), None), Ok(None));
    }

    #[test]
    fn dpop_rules() {
        let bound = Confirmation { jkt: Some("K".into()), ..Confirmation::default() };
        let unbound = Confirmation::default();
        let bearer = Presented { scheme: Scheme::Bearer, certificate: None, dpop_key: None };
        let dpop = |key| Presented { scheme: Scheme::Dpop, certificate: None, dpop_key: Some(key) };
        let check = |mode, cnf: &Confirmation, presented| check(BindingMode::IfBound, mode, cnf, presented);
        for mode in [DpopMode::Off, DpopMode::Allowed, DpopMode::Required] {
            assert_eq!(check(mode, &bound, bearer), Err(BindingError::DpopBoundAsBearer), "{mode:?}");
            assert_eq!(check(mode, &unbound, dpop("K")), Err(BindingError::NotDpopBound), "{mode:?}");
        }
        assert_eq!(check(DpopMode::Allowed, &bound, dpop("L")), Err(BindingError::DpopKeyMismatch));
        assert_eq!(check(DpopMode::Allowed, &bound, dpop("K")).unwrap().dpop_key.as_deref(), Some("K"));
        assert!(check(DpopMode::Allowed, &unbound, bearer).is_ok());
        assert_eq!(check(DpopMode::Required, &unbound, bearer), Err(BindingError::DpopRequired));
        let odd = Confirmation { unverifiable: Some("cnf.jwk".into()), ..Confirmation::default() };
        assert_eq!(check(DpopMode::Allowed, &odd, bearer), Err(BindingError::Unverifiable));
    }

    #[test]
    fn allowlist_matches_any_entry() {
        let list = CertAllowlist::parse(r#"[{"subject":"CN=a,O=Example"},{"thumbprint":"T1"}]"#).unwrap();
        let cert = |subject: &str| ClientCert {
            pem: String::new(),
            subject_dn: Some(subject.into()),
            issuer_dn: None,
            serial_number: None,
        };
        assert!(list.permits(&cert("CN=a,O=Example"), &Thumbprint("x".into())));
        assert!(list.permits(&cert("CN=b,O=Example"), &Thumbprint("T1".into())));
        assert!(!list.permits(&cert("CN=b,O=Example"), &Thumbprint("T2".into())));
        assert!(CertAllowlist::parse("[]").is_err());
        assert!(CertAllowlist::parse(r#"[{"cn":"a"}]"#).is_err());
    }
}
