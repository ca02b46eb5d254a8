//! `elicense devnet up|down|status|deploy`: the embedded Fabric-compatible network.
//!
//! `up` starts every organisation's peer, the solo orderer and the Fabric CAs on 127.0.0.1, hosts
//! the licence chaincode in this process (CCaaS), defines it on every channel with the
//! topology's endorsement policy, seeds the licence catalogue where it is empty, and writes
//! `<data dir>/elicense-devnet.json` (the summary and this process's ID). It then runs until Ctrl-C or
//! SIGTERM; with `--detach` it runs in the background and the command returns once it is ready.
//! A running devnet answers `status` and `deploy` on `<data dir>/control.sock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use elicense_chaincode::host::{HostOptions, HostedChaincode};
use fabric_devnet::devnet::{DeployRequest, Deployed, Devnet, DevnetConfig, DevnetSummary};
use fabric_devnet::topology::Topology;
use fabric_protos::protos::{
    application_policy, collection_config, collection_policy_config, ApplicationPolicy,
    CollectionConfig, CollectionConfigPackage, CollectionPolicyConfig, StaticCollectionConfig,
};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::error::CliError;
use crate::exit::Class;
use crate::Ctx;

/// The data directory used when none is given.
pub const DEFAULT_DATA_DIR: &str = ".elicense-devnet";
const STATE_FILE: &str = "elicense-devnet.json";
const CONTROL_SOCKET: &str = "control.sock";
const LOG_FILE: &str = "devnet.log";

/// The licence catalogue seeded on every channel.
pub const CATALOGUE: &str = include_str!("../../../fixtures/catalogue.json");

/// `devnet` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start the devnet with the licence chaincode deployed and the catalogue seeded.
    Up(UpArgs),
    /// Stop a devnet started with `up --detach`.
    Down(DirArgs),
    /// Show a running devnet: endpoints, channels and heights, profiles, identities.
    Status(DirArgs),
    /// Define a chaincode-as-a-service chaincode on the running devnet.
    Deploy(DeployArgs),
}

/// The data directory.
#[derive(Debug, Clone, clap::Args)]
pub struct DirArgs {
    /// The devnet's data directory.
    #[arg(long, env = "ELICENSE_DEVNET", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// Arguments of `devnet up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where to keep identities, ledgers and profiles; reusing it continues the network.
    #[command(flatten)]
    pub dir: DirArgs,
    /// The network topology (TOML); default: the shipped departments and channels.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Run in the background and return once the devnet is ready.
    #[arg(long)]
    pub detach: bool,
    /// Leave the catalogue empty.
    #[arg(long)]
    pub no_seed: bool,
}

/// Arguments of `devnet deploy`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// The devnet.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Chaincode name.
    #[arg(long)]
    pub name: String,
    /// HOST:PORT where the peers reach the chaincode server.
    #[arg(long)]
    pub address: String,
    /// Version label (default 1.0).
    #[arg(long = "cc-version", value_name = "VERSION")]
    pub cc_version: Option<String>,
    /// Endorsement policy, e.g. "OR('Org1MSP.peer','Org2MSP.peer')"; default: the channel's.
    #[arg(long)]
    pub policy: Option<String>,
    /// Private data collections, in Fabric's collections_config.json format.
    #[arg(long, value_name = "FILE")]
    pub collections: Option<PathBuf>,
    /// PEM of the CA that signed the chaincode server's TLS certificate (enables TLS).
    #[arg(long, value_name = "FILE")]
    pub tls_root_cert: Option<PathBuf>,
}

/// What `elicense-devnet.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The process serving the devnet.
    pub pid: u32,
    /// The licence chaincode's package ID.
    pub package_id: String,
    /// The licence chaincode server's address.
    pub chaincode_address: String,
    /// Channels whose catalogue was seeded by this start.
    pub seeded: Vec<String>,
    /// The devnet summary.
    pub summary: DevnetSummary,
}

/// A devnet running in this process, with the licence chaincode hosted next to it.
pub struct Running {
    /// The network.
    pub devnet: Devnet,
    /// The hosted licence chaincode.
    pub chaincode: HostedChaincode,
    /// Its package ID.
    pub package_id: String,
    /// Channels seeded now.
    pub seeded: Vec<String>,
    /// The topology.
    pub topology: Topology,
}

