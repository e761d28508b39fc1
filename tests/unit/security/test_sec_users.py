"""--user and --group-add resolved from the container's /etc/passwd and /etc/group files."""
import os

import pytest

from hutch.engine.errors import InvalidParameter
from hutch.engine.security import ExecUser, resolve_user
from hutch.securejoin import secure_join

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "short:x:2000:2000\n"
          "broken:x:notanumber:0::/:\n")
GROUP = ("root:x:0:\nwheel:x:10:alice,bob\nalice:x:1000:\naudio:x:29:alice\n"
         "staff:x:50:\n")


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    return str(root)


@pytest.mark.parametrize("spec,expected", [
    (None, ExecUser(0, 0, [], "/root")),
    ("root", ExecUser(0, 0, [], "/root")),
    ("alice", ExecUser(1000, 1000, [10, 29], "/home/alice")),
    ("1000", ExecUser(1000, 1000, [10, 29], "/home/alice")),
    ("alice:staff", ExecUser(1000, 50, [], "/home/alice")),
    ("alice:50", ExecUser(1000, 50, [], "/home/alice")),
    ("alice:777", ExecUser(1000, 777, [], "/home/alice")),
    ("4242", ExecUser(4242, 0, [], "/")),
    ("4242:4343", ExecUser(4242, 4343, [], "/")),
    ("4242:wheel", ExecUser(4242, 10, [], "/")),
    ("short", ExecUser(2000, 2000, [], "/")),
    ("daemon", ExecUser(1, 1, [], "/usr/sbin")),
])
def test_resolve(rootfs, spec, expected):
    assert resolve_user(rootfs, spec) == expected


def test_unknown_user(rootfs):
    with pytest.raises(InvalidParameter) as e:
        resolve_user(rootfs, "foo")
    assert str(e.value) == "unable to find user foo: no matching entries in passwd file"


def test_unknown_group(rootfs):
    with pytest.raises(InvalidParameter) as e:
        resolve_user(rootfs, "alice:nogroup")
    assert str(e.value) == "unable to find group nogroup: no matching entries in group file"


def test_out_of_range(rootfs):
    with pytest.raises(InvalidParameter, match="uids and gids must be in range"):
        resolve_user(rootfs, "4294967296")


def test_group_add(rootfs):
    assert resolve_user(rootfs, "alice", ["staff", "4000", "10"]).additional_gids == [
        10, 29, 50, 4000, 10]
    with pytest.raises(InvalidParameter) as e:
        resolve_user(rootfs, None, ["nope"])
    assert str(e.value) == "Unable to find group nope: no matching entries in group file"


def test_no_etc_files(tmp_path):
    assert resolve_user(str(tmp_path), "123:456") == ExecUser(123, 456, [], "/")
    assert resolve_user(str(tmp_path), None) == ExecUser(0, 0, [], "/")
    with pytest.raises(InvalidParameter, match="unable to find user bob"):
        resolve_user(str(tmp_path), "bob")


def test_passwd_symlink_cannot_escape(tmp_path):
    """An image's /etc/passwd pointing outside its root is read inside the root."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "inside").mkdir()
    (root / "inside/passwd").write_text("eve:x:3000:3000::/:/bin/sh\n")
    (tmp_path / "host-passwd").write_text("eve:x:0:0::/:/bin/sh\n")
    os.symlink("../../../../../../host-passwd", root / "etc/passwd")
    with pytest.raises(InvalidParameter):
        resolve_user(str(root), "eve")   # the host file is never reached
    os.unlink(root / "etc/passwd")
    os.symlink("/../../inside/passwd", root / "etc/passwd")
    assert resolve_user(str(root), "eve").uid == 3000


def test_secure_join(tmp_path):
    root = tmp_path / "r"
    (root / "a/b").mkdir(parents=True)
    os.symlink("/a", root / "abs")
    os.symlink("../../../..", root / "a/up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert secure_join(str(root), "/abs/b") == str(root / "a/b")
    assert secure_join(str(root), "/a/up/etc") == str(root / "etc")
    assert secure_join(str(root), "../../x") == str(root / "x")
    with pytest.raises(OSError):
        secure_join(str(root), "/loop1")
