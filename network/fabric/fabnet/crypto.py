"""Per-organisation Fabric CAs and all crypto material, bootstrapped with fabric-ca-client.

Each organisation (and the orderer organisation) runs one fabric-ca-server process hosting two CA
instances that share one registry database:

- `ca.<domain>`    the enrollment CA: MSP identities (peers, orderers, Admin, users);
- `tlsca.<domain>` the TLS CA: TLS server/client certificates (`--enrollment.profile tls`).

Because the registry is shared, an identity registered once can enroll at both. The CA server's
own HTTPS certificate is issued by the enrollment CA, so `ca/<org>/ca-cert.pem` is what clients
trust when talking to the CA.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import yamltext
from .topology import Org, Topology

NODE_OUS = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca-cert.pem
    OrganizationalUnitIdentifier: orderer
"""

TLS_USAGE = ["digital signature", "key encipherment", "server auth", "client auth",
             "key agreement"]


class Layout:
    """Where things live in the data dir."""

    def __init__(self, data_dir: Path):
        self.root = data_dir

    def ca_home(self, org: Org) -> Path:
        return self.root / "ca" / org.name

    def ca_tls_cert(self, org: Org) -> Path:
        return self.ca_home(org) / "ca-cert.pem"

    def org_dir(self, org: Org) -> Path:
        return self.root / "crypto" / org.name

    def org_msp(self, org: Org) -> Path:
        return self.org_dir(org) / "msp"

    def org_ca_cert(self, org: Org) -> Path:
        return self.org_msp(org) / "cacerts" / "ca-cert.pem"

    def org_tlsca_cert(self, org: Org) -> Path:
        return self.org_msp(org) / "tlscacerts" / "tlsca-cert.pem"

    def node_dir(self, node) -> Path:
        kind = "peers" if node.kind == "peer" else "orderers"
        return self.org_dir(node.org) / kind / node.name

    def user_msp(self, org: Org, user: str) -> Path:
        return self.root / "msp" / org.name / user

    def user_tls(self, org: Org, user: str) -> Path:
        return self.org_dir(org) / "users" / user / "tls"

    def cc_tls(self, org: Org) -> Path:
        return self.org_dir(org) / "chaincode"

    def registrar(self, org: Org) -> Path:
        return self.org_dir(org) / "registrar"

    def secrets_file(self, org: Org) -> Path:
        return self.org_dir(org) / "secrets.json"


def _ca_config(org: Org, topo: Topology, registrar_secret: str, listen: str, tls_ca: bool) -> dict:
    name = org.tlsca_name if tls_ca else org.ca_name
    cfg = {
        "ca": {"name": name},
        "csr": {
            "cn": name,
            "names": [{"C": "CN", "O": org.name, "OU": "TLS" if tls_ca else "CA"}],
            "hosts": ["localhost", "127.0.0.1", org.ca_name],
            "ca": {"expiry": "131400h", "pathlength": 1},
            "keyrequest": {"algo": "ecdsa", "size": 256},
        },
        "registry": {
            "maxenrollments": -1,
            "identities": [{
                "name": "registrar", "pass": registrar_secret, "type": "client",
                "affiliation": "",
                "attrs": {
                    "hf.Registrar.Roles": "*", "hf.Registrar.DelegateRoles": "*",
                    "hf.Revoker": True, "hf.IntermediateCA": True, "hf.GenCRL": True,
                    "hf.Registrar.Attributes": "*", "hf.AffiliationMgr": True,
                },
            }],
        },
        "db": {"type": "sqlite3",
               "datasource": "../fabric-ca-server.db" if tls_ca else "fabric-ca-server.db"},
        "affiliations": {org.name.lower(): ["admins", "nodes", "users"]},
        "signing": {
            "default": {"usage": TLS_USAGE if tls_ca else ["digital signature"],
                        "expiry": "8760h"},
            "profiles": {
                "tls": {"usage": TLS_USAGE, "expiry": "8760h"},
                "ca": {"usage": ["cert sign", "crl sign"], "expiry": "43800h",
                       "caconstraint": {"isca": True, "maxpathlen": 0}},
            },
        },
        "bccsp": {"default": "SW", "sw": {"hash": "SHA2", "security": 256,
                                          "filekeystore": {"keystore": "msp/keystore"}}},
    }
    if not tls_ca:
        cfg = {
            "version": "1.5.21",
            "port": org.ca_port,
            "address": listen,
            "debug": False,
            "crlsizelimit": 512000,
            "tls": {"enabled": True, "clientauth": {"type": "noclientcert"}},
            **cfg,
            "cafiles": ["tlsca/fabric-ca-server-config.yaml"],
            "operations": {"listenAddress": f"{listen}:{org.ca_ops_port}",
                           "tls": {"enabled": False}},
            "metrics": {"provider": "disabled"},
        }
    return cfg


