"""The default bridge network: veth, address, route, MTU, traffic between containers and to the host."""
import ipaddress
import os
import socket

import pytest

from net_helpers import fetch, links, serve_once
from hutch.network.manager import host_mtu
from hutch.network.netlink import Netlink

pytestmark = pytest.mark.root


def test_connect_gives_docker_settings_and_wires_eth0(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns, name="web")
    net = ipaddress.ip_network(nm.inspect("bridge")["IPAM"]["Config"][0]["Subnet"])
    ip = ipaddress.ip_address(s["IPAddress"])
    assert ip in net and s["IPPrefixLen"] == net.prefixlen
    assert s["Gateway"] == str(net.network_address + 1)
    assert s["MacAddress"] == "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)
    b = s["Networks"]["bridge"]
    assert b["IPAddress"] == s["IPAddress"] and b["EndpointID"] == s["EndpointID"]
    assert b["NetworkID"] == nm.find("bridge")["Id"] and b["Aliases"] is None
    assert s["SandboxKey"] == c.netns and s["Ports"] == {}

    with Netlink(c.netns) as inner:
        by_name = {l["name"]: l for l in inner.links()}
        assert set(by_name) == {"lo", "eth0"}
        assert by_name["eth0"]["address"] == s["MacAddress"]
        assert by_name["eth0"]["mtu"] == host_mtu()
        assert all(l["flags"] & 1 for l in by_name.values())          # both up
        assert (by_name["eth0"]["index"], f"{ip}/{net.prefixlen}") in inner.addresses()
        assert ("0.0.0.0/0", by_name["eth0"]["index"]) in inner.routes()
    veth = nm.veths[0]
    assert veth.startswith("veth") and len(veth) == 11
    with Netlink() as nl:
        assert nl.link(veth)["master"] == nl.index(nm.bridge_of(nm.find("bridge")))

    nm.disconnect(c.cid)
    assert veth not in links()
    assert nm.inspect("bridge")["Containers"] == {}


def test_container_to_container_ping_and_tcp(nm, containers):
    a, b = containers(), containers()
    sa = nm.connect(a.cid, a.netns, name="a")
    sb = nm.connect(b.cid, b.netns, name="b")
    assert sa["IPAddress"] != sb["IPAddress"]
    assert a.ping(sb["IPAddress"]) and b.ping(sa["IPAddress"])
    listener = a.socket()
    listener.bind(("0.0.0.0", 5000))
    listener.listen(1)
    t = serve_once(listener, b"from-a")
    assert fetch(b.socket(), (sa["IPAddress"], 5000)) == b"from-a"
    t.join(5)
    assert set(nm.inspect("bridge")["Containers"]) == {a.cid, b.cid}


def test_container_to_host(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns)
    assert c.ping(s["Gateway"])
    host = socket.socket()
    host.bind((s["Gateway"], 0))
    host.listen(1)
    port = host.getsockname()[1]
    t = serve_once(host, b"from-host")
    assert fetch(c.socket(), (s["Gateway"], port)) == b"from-host"
    t.join(5)


def test_leases_are_reused_and_unique(nm, containers):
    cs = [containers() for _ in range(3)]
    ips = [nm.connect(c.cid, c.netns)["IPAddress"] for c in cs]
    assert len(set(ips)) == 3
    nm.disconnect(cs[1].cid)
    c4 = containers()
    assert nm.connect(c4.cid, c4.netns)["IPAddress"] == ips[1]


def test_ip_on_default_bridge_is_refused(nm, containers):
    from hutch.network.errors import NetworkError
    c = containers()
    with pytest.raises(NetworkError, match="user specified IP address is supported on user "
                                           "defined networks only"):
        nm.connect(c.cid, c.netns, ip="172.17.0.9")
    with pytest.raises(NetworkError, match="network-scoped alias is supported only for containers "
                                           "in user defined networks"):
        nm.connect(c.cid, c.netns, aliases=["web"])
    assert nm.inspect("bridge")["Containers"] == {}


def test_mac_address_flag(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns, mac="02:42:de:ad:be:ef")
    assert s["MacAddress"] == "02:42:de:ad:be:ef"
    with Netlink(c.netns) as inner:
        assert inner.link("eth0")["address"] == "02:42:de:ad:be:ef"


def test_bridge_setup_turns_forwarding_on_and_masquerades(nm, containers):
    from hutch.network import iptables
    c = containers()
    nm.connect(c.cid, c.netns)
    rec = nm.find("bridge")
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == "1"
    with open(f"/proc/sys/net/ipv4/conf/{nm.bridge_of(rec)}/route_localnet") as f:
        assert f.read().strip() == "1"
    saved = iptables.save()
    subnet = rec["IPAM"]["Config"][0]["Subnet"]
    assert f"-A HUTCH-POSTROUTING -s {subnet} ! -o {nm.bridge_of(rec)}" in saved
    # A test root's default bridge lives only while containers use it.
    nm.disconnect(c.cid)
    assert nm.bridge_of(rec) not in links()
    assert "hutch-net:" + rec["Id"][:12] not in iptables.save()


def test_connect_failure_rolls_back(nm, containers, tmp_path):
    c = containers()
    bogus = str(tmp_path / "not-a-netns")
    open(bogus, "w").close()
    with pytest.raises(OSError):
        nm.connect(c.cid, bogus)
    assert nm.inspect("bridge")["Containers"] == {}
    assert not (links() & set(nm.veths))
    assert os.path.exists(c.netns)
