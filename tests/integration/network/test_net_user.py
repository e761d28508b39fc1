"""User-defined networks: their own bridge, names and aliases through the embedded DNS,
forwarding to upstream resolvers, isolation from other networks."""
import os
import socket
import threading

import pytest

from hutch.network import dns
from hutch.network.errors import NetworkError
from hutch.network.netlink import Netlink
from net_helpers import fetch, links, serve_once

pytestmark = pytest.mark.root


def subnet() -> str:
    """A /24 unlikely to be taken by a parallel test (the manager refuses overlaps anyway)."""
    b = os.urandom(2)
    return f"10.{200 + b[0] % 50}.{b[1]}.0/24"


def resolve(c, name: str) -> list[str]:
    r = c.run("busybox", "nslookup", name, "127.0.0.11")
    return [l.split()[-1] for l in r.stdout.splitlines()
            if l.startswith("Address") and "#" not in l and ":53" not in l]


class FakeUpstream:
    """A resolver on a random 127.x.y.z:53 of the host that knows one name."""

    def __init__(self, name: str, ip: str):
        b = os.urandom(3)
        self.addr = f"127.{b[0] % 200 + 20}.{b[1]}.{b[2] % 250 + 1}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.addr, 53))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.asked: list[str] = []
        self.thread = threading.Thread(target=self.serve, args=(name, ip), daemon=True)
        self.thread.start()

    def serve(self, name, ip):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            q = dns.parse_query(data)
            if not q:
                continue
            self.asked.append(q[2])
            if q[2] == name:
                self.sock.sendto(dns.answer(data, q[4], [ip] if q[3] == 1 else []), peer)
            else:
                self.sock.sendto(dns.answer(data, q[4], [], rcode=3), peer)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def upstream():
    u = FakeUpstream("example.test", "10.9.9.9")
    yield u
    u.close()


def test_create_network_makes_its_bridge(nm):
    info = nm.create_network("appnet", subnet=subnet(), labels={"team": "a"})
    bridge = "br-" + info["Id"][:12]
    assert bridge in links()
    cfg = info["IPAM"]["Config"][0]
    with Netlink() as nl:
        assert (nl.index(bridge), f"{cfg['Gateway']}/24") in nl.addresses()
    assert info["Driver"] == "bridge" and info["Labels"] == {"team": "a"}
    with pytest.raises(NetworkError, match="network with name appnet already exists"):
        nm.create_network("appnet")
    with pytest.raises(NetworkError, match="Pool overlaps with other one on this address space"):
        nm.create_network("other", subnet=cfg["Subnet"])
    nm.remove_network("appnet")
    assert bridge not in links()


def test_names_and_aliases_resolve_on_a_user_network(nm, containers, upstream):
    nm.create_network("app", subnet=subnet())
    web, client = containers(), containers()
    sw = nm.connect(web.cid, web.netns, "app", name="web", aliases=["www", "frontend"],
                    dns=[upstream.addr])
    sc = nm.connect(client.cid, client.netns, "app", name="client", dns=[upstream.addr])
    ip = sw["Networks"]["app"]["IPAddress"]
    assert sw["IPAddress"] == ""                       # top-level fields are the default bridge's
    assert sw["Networks"]["app"]["Aliases"] == [web.cid[:12], "www", "frontend"]
    for name in ("web", "www", "frontend", web.cid[:12], "WEB"):
        assert resolve(client, name) == [ip], name
    assert resolve(web, "client") == [sc["Networks"]["app"]["IPAddress"]]
    assert "name = web.app" in client.run("busybox", "nslookup", ip, "127.0.0.11").stdout
    # By name, real traffic.
    listener = web.socket()
    listener.bind(("0.0.0.0", 8000))
    listener.listen(1)
    t = serve_once(listener, b"by-name")
    assert fetch(client.socket(), (resolve(client, "www")[0], 8000)) == b"by-name"
    t.join(5)
    # Names the network does not own go upstream.
    assert resolve(client, "example.test") == ["10.9.9.9"]
    assert "example.test" in upstream.asked
    # Gone from DNS once disconnected.
    nm.disconnect(web.cid, "app")
    assert resolve(client, "web") == []


