//! Concurrency of the licence contract, judged by the devnet's validation: the licence chaincode
//! hosted as a CCaaS server, transactions endorsed through the Gateway first and submitted
//! afterwards, so that their simulations overlap exactly as concurrent clients' do.
//!
//! * Two verifies of one single-use grant both simulate successfully, but only one commits: the
//!   other is invalidated with `MVCC_READ_CONFLICT` by every peer, whether both land in one
//!   block or the second lands in a later block.
//! * Many grants on one licence, authorised at once, commit in one block, all valid; so do
//!   verifies of different grants of one licence.
//!
//! The orderer cuts a block at 8 transactions or after 2 s, so transactions submitted together
//! share a block and a lone transaction is not held back long.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use elicense_chaincode::host::{HostOptions, HostedChaincode};
use elicense_model::{
    Catalogue, GrantStatus, IssueRequest, LicenceId, UsageResult, VerifyOutcome, VerifyRequest,
    VerifyResult, TRANSIENT_CODE_SALT, TRANSIENT_PRESENTATION,
};
use elicense_sdk::fabric::gateway::{Status, Transaction};
use elicense_sdk::fabric::profile::ConnectionProfile;
use elicense_sdk::holder::{self, HolderGrant};
use elicense_sdk::{Credential, HolderKeyPair, LicenceClient, NewLicence};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;
use fabric_protos::common::BlockMetadataIndex;
use fabric_protos::protos::TxValidationCode as Code;

const CH: &str = "police-service";
const CATALOGUE: &str = include_str!("../../../fixtures/catalogue.json");
const ISSUER_MSP: &str = "PublicSecurityMSP";
const MATTER: &str = "SC-RACE-0001";
const DAY: i64 = 86_400;
/// Transactions per block; also the number of grants authorised at once.
const BATCH: usize = 8;

/// The licence channel and its three organisations, with the block cutting described above.
const TOPOLOGY: &str = r#"
name = "licence-races"

[orderer]
org = "OrdererOrg"
msp_id = "OrdererMSP"
domain = "orderer.races.test"
consenters = 1

[orderer.batch]
max_message_count = 8
absolute_max_bytes = 10485760
preferred_max_bytes = 2097152
batch_timeout_ms = 2000

[roles]
attribute = "elicense.role"

[[organizations]]
name = "PublicSecurity"
msp_id = "PublicSecurityMSP"
domain = "police.races.test"
peers = 1
users = { issuer1 = "issuer" }

[[organizations]]
name = "ServiceCentre"
msp_id = "ServiceCentreMSP"
domain = "service.races.test"
peers = 1
users = { clerk1 = "clerk", holder1 = "holder" }

[[organizations]]
name = "Regulator"
msp_id = "RegulatorMSP"
domain = "regulator.races.test"
peers = 1
users = { auditor1 = "auditor" }

[[channels]]
name = "police-service"
members = ["PublicSecurity", "ServiceCentre", "Regulator"]

[chaincode]
name = "elicense"
version = "1.0"
endorsement_policy = "ANY_MEMBER_PEER"
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A licence client for `user` of organisation `org`, from the devnet's profile and MSP dir.
fn client(summary: &DevnetSummary, org: &str, user: &str) -> LicenceClient {
    let msp_id = &summary.peers.iter().find(|p| p.org == org).unwrap().msp_id;
    let signing =
        elicense_sdk::fabric::msp::load_signing_identity(msp_id, &summary.msp[org][user]).unwrap();
    let profile = ConnectionProfile::from_file(&summary.profiles[org]).unwrap();
    LicenceClient::connect(&profile, &signing, CH).unwrap()
}

fn id_card(holder: &HolderKeyPair) -> NewLicence {
    let values: BTreeMap<String, String> = [
        ("name", "王五"),
        ("sex", "男"),
        ("ethnicity", "汉"),
        ("birth_date", "1979-03-14"),
        ("address", "北京市海淀区中关村大街27号"),
        ("id_number", "110108197903140031"),
        ("issuing_authority", "北京市公安局海淀分局"),
        ("valid_from", "2019-03-14"),
        ("valid_until", "2039-03-14"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", "710000001").unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder.public_pem(),
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
        },
        values,
    }
}

/// Endorses an `Authorize` of `grant` as the SDK relays it, without submitting it.
async fn endorse_authorize(relay: &LicenceClient, grant: &HolderGrant) -> Transaction {
    relay
        .contract()
        .new_proposal("Authorize")
        .arg(serde_json::to_vec(&grant.signed).unwrap())
        .transient(TRANSIENT_CODE_SALT, grant.code_salt.as_bytes().to_vec())
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap()
}

