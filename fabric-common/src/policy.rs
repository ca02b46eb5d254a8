//! Signature policies: the policy language `peer lifecycle` and `configtx.yaml` accept
//! (`AND`, `OR`, `OutOf`, `'MSP.role'` principals), its `common.SignaturePolicyEnvelope` form,
//! and evaluation with the exact semantics of Fabric's `common/cauthdsl`; plus implicit-meta
//! policies (`ANY Readers`, `MAJORITY Endorsement`...).
//!
//! # Envelope shape (Fabric's `common/policydsl`)
//!
//! Every gate becomes `n_out_of` (`AND` → n = number of arguments, `OR` → n = 1); every principal
//! becomes a `signed_by` index into `identities`, which hold `MSPPrincipal{ROLE, MSPRole}`.
//! Identities are *not* deduplicated (`AND('A.member','A.member')` carries two identical
//! principals), and they are numbered the way Fabric's evaluator numbers them: a gate's nested
//! gates first (left to right), then its own principals. So `OR('A.member', AND('B.member',
//! 'C.member'))` has identities `[B, C, A]` and rule `OR(signed_by 2, AND(signed_by 0,
//! signed_by 1))`. Byte-identical envelopes matter: peers compare endorsement policies across
//! organisations' chaincode definitions.
//!
//! # Evaluation (Fabric's `cauthdsl.compile`)
//!
//! Given deduplicated identities whose signatures already verified, a `signed_by` takes the first
//! *unused* identity that satisfies its principal and marks it used; a gate evaluates *every* rule
//! in order on a copy of the used-set, keeps the copy of each rule that succeeded, and succeeds
//! when at least n did. It never backtracks, so the order of rules and identities matters, exactly
//! as in Fabric.

use std::collections::HashSet;
use std::fmt::Write as _;

use fabric_protos::common::{
    implicit_meta_policy, msp_role, policy, signature_policy, ImplicitMetaPolicy, MspPrincipal,
    Policy, SignaturePolicy, SignaturePolicyEnvelope,
};
use prost::Message as _;
use thiserror::Error;

use crate::identity::Identity;
use crate::msp::{Msp, MspManager, Principal};

/// Deepest gate nesting the parser accepts (Fabric's parser caps expression size too).
pub const MAX_NESTING: usize = 64;
/// Most principals and gates one policy string may hold.
pub const MAX_NODES: usize = 10_000;

/// Errors from parsing, compiling and printing policies.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The policy string does not follow the grammar.
    #[error("policy syntax error at byte {offset}: {message}")]
    Syntax {
        /// Byte offset in the input.
        offset: usize,
        /// What was expected.
        message: String,
    },
    /// A quoted string is not `MSPID.role` with role member, admin, client, peer or orderer.
    #[error("invalid principal '{0}': expected 'MSPID.member|admin|client|peer|orderer'")]
    BadPrincipal(String),
    /// `OutOf(t, ...)` with t outside 0..=n+1 (Fabric allows n+1: a never-satisfiable policy).
    #[error("invalid t-out-of-n predicate, t {t}, n {n}")]
    BadThreshold {
        /// The threshold.
        t: i64,
        /// The number of rules.
        n: usize,
    },
    /// A gate with no rules (`OutOf` needs a threshold and at least one rule).
    #[error("{0} needs at least one rule")]
    EmptyGate(String),
    /// Nesting deeper than [`MAX_NESTING`] or more than [`MAX_NODES`] nodes.
    #[error("policy is too large or too deeply nested")]
    TooLarge,
    /// The envelope's version is not 0.
    #[error("unsupported signature policy envelope version {0}")]
    UnsupportedVersion(i32),
    /// A rule is missing or refers to an identity that does not exist.
    #[error("malformed signature policy: {0}")]
    Malformed(String),
    /// The envelope holds principals the policy language cannot express.
    #[error("policy cannot be written in the policy language: {0}")]
    NotExpressible(String),
    /// An implicit-meta rule is not `ANY|ALL|MAJORITY <sub-policy>`.
    #[error("invalid implicit meta policy '{0}': expected ANY|ALL|MAJORITY <SubPolicy>")]
    BadImplicitMeta(String),
}

const ROLES: [(&str, msp_role::MspRoleType); 5] = [
    ("member", msp_role::MspRoleType::Member),
    ("admin", msp_role::MspRoleType::Admin),
    ("client", msp_role::MspRoleType::Client),
    ("peer", msp_role::MspRoleType::Peer),
    ("orderer", msp_role::MspRoleType::Orderer),
];

