//! `elicense ca enroll|register|reenroll|revoke`: Fabric CA operations over fabric-client's CA
//! client, against any fabric-ca-server (v1.4/v1.5) or the devnet's CAs.
//!
//! The CA is found from `--ca-url` (with `--ca-tls-cert`), or from the connection profile: the CA
//! named by `--ca`, else the client organisation's first CA. Enrollment secrets are read from a
//! file, an environment variable or standard input, never from the command line.

use std::path::PathBuf;

use fabric_client::ca::{
    CaClient, CaClientOptions, Enrollment, EnrollmentRequest, MspWriteOptions, ReenrollmentRequest,
    RegistrationRequest, RevocationRequest,
};
use fabric_client::wallet::Wallet;
use serde::Serialize;

use crate::connect;
use crate::error::CliError;
use crate::exit::Class;
use crate::secret::SecretSource;
use crate::Ctx;

/// `ca` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Enroll an identity: a new key and certificate, written as an MSP directory or wallet entry.
    Enroll(EnrollArgs),
    /// Register a new identity with the CA (the caller, --identity, must be a registrar).
    Register(RegisterArgs),
    /// Re-enroll the caller (--identity): a new certificate, written over its MSP directory.
    Reenroll(ReenrollArgs),
    /// Revoke an identity (all its certificates) or one certificate.
    Revoke(RevokeArgs),
}

/// Which CA to talk to.
#[derive(Debug, Clone, clap::Args)]
pub struct CaTarget {
    /// The CA's URL (https://host:port); default: from the connection profile.
    #[arg(long, value_name = "URL")]
    pub ca_url: Option<String>,
    /// PEM file trusted for the CA's TLS certificate (with --ca-url).
    #[arg(long, value_name = "FILE")]
    pub ca_tls_cert: Option<PathBuf>,
    /// The CA's name within a multi-CA server (caname).
    #[arg(long, value_name = "NAME")]
    pub ca_name: Option<String>,
    /// A certificate authority of the connection profile, by its key.
    #[arg(long = "ca", value_name = "NAME", conflicts_with = "ca_url")]
    pub profile_ca: Option<String>,
}

/// Arguments of `ca enroll`.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Which CA.
    #[command(flatten)]
    pub target: CaTarget,
    /// The enrollment ID.
    #[arg(long = "id", value_name = "ID")]
    pub enrollment_id: String,
    /// Where the enrollment secret comes from: file:PATH, env:NAME or - (standard input).
    #[arg(long, value_name = "SOURCE")]
    pub secret: SecretSource,
    /// Write the enrollment as an MSP directory here.
    #[arg(long, value_name = "DIR", required_unless_present = "wallet_label")]
    pub msp_dir: Option<PathBuf>,
    /// Put the enrollment into the wallet (--wallet) under this label.
    #[arg(long, value_name = "LABEL")]
    pub wallet_label: Option<String>,
    /// Subject alternative names (host names, IP addresses).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Attributes to request into the certificate, NAME or NAME:opt (optional).
    #[arg(long = "attr", value_name = "NAME[:opt]")]
    pub attributes: Vec<String>,
    /// The signing profile (e.g. tls).
    #[arg(long = "enrollment-profile", value_name = "PROFILE")]
    pub enrollment_profile: Option<String>,
    /// Write config.yaml with Node OUs enabled into the MSP directory.
    #[arg(long)]
    pub node_ous: bool,
}

/// Arguments of `ca register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// Which CA.
    #[command(flatten)]
    pub target: CaTarget,
    /// The new identity's enrollment ID.
    #[arg(long = "id", value_name = "ID")]
    pub enrollment_id: String,
    /// Identity type: client, peer, orderer, admin or user.
    #[arg(long = "type", default_value = "client")]
    pub kind: String,
    /// Affiliation; default: the registrar's own.
    #[arg(long, default_value = "")]
    pub affiliation: String,
    /// Attributes NAME=VALUE, or NAME=VALUE:ecert to put it into certificates by default.
    #[arg(long = "attr", value_name = "NAME=VALUE[:ecert]")]
    pub attributes: Vec<String>,
    /// Maximum number of enrollments (-1: unlimited; default: the server's).
    #[arg(long, allow_hyphen_values = true)]
    pub max_enrollments: Option<i32>,
    /// The new identity's secret: file:PATH, env:NAME or -; default: the CA generates one.
    #[arg(long, value_name = "SOURCE")]
    pub secret: Option<SecretSource>,
    /// Write the (given or generated) secret to this file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub secret_out: Option<PathBuf>,
}

