//! Per-call deadlines, offline signatures, mutual TLS and message size limits, against the
//! in-process Gateway double (`support/double.rs`), which verifies every signature as a peer does
//! and can be told to answer slowly or to require client certificates.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_client::gateway::{
    CallOptions, CallTimeouts, Connection, ConnectionOptions, Endpoint, Gateway, GatewayError,
    GatewayOptions,
};
use fabric_client::profile::ConnectionProfile;
use fabric_client::{Identity, Signer};
use fabric_common::crypto;
use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
use support::double::{client_identity, start, start_tls, verify, Double, TestCa};

fn gateway(addr: SocketAddr, signer: Option<Arc<dyn Signer>>, id: Identity) -> Gateway {
    gateway_with(addr, signer, id, GatewayOptions::default())
}

fn gateway_with(
    addr: SocketAddr,
    signer: Option<Arc<dyn Signer>>,
    id: Identity,
    options: GatewayOptions,
) -> Gateway {
    let conn = Connection::new(
        vec![Endpoint::new(format!("http://{addr}"))],
        &ConnectionOptions::default(),
    )
    .unwrap();
    Gateway::new(conn, id, signer, options)
}

/// The stage error's transaction error, or a panic naming what came instead.
fn deadline_exceeded(err: &GatewayError) -> &fabric_client::gateway::TransactionError {
    let e = match err {
        GatewayError::Evaluate(e)
        | GatewayError::Endorse(e)
        | GatewayError::Submit(e)
        | GatewayError::CommitStatus(e) => e,
        other => panic!("not a stage error: {other:?}"),
    };
    assert_eq!(e.status.code, tonic::Code::DeadlineExceeded, "{err}");
    e
}

#[tokio::test]
async fn a_per_call_deadline_overrides_the_gateway_default_at_each_stage() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway(addr, Some(Arc::new(key)), id);
    let contract = gw.network("ch1").contract("cc");
    let short = CallOptions::timeout(Duration::from_millis(150));

    // Endorse: the peer takes 2 s, this call allows 150 ms (the gateway default is 15 s).
    double.behaviour.lock().unwrap().endorse_delay = Some(Duration::from_secs(2));
    let proposal = contract
        .new_proposal("f")
        .string_args(&["a"])
        .build()
        .unwrap();
    let started = Instant::now();
    let err = proposal.endorse_with(&short).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, GatewayError::Endorse(_)), "{err:?}");
    let e = deadline_exceeded(&err);
    assert_eq!(e.transaction_id, proposal.transaction_id());
    let text = err.to_string();
    assert!(text.starts_with("endorse failed"), "{text}");
    assert!(text.contains("DeadlineExceeded"), "{text}");
    double.behaviour.lock().unwrap().endorse_delay = None;

    // The same proposal endorses within the gateway's default; submit is then held up.
    let tx = proposal.endorse().await.unwrap();
    double.behaviour.lock().unwrap().submit_delay = Some(Duration::from_secs(2));
    let err = tx.submit_with(&short).await.unwrap_err();
    assert!(matches!(err, GatewayError::Submit(_)), "{err:?}");
    assert_eq!(deadline_exceeded(&err).transaction_id, tx.transaction_id());
    double.behaviour.lock().unwrap().submit_delay = None;

    // Commit status: a short deadline expires; the default one then gets the status.
    let commit = tx.submit().await.unwrap();
    double.behaviour.lock().unwrap().commit_status_delay = Some(Duration::from_millis(600));
    let err = commit.status_with(&short).await.unwrap_err();
    assert!(matches!(err, GatewayError::CommitStatus(_)), "{err:?}");
    assert_eq!(
        deadline_exceeded(&err).transaction_id,
        commit.transaction_id()
    );
    let status = commit.status_with(&CallOptions::default()).await.unwrap();
    assert!(status.successful);
    double.behaviour.lock().unwrap().commit_status_delay = None;

    // Evaluate: a per-call deadline may also be longer than the gateway's default.
    let (id2, key2) = client_identity();
    let strict = gateway_with(
        addr,
        Some(Arc::new(key2)),
        id2,
        GatewayOptions {
            timeouts: CallTimeouts {
                evaluate: Duration::from_millis(100),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    double.behaviour.lock().unwrap().evaluate_delay = Some(Duration::from_millis(400));
    let p = strict
        .network("ch1")
        .contract("cc")
        .new_proposal("g")
        .build()
        .unwrap();
    let err = p.evaluate().await.unwrap_err();
    assert!(matches!(err, GatewayError::Evaluate(_)), "{err:?}");
    deadline_exceeded(&err);
    let out = p
        .evaluate_with(&CallOptions::timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(out, b"g");
}

#[tokio::test]
async fn an_absolute_deadline_bounds_several_calls_and_a_past_one_sends_nothing() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let gw = gateway(addr, Some(Arc::new(key)), id);
    let contract = gw.network("ch1").contract("cc");

    // One deadline for the whole transaction: endorse and submit fit, commit status does not.
    double.behaviour.lock().unwrap().commit_status_delay = Some(Duration::from_secs(2));
    let whole = CallOptions::deadline(Instant::now() + Duration::from_millis(500));
    let tx = contract
        .new_proposal("f")
        .build()
        .unwrap()
        .endorse_with(&whole)
        .await
        .unwrap();
    let commit = tx.submit_with(&whole).await.unwrap();
    let started = Instant::now();
    let err = commit.status_with(&whole).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(900));
    assert!(matches!(err, GatewayError::CommitStatus(_)), "{err:?}");
    deadline_exceeded(&err);

    // A deadline already past fails at once, and the peer never sees the request.
    let before = double.recorded.lock().unwrap().evaluate.len();
    let past = CallOptions::deadline(Instant::now() - Duration::from_millis(1));
    let err = contract
        .new_proposal("f")
        .build()
        .unwrap()
        .evaluate_with(&past)
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Evaluate(_)), "{err:?}");
    deadline_exceeded(&err);
    assert_eq!(double.recorded.lock().unwrap().evaluate.len(), before);
}