fn devnet_err(e: impl std::fmt::Display, doing: &str) -> CliError {
    CliError::new(Class::Internal, format!("{doing}: {e}"))
        .hint("see the devnet log; a data directory from another version may need removing")
}

fn free_port() -> Result<u16, CliError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::new(Class::Network, format!("finding a free port: {e}")))
}

/// Starts the devnet, hosts and deploys the licence chaincode, seeds the catalogue.
pub async fn start(topology: Topology, data_dir: &Path, seed: bool) -> Result<Running, CliError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        CliError::new(
            Class::Internal,
            format!("creating {}: {e}", data_dir.display()),
        )
    })?;
    // Absolute, so the summary's profile and MSP paths work from any directory.
    let data_dir = data_dir
        .canonicalize()
        .map_err(|e| CliError::new(Class::Internal, format!("{}: {e}", data_dir.display())))?;
    let devnet = Devnet::up(DevnetConfig::new(topology.clone(), &data_dir))
        .await
        .map_err(|e| devnet_err(e, "starting the devnet"))?;
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let mut package_id = String::new();
    for ch in &topology.channels {
        let deployed = devnet
            .deploy_ccaas(&DeployRequest {
                name: topology.chaincode.name.clone(),
                address: address.clone(),
                channels: vec![ch.name.clone()],
                version: Some(topology.chaincode.version.clone()),
                policy: Some(topology.endorsement_policy(ch)),
                ..Default::default()
            })
            .map_err(|e| devnet_err(e, "deploying the licence chaincode"))?;
        package_id = deployed.package_id;
    }
    let chaincode = HostedChaincode::start(HostOptions::new(package_id.clone()).port(port))
        .await
        .map_err(|e| devnet_err(e, "hosting the licence chaincode"))?;
    let mut running = Running {
        devnet,
        chaincode,
        package_id,
        seeded: Vec::new(),
        topology,
    };
    if seed {
        running.seeded = seed_catalogue(&running).await?;
    }
    Ok(running)
}

/// The regulator's organisation: the one in every channel whose MSP is the contract's regulator.
fn regulator_org(topology: &Topology) -> Option<String> {
    let regulator = elicense_chaincode::Settings::default().regulator_msp;
    topology
        .organizations
        .iter()
        .find(|o| o.msp_id == regulator)
        .map(|o| o.name.clone())
}

/// A licence client for `org`'s `user` on `channel` of a running devnet.
pub fn licence_client(
    summary: &DevnetSummary,
    org: &str,
    user: &str,
    channel: &str,
) -> Result<elicense_sdk::LicenceClient, CliError> {
    let profile_path = summary.profiles.get(org).ok_or_else(|| {
        CliError::new(
            Class::NotFound,
            format!("the devnet has no organisation {org}"),
        )
    })?;
    let profile = fabric_client::profile::ConnectionProfile::from_file(profile_path)
        .map_err(|e| devnet_err(e, "reading a devnet profile"))?;
    let msp_id = profile
        .client_organization()
        .and_then(|o| profile.msp_id(o).ok())
        .unwrap_or_default()
        .to_string();
    let dir = summary
        .msp
        .get(org)
        .and_then(|u| u.get(user))
        .ok_or_else(|| {
            CliError::new(
                Class::NotFound,
                format!("the devnet has no user {org}/{user}"),
            )
        })?;
    let signing =
        fabric_client::msp::load_signing_identity(&msp_id, dir).map_err(CliError::from)?;
    elicense_sdk::LicenceClient::connect(&profile, &signing, channel).map_err(CliError::from)
}