fn role_name(role: msp_role::MspRoleType) -> &'static str {
    ROLES
        .iter()
        .find(|(_, r)| *r == role)
        .map(|(n, _)| *n)
        .unwrap_or("member")
}

/// Splits `MSPID.role` as Fabric's regex `^([[:alnum:].-]+)([.])(role)$` does.
fn parse_principal(s: &str) -> Result<(String, msp_role::MspRoleType), PolicyError> {
    let bad = || PolicyError::BadPrincipal(s.to_string());
    let dot = s.rfind('.').ok_or_else(bad)?;
    let (msp, role) = (&s[..dot], &s[dot + 1..]);
    let role = ROLES
        .iter()
        .find(|(n, _)| *n == role)
        .map(|(_, r)| *r)
        .ok_or_else(bad)?;
    if msp.is_empty()
        || !msp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(bad());
    }
    Ok((msp.to_string(), role))
}

/// Parse tree of the policy language.
#[derive(Debug)]
enum Node {
    Principal(String, msp_role::MspRoleType),
    Gate { n: i32, rules: Vec<Node> },
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    nodes: usize,
}

enum Arg {
    Node(Node),
    Number(i64, usize),
    Str(String, usize),
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> PolicyError {
        PolicyError::Syntax {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn expect(&mut self, c: char) -> Result<(), PolicyError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.err(format!("expected '{c}'")))
        }
    }

    fn count_node(&mut self) -> Result<(), PolicyError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(PolicyError::TooLarge);
        }
        Ok(())
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, PolicyError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let rest = &self.src[self.pos..];
                let end = rest
                    .find(q)
                    .ok_or_else(|| self.err("unterminated string"))?;
                let s = rest[..end].to_string();
                self.pos += end + 1;
                self.count_node()?;
                Ok(Arg::Str(s, start))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                let rest = &self.src[self.pos..];
                let len = rest
                    .char_indices()
                    .skip(1)
                    .find(|(_, c)| !c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .unwrap_or(rest.len());
                let text = &rest[..len];
                let n: i64 = text
                    .parse()
                    .map_err(|_| self.err(format!("bad number '{text}'")))?;
                self.pos += len;
                Ok(Arg::Number(n, start))
            }
            Some(c) if c.is_ascii_alphabetic() => Ok(Arg::Node(self.gate(depth)?)),
            Some(c) => Err(self.err(format!("unexpected '{c}'"))),
            None => Err(self.err("unexpected end of policy")),
        }
    }

    fn gate(&mut self, depth: usize) -> Result<Node, PolicyError> {
        if depth >= MAX_NESTING {
            return Err(PolicyError::TooLarge);
        }
        self.count_node()?;
        self.skip_ws();
        let start = self.pos;
        let rest = &self.src[self.pos..];
        let len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let name = &rest[..len];
        // Fabric registers each gate under its canonical, lower- and upper-case spelling.
        let kind = match name {
            "And" | "and" | "AND" => "AND",
            "Or" | "or" | "OR" => "OR",
            "OutOf" | "outof" | "OUTOF" => "OutOf",
            _ => {
                return Err(PolicyError::Syntax {
                    offset: start,
                    message: format!("unrecognized token '{name}'"),
                })
            }
        };
        self.pos += len;
        self.expect('(')?;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() != Some(')') {
            loop {
                args.push(self.arg(depth + 1)?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => break,
                    _ => return Err(self.err("expected ',' or ')'")),
                }
            }
        }
        self.expect(')')?;

        let mut args = args.into_iter();
        let threshold = if kind == "OutOf" {
            match args.next() {
                Some(Arg::Number(n, _)) => Some(n),
                // Fabric also accepts the threshold as a quoted number: OutOf('1', ...).
                Some(Arg::Str(s, offset)) => {
                    Some(s.trim().parse::<i64>().map_err(|_| PolicyError::Syntax {
                        offset,
                        message: format!("expected a number, got '{s}'"),
                    })?)
                }
                Some(Arg::Node(_)) => {
                    return Err(PolicyError::Syntax {
                        offset: start,
                        message: "OutOf needs a number first".into(),
                    })
                }
                None => return Err(PolicyError::EmptyGate(kind.into())),
            }
        } else {
            None
        };
        let mut rules = Vec::new();
        for arg in args {
            match arg {
                Arg::Node(node) => rules.push(node),
                Arg::Str(s, _) => {
                    let (msp, role) = parse_principal(&s)?;
                    rules.push(Node::Principal(msp, role));
                }
                Arg::Number(_, offset) => {
                    return Err(PolicyError::Syntax {
                        offset,
                        message: "expected a principal or a gate, got a number".into(),
                    })
                }
            }
        }
        if rules.is_empty() {
            return Err(PolicyError::EmptyGate(kind.into()));
        }
        let n = match (kind, threshold) {
            ("AND", _) => rules.len() as i64,
            ("OR", _) => 1,
            (_, Some(t)) => t,
            _ => 1,
        };
        if n < 0 || n > rules.len() as i64 + 1 {
            return Err(PolicyError::BadThreshold {
                t: n,
                n: rules.len(),
            });
        }
        Ok(Node::Gate { n: n as i32, rules })
    }
}

