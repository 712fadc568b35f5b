//! A private CA and the client certificates it issues, as an mTLS truststore
//! would hold and API Gateway would pass on.

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use sha2::{Digest as _, Sha256};

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub struct ClientCertificate {
    pub pem: String,
    /// The private key (PKCS#8 PEM), for clients that present the certificate.
    pub key_pem: String,
    pub der: Vec<u8>,
    /// RFC 8705 `x5t#S256`.
    pub thumbprint: String,
    pub subject_dn: String,
    pub serial: String,
}

/// A server certificate and its key, for TLS test servers.
pub struct ServerCertificate {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        Self::with_params(name, |_| {})
    }

    /// A CA whose validity ended yesterday: what API Gateway warns about in a truststore.
    pub fn expired(name: &str) -> Ca {
        Self::with_params(name, |params| {
            let now = std::time::SystemTime::now();
            params.not_before = (now - std::time::Duration::from_secs(10 * 86_400)).into();
            params.not_after = (now - std::time::Duration::from_secs(86_400)).into();
        })
    }

    fn with_params(name: &str, adjust: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(name);
        adjust(&mut params);
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    pub fn client(&self, common_name: &str, serial: u64) -> ClientCertificate {
        self.client_with(common_name, serial, |_| {})
    }

    /// A client certificate whose validity ended yesterday.
    pub fn expired_client(&self, common_name: &str, serial: u64) -> ClientCertificate {
        self.client_with(common_name, serial, |params| {
            let now = std::time::SystemTime::now();
            params.not_before = (now - std::time::Duration::from_secs(10 * 86_400)).into();
            params.not_after = (now - std::time::Duration::from_secs(86_400)).into();
        })
    }

    fn client_with(
        &self,
        common_name: &str,
        serial: u64,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> ClientCertificate {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name = dn(common_name);
        params.serial_number = Some(serial.into());
        adjust(&mut params);
        let key = KeyPair::generate().expect("client key");
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        let der = cert.der().to_vec();
        ClientCertificate {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            thumbprint: thumbprint(&der),
            der,
            subject_dn: format!("CN={common_name}"),
            serial: format!("{serial:x}"),
        }
    }

    pub fn server(&self, host: &str) -> ServerCertificate {
        let mut params = CertificateParams::new(vec![host.to_owned()]).expect("server params");
        params.distinguished_name = dn(host);
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        ServerCertificate {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

pub fn thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}
