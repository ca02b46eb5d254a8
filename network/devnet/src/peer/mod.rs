//! A devnet peer: its identity, the channels it joined (ledger, committer, chaincode
//! definitions), the CCaaS chaincodes it hosts, and the endorser.
//!
//! [`PeerNode`] is what the devnet's services are built on: the gRPC Endorser service
//! ([`PeerNode::endorser_service`]), the gateway (in-process [`PeerNode::process_proposal`]),
//! Deliver (over [`PeerChannel::ledger`]) and the orderer's fan-out
//! ([`PeerChannel::deliver_block`]).

pub mod transient;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};

use fabric_common::identity::SigningIdentity;
use fabric_protos::common::{msp_principal::Classification, Block, MspPrincipal, MspRole};
use fabric_protos::protos::{
    collection_config, collection_policy_config, CollectionConfigPackage, ProposalResponse,
    SignedProposal, StaticCollectionConfig,
};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::chaincode::{ChaincodeError, ChaincodeResolver, ChaincodeSupport, ConnectionInfo};
use crate::committer::{ChannelContext, CommitError, Committer, EndorsementPolicy};
use crate::configtx::{ChannelBundle, ConfigTxError};
use crate::ledger::{CommitEvent, Ledger, LedgerError};
use crate::msp::policy::{PolicyError, SignaturePolicyRule};
pub use transient::TransientStore;

/// Errors of a peer's channel operations.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A block could not be committed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The channel configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigTxError),
    /// A policy of a chaincode definition is malformed.
    #[error("chaincode definition: {0}")]
    Policy(#[from] PolicyError),
    /// Chaincode support refused the package (e.g. a bad connection.json).
    #[error(transparent)]
    Chaincode(#[from] ChaincodeError),
    /// Chaincode definitions in `_lifecycle` state could not be applied.
    #[error("_lifecycle: {0}")]
    Lifecycle(String),
    /// The data directory could not be created.
    #[error("peer data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The peer already joined the channel (Fabric: the ledger already exists).
    #[error("ledger [{0}] already exists with state [ACTIVE]")]
    AlreadyJoined(String),
    /// The genesis block is not for a channel this peer can join.
    #[error("invalid genesis block: {0}")]
    BadGenesis(String),
}

/// How a peer is set up.
#[derive(Debug, Clone)]
pub struct PeerNodeConfig {
    /// The organisation's MSP ID.
    pub msp_id: String,
    /// The peer's name, e.g. `peer0.police.elicense.gov`.
    pub name: String,
    /// `host:port` the peer is reachable at (reported in errors and discovery).
    pub address: String,
    /// The peer's signing identity (endorsements).
    pub signer: SigningIdentity,
    /// Directory for the peer's ledgers (one redb file per channel).
    pub data_dir: PathBuf,
    /// The private data store shared by the devnet's peers.
    pub transient: TransientStore,
}

/// A chaincode definition on a channel (what `_lifecycle` commits) with the package this peer's
/// organisation installed for it and where that package's server listens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaincodeDefinition {
    /// Chaincode name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Definition sequence.
    pub sequence: i64,
    /// Package ID (`label:sha256-hex`) the chaincode server registers with.
    pub package_id: String,
    /// The CCaaS `connection.json`.
    pub connection: ConnectionInfo,
    /// Serialized `protos.ApplicationPolicy`.
    #[serde(with = "b64")]
    pub endorsement_policy: Vec<u8>,
    /// Private data collections.
    #[serde(with = "proto_b64")]
    pub collections: CollectionConfigPackage,
    /// Whether `Init` must be invoked first (`--init-required`).
    #[serde(default)]
    pub init_required: bool,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

mod proto_b64 {
    use fabric_protos::protos::CollectionConfigPackage;
    use prost::Message;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &CollectionConfigPackage, s: S) -> Result<S::Ok, S::Error> {
        super::b64::serialize(&v.encode_to_vec(), s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<CollectionConfigPackage, D::Error> {
        let b = super::b64::deserialize(d)?;
        CollectionConfigPackage::decode(b.as_slice()).map_err(serde::de::Error::custom)
    }
}

/// A collection as the peer uses it: member organisations and access rules.
#[derive(Debug, Clone)]
pub struct CollectionInfo {
    /// The configuration.
    pub config: StaticCollectionConfig,
    /// MSP IDs named by the member policy.
    pub member_orgs: Vec<String>,
    member_policy: Option<Arc<SignaturePolicyRule>>,
}

impl CollectionInfo {
    fn new(config: StaticCollectionConfig) -> Result<Self, PolicyError> {
        let env = match config
            .member_orgs_policy
            .as_ref()
            .and_then(|p| p.payload.as_ref())
        {
            Some(collection_policy_config::Payload::SignaturePolicy(env)) => env.clone(),
            None => {
                return Err(PolicyError::Malformed(format!(
                    "collection {} has no member orgs policy",
                    config.name
                )))
            }
        };
        let mut member_orgs = Vec::new();
        for p in &env.identities {
            if let Some(msp) = principal_msp(p) {
                if !member_orgs.contains(&msp) {
                    member_orgs.push(msp);
                }
            }
        }
        Ok(CollectionInfo {
            member_policy: Some(Arc::new(SignaturePolicyRule::from_envelope(&env)?)),
            config,
            member_orgs,
        })
    }

    /// Fabric's implicit per-organisation collection `_implicit_org_<MSPID>`.
    fn implicit(msp_id: &str) -> Self {
        CollectionInfo {
            config: StaticCollectionConfig {
                name: format!("{IMPLICIT_PREFIX}{msp_id}"),
                ..Default::default()
            },
            member_orgs: vec![msp_id.to_string()],
            member_policy: None,
        }
    }
}

const IMPLICIT_PREFIX: &str = "_implicit_org_";

fn principal_msp(p: &MspPrincipal) -> Option<String> {
    if p.principal_classification == Classification::Role as i32 {
        MspRole::decode(p.principal.as_slice())
            .ok()
            .map(|r| r.msp_identifier)
    } else {
        None
    }
}

/// A committed definition with its compiled parts.
#[derive(Debug, Clone)]
pub struct DefinedChaincode {
    /// The definition.
    pub definition: ChaincodeDefinition,
    /// The compiled endorsement policy.
    pub policy: EndorsementPolicy,
    /// Explicit collections by name.
    pub collections: BTreeMap<String, CollectionInfo>,
    /// Whether the definition was read from `_lifecycle` state (rather than set in-process).
    pub from_lifecycle: bool,
}

impl DefinedChaincode {
    /// The collection by name, implicit org collections included (for channel members).
    pub fn collection(&self, ctx: &ChannelContext, name: &str) -> Option<CollectionInfo> {
        if let Some(c) = self.collections.get(name) {
            return Some(c.clone());
        }
        let msp = name.strip_prefix(IMPLICIT_PREFIX)?;
        ctx.msps
            .msp(msp)
            .is_some()
            .then(|| CollectionInfo::implicit(msp))
    }
}

/// One channel as a peer holds it: ledger, committer, chaincode definitions.
pub struct PeerChannel {
    peer_name: String,
    committer: Committer,
    bundle: ChannelBundle,
    chaincodes: RwLock<HashMap<String, Arc<DefinedChaincode>>>,
    transient: TransientStore,
    support: Arc<ChaincodeSupport>,
    commit_lock: Mutex<()>,
    node: Weak<NodeInner>,
}

impl std::fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannel")
            .field("channel", &self.committer.context().channel_id)
            .field("peer", &self.peer_name)
            .finish()
    }
}

