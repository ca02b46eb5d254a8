//! The CA service's logic, transport-free: the registry (identities, secrets, enrollment counts,
//! issued certificates, revocations) and Fabric CA's rules for enroll, reenroll, register, revoke
//! and identity queries. The HTTPS front end ([`super::http`]) and in-process callers both go
//! through here, so an identity enrolled at devnet start-up got exactly what `fabric-ca-client`
//! would get.
//!
//! The registry is one JSON file (`ca/<org>/registry.json`), rewritten atomically (temporary file,
//! fsync, rename) after every change while the registry lock is held: a crash leaves either the
//! old or the new registry, never a torn one. Secrets are kept as salted PBKDF2-HMAC-SHA256 hashes.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{codes, CaError};
use super::types::*;
use crate::material::x509::{self, CertSpec, CertUsage, CsrError, Name};
use crate::material::{write_secret_file, CertAuthority, OrgCrypto, CERT_LIFETIME};

/// The fabric-ca-server release whose REST API this service speaks; `cainfo` reports it.
pub const FABRIC_CA_VERSION: &str = "v1.5.21";

/// Fabric CA's default limit on wrong passwords before an identity is locked out.
pub const PASSWORD_ATTEMPTS: u32 = 10;

const PBKDF2_ITERATIONS: u32 = 4096;

/// How a CA service starts: its bootstrap registrar and registry settings (the parts of
/// `fabric-ca-server-config.yaml` the devnet uses).
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// The bootstrap identity (`-b id:secret`), registered with every registrar right.
    pub bootstrap_id: String,
    /// The bootstrap identity's secret.
    pub bootstrap_secret: String,
    /// Known affiliations (each with its parents implied); registering into others is refused.
    pub affiliations: Vec<String>,
    /// `registry.maxenrollments`: -1 unlimited, 0 disables enrollment.
    pub max_enrollments: i32,
}

impl Default for CaOptions {
    fn default() -> Self {
        CaOptions {
            bootstrap_id: "admin".into(),
            bootstrap_secret: "adminpw".into(),
            affiliations: Vec::new(),
            max_enrollments: -1,
        }
    }
}

/// The attributes fabric-ca-server gives its bootstrap identity.
pub fn bootstrap_attributes() -> Vec<Attribute> {
    [
        ("hf.Registrar.Roles", "*"),
        ("hf.Registrar.DelegateRoles", "*"),
        ("hf.Revoker", "1"),
        ("hf.IntermediateCA", "1"),
        ("hf.GenCRL", "1"),
        ("hf.Registrar.Attributes", "*"),
        ("hf.AffiliationMgr", "1"),
    ]
    .into_iter()
    .map(|(n, v)| Attribute::new(n, v, false))
    .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdentityRecord {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    affiliation: String,
    attrs: Vec<Attribute>,
    max_enrollments: i32,
    /// Enrollments so far; -1 once revoked (Fabric CA's `state`).
    state: i32,
    secret_hash: String,
    #[serde(default)]
    failed_logins: u32,
}

impl IdentityRecord {
    fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attrs.iter().find(|a| a.name == name)
    }
    fn attr_is_true(&self, name: &str) -> bool {
        self.attr(name)
            .is_some_and(|a| parse_bool(&a.value) == Some(true))
    }
    fn affiliation_path(&self) -> &str {
        &self.affiliation
    }
    fn info(&self) -> IdentityInfo {
        IdentityInfo {
            id: self.id.clone(),
            kind: self.kind.clone(),
            affiliation: self.affiliation.clone(),
            attrs: self.attrs.clone(),
            max_enrollments: self.max_enrollments,
        }
    }
}

/// One issued certificate as the registry keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertRecord {
    /// Owner's enrollment ID.
    pub id: String,
    /// Issuing CA's name.
    pub ca_name: String,
    /// Serial, normalised hex.
    pub serial: String,
    /// Authority key identifier, normalised hex.
    pub aki: String,
    /// `good` or `revoked`.
    pub status: String,
    /// RFC 5280 reason code when revoked.
    pub reason: u8,
    /// Revocation time (Unix seconds) when revoked.
    pub revoked_at: Option<i64>,
    /// End of validity (Unix seconds).
    pub not_after: i64,
    /// The certificate, PEM.
    pub pem: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryData {
    identities: Vec<IdentityRecord>,
    certificates: Vec<CertRecord>,
}

impl RegistryData {
    fn identity(&self, id: &str) -> Option<&IdentityRecord> {
        self.identities.iter().find(|i| i.id == id)
    }
    fn identity_mut(&mut self, id: &str) -> Option<&mut IdentityRecord> {
        self.identities.iter_mut().find(|i| i.id == id)
    }
}

/// The revoked certificates of a CA service, shared so that the devnet's MSPs can refuse them.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    revoked: Arc<RwLock<HashSet<(String, String)>>>,
}

impl RevocationList {
    /// Whether the certificate with this serial and AKI (hex, any case, leading zeros allowed)
    /// has been revoked.
    pub fn is_revoked(&self, serial: &str, aki: &str) -> bool {
        let key = (x509::normalize_hex(serial), x509::normalize_hex(aki));
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
    }

