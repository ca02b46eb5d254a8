//! Differential fidelity: the same transactions on the devnet and on real Hyperledger Fabric
//! give the same validation codes and the same query and history results.
//!
//! Both networks run the `police-service` channel of the default topology (PublicSecurity,
//! ServiceCentre, Regulator; real Fabric with three Raft orderers from `network/fabric`) and the
//! same chaincode — a small key-value chaincode on our Rust shim, served as CCaaS from this test
//! process — defined with the chaincode-level policy
//! `AND('PublicSecurityMSP.peer','ServiceCentreMSP.peer')`. One script drives both through the
//! Gateway with the Rust client, as the service centre's clerk:
//!
//! * an MVCC read conflict (two increments endorsed against the same version),
//! * a phantom read (a range count endorsed, then a key inserted into the range first),
//! * a chaincode-level endorsement failure (one organisation endorses),
//! * a key-level endorsement failure (a key whose policy names the regulator, endorsed by the
//!   two others) and the key-level policy satisfied by the regulator alone,
//! * a duplicate transaction ID (the same signed envelope submitted twice) and the endorsers'
//!   refusal of a proposal whose transaction ID is already committed,
//!
//! then gets, a range, a missing key and key histories. Validation codes are read from the
//! blocks' transaction filters through Deliver (the duplicate's second copy has no commit status
//! of its own) and from the Gateway's commit status. The comparison table is printed.
//!
//! Needs Fabric's binaries (`FABRIC_BIN` or `../shared/fabric`); skips without them, fails in CI.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use elicense_tests::fabric_net::FabricNetwork;
use elicense_tests::{free_port, kv_chaincode};
use fabric_client::gateway::{
    BlockEventsKind, Connection, ConnectionOptions, DeliverEvent, Endpoint, EventsOptions,
    GatewayOptions,
};
use fabric_client::{Gateway, GatewayError};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;
use fabric_protos::common::{BlockMetadataIndex, ChannelHeader, Envelope, Payload};
use fabric_protos::protos::TxValidationCode;
use prost::Message;
use serde_json::Value;

const CHANNEL: &str = "police-service";
const MEMBERS: [&str; 3] = ["PublicSecurity", "ServiceCentre", "Regulator"];
const CHAINCODE: &str = "diffkv";
const POLICY: &str = "AND('PublicSecurityMSP.peer','ServiceCentreMSP.peer')";
/// Who submits: the service centre's clerk, through its own organisation's peer.
const CLIENT: (&str, &str) = ("ServiceCentre", "clerk1");

/// One compared transaction: the code in its block and the Gateway's commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TxOutcome {
    block: TxValidationCode,
    commit_status: TxValidationCode,
}

/// Everything one network answered.
#[derive(Debug, Default)]
struct Outcome {
    /// Case → outcome, in script order.
    cases: Vec<(&'static str, TxOutcome)>,
    /// Query → normalised result (transaction IDs replaced by the script's labels).
    queries: BTreeMap<String, Value>,
}

/// The script's transactions so far: label and transaction ID, and how often each ID must
/// appear in blocks.
#[derive(Default)]
struct Ledger {
    txs: Vec<(&'static str, String, usize)>,
    statuses: BTreeMap<&'static str, TxValidationCode>,
}

struct Script {
    gateway: Gateway,
    ledger: Ledger,
}

impl Script {
    fn contract(&self) -> fabric_client::Contract {
        self.gateway.network(CHANNEL).contract(CHAINCODE)
    }

    /// Endorses `args` (by the Gateway's plan, or by exactly `orgs`) without submitting.
    ///
    /// A commit status comes from the Gateway's own peer; the other organisation's peer may
    /// commit that block a moment later, and until it has, the two simulate against different
    /// versions and the Gateway reports that their payloads do not match. Both networks have
    /// that window, so such an endorsement is retried on a fresh proposal (nothing was
    /// submitted); any other failure ends the test.
    async fn endorse(&self, args: &[&str], orgs: &[&str]) -> fabric_client::Transaction {
        const CONVERGENCE_RETRIES: u32 = 40;
        let mut attempt = 0;
        loop {
            let mut p = self
                .contract()
                .new_proposal(args[0])
                .string_args(&args[1..]);
            if !orgs.is_empty() {
                p = p.endorsing_organizations(orgs.iter().map(|o| format!("{o}MSP")));
            }
            match p.build().expect("proposal").endorse().await {
                Ok(tx) => return tx,
                Err(e)
                    if attempt < CONVERGENCE_RETRIES
                        && e.details().iter().any(|d| {
                            d.message.contains("ProposalResponsePayloads do not match")
                        }) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                Err(e) => panic!("endorsing {args:?}: {e} {:?}", e.details()),
            }
        }
    }

