//! The whole devnet in one process: [`Devnet::up`] starts every organisation's Fabric CA
//! service, the solo orderer and one peer per topology peer (Endorser, Deliver and Gateway on
//! one TLS gRPC server each), all on 127.0.0.1; [`Devnet::down`] stops them.
//!
//! Data dir layout, besides the crypto material (see [`crate::material`]):
//!
//! ```text
//! genesis/<channel>.block       each channel's genesis block, built once from the topology
//! orderer/<channel>.redb        the orderer's block store
//! peers/<host>/<channel>.redb   each peer's ledger
//! chaincodes.json               chaincode definitions, re-applied on restart
//! devnet.json                   the running devnet's summary (endpoints, paths, process ID),
//!                               removed by `down`; what `devnet status` reads from another process
//! ```
//!
//! Restarting on the same data dir reuses the identities, the genesis blocks and the ledgers, so
//! the ledger continues; ports are chosen afresh unless given, and the connection profiles are
//! rewritten with them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabric_common::identity::SigningIdentity;
use fabric_protos::common::Block;
use fabric_protos::protos::{
    application_policy, ApplicationPolicy, CollectionConfigPackage, ProposalResponse,
    SignedProposal,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::ca::{self, CaOptions, CaServer, CaService};
use crate::chaincode::ConnectionInfo;
use crate::configtx::{genesis_block, ChannelInput, OrdererOrgInput, OrgMsp};
use crate::deliver::PeerDeliverService;
use crate::gateway::{
    BoxFuture, ChannelView, EndorsingPeer, GatewayOptions, GatewayService, OrderingService,
};
use crate::material::{self, NetworkCrypto, NodeKind, ProfileEndpoints};
use crate::orderer::{BlockSink, Orderer, OrdererConfig};
use crate::peer::{ChaincodeDefinition, PeerChannel, PeerNode, PeerNodeConfig, TransientStore};
use crate::topology::Topology;

/// Errors starting or operating the devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// Crypto material could not be created or read.
    #[error(transparent)]
    Material(#[from] material::MaterialError),
    /// A Fabric CA service failed.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// The orderer failed.
    #[error(transparent)]
    Orderer(#[from] crate::orderer::OrdererError),
    /// A peer failed.
    #[error(transparent)]
    Peer(#[from] crate::peer::PeerError),
    /// A file could not be read or written, or a port could not be bound.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An identity directory could not be read.
    #[error("identity {0}: {1}")]
    Identity(String, String),
    /// A stored file is malformed.
    #[error("{0}: {1}")]
    Corrupt(String, String),
    /// A deploy request is invalid.
    #[error("{0}")]
    InvalidRequest(String),
    /// The topology names something unknown.
    #[error("unknown {0}")]
    Unknown(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevnetError {
    let what = what.into();
    move |source| DevnetError::Io { what, source }
}

/// How to start the devnet.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The network description.
    pub topology: Topology,
    /// Where everything is kept; reusing it continues the network.
    pub data_dir: PathBuf,
    /// Fixed gRPC port per peer host (`peer0.<domain>`); others get a free port.
    pub peer_ports: BTreeMap<String, u16>,
    /// Fixed orderer port; `None` for a free one.
    pub orderer_port: Option<u16>,
    /// Fixed Fabric CA port per organisation name; others get a free port.
    pub ca_ports: BTreeMap<String, u16>,
}

impl DevnetConfig {
    /// The topology in `data_dir`, every port free.
    pub fn new(topology: Topology, data_dir: impl Into<PathBuf>) -> Self {
        DevnetConfig {
            topology,
            data_dir: data_dir.into(),
            peer_ports: BTreeMap::new(),
            orderer_port: None,
            ca_ports: BTreeMap::new(),
        }
    }
}

/// A chaincode server to define on channels ([`Devnet::deploy_ccaas`]).
#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    /// Chaincode name.
    pub name: String,
    /// `host:port` of the CCaaS chaincode server.
    pub address: String,
    /// Channels to define it on; empty means every channel.
    pub channels: Vec<String>,
    /// Version label (default `1.0`).
    pub version: Option<String>,
    /// Signature policy in `peer lifecycle` syntax; `None` for the channel's default
    /// (`/Channel/Application/Endorsement`: a majority of the organisations).
    pub policy: Option<String>,
    /// Private data collections.
    pub collections: Option<CollectionConfigPackage>,
    /// PEM of the CA that issued the chaincode server's TLS certificate; TLS is off without it.
    pub tls_root_cert: Option<String>,
}

/// The outcome of a deploy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Deployed {
    /// The package ID the chaincode server must be started with (`CHAINCODE_ID`).
    pub package_id: String,
    /// Channels the chaincode is now defined on.
    pub channels: Vec<String>,
    /// The definition sequence on those channels.
    pub sequence: i64,
}

/// One peer in the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerSummary {
    /// Organisation name.
    pub org: String,
    /// MSP ID.
    pub msp_id: String,
    /// Host name (`peer0.<domain>`), the TLS server name.
    pub host: String,
    /// `127.0.0.1:port`.
    pub address: String,
    /// `grpcs://127.0.0.1:port`.
    pub url: String,
    /// PEM file of the organisation's TLS CA.
    pub tls_ca_cert: PathBuf,
    /// Channels joined.
    pub channels: Vec<String>,
}

/// One Fabric CA service in the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaSummary {
    /// Organisation name.
    pub org: String,
    /// `https://127.0.0.1:port`.
    pub url: String,
    /// The default CA's name (`ca.<domain>`).
    pub ca_name: String,
    /// PEM file clients trust for the HTTPS endpoint.
    pub tls_ca_cert: PathBuf,
}

