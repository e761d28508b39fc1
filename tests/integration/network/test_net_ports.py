"""Published ports: DNAT from the host's loopback and from another host, allocation errors."""
import json
import os
import socket

import pytest

from hutch.network import iptables
from hutch.network.errors import PortAllocated
from hutch.network.netlink import Netlink
from net_helpers import FakeContainer, fetch, serve_once

pytestmark = pytest.mark.root


def free_port(kind=socket.SOCK_STREAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listen(c: FakeContainer, port: int) -> socket.socket:
    s = c.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    return s


def test_published_port_reached_through_loopback(nm, containers):
    c = containers()
    hp = free_port()
    s = nm.connect(c.cid, c.netns, publish=[f"{hp}:8080"])
    assert s["Ports"] == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(hp)}]}
    t = serve_once(listen(c, 8080), b"published")
    assert fetch(socket.socket(), ("127.0.0.1", hp)) == b"published"
    t.join(5)
    saved = iptables.save()
    assert saved.count(f"hutch:{c.cid}") == 2          # DNAT, ACCEPT
    nm.disconnect(c.cid)
    assert f"hutch:{c.cid}" not in iptables.save()
    with open(os.path.join(nm.dir, "ports.json")) as f:
        assert json.load(f) == {}


def test_published_port_reached_from_another_host(nm, containers):
    """Another "host": a netns joined to this one by a veth pair with its own /30."""
    c, other = containers(), containers()
    hp = free_port()
    nm.connect(c.cid, c.netns, publish=[f"{hp}:80"])
    here, there = "hto" + os.urandom(4).hex()[:7], "eth0"
    third = os.urandom(1)[0] % 250 + 1
    host_ip, other_ip = f"10.253.{third}.1", f"10.253.{third}.2"
    fd = os.open(other.netns, os.O_RDONLY)
    with Netlink() as nl:
        try:
            nl.add_veth(here, there, peer_netns_fd=fd)
            os.close(fd)
            nl.add_address(nl.index(here), f"{host_ip}/30")
            with Netlink(other.netns) as inner:
                idx = inner.index(there)
                inner.add_address(idx, f"{other_ip}/30")
                inner.set_link(idx, up=True)
            t = serve_once(listen(c, 80), b"remote-ok")
            assert fetch(other.socket(), (host_ip, hp)) == b"remote-ok"
            t.join(5)
        finally:
            nl.delete_link(here)


def test_udp_port(nm, containers):
    c = containers()
    hp = free_port(socket.SOCK_DGRAM)
    s = nm.connect(c.cid, c.netns, publish=[f"127.0.0.1:{hp}:5353/udp"])
    assert s["Ports"] == {"5353/udp": [{"HostIp": "127.0.0.1", "HostPort": str(hp)}]}
    server = c.socket(socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", 5353))
    server.settimeout(5)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        client.sendto(b"ping", ("127.0.0.1", hp))
        data, peer = server.recvfrom(100)
        assert data == b"ping"
        server.sendto(b"pong", peer)
        assert client.recvfrom(100)[0] == b"pong"
    finally:
        server.close()
        client.close()


def test_port_already_allocated_by_a_container(nm, containers):
    a, b = containers(), containers()
    hp = free_port()
    nm.connect(a.cid, a.netns, publish=[f"{hp}:80"], name="first")
    with pytest.raises(PortAllocated) as e:
        nm.connect(b.cid, b.netns, publish=[f"{hp}:80"], name="second")
    assert str(e.value).startswith("driver failed programming external connectivity on endpoint second (")
    assert str(e.value).endswith(f"Bind for 0.0.0.0:{hp} failed: port is already allocated")
    assert b.cid not in nm.inspect("bridge")["Containers"]
    assert f"hutch:{b.cid}" not in iptables.save()


def test_port_held_by_a_host_process(nm, containers):
    c = containers()
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    try:
        with pytest.raises(PortAllocated, match="port is already allocated"):
            nm.connect(c.cid, c.netns, publish=[f"{holder.getsockname()[1]}:80"])
    finally:
        holder.close()


def test_publish_all_exposed_ports(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns, publish={}, publish_all=True, exposed=["80/tcp", "53/udp"])
    assert set(s["Ports"]) == {"80/tcp", "53/udp"}
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    ports = {int(v[0]["HostPort"]) for v in s["Ports"].values()}
    assert all(lo <= p <= hi for p in ports)
    t = serve_once(listen(c, 80), b"dash-P")
    assert fetch(socket.socket(), ("127.0.0.1", int(s["Ports"]["80/tcp"][0]["HostPort"]))) == b"dash-P"
    t.join(5)


def test_exposed_but_not_published_is_null(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns, exposed=["80/tcp"])
    assert s["Ports"] == {"80/tcp": None}


def test_published_port_through_the_host_from_containers(nm, containers):
    """Hairpin: a neighbour, and the container itself, reach it via the host's address."""
    a, b = containers(), containers()
    hp = free_port()
    sa = nm.connect(a.cid, a.netns, publish=[f"{hp}:80"])
    nm.connect(b.cid, b.netns)
    gateway = sa["Gateway"]
    t = serve_once(listen(a, 80), b"hairpin")
    assert fetch(b.socket(), (gateway, hp)) == b"hairpin"
    t.join(5)
    t = serve_once(listen(a, 80), b"self")
    assert fetch(a.socket(), (gateway, hp)) == b"self"
    t.join(5)


def test_port_held_by_another_root(nm, containers, tmp_path):
    from hutch.network.manager import NetworkManager
    from hutch.paths import Paths
    other = NetworkManager(Paths.from_root(str(tmp_path / "other-root")))
    a, b = containers(), containers()
    hp = free_port()
    try:
        other.connect(a.cid, a.netns, publish=[f"{hp}:80"])
        with pytest.raises(PortAllocated, match=f"Bind for 0.0.0.0:{hp} failed: port is already allocated"):
            nm.connect(b.cid, b.netns, publish=[f"{hp}:80"])
    finally:
        other.destroy_all()
