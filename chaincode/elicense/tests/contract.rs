//! Every contract rule, positive and negative, on the shim's `MockLedger`.

mod common;

use common::*;
use elicense_model::{
    events, Code, ErrorCode, GrantRecord, GrantStatus, HistoryEntry, HolderUsageRequest,
    LicenceEvent, LicenceRecord, LicenceStatus, Nonce, RetrieveResult, SignedTrailRequest,
    SignedWithdrawal, TrailRequest, UsagePage, UsageResult, VerifyOutcome, VerifyResult,
    Withdrawal, MAX_CODE_ATTEMPTS, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE,
};
use fabric_chaincode::types::VALIDATION_PARAMETER;
use serde_json::{json, Value};

const SC: &str = "service-clerk";

fn code_of(r: Outcome) -> ErrorCode {
    r.expect_err("expected a contract error").code
}

fn verified(v: Value) -> VerifyResult {
    serde_json::from_value(v).unwrap()
}

fn wrong_code(code: &Code) -> Code {
    let n: u32 = code.as_str().parse().unwrap();
    Code::parse(&format!("{:08}", (n + 1) % 100_000_000)).unwrap()
}

fn last_event(net: &Net) -> (String, LicenceEvent) {
    let tx = net.ledger.last_transaction().unwrap();
    let e = tx.event.expect("every state change emits an event");
    (e.event_name, serde_json::from_slice(&e.payload).unwrap())
}

fn status_req(id: &elicense_model::LicenceId, reason: &str) -> Option<Value> {
    Some(json!({"licence_id": id, "reason": reason}))
}

// ---- catalogue ----------------------------------------------------------------------------

