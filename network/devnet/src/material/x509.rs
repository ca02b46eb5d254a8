//! X.509 certificates as Fabric CA (cfssl over Go's `crypto/x509`) lays them out.
//!
//! rcgen keeps one value per attribute type in a distinguished name, but Fabric CA puts the
//! identity type *and* every affiliation element into the subject as OUs of one multi-valued RDN
//! (`OU=org1 + OU=client + OU=department1`). So certificates are encoded here, field by field in
//! Go's order, and signed with the CA's P-256 key; rcgen builds CSRs and CRLs where its model fits.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ::time::{Duration, OffsetDateTime};
use fabric_common::crypto::{Signer, SigningKey};
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::*;
use yasna::models::{ObjectIdentifier, UTCTime};
use yasna::{DERWriter, Tag};

use super::MaterialError;

/// The Fabric CA attribute extension OID (`attrmgr.AttrOID`).
pub const ATTRIBUTE_OID: &[u64] = &[1, 2, 3, 4, 5, 6, 7, 8, 1];
/// The same OID in dotted form, as x509-parser prints it.
pub const ATTRIBUTE_OID_STR: &str = "1.2.3.4.5.6.7.8.1";

const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_COUNTRY: &[u64] = &[2, 5, 4, 6];
const OID_PROVINCE: &[u64] = &[2, 5, 4, 8];
const OID_LOCALITY: &[u64] = &[2, 5, 4, 7];
const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
const OID_ORG_UNIT: &[u64] = &[2, 5, 4, 11];
const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];
const OID_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
const OID_SKI: &[u64] = &[2, 5, 29, 14];
const OID_AKI: &[u64] = &[2, 5, 29, 35];
const OID_SAN: &[u64] = &[2, 5, 29, 17];
const OID_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];
const OID_CLIENT_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 2];

/// A subject or issuer name with the fields Go's `pkix.Name` keeps, encoded in Go's RDN order:
/// C, ST, L, O, OU, CN, serialNumber, each multi-valued field as one RDN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    /// Countries (C).
    pub country: Vec<String>,
    /// States or provinces (ST).
    pub province: Vec<String>,
    /// Localities (L).
    pub locality: Vec<String>,
    /// Organisations (O).
    pub organization: Vec<String>,
    /// Organisational units (OU): Fabric CA's identity type and affiliation path live here.
    pub organizational_unit: Vec<String>,
    /// Common name (CN): the enrollment ID for Fabric CA identities.
    pub common_name: String,
    /// Subject serial number attribute (rarely used).
    pub serial_number: String,
}

impl Name {
    /// Reads a parsed X.509 name into the fields Fabric CA keeps; other attributes are dropped,
    /// as cfssl drops them.
    pub fn from_x509(name: &X509Name<'_>) -> Self {
        fn all<'a>(it: impl Iterator<Item = &'a AttributeTypeAndValue<'a>>) -> Vec<String> {
            it.filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect()
        }
        let serial_oid = oid_of(OID_SERIAL_NUMBER);
        Name {
            country: all(name.iter_country()),
            province: all(name.iter_state_or_province()),
            locality: all(name.iter_locality()),
            organization: all(name.iter_organization()),
            organizational_unit: all(name.iter_organizational_unit()),
            common_name: all(name.iter_common_name())
                .into_iter()
                .next()
                .unwrap_or_default(),
            serial_number: all(name.iter_by_oid(&serial_oid))
                .into_iter()
                .next()
                .unwrap_or_default(),
        }
    }

    fn write(&self, w: DERWriter<'_>) {
        w.write_sequence(|w| {
            let lists: [(&[u64], &[String]); 5] = [
                (OID_COUNTRY, &self.country),
                (OID_PROVINCE, &self.province),
                (OID_LOCALITY, &self.locality),
                (OID_ORGANIZATION, &self.organization),
                (OID_ORG_UNIT, &self.organizational_unit),
            ];
            for (oid, values) in lists {
                if !values.is_empty() {
                    write_rdn(w.next(), oid, values);
                }
            }
            if !self.common_name.is_empty() {
                write_rdn(
                    w.next(),
                    OID_COMMON_NAME,
                    std::slice::from_ref(&self.common_name),
                );
            }
            if !self.serial_number.is_empty() {
                write_rdn(
                    w.next(),
                    OID_SERIAL_NUMBER,
                    std::slice::from_ref(&self.serial_number),
                );
            }
        });
    }

    /// The DER encoding of the name.
    pub fn to_der(&self) -> Vec<u8> {
        yasna::construct_der(|w| self.write(w))
    }
}