async fn seed_catalogue(running: &Running) -> Result<Vec<String>, CliError> {
    let Some(org) = regulator_org(&running.topology) else {
        return Ok(Vec::new());
    };
    let catalogue = elicense_model::Catalogue::from_json(CATALOGUE)
        .map_err(|e| CliError::new(Class::Internal, format!("shipped catalogue: {e}")))?;
    let summary = running.devnet.summary();
    let mut tasks = tokio::task::JoinSet::new();
    for ch in &running.topology.channels {
        if !ch.members.contains(&org) {
            continue;
        }
        let client = licence_client(&summary, &org, "Admin", &ch.name)?;
        // The commit status comes from the regulator's peer; `up` reports ready only once every
        // member's peer has committed the catalogue too, so the first command after it (an
        // issue endorsed by the issuer's peer) finds the licence types.
        let others = ch
            .members
            .iter()
            .filter(|m| **m != org)
            .map(|m| licence_client(&summary, m, "Admin", &ch.name))
            .collect::<Result<Vec<_>, _>>()?;
        let (catalogue, name) = (catalogue.clone(), ch.name.clone());
        tasks.spawn(async move {
            if !client.catalogue().await?.is_empty() {
                return Ok(None);
            }
            let seeded = client.init_catalogue(&catalogue).await?;
            for other in &others {
                other.wait_for_block(seeded.block_number).await?;
            }
            Ok::<_, elicense_sdk::LicenceError>(Some(name))
        });
    }
    let mut seeded = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.map_err(|e| CliError::new(Class::Internal, e.to_string()))? {
            Ok(Some(ch)) => seeded.push(ch),
            Ok(None) => {}
            Err(e) => return Err(CliError::from(e).context("seeding the catalogue")),
        }
    }
    seeded.sort();
    Ok(seeded)
}

impl Running {
    /// The state written to `elicense-devnet.json`.
    pub fn state(&self) -> State {
        State {
            pid: std::process::id(),
            package_id: self.package_id.clone(),
            chaincode_address: self.chaincode.address().to_string(),
            seeded: self.seeded.clone(),
            summary: self.devnet.summary(),
        }
    }

    /// Stops the chaincode server and the network.
    pub async fn stop(self) {
        let _ = self.chaincode.stop().await;
        self.devnet.down().await;
    }
}

fn topology(path: &Option<PathBuf>) -> Result<Topology, CliError> {
    match path {
        None => Ok(Topology::default_topology()),
        Some(p) => Topology::load(p).map_err(|e| {
            CliError::usage(format!("topology {}: {e}", p.display()))
                .hint("see fixtures/topology.toml for the format")
        }),
    }
}

fn read_state(dir: &Path) -> Option<State> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped) is not running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn running_state(dir: &Path) -> Result<State, CliError> {
    match read_state(dir) {
        Some(s) if alive(s.pid) => Ok(s),
        _ => Err(CliError::new(
            Class::NotFound,
            format!("no devnet is running in {}", dir.display()),
        )
        .hint("start one with `elicense devnet up --detach`")),
    }
}

/// A request on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ControlRequest {
    Summary,
    Deploy {
        name: String,
        address: String,
        channels: Vec<String>,
        version: Option<String>,
        policy: Option<String>,
        /// CollectionConfigPackage, protobuf, base64.
        collections: Option<String>,
        tls_root_cert: Option<String>,
    },
}

