//! A Fabric CA client: the REST API of `fabric-ca-server` (v1.4/v1.5) as `fabric-ca-client` uses it.
//!
//! * [`CaClient::cainfo`]: the CA's name, certificate chain and version.
//! * [`CaClient::enroll`]: HTTP Basic auth with the enrollment secret; a fresh P-256 key and a
//!   CSR whose CN is the enrollment ID; optional hosts and attribute requests.
//! * [`CaClient::reenroll`], [`CaClient::register`], [`CaClient::revoke`],
//!   [`CaClient::identities`], [`CaClient::identity`]: token auth, exactly as Fabric CA checks it:
//!   `Authorization: <b64(cert PEM)>.<b64(sig)>`, the signature (ECDSA over SHA-256) covering
//!   `<METHOD>.<b64(request URI)>.<b64(body)>.<b64(cert PEM)>` (Fabric CA's `util.GenECDSAToken`),
//!   where the request URI is the path and query actually sent.
//!
//! Responses are Fabric CA's JSON envelope `{success, result, errors:[{code,message}], messages}`;
//! errors become [`CaError`] variants carrying Fabric CA's numeric code. An [`Enrollment`] can be
//! written out as an MSP directory or a wallet entry.

mod error;

pub use error::{CaError, CaErrorMessage, CODE_AUTHENTICATION_FAILURE, CODE_AUTHORIZATION_FAILURE};

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::identity::{HashAlgorithm, Identity, PrivateKeySigner, SigningIdentity};
use crate::msp::{write_msp_dir, MspDirContents};
use crate::wallet::WalletIdentity;

/// Connection settings of a [`CaClient`].
#[derive(Debug, Clone, Default)]
pub struct CaClientOptions {
    /// PEM certificates trusted for the CA server's TLS certificate (its `tls-cert.pem`, or the
    /// TLS CA that issued it). Required for `https` URLs.
    pub tls_root_pems: Vec<Vec<u8>>,
    /// The CA's name inside a multi-CA server (`caname`); `None` for the default CA.
    pub ca_name: Option<String>,
    /// Per-request timeout (default 30 s).
    pub timeout: Option<Duration>,
}

/// Information about a CA (`/api/v1/cainfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaInfo {
    /// The CA's name.
    pub ca_name: String,
    /// The PEM certificate chain, root first.
    pub ca_chain_pem: Vec<u8>,
    /// The server version (e.g. `1.5.21`).
    pub version: String,
}

impl CaInfo {
    /// The chain's self-signed (root) certificates, PEM each.
    pub fn root_certs(&self) -> Vec<Vec<u8>> {
        split_chain(&self.ca_chain_pem).0
    }

    /// The chain's intermediate certificates, PEM each.
    pub fn intermediate_certs(&self) -> Vec<Vec<u8>> {
        split_chain(&self.ca_chain_pem).1
    }
}

/// Splits a PEM chain into (roots, intermediates): a certificate whose subject equals its issuer
/// is a root, as fabric-ca-client decides when it fills `cacerts/` and `intermediatecerts/`.
fn split_chain(chain: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut roots = Vec::new();
    let mut intermediates = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(chain).flatten() {
        let Ok(cert) = pem.parse_x509() else { continue };
        let text = pem_encode("CERTIFICATE", &pem.contents);
        if cert.subject() == cert.issuer() {
            roots.push(text);
        } else {
            intermediates.push(text);
        }
    }
    (roots, intermediates)
}

fn pem_encode(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// An attribute requested into an enrollment certificate (`attr_reqs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeRequest {
    /// The attribute name.
    pub name: String,
    /// If true, enrollment does not fail when the identity lacks the attribute.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// An enrollment (`/api/v1/enroll`) request.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentRequest {
    /// The enrollment ID (becomes the certificate's CN).
    pub enrollment_id: String,
    /// The enrollment secret.
    pub secret: String,
    /// Subject alternative names (host names, IP addresses).
    pub hosts: Vec<String>,
    /// Attributes to put in the certificate; empty means the identity's `ecert` attributes.
    pub attribute_requests: Vec<AttributeRequest>,
    /// The signing profile (e.g. `tls`).
    pub profile: Option<String>,
    /// The HSM label.
    pub label: Option<String>,
    /// Key to certify; a fresh P-256 key is generated when `None`.
    pub key: Option<PrivateKeySigner>,
}

