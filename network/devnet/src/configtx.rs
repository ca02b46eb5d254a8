//! Channel configuration and genesis blocks, as Fabric's `configtxgen` builds them
//! (`internal/configtxgen/encoder` and `genesis`), and reading a configuration back (Fabric's
//! `channelconfig` bundle: MSPs, policies, batch settings).
//!
//! The tree is `/Channel/{Application/{<Org>...}, Orderer/{<OrdererOrg>}}` with:
//!
//! * `/Channel`: `HashingAlgorithm` SHA256, `BlockDataHashingStructure` width 2³²−1,
//!   `Capabilities` V3_0; policies Readers/Writers (ImplicitMeta ANY), Admins (MAJORITY). No global
//!   `OrdererAddresses`: Fabric v3 refuses them with the V3_0 capability; orderer endpoints are
//!   per organisation (`Endpoints`).
//! * `/Channel/Application`: `Capabilities` V2_5; Readers/Writers ANY, Admins MAJORITY,
//!   Endorsement and LifecycleEndorsement MAJORITY Endorsement.
//! * `/Channel/Orderer`: `ConsensusType` etcdraft (Fabric v3 has no solo) with one consenter,
//!   `BatchSize`, `BatchTimeout`, `ChannelRestrictions`, `Capabilities` V2_0; Readers/Writers
//!   ANY, Admins MAJORITY, BlockValidation ANY Writers.
//! * each organisation: `MSP` (an `msp.MSPConfig` with NodeOUs), policies Readers and Writers
//!   (`member`), Admins (`admin`), Endorsement (`peer`; orderer orgs have none).

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_common::msp::Principal;
use fabric_protos::common::{
    implicit_meta_policy, msp_role::MspRoleType, policy::PolicyType, signature_policy, Block,
    BlockDataHashingStructure, Capabilities, Capability, ChannelHeader, Config, ConfigEnvelope,
    ConfigGroup, ConfigPolicy, ConfigValue, Envelope, HashingAlgorithm, HeaderType,
    ImplicitMetaPolicy, LastConfig, Metadata, OrdererAddresses, OrdererBlockMetadata, Payload,
    Policy, SignatureHeader, SignaturePolicy, SignaturePolicyEnvelope,
};
use fabric_protos::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};
use fabric_protos::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::ledger::block::new_block;
use crate::msp::policy::{PolicyError, PolicyManager};
use crate::msp::{ChannelMspError, ChannelMsps};
use crate::orderer::blockcutter::BatchConfig;

/// An organisation's MSP material for channel configuration (what `configtxgen` reads from an
/// MSP directory).
#[derive(Debug, Clone, Default)]
pub struct OrgMsp {
    /// The organisation's name (its config group's key).
    pub name: String,
    /// MSP ID.
    pub msp_id: String,
    /// Root CA certificates (PEM).
    pub ca_certs: Vec<String>,
    /// Intermediate CA certificates (PEM).
    pub intermediate_certs: Vec<String>,
    /// Explicit admin certificates (PEM); usually empty with NodeOUs.
    pub admin_certs: Vec<String>,
    /// TLS root CA certificates (PEM).
    pub tls_ca_certs: Vec<String>,
    /// Whether NodeOU classification (client/peer/admin/orderer OUs) is enabled.
    pub node_ous: bool,
    /// Certificate revocation lists (PEM or DER).
    pub crls: Vec<Vec<u8>>,
}

/// The ordering organisation and its node.
#[derive(Debug, Clone, Default)]
pub struct OrdererOrgInput {
    /// The organisation's MSP.
    pub msp: OrgMsp,
    /// Orderer endpoints `host:port` (the org's `Endpoints`).
    pub endpoints: Vec<String>,
    /// The Raft consenter: host, port, client and server TLS certificates (PEM).
    pub consenter: (String, u32, Vec<u8>, Vec<u8>),
}

/// Everything a channel's genesis configuration needs.
#[derive(Debug, Clone)]
pub struct ChannelInput {
    /// The channel name.
    pub channel_id: String,
    /// The member organisations.
    pub application_orgs: Vec<OrgMsp>,
    /// The ordering organisation.
    pub orderer: OrdererOrgInput,
    /// Block cutting settings.
    pub batch: BatchConfig,
}

