//! Client-side CPU per submitted transaction and per evaluate: our Rust `fabric-client` and the
//! official Node `@hyperledger/fabric-gateway` client, the same workload against the same devnet.
//!
//! ```text
//! cargo bench -p elicense-tests --bench client_cpu
//! SUBMITS=4000 EVALUATES=8000 IN_FLIGHT=32 cargo bench -p elicense-tests --bench client_cpu
//! ```
//!
//! This process runs the devnet (default topology, channel `police-service`) and the test `kv`
//! chaincode. Each client is a **separate process** connected over TLS to the ServiceCentre
//! peer's gateway as `clerk1`, so its CPU is only the client's: the Rust client is this bench
//! binary re-executed in client mode (user + system time of the whole process from
//! `/proc/self/stat`), the Node client is `tests/interop/bench/client_cpu.js`
//! (`process.cpuUsage()`). Both run, after a warm-up, `SUBMITS` `put` transactions (each through
//! endorsement, ordering and its commit status) with `IN_FLIGHT` in flight, then `EVALUATES`
//! `get` evaluates with `IN_FLIGHT` in flight, and report the CPU of each phase. Without `node`
//! or `tests/interop/node_modules` only the Rust figures are printed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use elicense_tests::{free_port, kv_chaincode, node_interop_dir};
use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, GatewayOptions};
use fabric_client::Gateway;
use fabric_devnet::devnet::{DeployRequest, Devnet, DevnetConfig};
use fabric_devnet::topology::Topology;
use serde_json::{json, Value};

const CH: &str = "police-service";
const CC: &str = "kv";
const ORG: &str = "ServiceCentre";
const USER: &str = "clerk1";
const ROLE_ENV: &str = "ELICENSE_CLIENT_CPU_ROLE";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's user + system CPU in microseconds (`/proc/self/stat`, 10 ms clock ticks).
fn process_cpu_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the parenthesised command name, utime and stime are the 12th and 13th fields.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum::<u64>()
        * 10_000
}

/// Runs `count` calls of `call(i)` with at most `in_flight` pending on this (current-thread)
/// runtime; returns the elapsed time.
async fn pool<F, Fut>(count: u64, in_flight: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use std::cell::Cell;
    let next = Cell::new(0u64);
    let started = Instant::now();
    let worker = || async {
        loop {
            let i = next.get();
            if i >= count {
                return;
            }
            next.set(i + 1);
            call(i).await;
        }
    };
    let workers: Vec<_> = (0..in_flight.min(count)).map(|_| worker()).collect();
    futures_join_all(workers).await;
    started.elapsed()
}

/// Polls every future to completion on the current task (no spawning, no extra threads).
async fn futures_join_all<Fut: std::future::Future<Output = ()>>(futs: Vec<Fut>) {
    let mut futs: Vec<std::pin::Pin<Box<Fut>>> = futs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(move |cx| {
        futs.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if futs.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Client mode: the same workload as the Node script, measured in this process.
fn rust_client(input: &Value) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        let s = |k: &str| input[k].as_str().expect(k).to_owned();
        let n = |k: &str| input[k].as_u64().expect(k);
        let tls_ca = std::fs::read(s("tlsCaCert")).expect("TLS CA certificate");
        let endpoint = Endpoint::new(format!("https://{}", s("peer")))
            .tls_root(tls_ca)
            .server_name(s("host"));
        let connection =
            Connection::new(vec![endpoint], &ConnectionOptions::default()).expect("connection");
        let signing = fabric_client::msp::load_signing_identity(&s("mspId"), s("mspDir"))
            .expect("client identity");
        let gateway =
            Gateway::for_signing_identity(connection, &signing, GatewayOptions::default());
        let contract = gateway.network(s("channel")).contract(s("chaincode"));
        let id = s("runId");
        let (submits, evaluates, in_flight, warmup) =
            (n("submits"), n("evaluates"), n("inFlight"), n("warmup"));

        let put = |key: String, value: String| {
            let contract = &contract;
            async move {
                contract
                    .submit_transaction("put", &[key, value])
                    .await
                    .expect("submit");
            }
        };
        let get = |key: String| {
            let contract = &contract;
            async move {
                contract
                    .evaluate_transaction("get", &[key])
                    .await
                    .expect("evaluate");
            }
        };
        pool(warmup, in_flight, |i| put(format!("{id}-w{i}"), "w".into())).await;
        pool(warmup, in_flight, |i| get(format!("{id}-w{i}"))).await;

        let c0 = process_cpu_us();
        let submit_time = pool(submits, in_flight, |i| {
            put(format!("{id}-k{i}"), format!("value-{i}"))
        })
        .await;
        let submit_cpu = process_cpu_us() - c0;

        let c0 = process_cpu_us();
        let evaluate_time = pool(evaluates, in_flight, |i| {
            get(format!("{id}-k{}", i % submits))
        })
        .await;
        let evaluate_cpu = process_cpu_us() - c0;

        let check = contract
            .evaluate_transaction("get", &[format!("{id}-k0")])
            .await
            .expect("evaluate");
        json!({
            "client": "rust fabric-client",
            "submits": submits,
            "evaluates": evaluates,
            "submitCpuUs": submit_cpu,
            "evaluateCpuUs": evaluate_cpu,
            "submitMs": submit_time.as_secs_f64() * 1000.0,
            "evaluateMs": evaluate_time.as_secs_f64() * 1000.0,
            "check": String::from_utf8_lossy(&check),
        })
    })
}

