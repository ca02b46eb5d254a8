//! Fabric "common connection profiles" (JSON), one per organisation at `profiles/<org>.json`:
//! the organisation as `client.organization`, every organisation it shares a channel with, their
//! peers' gRPC endpoints and TLS roots, the org's Fabric CA endpoints, and its channels.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{write_file, MaterialError, NetworkCrypto};
use crate::topology::Topology;

/// The ports the running devnet listens on (all on 127.0.0.1).
#[derive(Debug, Clone, Default)]
pub struct ProfileEndpoints {
    /// Peer host name (`peer0.<domain>`) → gRPC port.
    pub peers: BTreeMap<String, u16>,
    /// Orderer host name (`orderer0.<domain>`) → gRPC port.
    pub orderers: BTreeMap<String, u16>,
    /// Organisation name → its Fabric CA service's HTTPS port.
    pub cas: BTreeMap<String, u16>,
}

fn node_entry(url: String, tls_pem: &str, host: &str) -> Value {
    json!({
        "url": url,
        "tlsCACerts": { "pem": tls_pem },
        "grpcOptions": {
            "ssl-target-name-override": host,
            "hostnameOverride": host,
        },
    })
}

/// The connection profile of organisation `org_name`.
pub fn connection_profile(
    topology: &Topology,
    crypto: &NetworkCrypto,
    org_name: &str,
    endpoints: &ProfileEndpoints,
) -> Result<Value, MaterialError> {
    let org = crypto.org(org_name)?;
    let channels: Vec<_> = topology
        .channels
        .iter()
        .filter(|c| c.members.iter().any(|m| m == org_name))
        .collect();
    // The org itself first, then every org it shares a channel with, in topology order.
    let mut related: Vec<&str> = vec![org_name];
    for spec in &topology.organizations {
        if spec.name != org_name && channels.iter().any(|c| c.members.contains(&spec.name)) {
            related.push(&spec.name);
        }
    }

    let mut organizations = serde_json::Map::new();
    let mut peers = serde_json::Map::new();
    for name in &related {
        let o = crypto.org(name)?;
        let hosts = o.node_hosts();
        for host in &hosts {
            let port = endpoints.peers.get(host).copied().unwrap_or(0);
            peers.insert(
                host.clone(),
                node_entry(
                    format!("grpcs://127.0.0.1:{port}"),
                    o.tlsca.cert_pem(),
                    host,
                ),
            );
        }
        let cas: Vec<String> = if *name == org_name {
            vec![o.ca_name()]
        } else {
            Vec::new()
        };
        organizations.insert(
            (*name).to_owned(),
            json!({ "mspid": o.msp_id, "peers": hosts, "certificateAuthorities": cas }),
        );
    }

    let orderer_org = crypto.org(&topology.orderer.org)?;
    let mut orderers = serde_json::Map::new();
    for host in orderer_org.node_hosts() {
        let port = endpoints.orderers.get(&host).copied().unwrap_or(0);
        orderers.insert(
            host.clone(),
            node_entry(
                format!("grpcs://127.0.0.1:{port}"),
                orderer_org.tlsca.cert_pem(),
                &host,
            ),
        );
    }

    let ca_port = endpoints.cas.get(org_name).copied().unwrap_or(0);
    let mut cas = serde_json::Map::new();
    for ca_name in [org.ca_name(), org.tlsca_name()] {
        cas.insert(
            ca_name.clone(),
            json!({
                "url": format!("https://127.0.0.1:{ca_port}"),
                "caName": ca_name,
                // The CA endpoint's TLS certificate is issued by the org's TLS CA.
                "tlsCACerts": { "pem": [org.tlsca.cert_pem()] },
                "httpOptions": { "verify": true },
            }),
        );
    }

    let mut chans = serde_json::Map::new();
    for c in &channels {
        let mut members = serde_json::Map::new();
        for m in &c.members {
            for host in crypto.org(m)?.node_hosts() {
                members.insert(
                    host,
                    json!({
                        "endorsingPeer": true,
                        "chaincodeQuery": true,
                        "ledgerQuery": true,
                        "eventSource": true,
                    }),
                );
            }
        }
        chans.insert(
            c.name.clone(),
            json!({ "orderers": orderers.keys().cloned().collect::<Vec<_>>(), "peers": members }),
        );
    }

    Ok(json!({
        "name": format!("{}-{}", topology.name, org_name),
        "version": "1.0.0",
        "client": {
            "organization": org_name,
            "connection": { "timeout": { "peer": { "endorser": "300" } } },
        },
        "organizations": organizations,
        "peers": peers,
        "orderers": orderers,
        "certificateAuthorities": cas,
        "channels": chans,
    }))
}

/// Writes `profiles/<org>.json` for every peer organisation; returns the paths written.
pub fn write_profiles(
    topology: &Topology,
    crypto: &NetworkCrypto,
    endpoints: &ProfileEndpoints,
) -> Result<Vec<PathBuf>, MaterialError> {
    let mut out = Vec::new();
    for spec in &topology.organizations {
        let profile = connection_profile(topology, crypto, &spec.name, endpoints)?;
        let path = crypto.layout.profile(&spec.name);
        let mut text = serde_json::to_string_pretty(&profile)?;
        text.push('\n');
        write_file(&path, text.as_bytes())?;
        out.push(path);
    }
    Ok(out)
}