impl EnrollmentRequest {
    /// A request for `enrollment_id` with its secret.
    pub fn new(enrollment_id: impl Into<String>, secret: impl Into<String>) -> Self {
        EnrollmentRequest {
            enrollment_id: enrollment_id.into(),
            secret: secret.into(),
            ..Default::default()
        }
    }

    /// Adds subject alternative names.
    pub fn hosts(mut self, hosts: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Requests an attribute into the certificate.
    pub fn attribute(mut self, name: impl Into<String>, optional: bool) -> Self {
        self.attribute_requests.push(AttributeRequest {
            name: name.into(),
            optional,
        });
        self
    }

    /// Uses a signing profile (e.g. `tls`).
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }
}

/// A re-enrollment (`/api/v1/reenroll`) request: a new certificate for the caller's identity.
#[derive(Debug, Clone, Default)]
pub struct ReenrollmentRequest {
    /// Subject alternative names.
    pub hosts: Vec<String>,
    /// Attributes to put in the certificate.
    pub attribute_requests: Vec<AttributeRequest>,
    /// The signing profile.
    pub profile: Option<String>,
    /// Key to certify; a fresh key is generated when `None` (pass the current key to keep it).
    pub key: Option<PrivateKeySigner>,
}

/// An attribute registered with an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    /// The attribute name (e.g. `hf.Registrar.Roles`, `elicense.role`).
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether the attribute goes into enrollment certificates by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ecert: bool,
}

impl Attribute {
    /// An attribute; `ecert` puts it into certificates by default.
    pub fn new(name: impl Into<String>, value: impl Into<String>, ecert: bool) -> Self {
        Attribute {
            name: name.into(),
            value: value.into(),
            ecert,
        }
    }
}

/// A registration (`/api/v1/register`) request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistrationRequest {
    /// The new identity's enrollment ID.
    #[serde(rename = "id")]
    pub enrollment_id: String,
    /// Identity type: `client`, `peer`, `orderer`, `admin` or `user`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The enrollment secret; the server generates one when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// Maximum number of enrollments (0: the server's default, -1: unlimited).
    #[serde(skip_serializing_if = "is_zero")]
    pub max_enrollments: i32,
    /// The affiliation (e.g. `org1.department1`); empty means the registrar's own.
    pub affiliation: String,
    /// Attributes.
    #[serde(rename = "attrs", skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// The CA name (filled from the client's options).
    #[serde(rename = "caname", skip_serializing_if = "String::is_empty")]
    pub ca_name: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

impl RegistrationRequest {
    /// A request to register `enrollment_id` as a `client`.
    pub fn new(enrollment_id: impl Into<String>) -> Self {
        RegistrationRequest {
            enrollment_id: enrollment_id.into(),
            kind: "client".into(),
            ..Default::default()
        }
    }

    /// Sets the identity type.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Sets the secret.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = secret.into();
        self
    }

    /// Sets the affiliation.
    pub fn affiliation(mut self, affiliation: impl Into<String>) -> Self {
        self.affiliation = affiliation.into();
        self
    }

    /// Sets the maximum number of enrollments.
    pub fn max_enrollments(mut self, max: i32) -> Self {
        self.max_enrollments = max;
        self
    }

    /// Adds an attribute.
    pub fn attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        ecert: bool,
    ) -> Self {
        self.attributes.push(Attribute::new(name, value, ecert));
        self
    }
}

/// A revocation (`/api/v1/revoke`) request: an identity (all its certificates) or one certificate
/// by serial number and authority key identifier.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevocationRequest {
    /// Enrollment ID whose certificates (and the identity itself) are revoked.
    #[serde(rename = "id", skip_serializing_if = "String::is_empty")]
    pub enrollment_id: String,
    /// Certificate serial number, hex.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub serial: String,
    /// Authority key identifier, hex.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub aki: String,
    /// Reason (`unspecified`, `keycompromise`, `cacompromise`, `affiliationchange`,
    /// `superseded`, `cessationofoperation`, `certificatehold`, `removefromcrl`,
    /// `privilegewithdrawn`, `aacompromise`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Whether to return a CRL.
    #[serde(rename = "gencrl", skip_serializing_if = "std::ops::Not::not")]
    pub gen_crl: bool,
    /// The CA name (filled from the client's options).
    #[serde(rename = "caname", skip_serializing_if = "String::is_empty")]
    pub ca_name: String,
}