impl PeerChannel {
    /// The channel name.
    pub fn channel_id(&self) -> &str {
        &self.committer.context().channel_id
    }

    /// The channel's ledger on this peer.
    pub fn ledger(&self) -> &Ledger {
        self.committer.ledger()
    }

    /// The committer.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }

    /// The channel context (MSPs, policies, definitions' policies, collection membership).
    pub fn context(&self) -> &Arc<ChannelContext> {
        self.committer.context()
    }

    /// The channel configuration as of the genesis block.
    pub fn bundle(&self) -> &ChannelBundle {
        &self.bundle
    }

    /// Validates and commits the next block, with the private data of the collections this
    /// peer's organisation is a member of taken from the transient store. Blocking (signature
    /// checks and an fsync): call it from a blocking context.
    pub fn deliver_block(&self, block: Block) -> Result<Arc<CommitEvent>, PeerError> {
        let _serial = self.commit_lock.lock().expect("commit lock");
        let channel = self.channel_id();
        // The private data is asked for once validation has decoded the block: the committer
        // hands over the on-chain hashes of the transactions that passed its checks.
        let done = self
            .committer
            .commit_block_with(block, |txs| self.transient.for_txs(channel, txs))?;
        if done.lifecycle_invoked {
            if let Some(inner) = self.node.upgrade() {
                let node = PeerNode { inner };
                if let Err(e) = crate::lifecycle::refresh(&node, self) {
                    tracing::error!(peer = %self.peer_name, error = %e, "applying chaincode definitions");
                }
            }
        }
        let ev = done.event;
        // Whatever their validation codes, this peer is done with the block's transactions.
        self.transient.committed(
            channel,
            &self.peer_name,
            ev.number(),
            ev.txs.iter().map(|(txid, _)| txid.as_str()),
        );
        Ok(ev)
    }

