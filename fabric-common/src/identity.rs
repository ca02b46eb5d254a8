//! X.509 identities as Fabric carries them: an MSP ID plus a PEM certificate, serialized as
//! `msp.SerializedIdentity`.
//!
//! Besides (de)serialisation this module reproduces what chaincode sees through Go's
//! `pkg/cid`: the client ID string (`base64("x509::<subject>::<issuer>")` with DNs printed the way
//! Go's `pkix.Name.ToRDNSequence` orders and escapes them) and Fabric CA attributes (the JSON in
//! extension `1.2.3.4.5.6.7.8.1`). A [`Certificate`] is parsed once; everything a hot path needs
//! (public key, DNs, OUs, attributes, validity) is kept owned so nothing is re-parsed.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use fabric_protos::msp::SerializedIdentity;
use prost::Message as _;
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::crypto::{CryptoError, PublicKey, Signer};

/// OID of the extension in which Fabric CA stores a certificate's attributes (JSON).
pub const FABRIC_CA_ATTRS_OID: &str = "1.2.3.4.5.6.7.8.1";
/// OID of `ecdsa-with-SHA256`, the only certificate signature algorithm Fabric CA uses with P-256.
pub const ECDSA_WITH_SHA256_OID: &str = "1.2.840.10045.4.3.2";

/// Errors from parsing certificates, serialized identities and Fabric CA attributes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// No PEM block, or undecodable base64.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// The DER is not an X.509 certificate.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A subject or issuer attribute value is not a string type Go's x509 accepts.
    #[error("certificate name attribute {oid} is unusable: {reason}")]
    BadNameValue {
        /// The attribute's OID.
        oid: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The certificate's key is not an ECDSA P-256 key.
    #[error("certificate public key: {0}")]
    PublicKey(CryptoError),
    /// The Fabric CA attribute extension is not `{"attrs":{"name":"value",...}}`.
    #[error("malformed Fabric CA attributes: {0}")]
    MalformedAttributes(String),
    /// The bytes are not a `msp.SerializedIdentity`.
    #[error("malformed serialized identity: {0}")]
    MalformedSerializedIdentity(String),
    /// The certificate is signed with an algorithm other than ecdsa-with-SHA256.
    #[error("unsupported certificate signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// The certificate's signature does not verify under the issuer's key.
    #[error("certificate signature does not verify under the issuer's key")]
    BadCertificateSignature,
}

/// Kinds of attribute Go's `pkix.Name` keeps in named fields, in `ToRDNSequence` order.
const GO_NAME_ORDER: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// A subject or issuer distinguished name: its attributes in certificate order plus its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    attributes: Vec<(String, String)>,
    raw: Vec<u8>,
}

impl DistinguishedName {
    fn from_x509(name: &X509Name<'_>) -> Result<Self, IdentityError> {
        let mut attributes = Vec::new();
        for rdn in name.iter() {
            for atv in rdn.iter() {
                let oid = atv.attr_type().to_id_string();
                let value = decode_go_string(atv.attr_value()).map_err(|reason| {
                    IdentityError::BadNameValue {
                        oid: oid.clone(),
                        reason,
                    }
                })?;
                attributes.push((oid, value));
            }
        }
        Ok(DistinguishedName {
            attributes,
            raw: name.as_raw().to_vec(),
        })
    }

    /// All attributes as (dotted OID, value), in the order the certificate lists them.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }

    /// The DER encoding of the name (compare these to match an issuer to a CA's subject).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Values of one attribute type, in certificate order.
    pub fn values<'a>(&'a self, oid: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |(o, _)| o == oid)
            .map(|(_, v)| v.as_str())
    }

    /// The common name (the last CN, as Go keeps it).
    pub fn common_name(&self) -> Option<&str> {
        self.values("2.5.4.3").last()
    }

    /// Organizational units (what Fabric's NodeOUs and OU principals match on).
    pub fn organizational_units(&self) -> Vec<&str> {
        self.values("2.5.4.11").collect()
    }

    /// Organizations.
    pub fn organizations(&self) -> Vec<&str> {
        self.values("2.5.4.10").collect()
    }

    /// The DN as Fabric's `pkg/cid` prints it: Go's `pkix.Name.ToRDNSequence()` (C, ST, L, STREET,
    /// POSTALCODE, O, OU, CN, SERIALNUMBER; several values of one type share an RDN joined by
    /// `+`; attributes of other types dropped) printed last RDN first, with RFC 2253 escaping.
    pub fn to_fabric_string(&self) -> String {
        let mut rdns: Vec<Vec<(&str, &str)>> = Vec::new();
        for (oid, short) in GO_NAME_ORDER {
            let values: Vec<&str> = self.values(oid).collect();
            if values.is_empty() {
                continue;
            }
            // Go keeps a single CommonName and SerialNumber (the last one seen), and omits them
            // when empty.
            if oid == "2.5.4.3" || oid == "2.5.4.5" {
                let last = values[values.len() - 1];
                if !last.is_empty() {
                    rdns.push(vec![(short, last)]);
                }
                continue;
            }
            rdns.push(values.into_iter().map(|v| (short, v)).collect());
        }
        let mut out = String::new();
        for (i, rdn) in rdns.iter().rev().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, (short, value)) in rdn.iter().enumerate() {
                if j > 0 {
                    out.push('+');
                }
                out.push_str(short);
                out.push('=');
                escape_dn_value(value, &mut out);
            }
        }
        out
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fabric_string())
    }
}

/// RFC 2253 escaping exactly as `pkg/cid`'s getDN does it.
fn escape_dn_value(value: &str, out: &mut String) {
    let last = value.len().saturating_sub(1);
    for (idx, c) in value.char_indices() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => idx == 0 || idx == last,
            '#' => idx == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Decodes a name attribute value the way Go's x509 parser does (it rejects the certificate on
/// anything else, so we do too).
fn decode_go_string(any: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Result<String, String> {
    let data = any.data;
    match any.header.tag().0 {
        // UTF8String
        12 => String::from_utf8(data.to_vec()).map_err(|_| "invalid UTF8String".to_string()),
        // PrintableString; Go also tolerates '*' and '&' here.
        19 => {
            if data.iter().all(|&b| is_go_printable(b, true, true)) {
                Ok(String::from_utf8_lossy(data).into_owned())
            } else {
                Err("invalid PrintableString".into())
            }
        }
        // T61String: Go takes the bytes as they are.
        20 => Ok(String::from_utf8_lossy(data).into_owned()),
        // IA5String
        22 => {
            if data.is_ascii() {
                Ok(String::from_utf8_lossy(data).into_owned())
            } else {
                Err("invalid IA5String".into())
            }
        }
        // NumericString
        18 => {
            if data.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                Ok(String::from_utf8_lossy(data).into_owned())
            } else {
                Err("invalid NumericString".into())
            }
        }
        // BMPString (UCS-2 big endian, optionally NUL-terminated)
        30 => {
            if !data.len().is_multiple_of(2) {
                return Err("invalid BMPString".into());
            }
            let mut units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            if units.last() == Some(&0) {
                units.pop();
            }
            Ok(String::from_utf16_lossy(&units))
        }
        other => Err(format!("unsupported string type (tag {other})")),
    }
}

fn is_go_printable(b: u8, allow_asterisk: bool, allow_ampersand: bool) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(b, b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/')
        || matches!(b, b' ' | b':' | b'=' | b'?')
        || (allow_asterisk && b == b'*')
        || (allow_ampersand && b == b'&')
}

/// Fabric CA attributes of a certificate (`hf.EnrollmentID`, `hf.Type`, custom roles...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    /// Parses the extension value: JSON `{"attrs":{"name":"value",...}}`. Like Go's
    /// `encoding/json`, the `attrs` key matches case-insensitively and a missing key means none.
    pub fn from_json(bytes: &[u8]) -> Result<Self, IdentityError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| IdentityError::MalformedAttributes(e.to_string()))?;
        let obj = match value {
            serde_json::Value::Object(obj) => obj,
            serde_json::Value::Null => return Ok(Self::default()),
            _ => {
                return Err(IdentityError::MalformedAttributes(
                    "not a JSON object".into(),
                ))
            }
        };
        // Go's decoder prefers an exact match, then takes a case-insensitive one.
        let attrs = obj
            .get("attrs")
            .or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("attrs"))
                    .map(|(_, v)| v)
            })
            .cloned();
        let mut out = BTreeMap::new();
        match attrs {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    match v {
                        serde_json::Value::String(s) => {
                            out.insert(k, s);
                        }
                        _ => {
                            return Err(IdentityError::MalformedAttributes(format!(
                                "attribute {k} is not a string"
                            )))
                        }
                    }
                }
            }
            Some(_) => {
                return Err(IdentityError::MalformedAttributes(
                    "attrs is not an object".into(),
                ))
            }
        }
        Ok(Attributes(out))
    }

    /// Serialises as Fabric CA writes the extension value.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "attrs": self.0 })).unwrap_or_default()
    }

    /// The value of one attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether an attribute is present with exactly this value (`cid.AssertAttributeValue`).
    pub fn has_value(&self, name: &str, value: &str) -> bool {
        self.get(name) == Some(value)
    }

    /// All attributes, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds an attribute (for building certificates in tests and the devnet's CA).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }
}

