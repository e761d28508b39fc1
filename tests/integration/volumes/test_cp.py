"""`hutch cp` on created (not started) containers: the container side runs in a forked
child with a private mount namespace holding the rootfs and its volumes."""
import io
import os
import stat
import tarfile

import pytest

pytestmark = pytest.mark.root


def make_tar(entries) -> bytes:
    """entries: (name, kind, payload) with kind file|dir|symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tf.addfile(info)
            else:
                data = payload.encode()
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_members(data: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


@pytest.fixture
def ctr(h):
    names = []

    def create(*flags):
        name = h.name("cp")
        h("create", "--name", name, *flags, "busybox", "true")
        names.append(name)
        return name
    yield create
    for n in names:
        h("rm", "-v", n, check=False)


def test_round_trip_keeps_modes_and_owners(h, ctr, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "f").write_text("payload\n")
    (src / "x").write_text("#!/bin/sh\n")
    (src / "d" / "g").write_text("deep\n")
    os.symlink("f", src / "l")
    os.link(src / "f", src / "hl")
    os.chown(src / "f", 1234, 5678)
    os.chown(src / "d", 42, 43)
    for p, mode in (("f", 0o640), ("x", 0o4755), ("d", 0o700), ("d/g", 0o600), ("", 0o750)):
        os.chmod(src / p, mode)
    os.utime(src / "f", (1_000_000_000, 1_000_000_000))
    name = ctr()
    h("cp", "-a", str(src), f"{name}:/srv")
    h("cp", str(src), f"{name}:/plain")
    # inside: -a kept the owners, a plain cp gave root
    keep = tar_members(h("cp", f"{name}:/srv", "-", binary=True).stdout)
    assert (keep["srv/f"].uid, keep["srv/f"].gid) == (1234, 5678)
    assert (keep["srv/d"].uid, keep["srv/d"].gid) == (42, 43)
    assert keep["srv/x"].mode == 0o4755 and keep["srv/f"].mtime == 1_000_000_000
    assert keep["srv/l"].issym() and keep["srv/l"].linkname == "f"
    plain = tar_members(h("cp", f"{name}:/plain", "-", binary=True).stdout)
    assert {(m.uid, m.gid) for m in plain.values()} == {(0, 0)}
    # back out: same modes, contents, link and hard link (owners: the caller's, as Docker)
    out = tmp_path / "out"
    h("cp", f"{name}:/srv", str(out))
    for p in ("", "f", "x", "d", "d/g"):
        assert stat.S_IMODE(os.stat(out / p).st_mode) == stat.S_IMODE(os.stat(src / p).st_mode), p
    assert (out / "f").read_text() == "payload\n" and (out / "d" / "g").read_text() == "deep\n"
    assert os.readlink(out / "l") == "f"
    assert os.stat(out / "hl").st_ino == os.stat(out / "f").st_ino
    assert os.stat(out / "f").st_mtime == 1_000_000_000


def test_copy_rules(h, ctr, tmp_path):
    name = ctr()
    f = tmp_path / "file.txt"
    f.write_text("one")
    h("cp", str(f), f"{name}:/tmp")                 # into an existing dir
    h("cp", str(f), f"{name}:/tmp/renamed")         # to a new name
    d = tmp_path / "dir"
    (d / "in").mkdir(parents=True)
    (d / "in" / "a").write_text("a")
    h("cp", str(d), f"{name}:/tmp")                 # dir into dir: /tmp/dir
    h("cp", f"{d}/.", f"{name}:/tmp/contents")      # new dir with the contents
    h("cp", f"{d}/.", f"{name}:/tmp")               # contents into existing dir
    got = tar_members(h("cp", f"{name}:/tmp", "-", binary=True).stdout)
    for want in ("tmp/file.txt", "tmp/renamed", "tmp/dir/in/a", "tmp/contents/in/a", "tmp/in/a"):
        assert want in got, want
    p = h("cp", str(d), f"{name}:/tmp/renamed", check=False)
    assert (p.returncode, p.stderr) == (1, "cannot copy directory\n")
    p = h("cp", str(f), f"{name}:/nonexistent/x", check=False)
    assert p.returncode == 1
    assert p.stderr == f"Error response from daemon: Could not find the file /nonexistent in container {name}\n"
    p = h("cp", f"{name}:/nope", str(tmp_path / "x"), check=False)
    assert p.stderr == f"Error response from daemon: Could not find the file /nope in container {name}\n"
    p = h("cp", f"{name}:/etc/passwd", str(tmp_path / "no" / "such"), check=False)
    assert p.stderr == f'invalid output path: directory "{tmp_path}/no" does not exist\n'
    p = h("cp", "-", f"{name}:/etc/passwd", input="", check=False)
    assert p.stderr == f'destination "{name}:/etc/passwd" must be a directory\n'
    assert h("cp", "a", "b", check=False).stderr == "must specify at least one container source\n"
    assert h("cp", "x:/a", "y:/b", check=False).stderr == "copying between containers is not supported\n"
    p = h("cp", "nosuchctr_zz:/a", str(tmp_path), check=False)
    assert (p.returncode, p.stderr) == (1, "Error response from daemon: No such container: nosuchctr_zz\n")


def test_cp_into_volume_and_ro_volume(h, ctr, tmp_path):
    vol = h.name("cpvol")
    name = ctr("-v", f"{vol}:/data", "-v", f"{vol}:/ro:ro")
    h("cp", "-", f"{name}:/data", input=make_tar([("hello", "file", "hi\n")]).decode())
    mp = h("volume", "inspect", "-f", "{{.Mountpoint}}", vol).stdout.strip()
    assert open(os.path.join(mp, "hello")).read() == "hi\n"
    (tmp_path / "f").write_text("x")
    p = h("cp", str(tmp_path / "f"), f"{name}:/ro/", check=False)
    assert (p.returncode, p.stderr) == (1, "Error response from daemon: mounted volume is marked read-only\n")
    out = h("cp", f"{name}:/ro/hello", "-", binary=True).stdout
    assert tar_members(out)["hello"].size == 3
    h("rm", "-v", name)
    h("volume", "rm", vol)


def test_symlinks_never_lead_out(h, ctr, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    secret = tmp_path / "secret"
    secret.write_text("HOST SECRET")
    name = ctr()
    # the same path exists inside the container, and links there name host paths
    parts = str(victim).strip("/").split("/")
    h("cp", "-", f"{name}:/", input=make_tar(
        [("/".join(parts[:i + 1]), "dir", None) for i in range(len(parts))]).decode())
    h("cp", "-", f"{name}:/", input=make_tar([
        ("esc", "symlink", str(victim)), ("leak", "symlink", str(secret)),
        ("up", "symlink", "../../../../.."),
    ]).decode())
    (tmp_path / "f").write_text("planted")
    h("cp", str(tmp_path / "f"), f"{name}:/esc/planted")
    h("cp", str(tmp_path / "f"), f"{name}:/up/up/esc2")
    h("cp", "-", f"{name}:/", input=make_tar([
        ("lnk", "symlink", str(victim)), ("lnk/through-archive-link", "file", "x")]).decode())
    assert os.listdir(victim) == [], "a container symlink redirected a write onto the host"
    # the writes landed inside the container, where its links point
    inside = tar_members(h("cp", f"{name}:{victim}", "-", binary=True).stdout)
    assert f"{victim.name}/planted" in inside and f"{victim.name}/through-archive-link" in inside
    assert "./esc2" in tar_members(h("cp", f"{name}:/", "-", binary=True).stdout)
    # reading: the link itself, or (-L) the container's file of that name, never the host's
    out = tmp_path / "out"
    h("cp", f"{name}:/leak", str(out))
    assert os.readlink(out) == str(secret)
    p = h("cp", "-L", f"{name}:/leak", str(tmp_path / "out2"), check=False)
    assert p.returncode == 1 and "Could not find the file" in p.stderr
    assert not (tmp_path / "out2").exists()
    # an archive that climbs out is refused, nothing written
    p = h("cp", "-", f"{name}:/tmp", input=make_tar([("../../../../" + str(victim) + "/x", "file", "y")]).decode(),
          check=False)
    assert p.returncode == 1 and "climbs out" in p.stderr
    assert os.listdir(victim) == []
