"""hosts, resolv.conf and hostname as Docker writes them (no root)."""
import pytest

from hutch.network import etcfiles
from hutch.network.errors import NetworkError

HOST = "# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n"


def test_hosts_default_extra_and_own_line():
    text = etcfiles.hosts("web", "172.17.0.2", ["db:10.0.0.3"])
    assert text.startswith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    assert text.endswith("10.0.0.3\tdb\n172.17.0.2\tweb\n")
    assert etcfiles.hosts("web", None).endswith("ff02::2\tip6-allrouters\n")
    assert etcfiles.hosts("a.example.org", "10.1.1.1").endswith("10.1.1.1\ta.example.org a\n")
    assert etcfiles.hosts("a", "10.1.1.1", domainname="corp").endswith("10.1.1.1\ta.corp a\n")


def test_extra_host_validation():
    assert etcfiles.parse_extra_host("db:10.0.0.3") == ("db", "10.0.0.3")
    assert etcfiles.parse_extra_host("v6:::1") == ("v6", "::1")
    with pytest.raises(NetworkError, match="bad format for add-host"):
        etcfiles.parse_extra_host("justname")
    with pytest.raises(NetworkError, match="invalid IP address in add-host"):
        etcfiles.parse_extra_host("db:nope")


def test_resolv_filters_localhost_nameservers():
    out = etcfiles.resolv_conf(HOST)
    assert "127.0.0.53" not in out and "nameserver 10.0.0.2" in out and "search example.com" in out
    only_local = "nameserver 127.0.0.1\n"
    assert etcfiles.resolv_conf(only_local) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_overrides():
    assert etcfiles.resolv_conf(HOST, dns=["1.1.1.1"]) == \
        "search example.com\nnameserver 1.1.1.1\noptions edns0\n"
    assert etcfiles.resolv_conf(HOST, dns_search=["."], dns_options=["ndots:3"]) == \
        "nameserver 10.0.0.2\noptions ndots:3\n"


def test_resolv_embedded_and_host_mode():
    assert etcfiles.resolv_conf(HOST, embedded=True) == \
        "search example.com\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"
    assert etcfiles.resolv_conf(HOST, host_mode=True) == HOST
    assert etcfiles.upstreams(HOST) == ["10.0.0.2"]
    assert etcfiles.upstreams(HOST, ["9.9.9.9"]) == ["9.9.9.9"]


def test_write_files(tmp_path):
    out = etcfiles.write_files(str(tmp_path / "c"), {"/etc/hostname": "h\n", "/etc/hosts": "x\n"})
    assert out == {"/etc/hostname": str(tmp_path / "c" / "hostname"),
                   "/etc/hosts": str(tmp_path / "c" / "hosts")}
    assert (tmp_path / "c" / "hostname").read_text() == "h\n"