/// An X.509 certificate parsed once, with everything Fabric looks at kept owned.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    signature_algorithm: String,
    signature: Vec<u8>,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    public_key: PublicKey,
    not_before: i64,
    not_after: i64,
    serial: Vec<u8>,
    is_ca: bool,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    attributes: Attributes,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

impl Certificate {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| IdentityError::MalformedCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(IdentityError::MalformedCertificate(
                "trailing bytes after certificate".into(),
            ));
        }
        let tbs_bytes: &[u8] = cert.tbs_certificate.as_ref();
        let start = (tbs_bytes.as_ptr() as usize).wrapping_sub(der.as_ptr() as usize);
        let tbs = start..start + tbs_bytes.len();
        if der.get(tbs.clone()) != Some(tbs_bytes) {
            return Err(IdentityError::MalformedCertificate(
                "cannot locate the TBS certificate".into(),
            ));
        }
        let public_key =
            PublicKey::from_spki_der(cert.public_key().raw).map_err(IdentityError::PublicKey)?;
        let mut attributes = Attributes::default();
        let mut is_ca = false;
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::BasicConstraints(bc) => is_ca = bc.ca,
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    subject_key_id = Some(id.0.to_vec())
                }
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => {}
            }
            if ext.oid.to_id_string() == FABRIC_CA_ATTRS_OID {
                attributes = Attributes::from_json(ext.value)?;
            }
        }
        Ok(Certificate {
            tbs,
            signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            subject: DistinguishedName::from_x509(cert.subject())?,
            issuer: DistinguishedName::from_x509(cert.issuer())?,
            public_key,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.raw_serial().to_vec(),
            is_ca,
            subject_key_id,
            authority_key_id,
            attributes,
            der: der.to_vec(),
        })
    }

    /// Parses the first PEM block of `pem` (any label, as Fabric's MSP does).
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        Self::from_der(&pem_to_der(pem)?)
    }

    /// Parses every certificate in a PEM bundle (e.g. a `cacerts/` file with a chain).
    pub fn all_from_pem(pem: &[u8]) -> Result<Vec<Self>, IdentityError> {
        let mut out = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let block = block.map_err(|e| IdentityError::MalformedPem(e.to_string()))?;
            out.push(Self::from_der(&block.contents)?);
        }
        if out.is_empty() {
            return Err(IdentityError::MalformedPem("no PEM block found".into()));
        }
        Ok(out)
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM as Go's `pem.EncodeToMemory` writes it (what Fabric puts in `id_bytes`).
    pub fn to_pem(&self) -> String {
        der_to_pem("CERTIFICATE", &self.der)
    }

    /// The subject DN.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The issuer DN.
    pub fn issuer(&self) -> &DistinguishedName {
        &self.issuer
    }

    /// The subject's P-256 public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// Start of the validity window, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of the validity window, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether `unix_seconds` lies inside the validity window (bounds inclusive, as in Go).
    pub fn is_valid_at(&self, unix_seconds: i64) -> bool {
        self.not_before <= unix_seconds && unix_seconds <= self.not_after
    }

    /// The serial number's big-endian bytes.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// Whether basic constraints mark this certificate as a CA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// The subject key identifier extension, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// The authority key identifier's key ID, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.authority_key_id.as_deref()
    }

    /// Fabric CA attributes (empty when the extension is absent).
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The client ID as chaincode sees it through `cid.GetID()`:
    /// `base64("x509::" + subject + "::" + issuer)`.
    pub fn client_id(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.client_id_plain())
    }

    /// The decoded client ID, `x509::<subject DN>::<issuer DN>`.
    pub fn client_id_plain(&self) -> String {
        format!(
            "x509::{}::{}",
            self.subject.to_fabric_string(),
            self.issuer.to_fabric_string()
        )
    }

    /// The DER with a low-S signature, as Fabric's MSP "sanitizes" certificates before comparing
    /// or hashing them (identical to [`Certificate::der`] when the signature is already low-S).
    pub fn sanitized_der(&self) -> Vec<u8> {
        match crate::crypto::is_low_s(&self.signature) {
            Ok(false) => {}
            _ => return self.der.clone(),
        }
        let Ok(low) = crate::crypto::normalize_low_s(&self.signature) else {
            return self.der.clone();
        };
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
        let alg_start = self.tbs.end;
        let Some(alg_len) = der_element_len(&self.der[alg_start..]) else {
            return self.der.clone();
        };
        let mut body = self.der[self.tbs.clone()].to_vec();
        body.extend_from_slice(&self.der[alg_start..alg_start + alg_len]);
        let mut bits = Vec::with_capacity(low.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&low);
        body.extend(der_tlv(0x03, &bits));
        der_tlv(0x30, &body)
    }

    /// Whether `issuer` signed this certificate: its subject is our issuer and its key verifies
    /// our signature (ecdsa-with-SHA256; high-S tolerated, as Go's x509 does).
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), IdentityError> {
        if issuer.subject.raw != self.issuer.raw {
            return Err(IdentityError::BadCertificateSignature);
        }
        if self.signature_algorithm != ECDSA_WITH_SHA256_OID {
            return Err(IdentityError::UnsupportedSignatureAlgorithm(
                self.signature_algorithm.clone(),
            ));
        }
        issuer
            .public_key
            .verify_allow_high_s(&self.der[self.tbs.clone()], &self.signature)
            .map_err(|_| IdentityError::BadCertificateSignature)
    }
}

