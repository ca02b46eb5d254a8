//! From resolved [`Settings`] to a connected Fabric client: the connection profile, the signing
//! identity (an MSP directory or a wallet label), the channel, and a Gateway to the client
//! organisation's peers. The same code serves the devnet and a real Fabric network: both are
//! described by a common connection profile.

use std::path::Path;

use fabric_client::gateway::{Connection, ConnectionOptions, Endpoint, GatewayOptions};
use fabric_client::profile::ConnectionProfile;
use fabric_client::wallet::Wallet;
use fabric_client::{msp, Gateway, SigningIdentity};

use crate::config::Settings;
use crate::error::CliError;
use crate::exit::Class;

/// With `--devnet DIR` and `--identity ORG/USER`: the organisation and user.
fn devnet_identity(settings: &Settings) -> Option<(&Path, &str, &str)> {
    let dir = settings.devnet.as_deref()?;
    let id = settings.identity.as_deref()?;
    if Path::new(id).is_dir() {
        return None;
    }
    let (org, user) = id.split_once('/')?;
    Some((dir, org, user))
}

/// Reads the connection profile named by `--profile` / `ELICENSE_PROFILE` / the config file, or
/// with `--devnet` the profile of the identity's organisation.
pub fn profile(settings: &Settings) -> Result<ConnectionProfile, CliError> {
    let devnet_profile = match (&settings.profile, devnet_identity(settings)) {
        (None, Some((dir, org, _))) => Some(dir.join("profiles").join(format!("{org}.json"))),
        _ => None,
    };
    let path = settings.profile.as_ref().or(devnet_profile.as_ref()).ok_or_else(|| {
        CliError::usage("no connection profile given").hint(
            "pass --profile FILE, set ELICENSE_PROFILE, or put `profile = \"...\"` in elicense.toml \
             (`elicense devnet up` prints the devnet's profiles)",
        )
    })?;
    if !path.is_file() {
        return Err(CliError::new(
            Class::NotFound,
            format!("connection profile {} does not exist", path.display()),
        )
        .hint("check --profile / ELICENSE_PROFILE"));
    }
    ConnectionProfile::from_file(path).map_err(|e| {
        CliError::usage(format!("connection profile {}: {e}", path.display()))
            .hint("a Fabric common connection profile (JSON or YAML) is expected")
    })
}

/// The connection profile when one is configured.
pub fn optional_profile(settings: &Settings) -> Result<Option<ConnectionProfile>, CliError> {
    if settings.profile.is_some() || devnet_identity(settings).is_some() {
        profile(settings).map(Some)
    } else {
        Ok(None)
    }
}

/// The MSP ID for an MSP-directory identity: `--msp-id`, else the profile's client organisation's.
pub fn msp_id(
    settings: &Settings,
    profile: Option<&ConnectionProfile>,
) -> Result<String, CliError> {
    if let Some(id) = &settings.msp_id {
        return Ok(id.clone());
    }
    let missing = || {
        CliError::usage("cannot tell the identity's MSP ID")
            .hint("pass --msp-id, or a connection profile whose client.organization names the org")
    };
    let profile = profile.ok_or_else(missing)?;
    let org = profile.client_organization().ok_or_else(missing)?;
    profile
        .msp_id(org)
        .map(str::to_string)
        .map_err(|e| CliError::usage(format!("connection profile: {e}")))
}

/// Loads the signing identity named by `--identity`: an MSP directory, or a label in `--wallet`.
pub fn signing_identity(
    settings: &Settings,
    profile: Option<&ConnectionProfile>,
) -> Result<SigningIdentity, CliError> {
    let name = settings.identity.as_deref().ok_or_else(|| {
        CliError::usage("no identity given").hint(
            "pass --identity with an MSP directory or a wallet label, or set ELICENSE_IDENTITY",
        )
    })?;
    load_identity(settings, profile, name)
}

/// The MSP directory `--identity` names (directly, or as ORG/USER of `--devnet`), if it is one.
pub fn identity_dir(settings: &Settings) -> Option<std::path::PathBuf> {
    let id = settings.identity.as_deref()?;
    if Path::new(id).is_dir() {
        return Some(id.into());
    }
    let (dir, org, user) = devnet_identity(settings)?;
    let p = dir.join("msp").join(org).join(user);
    p.is_dir().then_some(p)
}

