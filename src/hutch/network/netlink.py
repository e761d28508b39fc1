"""A small rtnetlink client on the standard library's AF_NETLINK socket.

Why not pyroute2: importing it costs ~140-190 ms on this machine, ten times the whole
networking budget of a container start (15 ms). What hutch needs from rtnetlink is small:
create a bridge and a veth pair, move/rename/address/route links, and list links.

One `Netlink` object wraps one NETLINK_ROUTE socket. A netlink socket belongs to the
network namespace it was created in, so `Netlink(netns_path)` briefly setns()es the calling
thread into that namespace to create the socket and goes back at once: afterwards every
request on it acts inside the container's namespace, with no fork and no `ip` process.
Errors are OSError(errno, "netlink <op> <what>: <strerror>").
"""
from __future__ import annotations

import errno as _errno
import ipaddress
import os
import struct
from _socket import (AF_INET, AF_NETLINK, SO_RCVBUF, SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET,
                     socket)   # not the socket module: its enums cost ~3 ms of each rm

from hutch import trace

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1

IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15

IFF_UP = 0x1
IF_OPER_UP = 6
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1
NLA_F_NESTED = 0x8000

_IFINFO = struct.Struct("=BxHiII")   # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")    # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type, flags
_NLHDR = struct.Struct("=IHHII")     # len, type, flags, seq, pid


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _str(s: str) -> bytes:
    return s.encode() + b"\0"