#[test]
fn catalogue_is_seeded_and_only_the_regulator_admin_manages_it() {
    let net = Net::new();
    let types: Vec<elicense_model::LicenceType> = net.ok_as(SC, "ListLicenceTypes", None, &[]);
    assert_eq!(types.len(), catalogue().types.len());
    let t = net.ok(
        SC,
        "GetLicenceType",
        Some(json!({"code": "MARRIAGE_CERT"})),
        &[],
    );
    assert_eq!(t["issuers"][0]["msp_id"], "CivilAffairsMSP");
    assert_eq!(
        code_of(net.call(SC, "GetLicenceType", Some(json!({"code": "NOPE"})), &[])),
        ErrorCode::NotFound
    );
    let mut new_type = serde_json::to_value(&catalogue().types[0]).unwrap();
    new_type["code"] = json!("SOCIAL_SECURITY_CARD");
    new_type["id_tag"] = json!("SSC");
    for who in ["police-admin", "auditor", "police-issuer"] {
        assert_eq!(
            code_of(net.call(who, "PutLicenceType", Some(new_type.clone()), &[])),
            ErrorCode::NotAllowed,
            "{who}"
        );
    }
    net.ok(
        "regulator-admin",
        "PutLicenceType",
        Some(new_type.clone()),
        &[],
    );
    assert_eq!(last_event(&net).0, events::LICENCE_TYPE_PUT);
    new_type["fields"] = json!(["Bad Field"]);
    assert_eq!(
        code_of(net.call("regulator-admin", "PutLicenceType", Some(new_type), &[])),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn metadata_lists_the_transactions() {
    let net = Net::new();
    let inv = net.invoke(SC, "org.hyperledger.fabric:GetMetadata", None, &[]);
    let meta: Value = serde_json::from_slice(&inv.response.payload).unwrap();
    let names: Vec<&str> = meta["contracts"]["ELicense"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in [
        "Issue",
        "Authorize",
        "Withdraw",
        "Verify",
        "Retrieve",
        "HolderUsage",
        "AuditUsage",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
}

#[test]
fn malformed_arguments_get_a_typed_error() {
    let net = Net::new();
    assert_eq!(
        code_of(net.call(
            SC,
            "ReadLicence",
            Some(json!({"licence_id": "IDC-PSB-1-0"})),
            &[]
        )),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code_of(net.call(SC, "ReadGrant", Some(json!({"nope": 1})), &[])),
        ErrorCode::InvalidArgument
    );
}

// ---- issue --------------------------------------------------------------------------------

#[test]
fn issue_writes_commitments_publicly_and_values_privately() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000001");
    let (name, ev) = last_event(&net);
    assert_eq!(name, events::LICENCE_ISSUED);
    assert_eq!(ev.licence_id.as_ref(), Some(&lic.id));

    let rec: LicenceRecord = net.ok_as(SC, "ReadLicence", Some(json!({"licence_id": lic.id})), &[]);
    assert_eq!(rec.issuer_msp, "PublicSecurityMSP");
    assert_eq!(rec.status, LicenceStatus::Active);
    assert_eq!(rec.commitments.len(), 9);
    for (n, o) in &lic.private.fields {
        assert!(rec.commitments[n].opens(&o.salt, n, &o.value));
    }
    let key = elicense_chaincode::keys::licence(lic.id.as_str()).unwrap();
    let private = net
        .ledger
        .private_data("_implicit_org_PublicSecurityMSP", &key)
        .expect("values live in the issuer's implicit collection");
    let stored: elicense_model::LicencePrivate = serde_json::from_slice(&private).unwrap();
    assert_eq!(stored, lic.private);
    let policy = net.ledger.metadata("", &key, VALIDATION_PARAMETER).unwrap();
    assert_eq!(
        policy,
        elicense_chaincode::policy::peers_of(&["PublicSecurityMSP"])
    );
}

#[test]
fn issue_rules() {
    let net = Net::new();
    let holder = Holder::new(1);
    let (req, private) = id_card_request(&holder, "000002");
    let t = |p: &elicense_model::LicencePrivate| {
        vec![(TRANSIENT_LICENCE, serde_json::to_vec(p).unwrap())]
    };
    let arg = |r: &elicense_model::IssueRequest| Some(serde_json::to_value(r).unwrap());

    // Wrong role, wrong MSP.
    assert_eq!(
        code_of(net.call("police-clerk", "Issue", arg(&req), &t(&private))),
        ErrorCode::NotAllowed
    );
    assert_eq!(
        code_of(net.call("civil-issuer", "Issue", arg(&req), &t(&private))),
        ErrorCode::NotAllowed
    );
    // Unknown type.
    let mut bad = req.clone();
    bad.licence_type = "PASSPORT".into();
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&bad), &t(&private))),
        ErrorCode::NotFound
    );
    // Identifier of another type / issuer.
    let mut bad = req.clone();
    bad.licence_id = elicense_model::LicenceId::build("DRV", "PSB", "000002").unwrap();
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&bad), &t(&private))),
        ErrorCode::InvalidArgument
    );
    // Bad holder key.
    let mut bad = req.clone();
    bad.holder_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into();
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&bad), &t(&private))),
        ErrorCode::InvalidArgument
    );
    // Inverted validity.
    let mut bad = req.clone();
    bad.not_after = bad.not_before - 1;
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&bad), &t(&private))),
        ErrorCode::InvalidArgument
    );
    // Missing transient, missing field, unknown field, short salt.
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&req), &[])),
        ErrorCode::InvalidArgument
    );
    let mut p = private.clone();
    p.fields.remove("sex");
    let e = net
        .call("police-issuer", "Issue", arg(&req), &t(&p))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("missing [sex]"), "{}", e.message);
    let mut p = private.clone();
    let extra = p.fields["sex"].clone();
    p.fields.insert("blood_type".into(), extra);
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&req), &t(&p))),
        ErrorCode::InvalidArgument
    );
    let mut raw = serde_json::to_value(&private).unwrap();
    raw["fields"]["sex"]["salt"] = json!("00ff");
    assert_eq!(
        code_of(net.call(
            "police-issuer",
            "Issue",
            arg(&req),
            &[(TRANSIENT_LICENCE, serde_json::to_vec(&raw).unwrap())]
        )),
        ErrorCode::InvalidArgument
    );
    // Nothing was written by any of the failures.
    assert_eq!(
        code_of(net.call(
            SC,
            "ReadLicence",
            Some(json!({"licence_id": req.licence_id})),
            &[]
        )),
        ErrorCode::NotFound
    );
    // Positive, then duplicate.
    net.ok("police-issuer", "Issue", arg(&req), &t(&private));
    assert_eq!(
        code_of(net.call("police-issuer", "Issue", arg(&req), &t(&private))),
        ErrorCode::AlreadyExists
    );
}

