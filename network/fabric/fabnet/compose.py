"""Docker mode: a docker compose file for the topology, with Fabric's official images.

The compose file sits in the data dir and mounts it (relative paths) into every container:
- CA containers mount ca/<org> as their server home;
- orderers and peers mount the data dir at /elicense and read the configuration network/fabric
  generated for docker mode (host names instead of 127.0.0.1, container paths);
- the chaincode servers (CCaaS, one per organisation) are under the compose profile `chaincode`
  and start at deploy time with the package IDs in the data dir's .env file.
Every published port is bound to 127.0.0.1 on the host, with the same number as in the container,
so the host-side commands (osnadmin, peer CLI, fabric-ca-client, connection profiles) are the same
as in native mode.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import yamltext
from .configs import CONTAINER_ROOT
from .crypto import Layout
from .topology import Org, Topology

FABRIC_VERSION = "3.1.5"
CA_VERSION = "1.5"
NETWORK = "elicense"


def ca_service(org: Org) -> str:
    return org.ca_name


def cc_service(org: Org) -> str:
    return org.cc_host


def cc_env_var(org: Org) -> str:
    return "CHAINCODE_ID_" + "".join(c if c.isalnum() else "_" for c in org.name.upper())


def _ports(*ports: int) -> list[str]:
    return [f"127.0.0.1:{p}:{p}" for p in ports]


def services(topo: Topology, layout: Layout) -> dict:
    out: dict = {}
    for org in topo.all_orgs():
        out[ca_service(org)] = {
            "image": f"hyperledger/fabric-ca:{CA_VERSION}",
            "container_name": org.ca_name,
            "hostname": org.ca_name,
            "command": "fabric-ca-server start -H /etc/hyperledger/fabric-ca-server",
            "volumes": [f"./ca/{org.name}:/etc/hyperledger/fabric-ca-server"],
            "ports": _ports(org.ca_port, org.ca_ops_port),
            "networks": [NETWORK],
        }
    for o in topo.orderers():
        out[o.name] = {
            "image": f"hyperledger/fabric-orderer:{FABRIC_VERSION}",
            "container_name": o.name,
            "hostname": o.name,
            "command": "orderer",
            "environment": {
                "FABRIC_CFG_PATH": f"{CONTAINER_ROOT}/config/orderers/{o.name}",
                "FABRIC_LOGGING_SPEC": "INFO",
            },
            "volumes": [f".:{CONTAINER_ROOT}"],
            "ports": _ports(o.port, o.port2, o.ops_port),
            "networks": [NETWORK],
        }
    for p in topo.peers():
        out[p.name] = {
            "image": f"hyperledger/fabric-peer:{FABRIC_VERSION}",
            "container_name": p.name,
            "hostname": p.name,
            "command": "peer node start",
            "environment": {
                "FABRIC_CFG_PATH": f"{CONTAINER_ROOT}/config/peers/{p.name}",
                "FABRIC_LOGGING_SPEC": "INFO",
            },
            "volumes": [f".:{CONTAINER_ROOT}"],
            "ports": _ports(p.port, p.ops_port),
            "depends_on": [o.name for o in topo.orderers()],
            "networks": [NETWORK],
        }
    for org in topo.orgs:
        tls = f"{CONTAINER_ROOT}/crypto/{org.name}/chaincode"
        out[cc_service(org)] = {
            "image": "${ELICENSE_CHAINCODE_IMAGE:-elicense-chaincode:latest}",
            "container_name": org.cc_host,
            "hostname": org.cc_host,
            "profiles": ["chaincode"],
            "environment": {
                "CHAINCODE_SERVER_ADDRESS": f"0.0.0.0:{org.cc_port}",
                "CHAINCODE_ID": "${" + cc_env_var(org) + ":-}",
                "CHAINCODE_TLS_DISABLED": "false",
                "CHAINCODE_TLS_KEY": f"{tls}/server.key",
                "CHAINCODE_TLS_CERT": f"{tls}/server.crt",
                "CHAINCODE_CLIENT_CA_CERT": f"{tls}/ca.crt",
                "CHAINCODE_TLS_CLIENT_CA_CERT": f"{tls}/ca.crt",
            },
            "volumes": [f".:{CONTAINER_ROOT}:ro"],
            "networks": [NETWORK],
        }
    return out


def generate(topo: Topology, layout: Layout, data_dir: Path | None = None) -> str:
    doc = {
        "name": _project(topo),
        "services": services(topo, layout),
        "networks": {NETWORK: {"name": f"{_project(topo)}", "driver": "bridge"}},
    }
    head = (f"# docker compose file for the eLicense Ledger Fabric network `{topo.name}`\n"
            f"# ({len(topo.orgs)} organisations, {len(topo.orderers())} Raft orderers, "
            f"{len(topo.channels)} channels), generated from the topology by network/fabric.\n"
            "# It lives in the network's data dir and mounts it; bring it up with\n"
            "#   network/fabric/network.sh up --mode docker --data-dir <dir>\n"
            "# which also enrolls identities, writes node configs and creates the channels.\n")
    return head + yamltext.dump(doc)


def _project(topo: Topology) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in topo.name.lower())


def _docker() -> list[str]:
    """The compose command: `docker compose` (plugin) or `docker-compose`."""
    if shutil.which("docker"):
        p = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if p.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("error: docker mode needs Docker with the compose plugin (`docker compose`) "
                     "or docker-compose; the compose file is in the data dir")


def _compose(net, args: list[str]) -> None:
    argv = _docker() + ["-f", str(net.data / "docker-compose.yaml"), *args]
    p = subprocess.run(argv, cwd=net.data)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed (exit {p.returncode})")


def up(net, names: list[str], profile: str | None = None) -> None:
    _compose(net, (["--profile", profile] if profile else []) + ["up", "-d", *names])


def down(net) -> None:
    if (net.data / "docker-compose.yaml").exists():
        _compose(net, ["--profile", "chaincode", "down"])