def write_ca_configs(layout: Layout, topo: Topology, listen: str = "127.0.0.1") -> None:
    for org in topo.all_orgs():
        home = layout.ca_home(org)
        (home / "tlsca").mkdir(parents=True, exist_ok=True)
        layout.org_dir(org).mkdir(parents=True, exist_ok=True)
        sec = _secrets(layout, org)
        if "registrar" not in sec:
            sec["registrar"] = secrets.token_hex(12)
            _save_secrets(layout, org, sec)
        header = (f"# fabric-ca-server configuration for {org.name} ({org.msp_id}), generated from "
                  f"the topology by network/fabric.\n")
        (home / "fabric-ca-server-config.yaml").write_text(
            header + yamltext.dump(_ca_config(org, topo, sec["registrar"], listen, False)))
        (home / "tlsca" / "fabric-ca-server-config.yaml").write_text(
            header + yamltext.dump(_ca_config(org, topo, sec["registrar"], listen, True)))


def _secrets(layout: Layout, org: Org) -> dict:
    f = layout.secrets_file(org)
    return json.loads(f.read_text()) if f.exists() else {}


def _save_secrets(layout: Layout, org: Org, sec: dict) -> None:
    f = layout.secrets_file(org)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(sec, indent=1, sort_keys=True))
    f.chmod(0o600)


class CaClient:
    def __init__(self, bins: Path, layout: Layout, org: Org):
        self.bin = str(bins / "fabric-ca-client")
        self.layout = layout
        self.org = org
        self.url = f"https://127.0.0.1:{org.ca_port}"
        self.tls = str(layout.ca_tls_cert(org))

    def run(self, args: list[str], home: Path) -> str:
        home.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([self.bin, *args, "-H", str(home), "--tls.certfiles", self.tls],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"fabric-ca-client {args[0]} failed ({self.org.name}):\n"
                               f"{p.stderr.strip()[-2000:]}")
        return p.stdout + p.stderr

    def enroll(self, user: str, secret: str, caname: str, out: Path, extra: list[str]) -> Path:
        """Enrolls into a scratch directory and returns it (caller normalises)."""
        scratch = Path(tempfile.mkdtemp(prefix="enroll-", dir=self.layout.root))
        url = f"https://{user}:{secret}@127.0.0.1:{self.org.ca_port}"
        self.run(["enroll", "-u", url, "--caname", caname, "-M", str(scratch / "msp"),
                  "--csr.names", f"C=CN,O={self.org.name}", *extra], scratch)
        return scratch

    def register(self, user: str, secret: str, id_type: str, attrs: str) -> None:
        args = ["register", "-u", self.url, "--caname", self.org.ca_name,
                "-M", str(self.layout.registrar(self.org) / "msp"),
                "--id.name", user, "--id.secret", secret, "--id.type", id_type,
                "--id.affiliation", self.org.name.lower()]
        if attrs:
            args += ["--id.attrs", attrs]
        try:
            self.run(args, self.layout.registrar(self.org))
        except RuntimeError as e:
            if "already registered" not in str(e):
                raise


def _one(d: Path, pattern: str) -> Path:
    found = sorted(d.glob(pattern))
    if len(found) != 1:
        raise RuntimeError(f"expected one {pattern} in {d}, found {len(found)}")
    return found[0]


def _install_msp(scratch: Path, out: Path, layout: Layout, org: Org) -> None:
    msp = scratch / "msp"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("signcerts", "keystore", "cacerts", "tlscacerts"):
        (tmp / sub).mkdir(parents=True)
    shutil.copy(msp / "signcerts" / "cert.pem", tmp / "signcerts" / "cert.pem")
    shutil.copy(_one(msp / "keystore", "*_sk"), tmp / "keystore" / "priv_sk")
    (tmp / "keystore" / "priv_sk").chmod(0o600)
    shutil.copy(_one(msp / "cacerts", "*.pem"), tmp / "cacerts" / "ca-cert.pem")
    shutil.copy(layout.org_tlsca_cert(org), tmp / "tlscacerts" / "tlsca-cert.pem")
    (tmp / "config.yaml").write_text(NODE_OUS)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    shutil.rmtree(scratch, ignore_errors=True)


def _install_tls(scratch: Path, out: Path, stem: str) -> None:
    msp = scratch / "msp"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(msp / "signcerts" / "cert.pem", out / f"{stem}.crt")
    shutil.copy(_one(msp / "keystore", "*_sk"), out / f"{stem}.key")
    (out / f"{stem}.key").chmod(0o600)
    shutil.copy(_one(msp / "tlscacerts", "*.pem"), out / "ca.crt")
    shutil.rmtree(scratch, ignore_errors=True)