// ---- status -------------------------------------------------------------------------------

#[test]
fn status_changes_by_the_issuer_with_history() {
    let net = Net::new();
    let lic = net.issue_id_card(&Holder::new(1), "000003");
    assert_eq!(
        code_of(net.call("civil-issuer", "Suspend", status_req(&lic.id, "x"), &[])),
        ErrorCode::NotAllowed
    );
    assert_eq!(
        code_of(net.call("police-clerk", "Suspend", status_req(&lic.id, "x"), &[])),
        ErrorCode::NotAllowed
    );
    assert_eq!(
        code_of(net.call("police-issuer", "Suspend", status_req(&lic.id, ""), &[])),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code_of(net.call("police-issuer", "Reinstate", status_req(&lic.id, "x"), &[])),
        ErrorCode::InvalidTransition
    );

    let r: LicenceRecord = net.ok_as(
        "police-issuer",
        "Suspend",
        status_req(&lic.id, "reported lost"),
        &[],
    );
    assert_eq!(
        (r.status, r.status_reason.as_str()),
        (LicenceStatus::Suspended, "reported lost")
    );
    assert_eq!(last_event(&net).0, events::LICENCE_SUSPENDED);
    net.ok(
        "police-issuer",
        "Reinstate",
        status_req(&lic.id, "found"),
        &[],
    );
    assert_eq!(last_event(&net).0, events::LICENCE_REINSTATED);
    net.ok(
        "police-issuer",
        "Revoke",
        status_req(&lic.id, "superseded"),
        &[],
    );
    assert_eq!(last_event(&net).0, events::LICENCE_REVOKED);
    assert_eq!(
        code_of(net.call("police-issuer", "Reinstate", status_req(&lic.id, "x"), &[])),
        ErrorCode::InvalidTransition
    );
    assert_eq!(
        code_of(net.call(
            "police-issuer",
            "Suspend",
            status_req(
                &elicense_model::LicenceId::build("IDC", "PSB", "404").unwrap(),
                "x"
            ),
            &[]
        )),
        ErrorCode::NotFound
    );

    let h: Vec<HistoryEntry> = net.ok_as(
        SC,
        "LicenceHistory",
        Some(json!({"licence_id": lic.id})),
        &[],
    );
    let statuses: Vec<LicenceStatus> = h
        .iter()
        .map(|e| e.record.as_ref().unwrap().status)
        .collect();
    // Newest first, as Fabric's history is.
    assert_eq!(statuses.len(), 4);
    assert!(
        statuses.contains(&LicenceStatus::Revoked) && statuses.contains(&LicenceStatus::Suspended)
    );
}

// ---- authorize ----------------------------------------------------------------------------

