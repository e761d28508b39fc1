"""Hostile `load` archives and import tars: refused or kept inside, never reaching out."""
import io
import json
import os
import tarfile

import pytest

from imgtest_helpers import hutch

pytestmark = pytest.mark.root


def _archive(entries) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _layer_tar(entries) -> bytes:
    return _archive(entries)


SECRET = "/etc/hostname"


def _cases(outside: str):
    layer = _layer_tar([("f", "file", b"x")])
    import hashlib
    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    docker = lambda config_name, layer_name, extra=(): _archive(  # noqa: E731
        [("l/layer.tar", "file", layer), ("c.json", "file", cfg), *extra,
         ("manifest.json", "file", json.dumps([{"Config": config_name, "RepoTags": ["x:1"],
                                                 "Layers": [layer_name]}]).encode())])
    return {
        "config path climbs out": docker("../../../../etc/passwd", "l/layer.tar"),
        "layer path climbs out": docker("c.json", "../../../../" + SECRET),
        "layer is a symlink to the host": docker("c.json", "evil.tar",
                                                 [("evil.tar", "sym", SECRET)]),
        "layer through a symlinked dir": docker("c.json", "d/layer.tar",
                                                [("d", "sym", outside)]),
        "entry writes through a symlink": _archive([("d", "sym", outside),
                                                    ("d/planted", "file", b"x")]),
        "oci digest climbs out": _archive([
            ("oci-layout", "file", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", "file", json.dumps({"manifests": [
                {"digest": "sha256:../../../../etc/passwd", "size": 1}]}).encode())]),
        "layer diff id is not its content": docker("c.json", "l/other.tar",
                                                   [("l/other.tar", "file",
                                                     _layer_tar([("g", "file", b"y")]))]),
    }


@pytest.mark.parametrize("case", ["config path climbs out", "layer path climbs out",
                                  "layer is a symlink to the host",
                                  "layer through a symlinked dir",
                                  "entry writes through a symlink", "oci digest climbs out",
                                  "layer diff id is not its content"])
def test_hostile_load(hutch_root, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _cases(str(outside))[case]
    p = hutch(hutch_root, "load", input=data, check=False)
    assert p.returncode == 1 and p.stderr.decode().startswith("Error response from daemon: ")
    assert b"Traceback" not in p.stderr
    assert os.listdir(outside) == []
    assert hutch(hutch_root, "images", "-q").stdout == b""
    images = os.path.join(hutch_root, "images")
    for sub in ("layers", "tmp"):
        d = os.path.join(images, sub)
        assert not os.path.isdir(d) or os.listdir(d) == []


def test_hostile_import_stays_inside(hutch_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _archive([("d", "sym", str(outside)), ("d/planted", "file", b"x"),
                     ("up", "sym", "../../../../../../.."), ("up/" + str(outside)[1:] + "/p2",
                                                                "file", b"y")])
    image_id = hutch(hutch_root, "import", "-", input=data).stdout.decode().strip()
    assert os.listdir(outside) == []
    info = json.loads(hutch(hutch_root, "image", "inspect", image_id).stdout)[0]
    layer = info["GraphDriver"]["Data"]["UpperDir"]
    assert os.path.isfile(os.path.join(layer + str(outside), "planted"))
    assert os.path.isfile(os.path.join(layer + str(outside), "p2"))
    p = hutch(hutch_root, "import", "-", input=_archive([("../x", "file", b"x")]), check=False)
    assert p.returncode == 1 and "leaves the layer root" in p.stderr.decode()