def bootstrap_org(bins: Path, layout: Layout, topo: Topology, org: Org,
                  docker_hosts: bool = False) -> list[str]:
    """Registers and enrolls every identity of `org` that has no material yet. Idempotent.
    Returns what it created."""
    cli = CaClient(bins, layout, org)
    sec = _secrets(layout, org)
    done: list[str] = []

    # the registrar (CA bootstrap identity), and the org MSP with both CA roots
    if not (layout.registrar(org) / "msp" / "signcerts" / "cert.pem").exists():
        s = cli.enroll("registrar", sec["registrar"], org.ca_name, layout.registrar(org), [])
        shutil.rmtree(layout.registrar(org), ignore_errors=True)
        layout.registrar(org).mkdir(parents=True)
        shutil.move(str(s / "msp"), str(layout.registrar(org) / "msp"))
        shutil.rmtree(s, ignore_errors=True)
        done.append("registrar")
    if not layout.org_tlsca_cert(org).exists():
        msp = layout.org_msp(org)
        (msp / "cacerts").mkdir(parents=True, exist_ok=True)
        (msp / "tlscacerts").mkdir(parents=True, exist_ok=True)
        shutil.copy(layout.ca_home(org) / "ca-cert.pem", layout.org_ca_cert(org))
        shutil.copy(layout.ca_home(org) / "tlsca" / "ca-cert.pem", layout.org_tlsca_cert(org))
        (msp / "config.yaml").write_text(NODE_OUS)
        done.append("org msp")

    def secret_for(name: str) -> str:
        if name not in sec:
            sec[name] = secrets.token_hex(12)
            _save_secrets(layout, org, sec)
        return sec[name]

    for enroll_id, id_type, role in org.identities():
        attrs = f"{topo.role_attribute}={role}:ecert" if role else ""
        node = next((n for n in org.nodes if n.enroll_id == enroll_id), None)
        if node:
            base = layout.node_dir(node)
            msp_out, tls_out, tls_stem = base / "msp", base / "tls", "server"
            hosts = f"127.0.0.1,localhost,{node.name}"
        else:
            msp_out = layout.user_msp(org, enroll_id)
            tls_out = layout.user_tls(org, enroll_id) if enroll_id == "Admin" else None
            tls_stem = "client"
            hosts = f"127.0.0.1,localhost,{enroll_id}"
        need_msp = not (msp_out / "signcerts" / "cert.pem").exists()
        need_tls = tls_out is not None and not (tls_out / f"{tls_stem}.crt").exists()
        if not (need_msp or need_tls):
            continue
        pw = secret_for(enroll_id)
        cli.register(enroll_id, pw, id_type, attrs)
        if need_msp:
            _install_msp(cli.enroll(enroll_id, pw, org.ca_name, msp_out, []), msp_out, layout, org)
        if need_tls:
            s = cli.enroll(enroll_id, pw, org.tlsca_name, tls_out,
                           ["--enrollment.profile", "tls", "--csr.hosts", hosts])
            _install_tls(s, tls_out, tls_stem)
        done.append(enroll_id)

    # the org's chaincode server (CCaaS) TLS: a server certificate with the IP SAN the peers
    # dial, and the client certificate the peers present (mutual TLS)
    if not org.is_orderer:
        out = layout.cc_tls(org)
        if not (out / "client.crt").exists():
            pw = secret_for("chaincode")
            cli.register("chaincode", pw, "client", "")
            hosts = f"127.0.0.1,localhost,{org.cc_host}"
            _install_tls(cli.enroll("chaincode", pw, org.tlsca_name, out,
                                    ["--enrollment.profile", "tls", "--csr.hosts", hosts]),
                         out, "server")
            _install_tls(cli.enroll("chaincode", pw, org.tlsca_name, out,
                                    ["--enrollment.profile", "tls", "--csr.hosts", hosts]),
                         out, "client")
            done.append("chaincode tls")
    return done


def enroll_extra_user(bins: Path, layout: Layout, topo: Topology, org: Org, user: str,
                      role: str) -> Path:
    """Registers and enrolls one more client identity with an elicense role."""
    cli = CaClient(bins, layout, org)
    sec = _secrets(layout, org)
    if user not in sec:
        sec[user] = secrets.token_hex(12)
        _save_secrets(layout, org, sec)
    cli.register(user, sec[user], "client", f"{topo.role_attribute}={role}:ecert")
    out = layout.user_msp(org, user)
    _install_msp(cli.enroll(user, sec[user], org.ca_name, out, []), out, layout, org)
    return out