#[test]
fn authorize_checks_the_holder_signature() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000004");
    let (sealed, signed) = net.grant(&holder, &lic.id, &["name", "id_number"], 1);

    // Forged: signed by someone else.
    let forger = Holder::new(9);
    let forged = elicense_model::SignedGrant::sign(sealed.grant.clone(), &forger.key).unwrap();
    assert_eq!(
        code_of(net.authorize(&forged, &sealed.code_salt)),
        ErrorCode::BadSignature
    );
    // High-S twin of the genuine signature.
    let mut high = signed.clone();
    high.signature = hex::encode(
        fabric_common::crypto::to_high_s(&hex::decode(&signed.signature).unwrap()).unwrap(),
    );
    let e = net.authorize(&high, &sealed.code_salt).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadSignature);
    assert!(e.message.contains("low-S"), "{}", e.message);
    // Tampered content.
    let mut tampered = signed.clone();
    tampered.grant.uses = 5;
    assert_eq!(
        code_of(net.authorize(&tampered, &sealed.code_salt)),
        ErrorCode::BadSignature
    );
    // Garbage signature.
    let mut garbage = signed.clone();
    garbage.signature = "3006020101020101".into();
    assert_eq!(
        code_of(net.authorize(&garbage, &sealed.code_salt)),
        ErrorCode::BadSignature
    );
    // Missing / short code salt.
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "Authorize",
            Some(serde_json::to_value(&signed).unwrap()),
            &[]
        )),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "Authorize",
            Some(serde_json::to_value(&signed).unwrap()),
            &[(TRANSIENT_CODE_SALT, vec![1; 16])]
        )),
        ErrorCode::InvalidArgument
    );

    let rec: GrantRecord =
        serde_json::from_value(net.authorize(&signed, &sealed.code_salt).unwrap()).unwrap();
    assert_eq!(rec.id, sealed.grant.id());
    assert_eq!((rec.status, rec.uses_left), (GrantStatus::Active, 1));
    assert_eq!(last_event(&net).0, events::GRANT_AUTHORIZED);
    let key = elicense_chaincode::keys::grant(rec.id.as_str()).unwrap();
    assert_eq!(
        net.ledger.metadata("", &key, VALIDATION_PARAMETER).unwrap(),
        elicense_chaincode::policy::peers_of(&["PublicSecurityMSP"])
    );
    let salt_key = elicense_chaincode::keys::code_salt(rec.id.as_str()).unwrap();
    assert_eq!(
        net.ledger
            .private_data("_implicit_org_PublicSecurityMSP", &salt_key)
            .unwrap(),
        sealed.code_salt.as_bytes().to_vec()
    );
    assert_eq!(
        code_of(net.authorize(&signed, &sealed.code_salt)),
        ErrorCode::AlreadyExists
    );
}

#[test]
fn authorize_rules() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000005");
    // A field the licence does not have.
    let (sealed, signed) = net.grant(&holder, &lic.id, &["licence_number"], 1);
    assert_eq!(
        code_of(net.authorize(&signed, &sealed.code_salt)),
        ErrorCode::InvalidArgument
    );
    // Another channel.
    let mut draft_grant = sealed.grant.clone();
    draft_grant.channel = "civil-service".into();
    draft_grant.fields = vec!["name".into()];
    let other = elicense_model::SignedGrant::sign(draft_grant, &holder.key).unwrap();
    assert_eq!(
        code_of(net.authorize(&other, &sealed.code_salt)),
        ErrorCode::InvalidArgument
    );
    // Unknown licence.
    let ghost = elicense_model::LicenceId::build("IDC", "PSB", "404").unwrap();
    let (s, g) = net.grant(&holder, &ghost, &["name"], 1);
    assert_eq!(
        code_of(net.authorize(&g, &s.code_salt)),
        ErrorCode::NotFound
    );
    // Revoked licence.
    net.ok("police-issuer", "Revoke", status_req(&lic.id, "r"), &[]);
    let (s, g) = net.grant(&holder, &lic.id, &["name"], 1);
    assert_eq!(
        code_of(net.authorize(&g, &s.code_salt)),
        ErrorCode::LicenceRevoked
    );
}

// ---- verify -------------------------------------------------------------------------------