#[tokio::test]
async fn offline_high_s_signatures_are_normalised_and_malformed_ones_refused() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let public = key.public_key().clone();
    let gw = gateway(addr, None, id.clone());
    let contract = gw.network("ch1").contract("cc");
    // An offline signer that returns high-S signatures, as some HSMs do.
    let high_s = |digest: &[u8]| crypto::to_high_s(&key.sign(digest).unwrap()).unwrap();

    let unsigned = contract
        .new_proposal("issue")
        .string_args(&["L-1"])
        .build()
        .unwrap();
    let message = unsigned.signed_proposal().proposal_bytes.clone();
    let sig = high_s(&unsigned.digest());
    assert!(!crypto::is_low_s(&sig).unwrap());
    // The peer (like Fabric) refuses the high-S form as it is.
    assert!(verify(id.serialized(), &message, &sig).is_err());

    let proposal = gw
        .new_signed_proposal(&unsigned.bytes(), sig.clone())
        .unwrap();
    let stored = &proposal.signed_proposal().signature;
    assert!(crypto::is_low_s(stored).unwrap());
    assert_eq!(*stored, crypto::normalize_low_s(&sig).unwrap());
    public.verify(&message, stored).unwrap();
    let tx = proposal.endorse().await.unwrap();

    let tx = gw
        .new_signed_transaction(&tx.bytes(), high_s(&tx.digest()))
        .unwrap();
    assert!(crypto::is_low_s(&tx.envelope_proto().signature).unwrap());
    let commit = tx.submit().await.unwrap();
    let commit = gw
        .new_signed_commit(&commit.bytes(), high_s(&commit.digest()))
        .unwrap();
    assert!(commit.status().await.unwrap().successful);

    // Bytes that are not a DER ECDSA signature are refused before anything is sent.
    let endorsed = double.recorded.lock().unwrap().endorse.len();
    for bad in [vec![], vec![0x30, 0x02, 0x01], b"not a signature".to_vec()] {
        let err = gw.new_signed_proposal(&unsigned.bytes(), bad).unwrap_err();
        let GatewayError::InvalidArgument(m) = &err else {
            panic!("{err:?}")
        };
        assert!(m.contains("DER ECDSA"), "{m}");
    }
    assert!(matches!(
        gw.new_signed_commit(&commit.bytes(), vec![1, 2, 3]),
        Err(GatewayError::InvalidArgument(_))
    ));
    assert_eq!(double.recorded.lock().unwrap().endorse.len(), endorsed);
}

