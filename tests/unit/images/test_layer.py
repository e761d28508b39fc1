"""Layer apply: hostile tars never reach outside the layer root; honest ones keep modes,
owners, mtimes, xattrs, symlinks, hardlinks; whiteouts become overlay whiteouts."""
import hashlib
import io
import os
import stat
import tarfile

import pytest

from hutch.images.layer import OPAQUE_XATTR, LayerError, apply_tar, write_tree

pytestmark = pytest.mark.root  # chown to other owners and mknod need root


def _tar(entries) -> io.BytesIO:
    """entries: (name, kind, extra) with kind file/dir/sym/link/chr/fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = extra if isinstance(extra, bytes) else b"evil"
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "pax":
                data = b"x"
                ti.size = 1
                ti.pax_headers = extra
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _snapshot(top: str, skip: str) -> dict:
    """Everything under top except skip: type, mode, owner, size, content hash, xattrs."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        if dirpath.startswith(skip):
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            if p.startswith(skip):
                continue
            st = os.lstat(p)
            h = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            xattrs = sorted(os.listxattr(p, follow_symlinks=False))
            out[p] = (st.st_mode, st.st_uid, st.st_nlink, st.st_size, st.st_mtime_ns, h, xattrs)
    return out


@pytest.fixture
def arena(tmp_path):
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "file").write_bytes(b"precious")
    (outside / "dir" / "inner").write_bytes(b"precious too")
    root = tmp_path / "root"
    root.mkdir()
    before = _snapshot(str(tmp_path), str(root))
    yield str(tmp_path), str(root), str(outside)
    assert _snapshot(str(tmp_path), str(root)) == before, "something escaped the layer root"


def _apply(root, entries):
    return apply_tar(_tar(entries), root)