/// Errors reading a channel configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigTxError {
    /// The block or envelope is not a config transaction.
    #[error("not a configuration block: {0}")]
    NotConfig(String),
    /// A value could not be decoded.
    #[error("decoding {0}: {1}")]
    Decode(&'static str, prost::DecodeError),
    /// The MSPs could not be built.
    #[error(transparent)]
    Msp(#[from] ChannelMspError),
    /// A policy could not be compiled.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

const ADMINS: &str = "Admins";

/// Fabric's `MSPConfig` for an organisation (as configtxgen encodes an MSP directory).
pub fn msp_config(org: &OrgMsp) -> MspConfig {
    let ou = |name: &str| FabricOuIdentifier {
        certificate: org
            .ca_certs
            .first()
            .map(|c| c.as_bytes().to_vec())
            .unwrap_or_default(),
        organizational_unit_identifier: name.to_string(),
    };
    let fabric = FabricMspConfig {
        name: org.msp_id.clone(),
        root_certs: org.ca_certs.iter().map(|c| c.as_bytes().to_vec()).collect(),
        intermediate_certs: org
            .intermediate_certs
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect(),
        admins: org
            .admin_certs
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect(),
        revocation_list: org.crls.clone(),
        signing_identity: None,
        organizational_unit_identifiers: vec![],
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".into(),
            identity_identifier_hash_function: "SHA256".into(),
        }),
        tls_root_certs: org
            .tls_ca_certs
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect(),
        tls_intermediate_certs: vec![],
        fabric_node_ous: org.node_ous.then(|| FabricNodeOUs {
            enable: true,
            client_ou_identifier: Some(ou("client")),
            peer_ou_identifier: Some(ou("peer")),
            admin_ou_identifier: Some(ou("admin")),
            orderer_ou_identifier: Some(ou("orderer")),
        }),
    };
    MspConfig {
        r#type: 0,
        config: fabric.encode_to_vec(),
    }
}

/// `OR('<msp>.<role>')` as a `SignaturePolicyEnvelope` (what `configtxgen` compiles it to).
pub fn signed_by_role(msp_id: &str, role: MspRoleType) -> SignaturePolicyEnvelope {
    signed_by_any(&[(msp_id, role)])
}

/// `OR('<msp1>.<role1>', ...)`: one of the listed principals.
pub fn signed_by_any(principals: &[(&str, MspRoleType)]) -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n: 1,
                rules: (0..principals.len())
                    .map(|i| SignaturePolicy {
                        r#type: Some(signature_policy::Type::SignedBy(i as i32)),
                    })
                    .collect(),
            })),
        }),
        identities: principals
            .iter()
            .map(|(m, r)| Principal::role(*m, *r).to_proto())
            .collect(),
    }
}

fn value<M: Message>(m: &M) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: m.encode_to_vec(),
        mod_policy: ADMINS.into(),
    }
}

fn implicit(sub: &str, rule: implicit_meta_policy::Rule) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(Policy {
            r#type: PolicyType::ImplicitMeta as i32,
            value: ImplicitMetaPolicy {
                sub_policy: sub.into(),
                rule: rule as i32,
            }
            .encode_to_vec(),
        }),
        mod_policy: ADMINS.into(),
    }
}

fn signature(env: SignaturePolicyEnvelope) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(Policy {
            r#type: PolicyType::Signature as i32,
            value: env.encode_to_vec(),
        }),
        mod_policy: ADMINS.into(),
    }
}

fn capabilities(name: &str) -> ConfigValue {
    let mut caps = BTreeMap::new();
    caps.insert(name.to_string(), Capability {});
    value(&Capabilities { capabilities: caps })
}

fn standard_policies(group: &mut ConfigGroup) {
    use implicit_meta_policy::Rule;
    group
        .policies
        .insert("Readers".into(), implicit("Readers", Rule::Any));
    group
        .policies
        .insert("Writers".into(), implicit("Writers", Rule::Any));
    group
        .policies
        .insert("Admins".into(), implicit("Admins", Rule::Majority));
}

fn org_group(org: &OrgMsp, endorsement: bool) -> ConfigGroup {
    let mut g = ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    };
    g.values.insert("MSP".into(), value(&msp_config(org)));
    let id = org.msp_id.as_str();
    g.policies.insert(
        "Readers".into(),
        signature(signed_by_role(id, MspRoleType::Member)),
    );
    g.policies.insert(
        "Writers".into(),
        signature(signed_by_role(id, MspRoleType::Member)),
    );
    g.policies.insert(
        "Admins".into(),
        signature(signed_by_role(id, MspRoleType::Admin)),
    );
    if endorsement {
        g.policies.insert(
            "Endorsement".into(),
            signature(signed_by_role(id, MspRoleType::Peer)),
        );
    }
    g
}

