//! Verify throughput of the licence contract and the chaincode server's memory.
//!
//! Part 1 runs the real `elicense-chaincode` binary as its own process, pinned to one core
//! (`taskset -c 0` when available) with one Tokio worker, and drives it over real gRPC with the
//! shim's `TestPeer` (the peer side of the CCaaS stream) from the other core. It prints verify
//! transactions per second (wall clock), the server's CPU time per verify (from `/proc`), hence
//! verifies per CPU-second of one core, and its peak RSS (`VmHWM`).
//!
//! Part 2 runs the contract in-process on the shim's `MockLedger` (no gRPC) for the contract's
//! own cost per verify.
//!
//! Figures only; nothing is asserted about time. `ELICENSE_BENCH_VERIFIES` sets the number of
//! timed verifies (default 20000).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use elicense_model::{
    Presentation, VerifyRequest, TRANSIENT_CODE_SALT, TRANSIENT_LICENCE, TRANSIENT_PRESENTATION,
};
use fabric_chaincode::testing::{TestPeer, TestPeerConfig, TestTx};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One verify to send: transaction ID, argument, presentation.
type Job = (String, Vec<u8>, Vec<u8>);

const USES: u32 = 100;
const IN_FLIGHT: usize = 64;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// utime + stime of a process, in seconds (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(port: u16) -> (Server, bool) {
    let bin = env!("CARGO_BIN_EXE_elicense-chaincode");
    let pinned = Command::new("taskset")
        .arg("-c")
        .arg("0")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let child = cmd
        .env("CHAINCODE_SERVER_ADDRESS", format!("127.0.0.1:{port}"))
        .env("CHAINCODE_ID", "elicense_1.0:bench")
        .env("TOKIO_WORKER_THREADS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start elicense-chaincode");
    (Server(child), pinned)
}

async fn connect(port: u16) -> TestPeer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TestPeer::connect(
            &format!("http://127.0.0.1:{port}"),
            TestPeerConfig::default(),
        )
        .await
        {
            Ok(p) => return p,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot reach the chaincode server: {e}"),
        }
    }
}

async fn submit(peer: &TestPeer, tx: TestTx) -> Vec<u8> {
    let out = peer.invoke(tx.commit(true)).await.expect("invoke");
    let r = out
        .response()
        .unwrap_or_else(|| panic!("no response: {:?}", out.error()));
    assert_eq!(r.status, 200, "{}", r.message);
    r.payload
}

fn tx(net: &Net, who: &str, id: &str, args: Vec<Vec<u8>>) -> TestTx {
    TestTx::new(CHANNEL, args)
        .tx_id(id)
        .creator(net.creator(who))
        .timestamp(T0, 0)
}

