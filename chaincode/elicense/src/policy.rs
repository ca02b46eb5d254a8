//! Key-level endorsement policies, built as Go's `statebased.NewStateEP().AddOrgs(RoleTypePeer,
//! …)` builds them: every listed organisation's peer must endorse (`NOutOf(n, SignedBy(i)…)` over
//! `MSPRole{PEER}` principals, organisations in sorted order).

use fabric_protos::common::{
    msp_principal::Classification, msp_role::MspRoleType, signature_policy, MspPrincipal, MspRole,
    SignaturePolicy, SignaturePolicyEnvelope,
};
use prost::Message;

/// A serialized `common.SignaturePolicyEnvelope` requiring a peer of every org in `msp_ids`.
pub fn peers_of(msp_ids: &[&str]) -> Vec<u8> {
    let mut orgs: Vec<&str> = msp_ids.to_vec();
    orgs.sort_unstable();
    orgs.dedup();
    let identities = orgs
        .iter()
        .map(|org| MspPrincipal {
            principal_classification: Classification::Role as i32,
            principal: MspRole {
                msp_identifier: (*org).to_owned(),
                role: MspRoleType::Peer as i32,
            }
            .encode_to_vec(),
        })
        .collect::<Vec<_>>();
    let rules = (0..identities.len())
        .map(|i| SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(i as i32)),
        })
        .collect::<Vec<_>>();
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
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

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
