//! Shared by the peer, endorser and chaincode-hosting tests (included with `#[path]`): a channel of
//! two organisations with one devnet peer each, a test chaincode served by our shim's CCaaS
//! server, proposals built with fabric-common's transaction helpers, and blocks cut as the
//! orderer cuts them.
#![allow(dead_code, missing_docs)]

#[path = "committer_fixture.rs"]
pub mod cfix;

use std::collections::BTreeMap;
use std::sync::Arc;

use cfix::{Org, User};
use fabric_chaincode::stub::{ChaincodeStub, QueryIterator};
use fabric_chaincode::types::Response as CcResponse;
use fabric_chaincode::{Chaincode, ChaincodeServer, RunningServer, ServerConfig};
use fabric_common::crypto::SigningKey;
use fabric_common::identity::{Identity, SigningIdentity};
use fabric_common::tx::{create_chaincode_proposal, create_signed_tx, ChaincodeInvocation};
use fabric_devnet::chaincode::ConnectionInfo;
use fabric_devnet::configtx::genesis_block;
use fabric_devnet::ledger::block::new_block;
use fabric_devnet::peer::{ChaincodeDefinition, PeerNode, PeerNodeConfig, TransientStore};
use fabric_protos::common::{BlockMetadataIndex, Envelope};
use fabric_protos::protos::{
    application_policy, collection_config, collection_policy_config, ApplicationPolicy,
    CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig, Proposal, ProposalResponse,
    StaticCollectionConfig, TxValidationCode as Code,
};
use prost::Message;

pub const CH: &str = "ch1";
pub const CC: &str = "kv";

/// The test chaincode: one function per shim feature, arguments as strings.
pub struct Kv;

fn ok(s: impl Into<Vec<u8>>) -> CcResponse {
    CcResponse::success(s)
}