/// A channel in the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelSummary {
    /// Channel name.
    pub name: String,
    /// Member organisations.
    pub members: Vec<String>,
    /// Current ledger height on the orderer.
    pub height: u64,
}

/// A machine-readable description of a running devnet (`elicense devnet up -o json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DevnetSummary {
    /// Topology name.
    pub name: String,
    /// The data dir.
    pub data_dir: PathBuf,
    /// The orderer's `127.0.0.1:port`.
    pub orderer: String,
    /// The orderer's host name (TLS server name).
    pub orderer_host: String,
    /// PEM file of the orderer organisation's TLS CA.
    pub orderer_tls_ca_cert: PathBuf,
    /// Every peer.
    pub peers: Vec<PeerSummary>,
    /// Every organisation's CA service.
    pub cas: Vec<CaSummary>,
    /// Every channel.
    pub channels: Vec<ChannelSummary>,
    /// Connection profile per organisation.
    pub profiles: BTreeMap<String, PathBuf>,
    /// MSP directories per organisation, by user (`Admin`, clerks, holders, ...).
    pub msp: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Chaincodes defined, per channel: name → package ID.
    pub chaincodes: BTreeMap<String, BTreeMap<String, String>>,
    /// How long `up` took, in milliseconds.
    pub startup_ms: u64,
}

/// A peer of the devnet.
#[derive(Debug, Clone)]
pub struct DevnetPeer {
    /// Organisation name.
    pub org: String,
    /// Host name.
    pub host: String,
    /// `127.0.0.1:port`.
    pub address: SocketAddr,
    /// The peer itself.
    pub node: PeerNode,
}

