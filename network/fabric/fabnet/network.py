"""Bringing the network up and down, channels, status, enrollment (native mode; docker mode shares
the generation steps and runs the nodes through docker compose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import compose, configs, crypto, profiles, topology
from .crypto import Layout
from .proc import Procs, poll, port_free, start_time, wait_port
from .topology import Channel, Node, Topology

STATE = "network.json"
# the tracked process that brings the network down when the process that asked for it exits
WATCHDOG = "watchdog"
# Fabric's default log format without the terminal colours (the logs are files)
LOG_FORMAT = "%{time:2006-01-02 15:04:05.000 MST} [%{module}] %{shortfunc} -> %{level:.4s} " \
    "%{id:03x} %{message}"


def log(msg: str) -> None:
    print(f"[fabric] {msg}", file=sys.stderr, flush=True)


@dataclass
class Fabric:
    """Where the Fabric binaries and their sample config and CCaaS builder are."""

    bin: Path
    config: Path  # holds core.yaml, orderer.yaml
    builders: Path | None  # holds ccaas/bin/{detect,build,release}

    def exe(self, name: str) -> str:
        return str(self.bin / name)

    @property
    def ccaas(self) -> Path | None:
        return self.builders / "ccaas" if self.builders else None


def find_fabric(repo: Path) -> Fabric:
    """FABRIC_BIN, then PATH, then the bundle at ../shared/fabric relative to the repository."""
    cands: list[Path] = []
    if os.environ.get("FABRIC_BIN"):
        # an explicit choice: no silent fallback to another Fabric
        cands.append(Path(os.environ["FABRIC_BIN"]))
    else:
        on_path = shutil.which("peer")
        if on_path:
            cands.append(Path(on_path).resolve().parent)
        install = repo.parent / "shared" / "fabric" / "install.sh"
        if install.exists():
            p = subprocess.run(["bash", str(install), "--bin"], capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                cands.append(Path(p.stdout.strip()))
    for b in cands:
        if not all((b / x).exists() for x in ("peer", "orderer", "configtxgen", "osnadmin",
                                              "fabric-ca-server", "fabric-ca-client")):
            continue
        cfg = None
        for c in ([Path(os.environ["FABRIC_CFG_PATH"])] if os.environ.get("FABRIC_CFG_PATH")
                  else []) + [b.parent / "config", b / "config"]:
            if (c / "core.yaml").exists() and (c / "orderer.yaml").exists():
                cfg = c
                break
        if not cfg:
            continue
        builders = b.parent / "builders"
        if os.environ.get("FABRIC_BUILDERS"):
            builders = Path(os.environ["FABRIC_BUILDERS"])
        return Fabric(bin=b, config=cfg,
                      builders=builders if (builders / "ccaas" / "bin" / "build").exists() else None)
    raise SystemExit("error: Fabric binaries not found: set FABRIC_BIN to a directory with peer, "
                     "orderer, configtxgen, osnadmin, fabric-ca-server and fabric-ca-client "
                     "(and ../config with core.yaml, orderer.yaml), put them on PATH, or install "
                     "the bundle (../shared/fabric/install.sh)")


class Network:
    def __init__(self, data_dir: Path, topo: Topology, mode: str, fabric: Fabric | None,
                 repo: Path):
        self.data = data_dir
        self.topo = topo
        self.mode = mode
        self.fabric = fabric
        self.repo = repo
        self.layout = Layout(data_dir)
        self.procs = Procs(data_dir)
        self.addr = configs.Addressing(mode, self.layout)
        self.cfg_dir = data_dir / "config"
        self.timings: list[tuple[str, float]] = []

    # ------------------------------------------------------------------ helpers

    def run(self, argv: list[str], env: dict | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} {' '.join(argv[1:4])} ... failed "
                               f"(exit {p.returncode}):\n{(p.stderr or p.stdout).strip()[-3000:]}")
        return p

    def timed(self, what: str, t0: float) -> None:
        dt = time.time() - t0
        self.timings.append((what, dt))
        log(f"{what}: {dt:.1f}s")

    def proc_name(self, kind: str, obj) -> str:
        if kind == "ca":
            return f"ca-{obj.name}"
        if kind == "cc":
            return f"chaincode-{obj.name}"
        return obj.name

    def all_proc_names(self) -> list[str]:
        names = [self.proc_name("ca", o) for o in self.topo.all_orgs()]
        names += [n.name for n in self.topo.orderers()] + [p.name for p in self.topo.peers()]
        names += [self.proc_name("cc", o) for o in self.topo.orgs]
        return names

    def peer_env(self, peer: Node, user: str = "Admin") -> dict[str, str]:
        """Environment for the `peer` CLI acting as `user` of the peer's org against that peer."""
        org = peer.org
        return {
            "FABRIC_CFG_PATH": str(self.cfg_dir / "cli"),
            "CORE_PEER_ADDRESS": f"127.0.0.1:{peer.port}",
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(self.layout.user_msp(org, user)),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.layout.org_tlsca_cert(org)),
            "FABRIC_LOGGING_SPEC": "WARNING",
        }

    def orderer_args(self, i: int = 0) -> list[str]:
        o = self.topo.orderers()[i % len(self.topo.orderers())]
        return ["-o", f"127.0.0.1:{o.port}", "--tls", "--cafile",
                str(self.layout.org_tlsca_cert(self.topo.orderer_org))]

    # ------------------------------------------------------------------ state

    def state(self) -> dict:
        return {
            "mode": self.mode,
            "topology": str(self.topo.path),
            "topology_digest": self.topo.digest,
            "orgs": [o.name for o in self.topo.orgs],
            "channels": [c.name for c in self.topo.channels],
            "port_base": self.topo.port_base,
            "fabric_bin": str(self.fabric.bin) if self.fabric else None,
        }

    def save_state(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / STATE).write_text(json.dumps(self.state(), indent=1) + "\n")

    # ------------------------------------------------------------------ generation

    def generate(self) -> None:
        """All configuration that needs no running process: CA configs, compose file."""
        self.data.mkdir(parents=True, exist_ok=True)
        crypto.write_ca_configs(self.layout, self.topo, self.addr.listen)
        if self.mode == "docker":
            (self.data / "docker-compose.yaml").write_text(
                compose.generate(self.topo, self.layout, self.data))

    def write_node_configs(self) -> None:
        assert self.fabric
        core_t = (self.fabric.config / "core.yaml").read_text()
        ord_t = (self.fabric.config / "orderer.yaml").read_text()
        builder = None
        if self.mode == "native":
            if not self.fabric.ccaas:
                raise SystemExit("error: Fabric's ccaas external builder not found "
                                 "(<fabric>/builders/ccaas or FABRIC_BUILDERS)")
            builder = str(self.fabric.ccaas)
        for p in self.topo.peers():
            d = self.cfg_dir / "peers" / p.name
            d.mkdir(parents=True, exist_ok=True)
            (d / "core.yaml").write_text(configs.core_yaml(core_t, p, self.topo, self.layout,
                                                           self.addr, builder))
        for o in self.topo.orderers():
            d = self.cfg_dir / "orderers" / o.name
            d.mkdir(parents=True, exist_ok=True)
            (d / "orderer.yaml").write_text(configs.orderer_yaml(ord_t, o, self.topo, self.layout,
                                                                 self.addr))
        cli = self.cfg_dir / "cli"
        cli.mkdir(parents=True, exist_ok=True)
        (cli / "core.yaml").write_text(core_t)
        (self.cfg_dir / "configtx.yaml").write_text(configs.configtx(self.topo, self.layout,
                                                                     self.addr))

    # ------------------------------------------------------------------ CAs and crypto

    def start_cas(self) -> None:
        t0 = time.time()
        if self.mode == "docker":
            compose.up(self, [compose.ca_service(o) for o in self.topo.all_orgs()])
        else:
            for o in self.topo.all_orgs():
                self.procs.start(self.proc_name("ca", o),
                                 [self.fabric.exe("fabric-ca-server"), "start",
                                  "-H", str(self.layout.ca_home(o))],
                                 self.node_env({}), role="ca")
        for o in self.topo.all_orgs():
            wait_healthy(self.proc_name("ca", o), o.ca_ops_port, 30,
                         self.procs if self.mode == "native" else None)
        self.timed("CAs started", t0)

    def enroll_all(self) -> None:
        t0 = time.time()
        # one worker per organisation: each org's identities go through its own CA, in order
        with ThreadPoolExecutor(max_workers=len(self.topo.all_orgs())) as ex:
            futs = {o.name: ex.submit(crypto.bootstrap_org, self.fabric.bin, self.layout,
                                      self.topo, o) for o in self.topo.all_orgs()}
            for name, f in futs.items():
                f.result()
        self.timed("identities registered and enrolled", t0)

    def node_env(self, extra: dict) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CORE_", "ORDERER_", "FABRIC_CA_", "CHAINCODE_"))}
        env.pop("FABRIC_CFG_PATH", None)
        env["FABRIC_LOGGING_FORMAT"] = LOG_FORMAT
        env.update(extra)
        return env

    # ------------------------------------------------------------------ nodes

    def start_nodes(self) -> None:
        t0 = time.time()
        if self.mode == "docker":
            compose.up(self, [n.name for n in self.topo.orderers() + self.topo.peers()])
        else:
            for o in self.topo.orderers():
                self.procs.start(o.name, [self.fabric.exe("orderer")], self.node_env({
                    "FABRIC_CFG_PATH": str(self.cfg_dir / "orderers" / o.name),
                    "FABRIC_LOGGING_SPEC": os.environ.get("ORDERER_LOGGING_SPEC", "INFO"),
                }), role="orderer")
            for p in self.topo.peers():
                self.procs.start(p.name, [self.fabric.exe("peer"), "node", "start"], self.node_env({
                    "FABRIC_CFG_PATH": str(self.cfg_dir / "peers" / p.name),
                    "FABRIC_LOGGING_SPEC": os.environ.get("PEER_LOGGING_SPEC", "INFO"),
                }), role="peer")
        native = self.mode == "native"
        for n in self.topo.orderers() + self.topo.peers():
            wait_healthy(n.name, n.ops_port, 30, self.procs if native else None)
        self.timed(f"{len(self.topo.orderers())} orderers and {len(self.topo.peers())} peers "
                   f"started", t0)

    # ------------------------------------------------------------------ channels

    def osnadmin(self, o: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        oo = self.topo.orderer_org
        tls = self.layout.user_tls(oo, "Admin")
        return self.run([self.fabric.exe("osnadmin"), "channel", *args,
                         "-o", f"127.0.0.1:{o.port2}",
                         "--ca-file", str(self.layout.org_tlsca_cert(oo)),
                         "--client-cert", str(tls / "client.crt"),
                         "--client-key", str(tls / "client.key")], check=check)

    def _osn_json(self, o: Node, *args: str) -> dict | None:
        p = self.osnadmin(o, "list", *args, check=False)
        if p.returncode != 0 or "{" not in p.stdout:
            return None
        try:
            return json.loads(p.stdout[p.stdout.index("{"):])
        except ValueError:
            return None

    def orderer_channels(self, o: Node, details: bool = False) -> list[dict]:
        """The channels an orderer has joined (channel participation API); with details, each
        with its consensus relation, status and height."""
        listing = self._osn_json(o) or {}
        chans = listing.get("channels") or []
        if not details:
            return chans
        return [self._osn_json(o, "--channelID", c["name"]) or c for c in chans]

    def peer_channels(self, peer: Node) -> list[str] | None:
        p = self.run([self.fabric.exe("peer"), "channel", "list"], env=self.peer_env(peer),
                     check=False, timeout=30)
        if p.returncode != 0:
            return None
        out = p.stdout.splitlines()
        try:
            i = next(i for i, l in enumerate(out) if l.startswith("Channels peers has joined"))
        except StopIteration:
            return []
        return [l.strip() for l in out[i + 1:] if l.strip()]

    def channel_block(self, ch: Channel) -> Path:
        return self.data / "channels" / f"{ch.name}.block"

    def create_channels(self) -> None:
        t0 = time.time()
        (self.data / "channels").mkdir(parents=True, exist_ok=True)

        def gen(ch: Channel) -> None:
            blk = self.channel_block(ch)
            if blk.exists():
                return
            tmp = blk.with_suffix(".tmp")
            self.run([self.fabric.exe("configtxgen"), "-configPath", str(self.cfg_dir),
                      "-profile", ch.name, "-channelID", ch.name, "-outputBlock", str(tmp)],
                     env={"FABRIC_LOGGING_SPEC": "WARNING"})
            tmp.rename(blk)

        with ThreadPoolExecutor(max_workers=3) as ex:
            list(ex.map(gen, self.topo.channels))
        self.timed("channel genesis blocks", t0)

        t0 = time.time()

        def join_orderer(o: Node) -> None:
            # the channel participation API listens a moment after the operations endpoint
            # reports healthy; until it answers, what the orderer has joined is unknown
            listing = poll(lambda: self._osn_json(o), 30)
            have = {c["name"] for c in (listing or {}).get("channels") or []}
            for ch in self.topo.channels:
                if ch.name not in have:
                    joined(f"osnadmin channel join {ch.name} on {o.name}",
                           self.osnadmin(o, "join", "--channelID", ch.name, "--config-block",
                                         str(self.channel_block(ch)), check=False))

        with ThreadPoolExecutor(max_workers=3) as ex:
            list(ex.map(join_orderer, self.topo.orderers()))
        self.timed("orderers joined", t0)

        t0 = time.time()

        def join_peer(p: Node) -> None:
            # right after a (re)start the peer may refuse to list its channels for a moment
            have = poll(lambda: self.peer_channels(p), 30) or []
            for ch in self.topo.channels_of(p.org):
                if ch.name not in have:
                    joined(f"peer channel join {ch.name} on {p.name}",
                           self.run([self.fabric.exe("peer"), "channel", "join", "-b",
                                     str(self.channel_block(ch))], env=self.peer_env(p),
                                    check=False))

        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(join_peer, self.topo.peers()))
        self.timed("peers joined", t0)

        t0 = time.time()
        self.wait_leaders(60)
        self.timed("Raft leaders elected", t0)
        t0 = time.time()
        self.wait_gossip(60)
        self.timed("gossip membership complete", t0)

    def raft_leaders(self) -> dict[str, str]:
        """Channel -> orderer currently reporting itself Raft leader (operations metrics)."""
        leaders: dict[str, str] = {}
        for o in self.topo.orderers():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{o.ops_port}/metrics",
                                            timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("consensus_etcdraft_is_leader{") and line.endswith(" 1"):
                    ch = line.split('channel="', 1)[1].split('"', 1)[0]
                    leaders[ch] = o.name
        return leaders

    def metrics(self, ops_port: int) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return ""

    def gossip_known(self, p: Node) -> dict[str, int]:
        """Channel -> how many other peers this peer's gossip knows on it (operations metrics)."""
        known = {}
        for line in self.metrics(p.ops_port).splitlines():
            if line.startswith("gossip_membership_total_peers_known{"):
                ch = line.split('channel="', 1)[1].split('"', 1)[0]
                known[ch] = int(float(line.rsplit(" ", 1)[1]))
        return known

    def wait_gossip(self, timeout: float) -> None:
        """Waits until every peer's gossip knows every other peer of each of its channels: the
        gateway's endorsement planning (discovery) relies on it for multi-org policies."""
        deadline = time.time() + timeout
        while True:
            missing = []
            for p in self.topo.peers():
                known = self.gossip_known(p)
                for ch in self.topo.channels_of(p.org):
                    want = sum(len(m.peers) for m in ch.members) - 1
                    if known.get(ch.name, 0) < want:
                        missing.append(f"{p.name}@{ch.name} ({known.get(ch.name, 0)}/{want})")
            if not missing:
                return
            if time.time() > deadline:
                raise RuntimeError("gossip membership incomplete after "
                                   f"{timeout:.0f}s: {', '.join(missing)}")
            time.sleep(0.2)

    def wait_leaders(self, timeout: float) -> None:
        deadline = time.time() + timeout
        want = {c.name for c in self.topo.channels}
        while True:
            missing = want - set(self.raft_leaders())
            if not missing:
                return
            if time.time() > deadline:
                raise RuntimeError(f"no Raft leader within {timeout:.0f}s for: "
                                   f"{', '.join(sorted(missing))}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ commands

    def up(self, watch_pid: int | None = None) -> None:
        t_all = time.time()
        running = [n for n in self.all_proc_names() if self.procs.alive(n)]
        if self.mode == "native" and not running:
            busy = [p for p in self.topo.ports() if not port_free(p)]
            if busy:
                raise SystemExit(f"error: ports in use on 127.0.0.1: {busy[:10]} "
                                 f"(choose another --port-base)")
        self.save_state()
        if watch_pid is not None:
            self.start_watchdog(watch_pid)
        self.generate()
        try:
            self.start_cas()
            self.enroll_all()
            self.write_node_configs()
            self.start_nodes()
            self.create_channels()
            t0 = time.time()
            profiles.write_all(self.topo, self.layout)
            self.timed("connection profiles", t0)
            self.restart_chaincode_servers()
        except BaseException:
            what = "containers" if self.mode == "docker" else "processes"
            log(f"bring-up failed; the {what} started so far keep running: run `network.sh down` "
                f"to stop them; logs are in {self.procs.log_dir}")
            raise
        self.timed("network up", t_all)

    def start_watchdog(self, pid: int) -> None:
        """Starts (or replaces) the tracked `watchdog` process, which brings the network down
        once process `pid` exits: a test or script that is killed before it can run `down`
        leaves no Fabric process behind. Started before any node, so a kill during `up` is
        covered too."""
        started = start_time(pid)
        if started is None:
            raise SystemExit(f"error: --watch-pid {pid}: no such process")
        self.procs.stop_all([WATCHDOG])
        argv = [sys.executable, "-m", "fabnet", "watch", "--pid", str(pid),
                "--start-time", started, "--data-dir", str(self.data)]
        env = dict(os.environ)
        env["ELICENSE_REPO"] = str(self.repo)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        self.procs.start(WATCHDOG, argv, env, role="watchdog")
        log(f"watchdog: the network goes down when process {pid} exits")

    def restart_chaincode_servers(self) -> None:
        """After a restart of a network that had chaincode deployed: start the chaincode servers
        again as `deploy` last started them (native mode)."""
        if self.mode != "native":
            return
        for org in self.topo.orgs:
            rec_file = self.data / "chaincode" / org.name / "server.json"
            name = self.proc_name("cc", org)
            if not rec_file.exists() or self.procs.alive(name):
                continue
            rec = json.loads(rec_file.read_text())
            self.procs.start(name, ["bash", "-c", rec["cmd"]], self.node_env(rec["env"]),
                             cwd=self.repo, role="chaincode")
            wait_port(org.cc_port, 60, f"chaincode server of {org.name}", self.procs, name)
            log(f"restarted the chaincode server of {org.name}")

    def enroll(self, org_name: str | None, user: str | None, role: str | None) -> None:
        self.start_cas()
        if user:
            if not org_name or not role:
                raise SystemExit("error: enroll --user needs --org and --role")
            out = crypto.enroll_extra_user(self.fabric.bin, self.layout, self.topo,
                                           self.topo.org(org_name), user, role)
            log(f"enrolled {user} of {org_name} with {self.topo.role_attribute}={role}: {out}")
        else:
            self.enroll_all()
        profiles.write_all(self.topo, self.layout)

    def channels(self) -> None:
        self.write_node_configs()
        self.create_channels()
        profiles.write_all(self.topo, self.layout)

    def down(self, purge: bool) -> list[str]:
        names = self.procs.names()
        me = self.procs.alive(WATCHDOG)
        if me == os.getpid():
            # the watchdog itself brings the network down: it stops everything else, then
            # forgets its own record and exits
            names.remove(WATCHDOG)
        if self.mode == "docker":
            try:
                compose.down(self)
            except SystemExit as e:
                log(f"warning: containers not stopped: {e}")
        left = self.procs.stop_all(names)
        if left:
            log(f"still running: {', '.join(left)}")
        else:
            log(f"stopped {len(names)} processes")
        if me == os.getpid():
            self.procs.pid_file(WATCHDOG).unlink(missing_ok=True)
        if purge and not left:
            shutil.rmtree(self.data)
            log(f"removed {self.data}")
        return left

    def status(self) -> dict:
        procs = []
        extra = [WATCHDOG] if self.procs.record(WATCHDOG) else []
        for n in self.all_proc_names() + extra:
            rec = self.procs.record(n) or {}
            pid = self.procs.alive(n)
            procs.append({"name": n, "role": rec.get("role", ""), "pid": pid or rec.get("pid"),
                          "up": bool(pid), "log": str(self.procs.log_file(n))})
        peers = {}
        for p in self.topo.peers():
            info: dict = {"org": p.org.name, "address": f"127.0.0.1:{p.port}", "channels": {}}
            if self.procs.alive(p.name) or self.mode == "docker":
                chans = self.peer_channels(p)
                info["reachable"] = chans is not None
                known = self.gossip_known(p)
                for ch in chans or []:
                    info["channels"][ch] = self.peer_channel_info(p, ch)
                    info["channels"][ch]["gossip_peers_known"] = known.get(ch, 0)
            else:
                info["reachable"] = False
            peers[p.name] = info
        orderers = {}
        for o in self.topo.orderers():
            orderers[o.name] = {"address": f"127.0.0.1:{o.port}",
                                "admin": f"127.0.0.1:{o.port2}",
                                "channels": self.orderer_channels(o, details=True)
                                if self.procs.alive(o.name) or self.mode == "docker" else []}
        return {"mode": self.mode, "data_dir": str(self.data), "topology": str(self.topo.path),
                "processes": procs, "peers": peers, "orderers": orderers,
                "raft_leaders": self.raft_leaders(),
                "channels": {c.name: [m.name for m in c.members] for c in self.topo.channels}}

    def peer_channel_info(self, p: Node, ch: str) -> dict:
        out: dict = {}
        r = self.run([self.fabric.exe("peer"), "channel", "getinfo", "-c", ch],
                     env=self.peer_env(p), check=False, timeout=30)
        if r.returncode == 0 and "{" in r.stdout:
            info = json.loads(r.stdout[r.stdout.index("{"):])
            out["height"] = info.get("height")
        r = self.run([self.fabric.exe("peer"), "lifecycle", "chaincode", "querycommitted",
                      "-C", ch, "-O", "json"], env=self.peer_env(p), check=False, timeout=30)
        committed = []
        if r.returncode == 0 and r.stdout.strip():
            for cd in json.loads(r.stdout).get("chaincode_definitions") or []:
                committed.append({"name": cd["name"], "version": cd["version"],
                                  "sequence": cd["sequence"]})
        out["chaincodes"] = committed
        return out


def joined(what: str, r: subprocess.CompletedProcess) -> None:
    """Checks a channel join: one that already happened is not an error (a restarted node may not
    list a channel it has joined before until a moment after it answers)."""
    if r.returncode != 0 and "already exists" not in r.stdout + r.stderr:
        raise RuntimeError(f"{what} failed: {(r.stderr or r.stdout).strip()[-1000:]}")


def wait_healthy(name: str, ops_port: int, timeout: float, procs: Procs | None) -> None:
    """Waits for a node's operations endpoint to answer /healthz with 200 (it listens once the
    node's gRPC services are up)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if procs and not procs.alive(name):
            raise RuntimeError(f"{name} exited during start-up; see {procs.log_file(name)}")
        time.sleep(0.05)
    raise RuntimeError(f"{name} not healthy (operations 127.0.0.1:{ops_port}/healthz) "
                       f"within {timeout:.0f}s")


def print_status(st: dict) -> None:
    print(f"mode: {st['mode']}   data dir: {st['data_dir']}")
    print("processes:")
    for p in st["processes"]:
        if p["role"] or p["up"]:
            print(f"  {'up  ' if p['up'] else 'DOWN'}  {p['name']:<40} pid {p['pid']}")
        else:
            print(f"  --    {p['name']:<40} (not started)")
    print("orderers:")
    for name, o in st["orderers"].items():
        chans = ", ".join(f"{c['name']}({c.get('consensusRelation', '?')},"
                          f"{c.get('status', '?')},h={c.get('height', '?')})"
                          for c in o["channels"]) or "-"
        print(f"  {name}  {o['address']}  {chans}")
    print("raft leaders: " + (", ".join(f"{c}={o}" for c, o in sorted(st["raft_leaders"].items()))
                              or "-"))
    print("peers:")
    for name, p in st["peers"].items():
        print(f"  {name}  {p['address']}  {'reachable' if p.get('reachable') else 'unreachable'}")
        for ch, info in p["channels"].items():
            cc = ", ".join(f"{c['name']} v{c['version']} seq {c['sequence']}"
                           for c in info.get("chaincodes", [])) or "no chaincode committed"
            print(f"      {ch}: height {info.get('height', '?')}; gossip knows "
                  f"{info.get('gossip_peers_known', '?')} other peers; {cc}")


def load_network(args, repo: Path, creating: bool) -> Network:
    data = Path(args.data_dir).resolve()
    st_file = data / STATE
    st = json.loads(st_file.read_text()) if st_file.exists() else None
    if st and creating and args.orgs is None and args.channels is None and \
            args.port_base is None and args.mode in (None, st["mode"]):
        creating = False  # `up` again on an existing network: restart it as it was
    if st and not creating:
        topo_path = Path(args.topology).resolve() if args.topology else Path(st["topology"])
        topo = topology.load(topo_path, orgs=",".join(st["orgs"]) if st["orgs"] else None,
                             port_base=st["port_base"])
        # channels are restricted to the recorded ones (an --orgs selection may keep more)
        topo.channels = [c for c in topo.channels if c.name in st["channels"]]
        mode = st["mode"]
    else:
        topo_path = Path(args.topology or repo / "fixtures" / "topology.toml").resolve()
        topo = topology.load(topo_path, orgs=args.orgs, channels=args.channels,
                             port_base=args.port_base)
        mode = args.mode or "native"
        if st:
            want = {"orgs": [o.name for o in topo.orgs], "channels": [c.name for c in topo.channels],
                    "port_base": topo.port_base, "mode": mode}
            have = {k: st[k] for k in want}
            if want != have:
                raise SystemExit(f"error: {data} holds a different network ({have}); "
                                 f"run `network.sh down --purge --data-dir {data}` first")
    if args.mode and args.mode != mode:
        raise SystemExit(f"error: the network in {data} runs in {mode} mode")
    needs_fabric = args.command not in ("compose",)
    fabric = find_fabric(repo) if needs_fabric else None
    return Network(data, topo, mode, fabric, repo)