#[test]
fn verify_spends_the_grant_and_leaves_a_trace() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000006");
    let g = net.authorized_grant(&holder, &lic.id, &["id_number", "name", "sex"], 1);
    let gid = g.grant.id();
    let r = verified(
        net.verify(
            SC,
            &gid,
            "SC-0001",
            &g.code,
            lic.present(&["name", "id_number"]),
        )
        .unwrap(),
    );
    let VerifyOutcome::Verified {
        matched,
        not_presented,
        uses_left,
        retrieve_until,
    } = r.outcome
    else {
        panic!("expected verified, got {:?}", r.outcome);
    };
    assert_eq!(matched, ["id_number", "name"]);
    assert_eq!(not_presented, ["sex"]);
    assert_eq!(uses_left, 0);
    assert_eq!(retrieve_until, T0 + 600);
    let (name, ev) = last_event(&net);
    assert_eq!(
        (name.as_str(), ev.grant_id.as_ref()),
        (events::GRANT_VERIFIED, Some(&gid))
    );

    let rec: GrantRecord = net.ok_as(SC, "ReadGrant", Some(json!({"grant_id": gid})), &[]);
    assert_eq!(rec.status, GrantStatus::Spent);
    // The code can never be checked again: its salt is gone.
    let salt_key = elicense_chaincode::keys::code_salt(gid.as_str()).unwrap();
    assert!(net
        .ledger
        .private_data("_implicit_org_PublicSecurityMSP", &salt_key)
        .is_none());

    // Spent.
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantSpent
    );

    // The usage record names fields, never values.
    let page: UsagePage = net.ok_as("auditor", "AuditUsage", Some(json!({})), &[]);
    assert_eq!(page.records.len(), 1);
    let u = &page.records[0];
    assert_eq!(u.result, UsageResult::Verified);
    assert_eq!(u.fields, ["id_number", "name"]);
    assert_eq!(
        (u.grantee_msp.as_str(), u.matter.as_str()),
        ("ServiceCentreMSP", "SC-0001")
    );
    assert_eq!(u.tx_id, r.tx_id);
    assert_eq!(u.at, T0);
}

#[test]
fn verify_with_several_uses() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000007");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 2);
    let gid = g.grant.id();
    net.verify(SC, &gid, "SC-0001", &g.code, lic.present(&["name"]))
        .unwrap();
    net.verify(
        "service-clerk2",
        &gid,
        "SC-0001",
        &g.code,
        Default::default(),
    )
    .unwrap();
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantSpent
    );
}

#[test]
fn verify_caller_rules() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000008");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    for who in [
        "police-clerk",
        "police-issuer",
        "service-holder",
        "service-norole",
        "auditor",
    ] {
        assert_eq!(
            code_of(net.verify(who, &gid, "SC-0001", &g.code, Default::default())),
            ErrorCode::NotAllowed,
            "{who}"
        );
    }
    let ghost = elicense_model::GrantId::parse(&"0".repeat(64)).unwrap();
    assert_eq!(
        code_of(net.verify(SC, &ghost, "SC-0001", &g.code, Default::default())),
        ErrorCode::NotFound
    );
    // Missing presentation.
    assert_eq!(
        code_of(net.call(
            SC,
            "Verify",
            Some(json!({"grant_id": gid, "matter": "SC-0001"})),
            &[]
        )),
        ErrorCode::InvalidArgument
    );
    // Still usable after all those rejections.
    net.verify(SC, &gid, "SC-0001", &g.code, Default::default())
        .unwrap();
}

#[test]
fn verify_grant_rules() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000009");
    let g = net.authorized_grant(&holder, &lic.id, &["name", "sex"], 1);
    let gid = g.grant.id();
    // Wrong matter.
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0002", &g.code, Default::default())),
        ErrorCode::WrongMatter
    );
    // A field not granted.
    let e = net
        .verify(
            SC,
            &gid,
            "SC-0001",
            &g.code,
            lic.present(&["name", "address"]),
        )
        .unwrap_err();
    assert_eq!(
        (e.code, e.fields.clone()),
        (ErrorCode::FieldNotGranted, vec!["address".to_owned()])
    );
    // A value that does not match.
    let mut p = lic.present(&["name", "sex"]);
    p.get_mut("sex").unwrap().value = "女".into();
    let e = net.verify(SC, &gid, "SC-0001", &g.code, p).unwrap_err();
    assert_eq!(
        (e.code, e.fields.clone()),
        (ErrorCode::FieldMismatch, vec!["sex".to_owned()])
    );
    // A salt that does not match.
    let mut p = lic.present(&["name"]);
    p.get_mut("name").unwrap().salt = salt("other", "name");
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, p)),
        ErrorCode::FieldMismatch
    );
    // Not yet valid and expired.
    net.now.set(T0 - 1);
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantNotYetValid
    );
    net.now.set(T0 + DAY + 1);
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantExpired
    );
    net.now.set(T0 + DAY);
    // None of the rejections spent or counted anything.
    let rec: GrantRecord = net.ok_as(SC, "ReadGrant", Some(json!({"grant_id": gid})), &[]);
    assert_eq!(
        (rec.status, rec.failed_attempts, rec.uses_left),
        (GrantStatus::Active, 0, 1)
    );
    net.verify(SC, &gid, "SC-0001", &g.code, lic.present(&["name", "sex"]))
        .unwrap();
}

