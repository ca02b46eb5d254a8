//! Bulk licence issuance through the devnet's gateway, at 10,000 and at 1,000,000 licences
//! already on the ledger.
//!
//! ```text
//! cargo bench -p fabric-devnet --bench issuance
//! ISSUE_N=80000 ISSUE_SUBMITTERS=1024 ISSUE_LEVELS=10000,1000000 ISSUE_ROUNDS=4 \
//!     ISSUE_DIR=/big/disk cargo bench -p fabric-devnet --bench issuance
//! ```
//!
//! Setup, for each level: a devnet of its own with the default topology
//! (`fixtures/topology.toml`), channel `police-service` (PublicSecurity, ServiceCentre,
//! Regulator), the topology's chaincode definition (its endorsement policy, with the contract's
//! key-level policy naming the issuer), the licence chaincode hosted in this process as a CCaaS
//! server, and the level's licences imported (below). The licences are issued through
//! PublicSecurity's gateway with the SDK's bulk issuance, `LicenceClient::issue_bulk`, with
//! `ISSUE_SUBMITTERS` transactions in flight at any time: each one endorsed, submitted and
//! followed to its commit status, which the SDK reads from one filtered block stream of the
//! channel.
//!
//! Each level issues `ISSUE_N` licences in `ISSUE_ROUNDS` windows: by default four of 20,000, about
//! ten seconds each. A window starts with the pipeline filling and ends with the last partial block
//! waiting out the batch timeout; the longer the window, the smaller the part of it those are. The
//! levels' windows alternate in mirrored order (10k, 1M, 1M, 10k, 10k, 1M, ...): this machine's
//! speed changes over minutes (one ECDSA verification takes from about 50 to 100 µs at different
//! times), and measuring the levels one after the other compared the machine's moments as much as
//! the ledger sizes; with two rounds only, one slow spell over the middle windows still fell on one
//! level alone. Each level runs in a process of its own (this bench again, driven over its stdin
//! and stdout), so the levels' memory, threads and CPU accounting stay apart; a level's process is
//! idle while another one's window runs. After each window the level's peers are let catch up with
//! its orderer, so no commit spills into the next window.
//!
//! Printed per ledger size, over its windows: committed tx/s, latency p50/p95/p99 (one licence,
//! endorsement to commit status), the µs one ECDSA verification took on one core just before
//! each window (averaged: the machine's speed then), CPU per transaction (the level's process's
//! user+system CPU over the windows divided by the committed transactions), bytes written to
//! storage per transaction (`/proc/self/io`), the level process's resident memory (`VmRSS`, the
//! largest at a window's end: every peer's, the orderer's and the chaincode's caches, the client's
//! licences in flight), CPU by thread, how long the level's threads were runnable but waiting for
//! a core (other processes on the machine), and each level's tx/s against the first one's; each
//! window's tx/s, CPU per transaction and verification time go to stderr as it ends. A level
//! whose import and windows would not fit in the free disk space (the devnet data's growth per
//! licence so far, about 23 KB) is skipped with a note.
//! Everything, client, gateway, three peers, orderer and chaincode, shares this machine's
//! cores, so the CPU figure is the whole network's cost per licence.
//!
//! # Pre-population (how 1,000,000 licences get onto the ledger)
//!
//! Issuing a million licences through the gateway would take longer than a bench run, so the
//! licences already on the ledger are imported: one licence is issued through the gateway, and
//! its committed transaction is the template. Each imported licence is the template with the
//! licence ID (same length), the transaction ID, the private key hash, private value hash and
//! private write-set hash replaced, so its read-write set has exactly the keys, metadata
//! (key-level endorsement policy), private-data hashes and value shapes the contract writes.
//! The envelopes are compact: the template's channel header, proposal payload and chaincode
//! action (results, events, response) are kept; creator and endorsement certificates and
//! signatures are left out (they are never read back). They are cut into blocks of
//! `PREPOP_BLOCK` (default 2,000) transactions, hash-chained, marked valid in
//! TRANSACTIONS_FILTER, and committed with `Ledger::commit` on the orderer's block store and on
//! every channel peer's ledger with the same updates the committer derives from a valid
//! transaction (state + metadata, private hashes, the issuer's private data on its own peer,
//! history, txid index). No validation (signatures, policies, MVCC) runs for them: that is the
//! part skipped, as a peer joining from a snapshot skips it. The gateway load then runs on top.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use elicense_model::LicenceId;
use elicense_sdk::{BulkOptions, NewLicence};
use fabric_common::tx::unpack_envelope;
use fabric_devnet::devnet::Devnet;
use fabric_devnet::ledger::block::{block_header_hash, new_block};
use fabric_devnet::ledger::{BlockUpdates, Height, Ledger, PvtCollWrites, TxRwSet};
use fabric_protos::common::{BlockMetadataIndex, Envelope, Header, Payload, SignatureHeader};
use fabric_protos::kvrwset::{KvWrite, KvrwSet};
use fabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ProposalResponsePayload,
    Transaction, TransactionAction,
};
use prost::Message;
use sha2::{Digest, Sha256};