struct ServerHandle {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredDefinition {
    channel: String,
    definition: ChaincodeDefinition,
}

/// A running devnet. Stop it with [`Devnet::down`]; dropping it stops the servers too.
pub struct Devnet {
    config: DevnetConfig,
    crypto: NetworkCrypto,
    orderer: Orderer,
    orderer_addr: SocketAddr,
    peers: Vec<DevnetPeer>,
    cas: Vec<(String, CaService, Option<CaServer>)>,
    servers: Vec<ServerHandle>,
    definitions: Mutex<Vec<StoredDefinition>>,
    startup: Duration,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("data_dir", &self.config.data_dir)
            .field("orderer", &self.orderer_addr)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

/// A joined peer channel as a block sink of the orderer.
struct PeerSink(Arc<PeerChannel>);

impl BlockSink for PeerSink {
    fn height(&self) -> u64 {
        self.0.ledger().height()
    }
    fn deliver_block(&self, block: Block) -> Result<(), String> {
        self.0
            .deliver_block(block)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl EndorsingPeer for PeerNode {
    fn msp_id(&self) -> String {
        PeerNode::msp_id(self).to_string()
    }
    fn address(&self) -> String {
        PeerNode::address(self).to_string()
    }
    fn identity(&self) -> Vec<u8> {
        self.signer().serialized().to_vec()
    }
    fn channel(&self, channel: &str) -> Option<ChannelView> {
        PeerNode::channel(self, channel).map(|c| ChannelView {
            ledger: c.ledger().clone(),
            context: c.context().clone(),
        })
    }
    fn collection_members(
        &self,
        channel: &str,
        chaincode: &str,
        collection: &str,
    ) -> Option<Vec<String>> {
        let pc = PeerNode::channel(self, channel)?;
        let cc = pc.chaincode(chaincode)?;
        cc.collection(pc.context(), collection)
            .map(|c| c.member_orgs)
    }
    fn process_proposal(
        &self,
        proposal: SignedProposal,
    ) -> BoxFuture<Result<ProposalResponse, tonic::Status>> {
        let node = self.clone();
        Box::pin(async move { PeerNode::process_proposal(&node, proposal).await })
    }
}

async fn bind(port: Option<u16>) -> Result<TcpListener, DevnetError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
    TcpListener::bind(addr)
        .await
        .map_err(io(format!("binding {addr}")))
}

fn read_signer(dir: &Path, msp_id: &str) -> Result<SigningIdentity, DevnetError> {
    fabric_common::msp::read_signing_identity(dir, msp_id)
        .map_err(|e| DevnetError::Identity(dir.display().to_string(), e.to_string()))
}

fn org_msp(crypto: &NetworkCrypto, org: &str) -> Result<OrgMsp, DevnetError> {
    let o = crypto.org(org)?;
    Ok(OrgMsp {
        name: o.name.clone(),
        msp_id: o.msp_id.clone(),
        ca_certs: vec![o.ca.cert_pem().to_string()],
        tls_ca_certs: vec![o.tlsca.cert_pem().to_string()],
        node_ous: true,
        ..Default::default()
    })
}

fn tls_server(dir: &Path, roots: &str) -> Result<tonic::transport::ServerTlsConfig, DevnetError> {
    let cert = std::fs::read(dir.join("server.crt")).map_err(io(dir.display().to_string()))?;
    let key = std::fs::read(dir.join("server.key")).map_err(io(dir.display().to_string()))?;
    Ok(tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key))
        .client_ca_root(tonic::transport::Certificate::from_pem(roots))
        .client_auth_optional(true))
}

/// Concurrent HTTP/2 streams per client connection on the devnet's gRPC servers.
const MAX_CONCURRENT_STREAMS: u32 = 100_000;

fn spawn_server(listener: TcpListener, router: tonic::transport::server::Router) -> ServerHandle {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!("devnet gRPC server: {e}");
        }
    });
    ServerHandle {
        shutdown: Some(tx),
        task,
    }
}