#[test]
fn five_wrong_codes_lock_the_grant_and_each_attempt_commits() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000010");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    let bad = wrong_code(&g.code);
    for attempt in 1..=MAX_CODE_ATTEMPTS {
        let before = net.ledger.transactions().len();
        let r = verified(
            net.verify(SC, &gid, "SC-0001", &bad, lic.present(&["name"]))
                .unwrap(),
        );
        assert_eq!(
            net.ledger.transactions().len(),
            before + 1,
            "attempt {attempt} committed"
        );
        if attempt < MAX_CODE_ATTEMPTS {
            assert_eq!(
                r.outcome,
                VerifyOutcome::WrongCode {
                    attempts_left: MAX_CODE_ATTEMPTS - attempt
                }
            );
            assert_eq!(last_event(&net).0, events::GRANT_CODE_REJECTED);
        } else {
            assert_eq!(r.outcome, VerifyOutcome::Locked);
            assert_eq!(last_event(&net).0, events::GRANT_LOCKED);
        }
    }
    // Even the right code is refused now.
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantLocked
    );
    let rec: GrantRecord = net.ok_as(SC, "ReadGrant", Some(json!({"grant_id": gid})), &[]);
    assert_eq!((rec.status, rec.failed_attempts), (GrantStatus::Locked, 5));
    let page: UsagePage = net.ok_as(
        "auditor",
        "AuditUsage",
        Some(json!({"licence_id": lic.id})),
        &[],
    );
    let results: Vec<UsageResult> = page.records.iter().map(|u| u.result).collect();
    assert_eq!(
        results,
        [
            UsageResult::WrongCode,
            UsageResult::WrongCode,
            UsageResult::WrongCode,
            UsageResult::WrongCode,
            UsageResult::Locked
        ]
    );
}

#[test]
fn a_wrong_code_then_the_right_one() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000011");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    let r = verified(
        net.verify(
            SC,
            &gid,
            "SC-0001",
            &wrong_code(&g.code),
            Default::default(),
        )
        .unwrap(),
    );
    assert_eq!(r.outcome, VerifyOutcome::WrongCode { attempts_left: 4 });
    let r = verified(
        net.verify(SC, &gid, "SC-0001", &g.code, Default::default())
            .unwrap(),
    );
    assert!(matches!(r.outcome, VerifyOutcome::Verified { .. }));
}

#[test]
fn verify_licence_rules() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000012");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    net.ok(
        "police-issuer",
        "Suspend",
        status_req(&lic.id, "check"),
        &[],
    );
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::LicenceSuspended
    );
    net.ok("police-issuer", "Reinstate", status_req(&lic.id, "ok"), &[]);
    net.ok("police-issuer", "Revoke", status_req(&lic.id, "gone"), &[]);
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::LicenceRevoked
    );

    // An expired licence (issued with a short validity).
    let (mut req, private) = id_card_request(&holder, "000013");
    req.not_after = T0 + 100;
    net.ok(
        "police-issuer",
        "Issue",
        Some(serde_json::to_value(&req).unwrap()),
        &[(TRANSIENT_LICENCE, serde_json::to_vec(&private).unwrap())],
    );
    let g = net.authorized_grant(&holder, &req.licence_id, &["name"], 1);
    net.now.set(T0 + 101);
    assert_eq!(
        code_of(net.verify(SC, &g.grant.id(), "SC-0001", &g.code, Default::default())),
        ErrorCode::LicenceExpired
    );
}

// ---- withdraw -----------------------------------------------------------------------------

fn withdrawal(net: &Net, holder: &Holder, gid: &elicense_model::GrantId) -> Value {
    let w = Withdrawal {
        channel: CHANNEL.into(),
        grant_id: gid.clone(),
        requested_at: net.now.get(),
        nonce: Nonce::new(vec![7; 16]).unwrap(),
    };
    serde_json::to_value(SignedWithdrawal::sign(w, &holder.key).unwrap()).unwrap()
}

