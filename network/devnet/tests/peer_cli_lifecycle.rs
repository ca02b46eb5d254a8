//! The real Fabric `peer` CLI (v3) deploys and runs a CCaaS chaincode on the devnet exactly as
//! on Fabric: `peer lifecycle chaincode install / queryinstalled / approveformyorg /
//! checkcommitreadiness / commit / querycommitted`, then `peer chaincode invoke` and `query`,
//! all over TLS against the devnet peers' Endorser and Deliver services and its orderer.
//! Needs the Fabric binaries (`../shared/fabric/install.sh`, or `FABRIC_BIN`); skips without
//! them (fails in CI).

#[path = "peer_fixture.rs"]
mod fx;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fabric_common::ccaas::{build, Connection};
use fabric_devnet::devnet::{Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;

const CH: &str = "police-service";
const ORGS: [&str; 3] = ["PublicSecurity", "ServiceCentre", "Regulator"];

fn fabric_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("FABRIC_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("peer").exists().then_some(dir);
    }
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fabric/install.sh");
    let out = Command::new("bash")
        .arg(&install)
        .arg("--bin")
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && dir.join("peer").exists()).then_some(dir)
}

struct Cli<'a> {
    bin: PathBuf,
    summary: &'a DevnetSummary,
}

impl Cli<'_> {
    fn peer_of(&self, org: &str) -> &fabric_devnet::devnet::PeerSummary {
        self.summary.peers.iter().find(|p| p.org == org).unwrap()
    }

    /// Runs `peer <args>` as `org`'s admin against `org`'s peer.
    fn run(&self, org: &str, args: &[&str]) -> Output {
        let p = self.peer_of(org);
        let out = Command::new(self.bin.join("peer"))
            .args(args)
            .env("FABRIC_CFG_PATH", self.bin.parent().unwrap().join("config"))
            .env("CORE_PEER_LOCALMSPID", &p.msp_id)
            .env("CORE_PEER_MSPCONFIGPATH", &self.summary.msp[org]["Admin"])
            .env("CORE_PEER_ADDRESS", &p.address)
            .env("CORE_PEER_TLS_ENABLED", "true")
            .env("CORE_PEER_TLS_ROOTCERT_FILE", &p.tls_ca_cert)
            // One override for every peer the command talks to: the name all peer TLS
            // certificates of the devnet carry besides their host name.
            .env("CORE_PEER_TLS_SERVERHOSTOVERRIDE", "localhost")
            .env("FABRIC_LOGGING_SPEC", "warn")
            .output()
            .unwrap();
        out
    }

    fn ok(&self, org: &str, args: &[&str]) -> String {
        let out = self.run(org, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "peer {args:?} as {org}: {text}");
        text
    }

    fn orderer_args(&self) -> Vec<String> {
        vec![
            "-o".into(),
            self.summary.orderer.clone(),
            "--ordererTLSHostnameOverride".into(),
            self.summary.orderer_host.clone(),
            "--tls".into(),
            "--cafile".into(),
            self.summary.orderer_tls_ca_cert.display().to_string(),
        ]
    }

    fn peer_args(&self, orgs: &[&str]) -> Vec<String> {
        let mut v = Vec::new();
        for o in orgs {
            let p = self.peer_of(o);
            v.extend([
                "--peerAddresses".into(),
                p.address.clone(),
                "--tlsRootCertFiles".into(),
                p.tls_ca_cert.display().to_string(),
            ]);
        }
        v
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fabric_peer_cli_deploys_and_invokes_a_chaincode_on_the_devnet() {
    let Some(bin) = fabric_bin() else {
        let what = "Fabric binaries (../shared/fabric/install.sh or FABRIC_BIN)";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("required in CI but missing: {what}");
        }
        eprintln!("SKIPPED: {what}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
        .await
        .unwrap();
    let summary = devnet.summary();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let package = build("clikv_1.0", &Connection::plaintext(&addr)).unwrap();
    let pkg_file = dir.path().join("clikv.tar.gz");
    std::fs::write(&pkg_file, &package).unwrap();
    let package_id = fabric_devnet::lifecycle::package_id("clikv_1.0", &package);
    let _server = fx::start_chaincode(&package_id, &addr).await;

    let pkg = pkg_file.display().to_string();
    let commands = tokio::task::spawn_blocking({
        let summary = summary.clone();
        let package_id = package_id.clone();
        move || {
            let cli = Cli {
                bin,
                summary: &summary,
            };
            for org in ORGS {
                cli.ok(org, &["lifecycle", "chaincode", "install", &pkg]);
                let out = cli.ok(org, &["lifecycle", "chaincode", "queryinstalled"]);
                assert!(
                    out.contains(&format!("Package ID: {package_id}, Label: clikv_1.0")),
                    "{out}"
                );
            }
            let def = ["-C", CH, "-n", "clikv", "-v", "1.0", "--sequence", "1"];
            for org in ORGS {
                let mut args = vec!["lifecycle", "chaincode", "approveformyorg"];
                args.extend(def);
                args.extend(["--package-id", &package_id]);
                let ord = cli.orderer_args();
                args.extend(strs(&ord));
                cli.ok(org, &args);
            }
            let mut args = vec![
                "lifecycle",
                "chaincode",
                "checkcommitreadiness",
                "--output",
                "json",
            ];
            args.extend(def);
            let out = cli.ok("Regulator", &args);
            for org in ORGS {
                assert!(out.contains(&format!("\"{org}MSP\": true")), "{out}");
            }
            let mut args = vec!["lifecycle", "chaincode", "commit"];
            args.extend(def);
            let ord = cli.orderer_args();
            args.extend(strs(&ord));
            let peers = cli.peer_args(&["PublicSecurity", "ServiceCentre"]);
            args.extend(strs(&peers));
            cli.ok("PublicSecurity", &args);
            let out = cli.ok(
                "Regulator",
                &[
                    "lifecycle",
                    "chaincode",
                    "querycommitted",
                    "-C",
                    CH,
                    "-n",
                    "clikv",
                ],
            );
            assert!(out.contains("Version: 1.0, Sequence: 1"), "{out}");

            // Invoke with the channel's default policy (a majority): two organisations endorse.
            let mut args = vec![
                "chaincode",
                "invoke",
                "-C",
                CH,
                "-n",
                "clikv",
                "-c",
                r#"{"Args":["put","cli-key","cli-value"]}"#,
                "--waitForEvent",
            ];
            let ord = cli.orderer_args();
            args.extend(strs(&ord));
            let peers = cli.peer_args(&["PublicSecurity", "Regulator"]);
            args.extend(strs(&peers));
            // Succeeds only when both peers' commit events report the transaction VALID.
            cli.ok("PublicSecurity", &args);
            let out = cli.run(
                "ServiceCentre",
                &[
                    "chaincode",
                    "query",
                    "-C",
                    CH,
                    "-n",
                    "clikv",
                    "-c",
                    r#"{"Args":["get","cli-key"]}"#,
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cli-value");
        }
    })
    .await;
    devnet.down().await;
    commands.unwrap();
}
