//! A test network on the shim's `MockLedger`: CA-issued identities with `elicense.role`
//! attributes, the seeded catalogue, holders with keys and secrets, and helpers to issue,
//! authorise and verify.
#![allow(dead_code)]

use elicense_chaincode::{router, Settings};
use elicense_model::{
    Catalogue, Code, CodeSalt, ContractError, FieldOpening, GrantDraft, GrantId, HolderKey,
    HolderSecret, IssueRequest, LicenceId, LicencePrivate, Nonce, Presentation, Salt, SealedGrant,
    SignedGrant, VerifyRequest, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE, TRANSIENT_PRESENTATION,
};
use fabric_chaincode::contract::Router;
use fabric_chaincode::mock::{MockInvocation, MockLedger, MockStub, MockStubBuilder};
use fabric_common::crypto::SigningKey;
use fabric_common::identity::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, KeyPair,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

/// The channel every test runs on.
pub const CHANNEL: &str = "police-service";
/// A start time for tests (2025-01-01T00:00:00Z).
pub const T0: i64 = 1_735_689_600;
/// One day.
pub const DAY: i64 = 86_400;
/// The catalogue fixture.
pub const CATALOGUE: &str = include_str!("../../../../fixtures/catalogue.json");

/// Users of the test network: (name, MSP ID, role attribute).
pub const USERS: &[(&str, &str, Option<&str>)] = &[
    ("regulator-admin", "RegulatorMSP", Some("admin")),
    ("auditor", "RegulatorMSP", Some("auditor")),
    ("police-admin", "PublicSecurityMSP", Some("admin")),
    ("police-issuer", "PublicSecurityMSP", Some("issuer")),
    ("police-clerk", "PublicSecurityMSP", Some("clerk")),
    ("civil-issuer", "CivilAffairsMSP", Some("issuer")),
    ("service-clerk", "ServiceCentreMSP", Some("clerk")),
    ("service-clerk2", "ServiceCentreMSP", Some("clerk")),
    ("service-holder", "ServiceCentreMSP", Some("holder")),
    ("service-norole", "ServiceCentreMSP", None),
];

fn identity(
    ca: &(KeyPair, CertificateParams),
    name: &str,
    msp: &str,
    role: Option<&str>,
) -> Vec<u8> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, msp);
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    if let Some(role) = role {
        let json =
            format!(r#"{{"attrs":{{"elicense.role":"{role}","hf.EnrollmentID":"{name}"}}}}"#);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 2, 3, 4, 5, 6, 7, 8, 1],
                json.into_bytes(),
            ));
    }
    let issuer = rcgen::Issuer::from_params(&ca.1, &ca.0);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Identity::new(msp, cert.pem().as_bytes())
        .unwrap()
        .serialized()
        .to_vec()
}

/// A holder: key pair and code secret.
pub struct Holder {
    /// The holder's signing key.
    pub key: SigningKey,
    /// The holder's code secret.
    pub secret: HolderSecret,
}

impl Holder {
    /// A deterministic holder numbered `n`.
    pub fn new(n: u8) -> Self {
        Self {
            key: SigningKey::from_scalar_bytes(&[n.max(1); 32]).unwrap(),
            secret: HolderSecret::new(vec![n; 16]).unwrap(),
        }
    }

    /// The holder key PEM.
    pub fn pem(&self) -> String {
        HolderKey::from_public_key(self.key.public_key().clone()).to_pem()
    }
}

/// A licence issued in a test, with its credential.
pub struct Issued {
    /// Identifier.
    pub id: LicenceId,
    /// The openings (the holder's credential).
    pub private: LicencePrivate,
}

impl Issued {
    /// Openings of `names`, as a clerk would present them.
    pub fn present(&self, names: &[&str]) -> BTreeMap<String, FieldOpening> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), self.private.fields[*n].clone()))
            .collect()
    }
}

