"""network/fabric/network.sh's implementation. Run through network.sh (it sets the repository)."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from . import compose, network, topology
from .crypto import Layout
from .deploy import TLS_MODES, Deployer, resolve_cc_cmd
from .proc import wait_gone

COMMANDS = {
    "up": "generate crypto and configs, start CAs, orderers and peers, create and join channels",
    "down": "stop every process of the network (by PID) and check none is left",
    "channels": "create the topology's channels on the orderers and join the peers (idempotent)",
    "deploy": "package, install, approve and commit the CCaaS chaincode; start its servers",
    "enroll": "register and enroll identities (all missing ones, or one --user) and write profiles",
    "status": "report processes, channels per peer and orderer, committed chaincodes",
    "compose": "print (or --out) the docker compose file for the topology",
    "env": "print the environment for the peer CLI acting as a user of an org",
    "peer": "run the peer CLI as a user of an org: network.sh peer --org ORG -- <peer args>",
    "watch": "wait until process --pid exits, then bring the network down (`up --watch-pid` "
             "starts it)",
}


def parser(repo: Path) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mode", choices=["native", "docker"], default=None,
                        help="native processes (default) or docker compose")
    common.add_argument("--topology", default=os.environ.get("ELICENSE_TOPOLOGY"),
                        help="topology TOML (default: fixtures/topology.toml)")
    common.add_argument("--data-dir", default=os.environ.get(
        "ELICENSE_FABRIC_DATA", str(repo / "target" / "fabric-network")),
        help="where crypto, configs, ledgers, logs and PIDs live")
    common.add_argument("--orgs", default=None, help="bring up only these orgs (comma-separated)")
    common.add_argument("--channels", default=None,
                        help="bring up only these channels and their members (comma-separated)")
    common.add_argument("--port-base", type=int, default=(int(os.environ["FABRIC_PORT_BASE"])
                                                          if os.environ.get("FABRIC_PORT_BASE")
                                                          else None),
                        help="first port of the port scheme (default: topology [fabric] port_base)")
    ap = argparse.ArgumentParser(prog="network.sh", description="eLicense Ledger on real "
                                 "Hyperledger Fabric (native binaries or docker compose)")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in COMMANDS.items():
        sp = sub.add_parser(name, parents=[common], help=help_, description=help_)
        if name == "up":
            sp.add_argument("--watch-pid", type=int,
                            default=(int(os.environ["ELICENSE_FABRIC_WATCH_PID"])
                                     if os.environ.get("ELICENSE_FABRIC_WATCH_PID") else None),
                            help="bring the network down when this process exits (e.g. the "
                                 "test or script that started it)")
        if name == "watch":
            sp.add_argument("--pid", type=int, required=True)
            sp.add_argument("--start-time", default=None,
                            help="the process's start time (/proc/PID/stat field 22), so a "
                                 "reused PID is not mistaken for it")
        if name == "down":
            sp.add_argument("--purge", action="store_true", help="also delete the data dir")
        if name == "deploy":
            sp.add_argument("--cc-cmd", default=None, help="chaincode server command (default: "
                            "$CHAINCODE_CMD, else the elicense-chaincode binary)")
            sp.add_argument("--cc-tls", default=os.environ.get("CHAINCODE_TLS_MODE", "mtls"),
                            choices=TLS_MODES, help="TLS between peers and chaincode servers")
            sp.add_argument("--cc-label", default=None, help="package label (default name_version)")
        if name == "enroll":
            sp.add_argument("--org", default=None)
            sp.add_argument("--user", default=None)
            sp.add_argument("--role", default=None)
        if name == "status":
            sp.add_argument("--json", action="store_true")
        if name == "compose":
            sp.add_argument("--out", default=None)
        if name in ("env", "peer"):
            sp.add_argument("--org", required=True)
            sp.add_argument("--user", default="Admin")
            sp.add_argument("--peer-index", type=int, default=0)
        if name == "env":
            sp.add_argument("--json", action="store_true")
        if name == "peer":
            sp.add_argument("args", nargs=argparse.REMAINDER)
    return ap


def main() -> int:
    repo = Path(os.environ.get("ELICENSE_REPO") or Path(__file__).resolve().parents[3])
    args = parser(repo).parse_args()
    try:
        return run(args, repo)
    except topology.TopologyError as e:
        print(f"error: topology: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def run(args, repo: Path) -> int:
    cmd = args.command
    if cmd == "compose":
        topo_path = Path(args.topology or repo / "fixtures" / "topology.toml").resolve()
        topo = topology.load(topo_path, orgs=args.orgs, channels=args.channels,
                             port_base=args.port_base)
        text = compose.generate(topo, Layout(Path(args.data_dir).resolve()))
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
        return 0

    data = Path(args.data_dir).resolve()
    if cmd == "watch":
        wait_gone(args.pid, args.start_time)
        if not (data / network.STATE).exists():
            return 0
        network.log(f"process {args.pid} is gone: bringing the network in {data} down")
    if cmd != "up" and not (data / network.STATE).exists():
        if cmd == "down":
            network.log(f"no network in {data}")
            return 0
        print(f"error: no network in {data} (run `network.sh up` first)", file=sys.stderr)
        return 1
    net = network.load_network(args, repo, creating=(cmd == "up"))
    if cmd in ("up", "down", "channels", "deploy", "enroll", "watch"):
        # one changing command at a time per network
        net.data.mkdir(parents=True, exist_ok=True)
        lock = open(net.data / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            network.log(f"waiting for another network.sh command on {net.data}")
            fcntl.flock(lock, fcntl.LOCK_EX)

    if cmd == "up":
        net.up(args.watch_pid)
        print(f"network up in {net.timings[-1][1]:.1f}s: {len(net.topo.orgs)} orgs, "
              f"{len(net.topo.orderers())} orderers, channels "
              f"{', '.join(c.name for c in net.topo.channels)}; data dir {net.data}")
        print(f"profiles: {net.data / 'profiles'}   MSPs: {net.data / 'msp'}")
        return 0
    if cmd in ("down", "watch"):
        left = net.down(getattr(args, "purge", False))
        return 1 if left else 0
    if cmd == "channels":
        net.channels()
        return 0
    if cmd == "enroll":
        net.enroll(args.org, args.user, args.role)
        return 0
    if cmd == "deploy":
        t0 = time.time()
        d = Deployer(net, resolve_cc_cmd(args.cc_cmd, repo), args.cc_tls, args.cc_label)
        for line in d.run():
            print(line)
        print(f"deploy done in {time.time() - t0:.1f}s")
        return 0
    if cmd == "status":
        st = net.status()
        if args.json:
            print(json.dumps(st, indent=1))
        else:
            network.print_status(st)
        down = [p["name"] for p in st["processes"] if p["role"] and not p["up"]]
        return 3 if down else 0
    if cmd in ("env", "peer"):
        org = net.topo.org(args.org)
        if org.is_orderer:
            raise RuntimeError("env/peer need a peer organisation")
        peer = org.peers[args.peer_index]
        env = net.peer_env(peer, args.user)
        env["FABRIC_LOGGING_SPEC"] = os.environ.get("FABRIC_LOGGING_SPEC", "WARNING")
        o = net.topo.orderers()[0]
        env["ORDERER_ADDRESS"] = f"127.0.0.1:{o.port}"
        env["ORDERER_TLS_CA"] = str(net.layout.org_tlsca_cert(net.topo.orderer_org))
        env["PATH"] = f"{net.fabric.bin}:{os.environ.get('PATH', '')}"
        if cmd == "env":
            if args.json:
                print(json.dumps(env, indent=1))
            else:
                for k, v in env.items():
                    print(f"export {k}={shlex.quote(v)}")
            return 0
        rest = args.args[1:] if args.args[:1] == ["--"] else args.args
        full = dict(os.environ)
        full.update(env)
        return subprocess.run([net.fabric.exe("peer"), *rest], env=full).returncode
    raise AssertionError(cmd)


if __name__ == "__main__":
    sys.exit(main())
