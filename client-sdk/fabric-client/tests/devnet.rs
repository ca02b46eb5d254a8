//! The Gateway and CA clients end to end on the embedded devnet, over TLS: offline signing of
//! proposal, transaction and commit status request that the peers accept; a checkpointed event
//! stream stopped and resumed with no event lost or repeated; full, filtered and private-data
//! block events; an identity enrolled from the devnet's Fabric CA transacting on the channel;
//! fail-over, errors typed by stage with each peer's detail, commit validation codes, named
//! contracts and per-call deadlines; mutual TLS, keepalive and message size limits.

#[path = "support/notes.rs"]
mod notes;

use fabric_client::ca::{
    CaClient, CaClientOptions, EnrollmentRequest, MspWriteOptions, ReenrollmentRequest,
    RegistrationRequest, RevocationRequest,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fabric_client::gateway::{
    BlockEventsKind, CallOptions, Checkpointer, Connection, ConnectionOptions, DeliverEvent,
    Endpoint, EventsOptions, FileCheckpointer, Gateway, GatewayError, GatewayOptions,
    TxValidationCode,
};
use fabric_client::profile::ConnectionProfile;
use fabric_client::Signer as _;
use fabric_client::{msp, Identity, PrivateKeySigner, SigningIdentity};
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;
use notes::Notes;

const CH: &str = "police-service";
const CC: &str = "notes";

struct Net {
    devnet: Devnet,
    summary: DevnetSummary,
    chaincode: fabric_chaincode::RunningServer,
    _dir: tempfile::TempDir,
}

impl Net {
    async fn up() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
            .await
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let deployed = devnet
            .deploy_ccaas(&DeployRequest {
                name: CC.into(),
                address: address.clone(),
                channels: vec![CH.into()],
                policy: Some(
                    "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')"
                        .into(),
                ),
                ..Default::default()
            })
            .unwrap();
        let chaincode = fabric_chaincode::ChaincodeServer::new(
            fabric_chaincode::ServerConfig {
                address,
                chaincode_id: deployed.package_id,
                tls: None,
            },
            Notes,
        )
        .start()
        .await
        .unwrap();
        let summary = devnet.summary();
        Net {
            devnet,
            summary,
            chaincode,
            _dir: dir,
        }
    }

    fn msp_id(&self, org: &str) -> String {
        self.summary
            .peers
            .iter()
            .find(|p| p.org == org)
            .unwrap()
            .msp_id
            .clone()
    }

    fn peer(&self, org: &str) -> &fabric_devnet::devnet::PeerSummary {
        self.summary.peers.iter().find(|p| p.org == org).unwrap()
    }

    fn endpoint(&self, org: &str) -> Endpoint {
        let peer = self.peer(org);
        Endpoint::new(peer.url.clone())
            .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
            .server_name(peer.host.clone())
    }

    fn connection(&self, org: &str) -> Connection {
        Connection::new(vec![self.endpoint(org)], &ConnectionOptions::default()).unwrap()
    }

    /// A gateway over `endpoints` with `options`, as `user` of `org`.
    fn gateway_over(
        &self,
        endpoints: Vec<Endpoint>,
        options: &ConnectionOptions,
        org: &str,
        user: &str,
    ) -> Gateway {
        Gateway::for_signing_identity(
            Connection::new(endpoints, options).unwrap(),
            &self.signing(org, user),
            GatewayOptions::default(),
        )
    }

    /// The organisation admin's TLS client certificate and key, issued by the org's TLS CA.
    fn admin_tls(&self, org: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = self
            .summary
            .data_dir
            .join("crypto")
            .join(org)
            .join("users/Admin/tls");
        (dir.join("client.crt"), dir.join("client.key"))
    }

    fn signing(&self, org: &str, user: &str) -> SigningIdentity {
        msp::load_signing_identity(&self.msp_id(org), &self.summary.msp[org][user]).unwrap()
    }

    fn gateway(&self, org: &str, user: &str) -> Gateway {
        Gateway::for_signing_identity(
            self.connection(org),
            &self.signing(org, user),
            GatewayOptions::default(),
        )
    }

    async fn down(self) {
        self.chaincode.shutdown().await.unwrap();
        self.devnet.down().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_signed_transactions_are_accepted_by_the_peers() {
    let net = Net::up().await;
    let dir = &net.summary.msp["ServiceCentre"]["clerk1"];
    let msp_id = net.msp_id("ServiceCentre");
    // The client holds only the certificate; the key stays with the "signing service".
    let identity: Identity = msp::load_identity(&msp_id, dir).unwrap();
    let key = net.signing("ServiceCentre", "clerk1");
    let offline = Gateway::new(
        net.connection("ServiceCentre"),
        identity,
        None,
        GatewayOptions::default(),
    );
    let contract = offline.network(CH).contract(CC);

    let unsigned = contract
        .new_proposal("put")
        .string_args(&["offline", "signed elsewhere"])
        .build()
        .unwrap();
    assert!(matches!(
        unsigned.endorse().await,
        Err(fabric_client::GatewayError::Unsigned(_))
    ));
    // Sign the digest elsewhere, restore from bytes, endorse.
    let signature = key.signer().sign(&unsigned.digest()).unwrap();
    let proposal = offline
        .new_signed_proposal(&unsigned.bytes(), signature)
        .unwrap();
    let unsigned_tx = proposal.endorse().await.unwrap();
    assert_eq!(unsigned_tx.result(), b"offline");
    let signature = key.signer().sign(&unsigned_tx.digest()).unwrap();
    let tx = offline
        .new_signed_transaction(&unsigned_tx.bytes(), signature)
        .unwrap();
    let unsigned_commit = tx.submit().await.unwrap();
    let signature = key.signer().sign(&unsigned_commit.digest()).unwrap();
    let commit = offline
        .new_signed_commit(&unsigned_commit.bytes(), signature)
        .unwrap();
    let status = commit.status().await.unwrap();
    assert_eq!(status.code, TxValidationCode::Valid);
    assert_eq!(status.transaction_id, proposal.transaction_id());

    let online = net.gateway("ServiceCentre", "clerk1");
    let value = online
        .network(CH)
        .contract(CC)
        .evaluate_transaction("get", &["offline"])
        .await
        .unwrap();
    assert_eq!(value, b"signed elsewhere");

    // A proposal signed by another key than its creator's is refused at endorsement.
    let other = PrivateKeySigner::generate();
    let unsigned = contract
        .new_proposal("put")
        .string_args(&["forged", "x"])
        .build()
        .unwrap();
    let forged = offline
        .new_signed_proposal(
            &unsigned.bytes(),
            fabric_client::Signer::sign(&other, &unsigned.digest()).unwrap(),
        )
        .unwrap();
    assert!(forged.endorse().await.is_err());
    net.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpointed_event_stream_resumes_without_loss_or_repeat() {
    let net = Net::up().await;
    let gateway = net.gateway("PublicSecurity", "clerk1");
    let network = gateway.network(CH);
    let contract = network.contract(CC);
    let mut first_block = None;
    for i in 0..3 {
        let (_, commit) = contract
            .submit_async("put", &[format!("k{i}"), format!("v{i}")])
            .await
            .unwrap();
        let status = commit.status().await.unwrap();
        first_block.get_or_insert(status.block_number);
    }
    let start = first_block.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("checkpoint.json");
    let mut seen = Vec::new();
    {
        let checkpointer = FileCheckpointer::open(&path).unwrap();
        let options = EventsOptions {
            start_block: Some(start),
            checkpoint: Some(&checkpointer),
        };
        let mut events = network.chaincode_events(CC, &options).await.unwrap();
        for _ in 0..2 {
            let e = events.next().await.unwrap().unwrap();
            seen.push(String::from_utf8(e.payload.clone()).unwrap());
            checkpointer.checkpoint_chaincode_event(&e).unwrap();
        }
        // The stream is dropped here: the process "crashes" after two events.
    }
    for i in 3..5 {
        contract
            .submit_transaction("put", &[format!("k{i}"), format!("v{i}")])
            .await
            .unwrap();
    }
    // A new process opens the same checkpoint file and carries on.
    let checkpointer = FileCheckpointer::open(&path).unwrap();
    let options = EventsOptions {
        start_block: Some(start),
        checkpoint: Some(&checkpointer),
    };
    let mut events = network.chaincode_events(CC, &options).await.unwrap();
    for _ in 0..3 {
        let e = events.next().await.unwrap().unwrap();
        seen.push(String::from_utf8(e.payload.clone()).unwrap());
        checkpointer.checkpoint_chaincode_event(&e).unwrap();
    }
    assert_eq!(seen, ["k0", "k1", "k2", "k3", "k4"]);
    net.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_events_full_filtered_and_with_private_data() {
    let net = Net::up().await;
    let gateway = net.gateway("PublicSecurity", "clerk1");
    let network = gateway.network(CH);
    let (_, commit) = network
        .contract(CC)
        .submit_async("put", &["block", "event"])
        .await
        .unwrap();
    let status = commit.status().await.unwrap();
    let options = EventsOptions::start_block(status.block_number);
    for kind in [
        BlockEventsKind::Full,
        BlockEventsKind::Filtered,
        BlockEventsKind::WithPrivateData,
    ] {
        let mut blocks = network.block_events(kind, &options).await.unwrap();
        let event = blocks.next().await.unwrap().unwrap();
        assert_eq!(event.block_number(), status.block_number, "{kind:?}");
        match event {
            DeliverEvent::Filtered(f) => {
                let tx = f
                    .filtered_transactions
                    .iter()
                    .find(|t| t.txid == status.transaction_id)
                    .expect("our transaction is in the filtered block");
                assert_eq!(tx.tx_validation_code, TxValidationCode::Valid as i32);
            }
            DeliverEvent::Block(b) => assert!(!b.data.unwrap().data.is_empty()),
            DeliverEvent::WithPrivateData(b) => assert!(b.block.is_some()),
        }
    }
    net.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_watcher_reports_every_transaction_in_flight_from_one_stream() {
    let net = Net::up().await;
    let gateway = net.gateway("PublicSecurity", "clerk1");
    let network = gateway.network(CH);
    let contract = network.contract(CC);
    let watcher = network.commit_watcher().await.unwrap();
    assert_eq!(watcher.channel(), CH);
    assert!(watcher.is_following());

    // Twenty transactions in flight at once, each followed through the one stream.
    let submissions = (0..20).map(|i| {
        let contract = contract.clone();
        let watcher = watcher.clone();
        async move {
            let tx = contract
                .new_proposal("put")
                .string_args(&[format!("watched-{i}"), format!("v{i}")])
                .build()
                .unwrap()
                .endorse()
                .await
                .unwrap();
            tx.submit_watched(&watcher).await.unwrap()
        }
    });
    let statuses = futures_join_all(submissions).await;
    for status in &statuses {
        assert!(status.successful, "{status:?}");
        assert_eq!(status.code, TxValidationCode::Valid);
        assert!(status.block_number > watcher.start_block());
        // The block named holds the transaction, with that code.
        let mut blocks = network
            .block_events(
                BlockEventsKind::Filtered,
                &EventsOptions::start_block(status.block_number),
            )
            .await
            .unwrap();
        let Some(Ok(DeliverEvent::Filtered(block))) = blocks.next().await else {
            panic!("no filtered block {}", status.block_number)
        };
        assert!(block
            .filtered_transactions
            .iter()
            .any(|t| t.txid == status.transaction_id
                && t.tx_validation_code == TxValidationCode::Valid as i32));
    }
    for i in [0, 19] {
        assert_eq!(
            contract
                .evaluate_transaction("get", &[format!("watched-{i}")])
                .await
                .unwrap(),
            format!("v{i}").into_bytes()
        );
    }

    // Two appends endorsed over the same read: the watcher reports the loser's MVCC conflict.
    contract
        .submit_transaction("put", &["watched-counter", "a"])
        .await
        .unwrap();
    let mut endorsed = Vec::new();
    for v in ["b", "c"] {
        endorsed.push(
            contract
                .new_proposal("append")
                .string_args(&["watched-counter", v])
                .build()
                .unwrap()
                .endorse()
                .await
                .unwrap(),
        );
    }
    let (first, second) = tokio::join!(
        endorsed[0].submit_watched(&watcher),
        endorsed[1].submit_watched(&watcher)
    );
    let mut codes = [first.unwrap().code, second.unwrap().code];
    codes.sort_by_key(|c| *c as i32);
    assert_eq!(
        codes,
        [TxValidationCode::Valid, TxValidationCode::MvccReadConflict]
    );

    // An organisation outside the channel: its peer serves no such channel, so no watcher.
    let outsider = net.gateway("CivilAffairs", "clerk1").network(CH);
    let err = outsider.commit_watcher().await.unwrap_err();
    assert!(
        matches!(err, GatewayError::Deliver { .. } | GatewayError::Events(_)),
        "{err:?}"
    );
    net.down().await;
}

/// Runs every future to completion, concurrently, keeping their order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_enrolled_from_the_devnet_ca_transacts() {
    let net = Net::up().await;
    let ca = net
        .summary
        .cas
        .iter()
        .find(|c| c.org == "ServiceCentre")
        .unwrap()
        .clone();
    let client = CaClient::new(
        &ca.url,
        CaClientOptions {
            tls_root_pems: vec![std::fs::read(&ca.tls_ca_cert).unwrap()],
            ..Default::default()
        },
    )
    .unwrap();
    let info = client.cainfo().await.unwrap();
    assert!(!info.root_certs().is_empty());
    let msp_id = net.msp_id("ServiceCentre");
    let admin = client
        .enroll(&EnrollmentRequest::new("admin", "adminpw"))
        .await
        .unwrap()
        .signing_identity(&msp_id)
        .unwrap();
    let secret = client
        .register(
            &admin,
            &RegistrationRequest::new("window7")
                .kind("client")
                .attribute("elicense.role", "clerk", true),
        )
        .await
        .unwrap();
    let enrollment = client
        .enroll(&EnrollmentRequest::new("window7", secret.clone()))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("window7/msp");
    enrollment
        .write_msp_dir(
            &dir,
            &MspWriteOptions {
                node_ous: true,
                ..Default::default()
            },
        )
        .unwrap();
    let signing = msp::load_signing_identity(&msp_id, &dir).unwrap();
    let gateway = Gateway::for_signing_identity(
        net.connection("ServiceCentre"),
        &signing,
        GatewayOptions::default(),
    );
    let contract = gateway.network(CH).contract(CC);
    contract
        .submit_transaction("put", &["enrolled", "yes"])
        .await
        .unwrap();
    assert_eq!(
        contract
            .evaluate_transaction("get", &["enrolled"])
            .await
            .unwrap(),
        b"yes"
    );

    // The registrar sees the identity with its attribute; the holder re-enrolls with a new key.
    let listed = client.identity(&admin, "window7").await.unwrap();
    assert!(listed
        .attributes
        .iter()
        .any(|a| a.name == "elicense.role" && a.value == "clerk"));
    assert!(client
        .identities(&admin)
        .await
        .unwrap()
        .iter()
        .any(|i| i.id == "window7"));
    let renewed = client
        .reenroll(&signing, &ReenrollmentRequest::default())
        .await
        .unwrap();
    assert_ne!(renewed.certificate_pem, enrollment.certificate_pem);
    let renewed = renewed.signing_identity(&msp_id).unwrap();
    Gateway::for_signing_identity(
        net.connection("ServiceCentre"),
        &renewed,
        GatewayOptions::default(),
    )
    .network(CH)
    .contract(CC)
    .submit_transaction("put", &["renewed", "yes"])
    .await
    .unwrap();
    // Its secret enrolls it again until it is revoked; then it no longer does.
    client
        .enroll(&EnrollmentRequest::new("window7", secret.clone()))
        .await
        .unwrap();
    client
        .revoke(
            &admin,
            &RevocationRequest::identity("window7").reason("keycompromise"),
        )
        .await
        .unwrap();
    assert!(client
        .enroll(&EnrollmentRequest::new("window7", secret))
        .await
        .is_err());
    net.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_over_stage_errors_commit_codes_named_contracts_and_deadlines_on_the_devnet() {
    let net = Net::up().await;
    let peer = net.peer("PublicSecurity").clone();

    // Fail-over: the first endpoint is unreachable (nothing listens); calls go to the second,
    // which then stays current.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = Endpoint::new(format!("grpcs://{dead}"))
        .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
        .server_name(peer.host.clone());
    let gateway = net.gateway_over(
        vec![unreachable, net.endpoint("PublicSecurity")],
        &ConnectionOptions::default(),
        "PublicSecurity",
        "clerk1",
    );
    let contract = gateway.network(CH).contract(CC);
    assert_eq!(
        contract
            .submit_transaction("put", &["failover", "reached"])
            .await
            .unwrap(),
        b"failover"
    );
    assert_eq!(
        contract
            .evaluate_transaction("get", &["failover"])
            .await
            .unwrap(),
        b"reached"
    );
    assert!(format!("{:?}", gateway.connection()).contains("current: 1"));

    // A named contract: `notes:put` reaches the chaincode's `notes` contract.
    let named = gateway.network(CH).contract_with_name(CC, "notes");
    assert_eq!(named.contract_name(), Some("notes"));
    assert_eq!(
        named
            .submit_transaction("put", &["named", "yes"])
            .await
            .unwrap(),
        b"named"
    );
    assert_eq!(
        contract
            .evaluate_transaction("get", &["named"])
            .await
            .unwrap(),
        b"yes"
    );
    let err = gateway
        .network(CH)
        .contract_with_name(CC, "ledger")
        .submit_transaction("put", &["k", "v"])
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Endorse(_)), "{err:?}");
    assert!(
        err.details()[0].message.contains("no contract ledger"),
        "{err}"
    );

    // A chaincode failure at endorse: typed by stage, with the transaction ID, the gRPC status
    // and the endorsing peer's detail.
    let proposal = contract
        .new_proposal("fail")
        .string_args(&["refused by the notes contract"])
        .build()
        .unwrap();
    let err = proposal.endorse().await.unwrap_err();
    let GatewayError::Endorse(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.transaction_id, proposal.transaction_id());
    assert_eq!(err.transaction_id(), Some(proposal.transaction_id()));
    assert_eq!(e.status.code, tonic::Code::Aborted, "{err}");
    assert!(!e.status.message.is_empty());
    let detail = e
        .status
        .details
        .iter()
        .find(|d| d.msp_id == "PublicSecurityMSP")
        .unwrap_or_else(|| panic!("no detail from PublicSecurityMSP: {err}"));
    assert_eq!(detail.address, peer.address, "{err}");
    assert!(
        detail.message.contains("refused by the notes contract"),
        "{err}"
    );

    // A commit error with its validation code: t1 reads and writes `counter`; while it waits
    // for its block, a second append is endorsed over the same (now stale) read.
    contract
        .submit_transaction("put", &["counter", "a"])
        .await
        .unwrap();
    let t1 = contract
        .new_proposal("append")
        .string_args(&["counter", "b"])
        .build()
        .unwrap()
        .endorse()
        .await
        .unwrap();
    let c1 = t1.submit().await.unwrap();
    let second = contract
        .new_proposal("append")
        .string_args(&["counter", "c"]);
    let err = second.submit().await.unwrap_err();
    let GatewayError::Commit(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, TxValidationCode::MvccReadConflict, "{err}");
    assert!(e.block_number > 0);
    assert_eq!(err.transaction_id(), Some(e.transaction_id.as_str()));
    assert!(err.to_string().contains("MVCC_READ_CONFLICT"), "{err}");
    assert_eq!(c1.status().await.unwrap().code, TxValidationCode::Valid);
    assert_eq!(
        contract
            .evaluate_transaction("get", &["counter"])
            .await
            .unwrap(),
        b"ab"
    );

    // A per-call deadline: the block is cut after the batch timeout (250 ms), so a 20 ms wait
    // for the commit status expires; the transaction commits all the same.
    let (_, commit) = contract
        .submit_async("put", &["deadline", "late"])
        .await
        .unwrap();
    let err = commit
        .status_with(&CallOptions::timeout(Duration::from_millis(20)))
        .await
        .unwrap_err();
    let GatewayError::CommitStatus(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::DeadlineExceeded, "{err}");
    assert_eq!(e.transaction_id, commit.transaction_id());
    assert!(err.to_string().starts_with("commit status failed"), "{err}");
    assert!(commit.status().await.unwrap().successful);
    net.down().await;
}

/// A TCP relay to `target` that counts the bytes the client sends, to see keepalive pings.
async fn counting_relay(target: String) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut server = tokio::net::TcpStream::connect(&target).await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                let _ = tokio::join!(up, down);
            });
        }
    });
    (addr, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_keepalive_and_message_size_limits_on_the_devnet() {
    let net = Net::up().await;
    let org = "PublicSecurity";
    let (cert, key) = net.admin_tls(org);
    let (cert_pem, key_pem) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let get = |gateway: Gateway| async move {
        gateway
            .network(CH)
            .contract(CC)
            .evaluate_transaction("get", &["nothing"])
            .await
    };
    let options = ConnectionOptions::default();

    // Mutual TLS: the peer verifies a presented client certificate against the channel
    // members' TLS CAs. The organisation's TLS client certificate is accepted ...
    let with_cert = net
        .endpoint(org)
        .client_tls(cert_pem.clone(), key_pem.clone());
    get(net.gateway_over(vec![with_cert], &options, org, "clerk1"))
        .await
        .unwrap();
    // ... and one from a CA no member trusts is refused in the handshake.
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["clerk1".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let stranger = params.self_signed(&stranger_key).unwrap();
    let untrusted = net
        .endpoint(org)
        .client_tls(stranger.pem(), stranger_key.serialize_pem());
    let err = get(net.gateway_over(vec![untrusted], &options, org, "clerk1"))
        .await
        .unwrap_err();
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::Unavailable, "{err}");
    assert!(e.status.message.contains("connection"), "{err}");

    // The devnet's own connection profile with the client certificate added under
    // client.tlsCerts.client: the endpoints built from it present the certificate.
    let text = std::fs::read_to_string(&net.summary.profiles[org]).unwrap();
    let mut profile: serde_json::Value = serde_json::from_str(&text).unwrap();
    profile["client"]["tlsCerts"] = serde_json::json!({
        "client": {"cert": {"path": cert}, "key": {"path": key}}
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtls.json");
    std::fs::write(&path, profile.to_string()).unwrap();
    let profile = ConnectionProfile::from_file(&path).unwrap();
    let peers = profile.organization_peers(org).unwrap();
    assert_eq!(peers[0].client_tls, Some((cert_pem, key_pem)));
    let endpoints: Vec<Endpoint> = peers.into_iter().map(Endpoint::from).collect();
    get(net.gateway_over(endpoints, &options, org, "clerk1"))
        .await
        .unwrap();

    // Keepalive: with an interval, HTTP/2 pings flow while the connection is idle; without
    // one, an idle client sends nothing.
    let peer = net.peer(org).clone();
    for (interval, expect_pings) in [(Some(Duration::from_millis(100)), true), (None, false)] {
        let (relay, sent) = counting_relay(peer.address.clone()).await;
        let endpoint = Endpoint::new(format!("grpcs://{relay}"))
            .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
            .server_name(peer.host.clone());
        let options = ConnectionOptions {
            keepalive_interval: interval,
            keepalive_while_idle: true,
            ..Default::default()
        };
        let gateway = net.gateway_over(vec![endpoint], &options, org, "clerk1");
        get(gateway.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = sent.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let idle = sent.load(Ordering::SeqCst) - before;
        if expect_pings {
            // Each ping is a TLS record around a 17-byte HTTP/2 PING frame.
            assert!(
                idle >= 3 * 17,
                "{idle} bytes sent while idle with keepalive"
            );
        } else {
            assert_eq!(idle, 0, "bytes sent while idle without keepalive");
        }
        get(gateway).await.unwrap();
    }

    // Message size limits: a value larger than max_decoding_message_size cannot be read back,
    // and a request larger than max_encoding_message_size is never sent.
    let big = "v".repeat(8 * 1024);
    let gateway = net.gateway(org, "clerk1");
    gateway
        .network(CH)
        .contract(CC)
        .submit_transaction("put", &["big", &big])
        .await
        .unwrap();
    let small_in = ConnectionOptions {
        max_decoding_message_size: 4096,
        ..Default::default()
    };
    let err = net
        .gateway_over(vec![net.endpoint(org)], &small_in, org, "clerk1")
        .network(CH)
        .contract(CC)
        .evaluate_transaction("get", &["big"])
        .await
        .unwrap_err();
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::OutOfRange, "{err}");
    assert!(
        e.status
            .message
            .contains("decoded message length too large"),
        "{err}"
    );
    assert!(e.status.message.contains("4096"), "{err}");
    let small_out = ConnectionOptions {
        max_encoding_message_size: 4096,
        ..Default::default()
    };
    let err = net
        .gateway_over(vec![net.endpoint(org)], &small_out, org, "clerk1")
        .network(CH)
        .contract(CC)
        .submit_transaction("put", &["big2", &big])
        .await
        .unwrap_err();
    let GatewayError::Endorse(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::OutOfRange, "{err}");
    assert!(
        e.status
            .message
            .contains("encoded message length too large"),
        "{err}"
    );
    assert!(
        e.status.message.contains("max_encoding_message_size"),
        "{err}"
    );
    let stored = gateway
        .network(CH)
        .contract(CC)
        .evaluate_transaction("get", &["big2"])
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing was sent, nothing stored");
    net.down().await;
}