/// Runs a client process with the JSON input and parses its last stdout line.
fn run_client(mut cmd: Command, input: &Value) -> Value {
    let out = cmd
        .arg(input.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("starting the client process");
    assert!(
        out.status.success(),
        "client process failed: {}",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("client output");
    serde_json::from_str(line).expect("client JSON")
}

fn row(v: &Value) -> (f64, f64, f64, f64) {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    (
        f("submitCpuUs") / f("submits"),
        f("evaluateCpuUs") / f("evaluates"),
        f("submits") / f("submitMs") * 1000.0,
        f("evaluates") / f("evaluateMs") * 1000.0,
    )
}

fn main() {
    if std::env::var(ROLE_ENV).is_ok_and(|r| r == "client") {
        let input: Value =
            serde_json::from_str(&std::env::args().nth(1).expect("input")).expect("input JSON");
        println!("{}", rust_client(&input));
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let devnet = Devnet::up(DevnetConfig::new(Topology::default_topology(), dir.path()))
            .await
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let deployed = devnet
            .deploy_ccaas(&DeployRequest {
                name: CC.into(),
                address: addr.clone(),
                channels: vec![CH.into()],
                ..Default::default()
            })
            .unwrap();
        let cc = kv_chaincode::serve(&deployed.package_id, &addr).await;
        let summary = devnet.summary();
        let peer = summary.peers.iter().find(|p| p.org == ORG).unwrap();
        let mut input = json!({
            "peer": peer.address,
            "host": peer.host,
            "tlsCaCert": peer.tls_ca_cert,
            "mspId": peer.msp_id,
            "profile": summary.profiles[ORG],
            "mspDir": summary.msp[ORG][USER],
            "channel": CH,
            "chaincode": CC,
            "submits": env_or("SUBMITS", 2000),
            "evaluates": env_or("EVALUATES", 4000),
            "inFlight": env_or("IN_FLIGHT", 32),
            "warmup": env_or("WARMUP", 200),
        });

        let mut results = Vec::new();
        input["runId"] = "rust".into();
        let mut rust = Command::new(std::env::current_exe().unwrap());
        rust.env(ROLE_ENV, "client");
        let inp = input.clone();
        let r = tokio::task::spawn_blocking(move || run_client(rust, &inp))
            .await
            .unwrap();
        assert_eq!(
            r["check"], "value-0",
            "the Rust client's writes are committed"
        );
        results.push(r);

        match node_interop_dir() {
            Some(interop) => {
                input["runId"] = "node".into();
                let mut node = Command::new("node");
                node.current_dir(&interop).arg("bench/client_cpu.js");
                let inp = input.clone();
                let r = tokio::task::spawn_blocking(move || run_client(node, &inp))
                    .await
                    .unwrap();
                assert_eq!(
                    r["check"], "value-0",
                    "the Node client's writes are committed"
                );
                results.push(r);
            }
            None => println!("node or tests/interop/node_modules missing: Node figures skipped"),
        }

        println!(
            "client CPU on the devnet ({} submits, {} evaluates, {} in flight, kv chaincode, \
             ServiceCentre gateway over TLS)",
            input["submits"], input["evaluates"], input["inFlight"]
        );
        println!(
            "{:<34} {:>16} {:>18} {:>10} {:>12}",
            "client", "CPU µs/submit", "CPU µs/evaluate", "submit/s", "evaluate/s"
        );
        for r in &results {
            let (s, e, sr, er) = row(r);
            println!(
                "{:<34} {:>16.1} {:>18.1} {:>10.0} {:>12.0}",
                r["client"].as_str().unwrap_or("?"),
                s,
                e,
                sr,
                er
            );
        }
        if let [rust, node] = &results[..] {
            let (rs, re, _, _) = row(rust);
            let (ns, ne, _, _) = row(node);
            println!(
                "Rust / Node CPU: submit {:.3} (floor ≤ 0.25), evaluate {:.3}",
                rs / ns,
                re / ne
            );
        }
        cc.shutdown().await.expect("stopping the chaincode server");
        devnet.down().await;
    });
}