async fn run<S: ChaincodeStub>(stub: S) -> Result<CcResponse, String> {
    let args = stub.string_args();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    let e = |e: fabric_chaincode::Error| e.to_string();
    match a(0).as_str() {
        "put" => {
            stub.put_state(&a(1), a(2).into_bytes()).await.map_err(e)?;
            Ok(ok(""))
        }
        "putmany" => {
            let n: usize = a(2).parse().unwrap();
            for i in 0..n {
                stub.put_state(&format!("{}{i:04}", a(1)), format!("v{i}").into_bytes())
                    .await
                    .map_err(e)?;
            }
            Ok(ok(""))
        }
        "get" => Ok(ok(stub
            .get_state(&a(1))
            .await
            .map_err(e)?
            .unwrap_or_default())),
        "multi" => {
            let keys: Vec<&str> = args[1..].iter().map(String::as_str).collect();
            let vals = stub.get_multiple_states(&keys).await.map_err(e)?;
            let vals: Vec<String> = vals
                .into_iter()
                .map(|v| String::from_utf8(v.unwrap_or_default()).unwrap())
                .collect();
            Ok(ok(vals.join(",")))
        }
        "del" => {
            stub.del_state(&a(1)).await.map_err(e)?;
            Ok(ok(""))
        }
        "range" => {
            let it = stub.get_state_by_range(&a(1), &a(2)).await.map_err(e)?;
            let kvs = it.collect_all().await.map_err(e)?;
            Ok(ok(kvs
                .iter()
                .map(|k| k.key.clone())
                .collect::<Vec<_>>()
                .join(",")))
        }
        "page" => {
            let (it, meta) = stub
                .get_state_by_range_with_pagination(&a(1), &a(2), a(3).parse().unwrap(), &a(4))
                .await
                .map_err(e)?;
            let kvs = it.collect_all().await.map_err(e)?;
            Ok(ok(format!(
                "{}|{}|{}",
                kvs.len(),
                meta.fetched_records_count,
                meta.bookmark
            )))
        }
        "ckput" => {
            let key = stub
                .create_composite_key(&a(1), &[&a(2), &a(3)])
                .map_err(e)?;
            stub.put_state(&key, a(4).into_bytes()).await.map_err(e)?;
            Ok(ok(""))
        }
        "ckquery" => {
            let it = stub
                .get_state_by_partial_composite_key(&a(1), &[&a(2)])
                .await
                .map_err(e)?;
            let kvs = it.collect_all().await.map_err(e)?;
            let mut out = Vec::new();
            for kv in kvs {
                let (_, attrs) = stub.split_composite_key(&kv.key).map_err(e)?;
                out.push(format!(
                    "{}={}",
                    attrs.join("/"),
                    String::from_utf8_lossy(&kv.value)
                ));
            }
            Ok(ok(out.join(",")))
        }
        "history" => {
            let it = stub.get_history_for_key(&a(1)).await.map_err(e)?;
            let mods = it.collect_all().await.map_err(e)?;
            let out: Vec<String> = mods
                .iter()
                .map(|m| {
                    if m.is_delete {
                        "<deleted>".to_string()
                    } else {
                        String::from_utf8_lossy(&m.value).into_owned()
                    }
                })
                .collect();
            Ok(ok(out.join(",")))
        }
        "putp" => {
            let v = stub.transient().get("value").cloned().unwrap_or_default();
            stub.put_private_data(&a(1), &a(2), v).await.map_err(e)?;
            Ok(ok(""))
        }
        "getp" => Ok(ok(stub
            .get_private_data(&a(1), &a(2))
            .await
            .map_err(e)?
            .unwrap_or_default())),
        "hashp" => Ok(ok(hex::encode(
            stub.get_private_data_hash(&a(1), &a(2))
                .await
                .map_err(e)?
                .unwrap_or_default(),
        ))),
        "rangep" => {
            let it = stub
                .get_private_data_by_range(&a(1), &a(2), &a(3))
                .await
                .map_err(e)?;
            let kvs = it.collect_all().await.map_err(e)?;
            Ok(ok(kvs
                .iter()
                .map(|k| k.key.clone())
                .collect::<Vec<_>>()
                .join(",")))
        }
        "purgep" => {
            stub.purge_private_data(&a(1), &a(2)).await.map_err(e)?;
            Ok(ok(""))
        }
        "rich" => {
            let it = stub.get_query_result(&a(1)).await.map_err(e)?;
            Ok(ok(it.collect_all().await.map_err(e)?.len().to_string()))
        }
        "setvp" => {
            let p = fabric_common::policy::parse_policy(&a(2)).unwrap();
            stub.set_state_validation_parameter(&a(1), p.encode_to_vec())
                .await
                .map_err(e)?;
            Ok(ok(""))
        }
        "getvp" => Ok(ok(hex::encode(
            stub.get_state_validation_parameter(&a(1))
                .await
                .map_err(e)?
                .unwrap_or_default(),
        ))),
        "event" => {
            stub.set_event(&a(1), a(2).into_bytes()).map_err(e)?;
            Ok(ok(""))
        }
        "call" => {
            let call_args = args[2..].iter().map(|s| s.clone().into_bytes()).collect();
            // "name" or "name/channel".
            let target = a(1);
            let (name, channel) = target.split_once('/').unwrap_or((target.as_str(), ""));
            let r = stub.invoke_chaincode(name, call_args, channel).await;
            if r.status != 200 {
                return Err(format!("called chaincode failed: {}", r.message));
            }
            Ok(ok(r.payload))
        }
        "fail" => Err(a(1)),
        "status" => Ok(CcResponse {
            status: a(1).parse().unwrap(),
            message: a(2),
            payload: Vec::new(),
        }),
        "sleep" => {
            tokio::time::sleep(std::time::Duration::from_millis(a(1).parse().unwrap())).await;
            Ok(ok("slept"))
        }
        "transient" => Ok(ok(stub.transient().get(&a(1)).cloned().unwrap_or_default())),
        other => Err(format!("unknown function {other}")),
    }
}

impl<S: ChaincodeStub> Chaincode<S> for Kv {
    async fn init(&self, stub: S) -> CcResponse {
        let _ = stub.put_state("initialised", b"yes".to_vec()).await;
        ok("")
    }
    async fn invoke(&self, stub: S) -> CcResponse {
        match run(stub).await {
            Ok(r) => r,
            Err(m) => CcResponse::error(m),
        }
    }
}