impl Devnet {
    /// Starts the devnet described by `config` (see the module docs); returns once every
    /// service accepts connections.
    pub async fn up(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let started = Instant::now();
        let topo = &config.topology;
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(io(dir.display().to_string()))?;
        let crypto = NetworkCrypto::load_or_create(dir, topo)?;

        // CAs first: they enroll every node and user identity.
        let mut cas = Vec::new();
        let mut org_names: Vec<String> = vec![topo.orderer.org.clone()];
        org_names.extend(topo.organizations.iter().map(|o| o.name.clone()));
        for org in &org_names {
            let port = config.ca_ports.get(org).copied().unwrap_or(0);
            let (service, server) = ca::start_org_ca(
                &crypto,
                org,
                CaOptions::default(),
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .await?;
            let c = crypto.clone();
            let t = topo.clone();
            let s = service.clone();
            let o = org.clone();
            tokio::task::spawn_blocking(move || ca::enroll_org_identities(&s, &t, &c, &o))
                .await
                .map_err(|e| DevnetError::Corrupt("enrollment".into(), e.to_string()))??;
            cas.push((org.clone(), service, Some(server)));
        }

        // Listeners, so every address is known before anything is built.
        let orderer_org = crypto.org(&topo.orderer.org)?.clone();
        let orderer_host = orderer_org.node_hosts()[0].clone();
        let orderer_listener = bind(config.orderer_port).await?;
        let orderer_addr = orderer_listener
            .local_addr()
            .map_err(io("orderer address"))?;
        let mut peer_listeners = Vec::new();
        for spec in &topo.organizations {
            for host in crypto.org(&spec.name)?.node_hosts() {
                let l = bind(config.peer_ports.get(&host).copied()).await?;
                peer_listeners.push((spec.name.clone(), host, l));
            }
        }

        // Orderer and genesis blocks.
        let layout = &crypto.layout;
        let onode = layout.node_dir(&orderer_org.name, NodeKind::Orderer, &orderer_host);
        let orderer = Orderer::new(OrdererConfig {
            msp_id: orderer_org.msp_id.clone(),
            address: orderer_addr.to_string(),
            signer: read_signer(&onode.join("msp"), &orderer_org.msp_id)?,
            data_dir: dir.join("orderer"),
        });
        let tls_cert = std::fs::read(onode.join("tls").join("server.crt"))
            .map_err(io("orderer TLS certificate"))?;
        let mut genesis = BTreeMap::new();
        for ch in &topo.channels {
            let path = dir.join("genesis").join(format!("{}.block", ch.name));
            let block = if path.exists() {
                let bytes = std::fs::read(&path).map_err(io(path.display().to_string()))?;
                Block::decode(bytes.as_slice())
                    .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))?
            } else {
                let input = ChannelInput {
                    channel_id: ch.name.clone(),
                    application_orgs: ch
                        .members
                        .iter()
                        .map(|m| org_msp(&crypto, m))
                        .collect::<Result<_, _>>()?,
                    orderer: OrdererOrgInput {
                        msp: org_msp(&crypto, &orderer_org.name)?,
                        endpoints: vec![orderer_addr.to_string()],
                        consenter: (
                            "127.0.0.1".into(),
                            u32::from(orderer_addr.port()),
                            tls_cert.clone(),
                            tls_cert.clone(),
                        ),
                    },
                    batch: topo.orderer.batch.into(),
                };
                let block = genesis_block(&input);
                std::fs::create_dir_all(path.parent().expect("genesis dir"))
                    .map_err(io("genesis dir"))?;
                std::fs::write(&path, block.encode_to_vec())
                    .map_err(io(path.display().to_string()))?;
                block
            };
            orderer.join_channel(&block)?;
            genesis.insert(ch.name.clone(), block);
        }

        // Peers: join their channels, re-apply stored chaincode definitions, follow the orderer.
        let definitions = load_definitions(dir)?;
        let transient = TransientStore::new();
        let mut peers = Vec::new();
        for (org, host, l) in &peer_listeners {
            let oc = crypto.org(org)?;
            let node_dir = layout.node_dir(org, NodeKind::Peer, host);
            let address = l.local_addr().map_err(io("peer address"))?;
            let node = PeerNode::new(PeerNodeConfig {
                msp_id: oc.msp_id.clone(),
                name: host.clone(),
                address: address.to_string(),
                signer: read_signer(&node_dir.join("msp"), &oc.msp_id)?,
                data_dir: dir.join("peers").join(host),
                transient: transient.clone(),
            });
            for ch in topo.channels.iter().filter(|c| c.members.contains(org)) {
                let pc = node.join_channel(&genesis[&ch.name])?;
                for d in definitions.iter().filter(|d| d.channel == ch.name) {
                    pc.define_chaincode(d.definition.clone())?;
                }
                orderer.add_sink(&ch.name, Arc::new(PeerSink(pc)))?;
            }
            peers.push(DevnetPeer {
                org: org.clone(),
                host: host.clone(),
                address,
                node,
            });
        }