/// Arguments of `ca reenroll`.
#[derive(Debug, clap::Args)]
pub struct ReenrollArgs {
    /// Which CA.
    #[command(flatten)]
    pub target: CaTarget,
    /// Write the new enrollment here (default: over the --identity MSP directory).
    #[arg(long, value_name = "DIR")]
    pub msp_dir: Option<PathBuf>,
    /// Keep the current key (default: a new key).
    #[arg(long)]
    pub keep_key: bool,
}

/// Arguments of `ca revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Which CA.
    #[command(flatten)]
    pub target: CaTarget,
    /// Revoke this identity and all its certificates.
    #[arg(long = "id", value_name = "ID", required_unless_present_any = ["serial", "cert"])]
    pub enrollment_id: Option<String>,
    /// Revoke one certificate by serial number (hex), with --aki.
    #[arg(long, requires = "aki", conflicts_with = "cert")]
    pub serial: Option<String>,
    /// Authority key identifier (hex) of the certificate to revoke.
    #[arg(long)]
    pub aki: Option<String>,
    /// Revoke the certificate in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Reason: unspecified, keycompromise, cacompromise, affiliationchange, superseded,
    /// cessationofoperation, certificatehold, removefromcrl, privilegewithdrawn, aacompromise.
    #[arg(long, default_value = "unspecified")]
    pub reason: String,
    /// Write the CRL the CA returns to this file.
    #[arg(long, value_name = "FILE")]
    pub crl_out: Option<PathBuf>,
}

/// Builds the CA client for `target`.
pub fn ca_client(ctx: &Ctx, target: &CaTarget) -> Result<CaClient, CliError> {
    if let Some(url) = &target.ca_url {
        let mut tls = Vec::new();
        if let Some(path) = &target.ca_tls_cert {
            tls.push(std::fs::read(path).map_err(|e| {
                CliError::new(Class::NotFound, format!("reading {}: {e}", path.display()))
            })?);
        } else if url.starts_with("https") {
            return Err(CliError::usage("an https CA URL needs --ca-tls-cert")
                .hint("pass the PEM of the CA's TLS root (fabric-ca-server writes tls-cert.pem / ca-cert.pem)"));
        }
        return CaClient::new(
            url,
            CaClientOptions {
                tls_root_pems: tls,
                ca_name: target.ca_name.clone(),
                timeout: None,
            },
        )
        .map_err(CliError::from);
    }
    let profile = connect::profile(&ctx.settings).map_err(|e| {
        e.hint("pass --ca-url and --ca-tls-cert, or a connection profile that lists the CA")
    })?;
    let mut endpoint = match &target.profile_ca {
        Some(name) => profile.certificate_authority(name),
        None => {
            let org = profile.client_organization().ok_or_else(|| {
                CliError::usage("the connection profile has no client organisation")
                    .hint("pass --ca NAME or --ca-url")
            })?;
            profile.organization_ca(org)
        }
    }
    .map_err(|e| CliError::usage(format!("connection profile: {e}")))?;
    if target.ca_name.is_some() {
        endpoint.ca_name = target.ca_name.clone();
    }
    CaClient::from_profile(&endpoint).map_err(CliError::from)
}

#[derive(Serialize)]
struct Enrolled {
    enrollment_id: String,
    msp_id: Option<String>,
    msp_dir: Option<String>,
    wallet_label: Option<String>,
    serial: String,
    subject: String,
    issuer: String,
    not_after: i64,
    attributes: std::collections::BTreeMap<String, String>,
    ca_name: String,
}

fn describe(enrollment: &Enrollment) -> Result<Enrolled, CliError> {
    let cert = fabric_common::identity::Certificate::from_pem(&enrollment.certificate_pem)
        .map_err(|e| {
            CliError::new(
                Class::Network,
                format!("the CA returned a bad certificate: {e}"),
            )
        })?;
    Ok(Enrolled {
        enrollment_id: enrollment.enrollment_id.clone(),
        msp_id: None,
        msp_dir: None,
        wallet_label: None,
        serial: hex::encode(cert.serial()),
        subject: cert.subject().to_fabric_string(),
        issuer: cert.issuer().to_fabric_string(),
        not_after: cert.not_after(),
        attributes: cert
            .attributes()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ca_name: enrollment.ca_info.ca_name.clone(),
    })
}

