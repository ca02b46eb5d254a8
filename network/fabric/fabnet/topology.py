"""The network topology: fixtures/topology.toml, the reduced selections and the port scheme.

Everything the generators need about names and ports is derived here, deterministically, from
the topology file, so that every command (up, channels, deploy, status, compose) and every mode
(native, docker) agrees on them.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT_BASE = 7000
# Ports per organisation block: CA, CA operations, chaincode server, then 10 per peer.
ORG_BLOCK = 100
MAX_NODES_PER_BLOCK = 9
CA_OFFSET = 0
CA_OPS_OFFSET = 1
CC_SERVER_OFFSET = 5


class TopologyError(Exception):
    pass


@dataclass
class Node:
    """A peer or an orderer."""

    name: str  # host name, also the TLS SAN, e.g. peer0.police.elicense.gov
    enroll_id: str  # its identity in the org's CA, e.g. peer0
    kind: str  # "peer" or "orderer"
    org: "Org"
    index: int
    port: int  # peer: listen (gRPC, gossip, gateway); orderer: general listener (+cluster)
    port2: int  # peer: chaincode listener; orderer: admin (channel participation)
    ops_port: int  # operations (health, metrics)

    @property
    def short(self) -> str:
        return f"{self.org.name}-{self.enroll_id}"


@dataclass
class Org:
    name: str
    msp_id: str
    domain: str
    index: int  # position in the topology; the orderer org is -1
    description: str = ""
    users: dict[str, str] = field(default_factory=dict)  # user -> role
    peers: list[Node] = field(default_factory=list)
    orderers: list[Node] = field(default_factory=list)
    ca_port: int = 0
    ca_ops_port: int = 0
    cc_port: int = 0  # the org's chaincode server (CCaaS); 0 for the orderer org
    is_orderer: bool = False

    @property
    def ca_name(self) -> str:
        return f"ca.{self.domain}"

    @property
    def tlsca_name(self) -> str:
        return f"tlsca.{self.domain}"

    @property
    def cc_host(self) -> str:
        return f"cc.{self.domain}"

    @property
    def nodes(self) -> list[Node]:
        return self.orderers if self.is_orderer else self.peers

    def identities(self) -> list[tuple[str, str, str]]:
        """(enrollment id, CA identity type, elicense role or '') of every identity of the org."""
        ids = [(n.enroll_id, n.kind, "") for n in self.nodes]
        ids.append(("Admin", "admin", "admin"))
        ids += [(u, "client", r) for u, r in self.users.items()]
        return ids


@dataclass
class Channel:
    name: str
    members: list[Org]


@dataclass
class Chaincode:
    name: str
    version: str
    endorsement_policy: str
    collections: list[dict]

    def policy_for(self, channel: Channel) -> str:
        """The signature policy `peer lifecycle` accepts for this channel."""
        p = self.endorsement_policy.strip()
        if p == "ANY_MEMBER_PEER":
            return "OR(" + ",".join(f"'{o.msp_id}.peer'" for o in channel.members) + ")"
        if p == "ALL_MEMBER_PEERS":
            return "AND(" + ",".join(f"'{o.msp_id}.peer'" for o in channel.members) + ")"
        if p == "MAJORITY_MEMBER_PEERS":
            n = len(channel.members) // 2 + 1
            return f"OutOf({n}," + ",".join(f"'{o.msp_id}.peer'" for o in channel.members) + ")"
        return p


@dataclass
class Topology:
    path: Path
    digest: str
    name: str
    orderer_org: Org
    orgs: list[Org]  # the selected peer organisations, in topology order
    channels: list[Channel]  # the selected channels
    all_org_names: list[str]
    batch: dict
    role_attribute: str
    chaincode: Chaincode
    port_base: int
    raft: dict

    def org(self, name: str) -> Org:
        for o in self.orgs + [self.orderer_org]:
            if o.name == name:
                return o
        raise TopologyError(f"organisation {name!r} is not part of this network")

    def all_orgs(self) -> list[Org]:
        return [self.orderer_org] + self.orgs

    def peers(self) -> list[Node]:
        return [p for o in self.orgs for p in o.peers]

    def orderers(self) -> list[Node]:
        return self.orderer_org.orderers

    def channels_of(self, org: Org) -> list[Channel]:
        return [c for c in self.channels if org in c.members]

    def ports(self) -> list[int]:
        out = []
        for o in self.all_orgs():
            out += [o.ca_port, o.ca_ops_port]
            if o.cc_port:
                out.append(o.cc_port)
            for n in o.nodes:
                out += [n.port, n.port2, n.ops_port]
        return out


_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_CHANNEL_RE = re.compile(r"^[a-z][a-z0-9.-]*$")


def _split(lst: str | None) -> list[str] | None:
    if lst is None:
        return None
    return [x.strip() for x in lst.split(",") if x.strip()]


def load(path: Path, orgs: str | None = None, channels: str | None = None,
         port_base: int | None = None) -> Topology:
    """Loads the topology and selects the reduced network.

    --channels LIST keeps those channels and their member organisations; --orgs LIST keeps those
    organisations and every channel all of whose members are kept. With neither, everything.
    """
    raw_bytes = path.read_bytes()
    try:
        raw = tomllib.loads(raw_bytes.decode())
    except tomllib.TOMLDecodeError as e:
        raise TopologyError(f"{path}: {e}") from e

    fabric = raw.get("fabric", {})
    base = port_base if port_base is not None else int(fabric.get("port_base", DEFAULT_PORT_BASE))
    raft = {
        "tick_interval_ms": int(fabric.get("raft_tick_interval_ms", 100)),
        "election_tick": int(fabric.get("raft_election_tick", 10)),
        "heartbeat_tick": int(fabric.get("raft_heartbeat_tick", 1)),
    }

    od = raw["orderer"]
    orderer_org = Org(name=od["org"], msp_id=od["msp_id"], domain=od["domain"], index=-1,
                      is_orderer=True, description="Ordering service")
    orderer_org.ca_port = base + CA_OFFSET
    orderer_org.ca_ops_port = base + CA_OPS_OFFSET
    n_cons = int(od.get("consenters", 3))
    if not 1 <= n_cons <= MAX_NODES_PER_BLOCK:
        raise TopologyError(f"orderer.consenters must be 1..{MAX_NODES_PER_BLOCK}")
    for i in range(n_cons):
        p = base + 10 * (i + 1)
        orderer_org.orderers.append(Node(name=f"orderer{i}.{orderer_org.domain}",
                                         enroll_id=f"orderer{i}", kind="orderer",
                                         org=orderer_org, index=i, port=p, port2=p + 1,
                                         ops_port=p + 2))

    all_orgs: list[Org] = []
    seen_msp = {orderer_org.msp_id}
    for j, o in enumerate(raw.get("organizations", [])):
        if not _NAME_RE.match(o["name"]):
            raise TopologyError(f"bad organisation name {o['name']!r}")
        if o["msp_id"] in seen_msp:
            raise TopologyError(f"duplicate MSP ID {o['msp_id']}")
        seen_msp.add(o["msp_id"])
        org = Org(name=o["name"], msp_id=o["msp_id"], domain=o["domain"], index=j,
                  description=o.get("description", ""), users=dict(o.get("users", {})))
        for u in org.users:
            if not _NAME_RE.match(u) or u.lower() in ("admin", "registrar") or \
                    re.match(r"^(peer|orderer)\d+$", u):
                raise TopologyError(f"{org.name}: user name {u!r} is reserved or invalid")
        ob = base + ORG_BLOCK * (j + 1)
        org.ca_port, org.ca_ops_port, org.cc_port = ob + CA_OFFSET, ob + CA_OPS_OFFSET, \
            ob + CC_SERVER_OFFSET
        n_peers = int(o.get("peers", 1))
        if not 1 <= n_peers <= MAX_NODES_PER_BLOCK:
            raise TopologyError(f"{org.name}: peers must be 1..{MAX_NODES_PER_BLOCK}")
        for p in range(n_peers):
            pp = ob + 10 * (p + 1)
            org.peers.append(Node(name=f"peer{p}.{org.domain}", enroll_id=f"peer{p}", kind="peer",
                                  org=org, index=p, port=pp, port2=pp + 1, ops_port=pp + 2))
        all_orgs.append(org)
    if base < 1024 or base + ORG_BLOCK * (len(all_orgs) + 1) > 65535:
        raise TopologyError(f"port base {base} leaves the port range")

    by_name = {o.name: o for o in all_orgs}
    all_channels: list[Channel] = []
    for c in raw.get("channels", []):
        if not _CHANNEL_RE.match(c["name"]):
            raise TopologyError(f"bad channel name {c['name']!r}")
        try:
            members = [by_name[m] for m in c["members"]]
        except KeyError as e:
            raise TopologyError(f"channel {c['name']}: unknown member {e}") from e
        all_channels.append(Channel(name=c["name"], members=members))

    want_ch, want_orgs = _split(channels), _split(orgs)
    if want_ch is not None and want_orgs is not None:
        raise TopologyError("give --orgs or --channels, not both")
    if want_ch is not None:
        names = {c.name for c in all_channels}
        for w in want_ch:
            if w not in names:
                raise TopologyError(f"unknown channel {w!r}")
        sel_channels = [c for c in all_channels if c.name in want_ch]
        keep = {m.name for c in sel_channels for m in c.members}
    elif want_orgs is not None:
        for w in want_orgs:
            if w not in by_name:
                raise TopologyError(f"unknown organisation {w!r}")
        keep = set(want_orgs)
        sel_channels = [c for c in all_channels if all(m.name in keep for m in c.members)]
    else:
        keep = set(by_name)
        sel_channels = all_channels
    sel_orgs = [o for o in all_orgs if o.name in keep]

    cc = raw.get("chaincode", {})
    chaincode = Chaincode(name=cc.get("name", "elicense"), version=str(cc.get("version", "1.0")),
                          endorsement_policy=cc.get("endorsement_policy", "ANY_MEMBER_PEER"),
                          collections=list(cc.get("collections", [])))
    b = od.get("batch", {})
    batch = {
        "max_message_count": int(b.get("max_message_count", 500)),
        "absolute_max_bytes": int(b.get("absolute_max_bytes", 10 * 1024 * 1024)),
        "preferred_max_bytes": int(b.get("preferred_max_bytes", 2 * 1024 * 1024)),
        "batch_timeout_ms": int(b.get("batch_timeout_ms", 2000)),
    }
    return Topology(path=path, digest=hashlib.sha256(raw_bytes).hexdigest(),
                    name=raw.get("name", "elicense"), orderer_org=orderer_org, orgs=sel_orgs,
                    channels=sel_channels, all_org_names=[o.name for o in all_orgs], batch=batch,
                    role_attribute=raw.get("roles", {}).get("attribute", "elicense.role"),
                    chaincode=chaincode, port_base=base, raft=raft)
