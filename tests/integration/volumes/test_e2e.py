"""Volumes as users meet them: `hutch run` with -v/--mount/--tmpfs/--volumes-from, rm -v,
volume rm while in use, inspect's Mounts. Skipped (with the reason) while `hutch run` cannot
run a container."""
import json
import os
import time

import pytest

pytestmark = pytest.mark.root


def run(h, *args, check=True, input=None):
    return h("run", "--rm", *h.run_args, *args, check=check, input=input)


def test_data_survives_rm_and_shows_in_new_container(run_ok):
    h = run_ok
    vol = h.name("keep")
    run(h, "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    assert run(h, "-v", f"{vol}:/other", "busybox", "cat", "/other/f").stdout == "persisted\n"
    assert run(h, "--mount", f"source={vol},target=/m", "busybox", "cat", "/m/f").stdout == "persisted\n"
    h("volume", "rm", vol)


def test_readonly_is_read_only(run_ok, tmp_path):
    h = run_ok
    vol = h.name("ro")
    (tmp_path / "hostfile").write_text("host")
    for flags in (["-v", f"{vol}:/d:ro"], ["--mount", f"src={vol},dst=/d,readonly"],
                  ["-v", f"{tmp_path}:/d:ro"]):
        p = run(h, *flags, "busybox", "sh", "-c", "touch /d/x; echo rc=$?; grep ' /d ' /proc/mounts",
                check=False)
        assert "rc=1" in p.stdout and "Read-only file system" in p.stderr, flags
        assert " ro," in p.stdout, flags
    assert os.listdir(tmp_path) == ["hostfile"]
    h("volume", "rm", vol)


def test_bind_source_created_and_writable(run_ok, tmp_path):
    h = run_ok
    src = tmp_path / "made" / "here"
    run(h, "-v", f"{src}:/w", "busybox", "sh", "-c", "echo hi > /w/f")
    assert (src / "f").read_text() == "hi\n"
    p = run(h, "--mount", f"type=bind,src={tmp_path}/absent,dst=/w", "busybox", "true", check=False)
    assert p.returncode == 125
    assert f"bind source path does not exist: {tmp_path}/absent" in p.stderr


def test_copy_up_of_image_content(run_ok):
    h = run_ok
    vol = h.name("cu")
    out = run(h, "-v", f"{vol}:/etc", "busybox", "cat", "/etc/passwd").stdout
    assert out.startswith("root:x:0:0:")
    mp = h("volume", "inspect", "-f", "{{.Mountpoint}}", vol).stdout.strip()
    assert open(os.path.join(mp, "passwd")).read() == out
    # nocopy: an empty volume stays empty
    vol2 = h.name("nc")
    out = run(h, "--mount", f"src={vol2},dst=/etc,volume-nocopy", "busybox", "ls", "-A", "/etc").stdout
    assert out == ""
    h("volume", "rm", vol, vol2)


def test_anonymous_volumes_and_rm_v(run_ok):
    h = run_ok
    before = set(h("volume", "ls", "-q").stdout.split())
    keep, drop = h.name("anon"), h.name("anon")
    for name in (keep, drop):
        h("run", "--name", name, *h.run_args, "-v", "/scratch", "busybox", "sh", "-c",
          "echo x > /scratch/f")
    mounts = json.loads(h("inspect", "-f", "{{json .Mounts}}", keep).stdout)
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and len(mounts[0]["Name"]) == 64
    assert mounts[0]["Destination"] == "/scratch" and mounts[0]["Mode"] == "" and mounts[0]["RW"]
    kept = mounts[0]["Name"]
    dropped = json.loads(h("inspect", "-f", "{{json .Mounts}}", drop).stdout)[0]["Name"]
    h("rm", keep)
    h("rm", "-v", drop)
    now = set(h("volume", "ls", "-q").stdout.split())
    assert kept in now and dropped not in now
    h("volume", "rm", kept)
    assert set(h("volume", "ls", "-q").stdout.split()) == before


def test_volume_in_use_cannot_be_removed(run_ok):
    h = run_ok
    vol, name = h.name("busy"), h.name("user")
    cid = h("create", "--name", name, *h.run_args, "-v", f"{vol}:/d", "busybox", "true").stdout.strip()
    p = h("volume", "rm", vol, check=False)
    assert (p.returncode, p.stderr) == (1, f"Error response from daemon: remove {vol}: volume is in use - [{cid}]\n")
    p = h("volume", "rm", "-f", vol, check=False)
    assert p.returncode == 1 and "volume is in use" in p.stderr
    assert vol not in h("volume", "ls", "-q", "-f", "dangling=true").stdout.split()
    h("volume", "prune", "-f")
    assert vol in h("volume", "ls", "-q").stdout.split()
    h("rm", name)
    h("volume", "rm", vol)


@pytest.mark.parametrize("flags", [
    ["--tmpfs", "/t:size=1m"],
    ["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"],
    ["VOLUME"],
    ["MOUNT-VOLUME-OPT"],
])
def test_tmpfs_size_limit_holds(run_ok, flags):
    h = run_ok
    vol = None
    if flags == ["VOLUME"]:
        vol = h.name("tv")
        h("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", vol)
        flags = ["-v", f"{vol}:/t"]
    elif flags == ["MOUNT-VOLUME-OPT"]:     # the volume is created by --mount, with options
        vol = h.name("tv")
        flags = ["--mount", f"src={vol},dst=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
                            "volume-opt=o=size=1m"]
    p = run(h, *flags, "busybox", "sh", "-c",
            "dd if=/dev/zero of=/t/big bs=1024 count=2048; echo rc=$?; df -k /t | tail -1",
            check=False)
    assert "rc=1" in p.stdout and "No space left on device" in p.stderr
    assert " 1024 " in p.stdout
    if vol:
        h("volume", "rm", vol)


def test_tmpfs_options_and_inspect_mounts(run_ok, tmp_path):
    h = run_ok
    name, vol = h.name("insp"), h.name("iv")
    h("create", "--name", name, *h.run_args, "-v", f"{tmp_path}:/b:ro", "-v", f"{vol}:/v",
      "--mount", "type=tmpfs,dst=/t", "--tmpfs", "/run:exec,mode=755", "busybox", "true")
    got = {m["Destination"]: m for m in json.loads(h("inspect", "-f", "{{json .Mounts}}", name).stdout)}
    assert got["/b"] == {"Type": "bind", "Source": str(tmp_path), "Destination": "/b", "Mode": "ro",
                         "RW": False, "Propagation": "rprivate"}
    assert got["/v"]["Name"] == vol and got["/v"]["Driver"] == "local" and got["/v"]["Mode"] == "z"
    assert got["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
                         "Propagation": ""}
    assert "/run" not in got
    h("rm", name)
    out = run(h, "--tmpfs", "/run:exec,mode=755", "busybox", "grep", " /run ", "/proc/mounts").stdout
    assert "nosuid" in out and "nodev" in out and "noexec" not in out and "mode=755" in out
    h("volume", "rm", vol)


def test_volumes_from(run_ok):
    h = run_ok
    src, vol = h.name("src"), h.name("vf")
    h("create", "--name", src, *h.run_args, "-v", f"{vol}:/shared", "-v", "/anon", "busybox", "true")
    run(h, "--volumes-from", src, "busybox", "sh", "-c", "echo from > /shared/f; echo a > /anon/a")
    p = run(h, "--volumes-from", f"{src}:ro", "busybox", "sh", "-c",
            "cat /shared/f /anon/a; touch /shared/g", check=False)
    assert p.stdout == "from\na\n" and "Read-only file system" in p.stderr
    h("rm", "-v", src)
    h("volume", "rm", vol)


def test_planted_symlink_at_mount_target_does_not_escape(run_ok, tmp_path):
    """An image with /plant -> a host directory: a bind mount at /plant/x must land inside
    the rootfs, never on the host."""
    import io
    import tarfile
    h = run_ok
    victim = tmp_path / "victim"
    victim.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "seen").write_text("bound")
    base, image = h.name("base"), f"plant-{h.name('img').lower()}:latest"
    h("create", "--name", base, "busybox", "true")
    exported = h("export", base, binary=True).stdout
    h("rm", base)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(exported)) as tin, \
            tarfile.open(fileobj=out, mode="w") as tout:
        for m in tin:
            tout.addfile(m, tin.extractfile(m) if m.isreg() else None)
        link = tarfile.TarInfo("plant")
        link.type, link.linkname = tarfile.SYMTYPE, str(victim)
        tout.addfile(link)
    (tmp_path / "img.tar").write_bytes(out.getvalue())
    h("import", str(tmp_path / "img.tar"), image)
    try:
        p = run(h, "-v", f"{src}:/plant/x", image, "cat", "/plant/x/seen", check=False)
        assert p.stdout == "bound", p.stderr
        assert os.listdir(victim) == [], "the mount target was created on the host"
        with open("/proc/self/mountinfo") as f:
            assert str(victim) not in f.read()
    finally:
        h("rmi", image, check=False)


