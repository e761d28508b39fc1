"""End to end through `hutch run`: what a user sees of networking in a real container."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest

from hutch.network import iptables
from hutch.network.manager import NetworkManager
from hutch.paths import Paths

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HUTCH = os.path.join(ROOT, ".venv", "bin", "hutch")


class Hutch:
    def __init__(self, root):
        self.root = root

    def __call__(self, *args, check=True, timeout=60):
        p = subprocess.run([HUTCH, *args], capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, HUTCH_ROOT=self.root))
        if check and p.returncode != 0:
            raise AssertionError(f"hutch {' '.join(args)} -> {p.returncode}\n{p.stdout}{p.stderr}")
        return p


@pytest.fixture(scope="module")
def h():
    root = tempfile.mkdtemp(prefix="hutch-net-e2e-")
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-images.sh")], capture_output=True,
                       text=True, timeout=180, env=dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH))
    hutch = Hutch(root)
    if p.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"images could not be made: {p.stderr.strip()[-200:]}")
    probe = hutch("run", "--rm", "--network", "none", "busybox", "true", check=False)
    if probe.returncode != 0:
        pytest.skip(f"`hutch run` does not work yet: {probe.stderr.strip()[-200:]}")
    yield hutch
    ids = hutch("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        hutch("rm", "-f", *ids, check=False)
    NetworkManager(Paths.from_root(root)).destroy_all()
    subprocess.run(["umount", "-R", root], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def name():
    return "nt_" + uuid.uuid4().hex[:10]


def test_default_bridge_inside_view(h):
    out = h("run", "--rm", "-h", "box", "--add-host", "db:10.1.2.3", "--dns", "10.0.0.53",
            "--dns-search", "corp.example", "busybox", "sh", "-c",
            "ip -4 -o addr; ip route; cat /etc/hostname /etc/hosts /etc/resolv.conf").stdout
    assert "default via " in out
    assert "box\n" in out and "10.1.2.3\tdb\n" in out
    assert "search corp.example\nnameserver 10.0.0.53\n" in out
    ip = [l.split()[3].split("/")[0] for l in out.splitlines() if " eth0 " in l and "inet" in l][0]
    assert f"{ip}\tbox\n" in out


def test_none_and_host(h):
    none = h("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    assert [l.split(":")[1].strip() for l in none.splitlines()] == ["lo"]
    p = h("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link", check=False)
    assert p.returncode == 0, p.stderr
    host = p.stdout
    seen = {l.split(":")[1].strip().split("@")[0] for l in host.splitlines()}
    assert "eth0" in seen and len(seen & set(os.listdir("/sys/class/net"))) >= 2
    # Docker: the host's hostname, in the container's own UTS namespace
    assert h("run", "--rm", "--net=host", "busybox", "hostname").stdout == socket.gethostname() + "\n"


def test_container_mode_shares_the_netns(h):
    a = name()
    h("run", "-d", "--name", a, "busybox", "sleep", "60")
    try:
        ip = h("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a).stdout.strip()
        out = h("run", "--rm", "--network", f"container:{a}", "busybox", "ip", "-4", "-o", "addr").stdout
        assert f"inet {ip}/" in out
    finally:
        h("rm", "-f", a)


def test_published_port_and_port_conflict(h, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello-from-httpd\n")
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    a = name()
    cid = h("run", "-d", "--name", a, "-p", f"{port}:80", "-v", f"{www}:/www", "busybox",
            "httpd", "-f", "-p", "80", "-h", "/www").stdout.strip()
    try:
        assert h("port", a).stdout == f"80/tcp -> 0.0.0.0:{port}\n"
        body = None
        for _ in range(50):      # httpd may not listen yet
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"hello-from-httpd\n"
        p = h("run", "--rm", "-p", f"{port}:80", "busybox", "true", check=False)
        assert p.returncode == 125
        assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in p.stderr
    finally:
        h("rm", "-f", a)
    assert f"hutch:{cid}" not in iptables.save()


def test_user_network_names(h):
    net, web = name(), name()
    h("network", "create", net)
    try:
        h("run", "-d", "--name", web, "--network", net, "--network-alias", "www", "busybox",
          "sleep", "60")
        ip = h("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}",
               web).stdout.strip()
        out = h("run", "--rm", "--network", net, "busybox", "sh", "-c",
                f"cat /etc/resolv.conf; ping -c 1 -W 2 {web} && ping -c 1 -W 2 www").stdout
        assert "nameserver 127.0.0.11" in out
        assert out.count(f"({ip})") == 2
        p = h("network", "rm", net, check=False)
        assert p.returncode == 1 and "has active endpoints" in p.stderr
    finally:
        h("rm", "-f", web, check=False)
        h("network", "rm", net, check=False)


def test_connect_disconnect_running_and_stopped(h):
    net, a = name(), name()
    h("network", "create", net)
    try:
        h("run", "-d", "--name", a, "busybox", "sleep", "60")
        h("network", "connect", "--alias", "web", net, a)
        assert " eth1 " in h("exec", a, "ip", "-4", "-o", "addr").stdout
        ip = h("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}",
               a).stdout.strip()
        out = h("run", "--rm", "--network", net, "busybox", "ping", "-c", "1", "-W", "2", "web").stdout
        assert f"({ip})" in out
        p = h("network", "connect", net, a, check=False)
        assert p.returncode == 1 and f"endpoint with name {a} already exists in network {net}" in p.stderr
        p = h("network", "connect", "host", a, check=False)
        assert p.stderr == ("Error response from daemon: container cannot be disconnected from "
                            "host network or connected to host network\n")
        h("network", "disconnect", net, a)
        assert " eth1 " not in h("exec", a, "ip", "-4", "-o", "addr").stdout
        p = h("network", "disconnect", net, a, check=False)
        assert p.returncode == 1 and f"is not connected to network {net}" in p.stderr
        h("network", "disconnect", "--force", net, a)
        # stopped: recorded, and every recorded network is connected at the next start
        h("stop", "-t", "0", a)
        h("network", "connect", net, a)
        h("network", "disconnect", "bridge", a)
        fmt = "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        assert h("inspect", "-f", fmt, a).stdout == f"{net} \n"    # stopped: what start connects
        h("start", a)
        addrs = h("exec", a, "ip", "-4", "-o", "addr").stdout
        assert " eth0 " in addrs and " eth1 " not in addrs
        assert h("inspect", "-f", "{{.NetworkSettings.IPAddress}}", a).stdout.strip() == ""
        p = h("network", "rm", net, check=False)
        assert "has active endpoints" in p.stderr
    finally:
        h("rm", "-f", a, check=False)
        h("network", "rm", net, check=False)
    assert net not in h("network", "ls").stdout


def test_reconcile_drops_endpoints_of_vanished_containers(h):
    """A container whose directory vanished (rm killed half-way) loses its lease and veth
    at the next repair (here: prune)."""
    import json as jsonmod
    a = name()
    cid = h("run", "-d", "--name", a, "busybox", "sleep", "60").stdout.strip()
    nm = NetworkManager(Paths.from_root(h.root))
    bridge = nm.find("bridge")
    veth = nm._endpoints(bridge["Id"])[cid]["veth"]
    h("rm", "-f", a)
    # plant the endpoint again as a crashed rm would have left it
    eps = nm._endpoints(bridge["Id"])
    eps[cid] = {"name": a, "EndpointID": "0" * 64, "ip": "172.31.255.254", "prefix": 16,
                "gateway": "", "mac": "", "veth": veth, "netns": None, "aliases": [],
                "ipam_ip": None, "exposed": [], "ports": []}
    nm._save_endpoints(bridge["Id"], eps)
    h("container", "prune", "-f")
    assert cid not in nm._endpoints(bridge["Id"])
    assert jsonmod.dumps(nm._endpoints(bridge["Id"])).count(cid) == 0