fn write_rdn(w: DERWriter<'_>, oid: &[u64], values: &[String]) {
    // DER orders the members of a SET OF by their encodings; yasna's write_set_of does that.
    w.write_set_of(|w| {
        for v in values {
            w.next().write_sequence(|w| {
                w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                if is_printable(v) {
                    w.next().write_printable_string(v);
                } else {
                    w.next().write_utf8_string(v);
                }
            });
        }
    });
}

/// Go marshals a name attribute as PrintableString when every character allows it.
fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    })
}

fn oid_of(parts: &[u64]) -> Oid<'static> {
    Oid::from(parts).expect("static OIDs are valid")
}

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUsage {
    /// A CA certificate: certificate and CRL signing, basicConstraints CA:TRUE with a path length.
    Authority {
        /// The maximum number of intermediate CAs below this one.
        path_len: u8,
    },
    /// An enrollment certificate (Fabric CA's default signing profile): digital signature only.
    Enrollment,
    /// A TLS certificate (Fabric CA's `tls` profile): digital signature, key encipherment and key
    /// agreement, for both server and client authentication.
    Tls,
}

/// Everything needed to issue one certificate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// The subject name.
    pub subject: Name,
    /// The subject's public key as a DER SubjectPublicKeyInfo.
    pub public_key_spki: Vec<u8>,
    /// The key usage profile.
    pub usage: CertUsage,
    /// Subject alternative names: IP addresses, e-mail addresses or DNS names, as cfssl sorts
    /// the `hosts` of a request.
    pub hosts: Vec<String>,
    /// Fabric CA attributes to embed (OID 1.2.3.4.5.6.7.8.1); `None` leaves the extension out.
    pub attributes: Option<BTreeMap<String, String>>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// A certificate that was just issued.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// PEM encoding.
    pub pem: String,
    /// DER encoding.
    pub der: Vec<u8>,
    /// Serial number as Fabric CA stores it: lowercase hex without leading zeros.
    pub serial: String,
    /// Authority key identifier as Fabric CA stores it: lowercase hex without leading zeros.
    pub aki: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Normalises a hex serial or key identifier the way Fabric CA compares them.
pub fn normalize_hex(s: &str) -> String {
    s.to_ascii_lowercase()
        .replace(':', "")
        .trim_start_matches('0')
        .to_owned()
}

/// The 20-byte subject key identifier Go computes: SHA-1 of the public key's bit string.
pub fn subject_key_id(spki_der: &[u8]) -> Result<Vec<u8>, MaterialError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| MaterialError::Certificate(format!("bad public key: {e}")))?;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &spki.subject_public_key.data,
    );
    Ok(digest.as_ref().to_vec())
}

/// Truncates to the minute, as cfssl's timestamps come out.
fn minute(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .expect("zero seconds are valid")
}

/// The validity window cfssl gives a certificate issued now: backdated five minutes, truncated
/// to the minute, lasting `lifetime` from now.
pub fn default_validity(lifetime: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = minute(OffsetDateTime::now_utc());
    (now - Duration::minutes(5), now + lifetime)
}