#[test]
fn withdraw_makes_the_grant_unusable() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000014");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    // Someone else's signature.
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "Withdraw",
            Some(withdrawal(&net, &Holder::new(9), &gid)),
            &[]
        )),
        ErrorCode::BadSignature
    );
    let rec: GrantRecord = net.ok_as(
        "service-clerk",
        "Withdraw",
        Some(withdrawal(&net, &holder, &gid)),
        &[],
    );
    assert_eq!(rec.status, GrantStatus::Withdrawn);
    assert_eq!(last_event(&net).0, events::GRANT_WITHDRAWN);
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantWithdrawn
    );
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "Withdraw",
            Some(withdrawal(&net, &holder, &gid)),
            &[]
        )),
        ErrorCode::GrantWithdrawn
    );
    // A spent grant cannot be withdrawn.
    let g2 = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    net.verify(SC, &g2.grant.id(), "SC-0001", &g2.code, Default::default())
        .unwrap();
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "Withdraw",
            Some(withdrawal(&net, &holder, &g2.grant.id())),
            &[]
        )),
        ErrorCode::GrantSpent
    );
}

// ---- retrieve -----------------------------------------------------------------------------

#[test]
fn retrieve_within_the_window_after_verify() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000015");
    let g = net.authorized_grant(&holder, &lic.id, &["name", "birth_date"], 1);
    let gid = g.grant.id();
    let q = Some(json!({"grant_id": gid}));
    // Without a verify.
    assert_eq!(
        code_of(net.call(SC, "Retrieve", q.clone(), &[])),
        ErrorCode::RetrieveWindowClosed
    );
    net.verify(SC, &gid, "SC-0001", &g.code, Default::default())
        .unwrap();
    let before = net.ledger.transactions().len();
    // Wrong organisation and role.
    assert_eq!(
        code_of(net.call("police-clerk", "Retrieve", q.clone(), &[])),
        ErrorCode::NotAllowed
    );
    assert_eq!(
        code_of(net.call("service-holder", "Retrieve", q.clone(), &[])),
        ErrorCode::NotAllowed
    );
    net.now.set(T0 + 600);
    let r: RetrieveResult = net.ok_as("service-clerk2", "Retrieve", q.clone(), &[]);
    assert_eq!(r.fields.len(), 2);
    assert_eq!(r.fields["name"], lic.private.fields["name"].value);
    assert_eq!(
        r.fields["birth_date"],
        lic.private.fields["birth_date"].value
    );
    // Retrieve wrote nothing (the mock records a transaction, with no writes and no event).
    for tx in &net.ledger.transactions()[before..] {
        assert!(tx.writes.is_empty() && tx.private_writes.is_empty() && tx.event.is_none());
    }
    net.now.set(T0 + 601);
    assert_eq!(
        code_of(net.call(SC, "Retrieve", q, &[])),
        ErrorCode::RetrieveWindowClosed
    );
}

// ---- usage --------------------------------------------------------------------------------

fn trail(holder: &Holder, lic: &elicense_model::LicenceId, at: i64) -> Value {
    let req = TrailRequest {
        channel: CHANNEL.into(),
        licence_id: lic.clone(),
        requested_at: at,
        nonce: Nonce::new(vec![3; 16]).unwrap(),
    };
    serde_json::to_value(HolderUsageRequest {
        signed: SignedTrailRequest::sign(req, &holder.key).unwrap(),
        page_size: Some(2),
        bookmark: String::new(),
    })
    .unwrap()
}

