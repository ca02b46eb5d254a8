//! Transactions a real peer rejects, built with fabric-common's transaction helpers, endorsed by
//! the devnet's peers and sent through the devnet orderer's gRPC Broadcast over TLS: each one
//! gets the `TxValidationCode` (names from fabric-protos) a real Fabric peer records, read both
//! from the committed blocks' transaction filters on every peer and through the Gateway's
//! CommitStatus. The test prints the table.

#[path = "peer_fixture.rs"]
mod peer_fixture;
#[path = "interop_support/mod.rs"]
mod support;

use std::time::Duration;

use fabric_common::crypto::Signer;
use fabric_common::identity::SigningIdentity;
use fabric_common::tx::{create_chaincode_proposal, create_signed_tx, ChaincodeInvocation};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_devnet::material::x509::{CertSpec, CertUsage, Name};
use fabric_protos::common::{BlockMetadataIndex, ChannelHeader, Envelope, Header, Status};
use fabric_protos::gateway::gateway_client::GatewayClient;
use fabric_protos::gateway::{CommitStatusRequest, SignedCommitStatusRequest};
use fabric_protos::kvrwset::KvrwSet;
use fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use fabric_protos::protos::{
    ChaincodeAction, Proposal, ProposalResponse, ProposalResponsePayload, TxValidationCode as Code,
};
use fabric_protos::rwset::TxReadWriteSet;
use prost::Message;
use support::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// A TLS channel to `addr`, trusting the PEM in `ca`, checking the name `host`.
async fn tls_channel(addr: &str, ca: &std::path::Path, host: &str) -> Channel {
    let pem = std::fs::read(ca).unwrap();
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem))
                .domain_name(host),
        )
        .unwrap()
        .connect()
        .await
        .unwrap()
}

struct Net {
    devnet: Devnet,
    client: SigningIdentity,
    orderer: AtomicBroadcastClient<Channel>,
    gateway: GatewayClient<Channel>,
}

impl Net {
    /// Endorses `args` on `cc` on the given organisations' peers.
    async fn endorse(
        &self,
        cc: &str,
        args: &[&str],
        orgs: &[&str],
    ) -> (Proposal, String, Vec<ProposalResponse>) {
        let inv = ChaincodeInvocation::new(CH, cc, args[0], &args[1..]);
        let up = create_chaincode_proposal(&inv, self.client.serialized());
        let sp = up.sign(&self.client).unwrap();
        let mut out = Vec::new();
        for org in orgs {
            let peer = self.devnet.peer(org).unwrap();
            let r = peer.node.process_proposal(sp.clone()).await.unwrap();
            assert_eq!(r.response.as_ref().unwrap().status, 200, "{org}: {r:?}");
            out.push(r);
        }
        (up.proposal, up.tx_id, out)
    }

    /// The transaction envelope, signed by the client.
    fn envelope(&self, prop: &Proposal, responses: &[ProposalResponse]) -> Envelope {
        create_signed_tx(prop, &self.client, self.client.serialized(), responses).unwrap()
    }

    /// Sends envelopes on one Broadcast stream; the orderer's status for each.
    async fn broadcast(&self, envs: Vec<Envelope>) -> Vec<(Status, String)> {
        let n = envs.len();
        let mut stream = self
            .orderer
            .clone()
            .broadcast(tokio_stream::iter(envs))
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while out.len() < n {
            let r = stream
                .message()
                .await
                .unwrap()
                .expect("a response per envelope");
            out.push((Status::try_from(r.status).unwrap(), r.info));
        }
        out
    }

    /// Broadcasts, expecting SUCCESS, and waits until every peer has committed the block that
    /// holds the last of them.
    async fn order(&self, envs: Vec<Envelope>) {
        for (status, info) in self.broadcast(envs).await {
            assert_eq!(status, Status::Success, "{info}");
        }
        self.settle().await;
    }