        // gRPC servers with TLS; clients may present a certificate of any org's TLS CA.
        let roots: String = crypto
            .orgs
            .values()
            .map(|o| o.tlsca.cert_pem().to_string())
            .collect::<Vec<_>>()
            .join("");
        let all: Vec<Arc<dyn EndorsingPeer>> = peers
            .iter()
            .map(|p| Arc::new(p.node.clone()) as Arc<dyn EndorsingPeer>)
            .collect();
        let ordering: Arc<dyn OrderingService> = Arc::new(orderer.clone());
        let mut servers = Vec::new();
        for (p, (_, _, l)) in peers.iter().zip(peer_listeners) {
            let tls = tls_server(
                &layout.node_dir(&p.org, NodeKind::Peer, &p.host).join("tls"),
                &roots,
            )?;
            let node = p.node.clone();
            let lookup = Arc::new(move |ch: &str| {
                node.channel(ch)
                    .map(|c| (c.ledger().clone(), c.context().clone()))
            });
            let node = p.node.clone();
            let members = Arc::new(move |ch: &str, ns: &str, coll: &str| {
                let pc = node.channel(ch)?;
                let cc = pc.chaincode(ns)?;
                cc.collection(pc.context(), coll).map(|c| c.member_orgs)
            });
            let gateway = GatewayService::new(
                Arc::new(p.node.clone()),
                all.clone(),
                ordering.clone(),
                GatewayOptions::default(),
            );
            let router = tonic::transport::Server::builder()
                .tls_config(tls)
                .map_err(|e| DevnetError::Corrupt("peer TLS".into(), e.to_string()))?
                .tcp_nodelay(true)
                // Commit-status waits hold a stream each until their block commits; hyper's
                // default of 200 streams per connection would queue new requests behind them
                // (grpc-go, which Fabric peers use, sets no such limit).
                .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
                .add_service(p.node.endorser_service())
                .add_service(
                    PeerDeliverService::new(lookup)
                        .with_collections(members)
                        .server(),
                )
                .add_service(gateway.server());
            servers.push(spawn_server(l, router));
        }
        let router = tonic::transport::Server::builder()
            .tls_config(tls_server(&onode.join("tls"), &roots)?)
            .map_err(|e| DevnetError::Corrupt("orderer TLS".into(), e.to_string()))?
            .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
            .add_service(orderer.service());
        servers.push(spawn_server(orderer_listener, router));

