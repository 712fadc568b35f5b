//! The mutual TLS truststore, checked before anything is uploaded: what API
//! Gateway would only warn about after the fact (`truststoreWarnings`, with
//! mutual TLS left on and the clients of that CA refused) is refused here,
//! with the certificate's subject and the reason.
//!
//! Every certificate must be a CA (basic constraints `CA:TRUE`), within its
//! validity, with an RSA key of at least 2048 bits or an EC key of at least
//! 256, signed with SHA-256 or stronger (RSA, RSA-PSS or ECDSA), and no
//! certificate may be more than four CAs deep in the bundle (API Gateway
//! follows at most four levels).

use x509_parser::certificate::X509Certificate;
use x509_parser::public_key::PublicKey;
use x509_parser::time::ASN1Time;

/// How many CA levels API Gateway follows from a client certificate.
pub const MAX_CHAIN_DEPTH: usize = 4;

/// Signature algorithms API Gateway accepts: SHA-256, -384 and -512 with
/// RSA (PKCS #1 v1.5), RSA-PSS or ECDSA.
const ACCEPTED_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.113549.1.1.10", // RSASSA-PSS
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
    "1.2.840.10045.4.3.4",   // ecdsa-with-SHA512
];

/// The problems of a PEM bundle, each naming its certificate: `certificate
/// "CN=Old CA": expired on …`. `now` is the time checked against.
pub fn problems(pem: &[u8], now: ASN1Time) -> Vec<String> {
    let mut problems = Vec::new();
    let mut blocks = Vec::new();
    for (i, block) in x509_parser::pem::Pem::iter_from_buffer(pem).enumerate() {
        match block {
            Ok(block) => blocks.push((i, block)),
            Err(e) => problems.push(format!("PEM block {}: {e}", i + 1)),
        }
    }
    let mut certificates = Vec::new();
    for (i, block) in &blocks {
        match block.parse_x509() {
            Ok(certificate) => certificates.push(certificate),
            Err(e) => problems.push(format!("PEM block {}: not an X.509 certificate: {e}", i + 1)),
        }
    }
    for certificate in &certificates {
        let subject = certificate.subject().to_string();
        for reason in reasons(certificate, now) {
            problems.push(format!("certificate {subject:?}: {reason}"));
        }
        let depth = depth(certificate, &certificates);
        if depth > MAX_CHAIN_DEPTH {
            problems.push(format!(
                "certificate {subject:?}: is {depth} CAs deep in the bundle; API Gateway follows at most \
                 {MAX_CHAIN_DEPTH}"
            ));
        }
    }
    problems
}

/// What is wrong with one certificate on its own.
fn reasons(certificate: &X509Certificate<'_>, now: ASN1Time) -> Vec<String> {
    let mut reasons = Vec::new();
    if !certificate.is_ca() {
        reasons.push("is not a CA certificate (basic constraints CA:TRUE); API Gateway trusts CAs only".to_owned());
    }
    let validity = certificate.validity();
    if validity.not_after < now {
        reasons.push(format!("expired on {}", validity.not_after));
    }
    if now < validity.not_before {
        reasons.push(format!("is not valid before {}", validity.not_before));
    }
    match certificate.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
            reasons.push(format!("has an RSA key of {} bits; API Gateway needs at least 2048", rsa.key_size()))
        }
        Ok(PublicKey::EC(ec)) if ec.key_size() < 256 => {
            reasons.push(format!("has an EC key of {} bits; API Gateway needs at least 256", ec.key_size()))
        }
        Ok(PublicKey::RSA(_) | PublicKey::EC(_)) => {}
        Ok(_) => reasons.push("has a key that is neither RSA nor EC".to_owned()),
        Err(e) => reasons.push(format!("has a public key that cannot be read: {e}")),
    }
    let signature = certificate.signature_algorithm.algorithm.to_id_string();
    if !ACCEPTED_SIGNATURES.contains(&signature.as_str()) {
        reasons.push(format!(
            "is signed with algorithm {signature}; API Gateway accepts SHA-256 or stronger with RSA, RSA-PSS or ECDSA"
        ));
    }
    reasons
}