/// Starts the test chaincode's CCaaS server on a free port (or `addr`).
pub async fn start_chaincode(package_id: &str, addr: &str) -> RunningServer {
    let config = ServerConfig {
        address: addr.to_string(),
        chaincode_id: package_id.to_string(),
        tls: None,
    };
    ChaincodeServer::<Kv>::new(config, Kv)
        .start()
        .await
        .unwrap()
}

pub fn signing_identity(u: &User) -> SigningIdentity {
    SigningIdentity::new(
        Identity::new(u.msp_id.clone(), u.cert_pem.as_bytes()).unwrap(),
        Arc::new(SigningKey::from_pem(u.key.to_pkcs8_pem().as_bytes()).unwrap()),
    )
}

pub fn application_policy(text: &str) -> Vec<u8> {
    ApplicationPolicy {
        r#type: Some(application_policy::Type::SignaturePolicy(
            fabric_common::policy::parse_policy(text).unwrap(),
        )),
    }
    .encode_to_vec()
}

pub fn collection(name: &str, members: &str, member_only_read: bool) -> CollectionConfig {
    CollectionConfig {
        payload: Some(collection_config::Payload::StaticCollectionConfig(
            StaticCollectionConfig {
                name: name.into(),
                member_orgs_policy: Some(CollectionPolicyConfig {
                    payload: Some(collection_policy_config::Payload::SignaturePolicy(
                        fabric_common::policy::parse_policy(members).unwrap(),
                    )),
                }),
                required_peer_count: 0,
                maximum_peer_count: 1,
                block_to_live: 0,
                member_only_read,
                member_only_write: false,
                endorsement_policy: None,
            },
        )),
    }
}

/// Two organisations A and B, a peer each on channel `ch1`, the test chaincode `kv` served by
/// one CCaaS server and defined with `policy` and collections `shared` (A and B) and `aonly`.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub a: Org,
    pub b: Org,
    pub o: Org,
    pub client: User,
    pub client_b: User,
    pub peer_a: PeerNode,
    pub peer_b: PeerNode,
    pub server: Option<RunningServer>,
    pub package_id: String,
    pub transient: TransientStore,
}

pub fn definition(name: &str, package_id: &str, addr: &str, policy: &str) -> ChaincodeDefinition {
    ChaincodeDefinition {
        name: name.into(),
        version: "1.0".into(),
        sequence: 1,
        package_id: package_id.into(),
        connection: ConnectionInfo::plaintext(addr),
        endorsement_policy: application_policy(policy),
        collections: CollectionConfigPackage {
            config: vec![
                collection("shared", "OR('OrgAMSP.member','OrgBMSP.member')", false),
                collection("aonly", "OR('OrgAMSP.member')", true),
            ],
        },
        init_required: false,
    }
}

impl Net {
    pub async fn new(policy: &str) -> Net {
        Self::with_timeout(policy, std::time::Duration::from_secs(30)).await
    }

    pub async fn with_timeout(policy: &str, timeout: std::time::Duration) -> Net {
        let a = Org::new("OrgA");
        let b = Org::new("OrgB");
        let o = Org::new("Orderer");
        let genesis = genesis_block(&cfix::channel_input(CH, &[&a, &b], &o));
        let dir = tempfile::tempdir().unwrap();
        let transient = TransientStore::new();
        let node = |org: &Org, name: &str| {
            let id = org.user(name, "peer", false);
            PeerNode::with_execute_timeout(
                PeerNodeConfig {
                    msp_id: org.msp_id.clone(),
                    name: name.into(),
                    address: format!("{name}:7051"),
                    signer: signing_identity(&id),
                    data_dir: dir.path().join(name),
                    transient: transient.clone(),
                },
                timeout,
            )
        };
        let peer_a = node(&a, "peer0.orga");
        let peer_b = node(&b, "peer0.orgb");
        peer_a.join_channel(&genesis).unwrap();
        peer_b.join_channel(&genesis).unwrap();
        let package_id = format!("kv_1.0:{}", hex::encode([7u8; 32]));
        let server = start_chaincode(&package_id, "127.0.0.1:0").await;
        let addr = server.local_addr().to_string();
        for p in [&peer_a, &peer_b] {
            p.channel(CH)
                .unwrap()
                .define_chaincode(definition(CC, &package_id, &addr, policy))
                .unwrap();
        }
        Net {
            client: a.user("client1", "client", false),
            client_b: b.user("client1", "client", false),
            dir,
            a,
            b,
            o,
            peer_a,
            peer_b,
            server: Some(server),
            package_id,
            transient,
        }
    }

