//! Policy evaluation with Fabric's semantics (`common/cauthdsl` and `common/policies`):
//!
//! * **Signature policies** (`SignaturePolicyEnvelope`): compiled once; evaluation walks the rule
//!   tree with "used" flags so that one identity satisfies at most one `SignedBy` leaf, and an
//!   `NOutOf` keeps the flags of the sub-rules it counted (exactly `cauthdsl.compile`).
//! * **ImplicitMeta policies**: `ANY` / `ALL` / `MAJORITY` of the same-named policy of every
//!   sub-group; with no sub-groups the threshold is 0 (satisfied).
//! * A [`PolicyManager`] holds a channel configuration's policies by path
//!   (`/Channel/Application/Writers`) and evaluates them.
//!
//! Inputs are identities whose signatures were already verified once by the caller (Fabric's
//! `SignatureSetToValidIdentities`): see [`verified_identities`].

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_common::msp::Principal;
use fabric_protos::common::policy::PolicyType;
use fabric_protos::common::signature_policy::Type as RuleType;
use fabric_protos::common::{
    implicit_meta_policy, ConfigGroup, ImplicitMetaPolicy, Policy, SignaturePolicy,
    SignaturePolicyEnvelope,
};
use prost::Message;

use super::{ChannelMsps, CheckedIdentity};

/// Errors compiling or finding policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy bytes do not decode or are not a policy Fabric would accept.
    #[error("malformed policy: {0}")]
    Malformed(String),
    /// No policy at that path.
    #[error("policy {0} not found")]
    NotFound(String),
}

#[derive(Debug, Clone)]
enum Rule {
    SignedBy(usize),
    NOutOf(usize, Vec<Rule>),
}

/// A compiled `SignaturePolicyEnvelope`.
#[derive(Debug, Clone)]
pub struct SignaturePolicyRule {
    rule: Rule,
    principals: Vec<Principal>,
}

fn compile(rule: &SignaturePolicy, n_principals: usize) -> Result<Rule, PolicyError> {
    match &rule.r#type {
        Some(RuleType::SignedBy(i)) => {
            let i = usize::try_from(*i)
                .ok()
                .filter(|i| *i < n_principals)
                .ok_or_else(|| PolicyError::Malformed("identity index out of range".into()))?;
            Ok(Rule::SignedBy(i))
        }
        Some(RuleType::NOutOf(n)) => {
            let rules = n
                .rules
                .iter()
                .map(|r| compile(r, n_principals))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Rule::NOutOf(n.n as usize, rules))
        }
        None => Err(PolicyError::Malformed("empty policy element".into())),
    }
}

fn eval(
    rule: &Rule,
    p: &[Principal],
    ids: &[Arc<CheckedIdentity>],
    msps: &ChannelMsps,
    used: &mut [bool],
) -> bool {
    match rule {
        Rule::SignedBy(i) => {
            for (k, id) in ids.iter().enumerate() {
                if used[k] {
                    continue;
                }
                if msps.satisfies(id, &p[*i]) {
                    used[k] = true;
                    return true;
                }
            }
            false
        }
        Rule::NOutOf(n, rules) => {
            let mut verified = 0;
            let mut scratch = used.to_vec();
            for r in rules {
                scratch.copy_from_slice(used);
                if eval(r, p, ids, msps, &mut scratch) {
                    verified += 1;
                    used.copy_from_slice(&scratch);
                }
            }
            verified >= *n
        }
    }
}

impl SignaturePolicyRule {
    /// Compiles a decoded envelope (version must be 0, as `cauthdsl.NewPolicy` requires).
    pub fn from_envelope(env: &SignaturePolicyEnvelope) -> Result<Self, PolicyError> {
        if env.version != 0 {
            return Err(PolicyError::Malformed(format!(
                "only version 0 is understood, got {}",
                env.version
            )));
        }
        let rule = env
            .rule
            .as_ref()
            .ok_or_else(|| PolicyError::Malformed("envelope without rule".into()))?;
        let principals = env
            .identities
            .iter()
            .map(|p| Principal::from_proto(p).map_err(|e| PolicyError::Malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SignaturePolicyRule {
            rule: compile(rule, principals.len())?,
            principals,
        })
    }

    /// Compiles serialized `SignaturePolicyEnvelope` bytes (e.g. a key-level VALIDATION_PARAMETER).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PolicyError> {
        let env = SignaturePolicyEnvelope::decode(bytes)
            .map_err(|e| PolicyError::Malformed(e.to_string()))?;
        Self::from_envelope(&env)
    }

    /// Whether the verified identities satisfy the policy.
    pub fn evaluate(&self, msps: &ChannelMsps, ids: &[Arc<CheckedIdentity>]) -> bool {
        let mut used = vec![false; ids.len()];
        eval(&self.rule, &self.principals, ids, msps, &mut used)
    }
}