    /// Submits an endorsed transaction and waits for its commit status.
    async fn commit(
        &mut self,
        label: &'static str,
        tx: &fabric_client::Transaction,
    ) -> TxValidationCode {
        let status = tx
            .submit()
            .await
            .unwrap_or_else(|e| panic!("{label}: submit: {e}"))
            .status()
            .await
            .unwrap_or_else(|e| panic!("{label}: commit status: {e}"));
        assert_eq!(status.transaction_id, tx.transaction_id());
        match self
            .ledger
            .txs
            .iter_mut()
            .find(|(_, id, _)| id == tx.transaction_id())
        {
            Some(entry) => entry.2 += 1,
            None => self
                .ledger
                .txs
                .push((label, tx.transaction_id().to_owned(), 1)),
        }
        self.ledger.statuses.insert(label, status.code);
        status.code
    }

    async fn submit(&mut self, label: &'static str, args: &[&str], orgs: &[&str]) {
        let tx = self.endorse(args, orgs).await;
        self.commit(label, &tx).await;
    }

    async fn evaluate(&self, args: &[&str]) -> Result<Vec<u8>, GatewayError> {
        self.contract()
            .new_proposal(args[0])
            .string_args(&args[1..])
            .evaluate()
            .await
    }

    fn label_of(&self, tx_id: &str) -> String {
        self.ledger
            .txs
            .iter()
            .find(|(_, id, _)| id == tx_id)
            .map_or_else(
                || format!("unknown tx {tx_id}"),
                |(l, _, _)| (*l).to_owned(),
            )
    }
}

/// The script, identical for both networks.
async fn run_script(gateway: Gateway) -> Outcome {
    let mut s = Script {
        gateway,
        ledger: Ledger::default(),
    };
    let mut cases: Vec<(&'static str, &'static str)> = Vec::new();

    // A plain write, then a delete and a re-write for the history.
    s.submit("put a=1", &["put", "a", "1"], &[]).await;
    cases.push(("valid write (Gateway's endorsement plan)", "put a=1"));
    s.submit("del a", &["del", "a"], &[]).await;
    s.submit("put a=2", &["put", "a", "2"], &[]).await;

    // MVCC: two increments endorsed against the same committed version; the second loses.
    s.submit("incr counter (1)", &["incr", "counter"], &[])
        .await;
    let first = s.endorse(&["incr", "counter"], &[]).await;
    let second = s.endorse(&["incr", "counter"], &[]).await;
    assert_eq!(first.result(), b"2");
    assert_eq!(second.result(), b"2");
    s.commit("incr counter (2)", &first).await;
    s.commit("incr counter (stale)", &second).await;
    cases.push(("MVCC read conflict", "incr counter (stale)"));

    // Phantom read: a range count endorsed, then a key inserted into the range before it.
    s.submit("put p_1", &["put", "p_1", "x"], &[]).await;
    s.submit("put p_2", &["put", "p_2", "x"], &[]).await;
    let count = s.endorse(&["countrange", "p_", "p~", "count"], &[]).await;
    assert_eq!(count.result(), b"2");
    s.submit("put p_3", &["put", "p_3", "x"], &[]).await;
    s.commit("countrange (stale range)", &count).await;
    cases.push(("phantom read", "countrange (stale range)"));

    // Chaincode-level policy AND(PublicSecurity, ServiceCentre): one organisation is not enough.
    s.submit(
        "put solo (PublicSecurity only)",
        &["put", "solo", "x"],
        &["PublicSecurity"],
    )
    .await;
    cases.push((
        "chaincode-level endorsement failure",
        "put solo (PublicSecurity only)",
    ));

    // Key-level: `guarded` may only be written with the regulator's endorsement.
    s.submit(
        "lock guarded",
        &["lock", "guarded", "v1", "RegulatorMSP"],
        &[],
    )
    .await;
    cases.push((
        "key-level policy set (chaincode policy met)",
        "lock guarded",
    ));
    s.submit(
        "put guarded (PublicSecurity+ServiceCentre)",
        &["put", "guarded", "v2"],
        &["PublicSecurity", "ServiceCentre"],
    )
    .await;
    cases.push((
        "key-level endorsement failure",
        "put guarded (PublicSecurity+ServiceCentre)",
    ));
    s.submit(
        "put guarded (Regulator only)",
        &["put", "guarded", "v3"],
        &["Regulator"],
    )
    .await;
    cases.push((
        "key-level policy met, chaincode-level not",
        "put guarded (Regulator only)",
    ));

    // Duplicate transaction ID: the same signed envelope ordered twice.
    let dup_proposal = s
        .contract()
        .new_proposal("put")
        .string_args(&["dup", "d1"])
        .build()
        .expect("proposal");
    let dup = dup_proposal.endorse().await.expect("endorse put dup");
    s.commit("put dup", &dup).await;
    cases.push(("first of a duplicated transaction", "put dup"));
    // The endorsers refuse a proposal whose transaction ID is already in the ledger.
    let refused = dup_proposal
        .endorse()
        .await
        .expect_err("a committed transaction ID is not endorsed again");
    let refusal = normalised_status(&s, &refused, dup.transaction_id());
    let again = s.commit("put dup (again)", &dup).await;
    // The second copy shares the first's ID: its commit status is the ID's status.
    s.ledger.statuses.insert("put dup (again)", again);

    // ---- validation codes from the blocks' transaction filters, through Deliver
    let codes = block_codes(&s).await;
    let mut out = Outcome::default();
    for (case, label) in cases {
        let (_, id, _) = s
            .ledger
            .txs
            .iter()
            .find(|(l, _, _)| *l == label)
            .unwrap_or_else(|| panic!("no transaction {label}"));
        out.cases.push((
            case,
            TxOutcome {
                block: codes[id][0],
                commit_status: s.ledger.statuses[label],
            },
        ));
    }
    let (_, dup_id, _) = s
        .ledger
        .txs
        .iter()
        .find(|(l, _, _)| *l == "put dup")
        .expect("dup");
    out.cases.push((
        "duplicate transaction ID (second copy)",
        TxOutcome {
            block: codes[dup_id][1],
            commit_status: s.ledger.statuses["put dup (again)"],
        },
    ));

    out.queries
        .insert("endorse a committed proposal again".into(), refusal);

    // ---- queries: state, a range, a missing key, histories
    // A key never validly written (`count`, `solo`) is the chaincode's error, per endorser.
    for key in ["a", "counter", "count", "guarded", "dup", "p_3", "solo"] {
        let result = match s.evaluate(&["get", key]).await {
            Ok(v) => Value::String(String::from_utf8_lossy(&v).into_owned()),
            Err(e) => {
                let grpc = e.grpc_status().expect("a gRPC status");
                serde_json::json!({
                    "error": format!("{:?}", grpc.code),
                    "details": grpc.details.iter().map(|d| d.message.clone()).collect::<Vec<_>>(),
                })
            }
        };
        out.queries.insert(format!("get {key}"), result);
    }
    let all = s.evaluate(&["range", "", ""]).await.expect("range");
    out.queries.insert(
        "range all keys".into(),
        serde_json::from_slice(&all).expect("range JSON"),
    );
    for key in ["a", "counter", "guarded", "dup", "solo"] {
        let h = s
            .evaluate(&["history", key])
            .await
            .unwrap_or_else(|e| panic!("history {key}: {e}"));
        let rows: Vec<Value> = serde_json::from_slice(&h).expect("history JSON");
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "tx": s.label_of(r["tx_id"].as_str().expect("tx_id")),
                    "value": r["value"],
                    "is_delete": r["is_delete"],
                })
            })
            .collect();
        out.queries
            .insert(format!("history {key}"), Value::Array(rows));
    }
    out
}

