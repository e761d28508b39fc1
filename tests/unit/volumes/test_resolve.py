"""open_in_root / resolve_in_root / secure_join: symlinks never lead out of the root."""
import os
import stat

import pytest

from hutch.engine.volumes import open_in_root, resolve_in_root, secure_join, fd_path


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("root:x:0:0\n")
    (r / "data").mkdir()
    os.symlink("/", r / "up")                   # absolute: the root itself
    os.symlink("../../../../..", r / "dots")    # climbs: clamped at the root
    os.symlink("/etc", r / "abs-etc")
    os.symlink("data/sub", r / "rel")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host")
    os.symlink(str(outside), r / "escape")      # host path: re-read inside the root
    return r


@pytest.mark.parametrize("path,want", [
    ("/etc/passwd", "/etc/passwd"),
    ("etc/../etc/./passwd", "/etc/passwd"),
    ("/../../etc", "/etc"),
    ("/up/etc", "/etc"),
    ("/dots/etc/passwd", "/etc/passwd"),
    ("/abs-etc/passwd", "/etc/passwd"),
    ("/rel/x", "/data/sub/x"),
    ("/escape/secret", None),
    ("/etc/missing/../passwd", "/etc/passwd"),
    ("/missing/../rel/x", "/data/sub/x"),
    ("/missing/deeper/../../abs-etc", "/etc"),
])
def test_resolve_in_root(root, path, want):
    got = resolve_in_root(str(root), path)
    if want is None:   # the host path of "outside" taken as a container path
        assert got == str(root.parent / "outside" / "secret")
        assert not os.path.exists(secure_join(str(root), path))
    else:
        assert got == want
    assert secure_join(str(root), path).startswith(str(root) + "/") or got == "/"


def test_open_in_root_stays_inside(root):
    fd = open_in_root(str(root), "/dots/etc/passwd")
    try:
        assert os.readlink(fd_path(fd)) == str(root / "etc" / "passwd")
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        os.close(open_in_root(str(root), "/escape/secret"))


def test_loop_is_eloop(root):
    with pytest.raises(OSError) as e:
        open_in_root(str(root), "/loop1")
    assert e.value.errno == 40


def test_create_dirs_through_symlink_land_inside(root, tmp_path):
    fd = open_in_root(str(root), "/escape/made/here", create="dir")
    try:
        real = os.readlink(fd_path(fd))
    finally:
        os.close(fd)
    inside = str(root / tmp_path.relative_to("/") / "outside" / "made" / "here")
    assert real == inside
    assert not (tmp_path / "outside" / "made").exists()


def test_create_file_target(root):
    fd = open_in_root(str(root), "/abs-etc/hostname", create="file")
    try:
        assert stat.S_ISREG(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    assert (root / "etc" / "hostname").is_file()


def test_not_a_directory(root):
    with pytest.raises(NotADirectoryError):
        open_in_root(str(root), "/etc/passwd/x", create="dir")


def test_follow_final_false_returns_link(root):
    fd = open_in_root(str(root), "/abs-etc", follow_final=False)
    try:
        assert stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def test_root_as_fd(root):
    rfd = os.open(str(root), os.O_PATH | os.O_DIRECTORY)
    try:
        fd = open_in_root(rfd, "up/up/etc")
        assert os.readlink(fd_path(fd)) == str(root / "etc")
        os.close(fd)
    finally:
        os.close(rfd)


def test_create_last_component_in_existing_parent(root):
    fd = open_in_root(str(root), "/abs-etc/made", create="dir", mode=0o700)
    try:
        assert os.readlink(fd_path(fd)) == str(root / "etc" / "made")
    finally:
        os.close(fd)
    assert stat.S_IMODE((root / "etc" / "made").stat().st_mode) == 0o700


def test_create_through_dangling_last_link_lands_inside(root, tmp_path):
    os.symlink(str(tmp_path / "outside" / "new"), root / "dangling")
    fd = open_in_root(str(root), "/dangling", create="dir")
    try:
        real = os.readlink(fd_path(fd))
    finally:
        os.close(fd)
    assert real == str(root / tmp_path.relative_to("/") / "outside" / "new")
    assert not (tmp_path / "outside" / "new").exists()