/// Endorses a `Verify` of `grant` on the issuer's peer as the SDK sends it, without submitting
/// it; the endorsement must already report the verify as successful.
async fn endorse_verify(clerk: &LicenceClient, c: &Credential, grant: &HolderGrant) -> Transaction {
    let presentation = c
        .present(grant.grant(), &grant.code, &["name", "id_number"])
        .unwrap();
    let request = VerifyRequest {
        grant_id: grant.id(),
        matter: MATTER.into(),
    };
    let tx = clerk
        .contract()
        .new_proposal("Verify")
        .arg(serde_json::to_vec(&request).unwrap())
        .transient(
            TRANSIENT_PRESENTATION,
            serde_json::to_vec(&presentation).unwrap(),
        )
        .endorsing_organizations([ISSUER_MSP])
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap();
    let simulated: VerifyResult = serde_json::from_slice(tx.result()).unwrap();
    assert!(
        matches!(
            simulated.outcome,
            VerifyOutcome::Verified { uses_left: 0, .. }
        ),
        "the simulation alone cannot tell the racing verifies apart: {:?}",
        simulated.outcome
    );
    tx
}

/// Submits every transaction back to back, then waits for every commit status.
async fn submit_all(txs: &[Transaction]) -> Vec<Status> {
    let mut commits = Vec::new();
    for tx in txs {
        commits.push(tx.submit().await.unwrap());
    }
    let mut statuses = Vec::new();
    for commit in &commits {
        statuses.push(commit.status().await.unwrap());
    }
    statuses
}