impl RevocationRequest {
    /// Revokes an identity and all its certificates.
    pub fn identity(enrollment_id: impl Into<String>) -> Self {
        RevocationRequest {
            enrollment_id: enrollment_id.into(),
            ..Default::default()
        }
    }

    /// Revokes one certificate.
    pub fn certificate(serial_hex: impl Into<String>, aki_hex: impl Into<String>) -> Self {
        RevocationRequest {
            serial: serial_hex.into(),
            aki: aki_hex.into(),
            ..Default::default()
        }
    }

    /// Revokes the certificate given as PEM (its serial and AKI are read from it).
    pub fn certificate_pem(pem: &[u8]) -> Result<Self, CaError> {
        let (serial, aki) = certificate_serial_and_aki(pem)?;
        Ok(Self::certificate(serial, aki))
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Asks for a CRL in the response.
    pub fn gen_crl(mut self) -> Self {
        self.gen_crl = true;
        self
    }
}

/// A certificate's serial number and authority key identifier, lowercase hex without leading
/// zeros (the form Fabric CA stores and compares).
pub fn certificate_serial_and_aki(pem: &[u8]) -> Result<(String, String), CaError> {
    let cert = crate::identity::parse_certificate(pem)?;
    // Big-endian bytes to hex without leading zeros (DER may carry a 0x00 sign byte).
    let serial = trim_hex(&hex::encode(cert.serial()));
    let aki = cert.authority_key_id().map(hex::encode).unwrap_or_default();
    if aki.is_empty() {
        return Err(CaError::InvalidRequest(
            "certificate has no authority key identifier".into(),
        ));
    }
    Ok((serial, trim_hex(&aki)))
}

fn trim_hex(s: &str) -> String {
    let t = s.to_ascii_lowercase();
    let t = t.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RevokedCertificate {
    /// Serial number, hex.
    #[serde(rename = "Serial")]
    pub serial: String,
    /// Authority key identifier, hex.
    #[serde(rename = "AKI")]
    pub aki: String,
}

/// The result of a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationResponse {
    /// The certificates revoked.
    pub revoked: Vec<RevokedCertificate>,
    /// The CRL (DER or PEM as the server sent it), when requested.
    pub crl: Option<Vec<u8>>,
}

/// An identity registered with the CA (`/api/v1/identities`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IdentityInfo {
    /// Enrollment ID.
    pub id: String,
    /// Identity type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Affiliation.
    #[serde(default)]
    pub affiliation: String,
    /// Attributes.
    #[serde(rename = "attrs", default)]
    pub attributes: Vec<Attribute>,
    /// Maximum number of enrollments.
    #[serde(default)]
    pub max_enrollments: i32,
}

/// The result of an enrollment: the new certificate, its private key and the CA's chain.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The enrollment ID.
    pub enrollment_id: String,
    /// The PEM certificate issued by the CA.
    pub certificate_pem: Vec<u8>,
    /// The certified private key.
    pub key: PrivateKeySigner,
    /// The CA's information (chain, name, version).
    pub ca_info: CaInfo,
}

/// What to add when writing an [`Enrollment`] as an MSP directory.
#[derive(Debug, Clone, Default)]
pub struct MspWriteOptions {
    /// File name stem for CA files (default `ca-cert`; fabric-ca-client uses `<host>-<port>`).
    pub ca_file_stem: String,
    /// Writes `config.yaml` with Node OUs enabled.
    pub node_ous: bool,
    /// TLS root certificates to put in `tlscacerts/`.
    pub tls_root_pems: Vec<Vec<u8>>,
}

impl Enrollment {
    /// The signing identity of this enrollment under `msp_id`.
    pub fn signing_identity(&self, msp_id: &str) -> Result<SigningIdentity, CaError> {
        let identity = Identity::new(msp_id, self.certificate_pem.clone())?;
        Ok(SigningIdentity::from_private_key(
            identity,
            self.key.clone(),
        )?)
    }

