//! The caller's identity as Go chaincode reads it with `pkg/cid`: MSP ID, X.509 certificate, the
//! client ID string, and Fabric CA attributes with assertions.
//!
//! Certificate parsing (DN printing, the attribute extension) is `fabric-common`'s, so the ID
//! and attributes read here are the ones every other part of the workspace reads.

use fabric_common::identity::{Certificate, Identity};

use crate::error::{Error, Result};
use crate::stub::ChaincodeStub;

/// The identity that submitted the transaction (`cid.ClientIdentity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    identity: Identity,
}

impl ClientIdentity {
    /// The transaction creator's identity (`cid.New(stub)`).
    pub fn new<S: ChaincodeStub>(stub: &S) -> Result<Self> {
        Self::from_creator(stub.creator())
    }

    /// Parses serialized `msp.SerializedIdentity` bytes holding an X.509 certificate.
    pub fn from_creator(creator: &[u8]) -> Result<Self> {
        if creator.is_empty() {
            return Err(Error::Identity(
                "failed to get transaction invoker's identity from the chaincode stub".into(),
            ));
        }
        Identity::from_serialized(creator)
            .map(|identity| ClientIdentity { identity })
            .map_err(|e| Error::Identity(e.to_string()))
    }

    /// The unique ID of the client within its MSP (`GetID`): base64 of
    /// `x509::<subject DN>::<issuer DN>`.
    pub fn id(&self) -> String {
        self.identity.client_id()
    }

    /// The MSP ID of the client (`GetMSPID`).
    pub fn msp_id(&self) -> &str {
        self.identity.msp_id()
    }

    /// The client's X.509 certificate (`GetX509Certificate`).
    pub fn x509_certificate(&self) -> &Certificate {
        self.identity.certificate()
    }

    /// A Fabric CA attribute of the certificate (`GetAttributeValue`); `None` if absent.
    pub fn attribute_value(&self, name: &str) -> Option<&str> {
        self.identity.attribute(name)
    }

    /// Fails unless attribute `name` is present with exactly `value` (`AssertAttributeValue`),
    /// with the Go package's messages.
    pub fn assert_attribute_value(&self, name: &str, value: &str) -> Result<()> {
        match self.attribute_value(name) {
            None => Err(Error::Identity(format!("Attribute '{name}' was not found"))),
            Some(v) if v != value => Err(Error::Identity(format!(
                "Attribute '{name}' equals '{v}', not '{value}'"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The parsed identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair};

    fn creator(attrs: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "clerk1");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "ServiceCentre");
        if let Some(json) = attrs {
            // Fabric CA's attribute extension, 1.2.3.4.5.6.7.8.1.
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 2, 3, 4, 5, 6, 7, 8, 1],
                    json.as_bytes().to_vec(),
                ));
        }
        let cert = params.self_signed(&key).unwrap();
        Identity::new("ServiceCentreMSP", cert.pem().as_bytes())
            .unwrap()
            .serialized()
            .to_vec()
    }

    #[test]
    fn reads_msp_id_id_and_attributes() {
        let c = ClientIdentity::from_creator(&creator(Some(
            r#"{"attrs":{"elicense.role":"clerk","hf.EnrollmentID":"clerk1"}}"#,
        )))
        .unwrap();
        assert_eq!(c.msp_id(), "ServiceCentreMSP");
        assert_eq!(c.attribute_value("elicense.role"), Some("clerk"));
        assert_eq!(c.attribute_value("missing"), None);
        c.assert_attribute_value("elicense.role", "clerk").unwrap();
        assert_eq!(
            c.assert_attribute_value("elicense.role", "issuer")
                .unwrap_err()
                .to_string(),
            "client identity: Attribute 'elicense.role' equals 'clerk', not 'issuer'"
        );
        assert_eq!(
            c.assert_attribute_value("nope", "x")
                .unwrap_err()
                .to_string(),
            "client identity: Attribute 'nope' was not found"
        );
        // Go: base64("x509::" + subject + "::" + issuer), DNs as pkix prints them.
        let id = c.id();
        assert_eq!(id, c.x509_certificate().client_id());
        assert!(!id.is_empty());
    }

    #[test]
    fn no_attributes_and_bad_creators() {
        let c = ClientIdentity::from_creator(&creator(None)).unwrap();
        assert_eq!(c.attribute_value("elicense.role"), None);
        assert!(matches!(
            ClientIdentity::from_creator(&[]),
            Err(Error::Identity(_))
        ));
        assert!(matches!(
            ClientIdentity::from_creator(b"not a serialized identity"),
            Err(Error::Identity(_))
        ));
    }
}
