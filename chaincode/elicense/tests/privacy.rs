//! Property: whatever licences and flows are run, no field value, salt, code or code salt ever
//! appears in a public write (keys, values, key metadata), an event, a submitted transaction's
//! response (which goes into the block) or an error message.

mod common;

use common::*;
use elicense_model::{
    Code, FieldOpening, IssueRequest, LicenceId, LicencePrivate, Nonce, Salt, SignedWithdrawal,
    Withdrawal, TRANSIENT_LICENCE,
};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

/// Secrets to look for, as byte patterns.
#[derive(Default)]
struct Secrets(Vec<Vec<u8>>);

impl Secrets {
    fn value(&mut self, v: &str) {
        self.0.push(v.as_bytes().to_vec());
        // JSON escapes non-ASCII only if asked to; also look for the escaped form.
        let escaped = serde_json::to_string(v).unwrap();
        self.0.push(escaped.trim_matches('"').as_bytes().to_vec());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.push(b.to_vec());
        self.0.push(hex::encode(b).into_bytes());
        self.0.push(hex::encode_upper(b).into_bytes());
    }
    fn salt(&mut self, s: &Salt) {
        self.bytes(s.as_bytes());
    }
    fn code(&mut self, c: &Code) {
        self.0.push(c.as_str().as_bytes().to_vec());
    }
    fn find_in(&self, haystack: &[u8]) -> Option<String> {
        self.0
            .iter()
            .find(|needle| {
                haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
            })
            .map(|n| String::from_utf8_lossy(n).into_owned())
    }
}

#[derive(Debug, Clone)]
enum Step {
    VerifyRight(Vec<usize>),
    VerifyWrongCode,
    VerifyMismatch(usize, String),
    VerifyNotGranted,
    Retrieve,
    Withdraw,
    Suspend,
    Reinstate,
    Tick(i64),
    NewGrant(Vec<usize>, u32),
}

fn value() -> impl Strategy<Value = String> {
    // Long enough that a chance match inside hex or numbers is negligible; CJK, Latin, digits.
    "[\u{4e00}-\u{9fa5}A-Za-z0-9 ·-]{8,24}"
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec(0usize..9, 0..4).prop_map(Step::VerifyRight),
        2 => Just(Step::VerifyWrongCode),
        1 => (0usize..9, value()).prop_map(|(i, v)| Step::VerifyMismatch(i, v)),
        1 => Just(Step::VerifyNotGranted),
        1 => Just(Step::Retrieve),
        1 => Just(Step::Withdraw),
        1 => Just(Step::Suspend),
        1 => Just(Step::Reinstate),
        1 => (1i64..2000).prop_map(Step::Tick),
        2 => (prop::collection::vec(0usize..9, 1..5), 1u32..3).prop_map(|(f, u)| Step::NewGrant(f, u)),
    ]
}

const FIELDS: [&str; 9] = [
    "name",
    "sex",
    "ethnicity",
    "birth_date",
    "address",
    "id_number",
    "issuing_authority",
    "valid_from",
    "valid_until",
];

