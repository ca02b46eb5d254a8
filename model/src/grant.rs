//! Holder-signed messages: grants, withdrawals and usage-trail requests, with their canonical
//! encodings.
//!
//! # Canonical grant encoding (`elicense/grant/v1`)
//!
//! The holder signs, and the grant id is derived from, this byte string (`lp(x)` = u32-BE length
//! of `x` then `x`; integers are fixed-width big-endian):
//!
//! ```text
//! lp("elicense/grant/v1")
//! lp(channel) lp(licence id) lp(grantee MSP ID) lp(matter code)
//! u32(number of fields) lp(field)…          fields sorted by byte value, no duplicates
//! i64(not_before) i64(not_after)            seconds since the Unix epoch, UTC
//! u32(uses)
//! lp(nonce)                                 16–64 bytes, random per grant
//! code check                                32 bytes, fixed width
//! ```
//!
//! The *grant body* (`elicense/grant-body/v1`) is the same sequence with that tag and without the
//! code check; its SHA-256 (the body digest) is what the holder's code is derived from, which
//! breaks the cycle "code depends on grant, grant contains code check".
//!
//! - **grant id** = lowercase hex SHA-256 of the canonical grant encoding.
//! - **signature** = ECDSA P-256 over SHA-256 of the canonical grant encoding, DER, low-S.
//!
//! The channel is part of the grant so a grant cannot be replayed on another channel where the
//! same licence was issued.
//!
//! # Withdrawal (`elicense/withdraw/v1`) and usage-trail request (`elicense/trail/v1`)
//!
//! ```text
//! withdrawal:    lp("elicense/withdraw/v1") lp(channel) lp(grant id) i64(requested_at) lp(nonce)
//! trail request: lp("elicense/trail/v1")    lp(channel) lp(licence id) i64(requested_at) lp(nonce)
//! ```
//!
//! Each is signed like a grant, under its own tag, so no signature over one kind of message is
//! ever valid for another. A trail request must be fresh: its `requested_at` must be within
//! [`TRAIL_FRESHNESS_SECS`] of the transaction's timestamp.

use crate::canonical::CanonicalWriter;
use crate::catalogue::{is_valid_field_name, is_valid_msp_id};
use crate::code::{Code, CodeCheck, CodeSalt, HolderSecret};
use crate::licence_id::LicenceId;
use crate::signature::{sign, HolderKey, SignatureError};
use fabric_common::crypto::Signer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Domain tag of the canonical grant encoding.
pub const GRANT_TAG: &str = "elicense/grant/v1";
/// Domain tag of the grant body (the code derivation input).
pub const GRANT_BODY_TAG: &str = "elicense/grant-body/v1";
/// Domain tag of a withdrawal.
pub const WITHDRAW_TAG: &str = "elicense/withdraw/v1";
/// Domain tag of a usage-trail request.
pub const TRAIL_TAG: &str = "elicense/trail/v1";
/// How far a trail request's `requested_at` may be from the transaction timestamp.
pub const TRAIL_FRESHNESS_SECS: i64 = 300;
/// Largest `uses` a grant may allow.
pub const MAX_USES: u32 = 100;
/// Longest grant validity window (one year): grants are for a matter at hand, not standing access.
pub const MAX_GRANT_SECS: i64 = 366 * 24 * 3600;

/// Why a grant or holder request is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// A field of the message is out of its allowed range or shape.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// Which part of the message.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The holder signature is refused.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

fn invalid(field: &'static str, why: impl Into<String>) -> GrantError {
    GrantError::Invalid {
        field,
        why: why.into(),
    }
}

/// Whether `s` is a valid matter code: 1–64 characters `A-Za-z0-9._-`.
pub fn is_valid_matter(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_valid_channel(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
}

/// Random bytes that make each signed message unique (16–64 bytes, hex on the wire).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// Wraps nonce bytes, checking their length.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, GrantError> {
        let v = bytes.into();
        if !(16..=64).contains(&v.len()) {
            return Err(invalid("nonce", "must be 16-64 bytes"));
        }
        Ok(Self(v))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", hex::encode(&self.0))
    }
}

impl Serialize for Nonce {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let v = hex::decode(s.as_ref()).map_err(serde::de::Error::custom)?;
        Self::new(v).map_err(serde::de::Error::custom)
    }
}

/// A grant id: lowercase hex SHA-256 of the canonical grant encoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantId(String);

