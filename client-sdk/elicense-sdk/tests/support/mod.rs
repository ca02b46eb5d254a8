//! Test support: CA-issued identities with `elicense.role` attributes, the licence contract on
//! the shim's `MockLedger`, and a `gateway.Gateway` gRPC server that endorses by running that
//! contract (so the SDK is exercised over real gRPC, real proposals and real error details).
#![allow(dead_code)]

pub mod ledger_gateway;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use elicense_model::{IssueRequest, LicenceId};
use elicense_sdk::NewLicence;
use fabric_client::{Identity, PrivateKeySigner};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, KeyPair,
};

/// The channel every test runs on.
pub const CHANNEL: &str = "police-service";
/// One day in seconds.
pub const DAY: i64 = 86_400;
/// The catalogue fixture.
pub const CATALOGUE: &str = include_str!("../../../../fixtures/catalogue.json");

/// Users: (name, MSP ID, role attribute).
pub const USERS: &[(&str, &str, Option<&str>)] = &[
    ("regulator-admin", "RegulatorMSP", Some("admin")),
    ("auditor", "RegulatorMSP", Some("auditor")),
    ("police-issuer", "PublicSecurityMSP", Some("issuer")),
    ("civil-issuer", "CivilAffairsMSP", Some("issuer")),
    ("service-clerk", "ServiceCentreMSP", Some("clerk")),
    ("service-holder", "ServiceCentreMSP", Some("holder")),
    ("tax-clerk", "TaxationMSP", Some("clerk")),
];

/// A user's identity and key.
#[derive(Clone)]
pub struct User {
    /// MSP ID + certificate.
    pub identity: Identity,
    /// Its key.
    pub key: PrivateKeySigner,
}

/// Every user of [`USERS`], issued by one test CA.
pub struct Users(HashMap<&'static str, User>);

impl Users {
    /// Issues every user's certificate.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ca.elicense.gov");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let users = USERS
            .iter()
            .map(|(name, msp, role)| {
                let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::OrganizationName, *msp);
                dn.push(DnType::CommonName, *name);
                params.distinguished_name = dn;
                if let Some(role) = role {
                    // Fabric CA's attribute extension (OID 1.2.3.4.5.6.7.8.1).
                    let json = format!(
                        r#"{{"attrs":{{"elicense.role":"{role}","hf.EnrollmentID":"{name}"}}}}"#
                    );
                    params
                        .custom_extensions
                        .push(CustomExtension::from_oid_content(
                            &[1, 2, 3, 4, 5, 6, 7, 8, 1],
                            json.into_bytes(),
                        ));
                }
                let cert = params.signed_by(&key, &issuer).unwrap();
                let user = User {
                    identity: Identity::new(*msp, cert.pem().into_bytes()).unwrap(),
                    key: PrivateKeySigner::from_pem(key.serialize_pem().as_bytes()).unwrap(),
                };
                (*name, user)
            })
            .collect();
        Users(users)
    }

    /// One user.
    pub fn get(&self, name: &str) -> &User {
        &self.0[name]
    }

    /// A user's serialized identity (the proposal creator).
    pub fn creator(&self, name: &str) -> Vec<u8> {
        self.get(name).identity.serialized().to_vec()
    }

    /// A user's signer, shareable.
    pub fn signer(&self, name: &str) -> Arc<PrivateKeySigner> {
        Arc::new(self.get(name).key.clone())
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Realistic ID card values for serial `serial`.
pub fn id_card_values(serial: &str) -> BTreeMap<String, String> {
    [
        ("name", format!("张三{serial}")),
        ("sex", "男".to_owned()),
        ("ethnicity", "汉".to_owned()),
        ("birth_date", "1990-03-07".to_owned()),
        ("address", format!("北京市东城区景山前街{serial}号")),
        (
            "id_number",
            format!(
                "110101199003070{:0>3}",
                &serial[serial.len().saturating_sub(3)..]
            ),
        ),
        ("issuing_authority", "北京市公安局东城分局".to_owned()),
        ("valid_from", "2020-01-01".to_owned()),
        ("valid_until", "2040-01-01".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// An ID card to issue to the holder with public key `holder_pem`, valid a year around now.
pub fn id_card(serial: &str, holder_pem: String) -> NewLicence {
    NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", serial).unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder_pem,
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
        },
        values: id_card_values(serial),
    }
}
