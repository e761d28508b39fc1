"""IPAM: default pools, address choice, Docker's MAC derivation (no root)."""
import ipaddress

import pytest

from hutch.network import ipam
from hutch.network.errors import NetworkError


def test_pick_subnet_skips_used_pools_and_ignores_default_route():
    assert str(ipam.pick_subnet([])) == "172.17.0.0/16"
    assert str(ipam.pick_subnet(["0.0.0.0/0", "172.17.0.0/16", "172.18.5.0/24"])) == "172.19.0.0/16"
    used = [f"172.{i}.0.0/16" for i in range(17, 32)]
    assert str(ipam.pick_subnet(used)) == "192.168.0.0/20"
    with pytest.raises(NetworkError, match="could not find an available, non-overlapping IPv4 "
                                           "address pool among the defaults"):
        ipam.pick_subnet(used + ["192.168.0.0/16"])


def test_allocate_lowest_free_after_gateway():
    net = ipaddress.ip_network("10.1.0.0/29")
    assert ipam.allocate(net, "10.1.0.1", []) == "10.1.0.2"
    assert ipam.allocate(net, "10.1.0.1", ["10.1.0.2", "10.1.0.4"]) == "10.1.0.3"
    with pytest.raises(NetworkError, match="no available IPv4 addresses"):
        ipam.allocate(net, "10.1.0.1", [f"10.1.0.{i}" for i in range(2, 7)])


def test_allocate_wanted_address():
    net = ipaddress.ip_network("10.1.0.0/24")
    assert ipam.allocate(net, "10.1.0.1", [], "10.1.0.50") == "10.1.0.50"
    with pytest.raises(NetworkError, match="Address already in use"):
        ipam.allocate(net, "10.1.0.1", ["10.1.0.50"], "10.1.0.50")
    with pytest.raises(NetworkError, match="Address already in use"):
        ipam.allocate(net, "10.1.0.1", [], "10.1.0.1")
    with pytest.raises(NetworkError, match="Invalid address 10.2.0.5: It does not belong"):
        ipam.allocate(net, "10.1.0.1", [], "10.2.0.5")
    with pytest.raises(NetworkError, match="invalid IPv4 address"):
        ipam.allocate(net, "10.1.0.1", [], "nope")


def test_gateway_and_subnet_checks():
    net = ipam.parse_subnet("10.5.0.7/16")
    assert str(net) == "10.5.0.0/16" and ipam.default_gateway(net) == "10.5.0.1"
    assert ipam.check_gateway(net, "10.5.255.254") == "10.5.255.254"
    with pytest.raises(NetworkError, match="no matching subnet for gateway 10.6.0.1"):
        ipam.check_gateway(net, "10.6.0.1")
    with pytest.raises(NetworkError, match="invalid CIDR address: bogus"):
        ipam.parse_subnet("bogus")


def test_mac_from_ip_as_docker():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert ipam.check_mac("02:42:AC:11:00:02") == "02:42:ac:11:00:02"
    with pytest.raises(NetworkError, match="is not a valid mac address"):
        ipam.check_mac("02:42:ac:11:00")


def test_ip_range_and_reserved():
    net = ipaddress.ip_network("10.1.0.0/24")
    assert ipam.allocate(net, "10.1.0.1", ["10.1.0.128"], ip_range="10.1.0.128/25") == "10.1.0.129"
    assert ipam.check_in_subnet(net, "10.1.0.128/25", "range") == "10.1.0.128/25"
    with pytest.raises(NetworkError, match="no matching subnet for aux-address 10.2.0.1"):
        ipam.check_in_subnet(net, "10.2.0.1", "aux-address")
