//! The network topology file (`fixtures/topology.toml`): organisations, channels, the orderer and
//! the chaincode definition. The same file drives the devnet and the real-Fabric network.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Errors reading a topology file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("reading topology {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a topology.
    #[error("parsing topology: {0}")]
    Parse(#[from] toml::de::Error),
    /// The file parses but is inconsistent.
    #[error("invalid topology: {0}")]
    Invalid(String),
}

/// A whole network description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topology {
    /// The network's name.
    pub name: String,
    /// The ordering service.
    pub orderer: OrdererSpec,
    /// Role attribute settings.
    pub roles: RolesSpec,
    /// The member organisations.
    pub organizations: Vec<OrgSpec>,
    /// The channels.
    pub channels: Vec<ChannelSpec>,
    /// The chaincode deployed on every channel.
    pub chaincode: ChaincodeSpec,
}

/// The ordering service organisation and its block cutting settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrdererSpec {
    /// Organisation name.
    pub org: String,
    /// MSP ID.
    pub msp_id: String,
    /// DNS domain of its nodes.
    pub domain: String,
    /// Number of Raft consenters on real Fabric (the devnet runs one solo orderer).
    pub consenters: u32,
    /// Block cutting.
    pub batch: BatchSpec,
}

/// Block cutting settings, as in a channel's `Orderer.BatchSize` and `BatchTimeout`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct BatchSpec {
    /// Maximum transactions per block.
    pub max_message_count: u32,
    /// A block never exceeds this many bytes of transactions.
    pub absolute_max_bytes: u32,
    /// A block is cut once it reaches this many bytes.
    pub preferred_max_bytes: u32,
    /// A non-empty pending batch is cut after this long.
    pub batch_timeout_ms: u64,
}

/// Where roles travel on certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolesSpec {
    /// The Fabric CA attribute name carrying a user's role.
    pub attribute: String,
}

/// One organisation (a department).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSpec {
    /// Short name, used in paths and channel member lists.
    pub name: String,
    /// MSP ID.
    pub msp_id: String,
    /// DNS domain of its nodes.
    pub domain: String,
    /// What the department is.
    #[serde(default)]
    pub description: String,
    /// Number of peers.
    pub peers: u32,
    /// Users enrolled at start, by name, with their role.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// A channel and its member organisations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// Channel name.
    pub name: String,
    /// Member organisation names.
    pub members: Vec<String>,
}

/// The chaincode definition applied on every channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaincodeSpec {
    /// Chaincode name.
    pub name: String,
    /// Version label.
    pub version: String,
    /// Endorsement policy; `ANY_MEMBER_PEER` expands per channel.
    pub endorsement_policy: String,
    /// Explicit collections (implicit org collections need none).
    #[serde(default)]
    pub collections: Vec<toml::Value>,
}

impl Topology {
    /// Reads and checks a topology file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks topology text.
    pub fn parse(text: &str) -> Result<Self, TopologyError> {
        let topology: Topology = toml::from_str(text)?;
        topology.check()?;
        Ok(topology)
    }

    /// The default topology shipped in `fixtures/topology.toml`.
    pub fn default_topology() -> Self {
        Self::parse(include_str!("../../../fixtures/topology.toml"))
            .expect("the shipped topology is valid")
    }

    /// Looks up an organisation by name.
    pub fn org(&self, name: &str) -> Option<&OrgSpec> {
        self.organizations.iter().find(|o| o.name == name)
    }

    /// The chaincode-level endorsement policy for a channel, in the policy language.
    pub fn endorsement_policy(&self, channel: &ChannelSpec) -> String {
        if self.chaincode.endorsement_policy != "ANY_MEMBER_PEER" {
            return self.chaincode.endorsement_policy.clone();
        }
        let principals: Vec<String> = channel
            .members
            .iter()
            .filter_map(|m| self.org(m))
            .map(|o| format!("'{}.peer'", o.msp_id))
            .collect();
        format!("OR({})", principals.join(","))
    }

    fn check(&self) -> Result<(), TopologyError> {
        let mut seen = std::collections::BTreeSet::new();
        for org in &self.organizations {
            if !seen.insert(org.msp_id.as_str()) || org.msp_id == self.orderer.msp_id {
                return Err(TopologyError::Invalid(format!(
                    "MSP ID {} is used twice",
                    org.msp_id
                )));
            }
            if org.peers == 0 {
                return Err(TopologyError::Invalid(format!("{} has no peer", org.name)));
            }
            for role in org.users.values() {
                if !matches!(
                    role.as_str(),
                    "issuer" | "clerk" | "auditor" | "holder" | "admin"
                ) {
                    return Err(TopologyError::Invalid(format!(
                        "{}: unknown role {role}",
                        org.name
                    )));
                }
            }
        }
        for channel in &self.channels {
            if channel.members.is_empty() {
                return Err(TopologyError::Invalid(format!(
                    "channel {} has no member",
                    channel.name
                )));
            }
            for member in &channel.members {
                if self.org(member).is_none() {
                    return Err(TopologyError::Invalid(format!(
                        "channel {} names unknown organisation {member}",
                        channel.name
                    )));
                }
            }
        }
        let batch = &self.orderer.batch;
        if batch.max_message_count == 0 || batch.preferred_max_bytes > batch.absolute_max_bytes {
            return Err(TopologyError::Invalid(
                "orderer batch: max_message_count must be positive and preferred_max_bytes <= absolute_max_bytes".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topology_loads_with_every_channel_member_known() {
        let t = Topology::default_topology();
        assert_eq!(t.organizations.len(), 7);
        let ch = t
            .channels
            .iter()
            .find(|c| c.name == "police-service")
            .unwrap();
        assert_eq!(
            t.endorsement_policy(ch),
            "OR('PublicSecurityMSP.peer','ServiceCentreMSP.peer','RegulatorMSP.peer')"
        );
    }

    #[test]
    fn unknown_channel_member_is_rejected() {
        let text = include_str!("../../../fixtures/topology.toml").replace(
            "members = [\"PublicSecurity\", \"ServiceCentre\"",
            "members = [\"Nobody\", \"ServiceCentre\"",
        );
        let err = Topology::parse(&text).unwrap_err();
        assert!(
            err.to_string().contains("unknown organisation Nobody"),
            "{err}"
        );
    }

    #[test]
    fn malformed_toml_is_a_parse_error() {
        assert!(matches!(
            Topology::parse("name = "),
            Err(TopologyError::Parse(_))
        ));
    }
}