/// Turns the parse tree into rules, numbering principals as Fabric does (nested gates first).
fn build(node: Node, identities: &mut Vec<MspPrincipal>) -> SignaturePolicy {
    let Node::Gate { n, rules } = node else {
        // Top-level principals are rejected before building; a lone one maps to signed_by.
        return SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(identities.len() as i32)),
        };
    };
    let mut built: Vec<Option<SignaturePolicy>> = Vec::with_capacity(rules.len());
    let mut principals = Vec::new();
    for (i, rule) in rules.into_iter().enumerate() {
        match rule {
            gate @ Node::Gate { .. } => built.push(Some(build(gate, identities))),
            Node::Principal(msp, role) => {
                built.push(None);
                principals.push((i, msp, role));
            }
        }
    }
    for (i, msp, role) in principals {
        built[i] = Some(SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(identities.len() as i32)),
        });
        identities.push(Principal::role(msp, role).to_proto());
    }
    SignaturePolicy {
        r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
            n,
            rules: built.into_iter().flatten().collect(),
        })),
    }
}

/// Parses the policy language into a `SignaturePolicyEnvelope` exactly as Fabric's
/// `policydsl.FromString` builds it.
pub fn parse_policy(text: &str) -> Result<SignaturePolicyEnvelope, PolicyError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        nodes: 0,
    };
    p.skip_ws();
    if p.peek().is_none() {
        return Err(p.err("empty policy"));
    }
    let root = match p.arg(0)? {
        Arg::Node(node) => node,
        _ => {
            return Err(PolicyError::Syntax {
                offset: 0,
                message: "a policy must be a gate: AND(...), OR(...) or OutOf(...)".into(),
            })
        }
    };
    p.skip_ws();
    if p.pos != text.len() {
        return Err(p.err("unexpected text after the policy"));
    }
    let mut identities = Vec::new();
    let rule = build(root, &mut identities);
    Ok(SignaturePolicyEnvelope {
        version: 0,
        rule: Some(rule),
        identities,
    })
}

/// Prints an envelope in the policy language (`AND` when n equals the number of rules, `OR` when
/// n is 1, `OutOf` otherwise). Parsing the result gives back an envelope with the same meaning;
/// for envelopes produced by [`parse_policy`], the very same envelope.
pub fn print_policy(envelope: &SignaturePolicyEnvelope) -> Result<String, PolicyError> {
    let compiled = CompiledPolicy::compile(envelope)?;
    let mut out = String::new();
    print_rule(&compiled.root, &compiled.principals, &mut out)?;
    Ok(out)
}

fn print_rule(rule: &Rule, principals: &[Principal], out: &mut String) -> Result<(), PolicyError> {
    match rule {
        Rule::SignedBy(i) => match &principals[*i] {
            Principal::Role { msp_id, role } => {
                let _ = write!(out, "'{msp_id}.{}'", role_name(*role));
                Ok(())
            }
            other => Err(PolicyError::NotExpressible(format!("{other:?}"))),
        },
        Rule::NOutOf { n, rules } => {
            let n = *n;
            if n == rules.len() as i32 && !rules.is_empty() {
                out.push_str("AND(");
            } else if n == 1 {
                out.push_str("OR(");
            } else {
                let _ = write!(out, "OutOf({n}, ");
            }
            for (i, r) in rules.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                print_rule(r, principals, out)?;
            }
            out.push(')');
            Ok(())
        }
    }
}

/// Decides whether an identity satisfies a principal (an MSP manager, or a test double).
pub trait PrincipalMatcher<I: ?Sized> {
    /// Whether `identity` satisfies `principal`.
    fn satisfies(&self, identity: &I, principal: &Principal) -> bool;
}

impl<I: ?Sized, F: Fn(&I, &Principal) -> bool> PrincipalMatcher<I> for F {
    fn satisfies(&self, identity: &I, principal: &Principal) -> bool {
        self(identity, principal)
    }
}