/// Formats a duration as Go's `time.Duration.String()` does for whole milliseconds / seconds.
fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// The channel configuration tree.
pub fn channel_config(input: &ChannelInput) -> Config {
    use implicit_meta_policy::Rule;
    let mut app = ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    };
    standard_policies(&mut app);
    app.policies.insert(
        "Endorsement".into(),
        implicit("Endorsement", Rule::Majority),
    );
    app.policies.insert(
        "LifecycleEndorsement".into(),
        implicit("Endorsement", Rule::Majority),
    );
    app.values
        .insert("Capabilities".into(), capabilities("V2_5"));
    for org in &input.application_orgs {
        app.groups.insert(org.name.clone(), org_group(org, true));
    }

    let mut ord = ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    };
    standard_policies(&mut ord);
    ord.policies
        .insert("BlockValidation".into(), implicit("Writers", Rule::Any));
    let (host, port, client_tls, server_tls) = input.orderer.consenter.clone();
    let raft = fabric_protos::etcdraft::ConfigMetadata {
        consenters: vec![fabric_protos::etcdraft::Consenter {
            host,
            port,
            client_tls_cert: client_tls,
            server_tls_cert: server_tls,
        }],
        options: Some(fabric_protos::etcdraft::Options {
            tick_interval: "500ms".into(),
            election_tick: 10,
            heartbeat_tick: 1,
            max_inflight_blocks: 5,
            snapshot_interval_size: 16 * 1024 * 1024,
        }),
    };
    ord.values.insert(
        "ConsensusType".into(),
        value(&ConsensusType {
            r#type: "etcdraft".into(),
            metadata: raft.encode_to_vec(),
            state: 0,
        }),
    );
    ord.values.insert(
        "BatchSize".into(),
        value(&BatchSize {
            max_message_count: input.batch.max_message_count,
            absolute_max_bytes: input.batch.absolute_max_bytes,
            preferred_max_bytes: input.batch.preferred_max_bytes,
        }),
    );
    ord.values.insert(
        "BatchTimeout".into(),
        value(&BatchTimeout {
            timeout: go_duration(input.batch.batch_timeout),
        }),
    );
    ord.values.insert(
        "ChannelRestrictions".into(),
        value(&ChannelRestrictions { max_count: 0 }),
    );
    ord.values
        .insert("Capabilities".into(), capabilities("V2_0"));
    let mut oorg = org_group(&input.orderer.msp, false);
    oorg.values.insert(
        "Endpoints".into(),
        value(&OrdererAddresses {
            addresses: input.orderer.endpoints.clone(),
        }),
    );
    ord.groups.insert(input.orderer.msp.name.clone(), oorg);

    let mut channel = ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    };
    standard_policies(&mut channel);
    channel.values.insert(
        "HashingAlgorithm".into(),
        value(&HashingAlgorithm {
            name: "SHA256".into(),
        }),
    );
    channel.values.insert(
        "BlockDataHashingStructure".into(),
        value(&BlockDataHashingStructure { width: u32::MAX }),
    );
    channel
        .values
        .insert("Capabilities".into(), capabilities("V3_0"));
    channel.groups.insert("Application".into(), app);
    channel.groups.insert("Orderer".into(), ord);
    Config {
        sequence: 0,
        channel_group: Some(channel),
    }
}

/// The genesis block of a channel, as `configtxgen -outputBlock` builds it: one unsigned CONFIG
/// envelope, LAST_CONFIG 0, and SIGNATURES holding an unsigned `OrdererBlockMetadata`.
pub fn genesis_block(input: &ChannelInput) -> Block {
    let nonce: [u8; 24] = rand::random();
    let shdr = SignatureHeader {
        creator: Vec::new(),
        nonce: nonce.to_vec(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let chdr = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1,
        timestamp: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: 0,
        }),
        channel_id: input.channel_id.clone(),
        tx_id: hex::encode(Sha256::digest(nonce)),
        epoch: 0,
        extension: Vec::new(),
        tls_cert_hash: Vec::new(),
    };
    let payload = Payload {
        header: Some(fabric_protos::common::Header {
            channel_header: chdr.encode_to_vec(),
            signature_header: shdr.encode_to_vec(),
        }),
        data: ConfigEnvelope {
            config: Some(channel_config(input)),
            last_update: None,
        }
        .encode_to_vec(),
    };
    let env = Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    };
    let mut block = new_block(0, Vec::new(), vec![env.encode_to_vec()]);
    let md = &mut block
        .metadata
        .as_mut()
        .expect("new_block sets metadata")
        .metadata;
    md[fabric_protos::common::BlockMetadataIndex::LastConfig as usize] = Metadata {
        value: LastConfig { index: 0 }.encode_to_vec(),
        signatures: vec![],
    }
    .encode_to_vec();
    md[fabric_protos::common::BlockMetadataIndex::Signatures as usize] = Metadata {
        value: OrdererBlockMetadata {
            last_config: Some(LastConfig { index: 0 }),
            consenter_metadata: Vec::new(),
        }
        .encode_to_vec(),
        signatures: vec![],
    }
    .encode_to_vec();
    block
}

