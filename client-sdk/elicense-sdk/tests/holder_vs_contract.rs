//! The holder helpers against the contract's own checks: the licence contract runs on the shim's
//! `MockLedger` and judges what the SDK builds — grants, codes, presentations, withdrawals and
//! trail requests.

mod support;

use elicense_chaincode::{router, Settings};
use elicense_model::{
    ContractError, ErrorCode, GrantRecord, GrantStatus, HolderUsageRequest, LicenceRecord,
    Presentation, UsagePage, VerifyOutcome, VerifyRequest, VerifyResult, TRANSIENT_CODE_SALT,
    TRANSIENT_LICENCE, TRANSIENT_PRESENTATION,
};
use elicense_sdk::client::salt_values;
use elicense_sdk::holder::{self, code_for, code_matches, mismatched_fields};
use elicense_sdk::{Credential, HolderError, HolderKeyPair};
use fabric_chaincode::contract::Router;
use fabric_chaincode::mock::{MockLedger, MockStub};
use serde::de::DeserializeOwned;
use support::*;

struct Net {
    ledger: MockLedger,
    cc: Router<MockStub>,
    users: Users,
    seq: std::cell::Cell<u32>,
}

impl Net {
    fn new() -> Self {
        let net = Net {
            ledger: MockLedger::new(CHANNEL),
            cc: router(Settings::default()),
            users: Users::new(),
            seq: std::cell::Cell::new(0),
        };
        let catalogue: serde_json::Value = serde_json::from_str(CATALOGUE).unwrap();
        net.call::<serde_json::Value>("regulator-admin", "InitCatalogue", &catalogue, &[])
            .unwrap();
        net
    }

    fn call<T: DeserializeOwned>(
        &self,
        who: &str,
        function: &str,
        arg: &impl serde::Serialize,
        transient: &[(&str, Vec<u8>)],
    ) -> Result<T, ContractError> {
        self.seq.set(self.seq.get() + 1);
        let mut b = self
            .ledger
            .stub(&format!("tx{}", self.seq.get()))
            .function(function, [serde_json::to_vec(arg).unwrap()])
            .creator(self.users.creator(who))
            .timestamp(now(), 0);
        for (k, v) in transient {
            b = b.transient(k, v.clone());
        }
        let inv = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(self.ledger.invoke(&self.cc, b))
            .unwrap();
        if inv.response.is_ok() {
            Ok(serde_json::from_slice(&inv.response.payload).unwrap())
        } else {
            Err(ContractError::decode(&inv.response.message).expect("contract error wire form"))
        }
    }

    /// Issues an ID card the SDK's way (CSPRNG salts) and returns the holder's credential.
    fn issue(&self, holder: &HolderKeyPair, serial: &str) -> Credential {
        let licence = id_card(serial, holder.public_pem());
        let private = salt_values(&licence.values);
        let record: LicenceRecord = self
            .call(
                "police-issuer",
                "Issue",
                &licence.request,
                &[(TRANSIENT_LICENCE, serde_json::to_vec(&private).unwrap())],
            )
            .unwrap();
        Credential::new(CHANNEL, &record, private).unwrap()
    }

    fn verify(
        &self,
        grant: &elicense_model::GrantId,
        p: &Presentation,
    ) -> Result<VerifyResult, ContractError> {
        let req = VerifyRequest {
            grant_id: grant.clone(),
            matter: "SC-0001".into(),
        };
        self.call(
            "service-clerk",
            "Verify",
            &req,
            &[(TRANSIENT_PRESENTATION, serde_json::to_vec(p).unwrap())],
        )
    }
}

