//! Licence identifiers, modelled on the structure of GB/T 36903 (electronic licence identifiers):
//! licence type, issuing authority, serial number, check character.
//!
//! # Format
//!
//! ```text
//! <type tag>-<issuer code>-<serial>-<check>      e.g.  IDC-PSB110000-000000123-N
//! ```
//!
//! - *type tag*: 2–8 characters `0-9A-Z`, the catalogue's [`id_tag`](crate::LicenceType::id_tag)
//!   for the licence type (`IDC` for `ID_CARD`, …);
//! - *issuer code*: 2–18 characters `0-9A-Z`, the catalogue's code for the issuing MSP (18 is the
//!   width of a unified social credit code, which a real deployment may use here);
//! - *serial*: 1–20 characters `0-9A-Z`, chosen by the issuer;
//! - *check*: one character `0-9A-Z`, ISO/IEC 7064 MOD 37,36 (the hybrid system with M = 36)
//!   computed over the three parts concatenated without separators.
//!
//! MOD 37,36 catches every single-character substitution and most adjacent transpositions, the
//! mistakes a clerk typing an identifier at a window makes. Identifiers are unique per
//! channel: the contract refuses to issue an identifier that already has a record.

use serde::{Deserialize, Serialize};
use std::fmt;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Why an identifier (or one of its parts) is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenceIdError {
    /// The identifier does not have exactly four `-`-separated parts.
    #[error("licence identifier must be TYPE-ISSUER-SERIAL-CHECK")]
    Shape,
    /// A part has a character outside `0-9A-Z` or a length out of range.
    #[error("licence identifier {part} must be {min}-{max} characters 0-9A-Z")]
    Part {
        /// Which part.
        part: &'static str,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// The check character does not match.
    #[error("licence identifier check character is wrong")]
    Check,
}

/// ISO/IEC 7064 MOD 37,36 check character for `payload` (characters `0-9A-Z` only).
pub fn mod37_36_check(payload: &str) -> Result<char, LicenceIdError> {
    const M: u32 = 36;
    let mut p = M;
    for b in payload.bytes() {
        let v = char_value(b).ok_or(LicenceIdError::Part {
            part: "payload",
            min: 1,
            max: usize::MAX,
        })?;
        let mut s = (p + v) % M;
        if s == 0 {
            s = M;
        }
        p = (2 * s) % (M + 1);
    }
    Ok(ALPHABET[((M + 1 - p) % M) as usize] as char)
}

fn char_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

fn check_part(s: &str, part: &'static str, min: usize, max: usize) -> Result<(), LicenceIdError> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| char_value(b).is_some()) {
        return Err(LicenceIdError::Part { part, min, max });
    }
    Ok(())
}

/// A validated licence identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LicenceId(String);

impl LicenceId {
    /// Builds an identifier from its parts, computing the check character.
    pub fn build(type_tag: &str, issuer_code: &str, serial: &str) -> Result<Self, LicenceIdError> {
        check_part(type_tag, "type tag", 2, 8)?;
        check_part(issuer_code, "issuer code", 2, 18)?;
        check_part(serial, "serial", 1, 20)?;
        let check = mod37_36_check(&format!("{type_tag}{issuer_code}{serial}"))?;
        Ok(Self(format!("{type_tag}-{issuer_code}-{serial}-{check}")))
    }

    /// Parses and validates an identifier, including its check character.
    pub fn parse(s: &str) -> Result<Self, LicenceIdError> {
        let parts: Vec<&str> = s.split('-').collect();
        let [t, i, n, c] = parts.as_slice() else {
            return Err(LicenceIdError::Shape);
        };
        let built = Self::build(t, i, n)?;
        check_part(c, "check", 1, 1)?;
        if built.0 != s {
            return Err(LicenceIdError::Check);
        }
        Ok(built)
    }

    /// The type tag part.
    pub fn type_tag(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }

    /// The issuer code part.
    pub fn issuer_code(&self) -> &str {
        self.0.split('-').nth(1).unwrap_or_default()
    }

    /// The serial part.
    pub fn serial(&self) -> &str {
        self.0.split('-').nth(2).unwrap_or_default()
    }

    /// The identifier text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LicenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LicenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenceId({})", self.0)
    }
}

impl std::str::FromStr for LicenceId {
    type Err = LicenceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for LicenceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LicenceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_7064_reference_vector() {
        // The worked example published for ISO/IEC 7064 MOD 37,36.
        assert_eq!(mod37_36_check("A12425GABC1234002").unwrap(), 'M');
    }

    #[test]
    fn build_and_parse() {
        let id = LicenceId::build("IDC", "PSB110000", "000000123").unwrap();
        assert_eq!(id.as_str(), "IDC-PSB110000-000000123-N");
        assert_eq!(LicenceId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.type_tag(), "IDC");
        assert_eq!(id.issuer_code(), "PSB110000");
        assert_eq!(id.serial(), "000000123");
    }

    #[test]
    fn detects_substitutions_and_most_transpositions() {
        let id = LicenceId::build("IDC", "PSB110000", "000000123").unwrap();
        let s = id.as_str().to_owned();
        let body_len = s.len() - 2;
        let (mut swaps, mut caught) = (0, 0);
        for i in 0..body_len {
            let c = s.as_bytes()[i];
            if c == b'-' {
                continue;
            }
            for &r in ALPHABET.iter().filter(|&&r| r != c) {
                let mut m = s.clone().into_bytes();
                m[i] = r;
                let m = String::from_utf8(m).unwrap();
                assert_eq!(LicenceId::parse(&m), Err(LicenceIdError::Check), "{m}");
            }
            let next = s.as_bytes()[i + 1];
            if next != b'-' && next != c && i + 1 < body_len {
                let mut m = s.clone().into_bytes();
                m.swap(i, i + 1);
                let m = String::from_utf8(m).unwrap();
                swaps += 1;
                caught += usize::from(LicenceId::parse(&m) == Err(LicenceIdError::Check));
            }
        }
        assert!(swaps >= 5 && caught * 10 >= swaps * 8, "{caught}/{swaps}");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(LicenceId::parse("IDC-PSB-1"), Err(LicenceIdError::Shape));
        assert!(matches!(
            LicenceId::parse("idc-PSB-1-0"),
            Err(LicenceIdError::Part { .. })
        ));
        assert!(matches!(
            LicenceId::build("I", "PSB", "1"),
            Err(LicenceIdError::Part { .. })
        ));
        assert!(serde_json::from_str::<LicenceId>("\"IDC-PSB-1-0\"").is_err());
    }
}