/// Turns a signature set into the identities that count, exactly once per identity: deserialize
/// (skipping unknown or malformed ones), skip an identity already counted (by MSP ID and
/// certificate), verify its signature (skipping bad ones). `verify` is called at most once per
/// distinct identity, which is the one signature check per endorsement the committer budgets.
pub fn verified_identities<'a>(
    msps: &ChannelMsps,
    signed: impl IntoIterator<Item = (&'a [u8], &'a [u8], &'a [u8])>,
) -> Vec<Arc<CheckedIdentity>> {
    let mut out: Vec<Arc<CheckedIdentity>> = Vec::new();
    for (identity, data, signature) in signed {
        let Ok(id) = msps.deserialize(identity) else {
            continue;
        };
        // Signature sets are small (a few endorsers): a scan of the identities counted so far
        // is cheaper than hashing certificates into a set.
        let counted = out.iter().any(|o| {
            Arc::ptr_eq(o, &id)
                || (o.msp_id() == id.msp_id()
                    && o.identity.certificate().der() == id.identity.certificate().der())
        });
        if counted {
            continue;
        }
        if super::sigcache::verify(id.identity.public_key(), data, signature).is_err() {
            continue;
        }
        out.push(id);
    }
    out
}

/// A policy of a channel configuration.
#[derive(Debug, Clone)]
pub enum ConfigPolicy {
    /// A signature policy.
    Signature(SignaturePolicyRule),
    /// An implicit meta policy over the sub-groups.
    ImplicitMeta {
        /// Name of the sub-policy in each sub-group.
        sub_policy: String,
        /// ANY / ALL / MAJORITY.
        rule: implicit_meta_policy::Rule,
    },
}

/// A channel configuration's policies by path, e.g. `/Channel/Application/Writers`.
#[derive(Debug, Clone, Default)]
pub struct PolicyManager {
    policies: BTreeMap<String, ConfigPolicy>,
    children: BTreeMap<String, Vec<String>>,
}

impl PolicyManager {
    /// Collects the policies of the group tree rooted at `root`, named `root_name` (`Channel`).
    pub fn from_group(root_name: &str, root: &ConfigGroup) -> Result<Self, PolicyError> {
        let mut pm = PolicyManager::default();
        pm.add_group(&format!("/{root_name}"), root)?;
        Ok(pm)
    }

    fn add_group(&mut self, path: &str, g: &ConfigGroup) -> Result<(), PolicyError> {
        for (name, cp) in &g.policies {
            let Some(policy) = &cp.policy else {
                continue;
            };
            self.policies
                .insert(format!("{path}/{name}"), Self::compile_policy(policy)?);
        }
        let mut kids = Vec::new();
        for (name, sub) in &g.groups {
            let p = format!("{path}/{name}");
            self.add_group(&p, sub)?;
            kids.push(p);
        }
        self.children.insert(path.to_string(), kids);
        Ok(())
    }

    fn compile_policy(policy: &Policy) -> Result<ConfigPolicy, PolicyError> {
        match PolicyType::try_from(policy.r#type) {
            Ok(PolicyType::Signature) => Ok(ConfigPolicy::Signature(
                SignaturePolicyRule::from_bytes(&policy.value)?,
            )),
            Ok(PolicyType::ImplicitMeta) => {
                let m = ImplicitMetaPolicy::decode(policy.value.as_slice())
                    .map_err(|e| PolicyError::Malformed(e.to_string()))?;
                let rule = implicit_meta_policy::Rule::try_from(m.rule)
                    .map_err(|_| PolicyError::Malformed(format!("rule {}", m.rule)))?;
                Ok(ConfigPolicy::ImplicitMeta {
                    sub_policy: m.sub_policy,
                    rule,
                })
            }
            _ => Err(PolicyError::Malformed(format!(
                "unsupported policy type {}",
                policy.r#type
            ))),
        }
    }

    /// The policy at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&ConfigPolicy> {
        self.policies.get(path)
    }

    /// Evaluates the policy at `path` (absolute, e.g. `/Channel/Writers`).
    pub fn evaluate(
        &self,
        path: &str,
        msps: &ChannelMsps,
        ids: &[Arc<CheckedIdentity>],
    ) -> Result<bool, PolicyError> {
        let policy = self
            .policies
            .get(path)
            .ok_or_else(|| PolicyError::NotFound(path.to_string()))?;
        match policy {
            ConfigPolicy::Signature(s) => Ok(s.evaluate(msps, ids)),
            ConfigPolicy::ImplicitMeta { sub_policy, rule } => {
                let group = path.rsplit_once('/').map_or("", |(g, _)| g);
                let kids = self.children.get(group).map(Vec::as_slice).unwrap_or(&[]);
                // A sub-group without the sub-policy still counts, as a policy that always
                // rejects (Fabric's policy manager returns a reject policy for unknown names).
                let subs: Vec<String> = kids.iter().map(|k| format!("{k}/{sub_policy}")).collect();
                let threshold = if subs.is_empty() {
                    0
                } else {
                    match rule {
                        implicit_meta_policy::Rule::Any => 1,
                        implicit_meta_policy::Rule::All => subs.len(),
                        implicit_meta_policy::Rule::Majority => subs.len() / 2 + 1,
                    }
                };
                let mut ok = 0;
                for s in &subs {
                    if self.policies.contains_key(s) && self.evaluate(s, msps, ids)? {
                        ok += 1;
                    }
                }
                Ok(ok >= threshold)
            }
        }
    }
}