/// What a node reads from a channel configuration (Fabric's `channelconfig.Bundle`, the parts
/// the devnet uses).
#[derive(Debug, Clone)]
pub struct ChannelBundle {
    /// Channel name.
    pub channel_id: String,
    /// The configuration.
    pub config: Config,
    /// The MSPs of every organisation (application and orderer).
    pub msps: Arc<ChannelMsps>,
    /// The policies by path.
    pub policies: PolicyManager,
    /// Block cutting settings.
    pub batch: BatchConfig,
}

fn decode<M: Message + Default>(what: &'static str, b: &[u8]) -> Result<M, ConfigTxError> {
    M::decode(b).map_err(|e| ConfigTxError::Decode(what, e))
}

impl ChannelBundle {
    /// Reads the configuration held by a config block (e.g. a genesis block).
    pub fn from_block(block: &Block) -> Result<Self, ConfigTxError> {
        let data = block
            .data
            .as_ref()
            .and_then(|d| d.data.first())
            .ok_or_else(|| ConfigTxError::NotConfig("empty block".into()))?;
        let env: Envelope = decode("Envelope", data)?;
        let payload: Payload = decode("Payload", &env.payload)?;
        let hdr = payload
            .header
            .ok_or_else(|| ConfigTxError::NotConfig("no header".into()))?;
        let chdr: ChannelHeader = decode("ChannelHeader", &hdr.channel_header)?;
        if chdr.r#type != HeaderType::Config as i32 {
            return Err(ConfigTxError::NotConfig(format!(
                "header type {}",
                chdr.r#type
            )));
        }
        let ce: ConfigEnvelope = decode("ConfigEnvelope", &payload.data)?;
        let config = ce
            .config
            .ok_or_else(|| ConfigTxError::NotConfig("no config".into()))?;
        Self::from_config(&chdr.channel_id, config)
    }

    /// Reads a configuration tree.
    pub fn from_config(channel_id: &str, config: Config) -> Result<Self, ConfigTxError> {
        let root = config
            .channel_group
            .clone()
            .ok_or_else(|| ConfigTxError::NotConfig("no channel group".into()))?;
        let mut msp_configs = Vec::new();
        for section in ["Application", "Orderer"] {
            if let Some(g) = root.groups.get(section) {
                for org in g.groups.values() {
                    if let Some(v) = org.values.get("MSP") {
                        msp_configs.push(decode::<MspConfig>("MSPConfig", &v.value)?);
                    }
                }
            }
        }
        let msps = Arc::new(ChannelMsps::from_configs(msp_configs.iter())?);
        let policies = PolicyManager::from_group("Channel", &root)?;
        let ord = root.groups.get("Orderer");
        let bs: BatchSize = match ord.and_then(|o| o.values.get("BatchSize")) {
            Some(v) => decode("BatchSize", &v.value)?,
            None => BatchSize {
                max_message_count: 500,
                absolute_max_bytes: 10 * 1024 * 1024,
                preferred_max_bytes: 2 * 1024 * 1024,
            },
        };
        let timeout = match ord.and_then(|o| o.values.get("BatchTimeout")) {
            Some(v) => {
                parse_go_duration(&decode::<BatchTimeout>("BatchTimeout", &v.value)?.timeout)
            }
            None => None,
        }
        .unwrap_or(std::time::Duration::from_secs(2));
        Ok(ChannelBundle {
            channel_id: channel_id.to_string(),
            config,
            msps,
            policies,
            batch: BatchConfig {
                max_message_count: bs.max_message_count,
                absolute_max_bytes: bs.absolute_max_bytes,
                preferred_max_bytes: bs.preferred_max_bytes,
                batch_timeout: timeout,
            },
        })
    }
}

/// Parses the subset of Go duration strings configtxgen writes (`250ms`, `2s`, `1.5s`, `1m`).
fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_round_trip() {
        use std::time::Duration;
        for (d, s) in [(250, "250ms"), (2000, "2s"), (1500, "1.5s")] {
            assert_eq!(go_duration(Duration::from_millis(d)), s);
            assert_eq!(parse_go_duration(s), Some(Duration::from_millis(d)));
        }
    }
}
