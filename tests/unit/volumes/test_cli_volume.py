"""`hutch volume ...` output and errors, in-process on a temp root."""
import json
import os

import pytest

from hutch.cli.main import main


@pytest.fixture
def h(tmp_path, capsys):
    root = str(tmp_path / "root")

    def run(*argv):
        code = main(["--root", root, *argv])
        out, err = capsys.readouterr()
        return code, out, err
    run.root = root
    return run


def test_create_ls_inspect_rm(h):
    assert h("volume", "create", "--label", "k=v", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "myvol")[1] == "myvol\n"
    code, out, _ = h("volume", "create")
    anon = out.strip()
    assert code == 0 and len(anon) == 64
    code, out, _ = h("volume", "ls")
    lines = out.splitlines()
    assert lines[0] == "DRIVER    VOLUME NAME"
    assert sorted(lines[1:]) == sorted([f"local     {anon}", "local     myvol"])
    code, out, _ = h("volume", "inspect", "myvol")
    assert out.startswith("[\n    {\n        \"CreatedAt\": ")
    info = json.loads(out)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    assert info["Labels"] == {"k": "v"}
    assert list(json.loads(out)[0]["Options"]) == ["device", "o", "type"]      # Go map order
    assert h("volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "myvol")[1] == "local myvol\n"
    assert h("volume", "ls", "-q", "--filter", "label=k")[1] == "myvol\n"
    assert h("volume", "ls", "--format", "{{.Name}}|{{.Labels}}", "-f", "name=my")[1] == "myvol|k=v\n"
    assert h("volume", "rm", "myvol", anon) == (0, f"myvol\n{anon}\n", "")


def test_errors(h):
    assert h("volume", "inspect", "nosuch") == (1, "[]\n", "Error response from daemon: get nosuch: no such volume\n")
    assert h("volume", "rm", "nosuch") == (1, "", "Error response from daemon: get nosuch: no such volume\n")
    assert h("volume", "rm", "-f", "nosuch") == (0, "nosuch\n", "")
    code, _, err = h("volume", "ls", "-f", "color=red")
    assert (code, err) == (1, "Error response from daemon: invalid filter 'color'\n")
    code, _, err = h("volume", "ls", "-f", "dangling")
    assert code == 1 and err.startswith("bad format of filter (expected name=value)")
    code, _, err = h("volume", "create", "-o", "foo=bar", "vx")
    assert (code, err) == (1, 'Error response from daemon: create vx: invalid option key: "foo"\n')
    code, _, err = h("volume", "create", "-d", "nfsplug", "vx")
    assert code == 1 and 'plugin "nfsplug" not found' in err
    code, _, err = h("volume", "create", "--name", "a1", "b1")
    assert code == 1 and "Conflicting options" in err
    code, _, err = h("volume", "inspect", "-f", "{{.Nope", "x1")
    assert code == 125 and err.startswith("template parsing error:")


def test_in_use_and_prune(h):
    h("volume", "create", "busy")
    h("volume", "create", "idle")
    cid = "e" * 64
    os.makedirs(os.path.join(h.root, "containers", cid))
    from hutch.engine.volumestore import VolumeStore
    from hutch.paths import Paths
    VolumeStore(Paths.from_root(h.root)).add_ref("busy", cid)
    assert h("volume", "rm", "busy") == (1, "", f"Error response from daemon: remove busy: volume is in use - [{cid}]\n")
    assert h("volume", "ls", "-q", "-f", "dangling=true")[1] == "idle\n"
    assert h("volume", "prune", "-f") == (0, "Deleted Volumes:\nidle\n\nTotal reclaimed space: 0B\n", "")
    assert h("volume", "prune", "-f")[1] == "Total reclaimed space: 0B\n"
    assert h("volume", "ls", "-q")[1] == "busy\n"


def test_ls_natural_order(h):
    for n in ("vol10", "vol2", "vol1", "alpha"):
        h("volume", "create", n)
    assert h("volume", "ls", "-q")[1].split() == ["alpha", "vol1", "vol2", "vol10"]