/// Encodes and signs a certificate. `issuer` is `None` for a self-signed certificate.
pub fn issue(
    spec: &CertSpec,
    issuer: Option<(&Name, &[u8], &SigningKey)>,
    self_key: Option<&SigningKey>,
) -> Result<IssuedCert, MaterialError> {
    let ski = subject_key_id(&spec.public_key_spki)?;
    let (issuer_name, aki, key) = match (issuer, self_key) {
        (Some((name, ski, key)), _) => (name.clone(), Some(ski.to_vec()), key),
        (None, Some(key)) => (spec.subject.clone(), None, key),
        (None, None) => {
            return Err(MaterialError::Certificate(
                "a self-signed certificate needs its own key".into(),
            ))
        }
    };
    let mut serial = [0u8; 20];
    rand::Rng::fill(&mut rand::thread_rng(), &mut serial[..]);
    serial[0] &= 0x7f;
    if serial[0] == 0 {
        serial[0] = 1;
    }
    let sans = spec
        .hosts
        .iter()
        .filter(|h| !h.is_empty())
        .cloned()
        .collect::<Vec<_>>();

    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_tagged(Tag::context(0), |w| w.write_u8(2));
            w.next().write_bigint_bytes(&serial, true);
            write_sig_alg(w.next());
            issuer_name.write(w.next());
            w.next().write_sequence(|w| {
                write_time(w.next(), spec.not_before);
                write_time(w.next(), spec.not_after);
            });
            spec.subject.write(w.next());
            w.next().write_der(&spec.public_key_spki);
            w.next().write_tagged(Tag::context(3), |w| {
                w.write_sequence(|w| write_extensions(w, spec, &ski, aki.as_deref(), &sans));
            });
        });
    });
    let signature = key
        .sign(&tbs)
        .map_err(|e| MaterialError::Certificate(format!("signing the certificate: {e}")))?;
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            write_sig_alg(w.next());
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        });
    });
    Ok(IssuedCert {
        pem: to_pem("CERTIFICATE", &der),
        serial: normalize_hex(&hex::encode(serial)),
        aki: normalize_hex(&hex::encode(aki.unwrap_or(ski))),
        der,
        not_after: spec.not_after,
    })
}

fn write_sig_alg(w: DERWriter<'_>) {
    w.write_sequence(|w| {
        w.next()
            .write_oid(&ObjectIdentifier::from_slice(OID_ECDSA_SHA256));
    });
}

fn write_time(w: DERWriter<'_>, t: OffsetDateTime) {
    // RFC 5280: whole seconds in UTC; UTCTime for 1950 through 2049, GeneralizedTime otherwise.
    let t = t
        .to_offset(::time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    if (1950..2050).contains(&t.year()) {
        w.write_utctime(&UTCTime::from_datetime(t));
    } else {
        w.write_generalized_time(&yasna::models::GeneralizedTime::from_datetime(t));
    }
}

fn write_extension(w: DERWriter<'_>, oid: &[u64], critical: bool, value: &[u8]) {
    w.write_sequence(|w| {
        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(value);
    });
}

fn write_extensions(
    w: &mut yasna::DERWriterSeq<'_>,
    spec: &CertSpec,
    ski: &[u8],
    aki: Option<&[u8]>,
    sans: &[String],
) {
    // Key usage bits, RFC 5280 numbering: digitalSignature 0, keyEncipherment 2,
    // keyAgreement 4, keyCertSign 5, cRLSign 6.
    let (bits, ekus, ca): (&[usize], &[&[u64]], Option<u8>) = match spec.usage {
        CertUsage::Authority { path_len } => (&[5, 6], &[], Some(path_len)),
        CertUsage::Enrollment => (&[0], &[], None),
        CertUsage::Tls => (&[0, 2, 4], &[OID_SERVER_AUTH, OID_CLIENT_AUTH], None),
    };
    let len = bits.iter().max().map_or(0, |b| b + 1);
    let mut bytes = vec![0u8; len.div_ceil(8)];
    for b in bits {
        bytes[b / 8] |= 0x80 >> (b % 8);
    }
    let ku = yasna::construct_der(|w| w.write_bitvec_bytes(&bytes, len));
    write_extension(w.next(), OID_KEY_USAGE, true, &ku);
    if !ekus.is_empty() {
        let eku = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for oid in ekus {
                    w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                }
            })
        });
        write_extension(w.next(), OID_EXT_KEY_USAGE, false, &eku);
    }
    let bc = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if let Some(path_len) = ca {
                w.next().write_bool(true);
                w.next().write_u8(path_len);
            }
        })
    });
    write_extension(w.next(), OID_BASIC_CONSTRAINTS, true, &bc);
    let ski_der = yasna::construct_der(|w| w.write_bytes(ski));
    write_extension(w.next(), OID_SKI, false, &ski_der);
    if let Some(aki) = aki {
        let aki_der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next()
                    .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(aki))
            })
        });
        write_extension(w.next(), OID_AKI, false, &aki_der);
    }
    if !sans.is_empty() {
        // cfssl sorts hosts into IP addresses, e-mail addresses and DNS names; Go then writes
        // DNS names, e-mails and IPs in that order.
        let ips: Vec<IpAddr> = sans.iter().filter_map(|h| h.parse().ok()).collect();
        let emails: Vec<&String> = sans
            .iter()
            .filter(|h| h.parse::<IpAddr>().is_err() && h.contains('@'))
            .collect();
        let dns: Vec<&String> = sans
            .iter()
            .filter(|h| h.parse::<IpAddr>().is_err() && !h.contains('@'))
            .collect();
        let san = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for d in &dns {
                    w.next()
                        .write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(d));
                }
                for e in &emails {
                    w.next()
                        .write_tagged_implicit(Tag::context(1), |w| w.write_ia5_string(e));
                }
                for ip in &ips {
                    let raw = match ip {
                        IpAddr::V4(v4) => v4.octets().to_vec(),
                        IpAddr::V6(v6) => v6.octets().to_vec(),
                    };
                    w.next()
                        .write_tagged_implicit(Tag::context(7), |w| w.write_bytes(&raw));
                }
            })
        });
        write_extension(w.next(), OID_SAN, false, &san);
    }
    if let Some(attrs) = &spec.attributes {
        // Fabric CA stores the JSON itself as the extension value (no inner DER wrapping).
        let json = attributes_json(attrs);
        write_extension(w.next(), ATTRIBUTE_OID, false, json.as_bytes());
    }
}