    pub fn chaincode_address(&self) -> String {
        self.server.as_ref().unwrap().local_addr().to_string()
    }
}

/// A signed proposal for `cc` with string args and transient data.
pub fn proposal(
    user: &User,
    cc: &str,
    args: &[&str],
    transient: &[(&str, &[u8])],
) -> (Proposal, fabric_protos::protos::SignedProposal) {
    let mut inv = ChaincodeInvocation::new(CH, cc, args[0], &args[1..]);
    inv.transient = transient
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect::<BTreeMap<_, _>>();
    let up = create_chaincode_proposal(&inv, &user.serialized);
    let sp = up.sign(&user.key).unwrap();
    (up.proposal, sp)
}

/// Endorses on each peer and returns the proposal and responses.
pub async fn endorse(
    user: &User,
    peers: &[&PeerNode],
    args: &[&str],
    transient: &[(&str, &[u8])],
) -> (Proposal, Vec<ProposalResponse>) {
    let (prop, sp) = proposal(user, CC, args, transient);
    let mut out = Vec::new();
    for p in peers {
        out.push(p.process_proposal(sp.clone()).await.unwrap());
    }
    (prop, out)
}

/// The response payload of a successful evaluation on `peer`.
pub async fn evaluate(user: &User, peer: &PeerNode, args: &[&str]) -> ProposalResponse {
    let (_, mut r) = endorse(user, &[peer], args, &[]).await;
    r.remove(0)
}

pub fn payload_string(r: &ProposalResponse) -> String {
    let resp = r.response.as_ref().unwrap();
    assert_eq!(resp.status, 200, "{}", resp.message);
    String::from_utf8(resp.payload.clone()).unwrap()
}

pub fn assemble(user: &User, prop: &Proposal, responses: &[ProposalResponse]) -> Envelope {
    create_signed_tx(prop, &user.key, &user.serialized, responses).unwrap()
}

/// Cuts one block of `envs` and delivers it to every peer; returns each peer's codes.
pub fn deliver(peers: &[&PeerNode], envs: &[Envelope]) -> Vec<Vec<Code>> {
    let first = peers[0].channel(CH).unwrap();
    let l = first.ledger();
    let block = new_block(
        l.height(),
        l.last_header_hash(),
        envs.iter().map(|e| e.encode_to_vec()).collect(),
    );
    peers
        .iter()
        .map(|p| {
            let ev = p.channel(CH).unwrap().deliver_block(block.clone()).unwrap();
            let filter = &ev.block.metadata.as_ref().unwrap().metadata
                [BlockMetadataIndex::TransactionsFilter as usize];
            filter
                .iter()
                .map(|c| Code::try_from(i32::from(*c)).unwrap())
                .collect()
        })
        .collect()
}

/// Endorse on `peers`, assemble, cut, deliver to both peers; the code on each.
pub async fn submit(net: &Net, user: &User, endorsers: &[&PeerNode], args: &[&str]) -> Vec<Code> {
    submit_with(net, user, endorsers, args, &[]).await
}

pub async fn submit_with(
    net: &Net,
    user: &User,
    endorsers: &[&PeerNode],
    args: &[&str],
    transient: &[(&str, &[u8])],
) -> Vec<Code> {
    let (prop, rs) = endorse(user, endorsers, args, transient).await;
    for r in &rs {
        let resp = r.response.as_ref().unwrap();
        assert_eq!(resp.status, 200, "{}", resp.message);
    }
    let env = assemble(user, &prop, &rs);
    deliver(&[&net.peer_a, &net.peer_b], &[env])
        .into_iter()
        .map(|c| c[0])
        .collect()
}

/// The same proposal signed again (another endorser receives identical bytes).
pub fn proposal_again(user: &User, prop: &Proposal) -> fabric_protos::protos::SignedProposal {
    let proposal_bytes = prop.encode_to_vec();
    fabric_protos::protos::SignedProposal {
        signature: user.sign(&proposal_bytes),
        proposal_bytes,
    }
}
