//! Crash safety of the devnet as a separate process (`fabric-devnet`): under a write load
//! through the Gateway, the process is killed with SIGKILL mid-stream and restarted on the same
//! data dir. Every transaction reported VALID before the kill is still VALID in the same block
//! (asked through CommitStatus of the restarted devnet and read from every ledger), the network
//! goes on committing, each block store's hash chain verifies (header hashes recomputed from
//! Fabric's ASN.1 header encoding), and each peer's world state equals a replay of the valid
//! write sets in its blocks.

#[path = "peer_fixture.rs"]
mod peer_fixture;
#[path = "interop_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_common::crypto::Signer;
use fabric_common::identity::SigningIdentity;
use fabric_devnet::devnet::DevnetSummary;
use fabric_devnet::ledger::{Height, Ledger};
use fabric_protos::common::{BlockHeader, BlockMetadataIndex};
use fabric_protos::gateway::gateway_client::GatewayClient;
use fabric_protos::gateway::{CommitStatusRequest, SignedCommitStatusRequest};
use fabric_protos::protos::TxValidationCode as Code;
use prost::Message;
use sha2::{Digest, Sha256};
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Starts `fabric-devnet` and returns it with the JSON line it prints once up.
fn start_devnet(args: &[&str]) -> (Killed, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric-devnet"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting fabric-devnet");
    let stdout = child.stdout.take().unwrap();
    let guard = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("fabric-devnet prints its summary");
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("fabric-devnet printed {line:?}: {e}"));
    (guard, v)
}

/// One reported-VALID transaction.
#[derive(Debug, Clone)]
struct Valid {
    txid: String,
    block: u64,
}

/// `n` submitters put keys through the gateways of both organisations until `stop` or an
/// error (the devnet was killed); every VALID commit status is recorded.
fn load(
    summary: &DevnetSummary,
    n: usize,
    stop: Arc<AtomicBool>,
    valid: Arc<Mutex<Vec<Valid>>>,
) -> Vec<tokio::task::JoinHandle<usize>> {
    (0..n)
        .map(|task| {
            let org = if task % 2 == 0 { "Police" } else { "Service" };
            let gw = gateway(summary, org, "clerk1");
            let stop = stop.clone();
            let valid = valid.clone();
            tokio::spawn(async move {
                let contract = gw.network(CH).contract("kv");
                let mut submitted = 0;
                for i in 0..400 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("k{task}-{}", i % 10);
                    let value = format!("{task}:{i}");
                    let step = async {
                        let (_, commit) =
                            contract.submit_async("put", &[&key, &value]).await.ok()?;
                        commit.status().await.ok()
                    };
                    match tokio::time::timeout(Duration::from_secs(15), step).await {
                        Ok(Some(st)) => {
                            submitted += 1;
                            if st.successful {
                                valid.lock().unwrap().push(Valid {
                                    txid: st.transaction_id.clone(),
                                    block: st.block_number,
                                });
                            }
                        }
                        _ => break,
                    }
                }
                submitted
            })
        })
        .collect()
}

async fn commit_status(
    peer: &fabric_devnet::devnet::PeerSummary,
    signer: &SigningIdentity,
    txid: &str,
) -> (Code, u64) {
    let channel = Channel::from_shared(format!("https://{}", peer.address))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(
                    std::fs::read(&peer.tls_ca_cert).unwrap(),
                ))
                .domain_name(peer.host.clone()),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = CommitStatusRequest {
        transaction_id: txid.into(),
        channel_id: CH.into(),
        identity: signer.serialized().to_vec(),
    }
    .encode_to_vec();
    let signature = signer.sign(&request).unwrap();
    let r = GatewayClient::new(channel)
        .commit_status(SignedCommitStatusRequest { request, signature })
        .await
        .unwrap()
        .into_inner();
    (Code::try_from(r.result).unwrap(), r.block_number)
}

/// SHA-256 of Fabric's ASN.1 DER block header: SEQUENCE { INTEGER number, OCTET STRING
/// previous_hash, OCTET STRING data_hash }.
fn header_hash(h: &BlockHeader) -> Vec<u8> {
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u64(h.number);
            w.next().write_bytes(&h.previous_hash);
            w.next().write_bytes(&h.data_hash);
        })
    });
    Sha256::digest(der).to_vec()
}