impl GrantId {
    /// Parses 64 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, GrantError> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("grant id", "must be 64 lowercase hex characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GrantId {
    type Error = GrantError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GrantId> for String {
    fn from(g: GrantId) -> String {
        g.0
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantId({})", self.0)
    }
}

/// What a holder authorises: one grantee, one licence, one matter, named fields, a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The channel the grant is valid on.
    pub channel: String,
    /// The licence it is for.
    pub licence_id: LicenceId,
    /// The department (MSP ID) whose clerks may use it.
    pub grantee_msp: String,
    /// The matter (事项) code it is for.
    pub matter: String,
    /// The field names the grantee may verify and retrieve (sorted, unique).
    pub fields: Vec<String>,
    /// First second of validity (Unix seconds, UTC).
    pub not_before: i64,
    /// Last second of validity (Unix seconds, UTC, inclusive).
    pub not_after: i64,
    /// How many verifies it allows.
    pub uses: u32,
    /// Random bytes making the grant unique.
    pub nonce: Nonce,
    /// The keyed check of the holder's code (see [`crate::code`]).
    pub code_check: CodeCheck,
}

/// Default `uses` for a grant: single use.
pub const DEFAULT_USES: u32 = 1;

impl Grant {
    /// Checks every field's shape (not the signature).
    pub fn validate(&self) -> Result<(), GrantError> {
        if !is_valid_channel(&self.channel) {
            return Err(invalid("channel", "must be a Fabric channel name"));
        }
        if !is_valid_msp_id(&self.grantee_msp) {
            return Err(invalid("grantee_msp", "must be an MSP ID"));
        }
        if !is_valid_matter(&self.matter) {
            return Err(invalid("matter", "must be 1-64 characters A-Za-z0-9._-"));
        }
        if self.fields.is_empty() || self.fields.len() > 64 {
            return Err(invalid("fields", "must name 1-64 fields"));
        }
        if !self.fields.iter().all(|f| is_valid_field_name(f)) {
            return Err(invalid("fields", "field names must be a-z0-9_"));
        }
        if !self.fields.windows(2).all(|w| w[0] < w[1]) {
            return Err(invalid("fields", "must be sorted and unique"));
        }
        if self.not_after < self.not_before {
            return Err(invalid("not_after", "is before not_before"));
        }
        if self.not_after - self.not_before > MAX_GRANT_SECS {
            return Err(invalid("not_after", "window is longer than one year"));
        }
        if self.uses == 0 || self.uses > MAX_USES {
            return Err(invalid("uses", format!("must be 1-{MAX_USES}")));
        }
        Ok(())
    }

    fn write_body(&self, w: &mut CanonicalWriter) {
        w.str(&self.channel)
            .str(self.licence_id.as_str())
            .str(&self.grantee_msp)
            .str(&self.matter)
            .str_list(&self.fields)
            .i64(self.not_before)
            .i64(self.not_after)
            .u32(self.uses)
            .bytes(self.nonce.as_bytes());
    }

    /// The canonical encoding the holder signs (module doc).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut w = CanonicalWriter::new(GRANT_TAG);
        self.write_body(&mut w);
        w.fixed(&self.code_check.0);
        w.finish()
    }

    /// The grant id: hex SHA-256 of [`Self::canonical_bytes`].
    pub fn id(&self) -> GrantId {
        GrantId(hex::encode(Sha256::digest(self.canonical_bytes())))
    }

    /// SHA-256 of the grant body (everything but the code check): the code derivation input.
    pub fn body_digest(&self) -> [u8; 32] {
        body_digest(self)
    }

    /// Whether the grant allows field `name`.
    pub fn allows_field(&self, name: &str) -> bool {
        self.fields
            .binary_search_by(|f| f.as_str().cmp(name))
            .is_ok()
    }
}

fn body_digest(g: &Grant) -> [u8; 32] {
    let mut w = CanonicalWriter::new(GRANT_BODY_TAG);
    g.write_body(&mut w);
    Sha256::digest(w.finish()).into()
}

/// A grant as the holder drafts it, before the code check is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantDraft {
    /// The channel the grant is valid on.
    pub channel: String,
    /// The licence it is for.
    pub licence_id: LicenceId,
    /// The grantee MSP ID.
    pub grantee_msp: String,
    /// The matter code.
    pub matter: String,
    /// The allowed field names (any order; sorted and deduplicated when sealed).
    pub fields: Vec<String>,
    /// First second of validity.
    pub not_before: i64,
    /// Last second of validity (inclusive).
    pub not_after: i64,
    /// Uses allowed (normally [`DEFAULT_USES`]).
    pub uses: u32,
    /// Random nonce.
    pub nonce: Nonce,
}

/// A sealed grant together with what the holder keeps or sends privately.
#[derive(Debug, Clone)]
pub struct SealedGrant {
    /// The grant to sign and publish.
    pub grant: Grant,
    /// The code the holder tells the clerk.
    pub code: Code,
    /// The code salt, sent as transient data in `authorize` only.
    pub code_salt: CodeSalt,
}