fn write_enrollment(
    ctx: &Ctx,
    enrollment: &Enrollment,
    msp_dir: Option<&PathBuf>,
    wallet_label: Option<&str>,
    node_ous: bool,
) -> Result<Enrolled, CliError> {
    let mut out = describe(enrollment)?;
    if let Some(dir) = msp_dir {
        enrollment
            .write_msp_dir(
                dir,
                &MspWriteOptions {
                    node_ous,
                    ..Default::default()
                },
            )
            .map_err(|e| {
                CliError::new(Class::Internal, format!("writing {}: {e}", dir.display()))
            })?;
        out.msp_dir = Some(dir.display().to_string());
        // The MSP ID the directory is used under, when the settings tell it.
        if let Ok(profile) = connect::optional_profile(&ctx.settings) {
            out.msp_id = connect::msp_id(&ctx.settings, profile.as_ref()).ok();
        }
    }
    if let Some(label) = wallet_label {
        let dir = ctx.settings.wallet.as_ref().ok_or_else(|| {
            CliError::usage("--wallet-label needs a wallet directory").hint("pass --wallet DIR")
        })?;
        let profile = connect::optional_profile(&ctx.settings)?;
        let msp_id = connect::msp_id(&ctx.settings, profile.as_ref())?;
        let wallet = Wallet::open(dir).map_err(CliError::from)?;
        wallet
            .put(label, &enrollment.wallet_identity(&msp_id))
            .map_err(CliError::from)?;
        out.wallet_label = Some(label.to_string());
        out.msp_id = Some(msp_id);
    }
    Ok(out)
}

fn parse_register_attr(spec: &str) -> Result<(String, String, bool), CliError> {
    let (name, rest) = spec.split_once('=').ok_or_else(|| {
        CliError::usage(format!("attribute {spec:?} is not NAME=VALUE"))
            .hint("e.g. --attr elicense.role=clerk:ecert")
    })?;
    let (value, ecert) = match rest.strip_suffix(":ecert") {
        Some(v) => (v, true),
        None => (rest, false),
    };
    if name.is_empty() {
        return Err(CliError::usage(format!("attribute {spec:?} has no name")));
    }
    Ok((name.to_string(), value.to_string(), ecert))
}