def test_networks_are_isolated(nm, containers, upstream):
    nm.create_network("red", subnet=subnet())
    nm.create_network("blue", subnet=subnet())
    r1, r2, b1 = containers(), containers(), containers()
    s1 = nm.connect(r1.cid, r1.netns, "red", name="r1", dns=[upstream.addr])
    nm.connect(r2.cid, r2.netns, "red", name="r2", dns=[upstream.addr])
    sb = nm.connect(b1.cid, b1.netns, "blue", name="b1", dns=[upstream.addr])
    red_ip, blue_ip = s1["Networks"]["red"]["IPAddress"], sb["Networks"]["blue"]["IPAddress"]
    assert r2.ping(red_ip)
    assert not b1.ping(red_ip)
    assert not r1.ping(blue_ip)
    assert resolve(b1, "r1") == []                      # not its network's name
    assert "r1" in upstream.asked                       # so it went upstream (NXDOMAIN)
    # Both still reach the outside of their networks: the host, through their gateways.
    assert b1.ping(sb["Networks"]["blue"]["Gateway"])


def test_container_on_two_networks(nm, containers, upstream):
    nm.create_network("front", subnet=subnet())
    nm.create_network("back", subnet=subnet())
    a, b, c = containers(), containers(), containers()
    sa = nm.connect(a.cid, a.netns, "front", name="a", dns=[upstream.addr])
    sc = nm.connect(c.cid, c.netns, "back", name="c", dns=[upstream.addr])
    nm.connect(b.cid, b.netns, "front", name="b", dns=[upstream.addr])
    sb = nm.connect(b.cid, b.netns, "back", name="b", dns=[upstream.addr])
    assert set(sb["Networks"]) == {"front", "back"}
    with Netlink(b.netns) as inner:
        assert {l["name"] for l in inner.links()} == {"lo", "eth0", "eth1"}
    assert b.ping(sa["Networks"]["front"]["IPAddress"]) and b.ping(sc["Networks"]["back"]["IPAddress"])
    assert resolve(b, "a") and resolve(b, "c")
    nm.disconnect(b.cid, "back")
    assert set(nm.settings(b.cid)["Networks"]) == {"front"}
    assert b.ping(sa["Networks"]["front"]["IPAddress"])
    with pytest.raises(NetworkError, match=f"container {b.cid} is not connected to network back"):
        nm.disconnect(b.cid, "back")


def test_static_ip_and_errors(nm, containers):
    net = subnet()
    nm.create_network("fixed", subnet=net, gateway=net.replace(".0/24", ".254"))
    a, b = containers(), containers()
    wanted = net.replace(".0/24", ".77")
    s = nm.connect(a.cid, a.netns, "fixed", ip=wanted)
    n = s["Networks"]["fixed"]
    assert n["IPAddress"] == wanted and n["Gateway"] == net.replace(".0/24", ".254")
    assert n["IPAMConfig"] == {"IPv4Address": wanted}
    with pytest.raises(NetworkError, match="Address already in use"):
        nm.connect(b.cid, b.netns, "fixed", ip=wanted)
    with pytest.raises(NetworkError, match="does not belong to any of this network's subnets"):
        nm.connect(b.cid, b.netns, "fixed", ip="192.0.2.200")
    with pytest.raises(NetworkError, match=f"endpoint with name {a.cid[:12]} already exists in network fixed"):
        nm.connect(a.cid, a.netns, "fixed")
    nm.create_network("auto")
    with pytest.raises(NetworkError, match="user configured subnets"):
        nm.connect(b.cid, b.netns, "auto", ip="10.0.0.5")


def test_remove_in_use_is_refused_and_prune_keeps_it(nm, containers):
    info = nm.create_network("busy", subnet=subnet())
    nm.create_network("idle", subnet=subnet())
    c = containers()
    nm.connect(c.cid, c.netns, "busy", name="c1")
    with pytest.raises(NetworkError, match=f"error while removing network: network busy id "
                                           f"{info['Id']} has active endpoints"):
        nm.remove_network("busy")
    assert nm.prune() == ["idle"]
    assert c.cid in nm.inspect("busy")["Containers"]
    nm.disconnect(c.cid)
    assert nm.prune() == ["busy"]