/// A Gateway error as comparable JSON: gRPC code, message and the endorsers' messages, with the
/// transaction ID and the creator (hex) replaced by placeholders.
fn normalised_status(s: &Script, e: &GatewayError, tx_id: &str) -> Value {
    let creator: String = s
        .gateway
        .identity()
        .serialized()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let clean = |m: &str| m.replace(tx_id, "<txid>").replace(&creator, "<creator>");
    let grpc = e.grpc_status().expect("a gRPC status");
    serde_json::json!({
        "code": format!("{:?}", grpc.code),
        "message": clean(&grpc.message),
        "details": grpc.details.iter().map(|d| clean(&d.message)).collect::<Vec<_>>(),
    })
}

/// Reads the channel's blocks from the start until every scripted transaction has appeared as
/// often as it was submitted; returns each transaction ID's codes in block order.
async fn block_codes(s: &Script) -> BTreeMap<String, Vec<TxValidationCode>> {
    let mut want: BTreeMap<&str, usize> = s
        .ledger
        .txs
        .iter()
        .map(|(_, id, n)| (id.as_str(), *n))
        .collect();
    let mut stream = s
        .gateway
        .network(CHANNEL)
        .block_events(BlockEventsKind::Full, &EventsOptions::start_block(0))
        .await
        .expect("deliver");
    let mut codes: BTreeMap<String, Vec<TxValidationCode>> = BTreeMap::new();
    while want.values().any(|n| *n > 0) {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("blocks stopped coming; still missing {want:?}"))
            .expect("stream open")
            .expect("block");
        let DeliverEvent::Block(block) = event else {
            panic!("full blocks asked for");
        };
        let meta = block.metadata.as_ref().expect("block metadata");
        let filter = &meta.metadata[BlockMetadataIndex::TransactionsFilter as usize];
        let data = block.data.as_ref().expect("block data");
        assert_eq!(filter.len(), data.data.len(), "one code per transaction");
        for (raw, code) in data.data.iter().zip(filter) {
            let env = Envelope::decode(raw.as_slice()).expect("envelope");
            let payload = Payload::decode(env.payload.as_slice()).expect("payload");
            let header = payload.header.expect("header");
            let ch = ChannelHeader::decode(header.channel_header.as_slice()).expect("ch header");
            if let Some(n) = want.get_mut(ch.tx_id.as_str()) {
                *n = n.saturating_sub(1);
                let code = TxValidationCode::try_from(i32::from(*code)).expect("known code");
                codes.entry(ch.tx_id.clone()).or_default().push(code);
            }
        }
    }
    codes
}