/// Total length (header + content) of the DER element starting at `der[0]`.
fn der_element_len(der: &[u8]) -> Option<usize> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    let total = 2 + n + len;
    (total <= der.len()).then_some(total)
}

/// Encodes one DER element.
pub(crate) fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Decodes the first PEM block of `pem` to DER, skipping any text before it.
pub fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, IdentityError> {
    x509_parser::pem::parse_x509_pem(pem)
        .map(|(_, block)| block.contents)
        .map_err(|e| IdentityError::MalformedPem(e.to_string()))
}

/// Encodes DER as PEM exactly as Go's `pem.EncodeToMemory` does (64-column base64, LF endings).
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// A Fabric X.509 identity: MSP ID and certificate, with its serialized form cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    msp_id: String,
    id_bytes: Vec<u8>,
    serialized: Vec<u8>,
    certificate: Certificate,
}

impl Identity {
    /// An identity from an MSP ID and the certificate's PEM, kept byte for byte as `id_bytes`.
    pub fn new(msp_id: impl Into<String>, cert_pem: &[u8]) -> Result<Self, IdentityError> {
        let certificate = Certificate::from_pem(cert_pem)?;
        Ok(Self::assemble(
            msp_id.into(),
            cert_pem.to_vec(),
            certificate,
        ))
    }

    /// An identity from a parsed certificate; `id_bytes` is its Go-style PEM.
    pub fn from_certificate(msp_id: impl Into<String>, certificate: Certificate) -> Self {
        let pem = certificate.to_pem().into_bytes();
        Self::assemble(msp_id.into(), pem, certificate)
    }

    /// Parses `msp.SerializedIdentity` bytes (a transaction creator, an endorser).
    pub fn from_serialized(bytes: &[u8]) -> Result<Self, IdentityError> {
        let sid = SerializedIdentity::decode(bytes)
            .map_err(|e| IdentityError::MalformedSerializedIdentity(e.to_string()))?;
        let certificate = Certificate::from_pem(&sid.id_bytes)?;
        Ok(Identity {
            msp_id: sid.mspid,
            id_bytes: sid.id_bytes,
            serialized: bytes.to_vec(),
            certificate,
        })
    }