def test_cp_with_running_container(run_ok, tmp_path):
    h = run_ok
    name, vol = h.name("live"), h.name("lv")
    h("run", "-d", "--name", name, *h.run_args, "-v", f"{vol}:/data", "--tmpfs", "/scratch",
      "busybox", "sh", "-c", "echo made inside > /scratch/out; exec sleep 30")
    try:
        (tmp_path / "in").write_text("into a running container\n")
        h("cp", str(tmp_path / "in"), f"{name}:/data/in")
        h("cp", str(tmp_path / "in"), f"{name}:/root/in")
        mp = h("volume", "inspect", "-f", "{{.Mountpoint}}", vol).stdout.strip()
        assert open(os.path.join(mp, "in")).read() == "into a running container\n"
        for _ in range(100):   # the container's tmpfs, seen only through its mount namespace
            if h("cp", f"{name}:/scratch/out", str(tmp_path / "out"), check=False).returncode == 0:
                break
            time.sleep(0.05)
        assert (tmp_path / "out").read_text() == "made inside\n"
        h("cp", f"{name}:/root/in", str(tmp_path / "back"))
        assert (tmp_path / "back").read_text() == "into a running container\n"
    finally:
        h("rm", "-f", name)
        h("volume", "rm", vol)


def test_image_volume_entries_become_anonymous_volumes(run_ok, tmp_path):
    h = run_ok
    base, image = h.name("vb"), f"volimg-{h.name('i').lower()}:1"
    h("create", "--name", base, "busybox", "true")
    (tmp_path / "rootfs.tar").write_bytes(h("export", base, binary=True).stdout)
    h("rm", base)
    h("import", "-c", 'VOLUME ["/data", "/etc"]', "-c", 'CMD ["sh"]', str(tmp_path / "rootfs.tar"), image)
    name = h.name("vi")
    before = set(h("volume", "ls", "-q").stdout.split())
    try:
        out = h("run", "--name", name, *h.run_args, "-v", f"{tmp_path}:/data", image,
                "cat", "/etc/passwd").stdout
        assert out.startswith("root:x:0:0:")              # copied up into the anonymous volume
        mounts = {m["Destination"]: m for m in json.loads(
            h("inspect", "-f", "{{json .Mounts}}", name).stdout)}
        assert mounts["/data"]["Type"] == "bind"           # the user's mount wins
        assert mounts["/etc"]["Type"] == "volume" and len(mounts["/etc"]["Name"]) == 64
        assert set(h("volume", "ls", "-q").stdout.split()) - before == {mounts["/etc"]["Name"]}
    finally:
        h("rm", "-v", name, check=False)
        h("rmi", image, check=False)
    assert set(h("volume", "ls", "-q").stdout.split()) == before