fn j<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn grpc_part(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let port = free_port();
    let (server, pinned) = start_server(port);
    let pid = server.0.id();
    let net = Net::new();
    let holder = Holder::new(1);
    rt.block_on(async move {
        let peer = Arc::new(connect(port).await);
        submit(
            &peer,
            tx(
                &net,
                "regulator-admin",
                "init",
                vec![b"InitCatalogue".to_vec(), CATALOGUE.as_bytes().to_vec()],
            ),
        )
        .await;
        let (req, private) = id_card_request(&holder, "900001");
        submit(
            &peer,
            tx(
                &net,
                "police-issuer",
                "issue",
                vec![b"Issue".to_vec(), j(&req)],
            )
            .transient(TRANSIENT_LICENCE, j(&private)),
        )
        .await;
        let lic = Issued {
            id: req.licence_id.clone(),
            private,
        };
        let grants_needed = n.div_ceil(USES as usize) + IN_FLIGHT;
        let mut grants = Vec::new();
        for g in 0..grants_needed {
            let (sealed, signed) = net.grant(&holder, &lic.id, &["id_number", "name"], USES);
            submit(
                &peer,
                tx(
                    &net,
                    "service-holder",
                    &format!("auth{g}"),
                    vec![b"Authorize".to_vec(), j(&signed)],
                )
                .transient(TRANSIENT_CODE_SALT, sealed.code_salt.as_bytes().to_vec()),
            )
            .await;
            grants.push(sealed);
        }
        let presentation = |code| {
            j(&Presentation {
                code,
                fields: lic.present(&["id_number", "name"]),
            })
        };
        // Each worker owns its grants, so no two in-flight verifies touch the same grant key.
        let jobs: Vec<Vec<Job>> = (0..IN_FLIGHT)
            .map(|w| {
                let mut v = Vec::new();
                let mut gi = w;
                while v.len() < n.div_ceil(IN_FLIGHT) + 10 {
                    let g = &grants[gi];
                    let req = j(&VerifyRequest {
                        grant_id: g.grant.id(),
                        matter: "SC-0001".into(),
                    });
                    let p = presentation(g.code.clone());
                    for u in 0..USES {
                        v.push((format!("v{w}-{gi}-{u}"), req.clone(), p.clone()));
                    }
                    gi += IN_FLIGHT;
                }
                v
            })
            .collect();
        let clerk = net.creator("service-clerk");
        let run = |jobs: Vec<Vec<Job>>, count: usize| {
            let peer = peer.clone();
            let clerk = clerk.clone();
            async move {
                let per = count / IN_FLIGHT;
                let mut set = tokio::task::JoinSet::new();
                for job in jobs {
                    let peer = peer.clone();
                    let clerk = clerk.clone();
                    set.spawn(async move {
                        for (id, req, p) in job.into_iter().take(per) {
                            let t = TestTx::new(CHANNEL, vec![b"Verify".to_vec(), req])
                                .tx_id(&id)
                                .creator(clerk.clone())
                                .timestamp(T0, 0)
                                .transient(TRANSIENT_PRESENTATION, p)
                                .commit(true);
                            let out = peer.invoke(t).await.expect("invoke");
                            let r = out.response().expect("response");
                            assert_eq!(r.status, 200, "{}", r.message);
                        }
                        per
                    });
                }
                let mut done = 0;
                while let Some(r) = set.join_next().await {
                    done += r.unwrap();
                }
                done
            }
        };
        // Warm up on the first slice of every worker's queue, then time the rest.
        let warm = IN_FLIGHT * 10;
        let (warm_jobs, timed_jobs): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|mut v| {
                let rest = v.split_off(10);
                (v, rest)
            })
            .unzip();
        run(warm_jobs, warm).await;
        let cpu0 = cpu_seconds(pid);
        let t0 = Instant::now();
        let done = run(timed_jobs, n).await;
        let wall = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu0;
        let hwm = proc_field(pid, "status", "VmHWM:").unwrap_or(0);
        let rss = proc_field(pid, "status", "VmRSS:").unwrap_or(0);
        println!(
            "== elicense-chaincode server process over gRPC (TestPeer), {} ==",
            if pinned {
                "pinned to core 0, 1 Tokio worker"
            } else {
                "1 Tokio worker (taskset unavailable)"
            }
        );
        println!("verifies committed:            {done} ({IN_FLIGHT} in flight)");
        println!(
            "wall clock:                    {wall:.3} s  -> {:.0} verify/s",
            done as f64 / wall
        );
        println!(
            "server CPU time:               {cpu:.2} s  -> {:.1} µs CPU per verify",
            cpu * 1e6 / done as f64
        );
        println!(
            "verifies per CPU-second (1 core): {:.0}",
            if cpu > 0.0 {
                done as f64 / cpu
            } else {
                f64::NAN
            }
        );
        println!(
            "server peak RSS (VmHWM):       {:.1} MiB (VmRSS now {:.1} MiB)",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
        drop(server);
    });
}

fn mock_part(n: usize) {
    let net = Net::new();
    let holder = Holder::new(1);
    let lic = net.issue_id_card(&holder, "900002");
    let grants: Vec<_> = (0..n.div_ceil(USES as usize))
        .map(|_| net.authorized_grant(&holder, &lic.id, &["id_number", "name"], USES))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut builders = Vec::with_capacity(n);
    for i in 0..n {
        let g = &grants[i / USES as usize];
        let req = serde_json::to_value(VerifyRequest {
            grant_id: g.grant.id(),
            matter: "SC-0001".into(),
        })
        .unwrap();
        let p = j(&Presentation {
            code: g.code.clone(),
            fields: lic.present(&["id_number", "name"]),
        });
        builders.push(net.builder(
            "service-clerk",
            "Verify",
            Some(&req),
            &[(TRANSIENT_PRESENTATION, p)],
        ));
    }
    let t0 = Instant::now();
    rt.block_on(async {
        for b in builders {
            let inv = net.ledger.invoke(&net.cc, b).await.unwrap();
            assert!(inv.response.is_ok(), "{}", inv.response.message);
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    println!("== contract in-process on MockLedger (no gRPC), 1 thread ==");
    println!("verifies:                      {n}");
    println!(
        "wall clock:                    {wall:.3} s  -> {:.0} verify/s ({:.1} µs each)",
        n as f64 / wall,
        wall * 1e6 / n as f64
    );
}

fn main() {
    let n: usize = std::env::var("ELICENSE_BENCH_VERIFIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    grpc_part(n);
    mock_part(n.min(20_000));
}