#[test]
fn holder_trail_and_audit() {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000016");
    let other = net.issue_id_card(&Holder::new(2), "000017");
    for _ in 0..3 {
        let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
        net.verify(SC, &g.grant.id(), "SC-0001", &g.code, Default::default())
            .unwrap();
        net.now.set(net.now.get() + 10);
    }
    let g = net.authorized_grant(&Holder::new(2), &other.id, &["name"], 1);
    net.verify(SC, &g.grant.id(), "SC-0001", &g.code, Default::default())
        .unwrap();

    // The holder's own trail, paginated.
    let mut req = trail(&holder, &lic.id, net.now.get());
    let p1: UsagePage = net.ok_as("service-holder", "HolderUsage", Some(req.clone()), &[]);
    assert_eq!(p1.records.len(), 2);
    assert!(!p1.bookmark.is_empty());
    req["bookmark"] = json!(p1.bookmark);
    let p2: UsagePage = net.ok_as("service-holder", "HolderUsage", Some(req), &[]);
    assert_eq!(p2.records.len(), 1);
    assert!(p1
        .records
        .iter()
        .chain(&p2.records)
        .all(|u| u.licence_id == lic.id));
    // Bad signature, stale request.
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "HolderUsage",
            Some(trail(&Holder::new(2), &lic.id, net.now.get())),
            &[]
        )),
        ErrorCode::BadSignature
    );
    let mut tampered = trail(&holder, &lic.id, net.now.get());
    tampered["signed"]["request"]["licence_id"] = json!(other.id);
    assert_eq!(
        code_of(net.call("service-holder", "HolderUsage", Some(tampered), &[])),
        ErrorCode::BadSignature
    );
    assert_eq!(
        code_of(net.call(
            "service-holder",
            "HolderUsage",
            Some(trail(&holder, &lic.id, net.now.get() - 301)),
            &[]
        )),
        ErrorCode::StaleRequest
    );

    // The regulator's auditor sees everything; nobody else may audit.
    let all: UsagePage = net.ok_as(
        "auditor",
        "AuditUsage",
        Some(json!({"page_size": 1000})),
        &[],
    );
    assert_eq!(all.records.len(), 4);
    for who in ["regulator-admin", "service-clerk", "police-issuer"] {
        assert_eq!(
            code_of(net.call(who, "AuditUsage", Some(json!({})), &[])),
            ErrorCode::NotAllowed,
            "{who}"
        );
    }
}

// ---- MVCC ---------------------------------------------------------------------------------

#[test]
fn racing_verifies_both_read_and_write_the_grant_key() {
    // Fabric commits only the first of two transactions that read the same key version and
    // write it. Here both verifies are simulated on the same committed state; each must have the
    // grant key in its write set, and (checked through the public record) each read it: the
    // second one's write was computed from the version the first one replaced.
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "000018");
    let g = net.authorized_grant(&holder, &lic.id, &["name"], 1);
    let gid = g.grant.id();
    let key = elicense_chaincode::keys::grant(gid.as_str()).unwrap();
    let version_before = net.ledger.state(&key).unwrap();

    let p = serde_json::to_vec(&elicense_model::Presentation {
        code: g.code.clone(),
        fields: Default::default(),
    })
    .unwrap();
    let arg = json!({"grant_id": gid, "matter": "SC-0001"});
    let a = net
        .builder(
            SC,
            "Verify",
            Some(&arg),
            &[(elicense_model::TRANSIENT_PRESENTATION, p.clone())],
        )
        .build();
    let b = net
        .builder(
            "service-clerk2",
            "Verify",
            Some(&arg),
            &[(elicense_model::TRANSIENT_PRESENTATION, p)],
        )
        .build();
    use fabric_chaincode::Chaincode;
    let ra = block_on(net.cc.invoke(a.clone()));
    let rb = block_on(net.cc.invoke(b.clone()));
    assert!(
        ra.is_ok() && rb.is_ok(),
        "both simulate successfully on the same state"
    );
    let ta = a.commit().unwrap();
    assert!(ta.writes.iter().any(|w| w.key == key));
    // The committed version changed under b: b read `version_before` (its result says one use
    // was left), so Fabric's MVCC check invalidates b.
    let after = net.ledger.state(&key).unwrap();
    assert_ne!(after, version_before);
    let rb: VerifyResult = serde_json::from_slice(&rb.payload).unwrap();
    assert!(matches!(
        rb.outcome,
        VerifyOutcome::Verified { uses_left: 0, .. }
    ));
    b.rollback();
    assert_eq!(
        code_of(net.verify(SC, &gid, "SC-0001", &g.code, Default::default())),
        ErrorCode::GrantSpent
    );
}