#[test]
fn a_grant_built_by_the_sdk_is_accepted_and_its_code_verifies() {
    let net = Net::new();
    let holder = HolderKeyPair::generate();
    let secret = holder::secret(&holder::new_secret()).unwrap();
    let credential = net.issue(&holder, "000000001");
    let record: LicenceRecord = net
        .call(
            "service-clerk",
            "ReadLicence",
            &serde_json::json!({"licence_id": credential.licence_id}),
            &[],
        )
        .unwrap();
    credential.check(&record).unwrap();

    let grant = credential
        .grant("ServiceCentreMSP", "SC-0001")
        .fields(["name", "id_number", "address"])
        .sign(&secret, &holder)
        .unwrap();
    // The holder re-derives the same code from the secret and the grant alone.
    assert_eq!(
        code_for(&secret, grant.grant()).as_str(),
        grant.code.as_str()
    );
    assert!(code_matches(&secret, grant.grant(), &grant.code));

    let stored: GrantRecord = net
        .call(
            "service-holder",
            "Authorize",
            &grant.signed,
            &[(TRANSIENT_CODE_SALT, grant.code_salt.as_bytes().to_vec())],
        )
        .unwrap();
    assert_eq!(stored.id, grant.id());
    assert_eq!(stored.status, GrantStatus::Active);

    // A presentation of two chosen fields matches the public commitments, locally and on-chain.
    let p = credential
        .present(grant.grant(), &grant.code, &["name", "id_number"])
        .unwrap();
    assert!(mismatched_fields(&record, &p).is_empty());
    let result = net.verify(&grant.id(), &p).unwrap();
    let VerifyOutcome::Verified {
        matched,
        not_presented,
        uses_left,
        ..
    } = result.outcome
    else {
        panic!("expected a verified outcome, got {:?}", result.outcome);
    };
    assert_eq!(matched, ["id_number", "name"]);
    assert_eq!(not_presented, ["address"]);
    assert_eq!(uses_left, 0);
    // Single use: the same presentation is now refused.
    assert_eq!(
        net.verify(&grant.id(), &p).unwrap_err().code,
        ErrorCode::GrantSpent
    );
}

#[test]
fn a_tampered_grant_is_refused() {
    let net = Net::new();
    let holder = HolderKeyPair::generate();
    let secret = holder::secret("a holder passphrase of some length").unwrap();
    let credential = net.issue(&holder, "000000002");
    let grant = credential
        .grant("ServiceCentreMSP", "SC-0001")
        .field("name")
        .sign(&secret, &holder)
        .unwrap();
    let salt = vec![(TRANSIENT_CODE_SALT, grant.code_salt.as_bytes().to_vec())];

    let mut more_uses = grant.signed.clone();
    more_uses.grant.uses = 5;
    let mut other_fields = grant.signed.clone();
    other_fields.grant.fields = vec!["id_number".into(), "name".into()];
    // Signed by someone else's key.
    let forged = credential
        .grant("ServiceCentreMSP", "SC-0001")
        .field("name")
        .sign(&secret, &HolderKeyPair::generate())
        .unwrap();
    for (what, signed) in [
        ("uses", &more_uses),
        ("fields", &other_fields),
        ("signer", &forged.signed),
    ] {
        let err = net
            .call::<GrantRecord>("service-holder", "Authorize", signed, &salt)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadSignature, "tampered {what}");
    }
}

#[test]
fn wrong_values_and_ungranted_fields_are_caught() {
    let net = Net::new();
    let holder = HolderKeyPair::generate();
    let secret = holder::secret(&holder::new_secret()).unwrap();
    let credential = net.issue(&holder, "000000003");
    let grant = credential
        .grant("ServiceCentreMSP", "SC-0001")
        .fields(["name", "sex"])
        .uses(2)
        .sign(&secret, &holder)
        .unwrap();
    net.call::<GrantRecord>(
        "service-holder",
        "Authorize",
        &grant.signed,
        &[(TRANSIENT_CODE_SALT, grant.code_salt.as_bytes().to_vec())],
    )
    .unwrap();

    // The SDK refuses to present a field the grant does not allow…
    assert!(matches!(
        credential.present(grant.grant(), &grant.code, &["id_number"]),
        Err(HolderError::FieldNotGranted(f)) if f == ["id_number"]
    ));
    // …and a value changed after issuance fails locally and on-chain, naming the field only.
    let mut p = credential
        .present(grant.grant(), &grant.code, &["name", "sex"])
        .unwrap();
    p.fields.get_mut("sex").unwrap().value = "女".into();
    let record: LicenceRecord = net
        .call(
            "service-clerk",
            "ReadLicence",
            &serde_json::json!({"licence_id": credential.licence_id}),
            &[],
        )
        .unwrap();
    assert_eq!(mismatched_fields(&record, &p), ["sex"]);
    let err = net.verify(&grant.id(), &p).unwrap_err();
    assert_eq!(err.code, ErrorCode::FieldMismatch);
    assert_eq!(err.fields, ["sex"]);

    // A wrong code is counted, not refused.
    let n: u32 = grant.code.as_str().parse().unwrap();
    let wrong = elicense_model::Code::parse(&format!("{:08}", (n + 1) % 100_000_000)).unwrap();
    let p = credential
        .present(grant.grant(), &wrong, &["name"])
        .unwrap();
    let r = net.verify(&grant.id(), &p).unwrap();
    assert!(matches!(
        r.outcome,
        VerifyOutcome::WrongCode { attempts_left: 4 }
    ));
}