impl PrincipalMatcher<Identity> for MspManager {
    fn satisfies(&self, identity: &Identity, principal: &Principal) -> bool {
        self.satisfies_principal(identity, principal).is_ok()
    }
}

impl PrincipalMatcher<Identity> for Msp {
    fn satisfies(&self, identity: &Identity, principal: &Principal) -> bool {
        self.satisfies_principal(identity, principal).is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    SignedBy(usize),
    NOutOf { n: i32, rules: Vec<Rule> },
}

/// A signature policy checked and decoded once, ready to evaluate many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPolicy {
    root: Rule,
    principals: Vec<Principal>,
}

impl CompiledPolicy {
    /// Checks and decodes an envelope (version 0, every rule present, indices in range), as
    /// Fabric's `NewPolicy` does before any evaluation.
    pub fn compile(envelope: &SignaturePolicyEnvelope) -> Result<Self, PolicyError> {
        if envelope.version != 0 {
            return Err(PolicyError::UnsupportedVersion(envelope.version));
        }
        let principals = envelope
            .identities
            .iter()
            .map(|p| Principal::from_proto(p).map_err(|e| PolicyError::Malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let rule = envelope
            .rule
            .as_ref()
            .ok_or_else(|| PolicyError::Malformed("empty policy element".into()))?;
        let root = compile_rule(rule, principals.len(), 0)?;
        Ok(CompiledPolicy { root, principals })
    }

    /// Decodes and compiles `SignaturePolicyEnvelope` bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PolicyError> {
        let env = SignaturePolicyEnvelope::decode(bytes)
            .map_err(|e| PolicyError::Malformed(e.to_string()))?;
        Self::compile(&env)
    }

    /// Parses the policy language and compiles the result.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::compile(&parse_policy(text)?)
    }

    /// The decoded principals, indexed as `signed_by` refers to them.
    pub fn principals(&self) -> &[Principal] {
        &self.principals
    }

    /// Evaluates against identities that each signed and whose signatures were verified; pass
    /// them deduplicated (see [`deduplicate`]), as Fabric does before evaluating.
    pub fn evaluate<I, M: PrincipalMatcher<I> + ?Sized>(
        &self,
        identities: &[I],
        matcher: &M,
    ) -> bool {
        // satisfies() may walk certificate chains; each (identity, principal) pair is asked once.
        let mut cache: Vec<Option<bool>> = vec![None; identities.len() * self.principals.len()];
        let mut used = vec![false; identities.len()];
        let mut ctx = Eval {
            identities,
            matcher,
            principals: &self.principals,
            cache: &mut cache,
        };
        ctx.eval(&self.root, &mut used)
    }
}

fn compile_rule(rule: &SignaturePolicy, n_ids: usize, depth: usize) -> Result<Rule, PolicyError> {
    if depth > MAX_NESTING * 4 {
        return Err(PolicyError::TooLarge);
    }
    match &rule.r#type {
        Some(signature_policy::Type::SignedBy(i)) => {
            if *i < 0 || *i as usize >= n_ids {
                return Err(PolicyError::Malformed(format!(
                    "identity index out of range, requested {i}, but identities length is {n_ids}"
                )));
            }
            Ok(Rule::SignedBy(*i as usize))
        }
        Some(signature_policy::Type::NOutOf(n)) => Ok(Rule::NOutOf {
            n: n.n,
            rules: n
                .rules
                .iter()
                .map(|r| compile_rule(r, n_ids, depth + 1))
                .collect::<Result<_, _>>()?,
        }),
        None => Err(PolicyError::Malformed("empty policy element".into())),
    }
}

struct Eval<'a, I, M: ?Sized> {
    identities: &'a [I],
    matcher: &'a M,
    principals: &'a [Principal],
    cache: &'a mut Vec<Option<bool>>,
}

impl<I, M: PrincipalMatcher<I> + ?Sized> Eval<'_, I, M> {
    fn satisfies(&mut self, identity: usize, principal: usize) -> bool {
        let slot = identity * self.principals.len() + principal;
        if let Some(known) = self.cache[slot] {
            return known;
        }
        let ok = self
            .matcher
            .satisfies(&self.identities[identity], &self.principals[principal]);
        self.cache[slot] = Some(ok);
        ok
    }

    fn eval(&mut self, rule: &Rule, used: &mut [bool]) -> bool {
        match rule {
            Rule::SignedBy(p) => {
                for (i, slot) in used.iter_mut().enumerate() {
                    if !*slot && self.satisfies(i, *p) {
                        *slot = true;
                        return true;
                    }
                }
                false
            }
            Rule::NOutOf { n, rules } => {
                // Every rule runs (no short-circuit): identities consumed by a rule that succeeds
                // after the threshold is reached stay consumed for sibling gates, as in Fabric.
                let mut verified = 0i32;
                let mut scratch = used.to_vec();
                for r in rules {
                    scratch.copy_from_slice(used);
                    if self.eval(r, &mut scratch) {
                        verified += 1;
                        used.copy_from_slice(&scratch);
                    }
                }
                verified >= *n
            }
        }
    }
}

