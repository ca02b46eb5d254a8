//! The licence story on real Hyperledger Fabric: a reduced network from `network/fabric/network.sh`
//! (PublicSecurity, ServiceCentre and the Regulator on `police-service`, three Raft orderers,
//! Fabric CAs), our `elicense-chaincode` binary deployed as chaincode-as-a-service with mutual
//! TLS between peers and chaincode servers, and every step submitted through the real peers'
//! Gateway with the Rust client (`fabric-client`), identities from the Fabric CA enrolments
//! (roles in the `elicense.role` attribute):
//!
//! seed the catalogue (regulator admin) → issue with the values in transient data (issuer) →
//! holder-signed authorise → clerk verify succeeds → the second verify is refused → a wrong code
//! is recorded and refused → a withdrawn grant is refused → retrieve on the issuer's peer (not on
//! the clerk's own) → the holder's usage trail → revoke →
//! the chaincode events → every block of the channel read back through Deliver holds no field
//! value, salt or code.
//!
//! Needs Fabric's binaries (`FABRIC_BIN` or `../shared/fabric`); skips without them, fails in CI.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use elicense_model::{
    events, Code, ContractError, ErrorCode, FieldOpening, GrantDraft, HolderKey, HolderSecret,
    HolderUsageRequest, IssueRequest, LicenceId, LicencePrivate, LicenceQuery, LicenceRecord,
    LicenceStatus, Nonce, Presentation, RetrieveResult, Salt, SealedGrant, SignedGrant,
    SignedTrailRequest, SignedWithdrawal, StatusRequest, TrailRequest, UsagePage, UsageResult,
    VerifyOutcome, VerifyRequest, VerifyResult, Withdrawal, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE,
    TRANSIENT_PRESENTATION,
};
use elicense_tests::fabric_net::FabricNetwork;
use elicense_tests::repo_root;
use fabric_client::gateway::{BlockEventsKind, DeliverEvent, EventsOptions};
use fabric_client::{Gateway, GatewayError};
use fabric_common::crypto::SigningKey;
use fabric_protos::protos::TxValidationCode;
use prost::Message;
use sha2::{Digest, Sha256};

const CHANNEL: &str = "police-service";
const CHAINCODE: &str = "elicense";
const MATTER: &str = "SC-0001";
const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "unexpected result ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// The contract error carried by a failed endorsement or evaluation.
fn contract_error(e: &GatewayError) -> ContractError {
    let texts = std::iter::once(e.to_string()).chain(e.details().iter().map(|d| d.message.clone()));
    texts
        .filter_map(|t| ContractError::decode(&t))
        .next()
        .unwrap_or_else(|| panic!("no contract error in: {e} {:?}", e.details()))
}

/// Submits a verify the contract must refuse, and returns the refusal.
///
/// The verify is endorsed by the issuer's peer, while the previous step's commit status came from
/// the client's own peer; until the issuer's peer has committed that block too, it endorses against
/// the earlier state and the transaction fails MVCC validation, changing nothing. Such an attempt
/// is repeated. What is asserted is that the grant is never verified and that, once the peer has
/// the block, the contract refuses.
async fn refused_verify<F, Fut>(what: &str, mut attempt: F) -> GatewayError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, GatewayError>>,
{
    for _ in 0..50 {
        match attempt().await {
            Ok(bytes) => panic!("{what}: verified: {}", String::from_utf8_lossy(&bytes)),
            Err(GatewayError::Commit(c)) if c.code == TxValidationCode::MvccReadConflict => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return e,
        }
    }
    panic!("{what}: the issuer's peer never caught up")
}

/// Everything secret in the story: each must never reach a block.
struct Secrets(Vec<(String, Vec<u8>)>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((what.into(), bytes.into()));
    }
}