#[test]
fn withdrawals_and_trail_requests_signed_by_the_sdk_are_accepted() {
    let net = Net::new();
    let holder = HolderKeyPair::generate();
    let secret = holder::secret(&holder::new_secret()).unwrap();
    let credential = net.issue(&holder, "000000004");
    let grant = credential
        .grant("ServiceCentreMSP", "SC-0001")
        .field("name")
        .sign(&secret, &holder)
        .unwrap();
    net.call::<GrantRecord>(
        "service-holder",
        "Authorize",
        &grant.signed,
        &[(TRANSIENT_CODE_SALT, grant.code_salt.as_bytes().to_vec())],
    )
    .unwrap();
    let p = credential
        .present(grant.grant(), &grant.code, &["name"])
        .unwrap();

    // Someone else's withdrawal is refused; the holder's is accepted and the grant dies.
    let forged = holder::withdrawal(CHANNEL, grant.id(), &HolderKeyPair::generate()).unwrap();
    let err = net
        .call::<GrantRecord>("service-holder", "Withdraw", &forged, &[])
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadSignature);
    let w = holder::withdrawal(CHANNEL, grant.id(), &holder).unwrap();
    let rec: GrantRecord = net.call("service-holder", "Withdraw", &w, &[]).unwrap();
    assert_eq!(rec.status, GrantStatus::Withdrawn);
    assert_eq!(
        net.verify(&grant.id(), &p).unwrap_err().code,
        ErrorCode::GrantWithdrawn
    );

    // The holder's trail request reads its own usage; a stranger's is refused.
    let req = HolderUsageRequest {
        signed: holder::trail_request(CHANNEL, credential.licence_id.clone(), &holder).unwrap(),
        page_size: None,
        bookmark: String::new(),
    };
    let page: UsagePage = net
        .call("service-holder", "HolderUsage", &req, &[])
        .unwrap();
    assert!(page.records.is_empty());
    let stranger = HolderUsageRequest {
        signed: holder::trail_request(
            CHANNEL,
            credential.licence_id.clone(),
            &HolderKeyPair::generate(),
        )
        .unwrap(),
        ..req
    };
    let err = net
        .call::<UsagePage>("service-holder", "HolderUsage", &stranger, &[])
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadSignature);
}

#[test]
fn a_credential_round_trips_and_detects_a_foreign_record() {
    let net = Net::new();
    let holder = HolderKeyPair::generate();
    let credential = net.issue(&holder, "000000005");
    let back = Credential::from_json(&credential.to_json()).unwrap();
    assert_eq!(back, credential);
    let other = net.issue(&HolderKeyPair::generate(), "000000006");
    let other_record: LicenceRecord = net
        .call(
            "service-clerk",
            "ReadLicence",
            &serde_json::json!({"licence_id": other.licence_id}),
            &[],
        )
        .unwrap();
    assert!(matches!(
        credential.check(&other_record),
        Err(HolderError::WrongRecord(_))
    ));
    // Same licence, altered opening: a commitment mismatch naming the field.
    let mut altered = other.clone();
    altered.fields.get_mut("name").unwrap().value.push('X');
    assert!(matches!(
        altered.check(&other_record),
        Err(HolderError::CommitmentMismatch(f)) if f == ["name"]
    ));
}
