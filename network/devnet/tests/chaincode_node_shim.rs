//! The official Node `fabric-shim` (npm, chaincode-as-a-service mode) runs on a devnet peer:
//! plaintext and mutual TLS per connection.json, state, events, errors and the client identity
//! the shim reads from the signed proposal. Needs Node and `npm ci` in
//! `network/fabric/testdata/kv-chaincode`; skips without them (fails in CI).

#[path = "peer_fixture.rs"]
mod fx;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use fabric_protos::protos::{
    ChaincodeAction, ChaincodeEvent, ProposalResponsePayload, TxValidationCode as Code,
};
use fx::*;
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

const ANY: &str = "OR('OrgAMSP.peer','OrgBMSP.peer')";

fn kv_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fabric/testdata/kv-chaincode")
}

/// Node and the npm packages, or a skip (a failure under CI).
fn node_ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if node && kv_dir().join("node_modules/fabric-shim").is_dir() {
        return true;
    }
    let what = "node and `npm ci` in network/fabric/testdata/kv-chaincode";
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("required in CI but missing: {what}");
    }
    eprintln!("SKIPPED: {what}");
    false
}

/// The Node chaincode server process; killed when dropped, even on panic.
struct NodeChaincode(Child);

impl Drop for NodeChaincode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_node(package_id: &str, addr: &str, tls: &[(&str, PathBuf)]) -> NodeChaincode {
    let mut cmd = Command::new("node");
    cmd.arg("server.js")
        .current_dir(kv_dir())
        .env("CHAINCODE_SERVER_ADDRESS", addr)
        .env("CHAINCODE_ID", package_id)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if tls.is_empty() {
        cmd.env("CHAINCODE_TLS_DISABLED", "true");
    }
    for (k, v) in tls {
        cmd.env(k, v);
    }
    NodeChaincode(cmd.spawn().expect("starting node"))
}

fn define(net: &Net, name: &str, package_id: &str, conn: fabric_devnet::chaincode::ConnectionInfo) {
    let mut def = definition(name, package_id, &conn.address, ANY);
    def.connection = conn;
    def.collections.config.clear();
    for p in [&net.peer_a, &net.peer_b] {
        p.channel(CH)
            .unwrap()
            .define_chaincode(def.clone())
            .unwrap();
    }
}