    /// Writes the enrollment as an MSP directory: `signcerts/cert.pem`, `keystore/<SKI>_sk`,
    /// `cacerts/`, `intermediatecerts/`, optionally `tlscacerts/` and `config.yaml`.
    pub fn write_msp_dir(
        &self,
        dir: impl AsRef<Path>,
        options: &MspWriteOptions,
    ) -> Result<(), CaError> {
        let (roots, intermediates) = split_chain(&self.ca_info.ca_chain_pem);
        write_msp_dir(
            dir,
            &MspDirContents {
                signcert_pem: self.certificate_pem.clone(),
                private_key_pem: Some(self.key.to_pkcs8_pem()),
                cacerts_pem: roots,
                intermediatecerts_pem: intermediates,
                tlscacerts_pem: options.tls_root_pems.clone(),
                ca_file_stem: options.ca_file_stem.clone(),
                node_ous: options.node_ous,
            },
        )?;
        Ok(())
    }

    /// The enrollment as a wallet entry.
    pub fn wallet_identity(&self, msp_id: &str) -> WalletIdentity {
        WalletIdentity::x509(
            msp_id,
            String::from_utf8_lossy(&self.certificate_pem).into_owned(),
            self.key.to_pkcs8_pem(),
        )
    }
}

/// A client of one Fabric CA server (one CA within it, when `ca_name` is set).
#[derive(Debug, Clone)]
pub struct CaClient {
    http: reqwest::Client,
    base: reqwest::Url,
    ca_name: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    errors: Vec<CaErrorMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CaInfoNet {
    #[serde(rename = "CAName", default)]
    ca_name: String,
    #[serde(rename = "CAChain", default)]
    ca_chain: String,
    #[serde(default)]
    version: String,
}

impl CaInfoNet {
    fn into_info(self) -> Result<CaInfo, CaError> {
        Ok(CaInfo {
            ca_name: self.ca_name,
            ca_chain_pem: B64
                .decode(&self.ca_chain)
                .map_err(|e| CaError::InvalidResponse(format!("CAChain: {e}")))?,
            version: self.version,
        })
    }
}

#[derive(Deserialize)]
struct EnrollmentNet {
    #[serde(rename = "Cert")]
    cert: String,
    #[serde(rename = "ServerInfo")]
    server_info: CaInfoNet,
}

#[derive(Serialize)]
struct EnrollmentRequestNet<'a> {
    hosts: &'a [String],
    certificate_request: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    profile: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    label: &'a str,
    #[serde(rename = "caname", skip_serializing_if = "str::is_empty")]
    ca_name: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attr_reqs: &'a [AttributeRequest],
}

/// Builds the PEM CSR Fabric CA expects: CN = enrollment ID, hosts as subject alternative names.
fn build_csr(
    enrollment_id: &str,
    hosts: &[String],
    key: &PrivateKeySigner,
) -> Result<String, CaError> {
    let csr_err = |e: rcgen::Error| CaError::InvalidRequest(format!("CSR: {e}"));
    let key_pair = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem()).map_err(csr_err)?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(csr_err)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, enrollment_id);
    params.distinguished_name = dn;
    params
        .serialize_request(&key_pair)
        .and_then(|csr| csr.pem())
        .map_err(csr_err)
}

/// The common name of a PEM certificate's subject.
fn certificate_cn(pem: &[u8]) -> Result<String, CaError> {
    let cert = crate::identity::parse_certificate(pem)?;
    let cn = cert.subject().common_name().map(str::to_string);
    cn.ok_or_else(|| CaError::InvalidRequest("certificate has no common name".into()))
}

/// The Fabric CA authorization token for a request (Fabric CA's `util.GenECDSAToken`).
pub fn authorization_token(
    caller: &SigningIdentity,
    method: &str,
    request_uri: &str,
    body: &[u8],
) -> Result<String, CaError> {
    let b64_cert = B64.encode(caller.identity().credentials());
    let payload = format!(
        "{method}.{}.{}.{b64_cert}",
        B64.encode(request_uri.as_bytes()),
        B64.encode(body)
    );
    // Fabric CA verifies with SHA-256 whatever hash the gateway uses.
    let sig = caller
        .signer()
        .sign_message(payload.as_bytes(), HashAlgorithm::Sha256)?;
    let sig = crate::identity::ensure_low_s(sig).map_err(crate::identity::SignError::from)?;
    Ok(format!("{b64_cert}.{}", B64.encode(sig)))
}