/// The devnet restricted to the channel's members, the chaincode defined and served here.
async fn on_devnet() -> Outcome {
    let mut topology = Topology::default_topology();
    topology
        .organizations
        .retain(|o| MEMBERS.contains(&o.name.as_str()));
    topology.channels.retain(|c| c.name == CHANNEL);
    let dir = tempfile::tempdir().expect("temp dir");
    let devnet = Devnet::up(DevnetConfig::new(topology, dir.path()))
        .await
        .expect("devnet up");
    let address = format!("127.0.0.1:{}", free_port());
    let deployed = devnet
        .deploy_ccaas(&DeployRequest {
            name: CHAINCODE.into(),
            address: address.clone(),
            channels: vec![CHANNEL.into()],
            policy: Some(POLICY.into()),
            ..Default::default()
        })
        .expect("deploy on the devnet");
    let server = kv_chaincode::serve(&deployed.package_id, &address).await;
    let outcome = run_script(devnet_gateway(&devnet.summary(), CLIENT.0, CLIENT.1)).await;
    server.shutdown().await.expect("chaincode server stops");
    devnet.down().await;
    outcome
}

fn devnet_gateway(summary: &DevnetSummary, org: &str, user: &str) -> Gateway {
    let peer = summary
        .peers
        .iter()
        .find(|p| p.org == org)
        .expect("the org's peer");
    let signing = fabric_client::msp::load_signing_identity(&peer.msp_id, &summary.msp[org][user])
        .expect("MSP directory");
    let endpoint = Endpoint::new(format!("https://{}", peer.address))
        .tls_root(std::fs::read(&peer.tls_ca_cert).expect("TLS CA"))
        .server_name(peer.host.clone());
    let connection =
        Connection::new(vec![endpoint], &ConnectionOptions::default()).expect("connection");
    Gateway::for_signing_identity(connection, &signing, GatewayOptions::default())
}

fn code_text(c: TxValidationCode) -> String {
    format!("{} ({})", c.as_str_name(), c as i32)
}

