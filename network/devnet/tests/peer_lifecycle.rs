//! `_lifecycle` on devnet peers: a CCaaS package installed by org admins, the definition
//! approved by each organisation and committed as ledger state, then invoked — and still defined
//! after a peer restarts — with Fabric's ACLs, checks and messages.

#[path = "peer_fixture.rs"]
mod fx;

use fabric_common::ccaas::{build, Connection};
use fabric_common::tx::{create_chaincode_proposal, ChaincodeInvocation};
use fabric_devnet::peer::{PeerNode, PeerNodeConfig, TransientStore};
use fabric_protos::lifecycle as lb;
use fabric_protos::protos::{Proposal, ProposalResponse, TxValidationCode as Code};
use fx::cfix::User;
use fx::*;
use prost::Message;

const ANY: &str = "OR('OrgAMSP.peer','OrgBMSP.peer')";

fn lc_proposal(
    user: &User,
    channel: &str,
    function: &str,
    arg: Vec<u8>,
) -> (Proposal, fabric_protos::protos::SignedProposal) {
    let inv = ChaincodeInvocation {
        channel_id: channel.into(),
        chaincode_name: "_lifecycle".into(),
        args: vec![function.as_bytes().to_vec(), arg],
        ..Default::default()
    };
    let up = create_chaincode_proposal(&inv, &user.serialized);
    let sp = up.sign(&user.key).unwrap();
    (up.proposal, sp)
}

async fn lc_call(
    peer: &PeerNode,
    user: &User,
    channel: &str,
    function: &str,
    arg: Vec<u8>,
) -> ProposalResponse {
    let (_, sp) = lc_proposal(user, channel, function, arg);
    peer.process_proposal(sp).await.unwrap()
}

fn ok_payload(r: &ProposalResponse) -> Vec<u8> {
    let resp = r.response.as_ref().unwrap();
    assert_eq!(resp.status, 200, "{}", resp.message);
    resp.payload.clone()
}

fn definition_args(version: &str) -> lb::CommitChaincodeDefinitionArgs {
    lb::CommitChaincodeDefinitionArgs {
        sequence: 1,
        name: "lcc".into(),
        version: version.into(),
        validation_parameter: application_policy(ANY),
        ..Default::default()
    }
}