    /// Defines (or redefines) a chaincode on this channel for this peer: the committer's
    /// endorsement policy and collection membership, the name → package mapping, and the
    /// package's server in chaincode support.
    pub fn define_chaincode(&self, def: ChaincodeDefinition) -> Result<(), PeerError> {
        self.set_definition(def, true, false)
    }

    /// Applies a definition read from `_lifecycle` state; the package is run only when this
    /// peer has it installed.
    pub(crate) fn apply_lifecycle_definition(
        &self,
        def: ChaincodeDefinition,
    ) -> Result<(), PeerError> {
        let installed = !def.connection.address.is_empty();
        self.set_definition(def, installed, true)
    }

    fn set_definition(
        &self,
        def: ChaincodeDefinition,
        install: bool,
        from_lifecycle: bool,
    ) -> Result<(), PeerError> {
        let policy = EndorsementPolicy::from_application_policy(&def.endorsement_policy)?;
        let mut collections = BTreeMap::new();
        for c in &def.collections.config {
            let Some(collection_config::Payload::StaticCollectionConfig(sc)) = &c.payload else {
                return Err(PolicyError::Malformed("empty collection config".into()).into());
            };
            collections.insert(sc.name.clone(), CollectionInfo::new(sc.clone())?);
        }
        if install {
            self.support
                .install(&def.package_id, def.connection.clone())?;
        }
        let ctx = self.context();
        ctx.define_chaincode(&def.name, policy.clone());
        for (name, c) in &collections {
            ctx.define_collection(&def.name, name, c.member_orgs.iter().cloned());
            let coll_policy = match &c.config.endorsement_policy {
                Some(ap) if ap.r#type.is_some() => Some(
                    EndorsementPolicy::from_application_policy(&ap.encode_to_vec())?,
                ),
                _ => None,
            };
            ctx.define_collection_policy(&def.name, name, coll_policy);
        }
        self.chaincodes.write().expect("chaincodes").insert(
            def.name.clone(),
            Arc::new(DefinedChaincode {
                definition: def,
                policy,
                collections,
                from_lifecycle,
            }),
        );
        Ok(())
    }

    /// The definition of chaincode `name`, if defined.
    pub fn chaincode(&self, name: &str) -> Option<Arc<DefinedChaincode>> {
        self.chaincodes
            .read()
            .expect("chaincodes")
            .get(name)
            .cloned()
    }

    /// Every defined chaincode, by name.
    pub fn chaincodes(&self) -> Vec<Arc<DefinedChaincode>> {
        let mut v: Vec<_> = self
            .chaincodes
            .read()
            .expect("chaincodes")
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.definition.name.cmp(&b.definition.name));
        v
    }
}

pub(crate) struct NodeInner {
    pub(crate) config: PeerNodeConfig,
    pub(crate) channels: RwLock<HashMap<String, Arc<PeerChannel>>>,
    pub(crate) support: Arc<ChaincodeSupport>,
    pub(crate) packages: crate::lifecycle::PackageStore,
    /// Whether the signing identity's private key was found to match its certificate when the
    /// peer started: only then are its endorsement signatures remembered as verified.
    pub(crate) key_pair_checked: bool,
}

/// A peer of the devnet; cheap to clone.
#[derive(Clone)]
pub struct PeerNode {
    pub(crate) inner: Arc<NodeInner>,
}

impl std::fmt::Debug for PeerNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNode")
            .field("name", &self.inner.config.name)
            .field("msp_id", &self.inner.config.msp_id)
            .finish()
    }
}

/// Resolves chaincode names and collection access for chaincode support from the node's
/// channels (held weakly: the node owns the support).
struct NodeResolver(Weak<NodeInner>);

impl NodeResolver {
    fn channel(&self, channel: &str) -> Option<Arc<PeerChannel>> {
        self.0
            .upgrade()?
            .channels
            .read()
            .expect("channels")
            .get(channel)
            .cloned()
    }
}

impl ChaincodeResolver for NodeResolver {
    fn resolve(&self, channel: &str, name: &str) -> Option<(String, String)> {
        let d = self.channel(channel)?.chaincode(name)?;
        Some((
            d.definition.package_id.clone(),
            d.definition.version.clone(),
        ))
    }

