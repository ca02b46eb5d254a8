//! The licence catalogue: which licence types exist, who may issue them, which fields they carry.
//!
//! The regulator's admin manages it on every channel; the default content is seeded from
//! `fixtures/catalogue.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// An organisation allowed to issue a licence type, with the code it uses in identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuer {
    /// The issuing organisation's MSP ID, e.g. `PublicSecurityMSP`.
    pub msp_id: String,
    /// Its issuer code in licence identifiers (2–18 characters `0-9A-Z`), e.g. `PSB`.
    pub code: String,
}

/// One licence type of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceType {
    /// The type code, e.g. `ID_CARD` (2–32 characters `A-Z0-9_`).
    pub code: String,
    /// A human name, e.g. `Resident identity card`.
    pub name: String,
    /// The type tag that starts this type's identifiers (2–8 characters `0-9A-Z`), e.g. `IDC`.
    pub id_tag: String,
    /// The organisations that may issue it.
    pub issuers: Vec<Issuer>,
    /// The field names every licence of this type carries (`a-z0-9_`, unique).
    pub fields: Vec<String>,
}

/// The whole catalogue, as seeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    /// Licence types.
    pub types: Vec<LicenceType>,
}

/// Why a catalogue entry is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// A bad type code, tag, issuer code, MSP ID or field name.
    #[error("licence type `{code}`: {what}")]
    Invalid {
        /// The type code concerned.
        code: String,
        /// What is wrong.
        what: String,
    },
    /// The same type code appears twice.
    #[error("licence type `{0}` appears twice")]
    Duplicate(String),
    /// The catalogue text is not valid JSON of the expected shape.
    #[error("catalogue is not valid JSON: {0}")]
    Json(String),
}

/// Whether `s` is a valid field name: 1–64 characters `a-z0-9_`, starting with a letter.
pub fn is_valid_field_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `s` looks like an MSP ID: 1–128 characters `A-Za-z0-9._-`.
pub fn is_valid_msp_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_upper_alnum(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl LicenceType {
    /// Checks the entry's shape.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        let bad = |what: String| CatalogueError::Invalid {
            code: self.code.clone(),
            what,
        };
        if !(2..=32).contains(&self.code.len())
            || !self
                .code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(bad("type code must be 2-32 characters A-Z0-9_".into()));
        }
        if self.name.is_empty() || self.name.len() > 200 {
            return Err(bad("name must be 1-200 bytes".into()));
        }
        if !is_upper_alnum(&self.id_tag, 2, 8) {
            return Err(bad("id_tag must be 2-8 characters 0-9A-Z".into()));
        }
        if self.issuers.is_empty() {
            return Err(bad("at least one issuer is required".into()));
        }
        let mut msps = BTreeSet::new();
        for issuer in &self.issuers {
            if !is_valid_msp_id(&issuer.msp_id) {
                return Err(bad(format!(
                    "issuer MSP ID `{}` is malformed",
                    issuer.msp_id
                )));
            }
            if !is_upper_alnum(&issuer.code, 2, 18) {
                return Err(bad(format!(
                    "issuer code for `{}` must be 2-18 characters 0-9A-Z",
                    issuer.msp_id
                )));
            }
            if !msps.insert(issuer.msp_id.as_str()) {
                return Err(bad(format!("issuer `{}` listed twice", issuer.msp_id)));
            }
        }
        if self.fields.is_empty() || self.fields.len() > 64 {
            return Err(bad("1-64 fields are required".into()));
        }
        let mut names = BTreeSet::new();
        for f in &self.fields {
            if !is_valid_field_name(f) {
                return Err(bad(format!(
                    "field name `{f}` must be 1-64 characters a-z0-9_"
                )));
            }
            if !names.insert(f.as_str()) {
                return Err(bad(format!("field `{f}` listed twice")));
            }
        }
        Ok(())
    }

    /// The issuer entry for `msp_id`, if that organisation may issue this type.
    pub fn issuer(&self, msp_id: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.msp_id == msp_id)
    }

    /// Whether the type carries field `name`.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f == name)
    }
}

impl Catalogue {
    /// Parses and validates catalogue JSON.
    pub fn from_json(text: &str) -> Result<Self, CatalogueError> {
        let c: Self =
            serde_json::from_str(text).map_err(|e| CatalogueError::Json(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Validates every entry and the uniqueness of type codes and tags.
    pub fn validate(&self) -> Result<(), CatalogueError> {
        let mut codes = BTreeSet::new();
        let mut tags = BTreeSet::new();
        for t in &self.types {
            t.validate()?;
            if !codes.insert(t.code.as_str()) {
                return Err(CatalogueError::Duplicate(t.code.clone()));
            }
            if !tags.insert(t.id_tag.as_str()) {
                return Err(CatalogueError::Invalid {
                    code: t.code.clone(),
                    what: format!("id_tag `{}` is used by another type", t.id_tag),
                });
            }
        }
        Ok(())
    }

    /// The type with code `code`.
    pub fn get(&self, code: &str) -> Option<&LicenceType> {
        self.types.iter().find(|t| t.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../fixtures/catalogue.json");

    #[test]
    fn fixture_is_valid_and_matches_the_default_topology() {
        let c = Catalogue::from_json(FIXTURE).unwrap();
        let issuer_of = |code: &str| {
            c.get(code)
                .unwrap()
                .issuers
                .iter()
                .map(|i| i.msp_id.as_str())
                .collect::<Vec<_>>()
        };
        for t in [
            "ID_CARD",
            "HOUSEHOLD_REGISTER",
            "RESIDENCE_PERMIT",
            "DRIVING_LICENCE",
        ] {
            assert_eq!(issuer_of(t), ["PublicSecurityMSP"]);
        }
        assert_eq!(issuer_of("MARRIAGE_CERT"), ["CivilAffairsMSP"]);
        assert_eq!(issuer_of("DIVORCE_CERT"), ["CivilAffairsMSP"]);
        assert_eq!(issuer_of("BUSINESS_LICENCE"), ["MarketRegulationMSP"]);
        assert!(c.get("ID_CARD").unwrap().has_field("id_number"));
    }

    #[test]
    fn rejects_bad_entries() {
        let mut c = Catalogue::from_json(FIXTURE).unwrap();
        c.types[0].fields.push("Bad Name".into());
        assert!(matches!(c.validate(), Err(CatalogueError::Invalid { .. })));
        let mut c = Catalogue::from_json(FIXTURE).unwrap();
        let dup = c.types[0].clone();
        c.types.push(dup);
        assert!(matches!(c.validate(), Err(CatalogueError::Duplicate(_))));
        assert!(matches!(
            Catalogue::from_json("{"),
            Err(CatalogueError::Json(_))
        ));
    }
}