    /// Waits until every peer's ledger has the orderer's height and the orderer cut no more.
    async fn settle(&self) {
        let chain = self.devnet.orderer().chain(CH).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            // The batch timeout cuts a pending batch; wait past it, then for the peers.
            tokio::time::sleep(Duration::from_millis(250)).await;
            let h = chain.ledger().height();
            if self
                .devnet
                .peers()
                .iter()
                .all(|p| p.node.channel(CH).unwrap().ledger().height() == h)
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "peers did not catch up"
            );
        }
    }

    /// Every occurrence of `txid` in the blocks of every peer, with the code in the block's
    /// transaction filter; all peers must agree.
    fn codes_in_blocks(&self, txid: &str) -> Vec<Code> {
        let mut per_peer = Vec::new();
        for p in self.devnet.peers() {
            let ledger = p.node.channel(CH).unwrap().ledger().clone();
            let mut codes = Vec::new();
            for n in 1..ledger.height() {
                let block = ledger.block(n).unwrap().unwrap();
                let filter = &block.metadata.as_ref().unwrap().metadata
                    [BlockMetadataIndex::TransactionsFilter as usize];
                for (i, env) in block.data.as_ref().unwrap().data.iter().enumerate() {
                    let tx = fabric_common::tx::unpack_envelope_bytes(env).unwrap();
                    if tx.tx_id() == txid {
                        codes.push(Code::try_from(i32::from(filter[i])).unwrap());
                    }
                }
            }
            per_peer.push(codes);
        }
        for other in &per_peer[1..] {
            assert_eq!(other, &per_peer[0], "peers disagree on {txid}");
        }
        per_peer.remove(0)
    }

    /// The Gateway's CommitStatus for `txid`, asked of the Police peer.
    async fn commit_status(&self, txid: &str) -> (Code, u64) {
        let request = CommitStatusRequest {
            transaction_id: txid.into(),
            channel_id: CH.into(),
            identity: self.client.serialized().to_vec(),
        }
        .encode_to_vec();
        let signature = self.client.sign(&request).unwrap();
        let r = self
            .gateway
            .clone()
            .commit_status(SignedCommitStatusRequest { request, signature })
            .await
            .unwrap()
            .into_inner();
        (Code::try_from(r.result).unwrap(), r.block_number)
    }
}

/// The order of the P-256 group.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The same ECDSA signature with S replaced by N - S: mathematically valid, but Fabric accepts
/// only low-S signatures.
fn high_s(der: &[u8]) -> Vec<u8> {
    let (r, s) = yasna::parse_der(der, |rd| {
        rd.read_sequence(|rd| {
            let r = rd.next().read_bigint_bytes()?.0;
            let s = rd.next().read_bigint_bytes()?.0;
            Ok((r, s))
        })
    })
    .unwrap();
    let mut s32 = [0u8; 32];
    let s: Vec<u8> = s.into_iter().skip_while(|b| *b == 0).collect();
    s32[32 - s.len()..].copy_from_slice(&s);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(s32[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = d.rem_euclid(256) as u8;
    }
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(&r, true);
            w.next().write_bigint_bytes(&out, true);
        })
    })
}

struct Row {
    case: &'static str,
    expected: String,
    devnet: String,
    /// The transaction, when it reached the peers and is its txid's first occurrence.
    txid: Option<String>,
}

