//! The endorser answers proposals as a Fabric peer's endorser does: its checks (signature,
//! creator, txid, duplicates, channel writers), its response shapes, the chaincode interest the
//! gateway plans from, and endorsements that two organisations' peers give for a majority
//! policy — assembled with fabric-common and committed by the committer.

#[path = "peer_fixture.rs"]
mod fx;

use fabric_common::tx::{create_chaincode_proposal_with, ChaincodeInvocation};
use fabric_protos::common::{ChannelHeader, Header, HeaderType};
use fabric_protos::protos::endorser_client::EndorserClient;
use fabric_protos::protos::{
    ChaincodeAction, Proposal, ProposalResponsePayload, SignedProposal, TxValidationCode as Code,
};
use fx::*;
use prost::Message;

const MAJORITY: &str = "AND('OrgAMSP.peer','OrgBMSP.peer')";
const ANY: &str = "OR('OrgAMSP.peer','OrgBMSP.peer')";

fn unknown(e: tonic::Status) -> String {
    assert_eq!(e.code(), tonic::Code::Unknown, "{e:?}");
    e.message().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endorsement_is_signed_by_the_peer_over_payload_and_identity() {
    let net = Net::new(ANY).await;
    let (prop, rs) = endorse(&net.client, &[&net.peer_a], &["put", "k", "v"], &[]).await;
    let r = &rs[0];
    assert_eq!(r.version, 1);
    assert_eq!(r.response.as_ref().unwrap().status, 200);
    let e = r.endorsement.as_ref().unwrap();
    assert_eq!(e.endorser, net.peer_a.signer().serialized());
    let signed = [r.payload.as_slice(), e.endorser.as_slice()].concat();
    net.peer_a
        .signer()
        .identity()
        .verify(&signed, &e.signature)
        .unwrap();
    // The payload binds the proposal (hash without transient data) and names the version.
    let prp = ProposalResponsePayload::decode(r.payload.as_slice()).unwrap();
    let up = fabric_common::tx::UnpackedProposal::from_proposal(prop.clone()).unwrap();
    assert_eq!(prp.proposal_hash, up.hash().to_vec());
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    assert_eq!(action.chaincode_id.as_ref().unwrap().name, CC);
    assert_eq!(action.chaincode_id.as_ref().unwrap().version, "1.0");
    let rw = fabric_protos::rwset::TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    assert_eq!(rw.ns_rwset.len(), 1);
    assert_eq!(rw.ns_rwset[0].namespace, CC);
    // Interest: the chaincode's own policy, no key policies.
    let interest = r.interest.as_ref().unwrap();
    assert_eq!(interest.chaincodes.len(), 1);
    assert_eq!(interest.chaincodes[0].name, CC);
    assert!(interest.chaincodes[0].key_policies.is_empty());
    // Both peers produce identical payloads, so fabric-common assembles the transaction.
    let rb = net
        .peer_b
        .process_proposal(fx::proposal_again(&net.client, &prop))
        .await
        .unwrap();
    assert_eq!(rb.payload, r.payload);
    let env = assemble(&net.client, &prop, &[r.clone(), rb]);
    let codes = deliver(&[&net.peer_a, &net.peer_b], std::slice::from_ref(&env));
    assert_eq!(codes, vec![vec![Code::Valid], vec![Code::Valid]]);
    // The same proposal again is a duplicate, refused before simulation.
    let e = net
        .peer_a
        .process_proposal(fx::proposal_again(&net.client, &prop))
        .await
        .unwrap_err();
    let msg = unknown(e);
    assert!(
        msg.starts_with(&format!(
            "duplicate transaction found [{}]. Creator [",
            up.channel_header.tx_id
        )),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_majority_policy_needs_both_organisations_endorsements() {
    let net = Net::new(MAJORITY).await;
    let codes = submit(
        &net,
        &net.client,
        &[&net.peer_a, &net.peer_b],
        &["put", "k", "both"],
    )
    .await;
    assert_eq!(codes, vec![Code::Valid, Code::Valid]);
    let codes = submit(&net, &net.client, &[&net.peer_a], &["put", "k", "only-a"]).await;
    assert_eq!(
        codes,
        vec![
            Code::EndorsementPolicyFailure,
            Code::EndorsementPolicyFailure
        ]
    );
    let v = net
        .peer_b
        .channel(CH)
        .unwrap()
        .ledger()
        .get_state(CC, "k")
        .unwrap()
        .unwrap();
    assert_eq!(v.value, b"both");
    // Two clients racing on the same key: the second in the block is an MVCC conflict.
    let (p1, r1) = endorse(&net.client, &[&net.peer_a, &net.peer_b], &["get", "k"], &[]).await;
    let (p2, r2) = endorse(
        &net.client_b,
        &[&net.peer_a, &net.peer_b],
        &["put", "k", "x"],
        &[],
    )
    .await;
    let (p3, r3) = endorse(
        &net.client,
        &[&net.peer_a, &net.peer_b],
        &["put", "k", "y"],
        &[],
    )
    .await;
    let _ = (p1, r1);
    let e2 = assemble(&net.client_b, &p2, &r2);
    let e3 = assemble(&net.client, &p3, &r3);
    let codes = deliver(&[&net.peer_a, &net.peer_b], &[e2, e3]);
    // Blind writes do not conflict; both are valid, the last write wins.
    assert_eq!(codes[0], vec![Code::Valid, Code::Valid]);
    let (p4, r4) = endorse(
        &net.client,
        &[&net.peer_a, &net.peer_b],
        &["multi", "k"],
        &[],
    )
    .await;
    let (p5, r5) = endorse(
        &net.client,
        &[&net.peer_a, &net.peer_b],
        &["put", "k", "z"],
        &[],
    )
    .await;
    let e5 = assemble(&net.client, &p5, &r5);
    let e4 = assemble(&net.client, &p4, &r4);
    deliver(&[&net.peer_a, &net.peer_b], &[e5]);
    let codes = deliver(&[&net.peer_a, &net.peer_b], &[e4]);
    assert_eq!(codes[0], vec![Code::MvccReadConflict]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_level_policies_show_in_the_interest_and_bind_later_writers() {
    let net = Net::new(ANY).await;
    submit(&net, &net.client, &[&net.peer_a], &["put", "lic", "v1"]).await;
    let codes = submit(
        &net,
        &net.client,
        &[&net.peer_a],
        &["setvp", "lic", "OR('OrgBMSP.peer')"],
    )
    .await;
    assert_eq!(codes[0], Code::Valid);
    let (prop, rs) = endorse(&net.client, &[&net.peer_a], &["put", "lic", "v2"], &[]).await;
    let interest = rs[0].interest.as_ref().unwrap();
    assert_eq!(interest.chaincodes.len(), 1);
    let call = &interest.chaincodes[0];
    assert_eq!(call.key_policies.len(), 1);
    assert!(call.disregard_namespace_policy);
    assert_eq!(
        call.key_policies[0],
        fabric_common::policy::parse_policy("OR('OrgBMSP.peer')").unwrap()
    );
    // Endorsed by OrgA only: the key's policy wants OrgB.
    let env = assemble(&net.client, &prop, &rs);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env])[1],
        vec![Code::EndorsementPolicyFailure]
    );
    let codes = submit(&net, &net.client, &[&net.peer_b], &["put", "lic", "v3"]).await;
    assert_eq!(codes[0], Code::Valid);
    // Private writes name their collection in the interest.
    let (_, rs) = endorse(
        &net.client,
        &[&net.peer_a],
        &["putp", "shared", "p"],
        &[("value", b"1")],
    )
    .await;
    let calls = &rs[0].interest.as_ref().unwrap().chaincodes;
    assert!(
        calls
            .iter()
            .any(|c| c.collection_names == vec!["shared".to_string()] && c.no_private_reads),
        "{calls:?}"
    );
}

fn sign_raw(user: &fx::cfix::User, prop: &Proposal) -> SignedProposal {
    let proposal_bytes = prop.encode_to_vec();
    SignedProposal {
        signature: user.sign(&proposal_bytes),
        proposal_bytes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_a_peer_must_refuse() {
    let net = Net::new(ANY).await;
    // A forged signature.
    let (prop, mut sp) = proposal(&net.client, CC, &["get", "k"], &[]);
    sp.signature = net.client_b.sign(&sp.proposal_bytes);
    let msg = unknown(net.peer_a.process_proposal(sp).await.unwrap_err());
    assert_eq!(
        msg,
        "error validating proposal: access denied: channel [ch1] creator org [OrgAMSP]"
    );
    // A creator from an organisation outside the channel.
    let stranger = fx::cfix::Org::new("OrgZ").user("z", "client", false);
    let (_, sp) = proposal(&stranger, CC, &["get", "k"], &[]);
    let msg = unknown(net.peer_a.process_proposal(sp).await.unwrap_err());
    assert_eq!(msg, "error validating proposal: access denied: channel [ch1] creator org unknown, creator is malformed");
    // A txid that is not hash(nonce ‖ creator).
    let mut p2 = prop.clone();
    let mut hdr = Header::decode(p2.header.as_slice()).unwrap();
    let mut chdr = ChannelHeader::decode(hdr.channel_header.as_slice()).unwrap();
    chdr.tx_id = "0".repeat(64);
    hdr.channel_header = chdr.encode_to_vec();
    p2.header = hdr.encode_to_vec();
    let msg = unknown(
        net.peer_a
            .process_proposal(sign_raw(&net.client, &p2))
            .await
            .unwrap_err(),
    );
    assert!(
        msg.starts_with(&format!(
            "error validating proposal: incorrectly computed txid '{}' -- expected '",
            "0".repeat(64)
        )),
        "{msg}"
    );
    // A header type the endorser does not take.
    let mut p3 = prop.clone();
    let mut hdr = Header::decode(p3.header.as_slice()).unwrap();
    let mut chdr = ChannelHeader::decode(hdr.channel_header.as_slice()).unwrap();
    chdr.r#type = HeaderType::Message as i32;
    hdr.channel_header = chdr.encode_to_vec();
    p3.header = hdr.encode_to_vec();
    let msg = unknown(
        net.peer_a
            .process_proposal(sign_raw(&net.client, &p3))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        msg,
        "error validating proposal: invalid header type MESSAGE"
    );
    // Garbage.
    let msg = unknown(
        net.peer_a
            .process_proposal(SignedProposal {
                proposal_bytes: vec![0xff, 0xff],
                signature: vec![1],
            })
            .await
            .unwrap_err(),
    );
    assert!(msg.starts_with("error unmarshalling Proposal"), "{msg}");
    // An orderer-organisation identity is a channel member but not an application writer.
    let orderer_admin = net.o.user("admin", "admin", false);
    let (_, sp) = proposal(&orderer_admin, CC, &["get", "k"], &[]);
    let msg = unknown(net.peer_a.process_proposal(sp).await.unwrap_err());
    assert_eq!(msg, "Failed evaluating policy on signed data during check policy on channel [ch1] with policy [/Channel/Application/Writers]: [implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied]");
    // Unknown channel and undefined chaincode: 500 responses, not gRPC errors.
    let inv = ChaincodeInvocation::new("nochannel", CC, "get", &["k"]);
    let up = create_chaincode_proposal_with(
        &inv,
        &net.client.serialized,
        &[1; 24],
        fabric_common::tx::now_timestamp(),
    );
    let r = net
        .peer_a
        .process_proposal(up.sign(&net.client.key).unwrap())
        .await
        .unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 500);
    assert_eq!(r.response.unwrap().message, "channel 'nochannel' not found");
    let (_, sp) = proposal(&net.client, "ghost", &["get", "k"], &[]);
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 500);
    assert_eq!(r.response.unwrap().message, "make sure the chaincode ghost has been successfully defined on channel ch1 and try again: chaincode ghost not found");
    assert!(r.endorsement.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_required_chaincodes_must_be_initialised_first() {
    let net = Net::new(ANY).await;
    let mut def = definition("kvinit", &net.package_id, &net.chaincode_address(), ANY);
    def.init_required = true;
    for p in [&net.peer_a, &net.peer_b] {
        p.channel(CH)
            .unwrap()
            .define_chaincode(def.clone())
            .unwrap();
    }
    let (_, sp) = proposal(&net.client, "kvinit", &["get", "k"], &[]);
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    let m = r.response.unwrap().message;
    assert!(m.ends_with("invalid invocation: chaincode 'kvinit' has not been initialized for this version, must call as init first"), "{m}");
    let mut inv = ChaincodeInvocation::new(CH, "kvinit", "init", &[]);
    inv.is_init = true;
    let up = fabric_common::tx::create_chaincode_proposal(&inv, &net.client.serialized);
    let r = net
        .peer_a
        .process_proposal(up.sign(&net.client.key).unwrap())
        .await
        .unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 200, "{:?}", r.response);
    let env = assemble(&net.client, &up.proposal, &[r]);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env])[0],
        vec![Code::Valid]
    );
    let (_, sp) = proposal(&net.client, "kvinit", &["get", "initialised"], &[]);
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    assert_eq!(r.response.unwrap().payload, b"yes");
    let up = fabric_common::tx::create_chaincode_proposal(&inv, &net.client.serialized);
    let r = net
        .peer_a
        .process_proposal(up.sign(&net.client.key).unwrap())
        .await
        .unwrap();
    assert!(r
        .response
        .unwrap()
        .message
        .ends_with("chaincode 'kvinit' is already initialized but called as init"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_endorser_service_serves_the_same_answers() {
    let net = Net::new(ANY).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(net.peer_a.endorser_service())
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = EndorserClient::new(channel);
    let (_, sp) = proposal(&net.client, CC, &["put", "g", "rpc"], &[]);
    let r = client.process_proposal(sp).await.unwrap().into_inner();
    assert_eq!(r.response.as_ref().unwrap().status, 200);
    assert!(r.endorsement.is_some());
    let (_, mut sp) = proposal(&net.client, CC, &["get", "g"], &[]);
    sp.signature = net.client_b.sign(&sp.proposal_bytes);
    let e = client.process_proposal(sp).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unknown);
    assert_eq!(
        e.message(),
        "error validating proposal: access denied: channel [ch1] creator org [OrgAMSP]"
    );
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_endorsement_policy_replaces_the_chaincodes_for_its_writes() {
    let net = Net::new(ANY).await;
    let mut def = definition(CC, &net.package_id, &net.chaincode_address(), ANY);
    let fabric_protos::protos::collection_config::Payload::StaticCollectionConfig(sc) =
        def.collections.config[0].payload.as_mut().unwrap();
    assert_eq!(sc.name, "shared");
    sc.endorsement_policy = Some(
        fabric_protos::protos::ApplicationPolicy::decode(
            application_policy("OR('OrgBMSP.peer')").as_slice(),
        )
        .unwrap(),
    );
    for p in [&net.peer_a, &net.peer_b] {
        p.channel(CH)
            .unwrap()
            .define_chaincode(def.clone())
            .unwrap();
    }
    let t: &[(&str, &[u8])] = &[("value", b"v")];
    let (prop, rs) = endorse(&net.client, &[&net.peer_a], &["putp", "shared", "k"], t).await;
    let env = assemble(&net.client, &prop, &rs);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env])[0],
        vec![Code::EndorsementPolicyFailure]
    );
    let codes = submit_with(
        &net,
        &net.client,
        &[&net.peer_b],
        &["putp", "shared", "k"],
        t,
    )
    .await;
    assert_eq!(codes, vec![Code::Valid, Code::Valid]);
    // Public writes still follow the chaincode's policy.
    let codes = submit(&net, &net.client, &[&net.peer_a], &["put", "pub", "v"]).await;
    assert_eq!(codes[0], Code::Valid);
}
