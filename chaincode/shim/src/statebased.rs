//! Key-level endorsement policies, as Fabric's Go `statebased` package builds them: a set of
//! organisations, each with a role (member or peer), serialised as a `SignaturePolicyEnvelope`
//! that requires one signature from every organisation (`NOutOf(n, SignedBy(0)…SignedBy(n-1))`
//! over `MSPRole` principals, organisations sorted by MSP ID).
//!
//! ```
//! use fabric_chaincode::statebased::{KeyEndorsementPolicy, RoleType};
//! let mut ep = KeyEndorsementPolicy::new(None).unwrap();
//! ep.add_orgs(RoleType::Peer, ["Org2MSP", "Org1MSP"]);
//! let bytes = ep.policy(); // for set_state_validation_parameter
//! assert_eq!(KeyEndorsementPolicy::new(Some(&bytes)).unwrap().list_orgs(), ["Org1MSP", "Org2MSP"]);
//! ```

use std::collections::BTreeMap;

use fabric_protos::common::{
    msp_principal::Classification, msp_role::MspRoleType, signature_policy, MspPrincipal, MspRole,
    SignaturePolicy, SignaturePolicyEnvelope,
};
use prost::Message;

use crate::error::{Error, Result};

/// The role an organisation's signer must have (`statebased.RoleType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleType {
    /// Any member of the organisation (`RoleTypeMember`, "MEMBER").
    Member,
    /// A peer of the organisation (`RoleTypePeer`, "PEER").
    Peer,
}

impl RoleType {
    fn msp_role(self) -> MspRoleType {
        match self {
            RoleType::Member => MspRoleType::Member,
            RoleType::Peer => MspRoleType::Peer,
        }
    }
}

impl std::str::FromStr for RoleType {
    type Err = Error;
    /// Parses Go's role names; others fail as Go's `RoleTypeDoesNotExistError`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "MEMBER" => Ok(RoleType::Member),
            "PEER" => Ok(RoleType::Peer),
            other => Err(Error::invalid(format!("role type {other} does not exist"))),
        }
    }
}

/// A key-level endorsement policy under construction (`statebased.KeyEndorsementPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyEndorsementPolicy {
    /// MSP ID → role (`MspRoleType` as i32, kept as read so unknown roles survive a round trip).
    orgs: BTreeMap<String, i32>,
}

impl KeyEndorsementPolicy {
    /// A policy from existing validation-parameter bytes, or empty (`NewStateEP`). Only role
    /// principals are read, as in Go.
    pub fn new(policy: Option<&[u8]>) -> Result<Self> {
        let mut ep = KeyEndorsementPolicy::default();
        let Some(bytes) = policy else {
            return Ok(ep);
        };
        let spe = SignaturePolicyEnvelope::decode(bytes)
            .map_err(|e| Error::invalid(format!("Error unmarshaling to SignaturePolicy: {e}")))?;
        for identity in spe.identities {
            if identity.principal_classification == Classification::Role as i32 {
                let role = MspRole::decode(identity.principal.as_slice()).map_err(|e| {
                    Error::invalid(format!("error unmarshaling msp principal: {e}"))
                })?;
                ep.orgs.insert(role.msp_identifier, role.role);
            }
        }
        Ok(ep)
    }

    /// The serialised `SignaturePolicyEnvelope` (`Policy`).
    pub fn policy(&self) -> Vec<u8> {
        self.envelope().encode_to_vec()
    }

    /// The policy as a message.
    pub fn envelope(&self) -> SignaturePolicyEnvelope {
        // BTreeMap iteration is Go's sort.Strings over the MSP IDs.
        let identities: Vec<MspPrincipal> = self
            .orgs
            .iter()
            .map(|(msp, role)| MspPrincipal {
                principal_classification: Classification::Role as i32,
                principal: MspRole {
                    msp_identifier: msp.clone(),
                    role: *role,
                }
                .encode_to_vec(),
            })
            .collect();
        let rules: Vec<SignaturePolicy> = (0..identities.len())
            .map(|i| SignaturePolicy {
                r#type: Some(signature_policy::Type::SignedBy(i as i32)),
            })
            .collect();
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(SignaturePolicy {
                r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                    n: rules.len() as i32,
                    rules,
                })),
            }),
            identities,
        }
    }

    /// Requires a signer with `role` from each of `orgs` (`AddOrgs`); re-adding an org
    /// replaces its role.
    pub fn add_orgs<I, O>(&mut self, role: RoleType, orgs: I)
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        for org in orgs {
            self.orgs.insert(org.into(), role.msp_role() as i32);
        }
    }

    /// Removes `orgs` from the policy (`DelOrgs`).
    pub fn del_orgs<I, O>(&mut self, orgs: I)
    where
        I: IntoIterator<Item = O>,
        O: AsRef<str>,
    {
        for org in orgs {
            self.orgs.remove(org.as_ref());
        }
    }

    /// The organisations that must endorse, sorted (`ListOrgs`).
    pub fn list_orgs(&self) -> Vec<String> {
        self.orgs.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_go_statebased_envelope() {
        let mut ep = KeyEndorsementPolicy::new(None).unwrap();
        ep.add_orgs(RoleType::Peer, ["Org2MSP", "Org1MSP"]);
        ep.add_orgs(RoleType::Member, ["Org3MSP"]);
        let env = SignaturePolicyEnvelope::decode(ep.policy().as_slice()).unwrap();
        let orgs: Vec<(String, i32)> = env
            .identities
            .iter()
            .map(|p| {
                assert_eq!(p.principal_classification, Classification::Role as i32);
                let r = MspRole::decode(p.principal.as_slice()).unwrap();
                (r.msp_identifier, r.role)
            })
            .collect();
        assert_eq!(
            orgs,
            vec![
                ("Org1MSP".into(), MspRoleType::Peer as i32),
                ("Org2MSP".into(), MspRoleType::Peer as i32),
                ("Org3MSP".into(), MspRoleType::Member as i32),
            ]
        );
        let Some(signature_policy::Type::NOutOf(n)) = env.rule.unwrap().r#type else {
            panic!("NOutOf expected");
        };
        assert_eq!(n.n, 3);
        let signed: Vec<_> = n.rules.iter().map(|r| r.r#type.clone()).collect();
        assert_eq!(
            signed,
            (0..3)
                .map(|i| Some(signature_policy::Type::SignedBy(i)))
                .collect::<Vec<_>>()
        );
        assert_eq!(env.version, 0);
    }

    #[test]
    fn round_trips_and_deletes() {
        let mut ep = KeyEndorsementPolicy::new(None).unwrap();
        ep.add_orgs(RoleType::Peer, ["B", "A", "C"]);
        let mut back = KeyEndorsementPolicy::new(Some(&ep.policy())).unwrap();
        assert_eq!(back, ep);
        back.del_orgs(["B"]);
        assert_eq!(back.list_orgs(), ["A", "C"]);
        // An empty policy is an NOutOf(0) with no identities, as Go serialises it.
        let empty = KeyEndorsementPolicy::default().envelope();
        assert!(empty.identities.is_empty());
        assert!(KeyEndorsementPolicy::new(Some(&[0xff, 0x01])).is_err());
        assert_eq!(
            "ADMIN".parse::<RoleType>().unwrap_err().to_string(),
            "role type ADMIN does not exist"
        );
    }
}