    fn channel_simulator(
        &self,
        channel: &str,
        txid: &str,
        creator: &[u8],
    ) -> Result<crate::endorser::simulator::TxSimulator, String> {
        let ch = self
            .channel(channel)
            .ok_or_else(|| format!("failed to find ledger for channel: {channel}"))?;
        let ctx = ch.context();
        let id = ctx.msps.deserialize(creator).map_err(|e| e.to_string())?;
        const WRITERS: &str = "/Channel/Application/Writers";
        if !ctx
            .policies
            .evaluate(WRITERS, &ctx.msps, std::slice::from_ref(&id))
            .unwrap_or(false)
        {
            return Err(format!("Failed evaluating policy on signed data during check policy on channel [{channel}] with policy [{WRITERS}]: [signature set did not satisfy policy]"));
        }
        let snap = ch.ledger().snapshot().map_err(|e| e.to_string())?;
        Ok(crate::endorser::simulator::TxSimulator::new(snap, txid))
    }

    fn collection_access(
        &self,
        channel: &str,
        name: &str,
        coll: &str,
        creator: &[u8],
    ) -> Result<(bool, bool), String> {
        let not_found = || format!("collection {channel}/{name}/{coll} could not be found");
        let ch = self.channel(channel).ok_or_else(not_found)?;
        let cc = ch.chaincode(name).ok_or_else(not_found)?;
        let info = cc.collection(ch.context(), coll).ok_or_else(not_found)?;
        collection_permission(ch.context(), &info, creator)
    }
}

/// Fabric's `RetrieveReadWritePermission`: a member of the collection may read and write;
/// others as `memberOnlyRead` / `memberOnlyWrite` allow.
fn collection_permission(
    ctx: &ChannelContext,
    info: &CollectionInfo,
    creator: &[u8],
) -> Result<(bool, bool), String> {
    let id = ctx.msps.deserialize(creator).map_err(|e| e.to_string())?;
    let member = match &info.member_policy {
        Some(rule) => rule.evaluate(&ctx.msps, std::slice::from_ref(&id)),
        None => id.is_valid() && info.member_orgs.iter().any(|m| m == id.msp_id()),
    };
    if member {
        return Ok((true, true));
    }
    Ok((
        !info.config.member_only_read,
        !info.config.member_only_write,
    ))
}

impl PeerNode {
    /// A peer with no channels yet, with Fabric's default chaincode execute timeout.
    pub fn new(config: PeerNodeConfig) -> Self {
        Self::with_execute_timeout(config, crate::chaincode::DEFAULT_EXECUTE_TIMEOUT)
    }

    /// A peer whose chaincode executions time out after `timeout` (Fabric's
    /// `chaincode.executetimeout`).
    pub fn with_execute_timeout(config: PeerNodeConfig, timeout: std::time::Duration) -> Self {
        let support = Arc::new(ChaincodeSupport::new(timeout));
        let packages = crate::lifecycle::PackageStore::open(
            config.data_dir.join("lifecycle").join("chaincodes"),
        );
        for p in packages.list() {
            if let Err(e) = support.install(&p.package_id, p.connection.clone()) {
                tracing::warn!(package_id = %p.package_id, error = %e, "installed package not usable");
            }
        }
        let key_pair_checked = config.signer.check_key().is_ok();
        let inner = Arc::new(NodeInner {
            config,
            channels: RwLock::new(HashMap::new()),
            support,
            packages,
            key_pair_checked,
        });
        inner
            .support
            .set_resolver(Arc::new(NodeResolver(Arc::downgrade(&inner))));
        PeerNode { inner }
    }

    /// The organisation's MSP ID.
    pub fn msp_id(&self) -> &str {
        &self.inner.config.msp_id
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// `host:port` the peer is reachable at.
    pub fn address(&self) -> &str {
        &self.inner.config.address
    }

    /// The peer's signing identity.
    pub fn signer(&self) -> &SigningIdentity {
        &self.inner.config.signer
    }

    /// Signs `message` as this peer; the signature is remembered as verified (see
    /// [`crate::msp::sigcache::remember_own`]) when the peer's key pair checked out at start.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, fabric_common::crypto::CryptoError> {
        use fabric_common::crypto::Signer as _;
        let signer = &self.inner.config.signer;
        // `sign` rather than `sign_digest`: signing whole messages takes the faster ECDSA path.
        let signature = signer.sign(message)?;
        if self.inner.key_pair_checked {
            crate::msp::sigcache::remember_own(signer.identity().public_key(), message, &signature);
        }
        Ok(signature)
    }