impl CaClient {
    /// A client of the CA at `url` (`https://host:port`, or `http://` for a CA without TLS).
    pub fn new(url: &str, options: CaClientOptions) -> Result<Self, CaError> {
        let mut base = reqwest::Url::parse(url)
            .map_err(|e| CaError::InvalidRequest(format!("URL {url:?}: {e}")))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(options.timeout.unwrap_or(Duration::from_secs(30)));
        for pem in &options.tls_root_pems {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| CaError::InvalidRequest(format!("TLS root certificate: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| CaError::InvalidRequest(format!("HTTP client: {e}")))?;
        Ok(CaClient {
            http,
            base,
            ca_name: options.ca_name.filter(|n| !n.is_empty()),
        })
    }

    /// A client for a CA from a connection profile.
    pub fn from_profile(ca: &crate::profile::CaEndpoint) -> Result<Self, CaError> {
        Self::new(
            &ca.url,
            CaClientOptions {
                tls_root_pems: ca.tls_ca_pems.clone(),
                ca_name: ca.ca_name.clone(),
                timeout: None,
            },
        )
    }

    fn url(&self, endpoint: &str, query_ca: bool) -> Result<reqwest::Url, CaError> {
        let mut url = self
            .base
            .join("api/v1/")
            .and_then(|u| u.join(endpoint))
            .map_err(|e| CaError::InvalidRequest(e.to_string()))?;
        if query_ca {
            if let Some(ca) = &self.ca_name {
                url.query_pairs_mut().append_pair("ca", ca);
            }
        }
        Ok(url)
    }

    fn ca_name(&self) -> &str {
        self.ca_name.as_deref().unwrap_or("")
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CaError> {
        let response = request.send().await.map_err(CaError::Transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(CaError::Transport)?;
        let envelope: Envelope = match serde_json::from_slice(&bytes) {
            Ok(env) => env,
            Err(_) if status >= 400 => return Err(CaError::from_response(status, Vec::new())),
            Err(e) => {
                return Err(CaError::InvalidResponse(format!(
                    "HTTP {status}: {e}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                )))
            }
        };
        if !envelope.errors.is_empty() || status >= 400 {
            return Err(CaError::from_response(status, envelope.errors));
        }
        if !envelope.success {
            return Err(CaError::InvalidResponse(
                "the server reported no success and no error".into(),
            ));
        }
        serde_json::from_value(envelope.result)
            .map_err(|e| CaError::InvalidResponse(format!("result: {e}")))
    }

    async fn send_with_token<T: serde::de::DeserializeOwned>(
        &self,
        caller: &SigningIdentity,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Vec<u8>,
    ) -> Result<T, CaError> {
        let uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let token = authorization_token(caller, method.as_str(), &uri, &body)?;
        let mut request = self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, token);
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        self.send(request).await
    }

    /// The CA's name, chain and version.
    pub async fn cainfo(&self) -> Result<CaInfo, CaError> {
        let body = serde_json::json!({ "caname": self.ca_name() });
        let info: CaInfoNet = self
            .send(self.http.post(self.url("cainfo", false)?).json(&body))
            .await?;
        info.into_info()
    }

    fn enrollment_body(
        &self,
        enrollment_id: &str,
        hosts: &[String],
        attr_reqs: &[AttributeRequest],
        profile: Option<&str>,
        label: Option<&str>,
        key: &PrivateKeySigner,
    ) -> Result<Vec<u8>, CaError> {
        let csr = build_csr(enrollment_id, hosts, key)?;
        serde_json::to_vec(&EnrollmentRequestNet {
            hosts,
            certificate_request: csr,
            profile: profile.unwrap_or(""),
            label: label.unwrap_or(""),
            ca_name: self.ca_name(),
            attr_reqs,
        })
        .map_err(|e| CaError::InvalidRequest(e.to_string()))
    }

    fn enrollment_from(
        net: EnrollmentNet,
        enrollment_id: String,
        key: PrivateKeySigner,
    ) -> Result<Enrollment, CaError> {
        let certificate_pem = B64
            .decode(&net.cert)
            .map_err(|e| CaError::InvalidResponse(format!("Cert: {e}")))?;
        // The CA must have certified *our* key: refuse anything else before it reaches a wallet.
        let public = crate::identity::certificate_public_key(&certificate_pem)?;
        if public != *key.public_key() {
            return Err(CaError::InvalidResponse(
                "the issued certificate does not certify the requested key".into(),
            ));
        }
        Ok(Enrollment {
            enrollment_id,
            certificate_pem,
            key,
            ca_info: net.server_info.into_info()?,
        })
    }

    /// Enrolls an identity with its secret: a new key, a CSR, a certificate.
    pub async fn enroll(&self, request: &EnrollmentRequest) -> Result<Enrollment, CaError> {
        if request.enrollment_id.is_empty() {
            return Err(CaError::InvalidRequest("the enrollment ID is empty".into()));
        }
        let key = request
            .key
            .clone()
            .unwrap_or_else(PrivateKeySigner::generate);
        let body = self.enrollment_body(
            &request.enrollment_id,
            &request.hosts,
            &request.attribute_requests,
            request.profile.as_deref(),
            request.label.as_deref(),
            &key,
        )?;
        let net: EnrollmentNet = self
            .send(
                self.http
                    .post(self.url("enroll", false)?)
                    .basic_auth(&request.enrollment_id, Some(&request.secret))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body),
            )
            .await?;
        Self::enrollment_from(net, request.enrollment_id.clone(), key)
    }

    /// Re-enrolls the caller: a new certificate (and by default a new key) for the same identity.
    pub async fn reenroll(
        &self,
        caller: &SigningIdentity,
        request: &ReenrollmentRequest,
    ) -> Result<Enrollment, CaError> {
        let enrollment_id = certificate_cn(caller.identity().credentials())?;
        let key = request
            .key
            .clone()
            .unwrap_or_else(PrivateKeySigner::generate);
        let body = self.enrollment_body(
            &enrollment_id,
            &request.hosts,
            &request.attribute_requests,
            request.profile.as_deref(),
            None,
            &key,
        )?;
        let net: EnrollmentNet = self
            .send_with_token(
                caller,
                reqwest::Method::POST,
                self.url("reenroll", false)?,
                body,
            )
            .await?;
        Self::enrollment_from(net, enrollment_id, key)
    }

    /// Registers a new identity; returns its enrollment secret (the given or a generated one).
    pub async fn register(
        &self,
        registrar: &SigningIdentity,
        request: &RegistrationRequest,
    ) -> Result<String, CaError> {
        if request.enrollment_id.is_empty() {
            return Err(CaError::InvalidRequest("the enrollment ID is empty".into()));
        }
        let mut request = request.clone();
        if request.ca_name.is_empty() {
            request.ca_name = self.ca_name().to_string();
        }
        let body =
            serde_json::to_vec(&request).map_err(|e| CaError::InvalidRequest(e.to_string()))?;
        #[derive(Deserialize)]
        struct Registered {
            secret: String,
        }
        let r: Registered = self
            .send_with_token(
                registrar,
                reqwest::Method::POST,
                self.url("register", false)?,
                body,
            )
            .await?;
        Ok(r.secret)
    }

    /// Revokes an identity or one certificate.
    pub async fn revoke(
        &self,
        revoker: &SigningIdentity,
        request: &RevocationRequest,
    ) -> Result<RevocationResponse, CaError> {
        let mut request = request.clone();
        if request.enrollment_id.is_empty() && (request.serial.is_empty() || request.aki.is_empty())
        {
            return Err(CaError::InvalidRequest(
                "revocation needs an enrollment ID, or both a serial number and an AKI".into(),
            ));
        }
        if !request.serial.is_empty() {
            request.serial = trim_hex(&request.serial);
        }
        if !request.aki.is_empty() {
            request.aki = trim_hex(&request.aki);
        }
        if request.ca_name.is_empty() {
            request.ca_name = self.ca_name().to_string();
        }
        let body =
            serde_json::to_vec(&request).map_err(|e| CaError::InvalidRequest(e.to_string()))?;
        #[derive(Deserialize)]
        struct Revoked {
            #[serde(rename = "RevokedCerts", default)]
            revoked: Option<Vec<RevokedCertificate>>,
            #[serde(rename = "CRL", default)]
            crl: Option<String>,
        }
        let r: Revoked = self
            .send_with_token(
                revoker,
                reqwest::Method::POST,
                self.url("revoke", false)?,
                body,
            )
            .await?;
        let crl = match r.crl.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                B64.decode(c)
                    .map_err(|e| CaError::InvalidResponse(format!("CRL: {e}")))?,
            ),
            None => None,
        };
        Ok(RevocationResponse {
            revoked: r.revoked.unwrap_or_default(),
            crl,
        })
    }

    /// Lists the identities the caller may see.
    pub async fn identities(&self, caller: &SigningIdentity) -> Result<Vec<IdentityInfo>, CaError> {
        #[derive(Deserialize)]
        struct Listed {
            #[serde(default)]
            identities: Vec<IdentityInfo>,
        }
        let r: Listed = self
            .send_with_token(
                caller,
                reqwest::Method::GET,
                self.url("identities", true)?,
                Vec::new(),
            )
            .await?;
        Ok(r.identities)
    }

    /// Reads one identity.
    pub async fn identity(
        &self,
        caller: &SigningIdentity,
        enrollment_id: &str,
    ) -> Result<IdentityInfo, CaError> {
        if enrollment_id.is_empty() || enrollment_id.contains(['/', '?', '#']) {
            return Err(CaError::InvalidRequest(format!(
                "invalid enrollment ID {enrollment_id:?}"
            )));
        }
        let url = self.url(&format!("identities/{enrollment_id}"), true)?;
        self.send_with_token(caller, reqwest::Method::GET, url, Vec::new())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_signs_method_uri_body_and_cert_as_fabric_ca_checks_it() {
        let key = PrivateKeySigner::generate();
        let cert = crate::identity::tests::rcgen_cert(&key);
        let caller = SigningIdentity::from_private_key(
            Identity::new("Org1MSP", cert.clone()).unwrap(),
            key.clone(),
        )
        .unwrap();
        let body = br#"{"id":"user1"}"#;
        let token = authorization_token(&caller, "POST", "/api/v1/register", body).unwrap();
        let (b64_cert, b64_sig) = token.split_once('.').unwrap();
        assert_eq!(B64.decode(b64_cert).unwrap(), cert);
        let sig = B64.decode(b64_sig).unwrap();
        let payload = format!(
            "POST.{}.{}.{}",
            B64.encode("/api/v1/register"),
            B64.encode(body),
            b64_cert
        );
        key.public_key().verify(payload.as_bytes(), &sig).unwrap();
        // A different URI must not verify: the URI is part of what is signed.
        let other = format!(
            "POST.{}.{}.{}",
            B64.encode("/api/v1/revoke"),
            B64.encode(body),
            b64_cert
        );
        assert!(key.public_key().verify(other.as_bytes(), &sig).is_err());
    }

    #[test]
    fn csr_has_the_enrollment_id_as_cn_and_hosts_as_sans() {
        let key = PrivateKeySigner::generate();
        let pem = build_csr("user1", &["127.0.0.1".into(), "peer0.org1".into()], &key).unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let (_, csr) = <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&block.contents).unwrap();
        let cn = csr
            .certification_request_info
            .subject
            .iter_common_name()
            .next()
            .unwrap();
        assert_eq!(cn.as_str().unwrap(), "user1");
        csr.verify_signature().unwrap();
        let spki = csr.certification_request_info.subject_pki.raw;
        assert_eq!(
            fabric_common::crypto::PublicKey::from_spki_der(spki).unwrap(),
            *key.public_key()
        );
    }

    #[test]
    fn server_errors_are_classified_by_fabric_ca_code() {
        let auth = CaError::from_response(
            401,
            vec![CaErrorMessage {
                code: 20,
                message: "Authentication failure".into(),
            }],
        );
        assert!(matches!(auth, CaError::Authentication { code: 20, .. }));
        let authz = CaError::from_response(
            403,
            vec![CaErrorMessage {
                code: 71,
                message: "Authorization failure".into(),
            }],
        );
        assert!(matches!(authz, CaError::Authorization { code: 71, .. }));
        let other = CaError::from_response(
            400,
            vec![CaErrorMessage {
                code: 66,
                message: "already revoked".into(),
            }],
        );
        assert_eq!(other.code(), Some(66));
        assert_eq!(other.http_status(), Some(400));
    }

    #[test]
    fn request_bodies_use_fabric_ca_field_names() {
        let r = RegistrationRequest::new("clerk1")
            .secret("pw")
            .affiliation("org1.department1")
            .max_enrollments(-1)
            .attribute("elicense.role", "clerk", true);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"clerk1","type":"client","secret":"pw","max_enrollments":-1,
                "affiliation":"org1.department1",
                "attrs":[{"name":"elicense.role","value":"clerk","ecert":true}]})
        );
        let rv = serde_json::to_value(
            RevocationRequest::identity("u")
                .reason("keycompromise")
                .gen_crl(),
        )
        .unwrap();
        assert_eq!(
            rv,
            serde_json::json!({"id":"u","reason":"keycompromise","gencrl":true})
        );
        assert_eq!(trim_hex("00ABcd"), "abcd");
    }
}