/// Checks one block store: numbering, data hashes and the hash chain; returns each block's
/// header hash.
fn verify_chain(ledger: &Ledger, what: &str) -> Vec<Vec<u8>> {
    let mut hashes = Vec::new();
    for n in 0..ledger.height() {
        let block = ledger
            .block(n)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: block {n} missing"));
        let header = block.header.clone().unwrap();
        assert_eq!(header.number, n, "{what}");
        let mut data = Vec::new();
        for d in &block.data.as_ref().unwrap().data {
            data.extend_from_slice(d);
        }
        assert_eq!(
            header.data_hash,
            Sha256::digest(&data).to_vec(),
            "{what}: block {n} data hash"
        );
        if n > 0 {
            assert_eq!(
                header.previous_hash,
                hashes[n as usize - 1],
                "{what}: block {n} previous hash"
            );
        }
        hashes.push(header_hash(&header));
    }
    hashes
}

type State = BTreeMap<(String, String), (Vec<u8>, Height)>;

/// The world state a replay of the valid transactions' public write sets gives.
fn replay(ledger: &Ledger) -> State {
    let mut state = State::new();
    for n in 1..ledger.height() {
        let block = ledger.block(n).unwrap().unwrap();
        let filter = &block.metadata.as_ref().unwrap().metadata
            [BlockMetadataIndex::TransactionsFilter as usize];
        for (i, env) in block.data.as_ref().unwrap().data.iter().enumerate() {
            if filter[i] != Code::Valid as u8 {
                continue;
            }
            let tx = fabric_common::tx::unpack_envelope_bytes(env).unwrap();
            for action in &tx.actions {
                for (ns, rw) in action.kv_rwsets().unwrap() {
                    for w in rw.writes {
                        let k = (ns.clone(), w.key.clone());
                        if w.is_delete {
                            state.remove(&k);
                        } else {
                            state.insert(
                                k,
                                (
                                    w.value,
                                    Height {
                                        block: n,
                                        tx: i as u64,
                                    },
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    state
}

/// Every transaction in the blocks is in the txid index at its first occurrence, with the
/// code of the block's transaction filter (no index entry half-written); returns the count.
fn verify_txid_index(ledger: &Ledger, what: &str) -> usize {
    let mut seen = std::collections::HashSet::new();
    for n in 1..ledger.height() {
        let block = ledger.block(n).unwrap().unwrap();
        let filter = &block.metadata.as_ref().unwrap().metadata
            [BlockMetadataIndex::TransactionsFilter as usize];
        for (i, env) in block.data.as_ref().unwrap().data.iter().enumerate() {
            let tx = fabric_common::tx::unpack_envelope_bytes(env).unwrap();
            if seen.insert(tx.tx_id().to_string()) {
                let loc = ledger.tx_location(tx.tx_id()).unwrap().expect("indexed");
                assert_eq!(
                    (loc.block, loc.tx, loc.code),
                    (n, i as u64, i32::from(filter[i])),
                    "{what}: {}",
                    tx.tx_id()
                );
            }
        }
    }
    seen.len()
}

fn open(path: &Path) -> Ledger {
    Ledger::open(path, CH).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_killed_under_load_restarts_with_every_valid_transaction_and_a_consistent_ledger()
{
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("net");
    let topo = dir.path().join("topology.toml");
    std::fs::write(&topo, TOPOLOGY).unwrap();
    let cc_addr = format!("127.0.0.1:{}", free_port());
    let base = [
        "--data-dir",
        data.to_str().unwrap(),
        "--topology",
        topo.to_str().unwrap(),
        "--exit-with-parent",
    ];
    let deploy = format!("kv={cc_addr}");
    let mut first_args = base.to_vec();
    first_args.extend(["--deploy", deploy.as_str()]);
    let (devnet, out) = start_devnet(&first_args);
    let package_id = out["deployed"]["kv"]["package_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The chaincode server lives in the test; it outlives the devnet's crashes.
    let _cc = peer_fixture::start_chaincode(&package_id, &cc_addr).await;

    // Three rounds: a write load from six submitters through both organisations' gateways,
    // SIGKILL at a varying moment once 40 more commits were reported, restart.
    let valid = Arc::new(Mutex::new(Vec::new()));
    let mut running = Some((devnet, out));
    for round in 0..3u64 {
        let (mut devnet, out) = match running.take() {
            Some(r) => r,
            None => start_devnet(&base),
        };
        let summary: DevnetSummary = serde_json::from_value(out["summary"].clone()).unwrap();
        let before = valid.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = load(&summary, 6, stop.clone(), valid.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while valid.lock().unwrap().len() < before + 40 {
            assert!(tokio::time::Instant::now() < deadline, "load too slow");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Vary the moment within the ordering/commit cycle (batch timeout 100 ms).
        tokio::time::sleep(Duration::from_millis(round * 37 % 100)).await;
        devnet.0.kill().unwrap();
        devnet.0.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut statuses = 0;
        for t in tasks {
            statuses += t.await.unwrap();
        }
        let valid = valid.lock().unwrap();
        println!(
            "round {round}: killed under load after {statuses} commit statuses ({} VALID in all), last reported block {}",
            valid.len(),
            valid.iter().map(|v| v.block).max().unwrap()
        );
    }
    let valid = valid.lock().unwrap().clone();

    // Restart on the same data dir (new ports): every reported VALID transaction is there.
    let (devnet, out) = start_devnet(&base);
    let summary: DevnetSummary = serde_json::from_value(out["summary"].clone()).unwrap();
    let signer =
        fabric_common::msp::read_signing_identity(&summary.msp["Police"]["clerk1"], "PoliceMSP")
            .unwrap();
    for p in &summary.peers {
        for v in &valid {
            assert_eq!(
                commit_status(p, &signer, &v.txid).await,
                (Code::Valid, v.block),
                "{} after restart: {}",
                p.host,
                v.txid
            );
        }
    }
    // The restarted network goes on committing.
    let gw = gateway(&summary, "Service", "clerk1");
    let (_, commit) = gw
        .network(CH)
        .contract("kv")
        .submit_async("put", &["after-restart", "yes"])
        .await
        .unwrap();
    let st = commit.status().await.unwrap();
    assert!(st.successful, "{st:?}");
    println!("after restart: committed in block {}", st.block_number);
    // Stop it (SIGTERM: a clean `down`), then read every block store from disk.
    let mut devnet = devnet;
    Command::new("kill")
        .arg("-TERM")
        .arg(devnet.0.id().to_string())
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while devnet.0.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(devnet);

    let orderer = open(&data.join("orderer").join(format!("{CH}.redb")));
    let orderer_hashes = verify_chain(&orderer, "orderer");
    for p in &summary.peers {
        let what = p.host.as_str();
        let ledger = open(&data.join("peers").join(&p.host).join(format!("{CH}.redb")));
        let hashes = verify_chain(&ledger, what);
        assert!(hashes.len() > st.block_number as usize, "{what}");
        assert_eq!(
            hashes[..],
            orderer_hashes[..hashes.len()],
            "{what}: same chain as the orderer"
        );
        for v in &valid {
            let loc = ledger.tx_location(&v.txid).unwrap().expect("committed");
            assert_eq!(
                (loc.block, loc.code),
                (v.block, Code::Valid as i32),
                "{what}"
            );
        }
        let indexed = verify_txid_index(&ledger, what);
        let replayed = replay(&ledger);
        let stored: State = ledger
            .snapshot()
            .unwrap()
            .dump_state()
            .unwrap()
            .into_iter()
            .map(|(ns, k, v)| ((ns, k), (v.value, v.version)))
            .collect();
        assert_eq!(stored.len(), replayed.len(), "{what}");
        assert_eq!(
            stored, replayed,
            "{what}: state equals the replay of its blocks"
        );
        println!(
            "{what}: {} blocks, chain verified, {indexed} transactions indexed, {} keys equal the replay",
            hashes.len(),
            stored.len()
        );
    }
}
