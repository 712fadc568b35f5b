//! The mTLS side of a custom domain: TLS 1.2 or 1.3, and a client certificate
//! that chains to a CA of the stack's truststore and is within its validity,
//! or no handshake at all (as API Gateway refuses it).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// The server's certificate chain and key: given, or generated for the domain.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The certificate as PEM, for clients to trust (`curl --cacert`).
    pub pem: String,
}

impl ServerIdentity {
    pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<ServerIdentity> {
        let pem = std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
        anyhow::ensure!(!chain.is_empty(), "{}: holds no certificate", cert.display());
        let key =
            PrivateKeyDer::from_pem_file(key).with_context(|| format!("{}: not a PEM private key", key.display()))?;
        Ok(ServerIdentity { chain, key, pem })
    }

    /// A self-signed certificate for the domain, `localhost` and 127.0.0.1.
    pub fn generate(domain: &str) -> anyhow::Result<ServerIdentity> {
        let names = vec![domain.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).context("generating the server certificate")?;
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
            .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
        Ok(ServerIdentity { pem: certified.cert.pem(), chain: vec![certified.cert.der().clone()], key })
    }
}

/// TLS 1.2+; with a truststore (an mTLS custom domain), a client certificate
/// from its CAs is mandatory; without one (no `domain:`), none is asked for.
pub fn server_config(truststore_pem: Option<&[u8]>, identity: ServerIdentity) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?;
    let builder = match truststore_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(pem) {
                roots.add(certificate.context("the truststore: not PEM certificates")?).context("the truststore")?;
            }
            anyhow::ensure!(!roots.is_empty(), "the truststore holds no CA certificate");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_single_cert(identity.chain, identity.key).context("the server certificate and key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `requestContext.identity.clientCert`, as API Gateway fills it in.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub pem: String,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
}

impl ClientCert {
    pub fn from_der(der: &[u8]) -> anyhow::Result<ClientCert> {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).context("the client certificate")?;
        let validity = certificate.validity();
        Ok(ClientCert {
            pem: pem(der),
            subject_dn: super::dn::rfc4514(certificate.subject()),
            issuer_dn: super::dn::rfc4514(certificate.issuer()),
            serial_number: certificate.raw_serial_as_string(),
            not_before: gmt(&validity.not_before),
            not_after: gmt(&validity.not_after),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "clientCertPem": self.pem,
            "subjectDN": self.subject_dn,
            "issuerDN": self.issuer_dn,
            "serialNumber": self.serial_number,
            "validity": { "notBefore": self.not_before, "notAfter": self.not_after },
        })
    }
}

/// API Gateway's format: `May 28 12:30:02 2019 GMT`.
fn gmt(moment: &x509_parser::time::ASN1Time) -> String {
    let format =
        time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT");
    moment.to_datetime().to_offset(time::UtcOffset::UTC).format(format).unwrap_or_default()
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject_of(names: &[(rcgen::DnType, &str)]) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        ClientCert::from_der(params.self_signed(&key).expect("cert").der()).expect("parsed").subject_dn
    }

    #[test]
    fn distinguished_names_are_escaped_so_no_two_certificates_share_one() {
        use rcgen::DnType::{CommonName, OrganizationName};
        let two_attributes = subject_of(&[(OrganizationName, "Example"), (CommonName, "a")]);
        // One attribute whose value holds what a separator and a second attribute look like.
        let one_attribute = subject_of(&[(OrganizationName, "Example, CN=a")]);
        assert_ne!(two_attributes, one_attribute, "a comma in a value must not read as a separator");
        assert_eq!(one_attribute, r"O=Example\, CN=a");
        assert_eq!(two_attributes, "CN=a,O=Example", "RFC 4514: the last RDN first");
        assert_eq!(subject_of(&[(CommonName, r#" #lead"+;<>\trail "#)]), r#"CN=\ #lead\"\+\;\<\>\\trail\ "#);
        assert_eq!(subject_of(&[(CommonName, "#x")]), r"CN=\#x");
    }

    #[test]
    fn client_certificate_fields_as_api_gateway_gives_them() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "client-1");
        params.serial_number = Some(vec![0x0a, 0xbc].into());
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = params.self_signed(&key).expect("cert");
        let cert = ClientCert::from_der(certificate.der()).expect("parsed");
        assert_eq!(cert.pem.trim(), certificate.pem().trim().replace("\r\n", "\n"));
        assert_eq!((cert.subject_dn.as_str(), cert.serial_number.as_str()), ("CN=client-1", "0a:bc"));
        assert!(cert.not_before.ends_with(" GMT"), "{}", cert.not_before);
    }
}