HOSTILE = {
    "dotdot file": [("../outside/file", "file", None)],
    "dotdot deep": [("a/../../outside/file", "file", None)],
    "dotdot dir": [("../outside/newdir", "dir", None)],
    "dotdot hardlink target": [("h", "link", "../outside/file")],
    "dotdot hardlink name": [("x", "file", None), ("../outside/h", "link", "x")],
    "dotdot whiteout": [("../outside/.wh.file", "file", None)],
    "whiteout of dotdot": [("a/.wh..", "file", None)],
    "symlink loop": [("a", "sym", "b"), ("b", "sym", "a"), ("a/x", "file", None)],
    "pax path escape": [("innocent", "pax", {"path": "../outside/file"})],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_refused(arena, case):
    _, root, _ = arena
    with pytest.raises(LayerError):
        _apply(root, HOSTILE[case])


def test_symlink_to_absolute_outside_is_resolved_inside(arena):
    _, root, outside = arena
    _apply(root, [("link", "sym", outside), ("link/file", "file", b"inside"),
                  ("link/dir/.wh.inner", "file", None), ("link/dir/.wh..wh..opq", "file", None)])
    inner = root + outside  # the absolute target taken relative to the root
    with open(os.path.join(inner, "file"), "rb") as f:
        assert f.read() == b"inside"
    assert os.path.islink(os.path.join(root, "link"))
    assert os.getxattr(os.path.join(inner, "dir"), OPAQUE_XATTR) == b"y"


def test_symlink_climbing_out_is_clamped_at_root(arena):
    tmp, root, _ = arena
    _apply(root, [("up", "sym", "../../../../.."), ("up/outside/file", "file", b"clamped")])
    with open(os.path.join(root, "outside", "file"), "rb") as f:
        assert f.read() == b"clamped"


def test_symlink_from_earlier_entry_replacing_dir(arena):
    _, root, outside = arena
    _apply(root, [("d/", "dir", None), ("d", "sym", outside + "/dir"),
                  ("d/inner", "file", b"mine")])
    with open(os.path.join(root + outside, "dir", "inner"), "rb") as f:
        assert f.read() == b"mine"


def test_entry_over_symlink_replaces_the_link(arena):
    _, root, outside = arena
    _apply(root, [("l", "sym", outside + "/file"), ("l", "file", b"new")])
    assert not os.path.islink(os.path.join(root, "l"))


def test_hardlink_to_symlink_links_the_link_not_its_target(arena):
    _, root, outside = arena
    _apply(root, [("l", "sym", outside + "/file"), ("h", "link", "l")])
    assert os.path.islink(os.path.join(root, "h"))


def test_hardlink_to_absolute_target_stays_inside(arena):
    _, root, outside = arena
    with pytest.raises(LayerError):
        _apply(root, [("h", "link", outside + "/file")])


def test_hardlink_through_symlinked_dir_stays_inside(arena):
    _, root, outside = arena
    with pytest.raises(LayerError):
        _apply(root, [("d", "sym", outside), ("h", "link", "d/file")])


def test_absolute_names_land_inside(arena):
    _, root, _ = arena
    _apply(root, [("/etc/passwd", "file", b"root")])
    assert os.path.isfile(os.path.join(root, "etc", "passwd"))


def test_overlay_xattrs_from_tar_are_dropped(arena):
    _, root, _ = arena
    _apply(root, [("f", "pax", {"SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                "SCHILY.xattr.user.ok": "yes"})])
    names = os.listxattr(os.path.join(root, "f"))
    assert "trusted.overlay.redirect" not in names and "user.ok" in names


def test_whiteouts_become_overlay_whiteouts(tmp_path):
    root = str(tmp_path)
    apply_tar(_tar([("etc/", "dir", None), ("etc/.wh.gone", "file", None),
                    ("var/.wh..wh..opq", "file", None)]), root)
    st = os.lstat(os.path.join(root, "etc", "gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(root, "var"), OPAQUE_XATTR) == b"y"
    # and back out as .wh. entries
    out = io.BytesIO()
    write_tree(root, out, whiteouts=True)
    out.seek(0)
    names = tarfile.open(fileobj=out).getnames()
    assert "etc/.wh.gone" in names and "var/.wh..wh..opq" in names


def _describe(root: str) -> dict:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            xattrs = {k: os.getxattr(p, k, follow_symlinks=False)
                      for k in os.listxattr(p, follow_symlinks=False)}
            mtime = None if stat.S_ISDIR(st.st_mode) and False else st.st_mtime_ns // 10**9
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, mtime, link, data, xattrs,
                        st.st_nlink, st.st_rdev)
    return out


def test_tree_round_trip_keeps_everything(tmp_path):
    src = tmp_path / "src"
    (src / "d" / "sub").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"hello")
    os.chmod(src / "d" / "f", 0o4755)
    os.chown(src / "d" / "f", 1000, 1001)
    os.setxattr(src / "d" / "f", "user.note", b"kept")
    os.link(src / "d" / "f", src / "hard")
    os.symlink("d/f", src / "sym")
    os.symlink("/nowhere", src / "dangling")
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(src / "fifo", 0o600)
    os.chmod(src / "d" / "sub", 0o1777)
    for p in (src / "d" / "sub", src / "d"):
        os.utime(p, (1_000_000, 1_000_000))
    os.utime(src / "sym", (2_000_000, 2_000_000), follow_symlinks=False)
    buf = io.BytesIO()
    write_tree(str(src), buf)
    buf.seek(0)
    dst = tmp_path / "dst"
    dst.mkdir()
    diff_id, size, tar_size = apply_tar(buf, str(dst))
    assert diff_id == "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    assert tar_size == len(buf.getvalue())
    assert _describe(str(src)) == _describe(str(dst))


def test_later_entries_replace_earlier_ones(tmp_path):
    root = str(tmp_path)
    apply_tar(_tar([
        ("d/", "dir", None), ("d/x", "file", b"1"),
        ("d", "file", b"file now"),            # a file replaces a whole directory
        ("f", "file", b"old"), ("f/", "dir", None),   # a directory replaces a file
        ("s", "file", b"old"), ("s", "sym", "target"),
        ("h0", "file", b"linked"), ("h", "file", b"old"), ("h", "link", "h0"),
        ("w/", "dir", None), ("w/y", "file", b"1"), ("w/y", "file", b"2"),
        ("gone/", "dir", None), ("gone/z", "file", b"1"), (".wh.gone", "file", None),
        ("k/", "dir", None), ("k/keep", "file", b"1"), ("k/", "dir", None),
    ]), root)
    assert open(os.path.join(root, "d"), "rb").read() == b"file now"
    assert os.path.isdir(os.path.join(root, "f"))
    assert os.readlink(os.path.join(root, "s")) == "target"
    assert os.path.samefile(os.path.join(root, "h"), os.path.join(root, "h0"))
    assert open(os.path.join(root, "w", "y"), "rb").read() == b"2"
    assert stat.S_ISCHR(os.lstat(os.path.join(root, "gone")).st_mode)
    assert os.listdir(os.path.join(root, "k")) == ["keep"]  # a repeated dir keeps its contents


def test_hardlink_onto_itself_is_refused(tmp_path):
    with pytest.raises(LayerError):
        apply_tar(_tar([("a", "file", b"x"), ("a", "link", "a")]), str(tmp_path))
