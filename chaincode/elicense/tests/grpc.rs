//! The contract over real gRPC: the chaincode server as Fabric's CCaaS peer dials it, driven by
//! the shim's `TestPeer` (REGISTER/READY handshake, state and private data on the peer side,
//! events, errors as status 500 with the JSON wire form).

mod common;

use common::*;
use elicense_chaincode::host::{HostError, HostOptions, HostedChaincode};
use elicense_model::{
    events, ContractError, ErrorCode, Presentation, RetrieveResult, VerifyOutcome, VerifyRequest,
    VerifyResult, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE, TRANSIENT_PRESENTATION,
};
use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestTx};

fn j<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn issue_authorize_verify_retrieve_over_grpc() {
    let net = Net::new();
    let holder = Holder::new(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = HostedChaincode::start(HostOptions::new("elicense_1.0:test"))
            .await
            .unwrap();
        assert!(server.address().ip().is_loopback());
        let peer = TestPeer::connect(
            &format!("http://{}", server.address()),
            TestPeerConfig::default(),
        )
        .await
        .unwrap();
        assert_eq!(peer.registered_name(), "elicense_1.0:test");
        let tx = |who: &str, args: Vec<Vec<u8>>| {
            TestTx::new(CHANNEL, args)
                .creator(net.creator(who))
                .timestamp(T0, 0)
                .commit(true)
        };

        let out = peer
            .invoke(tx(
                "regulator-admin",
                vec![b"InitCatalogue".to_vec(), CATALOGUE.as_bytes().to_vec()],
            ))
            .await
            .unwrap();
        assert_eq!(out.response().unwrap().status, 200);

        let (req, private) = id_card_request(&holder, "500001");
        let out = peer
            .invoke(
                tx("police-issuer", vec![b"Issue".to_vec(), j(&req)])
                    .transient(TRANSIENT_LICENCE, j(&private)),
            )
            .await
            .unwrap();
        assert_eq!(out.response().unwrap().status, 200);
        assert_eq!(out.event().unwrap().event_name, events::LICENCE_ISSUED);
        assert!(out
            .private_writes
            .iter()
            .all(|(c, _, _)| c == "_implicit_org_PublicSecurityMSP"));

        let (sealed, signed) = net.grant(&holder, &req.licence_id, &["name", "sex"], 1);
        let out = peer
            .invoke(
                tx("service-holder", vec![b"Authorize".to_vec(), j(&signed)])
                    .transient(TRANSIENT_CODE_SALT, sealed.code_salt.as_bytes().to_vec()),
            )
            .await
            .unwrap();
        assert_eq!(out.response().unwrap().status, 200);

        let gid = sealed.grant.id();
        let verify_req = j(&VerifyRequest {
            grant_id: gid.clone(),
            matter: "SC-0001".into(),
        });
        let lic = Issued {
            id: req.licence_id.clone(),
            private,
        };
        // A wrong matter is an error whose message decodes to its code.
        let out = peer
            .invoke(
                tx(
                    "service-clerk",
                    vec![
                        b"Verify".to_vec(),
                        j(&VerifyRequest {
                            grant_id: gid.clone(),
                            matter: "OTHER".into(),
                        }),
                    ],
                )
                .transient(
                    TRANSIENT_PRESENTATION,
                    j(&Presentation {
                        code: sealed.code.clone(),
                        fields: Default::default(),
                    }),
                ),
            )
            .await
            .unwrap();
        let r = out.response().unwrap();
        assert_eq!(r.status, 500);
        assert!(!out.committed);
        assert_eq!(
            ContractError::decode(&r.message).unwrap().code,
            ErrorCode::WrongMatter
        );

        let out = peer
            .invoke(
                tx("service-clerk", vec![b"Verify".to_vec(), verify_req]).transient(
                    TRANSIENT_PRESENTATION,
                    j(&Presentation {
                        code: sealed.code.clone(),
                        fields: lic.present(&["name"]),
                    }),
                ),
            )
            .await
            .unwrap();
        let r = out.response().unwrap();
        assert_eq!(r.status, 200, "{}", r.message);
        let v: VerifyResult = serde_json::from_slice(&r.payload).unwrap();
        assert!(matches!(v.outcome, VerifyOutcome::Verified { .. }));
        assert_eq!(out.event().unwrap().event_name, events::GRANT_VERIFIED);

        let out = peer
            .invoke(
                tx(
                    "service-clerk",
                    vec![
                        b"Retrieve".to_vec(),
                        j(&serde_json::json!({"grant_id": gid})),
                    ],
                )
                .commit(false),
            )
            .await
            .unwrap();
        let r = out.response().unwrap();
        assert_eq!(r.status, 200, "{}", r.message);
        let got: RetrieveResult = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(got.fields["sex"], lic.private.fields["sex"].value);
        assert!(out.writes.is_empty() && out.private_writes.is_empty());

        let out = peer
            .invoke(tx(
                "service-clerk",
                vec![b"org.hyperledger.fabric:GetMetadata".to_vec()],
            ))
            .await
            .unwrap();
        let meta: serde_json::Value =
            serde_json::from_slice(&out.response().unwrap().payload).unwrap();
        assert!(meta["contracts"]["ELicense"].is_object());

        peer.disconnect().await;
        server.stop().await.unwrap();
    });
}

