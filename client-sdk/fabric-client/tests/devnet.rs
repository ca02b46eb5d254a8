//! The Gateway and CA clients end to end on the embedded devnet, over TLS: offline signing of
//! proposal, transaction and commit status request that the peers accept; a checkpointed event
//! stream stopped and resumed with no event lost or repeated; full, filtered and private-data
//! block events; an identity enrolled from the devnet's Fabric CA transacting on the channel.

#[path = "support/notes.rs"]
mod notes;

use fabric_client::ca::{
    CaClient, CaClientOptions, EnrollmentRequest, MspWriteOptions, ReenrollmentRequest,
    RegistrationRequest, RevocationRequest,
};
use fabric_client::gateway::{
    BlockEventsKind, Checkpointer, Connection, ConnectionOptions, DeliverEvent, Endpoint,
    EventsOptions, FileCheckpointer, Gateway, GatewayOptions, TxValidationCode,
};
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

    fn connection(&self, org: &str) -> Connection {
        let peer = self.summary.peers.iter().find(|p| p.org == org).unwrap();
        let endpoint = Endpoint::new(peer.url.clone())
            .tls_root(std::fs::read(&peer.tls_ca_cert).unwrap())
            .server_name(peer.host.clone());
        Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap()
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
