"""cp's pieces without a container: tar stream shape, extraction inside a root, copy rules,
user-namespace id mapping."""
import io
import os
import tarfile

import pytest

from hutch.cli.volumes import _CpFailed, _destination, _split_cp_arg
from hutch.engine.volumes import CopyError, Extractor, IdMap, TarWriter, archive_entry


def test_tar_stream_is_go_sized(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    r, w = os.pipe()
    tw = TarWriter(w)
    d = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    archive_entry(tw, d, "f", "f")
    tw.close()
    os.close(w)
    data = os.read(r, 1 << 16)
    os.close(r)
    os.close(d)
    assert tw.count == len(data) == 2048          # header, one data block, two zero blocks
    assert tarfile.open(fileobj=io.BytesIO(data)).getnames() == ["f"]


def tar_of(*entries) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tf.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, payload
                tf.addfile(info)
            else:
                info.size, info.mode = len(payload), 0o640
                tf.addfile(info, io.BytesIO(payload))
    buf.seek(0)
    return buf


def test_extract_stays_in_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    Extractor(str(root), "/").extract(tar_of(
        ("d", "dir", None), ("d/f", "file", b"data"), ("d/h", "hard", "d/f"),
        ("esc", "sym", str(outside)), ("esc/x", "file", b"through a link")))
    assert (root / "d" / "f").read_bytes() == b"data"
    assert os.stat(root / "d" / "h").st_ino == os.stat(root / "d" / "f").st_ino
    assert oct(os.stat(root / "d" / "f").st_mode & 0o777) == "0o640"
    assert os.listdir(outside) == []
    assert (root / str(outside).lstrip("/") / "x").read_bytes() == b"through a link"
    with pytest.raises(CopyError, match="climbs out"):
        Extractor(str(root), "/").extract(tar_of(("../x", "file", b"")))
    with pytest.raises(CopyError, match='cannot overwrite directory "/d" with non-directory'):
        Extractor(str(root), "/").extract(tar_of(("d", "file", b"")))


@pytest.mark.parametrize("src_isdir,contents,src,dst,exists,isdir,want", [
    (False, False, "/a/f", "/t", True, True, ("/t", "f")),
    (False, False, "/a/f", "/t/new", False, False, ("/t", "new")),
    (False, False, "/a/f", "/t/old", True, False, ("/t", "old")),
    (True, False, "/a/d", "/t", True, True, ("/t", "d")),
    (True, True, "/a/d", "/t", True, True, ("/t", "")),
    (True, False, "/a/d", "/t/new", False, False, ("/t", "new")),
])
def test_copy_rules(src_isdir, contents, src, dst, exists, isdir, want):
    assert _destination(src_isdir, contents, src, dst, exists, isdir) == want


@pytest.mark.parametrize("src_isdir,dst,exists,isdir,msg", [
    (True, "/t/file", True, False, "cannot copy directory"),
    (False, "/t/new/", False, False, "no such directory"),
])
def test_copy_rule_errors(src_isdir, dst, exists, isdir, msg):
    with pytest.raises(_CpFailed, match=msg):
        _destination(src_isdir, False, "/a/x", dst, exists, isdir)


def test_split_cp_arg():
    assert _split_cp_arg("c:/x") == ("c", "/x")
    assert _split_cp_arg("/abs:odd") == ("", "/abs:odd")
    assert _split_cp_arg("./file:name") == ("", "./file:name")
    assert _split_cp_arg("plain") == ("", "plain")


def test_idmap():
    m = IdMap([{"containerID": 0, "hostID": 100000, "size": 65536}],
              [{"containerID": 0, "hostID": 200000, "size": 1000}])
    assert m.to_host(0, 0) == (100000, 200000)
    assert m.to_host(1000, 5000) == (101000, 65534)
    assert m.to_container(100005, 200007) == (5, 7)
    assert IdMap.of_spec({"linux": {}}) is None