mod support;
use support::{cpu_ticks, cpu_time, disk_write_bytes, env_or};
#[path = "support/licences.rs"]
mod licences;
use licences::{LicenceNet, CH};

const NS: &str = "elicense";

/// µs one ECDSA P-256 verification takes on one core right now: the machine's speed at the time
/// of a run, printed beside its figures (on a shared virtual machine it varies between runs).
fn ecdsa_verify_micros() -> f64 {
    use fabric_common::crypto::{Signer, SigningKey};
    let key = SigningKey::generate();
    let signature = key.sign(b"calibration").unwrap();
    let rounds = 300;
    let started = Instant::now();
    for _ in 0..rounds {
        key.public_key().verify(b"calibration", &signature).unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// Replaces every occurrence of each `from` with its same-length `to`.
fn substitute(bytes: &mut [u8], pairs: &[(&[u8], &[u8])]) {
    for (from, to) in pairs {
        debug_assert_eq!(from.len(), to.len());
        if from.is_empty() {
            continue;
        }
        let mut i = 0;
        while i + from.len() <= bytes.len() {
            if &bytes[i..i + from.len()] == *from {
                bytes[i..i + from.len()].copy_from_slice(to);
                i += from.len();
            } else {
                i += 1;
            }
        }
    }
}

/// The endorsed response of an imported transaction: the template's proposal hash and chaincode
/// action with its read-write set and chaincode ID, without the response payload and event
/// (copies of the record that the ledger never reads back; they would triple the block store).
fn slim_response(prp: &[u8]) -> Vec<u8> {
    let mut prp = ProposalResponsePayload::decode(prp).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    prp.extension = ChaincodeAction {
        results: action.results,
        chaincode_id: action.chaincode_id,
        events: Vec::new(),
        response: None,
    }
    .encode_to_vec();
    prp.encode_to_vec()
}

/// The committed issue transaction every imported licence is made from.
struct Template {
    envelope: Vec<u8>,
    licence_id: String,
    txid: String,
    key_hash: Vec<u8>,
    private_value: Vec<u8>,
    value_hash: Vec<u8>,
    pvt_rwset_hash: Vec<u8>,
    collection: String,
}

impl Template {
    /// Reads the committed template transaction `txid` (licence `licence_id`) from `ledger`
    /// (the issuer's peer, which holds the private data).
    fn from_ledger(ledger: &Ledger, block: u64, txid: &str, licence_id: &str) -> Template {
        let block = ledger.block(block).unwrap().expect("template block");
        let env = block
            .data
            .unwrap()
            .data
            .iter()
            .map(|d| Envelope::decode(d.as_slice()).unwrap())
            .find(|e| unpack_envelope(e).is_ok_and(|u| u.tx_id() == txid))
            .expect("template transaction in its block");
        let payload = Payload::decode(env.payload.as_slice()).unwrap();
        let header = payload.header.clone().unwrap();
        let tx = Transaction::decode(payload.data.as_slice()).unwrap();
        let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.as_slice()).unwrap();
        let endorsed = cap.action.clone().unwrap();
        // Compact envelope: no certificates, no signatures (see the module docs).
        let sh = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
        let compact = Envelope {
            payload: Payload {
                header: Some(Header {
                    channel_header: header.channel_header.clone(),
                    signature_header: SignatureHeader {
                        creator: Vec::new(),
                        nonce: sh.nonce,
                    }
                    .encode_to_vec(),
                }),
                data: Transaction {
                    actions: vec![TransactionAction {
                        header: Vec::new(),
                        payload: ChaincodeActionPayload {
                            chaincode_proposal_payload: Vec::new(),
                            action: Some(ChaincodeEndorsedAction {
                                proposal_response_payload: slim_response(
                                    &endorsed.proposal_response_payload,
                                ),
                                endorsements: Vec::new(),
                            }),
                        }
                        .encode_to_vec(),
                    }],
                }
                .encode_to_vec(),
            }
            .encode_to_vec(),
            signature: Vec::new(),
        };
        let unpacked = unpack_envelope(&compact).unwrap();
        let rw = TxRwSet::decode(&unpacked.actions[0].chaincode_action.results).unwrap();
        let ns = rw.ns_rwsets.iter().find(|n| n.namespace == NS).unwrap();
        let coll = &ns.coll_hashed[0];
        let licence_key = elicense_chaincode::keys::licence(licence_id).unwrap();
        let key_hash = Sha256::digest(licence_key.as_bytes()).to_vec();
        let hw = &coll.hashed.hashed_writes[0];
        assert_eq!(
            hw.key_hash, key_hash,
            "the private write is the licence key"
        );
        let private_value = ledger
            .snapshot()
            .unwrap()
            .get_private(NS, &coll.collection, &licence_key)
            .unwrap()
            .expect("issuer's peer holds the template's private data")
            .value;
        Template {
            envelope: compact.encode_to_vec(),
            licence_id: licence_id.to_owned(),
            txid: txid.to_owned(),
            key_hash,
            value_hash: hw.value_hash.clone(),
            private_value,
            pvt_rwset_hash: coll.pvt_rwset_hash.clone(),
            collection: coll.collection.clone(),
        }
    }

    /// The imported transaction for `licence_id`: envelope bytes, txid, write set and the
    /// issuer's private writes.
    fn instance(&self, licence_id: &str, nonce: u64) -> (Vec<u8>, String, TxRwSet, PvtCollWrites) {
        assert_eq!(licence_id.len(), self.licence_id.len());
        let txid = hex::encode(Sha256::digest(format!("prepop-{nonce}").as_bytes()));
        let key = elicense_chaincode::keys::licence(licence_id).unwrap();
        let key_hash = Sha256::digest(key.as_bytes()).to_vec();
        let mut value = self.private_value.clone();
        substitute(
            &mut value,
            &[(self.licence_id.as_bytes(), licence_id.as_bytes())],
        );
        let value_hash = Sha256::digest(&value).to_vec();
        let kv = KvrwSet {
            writes: vec![KvWrite {
                key,
                is_delete: false,
                value,
            }],
            ..Default::default()
        };
        let pvt_hash = Sha256::digest(kv.encode_to_vec()).to_vec();
        let mut env = self.envelope.clone();
        substitute(
            &mut env,
            &[
                (self.licence_id.as_bytes(), licence_id.as_bytes()),
                (self.txid.as_bytes(), txid.as_bytes()),
                (&self.key_hash, &key_hash),
                (&self.value_hash, &value_hash),
                (&self.pvt_rwset_hash, &pvt_hash),
            ],
        );
        let unpacked = unpack_envelope(&Envelope::decode(env.as_slice()).unwrap()).unwrap();
        let rw = TxRwSet::decode(&unpacked.actions[0].chaincode_action.results).unwrap();
        let pvt = PvtCollWrites {
            namespace: NS.into(),
            collection: self.collection.clone(),
            kv,
        };
        (env, txid, rw, pvt)
    }
}

/// Imports licences `from..to` (serials `P########`) onto the orderer's block store and every
/// channel peer's ledger, in blocks of `block_size`.
fn prepopulate(devnet: &Devnet, template: &Template, from: usize, to: usize, block_size: usize) {
    let orderer = devnet.orderer().chain(CH).unwrap().ledger().clone();
    let peers: Vec<(Ledger, bool)> = devnet
        .peers()
        .iter()
        .filter_map(|p| p.node.channel(CH))
        .map(|pc| {
            let member = pc.context().is_local_member(NS, &template.collection);
            (pc.ledger().clone(), member)
        })
        .collect();
    // The caller has let every peer catch up with the orderer (`settle`): the import appends to
    // the chain beside them.
    let timestamp = (0, 0);
    let mut next = from;
    while next < to {
        let end = (next + block_size).min(to);
        let number = orderer.height();
        let mut data = Vec::with_capacity(end - next);
        let mut member_updates = BlockUpdates::new();
        let mut other_updates = BlockUpdates::new();
        for (tx_num, i) in (next..end).enumerate() {
            let id = LicenceId::build("IDC", "PSB", &format!("P{i:08}")).unwrap();
            let (env, txid, rw, pvt) = template.instance(id.as_str(), i as u64);
            let h = Height {
                block: number,
                tx: tx_num as u64,
            };
            for u in [&mut member_updates, &mut other_updates] {
                u.record_tx(&txid, tx_num as u64, 0);
            }
            member_updates.add_block_tx(h, &txid, timestamp, &rw, std::slice::from_ref(&pvt));
            other_updates.add_block_tx(h, &txid, timestamp, &rw, &[]);
            data.push(env);
        }
        let n = data.len();
        let mut block = new_block(number, orderer.last_header_hash(), data);
        block.metadata.as_mut().unwrap().metadata
            [BlockMetadataIndex::TransactionsFilter as usize] = vec![0; n];
        let header_hash = block_header_hash(block.header.as_ref().unwrap());
        std::thread::scope(|s| {
            s.spawn(|| orderer.commit(&block, &BlockUpdates::new()).unwrap());
            for (ledger, member) in &peers {
                let u = if *member {
                    &member_updates
                } else {
                    &other_updates
                };
                let block = &block;
                s.spawn(move || {
                    assert_eq!(
                        ledger.height(),
                        number,
                        "peer ledger in step with the orderer"
                    );
                    ledger.commit(block, u).unwrap();
                });
            }
        });
        assert_eq!(orderer.last_header_hash(), header_hash);
        next = end;
    }
}

/// Bytes of the files under `dir` (the devnet's ledgers, crypto material, ...).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Nanoseconds this process's live threads have spent runnable but waiting for a core
/// (`/proc/self/task/*/schedstat`, second field): CPU starvation, e.g. by other processes.
fn runqueue_wait_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// CPU ticks per thread (tid → (name, user+system ticks)) from `/proc/self/task`.
fn thread_ticks() -> BTreeMap<u64, (String, u64)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some((head, _))) = (stat.find('('), stat.rsplit_once(')')) else {
            continue;
        };
        let name = head[open + 1..].to_owned();
        out.insert(tid, (name, cpu_ticks(&stat)));
    }
    out
}