/// Loads an identity by MSP directory path or wallet label.
pub fn load_identity(
    settings: &Settings,
    profile: Option<&ConnectionProfile>,
    name: &str,
) -> Result<SigningIdentity, CliError> {
    let devnet_dir = match (settings.devnet.as_deref(), name.split_once('/')) {
        (Some(dir), Some((org, user))) if !Path::new(name).is_dir() => {
            Some(dir.join("msp").join(org).join(user))
        }
        _ => None,
    };
    let path = devnet_dir.as_deref().unwrap_or(Path::new(name));
    if path.is_dir() {
        let msp = msp_id(settings, profile)?;
        return msp::load_signing_identity(&msp, path)
            .map_err(|e| CliError::from(e).context(format!("MSP directory {}", path.display())));
    }
    let Some(dir) = &settings.wallet else {
        return Err(CliError::new(
            Class::NotFound,
            format!("identity {name:?} is not an MSP directory and no wallet is given"),
        )
        .hint("pass an MSP directory path, or --wallet DIR with a label in it"));
    };
    let wallet = Wallet::open(dir).map_err(|e| CliError::from(e).context("opening the wallet"))?;
    match wallet.get(name) {
        Ok(Some(entry)) => entry.signing_identity().map_err(CliError::from),
        Ok(None) => Err(CliError::new(
            Class::NotFound,
            format!("no identity labelled {name:?} in wallet {}", dir.display()),
        )
        .hint("`elicense ca enroll --wallet-label` puts an identity into a wallet")),
        Err(e) => Err(CliError::from(e)),
    }
}

/// The channel: `--channel`, else the profile's only channel.
pub fn channel(settings: &Settings, profile: &ConnectionProfile) -> Result<String, CliError> {
    if let Some(c) = &settings.channel {
        return Ok(c.clone());
    }
    let mut names = profile.channels.keys();
    match (names.next(), names.next()) {
        (Some(only), None) => Ok(only.clone()),
        _ => Err(CliError::usage("no channel given").hint(format!(
            "pass --channel or set ELICENSE_CHANNEL; the profile lists: {}",
            profile
                .channels
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The gateway peers: the client organisation's peers, else every peer of `channel`.
pub fn endpoints(
    profile: &ConnectionProfile,
    channel: Option<&str>,
) -> Result<Vec<Endpoint>, CliError> {
    let mut peers = Vec::new();
    if let Some(org) = profile.client_organization() {
        if let Ok(list) = profile.organization_peers(org) {
            peers = list;
        }
    }
    if peers.is_empty() {
        if let Some(ch) = channel.and_then(|c| profile.channels.get(c)) {
            for name in ch.peers.keys() {
                peers.push(
                    profile
                        .peer(name)
                        .map_err(|e| CliError::usage(format!("connection profile: {e}")))?,
                );
            }
        }
    }
    if peers.is_empty() {
        return Err(
            CliError::usage("the connection profile names no peer to connect to")
                .hint("its client organisation (client.organization) should list its peers"),
        );
    }
    Ok(peers.into_iter().map(Endpoint::from).collect())
}

/// A connected client: the profile, the identity's gateway and the channel.
pub struct Client {
    /// The connection profile.
    pub profile: ConnectionProfile,
    /// The signing identity.
    pub identity: SigningIdentity,
    /// The gateway (connects lazily on first call).
    pub gateway: Gateway,
    /// The channel.
    pub channel: String,
}

impl Client {
    /// Builds a client from the settings (must run inside the Tokio runtime).
    pub fn connect(settings: &Settings) -> Result<Self, CliError> {
        let profile = profile(settings)?;
        let identity = signing_identity(settings, Some(&profile))?;
        let channel = channel(settings, &profile)?;
        let endpoints = endpoints(&profile, Some(&channel))?;
        // With -v: which identity, channel and peers a command uses, for diagnosing a profile.
        tracing::info!(
            msp_id = identity.identity().msp_id(),
            channel = %channel,
            peers = %endpoints
                .iter()
                .map(|e| e.url.as_str())
                .collect::<Vec<_>>()
                .join(","),
            mutual_tls = endpoints.iter().any(|e| e.client_tls.is_some()),
            "connecting to the gateway"
        );
        let connection =
            Connection::new(endpoints, &ConnectionOptions::default()).map_err(CliError::from)?;
        let gateway =
            Gateway::for_signing_identity(connection, &identity, GatewayOptions::default());
        Ok(Client {
            profile,
            identity,
            gateway,
            channel,
        })
    }

    /// The licence contract (chaincode `chaincode`) on the channel.
    pub fn licences(&self, chaincode: &str) -> elicense_sdk::LicenceClient {
        elicense_sdk::LicenceClient::new(self.network().contract(chaincode))
    }

    /// The channel as a gateway network.
    pub fn network(&self) -> fabric_client::Network {
        self.gateway.network(self.channel.clone())
    }
}