#[tokio::test]
async fn a_mutual_tls_peer_refuses_a_client_without_a_certificate_and_accepts_one_with_it() {
    let ca = TestCa::new("tlsca.org1");
    let server = ca.issue(&["peer0.org1"], ServerAuth);
    let client_cert = ca.issue(&["clerk1"], ClientAuth);
    let stranger = TestCa::new("tlsca.elsewhere").issue(&["clerk1"], ClientAuth);
    let double = Double::default();
    let (_g, addr) = start_tls(double.clone(), server, Some(ca.cert_pem.clone())).await;
    let (id, key) = client_identity();
    let signer: Arc<dyn Signer> = Arc::new(key);
    let evaluate = |endpoint: Endpoint| {
        let conn = Connection::new(vec![endpoint], &ConnectionOptions::default()).unwrap();
        let gw = Gateway::new(
            conn,
            id.clone(),
            Some(signer.clone()),
            GatewayOptions::default(),
        );
        async move {
            gw.network("ch1")
                .contract("cc")
                .evaluate_transaction("f", &["x"])
                .await
        }
    };
    let endpoint = || {
        Endpoint::new(format!("https://127.0.0.1:{}", addr.port()))
            .tls_root(ca.cert_pem.clone())
            .server_name("peer0.org1")
    };

    // No client certificate: the TLS handshake fails and no call reaches the gateway.
    let err = evaluate(endpoint()).await.unwrap_err();
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::Unavailable, "{err}");
    // TLS 1.3 completes the client's side of the handshake before the peer checks for a
    // certificate, so the refusal reads as the peer's alert or as the connection closing.
    assert!(e.status.message.contains("connection"), "{err}");
    // A certificate from a CA the peer does not trust: refused the same way.
    let err = evaluate(endpoint().client_tls(stranger.0, stranger.1))
        .await
        .unwrap_err();
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::Unavailable, "{err}");
    assert!(double.recorded.lock().unwrap().evaluate.is_empty());

    // The organisation's client certificate: accepted.
    let out = evaluate(endpoint().client_tls(client_cert.0.clone(), client_cert.1.clone()))
        .await
        .unwrap();
    assert_eq!(out, b"f|x");

    // The same certificate configured in a connection profile (client.tlsCerts.client).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.crt"), &client_cert.0).unwrap();
    std::fs::write(dir.path().join("client.key"), &client_cert.1).unwrap();
    let profile = serde_json::json!({
        "name": "mtls",
        "client": {
            "organization": "Org1",
            "tlsCerts": {"client": {"cert": {"path": "client.crt"}, "key": {"path": "client.key"}}}
        },
        "organizations": {"Org1": {"mspid": "Org1MSP", "peers": ["peer0.org1"]}},
        "peers": {"peer0.org1": {
            "url": format!("grpcs://127.0.0.1:{}", addr.port()),
            "tlsCACerts": {"pem": ca.cert_pem},
            "grpcOptions": {"ssl-target-name-override": "peer0.org1"}
        }}
    });
    let path = dir.path().join("profile.json");
    std::fs::write(&path, profile.to_string()).unwrap();
    let profile = ConnectionProfile::from_file(&path).unwrap();
    let peer = profile.organization_peers("Org1").unwrap().remove(0);
    let out = evaluate(Endpoint::from(peer)).await.unwrap();
    assert_eq!(out, b"f|x");
    assert_eq!(double.recorded.lock().unwrap().evaluate.len(), 2);
}

#[tokio::test]
async fn messages_over_the_size_limits_are_refused_with_the_limit_named() {
    let double = Double::default();
    let (_g, addr) = start(double.clone()).await;
    let (id, key) = client_identity();
    let limited = |options: ConnectionOptions| {
        let conn =
            Connection::new(vec![Endpoint::new(format!("http://{addr}"))], &options).unwrap();
        Gateway::new(
            conn,
            id.clone(),
            Some(Arc::new(key.clone())),
            GatewayOptions::default(),
        )
    };
    let big = "x".repeat(4096);

    // Sending: a request larger than max_encoding_message_size never leaves the client.
    let gw = limited(ConnectionOptions {
        max_encoding_message_size: 2048,
        ..Default::default()
    });
    let contract = gw.network("ch1").contract("cc");
    assert_eq!(
        contract
            .evaluate_transaction("f", &["small"])
            .await
            .unwrap(),
        b"f|small"
    );
    let err = contract
        .evaluate_transaction("f", &[&big])
        .await
        .unwrap_err();
    let GatewayError::Evaluate(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status.code, tonic::Code::OutOfRange, "{err}");
    assert!(
        e.status
            .message
            .contains("encoded message length too large"),
        "{err}"
    );
    assert!(e.status.message.contains("2048"), "{err}");
    assert_eq!(double.recorded.lock().unwrap().evaluate.len(), 1);

    // Receiving: an answer larger than max_decoding_message_size is refused.
    let gw = limited(ConnectionOptions {
        max_decoding_message_size: 2048,
        ..Default::default()
    });
    let contract = gw.network("ch1").contract("cc");
    let err = contract
        .evaluate_transaction("f", &[&big])
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
    assert!(e.status.message.contains("2048"), "{err}");
}