/// The attribute extension's JSON, `{"attrs":{...}}` with keys sorted as Go sorts map keys.
pub fn attributes_json(attrs: &BTreeMap<String, String>) -> String {
    serde_json::json!({ "attrs": attrs }).to_string()
}

/// PEM-encodes DER with 64-column lines.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes every PEM block in `text`: (label, DER) pairs in order.
pub fn pem_blocks(text: &[u8]) -> Result<Vec<(String, Vec<u8>)>, MaterialError> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).map_err(|_| MaterialError::Pem("not UTF-8".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| MaterialError::Pem("unterminated BEGIN line".into()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start
            .find(&end_marker)
            .ok_or_else(|| MaterialError::Pem(format!("no END line for {label}")))?;
        let b64: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| MaterialError::Pem(format!("{label}: {e}")))?;
        out.push((label.to_owned(), der));
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

/// Decodes the first PEM block; returns its label and DER contents.
pub fn from_pem(text: &[u8]) -> Result<(String, Vec<u8>), MaterialError> {
    pem_blocks(text)?
        .into_iter()
        .next()
        .ok_or_else(|| MaterialError::Pem("no PEM block".into()))
}

/// Decodes every PEM certificate in `text`, in order.
pub fn certs_from_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, MaterialError> {
    Ok(pem_blocks(text)?
        .into_iter()
        .filter(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect())
}

/// A parsed and signature-checked certificate signing request.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    /// The requested subject.
    pub subject: Name,
    /// The requested public key (DER SubjectPublicKeyInfo).
    pub public_key_spki: Vec<u8>,
    /// The subject alternative names in the request, as host strings.
    pub hosts: Vec<String>,
    /// Whether the request asks for basicConstraints CA:TRUE.
    pub is_ca: bool,
}

/// Why a CSR was refused, split the way Fabric CA reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsrError {
    /// The text is not PEM (cfssl: "CSR Decode failed").
    Decode,
    /// The PEM block is not a certificate request.
    NotACsr,
    /// The DER does not parse or the self-signature does not verify.
    Invalid(String),
}

/// Parses a PEM CSR and checks its self-signature, as Go's `x509.ParseCertificateRequest` plus
/// cfssl's `CheckSignature` do.
pub fn parse_csr(pem_text: &str) -> Result<ParsedCsr, CsrError> {
    let (label, der) = from_pem(pem_text.as_bytes()).map_err(|_| CsrError::Decode)?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::NotACsr);
    }
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CsrError::Invalid(format!("asn1: {e}")))?;
    csr.verify_signature()
        .map_err(|e| CsrError::Invalid(format!("x509: CSR signature check failed: {e}")))?;
    let info = &csr.certification_request_info;
    let mut hosts = Vec::new();
    let mut is_ca = false;
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => hosts.push((*d).to_owned()),
                            GeneralName::RFC822Name(e) => hosts.push((*e).to_owned()),
                            GeneralName::IPAddress(raw) => {
                                if let Some(ip) = ip_from_bytes(raw) {
                                    hosts.push(ip.to_string());
                                }
                            }
                            _ => {}
                        }
                    }
                }
                ParsedExtension::BasicConstraints(bc) => is_ca = bc.ca,
                _ => {}
            }
        }
    }
    Ok(ParsedCsr {
        subject: Name::from_x509(&info.subject),
        public_key_spki: info.subject_pki.raw.to_vec(),
        hosts,
        is_ca,
    })
}