/// Runs a `ca` subcommand.
pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Enroll(a) => {
            let client = ca_client(ctx, &a.target)?;
            let secret = a.secret.read()?;
            let mut request = EnrollmentRequest::new(&a.enrollment_id, secret).hosts(a.hosts);
            for attr in &a.attributes {
                let (name, optional) = match attr.strip_suffix(":opt") {
                    Some(n) => (n, true),
                    None => (attr.as_str(), false),
                };
                request = request.attribute(name, optional);
            }
            if let Some(p) = a.enrollment_profile {
                request = request.profile(p);
            }
            let enrollment = client
                .enroll(&request)
                .await
                .map_err(|e| CliError::from(e).context(format!("enrolling {}", a.enrollment_id)))?;
            let out = write_enrollment(
                ctx,
                &enrollment,
                a.msp_dir.as_ref(),
                a.wallet_label.as_deref(),
                a.node_ous,
            )?;
            crate::output::print(ctx.format(), &out)
        }
        Command::Register(a) => {
            let client = ca_client(ctx, &a.target)?;
            let profile = connect::optional_profile(&ctx.settings)?;
            let registrar = connect::signing_identity(&ctx.settings, profile.as_ref())?;
            let mut request = RegistrationRequest::new(&a.enrollment_id)
                .kind(&a.kind)
                .affiliation(&a.affiliation);
            if let Some(max) = a.max_enrollments {
                request = request.max_enrollments(max);
            }
            if let Some(src) = &a.secret {
                request = request.secret(src.read()?);
            }
            for spec in &a.attributes {
                let (name, value, ecert) = parse_register_attr(spec)?;
                request = request.attribute(name, value, ecert);
            }
            let secret = client.register(&registrar, &request).await.map_err(|e| {
                CliError::from(e).context(format!("registering {}", a.enrollment_id))
            })?;
            let shown = match &a.secret_out {
                Some(path) => {
                    write_private(path, &secret)?;
                    None
                }
                None => Some(secret),
            };
            #[derive(Serialize)]
            struct Registered {
                enrollment_id: String,
                #[serde(rename = "type")]
                kind: String,
                #[serde(skip_serializing_if = "Option::is_none")]
                secret: Option<String>,
                #[serde(skip_serializing_if = "Option::is_none")]
                secret_file: Option<String>,
            }
            crate::output::print(
                ctx.format(),
                &Registered {
                    enrollment_id: a.enrollment_id,
                    kind: a.kind,
                    secret: shown,
                    secret_file: a.secret_out.map(|p| p.display().to_string()),
                },
            )
        }
        Command::Reenroll(a) => {
            let client = ca_client(ctx, &a.target)?;
            let profile = connect::optional_profile(&ctx.settings)?;
            let caller = connect::signing_identity(&ctx.settings, profile.as_ref())?;
            let target_dir = match a.msp_dir {
                Some(d) => d,
                None => connect::identity_dir(&ctx.settings).ok_or_else(|| {
                    CliError::usage(
                        "reenroll writes an MSP directory: the identity is a wallet label",
                    )
                    .hint("pass --msp-dir DIR")
                })?,
            };
            let mut request = ReenrollmentRequest::default();
            if a.keep_key {
                let dir = connect::identity_dir(&ctx.settings).unwrap_or_default();
                let keystore = dir.join("keystore");
                let key = std::fs::read_dir(&keystore)
                    .ok()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read(e.path()).ok())
                    .filter_map(|pem| fabric_client::PrivateKeySigner::from_pem(&pem).ok())
                    .find(|k| {
                        caller
                            .identity()
                            .public_key()
                            .map(|p| p == *k.public_key())
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| {
                        CliError::usage("--keep-key: the identity's key is not in an MSP keystore")
                    })?;
                request.key = Some(key);
            }
            let enrollment = client
                .reenroll(&caller, &request)
                .await
                .map_err(|e| CliError::from(e).context("re-enrolling"))?;
            let out = write_enrollment(ctx, &enrollment, Some(&target_dir), None, false)?;
            // Leave exactly the new certificate and its key, as fabric-ca-client does: a stale
            // certificate file that sorts first would otherwise be read as the identity.
            let key_name = format!("{}_sk", hex::encode(enrollment.key.public_key().ski()));
            prune(&target_dir.join("signcerts"), "cert.pem");
            prune(&target_dir.join("keystore"), &key_name);
            crate::output::print(ctx.format(), &out)
        }
        Command::Revoke(a) => {
            let client = ca_client(ctx, &a.target)?;
            let profile = connect::optional_profile(&ctx.settings)?;
            let revoker = connect::signing_identity(&ctx.settings, profile.as_ref())?;
            let mut request = if let Some(path) = &a.cert {
                let pem = std::fs::read(path).map_err(|e| {
                    CliError::new(Class::NotFound, format!("reading {}: {e}", path.display()))
                })?;
                RevocationRequest::certificate_pem(&pem).map_err(CliError::from)?
            } else if let (Some(serial), Some(aki)) = (&a.serial, &a.aki) {
                RevocationRequest::certificate(serial, aki)
            } else {
                RevocationRequest::identity(a.enrollment_id.clone().unwrap_or_default())
            };
            if let (Some(id), true) = (&a.enrollment_id, a.cert.is_some() || a.serial.is_some()) {
                request.enrollment_id = id.clone();
            }
            request = request.reason(&a.reason);
            if a.crl_out.is_some() {
                request = request.gen_crl();
            }
            let response = client
                .revoke(&revoker, &request)
                .await
                .map_err(|e| CliError::from(e).context("revoking"))?;
            if let (Some(path), Some(crl)) = (&a.crl_out, &response.crl) {
                std::fs::write(path, crl).map_err(|e| {
                    CliError::new(Class::Internal, format!("writing {}: {e}", path.display()))
                })?;
            }
            #[derive(Serialize)]
            struct Revoked {
                revoked: Vec<serde_json::Value>,
                crl_file: Option<String>,
            }
            crate::output::print(
                ctx.format(),
                &Revoked {
                    revoked: response
                        .revoked
                        .iter()
                        .map(|r| serde_json::json!({"serial": r.serial, "aki": r.aki}))
                        .collect(),
                    crl_file: a
                        .crl_out
                        .filter(|_| response.crl.is_some())
                        .map(|p| p.display().to_string()),
                },
            )
        }
    }
}

/// Removes every file of `dir` but `keep` (best effort: a leftover file is harmless to loading).
fn prune(dir: &std::path::Path, keep: &str) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes a secret readable by the owner only.
fn write_private(path: &std::path::Path, secret: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::new(Class::Internal, format!("writing {}: {e}", path.display())))?;
    writeln!(f, "{secret}")
        .map_err(|e| CliError::new(Class::Internal, format!("writing {}: {e}", path.display())))
}
