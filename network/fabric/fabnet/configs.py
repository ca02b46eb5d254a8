"""Node and channel configuration: configtx.yaml, a core.yaml per peer, an orderer.yaml per orderer.

core.yaml and orderer.yaml start from the installed Fabric's own sample files (copied at run time
from <fabric>/config, never committed) with our values set; configtx.yaml is generated whole.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import yamltext
from .crypto import Layout
from .topology import Node, Org, Topology

CONTAINER_ROOT = "/elicense"  # where docker mode mounts the data dir in every container


class Addressing:
    """How nodes name each other and where they see the data dir: native processes use
    127.0.0.1 and host paths; containers use their host names and CONTAINER_ROOT."""

    def __init__(self, mode: str, layout: Layout):
        self.mode = mode
        self.layout = layout

    @property
    def listen(self) -> str:
        return "0.0.0.0" if self.mode == "docker" else "127.0.0.1"

    def host(self, node_or_name) -> str:
        if self.mode == "docker":
            return node_or_name if isinstance(node_or_name, str) else node_or_name.name
        return "127.0.0.1"

    def path(self, p: Path) -> str:
        if self.mode == "docker":
            return CONTAINER_ROOT + "/" + str(p.relative_to(self.layout.root))
        return str(p)


def _sig(rule: str) -> dict:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(org: Org, layout: Layout, addr: Addressing) -> dict:
    m = org.msp_id
    sec = {
        "Name": org.name,
        "ID": m,
        "MSPDir": str(layout.org_msp(org)),
    }
    if org.is_orderer:
        sec["Policies"] = {
            "Readers": _sig(f"OR('{m}.member')"),
            "Writers": _sig(f"OR('{m}.member')"),
            "Admins": _sig(f"OR('{m}.admin')"),
        }
        sec["OrdererEndpoints"] = [f"{addr.host(o)}:{o.port}" for o in org.orderers]
    else:
        sec["Policies"] = {
            "Readers": _sig(f"OR('{m}.admin','{m}.peer','{m}.client')"),
            "Writers": _sig(f"OR('{m}.admin','{m}.client')"),
            "Admins": _sig(f"OR('{m}.admin')"),
            "Endorsement": _sig(f"OR('{m}.peer')"),
        }
        sec["AnchorPeers"] = [{"Host": addr.host(org.peers[0]), "Port": org.peers[0].port}]
    return sec


def _size(n: int) -> str:
    for unit, div in (("MB", 1024 * 1024), ("KB", 1024)):
        if n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def configtx(topo: Topology, layout: Layout, addr: Addressing) -> str:
    """configtx.yaml with one application-channel profile per channel (no system channel)."""
    oo = topo.orderer_org
    orderer = {
        "OrdererType": "etcdraft",
        "BatchTimeout": f"{topo.batch['batch_timeout_ms']}ms",
        "BatchSize": {
            "MaxMessageCount": topo.batch["max_message_count"],
            "AbsoluteMaxBytes": _size(topo.batch["absolute_max_bytes"]),
            "PreferredMaxBytes": _size(topo.batch["preferred_max_bytes"]),
        },
        "EtcdRaft": {
            "Consenters": [{
                "Host": addr.host(o), "Port": o.port,
                "ClientTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
                "ServerTLSCert": str(layout.node_dir(o) / "tls" / "server.crt"),
            } for o in oo.orderers],
            "Options": {
                "TickInterval": f"{topo.raft['tick_interval_ms']}ms",
                "ElectionTick": topo.raft["election_tick"],
                "HeartbeatTick": topo.raft["heartbeat_tick"],
                "MaxInflightBlocks": 5,
                "SnapshotIntervalSize": "16 MB",
            },
        },
        "Organizations": [_org_section(oo, layout, addr)],
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
            "BlockValidation": _meta("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    profiles = {}
    for ch in topo.channels:
        profiles[ch.name] = {
            "Policies": {
                "Readers": _meta("ANY Readers"),
                "Writers": _meta("ANY Writers"),
                "Admins": _meta("MAJORITY Admins"),
            },
            "Capabilities": {"V3_0": True},
            "Orderer": orderer,
            "Application": {
                "Organizations": [_org_section(o, layout, addr) for o in ch.members],
                "Policies": {
                    "Readers": _meta("ANY Readers"),
                    "Writers": _meta("ANY Writers"),
                    "Admins": _meta("MAJORITY Admins"),
                    "LifecycleEndorsement": _meta("MAJORITY Endorsement"),
                    "Endorsement": _meta("MAJORITY Endorsement"),
                },
                "Capabilities": {"V2_5": True},
            },
        }
    head = ("# configtx.yaml for the eLicense Ledger network, generated from the topology by\n"
            "# network/fabric: one profile per application channel; no system channel (the\n"
            "# orderers join channels through the channel participation API).\n")
    return head + yamltext.dump({"Profiles": profiles})


def core_yaml(template: str, node: Node, topo: Topology, layout: Layout, addr: Addressing,
              ccaas_builder: str | None) -> str:
    org = node.org
    nd = layout.node_dir(node)
    data = layout.root / "ledgers" / node.name
    host, listen = addr.host(node), addr.listen
    bootstrap = org.peers[1] if len(org.peers) > 1 and node.index == 0 else org.peers[0]
    values = {
        "peer.id": node.name,
        "peer.networkId": topo.name,
        "peer.listenAddress": f"{listen}:{node.port}",
        "peer.address": f"{host}:{node.port}",
        "peer.chaincodeListenAddress": f"{listen}:{node.port2}",
        "peer.chaincodeAddress": f"{host}:{node.port2}",
        "peer.addressAutoDetect": False,
        "peer.gateway.enabled": True,
        "peer.gossip.bootstrap": f"{addr.host(bootstrap)}:{bootstrap.port}",
        "peer.gossip.externalEndpoint": f"{host}:{node.port}",
        # retry unreachable gossip members (e.g. other orgs' anchor peers that have not joined
        # the channel yet) every 2 s instead of 25 s, so cross-org membership forms in seconds
        "peer.gossip.reconnectInterval": "2s",
        # a peer enters a channel's membership view with its first state info message: publish
        # and request those every second (default 4 s); refresh the membership metric (which
        # `up` waits on) every second (default 5 s)
        "peer.gossip.publishStateInfoInterval": "1s",
        "peer.gossip.requestStateInfoInterval": "1s",
        "peer.gossip.membershipTrackerInterval": "1s",
        "peer.tls.enabled": True,
        "peer.tls.clientAuthRequired": False,
        "peer.tls.cert.file": addr.path(nd / "tls" / "server.crt"),
        "peer.tls.key.file": addr.path(nd / "tls" / "server.key"),
        "peer.tls.rootcert.file": addr.path(nd / "tls" / "ca.crt"),
        "peer.tls.clientRootCAs.files": [addr.path(nd / "tls" / "ca.crt")],
        "peer.fileSystemPath": addr.path(data),
        "peer.mspConfigPath": addr.path(nd / "msp"),
        "peer.localMspId": org.msp_id,
        "peer.profile.enabled": False,
        "peer.profile.listenAddress": f"{listen}:{node.ops_port + 7}",
        "ledger.snapshots.rootDir": addr.path(data / "snapshots"),
        "operations.listenAddress": f"{listen}:{node.ops_port}",
        "metrics.provider": "prometheus",
        "vm.endpoint": "",
    }
    out = yamltext.set_values(template, values)
    if ccaas_builder:
        quoted = json.dumps(ccaas_builder)
        out, n = re.subn(r"(- name: ccaas_builder\n\s+path: ).*", lambda m: m.group(1) + quoted,
                         out)
        if n != 1:
            raise RuntimeError("core.yaml template has no ccaas_builder external builder entry")
    return (f"# core.yaml for {node.name} ({org.msp_id}), from Fabric's sample core.yaml with the\n"
            f"# values network/fabric sets for this peer.\n" + out)


def orderer_yaml(template: str, node: Node, topo: Topology, layout: Layout,
                 addr: Addressing) -> str:
    org = node.org
    nd = layout.node_dir(node)
    data = layout.root / "ledgers" / node.name
    listen = addr.listen
    tls = lambda f: addr.path(nd / "tls" / f)  # noqa: E731
    values = {
        "General.ListenAddress": listen,
        "General.ListenPort": node.port,
        "General.TLS.Enabled": True,
        "General.TLS.PrivateKey": tls("server.key"),
        "General.TLS.Certificate": tls("server.crt"),
        "General.TLS.RootCAs": [tls("ca.crt")],
        "General.TLS.ClientAuthRequired": False,
        "General.Cluster.ClientCertificate": tls("server.crt"),
        "General.Cluster.ClientPrivateKey": tls("server.key"),
        "General.LocalMSPDir": addr.path(nd / "msp"),
        "General.LocalMSPID": org.msp_id,
        "General.Profile.Enabled": False,
        "General.Profile.Address": f"{listen}:{node.ops_port + 7}",
        "FileLedger.Location": addr.path(data),
        "Operations.ListenAddress": f"{listen}:{node.ops_port}",
        "Metrics.Provider": "prometheus",
        "Admin.ListenAddress": f"{listen}:{node.port2}",
        "Admin.TLS.Enabled": True,
        "Admin.TLS.Certificate": tls("server.crt"),
        "Admin.TLS.PrivateKey": tls("server.key"),
        "Admin.TLS.ClientAuthRequired": True,
        "Admin.TLS.ClientRootCAs": [addr.path(layout.org_tlsca_cert(org))],
        "ChannelParticipation.Enabled": True,
        "Consensus.WALDir": addr.path(data / "etcdraft" / "wal"),
        "Consensus.SnapDir": addr.path(data / "etcdraft" / "snapshot"),
    }
    return (f"# orderer.yaml for {node.name} ({org.msp_id}), from Fabric's sample orderer.yaml with\n"
            f"# the values network/fabric sets for this orderer.\n"
            + yamltext.set_values(template, values))