def _parse_attrs(buf: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(buf):
        n, kind = struct.unpack_from("=HH", buf, i)
        if n < 4:
            break
        out[kind & ~NLA_F_NESTED] = buf[i + 4:i + n]
        i += (n + 3) & ~3
    return out


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


class in_netns:   # (lower case: called as the function it was, `with in_netns(path, why):`)
    """Run the with block with this thread in another network namespace, then come back.

    Sockets made inside stay in that namespace for their whole life, which is how hutch
    acts in a container's network without forking. (A class, not a contextlib generator:
    see hutch.paths.FileLock.)
    """

    __slots__ = ("netns_path", "why", "own")

    def __init__(self, netns_path: str, why: str = ""):
        self.netns_path = netns_path
        self.why = why

    def __enter__(self) -> None:
        from hutch import _sys
        self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(self.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                trace.step("setns", f"net {self.netns_path}", why=self.why)
                _sys.setns(target, _sys.CLONE_NEWNET)
            finally:
                os.close(target)
        except BaseException:
            os.close(self.own)
            raise

    def __exit__(self, *exc) -> None:
        from hutch import _sys
        try:
            _sys.setns(self.own, _sys.CLONE_NEWNET)
        finally:
            os.close(self.own)


class Netlink:
    """One rtnetlink socket, in the caller's netns or in the one at `netns_path`."""

    def __init__(self, netns_path: str | None = None):
        if netns_path is None:
            self.sock = self._open()
        else:
            with in_netns(netns_path, "to open a netlink socket there"):
                self.sock = self._open()
        self.seq = 0

    @staticmethod
    def _open() -> socket:
        s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0)
        s.setsockopt(SOL_SOCKET, SO_RCVBUF, 1 << 20)
        s.bind((0, 0))
        return s

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- transport ---
    def _request(self, kind: int, flags: int, payload: bytes, what: str) -> list[tuple[int, bytes]]:
        self.seq += 1
        seq = self.seq
        msg = _NLHDR.pack(_NLHDR.size + len(payload), kind, NLM_F_REQUEST | flags, seq, 0) + payload
        self.sock.send(msg)
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            i = 0
            while i + _NLHDR.size <= len(data):
                n, mtype, mflags, mseq, _ = _NLHDR.unpack_from(data, i)
                body = data[i + _NLHDR.size:i + n]
                i += (n + 3) & ~3
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -struct.unpack_from("=i", body)[0]
                    if err:
                        raise OSError(err, f"netlink {what}: {os.strerror(err)}")
                    return replies
                if mtype == NLMSG_DONE:
                    return replies
                replies.append((mtype, body))
                if not (mflags & NLM_F_MULTI) and not (flags & NLM_F_ACK):
                    return replies

    # --- links ---
    def links(self) -> list[dict]:
        """Every link: {index, name, flags, mtu, master, address, kind}."""
        out = []
        for _, body in self._request(RTM_GETLINK, NLM_F_DUMP, _IFINFO.pack(0, 0, 0, 0, 0), "list links"):
            out.append(self._link(body))
        return out

    @staticmethod
    def _link(body: bytes) -> dict:
        _, _, index, flags, _ = _IFINFO.unpack_from(body)
        a = _parse_attrs(body[_IFINFO.size:])
        info = _parse_attrs(a.get(IFLA_LINKINFO, b""))
        return {
            "index": index, "flags": flags,
            "name": a.get(IFLA_IFNAME, b"\0").rstrip(b"\0").decode(),
            "mtu": struct.unpack("=I", a[IFLA_MTU])[0] if IFLA_MTU in a else 0,
            "master": struct.unpack("=I", a[IFLA_MASTER])[0] if IFLA_MASTER in a else 0,
            "address": ":".join(f"{b:02x}" for b in a.get(IFLA_ADDRESS, b"")),
            "kind": info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode(),
            "operstate": a[IFLA_OPERSTATE][0] if IFLA_OPERSTATE in a else 0,
        }

    def link(self, name: str) -> dict | None:
        payload = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _str(name))
        try:
            replies = self._request(RTM_GETLINK, 0, payload, f"get link {name}")
        except OSError as e:
            if e.errno in (_errno.ENODEV, _errno.ENOENT):
                return None
            raise
        return self._link(replies[0][1]) if replies else None

    def index(self, name: str) -> int:
        link = self.link(name)
        if link is None:
            raise OSError(_errno.ENODEV, f"netlink: no link named {name}")
        return link["index"]

    def wait_oper_up(self, name: str, timeout: float = 2.0) -> bool:
        """Wait until the kernel's linkwatch has seen the link's carrier: until then its
        qdisc drops every packet (and a bridge port does not forward), so a container's
        first packets would be lost. Usually immediate; False on timeout."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            link = self.link(name)
            if link is None or link["operstate"] == IF_OPER_UP:
                return link is not None
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)

    def add_bridge(self, name: str, mtu: int | None = None) -> None:
        trace.step("netlink", f"create bridge {name}", mtu=mtu)
        attrs = _attr(IFLA_IFNAME, _str(name)) + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge"))
        if mtu:
            attrs += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                      _IFINFO.pack(0, 0, 0, 0, 0) + attrs, f"create bridge {name}")

    def add_veth(self, name: str, peer: str, *, peer_netns_fd: int | None = None,
                 peer_mac: str | None = None, mtu: int | None = None, master: int | None = None) -> None:
        """Create the pair `name` (here, attached to `master`, up) and `peer` (in the netns
        given by peer_netns_fd, down, with peer_mac) in one request."""
        trace.step("netlink", f"create veth {name} peer {peer}", mtu=mtu, mac=peer_mac)
        mtu_attr = _attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""
        mtu_attr += _attr(IFLA_TXQLEN, struct.pack("=I", 0))   # no queue on a veth, as Docker's
        peer_attrs = _attr(IFLA_IFNAME, _str(peer)) + mtu_attr
        if peer_mac:
            peer_attrs += _attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        if peer_netns_fd is not None:
            peer_attrs += _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        peer_msg = _IFINFO.pack(0, 0, 0, 0, 0) + peer_attrs
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(
            IFLA_INFO_DATA | NLA_F_NESTED, _attr(VETH_INFO_PEER | NLA_F_NESTED, peer_msg))
        attrs = _attr(IFLA_IFNAME, _str(name)) + mtu_attr + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
        if master:
            attrs += _attr(IFLA_MASTER, struct.pack("=I", master))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                      _IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + attrs, f"create veth {name}")

    def set_link(self, index: int, *, up: bool | None = None, master: int | None = None,
                 mtu: int | None = None, what: str = "") -> None:
        trace.step("netlink", f"set link {what or index}", up=up, master=master, mtu=mtu)
        flags = change = 0
        if up is not None:
            change = IFF_UP
            flags = IFF_UP if up else 0
        attrs = b""
        if master is not None:
            attrs += _attr(IFLA_MASTER, struct.pack("=I", master))
        if mtu:
            attrs += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self._request(RTM_NEWLINK, NLM_F_ACK, _IFINFO.pack(0, 0, index, flags, change) + attrs,
                      f"set link {what or index}")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when it was already gone."""
        trace.step("netlink", f"delete link {name}")
        payload = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _str(name))
        try:
            self._request(RTM_DELLINK, NLM_F_ACK, payload, f"delete link {name}")
        except OSError as e:
            if e.errno in (_errno.ENODEV, _errno.ENOENT):
                return False
            raise
        return True

    # --- addresses and routes ---
    def add_address(self, index: int, cidr: str, what: str = "") -> None:
        iface = ipaddress.ip_interface(cidr)
        trace.step("netlink", f"add address {cidr} to {what or index}")
        ip = iface.ip.packed
        attrs = _attr(IFA_LOCAL, ip) + _attr(IFA_ADDRESS, ip)
        if iface.network.prefixlen < 31:
            attrs += _attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                      _IFADDR.pack(AF_INET, iface.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                      + attrs, f"add address {cidr} to {what or index}")

    def addresses(self) -> list[tuple[int, str]]:
        """(link index, "ip/prefix") of every IPv4 address."""
        out = []
        for _, body in self._request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(AF_INET, 0, 0, 0, 0),
                                     "list addresses"):
            _, plen, _, _, index = _IFADDR.unpack_from(body)
            a = _parse_attrs(body[_IFADDR.size:])
            ip = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
            if ip:
                out.append((index, f"{ipaddress.IPv4Address(ip)}/{plen}"))
        return out

    def add_default_route(self, gateway: str, oif: int) -> None:
        trace.step("netlink", f"add route default via {gateway}")
        payload = _RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                              RTN_UNICAST, 0)
        payload += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
        payload += _attr(RTA_OIF, struct.pack("=I", oif))
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, payload,
                      f"add default route via {gateway}")

    def routes(self) -> list[tuple[str, int]]:
        """("net/prefix", oif) of every IPv4 route in the main table."""
        out = []
        for _, body in self._request(RTM_GETROUTE, NLM_F_DUMP,
                                     _RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0), "list routes"):
            _, dst_len, _, _, table, _, _, rtype, _ = _RTMSG.unpack_from(body)
            a = _parse_attrs(body[_RTMSG.size:])
            if RTA_TABLE in a:
                table = struct.unpack("=I", a[RTA_TABLE])[0]
            if table != RT_TABLE_MAIN or rtype != RTN_UNICAST:
                continue
            dst = ipaddress.IPv4Address(a[RTA_DST]) if RTA_DST in a else ipaddress.IPv4Address(0)
            oif = struct.unpack("=I", a[RTA_OIF])[0] if RTA_OIF in a else 0
            out.append((f"{dst}/{dst_len}", oif))
        return out
