"""Connection profiles (Fabric's "common connection profile", JSON) per organisation.

<data-dir>/profiles/<org>.json names the org as client.organization and lists:
- organizations: the org and every org it shares a channel with (mspid, peers, CAs);
- peers: their gRPC URLs (grpcs://127.0.0.1:<port>), TLS CA PEMs and a hostnameOverride naming
  the peer (its certificate also has the IP SAN 127.0.0.1, so no override is needed);
- certificateAuthorities: the org's own CA (enrollment CA) with its TLS root, plus the TLS CA;
- channels: the org's channels with their member peers and the orderers.
The MSP directories for the org's users are at <data-dir>/msp/<org>/<user>/.
"""

from __future__ import annotations

import json
from pathlib import Path

from .crypto import Layout
from .topology import Org, Topology


def _pem(p: Path) -> str:
    return p.read_text()


def profile(topo: Topology, layout: Layout, org: Org, host: str = "127.0.0.1") -> dict:
    chans = topo.channels_of(org)
    related = [o for o in topo.orgs if o is org or any(o in c.members for c in chans)]
    peers = {}
    for o in related:
        for p in o.peers:
            peers[p.name] = {
                "url": f"grpcs://{host}:{p.port}",
                "tlsCACerts": {"pem": _pem(layout.org_tlsca_cert(o))},
                "grpcOptions": {"hostnameOverride": p.name},
            }
    oo = topo.orderer_org
    orderers = {
        o.name: {
            "url": f"grpcs://{host}:{o.port}",
            "tlsCACerts": {"pem": _pem(layout.org_tlsca_cert(oo))},
            "grpcOptions": {"hostnameOverride": o.name},
        } for o in topo.orderers()
    }
    cas = {
        org.ca_name: {
            "url": f"https://{host}:{org.ca_port}",
            "caName": org.ca_name,
            "tlsCACerts": {"pem": [_pem(layout.ca_tls_cert(org))]},
            "httpOptions": {"verify": True},
        },
        org.tlsca_name: {
            "url": f"https://{host}:{org.ca_port}",
            "caName": org.tlsca_name,
            "tlsCACerts": {"pem": [_pem(layout.ca_tls_cert(org))]},
            "httpOptions": {"verify": True},
        },
    }
    return {
        "name": f"{topo.name}-{org.name}",
        "version": "1.0.0",
        "client": {
            "organization": org.name,
            "connection": {"timeout": {"peer": {"endorser": "300"}}},
        },
        "organizations": {
            o.name: {
                "mspid": o.msp_id,
                "peers": [p.name for p in o.peers],
                "certificateAuthorities": [o.ca_name] if o is org else [],
            } for o in related
        },
        "peers": peers,
        "orderers": orderers,
        "certificateAuthorities": cas,
        "channels": {
            c.name: {
                "orderers": list(orderers),
                "peers": {
                    p.name: {"endorsingPeer": True, "chaincodeQuery": True, "ledgerQuery": True,
                             "eventSource": True}
                    for m in c.members for p in m.peers
                },
            } for c in chans
        },
    }


def write_all(topo: Topology, layout: Layout) -> list[Path]:
    out = []
    d = layout.root / "profiles"
    d.mkdir(parents=True, exist_ok=True)
    for org in topo.orgs:
        f = d / f"{org.name}.json"
        f.write_text(json.dumps(profile(topo, layout, org), indent=2) + "\n")
        out.append(f)
    return out