    fn assemble(msp_id: String, id_bytes: Vec<u8>, certificate: Certificate) -> Self {
        let serialized = SerializedIdentity {
            mspid: msp_id.clone(),
            id_bytes: id_bytes.clone(),
        }
        .encode_to_vec();
        Identity {
            msp_id,
            id_bytes,
            serialized,
            certificate,
        }
    }

    /// The MSP that vouches for this identity.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The certificate bytes as carried in `id_bytes` (PEM).
    pub fn cert_pem(&self) -> &[u8] {
        &self.id_bytes
    }

    /// The parsed certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The identity's public key.
    pub fn public_key(&self) -> &PublicKey {
        self.certificate.public_key()
    }

    /// The `msp.SerializedIdentity` bytes (creator / endorser bytes in headers).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// The `msp.SerializedIdentity` message.
    pub fn to_proto(&self) -> SerializedIdentity {
        SerializedIdentity {
            mspid: self.msp_id.clone(),
            id_bytes: self.id_bytes.clone(),
        }
    }

    /// The client ID (`cid.GetID()`).
    pub fn client_id(&self) -> String {
        self.certificate.client_id()
    }

    /// A Fabric CA attribute value (`cid.GetAttributeValue()`).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.certificate.attributes().get(name)
    }

    /// Verifies a signature by this identity over `message` (low-S required).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        self.public_key().verify(message, signature)
    }
}

/// An identity together with the signer holding its private key (a client, a peer, an orderer).
#[derive(Clone)]
pub struct SigningIdentity {
    identity: Identity,
    signer: std::sync::Arc<dyn Signer>,
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Pairs an identity with its signer. The caller vouches that they belong together;
    /// [`SigningIdentity::check_key`] tests it.
    pub fn new(identity: Identity, signer: std::sync::Arc<dyn Signer>) -> Self {
        SigningIdentity { identity, signer }
    }

    /// Signs a probe message and verifies it with the certificate's key.
    pub fn check_key(&self) -> Result<(), CryptoError> {
        let probe = b"fabric-common key check";
        let sig = self.signer.sign(probe)?;
        self.identity.verify(probe, &sig)
    }

    /// The public identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The signer.
    pub fn signer(&self) -> &std::sync::Arc<dyn Signer> {
        &self.signer
    }

    /// The serialized identity (the `creator` of headers this identity signs).
    pub fn serialized(&self) -> &[u8] {
        self.identity.serialized()
    }
}