impl GrantDraft {
    /// Derives the code and code salt from `secret` and attaches the code check.
    pub fn seal(self, secret: &HolderSecret) -> Result<SealedGrant, GrantError> {
        let mut fields = self.fields;
        fields.sort();
        fields.dedup();
        let mut grant = Grant {
            channel: self.channel,
            licence_id: self.licence_id,
            grantee_msp: self.grantee_msp,
            matter: self.matter,
            fields,
            not_before: self.not_before,
            not_after: self.not_after,
            uses: self.uses,
            nonce: self.nonce,
            code_check: CodeCheck([0; 32]),
        };
        grant.validate()?;
        let digest = body_digest(&grant);
        let code = secret.code(&digest);
        let code_salt = secret.code_salt(&digest);
        grant.code_check = CodeCheck::compute(&code_salt, &code);
        Ok(SealedGrant {
            grant,
            code,
            code_salt,
        })
    }
}

/// A grant with the holder's signature, as relayed to `authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    /// The grant.
    pub grant: Grant,
    /// Hex DER ECDSA signature over [`Grant::canonical_bytes`].
    pub signature: String,
}

impl SignedGrant {
    /// Signs `grant` with the holder's key.
    pub fn sign(grant: Grant, signer: &dyn Signer) -> Result<Self, SignatureError> {
        let signature = hex::encode(sign(signer, &grant.canonical_bytes())?);
        Ok(Self { grant, signature })
    }

    /// Validates the grant and checks the signature against the licence's holder key.
    pub fn verify(&self, holder: &HolderKey) -> Result<GrantId, GrantError> {
        self.grant.validate()?;
        holder.verify_hex(&self.grant.canonical_bytes(), &self.signature)?;
        Ok(self.grant.id())
    }
}

/// A holder's withdrawal of one grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The channel.
    pub channel: String,
    /// The grant withdrawn.
    pub grant_id: GrantId,
    /// When the holder asked (Unix seconds); informative, withdrawals may arrive late.
    pub requested_at: i64,
    /// Random nonce.
    pub nonce: Nonce,
}

impl Withdrawal {
    /// The canonical encoding the holder signs.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut w = CanonicalWriter::new(WITHDRAW_TAG);
        w.str(&self.channel)
            .str(self.grant_id.as_str())
            .i64(self.requested_at)
            .bytes(self.nonce.as_bytes());
        w.finish()
    }
}

/// A withdrawal with the holder's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedWithdrawal {
    /// The withdrawal.
    pub withdrawal: Withdrawal,
    /// Hex DER ECDSA signature over [`Withdrawal::canonical_bytes`].
    pub signature: String,
}

impl SignedWithdrawal {
    /// Signs `withdrawal` with the holder's key.
    pub fn sign(withdrawal: Withdrawal, signer: &dyn Signer) -> Result<Self, SignatureError> {
        let signature = hex::encode(sign(signer, &withdrawal.canonical_bytes())?);
        Ok(Self {
            withdrawal,
            signature,
        })
    }

    /// Checks the signature against the holder key.
    pub fn verify(&self, holder: &HolderKey) -> Result<(), GrantError> {
        if !is_valid_channel(&self.withdrawal.channel) {
            return Err(invalid("channel", "must be a Fabric channel name"));
        }
        holder.verify_hex(&self.withdrawal.canonical_bytes(), &self.signature)?;
        Ok(())
    }
}

/// A holder's request for the usage trail of one of its licences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailRequest {
    /// The channel.
    pub channel: String,
    /// The licence whose usage is requested.
    pub licence_id: LicenceId,
    /// When the holder asked (Unix seconds); must be fresh.
    pub requested_at: i64,
    /// Random nonce.
    pub nonce: Nonce,
}

impl TrailRequest {
    /// The canonical encoding the holder signs.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut w = CanonicalWriter::new(TRAIL_TAG);
        w.str(&self.channel)
            .str(self.licence_id.as_str())
            .i64(self.requested_at)
            .bytes(self.nonce.as_bytes());
        w.finish()
    }

    /// Whether `requested_at` is within [`TRAIL_FRESHNESS_SECS`] of `now`.
    pub fn is_fresh(&self, now: i64) -> bool {
        (self.requested_at - now).abs() <= TRAIL_FRESHNESS_SECS
    }
}

/// A trail request with the holder's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTrailRequest {
    /// The request.
    pub request: TrailRequest,
    /// Hex DER ECDSA signature over [`TrailRequest::canonical_bytes`].
    pub signature: String,
}

impl SignedTrailRequest {
    /// Signs `request` with the holder's key.
    pub fn sign(request: TrailRequest, signer: &dyn Signer) -> Result<Self, SignatureError> {
        let signature = hex::encode(sign(signer, &request.canonical_bytes())?);
        Ok(Self { request, signature })
    }