/// Drops repeated identities, keeping the first of each (Fabric deduplicates signers by MSP ID
/// and certificate before evaluating a policy).
pub fn deduplicate(identities: Vec<Identity>) -> Vec<Identity> {
    let mut seen = HashSet::new();
    identities
        .into_iter()
        .filter(|id| seen.insert((id.msp_id().to_string(), id.certificate().der().to_vec())))
        .collect()
}

/// Wraps an envelope as `common.Policy` (type SIGNATURE), as channel configuration stores it.
pub fn signature_policy_to_policy(envelope: &SignaturePolicyEnvelope) -> Policy {
    Policy {
        r#type: policy::PolicyType::Signature as i32,
        value: envelope.encode_to_vec(),
    }
}

/// An implicit-meta policy: a rule over the same-named sub-policy of each child config group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImplicitMeta {
    /// ANY, ALL or MAJORITY.
    pub rule: implicit_meta_policy::Rule,
    /// The sub-policy name (`Readers`, `Writers`, `Admins`, `Endorsement`...).
    pub sub_policy: String,
}

impl ImplicitMeta {
    /// Parses `configtx.yaml` syntax: `"MAJORITY Admins"`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadImplicitMeta(text.to_string());
        let mut parts = text.split_whitespace();
        let (Some(rule), Some(sub), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let rule = implicit_meta_policy::Rule::from_str_name(rule).ok_or_else(bad)?;
        Ok(ImplicitMeta {
            rule,
            sub_policy: sub.to_string(),
        })
    }

    /// The `common.ImplicitMetaPolicy` message.
    pub fn to_proto(&self) -> ImplicitMetaPolicy {
        ImplicitMetaPolicy {
            sub_policy: self.sub_policy.clone(),
            rule: self.rule as i32,
        }
    }

    /// Decodes `common.ImplicitMetaPolicy`.
    pub fn from_proto(p: &ImplicitMetaPolicy) -> Result<Self, PolicyError> {
        let rule = implicit_meta_policy::Rule::try_from(p.rule)
            .map_err(|_| PolicyError::BadImplicitMeta(format!("rule {}", p.rule)))?;
        Ok(ImplicitMeta {
            rule,
            sub_policy: p.sub_policy.clone(),
        })
    }

    /// Wraps as `common.Policy` (type IMPLICIT_META).
    pub fn to_policy(&self) -> Policy {
        Policy {
            r#type: policy::PolicyType::ImplicitMeta as i32,
            value: self.to_proto().encode_to_vec(),
        }
    }

    /// How many sub-policies must be satisfied out of `count` (Fabric: ANY 1, ALL all,
    /// MAJORITY count/2+1, and 0 when there are no sub-policies at all).
    pub fn threshold(&self, count: usize) -> usize {
        if count == 0 {
            return 0;
        }
        match self.rule {
            implicit_meta_policy::Rule::Any => 1,
            implicit_meta_policy::Rule::All => count,
            implicit_meta_policy::Rule::Majority => count / 2 + 1,
        }
    }

    /// Whether the sub-policy outcomes satisfy the rule.
    pub fn evaluate(&self, sub_policy_results: &[bool]) -> bool {
        let ok = sub_policy_results.iter().filter(|r| **r).count();
        ok >= self.threshold(sub_policy_results.len())
    }
}