impl Signer for SigningIdentity {
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        self.signer.sign_digest(digest)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.signer.sign(message)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::SigningKey;
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DistinguishedName as RcDn, DnType,
        IsCa, KeyPair,
    };

    /// A CA certificate and key made with rcgen for tests.
    pub(crate) struct TestCa {
        pub cert: rcgen::Certificate,
        pub key: KeyPair,
        pub params: CertificateParams,
    }

    pub(crate) fn ca_dn() -> RcDn {
        let mut dn = RcDn::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::StateOrProvinceName, "North Carolina");
        dn.push(DnType::LocalityName, "Durham");
        dn.push(DnType::OrganizationName, "org1.example.com");
        dn.push(DnType::CommonName, "ca.org1.example.com");
        dn
    }

    pub(crate) fn make_ca(dn: RcDn) -> TestCa {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key, params }
    }

    /// Issues a leaf certificate; returns (cert PEM, private key PEM).
    pub(crate) fn issue(ca: &TestCa, dn: RcDn, attrs_json: Option<&[u8]>) -> (String, SigningKey) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        if let Some(json) = attrs_json {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 2, 3, 4, 5, 6, 7, 8, 1],
                    json.to_vec(),
                ));
        }
        let issuer = rcgen::Issuer::from_params(&ca.params, &ca.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let ca_key = SigningKey::from_pem(ca.key.serialize_pem().as_bytes()).unwrap();
        let der = rename_stand_ins_and_resign(cert.der(), &ca_key);
        let signing = SigningKey::from_pem(key.serialize_pem().as_bytes()).unwrap();
        (der_to_pem("CERTIFICATE", &der), signing)
    }

    /// OIDs (2.5.4.12/13/15) that stand in for the 2nd, 3rd, 4th OU: rcgen keeps one value per
    /// attribute type, so [`issue`] renames them to OU (2.5.4.11) and re-signs the certificate.
    const EXTRA_OU_STAND_INS: [u64; 3] = [12, 13, 15];

    pub(crate) fn user_dn(cn: &str, ous: &[&str]) -> RcDn {
        let mut dn = RcDn::new();
        for (i, ou) in ous.iter().enumerate() {
            if i == 0 {
                dn.push(DnType::OrganizationalUnitName, *ou);
            } else {
                dn.push(
                    DnType::CustomDnType(vec![2, 5, 4, EXTRA_OU_STAND_INS[i - 1]]),
                    *ou,
                );
            }
        }
        dn.push(DnType::CommonName, cn);
        dn
    }

    /// Reads one DER TLV header at `at`: (header length, content length).
    fn der_header(der: &[u8], at: usize) -> (usize, usize) {
        let first = der[at + 1];
        if first < 0x80 {
            return (2, first as usize);
        }
        let n = (first & 0x7f) as usize;
        let len = der[at + 2..at + 2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, len)
    }

    /// Renames the stand-in OU attributes of a leaf's subject to OU and re-signs it with the CA.
    fn rename_stand_ins_and_resign(der: &[u8], ca_key: &SigningKey) -> Vec<u8> {
        let (outer_h, _) = der_header(der, 0);
        let tbs_at = outer_h;
        let (tbs_h, tbs_len) = der_header(der, tbs_at);
        let mut tbs = der[tbs_at..tbs_at + tbs_h + tbs_len].to_vec();
        let alg_at = tbs_at + tbs_h + tbs_len;
        let (alg_h, alg_len) = der_header(der, alg_at);
        let alg = der[alg_at..alg_at + alg_h + alg_len].to_vec();
        for n in EXTRA_OU_STAND_INS {
            let from = [0x06, 0x03, 0x55, 0x04, n as u8];
            if let Some(i) = tbs.windows(5).position(|w| w == from) {
                tbs[i + 4] = 0x0b;
            }
        }
        let sig = crate::crypto::Signer::sign(ca_key, &tbs).unwrap();
        let mut bits = vec![0u8];
        bits.extend(sig);
        let mut body = tbs;
        body.extend(alg);
        body.extend(der_tlv(0x03, &bits));
        der_tlv(0x30, &body)
    }

    #[test]
    fn client_id_follows_go_ordering_and_escaping() {
        let ca = make_ca(ca_dn());
        // Subject in certificate order: C, O, OU, OU, CN, with characters Go escapes.
        let mut dn = RcDn::new();
        dn.push(DnType::CountryName, "CN");
        dn.push(DnType::OrganizationName, "Public Security, Beijing");
        dn.push(DnType::OrganizationalUnitName, "client");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 12]), "police+records");
        dn.push(DnType::CommonName, " clerk#1 ");
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), "Surname-dropped");
        let (pem, _) = issue(&ca, dn, None);
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        // Worked out by hand from Go's ToRDNSequence: C, ST, L, STREET, POSTALCODE, O, OU (all
        // OUs in one RDN), CN, SERIALNUMBER; printed last first; surname (2.5.4.4) is dropped.
        let subject =
            "CN=\\ clerk#1\\ ,OU=client+OU=police\\+records,O=Public Security\\, Beijing,C=CN";
        let issuer = "CN=ca.org1.example.com,O=org1.example.com,L=Durham,ST=North Carolina,C=US";
        assert_eq!(cert.subject().to_fabric_string(), subject);
        assert_eq!(cert.issuer().to_fabric_string(), issuer);
        let plain = format!("x509::{subject}::{issuer}");
        assert_eq!(cert.client_id_plain(), plain);
        assert_eq!(
            cert.client_id(),
            base64::engine::general_purpose::STANDARD.encode(plain)
        );
        assert_eq!(cert.subject().common_name(), Some(" clerk#1 "));
        assert_eq!(
            cert.subject().organizational_units(),
            vec!["client", "police+records"]
        );
    }

    #[test]
    fn fabric_ca_style_client_id() {
        let ca = make_ca(ca_dn());
        let mut dn = user_dn("appUser", &["client", "org1", "department1"]);
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::StateOrProvinceName, "North Carolina");
        dn.push(DnType::OrganizationName, "Hyperledger");
        let (pem, _) = issue(&ca, dn, None);
        let id = Identity::new("Org1MSP", pem.as_bytes()).unwrap();
        let expected = "x509::CN=appUser,OU=client+OU=org1+OU=department1,O=Hyperledger,\
                        ST=North Carolina,C=US::CN=ca.org1.example.com,O=org1.example.com,\
                        L=Durham,ST=North Carolina,C=US";
        assert_eq!(id.certificate().client_id_plain(), expected);
        assert_eq!(
            id.client_id(),
            base64::engine::general_purpose::STANDARD.encode(expected)
        );
    }

    #[test]
    fn leading_hash_and_other_specials_are_escaped() {
        let ca = make_ca(ca_dn());
        let mut dn = RcDn::new();
        dn.push(DnType::CommonName, "#a\"b<c>d;e\\f g");
        dn.push(DnType::LocalityName, "Chengdu");
        let (pem, _) = issue(&ca, dn, None);
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(
            cert.subject().to_fabric_string(),
            "CN=\\#a\\\"b\\<c\\>d\\;e\\\\f g,L=Chengdu"
        );
    }

    #[test]
    fn fabric_ca_attributes_are_parsed() {
        let ca = make_ca(ca_dn());
        let json = br#"{"attrs":{"hf.Affiliation":"org1.department1","hf.EnrollmentID":"clerk1","hf.Type":"client","elicense.role":"issuer"}}"#;
        let (pem, _) = issue(&ca, user_dn("clerk1", &["client"]), Some(json));
        let id = Identity::new("Org1MSP", pem.as_bytes()).unwrap();
        assert_eq!(id.attribute("hf.EnrollmentID"), Some("clerk1"));
        assert_eq!(id.attribute("elicense.role"), Some("issuer"));
        assert_eq!(id.attribute("hf.Type"), Some("client"));
        assert_eq!(id.attribute("missing"), None);
        assert_eq!(id.certificate().attributes().len(), 4);
        assert!(id.certificate().attributes().has_value("hf.Type", "client"));
    }

    #[test]
    fn attribute_json_edge_cases() {
        assert!(Attributes::from_json(b"{}").unwrap().is_empty());
        assert!(Attributes::from_json(b"null").unwrap().is_empty());
        assert_eq!(
            Attributes::from_json(br#"{"Attrs":{"a":"1"}}"#)
                .unwrap()
                .get("a"),
            Some("1")
        );
        assert!(matches!(
            Attributes::from_json(br#"{"attrs":{"a":1}}"#),
            Err(IdentityError::MalformedAttributes(_))
        ));
        assert!(matches!(
            Attributes::from_json(b"{not json"),
            Err(IdentityError::MalformedAttributes(_))
        ));
        let mut a = Attributes::default();
        a.insert("role", "clerk");
        assert_eq!(Attributes::from_json(&a.to_json()).unwrap(), a);
    }

    #[test]
    fn malformed_attribute_extension_rejects_certificate() {
        let ca = make_ca(ca_dn());
        let (pem, _) = issue(&ca, user_dn("x", &[]), Some(b"[1,2"));
        assert!(matches!(
            Certificate::from_pem(pem.as_bytes()),
            Err(IdentityError::MalformedAttributes(_))
        ));
    }

    #[test]
    fn serialized_identity_round_trip_and_signature() {
        let ca = make_ca(ca_dn());
        let (pem, key) = issue(&ca, user_dn("user1", &["client"]), None);
        let id = Identity::new("Org1MSP", pem.as_bytes()).unwrap();
        assert_eq!(id.cert_pem(), pem.as_bytes());
        let back = Identity::from_serialized(id.serialized()).unwrap();
        assert_eq!(back, id);
        assert_eq!(back.msp_id(), "Org1MSP");
        let proto = SerializedIdentity::decode(id.serialized()).unwrap();
        assert_eq!(proto.mspid, "Org1MSP");
        assert_eq!(proto.id_bytes, pem.as_bytes());

        let signing = SigningIdentity::new(id.clone(), std::sync::Arc::new(key));
        signing.check_key().unwrap();
        let sig = signing.sign(b"hello").unwrap();
        id.verify(b"hello", &sig).unwrap();
        let wrong = SigningIdentity::new(id, std::sync::Arc::new(SigningKey::generate()));
        assert!(wrong.check_key().is_err());
    }

    #[test]
    fn go_style_pem_and_chain_check() {
        let ca = make_ca(ca_dn());
        let other = make_ca(ca_dn());
        let (pem, _) = issue(&ca, user_dn("user1", &[]), None);
        let cert = Certificate::from_pem(pem.as_bytes()).unwrap();
        let ca_cert = Certificate::from_der(ca.cert.der()).unwrap();
        let other_cert = Certificate::from_der(other.cert.der()).unwrap();
        assert!(ca_cert.is_ca());
        assert!(!cert.is_ca());
        cert.verify_issued_by(&ca_cert).unwrap();
        assert_eq!(
            cert.verify_issued_by(&other_cert),
            Err(IdentityError::BadCertificateSignature)
        );
        // Go's pem.EncodeToMemory output is what rcgen writes too: 64 columns, LF.
        let again = Certificate::from_pem(cert.to_pem().as_bytes()).unwrap();
        assert_eq!(again, cert);
        assert!(cert.to_pem().lines().all(|l| l.len() <= 64));
        let id = Identity::from_certificate("Org1MSP", cert.clone());
        assert_eq!(id.cert_pem(), cert.to_pem().as_bytes());
    }

    #[test]
    fn validity_window() {
        let ca = make_ca(ca_dn());
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2025, 1, 1);
        let issuer = rcgen::Issuer::from_params(&ca.params, &ca.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let cert = Certificate::from_der(cert.der()).unwrap();
        assert_eq!(cert.not_before(), 1_704_067_200);
        assert_eq!(cert.not_after(), 1_735_689_600);
        assert!(cert.is_valid_at(1_720_000_000));
        assert!(!cert.is_valid_at(1_704_067_199));
        assert!(!cert.is_valid_at(1_735_689_601));
    }

    #[test]
    fn bad_inputs_give_typed_errors() {
        assert!(matches!(
            Certificate::from_pem(b"nothing"),
            Err(IdentityError::MalformedPem(_))
        ));
        assert!(matches!(
            Certificate::from_der(b"\x30\x03\x02\x01\x01"),
            Err(IdentityError::MalformedCertificate(_))
        ));
        assert!(matches!(
            Identity::from_serialized(b"\xff\xff"),
            Err(IdentityError::MalformedSerializedIdentity(_))
        ));
        let sid = SerializedIdentity {
            mspid: "Org1MSP".into(),
            id_bytes: b"not a cert".to_vec(),
        }
        .encode_to_vec();
        assert!(Identity::from_serialized(&sid).is_err());
    }

    proptest::proptest! {
        #[test]
        fn certificate_parser_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = Certificate::from_der(&data);
            let _ = Certificate::from_pem(&data);
            let _ = Certificate::all_from_pem(&data);
            let _ = Identity::from_serialized(&data);
            let _ = Attributes::from_json(&data);
        }

        #[test]
        fn mutated_certificates_never_panic(pos in 0usize..2000, byte in proptest::num::u8::ANY, cut in 0usize..2000) {
            // Flip one byte and truncate a valid certificate: deeper parser paths than random bytes.
            static CERT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            let der = CERT.get_or_init(|| {
                let ca = make_ca(ca_dn());
                let (pem, _) = issue(&ca, user_dn("fuzz", &["client"]), Some(br#"{"attrs":{"a":"b"}}"#));
                pem_to_der(pem.as_bytes()).unwrap()
            });
            let mut data = der.clone();
            let i = pos % data.len();
            data[i] = byte;
            data.truncate(cut.max(1).min(data.len()));
            if let Ok(c) = Certificate::from_der(&data) {
                let _ = c.client_id();
            }
        }

        #[test]
        fn arbitrary_attribute_json_never_panics(s in "\\PC{0,80}") {
            let _ = Attributes::from_json(s.as_bytes());
            let wrapped = format!("{{\"attrs\":{s}}}");
            let _ = Attributes::from_json(wrapped.as_bytes());
        }
    }
}