/// How many CAs deep `certificate` is in the bundle: 1 for a root (or a
/// certificate whose issuer is not in the bundle), 2 for one a root issued…
fn depth(certificate: &X509Certificate<'_>, bundle: &[X509Certificate<'_>]) -> usize {
    let mut depth = 1;
    let mut current = certificate;
    // Bounded by the bundle's size: a loop of issuers ends there.
    while depth <= bundle.len() {
        if current.subject() == current.issuer() {
            break;
        }
        let Some(issuer) = bundle.iter().find(|c| c.subject() == current.issuer() && c.subject() != current.subject())
        else {
            break;
        };
        depth += 1;
        current = issuer;
    }
    depth
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};

    use super::*;

    /// A CA (or, with `ca: false`, a leaf) named `name`, issued by `issuer`
    /// or self-signed; its PEM, and what can issue under it.
    fn certificate(
        name: &str,
        ca: bool,
        issuer: Option<&Issuer<'static, KeyPair>>,
        change: impl FnOnce(&mut CertificateParams),
    ) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.is_ca = if ca { IsCa::Ca(BasicConstraints::Unconstrained) } else { IsCa::NoCa };
        change(&mut params);
        let certificate = match issuer {
            Some(issuer) => params.signed_by(&key, issuer).expect("sign"),
            None => params.self_signed(&key).expect("self-sign"),
        };
        (certificate.pem(), Issuer::new(params, key))
    }

    fn now() -> ASN1Time {
        ASN1Time::now()
    }

    #[test]
    fn a_valid_ca_chain_has_no_problem() {
        let (root, root_issuer) = certificate("Root CA", true, None, |_| {});
        let (intermediate, _) = certificate("Issuing CA", true, Some(&root_issuer), |_| {});
        assert_eq!(problems(format!("{root}{intermediate}").as_bytes(), now()), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_the_certificate_and_the_reason() {
        let (leaf, _) = certificate("A Client", false, None, |_| {});
        let (expired, _) = certificate("Old CA", true, None, |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let (future, _) = certificate("Future CA", true, None, |p| {
            p.not_before = rcgen::date_time_ymd(2999, 1, 1);
            p.not_after = rcgen::date_time_ymd(3000, 1, 1);
        });
        for (pem, expected) in [
            (leaf, "certificate \"CN=A Client\": is not a CA certificate"),
            (expired, "certificate \"CN=Old CA\": expired on"),
            (future, "certificate \"CN=Future CA\": is not valid before"),
        ] {
            let found = problems(pem.as_bytes(), now());
            assert!(found.len() == 1 && found[0].starts_with(expected), "{expected}: {found:?}");
        }
    }

    #[test]
    fn weak_keys_and_signatures_are_refused() {
        // Made with `openssl req -x509 -newkey rsa:1024 -sha1 -days 36500 -subj /CN=Weak CA
        // -addext basicConstraints=critical,CA:TRUE` (rcgen makes neither).
        let found = problems(WEAK_CA.as_bytes(), now());
        assert!(found.iter().any(|p| p.contains("\"CN=Weak CA\": has an RSA key of 1024 bits")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("is signed with algorithm 1.2.840.113549.1.1.5")), "{found:?}");
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn a_chain_deeper_than_four_is_refused_on_its_deepest_certificate() {
        let (mut bundle, mut issuer) = certificate("Level 1", true, None, |_| {});
        for level in 2..=5 {
            let (pem, next) = certificate(&format!("Level {level}"), true, Some(&issuer), |_| {});
            bundle.push_str(&pem);
            issuer = next;
        }
        let found = problems(bundle.as_bytes(), now());
        assert_eq!(found, ["certificate \"CN=Level 5\": is 5 CAs deep in the bundle; API Gateway follows at most 4"]);
    }

    #[test]
    fn garbage_between_markers_is_a_problem_not_a_panic() {
        let found =
            problems(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", now());
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("PEM block 1: not an X.509 certificate"), "{found:?}");
    }

    const WEAK_CA: &str = "-----BEGIN CERTIFICATE-----
MIICAjCCAWugAwIBAgIUPIrMkwlQpQor3Jn0jU8basdeW48wDQYJKoZIhvcNAQEF
BQAwEjEQMA4GA1UEAwwHV2VhayBDQTAgFw0yNjEyMDEyMTIzNDlaGA8yMTI2MTEw
NzIxMjM0OVowEjEQMA4GA1UEAwwHV2VhayBDQTCBnzANBgkqhkiG9w0BAQEFAAOB
jQAwgYkCgYEAsaTqkQLKkVQkJi59uXSdlUtrK4xH6sDV7AMgjln/iDo/JFGq0Io6
EwuOqDeEnSKrouRW7CJHalwSGvUpFxF0HFVsfKrpuppSfMOTzGnGfwFBcWOTBWem
RjaM6xXbqOn/S0unQ6SY7LejDN+HCV0hQG6T7wgmR8eXLI0y+LzsFNUCAwEAAaNT
MFEwHQYDVR0OBBYEFLJ7JOBzeFMQ1ethdJDHcz02WJRaMB8GA1UdIwQYMBaAFLJ7
JOBzeFMQ1ethdJDHcz02WJRaMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQEF
BQADgYEAD1jz2uQ88k53nrgltzUpmGyZtXBqnriUi9KB/GlzVagh53G3bdEPD1w8
vl6fuWXoDxrNls7iLrTT5CZTKVd0VQYxKp930bym8A8x3sSNUtkaOLn0kGkdmdOg
bWproPGX4AcjVZ+DbD/3Nd3nqM6pvJjwV5mMErsfsjVqKOMrLfs=
-----END CERTIFICATE-----
";
}
