//! The real Hyperledger Fabric network of `network/fabric/network.sh`, native mode: a reduced
//! topology (two departments and the regulator on one channel, three Raft orderers) comes up in a
//! temporary data dir, reports every process and channel, gets a CCaaS chaincode (the official
//! Node `fabric-shim`, `network/fabric/testdata/kv-chaincode`) deployed, serves an invoke and
//! queries through real peers with the `peer` CLI and through the official Node Gateway client
//! (with the generated connection profile and MSP directory), and goes down leaving no process
//! behind.
//!
//! Also checks the docker compose file generated for the default topology (no Docker needed) and
//! runs the Python unit tests of network.sh's generators.
//!
//! Needs Fabric's binaries (`FABRIC_BIN` or `../shared/fabric`) and Node with
//! `npm ci` run in `network/fabric/testdata/kv-chaincode`; skips without them (fails in CI).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use elicense_tests::fabric_net::{free_port_base, text};
use elicense_tests::{fabric_bin, repo_root, skip_or_fail};
use serde_json::Value;

const CHANNEL: &str = "police-service";
const MEMBERS: [&str; 3] = ["PublicSecurity", "ServiceCentre", "Regulator"];

fn script() -> PathBuf {
    repo_root().join("network/fabric/network.sh")
}

fn kv_chaincode_dir() -> PathBuf {
    repo_root().join("network/fabric/testdata/kv-chaincode")
}

/// A network brought up by the test; `Drop` always runs `network.sh down` (also on failure).
struct TestNetwork {
    data: PathBuf,
    port_base: u16,
    fabric_bin: PathBuf,
}

impl TestNetwork {
    /// A query of the test chaincode (`Args`: function and arguments) by `user` of `org`
    /// through the org's peer.
    fn query(&self, org: &str, user: &str, call: &[&str]) -> Output {
        let args = serde_json::json!({ "Args": call }).to_string();
        self.peer(
            org,
            user,
            &[
                "chaincode",
                "query",
                "-C",
                CHANNEL,
                "-n",
                "elicense",
                "-c",
                &args,
            ],
        )
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(script())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env("FABRIC_BIN", &self.fabric_bin);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("running network.sh");
        if !out.status.success() {
            panic!(
                "network.sh {} failed ({}):\nstdout:\n{}\nstderr:\n{}\nlogs in {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.data.join("logs").display()
            );
        }
        out
    }

    fn status(&self) -> Value {
        let out = self
            .cmd(&["status", "--json"])
            .output()
            .expect("network.sh status");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Environment for the `peer` CLI acting as `user` of `org` (from `network.sh env --json`).
    fn peer_env(&self, org: &str, user: &str) -> Vec<(String, String)> {
        let out = self.run(&["env", "--org", org, "--user", user, "--json"]);
        let env: Value = serde_json::from_slice(&out.stdout).expect("env --json");
        env.as_object()
            .expect("env object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
            .collect()
    }

    fn peer(&self, org: &str, user: &str, args: &[&str]) -> Output {
        Command::new(self.fabric_bin.join("peer"))
            .args(args)
            .envs(self.peer_env(org, user))
            .env("FABRIC_LOGGING_SPEC", "INFO")
            .output()
            .expect("running peer")
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let out = self.cmd(&["down"]).output();
        match out {
            Ok(o) if o.status.success() => {
                if std::thread::panicking() {
                    eprintln!("network data (logs) kept in {}", self.data.display());
                } else {
                    let _ = std::fs::remove_dir_all(&self.data);
                }
            }
            Ok(o) => eprintln!(
                "network.sh down failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("network.sh down could not run: {e}"),
        }
    }
}

fn node_ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    node.is_ok_and(|o| o.status.success())
        && kv_chaincode_dir().join("node_modules/fabric-shim").is_dir()
        && kv_chaincode_dir()
            .join("node_modules/@hyperledger/fabric-gateway")
            .is_dir()
}

fn pid_alive(pid: u64) -> bool {
    // a zombie (exited, not yet reaped by an init that never reaps) is not a running process
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z')) | Some(Some('X')))
        }
        Err(_) => false,
    }
}