fn approve_args(version: &str, package_id: &str) -> Vec<u8> {
    let d = definition_args(version);
    lb::ApproveChaincodeDefinitionForMyOrgArgs {
        sequence: d.sequence,
        name: d.name,
        version: d.version,
        validation_parameter: d.validation_parameter,
        source: Some(lb::ChaincodeSource {
            r#type: Some(lb::chaincode_source::Type::LocalPackage(
                lb::chaincode_source::Local {
                    package_id: package_id.into(),
                },
            )),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Endorses a `_lifecycle` transaction on `endorsers`, commits it on both peers.
async fn lc_submit(
    net: &Net,
    user: &User,
    endorsers: &[&PeerNode],
    function: &str,
    arg: Vec<u8>,
) -> Code {
    let (prop, sp) = lc_proposal(user, CH, function, arg);
    let mut rs = Vec::new();
    for p in endorsers {
        let r = p.process_proposal(sp.clone()).await.unwrap();
        ok_payload(&r);
        rs.push(r);
    }
    let env = assemble(user, &prop, &rs);
    let codes = deliver(&[&net.peer_a, &net.peer_b], &[env]);
    assert_eq!(codes[0], codes[1]);
    codes[0][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaincode_is_installed_approved_committed_and_invoked() {
    let net = Net::new(ANY).await;
    let admin_a = net.a.user("admin", "admin", false);
    let admin_b = net.b.user("admin", "admin", false);

    // The package and its server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let package = build("lcc_1.0", &Connection::plaintext(&addr)).unwrap();
    let package_id = fabric_devnet::lifecycle::package_id("lcc_1.0", &package);
    let _server = start_chaincode(&package_id, &addr).await;

    // Install: org admins only, once.
    let install = lb::InstallChaincodeArgs {
        chaincode_install_package: package.clone(),
    }
    .encode_to_vec();
    let r = lc_call(
        &net.peer_a,
        &net.client,
        "",
        "InstallChaincode",
        install.clone(),
    )
    .await;
    let m = r.response.unwrap().message;
    assert!(
        m.starts_with("Failed to authorize invocation due to failed ACL check: "),
        "{m}"
    );
    for (peer, admin) in [(&net.peer_a, &admin_a), (&net.peer_b, &admin_b)] {
        let r = lc_call(peer, admin, "", "InstallChaincode", install.clone()).await;
        let res = lb::InstallChaincodeResult::decode(ok_payload(&r).as_slice()).unwrap();
        assert_eq!(res.package_id, package_id);
        assert_eq!(res.label, "lcc_1.0");
        assert!(r.endorsement.is_none());
    }
    let r = lc_call(&net.peer_a, &admin_a, "", "InstallChaincode", install).await;
    assert_eq!(
        r.response.unwrap().message,
        format!("failed to invoke backing implementation of 'InstallChaincode': chaincode already successfully installed (package ID '{package_id}')")
    );
    let r = lc_call(
        &net.peer_a,
        &admin_a,
        "",
        "QueryInstalledChaincodes",
        vec![],
    )
    .await;
    let res = lb::QueryInstalledChaincodesResult::decode(ok_payload(&r).as_slice()).unwrap();
    assert_eq!(res.installed_chaincodes.len(), 1);
    assert_eq!(res.installed_chaincodes[0].package_id, package_id);

    // Not defined yet.
    let q = lb::QueryChaincodeDefinitionArgs { name: "lcc".into() }.encode_to_vec();
    let r = lc_call(
        &net.peer_a,
        &net.client,
        CH,
        "QueryChaincodeDefinition",
        q.clone(),
    )
    .await;
    let resp = r.response.unwrap();
    assert_eq!(
        (resp.status, resp.message.as_str()),
        (404, "namespace lcc is not defined")
    );

    // Approvals: OrgA approves; before OrgB does, commit readiness shows it.
    let code = lc_submit(
        &net,
        &admin_a,
        &[&net.peer_a],
        "ApproveChaincodeDefinitionForMyOrg",
        approve_args("1.0", &package_id),
    )
    .await;
    assert_eq!(code, Code::Valid);
    let ready = definition_args("1.0").encode_to_vec();
    let r = lc_call(
        &net.peer_b,
        &net.client_b,
        CH,
        "CheckCommitReadiness",
        ready.clone(),
    )
    .await;
    let res = lb::CheckCommitReadinessResult::decode(ok_payload(&r).as_slice()).unwrap();
    assert_eq!(res.approvals.get("OrgAMSP"), Some(&true));
    assert_eq!(res.approvals.get("OrgBMSP"), Some(&false));
    // OrgB's peer will not endorse a commit its org has not approved.
    let r = lc_call(
        &net.peer_b,
        &net.client_b,
        CH,
        "CommitChaincodeDefinition",
        ready.clone(),
    )
    .await;
    assert_eq!(
        r.response.unwrap().message,
        "failed to invoke backing implementation of 'CommitChaincodeDefinition': chaincode definition not agreed to by this org (OrgBMSP)"
    );
    let code = lc_submit(
        &net,
        &admin_b,
        &[&net.peer_b],
        "ApproveChaincodeDefinitionForMyOrg",
        approve_args("1.0", &package_id),
    )
    .await;
    assert_eq!(code, Code::Valid);
    // The same approval again is refused (unchanged content).
    let r = lc_call(
        &net.peer_b,
        &admin_b,
        CH,
        "ApproveChaincodeDefinitionForMyOrg",
        approve_args("1.0", &package_id),
    )
    .await;
    assert!(r.response.unwrap().message.ends_with(
        "attempted to redefine uncommitted sequence (1) for namespace lcc with unchanged content"
    ));

    // A commit endorsed by one org does not satisfy the lifecycle endorsement policy (majority).
    let code = lc_submit(
        &net,
        &net.client,
        &[&net.peer_a],
        "CommitChaincodeDefinition",
        ready.clone(),
    )
    .await;
    assert_eq!(code, Code::EndorsementPolicyFailure);
    assert!(net.peer_a.channel(CH).unwrap().chaincode("lcc").is_none());
    let code = lc_submit(
        &net,
        &net.client,
        &[&net.peer_a, &net.peer_b],
        "CommitChaincodeDefinition",
        ready,
    )
    .await;
    assert_eq!(code, Code::Valid);

    // Both peers now run the chaincode their org approved.
    for p in [&net.peer_a, &net.peer_b] {
        let d = p.channel(CH).unwrap().chaincode("lcc").unwrap();
        assert_eq!(d.definition.package_id, package_id);
        assert_eq!(d.definition.sequence, 1);
    }
    let (prop, sp) = proposal(&net.client, "lcc", &["put", "k", "via-lifecycle"], &[]);
    let r = net.peer_b.process_proposal(sp).await.unwrap();
    assert_eq!(ok_payload(&r), b"");
    let env = assemble(&net.client, &prop, &[r]);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env])[0],
        vec![Code::Valid]
    );

    let r = lc_call(&net.peer_a, &net.client, CH, "QueryChaincodeDefinition", q).await;
    let res = lb::QueryChaincodeDefinitionResult::decode(ok_payload(&r).as_slice()).unwrap();
    assert_eq!((res.sequence, res.version.as_str()), (1, "1.0"));
    assert_eq!(
        (
            res.endorsement_plugin.as_str(),
            res.validation_plugin.as_str()
        ),
        ("escc", "vscc")
    );
    assert_eq!(res.approvals.values().filter(|v| **v).count(), 2);
    let r = lc_call(
        &net.peer_a,
        &net.client,
        CH,
        "QueryChaincodeDefinitions",
        vec![],
    )
    .await;
    let res = lb::QueryChaincodeDefinitionsResult::decode(ok_payload(&r).as_slice()).unwrap();
    assert_eq!(res.chaincode_definitions.len(), 1);
    assert_eq!(res.chaincode_definitions[0].name, "lcc");
    let r = lc_call(
        &net.peer_a,
        &admin_a,
        CH,
        "QueryApprovedChaincodeDefinition",
        lb::QueryApprovedChaincodeDefinitionArgs {
            name: "lcc".into(),
            sequence: 0,
        }
        .encode_to_vec(),
    )
    .await;
    let res =
        lb::QueryApprovedChaincodeDefinitionResult::decode(ok_payload(&r).as_slice()).unwrap();
    assert_eq!(res.sequence, 1);
    assert_eq!(
        res.source.unwrap().r#type,
        Some(lb::chaincode_source::Type::LocalPackage(
            lb::chaincode_source::Local {
                package_id: package_id.clone()
            }
        ))
    );
    // Installed packages list what uses them.
    let r = lc_call(
        &net.peer_a,
        &admin_a,
        "",
        "QueryInstalledChaincodes",
        vec![],
    )
    .await;
    let res = lb::QueryInstalledChaincodesResult::decode(ok_payload(&r).as_slice()).unwrap();
    let refs = &res.installed_chaincodes[0].references[CH].chaincodes;
    assert_eq!(
        (refs[0].name.as_str(), refs[0].version.as_str()),
        ("lcc", "1.0")
    );

    // A restarted peer reads the definition and its installed package back.
    let Net {
        peer_a,
        a,
        client,
        dir,
        ..
    } = net;
    drop(peer_a);
    let genesis_path = dir.path().join("peer0.orga");
    let id = a.user("peer0.orga", "peer", false);
    let restarted = PeerNode::new(PeerNodeConfig {
        msp_id: a.msp_id.clone(),
        name: "peer0.orga".into(),
        address: "peer0.orga:7051".into(),
        signer: signing_identity(&id),
        data_dir: genesis_path.clone(),
        transient: TransientStore::new(),
    });
    let genesis = {
        let l = fabric_devnet::ledger::Ledger::open(genesis_path.join(format!("{CH}.redb")), CH)
            .unwrap();
        l.block(0).unwrap().unwrap()
    };
    restarted.join_channel(&genesis).unwrap();
    let (_, sp) = proposal(&client, "lcc", &["get", "k"], &[]);
    let r = restarted.process_proposal(sp).await.unwrap();
    assert_eq!(ok_payload(&r), b"via-lifecycle");
}