    /// Whether a DER certificate has been revoked.
    pub fn is_certificate_revoked(&self, der: &[u8]) -> bool {
        match x509::cert_info(der) {
            Ok(info) => self.is_revoked(&info.serial, &info.aki),
            Err(_) => false,
        }
    }

    /// How many certificates are revoked.
    pub fn len(&self) -> usize {
        self.revoked.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, serial: &str, aki: &str) {
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((serial.to_owned(), aki.to_owned()));
    }
}

struct CaInstance {
    name: String,
    authority: Arc<CertAuthority>,
    /// The default signing profile: enrollment certificates for the root CA, TLS for the TLS CA.
    default_usage: CertUsage,
}

struct Inner {
    org: String,
    cas: Vec<CaInstance>,
    registry: Mutex<RegistryData>,
    path: PathBuf,
    options: CaOptions,
    revocations: RevocationList,
}

/// One organisation's Fabric CA: its root CA (the default, `ca.<domain>`) and its TLS CA
/// (`tlsca.<domain>`), sharing one registry, as the real network's fabric-ca-server hosts them.
#[derive(Clone)]
pub struct CaService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaService")
            .field("org", &self.inner.org)
            .field(
                "cas",
                &self.inner.cas.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The registry file under a CA home.
pub fn registry_path(home: &Path) -> PathBuf {
    home.join("registry.json")
}

impl CaService {
    /// Opens (or creates) the CA service of `org`, keeping its registry under `home`. The
    /// bootstrap identity is registered once, on first start.
    pub fn open(org: &OrgCrypto, home: &Path, options: CaOptions) -> Result<Self, CaError> {
        let path = registry_path(home);
        let mut data: RegistryData = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| CaError::internal(format!("{}: {e}", path.display())))?;
            serde_json::from_slice(text.as_bytes())
                .map_err(|e| CaError::internal(format!("{}: {e}", path.display())))?
        } else {
            RegistryData::default()
        };
        if data.identity(&options.bootstrap_id).is_none() {
            data.identities.push(IdentityRecord {
                id: options.bootstrap_id.clone(),
                kind: "client".into(),
                affiliation: String::new(),
                attrs: bootstrap_attributes(),
                max_enrollments: options.max_enrollments,
                state: 0,
                secret_hash: hash_secret(&options.bootstrap_secret),
                failed_logins: 0,
            });
        }
        let revocations = RevocationList::default();
        for c in data.certificates.iter().filter(|c| c.status == "revoked") {
            revocations.insert(&c.serial, &c.aki);
        }
        let inner = Inner {
            org: org.name.clone(),
            cas: vec![
                CaInstance {
                    name: org.ca_name(),
                    authority: org.ca.clone(),
                    default_usage: CertUsage::Enrollment,
                },
                CaInstance {
                    name: org.tlsca_name(),
                    authority: org.tlsca.clone(),
                    default_usage: CertUsage::Tls,
                },
            ],
            registry: Mutex::new(data),
            path,
            options,
            revocations,
        };
        let service = CaService {
            inner: Arc::new(inner),
        };
        {
            let data = service.lock();
            service.persist(&data)?;
        }
        Ok(service)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RegistryData> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, data: &RegistryData) -> Result<(), CaError> {
        let text = serde_json::to_vec_pretty(data).map_err(|e| CaError::internal(e.to_string()))?;
        write_secret_file(&self.inner.path, &text).map_err(CaError::from)
    }

    /// The organisation this CA serves.
    pub fn org(&self) -> &str {
        &self.inner.org
    }

    /// The names of its CAs; the first is the default.
    pub fn ca_names(&self) -> Vec<String> {
        self.inner.cas.iter().map(|c| c.name.clone()).collect()
    }

    /// The bootstrap registrar's enrollment ID.
    pub fn bootstrap_id(&self) -> &str {
        &self.inner.options.bootstrap_id
    }

    /// The revoked-certificate list, shared and kept current.
    pub fn revocations(&self) -> RevocationList {
        self.inner.revocations.clone()
    }

    /// Whether the certificate with this serial and AKI has been revoked.
    pub fn is_revoked(&self, serial: &str, aki: &str) -> bool {
        self.inner.revocations.is_revoked(serial, aki)
    }

    fn ca(&self, name: &str) -> Result<&CaInstance, CaError> {
        if name.is_empty() {
            return Ok(&self.inner.cas[0]);
        }
        self.inner
            .cas
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                CaError::http(
                    404,
                    codes::CA_NOT_FOUND,
                    format!("CA '{name}' does not exist"),
                )
            })
    }

    /// Checks that a CA name (empty for the default) exists.
    pub fn check_ca(&self, name: &str) -> Result<(), CaError> {
        self.ca(name).map(|_| ())
    }

    /// The certificate authority behind a CA name (empty for the default).
    pub fn authority(&self, name: &str) -> Result<Arc<CertAuthority>, CaError> {
        self.ca(name).map(|c| c.authority.clone())
    }

    /// `cainfo`: the CA's name, chain and version.
    pub fn ca_info(&self, ca_name: &str) -> Result<CaInfo, CaError> {
        let ca = self.ca(ca_name)?;
        Ok(Self::info_of(ca, FABRIC_CA_VERSION))
    }

    fn info_of(ca: &CaInstance, version: &str) -> CaInfo {
        CaInfo {
            ca_name: ca.name.clone(),
            ca_chain: b64(ca.authority.cert_pem().as_bytes()),
            issuer_public_key: String::new(),
            issuer_revocation_public_key: String::new(),
            version: version.to_owned(),
        }
    }

    /// Checks an enrollment ID and secret as Fabric CA's `Login` does: unknown identity, wrong
    /// secret (counted; [`PASSWORD_ATTEMPTS`] locks the identity), revoked identity, or no
    /// enrollments left all fail authentication.
    pub fn login(&self, id: &str, secret: &str) -> Result<(), CaError> {
        let ca_max = self.inner.options.max_enrollments;
        if ca_max == 0 {
            return Err(CaError::authentication(22, "Enroll is disabled"));
        }
        let mut data = self.lock();
        let Some(user) = data.identity_mut(id) else {
            return Err(CaError::authentication(
                codes::INVALID_USER,
                format!("Failed to get user: identity '{id}' is not registered"),
            ));
        };
        if user.failed_logins >= PASSWORD_ATTEMPTS {
            return Err(CaError::authentication(
                codes::PASSWORD_ATTEMPTS,
                format!(
                    "Incorrect password entered {} times, max incorrect password limit of {PASSWORD_ATTEMPTS} reached",
                    user.failed_logins
                ),
            ));
        }
        if !verify_secret(&user.secret_hash, secret) {
            user.failed_logins += 1;
            let data_ref = &*data;
            self.persist(data_ref)?;
            return Err(CaError::authentication(
                codes::INVALID_PASS,
                "Login failure: Password mismatch",
            ));
        }
        let mut max = user.max_enrollments;
        if max == 0 {
            return Err(CaError::authentication(
                codes::INVALID_PASS,
                format!("Login failure: Zero is an invalid value for maximum enrollments on identity '{id}'"),
            ));
        }
        if user.state == -1 {
            return Err(CaError::authentication(
                codes::INVALID_PASS,
                format!("Login failure: User {id} is revoked; access denied"),
            ));
        }
        if ca_max != -1 && (max > ca_max || max == -1) {
            max = ca_max;
        }
        if max != -1 && user.state >= max {
            return Err(CaError::authentication(
                codes::INVALID_PASS,
                format!(
                    "Login failure: The identity {id} has already enrolled {} times, it has reached its maximum enrollment allowance",
                    user.state
                ),
            ));
        }
        if user.failed_logins != 0 {
            user.failed_logins = 0;
            let data_ref = &*data;
            self.persist(data_ref)?;
        }
        Ok(())
    }

    /// Authenticates the certificate of a token (whose signature the caller has checked): issued
    /// by the target CA, within its validity, known to the registry and not revoked. Returns the
    /// enrollment ID (the certificate's CN).
    pub fn authenticate_certificate(&self, ca_name: &str, der: &[u8]) -> Result<String, CaError> {
        let ca = self.ca(ca_name)?;
        ca.authority.verify_issued(der).map_err(|e| {
            CaError::authentication(
                codes::UNTRUSTED_CERTIFICATE,
                format!("Untrusted certificate: {e}"),
            )
        })?;
        let info = x509::cert_info(der).map_err(|e| {
            CaError::authentication(codes::INVALID_TOKEN, format!("Invalid token: {e}"))
        })?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if now > info.not_after || now < info.not_before {
            return Err(CaError::authentication(
                codes::CERT_EXPIRED,
                "The certificate in the authorization header is a revoked or expired certificate",
            ));
        }
        let data = self.lock();
        let Some(record) = data
            .certificates
            .iter()
            .find(|c| c.serial == info.serial && c.aki == info.aki)
        else {
            return Err(CaError::authentication(
                codes::CERT_NOT_FOUND,
                format!(
                    "Certificate not found with AKI '{}' and serial '{}'",
                    info.aki, info.serial
                ),
            ));
        };
        if record.status == "revoked" {
            return Err(CaError::authentication(
                codes::CERT_REVOKED,
                "The certificate in the authorization header is a revoked certificate",
            ));
        }
        let id = info.subject.common_name;
        if data.identity(&id).is_none() {
            return Err(CaError::authentication(
                codes::GETTING_USER,
                "Failed to get user",
            ));
        }
        Ok(id)
    }

    /// `enroll`: checks the secret, then issues a certificate for the CSR.
    pub fn enroll(
        &self,
        id: &str,
        secret: &str,
        req: &EnrollmentRequest,
    ) -> Result<EnrollmentResponse, CaError> {
        self.login(id, secret)?;
        self.complete_enroll(id, req)
    }

    /// The part of `enroll` after the secret was checked: issue, then count the enrollment.
    pub(crate) fn complete_enroll(
        &self,
        id: &str,
        req: &EnrollmentRequest,
    ) -> Result<EnrollmentResponse, CaError> {
        let resp = self.issue_for(id, req)?;
        // Fabric CA counts an enrollment once the certificate is out (`LoginComplete`).
        let mut data = self.lock();
        if let Some(user) = data.identity_mut(id) {
            user.state += 1;
        }
        self.persist(&data)?;
        Ok(resp)
    }

    /// `reenroll`: issues a new certificate to an already authenticated caller.
    pub fn reenroll(
        &self,
        caller: &str,
        req: &EnrollmentRequest,
    ) -> Result<EnrollmentResponse, CaError> {
        self.issue_for(caller, req)
    }

    fn issue_for(&self, id: &str, req: &EnrollmentRequest) -> Result<EnrollmentResponse, CaError> {
        let ca = self.ca(&req.ca_name)?;
        let csr = x509::parse_csr(&req.certificate_request).map_err(|e| match e {
            CsrError::Decode => CaError::http(400, codes::BAD_CSR, "CSR Decode failed"),
            CsrError::NotACsr => {
                CaError::internal("{\"code\":9300,\"message\":\"not a certificate or csr\"}")
            }
            CsrError::Invalid(m) => CaError::internal(m),
        })?;
        if csr.subject.common_name != id {
            return Err(CaError::http(
                403,
                codes::CSR_CN_MISMATCH,
                "The CSR subject common name must equal the enrollment ID",
            ));
        }
        let user =
            self.lock().identity(id).cloned().ok_or_else(|| {
                CaError::authentication(codes::GETTING_USER, "Failed to get user")
            })?;
        if csr.is_ca {
            if !user.attr_is_true("hf.IntermediateCA") {
                return Err(CaError::internal(format!(
                    "Attribute 'hf.IntermediateCA' is not true for '{id}'"
                )));
            }
            return Err(CaError::internal(
                "Certificate signing failure: intermediate CA certificates are not issued by this CA",
            ));
        }
        check_csr_lengths(&csr.subject)?;

        let usage = match req.profile.as_str() {
            "" => ca.default_usage,
            "tls" => CertUsage::Tls,
            other => {
                return Err(CaError::internal(format!(
                    "Certificate signing failure: {{\"code\":5200,\"message\":\"Invalid Policy: profile '{other}' not found\"}}"
                )))
            }
        };

        // Fabric CA keeps C, ST, L, O and serialNumber from the request and replaces the OUs
        // with the identity's type followed by its affiliation path.
        let mut subject = Name {
            country: csr.subject.country.clone(),
            province: csr.subject.province.clone(),
            locality: csr.subject.locality.clone(),
            organization: csr.subject.organization.clone(),
            organizational_unit: vec![user.kind.clone()],
            common_name: id.to_owned(),
            serial_number: csr.subject.serial_number.clone(),
        };
        subject.organizational_unit.extend(
            user.affiliation_path()
                .split('.')
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );

        let attributes = attribute_extension(&user, req.attr_reqs.as_deref())?;
        let (mut not_before, mut not_after) = x509::default_validity(CERT_LIFETIME);
        if let Some(t) = parse_go_time(req.not_before.as_deref())? {
            not_before = t;
        }
        if let Some(t) = parse_go_time(req.not_after.as_deref())? {
            not_after = t;
        }
        let hosts = if req.hosts.is_empty() {
            csr.hosts.clone()
        } else {
            req.hosts.clone()
        };
        let spec = CertSpec {
            subject,
            public_key_spki: csr.public_key_spki,
            usage,
            hosts,
            attributes,
            not_before,
            not_after,
        };
        let issued = ca
            .authority
            .issue(&spec)
            .map_err(|e| CaError::internal(format!("Certificate signing failure: {e}")))?;
        {
            let mut data = self.lock();
            data.certificates.push(CertRecord {
                id: id.to_owned(),
                ca_name: ca.name.clone(),
                serial: issued.serial.clone(),
                aki: issued.aki.clone(),
                status: "good".into(),
                reason: 0,
                revoked_at: None,
                not_after: issued.not_after.unix_timestamp(),
                pem: issued.pem.clone(),
            });
            self.persist(&data)?;
        }
        Ok(EnrollmentResponse {
            cert: b64(issued.pem.as_bytes()),
            server_info: Self::info_of(ca, ""),
        })
    }

    /// `register`: the caller (an authenticated registrar) registers a new identity; returns its
    /// secret.
    pub fn register(&self, caller: &str, req: &RegistrationRequest) -> Result<String, CaError> {
        self.check_ca(&req.ca_name)?;
        let mut req = req.clone();
        let mut data = self.lock();
        let registrar = data
            .identity(caller)
            .cloned()
            .ok_or_else(|| CaError::authentication(codes::GETTING_USER, "Failed to get user"))?;
        // normalizeRegistrationRequest
        if req.affiliation.is_empty() {
            req.affiliation = registrar.affiliation.clone();
        } else if req.affiliation == "." {
            req.affiliation.clear();
        }
        if req.kind.is_empty() {
            req.kind = registrar.kind.clone();
        }
        let failed = |detail: String| {
            CaError::authorization(
                codes::REGISTRATION_FAILED,
                format!("Registration of '{}' failed: {detail}", req.name),
            )
        };
        // canRegister: type, affiliation, attributes
        can_act_on_type(&registrar, &req.kind).map_err(|e| failed(e.detail().to_owned()))?;
        if !contains_affiliation(&registrar, &req.affiliation) {
            return Err(failed(format!(
                "Caller does not have authority to act on affiliation '{}'",
                req.affiliation
            )));
        }
        if !req.affiliation.is_empty() && !self.affiliation_exists(&req.affiliation) {
            return Err(failed(format!(
                "Failed getting affiliation '{}': no such affiliation",
                req.affiliation
            )));
        }
        can_register_attributes(&req.attributes, &registrar).map_err(|d| {
            CaError::authorization(
                codes::REG_ATTR_AUTH,
                format!("Failed to register attribute: {d}"),
            )
        })?;
        // registerUserID
        let secret = if req.secret.is_empty() {
            random_secret()
        } else {
            req.secret.clone()
        };
        let max_enrollments =
            max_enrollments(req.max_enrollments, self.inner.options.max_enrollments)?;
        if data.identity(&req.name).is_some() {
            return Err(CaError::http(
                409,
                codes::ALREADY_REGISTERED,
                format!("Identity '{}' is already registered", req.name),
            ));
        }
        if req.name.is_empty() {
            return Err(CaError::internal(
                "Registration failed: the 'id' field is empty",
            ));
        }
        let mut attrs = req.attributes.clone();
        attrs.push(Attribute::new("hf.EnrollmentID", &req.name, true));
        attrs.push(Attribute::new("hf.Type", &req.kind, true));
        attrs.push(Attribute::new("hf.Affiliation", &req.affiliation, true));
        data.identities.push(IdentityRecord {
            id: req.name.clone(),
            kind: req.kind.clone(),
            affiliation: req.affiliation.clone(),
            attrs,
            max_enrollments,
            state: 0,
            secret_hash: hash_secret(&secret),
            failed_logins: 0,
        });
        self.persist(&data)?;
        Ok(secret)
    }

    fn affiliation_exists(&self, affiliation: &str) -> bool {
        self.inner.options.affiliations.iter().any(|a| {
            a == affiliation
                || a.strip_prefix(affiliation)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// `revoke`: by identity (the identity and all its certificates) or by serial and AKI.
    /// `caller_cert` is the (serial, AKI) of the certificate the caller authenticated with.
    pub fn revoke(
        &self,
        caller: &str,
        caller_cert: Option<(&str, &str)>,
        req: &RevocationRequest,
    ) -> Result<RevocationResponse, CaError> {
        let ca = self.ca(&req.ca_name)?;
        let mut data = self.lock();
        let revoker = data
            .identity(caller)
            .cloned()
            .ok_or_else(|| CaError::authentication(codes::GETTING_USER, "Failed to get user"))?;
        if !revoker.attr_is_true("hf.Revoker") {
            return Err(CaError::authorization(
                codes::NOT_REVOKER,
                "Caller does not have authority to revoke",
            ));
        }
        let aki = x509::normalize_hex(&req.aki);
        let serial = x509::normalize_hex(&req.serial);
        let reason = reason_code(&req.reason);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut revoked = Vec::new();
        if !serial.is_empty() && !aki.is_empty() {
            let Some(idx) = data
                .certificates
                .iter()
                .position(|c| c.serial == serial && c.aki == aki)
            else {
                return Err(CaError::http(
                    404,
                    codes::REVOKE_CERT_NOT_FOUND,
                    format!(
                        "Certificate with serial {serial} and AKI {aki} was not found: no such certificate"
                    ),
                ));
            };
            let cert = data.certificates[idx].clone();
            if cert.status == "revoked" {
                return Err(CaError::http(
                    404,
                    codes::CERT_ALREADY_REVOKED,
                    format!("Certificate with serial {serial} and AKI {aki} was already revoked"),
                ));
            }
            if !req.name.is_empty() && req.name != cert.id {
                return Err(CaError::http(
                    400,
                    codes::CERT_WRONG_OWNER,
                    format!(
                        "Certificate with serial {serial} and AKI {aki} is not owned by {}",
                        req.name
                    ),
                ));
            }
            let Some(owner) = data.identity(&cert.id).cloned() else {
                return Err(CaError::http(
                    404,
                    codes::REVOKE_ID_NOT_FOUND,
                    format!("Identity {} was not found", cert.id),
                ));
            };
            if caller_cert != Some((serial.as_str(), aki.as_str())) {
                can_manage(&revoker, &owner)?;
            }
            let c = &mut data.certificates[idx];
            c.status = "revoked".into();
            c.reason = reason;
            c.revoked_at = Some(now);
            revoked.push(RevokedCert {
                serial: serial.clone(),
                aki: aki.clone(),
            });
        } else if !req.name.is_empty() {
            let Some(owner) = data.identity(&req.name).cloned() else {
                return Err(CaError::http(
                    404,
                    codes::REVOKE_ID_NOT_FOUND,
                    format!("Identity {} was not found", req.name),
                ));
            };
            if owner.id != revoker.id {
                can_manage(&revoker, &owner)?;
            }
            if let Some(user) = data.identity_mut(&req.name) {
                user.state = -1;
            }
            for c in data
                .certificates
                .iter_mut()
                .filter(|c| c.id == req.name && c.status != "revoked")
            {
                c.status = "revoked".into();
                c.reason = reason;
                c.revoked_at = Some(now);
                revoked.push(RevokedCert {
                    serial: c.serial.clone(),
                    aki: c.aki.clone(),
                });
            }
        } else {
            return Err(CaError::http(
                400,
                codes::MISSING_REVOKE_ARGS,
                "Either Name or Serial and AKI are required for a revoke request",
            ));
        }
        self.persist(&data)?;
        for r in &revoked {
            self.inner.revocations.insert(&r.serial, &r.aki);
        }
        let mut crl = String::new();
        if req.gencrl && !revoked.is_empty() {
            let list: Vec<(String, OffsetDateTime, u8)> = data
                .certificates
                .iter()
                .filter(|c| c.status == "revoked" && c.aki == ca.authority.aki_hex())
                .map(|c| {
                    let at = OffsetDateTime::from_unix_timestamp(c.revoked_at.unwrap_or(now))
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                    (c.serial.clone(), at, c.reason)
                })
                .collect();
            crl = b64(ca.authority.crl(&list)?.as_bytes());
        }
        Ok(RevocationResponse {
            revoked_certs: if revoked.is_empty() {
                None
            } else {
                Some(revoked)
            },
            crl,
        })
    }

    /// `GET /identities`: every identity the caller (a registrar) may manage.
    pub fn identities(&self, caller: &str, ca_name: &str) -> Result<IdentitiesResponse, CaError> {
        let ca = self.ca(ca_name)?;
        let data = self.lock();
        let registrar = registrar_of(&data, caller)?;
        let identities = data
            .identities
            .iter()
            .filter(|u| can_manage(&registrar, u).is_ok())
            .map(IdentityRecord::info)
            .collect();
        Ok(IdentitiesResponse {
            identities,
            caname: ca.name.clone(),
        })
    }

    /// `GET /identities/<id>`.
    pub fn identity(
        &self,
        caller: &str,
        id: &str,
        ca_name: &str,
    ) -> Result<IdentityResponse, CaError> {
        let ca = self.ca(ca_name)?;
        let data = self.lock();
        let registrar = registrar_of(&data, caller)?;
        let Some(user) = data.identity(id) else {
            return Err(CaError::http(
                404,
                codes::DB_GET,
                format!("Failed to get User: identity '{id}' not found"),
            ));
        };
        can_manage(&registrar, user)?;
        Ok(IdentityResponse {
            identity: user.info(),
            caname: ca.name.clone(),
        })
    }

    /// Every certificate issued so far (all CAs of this service).
    pub fn certificates(&self) -> Vec<CertRecord> {
        self.lock().certificates.clone()
    }

    /// Whether an identity is registered.
    pub fn is_registered(&self, id: &str) -> bool {
        self.lock().identity(id).is_some()
    }
}

fn registrar_of(data: &RegistryData, caller: &str) -> Result<IdentityRecord, CaError> {
    let registrar = data
        .identity(caller)
        .cloned()
        .ok_or_else(|| CaError::authentication(codes::GETTING_USER, "Failed to get user"))?;
    if registrar
        .attr("hf.Registrar.Roles")
        .is_none_or(|a| a.value.is_empty())
    {
        return Err(CaError::authorization(
            codes::REG_ATTR_AUTH,
            format!("'{caller}' is not a registrar"),
        ));
    }
    Ok(registrar)
}

/// Fabric CA's `CanManageUser`: the user's affiliation within the caller's, and a type the
/// caller may act on.
fn can_manage(caller: &IdentityRecord, user: &IdentityRecord) -> Result<(), CaError> {
    if !contains_affiliation(caller, &user.affiliation) {
        return Err(CaError::authorization(
            codes::CALLER_NOT_AFFILIATED,
            format!(
                "Caller does not have authority to act on affiliation '{}'",
                user.affiliation
            ),
        ));
    }
    can_act_on_type(caller, &user.kind)
}

fn contains_affiliation(caller: &IdentityRecord, affiliation: &str) -> bool {
    let mine = caller.affiliation_path();
    mine.is_empty() || affiliation == mine || affiliation.starts_with(&format!("{mine}."))
}

fn list_contains(list: &str, item: &str) -> bool {
    list.split(',').any(|s| s.trim() == item)
}

fn can_act_on_type(caller: &IdentityRecord, kind: &str) -> Result<(), CaError> {
    let roles = caller
        .attr("hf.Registrar.Roles")
        .map(|a| a.value.as_str())
        .unwrap_or("");
    if roles.is_empty() {
        return Err(CaError::authorization(
            codes::REG_ATTR_AUTH,
            format!("'{}' is not allowed to manage users", caller.id),
        ));
    }
    if list_contains(roles, "*") {
        return Ok(());
    }
    let kind = if kind.is_empty() { "client" } else { kind };
    if roles
        .split(',')
        .any(|r| r.trim().eq_ignore_ascii_case(kind))
    {
        Ok(())
    } else {
        Err(CaError::authorization(
            codes::CALLER_NOT_AFFILIATED,
            format!("Registrar does not have authority to act on type '{kind}'"),
        ))
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Fabric CA's `IsSubsetOf`: every comma-separated item of `small` is in `big`, ignoring case.
fn is_subset_of(small: &str, big: &str) -> Result<(), String> {
    let big_set: Vec<String> = big.split(',').map(|s| s.trim().to_lowercase()).collect();
    for s in small.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !big_set.contains(&s.to_lowercase()) {
            return Err(format!("'{s}' is not a member of '{big}'"));
        }
    }
    Ok(())
}

fn can_register_attr(name: &str, allowed: &[&str]) -> Result<(), String> {
    for a in allowed {
        let matches = match a.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *a,
        };
        if matches {
            return Ok(());
        }
    }
    Err(format!(
        "Attribute is not part of caller's 'hf.Registrar.Attributes' attribute list {allowed:?}"
    ))
}

/// Fabric CA's `CanRegisterRequestedAttributes` for a new identity.
fn can_register_attributes(reqs: &[Attribute], registrar: &IdentityRecord) -> Result<(), String> {
    if reqs.is_empty() {
        return Ok(());
    }
    let allowed_value = registrar
        .attr("hf.Registrar.Attributes")
        .map(|a| a.value.clone())
        .unwrap_or_default();
    if allowed_value.is_empty() {
        return Err(
            "Registrar does not have any values for 'hf.Registrar.Attributes' thus can't register any attributes".into(),
        );
    }
    let allowed: Vec<&str> = allowed_value.split(',').map(str::trim).collect();
    for req in reqs {
        can_register_attr(&req.name, &allowed)?;
        let unauthorized =
            |m: String| format!("Registrar is not authorized to register attribute: {m}");
        match req.name.as_str() {
            "hf.Revoker" | "hf.IntermediateCA" | "hf.GenCRL" | "hf.AffiliationMgr" => {
                let own = registrar.attr(&req.name).map(|a| a.value.as_str());
                let Some(own) = own else {
                    return Err(unauthorized(format!(
                        "Attribute '{}' requires ownership but the caller does not own this attribute",
                        req.name
                    )));
                };
                if parse_bool(own) != Some(true) {
                    return Err(unauthorized(format!(
                        "Caller has a value of 'false' for boolean attribute '{}', can't perform any actions on this attribute",
                        req.name
                    )));
                }
                if !req.value.is_empty() && parse_bool(&req.value).is_none() {
                    return Err(unauthorized(format!(
                        "Failed to get boolean value of '{}'",
                        req.value
                    )));
                }
            }
            "hf.Registrar.Roles" | "hf.Registrar.DelegateRoles" | "hf.Registrar.Attributes" => {
                let Some(own) = registrar.attr(&req.name).map(|a| a.value.clone()) else {
                    return Err(unauthorized(format!(
                        "Attribute '{}' requires ownership but the caller does not own this attribute",
                        req.name
                    )));
                };
                if req.value.is_empty() {
                    continue;
                }
                if req.name == "hf.Registrar.Attributes" {
                    let own_list: Vec<&str> = own.split(',').map(str::trim).collect();
                    for v in req.value.split(',').map(str::trim) {
                        can_register_attr(v, &own_list).map_err(unauthorized)?;
                        if v.starts_with("hf.") && !reqs.iter().any(|r| r.name == v) {
                            return Err(unauthorized(format!(
                                "Requesting value of '{v}' for 'hf.Registrar.Attributes', but the identity being registered is not being registered with this attribute"
                            )));
                        }
                    }
                    continue;
                }
                if !list_contains(&own, "*") {
                    is_subset_of(&req.value, &own).map_err(|e| {
                        unauthorized(format!(
                            "The requested values for attribute '{}' is a superset of the caller's attribute value: {e}",
                            req.name
                        ))
                    })?;
                }
                if req.name == "hf.Registrar.DelegateRoles" {
                    let roles = reqs
                        .iter()
                        .find(|r| r.name == "hf.Registrar.Roles")
                        .map(|r| r.value.clone())
                        .unwrap_or_default();
                    if !list_contains(&roles, "*") && is_subset_of(&req.value, &roles).is_err() {
                        return Err(unauthorized(
                            "The delegateRoles field is a superset of roles".into(),
                        ));
                    }
                }
            }
            "hf.EnrollmentID" | "hf.Type" | "hf.Affiliation" => {
                return Err(unauthorized(format!(
                    "Cannot register fixed value attribute '{}'",
                    req.name
                )));
            }
            other if other.starts_with("hf.") => {
                return Err(format!(
                    "Registering attribute '{other}' using a reserved prefix 'hf.', however this not a supported reserved attribute"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn max_enrollments(requested: i32, ca_max: i32) -> Result<i32, CaError> {
    let bad = |m: String| CaError::http(400, codes::INVALID_MAX_ENROLLMENTS, m);
    if requested < -1 {
        return Err(bad(format!(
            "Max enrollment in registration request may not be less than -1, but was {requested}"
        )));
    }
    match ca_max {
        -1 => Ok(if requested == 0 { -1 } else { requested }),
        0 => Err(bad("Registration is disabled".into())),
        _ => match requested {
            -1 => Err(bad(format!(
                "Registration for identity can not be unlimited, max allowable is {ca_max}"
            ))),
            0 => Ok(ca_max),
            n if n > ca_max => Err(bad(format!(
                "Requested enrollments ({n}) exceeds maximum allowable enrollments ({ca_max})"
            ))),
            n => Ok(n),
        },
    }
}

/// The attribute extension content for an enrollment, as Fabric CA's `GetAttrExtension`.
fn attribute_extension(
    user: &IdentityRecord,
    reqs: Option<&[AttributeRequest]>,
) -> Result<Option<BTreeMap<String, String>>, CaError> {
    let defaults: Vec<AttributeRequest>;
    let reqs = match reqs {
        Some(r) => r,
        None => {
            defaults = user
                .attrs
                .iter()
                .filter(|a| a.ecert)
                .map(|a| AttributeRequest {
                    name: a.name.clone(),
                    optional: false,
                })
                .collect();
            if defaults.is_empty() {
                return Ok(None);
            }
            &defaults
        }
    };
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for r in reqs {
        match user.attr(&r.name) {
            Some(a) => {
                out.insert(r.name.clone(), a.value.clone());
            }
            None if !r.optional => missing.push(r.name.clone()),
            None => {}
        }
    }
    if !missing.is_empty() {
        return Err(CaError::internal(format!(
            "Failed to find requested attributes: The following required attributes are missing: [{}]",
            missing.join(" ")
        )));
    }
    Ok(Some(out))
}

fn check_csr_lengths(name: &Name) -> Result<(), CaError> {
    let checks: [(&str, &[String], usize); 6] = [
        ("CN", std::slice::from_ref(&name.common_name), 64),
        (
            "serial number",
            std::slice::from_ref(&name.serial_number),
            64,
        ),
        ("organizational unit name", &name.organizational_unit, 64),
        ("organization name", &name.organization, 64),
        ("country name", &name.country, 2),
        ("locality name", &name.locality, 128),
    ];
    for (what, values, max) in checks {
        for v in values {
            if v.len() > max {
                return Err(CaError::internal(format!(
                    "The {what} '{v}' exceeds the maximum character limit of {max}"
                )));
            }
        }
    }
    for v in &name.province {
        if v.len() > 128 {
            return Err(CaError::internal(format!(
                "The state name '{v}' exceeds the maximum character limit of 128"
            )));
        }
    }
    Ok(())
}

/// Parses a Go `time.Time` from JSON; Go's zero time (year 1) means "not set".
fn parse_go_time(s: Option<&str>) -> Result<Option<OffsetDateTime>, CaError> {
    let Some(s) = s else { return Ok(None) };
    if s.is_empty() || s.starts_with("0001-01-01") {
        return Ok(None);
    }
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|e| {
            CaError::http(
                400,
                codes::BAD_REQUEST_BODY,
                format!("Invalid request body: invalid time '{s}': {e}"),
            )
        })
}

/// RFC 5280 reason codes by Fabric CA's names.
fn reason_code(name: &str) -> u8 {
    match name.to_lowercase().as_str() {
        "keycompromise" => 1,
        "cacompromise" => 2,
        "affiliationchanged" => 3,
        "superseded" => 4,
        "cessationofoperation" => 5,
        "certificatehold" => 6,
        "removefromcrl" => 8,
        "privilegewithdrawn" => 9,
        "aacompromise" => 10,
        _ => 0,
    }
}

pub(crate) fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A 12-letter secret, like Fabric CA's `util.RandomString(12)`.
fn random_secret() -> String {
    use rand::Rng as _;
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| LETTERS[rng.gen_range(0..LETTERS.len())] as char)
        .collect()
}

fn hash_secret(secret: &str) -> String {
    use rand::RngCore as _;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero"),
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        hex::encode(salt),
        hex::encode(out)
    )
}

fn verify_secret(stored: &str, secret: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [scheme, iterations, salt, hash] = parts.as_slice() else {
        return false;
    };
    if *scheme != "pbkdf2-sha256" {
        return false;
    }
    let (Ok(iterations), Ok(salt), Ok(hash)) = (
        iterations.parse::<u32>(),
        hex::decode(salt),
        hex::decode(hash),
    ) else {
        return false;
    };
    let Some(iterations) = NonZeroU32::new(iterations) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        secret.as_bytes(),
        &hash,
    )
    .is_ok()
}