/// The validation code of every transaction of block `number`, as each peer committed it.
async fn committed_codes(devnet: &Devnet, number: u64) -> Vec<BTreeMap<String, Code>> {
    let mut per_peer = Vec::new();
    for peer in devnet.peers() {
        let channel = peer.node.channel(CH).expect("every peer is on the channel");
        let ledger = channel.ledger();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ledger.height() <= number {
            assert!(
                Instant::now() < deadline,
                "{} never committed block {number}",
                peer.host
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let block = ledger.block(number).unwrap().unwrap();
        let filter = &block.metadata.as_ref().unwrap().metadata
            [BlockMetadataIndex::TransactionsFilter as usize];
        let codes = block
            .data
            .as_ref()
            .unwrap()
            .data
            .iter()
            .enumerate()
            .map(|(i, env)| {
                let tx = fabric_common::tx::unpack_envelope_bytes(env).unwrap();
                (
                    tx.channel_header.tx_id,
                    Code::try_from(i32::from(filter[i])).unwrap(),
                )
            })
            .collect();
        per_peer.push(codes);
    }
    per_peer
}

/// Asserts that one of two racing verifies is valid and the other an MVCC read conflict, in the
/// commit statuses and in the blocks of every peer; returns (winner, loser).
async fn one_wins(devnet: &Devnet, a: &Status, b: &Status) -> (Status, Status) {
    let (winner, loser) = match (a.code, b.code) {
        (Code::Valid, Code::MvccReadConflict) => (a.clone(), b.clone()),
        (Code::MvccReadConflict, Code::Valid) => (b.clone(), a.clone()),
        other => panic!("expected exactly one VALID and one MVCC_READ_CONFLICT, got {other:?}"),
    };
    assert!(winner.successful && !loser.successful);
    for status in [&winner, &loser] {
        for codes in committed_codes(devnet, status.block_number).await {
            assert_eq!(
                codes.get(&status.transaction_id),
                Some(&status.code),
                "every peer validated {} as the commit status says",
                status.transaction_id
            );
        }
    }
    (winner, loser)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_verifies_and_concurrent_grants_are_settled_by_validation() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(
        Topology::parse(TOPOLOGY).unwrap(),
        dir.path(),
    ))
    .await
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "elicense".into(),
            address: address.clone(),
            channels: vec![CH.into()],
            policy: Some(
                "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')".into(),
            ),
            ..Default::default()
        })
        .unwrap();
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let cc = HostedChaincode::start(HostOptions::new(&deployed.package_id).port(port))
        .await
        .unwrap();
    let s = devnet.summary();
    let admin = client(&s, "Regulator", "Admin");
    let auditor = client(&s, "Regulator", "auditor1");
    let issuer = client(&s, "PublicSecurity", "issuer1");
    let clerk = client(&s, "ServiceCentre", "clerk1");
    let relay = client(&s, "ServiceCentre", "holder1");

    let seeded = admin
        .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
        .await
        .unwrap();
    // The commit status came from the regulator's peer; the issuer's peer, which endorses the
    // issue, may commit the catalogue's block a moment later.
    issuer.wait_for_block(seeded.block_number).await.unwrap();
    let holder_key = HolderKeyPair::generate();
    let secret = holder::secret(&holder::new_secret()).unwrap();
    let issued = issuer.issue(id_card(&holder_key)).await.unwrap();
    let c = issued.credential;

    // Eight grants on the one licence, endorsed first and submitted together: one block, no
    // conflict, since each grant has its own key and the licence record is only read.
    let grants: Vec<HolderGrant> = (0..BATCH)
        .map(|_| {
            c.grant("ServiceCentreMSP", MATTER)
                .fields(["name", "id_number", "address"])
                .uses(1)
                .sign(&secret, &holder_key)
                .unwrap()
        })
        .collect();
    let mut authorizations = Vec::new();
    for g in &grants {
        authorizations.push(endorse_authorize(&relay, g).await);
    }
    let statuses = submit_all(&authorizations).await;
    let block = statuses[0].block_number;
    assert!(
        statuses
            .iter()
            .all(|st| st.code == Code::Valid && st.block_number == block),
        "every authorisation valid, all in block {block}: {statuses:?}"
    );
    for codes in committed_codes(&devnet, block).await {
        assert_eq!(
            codes.len(),
            BATCH,
            "the block holds exactly the authorisations"
        );
        assert!(codes.values().all(|code| *code == Code::Valid), "{codes:?}");
    }
    issuer.wait_for_block(block).await.unwrap();
    clerk.wait_for_block(block).await.unwrap();

    // Two verifies of one single-use grant, both endorsed before either is submitted, then
    // submitted together: they share a block and the second in it conflicts.
    let g = &grants[0];
    let racing = [
        endorse_verify(&clerk, &c, g).await,
        endorse_verify(&clerk, &c, g).await,
    ];
    let statuses = submit_all(&racing).await;
    assert_eq!(
        statuses[0].block_number, statuses[1].block_number,
        "submitted together, they land in one block"
    );
    let (winner, _) = one_wins(&devnet, &statuses[0], &statuses[1]).await;
    issuer.wait_for_block(winner.block_number).await.unwrap();
    let record = clerk.grant(&g.id()).await.unwrap();
    assert_eq!((record.status, record.uses_left), (GrantStatus::Spent, 0));
    assert_eq!(
        record.last_verified.as_ref().map(|m| m.tx_id.as_str()),
        Some(winner.transaction_id.as_str()),
        "the grant was spent by the valid verify"
    );

    // The same race with the second verify submitted only after the first has committed: its
    // read of the grant is stale, so it conflicts in the later block.
    let g = &grants[1];
    let first = endorse_verify(&clerk, &c, g).await;
    let late = endorse_verify(&clerk, &c, g).await;
    let first = submit_all(std::slice::from_ref(&first)).await.remove(0);
    let late = submit_all(std::slice::from_ref(&late)).await.remove(0);
    assert!(late.block_number > first.block_number, "{first:?} {late:?}");
    let (winner, loser) = one_wins(&devnet, &first, &late).await;
    assert_eq!(
        (winner.transaction_id.as_str(), loser.code),
        (first.transaction_id.as_str(), Code::MvccReadConflict)
    );

    // Verifies of the six other grants of the same licence at once: one block, all valid
    // (each writes its own grant and its own usage record).
    let mut verifies = Vec::new();
    for g in &grants[2..] {
        verifies.push(endorse_verify(&clerk, &c, g).await);
    }
    let statuses = submit_all(&verifies).await;
    let block = statuses[0].block_number;
    assert!(
        statuses
            .iter()
            .all(|st| st.code == Code::Valid && st.block_number == block),
        "verifies of different grants: all valid, all in block {block}: {statuses:?}"
    );

    // The ledger's own account: one use per grant, never two, and the invalidated verifies left
    // no usage record.
    auditor.wait_for_block(block).await.unwrap();
    let usage = auditor
        .audit_usage_all(Some(&c.licence_id), None)
        .await
        .unwrap();
    assert_eq!(usage.len(), BATCH, "{usage:?}");
    assert!(usage.iter().all(|u| u.result == UsageResult::Verified));
    let mut per_grant: BTreeMap<String, usize> = BTreeMap::new();
    for u in &usage {
        *per_grant.entry(u.grant_id.as_str().to_owned()).or_default() += 1;
    }
    assert!(per_grant.values().all(|n| *n == 1), "{per_grant:?}");
    assert!(!usage.iter().any(|u| u.tx_id == loser.transaction_id));

    cc.stop().await.unwrap();
    devnet.down().await;
}
