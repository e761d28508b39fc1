"""`hutch network ...` end to end: Docker's output, errors and exit codes."""
import json
import os
import subprocess
import sys

import pytest

from hutch.network.manager import NetworkManager
from hutch.paths import Paths

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def hutch(tmp_path):
    root = str(tmp_path / "cliroot")

    def run(*args, stdin=None):
        return subprocess.run([sys.executable, "-m", "hutch.cli.main", "--root", root, *args],
                              capture_output=True, text=True, input=stdin, timeout=60,
                              cwd=ROOT)
    yield run
    NetworkManager(Paths.from_root(root)).destroy_all()


def test_create_ls_inspect_rm(hutch):
    sub = "10.246.%d.0/24" % os.urandom(1)[0]
    r = hutch("network", "create", "--subnet", sub, "--label", "env=test", "web")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    nid = r.stdout.strip()
    r = hutch("network", "ls")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [l.split()[1] for l in lines[1:]] == ["bridge", "host", "none", "web"]
    assert f"{nid[:12]}   web       bridge    local" in r.stdout
    assert hutch("network", "ls", "-q", "--filter", "type=custom").stdout == nid[:12] + "\n"
    r = hutch("network", "inspect", "web")
    info = json.loads(r.stdout)[0]
    assert info["Id"] == nid and info["IPAM"]["Config"] == [{"Subnet": sub, "Gateway": sub[:-4] + "1"}]
    assert info["Labels"] == {"env": "test"} and info["Containers"] == {}
    assert r.stdout.startswith("[\n    {\n        \"Name\": \"web\",")
    r = hutch("network", "inspect", "-f", "{{.Driver}} {{.Scope}}", "web", "ghost")
    assert (r.returncode, r.stdout, r.stderr) == (1, "bridge local\n", "Error: No such network: ghost\n")
    r = hutch("network", "create", "web")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: network with name web already exists\n")
    r = hutch("network", "rm", "web", "ghost")
    assert (r.returncode, r.stdout, r.stderr) == (1, "web\n", "Error: No such network: ghost\n")
    assert "br-" + nid[:12] not in os.listdir("/sys/class/net")


def test_predefined_cannot_be_removed_and_prune(hutch):
    r = hutch("network", "rm", "bridge")
    assert (r.returncode, r.stderr) == (
        1, "Error response from daemon: bridge is a pre-defined network and cannot be removed\n")
    assert hutch("network", "create", "--subnet", "10.245.%d.0/24" % os.urandom(1)[0], "spare").returncode == 0
    r = hutch("network", "prune", stdin="n\n")
    assert r.stdout.startswith("WARNING! This will remove all custom networks not used by at least "
                               "one container.\nAre you sure you want to continue? [y/N] ")
    assert "spare" in hutch("network", "ls").stdout
    r = hutch("network", "prune", "-f")
    assert r.stdout == "Deleted Networks:\nspare\n"
    assert hutch("network", "prune", "-f").stdout == ""


def test_refused_flags_and_drivers(hutch):
    r = hutch("network", "create", "-d", "overlay", "x")
    assert (r.returncode, r.stderr) == (1, 'Error response from daemon: plugin "overlay" not found\n')
    r = hutch("network", "create", "--ipv6", "x")
    assert r.returncode == 1 and "--ipv6 is not supported" in r.stderr
    r = hutch("network", "ls", "-f", "color=red")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: Invalid filter 'color'\n")
    r = hutch("network", "create")
    assert r.returncode == 1 and "requires exactly 1 argument" in r.stderr