        let mut devnet = Devnet {
            startup: Duration::ZERO,
            config: config.clone(),
            crypto,
            orderer,
            orderer_addr,
            peers,
            cas,
            servers,
            definitions: Mutex::new(definitions),
        };
        devnet.write_profiles()?;
        devnet.startup = started.elapsed();
        devnet.write_summary()?;
        Ok(devnet)
    }

    fn write_profiles(&self) -> Result<(), DevnetError> {
        let mut ep = ProfileEndpoints::default();
        for p in &self.peers {
            ep.peers.insert(p.host.clone(), p.address.port());
        }
        let ohost = self
            .crypto
            .org(&self.config.topology.orderer.org)?
            .node_hosts()[0]
            .clone();
        ep.orderers.insert(ohost, self.orderer_addr.port());
        for (org, _, server) in &self.cas {
            if let Some(s) = server {
                ep.cas.insert(org.clone(), s.port());
            }
        }
        material::write_profiles(&self.config.topology, &self.crypto, &ep)?;
        Ok(())
    }

    fn write_summary(&self) -> Result<(), DevnetError> {
        let path = summary_path(&self.config.data_dir);
        let mut v = serde_json::to_value(self.summary())
            .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))?;
        v["pid"] = serde_json::json!(std::process::id());
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&v).unwrap_or_default())
            .map_err(io(tmp.display().to_string()))?;
        std::fs::rename(&tmp, &path).map_err(io(path.display().to_string()))
    }

    /// The summary a running devnet wrote to `data_dir/devnet.json`, with the process ID that
    /// runs it; `None` when no devnet was started there or it was brought down.
    pub fn running_summary(data_dir: &Path) -> Result<Option<(DevnetSummary, u32)>, DevnetError> {
        let path = summary_path(data_dir);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read(&path).map_err(io(path.display().to_string()))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))?;
        let pid = v["pid"].as_u64().unwrap_or(0) as u32;
        let summary = serde_json::from_value(v)
            .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))?;
        Ok(Some((summary, pid)))
    }

    /// The peers.
    pub fn peers(&self) -> &[DevnetPeer] {
        &self.peers
    }

    /// A peer by host name (`peer0.<domain>`) or organisation name (its first peer).
    pub fn peer(&self, name: &str) -> Option<&DevnetPeer> {
        self.peers
            .iter()
            .find(|p| p.host == name)
            .or_else(|| self.peers.iter().find(|p| p.org == name))
    }

    /// The orderer.
    pub fn orderer(&self) -> &Orderer {
        &self.orderer
    }

    /// The crypto material (data dir layout, CAs).
    pub fn crypto(&self) -> &NetworkCrypto {
        &self.crypto
    }

    /// An organisation's Fabric CA service, in-process.
    pub fn ca(&self, org: &str) -> Option<&CaService> {
        self.cas
            .iter()
            .find(|(o, _, _)| o == org)
            .map(|(_, s, _)| s)
    }

    /// How long [`Devnet::up`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Defines a CCaaS chaincode on channels (every peer of each channel dials `address`) and
    /// returns the package ID the chaincode server must register with: label `<name>_<version>`,
    /// ID `label:sha256(package)` of the CCaaS package Fabric would install. The definition is
    /// persisted and re-applied on restart; redeploying increments the sequence.
    pub fn deploy_ccaas(&self, req: &DeployRequest) -> Result<Deployed, DevnetError> {
        self.deploy(req, |_| None)
    }

    /// Defines the topology's chaincode (`[chaincode]`: name, version, endorsement policy with
    /// `ANY_MEMBER_PEER` expanded per channel) on every channel, served at `address`.
    pub fn deploy_topology_chaincode(
        &self,
        address: &str,
        tls_root_cert: Option<String>,
    ) -> Result<Deployed, DevnetError> {
        let topo = &self.config.topology;
        if !topo.chaincode.collections.is_empty() {
            return Err(DevnetError::InvalidRequest(
                "explicit collections in the topology are not supported by the devnet; use deploy_ccaas with a CollectionConfigPackage".into(),
            ));
        }
        let req = DeployRequest {
            name: topo.chaincode.name.clone(),
            address: address.to_string(),
            version: Some(topo.chaincode.version.clone()),
            tls_root_cert,
            ..Default::default()
        };
        self.deploy(&req, |channel| {
            topo.channels
                .iter()
                .find(|c| c.name == channel)
                .map(|c| topo.endorsement_policy(c))
        })
    }

    fn deploy(
        &self,
        req: &DeployRequest,
        policy_for: impl Fn(&str) -> Option<String>,
    ) -> Result<Deployed, DevnetError> {
        let topo = &self.config.topology;
        let channels: Vec<String> = if req.channels.is_empty() {
            topo.channels.iter().map(|c| c.name.clone()).collect()
        } else {
            req.channels.clone()
        };
        for c in &channels {
            if !topo.channels.iter().any(|t| &t.name == c) {
                return Err(DevnetError::Unknown(format!("channel {c}")));
            }
        }
        let version = req.version.clone().unwrap_or_else(|| "1.0".into());
        let label = format!("{}_{}", req.name, version);
        let mut conn = fabric_common::ccaas::Connection::plaintext(&req.address);
        if let Some(root) = &req.tls_root_cert {
            conn.tls_required = true;
            conn.root_cert = root.clone();
        }
        let package = fabric_common::ccaas::build(&label, &conn)
            .map_err(|e| DevnetError::InvalidRequest(e.to_string()))?;
        let package_id = fabric_common::ccaas::package_id(&label, &package);
        let mut policies = BTreeMap::new();
        for c in &channels {
            let text = policy_for(c).or_else(|| req.policy.clone());
            policies.insert(c.clone(), application_policy_bytes(text.as_deref())?);
        }
        let mut defs = self.definitions.lock().expect("definitions");
        let mut sequence = 1;
        for c in &channels {
            if let Some(d) = defs
                .iter()
                .find(|d| &d.channel == c && d.definition.name == req.name)
            {
                sequence = sequence.max(d.definition.sequence + 1);
            }
        }
        let connection = ConnectionInfo {
            address: req.address.clone(),
            dial_timeout: "10s".into(),
            tls_required: req.tls_root_cert.is_some(),
            root_cert: req.tls_root_cert.clone().unwrap_or_default(),
            ..Default::default()
        };
        for c in &channels {
            let definition = ChaincodeDefinition {
                name: req.name.clone(),
                version: version.clone(),
                sequence,
                package_id: package_id.clone(),
                connection: connection.clone(),
                endorsement_policy: policies[c].clone(),
                collections: req.collections.clone().unwrap_or_default(),
                init_required: false,
            };
            for p in &self.peers {
                if let Some(pc) = p.node.channel(c) {
                    pc.define_chaincode(definition.clone())?;
                }
            }
            defs.retain(|d| !(&d.channel == c && d.definition.name == req.name));
            defs.push(StoredDefinition {
                channel: c.clone(),
                definition,
            });
        }
        store_definitions(&self.config.data_dir, &defs)?;
        drop(defs);
        self.write_summary()?;
        Ok(Deployed {
            package_id,
            channels,
            sequence,
        })
    }

    /// Endpoints, channels, profile and MSP paths of the running devnet.
    pub fn summary(&self) -> DevnetSummary {
        let topo = &self.config.topology;
        let layout = &self.crypto.layout;
        let orderer_org = &topo.orderer.org;
        let peers = self
            .peers
            .iter()
            .map(|p| PeerSummary {
                org: p.org.clone(),
                msp_id: p.node.msp_id().to_string(),
                host: p.host.clone(),
                address: p.address.to_string(),
                url: format!("grpcs://{}", p.address),
                tls_ca_cert: layout
                    .node_dir(&p.org, NodeKind::Peer, &p.host)
                    .join("tls")
                    .join("ca.crt"),
                channels: p.node.channel_ids(),
            })
            .collect();
        let cas = self
            .cas
            .iter()
            .filter_map(|(org, _, server)| {
                let s = server.as_ref()?;
                let oc = self.crypto.org(org).ok()?;
                Some(CaSummary {
                    org: org.clone(),
                    url: s.url(),
                    ca_name: oc.ca_name(),
                    tls_ca_cert: layout.ca_home(org).join("ca-cert.pem"),
                })
            })
            .collect();
        let channels = topo
            .channels
            .iter()
            .map(|c| ChannelSummary {
                name: c.name.clone(),
                members: c.members.clone(),
                height: self
                    .orderer
                    .chain(&c.name)
                    .map_or(0, |ch| ch.ledger().height()),
            })
            .collect();
        let mut msp = BTreeMap::new();
        let mut profiles = BTreeMap::new();
        for o in &topo.organizations {
            profiles.insert(o.name.clone(), layout.profile(&o.name));
            let mut users = BTreeMap::new();
            users.insert("Admin".to_string(), layout.user_msp(&o.name, "Admin"));
            for u in o.users.keys() {
                users.insert(u.clone(), layout.user_msp(&o.name, u));
            }
            msp.insert(o.name.clone(), users);
        }
        let mut chaincodes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in self.definitions.lock().expect("definitions").iter() {
            chaincodes
                .entry(d.channel.clone())
                .or_default()
                .insert(d.definition.name.clone(), d.definition.package_id.clone());
        }
        let ohost = self
            .crypto
            .org(orderer_org)
            .map(|o| o.node_hosts()[0].clone())
            .unwrap_or_default();
        DevnetSummary {
            name: topo.name.clone(),
            data_dir: self.config.data_dir.clone(),
            orderer: self.orderer_addr.to_string(),
            orderer_tls_ca_cert: layout
                .node_dir(orderer_org, NodeKind::Orderer, &ohost)
                .join("tls")
                .join("ca.crt"),
            orderer_host: ohost,
            peers,
            cas,
            channels,
            profiles,
            msp,
            chaincodes,
            startup_ms: self.startup.as_millis() as u64,
        }
    }

    /// Stops every server, the CAs and the orderer (pending blocks are written first).
    pub async fn down(mut self) {
        for s in &mut self.servers {
            if let Some(tx) = s.shutdown.take() {
                let _ = tx.send(());
            }
        }
        // One grace period for all servers together; whatever still runs then (a client
        // holding a stream open) is stopped hard.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        for s in self.servers.drain(..) {
            let abort = s.task.abort_handle();
            if tokio::time::timeout_at(deadline, s.task).await.is_err() {
                abort.abort();
            }
        }
        for (_, _, server) in &mut self.cas {
            if let Some(s) = server.take() {
                s.stop().await;
            }
        }
        self.orderer.halt();
        let _ = std::fs::remove_file(summary_path(&self.config.data_dir));
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(tx) = s.shutdown.take() {
                let _ = tx.send(());
            }
            s.task.abort();
        }
        self.orderer.halt();
        let _ = std::fs::remove_file(summary_path(&self.config.data_dir));
    }
}