#[tokio::test]
async fn hosted_chaincode_uses_the_given_port_and_stops() {
    assert!(matches!(
        HostedChaincode::start(HostOptions::new(" ")).await,
        Err(HostError::NoPackageId)
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cc = HostedChaincode::start(HostOptions::new("elicense_1.0:abc").port(port))
        .await
        .unwrap();
    assert_eq!(cc.address().to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(cc.package_id(), "elicense_1.0:abc");
    // The port is taken while it serves.
    assert!(matches!(
        HostedChaincode::start(HostOptions::new("elicense_1.0:abc").port(port)).await,
        Err(HostError::Server(_))
    ));
    let peer = TestPeer::connect(
        &format!("http://127.0.0.1:{port}"),
        TestPeerConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(peer.registered_name(), "elicense_1.0:abc");
    // Stopping closes the connected peer's stream and frees the port.
    cc.stop().await.unwrap();
    let out = peer
        .invoke(TestTx::new(CHANNEL, vec![b"ListLicenceTypes".to_vec()]))
        .await;
    assert!(out.is_err(), "the stream is closed after stop");
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port released");
}

#[test]
fn verify_on_a_peer_outside_the_issuers_collection_names_the_issuer() {
    let net = Net::new();
    let holder = Holder::new(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cc = HostedChaincode::start(HostOptions::new("elicense_1.0:test"))
            .await
            .unwrap();
        // A service-centre peer: it holds only the hashes of the police collection.
        let peer = TestPeer::connect(
            &format!("http://{}", cc.address()),
            TestPeerConfig {
                hash_only_collections: vec!["_implicit_org_PublicSecurityMSP".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let tx = |who: &str, args: Vec<Vec<u8>>| {
            TestTx::new(CHANNEL, args)
                .creator(net.creator(who))
                .timestamp(T0, 0)
                .commit(true)
        };
        let ok = |out: fabric_chaincode::testing::TxOutcome| {
            let r = out.response().unwrap();
            assert_eq!(r.status, 200, "{}", r.message);
        };
        ok(peer
            .invoke(tx(
                "regulator-admin",
                vec![b"InitCatalogue".to_vec(), CATALOGUE.as_bytes().to_vec()],
            ))
            .await
            .unwrap());
        let (req, private) = id_card_request(&holder, "500009");
        ok(peer
            .invoke(
                tx("police-issuer", vec![b"Issue".to_vec(), j(&req)])
                    .transient(TRANSIENT_LICENCE, j(&private)),
            )
            .await
            .unwrap());
        let (sealed, signed) = net.grant(&holder, &req.licence_id, &["name"], 1);
        ok(peer
            .invoke(
                tx("service-holder", vec![b"Authorize".to_vec(), j(&signed)])
                    .transient(TRANSIENT_CODE_SALT, sealed.code_salt.as_bytes().to_vec()),
            )
            .await
            .unwrap());
        let out = peer
            .invoke(
                tx(
                    "service-clerk",
                    vec![
                        b"Verify".to_vec(),
                        j(&VerifyRequest {
                            grant_id: sealed.grant.id(),
                            matter: "SC-0001".into(),
                        }),
                    ],
                )
                .transient(
                    TRANSIENT_PRESENTATION,
                    j(&Presentation {
                        code: sealed.code.clone(),
                        fields: Default::default(),
                    }),
                ),
            )
            .await
            .unwrap();
        let r = out.response().unwrap();
        assert_eq!(r.status, 500);
        let e = ContractError::decode(&r.message).unwrap();
        assert_eq!(e.code, ErrorCode::PrivateDataUnavailable);
        assert!(e.message.contains("PublicSecurityMSP"), "{}", e.message);
        cc.stop().await.unwrap();
    });
}
