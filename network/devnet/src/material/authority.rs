//! One certificate authority's key and certificate: an organisation's root CA (which issues MSP
//! identities) or its TLS CA (which issues TLS certificates), as fabric-ca-server creates them.

use std::path::Path;

use fabric_common::crypto::SigningKey;
use time::{Duration, OffsetDateTime};

use super::x509::{self, CertSpec, CertUsage, IssuedCert, Name};
use super::{write_file, write_secret_file, MaterialError};

/// fabric-ca-server's default CA certificate lifetime (`csr.ca.expiry: 131400h`, 15 years).
pub const CA_LIFETIME: Duration = Duration::hours(131_400);
/// fabric-ca-server's default issued-certificate lifetime (`signing.default.expiry: 8760h`).
pub const CERT_LIFETIME: Duration = Duration::hours(8_760);

/// A certificate authority: self-signed P-256 certificate plus its private key.
#[derive(Debug, Clone)]
pub struct CertAuthority {
    name: String,
    subject: Name,
    cert_pem: String,
    cert_der: Vec<u8>,
    ski: Vec<u8>,
    not_after: OffsetDateTime,
    key: SigningKey,
}

impl CertAuthority {
    /// Creates a fresh self-signed CA. `name` becomes the CN (Fabric CA names its CA after it);
    /// `org` the O, `unit` the OU ("CA" or "TLS").
    pub fn generate(name: &str, org: &str, unit: &str) -> Result<Self, MaterialError> {
        let key = SigningKey::generate();
        let subject = Name {
            country: vec!["CN".into()],
            organization: vec![org.into()],
            organizational_unit: vec![unit.into()],
            common_name: name.into(),
            ..Name::default()
        };
        let (not_before, not_after) = x509::default_validity(CA_LIFETIME);
        let spec = CertSpec {
            subject: subject.clone(),
            public_key_spki: key.public_key().to_spki_der(),
            usage: CertUsage::Authority { path_len: 1 },
            hosts: Vec::new(),
            attributes: None,
            not_before,
            not_after,
        };
        let issued = x509::issue(&spec, None, Some(&key))?;
        Self::from_parts(name, issued.pem, key)
    }

    /// Rebuilds a CA from its PEM certificate and key.
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> Result<Self, MaterialError> {
        let key = SigningKey::from_pem(key_pem.as_bytes())?;
        Self::from_parts(name, cert_pem.to_owned(), key)
    }

    fn from_parts(name: &str, cert_pem: String, key: SigningKey) -> Result<Self, MaterialError> {
        let cert_der = x509::certs_from_pem(cert_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| MaterialError::Certificate("no certificate in CA PEM".into()))?;
        let info = x509::cert_info(&cert_der)?;
        if info.public_key_spki != key.public_key().to_spki_der() {
            return Err(MaterialError::Certificate(format!(
                "CA {name}: the key does not match the certificate"
            )));
        }
        let not_after = OffsetDateTime::from_unix_timestamp(info.not_after)
            .map_err(|e| MaterialError::Certificate(e.to_string()))?;
        Ok(CertAuthority {
            name: name.to_owned(),
            subject: info.subject,
            cert_pem,
            cert_der,
            ski: info.ski,
            not_after,
            key,
        })
    }

    /// Loads the CA from `dir/<cert_file>` and `dir/priv_sk`, creating and saving a new one when
    /// absent, so a restart on the same data dir keeps the same roots.
    pub fn load_or_generate(
        dir: &Path,
        cert_file: &str,
        name: &str,
        org: &str,
        unit: &str,
    ) -> Result<Self, MaterialError> {
        let cert_path = dir.join(cert_file);
        let key_path = dir.join("priv_sk");
        if cert_path.exists() && key_path.exists() {
            let cert = super::read_string(&cert_path)?;
            let key = super::read_string(&key_path)?;
            return Self::from_pem(name, &cert, &key);
        }
        let ca = Self::generate(name, org, unit)?;
        write_secret_file(&key_path, ca.key.to_pkcs8_pem().as_bytes())?;
        write_file(&cert_path, ca.cert_pem.as_bytes())?;
        Ok(ca)
    }

    /// The CA's name (its CN, and the `caname` clients use).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's subject key identifier (the AKI of everything it issues).
    pub fn ski(&self) -> &[u8] {
        &self.ski
    }

    /// The CA's subject key identifier as Fabric CA stores AKIs (lowercase hex, no leading 0s).
    pub fn aki_hex(&self) -> String {
        x509::normalize_hex(&hex::encode(&self.ski))
    }

    /// When the CA certificate expires; nothing it issues may outlive it.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The CA's signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Issues a certificate; `not_after` is capped at the CA's own expiry.
    pub fn issue(&self, spec: &CertSpec) -> Result<IssuedCert, MaterialError> {
        let mut spec = spec.clone();
        if spec.not_after > self.not_after {
            spec.not_after = self.not_after;
        }
        x509::issue(&spec, Some((&self.subject, &self.ski, &self.key)), None)
    }

    /// Checks that a DER certificate was issued by this CA.
    pub fn verify_issued(&self, der: &[u8]) -> Result<(), MaterialError> {
        x509::verify_signed_by(der, &self.cert_der)
    }

    /// A PEM CRL (`X509 CRL`) listing `revoked` (normalised hex serial, revocation time, RFC 5280
    /// reason code), valid for a day, as `fabric-ca-client gencrl` would receive it.
    pub fn crl(&self, revoked: &[(String, OffsetDateTime, u8)]) -> Result<String, MaterialError> {
        use rcgen::{
            CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevocationReason,
            RevokedCertParams, SerialNumber,
        };
        let key_pair = KeyPair::from_pem(&self.key.to_pkcs8_pem())
            .map_err(|e| MaterialError::Certificate(format!("CRL key: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.clone().into(), key_pair)
            .map_err(|e| MaterialError::Certificate(format!("CRL issuer: {e}")))?;
        let now = OffsetDateTime::now_utc();
        let mut revoked_certs = Vec::new();
        for (serial, at, reason) in revoked {
            let padded = if serial.len() % 2 == 1 {
                format!("0{serial}")
            } else {
                serial.clone()
            };
            let bytes = hex::decode(&padded)
                .map_err(|e| MaterialError::Certificate(format!("serial {serial}: {e}")))?;
            let reason_code = match reason {
                1 => Some(RevocationReason::KeyCompromise),
                2 => Some(RevocationReason::CaCompromise),
                3 => Some(RevocationReason::AffiliationChanged),
                4 => Some(RevocationReason::Superseded),
                5 => Some(RevocationReason::CessationOfOperation),
                6 => Some(RevocationReason::CertificateHold),
                8 => Some(RevocationReason::RemoveFromCrl),
                9 => Some(RevocationReason::PrivilegeWithdrawn),
                10 => Some(RevocationReason::AaCompromise),
                _ => None,
            };
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: *at,
                reason_code,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::days(1),
            crl_number: SerialNumber::from_slice(&now.unix_timestamp().to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::PreSpecified(self.ski.clone()),
        };
        let crl = params
            .signed_by(&issuer)
            .map_err(|e| MaterialError::Certificate(format!("signing CRL: {e}")))?;
        crl.pem()
            .map_err(|e| MaterialError::Certificate(format!("encoding CRL: {e}")))
    }
}
