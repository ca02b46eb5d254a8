//! Request and response bodies of the Fabric CA REST API (`api/net.go`), with Fabric CA's JSON
//! field names. Go matches JSON keys case-insensitively, so the spellings real clients send
//! (`caname` and `CAName`, ...) are accepted as aliases.

use serde::{Deserialize, Serialize};

/// An attribute of an identity (`api.Attribute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// Name, e.g. `elicense.role` or `hf.Revoker`.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// Whether the attribute goes into enrollment certificates by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ecert: bool,
}

impl Attribute {
    /// An attribute; `ecert` says whether enrollment certificates carry it by default.
    pub fn new(name: impl Into<String>, value: impl Into<String>, ecert: bool) -> Self {
        Attribute {
            name: name.into(),
            value: value.into(),
            ecert,
        }
    }
}

/// A request for an attribute in an enrollment certificate (`api.AttributeRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeRequest {
    /// The attribute's name.
    pub name: String,
    /// When false (the default), enrollment fails if the identity lacks the attribute.
    #[serde(default)]
    pub optional: bool,
}

/// `POST /register` body (`api.RegistrationRequestNet`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// The enrollment ID to register.
    #[serde(rename = "id")]
    pub name: String,
    /// Identity type (`client`, `peer`, `orderer`, `admin`, ...); empty means the registrar's.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Enrollment secret; empty means one is generated.
    #[serde(default)]
    pub secret: String,
    /// Maximum enrollments: 0 means the CA's default, -1 unlimited.
    #[serde(default)]
    pub max_enrollments: i32,
    /// Affiliation; empty means the registrar's, "." the root.
    #[serde(default)]
    pub affiliation: String,
    /// Attributes.
    #[serde(default, rename = "attrs")]
    pub attributes: Vec<Attribute>,
    /// Target CA name; empty means the default CA.
    #[serde(default, rename = "caname", alias = "CAName", alias = "caName")]
    pub ca_name: String,
}

/// `POST /enroll` and `/reenroll` body (`api.EnrollmentRequestNet`: a cfssl sign request plus
/// attribute requests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    /// The PEM CSR.
    #[serde(default)]
    pub certificate_request: String,
    /// Subject alternative names overriding the CSR's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Signing profile: empty (enrollment certificate) or `tls`.
    #[serde(default)]
    pub profile: String,
    /// HSM label (ignored, as by a software CA).
    #[serde(default)]
    pub label: String,
    /// Target CA name; empty means the default CA.
    #[serde(default, rename = "caname", alias = "CAName", alias = "caName")]
    pub ca_name: String,
    /// Attributes to put in the certificate; absent means every `ecert` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr_reqs: Option<Vec<AttributeRequest>>,
    /// Requested start of validity (RFC 3339; Go's zero time means unset).
    #[serde(
        default,
        rename = "NotBefore",
        alias = "not_before",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<String>,
    /// Requested end of validity (RFC 3339; Go's zero time means unset).
    #[serde(
        default,
        rename = "NotAfter",
        alias = "not_after",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<String>,
}

/// `POST /revoke` body (`api.RevocationRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRequest {
    /// Revoke this identity and all its certificates.
    #[serde(default, rename = "id")]
    pub name: String,
    /// Revoke the certificate with this serial (hex) ...
    #[serde(default)]
    pub serial: String,
    /// ... and this authority key identifier (hex).
    #[serde(default)]
    pub aki: String,
    /// RFC 5280 reason name (`keycompromise`, `superseded`, ...).
    #[serde(default)]
    pub reason: String,
    /// Target CA name.
    #[serde(default, rename = "caname", alias = "CAName", alias = "caName")]
    pub ca_name: String,
    /// Whether to return a CRL.
    #[serde(default)]
    pub gencrl: bool,
}

/// One revoked certificate in a revocation response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedCert {
    /// Serial, lowercase hex without leading zeros.
    #[serde(rename = "Serial")]
    pub serial: String,
    /// Authority key identifier, lowercase hex without leading zeros.
    #[serde(rename = "AKI")]
    pub aki: String,
}

/// The revocation response (`revocationResponseNet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationResponse {
    /// What was revoked (`null` when nothing was, as Go marshals an empty slice it never made).
    #[serde(rename = "RevokedCerts")]
    pub revoked_certs: Option<Vec<RevokedCert>>,
    /// Base64 PEM CRL when `gencrl` was asked for and something was revoked, else empty.
    #[serde(rename = "CRL")]
    pub crl: String,
}

/// `cainfo` and the `ServerInfo` of an enrollment response (`serverInfoResponseNet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaInfo {
    /// The CA's name.
    #[serde(rename = "CAName")]
    pub ca_name: String,
    /// Base64 of the PEM chain (here the root CA certificate).
    #[serde(rename = "CAChain")]
    pub ca_chain: String,
    /// Idemix issuer public key: empty, this service issues X.509 only.
    #[serde(rename = "IssuerPublicKey")]
    pub issuer_public_key: String,
    /// Idemix revocation public key: empty.
    #[serde(rename = "IssuerRevocationPublicKey")]
    pub issuer_revocation_public_key: String,
    /// Server version (empty inside enrollment responses, as fabric-ca-server sends it).
    #[serde(rename = "Version")]
    pub version: String,
}

/// The enrollment response (`enrollmentResponseNet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentResponse {
    /// Base64 of the PEM certificate.
    #[serde(rename = "Cert")]
    pub cert: String,
    /// The CA's information.
    #[serde(rename = "ServerInfo")]
    pub server_info: CaInfo,
}

/// The registration response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationResponse {
    /// The enrollment secret.
    pub secret: String,
}

/// One identity as `GET /identities` shows it (`api.IdentityInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    /// Enrollment ID.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Affiliation.
    pub affiliation: String,
    /// Attributes.
    pub attrs: Vec<Attribute>,
    /// Maximum enrollments.
    pub max_enrollments: i32,
}

/// `GET /identities` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitiesResponse {
    /// The identities the caller may see.
    pub identities: Vec<IdentityInfo>,
    /// The CA's name.
    pub caname: String,
}

/// `GET /identities/<id>` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityResponse {
    /// The identity.
    #[serde(flatten)]
    pub identity: IdentityInfo,
    /// The CA's name.
    pub caname: String,
}

/// A CA name carried in a body, for routing requests to one of a server's CAs.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CaNameBody {
    #[serde(default, rename = "caname", alias = "CAName", alias = "caName")]
    pub ca_name: String,
}
