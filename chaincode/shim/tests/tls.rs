//! The chaincode server with TLS and mutual TLS, as a CCaaS chaincode serves a peer that dials it
//! with the address from `connection.json` (no server name: the certificate carries an IP SAN).

use fabric_chaincode::contract::{Context, Contract, Router};
use fabric_chaincode::server::TlsFiles;
use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestPeerError, TestTx};
use fabric_chaincode::{ChaincodeServer, Error, PeerStub, RunningServer, ServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

const PKG: &str = "elicense_1.0:feedface";

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate and its key, as PEM.
    fn leaf(&self, cn: &str, server: bool) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        if server {
            params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn chaincode() -> Router<PeerStub> {
    Router::new().contract(Contract::new("Echo").evaluate(
        "Echo",
        &["text"],
        |_ctx: Context<PeerStub>, (t,): (String,)| async move { Ok::<_, Error>(t) },
    ))
}

/// Starts a TLS server; `client_ca` turns on mutual TLS.
async fn start(dir: &tempfile::TempDir, pki: &Pki, client_ca: Option<&str>) -> RunningServer {
    let (cert, key) = pki.leaf("chaincode", true);
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let tls = TlsFiles {
        key: write("server.key", &key),
        cert: write("server.crt", &cert),
        client_ca_cert: client_ca.map(|ca| write("client-ca.crt", ca)),
    };
    let config = ServerConfig {
        address: "127.0.0.1:0".into(),
        chaincode_id: PKG.into(),
        tls: Some(tls),
    };
    ChaincodeServer::new(config, chaincode())
        .start()
        .await
        .expect("TLS server starts")
}

async fn dial(server: &RunningServer, tls: ClientTlsConfig) -> Result<TestPeer, TestPeerError> {
    TestPeer::connect(
        &format!("https://{}", server.local_addr()),
        TestPeerConfig {
            tls: Some(tls),
            ..Default::default()
        },
    )
    .await
}

async fn echo(p: &TestPeer) -> String {
    let out = p
        .invoke(TestTx::new("ch", ["Echo", "over tls"]))
        .await
        .unwrap();
    String::from_utf8(out.response().expect("COMPLETED").payload).unwrap()
}

#[tokio::test]
async fn tls_server_is_reached_by_ip_address() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("chaincode-tls-ca");
    let server = start(&dir, &pki, None).await;
    let trust = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem));
    let p = dial(&server, trust)
        .await
        .expect("TLS handshake and REGISTER");
    assert_eq!(p.registered_name(), PKG);
    assert_eq!(echo(&p).await, "over tls");

    // A peer that does not trust the chaincode's CA refuses the connection.
    let other = Pki::new("someone-else");
    let wrong = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&other.ca_pem));
    assert!(matches!(
        dial(&server, wrong).await,
        Err(TestPeerError::Transport(_))
    ));
    drop(p);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server_pki = Pki::new("chaincode-tls-ca");
    let peer_pki = Pki::new("peer-org-tls-ca");
    let server = start(&dir, &server_pki, Some(&peer_pki.ca_pem)).await;
    let trust = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&server_pki.ca_pem));

    let (cert, key) = peer_pki.leaf("peer0", false);
    let p = dial(
        &server,
        trust.clone().identity(Identity::from_pem(cert, key)),
    )
    .await
    .expect("a peer with a client certificate from the client CA is served");
    assert_eq!(echo(&p).await, "over tls");

    // No client certificate: the handshake (or the first stream on it) fails.
    assert!(dial(&server, trust.clone()).await.is_err());
    // A client certificate from another CA: refused as well.
    let stranger = Pki::new("stranger-ca");
    let (cert, key) = stranger.leaf("intruder", false);
    assert!(dial(&server, trust.identity(Identity::from_pem(cert, key)))
        .await
        .is_err());
    drop(p);
    server.shutdown().await.unwrap();
}
