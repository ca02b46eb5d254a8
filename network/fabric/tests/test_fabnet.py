"""Unit tests of network.sh's generators (no Fabric needed).

    cd network/fabric && PYTHONPATH=. python3 -m unittest discover -s tests
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import unittest
from pathlib import Path

from fabnet import compose, configs, crypto, deploy, topology, yamltext

REPO = Path(__file__).resolve().parents[3]
TOPOLOGY = REPO / "fixtures" / "topology.toml"

CORE_SAMPLE = """peer:
  id: jdoe
  listenAddress: 0.0.0.0:7051
  # chaincodeListenAddress: 0.0.0.0:7052
  address: 0.0.0.0:7051
  gossip:
    bootstrap: 127.0.0.1:7051
    externalEndpoint:
  tls:
    enabled: false
    clientRootCAs:
      files:
        - tls/ca.crt
    clientKey:
      file:
vm:
  endpoint: unix:///var/run/docker.sock
chaincode:
  externalBuilders:
    - name: ccaas_builder
      path: /opt/hyperledger/ccaas_builder
      propagateEnvironment:
        - CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG
  installTimeout: 300s
"""


class YamlTextTest(unittest.TestCase):
    def test_set_replaces_scalars_lists_and_inserts_missing_keys(self):
        out = yamltext.set_values(CORE_SAMPLE, {
            "peer.id": "peer0.x",
            "peer.chaincodeListenAddress": "127.0.0.1:7111",
            "peer.gossip.externalEndpoint": "127.0.0.1:7110",
            "peer.tls.clientRootCAs.files": ["/a/ca.crt", "/b/ca.crt"],
            "vm.endpoint": "",
        })
        self.assertIn('  id: "peer0.x"\n', out)
        self.assertIn('  chaincodeListenAddress: "127.0.0.1:7111"\n', out)
        self.assertIn('    externalEndpoint: "127.0.0.1:7110"\n', out)
        self.assertIn('      files:\n        - "/a/ca.crt"\n        - "/b/ca.crt"\n    clientKey:',
                      out)
        self.assertNotIn("tls/ca.crt", out)
        self.assertIn('  endpoint: ""\n', out)
        # untouched parts stay as they were
        self.assertIn("  installTimeout: 300s\n", out)
        self.assertIn("      propagateEnvironment:\n", out)

    def test_missing_parent_is_an_error(self):
        with self.assertRaises(KeyError):
            yamltext.set_values(CORE_SAMPLE, {"nosuch.section.key": 1})

    def test_dump_quotes_strings_and_nests(self):
        text = yamltext.dump({"A": {"B": [{"Host": "h", "Port": 1}], "C": "OR('x.peer')",
                                "D": True, "E": []}})
        self.assertEqual(text, 'A:\n  B:\n    - Host: "h"\n      Port: 1\n'
                               '  C: "OR(\'x.peer\')"\n  D: true\n  E: []\n')


class TopologyTest(unittest.TestCase):
    def test_default_topology_and_port_scheme(self):
        t = topology.load(TOPOLOGY)
        self.assertEqual(len(t.orgs), 7)
        self.assertEqual(len(t.orderers()), 3)
        self.assertEqual(t.port_base, 7000)
        ps = t.org("PublicSecurity")
        self.assertEqual((ps.ca_port, ps.cc_port, ps.peers[0].port), (7100, 7105, 7110))
        self.assertEqual(t.orderers()[2].port, 7030)
        self.assertEqual(t.orderers()[2].port2, 7031)
        ports = t.ports()
        self.assertEqual(len(ports), len(set(ports)), "ports are unique")

    def test_reduced_by_channels_keeps_port_positions(self):
        t = topology.load(TOPOLOGY, channels="police-service", port_base=20000)
        self.assertEqual([o.name for o in t.orgs], ["PublicSecurity", "ServiceCentre", "Regulator"])
        self.assertEqual([c.name for c in t.channels], ["police-service"])
        self.assertEqual(t.org("Regulator").peers[0].port, 20710)

    def test_reduced_by_orgs_keeps_only_complete_channels(self):
        t = topology.load(TOPOLOGY, orgs="MarketRegulation,Taxation,Regulator,ServiceCentre")
        self.assertEqual(sorted(c.name for c in t.channels), ["market-service", "market-tax"])

    def test_unknown_selection_is_an_error(self):
        with self.assertRaises(topology.TopologyError):
            topology.load(TOPOLOGY, channels="nope")
        with self.assertRaises(topology.TopologyError):
            topology.load(TOPOLOGY, orgs="Nobody")

    def test_any_member_peer_policy(self):
        t = topology.load(TOPOLOGY, channels="market-tax")
        self.assertEqual(t.chaincode.policy_for(t.channels[0]),
                         "OR('MarketRegulationMSP.peer','TaxationMSP.peer','RegulatorMSP.peer')")

    def test_identities_carry_roles(self):
        t = topology.load(TOPOLOGY)
        ids = {i[0]: i for i in t.org("ServiceCentre").identities()}
        self.assertEqual(ids["Admin"], ("Admin", "admin", "admin"))
        self.assertEqual(ids["holder1"], ("holder1", "client", "holder"))
        self.assertEqual(ids["peer0"], ("peer0", "peer", ""))


class GeneratorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.data = Path(self.tmp.name)
        self.topo = topology.load(TOPOLOGY, channels="police-service")
        self.layout = crypto.Layout(self.data)

    def tearDown(self):
        self.tmp.cleanup()

    def test_configtx_has_raft_consenters_policies_and_anchor_peers(self):
        text = configs.configtx(self.topo, self.layout,
                                configs.Addressing("native", self.layout))
        self.assertIn("  police-service:\n", text)
        # 3 Raft consenters and 3 anchor peers
        self.assertEqual(text.count('- Host: "127.0.0.1"'), 6)
        self.assertEqual(text.count("ClientTLSCert:"), 3)
        for needle in ('OrdererType: "etcdraft"', "V3_0: true", "V2_0: true", "V2_5: true",
                       'Rule: "MAJORITY Endorsement"', 'BatchTimeout: "250ms"',
                       'MaxMessageCount: 500', 'AbsoluteMaxBytes: "10 MB"',
                       'Rule: "OR(\'RegulatorMSP.peer\')"', "AnchorPeers:",
                       '"127.0.0.1:7010"'):
            self.assertIn(needle, text)

    def test_ca_config_declares_both_cas_and_the_registrar(self):
        crypto.write_ca_configs(self.layout, self.topo)
        org = self.topo.org("PublicSecurity")
        main = (self.layout.ca_home(org) / "fabric-ca-server-config.yaml").read_text()
        tls = (self.layout.ca_home(org) / "tlsca" / "fabric-ca-server-config.yaml").read_text()
        self.assertIn('name: "ca.police.elicense.gov"', main)
        self.assertIn("port: 7100", main)
        self.assertIn('address: "127.0.0.1"', main)
        self.assertIn('  - "tlsca/fabric-ca-server-config.yaml"', main)
        self.assertIn('name: "tlsca.police.elicense.gov"', tls)
        self.assertIn('datasource: "../fabric-ca-server.db"', tls)
        self.assertIn('name: "registrar"', main)

    def test_compose_matches_selection(self):
        doc = compose.services(self.topo, self.layout)
        self.assertIn("peer0.police.elicense.gov", doc)
        self.assertNotIn("peer0.civil.elicense.gov", doc)
        self.assertEqual(doc["orderer0.orderer.elicense.gov"]["image"],
                         "hyperledger/fabric-orderer:3.1.5")
        self.assertEqual(doc["peer0.police.elicense.gov"]["ports"][0], "127.0.0.1:7110:7110")


class PackageTest(unittest.TestCase):
    def test_tar_gz_is_deterministic_and_readable(self):
        files = {"metadata.json": b'{"type":"ccaas","label":"x_1"}', "code.tar.gz": b"abc"}
        a, b = deploy._tar_gz(files), deploy._tar_gz(dict(files))
        self.assertEqual(a, b)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(a))) as tar:
            self.assertEqual(tar.getnames(), ["metadata.json", "code.tar.gz"])
            meta = json.loads(tar.extractfile("metadata.json").read())
        self.assertEqual(meta["type"], "ccaas")


if __name__ == "__main__":
    unittest.main()


class WatchdogTest(unittest.TestCase):
    """`up --watch-pid`: the network goes down once the process that started it is gone."""

    def test_wait_gone_returns_only_after_the_owner_exits(self):
        import subprocess
        import threading

        from fabnet import proc

        owner = subprocess.Popen(["sleep", "60"])
        try:
            st = proc.start_time(owner.pid)
            self.assertIsNotNone(st)
            done = threading.Event()
            t = threading.Thread(target=lambda: (proc.wait_gone(owner.pid, st, 0.05), done.set()))
            t.start()
            self.assertFalse(done.wait(0.5), "the owner is still running")
            owner.kill()
            owner.wait()
            self.assertTrue(done.wait(10), "wait_gone noticed the owner's exit")
            t.join()
        finally:
            owner.kill()
        # a PID now used by another process (other start time) counts as gone
        proc.wait_gone(os.getpid(), "0", 0.05)

    def test_watchdog_down_stops_the_nodes_and_forgets_itself(self):
        from fabnet import network, proc

        with tempfile.TemporaryDirectory() as d:
            data = Path(d)
            topo = topology.load(TOPOLOGY, channels="police-service")
            net = network.Network(data, topo, "native", None, REPO)
            node = net.procs.start("peer0.test", ["sleep", "60"], dict(os.environ))
            # this process plays the watchdog that brings the network down
            net.procs.pid_dir.mkdir(parents=True, exist_ok=True)
            net.procs.pid_file(network.WATCHDOG).write_text(json.dumps({
                "pid": os.getpid(), "start_time": proc.start_time(os.getpid()),
                "role": "watchdog"}))
            self.assertEqual(net.procs.alive("peer0.test"), node)
            left = net.down(purge=False)
            self.assertEqual(left, [])
            self.assertIsNone(net.procs.alive("peer0.test"))
            self.assertEqual(net.procs.names(), [], "no PID file is left, the watchdog's neither")
