"""CCaaS deployment: package, install, approve, commit, and the chaincode server processes.

One chaincode server per organisation (all of its peers dial it), so one package per organisation
(its connection.json names that server's address); an organisation approves with its own package
ID, which is not part of the channel-level definition.

Idempotent: the definition last committed on each channel is recorded in
<data>/chaincode/deployed/<channel>.json; a re-run with the same definition (version, endorsement
policy, collections, package IDs) and the same committed sequence changes nothing. Anything else
approves and commits the next sequence.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shlex
import shutil
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .proc import wait_port
from .topology import Channel, Org

TLS_MODES = ("mtls", "tls", "off")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A deterministic tar.gz (fixed mtime, owner and mode), so a package's ID is stable."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode, ti.uid, ti.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(ti, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def default_cc_cmd(repo: Path) -> str | None:
    for prof in ("release", "debug"):
        b = repo / "target" / prof / "elicense-chaincode"
        if b.exists():
            return shlex.quote(str(b))
    found = shutil.which("elicense-chaincode")
    return shlex.quote(found) if found else None


class Deployer:
    def __init__(self, net, cc_cmd: str | None, tls_mode: str, label: str | None = None):
        self.net = net
        self.topo = net.topo
        self.cc = net.topo.chaincode
        if tls_mode not in TLS_MODES:
            raise SystemExit(f"error: --cc-tls must be one of {', '.join(TLS_MODES)}")
        self.tls_mode = tls_mode
        self.cc_cmd = cc_cmd
        self.label = label or f"{self.cc.name}_{self.cc.version}"
        self.dir = net.data / "chaincode"

    # ------------------------------------------------------------------ packages

    def connection(self, org: Org) -> dict:
        lay = self.net.layout
        host = self.net.addr.host(org.cc_host)
        tls = lay.cc_tls(org)
        conn = {
            "address": f"{host}:{org.cc_port}",
            "dial_timeout": "10s",
            "tls_required": self.tls_mode != "off",
            "client_auth_required": self.tls_mode == "mtls",
            "root_cert": "",
            "client_key": "",
            "client_cert": "",
        }
        if self.tls_mode != "off":
            conn["root_cert"] = (tls / "ca.crt").read_text()
        if self.tls_mode == "mtls":
            conn["client_key"] = (tls / "client.key").read_text()
            conn["client_cert"] = (tls / "client.crt").read_text()
        return conn

    def package(self, org: Org) -> tuple[Path, str]:
        d = self.dir / org.name
        d.mkdir(parents=True, exist_ok=True)
        conn = json.dumps(self.connection(org), indent=2, sort_keys=True).encode()
        meta = json.dumps({"type": "ccaas", "label": self.label}).encode()
        pkg = _tar_gz({"metadata.json": meta,
                       "code.tar.gz": _tar_gz({"connection.json": conn})})
        f = d / f"{self.label}.tar.gz"
        f.write_bytes(pkg)
        (d / "connection.json").write_bytes(conn)
        (d / "connection.json").chmod(0o600)
        f.chmod(0o600)
        pid = f"{self.label}:{hashlib.sha256(pkg).hexdigest()}"
        return f, pid

    # ------------------------------------------------------------------ peer CLI

    def peer(self, node, *args: str, check: bool = True):
        return self.net.run([self.net.fabric.exe("peer"), *args], env=self.net.peer_env(node),
                            check=check, timeout=180)

    def installed(self, node) -> set[str]:
        r = self.peer(node, "lifecycle", "chaincode", "queryinstalled", "-O", "json")
        data = json.loads(r.stdout or "{}")
        return {c["package_id"] for c in data.get("installed_chaincodes") or []}

    def install(self, org: Org, pkg: Path, pkg_id: str) -> list[str]:
        done = []
        for p in org.peers:
            if pkg_id in self.installed(p):
                continue
            self.peer(p, "lifecycle", "chaincode", "install", str(pkg))
            done.append(p.name)
        return done

    # ------------------------------------------------------------------ chaincode servers

    def server_env(self, org: Org, pkg_id: str) -> dict[str, str]:
        tls = self.net.layout.cc_tls(org)
        env = {
            "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{org.cc_port}",
            "CHAINCODE_ID": pkg_id,
            "CORE_CHAINCODE_ID_NAME": pkg_id,
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CHAINCODE_TLS_DISABLED": "true" if self.tls_mode == "off" else "false",
        }
        if self.tls_mode != "off":
            env["CHAINCODE_TLS_KEY"] = str(tls / "server.key")
            env["CHAINCODE_TLS_CERT"] = str(tls / "server.crt")
        if self.tls_mode == "mtls":
            env["CHAINCODE_CLIENT_CA_CERT"] = str(tls / "ca.crt")
            env["CHAINCODE_TLS_CLIENT_CA_CERT"] = str(tls / "ca.crt")
        return env

    def start_server(self, org: Org, pkg_id: str) -> str:
        if self.net.mode == "docker":
            return self.start_container(org, pkg_id)
        name = self.net.proc_name("cc", org)
        env = self.server_env(org, pkg_id)
        want = {"cmd": self.cc_cmd, "env": env}
        rec_file = self.dir / org.name / "server.json"
        rec = json.loads(rec_file.read_text()) if rec_file.exists() else None
        procs = self.net.procs
        if procs.alive(name) and rec == want:
            return "running"
        if procs.alive(name):
            procs.stop_all([name])
        full_env = self.net.node_env(env)
        procs.start(name, ["bash", "-c", self.cc_cmd], full_env, cwd=self.net.repo,
                    role="chaincode")
        rec_file.write_text(json.dumps(want, indent=1))
        wait_port(org.cc_port, 60, f"chaincode server of {org.name}", procs, name)
        return "started"

    def start_container(self, org: Org, pkg_id: str) -> str:
        """Docker mode: the org's chaincode service from the compose file (profile `chaincode`),
        its package ID passed through the data dir's .env file."""
        from . import compose

        env_file = self.net.data / ".env"
        lines = env_file.read_text().splitlines() if env_file.exists() else []
        var = compose.cc_env_var(org)
        lines = [l for l in lines if not l.startswith(var + "=")] + [f"{var}={pkg_id}"]
        if self.tls_mode != "mtls":
            raise SystemExit("error: docker mode runs the chaincode services with mutual TLS "
                             "(--cc-tls mtls)")
        env_file.write_text("\n".join(lines) + "\n")
        compose.up(self.net, [compose.cc_service(org)], profile="chaincode")
        return "started (container)"

    # ------------------------------------------------------------------ lifecycle

    def collections_file(self, ch: Channel) -> Path | None:
        if not self.cc.collections:
            return None
        members = {o.name: o for o in ch.members}
        conf = []
        for c in self.cc.collections:
            names = c.get("members") or list(members)
            if not all(n in members for n in names):
                continue  # a collection whose members are not all on this channel
            policy = c.get("policy") or \
                "OR(" + ",".join(f"'{members[n].msp_id}.member'" for n in names) + ")"
            entry = {
                "name": c["name"],
                "policy": policy,
                "requiredPeerCount": int(c.get("required_peer_count", 0)),
                "maxPeerCount": int(c.get("max_peer_count", len(names))),
                "blockToLive": int(c.get("block_to_live", 0)),
                "memberOnlyRead": bool(c.get("member_only_read", True)),
                "memberOnlyWrite": bool(c.get("member_only_write", True)),
            }
            if c.get("endorsement_policy"):
                entry["endorsementPolicy"] = {"signaturePolicy": c["endorsement_policy"]}
            conf.append(entry)
        if not conf:
            return None
        f = self.dir / "collections" / f"{ch.name}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(conf, indent=2))
        return f

    def committed(self, ch: Channel) -> dict | None:
        r = self.peer(ch.members[0].peers[0], "lifecycle", "chaincode", "querycommitted",
                      "-C", ch.name, "-n", self.cc.name, "-O", "json", check=False)
        if r.returncode != 0:
            if "not defined" in r.stderr or "not found" in r.stderr:
                return None
            raise RuntimeError(f"querycommitted on {ch.name} failed: {r.stderr.strip()[-500:]}")
        return json.loads(r.stdout)

    def definition_args(self, ch: Channel, seq: int, coll: Path | None) -> list[str]:
        a = ["-C", ch.name, "-n", self.cc.name, "-v", self.cc.version, "--sequence", str(seq),
             "--signature-policy", self.cc.policy_for(ch)]
        if coll:
            a += ["--collections-config", str(coll)]
        return a

    def deploy_channel(self, ch: Channel, pkg_ids: dict[str, str]) -> str:
        coll = self.collections_file(ch)
        desired = {
            "name": self.cc.name, "version": self.cc.version, "policy": self.cc.policy_for(ch),
            "collections": json.loads(coll.read_text()) if coll else None,
            "packages": {o.name: pkg_ids[o.name] for o in ch.members},
        }
        fp = hashlib.sha256(json.dumps(desired, sort_keys=True).encode()).hexdigest()
        rec_file = self.dir / "deployed" / f"{ch.name}.json"
        rec = json.loads(rec_file.read_text()) if rec_file.exists() else None
        cur = self.committed(ch)
        cur_seq = int(cur["sequence"]) if cur else 0
        if rec and cur and rec["fingerprint"] == fp and rec["sequence"] == cur_seq:
            return f"{ch.name}: unchanged ({self.cc.name} v{self.cc.version} sequence {cur_seq})"
        seq = cur_seq + 1
        dargs = self.definition_args(ch, seq, coll)
        ready = self.readiness(ch, dargs)
        todo = [o for o in ch.members if not ready.get(o.msp_id)]

        def approve(org: Org) -> None:
            self.peer(org.peers[0], "lifecycle", "chaincode", "approveformyorg",
                      *self.net.orderer_args(org.index), *dargs,
                      "--package-id", pkg_ids[org.name])

        with ThreadPoolExecutor(max_workers=len(todo) or 1) as ex:
            list(ex.map(approve, todo))
        ready = self.readiness(ch, dargs)
        missing = [m for m, ok in ready.items() if not ok]
        if missing:
            raise RuntimeError(f"{ch.name}: approvals missing after approve: {missing}")
        peers = []
        for o in ch.members:
            p = o.peers[0]
            peers += ["--peerAddresses", f"127.0.0.1:{p.port}",
                      "--tlsRootCertFiles", str(self.net.layout.org_tlsca_cert(o))]
        self.peer(ch.members[0].peers[0], "lifecycle", "chaincode", "commit",
                  *self.net.orderer_args(), *dargs, *peers)
        rec_file.parent.mkdir(parents=True, exist_ok=True)
        rec_file.write_text(json.dumps({"sequence": seq, "fingerprint": fp,
                                        "definition": desired}, indent=1))
        return (f"{ch.name}: committed {self.cc.name} v{self.cc.version} sequence {seq} "
                f"(approved by {', '.join(o.name for o in todo) or 'nobody new'})")

    def readiness(self, ch: Channel, dargs: list[str]) -> dict[str, bool]:
        r = self.peer(ch.members[0].peers[0], "lifecycle", "chaincode", "checkcommitreadiness",
                      *dargs, "-O", "json")
        return json.loads(r.stdout).get("approvals", {})

    # ------------------------------------------------------------------ the whole deploy

    def run(self) -> list[str]:
        t0 = time.time()
        report = []
        orgs = [o for o in self.topo.orgs if self.topo.channels_of(o)]
        pkgs = {o.name: self.package(o) for o in orgs}
        pkg_ids = {n: pid for n, (_, pid) in pkgs.items()}

        def install(o: Org) -> str:
            done = self.install(o, *pkgs[o.name])
            return f"{o.name}: " + (f"installed {pkg_ids[o.name]} on {', '.join(done)}" if done
                                    else f"{pkg_ids[o.name]} already installed")

        with ThreadPoolExecutor(max_workers=4) as ex:
            report += list(ex.map(install, orgs))
        self.net.timed("chaincode packaged and installed", t0)
        t0 = time.time()
        for o in orgs:
            report.append(f"{o.name}: chaincode server {self.start_server(o, pkg_ids[o.name])} "
                          f"on 127.0.0.1:{o.cc_port}")
        self.net.timed("chaincode servers", t0)
        t0 = time.time()
        with ThreadPoolExecutor(max_workers=3) as ex:
            report += list(ex.map(lambda c: self.deploy_channel(c, pkg_ids), self.topo.channels))
        self.net.timed("chaincode definitions", t0)
        (self.dir / "packages.json").write_text(json.dumps(pkg_ids, indent=1))
        return report


def resolve_cc_cmd(arg: str | None, repo: Path) -> str:
    cmd = arg or os.environ.get("CHAINCODE_CMD") or default_cc_cmd(repo)
    if not cmd:
        raise SystemExit("error: no chaincode server command: build elicense-chaincode "
                         "(cargo build --release -p elicense-chaincode), put it on PATH, or pass "
                         "--cc-cmd / CHAINCODE_CMD")
    return cmd
