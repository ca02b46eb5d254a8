//! A channel's MSP manager as a peer or orderer holds it: the organisations' verifying MSPs built
//! from the channel configuration (Fabric's `mspmgmt` channel deserializer plus its identity
//! cache), with certificate revocation lists, and principal checks for policy evaluation.
//!
//! Validation rules are fabric-common's [`fabric_common::msp::Msp`] (chain to a root through
//! intermediates, not a CA, OUs and NodeOUs). This module adds what a node needs on its hot
//! path: each serialized identity is parsed, validated and classified **once** and cached, so a
//! committer evaluating several policies over the same endorser pays for the chain check once.
//! Like Fabric, validation checks the chain as of the certificate's `NotBefore + 1s`; expiry is
//! not an MSP concern (the orderer checks it on Broadcast, see `orderer`).

pub mod policy;
pub mod sigcache;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use fabric_common::identity::Identity;
use fabric_common::msp::{Msp, MspError, NodeRole, Principal};
use fabric_protos::common::msp_role::MspRoleType;
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;

/// Identities kept in the cache before it is cleared (Fabric keeps a bounded cache too).
const CACHE_LIMIT: usize = 20_000;

/// Errors building or using a channel's MSPs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelMspError {
    /// An MSP configuration could not be used.
    #[error("MSP configuration: {0}")]
    Config(String),
    /// The identity names an MSP that is not part of the channel.
    #[error("MSP {0} is unknown on this channel")]
    UnknownMsp(String),
    /// The serialized identity could not be parsed.
    #[error("malformed identity: {0}")]
    Malformed(String),
    /// The identity is not valid for its MSP.
    #[error("identity is not valid: {0}")]
    Invalid(String),
    /// The identity's certificate is on its issuer's revocation list.
    #[error("the certificate has been revoked")]
    Revoked,
}

/// A deserialized identity and what its MSP says about it, computed once.
#[derive(Debug)]
pub struct CheckedIdentity {
    /// The identity.
    pub identity: Identity,
    /// `Ok` when the identity is valid for its MSP (Fabric's `identity.Validate()`).
    pub validity: Result<(), ChannelMspError>,
    /// Its NodeOU role, when NodeOUs are enabled and it is valid.
    pub role: Option<NodeRole>,
    /// Whether it is listed among the MSP's admin certificates.
    pub listed_admin: bool,
}

impl CheckedIdentity {
    /// The MSP ID the identity claims.
    pub fn msp_id(&self) -> &str {
        self.identity.msp_id()
    }
    /// Whether the identity is valid for its MSP.
    pub fn is_valid(&self) -> bool {
        self.validity.is_ok()
    }
}

struct ChannelMsp {
    msp: Msp,
    revoked: RevokedSet,
}

/// The verifying MSPs of one channel, with an identity cache. Cheap to share (`Arc`).
pub struct ChannelMsps {
    msps: HashMap<String, ChannelMsp>,
    cache: RwLock<HashMap<Vec<u8>, Arc<CheckedIdentity>>>,
}