#[test]
fn devnet_and_real_fabric_agree_on_validation_codes_queries_and_history() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Real Fabric first: without it (outside CI) there is nothing to compare with.
    let Some(net) = FabricNetwork::up(CHANNEL, "differential") else {
        return;
    };
    let up = started.elapsed();
    let address = format!("127.0.0.1:{}", free_port());
    let t0 = Instant::now();
    let package_id = net.define_ccaas(CHANNEL, &MEMBERS, CHAINCODE, &address, POLICY);
    let define = t0.elapsed();
    let server = rt.block_on(kv_chaincode::serve(&package_id, &address));
    let t0 = Instant::now();
    let fabric = rt.block_on(async { run_script(net.gateway(CLIENT.0, CLIENT.1)).await });
    let fabric_time = t0.elapsed();
    rt.block_on(server.shutdown())
        .expect("chaincode server stops");
    drop(net);

    let t0 = Instant::now();
    let devnet = rt.block_on(on_devnet());
    let devnet_time = t0.elapsed();

    // ---- the comparison table
    let mut table = format!(
        "\n{:<44} | {:<36} | {:<36}\n{}\n",
        "case (block code / commit status)",
        "devnet",
        "Fabric 3.1",
        "-".repeat(122)
    );
    let mut diverging = Vec::new();
    for ((case, d), (case_f, f)) in devnet.cases.iter().zip(&fabric.cases) {
        assert_eq!(case, case_f);
        let cell = |o: &TxOutcome| {
            if o.block == o.commit_status {
                code_text(o.block)
            } else {
                format!("{} / {}", code_text(o.block), code_text(o.commit_status))
            }
        };
        let mark = if d == f { "" } else { "   <-- differs" };
        table += &format!("{case:<44} | {:<36} | {:<36}{mark}\n", cell(d), cell(f));
        if d != f {
            diverging.push(format!("{case}: devnet {d:?}, Fabric {f:?}"));
        }
    }
    for (query, f) in &fabric.queries {
        let d = devnet.queries.get(query);
        let same = d == Some(f);
        table += &format!(
            "{query:<44} | {:<36} | {}\n",
            if same {
                "same".into()
            } else {
                format!("{d:?}")
            },
            f
        );
        if !same {
            diverging.push(format!("{query}: devnet {d:?}, Fabric {f}"));
        }
    }
    eprintln!("{table}");
    eprintln!(
        "real Fabric: up {up:.1?}, chaincode defined {define:.1?}, script {fabric_time:.1?}; \
         devnet (up, script, down) {devnet_time:.1?}; whole test {:.1?}",
        started.elapsed()
    );

    // ---- real Fabric is the judge: the script hit the cases it meant to
    let expected = [
        (
            "valid write (Gateway's endorsement plan)",
            TxValidationCode::Valid,
        ),
        ("MVCC read conflict", TxValidationCode::MvccReadConflict),
        ("phantom read", TxValidationCode::PhantomReadConflict),
        (
            "chaincode-level endorsement failure",
            TxValidationCode::EndorsementPolicyFailure,
        ),
        (
            "key-level policy set (chaincode policy met)",
            TxValidationCode::Valid,
        ),
        (
            "key-level endorsement failure",
            TxValidationCode::EndorsementPolicyFailure,
        ),
        (
            "key-level policy met, chaincode-level not",
            TxValidationCode::Valid,
        ),
        ("first of a duplicated transaction", TxValidationCode::Valid),
        (
            "duplicate transaction ID (second copy)",
            TxValidationCode::DuplicateTxid,
        ),
    ];
    let fabric_blocks: Vec<(&str, TxValidationCode)> =
        fabric.cases.iter().map(|(c, o)| (*c, o.block)).collect();
    assert_eq!(fabric_blocks, expected, "real Fabric's codes");
    assert_eq!(fabric.queries["get guarded"], "v3", "{:#?}", fabric.queries);
    assert_eq!(fabric.queries["get counter"], "2", "{:#?}", fabric.queries);
    let again = &fabric.queries["endorse a committed proposal again"];
    assert_eq!(again["code"], "Aborted", "{again}");
    assert!(
        again["details"][0]
            .as_str()
            .is_some_and(|m| m.starts_with("duplicate transaction found [<txid>]")),
        "{again}"
    );
    assert_eq!(
        fabric.queries["get solo"]["details"][0], "chaincode response 500, no such key: solo",
        "{:#?}",
        fabric.queries
    );
    // ---- and the devnet answers as real Fabric does
    assert!(
        diverging.is_empty(),
        "the devnet diverges from real Fabric:\n{}",
        diverging.join("\n")
    );
}