fn row(case: &'static str, expected: Code, got: Code, txid: Option<&str>) -> Row {
    Row {
        case,
        expected: expected.as_str_name().into(),
        devnet: got.as_str_name().into(),
        txid: txid.map(str::to_string),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_transactions_get_the_validation_codes_of_a_real_peer() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(topology(), dir.path()))
        .await
        .unwrap();
    // `kv`: either organisation may endorse; `kvpolice`: only the Police peer.
    let mut servers = Vec::new();
    for (name, policy) in [
        ("kv", "OR('PoliceMSP.peer','ServiceMSP.peer')"),
        ("kvpolice", "OR('PoliceMSP.peer')"),
    ] {
        let addr = format!("127.0.0.1:{}", free_port());
        let d = devnet
            .deploy_ccaas(&DeployRequest {
                name: name.into(),
                address: addr.clone(),
                policy: Some(policy.into()),
                ..Default::default()
            })
            .unwrap();
        servers.push(peer_fixture::start_chaincode(&d.package_id, &addr).await);
    }
    let summary = devnet.summary();
    let client =
        fabric_common::msp::read_signing_identity(&summary.msp["Service"]["clerk1"], "ServiceMSP")
            .unwrap();
    let orderer = AtomicBroadcastClient::new(
        tls_channel(
            &summary.orderer,
            &summary.orderer_tls_ca_cert,
            &summary.orderer_host,
        )
        .await,
    );
    let police = summary.peers.iter().find(|p| p.org == "Police").unwrap();
    let gateway =
        GatewayClient::new(tls_channel(&police.address, &police.tls_ca_cert, &police.host).await);
    let net = Net {
        devnet,
        client,
        orderer,
        gateway,
    };
    let mut table: Vec<Row> = Vec::new();

    // Setup, all VALID: values for key-level policy, MVCC and ranges; then a key-level
    // policy (Police only) on `sbe` (Fabric ignores metadata on a key that does not exist).
    let (p, t_sbe, r) = net.endorse("kv", &["put", "sbe", "0"], &["Service"]).await;
    let e1 = net.envelope(&p, &r);
    let (p, t_mv, r) = net.endorse("kv", &["put", "mv", "1"], &["Service"]).await;
    let e2 = net.envelope(&p, &r);
    let (p, _, r) = net.endorse("kv", &["put", "r1", "a"], &["Service"]).await;
    let e3 = net.envelope(&p, &r);
    net.order(vec![e1, e2, e3]).await;
    let (p, t_setvp, r) = net
        .endorse("kv", &["setvp", "sbe", "OR('PoliceMSP.peer')"], &["Police"])
        .await;
    net.order(vec![net.envelope(&p, &r)]).await;
    for t in [&t_sbe, &t_mv, &t_setvp] {
        assert_eq!(net.codes_in_blocks(t), vec![Code::Valid]);
    }

    // 1. Valid control: endorsed by a peer the policies accept.
    let (p, t, r) = net
        .endorse("kv", &["put", "sbe", "police"], &["Police"])
        .await;
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "valid (control)",
        Code::Valid,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 2. A forged endorsement signature: the only endorsement no longer verifies, so the
    //    policy is not met.
    let (p, t, mut r) = net
        .endorse("kv", &["put", "forged", "x"], &["Police"])
        .await;
    let sig = &mut r[0].endorsement.as_mut().unwrap().signature;
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "forged endorser signature",
        Code::EndorsementPolicyFailure,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 2b. A high-S endorsement signature (valid ECDSA, but Fabric's BCCSP refuses high S).
    let (p, t, mut r) = net.endorse("kv", &["put", "highs", "x"], &["Police"]).await;
    let payload = r[0].payload.clone();
    let e = r[0].endorsement.as_mut().unwrap();
    e.signature = high_s(&e.signature);
    // Still a valid ECDSA signature over what the endorser signs; only its S is high.
    let signed = [payload.as_slice(), e.endorser.as_slice()].concat();
    let endorser = fabric_common::identity::Identity::from_serialized(&e.endorser).unwrap();
    endorser
        .public_key()
        .verify_allow_high_s(&signed, &e.signature)
        .expect("mathematically valid");
    assert!(endorser.public_key().verify(&signed, &e.signature).is_err());
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "high-S endorser signature",
        Code::EndorsementPolicyFailure,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 2c. The write set altered after endorsement: the endorsers signed other results.
    let (p, t, mut r) = net
        .endorse("kv", &["put", "tamper", "endorsed"], &["Police"])
        .await;
    let mut prp = ProposalResponsePayload::decode(r[0].payload.as_slice()).unwrap();
    let mut action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let mut rwset = TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    let ns = rwset
        .ns_rwset
        .iter_mut()
        .find(|n| n.namespace == "kv")
        .unwrap();
    let mut kv = KvrwSet::decode(ns.rwset.as_slice()).unwrap();
    kv.writes[0].value = b"tampered".to_vec();
    ns.rwset = kv.encode_to_vec();
    action.results = rwset.encode_to_vec();
    prp.extension = action.encode_to_vec();
    r[0].payload = prp.encode_to_vec();
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "write set altered after endorsement",
        Code::EndorsementPolicyFailure,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));
    for peer in net.devnet.peers() {
        let ledger = peer.node.channel(CH).unwrap().ledger().clone();
        assert!(ledger.get_state("kv", "tamper").unwrap().is_none());
    }

    // 2d. A transaction ID that is not the hash of the nonce and creator.
    let (mut p, _, r) = net
        .endorse("kv", &["put", "badtxid", "x"], &["Police"])
        .await;
    let mut header = Header::decode(p.header.as_slice()).unwrap();
    let mut chdr = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    chdr.tx_id = hex::encode([0x5a; 32]);
    header.channel_header = chdr.encode_to_vec();
    p.header = header.encode_to_vec();
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "txid not hash(nonce, creator)",
        Code::BadProposalTxid,
        net.codes_in_blocks(&chdr.tx_id)[0],
        None,
    ));

    // 3. A forged creator signature on the envelope: the orderer refuses it at Broadcast
    //    (/Channel/Writers), as a real orderer does; no peer ever sees it.
    let (p, t, r) = net
        .endorse("kv", &["put", "forged2", "x"], &["Police"])
        .await;
    let mut env = net.envelope(&p, &r);
    let last = env.signature.len() - 1;
    env.signature[last] ^= 0x01;
    let refused = net.broadcast(vec![env]).await;
    table.push(Row {
        case: "forged creator signature",
        expected: "Broadcast FORBIDDEN".into(),
        devnet: format!("Broadcast {}", refused[0].0.as_str_name()),
        txid: None,
    });
    net.settle().await;
    assert!(net.codes_in_blocks(&t).is_empty(), "never ordered");

    // 3b. An expired creator certificate (issued by the organisation's own CA): the orderer
    //     refuses it at Broadcast, before any policy.
    let org = net.devnet.crypto().org("Service").unwrap().clone();
    let key = fabric_common::crypto::SigningKey::generate();
    let now = time::OffsetDateTime::now_utc();
    let cert = org
        .ca
        .issue(&CertSpec {
            subject: Name {
                organizational_unit: vec!["client".into()],
                common_name: "expired1".into(),
                ..Default::default()
            },
            public_key_spki: key.public_key().to_spki_der(),
            usage: CertUsage::Enrollment,
            hosts: Vec::new(),
            attributes: None,
            not_before: now - time::Duration::days(2),
            not_after: now - time::Duration::days(1),
        })
        .unwrap();
    let expired = SigningIdentity::new(
        fabric_common::identity::Identity::new("ServiceMSP", cert.pem.as_bytes()).unwrap(),
        std::sync::Arc::new(key),
    );
    let inv = ChaincodeInvocation::new(CH, "kv", "put", &["expired", "x"]);
    let up = create_chaincode_proposal(&inv, expired.serialized());
    // Any endorsement will do: the orderer checks the creator first.
    let (_, _, r) = net
        .endorse("kv", &["put", "expired", "x"], &["Police"])
        .await;
    let env = create_signed_tx(&up.proposal, &expired, expired.serialized(), &r).unwrap();
    let refused = net.broadcast(vec![env]).await;
    assert_eq!(refused[0].1, "broadcast client identity expired");
    table.push(Row {
        case: "expired creator certificate",
        expected: "Broadcast BAD_REQUEST".into(),
        devnet: format!("Broadcast {}", refused[0].0.as_str_name()),
        txid: None,
    });
    net.settle().await;
    assert!(net.codes_in_blocks(&up.tx_id).is_empty(), "never ordered");

    // 4. Endorsed by the wrong organisation: `kvpolice` needs the Police peer.
    let (p, t, r) = net
        .endorse("kvpolice", &["put", "k", "v"], &["Service"])
        .await;
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "endorsement by the wrong org",
        Code::EndorsementPolicyFailure,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 5. Key-level policy: `sbe` needs the Police peer; the chaincode policy alone is met.
    let (p, t, r) = net
        .endorse("kv", &["put", "sbe", "service"], &["Service"])
        .await;
    net.order(vec![net.envelope(&p, &r)]).await;
    table.push(row(
        "key-level policy violation",
        Code::EndorsementPolicyFailure,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 6. MVCC: `mv` is read at version 1, then updated by another transaction before this one
    //    commits.
    let (p_read, t, r_read) = net.endorse("kv", &["get", "mv"], &["Police"]).await;
    let (p, _, r) = net.endorse("kv", &["put", "mv", "2"], &["Service"]).await;
    net.order(vec![net.envelope(&p, &r)]).await;
    net.order(vec![net.envelope(&p_read, &r_read)]).await;
    table.push(row(
        "MVCC conflict",
        Code::MvccReadConflict,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 6b. MVCC within one block: the read is stale because an earlier valid transaction of
    //     the same block wrote the key. (Sent on one stream they share a block; should a batch
    //     timeout fall between them, the case is tried again.)
    let police_ledger = net
        .devnet
        .peer("Police")
        .unwrap()
        .node
        .channel(CH)
        .unwrap()
        .ledger()
        .clone();
    let mut same_block = None;
    for attempt in 0..3 {
        let (p_read, t, r_read) = net.endorse("kv", &["get", "mv"], &["Police"]).await;
        let value = format!("same-block-{attempt}");
        let (p, t_write, r) = net
            .endorse("kv", &["put", "mv", &value], &["Service"])
            .await;
        net.order(vec![net.envelope(&p, &r), net.envelope(&p_read, &r_read)])
            .await;
        assert_eq!(net.codes_in_blocks(&t_write), vec![Code::Valid]);
        let block_of = |txid: &str| police_ledger.tx_location(txid).unwrap().unwrap().block;
        if block_of(&t_write) == block_of(&t) {
            same_block = Some(t);
            break;
        }
    }
    let t = same_block.expect("a write and a read in one block");
    table.push(row(
        "MVCC conflict (same block)",
        Code::MvccReadConflict,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 7. Phantom read: a range query's results change (a key inserted into the range) before
    //    the transaction commits.
    let (p_range, t, r_range) = net.endorse("kv", &["range", "r0", "r9"], &["Police"]).await;
    assert_eq!(r_range[0].response.as_ref().unwrap().payload, b"r1");
    let (p, _, r) = net.endorse("kv", &["put", "r5", "b"], &["Service"]).await;
    net.order(vec![net.envelope(&p, &r)]).await;
    net.order(vec![net.envelope(&p_range, &r_range)]).await;
    table.push(row(
        "phantom read",
        Code::PhantomReadConflict,
        net.codes_in_blocks(&t)[0],
        Some(&t),
    ));

    // 8. Duplicate txid: the same envelope twice in one block, and again in a later block.
    let (p, t, r) = net.endorse("kv", &["put", "dup", "1"], &["Police"]).await;
    let env = net.envelope(&p, &r);
    net.order(vec![env.clone(), env.clone()]).await;
    net.order(vec![env]).await;
    let codes = net.codes_in_blocks(&t);
    assert_eq!(codes.len(), 3, "{codes:?}");
    assert_eq!(codes[0], Code::Valid);
    table.push(row(
        "duplicate txid (same block)",
        Code::DuplicateTxid,
        codes[1],
        None,
    ));
    table.push(row(
        "duplicate txid (later block)",
        Code::DuplicateTxid,
        codes[2],
        None,
    ));
    // CommitStatus reports the first occurrence, as Fabric's txid index holds it.
    assert_eq!(net.commit_status(&t).await.0, Code::Valid);

    // Every code, through the Gateway's CommitStatus too.
    for row in &table {
        if let Some(t) = &row.txid {
            let (code, _) = net.commit_status(t).await;
            assert_eq!(
                code.as_str_name(),
                row.devnet,
                "CommitStatus of {}",
                row.case
            );
        }
    }
    println!(
        "
{:<38} {:<30} {:<30}",
        "case", "real Fabric peer", "devnet"
    );
    for row in &table {
        println!("{:<38} {:<30} {:<30}", row.case, row.expected, row.devnet);
    }
    for row in &table {
        assert_eq!(row.expected, row.devnet, "{}", row.case);
    }
    net.devnet.down().await;
    drop(servers);
}
