"""rtnetlink attribute encoding (no root)."""
import struct

from hutch.network import netlink


def test_attr_padding_and_parse_roundtrip():
    a = netlink._attr(netlink.IFLA_IFNAME, netlink._str("eth0"))
    assert len(a) % 4 == 0 and struct.unpack_from("=HH", a) == (9, netlink.IFLA_IFNAME)
    nested = netlink._attr(netlink.IFLA_LINKINFO | netlink.NLA_F_NESTED,
                           netlink._attr(netlink.IFLA_INFO_KIND, b"veth"))
    parsed = netlink._parse_attrs(a + nested)
    assert parsed[netlink.IFLA_IFNAME] == b"eth0\0"
    assert netlink._parse_attrs(parsed[netlink.IFLA_LINKINFO]) == {netlink.IFLA_INFO_KIND: b"veth"}


def test_mac_bytes():
    assert netlink.mac_bytes("02:42:ac:11:00:02") == bytes([2, 0x42, 0xac, 0x11, 0, 2])
