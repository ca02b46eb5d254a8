//! Salted per-field commitments: what the public licence record holds instead of values.
//!
//! # Construction
//!
//! ```text
//! commitment = SHA-256( salt ‖ u32-BE(len(field name)) ‖ field name ‖ value )
//! ```
//!
//! - `salt` is exactly [`SALT_LEN`] = 32 bytes (256 bits), fresh and uniformly random for every
//!   field of every licence, chosen by the issuing side and handed to the holder with the value.
//!   A fixed salt width means the byte string above splits in exactly one way, so one commitment
//!   cannot be opened to two different (name, value) pairs by shifting bytes between the salt and
//!   the rest. 256 bits (well above the 128-bit floor) also make guessing low-entropy values
//!   (sex, ethnicity, birth date) from the public commitment hopeless.
//! - The field name is length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
//! - `value` is the field's UTF-8 text, exactly as issued (no normalisation: the holder presents
//!   back the same bytes it received).
//!
//! On the wire (JSON) salts and commitments are lowercase hex.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Width of every field salt, in bytes.
pub const SALT_LEN: usize = 32;

/// Errors building salts and commitments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// The salt is not exactly [`SALT_LEN`] bytes.
    #[error("salt for field `{field}` must be {SALT_LEN} bytes, got {len}")]
    SaltLength {
        /// The field the salt belongs to.
        field: String,
        /// The length received.
        len: usize,
    },
    /// The text is not lowercase/uppercase hex of the right width.
    #[error("malformed hex in {what}")]
    Hex {
        /// What was being parsed.
        what: &'static str,
    },
}

/// A 32-byte field salt; its `Debug` output is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; SALT_LEN]);

impl Salt {
    /// Wraps 32 random bytes.
    pub fn new(bytes: [u8; SALT_LEN]) -> Self {
        Self(bytes)
    }

    /// Validates the length of bytes received for `field`.
    pub fn from_slice(field: &str, bytes: &[u8]) -> Result<Self, CommitmentError> {
        let arr: [u8; SALT_LEN] = bytes.try_into().map_err(|_| CommitmentError::SaltLength {
            field: field.to_owned(),
            len: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    /// Parses a hex salt for `field`.
    pub fn from_hex(field: &str, s: &str) -> Result<Self, CommitmentError> {
        let bytes = hex::decode(s).map_err(|_| CommitmentError::Hex { what: "salt" })?;
        Self::from_slice(field, &bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

impl Serialize for Salt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Salt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        let bytes = hex::decode(s.as_ref()).map_err(serde::de::Error::custom)?;
        let arr: [u8; SALT_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("salt must be {SALT_LEN} bytes")))?;
        Ok(Self(arr))
    }
}

/// A SHA-256 field commitment.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    /// Commits to `value` of field `name` under `salt` (see the module doc for the construction).
    pub fn compute(salt: &Salt, name: &str, value: &str) -> Self {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update((name.len() as u32).to_be_bytes());
        h.update(name.as_bytes());
        h.update(value.as_bytes());
        Self(h.finalize().into())
    }

    /// Whether `value` under `salt` opens this commitment.
    pub fn opens(&self, salt: &Salt, name: &str, value: &str) -> bool {
        Self::compute(salt, name, value) == *self
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CommitmentError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| CommitmentError::Hex { what: "commitment" })?;
        Ok(Self(out))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({})", self.to_hex())
    }
}

impl Serialize for Commitment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Commitment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_vector() {
        // salt = 00 01 02 … 1f, field "name", value "张三".
        let salt = Salt::new(std::array::from_fn(|i| i as u8));
        let c = Commitment::compute(&salt, "name", "张三");
        // Independently: sha256(bytes(range(32)) + b"\0\0\0\x04name" + "张三".encode()).
        assert_eq!(
            c.to_hex(),
            "f087d8eb5c778eb7b11dfe302ea02c5c5eebd80f731d22ce62b9be922a00357c"
        );
        assert!(c.opens(&salt, "name", "张三"));
        assert!(!c.opens(&salt, "name", "张四"));
        assert!(!c.opens(&salt, "nam", "e张三"));
    }

    #[test]
    fn salt_length_is_checked() {
        assert!(matches!(
            Salt::from_slice("sex", &[0u8; 16]),
            Err(CommitmentError::SaltLength { len: 16, .. })
        ));
        assert!(Salt::from_hex("sex", &"ab".repeat(32)).is_ok());
        assert!(serde_json::from_str::<Salt>("\"abcd\"").is_err());
    }

    #[test]
    fn debug_redacts_salt() {
        let salt = Salt::new([7; 32]);
        assert_eq!(format!("{salt:?}"), "Salt(<redacted>)");
    }

    #[test]
    fn serde_round_trip() {
        let salt = Salt::new([9; 32]);
        let c = Commitment::compute(&salt, "sex", "F");
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Commitment>(&j).unwrap(), c);
        let j = serde_json::to_string(&salt).unwrap();
        assert_eq!(serde_json::from_str::<Salt>(&j).unwrap(), salt);
    }
}