impl std::fmt::Display for ImplicitMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.rule.as_str_name(), self.sub_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msp_role::MspRoleType as R;

    fn role(msp: &str, r: R) -> MspPrincipal {
        Principal::role(msp, r).to_proto()
    }
    fn by(i: i32) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(signature_policy::Type::SignedBy(i)),
        }
    }
    fn out_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                n,
                rules,
            })),
        }
    }
    fn env(rule: SignaturePolicy, ids: Vec<MspPrincipal>) -> SignaturePolicyEnvelope {
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(rule),
            identities: ids,
        }
    }

    #[test]
    fn parse_table_matches_fabric_shapes() {
        let m = R::Member;
        let cases: Vec<(&str, SignaturePolicyEnvelope)> = vec![
            (
                "AND('A.member', 'B.member')",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "OR('A.member', 'B.member')",
                env(
                    out_of(1, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "OutOf(1, 'A.member', 'B.member')",
                env(
                    out_of(1, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "OutOf('2', \"A.member\", \"B.member\")",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "AND('A.client', 'B.peer')",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    vec![role("A", R::Client), role("B", R::Peer)],
                ),
            ),
            // Nested gates' principals are numbered before the enclosing gate's own.
            (
                "OR('A.member', AND('B.member', 'C.member'))",
                env(
                    out_of(1, vec![by(2), out_of(2, vec![by(0), by(1)])]),
                    vec![role("B", m), role("C", m), role("A", m)],
                ),
            ),
            (
                "OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
                env(
                    out_of(
                        1,
                        vec![out_of(2, vec![by(0), by(1)]), out_of(1, vec![by(2), by(3)])],
                    ),
                    vec![
                        role("A", m),
                        role("B", m),
                        role("C", R::Admin),
                        role("D", m),
                    ],
                ),
            ),
            (
                "OR('MSP.member', 'MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.member')",
                env(
                    out_of(1, vec![by(0), by(1), by(2)]),
                    vec![
                        role("MSP", m),
                        role("MSP.WITH.DOTS", m),
                        role("MSP-WITH-DASHES", m),
                    ],
                ),
            ),
            (
                "or('A.peer', 'B.admin', 'C.orderer', 'D.client')",
                env(
                    out_of(1, vec![by(0), by(1), by(2), by(3)]),
                    vec![
                        role("A", R::Peer),
                        role("B", R::Admin),
                        role("C", R::Orderer),
                        role("D", R::Client),
                    ],
                ),
            ),
            // Identical principals are kept twice, as Fabric does.
            (
                "  AND ( 'A.member' ,\n\t'A.member' )  ",
                env(
                    out_of(2, vec![by(0), by(1)]),
                    vec![role("A", m), role("A", m)],
                ),
            ),
            (
                "OutOf(0, 'A.member', 'B.member')",
                env(
                    out_of(0, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "OUTOF(3, 'A.member', 'B.member')",
                env(
                    out_of(3, vec![by(0), by(1)]),
                    vec![role("A", m), role("B", m)],
                ),
            ),
            (
                "AND('A.member')",
                env(out_of(1, vec![by(0)]), vec![role("A", m)]),
            ),
        ];
        for (text, expected) in cases {
            let got = parse_policy(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, expected, "{text}");
            // Printing and re-parsing gives back the very same envelope.
            let printed = print_policy(&got).unwrap();
            assert_eq!(parse_policy(&printed).unwrap(), got, "{text} -> {printed}");
        }
    }

    #[test]
    fn printed_forms() {
        let p = |s| print_policy(&parse_policy(s).unwrap()).unwrap();
        assert_eq!(
            p("or('A.member',and('B.peer','C.client'))"),
            "OR('A.member', AND('B.peer', 'C.client'))"
        );
        assert_eq!(
            p("OutOf(2,'A.member','B.member','C.member')"),
            "OutOf(2, 'A.member', 'B.member', 'C.member')"
        );
    }

    #[test]
    fn bad_strings_give_typed_errors() {
        let syntax = |s: &str| matches!(parse_policy(s), Err(PolicyError::Syntax { .. }));
        assert!(syntax(""));
        assert!(syntax("   "));
        assert!(syntax("'A.member'"));
        assert!(syntax("1"));
        assert!(syntax("AND("));
        assert!(syntax("AND('A.member'"));
        assert!(syntax("NOPE('A.member')"));
        assert!(syntax("AND('A.member',)"));
        assert!(syntax("AND('A.member', 'B.member'))"));
        assert!(syntax("OR('A.member', Bmember)"));
        assert!(syntax("OutOf(1, 2)"));
        assert!(syntax("OR('A.member' 'B.member')"));
        assert!(syntax("AND('A.member)"));
        assert!(syntax("OutOf(AND('A.member'), 'B.member')"));
        assert_eq!(
            parse_policy("OR('A.member', 'Bmember')"),
            Err(PolicyError::BadPrincipal("Bmember".into()))
        );
        assert_eq!(
            parse_policy("OR('A.superuser')"),
            Err(PolicyError::BadPrincipal("A.superuser".into()))
        );
        assert_eq!(
            parse_policy("OR('A B.member')"),
            Err(PolicyError::BadPrincipal("A B.member".into()))
        );
        assert_eq!(
            parse_policy("OR('.member')"),
            Err(PolicyError::BadPrincipal(".member".into()))
        );
        assert_eq!(
            parse_policy("OutOf(-1, 'A.member', 'B.member')"),
            Err(PolicyError::BadThreshold { t: -1, n: 2 })
        );
        assert_eq!(
            parse_policy("OutOf(4, 'A.member', 'B.member')"),
            Err(PolicyError::BadThreshold { t: 4, n: 2 })
        );
        assert_eq!(
            parse_policy("AND()"),
            Err(PolicyError::EmptyGate("AND".into()))
        );
        assert_eq!(
            parse_policy("OutOf(1)"),
            Err(PolicyError::EmptyGate("OutOf".into()))
        );
        let deep = format!(
            "{}'A.member'{}",
            "AND(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert_eq!(parse_policy(&deep), Err(PolicyError::TooLarge));
        let wide = format!("OR({})", vec!["'A.member'"; MAX_NODES + 1].join(","));
        assert_eq!(parse_policy(&wide), Err(PolicyError::TooLarge));
        let ok_wide = format!("OR({})", vec!["'A.member'"; 2000].join(","));
        assert_eq!(parse_policy(&ok_wide).unwrap().identities.len(), 2000);
    }

    /// Identities for evaluation tests: (msp, role) pairs; the matcher follows role semantics.
    fn matcher(id: &(&str, R), p: &Principal) -> bool {
        match p {
            Principal::Role { msp_id, role } => {
                msp_id == id.0 && (*role == R::Member || *role == id.1)
            }
            _ => false,
        }
    }

    #[test]
    fn evaluation_table() {
        let a = ("A", R::Peer);
        let a2 = ("A", R::Client);
        let b = ("B", R::Peer);
        let c = ("C", R::Admin);
        type Case<'a> = (&'a str, Vec<(&'a str, R)>, bool);
        let cases: Vec<Case> = vec![
            ("AND('A.member', 'B.member')", vec![a, b], true),
            ("AND('A.member', 'B.member')", vec![a], false),
            ("AND('A.member', 'B.member')", vec![b, a], true),
            ("OR('A.member', 'B.member')", vec![b], true),
            ("OR('A.member', 'B.member')", vec![c], false),
            ("OR('A.member', 'B.member')", vec![], false),
            // One signature is used at most once per evaluation.
            ("AND('A.member', 'A.member')", vec![a], false),
            ("AND('A.member', 'A.member')", vec![a, a2], true),
            (
                "OutOf(2, 'A.member', 'B.member', 'C.member')",
                vec![c, a],
                true,
            ),
            (
                "OutOf(2, 'A.member', 'B.member', 'C.member')",
                vec![c],
                false,
            ),
            ("AND('A.peer', 'B.member')", vec![a2, b], false),
            ("AND('A.client', 'B.peer')", vec![a2, b], true),
            ("OutOf(0, 'A.member')", vec![], true),
            ("OutOf(2, 'A.member')", vec![a, a2], false),
            (
                "OR('C.admin', AND('A.member', 'B.member'))",
                vec![a, b],
                true,
            ),
            // No backtracking: the first rule grabs the client identity the second one needed.
            ("AND('A.member', 'A.client')", vec![a2, a], false),
            ("AND('A.client', 'A.member')", vec![a2, a], true),
            // Every rule of a gate runs even after its threshold is met, consuming identities.
            (
                "AND(OR('A.member', 'A.member'), 'A.member')",
                vec![a, a2],
                false,
            ),
            (
                "AND('A.member', OR('A.member', 'A.member'))",
                vec![a, a2],
                true,
            ),
        ];
        for (text, ids, expected) in cases {
            let policy = CompiledPolicy::parse(text).unwrap();
            let m = |id: &(&str, R), p: &Principal| matcher(id, p);
            assert_eq!(policy.evaluate(&ids, &m), expected, "{text} with {ids:?}");
        }
    }

    #[test]
    fn evaluation_with_real_msps() {
        use crate::msp::tests::TestOrg;
        let org1 = TestOrg::new("Org1MSP");
        let org2 = TestOrg::new("Org2MSP");
        let mut mgr = MspManager::new();
        mgr.insert(org1.msp());
        mgr.insert(org2.msp());
        let (p1, _) = org1.identity("peer0", &["peer"]);
        let (p2, _) = org2.identity("peer0", &["peer"]);
        let (c1, _) = org1.identity("user", &["client"]);
        let policy = CompiledPolicy::parse("AND('Org1MSP.peer', 'Org2MSP.peer')").unwrap();
        assert!(policy.evaluate(&[p1.clone(), p2.clone()], &mgr));
        assert!(!policy.evaluate(&[c1.clone(), p2.clone()], &mgr));
        assert!(!policy.evaluate(&deduplicate(vec![p1.clone(), p1.clone()]), &mgr));
        assert_eq!(
            deduplicate(vec![p1.clone(), p1.clone(), c1.clone()]).len(),
            2
        );
        let members = CompiledPolicy::parse("AND('Org1MSP.member', 'Org1MSP.member')").unwrap();
        assert!(!members.evaluate(std::slice::from_ref(&p1), &mgr));
        assert!(members.evaluate(&[p1, c1], &mgr));
    }

    #[test]
    fn compile_rejects_malformed_envelopes() {
        let ids = vec![role("A", R::Member)];
        assert!(matches!(
            CompiledPolicy::compile(&env(out_of(1, vec![by(1)]), ids.clone())),
            Err(PolicyError::Malformed(_))
        ));
        assert!(matches!(
            CompiledPolicy::compile(&env(out_of(1, vec![by(-1)]), ids.clone())),
            Err(PolicyError::Malformed(_))
        ));
        let mut v1 = env(by(0), ids.clone());
        v1.version = 1;
        assert_eq!(
            CompiledPolicy::compile(&v1),
            Err(PolicyError::UnsupportedVersion(1))
        );
        let no_rule = SignaturePolicyEnvelope {
            version: 0,
            rule: None,
            identities: ids,
        };
        assert!(matches!(
            CompiledPolicy::compile(&no_rule),
            Err(PolicyError::Malformed(_))
        ));
        assert!(CompiledPolicy::from_bytes(&[0xff, 0xff]).is_err());
        let bytes = parse_policy("OR('A.member')").unwrap().encode_to_vec();
        assert!(CompiledPolicy::from_bytes(&bytes).is_ok());
        let wrapped = signature_policy_to_policy(&parse_policy("OR('A.member')").unwrap());
        assert_eq!(wrapped.r#type, 1);
        assert_eq!(wrapped.value, bytes);
    }

    #[test]
    fn implicit_meta_rules() {
        let any = ImplicitMeta::parse("ANY Readers").unwrap();
        let all = ImplicitMeta::parse("ALL Writers").unwrap();
        let maj = ImplicitMeta::parse("MAJORITY  Endorsement").unwrap();
        assert_eq!(maj.sub_policy, "Endorsement");
        assert_eq!(maj.to_string(), "MAJORITY Endorsement");
        assert!(any.evaluate(&[false, true, false]));
        assert!(!any.evaluate(&[false, false]));
        assert!(all.evaluate(&[true, true]));
        assert!(!all.evaluate(&[true, false]));
        assert!(maj.evaluate(&[true, true, false]));
        assert!(!maj.evaluate(&[true, false, false]));
        assert!(!maj.evaluate(&[true, false]));
        assert!(maj.evaluate(&[true, true, false, false, true]));
        // No sub-policies: threshold 0, as in Fabric.
        assert!(any.evaluate(&[]) && all.evaluate(&[]) && maj.evaluate(&[]));
        assert_eq!(ImplicitMeta::from_proto(&maj.to_proto()).unwrap(), maj);
        assert_eq!(maj.to_policy().r#type, 3);
        for bad in [
            "",
            "SOME Readers",
            "ANY",
            "ANY Readers extra",
            "any Readers",
        ] {
            assert!(matches!(
                ImplicitMeta::parse(bad),
                Err(PolicyError::BadImplicitMeta(_))
            ));
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,120}") {
            let _ = parse_policy(&s);
        }

        #[test]
        fn parser_never_panics_on_policy_like_input(
            s in "(AND|OR|OutOf|and|\\(|\\)|,| |'|\"|[0-9]|-|A\\.member|B\\.peer|\\.){0,60}"
        ) {
            if let Ok(env) = parse_policy(&s) {
                let printed = print_policy(&env).unwrap();
                proptest::prop_assert_eq!(parse_policy(&printed).unwrap(), env);
            }
        }

        #[test]
        fn compile_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(p) = CompiledPolicy::from_bytes(&bytes) {
                let ids = [("A", R::Member)];
                let m = |id: &(&str, R), p: &Principal| matcher(id, p);
                let _ = p.evaluate(&ids, &m);
            }
        }
    }
}
