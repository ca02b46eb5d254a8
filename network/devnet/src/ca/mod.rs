//! A Fabric-CA-compatible enrollment service per organisation (fabric-ca-server v1.5's REST API).
//!
//! Each organisation's service hosts two CAs sharing one registry, as the real network's
//! fabric-ca-server does: `ca.<domain>` (the default; enrollment certificates) and
//! `tlsca.<domain>` (TLS certificates). Clients reach it over HTTPS on 127.0.0.1 with a server
//! certificate from the org's TLS CA; the real `fabric-ca-client` works against it unchanged.
//!
//! * [`CaService`]: the registry and Fabric CA's rules, callable in-process (the devnet enrolls
//!   its nodes, admins, clerks and holders through it at start, see [`enroll_org_identities`]).
//! * [`CaServer`]: the HTTPS endpoint (`cainfo`, `enroll`, `reenroll`, `register`, `revoke`,
//!   `identities`).
//! * [`RevocationList`]: revoked certificate serials, for the devnet's MSPs to refuse.

mod error;
mod http;
mod service;
pub mod token;
mod types;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fabric_common::crypto::SigningKey;

pub use error::{codes, CaError, CaErrorKind};
pub use http::CaServer;
pub use service::{
    bootstrap_attributes, registry_path, CaOptions, CaService, CertRecord, RevocationList,
    FABRIC_CA_VERSION, PASSWORD_ATTEMPTS,
};
pub use types::{
    Attribute, AttributeRequest, CaInfo, EnrollmentRequest, EnrollmentResponse, IdentitiesResponse,
    IdentityInfo, IdentityResponse, RegistrationRequest, RegistrationResponse, RevocationRequest,
    RevocationResponse, RevokedCert,
};

use crate::material::{
    self, read_string, write_file, write_secret_file, x509, CertSpec, CertUsage, DataLayout,
    IdentitySpec, NetworkCrypto, NodeKind, OrgCrypto, TlsRole, CERT_LIFETIME,
};
use crate::topology::Topology;

/// A key and the certificate a CA issued for it.
#[derive(Debug, Clone)]
pub struct EnrolledIdentity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key.
    pub key: SigningKey,
}