    /// Checks the signature against the holder key.
    pub fn verify(&self, holder: &HolderKey) -> Result<(), GrantError> {
        holder.verify_hex(&self.request.canonical_bytes(), &self.signature)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::crypto::SigningKey;

    pub(crate) fn draft() -> GrantDraft {
        GrantDraft {
            channel: "police-service".into(),
            licence_id: LicenceId::build("IDC", "PSB", "000000123").unwrap(),
            grantee_msp: "ServiceCentreMSP".into(),
            matter: "SC-0001".into(),
            fields: vec!["name".into(), "id_number".into(), "name".into()],
            not_before: 1_700_000_000,
            not_after: 1_700_003_600,
            uses: 1,
            nonce: Nonce::new(vec![0xAB; 16]).unwrap(),
        }
    }

    fn secret() -> HolderSecret {
        HolderSecret::new(b"0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn canonical_encoding_is_stable() {
        let sealed = draft().seal(&secret()).unwrap();
        let g = &sealed.grant;
        assert_eq!(g.fields, ["id_number", "name"]);
        let bytes = g.canonical_bytes();
        assert_eq!(hex::encode(&bytes), "00000011656c6963656e73652f6772616e742f76310000000e706f6c6963652d73657276696365000000134944432d5053422d3030303030303132332d4e000000105365727669636543656e7472654d53500000000753432d30303031000000020000000969645f6e756d626572000000046e616d65000000006553f100000000006553ff100000000100000010abababababababababababababababab107f885f32245ae55a3752f2e485f86a7aa7446c78ee5a3f8e69df5b1b50be26");
        assert_eq!(
            hex::encode(g.body_digest()),
            "8f7d45d6ecf775c63fdd7d68dcb377657e4f6cea0789a7be0efd2a5a32c20b8b"
        );
        assert_eq!(sealed.code.as_str(), "07894046");
        assert_eq!(
            g.id().as_str(),
            "251663b98518a449d3f99aedeba323d6c3593d3ef82987e257fd47704850a464"
        );
    }

    #[test]
    fn signing_and_verification() {
        let sk = SigningKey::from_scalar_bytes(&[5u8; 32]).unwrap();
        let holder = HolderKey::from_public_key(sk.public_key().clone());
        let sealed = draft().seal(&secret()).unwrap();
        let signed = SignedGrant::sign(sealed.grant.clone(), &sk).unwrap();
        assert_eq!(signed.verify(&holder).unwrap(), sealed.grant.id());
        let mut tampered = signed.clone();
        tampered.grant.uses = 2;
        assert!(matches!(
            tampered.verify(&holder),
            Err(GrantError::Signature(SignatureError::Invalid))
        ));
        // A grant signature never verifies as a withdrawal and vice versa.
        let w = Withdrawal {
            channel: "police-service".into(),
            grant_id: sealed.grant.id(),
            requested_at: 1,
            nonce: Nonce::new(vec![1; 16]).unwrap(),
        };
        let sw = SignedWithdrawal {
            withdrawal: w,
            signature: signed.signature.clone(),
        };
        assert!(sw.verify(&holder).is_err());
    }

    #[test]
    fn validation() {
        let mut d = draft();
        d.uses = 0;
        assert!(d.seal(&secret()).is_err());
        let mut d = draft();
        d.not_after = d.not_before - 1;
        assert!(d.seal(&secret()).is_err());
        let mut d = draft();
        d.matter = "bad matter".into();
        assert!(d.seal(&secret()).is_err());
        let mut d = draft();
        d.fields.clear();
        assert!(d.seal(&secret()).is_err());
        assert!(Nonce::new(vec![0; 15]).is_err());
        assert!(GrantId::parse(&"A".repeat(64)).is_err());
        let g = draft().seal(&secret()).unwrap().grant;
        let mut unsorted = g.clone();
        unsorted.fields.reverse();
        assert!(unsorted.validate().is_err());
        assert!(g.allows_field("name") && !g.allows_field("sex"));
    }

    #[test]
    fn json_round_trip() {
        let g = draft().seal(&secret()).unwrap().grant;
        let j = serde_json::to_string(&g).unwrap();
        let back: Grant = serde_json::from_str(&j).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.id(), g.id());
    }

    #[test]
    fn trail_freshness() {
        let t = TrailRequest {
            channel: "c".into(),
            licence_id: LicenceId::build("IDC", "PSB", "1").unwrap(),
            requested_at: 1000,
            nonce: Nonce::new(vec![0; 16]).unwrap(),
        };
        assert!(t.is_fresh(1300) && t.is_fresh(700));
        assert!(!t.is_fresh(1301) && !t.is_fresh(699));
    }
}