    /// The chaincode packages installed with `_lifecycle`.
    pub fn packages(&self) -> &crate::lifecycle::PackageStore {
        &self.inner.packages
    }

    /// Stops the peer's chaincode connections (the devnet is going down); the peer stays usable
    /// and dials again on the next proposal.
    pub fn shutdown(&self) {
        self.inner.support.close_all();
    }

    /// The chaincode servers this peer hosts.
    pub fn chaincode_support(&self) -> &Arc<ChaincodeSupport> {
        &self.inner.support
    }

    /// Joins a channel from its genesis block: opens (or creates) the channel's ledger under
    /// the data directory and commits the genesis block when the ledger is new. On an existing
    /// ledger the configuration is read from its own block 0.
    pub fn join_channel(&self, genesis: &Block) -> Result<Arc<PeerChannel>, PeerError> {
        let bundle = ChannelBundle::from_block(genesis)?;
        let channel_id = bundle.channel_id.clone();
        if channel_id.is_empty() {
            return Err(PeerError::BadGenesis("no channel ID".into()));
        }
        let mut channels = self.inner.channels.write().expect("channels");
        if channels.contains_key(&channel_id) {
            return Err(PeerError::AlreadyJoined(channel_id));
        }
        std::fs::create_dir_all(&self.inner.config.data_dir)?;
        let path = self
            .inner
            .config
            .data_dir
            .join(format!("{channel_id}.redb"));
        let ledger = Ledger::open(&path, &channel_id)?;
        let bundle = if ledger.height() > 0 {
            let first = ledger
                .block(0)?
                .ok_or_else(|| PeerError::BadGenesis("ledger has no block 0".into()))?;
            ChannelBundle::from_block(&first)?
        } else {
            bundle
        };
        let ctx = Arc::new(ChannelContext::new(
            &channel_id,
            bundle.msps.clone(),
            bundle.policies.clone(),
            &self.inner.config.msp_id,
        ));
        // `_lifecycle`'s own policies: its public writes need the lifecycle endorsement policy,
        // an org's approvals (its implicit collection) that org's endorsement policy.
        ctx.define_chaincode(
            crate::lifecycle::LIFECYCLE,
            EndorsementPolicy::ChannelConfig(crate::lifecycle::LIFECYCLE_ENDORSEMENT_REF.into()),
        );
        for (org, msp) in crate::lifecycle::application_orgs(&bundle) {
            ctx.define_collection_policy(
                crate::lifecycle::LIFECYCLE,
                &crate::lifecycle::implicit_collection(&msp),
                Some(EndorsementPolicy::ChannelConfig(format!(
                    "/Channel/Application/{org}/Endorsement"
                ))),
            );
        }
        let committer = Committer::new(ledger.clone(), ctx);
        if ledger.height() == 0 {
            committer.commit_genesis(genesis.clone())?;
        }
        self.inner
            .config
            .transient
            .register_peer(&channel_id, &self.inner.config.name);
        let ch = Arc::new(PeerChannel {
            peer_name: self.inner.config.name.clone(),
            committer,
            bundle,
            chaincodes: RwLock::new(HashMap::new()),
            transient: self.inner.config.transient.clone(),
            support: self.inner.support.clone(),
            commit_lock: Mutex::new(()),
            node: Arc::downgrade(&self.inner),
        });
        channels.insert(channel_id, ch.clone());
        drop(channels);
        // Definitions are ledger state: a restarted peer runs what its channel defines.
        crate::lifecycle::refresh(self, &ch).map_err(PeerError::Lifecycle)?;
        Ok(ch)
    }

    /// A joined channel.
    pub fn channel(&self, channel_id: &str) -> Option<Arc<PeerChannel>> {
        self.inner
            .channels
            .read()
            .expect("channels")
            .get(channel_id)
            .cloned()
    }

    /// The joined channels' names, sorted.
    pub fn channel_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .channels
            .read()
            .expect("channels")
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Endorses a signed proposal as Fabric's endorser does (see [`crate::endorser`]).
    pub async fn process_proposal(
        &self,
        signed: SignedProposal,
    ) -> Result<ProposalResponse, tonic::Status> {
        crate::endorser::process_proposal(self, signed).await
    }

    /// The gRPC Endorser service of this peer.
    pub fn endorser_service(
        &self,
    ) -> fabric_protos::protos::endorser_server::EndorserServer<crate::endorser::EndorserService>
    {
        crate::endorser::EndorserService::server(self.clone())
    }
}
