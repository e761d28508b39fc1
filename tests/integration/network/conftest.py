"""Fixtures: fake containers, and a NetworkManager on an isolated state root whose bridges,
veths, rules and DNS server are all torn down, and checked gone, after each test."""
import os
import time

import pytest

from hutch.network import iptables
from hutch.network.manager import NetworkManager
from hutch.paths import Paths
from net_helpers import FakeContainer, links


@pytest.fixture
def containers():
    made = []

    def make():
        c = FakeContainer()
        made.append(c)
        return c
    yield make
    for c in made:
        c.kill()


@pytest.fixture
def nm(tmp_path):
    m = NetworkManager(Paths.from_root(str(tmp_path / "root")))
    veths = []
    plumb = m._plumb

    def recording_plumb(rec, ep, default_route):
        veths.append(ep["veth"])
        return plumb(rec, ep, default_route)
    m._plumb = recording_plumb
    m.veths = veths
    yield m
    tags = ["hutch-net:" + r["Id"][:12] for r in m._records()]
    bridges = [m.bridge_of(r) for r in m._records() if r["Driver"] == "bridge"]
    cids = [cid for r in m._records() for cid in m._endpoints(r["Id"])]
    m.destroy_all()
    deadline = time.monotonic() + 5
    from hutch.network import dns
    while os.path.exists(dns.sock_path(m.paths)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(dns.sock_path(m.paths)), "embedded DNS server still running"
    saved = iptables.save()
    for tag in tags + ["hutch:" + c for c in cids]:
        assert tag not in saved
    assert links() & set(bridges + veths) == set(), "links leaked"
