"""-p parsing as Docker's nat.ParsePortSpec, host port choice, the Ports field (no root)."""
import pytest

from hutch.network import ports
from hutch.network.errors import NetworkError, PortAllocated


@pytest.mark.parametrize("spec,expected", [
    ("80", [("80/tcp", "", "")]),
    ("8080:80", [("80/tcp", "", "8080")]),
    ("127.0.0.1:8080:80/udp", [("80/udp", "127.0.0.1", "8080")]),
    ("127.0.0.1::80", [("80/tcp", "127.0.0.1", "")]),
    ("8000-8001:80-81", [("80/tcp", "", "8000"), ("81/tcp", "", "8001")]),
    ("8000-8010:80", [("80/tcp", "", "8000-8010")]),
    ("[::1]:8080:80", [("80/tcp", "::1", "8080")]),
    ("53/UDP", [("53/udp", "", "")]),
])
def test_parse_spec(spec, expected):
    got = [(p, b["HostIp"], b["HostPort"]) for p, b in ports.parse_spec(spec)]
    assert got == expected


@pytest.mark.parametrize("spec,message", [
    ("80/icmp", "Invalid proto: icmp"),
    ("x:80", "Invalid hostPort: x"),
    ("8080:http", "Invalid containerPort: http"),
    ("1.2.3:8080:80", "Invalid ip address: 1.2.3"),
    ("8000-8002:80-81", "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("1:2:3:4", "Invalid port specification"),
    ("70000", "Invalid containerPort: 70000"),
])
def test_parse_spec_errors(spec, message):
    with pytest.raises(NetworkError, match=message.replace("(", r"\(")):
        ports.parse_spec(spec)


def test_parse_publish_merges_bindings():
    exposed, bindings = ports.parse_publish(["8080:80", "8081:80", "53/udp"])
    assert exposed == {"80/tcp": {}, "53/udp": {}}
    assert bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
                        "53/udp": [{"HostIp": "", "HostPort": ""}]}


def test_choose_respects_the_allocation_table(monkeypatch):
    monkeypatch.setattr(ports, "host_port_free", lambda proto, ip, port: True)
    monkeypatch.setattr(ports, "ephemeral_range", lambda: (40000, 40002))
    taken = {"tcp/0.0.0.0/40000": "other"}
    out = ports.choose({"80/tcp": [{"HostIp": "", "HostPort": ""}]}, ["80/tcp", "443/tcp"], True,
                       taken, endpoint="web (e1)")
    assert [(m["container_port"], m["host_port"]) for m in out] == [(80, 40001), (443, 40002)]
    assert taken["tcp/0.0.0.0/40001"] == "web (e1)"
    with pytest.raises(PortAllocated, match=r"^driver failed programming external connectivity on "
                                            r"endpoint web \(e1\): Bind for 0.0.0.0:40000 failed: "
                                            r"port is already allocated$"):
        ports.choose({"80/tcp": [{"HostIp": "", "HostPort": "40000"}]}, [], False, taken,
                     endpoint="web (e1)")
    # Another address on the same port does not clash with a specific-address binding...
    taken = {"tcp/127.0.0.1/40000": "x"}
    assert ports.choose({"80/tcp": [{"HostIp": "127.0.0.2", "HostPort": "40000"}]}, [], False, taken)
    # ...but 0.0.0.0 does, and udp is its own space.
    with pytest.raises(PortAllocated):
        ports.choose({"80/tcp": [{"HostIp": "", "HostPort": "40000"}]}, [], False, taken)
    assert ports.choose({"80/udp": [{"HostIp": "", "HostPort": "40000"}]}, [], False, taken)


def test_host_port_free_sees_a_listener():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        assert not ports.host_port_free("tcp", "127.0.0.1", s.getsockname()[1])
    finally:
        s.close()


def test_ports_field():
    maps = [{"proto": "tcp", "host_ip": "", "host_port": 8080, "container_port": 80}]
    assert ports.ports_field(["80/tcp", "443/tcp"], maps) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}


def test_ipv6_host_address_is_refused():
    with pytest.raises(NetworkError, match="IPv6 address ::1 is not supported"):
        ports.choose({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}, [], False, {})