/// CPU per thread name over a window, as a share of one core, busiest first.
fn thread_shares(
    before: &BTreeMap<u64, (String, u64)>,
    after: &BTreeMap<u64, (String, u64)>,
    wall: Duration,
) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for (tid, (name, t)) in after {
        let t0 = before.get(tid).map_or(0, |(_, t0)| *t0);
        *by_name.entry(name.clone()).or_default() += t.saturating_sub(t0);
    }
    let mut v: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, t)| (n, t as f64 * 0.01 / wall.as_secs_f64()))
        .filter(|(_, s)| *s >= 0.01)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// This process's resident memory now, in bytes (`/proc/self/status`, `VmRSS`).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Bytes free on the file system holding `dir` (`df`), if it can be read.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

struct RunFigures {
    threads: Vec<(String, f64)>,
    runqueue_wait: Duration,
    committed: usize,
    failed: usize,
    elapsed: Duration,
    cpu: Duration,
    disk_written: u64,
    /// The level process's resident memory at the window's end (over windows: the largest).
    resident: u64,
    latencies: Vec<Duration>,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn issue_load(net: &LicenceNet, tag: &str, count: usize, submitters: usize) -> RunFigures {
    let licences: Vec<NewLicence> = (0..count)
        .map(|i| net.licence(&format!("{tag}{i:07}")))
        .collect();
    let options = BulkOptions {
        concurrency: submitters,
        ..BulkOptions::default()
    };
    let cpu0 = cpu_time("/proc/self/stat");
    let disk0 = disk_write_bytes();
    let threads0 = thread_ticks();
    let wait0 = runqueue_wait_ns();
    let started = Instant::now();
    let items = net.issuer.issue_bulk(licences, &options).await;
    let mut latencies = Vec::with_capacity(count);
    let mut failed = 0;
    for item in items {
        match item.outcome {
            Ok(_) => latencies.push(item.elapsed),
            Err(e) => {
                if failed == 0 {
                    eprintln!("issue failed: {e}");
                }
                failed += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time("/proc/self/stat").saturating_sub(cpu0);
    let disk_written = disk_write_bytes().saturating_sub(disk0);
    let threads = thread_shares(&threads0, &thread_ticks(), elapsed);
    let runqueue_wait = Duration::from_nanos(runqueue_wait_ns().saturating_sub(wait0));
    latencies.sort();
    RunFigures {
        threads,
        runqueue_wait,
        committed: latencies.len(),
        failed,
        elapsed,
        cpu,
        disk_written,
        resident: resident_bytes(),
        latencies,
    }
}

/// The figures of several windows of one level, as one run.
fn merge(runs: Vec<RunFigures>) -> RunFigures {
    let elapsed: Duration = runs.iter().map(|r| r.elapsed).sum();
    let mut threads: BTreeMap<String, f64> = BTreeMap::new();
    for r in &runs {
        // Shares of one core over each window, weighted by the window's length.
        let weight = r.elapsed.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        for (name, share) in &r.threads {
            *threads.entry(name.clone()).or_default() += share * weight;
        }
    }
    let mut threads: Vec<(String, f64)> = threads.into_iter().collect();
    threads.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut latencies: Vec<Duration> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
    latencies.sort();
    RunFigures {
        threads,
        runqueue_wait: runs.iter().map(|r| r.runqueue_wait).sum(),
        committed: runs.iter().map(|r| r.committed).sum(),
        failed: runs.iter().map(|r| r.failed).sum(),
        elapsed,
        cpu: runs.iter().map(|r| r.cpu).sum(),
        disk_written: runs.iter().map(|r| r.disk_written).sum(),
        resident: runs.iter().map(|r| r.resident).max().unwrap_or(0),
        latencies,
    }
}

impl RunFigures {
    /// One line of text (a level's process answers its orchestrator with it).
    fn to_line(&self) -> String {
        let threads: Vec<String> = self
            .threads
            .iter()
            .map(|(n, s)| format!("{}={s}", n.replace([' ', '=', ';'], "_")))
            .collect();
        let latencies: Vec<String> = self
            .latencies
            .iter()
            .map(|l| l.as_micros().to_string())
            .collect();
        format!(
            "{} {} {} {} {} {} {} {} {}",
            self.committed,
            self.failed,
            self.elapsed.as_nanos(),
            self.cpu.as_nanos(),
            self.disk_written,
            self.resident,
            self.runqueue_wait.as_nanos(),
            if threads.is_empty() {
                "-".into()
            } else {
                threads.join(";")
            },
            if latencies.is_empty() {
                "-".into()
            } else {
                latencies.join(",")
            },
        )
    }

    /// Reads [`RunFigures::to_line`] back.
    fn from_line(line: &str) -> Option<RunFigures> {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [committed, failed, elapsed, cpu, disk, resident, wait, threads, latencies] = f[..]
        else {
            return None;
        };
        let nanos = |v: &str| v.parse::<u64>().ok().map(Duration::from_nanos);
        Some(RunFigures {
            committed: committed.parse().ok()?,
            failed: failed.parse().ok()?,
            elapsed: nanos(elapsed)?,
            cpu: nanos(cpu)?,
            disk_written: disk.parse().ok()?,
            resident: resident.parse().ok()?,
            runqueue_wait: nanos(wait)?,
            threads: threads
                .split(';')
                .filter_map(|t| {
                    let (n, s) = t.split_once('=')?;
                    Some((n.to_string(), s.parse().ok()?))
                })
                .collect(),
            latencies: latencies
                .split(',')
                .filter_map(|l| l.parse().ok().map(Duration::from_micros))
                .collect(),
        })
    }
}

/// Waits until every channel peer of `net` has committed every block its orderer has cut (peers
/// commit delivered blocks on their own threads): before an import appends to the chain beside
/// them, and after a window, so no commit of it spills into the next one.
async fn settle(net: &LicenceNet) {
    let orderer = net.devnet.orderer().chain(CH).unwrap().ledger().clone();
    let peers: Vec<Ledger> = net
        .devnet
        .peers()
        .iter()
        .filter_map(|p| p.node.channel(CH))
        .map(|pc| pc.ledger().clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while peers.iter().any(|l| l.height() != orderer.height()) {
        assert!(Instant::now() < deadline, "peers did not catch up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A level's own process: brings a devnet to `target` licences, says `ready ON_LEDGER PREPOP_S`,
/// then runs a window per `run TAG COUNT SUBMITTERS` line on stdin, answering each with its
/// figures, until stdin closes.
async fn level_process(target: usize, dir: &std::path::Path, block_size: usize, warm: usize) {
    use std::io::BufRead;
    let net = LicenceNet::up(dir).await;
    // The template: one licence issued through the gateway.
    let t = net.issuer.issue(net.licence("T00000000")).await.unwrap();
    let issuer_ledger = net
        .devnet
        .peer("PublicSecurity")
        .or_else(|| {
            net.devnet
                .peers()
                .iter()
                .find(|p| p.org == "PublicSecurity")
        })
        .unwrap()
        .node
        .channel(CH)
        .unwrap()
        .ledger()
        .clone();
    let template = Template::from_ledger(
        &issuer_ledger,
        t.block_number,
        &t.transaction_id,
        t.record.id.as_str(),
    );
    let want = target.saturating_sub(1);
    settle(&net).await;
    let started = Instant::now();
    prepopulate(&net.devnet, &template, 0, want, block_size);
    let prepop = started.elapsed();
    eprintln!(
        "level {target}: imported {want} licences in {:.1} s; devnet data {:.2} GB \
         (template envelope {} bytes)",
        prepop.as_secs_f64(),
        dir_bytes(dir) as f64 / 1e9,
        template.envelope.len()
    );
    // Warm-up (connections, caches) outside the measured windows.
    let _ = issue_load(&net, "W", warm, warm).await;
    settle(&net).await;
    println!("ready {} {}", 1 + want + warm, prepop.as_secs_f64());
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        let ["run", tag, count, submitters] = f[..] else {
            panic!("unknown command {line:?}");
        };
        let figures = issue_load(
            &net,
            tag,
            count.parse().unwrap(),
            submitters.parse().unwrap(),
        )
        .await;
        settle(&net).await;
        println!("{}", figures.to_line());
    }
    net.down().await;
}

/// A level's process as the orchestrator sees it.
struct Level {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// Licences on the ledger when the measured windows begin.
    on_ledger: usize,
    prepop: f64,
    windows: Vec<RunFigures>,
    verify_micros: Vec<f64>,
    /// The level's devnet data, removed when the level is dropped (after its process ended).
    dir: tempfile::TempDir,
}

impl Level {
    fn read_line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "a level's process ended early");
        line
    }

    fn run(&mut self, tag: &str, count: usize, submitters: usize) -> RunFigures {
        use std::io::Write;
        writeln!(self.stdin, "run {tag} {count} {submitters}").unwrap();
        self.stdin.flush().unwrap();
        let line = self.read_line();
        RunFigures::from_line(&line).expect("a figures line")
    }
}

fn main() {
    let count: usize = env_or("ISSUE_N", 80_000);
    let submitters: usize = env_or("ISSUE_SUBMITTERS", 1024);
    let block_size: usize = env_or("PREPOP_BLOCK", 2_000);
    let rounds: usize = env_or("ISSUE_ROUNDS", 4usize).max(1);
    let warm = submitters.min(256);
    if let Ok(target) = std::env::var("ISSUE_LEVEL_PROCESS") {
        let dir = std::env::var("ISSUE_LEVEL_DIR").expect("ISSUE_LEVEL_DIR");
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(level_process(
                target.parse().unwrap(),
                std::path::Path::new(&dir),
                block_size,
                warm,
            ));
        return;
    }
    let targets: Vec<usize> = std::env::var("ISSUE_LEVELS")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    println!(
        "devnet bulk issuance through the gateway: channel {CH}, {submitters} concurrent submitters, \
         {count} licences per level in {rounds} windows, levels interleaved, each level's devnet \
         and chaincode in a process of its own"
    );
    // Devnet data added per imported licence, as measured by the last import of 1,000 or more.
    let mut per_licence: u64 = 40_000;
    let mut levels: Vec<Level> = Vec::new();
    for target in targets {
        let dir = match std::env::var("ISSUE_DIR") {
            Ok(d) => tempfile::Builder::new().tempdir_in(d).unwrap(),
            Err(_) => tempfile::tempdir().unwrap(),
        };
        let want = target.saturating_sub(1);
        // Each imported licence costs tens of KB across the four ledger copies: skip a level
        // that would fill the disk rather than fail half-way (and starve everything else).
        // The cost is the growth of the devnet's data over an import (not its average: the
        // fixed files dominate a small ledger); about 23 KB measured up to 1,000,000
        // licences, 40 KB assumed before anything was measured. The windows' licences come on
        // top.
        let need = (per_licence * (want + count) as u64) * 5 / 4;
        if let Some(free) = free_bytes(dir.path()) {
            if need > free {
                println!(
                    "{target:>12} skipped: importing {want} licences and issuing {count} \
                     needs about {:.1} GB ({:.0} KB of devnet data per licence), {:.1} GB free",
                    need as f64 / 1e9,
                    per_licence as f64 / 1e3,
                    free as f64 / 1e9
                );
                continue;
            }
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("ISSUE_LEVEL_PROCESS", target.to_string())
            .env("ISSUE_LEVEL_DIR", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut level = Level {
            child,
            stdin,
            stdout,
            on_ledger: 0,
            prepop: 0.0,
            windows: Vec::new(),
            verify_micros: Vec::new(),
            dir,
        };
        let ready = level.read_line();
        let f: Vec<&str> = ready.split_whitespace().collect();
        let ["ready", on_ledger, prepop] = f[..] else {
            panic!("expected ready, got {ready:?}");
        };
        level.on_ledger = on_ledger.parse().unwrap();
        level.prepop = prepop.parse().unwrap();
        if want >= 1_000 {
            per_licence = (dir_bytes(level.dir.path()) / want as u64).max(20_000);
        }
        levels.push(level);
    }
    // The levels' windows alternate, in mirrored order (A B B A ...), so a change of the
    // machine's speed during the run weighs on every level alike.
    for round in 0..rounds {
        let n = count / rounds + usize::from(round < count % rounds);
        let order: Vec<usize> = if round % 2 == 0 {
            (0..levels.len()).collect()
        } else {
            (0..levels.len()).rev().collect()
        };
        for i in order {
            let level = &mut levels[i];
            let verify = ecdsa_verify_micros();
            level.verify_micros.push(verify);
            let f = level.run(&format!("G{round}R"), n, submitters);
            // Each window on its own, as it ends: where the levels' figures part, these show
            // whether a level costs more or the machine was slower during its windows.
            eprintln!(
                "window {round} at {}: {:.0} tx/s, {:.3} ms CPU per tx, verify {verify:.1} µs",
                level.on_ledger,
                f.committed as f64 / f.elapsed.as_secs_f64(),
                f.cpu.as_secs_f64() * 1e3 / f.committed.max(1) as f64,
            );
            level.windows.push(f);
        }
    }
    println!(
        "{:>12} {:>10} {:>9} {:>10} {:>9} {:>9} {:>9} {:>12} {:>11} {:>8} {:>10} {:>8}",
        "on ledger",
        "prepop s",
        "tx/s",
        "committed",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "CPU ms/tx",
        "disk KB/tx",
        "failed",
        "verify µs",
        "RSS MiB"
    );
    let mut first_rate: Option<f64> = None;
    for level in &mut levels {
        let f = merge(std::mem::take(&mut level.windows));
        let rate = f.committed as f64 / f.elapsed.as_secs_f64();
        let cpu_per_tx = f.cpu.as_secs_f64() * 1000.0 / f.committed.max(1) as f64;
        let verify = level.verify_micros.iter().sum::<f64>() / level.verify_micros.len() as f64;
        println!(
            "{:>12} {:>10.1} {:>9.0} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>12.3} {:>11.1} {:>8} {:>10.1} {:>8.0}",
            level.on_ledger,
            level.prepop,
            rate,
            f.committed,
            pct(&f.latencies, 0.50),
            pct(&f.latencies, 0.95),
            pct(&f.latencies, 0.99),
            cpu_per_tx,
            f.disk_written as f64 / 1e3 / f.committed.max(1) as f64,
            f.failed,
            verify,
            f.resident as f64 / (1024.0 * 1024.0)
        );
        let shares: Vec<String> = f
            .threads
            .iter()
            .map(|(n, s)| format!("{n} {:.0}%", s * 100.0))
            .collect();
        println!(
            "{:>12} CPU by thread (% of one core over its windows): {}; runnable but waiting for \
             a core: {:.2} thread-s per s",
            "",
            shares.join(", "),
            f.runqueue_wait.as_secs_f64() / f.elapsed.as_secs_f64()
        );
        match first_rate {
            None => first_rate = Some(rate),
            Some(first) => println!(
                "{:>12} tx/s {:+.1}% against the first level",
                "",
                (rate / first - 1.0) * 100.0
            ),
        }
    }
    for mut level in levels {
        // Closing its stdin ends a level's process; it stops its devnet first.
        drop(level.stdin);
        level.child.wait().unwrap();
    }
}
