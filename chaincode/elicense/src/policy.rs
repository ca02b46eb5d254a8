//! Key-level endorsement policies, built as Go's `statebased.NewStateEP().AddOrgs(RoleTypePeer,
//! …)` builds them: every listed organisation's peer must endorse (`NOutOf(n, SignedBy(i)…)` over
//! `MSPRole{PEER}` principals, organisations in sorted order).

use fabric_chaincode::statebased::{KeyEndorsementPolicy, RoleType};

/// A serialized `common.SignaturePolicyEnvelope` requiring a peer of every org in `msp_ids`.
pub fn peers_of(msp_ids: &[&str]) -> Vec<u8> {
    let mut ep = KeyEndorsementPolicy::default();
    ep.add_orgs(RoleType::Peer, msp_ids.iter().copied());
    ep.policy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_protos::common::{
        msp_role::MspRoleType, signature_policy, MspRole, SignaturePolicyEnvelope,
    };
    use prost::Message;

    #[test]
    fn one_org_peer_policy() {
        let bytes = peers_of(&["PublicSecurityMSP"]);
        let env = SignaturePolicyEnvelope::decode(bytes.as_slice()).unwrap();
        assert_eq!(env.identities.len(), 1);
        let role = MspRole::decode(env.identities[0].principal.as_slice()).unwrap();
        assert_eq!(role.msp_identifier, "PublicSecurityMSP");
        assert_eq!(role.role, MspRoleType::Peer as i32);
        let Some(signature_policy::Type::NOutOf(n)) = env.rule.unwrap().r#type else {
            panic!("expected NOutOf");
        };
        assert_eq!(n.n, 1);
    }
}