/// A PEM CSR for `key` with CN `common_name`, `C=CN, O=<organization>` and `hosts` as SANs,
/// as `fabric-ca-client enroll --csr.names C=CN,O=<org> --csr.hosts ...` sends it.
pub fn csr_pem(
    key: &SigningKey,
    common_name: &str,
    organization: &str,
    hosts: &[String],
) -> Result<String, CaError> {
    let key_pair = rcgen::KeyPair::from_pem(&key.to_pkcs8_pem())
        .map_err(|e| CaError::internal(format!("CSR key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .map_err(|e| CaError::internal(format!("CSR hosts: {e}")))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "CN");
    dn.push(rcgen::DnType::OrganizationName, organization);
    dn.push(rcgen::DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params
        .serialize_request(&key_pair)
        .and_then(|csr| csr.pem())
        .map_err(|e| CaError::internal(format!("CSR: {e}")))
}

impl CaService {
    /// Enrolls `id` with a freshly generated key: what `fabric-ca-client enroll` does, in-process.
    /// `ca_name` empty means the default CA; `profile` is "" or "tls".
    pub fn enroll_new_key(
        &self,
        id: &str,
        secret: &str,
        ca_name: &str,
        profile: &str,
        hosts: &[String],
    ) -> Result<EnrolledIdentity, CaError> {
        let key = SigningKey::generate();
        let req = EnrollmentRequest {
            certificate_request: csr_pem(&key, id, self.org(), hosts)?,
            profile: profile.to_owned(),
            ca_name: ca_name.to_owned(),
            ..EnrollmentRequest::default()
        };
        let resp = self.enroll(id, secret, &req)?;
        let cert = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, resp.cert)
            .map_err(|e| CaError::internal(e.to_string()))?;
        Ok(EnrolledIdentity {
            cert_pem: String::from_utf8(cert).map_err(|e| CaError::internal(e.to_string()))?,
            key,
        })
    }
}

/// The CA endpoint's own TLS certificate and key, issued by the org's TLS CA for 127.0.0.1,
/// localhost and `ca.<domain>`. Kept in `ca/<org>/`, with `ca-cert.pem` (the TLS CA certificate)
/// beside it for clients to trust.
pub fn endpoint_identity(
    layout: &DataLayout,
    org: &OrgCrypto,
) -> Result<EnrolledIdentity, CaError> {
    let home = layout.ca_home(&org.name);
    let cert_path = home.join("tls-cert.pem");
    let key_path = home.join("tls-key.pem");
    write_file(&home.join("ca-cert.pem"), org.tlsca.cert_pem().as_bytes())?;
    if cert_path.exists() && key_path.exists() {
        let cert_pem = read_string(&cert_path)?;
        let key = SigningKey::from_pem(read_string(&key_path)?.as_bytes())
            .map_err(|e| CaError::internal(e.to_string()))?;
        if org
            .tlsca
            .verify_issued(&x509::certs_from_pem(cert_pem.as_bytes())?.concat())
            .is_ok()
        {
            return Ok(EnrolledIdentity { cert_pem, key });
        }
    }
    let key = SigningKey::generate();
    let (not_before, not_after) = x509::default_validity(CERT_LIFETIME);
    let issued = org.tlsca.issue(&CertSpec {
        subject: material::Name {
            country: vec!["CN".into()],
            organization: vec![org.name.clone()],
            common_name: org.ca_name(),
            ..material::Name::default()
        },
        public_key_spki: key.public_key().to_spki_der(),
        usage: CertUsage::Tls,
        hosts: vec!["127.0.0.1".into(), "localhost".into(), org.ca_name()],
        attributes: None,
        not_before,
        not_after,
    })?;
    write_secret_file(&key_path, key.to_pkcs8_pem().as_bytes())?;
    write_file(&cert_path, issued.pem.as_bytes())?;
    Ok(EnrolledIdentity {
        cert_pem: issued.pem,
        key,
    })
}

/// Opens an organisation's CA service on its data dir and starts its HTTPS endpoint on `addr`
/// (`127.0.0.1:0` for a free port; [`CaServer::port`] tells which).
pub async fn start_org_ca(
    crypto: &NetworkCrypto,
    org_name: &str,
    options: CaOptions,
    addr: SocketAddr,
) -> Result<(CaService, CaServer), CaError> {
    let org = crypto.org(org_name)?;
    let home = crypto.layout.ca_home(org_name);
    let service = CaService::open(org, &home, options)?;
    let tls = endpoint_identity(&crypto.layout, org)?;
    let server = CaServer::start(service.clone(), &tls.cert_pem, &tls.key, addr).await?;
    Ok((service, server))
}

fn secrets_path(layout: &DataLayout, org: &str) -> std::path::PathBuf {
    layout.org_dir(org).join("secrets.json")
}

/// Registers and enrolls, through `service`, every identity `org_name` has at start (its nodes,
/// `Admin`, the topology's users with their role attribute), writing MSP and TLS directories.
/// Identities whose directories exist are left alone, so a restart keeps them. Returns the IDs
/// that were enrolled now.
pub fn enroll_org_identities(
    service: &CaService,
    topology: &Topology,
    crypto: &NetworkCrypto,
    org_name: &str,
) -> Result<Vec<String>, CaError> {
    let org = crypto.org(org_name)?;
    let layout = &crypto.layout;
    let secrets_file = secrets_path(layout, org_name);
    let mut secrets: BTreeMap<String, String> = if secrets_file.exists() {
        serde_json::from_str(&read_string(&secrets_file)?)
            .map_err(|e| CaError::internal(format!("{}: {e}", secrets_file.display())))?
    } else {
        BTreeMap::new()
    };
    let mut done = Vec::new();
    for spec in material::org_identities(topology, org) {
        let (msp_dir, tls_dir, stem) = identity_dirs(layout, org, &spec);
        let need_msp = !msp_dir.join("signcerts").join("cert.pem").exists();
        let need_tls = tls_dir
            .as_ref()
            .is_some_and(|d| !d.join(format!("{stem}.crt")).exists());
        if !need_msp && !need_tls {
            continue;
        }
        if !service.is_registered(&spec.id) {
            let secret = format!("{}pw-{}", spec.id, hex::encode(rand_bytes()));
            let attributes = spec
                .role
                .iter()
                .map(|r| Attribute::new(&topology.roles.attribute, r, true))
                .collect();
            service.register(
                service.bootstrap_id(),
                &RegistrationRequest {
                    name: spec.id.clone(),
                    kind: spec.kind.as_str().into(),
                    secret: secret.clone(),
                    max_enrollments: -1,
                    attributes,
                    ..RegistrationRequest::default()
                },
            )?;
            secrets.insert(spec.id.clone(), secret);
            let text = serde_json::to_string_pretty(&secrets)
                .map_err(|e| CaError::internal(e.to_string()))?;
            write_secret_file(&secrets_file, text.as_bytes())?;
        }
        let secret = secrets.get(&spec.id).cloned().ok_or_else(|| {
            CaError::internal(format!(
                "{} is registered but its secret is not in {}",
                spec.id,
                secrets_file.display()
            ))
        })?;
        if need_msp {
            let e = service.enroll_new_key(&spec.id, &secret, "", "", &[])?;
            material::write_msp_dir(
                &msp_dir,
                &e.cert_pem,
                &e.key,
                org.ca.cert_pem(),
                org.tlsca.cert_pem(),
            )?;
        }
        if let (true, Some(tls_dir)) = (need_tls, tls_dir) {
            let hosts = match &spec.tls {
                Some(TlsRole::Server(hosts)) => hosts.clone(),
                _ => Vec::new(),
            };
            let e = service.enroll_new_key(&spec.id, &secret, &org.tlsca_name(), "tls", &hosts)?;
            material::write_tls_dir(&tls_dir, stem, &e.cert_pem, &e.key, org.tlsca.cert_pem())?;
        }
        done.push(spec.id.clone());
    }
    Ok(done)
}

fn rand_bytes() -> [u8; 6] {
    let mut b = [0u8; 6];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    b
}

/// Where an identity's MSP and TLS directories go, and the TLS file stem.
fn identity_dirs(
    layout: &DataLayout,
    org: &OrgCrypto,
    spec: &IdentitySpec,
) -> (std::path::PathBuf, Option<std::path::PathBuf>, &'static str) {
    match &spec.host {
        Some(host) => {
            let kind = if org.is_orderer {
                NodeKind::Orderer
            } else {
                NodeKind::Peer
            };
            let base = layout.node_dir(&org.name, kind, host);
            (base.join("msp"), Some(base.join("tls")), "server")
        }
        None => (
            layout.user_msp(&org.name, &spec.id),
            spec.tls
                .as_ref()
                .map(|_| layout.user_tls(&org.name, &spec.id)),
            "client",
        ),
    }
}

#[cfg(test)]
mod tests;