def test_resolv_conf_points_at_embedded_dns(nm, containers, tmp_path):
    nm.create_network("dnsnet", subnet=subnet())
    c = containers()
    s = nm.connect(c.cid, c.netns, "dnsnet", name="c1")
    files = nm.etc_files(c.cid, "c1host", s, directory=str(tmp_path / "etc"))
    with open(files["/etc/resolv.conf"]) as f:
        text = f.read()
    assert "nameserver 127.0.0.11\n" in text and "options ndots:0" in text
    with open(files["/etc/hosts"]) as f:
        assert f.read().endswith(f"{s['Networks']['dnsnet']['IPAddress']}\tc1host\n")


def test_dns_server_killed_is_revived_by_reconcile(nm, containers, upstream):
    import signal
    import time
    nm.create_network("phoenix", subnet=subnet())
    a, b = containers(), containers()
    sa = nm.connect(a.cid, a.netns, "phoenix", name="a", dns=[upstream.addr])
    nm.connect(b.cid, b.netns, "phoenix", name="b", dns=[upstream.addr])
    assert resolve(b, "a") == [sa["Networks"]["phoenix"]["IPAddress"]]
    with open(dns.sock_path(nm.paths) + ".lock") as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while dns.alive(nm.paths) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dns.alive(nm.paths)
    assert nm.reconcile([a.cid, b.cid]) == []
    assert dns.alive(nm.paths)
    assert resolve(b, "a") == [sa["Networks"]["phoenix"]["IPAddress"]]
    assert resolve(a, "b")


def test_ip_range_aux_addresses_and_options(nm, containers):
    net = subnet()
    base = net.rsplit(".", 1)[0]
    name = "hb" + os.urandom(4).hex()
    info = nm.create_network("ranged", subnet=net, ip_range=f"{base}.128/25",
                             aux_addresses={"printer": f"{base}.128"},
                             options={"com.docker.network.bridge.name": name,
                                      "com.docker.network.driver.mtu": "1280",
                                      "com.docker.network.bridge.enable_icc": "false"})
    assert info["IPAM"]["Config"] == [{"Subnet": net, "IPRange": f"{base}.128/25",
                                       "Gateway": f"{base}.1",
                                       "AuxiliaryAddresses": {"printer": f"{base}.128"}}]
    assert name in links()
    a, b = containers(), containers()
    sa = nm.connect(a.cid, a.netns, "ranged")
    sb = nm.connect(b.cid, b.netns, "ranged")
    assert sa["Networks"]["ranged"]["IPAddress"] == f"{base}.129"     # .128 is reserved
    with Netlink(a.netns) as inner:
        assert inner.link("eth0")["mtu"] == 1280
    assert not a.ping(sb["Networks"]["ranged"]["IPAddress"])          # enable_icc=false
    assert a.ping(sa["Networks"]["ranged"]["Gateway"])
    with pytest.raises(NetworkError, match="no matching subnet for range 10.0.0.0/24"):
        nm.create_network("bad", subnet=subnet(), ip_range="10.0.0.0/24")
    with pytest.raises(NetworkError, match="failed to parse com.docker.network.bridge.enable_icc"):
        nm.create_network("bad", options={"com.docker.network.bridge.enable_icc": "maybe"})


def test_internal_network_has_no_way_out(nm, containers):
    nm.create_network("inside", subnet=subnet(), internal=True)
    nm.create_network("outside", subnet=subnet())
    a, b, c = containers(), containers(), containers()
    sa = nm.connect(a.cid, a.netns, "inside", publish=["80"])
    sb = nm.connect(b.cid, b.netns, "inside")
    sc = nm.connect(c.cid, c.netns, "outside")
    assert nm.inspect("inside")["Internal"] is True
    assert sa["Ports"] == {"80/tcp": None}                             # nothing published
    assert a.ping(sb["Networks"]["inside"]["IPAddress"])
    assert not a.ping(sc["Networks"]["outside"]["IPAddress"])
    with Netlink(a.netns) as inner:
        assert all(dst != "0.0.0.0/0" for dst, _ in inner.routes())    # no default route
    # Joining a network that leads out gives the default route through it.
    nm.connect(a.cid, a.netns, "outside")
    with Netlink(a.netns) as inner:
        assert ("0.0.0.0/0", inner.index("eth1")) in inner.routes()