impl std::fmt::Debug for ChannelMsps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelMsps")
            .field("msps", &self.msps.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Revoked certificates as `(issuer DN DER, serial)`.
type RevokedSet = HashSet<(Vec<u8>, Vec<u8>)>;

fn parse_crls(pems: &[Vec<u8>]) -> Result<RevokedSet, ChannelMspError> {
    use x509_parser::prelude::FromDer;
    let mut out = HashSet::new();
    for pem in pems {
        let der = if pem.starts_with(b"-----") {
            x509_parser::pem::parse_x509_pem(pem)
                .map_err(|e| ChannelMspError::Config(format!("CRL PEM: {e}")))?
                .1
                .contents
        } else {
            pem.clone()
        };
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
            .map_err(|e| ChannelMspError::Config(format!("CRL: {e}")))?;
        let issuer = crl.issuer().as_raw().to_vec();
        for r in crl.iter_revoked_certificates() {
            out.insert((issuer.clone(), r.raw_serial().to_vec()));
        }
    }
    Ok(out)
}

impl ChannelMsps {
    /// Builds the channel's MSPs from their `msp.MSPConfig`s (as found in the channel config).
    pub fn from_configs<'a>(
        configs: impl IntoIterator<Item = &'a MspConfig>,
    ) -> Result<Self, ChannelMspError> {
        let mut msps = HashMap::new();
        for c in configs {
            let msp = Msp::from_config(c).map_err(|e| ChannelMspError::Config(e.to_string()))?;
            let fabric = FabricMspConfig::decode(c.config.as_slice())
                .map_err(|e| ChannelMspError::Config(e.to_string()))?;
            let revoked = parse_crls(&fabric.revocation_list)?;
            msps.insert(msp.msp_id().to_string(), ChannelMsp { msp, revoked });
        }
        Ok(ChannelMsps {
            msps,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The MSP IDs of the channel.
    pub fn msp_ids(&self) -> impl Iterator<Item = &str> {
        self.msps.keys().map(String::as_str)
    }

    /// The verifying MSP with this ID.
    pub fn msp(&self, msp_id: &str) -> Option<&Msp> {
        self.msps.get(msp_id).map(|m| &m.msp)
    }

    /// Deserializes `msp.SerializedIdentity` bytes (Fabric's `DeserializeIdentity`: the MSP must
    /// be a channel member and the certificate must parse) and validates and classifies the
    /// identity, all cached by the serialized bytes. Validation failures are reported in
    /// [`CheckedIdentity::validity`], not as an error, because Fabric deserializes and validates
    /// in separate steps with different outcomes.
    pub fn deserialize(&self, serialized: &[u8]) -> Result<Arc<CheckedIdentity>, ChannelMspError> {
        if let Some(hit) = self.cache.read().expect("msp cache").get(serialized) {
            return Ok(hit.clone());
        }
        let identity = Identity::from_serialized(serialized)
            .map_err(|e| ChannelMspError::Malformed(e.to_string()))?;
        let cm = self
            .msps
            .get(identity.msp_id())
            .ok_or_else(|| ChannelMspError::UnknownMsp(identity.msp_id().to_string()))?;
        let cert = identity.certificate();
        let validity = if cm
            .revoked
            .contains(&(cert.issuer().raw().to_vec(), cert.serial().to_vec()))
        {
            Err(ChannelMspError::Revoked)
        } else {
            cm.msp
                .validate(&identity)
                .map_err(|e| ChannelMspError::Invalid(e.to_string()))
        };
        let role = if validity.is_ok() && cm.msp.node_ous_enabled() {
            cm.msp.role_of(&identity).ok()
        } else {
            None
        };
        let listed_admin = cm.msp.is_listed_admin(&identity);
        let checked = Arc::new(CheckedIdentity {
            identity,
            validity,
            role,
            listed_admin,
        });
        let mut cache = self.cache.write().expect("msp cache");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(serialized.to_vec(), checked.clone());
        Ok(checked)
    }

    /// Whether a checked identity satisfies a principal (Fabric's `SatisfiesPrincipal`): ROLE
    /// principals are answered from the cached classification; other kinds ask the MSP.
    pub fn satisfies(&self, id: &CheckedIdentity, principal: &Principal) -> bool {
        if id.validity.is_err() {
            return false;
        }
        match principal {
            Principal::Role { msp_id, role } => {
                if msp_id != id.msp_id() {
                    return false;
                }
                match role {
                    MspRoleType::Member => true,
                    MspRoleType::Admin => id.listed_admin || id.role == Some(NodeRole::Admin),
                    MspRoleType::Client => id.role == Some(NodeRole::Client),
                    MspRoleType::Peer => id.role == Some(NodeRole::Peer),
                    MspRoleType::Orderer => id.role == Some(NodeRole::Orderer),
                }
            }
            other => self
                .msps
                .get(id.msp_id())
                .is_some_and(|m| m.msp.satisfies_principal(&id.identity, other).is_ok()),
        }
    }
}

/// Maps fabric-common's MSP error into this module's error.
impl From<MspError> for ChannelMspError {
    fn from(e: MspError) -> Self {
        ChannelMspError::Invalid(e.to_string())
    }
}
