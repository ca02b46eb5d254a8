//! End to end on the embedded devnet: the licence chaincode hosted in this process as a CCaaS
//! server, deployed on `police-service`, and every `LicenceClient` call driven over TLS with the
//! identities (MSP directories) and connection profiles the devnet writes.

use std::collections::BTreeMap;

use elicense_chaincode::host::{HostOptions, HostedChaincode};
use elicense_model::{
    AuditUsageRequest, Catalogue, Code, GrantStatus, IssueRequest, LicenceId, LicenceStatus,
    Presentation, UsageResult,
};
use elicense_sdk::fabric::gateway::EventsOptions;
use elicense_sdk::fabric::profile::ConnectionProfile;
use elicense_sdk::holder::{self, HolderGrant};
use elicense_sdk::{BulkOptions, Credential, Failure, HolderKeyPair, LicenceClient, NewLicence};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;

const CH: &str = "police-service";
const CATALOGUE: &str = include_str!("../../../fixtures/catalogue.json");
const DAY: i64 = 86_400;

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

fn id_card(serial: &str, holder: &HolderKeyPair) -> NewLicence {
    let values: BTreeMap<String, String> = [
        ("name", format!("李四{serial}")),
        ("sex", "女".to_owned()),
        ("ethnicity", "汉".to_owned()),
        ("birth_date", "1988-11-02".to_owned()),
        ("address", format!("四川省成都市武侯区{serial}号")),
        (
            "id_number",
            format!("51010719881102{:0>4}", &serial[serial.len() - 4..]),
        ),
        ("issuing_authority", "成都市公安局武侯分局".to_owned()),
        ("valid_from", "2018-05-01".to_owned()),
        ("valid_until", "2038-05-01".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    NewLicence {
        request: IssueRequest {
            licence_id: LicenceId::build("IDC", "PSB", serial).unwrap(),
            licence_type: "ID_CARD".into(),
            holder_key: holder.public_pem(),
            not_before: now() - DAY,
            not_after: now() + 365 * DAY,
        },
        values,
    }
}

fn wrong(code: &Code) -> Code {
    let n: u32 = code.as_str().parse().unwrap();
    Code::parse(&format!("{:08}", (n + 1) % 100_000_000)).unwrap()
}

struct Holder {
    key: HolderKeyPair,
    secret: elicense_model::HolderSecret,
}

impl Holder {
    fn new() -> Self {
        Holder {
            key: HolderKeyPair::generate(),
            secret: holder::secret(&holder::new_secret()).unwrap(),
        }
    }

    fn grant(&self, c: &Credential, fields: &[&str], uses: u32) -> HolderGrant {
        c.grant("ServiceCentreMSP", "SC-0001")
            .fields(fields.iter().copied())
            .uses(uses)
            .sign(&self.secret, &self.key)
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_licence_call_on_the_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "elicense".into(),
            address: address.clone(),
            channels: vec![CH.into()],
            // The deployment guide's policy: any member's peer; the contract's key-level
            // policies require the issuer's peer where it matters.
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
    let issuer = client(&s, "PublicSecurity", "issuer1");
    let clerk = client(&s, "ServiceCentre", "clerk1");
    let relay = client(&s, "ServiceCentre", "holder1");
    let auditor = client(&s, "Regulator", "auditor1");

    // Catalogue.
    if admin.catalogue().await.unwrap().is_empty() {
        let seeded = admin
            .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
            .await
            .unwrap();
        assert!(seeded.block_number > 0);
        // The regulator's peer reported the commit; the others may commit the block a moment
        // later.
        clerk.wait_for_block(seeded.block_number).await.unwrap();
        issuer.wait_for_block(seeded.block_number).await.unwrap();
    }
    assert_eq!(
        clerk.licence_type("ID_CARD").await.unwrap().issuers[0].msp_id,
        "PublicSecurityMSP"
    );
    let e = clerk
        .put_licence_type(&Catalogue::from_json(CATALOGUE).unwrap().types[0])
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotAllowed);

    // Issue; the credential opens the committed record; values never reach public state.
    let h = Holder::new();
    let issued = issuer.issue(id_card("700000001", &h.key)).await.unwrap();
    // The service centre's peer reads state the police peer committed: wait for that block.
    clerk.wait_for_block(issued.block_number).await.unwrap();
    let record = clerk.licence(&issued.record.id).await.unwrap();
    issued.credential.check(&record).unwrap();
    assert!(!serde_json::to_string(&record)
        .unwrap()
        .contains(issued.credential.value("name").unwrap()));
    let c = issued.credential;

    // Grant, authorise from the holder's side, verify at the window, retrieve.
    let g = h.grant(&c, &["name", "id_number", "address"], 1);
    let authorised = relay.authorize(&g).await.unwrap();
    assert_eq!(authorised.value.status, GrantStatus::Active);
    // The verify is endorsed by the issuer's peer.
    issuer
        .wait_for_block(authorised.block_number)
        .await
        .unwrap();
    let p = c
        .present(g.grant(), &g.code, &["name", "id_number"])
        .unwrap();
    let v = clerk.verify(&g.id(), "SC-0001", &p).await.unwrap();
    assert_eq!(v.matched, ["id_number", "name"]);
    assert_eq!(v.not_presented, ["address"]);
    // Answered by the issuer's peer once it has the verify's block.
    let values = clerk.retrieve_verified(&v).await.unwrap();
    assert_eq!(values.fields["address"], c.value("address").unwrap());
    let e = clerk.verify(&g.id(), "SC-0001", &p).await.unwrap_err();
    assert_eq!(e.failure(), Failure::GrantSpent);

    // Wrong codes commit and count, then lock.
    let g2 = h.grant(&c, &["name"], 1);
    let b = relay.authorize(&g2).await.unwrap().block_number;
    issuer.wait_for_block(b).await.unwrap();
    let bad = c.present(g2.grant(), &wrong(&g2.code), &["name"]).unwrap();
    let e = clerk.verify(&g2.id(), "SC-0001", &bad).await.unwrap_err();
    assert_eq!(e.failure(), Failure::WrongCode);
    assert!(e.transaction_id().is_some());

    // Field mismatch, wrong matter, another department's clerk.
    let g3 = h.grant(&c, &["sex"], 2);
    let b = relay.authorize(&g3).await.unwrap().block_number;
    issuer.wait_for_block(b).await.unwrap();
    let mut forged = c.present(g3.grant(), &g3.code, &["sex"]).unwrap();
    forged.fields.get_mut("sex").unwrap().value = "男".into();
    let e = clerk
        .verify(&g3.id(), "SC-0001", &forged)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::FieldMismatch);
    assert_eq!(e.fields(), ["sex"]);
    let code_only = Presentation {
        code: g3.code.clone(),
        fields: BTreeMap::new(),
    };
    let e = clerk
        .verify(&g3.id(), "SC-9", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::WrongMatter);
    let e = client(&s, "PublicSecurity", "clerk1")
        .verify(&g3.id(), "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::NotAllowed);

    // Status changes by the issuer; a suspended licence cannot be used.
    let suspended = issuer
        .suspend(&c.licence_id, "reported lost")
        .await
        .unwrap();
    assert_eq!(suspended.value.status, LicenceStatus::Suspended);
    let e = clerk
        .verify(&g3.id(), "SC-0001", &code_only)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::LicenceSuspended);
    issuer.reinstate(&c.licence_id, "found").await.unwrap();
    clerk.verify(&g3.id(), "SC-0001", &code_only).await.unwrap();

    // Withdrawal relayed for the holder.
    let g4 = h.grant(&c, &["name"], 1);
    let b = relay.authorize(&g4).await.unwrap().block_number;
    issuer.wait_for_block(b).await.unwrap();
    let w = holder::withdrawal(CH, g4.id(), &h.key).unwrap();
    let withdrawn = relay.withdraw(&w).await.unwrap();
    assert_eq!(withdrawn.value.status, GrantStatus::Withdrawn);
    issuer.wait_for_block(withdrawn.block_number).await.unwrap();
    let p4 = c.present(g4.grant(), &g4.code, &["name"]).unwrap();
    let e = clerk.verify(&g4.id(), "SC-0001", &p4).await.unwrap_err();
    assert_eq!(e.failure(), Failure::GrantWithdrawn);

    let revoked = issuer.revoke(&c.licence_id, "superseded").await.unwrap();
    let e = issuer.reinstate(&c.licence_id, "no").await.unwrap_err();
    assert_eq!(e.failure(), Failure::InvalidTransition);

    // History, usage trail (holder-signed), audit (regulator), each on its own peer.
    clerk.wait_for_block(revoked.block_number).await.unwrap();
    auditor.wait_for_block(revoked.block_number).await.unwrap();
    let history = clerk.history(&c.licence_id).await.unwrap();
    assert_eq!(history.len(), 4, "issue, suspend, reinstate, revoke");
    let trail = holder::trail_request(CH, c.licence_id.clone(), &h.key).unwrap();
    let page = relay.holder_usage(&trail, None, "").await.unwrap();
    let results: Vec<UsageResult> = page.records.iter().map(|r| r.result).collect();
    // Records are keyed by transaction second, then transaction id: compare as a multiset.
    let count = |r: UsageResult| results.iter().filter(|x| **x == r).count();
    assert_eq!(results.len(), 3);
    assert_eq!(count(UsageResult::Verified), 2);
    assert_eq!(count(UsageResult::WrongCode), 1);
    let audit = auditor
        .audit_usage(&AuditUsageRequest {
            licence_id: Some(c.licence_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.records.len(), 3);

    // Events: every state change, identifiers only.
    let mut events = clerk
        .events(&EventsOptions::start_block(issued.block_number))
        .await
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.name, "LicenceIssued");
    assert_eq!(first.transaction_id, issued.transaction_id);
    let second = events.next().await.unwrap().unwrap();
    assert_eq!(second.name, "GrantAuthorized");
    drop(events);

    // Bulk issuance, pipelined.
    let holders: Vec<HolderKeyPair> = (0..24).map(|_| HolderKeyPair::generate()).collect();
    let batch = holders
        .iter()
        .enumerate()
        .map(|(i, k)| id_card(&format!("80000{i:04}"), k))
        .collect();
    let started = std::time::Instant::now();
    let items = issuer
        .issue_bulk(
            batch,
            &BulkOptions {
                concurrency: 8,
                ..Default::default()
            },
        )
        .await;
    println!(
        "bulk issuance: {} licences in {:?} on the devnet",
        items.len(),
        started.elapsed()
    );
    assert!(items.iter().all(|i| i.outcome.is_ok()), "{items:?}");

    cc.stop().await.unwrap();
    devnet.down().await;
}

/// Runs an example binary of this crate with `envs` in `dir`; returns (success, stdout, stderr).
fn run_example(
    name: &str,
    args: &[&str],
    envs: &[(&str, String)],
    dir: &std::path::Path,
) -> (bool, String, String) {
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let out = std::process::Command::new(examples.join(name))
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn block_in(text: &str) -> u64 {
    let at = text.find("block ").expect("a block number in the output") + 6;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_issue_grant_and_verify_on_the_devnet() {
    // The example binaries, built as `cargo build --examples` builds them.
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "elicense-sdk", "--examples"])
        .status()
        .unwrap();
    assert!(built.success());

    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(
        Topology::default_topology(),
        dir.path().join("devnet"),
    ))
    .await
    .unwrap();
    let port = free_port();
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: "elicense".into(),
            address: format!("127.0.0.1:{port}"),
            channels: vec![CH.into()],
            policy: Some(
                "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')".into(),
            ),
            ..Default::default()
        })
        .unwrap();
    let cc = HostedChaincode::start(HostOptions::new(&deployed.package_id).port(port))
        .await
        .unwrap();
    let s = devnet.summary();
    let admin = client(&s, "Regulator", "Admin");
    if admin.catalogue().await.unwrap().is_empty() {
        let seeded = admin
            .init_catalogue(&Catalogue::from_json(CATALOGUE).unwrap())
            .await
            .unwrap();
        // The issuer's peer endorses the next step: it must have committed the catalogue.
        client(&s, "PublicSecurity", "issuer1")
            .wait_for_block(seeded.block_number)
            .await
            .unwrap();
    }
    let env_of = |org: &str, msp_id: &str, user: &str| {
        vec![
            ("ELICENSE_PROFILE", s.profiles[org].display().to_string()),
            ("ELICENSE_MSP_ID", msp_id.to_owned()),
            ("ELICENSE_MSP_DIR", s.msp[org][user].display().to_string()),
        ]
    };
    let work = dir.path();

    // The holder creates its key; the issuer issues to its public key.
    let (ok, _, err) = run_example(
        "holder_grant",
        &["holder.pem", "c.json", "X", "M"],
        &[],
        work,
    );
    assert!(ok, "{err}");
    let holder = HolderKeyPair::load(work.join("holder.pem")).unwrap();
    std::fs::write(work.join("holder.pub.pem"), holder.public_pem()).unwrap();
    let (ok, out, err) = run_example(
        "issue",
        &[
            CH,
            "ID_CARD",
            "000000777",
            "holder.pub.pem",
            "credential.json",
            "name=赵六",
            "sex=男",
            "ethnicity=回",
            "birth_date=1992-02-29",
            "address=宁夏银川市兴庆区",
            "id_number=640104199202290777",
            "issuing_authority=银川市公安局",
            "valid_from=2021-01-01",
            "valid_until=2041-01-01",
        ],
        &env_of("PublicSecurity", "PublicSecurityMSP", "issuer1"),
        work,
    );
    assert!(ok, "{err}");
    assert!(out.contains("issued IDC-PSB-000000777-"), "{out}");
    client(&s, "ServiceCentre", "holder1")
        .wait_for_block(block_in(&out))
        .await
        .unwrap();

    // The holder grants name and id number to the service centre and relays the grant.
    let mut holder_env = env_of("ServiceCentre", "ServiceCentreMSP", "holder1");
    holder_env.push(("HOLDER_SECRET", "a passphrase only the holder knows".into()));
    let (ok, out, err) = run_example(
        "holder_grant",
        &[
            "holder.pem",
            "credential.json",
            "ServiceCentreMSP",
            "SC-0001",
            "name",
            "id_number",
        ],
        &holder_env,
        work,
    );
    assert!(ok, "{err}");
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (grant_id, code) = (field("grant "), field("code "));
    client(&s, "PublicSecurity", "issuer1")
        .wait_for_block(block_in(&out))
        .await
        .unwrap();

    // The clerk verifies the presented name and retrieves the id number.
    let clerk_env = env_of("ServiceCentre", "ServiceCentreMSP", "clerk1");
    let args = [CH, &grant_id, "SC-0001", &code, "credential.json", "name"];
    let (ok, out, err) = run_example("window_verify", &args, &clerk_env, work);
    assert!(ok, "{err}");
    assert!(out.contains("verified IDC-PSB-000000777-"), "{out}");
    assert!(out.contains("id_number: 640104199202290777"), "{out}");
    // Single use: the second attempt is refused with the advice for a spent grant.
    let (ok, _, err) = run_example("window_verify", &args, &clerk_env, work);
    assert!(!ok);
    assert!(err.contains("the holder must grant again"), "{err}");

    cc.stop().await.unwrap();
    devnet.down().await;
}
