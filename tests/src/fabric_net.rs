//! A real Fabric network for a test: `network/fabric/network.sh` in native mode on a temporary
//! data dir and a free block of ports, stopped by `Drop` whatever happens (`network.sh down`
//! stops exactly the processes it recorded) and, should the test process be killed first, by
//! the network's watchdog once the test process is gone.
//!
//! Besides the script's own commands, [`FabricNetwork::define_ccaas`] defines a CCaaS chaincode
//! whose server runs elsewhere (in the test process) with the `peer lifecycle` commands: package,
//! install on every member's peer, approve for every member, commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, GatewayOptions};
use fabric_client::{msp, Gateway};

use crate::{fabric_bin, free_port, repo_root, skip_or_fail};

/// A running real network; `Drop` runs `network.sh down` (and removes the data dir unless the
/// test is failing, so its logs stay for inspection).
#[derive(Debug)]
pub struct FabricNetwork {
    data: PathBuf,
    fabric_bin: PathBuf,
}

/// The output of a command as one text (stdout then stderr).
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port base whose block of 800 ports (the orderer organisation and the default topology's
/// seven organisations) is free on 127.0.0.1 right now.
pub fn free_port_base() -> u16 {
    for _ in 0..50 {
        let base = 20_000 + (free_port() % 400) * 100;
        if (base..base + 800).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of 800 ports on 127.0.0.1");
}

impl FabricNetwork {
    /// Brings up the reduced network of `channel` (its member organisations, three Raft
    /// orderers). `None` when Fabric's binaries are missing outside CI (the reason is printed);
    /// in CI their absence fails the test.
    pub fn up(channel: &str, tag: &str) -> Option<FabricNetwork> {
        let Some(fabric_bin) = fabric_bin() else {
            skip_or_fail("Fabric binaries (FABRIC_BIN or ../shared/fabric/install.sh)");
            return None;
        };
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let net = FabricNetwork {
            data: std::env::temp_dir().join(format!(
                "elicense-fabric-{tag}-{}-{stamp}",
                std::process::id()
            )),
            fabric_bin,
        };
        let base = free_port_base().to_string();
        let me = std::process::id().to_string();
        // The watchdog brings the network down even when this test process is killed before
        // its `Drop` can run (a nextest timeout, Ctrl-C).
        net.run(&[
            "up",
            "--channels",
            channel,
            "--port-base",
            &base,
            "--watch-pid",
            &me,
        ]);
        Some(net)
    }

    /// Brings up the reduced network of `channel` and deploys our `elicense-chaincode` binary
    /// on it as CCaaS with mutual TLS (definition sequence 1); prints how long that took.
    pub fn up_with_elicense(channel: &str, tag: &str) -> Option<FabricNetwork> {
        let started = std::time::Instant::now();
        let net = FabricNetwork::up(channel, tag)?;
        let chaincode = chaincode_binary().display().to_string();
        let deployed = text(&net.run(&["deploy", "--cc-cmd", &chaincode, "--cc-tls", "mtls"]));
        assert!(
            deployed.contains(&format!("{channel}: committed elicense v1.0 sequence 1")),
            "{deployed}"
        );
        eprintln!(
            "network up and elicense-chaincode deployed (CCaaS, mTLS): {:.1?}",
            started.elapsed()
        );
        Some(net)
    }

    /// The data dir (profiles, MSP directories, logs).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The directory of Fabric's binaries in use.
    pub fn fabric_bin(&self) -> &Path {
        &self.fabric_bin
    }

    /// Runs `network.sh <args> --data-dir <data>`; panics with its output when it fails.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("bash")
            .arg(repo_root().join("network/fabric/network.sh"))
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env("FABRIC_BIN", &self.fabric_bin)
            .output()
            .expect("running network.sh");
        if !out.status.success() {
            panic!(
                "network.sh {} failed ({}):\n{}\nlogs in {}",
                args.join(" "),
                out.status,
                text(&out),
                self.data.join("logs").display()
            );
        }
        out
    }

    /// Environment for the `peer` CLI acting as `user` of `org` against the org's first peer.
    pub fn peer_env(&self, org: &str, user: &str) -> Vec<(String, String)> {
        let out = self.run(&["env", "--org", org, "--user", user, "--json"]);
        let env: serde_json::Value = serde_json::from_slice(&out.stdout).expect("env --json");
        env.as_object()
            .expect("env object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
            .collect()
    }

    fn env_var(env: &[(String, String)], name: &str) -> String {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("network.sh env has no {name}"))
    }

    /// Runs the `peer` CLI as `user` of `org`; panics with its output when it fails.
    pub fn peer(&self, org: &str, user: &str, args: &[&str]) -> Output {
        self.peer_with(&self.peer_env(org, user), args)
    }

    /// Runs the `peer` CLI with an environment from [`Self::peer_env`].
    fn peer_with(&self, env: &[(String, String)], args: &[&str]) -> Output {
        let out = Command::new(self.fabric_bin.join("peer"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running peer");
        if !out.status.success() {
            panic!(
                "peer {} as {} of {} failed ({}):\n{}",
                args.join(" "),
                Self::env_var(env, "CORE_PEER_MSPCONFIGPATH"),
                Self::env_var(env, "CORE_PEER_LOCALMSPID"),
                out.status,
                text(&out)
            );
        }
        out
    }

    /// The MSP ID of `org` (from its connection profile).
    pub fn msp_id(&self, org: &str) -> String {
        let profile = fabric_client::profile::ConnectionProfile::from_file(
            self.data.join(format!("profiles/{org}.json")),
        )
        .expect("connection profile");
        profile.msp_id(org).expect("msp id").to_owned()
    }

    /// A Gateway to `org`'s first peer on behalf of `user` (MSP directory from the Fabric CA
    /// enrolment, peer URL and TLS CA from the generated connection profile).
    pub fn gateway(&self, org: &str, user: &str) -> Gateway {
        let msp_id = self.msp_id(org);
        let signing =
            msp::load_signing_identity(&msp_id, self.data.join(format!("msp/{org}/{user}")))
                .unwrap_or_else(|e| panic!("MSP of {user}@{org}: {e}"));
        self.gateway_for(org, &signing)
    }

    /// A Gateway to `org`'s first peer on behalf of any signing identity.
    pub fn gateway_for(&self, org: &str, signing: &fabric_client::SigningIdentity) -> Gateway {
        let profile = fabric_client::profile::ConnectionProfile::from_file(
            self.data.join(format!("profiles/{org}.json")),
        )
        .expect("connection profile");
        let peer = profile
            .organization_peers(org)
            .expect("peers")
            .into_iter()
            .next()
            .expect("a peer");
        let mut endpoint = Endpoint::new(peer.url.clone());
        for pem in &peer.tls_ca_pems {
            endpoint = endpoint.tls_root(pem.clone());
        }
        let connection =
            Connection::new(vec![endpoint], &ConnectionOptions::default()).expect("connection");
        Gateway::for_signing_identity(connection, signing, GatewayOptions::default())
    }

    /// Defines chaincode `name` (version 1.0, sequence 1) on `channel` with the signature policy
    /// `policy`, as a CCaaS package pointing at `address` without TLS, installed on and approved
    /// by every org in `members`; returns the package ID the chaincode server must register with.
    /// The server need not run yet: peers dial it on the first transaction.
    pub fn define_ccaas(
        &self,
        channel: &str,
        members: &[&str],
        name: &str,
        address: &str,
        policy: &str,
    ) -> String {
        let label = format!("{name}_1.0");
        let package = elicense_chaincode::package::build(
            &label,
            &elicense_chaincode::package::Connection::plaintext(address),
        )
        .expect("CCaaS package");
        let package_id = elicense_chaincode::package::package_id(&label, &package);
        let file = self.data.join(format!("{label}.tar.gz"));
        std::fs::write(&file, &package).expect("writing the package");
        let file = file.display().to_string();
        let definition = [
            "-C",
            channel,
            "-n",
            name,
            "-v",
            "1.0",
            "--sequence",
            "1",
            "--signature-policy",
            policy,
        ];
        let envs: Vec<Vec<(String, String)>> = members
            .iter()
            .map(|org| self.peer_env(org, "Admin"))
            .collect();
        let computed = self.peer_with(
            &envs[0],
            &["lifecycle", "chaincode", "calculatepackageid", &file],
        );
        assert_eq!(
            String::from_utf8_lossy(&computed.stdout).trim(),
            package_id,
            "Fabric's package ID of the CCaaS package"
        );
        let mut commit_peers = Vec::new();
        for env in &envs {
            self.peer_with(env, &["lifecycle", "chaincode", "install", &file]);
            let (orderer, orderer_ca) = (
                Self::env_var(env, "ORDERER_ADDRESS"),
                Self::env_var(env, "ORDERER_TLS_CA"),
            );
            let mut approve = vec![
                "lifecycle",
                "chaincode",
                "approveformyorg",
                "-o",
                &orderer,
                "--tls",
                "--cafile",
                &orderer_ca,
                "--package-id",
                &package_id,
            ];
            approve.extend(definition);
            self.peer_with(env, &approve);
            commit_peers.push((
                Self::env_var(env, "CORE_PEER_ADDRESS"),
                Self::env_var(env, "CORE_PEER_TLS_ROOTCERT_FILE"),
            ));
        }
        let (orderer, orderer_ca) = (
            Self::env_var(&envs[0], "ORDERER_ADDRESS"),
            Self::env_var(&envs[0], "ORDERER_TLS_CA"),
        );
        let mut commit = vec![
            "lifecycle",
            "chaincode",
            "commit",
            "-o",
            &orderer,
            "--tls",
            "--cafile",
            &orderer_ca,
        ];
        commit.extend(definition);
        for (address, ca) in &commit_peers {
            commit.extend(["--peerAddresses", address, "--tlsRootCertFiles", ca]);
        }
        self.peer_with(&envs[0], &commit);
        package_id
    }
}

impl Drop for FabricNetwork {
    fn drop(&mut self) {
        let out = Command::new("bash")
            .arg(repo_root().join("network/fabric/network.sh"))
            .arg("down")
            .arg("--data-dir")
            .arg(&self.data)
            .env("FABRIC_BIN", &self.fabric_bin)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                if std::thread::panicking() {
                    eprintln!("network data (logs) kept in {}", self.data.display());
                } else {
                    let _ = std::fs::remove_dir_all(&self.data);
                }
            }
            Ok(o) => eprintln!("network.sh down failed: {}", text(&o)),
            Err(e) => eprintln!("network.sh down could not run: {e}"),
        }
    }
}

/// The `elicense-chaincode` binary of this build.
pub fn chaincode_binary() -> PathBuf {
    workspace_binary("elicense-chaincode", "elicense-chaincode")
}

/// Binary `bin` of workspace package `package`, next to the test's `deps` directory: built with
/// cargo first (a no-op when it is up to date), so the binary under test is the current code.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", package, "--bin", bin])
        .current_dir(repo_root());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "building {bin} failed");
    let path = profile_dir.join(bin);
    assert!(path.is_file(), "{} not built", path.display());
    path
}