async fn control_loop(listener: tokio::net::UnixListener, running: std::sync::Arc<Running>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let running = running.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<ControlRequest>(&line) {
                    Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
                    Ok(ControlRequest::Summary) => {
                        serde_json::json!({"ok": running.state()})
                    }
                    Ok(ControlRequest::Deploy {
                        name,
                        address,
                        channels,
                        version,
                        policy,
                        collections,
                        tls_root_cert,
                    }) => {
                        let collections = collections
                            .map(|b| {
                                base64::engine::general_purpose::STANDARD
                                    .decode(b)
                                    .ok()
                                    .and_then(|bytes| {
                                        CollectionConfigPackage::decode(bytes.as_slice()).ok()
                                    })
                            })
                            .map(|c| c.ok_or("collections: not a CollectionConfigPackage"));
                        match collections.transpose() {
                            Err(e) => serde_json::json!({"error": e}),
                            Ok(collections) => match running.devnet.deploy_ccaas(&DeployRequest {
                                name,
                                address,
                                channels,
                                version,
                                policy,
                                collections,
                                tls_root_cert,
                            }) {
                                Ok(d) => serde_json::json!({"ok": d}),
                                Err(e) => serde_json::json!({"error": e.to_string()}),
                            },
                        }
                    }
                };
                let mut text = reply.to_string();
                text.push('\n');
                if write.write_all(text.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn control(dir: &Path, request: &ControlRequest) -> Result<serde_json::Value, CliError> {
    running_state(dir)?;
    let path = dir.join(CONTROL_SOCKET);
    let stream = tokio::net::UnixStream::connect(&path).await.map_err(|e| {
        CliError::new(
            Class::Network,
            format!("connecting to {}: {e}", path.display()),
        )
        .hint("is the devnet still starting? try again in a moment")
    })?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    text.push('\n');
    write
        .write_all(text.as_bytes())
        .await
        .map_err(|e| CliError::new(Class::Network, format!("devnet control: {e}")))?;
    let mut lines = tokio::io::BufReader::new(read).lines();
    let line = lines
        .next_line()
        .await
        .map_err(|e| CliError::new(Class::Network, format!("devnet control: {e}")))?
        .ok_or_else(|| CliError::new(Class::Network, "the devnet closed the control connection"))?;
    let reply: serde_json::Value = serde_json::from_str(&line)
        .map_err(|e| CliError::new(Class::Network, format!("devnet control: {e}")))?;
    match reply.get("error").and_then(|e| e.as_str()) {
        Some(e) => {
            let class = if e.starts_with("unknown") {
                Class::NotFound
            } else {
                Class::Usage
            };
            Err(CliError::new(class, format!("devnet: {e}")))
        }
        None => Ok(reply["ok"].clone()),
    }
}

/// Fabric's collections_config.json, as `peer lifecycle chaincode approveformyorg
/// --collections-config` reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionJson {
    name: String,
    policy: String,
    #[serde(default)]
    required_peer_count: i32,
    #[serde(default)]
    max_peer_count: i32,
    #[serde(default)]
    block_to_live: u64,
    #[serde(default)]
    member_only_read: bool,
    #[serde(default)]
    member_only_write: bool,
    #[serde(default)]
    endorsement_policy: Option<EndorsementPolicyJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndorsementPolicyJson {
    signature_policy: Option<String>,
    channel_config_policy: Option<String>,
}

fn collections_package(path: &Path) -> Result<CollectionConfigPackage, CliError> {
    let list: Vec<CollectionJson> = crate::input::read_json(path, "collections config")?;
    let policy = |text: &str| {
        fabric_common::policy::parse_policy(text).map_err(|e| {
            CliError::usage(format!("collections config: policy {text:?}: {e}"))
                .hint("policies are written as in `peer lifecycle`, e.g. OR('Org1MSP.member')")
        })
    };
    let mut config = Vec::new();
    for c in list {
        let endorsement_policy = match c.endorsement_policy {
            None => None,
            Some(EndorsementPolicyJson {
                signature_policy: Some(p),
                ..
            }) => Some(ApplicationPolicy {
                r#type: Some(application_policy::Type::SignaturePolicy(policy(&p)?)),
            }),
            Some(EndorsementPolicyJson {
                channel_config_policy: Some(p),
                ..
            }) => Some(ApplicationPolicy {
                r#type: Some(application_policy::Type::ChannelConfigPolicyReference(p)),
            }),
            Some(_) => None,
        };
        config.push(CollectionConfig {
            payload: Some(collection_config::Payload::StaticCollectionConfig(
                StaticCollectionConfig {
                    name: c.name,
                    member_orgs_policy: Some(CollectionPolicyConfig {
                        payload: Some(collection_policy_config::Payload::SignaturePolicy(policy(
                            &c.policy,
                        )?)),
                    }),
                    required_peer_count: c.required_peer_count,
                    maximum_peer_count: c.max_peer_count,
                    block_to_live: c.block_to_live,
                    member_only_read: c.member_only_read,
                    member_only_write: c.member_only_write,
                    endorsement_policy,
                },
            )),
        });
    }
    Ok(CollectionConfigPackage { config })
}

#[derive(Serialize)]
struct UpOutput<'a> {
    running: bool,
    pid: u32,
    package_id: &'a str,
    chaincode_address: &'a str,
    seeded: &'a [String],
    #[serde(flatten)]
    summary: &'a DevnetSummary,
}

fn print_state(ctx: &Ctx, state: &State) -> Result<(), CliError> {
    let out = UpOutput {
        running: true,
        pid: state.pid,
        package_id: &state.package_id,
        chaincode_address: &state.chaincode_address,
        seeded: &state.seeded,
        summary: &state.summary,
    };
    if ctx.format() == crate::output::Format::Table {
        let s = &state.summary;
        let mut rows: Vec<BTreeMap<&str, String>> = Vec::new();
        for p in &s.peers {
            rows.push(BTreeMap::from([
                ("kind", "peer".to_string()),
                ("org", p.org.clone()),
                ("endpoint", p.url.clone()),
                (
                    "profile",
                    s.profiles
                        .get(&p.org)
                        .map(|x| x.display().to_string())
                        .unwrap_or_default(),
                ),
            ]));
        }
        for c in &s.cas {
            rows.push(BTreeMap::from([
                ("kind", "ca".to_string()),
                ("org", c.org.clone()),
                ("endpoint", c.url.clone()),
                ("profile", String::new()),
            ]));
        }
        crate::output::print(ctx.format(), &rows)?;
        if !ctx.quiet {
            eprintln!(
                "devnet {} in {} (pid {}), channels: {}; licence chaincode {}",
                s.name,
                s.data_dir.display(),
                state.pid,
                s.channels
                    .iter()
                    .map(|c| format!("{} (height {})", c.name, c.height))
                    .collect::<Vec<_>>()
                    .join(", "),
                state.package_id
            );
            eprintln!(
                "try: elicense --devnet {} --identity PublicSecurity/issuer1 --channel police-service catalogue list",
                s.data_dir.display()
            );
        }
        Ok(())
    } else {
        crate::output::print(ctx.format(), &out)
    }
}

async fn up(ctx: &Ctx, a: UpArgs) -> Result<(), CliError> {
    let dir = a.dir.data_dir.clone();
    if let Some(s) = read_state(&dir).filter(|s| alive(s.pid)) {
        return Err(CliError::new(
            Class::Conflict,
            format!(
                "a devnet is already running in {} (pid {})",
                dir.display(),
                s.pid
            ),
        )
        .hint("stop it with `elicense devnet down`, or use another --data-dir"));
    }
    if a.detach {
        return detach(ctx, &a).await;
    }
    let topology = topology(&a.topology)?;
    let t0 = Instant::now();
    let running = std::sync::Arc::new(start(topology, &dir, !a.no_seed).await?);
    let state = running.state();
    let _ = std::fs::remove_file(dir.join(CONTROL_SOCKET));
    let listener = tokio::net::UnixListener::bind(dir.join(CONTROL_SOCKET)).map_err(|e| {
        CliError::new(
            Class::Internal,
            format!("control socket in {}: {e}", dir.display()),
        )
    })?;
    let control_task = tokio::spawn(control_loop(listener, running.clone()));
    let text = serde_json::to_string_pretty(&state)
        .map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    std::fs::write(dir.join(STATE_FILE), text)
        .map_err(|e| CliError::new(Class::Internal, format!("writing {STATE_FILE}: {e}")))?;
    tracing::info!(elapsed_ms = t0.elapsed().as_millis() as u64, "devnet ready");
    print_state(ctx, &state)?;
    if !ctx.quiet {
        eprintln!("the devnet runs until Ctrl-C");
    }
    super::chaincode::stop_signal().await;
    control_task.abort();
    let _ = std::fs::remove_file(dir.join(CONTROL_SOCKET));
    let _ = std::fs::remove_file(dir.join(STATE_FILE));
    match std::sync::Arc::try_unwrap(running) {
        Ok(r) => r.stop().await,
        Err(_) => tracing::warn!("devnet still referenced at shutdown; stopping with the process"),
    }
    Ok(())
}

async fn detach(ctx: &Ctx, a: &UpArgs) -> Result<(), CliError> {
    use std::os::unix::process::CommandExt as _;
    let dir = &a.dir.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::new(Class::Internal, format!("creating {}: {e}", dir.display())))?;
    let _ = std::fs::remove_file(dir.join(STATE_FILE));
    let log = std::fs::File::create(dir.join(LOG_FILE))
        .map_err(|e| CliError::new(Class::Internal, format!("creating {LOG_FILE}: {e}")))?;
    let exe = std::env::current_exe().map_err(|e| CliError::new(Class::Internal, e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["-q", "-o", "json", "devnet", "up", "--data-dir"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        // Its own process group: Ctrl-C in this terminal does not stop the background devnet.
        .process_group(0);
    if let Some(t) = &a.topology {
        cmd.arg("--topology").arg(t);
    }
    if a.no_seed {
        cmd.arg("--no-seed");
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::new(Class::Internal, format!("starting the devnet: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(state) = read_state(dir).filter(|s| s.pid == child.id()) {
            return print_state(ctx, &state);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default();
            return Err(CliError::new(
                Class::Internal,
                format!(
                    "the devnet exited ({status}) before it was ready: {}",
                    log.trim()
                ),
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(
                CliError::new(Class::Internal, "the devnet did not become ready in 120 s")
                    .hint(format!("see {}", dir.join(LOG_FILE).display())),
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn down(ctx: &Ctx, a: DirArgs) -> Result<(), CliError> {
    let state = running_state(&a.data_dir)?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &state.pid.to_string()])
        .status()
        .map_err(|e| {
            CliError::new(
                Class::Internal,
                format!("signalling pid {}: {e}", state.pid),
            )
        })?;
    if !status.success() {
        return Err(CliError::new(
            Class::Denied,
            format!("cannot signal the devnet (pid {})", state.pid),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(state.pid) {
        if Instant::now() > deadline {
            return Err(CliError::new(
                Class::Internal,
                format!("the devnet (pid {}) did not stop in 30 s", state.pid),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    #[derive(Serialize)]
    struct Down<'a> {
        stopped: bool,
        pid: u32,
        data_dir: &'a Path,
    }
    crate::output::print(
        ctx.format(),
        &Down {
            stopped: true,
            pid: state.pid,
            data_dir: &a.data_dir,
        },
    )
}

/// Runs a `devnet` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Up(a) => up(ctx, a).await,
        Command::Down(a) => down(ctx, a).await,
        Command::Status(a) => {
            let reply = control(&a.data_dir, &ControlRequest::Summary).await?;
            let state: State = serde_json::from_value(reply)
                .map_err(|e| CliError::new(Class::Network, format!("devnet status: {e}")))?;
            print_state(ctx, &state)
        }
        Command::Deploy(a) => {
            let collections = match &a.collections {
                Some(p) => Some(
                    base64::engine::general_purpose::STANDARD
                        .encode(collections_package(p)?.encode_to_vec()),
                ),
                None => None,
            };
            let tls_root_cert = match &a.tls_root_cert {
                Some(p) => Some(crate::input::read_text(p)?),
                None => None,
            };
            let reply = control(
                &a.dir.data_dir,
                &ControlRequest::Deploy {
                    name: a.name,
                    address: a.address,
                    channels: ctx.settings.channel.iter().cloned().collect(),
                    version: a.cc_version,
                    policy: a.policy,
                    collections,
                    tls_root_cert,
                },
            )
            .await?;
            let deployed: Deployed = serde_json::from_value(reply)
                .map_err(|e| CliError::new(Class::Network, format!("devnet deploy: {e}")))?;
            crate::output::print(ctx.format(), &deployed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_config_json_becomes_fabrics_collection_package() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collections.json");
        std::fs::write(
            &path,
            r#"[{"name":"pdc1","policy":"OR('Org1MSP.member','Org2MSP.member')","requiredPeerCount":1,
                "maxPeerCount":2,"blockToLive":100,"memberOnlyRead":true,
                "endorsementPolicy":{"signaturePolicy":"AND('Org1MSP.peer')"}}]"#,
        )
        .unwrap();
        let pkg = collections_package(&path).unwrap();
        let Some(collection_config::Payload::StaticCollectionConfig(c)) = &pkg.config[0].payload
        else {
            panic!("a static collection");
        };
        assert_eq!(
            (c.name.as_str(), c.required_peer_count, c.maximum_peer_count),
            ("pdc1", 1, 2)
        );
        assert_eq!(
            (c.block_to_live, c.member_only_read, c.member_only_write),
            (100, true, false)
        );
        let expected =
            fabric_common::policy::parse_policy("OR('Org1MSP.member','Org2MSP.member')").unwrap();
        assert_eq!(
            c.member_orgs_policy.as_ref().unwrap().payload,
            Some(collection_policy_config::Payload::SignaturePolicy(expected))
        );
        assert!(matches!(
            c.endorsement_policy.as_ref().unwrap().r#type,
            Some(application_policy::Type::SignaturePolicy(_))
        ));
        std::fs::write(&path, r#"[{"name":"x","policy":"NOT A POLICY"}]"#).unwrap();
        assert_eq!(collections_package(&path).unwrap_err().class, Class::Usage);
    }
}
