"""--network none|host|container:, /etc files, crash repair and a connect/disconnect soak."""
import json
import os

import pytest

from hutch.network import iptables
from hutch.network.netlink import Netlink
from net_helpers import links

pytestmark = pytest.mark.root


def test_none_has_only_loopback_up(nm, containers):
    c = containers()
    s = nm.connect(c.cid, c.netns, "none")
    assert s["IPAddress"] == "" and list(s["Networks"]) == ["none"]
    assert s["Networks"]["none"]["NetworkID"] == nm.find("none")["Id"]
    with Netlink(c.netns) as inner:
        ls = inner.links()
        assert [l["name"] for l in ls] == ["lo"] and ls[0]["flags"] & 1
        assert inner.addresses() == [(ls[0]["index"], "127.0.0.1/8")]
    assert c.run("busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1").returncode == 0
    nm.disconnect(c.cid)
    assert nm.inspect("none")["Containers"] == {}


def test_host_mode_records_and_copies_host_files(nm, tmp_path):
    cid = os.urandom(32).hex()
    s = nm.connect(cid, None, "host", name="h")
    assert list(s["Networks"]) == ["host"] and s["SandboxKey"] == ""
    assert cid in nm.inspect("host")["Containers"]
    files = nm.etc_files(cid, "myhost", s, network_mode="host", extra_hosts=["db:10.1.2.3"],
                         directory=str(tmp_path / "etc"))
    with open("/etc/hosts") as f:
        host_hosts = f.read()
    with open(files["/etc/hosts"]) as f:
        assert f.read() == host_hosts + "10.1.2.3\tdb\n"
    with open(files["/etc/hostname"]) as f:
        assert f.read() == "myhost\n"
    nm.disconnect(cid)


def test_container_mode_shares_the_other_netns_and_files(nm, containers, tmp_path):
    a = containers()
    sa = nm.connect(a.cid, a.netns, name="a")
    nm.etc_files(a.cid, "a-host", sa)
    other = os.urandom(32).hex()
    s = nm.connect(other, a.netns, f"container:{a.cid}")
    assert s["Networks"] == {} and s["IPAddress"] == ""
    files = nm.etc_files(other, "ignored", s, network_mode=f"container:{a.cid}")
    assert files["/etc/hosts"] == os.path.join(nm.paths.containers, a.cid, "hosts")
    with open(files["/etc/hosts"]) as f:
        assert f.read().endswith(f"{sa['IPAddress']}\ta-host\n")


def test_bridge_etc_files_as_docker_writes_them(nm, containers, tmp_path):
    c = containers()
    s = nm.connect(c.cid, c.netns)
    files = nm.etc_files(c.cid, c.cid[:12], s, directory=str(tmp_path / "etc"),
                         extra_hosts=["db:10.0.0.9"], dns=["10.0.0.53"], dns_search=["corp.example"],
                         dns_options=["ndots:2"])
    with open(files["/etc/hosts"]) as f:
        assert f.read() == ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                            "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                            "ff02::2\tip6-allrouters\n10.0.0.9\tdb\n"
                            f"{s['IPAddress']}\t{c.cid[:12]}\n")
    with open(files["/etc/resolv.conf"]) as f:
        assert f.read() == "search corp.example\nnameserver 10.0.0.53\noptions ndots:2\n"


def test_reconcile_after_a_crash(nm, containers):
    """The container's process died and hutch never ran disconnect: the next command repairs."""
    alive, dead = containers(), containers()
    nm.create_network("crashnet", subnet="10.249.%d.0/24" % (os.urandom(1)[0]))
    nm.connect(alive.cid, alive.netns, name="alive")
    nm.connect(dead.cid, dead.netns, publish=["80"], name="dead")
    nm.connect(dead.cid, dead.netns, "crashnet", name="dead")
    veths = set(nm.veths)
    dead.kill()
    assert nm.reconcile([alive.cid]) == [dead.cid]
    assert f"hutch:{dead.cid}" not in iptables.save()
    assert nm.containers_of(dead.cid) == [] and nm.containers_of(alive.cid) == ["bridge"]
    with open(os.path.join(nm.dir, "ports.json")) as f:
        assert json.load(f) == {}
    assert links() & veths == {nm.veths[0]}
    assert nm.reconcile([alive.cid]) == []
    # A test root's default bridge goes with its last container.
    alive.kill()
    assert nm.reconcile([]) == [alive.cid]
    assert nm.bridge_of(nm.find("bridge")) not in links()


def test_hundred_cycles_leave_nothing_behind(nm, containers):
    c = containers()
    soak = nm.create_network("soak", subnet="10.248.%d.0/24" % (os.urandom(1)[0]))
    nm.connect(c.cid, c.netns, name="warmup")
    nm.disconnect(c.cid)
    for i in range(100):
        nm.connect(c.cid, c.netns, "soak" if i % 2 else "bridge", name="soak",
                   publish=["80"] if i % 10 == 0 else None)
        nm.disconnect(c.cid)
    assert not (links() & set(nm.veths))
    saved = iptables.save()
    assert saved.count(f"hutch:{c.cid}") == 0
    # The user network's own rules exist once; the test root's bridge (gone) has none left.
    expected = iptables.network_rules("b", soak["IPAM"]["Config"][0]["Subnet"], "t")
    assert saved.count("hutch-net:" + soak["Id"][:12]) == sum(map(len, expected.values()))
    assert "hutch-net:" + nm.find("bridge")["Id"][:12] not in saved
    for r in nm._records():
        assert nm._endpoints(r["Id"]) == {}
    with open(os.path.join(nm.dir, "ports.json")) as f:
        assert json.load(f) == {}
    with Netlink(c.netns) as inner:
        assert [l["name"] for l in inner.links()] == ["lo"]


def test_half_made_bridge_is_completed(nm, containers):
    """A crash after the bridge device was made but before its rules: the next connect
    finishes the setup instead of trusting the device."""
    c = containers()
    nm.connect(c.cid, c.netns)
    rec = nm.find("bridge")
    tag = "hutch-net:" + rec["Id"][:12]
    iptables.remove_tagged(tag)
    os.unlink(os.path.join(nm.dir, rec["Id"], "bridge.ready"))
    other = containers()
    nm.connect(other.cid, other.netns)
    saved = iptables.save()
    assert f"-s {rec['IPAM']['Config'][0]['Subnet']} ! -o {nm.bridge_of(rec)}" in saved
    assert saved.count(tag) == sum(map(len, iptables.network_rules("b", "s", "t").values()))