fn ip_from_bytes(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(raw).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(raw).ok()?)),
        _ => None,
    }
}

/// The facts about a certificate that Fabric's MSP and Fabric CA look at.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// Subject name.
    pub subject: Name,
    /// Issuer name.
    pub issuer: Name,
    /// Serial, normalised (lowercase hex, no leading zeros).
    pub serial: String,
    /// Authority key identifier, normalised; empty when absent.
    pub aki: String,
    /// Subject key identifier, raw.
    pub ski: Vec<u8>,
    /// Whether basicConstraints says CA:TRUE.
    pub is_ca: bool,
    /// Fabric CA attributes from the 1.2.3.4.5.6.7.8.1 extension, if present.
    pub attributes: Option<BTreeMap<String, String>>,
    /// DNS and IP subject alternative names.
    pub hosts: Vec<String>,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// Start of validity (Unix seconds).
    pub not_before: i64,
    /// The DER SubjectPublicKeyInfo.
    pub public_key_spki: Vec<u8>,
}

/// Parses a DER certificate into [`CertInfo`].
pub fn cert_info(der: &[u8]) -> Result<CertInfo, MaterialError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| MaterialError::Certificate(format!("parsing certificate: {e}")))?;
    let mut info = CertInfo {
        subject: Name::from_x509(cert.subject()),
        issuer: Name::from_x509(cert.issuer()),
        serial: normalize_hex(&hex::encode(cert.raw_serial())),
        aki: String::new(),
        ski: Vec::new(),
        is_ca: cert.is_ca(),
        attributes: None,
        hosts: Vec::new(),
        not_after: cert.validity().not_after.timestamp(),
        not_before: cert.validity().not_before.timestamp(),
        public_key_spki: cert.public_key().raw.to_vec(),
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                if let Some(id) = &aki.key_identifier {
                    info.aki = normalize_hex(&hex::encode(id.0));
                }
            }
            ParsedExtension::SubjectKeyIdentifier(id) => info.ski = id.0.to_vec(),
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => info.hosts.push((*d).to_owned()),
                        GeneralName::IPAddress(raw) => {
                            if let Some(ip) = ip_from_bytes(raw) {
                                info.hosts.push(ip.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                if ext.oid.to_id_string() == ATTRIBUTE_OID_STR {
                    #[derive(serde::Deserialize)]
                    struct Attrs {
                        attrs: BTreeMap<String, String>,
                    }
                    let attrs: Attrs = serde_json::from_slice(ext.value).map_err(|e| {
                        MaterialError::Certificate(format!("attribute extension: {e}"))
                    })?;
                    info.attributes = Some(attrs.attrs);
                }
            }
        }
    }
    Ok(info)
}

/// Checks that `der` was signed by the CA whose certificate is `ca_der` (names and signature).
pub fn verify_signed_by(der: &[u8], ca_der: &[u8]) -> Result<(), MaterialError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| MaterialError::Certificate(format!("parsing certificate: {e}")))?;
    let (_, ca) = X509Certificate::from_der(ca_der)
        .map_err(|e| MaterialError::Certificate(format!("parsing CA certificate: {e}")))?;
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(MaterialError::Certificate(
            "certificate was not issued by this CA (issuer name differs)".into(),
        ));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| MaterialError::Certificate(format!("certificate signature: {e}")))
}