fn run(values: Vec<String>, salts: Vec<[u8; 32]>, secret: Vec<u8>, steps: Vec<Step>) {
    let net = Net::new();
    let holder = Holder {
        key: fabric_common::crypto::SigningKey::from_scalar_bytes(&[42; 32]).unwrap(),
        secret: elicense_model::HolderSecret::new(secret).unwrap(),
    };
    let mut secrets = Secrets::default();
    let fields: BTreeMap<String, FieldOpening> = FIELDS
        .iter()
        .zip(values.iter().zip(salts.iter()))
        .map(|(n, (v, s))| {
            secrets.value(v);
            let salt = Salt::new(*s);
            secrets.salt(&salt);
            (
                (*n).to_owned(),
                FieldOpening {
                    value: v.clone(),
                    salt,
                },
            )
        })
        .collect();
    let private = LicencePrivate { fields };
    let req = IssueRequest {
        licence_id: LicenceId::build("IDC", "PSB", "770001").unwrap(),
        licence_type: "ID_CARD".into(),
        holder_key: holder.pem(),
        not_before: T0 - DAY,
        not_after: T0 + 30 * DAY,
    };
    net.ok(
        "police-issuer",
        "Issue",
        Some(serde_json::to_value(&req).unwrap()),
        &[(TRANSIENT_LICENCE, serde_json::to_vec(&private).unwrap())],
    );
    let lic = Issued {
        id: req.licence_id.clone(),
        private,
    };
    let mut errors: Vec<String> = Vec::new();
    let mut responses: Vec<Vec<u8>> = Vec::new();

    let mut grant = {
        let (sealed, signed) = net.grant(&holder, &lic.id, &["name", "id_number"], 1);
        secrets.code(&sealed.code);
        secrets.bytes(sealed.code_salt.as_bytes());
        let r = net.authorize(&signed, &sealed.code_salt);
        responses.push(serde_json::to_vec(&r.unwrap()).unwrap());
        sealed
    };
    fn record(responses: &mut Vec<Vec<u8>>, errors: &mut Vec<String>, r: Outcome) {
        match r {
            Ok(v) => responses.push(serde_json::to_vec(&v).unwrap()),
            Err(e) => errors.push(e.encode()),
        }
    }

    for s in steps {
        let gid = grant.grant.id();
        match s {
            Step::VerifyRight(idx) => {
                let names: Vec<&str> = idx
                    .iter()
                    .map(|i| FIELDS[*i])
                    .filter(|n| grant.grant.allows_field(n))
                    .collect();
                record(
                    &mut responses,
                    &mut errors,
                    net.verify(
                        "service-clerk",
                        &gid,
                        "SC-0001",
                        &grant.code,
                        lic.present(&names),
                    ),
                );
            }
            Step::VerifyWrongCode => {
                let n: u32 = grant.code.as_str().parse().unwrap();
                let wrong = Code::parse(&format!("{:08}", (n + 7) % 100_000_000)).unwrap();
                secrets.code(&wrong);
                record(
                    &mut responses,
                    &mut errors,
                    net.verify(
                        "service-clerk",
                        &gid,
                        "SC-0001",
                        &wrong,
                        lic.present(&["name"]),
                    ),
                );
            }
            Step::VerifyMismatch(i, v) => {
                secrets.value(&v);
                let name = grant.grant.fields[i % grant.grant.fields.len()].clone();
                let mut p = lic.present(&[name.as_str()]);
                p.get_mut(&name).unwrap().value = v;
                record(
                    &mut responses,
                    &mut errors,
                    net.verify("service-clerk", &gid, "SC-0001", &grant.code, p),
                );
            }
            Step::VerifyNotGranted => {
                let extra = FIELDS
                    .iter()
                    .find(|f| !grant.grant.allows_field(f))
                    .unwrap();
                record(
                    &mut responses,
                    &mut errors,
                    net.verify(
                        "service-clerk",
                        &gid,
                        "SC-0001",
                        &grant.code,
                        lic.present(&[extra]),
                    ),
                );
            }
            Step::Retrieve => {
                // Retrieve is an evaluate: its response never enters a block, only its errors
                // are checked.
                if let Err(e) = net.call(
                    "service-clerk",
                    "Retrieve",
                    Some(json!({"grant_id": gid})),
                    &[],
                ) {
                    errors.push(e.encode());
                }
            }
            Step::Withdraw => {
                let w = Withdrawal {
                    channel: CHANNEL.into(),
                    grant_id: gid,
                    requested_at: net.now.get(),
                    nonce: Nonce::new(vec![5; 16]).unwrap(),
                };
                let sw = SignedWithdrawal::sign(w, &holder.key).unwrap();
                record(
                    &mut responses,
                    &mut errors,
                    net.call(
                        "service-holder",
                        "Withdraw",
                        Some(serde_json::to_value(sw).unwrap()),
                        &[],
                    ),
                );
            }
            Step::Suspend => record(
                &mut responses,
                &mut errors,
                net.call(
                    "police-issuer",
                    "Suspend",
                    Some(json!({"licence_id": lic.id, "reason": "check"})),
                    &[],
                ),
            ),
            Step::Reinstate => record(
                &mut responses,
                &mut errors,
                net.call(
                    "police-issuer",
                    "Reinstate",
                    Some(json!({"licence_id": lic.id, "reason": "ok"})),
                    &[],
                ),
            ),
            Step::Tick(s) => net.now.set(net.now.get() + s),
            Step::NewGrant(idx, uses) => {
                let names: Vec<&str> = idx.iter().map(|i| FIELDS[*i]).collect();
                let (sealed, signed) = net.grant(&holder, &lic.id, &names, uses);
                secrets.code(&sealed.code);
                secrets.bytes(sealed.code_salt.as_bytes());
                match net.authorize(&signed, &sealed.code_salt) {
                    Ok(v) => {
                        responses.push(serde_json::to_vec(&v).unwrap());
                        grant = sealed;
                    }
                    Err(e) => errors.push(e.encode()),
                }
            }
        }
    }

    for tx in net.ledger.transactions() {
        for w in &tx.writes {
            assert_eq!(
                secrets.find_in(w.key.as_bytes()),
                None,
                "secret in key {}",
                w.key
            );
            if let Some(v) = &w.value {
                if let Some(s) = secrets.find_in(v) {
                    panic!("secret {s:?} in public value of {}", w.key);
                }
            }
        }
        for m in &tx.metadata_writes {
            assert_eq!(
                secrets.find_in(&m.value),
                None,
                "secret in metadata of {}",
                m.key
            );
        }
        for p in &tx.private_writes {
            // Private keys are hashed into the block: they must not carry secrets either.
            assert_eq!(
                secrets.find_in(p.key.as_bytes()),
                None,
                "secret in private key {}",
                p.key
            );
        }
        if let Some(e) = &tx.event {
            assert_eq!(secrets.find_in(e.event_name.as_bytes()), None);
            if let Some(s) = secrets.find_in(&e.payload) {
                panic!("secret {s:?} in event {}", e.event_name);
            }
        }
    }
    for r in &responses {
        if let Some(s) = secrets.find_in(r) {
            panic!("secret {s:?} in a submitted response");
        }
    }
    for e in &errors {
        if let Some(s) = secrets.find_in(e.as_bytes()) {
            panic!("secret {s:?} in error {e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    #[test]
    fn no_secret_reaches_public_state_events_or_errors(
        values in prop::collection::vec(value(), 9),
        salts in prop::collection::vec(any::<[u8; 32]>(), 9),
        secret in prop::collection::vec(any::<u8>(), 16..40),
        steps in prop::collection::vec(step(), 1..14),
    ) {
        run(values, salts, secret, steps);
    }
}
