"""IP address management: which subnet a network gets and which address a container gets.

Pure logic; the manager persists the results (the lease is the endpoint record, written under
the networks lock). Docker's defaults: the default address pools are 172.17-31.0.0/16, then
192.168.0-240.0/20; a container's address is the lowest free one after the gateway, and its
MAC address is 02:42 followed by the four bytes of its IPv4 address.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from hutch.network.errors import NetworkError

DEFAULT_POOLS = [ipaddress.ip_network(f"172.{i}.0.0/16") for i in range(17, 32)] + \
                [ipaddress.ip_network(f"192.168.{i}.0/20") for i in range(0, 256, 16)]


def pick_subnet(in_use: Iterable[str]) -> ipaddress.IPv4Network:
    """The first default pool that overlaps nothing in `in_use` (routes, other networks)."""
    used = [ipaddress.ip_network(n, strict=False) for n in in_use]
    used = [n for n in used if n.prefixlen > 0]   # the default route overlaps everything
    for pool in DEFAULT_POOLS:
        if not any(pool.overlaps(u) for u in used):
            return pool
    raise NetworkError("could not find an available, non-overlapping IPv4 address pool "
                       "among the defaults to assign to the network")


def parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise NetworkError(f"invalid CIDR address: {subnet}") from None
    if net.version != 4:
        raise NetworkError(f"IPv6 subnets are not supported: {subnet}")
    if net.prefixlen > 30:
        raise NetworkError(f"subnet {subnet} is too small for containers")
    return net


def default_gateway(net: ipaddress.IPv4Network) -> str:
    return str(net.network_address + 1)


def check_gateway(net: ipaddress.IPv4Network, gateway: str) -> str:
    try:
        gw = ipaddress.ip_address(gateway)
    except ValueError:
        raise NetworkError(f"invalid gateway address {gateway}") from None
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise NetworkError(f"no matching subnet for gateway {gateway}")
    return str(gw)


def check_in_subnet(net: ipaddress.IPv4Network, value: str, what: str) -> str:
    """--ip-range / --aux-address must lie in the subnet (Docker CLI's wording)."""
    try:
        inside = ipaddress.ip_network(value, strict=False).subnet_of(net)
    except (ValueError, TypeError):
        inside = False
    if not inside:
        raise NetworkError(f"no matching subnet for {what} {value}")
    return str(ipaddress.ip_network(value, strict=False)) if "/" in value else value


def allocate(net: ipaddress.IPv4Network, gateway: str, taken: Iterable[str],
             wanted: str | None = None, ip_range: str | None = None) -> str:
    """An address for a container: `wanted` if free, else the lowest free host address of
    the subnet (of `ip_range` when the network has one). `taken` includes reserved ones."""
    busy = set(taken) | {gateway}
    if wanted:
        try:
            ip = ipaddress.ip_address(wanted)
        except ValueError:
            raise NetworkError(f"invalid IPv4 address: {wanted}") from None
        if ip not in net or ip in (net.network_address, net.broadcast_address):
            raise NetworkError(f"Invalid address {wanted}: It does not belong to any of this "
                               "network's subnets")
        if str(ip) in busy:
            raise NetworkError("Address already in use")
        return str(ip)
    pool = ipaddress.ip_network(ip_range) if ip_range else net
    for ip in pool:
        if ip in (net.network_address, net.broadcast_address):
            continue
        if str(ip) not in busy:
            return str(ip)
    raise NetworkError(f"no available IPv4 addresses on this network's address pools: "
                       f"{net}")


def mac_for(ip: str) -> str:
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def check_mac(mac: str) -> str:
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise NetworkError(f"{mac} is not a valid mac address")
    return mac.lower()