/// A serialized `ApplicationPolicy`: the signature policy `text`, or the channel's
/// `/Channel/Application/Endorsement` (a majority of the organisations) when `None`.
fn application_policy_bytes(text: Option<&str>) -> Result<Vec<u8>, DevnetError> {
    let policy = match text {
        Some(text) => application_policy::Type::SignaturePolicy(
            fabric_common::policy::parse_policy(text)
                .map_err(|e| DevnetError::InvalidRequest(format!("policy {text}: {e}")))?,
        ),
        None => application_policy::Type::ChannelConfigPolicyReference(
            "/Channel/Application/Endorsement".into(),
        ),
    };
    Ok(ApplicationPolicy {
        r#type: Some(policy),
    }
    .encode_to_vec())
}

fn summary_path(dir: &Path) -> PathBuf {
    dir.join("devnet.json")
}

fn definitions_path(dir: &Path) -> PathBuf {
    dir.join("chaincodes.json")
}

fn load_definitions(dir: &Path) -> Result<Vec<StoredDefinition>, DevnetError> {
    let path = definitions_path(dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(io(path.display().to_string()))?;
    serde_json::from_str(&text)
        .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))
}

fn store_definitions(dir: &Path, defs: &[StoredDefinition]) -> Result<(), DevnetError> {
    let path = definitions_path(dir);
    let text = serde_json::to_string_pretty(defs)
        .map_err(|e| DevnetError::Corrupt(path.display().to_string(), e.to_string()))?;
    // Write then rename, so a crash never leaves a half-written file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io(tmp.display().to_string()))?;
    std::fs::rename(&tmp, &path).map_err(io(path.display().to_string()))
}