/// The mock network.
pub struct Net {
    /// The ledger.
    pub ledger: MockLedger,
    /// The chaincode.
    pub cc: Router<MockStub>,
    ids: HashMap<&'static str, Vec<u8>>,
    seq: Cell<u64>,
    /// The clock used by calls that do not pass a time.
    pub now: Cell<i64>,
}

/// A call's outcome: the parsed result or the decoded contract error.
pub type Outcome = Result<Value, ContractError>;

impl Net {
    /// A network with every user of [`USERS`] and the catalogue seeded.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ca.elicense.gov");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = (ca_key, ca_params);
        let ids = USERS
            .iter()
            .map(|(name, msp, role)| (*name, identity(&ca, name, msp, *role)))
            .collect();
        let net = Net {
            ledger: MockLedger::new(CHANNEL),
            cc: router(Settings::default()),
            ids,
            seq: Cell::new(0),
            now: Cell::new(T0),
        };
        let catalogue: Value = serde_json::from_str(CATALOGUE).unwrap();
        net.ok("regulator-admin", "InitCatalogue", Some(catalogue), &[]);
        net
    }

    /// The serialized identity of a user.
    pub fn creator(&self, who: &str) -> Vec<u8> {
        self.ids[who].clone()
    }

    /// A stub builder for a call by `who` at the current clock.
    pub fn builder(
        &self,
        who: &str,
        function: &str,
        arg: Option<&Value>,
        transient: &[(&str, Vec<u8>)],
    ) -> MockStubBuilder {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let args: Vec<Vec<u8>> = arg
            .map(|a| vec![serde_json::to_vec(a).unwrap()])
            .unwrap_or_default();
        let mut b = self
            .ledger
            .stub(&format!("tx{n:06}"))
            .function(function, args)
            .creator(self.creator(who))
            .timestamp(self.now.get(), 0);
        for (k, v) in transient {
            b = b.transient(k, v.clone());
        }
        b
    }

    /// Invokes and returns the raw invocation.
    pub fn invoke(
        &self,
        who: &str,
        function: &str,
        arg: Option<Value>,
        transient: &[(&str, Vec<u8>)],
    ) -> MockInvocation {
        let b = self.builder(who, function, arg.as_ref(), transient);
        block_on(self.ledger.invoke(&self.cc, b)).unwrap()
    }

    /// Invokes and decodes the result or the contract error.
    pub fn call(
        &self,
        who: &str,
        function: &str,
        arg: Option<Value>,
        transient: &[(&str, Vec<u8>)],
    ) -> Outcome {
        let inv = self.invoke(who, function, arg, transient);
        if inv.response.is_ok() {
            assert!(inv.record.is_some(), "a success commits");
            let payload = &inv.response.payload;
            Ok(if payload.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(payload).unwrap()
            })
        } else {
            assert!(inv.record.is_none(), "a failure commits nothing");
            Err(ContractError::decode(&inv.response.message)
                .unwrap_or_else(|| panic!("undecodable error message: {}", inv.response.message)))
        }
    }

    /// A call that must succeed.
    pub fn ok(
        &self,
        who: &str,
        function: &str,
        arg: Option<Value>,
        t: &[(&str, Vec<u8>)],
    ) -> Value {
        self.call(who, function, arg, t)
            .unwrap_or_else(|e| panic!("{function} failed: {e}"))
    }

    /// A call that must succeed, parsed as `T`.
    pub fn ok_as<T: DeserializeOwned>(
        &self,
        who: &str,
        function: &str,
        arg: Option<Value>,
        t: &[(&str, Vec<u8>)],
    ) -> T {
        serde_json::from_value(self.ok(who, function, arg, t)).unwrap()
    }

    /// Issues an ID card to `holder` with serial `serial`, valid for a year from [`T0`].
    pub fn issue_id_card(&self, holder: &Holder, serial: &str) -> Issued {
        let (req, private) = id_card_request(holder, serial);
        self.ok(
            "police-issuer",
            "Issue",
            Some(serde_json::to_value(&req).unwrap()),
            &[(TRANSIENT_LICENCE, serde_json::to_vec(&private).unwrap())],
        );
        Issued {
            id: req.licence_id,
            private,
        }
    }

    /// Seals and signs a grant for the service centre, matter `SC-0001`, fields `fields`,
    /// valid for a day from the current clock.
    pub fn grant(
        &self,
        holder: &Holder,
        licence: &LicenceId,
        fields: &[&str],
        uses: u32,
    ) -> (SealedGrant, SignedGrant) {
        let draft = GrantDraft {
            channel: CHANNEL.into(),
            licence_id: licence.clone(),
            grantee_msp: "ServiceCentreMSP".into(),
            matter: "SC-0001".into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            not_before: self.now.get(),
            not_after: self.now.get() + DAY,
            uses,
            nonce: Nonce::new(self.seq.get().to_be_bytes().repeat(2)).unwrap(),
        };
        self.seq.set(self.seq.get() + 1);
        let sealed = draft.seal(&holder.secret).unwrap();
        let signed = SignedGrant::sign(sealed.grant.clone(), &holder.key).unwrap();
        (sealed, signed)
    }

    /// Authorises a signed grant (relayed by the service centre's holder identity).
    pub fn authorize(&self, signed: &SignedGrant, salt: &CodeSalt) -> Outcome {
        self.call(
            "service-holder",
            "Authorize",
            Some(serde_json::to_value(signed).unwrap()),
            &[(TRANSIENT_CODE_SALT, salt.as_bytes().to_vec())],
        )
    }

    /// Grants and authorises in one step; returns the sealed grant.
    pub fn authorized_grant(
        &self,
        holder: &Holder,
        licence: &LicenceId,
        fields: &[&str],
        uses: u32,
    ) -> SealedGrant {
        let (sealed, signed) = self.grant(holder, licence, fields, uses);
        self.authorize(&signed, &sealed.code_salt).unwrap();
        sealed
    }

    /// A verify by `who`.
    pub fn verify(
        &self,
        who: &str,
        grant: &GrantId,
        matter: &str,
        code: &Code,
        fields: BTreeMap<String, FieldOpening>,
    ) -> Outcome {
        let req = VerifyRequest {
            grant_id: grant.clone(),
            matter: matter.into(),
        };
        let p = Presentation {
            code: code.clone(),
            fields,
        };
        self.call(
            who,
            "Verify",
            Some(serde_json::to_value(&req).unwrap()),
            &[(TRANSIENT_PRESENTATION, serde_json::to_vec(&p).unwrap())],
        )
    }
}