async fn call(net: &Net, cc: &str, args: &[&str]) -> fabric_protos::protos::ProposalResponse {
    let (_, sp) = proposal(&net.client, cc, args, &[]);
    net.peer_a.process_proposal(sp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_shim_runs_on_a_devnet_peer() {
    if !node_ready() {
        return;
    }
    let net = Net::new(ANY).await;
    let pkg = format!("nodekv_1.0:{}", hex::encode([3u8; 32]));
    let addr = format!("127.0.0.1:{}", free_port());
    let _node = start_node(&pkg, &addr, &[]);
    define(
        &net,
        "nodekv",
        &pkg,
        fabric_devnet::chaincode::ConnectionInfo::plaintext(&addr),
    );

    // put: endorsed, with the shim's event, committed on both peers.
    let (prop, sp) = proposal(&net.client, "nodekv", &["put", "colour", "blue"], &[]);
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 200, "{:?}", r.response);
    assert_eq!(r.response.as_ref().unwrap().payload, b"blue");
    let prp = ProposalResponsePayload::decode(r.payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let ev = ChaincodeEvent::decode(action.events.as_slice()).unwrap();
    assert_eq!(
        (
            ev.event_name.as_str(),
            ev.payload.as_slice(),
            ev.chaincode_id.as_str()
        ),
        ("put", &b"colour"[..], "nodekv")
    );
    let env = assemble(&net.client, &prop, &[r]);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env]),
        vec![vec![Code::Valid], vec![Code::Valid]]
    );
    let v = net
        .peer_b
        .channel(CH)
        .unwrap()
        .ledger()
        .get_state("nodekv", "colour")
        .unwrap()
        .unwrap();
    assert_eq!(v.value, b"blue");

    let r = call(&net, "nodekv", &["get", "colour"]).await;
    assert_eq!(r.response.unwrap().payload, b"blue");
    let r = call(&net, "nodekv", &["get", "shape"]).await;
    let resp = r.response.unwrap();
    assert_eq!(
        (resp.status, resp.message.as_str()),
        (500, "no such key: shape")
    );
    assert!(r.endorsement.is_none());
    // The shim reads the creator from the signed proposal the peer forwarded.
    let r = call(&net, "nodekv", &["whoami"]).await;
    let who: serde_json::Value = serde_json::from_slice(&r.response.unwrap().payload).unwrap();
    assert_eq!(who["mspid"], "OrgAMSP");
}

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "tls-ca");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = p.self_signed(&key).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca_pem: ca.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// (cert PEM, key PEM) for `usage`.
    fn leaf(&self, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "leaf");
        p.extended_key_usages = vec![usage];
        (
            p.signed_by(&key, &self.issuer).unwrap().pem(),
            key.serialize_pem(),
        )
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_json_tls_and_client_auth_reach_the_node_shim() {
    if !node_ready() {
        return;
    }
    let net = Net::new(ANY).await;
    let pki = Pki::new();
    let (server_cert, server_key) = pki.leaf(ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = pki.leaf(ExtendedKeyUsagePurpose::ClientAuth);
    let pkg = format!("nodetls_1.0:{}", hex::encode([4u8; 32]));
    let addr = format!("127.0.0.1:{}", free_port());
    let _node = start_node(
        &pkg,
        &addr,
        &[
            ("CHAINCODE_TLS_KEY", pki.file("server.key", &server_key)),
            ("CHAINCODE_TLS_CERT", pki.file("server.crt", &server_cert)),
            ("CHAINCODE_CLIENT_CA_CERT", pki.file("ca.crt", &pki.ca_pem)),
        ],
    );
    let json = serde_json::json!({
        "address": addr,
        "dial_timeout": "10s",
        "tls_required": true,
        "client_auth_required": true,
        "root_cert": pki.ca_pem,
        "client_key": client_key,
        "client_cert": client_cert,
    })
    .to_string();
    let conn = fabric_devnet::chaincode::ConnectionInfo::from_json(&json).unwrap();
    define(&net, "nodetls", &pkg, conn.clone());
    let (prop, sp) = proposal(&net.client, "nodetls", &["put", "k", "over-tls"], &[]);
    let r = net.peer_a.process_proposal(sp).await.unwrap();
    assert_eq!(r.response.as_ref().unwrap().status, 200, "{:?}", r.response);
    let env = assemble(&net.client, &prop, &[r]);
    assert_eq!(
        deliver(&[&net.peer_a, &net.peer_b], &[env])[0],
        vec![Code::Valid]
    );

    // Without the client certificate the server refuses the handshake.
    let mut no_client = conn.clone();
    no_client.client_auth_required = false;
    no_client.client_cert.clear();
    no_client.client_key.clear();
    no_client.dial_timeout = "1s".into();
    // (The same package: only the handshake can fail, not the registration.)
    define(&net, "nodetls2", &pkg, no_client);
    let r = call(&net, "nodetls2", &["get", "k"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message
            .contains(&format!("could not launch chaincode {pkg}")),
        "{}",
        resp.message
    );
    eprintln!("no client certificate: {}", resp.message);
    // A server certificate from another CA is not trusted.
    let other = Pki::new();
    let mut wrong_root = conn;
    wrong_root.root_cert = other.ca_pem.clone();
    wrong_root.dial_timeout = "1s".into();
    define(&net, "nodetls3", &pkg, wrong_root);
    let r = call(&net, "nodetls3", &["get", "k"]).await;
    let resp = r.response.unwrap();
    assert_eq!(resp.status, 500);
    assert!(
        resp.message
            .contains(&format!("could not launch chaincode {pkg}")),
        "{}",
        resp.message
    );
    eprintln!("untrusted server: {}", resp.message);
}