/// The holder's credential: field values, one fresh salt per field (≥128 bits).
fn id_card(tag: &str, serial: &str) -> LicencePrivate {
    let values = [
        ("name", format!("张三丰-{tag}")),
        ("sex", format!("男性-{tag}")),
        ("ethnicity", format!("汉族-{tag}")),
        ("birth_date", format!("1990-03-07/{tag}")),
        ("address", format!("北京市东城区景山前街{serial}号-{tag}")),
        ("id_number", format!("110101199003{serial}")),
        ("issuing_authority", format!("北京市公安局东城分局-{tag}")),
        ("valid_from", format!("2020-01-01/{tag}")),
        ("valid_until", format!("2040-01-01/{tag}")),
    ];
    let fields = values
        .into_iter()
        .map(|(name, value)| {
            let salt = Salt::new(Sha256::digest(format!("salt/{tag}/{name}")).into());
            (name.to_owned(), FieldOpening { salt, value })
        })
        .collect();
    LicencePrivate { fields }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn licence_story_on_real_fabric() {
    let started = Instant::now();
    let Some(net) = FabricNetwork::up_with_elicense(CHANNEL, "licence") else {
        return;
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(story(&net));
    drop(net);
    eprintln!("whole test {:.1?}", started.elapsed());
}

async fn story(net: &FabricNetwork) {
    let regulator = net.gateway("Regulator", "Admin");
    let issuer = net.gateway("PublicSecurity", "issuer1");
    let holder_app = net.gateway("ServiceCentre", "holder1");
    let clerk = net.gateway("ServiceCentre", "clerk1");
    let contract = |g: &Gateway| g.network(CHANNEL).contract(CHAINCODE);
    let t0 = Instant::now();
    let mut secrets = Secrets(Vec::new());

    // ---- the regulator's admin seeds the catalogue
    let catalogue = std::fs::read(repo_root().join("fixtures/catalogue.json")).expect("catalogue");
    contract(&regulator)
        .new_proposal("InitCatalogue")
        .arg(catalogue)
        .submit()
        .await
        .expect("InitCatalogue by the regulator's admin");

    // ---- the police issue an ID card; values and salts only as transient data
    // Every value carries this run's tag, so a hit in a block cannot be a coincidence.
    let tag = format!(
        "{:010x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
            % (1 << 40)
    );
    let serial = format!("{:06}", now() % 1_000_000);
    let holder_key = SigningKey::generate();
    let holder_secret =
        HolderSecret::new(Sha256::digest(format!("secret/{tag}")).to_vec()).expect("holder secret");
    let private = id_card(&tag, &serial);
    for (name, opening) in &private.fields {
        secrets.add(format!("value of {name}"), opening.value.as_bytes());
        secrets.add(format!("salt of {name}"), opening.salt.as_bytes().to_vec());
        secrets.add(format!("salt of {name} (hex)"), opening.salt.to_hex());
    }
    let licence_id = LicenceId::build("IDC", "PSB", &serial).expect("licence id");
    let t = now();
    let request = IssueRequest {
        licence_id: licence_id.clone(),
        licence_type: "ID_CARD".into(),
        holder_key: HolderKey::from_public_key(holder_key.public_key().clone()).to_pem(),
        not_before: t - DAY,
        not_after: t + 365 * DAY,
    };
    contract(&issuer)
        .new_proposal("Issue")
        .arg(json(&request))
        .transient(TRANSIENT_LICENCE, json(&private))
        .submit()
        .await
        .expect("Issue by the police issuer");
    let record: LicenceRecord = parse(
        &contract(&clerk)
            .new_proposal("ReadLicence")
            .arg(json(&LicenceQuery {
                licence_id: licence_id.clone(),
            }))
            .evaluate()
            .await
            .expect("ReadLicence"),
    );
    assert_eq!(record.issuer_msp, "PublicSecurityMSP");
    assert_eq!(record.status, LicenceStatus::Active);
    assert_eq!(record.commitments.len(), private.fields.len());
    // Only a police issuer may issue police licences.
    let mut other = request.clone();
    other.licence_id = LicenceId::build("IDC", "PSB", &format!("{serial}9")).expect("id");
    let refused = contract(&clerk)
        .new_proposal("Issue")
        .arg(json(&other))
        .transient(TRANSIENT_LICENCE, json(&private))
        .submit()
        .await
        .expect_err("a clerk cannot issue");
    assert_eq!(contract_error(&refused).code, ErrorCode::NotAllowed);

    // ---- the holder authorises the service centre once, for one matter
    let grant = |fields: &[&str], n: u8| -> (SealedGrant, SignedGrant) {
        let t = now();
        let draft = GrantDraft {
            channel: CHANNEL.into(),
            licence_id: licence_id.clone(),
            grantee_msp: "ServiceCentreMSP".into(),
            matter: MATTER.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            not_before: t - 60,
            not_after: t + DAY,
            uses: 1,
            nonce: Nonce::new(Sha256::digest(format!("nonce/{tag}/{n}"))[..16].to_vec())
                .expect("nonce"),
        };
        let sealed = draft.seal(&holder_secret).expect("seal");
        let signed = SignedGrant::sign(sealed.grant.clone(), &holder_key).expect("sign");
        (sealed, signed)
    };
    let authorize = |sealed: SealedGrant, signed: SignedGrant| {
        let c = contract(&holder_app);
        async move {
            c.new_proposal("Authorize")
                .arg(json(&signed))
                .transient(TRANSIENT_CODE_SALT, sealed.code_salt.as_bytes().to_vec())
                .submit()
                .await
                .expect("Authorize");
            sealed
        }
    };
    let (sealed, signed) = grant(&["name", "address"], 1);
    let g1 = authorize(sealed, signed).await;
    let (sealed, signed) = grant(&["name"], 2);
    let g2 = authorize(sealed, signed).await;
    let (sealed, signed) = grant(&["name"], 3);
    let g3 = authorize(sealed, signed).await;
    for g in [&g1, &g2, &g3] {
        secrets.add("code", g.code.as_str().as_bytes());
        secrets.add("code salt", g.code_salt.as_bytes().to_vec());
    }

    // ---- the clerk verifies at the window: code and the presented name. The code salt lives
    // in the issuer's collection, so the issuer's peer endorses (the grant's key-level policy
    // names the issuer as well).
    let verify = |grant_id, code: &Code, fields: &[&str]| {
        let presentation = Presentation {
            code: code.clone(),
            fields: fields
                .iter()
                .map(|f| ((*f).to_owned(), private.fields[*f].clone()))
                .collect::<BTreeMap<_, _>>(),
        };
        contract(&clerk)
            .new_proposal("Verify")
            .arg(json(&VerifyRequest {
                grant_id,
                matter: MATTER.into(),
            }))
            .transient(TRANSIENT_PRESENTATION, json(&presentation))
            .endorsing_organizations(["PublicSecurityMSP"])
            .submit()
    };
    let g1_id = g1.grant.id();
    let result: VerifyResult = parse(
        &verify(g1_id.clone(), &g1.code, &["name"])
            .await
            .expect("Verify by the service centre's clerk"),
    );
    let VerifyOutcome::Verified {
        matched,
        not_presented,
        uses_left,
        ..
    } = result.outcome
    else {
        panic!("expected Verified, got {:?}", result.outcome);
    };
    assert_eq!(matched, ["name"]);
    assert_eq!(not_presented, ["address"]);
    assert_eq!(uses_left, 0);

    // ---- the same grant again: its only use is spent
    let again = refused_verify("a second verify", || {
        verify(g1_id.clone(), &g1.code, &["name"])
    })
    .await;
    assert_eq!(contract_error(&again).code, ErrorCode::GrantSpent);

    // ---- a wrong code on the other grant: recorded, not verified
    let wrong = Code::parse(if g2.code.as_str() == "00000000" {
        "11111111"
    } else {
        "00000000"
    })
    .expect("code");
    let result: VerifyResult = parse(
        &verify(g2.grant.id(), &wrong, &["name"])
            .await
            .expect("a wrong code commits its attempt"),
    );
    assert!(
        matches!(
            result.outcome,
            VerifyOutcome::WrongCode { attempts_left: 4 }
        ),
        "{:?}",
        result.outcome
    );

    // ---- the holder withdraws the third grant before it is used: verify refuses it. The grant's
    // key-level policy names the issuer, whose peer therefore endorses.
    let withdrawal = Withdrawal {
        channel: CHANNEL.into(),
        grant_id: g3.grant.id(),
        requested_at: now(),
        nonce: Nonce::new(Sha256::digest(format!("withdraw/{tag}"))[..16].to_vec()).expect("nonce"),
    };
    contract(&holder_app)
        .new_proposal("Withdraw")
        .arg(json(
            &SignedWithdrawal::sign(withdrawal, &holder_key).expect("sign withdrawal"),
        ))
        .endorsing_organizations(["PublicSecurityMSP"])
        .submit()
        .await
        .expect("Withdraw");
    let withdrawn = refused_verify("a withdrawn grant", || {
        verify(g3.grant.id(), &g3.code, &["name"])
    })
    .await;
    assert_eq!(contract_error(&withdrawn).code, ErrorCode::GrantWithdrawn);

    // ---- retrieve the granted values from the issuer's collection, on the issuer's peer
    let fetched: RetrieveResult = parse(
        &contract(&clerk)
            .new_proposal("Retrieve")
            .arg(json(&serde_json::json!({ "grant_id": g1_id })))
            .endorsing_organizations(["PublicSecurityMSP"])
            .evaluate()
            .await
            .expect("Retrieve on the police peer"),
    );
    assert_eq!(fetched.fields.len(), 2);
    assert_eq!(fetched.fields["name"], private.fields["name"].value);
    assert_eq!(fetched.fields["address"], private.fields["address"].value);
    // The clerk's own peer has only the hashes: it cannot serve the values.
    let elsewhere = contract(&clerk)
        .new_proposal("Retrieve")
        .arg(json(&serde_json::json!({ "grant_id": g1_id })))
        .endorsing_organizations(["ServiceCentreMSP"])
        .evaluate()
        .await;
    let elsewhere = elsewhere.expect_err("values served by a peer outside the issuer's org");
    let e = contract_error(&elsewhere);
    assert_eq!(e.code, ErrorCode::PrivateDataUnavailable, "{e}");
    assert!(e.message.contains("PublicSecurityMSP"), "{e}");

    // ---- the holder's usage trail (holder-signed request)
    let trail = TrailRequest {
        channel: CHANNEL.into(),
        licence_id: licence_id.clone(),
        requested_at: now(),
        nonce: Nonce::new(Sha256::digest(format!("trail/{tag}"))[..16].to_vec()).expect("nonce"),
    };
    let page: UsagePage = parse(
        &contract(&holder_app)
            .new_proposal("HolderUsage")
            .arg(json(&HolderUsageRequest {
                signed: SignedTrailRequest::sign(trail, &holder_key).expect("sign trail"),
                page_size: Some(10),
                bookmark: String::new(),
            }))
            .evaluate()
            .await
            .expect("HolderUsage"),
    );
    // the trail is in time order; the two uses may fall in the same second, where the order
    // is the ledger key order, so compare them as a set
    let mut trail: Vec<(String, UsageResult)> = page
        .records
        .iter()
        .map(|r| {
            assert_eq!(r.licence_id, licence_id);
            assert_eq!(r.grantee_msp, "ServiceCentreMSP");
            (r.grant_id.as_str().to_owned(), r.result)
        })
        .collect();
    trail.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (g1_id.as_str().to_owned(), UsageResult::Verified),
        (g2.grant.id().as_str().to_owned(), UsageResult::WrongCode),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(trail, expected, "{page:?}");
    assert!(
        page.records.windows(2).all(|w| w[0].at <= w[1].at),
        "time order: {page:?}"
    );

    // ---- the issuer revokes; the record says so
    let (_, commit) = contract(&issuer)
        .new_proposal("Revoke")
        .arg(json(&StatusRequest {
            licence_id: licence_id.clone(),
            reason: "reported stolen".into(),
        }))
        .submit_async()
        .await
        .expect("Revoke by the issuer");
    let status = commit.status().await.expect("commit status");
    assert!(status.successful, "{status:?}");
    let last_block = status.block_number;
    let record: LicenceRecord = parse(
        &contract(&regulator)
            .new_proposal("ReadLicence")
            .arg(json(&LicenceQuery {
                licence_id: licence_id.clone(),
            }))
            .evaluate()
            .await
            .expect("ReadLicence"),
    );
    assert_eq!(record.status, LicenceStatus::Revoked);
    let story_time = t0.elapsed();

    // ---- one event per state change, from the real peer's event service
    let mut stream = regulator
        .network(CHANNEL)
        .chaincode_events(CHAINCODE, &EventsOptions::start_block(0))
        .await
        .expect("chaincode events");
    let mut names = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("events keep coming")
            .expect("stream open")
            .expect("event");
        for (what, secret) in &secrets.0 {
            assert!(
                !contains(&ev.payload, secret),
                "{what} in event {}",
                ev.event_name
            );
        }
        names.push(ev.event_name.clone());
        if ev.event_name == events::LICENCE_REVOKED {
            break;
        }
    }
    let want = [
        events::LICENCE_ISSUED,
        events::GRANT_AUTHORIZED,
        events::GRANT_AUTHORIZED,
        events::GRANT_AUTHORIZED,
        events::GRANT_VERIFIED,
        events::GRANT_CODE_REJECTED,
        events::GRANT_WITHDRAWN,
        events::LICENCE_REVOKED,
    ];
    let story_events: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| want.contains(n))
        .collect();
    assert_eq!(story_events, want, "all events: {names:?}");

    // ---- every block of the channel, read back through Deliver: no value, salt or code
    let mut blocks = regulator
        .network(CHANNEL)
        .block_events(BlockEventsKind::Full, &EventsOptions::start_block(0))
        .await
        .expect("deliver");
    let mut scanned = 0u64;
    let mut bytes = 0usize;
    // What the ledger must hold, as a check that the scan sees the public writes at all.
    let public: Vec<(&str, Vec<u8>)> = vec![
        ("licence id", licence_id.to_string().into_bytes()),
        (
            "commitment of name",
            record.commitments["name"].to_hex().into_bytes(),
        ),
        ("grant id", g1_id.as_str().as_bytes().to_vec()),
    ];
    let mut public_seen = vec![false; public.len()];
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), blocks.next())
            .await
            .expect("blocks keep coming")
            .expect("stream open")
            .expect("block");
        let DeliverEvent::Block(block) = &event else {
            panic!("full blocks asked for");
        };
        let raw = block.encode_to_vec();
        bytes += raw.len();
        for (what, secret) in &secrets.0 {
            assert!(
                !contains(&raw, secret),
                "{what} found in block {}",
                event.block_number()
            );
        }
        for (seen, (_, value)) in public_seen.iter_mut().zip(&public) {
            *seen |= contains(&raw, value);
        }
        scanned += 1;
        if event.block_number() >= last_block {
            break;
        }
    }
    assert_eq!(scanned, last_block + 1);
    for (seen, (what, _)) in public_seen.iter().zip(&public) {
        assert!(
            seen,
            "the {what} (public) is not in any block: the scan missed the writes"
        );
    }
    eprintln!(
        "licence story through the Gateway {story_time:.1?}; {scanned} blocks ({bytes} bytes) \
         scanned for {} secrets: none found",
        secrets.0.len()
    );
}