/// A deterministic 32-byte salt.
pub fn salt(seed: &str, field: &str) -> Salt {
    use sha2::Digest;
    Salt::new(sha2::Sha256::digest(format!("{seed}/{field}")).into())
}

/// Realistic ID card values.
pub fn id_card_values(serial: &str) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("张三{serial}")),
        ("sex", "男".into()),
        ("ethnicity", "汉".into()),
        ("birth_date", "1990-03-07".into()),
        ("address", format!("北京市东城区景山前街{serial}号")),
        (
            "id_number",
            format!(
                "11010119900307{:0>4}",
                &serial[serial.len().saturating_sub(4)..]
            ),
        ),
        ("issuing_authority", "北京市公安局东城分局".into()),
        ("valid_from", "2020-01-01".into()),
        ("valid_until", "2040-01-01".into()),
    ]
}

/// An ID card issue request and its openings.
pub fn id_card_request(holder: &Holder, serial: &str) -> (IssueRequest, LicencePrivate) {
    let fields = id_card_values(serial)
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_owned(),
                FieldOpening {
                    salt: salt(serial, n),
                    value: v,
                },
            )
        })
        .collect();
    (
        IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", serial).unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder.pem(),
            not_before: T0 - DAY,
            not_after: T0 + 365 * DAY,
        },
        LicencePrivate { fields },
    )
}

/// Runs a future to completion on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Parses the catalogue fixture.
pub fn catalogue() -> Catalogue {
    Catalogue::from_json(CATALOGUE).unwrap()
}