def test_bind_propagation(run_ok, tmp_path):
    """rshared needs a shared host mount (Docker's error otherwise); with one, a mount made
    on the host later shows up inside the running container."""
    from hutch import _sys
    h = run_ok
    plain = tmp_path / "plain"
    plain.mkdir()
    p = run(h, "-v", f"{plain}:/p:rshared", "busybox", "true", check=False)
    if "is not a shared mount" not in p.stderr:
        pytest.skip(f"{tmp_path} is on a shared mount here")
    assert p.returncode == 125
    shared = tmp_path / "shared"
    shared.mkdir()
    _sys.mount("tmpfs", str(shared), "tmpfs", 0, "size=64k")
    name = h.name("prop")
    try:
        _sys.mount(None, str(shared), None, _sys.MS_SHARED)
        (shared / "src" / "sub").mkdir(parents=True)
        h("run", "-d", "--name", name, *h.run_args, "-v", f"{shared}/src:/p:rshared",
          "busybox", "sleep", "30")
        _sys.mount("tmpfs", str(shared / "src" / "sub"), "tmpfs", 0, "size=64k")
        (shared / "src" / "sub" / "late").write_text("propagated")
        for _ in range(50):
            p = h("cp", f"{name}:/p/sub/late", "-", binary=True, check=False)
            if p.returncode == 0:
                break
            time.sleep(0.05)
        assert b"propagated" in p.stdout
    finally:
        h("rm", "-f", name, check=False)
        _sys.umount2(str(shared), _sys.MNT_DETACH)


def test_cp_races_a_container_flipping_symlinks(run_ok, tmp_path):
    """The running container flips /x between a directory and a symlink to a host path
    (which also exists inside it) while cp writes through /x: nothing reaches the host."""
    h = run_ok
    victim = tmp_path / "victim"
    victim.mkdir()
    name = h.name("race")
    h("run", "-d", "--name", name, *h.run_args, "busybox", "sh", "-c",
      f"mkdir -p {victim}; while true; do rm -rf /x; mkdir /x; rm -rf /x; ln -s {victim} /x; done")
    try:
        (tmp_path / "f").write_text("payload")
        ok = 0
        outs = tmp_path / "outs"
        outs.mkdir()
        for i in range(8):
            ok += h("cp", str(tmp_path / "f"), f"{name}:/x/f", check=False).returncode == 0
            # A fresh destination each time: copying /x out may (rightly) make a local
            # symlink to the victim's path, and a later cp into that symlink on the host
            # side would follow it, as Docker's cp does — not an escape from the container.
            h("cp", f"{name}:/x/", str(outs / f"out{i}"), check=False)
        assert os.listdir(victim) == []
        assert ok > 0
    finally:
        h("rm", "-f", name)
        import shutil
        shutil.rmtree(tmp_path / "outs", ignore_errors=True)


def test_cp_into_read_only_rootfs_is_refused(run_ok, tmp_path):
    h = run_ok
    name = h.name("rof")
    h("create", "--name", name, *h.run_args, "--read-only", "--tmpfs", "/tmp", "busybox", "true")
    (tmp_path / "f").write_text("x")
    p = h("cp", str(tmp_path / "f"), f"{name}:/etc/", check=False)
    assert (p.returncode, p.stderr) == (1, "Error response from daemon: container rootfs is marked read-only\n")
    h("rm", name)