/// The process a restarted network is watching; killed when the test ends, whatever happens.
struct Owner(std::process::Child);

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The PIDs of every process `status --json` reports as started, each asserted to be up.
fn running_pids(st: &Value) -> BTreeSet<u64> {
    st["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter(|p| p["role"] != "")
        .map(|p| {
            assert_eq!(p["up"], true, "{p}");
            p["pid"].as_u64().expect("pid")
        })
        .collect()
}

#[test]
fn reduced_network_up_deploy_invoke_query_down() {
    let Some(bin) = fabric_bin() else {
        skip_or_fail("Fabric binaries (FABRIC_BIN or ../shared/fabric/install.sh)");
        return;
    };
    if !node_ready() {
        skip_or_fail("node and `npm ci` in network/fabric/testdata/kv-chaincode");
        return;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let data = std::env::temp_dir().join(format!("elicense-fabric-{}-{stamp}", std::process::id()));
    let net = TestNetwork {
        data,
        port_base: free_port_base(),
        fabric_bin: bin,
    };
    let base = net.port_base.to_string();

    // ---- up: reduced topology
    let t0 = Instant::now();
    let up = net.run(&["up", "--channels", CHANNEL, "--port-base", &base]);
    let up_time = t0.elapsed();
    eprintln!("{}", text(&up));
    eprintln!("network.sh up (3 orgs, 3 orderers, 1 channel): {up_time:.1?}");

    // ---- status: every process up, channel joined everywhere, a Raft leader
    let st = net.status();
    let procs = st["processes"].as_array().expect("processes");
    let started: Vec<&Value> = procs.iter().filter(|p| p["role"] != "").collect();
    let roles: Vec<&str> = started
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.iter().filter(|r| **r == "ca").count(), 4, "{st:#}");
    assert_eq!(
        roles.iter().filter(|r| **r == "orderer").count(),
        3,
        "{st:#}"
    );
    assert_eq!(roles.iter().filter(|r| **r == "peer").count(), 3, "{st:#}");
    for p in &started {
        assert_eq!(p["up"], true, "process not up: {p}");
    }
    let peers = st["peers"].as_object().expect("peers");
    assert_eq!(peers.len(), 3);
    for (name, p) in peers {
        assert_eq!(p["reachable"], true, "{name} unreachable");
        assert!(
            p["channels"][CHANNEL]["height"].as_u64().unwrap_or(0) >= 1,
            "{name}: {p}"
        );
        // gossip knows the other members' peers (the gateway plans endorsements from this view)
        assert_eq!(
            p["channels"][CHANNEL]["gossip_peers_known"], 2,
            "{name}: {p}"
        );
    }
    let orderers = st["orderers"].as_object().expect("orderers");
    assert_eq!(orderers.len(), 3);
    for (name, o) in orderers {
        let ch = o["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == CHANNEL)
            .unwrap_or_else(|| panic!("{name} has not joined {CHANNEL}: {o}"));
        assert_eq!(ch["consensusRelation"], "consenter", "{name}: {ch}");
        assert_eq!(ch["status"], "active", "{name}: {ch}");
    }
    assert!(
        st["raft_leaders"][CHANNEL].is_string(),
        "no Raft leader: {st:#}"
    );

    // ---- profiles and MSP directories where the CLI expects them
    for org in MEMBERS {
        let prof: Value = serde_json::from_slice(
            &std::fs::read(net.data.join(format!("profiles/{org}.json"))).expect("profile"),
        )
        .expect("profile JSON");
        assert_eq!(prof["version"], "1.0.0");
        assert_eq!(prof["client"]["organization"], org);
        assert_eq!(prof["organizations"][org]["mspid"], format!("{org}MSP"));
        let peer = prof["organizations"][org]["peers"][0]
            .as_str()
            .expect("peer name");
        let url = prof["peers"][peer]["url"].as_str().expect("url");
        assert!(url.starts_with("grpcs://127.0.0.1:"), "{url}");
        assert!(prof["peers"][peer]["tlsCACerts"]["pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert!(prof["channels"][CHANNEL]["peers"][peer].is_object());
        for sub in [
            "signcerts/cert.pem",
            "keystore/priv_sk",
            "cacerts/ca-cert.pem",
            "config.yaml",
        ] {
            let f = net.data.join(format!("msp/{org}/Admin/{sub}"));
            assert!(f.is_file(), "missing {}", f.display());
        }
    }
    assert!(net
        .data
        .join("msp/ServiceCentre/holder1/signcerts/cert.pem")
        .is_file());

    // ---- deploy the Node test chaincode (CCaaS), then again: nothing to do
    let cc_cmd = format!("node {}", kv_chaincode_dir().join("server.js").display());
    let t0 = Instant::now();
    let dep = text(&net.run(&["deploy", "--cc-cmd", &cc_cmd]));
    eprintln!("{dep}\nnetwork.sh deploy: {:.1?}", t0.elapsed());
    assert!(
        dep.contains(&format!("{CHANNEL}: committed elicense v1.0 sequence 1")),
        "{dep}"
    );
    let again = text(&net.run(&["deploy", "--cc-cmd", &cc_cmd]));
    assert!(again.contains(&format!("{CHANNEL}: unchanged")), "{again}");

    // ---- a changed definition (peers now dial the chaincode servers with server-side TLS only:
    // new packages, new package IDs) is approved by every member and committed as sequence 2;
    // the servers restart with the new package IDs
    let changed = text(&net.run(&["deploy", "--cc-cmd", &cc_cmd, "--cc-tls", "tls"]));
    assert!(
        changed.contains(&format!("{CHANNEL}: committed elicense v1.0 sequence 2")),
        "{changed}"
    );
    let committed = net.peer(
        "Regulator",
        "Admin",
        &[
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            CHANNEL,
            "-n",
            "elicense",
            "-O",
            "json",
        ],
    );
    assert!(committed.status.success(), "{}", text(&committed));
    let committed: Value = serde_json::from_slice(&committed.stdout).expect("querycommitted JSON");
    assert_eq!(committed["sequence"], 2, "{committed}");
    assert_eq!(committed["version"], "1.0", "{committed}");
    for org in MEMBERS {
        assert_eq!(
            committed["approvals"][format!("{org}MSP")],
            true,
            "{org} approved sequence 2: {committed}"
        );
    }
    let again = text(&net.run(&["deploy", "--cc-cmd", &cc_cmd, "--cc-tls", "tls"]));
    assert!(
        again.contains(&format!("{CHANNEL}: unchanged (elicense v1.0 sequence 2)")),
        "{again}"
    );

    // ---- invoke through a real peer with the peer CLI, waiting for the commit event
    let env = net.peer_env("PublicSecurity", "issuer1");
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (orderer, orderer_ca) = (get("ORDERER_ADDRESS"), get("ORDERER_TLS_CA"));
    let (peer_addr, peer_ca) = (get("CORE_PEER_ADDRESS"), get("CORE_PEER_TLS_ROOTCERT_FILE"));
    let t0 = Instant::now();
    let inv = net.peer(
        "PublicSecurity",
        "issuer1",
        &[
            "chaincode",
            "invoke",
            "-o",
            &orderer,
            "--tls",
            "--cafile",
            &orderer_ca,
            "-C",
            CHANNEL,
            "-n",
            "elicense",
            "-c",
            r#"{"Args":["put","licence-1","issued"]}"#,
            "--waitForEvent",
            "--peerAddresses",
            &peer_addr,
            "--tlsRootCertFiles",
            &peer_ca,
        ],
    );
    let inv_text = text(&inv);
    assert!(inv.status.success(), "invoke failed: {inv_text}");
    assert!(
        inv_text.contains("committed with status (VALID)"),
        "{inv_text}"
    );
    eprintln!("invoke with --waitForEvent: {:.1?}", t0.elapsed());

    // ---- the value is committed on every member's peer
    let deadline = Instant::now() + Duration::from_secs(20);
    for org in MEMBERS {
        loop {
            let q = net.query(org, "Admin", &["get", "licence-1"]);
            if q.status.success() {
                assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "issued", "{org}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{org}: query failed: {}",
                text(&q)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // an unknown key is an endorsement failure carrying the chaincode's message
    let q = net.query("Regulator", "auditor1", &["get", "nope"]);
    assert!(!q.status.success());
    assert!(text(&q).contains("no such key: nope"), "{}", text(&q));
    // the elicense.role attribute from the org's Fabric CA reaches the chaincode
    let who = net.query("ServiceCentre", "holder1", &["whoami"]);
    assert!(who.status.success(), "{}", text(&who));
    let who: Value = serde_json::from_slice(&who.stdout).expect("whoami JSON");
    assert_eq!(who["mspid"], "ServiceCentreMSP");
    assert_eq!(who["id"], "holder1");
    assert_eq!(who["role"], "holder");

    // ---- the official Node Gateway client with the generated profile and MSP directory
    let gw = Command::new("node")
        .arg(kv_chaincode_dir().join("gateway-client.js"))
        .arg(&net.data)
        .args(["ServiceCentre", "clerk1", CHANNEL, "licence-2", "verified"])
        .output()
        .expect("node gateway-client.js");
    assert!(gw.status.success(), "gateway client failed: {}", text(&gw));
    let gw: Value = serde_json::from_slice(&gw.stdout).expect("gateway client JSON");
    assert_eq!(gw["submitted"], "verified", "{gw}");
    assert_eq!(gw["status"], "VALID", "{gw}");
    assert_eq!(gw["evaluated"], "verified", "{gw}");
    // a chaincode error on evaluate: gRPC UNKNOWN with the chaincode's message per endorser
    assert_eq!(gw["missingError"]["code"], 2, "{gw}");
    assert_eq!(
        gw["missingError"]["details"][0]["message"],
        "chaincode response 500, no such key: licence-2-missing",
        "{gw}"
    );

    // ---- status shows the committed chaincode on every peer and the chaincode servers
    let st = net.status();
    for (name, p) in st["peers"].as_object().unwrap() {
        let ccs = p["channels"][CHANNEL]["chaincodes"]
            .as_array()
            .expect("chaincodes");
        assert!(
            ccs.iter()
                .any(|c| c["name"] == "elicense" && c["sequence"] == 2),
            "{name}: {p}"
        );
    }
    let pids = running_pids(&st);
    assert_eq!(
        pids.len(),
        4 + 3 + 3 + 3,
        "CAs, orderers, peers, chaincode servers: {st:#}"
    );

    // ---- down: every one of those processes is gone
    let t0 = Instant::now();
    net.run(&["down"]);
    eprintln!("network.sh down: {:.1?}", t0.elapsed());
    let left: Vec<u64> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(left.is_empty(), "processes left after down: {left:?}");
    let st = net.status();
    assert!(
        st["processes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["up"] == false),
        "{st:#}"
    );

    // ---- up again on the same data dir: the network restarts as it was (ledger, channel,
    // chaincode servers), this time watched: once the watched process is gone, the watchdog
    // brings everything down although nobody runs `down`
    let mut owner = Owner(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("starting a process to watch"),
    );
    let t0 = Instant::now();
    net.run(&["up", "--watch-pid", &owner.0.id().to_string()]);
    eprintln!("network.sh up (restart): {:.1?}", t0.elapsed());
    let q = net.query("Regulator", "Admin", &["get", "licence-1"]);
    assert!(q.status.success(), "query after restart: {}", text(&q));
    assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "issued");
    let st = net.status();
    let watched = running_pids(&st);
    assert_eq!(
        watched.len(),
        4 + 3 + 3 + 3 + 1,
        "CAs, orderers, peers, chaincode servers and the watchdog: {st:#}"
    );
    owner.0.kill().expect("killing the watched process");
    owner.0.wait().expect("reaping it");
    let deadline = Instant::now() + Duration::from_secs(60);
    while watched.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left: Vec<u64> = watched.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(
        left.is_empty(),
        "processes left after the watched process exited: {left:?}"
    );
    assert!(
        std::fs::read_dir(net.data.join("pids"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "no PID file is left"
    );
}

/// Every shell script of the repository (tracked files with a `sh` or `bash` shebang) passes
/// `bash -n` and shellcheck (`SHELLCHECK`, else `shellcheck` on PATH; `scripts/test` installs it).
#[test]
fn shell_scripts_pass_shellcheck() {
    let root = repo_root();
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git ls-files");
    assert!(listed.status.success(), "{}", text(&listed));
    let scripts: Vec<PathBuf> = listed
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| root.join(String::from_utf8_lossy(f).as_ref()))
        .filter(|f| {
            std::fs::read(f).is_ok_and(|b| {
                let first = b.split(|c| *c == b'\n').next().unwrap_or_default();
                first.starts_with(b"#!") && (first.ends_with(b"bash") || first.ends_with(b"/sh"))
            })
        })
        .collect();
    for must in ["network/fabric/network.sh", "scripts/test", ".ci/run"] {
        assert!(scripts.contains(&root.join(must)), "{must} in {scripts:?}");
    }
    for sh in &scripts {
        let syntax = Command::new("bash")
            .arg("-n")
            .arg(sh)
            .output()
            .expect("bash -n");
        assert!(
            syntax.status.success(),
            "{}: {}",
            sh.display(),
            text(&syntax)
        );
    }
    let shellcheck = std::env::var_os("SHELLCHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("shellcheck"));
    let Ok(out) = Command::new(&shellcheck).args(&scripts).output() else {
        skip_or_fail("shellcheck (SHELLCHECK or PATH; scripts/test installs it)");
        return;
    };
    assert!(
        out.status.success(),
        "shellcheck found problems:\n{}",
        text(&out)
    );
}

#[test]
fn docker_compose_file_matches_the_topology() {
    let sh = script();
    let out = Command::new("bash")
        .arg(&sh)
        .arg("compose")
        .output()
        .expect("network.sh compose");
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("compose is YAML");

    let topo: toml::Table = std::fs::read_to_string(repo_root().join("fixtures/topology.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let base = topo["fabric"]["port_base"].as_integer().unwrap();
    let services = doc["services"].as_mapping().expect("services");
    let svc = |name: &str| -> &serde_yaml::Value {
        services
            .get(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    };
    let ports = |v: &serde_yaml::Value| -> Vec<String> {
        v["ports"]
            .as_sequence()
            .map(|s| s.iter().map(|p| p.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };

    let od = &topo["orderer"];
    let odom = od["domain"].as_str().unwrap();
    let consenters = od["consenters"].as_integer().unwrap();
    for i in 0..consenters {
        let s = svc(&format!("orderer{i}.{odom}"));
        assert_eq!(s["image"], "hyperledger/fabric-orderer:3.1.5");
        let p = base + 10 * (i + 1);
        assert!(ports(s).contains(&format!("127.0.0.1:{p}:{p}")), "{s:?}");
    }
    assert_eq!(
        svc(&format!("ca.{odom}"))["image"],
        "hyperledger/fabric-ca:1.5"
    );

    let orgs = topo["organizations"].as_array().unwrap();
    let mut expected = consenters as usize + 1;
    for (j, org) in orgs.iter().enumerate() {
        let dom = org["domain"].as_str().unwrap();
        let block = base + 100 * (j as i64 + 1);
        let ca = svc(&format!("ca.{dom}"));
        assert_eq!(ca["image"], "hyperledger/fabric-ca:1.5");
        assert!(ports(ca).contains(&format!("127.0.0.1:{block}:{block}")));
        let n_peers = org.get("peers").and_then(|p| p.as_integer()).unwrap_or(1);
        for p in 0..n_peers {
            let s = svc(&format!("peer{p}.{dom}"));
            assert_eq!(s["image"], "hyperledger/fabric-peer:3.1.5");
            let port = block + 10 * (p + 1);
            assert!(
                ports(s).contains(&format!("127.0.0.1:{port}:{port}")),
                "{s:?}"
            );
            let cfg = s["environment"]["FABRIC_CFG_PATH"].as_str().unwrap();
            assert!(cfg.ends_with(&format!("peer{p}.{dom}")), "{cfg}");
        }
        let cc = svc(&format!("cc.{dom}"));
        assert_eq!(
            cc["environment"]["CHAINCODE_SERVER_ADDRESS"],
            format!("0.0.0.0:{}", block + 5)
        );
        expected += 2 + n_peers as usize;
    }
    assert_eq!(
        services.len(),
        expected,
        "one service per CA, node and chaincode server"
    );
    for (name, s) in services {
        for p in ports(s) {
            assert!(
                p.starts_with("127.0.0.1:"),
                "{name:?} publishes {p} beyond 127.0.0.1"
            );
        }
    }

    // a reduced network's compose file has only its members
    let out = Command::new("bash")
        .arg(&sh)
        .args(["compose", "--channels", CHANNEL])
        .output()
        .expect("network.sh compose --channels");
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    let names: BTreeSet<String> = doc["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(names.contains("peer0.police.elicense.gov"));
    assert!(names.contains("peer0.regulator.elicense.gov"));
    assert!(!names.contains("peer0.civil.elicense.gov"), "{names:?}");
}

#[test]
fn generator_unit_tests_pass() {
    // network.sh's Python generators (YAML editing, topology selection, port scheme, configtx,
    // CA configs, compose, deterministic packages): standard library only, no Fabric needed
    let dir = repo_root().join("network/fabric");
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests", "-v"])
        .current_dir(&dir)
        .env("PYTHONPATH", &dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("OK"), "{report}");
}
