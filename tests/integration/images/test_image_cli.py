"""Image commands end to end, as root on the real kernel: import, images, tag, rmi,
inspect, history, prune, save/load and export/import round trips, overlay snapshots."""
import io
import json
import os
import stat

import pytest

from imgtest_helpers import describe_tree, hutch, mounts_under

pytestmark = pytest.mark.root


def _store(root):
    from hutch.images.store import ImageStore
    return ImageStore(os.path.join(root, "images"), os.path.join(root, "containers"))


def test_default_images(image_root):
    bb = json.loads(hutch(image_root, "image", "inspect", "busybox").stdout)[0]
    assert bb["RepoTags"] == ["busybox:latest"]
    assert bb["Config"]["Cmd"] == ["sh"]
    assert bb["Comment"] == "Imported from -"
    st = json.loads(hutch(image_root, "image", "inspect", "progrium/stress").stdout)[0]
    assert st["Config"]["Entrypoint"] == ["/usr/bin/stress", "--verbose"]
    layer = _store(image_root).layer_path(bb["RootFS"]["Layers"][0])
    assert os.readlink(os.path.join(layer, "bin", "sh")) == "/bin/busybox"
    with open(os.path.join(layer, "etc", "passwd")) as f:
        assert "nobody:x:65534" in f.read()
    slayer = _store(image_root).layer_path(st["RootFS"]["Layers"][0])
    assert os.path.isfile(os.path.join(slayer, "usr", "bin", "stress"))
    assert os.path.isfile(os.path.join(slayer, "lib64", "ld-linux-x86-64.so.2"))


def test_images_listing_and_formats(image_root):
    out = hutch(image_root, "images").stdout.decode().splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert {line.split()[0] for line in out[1:]} == {"busybox", "progrium/stress"}
    ids = hutch(image_root, "images", "-q").stdout.decode().split()
    assert len(ids) == 2 and all(len(i) == 12 for i in ids)
    assert hutch(image_root, "images", "-q", "busybox").stdout.decode().split() == \
        [json.loads(hutch(image_root, "image", "inspect", "busybox").stdout)[0]["Id"][7:19]]
    fmt = hutch(image_root, "images", "--format", "{{.Repository}}:{{.Tag}}",
                "--filter", "reference=progrium/*").stdout.decode()
    assert fmt == "progrium/stress:latest\n"
    assert hutch(image_root, "images", "--filter", "dangling=true", "-q").stdout == b""
    bad = hutch(image_root, "images", "--filter", "nope=1", check=False)
    assert bad.returncode == 1 and b"invalid filter 'nope'" in bad.stderr


def test_import_from_stdin_with_changes(image_root, tmp_path):
    src = tmp_path / "rootfs"
    (src / "app").mkdir(parents=True)
    (src / "app" / "run").write_bytes(b"#!/bin/sh\n")
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(str(src), arcname=".")
    p = hutch(image_root, "import", "-c", "ENV A=1 B=2", "-c", "WORKDIR /app", "-c", "USER nobody",
              "-c", "EXPOSE 8080", "-c", "LABEL k=v", "-c", "CMD run --fast",
              "-c", 'VOLUME ["/data"]', "-c", "STOPSIGNAL SIGINT", "-m", "hello", "-",
              "mine:1", input=buf.getvalue())
    image_id = p.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    info = json.loads(hutch(image_root, "image", "inspect", "mine:1").stdout)[0]
    c = info["Config"]
    assert c["Env"] == ["A=1", "B=2"] and c["WorkingDir"] == "/app" and c["User"] == "nobody"
    assert c["ExposedPorts"] == {"8080/tcp": {}} and c["Labels"] == {"k": "v"}
    assert c["Cmd"] == ["/bin/sh", "-c", "run --fast"] and c["Volumes"] == {"/data": {}}
    assert c["StopSignal"] == "SIGINT" and info["Comment"] == "hello" and info["Id"] == image_id
    bad = hutch(image_root, "import", "-c", "FROM x", "-", input=buf.getvalue(), check=False)
    assert bad.returncode == 1
    assert bad.stderr.decode() == "Error response from daemon: FROM is not a valid change command\n"


def test_reference_and_lookup_errors(image_root):
    p = hutch(image_root, "pull", "BadName", check=False)
    assert p.returncode == 125
    assert p.stderr.decode() == ("invalid reference format: repository name (library/BadName) "
                                 "must be lowercase\n")
    p = hutch(image_root, "rmi", "nosuch", check=False)
    assert p.returncode == 1 and p.stderr.decode() == "Error: No such image: nosuch\n"
    p = hutch(image_root, "image", "inspect", "nosuch", check=False)
    assert p.returncode == 1 and p.stdout.decode() == "[]\n"
    p = hutch(image_root, "tag", "nosuch", "x", check=False)
    assert p.stderr.decode() == "Error response from daemon: No such image: nosuch:latest\n"


def test_tag_rmi_and_in_use(image_root):
    bb = json.loads(hutch(image_root, "image", "inspect", "busybox").stdout)[0]["Id"]
    hutch(image_root, "tag", "busybox", "other/bb:2")
    assert hutch(image_root, "rmi", "other/bb:2").stdout == b"Untagged: other/bb:2\n"
    # a (stopped) container using it, as the engine records one
    cdir = os.path.join(image_root, "containers", "c" * 64)
    os.makedirs(cdir)
    with open(os.path.join(cdir, "config.json"), "w") as f:
        json.dump({"Image": bb}, f)
    p = hutch(image_root, "rmi", "busybox", check=False)
    assert p.returncode == 1
    assert p.stderr.decode() == (
        'Error response from daemon: conflict: unable to remove repository reference "busybox" '
        f"(must force) - container {'c' * 12} is using its referenced image {bb[7:19]}\n")
    p = hutch(image_root, "rmi", bb[7:19], check=False)
    assert "(must be forced) - image is being used by stopped container" in p.stderr.decode()
    with open(os.path.join(cdir, "state.json"), "w") as f:
        json.dump({"Running": True}, f)
    p = hutch(image_root, "rmi", "-f", bb[7:19], check=False)
    assert "(cannot be forced) - image is being used by running container" in p.stderr.decode()
    os.unlink(os.path.join(cdir, "state.json"))
    out = hutch(image_root, "rmi", "-f", "busybox").stdout.decode().splitlines()
    assert out[0] == "Untagged: busybox:latest" and out[1] == f"Deleted: {bb}"
    import shutil
    shutil.rmtree(cdir)


def test_history_and_prune(image_root, tmp_path):
    out = hutch(image_root, "history", "busybox").stdout.decode().splitlines()
    assert out[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert out[1].endswith("Imported from -")
    # a dangling image goes with prune, tagged ones stay
    empty = tmp_path / "e.tar"
    import tarfile
    with tarfile.open(empty, "w") as t:
        info = tarfile.TarInfo("only")
        t.addfile(info, io.BytesIO(b""))
    dangling = hutch(image_root, "import", str(empty)).stdout.decode().strip()
    assert hutch(image_root, "images", "-q", "--filter", "dangling=true").stdout.decode() \
        .strip() == dangling[7:19]
    p = hutch(image_root, "image", "prune", "-f").stdout.decode()
    assert f"deleted: {dangling}" in p and p.rstrip().splitlines()[-1].startswith(
        "Total reclaimed space: ")
    assert len(hutch(image_root, "images", "-q").stdout.split()) == 2


def test_snapshot_mount_unmount_remove(image_root):
    store = _store(image_root)
    image = store.resolve("busybox")
    cid = "snap" + os.urandom(4).hex()
    store.create_snapshot(cid, image.id)
    try:
        merged = store.mount_rootfs(cid)
        assert store.mount_rootfs(cid) == merged  # idempotent
        assert os.path.isfile(os.path.join(merged, "bin", "busybox"))
        with open(os.path.join(merged, "new"), "w") as f:
            f.write("upper")
        os.unlink(os.path.join(merged, "etc", "group"))
        upper = store.snapshot_upper(cid)
        assert os.path.isfile(os.path.join(upper, "new"))
        wh = os.lstat(os.path.join(upper, "etc", "group"))
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
        assert os.path.isfile(os.path.join(store.layer_path(image.layers[0]), "etc", "group"))
        store.unmount_rootfs(cid)
        assert mounts_under(merged) == []
        store.unmount_rootfs(cid)  # twice is fine
    finally:
        store.remove_snapshot(cid)
    assert mounts_under(image_root) == []
    assert not os.path.exists(os.path.join(image_root, "images", "snapshots", cid))


def test_save_load_round_trip(image_root, tmp_path):
    for fmt in ("docker", "oci"):
        archive = tmp_path / f"{fmt}.tar"
        hutch(image_root, "save", "--format", fmt, "-o", str(archive), "busybox",
              "progrium/stress")
        other = tmp_path / f"root-{fmt}"
        other.mkdir()
        out = hutch(str(other), "load", "-i", str(archive)).stdout.decode()
        assert out == "Loaded image: busybox:latest\nLoaded image: progrium/stress:latest\n"
        a, b = _store(image_root), _store(str(other))
        for name in ("busybox", "progrium/stress"):
            ia, ib = a.resolve(name), b.resolve(name)
            assert ia.id == ib.id and ia.layers == ib.layers
            for d in ia.layers:
                assert describe_tree(a.layer_path(d)) == describe_tree(b.layer_path(d))


def test_export_import_round_trip(image_root, tmp_path):
    from hutch.images import export_rootfs
    store = _store(image_root)
    cid = "exp" + os.urandom(4).hex()
    store.create_snapshot(cid, store.resolve("busybox").id)
    try:
        merged = store.mount_rootfs(cid)
        d = os.path.join(merged, "data")
        os.mkdir(d, 0o750)
        with open(os.path.join(d, "f"), "w") as f:
            f.write("content")
        os.chown(os.path.join(d, "f"), 1234, 5678)
        os.chmod(os.path.join(d, "f"), 0o2711)
        os.setxattr(os.path.join(d, "f"), "user.k", b"v\x00binary")
        os.link(os.path.join(d, "f"), os.path.join(d, "hard"))
        os.symlink("../etc/passwd", os.path.join(d, "sym"))
        os.mkfifo(os.path.join(d, "fifo"))
        out = tmp_path / "export.tar"
        with open(out, "wb") as f:
            export_rootfs(merged, f)
        new_id = hutch(image_root, "import", str(out), "exported:1").stdout.decode().strip()
        layer = store.layer_path(store.get(new_id).layers[0])
        assert describe_tree(merged) == describe_tree(layer)
    finally:
        store.remove_snapshot(cid)


def test_deep_image_mounts_through_short_links(hutch_root, tmp_path):
    """More layers than fit one page of absolute lowerdir paths (Docker allows ~125)."""
    import hashlib
    import tarfile
    layers = []
    for i in range(100):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo(f"f{i}")
            ti.size = 1
            t.addfile(ti, io.BytesIO(b"%d" % (i % 10)))
        layers.append(buf.getvalue())
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers]
    config = json.dumps({"os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    archive = tmp_path / "deep.tar"
    with tarfile.open(archive, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        for i, raw in enumerate(layers):
            add(f"{i}/layer.tar", raw)
        add("c.json", config.encode())
        add("manifest.json", json.dumps([{"Config": "c.json", "RepoTags": ["deep:1"],
                                          "Layers": [f"{i}/layer.tar" for i in range(100)]}])
            .encode())
    hutch(hutch_root, "load", "-i", str(archive))
    store = _store(hutch_root)
    cid = "deep" + os.urandom(4).hex()
    store.create_snapshot(cid, store.resolve("deep:1").id)
    try:
        merged = store.mount_rootfs(cid)
        assert sorted(os.listdir(merged)) == sorted(f"f{i}" for i in range(100))
    finally:
        store.remove_snapshot(cid)
    assert mounts_under(hutch_root) == []
    hutch(hutch_root, "rmi", "deep:1")
    assert os.listdir(os.path.join(hutch_root, "images", "layers", "l")) == []


def test_archives_interoperate_with_skopeo_and_umoci(image_root, tmp_path):
    import shutil
    import subprocess
    import tarfile
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    ours = tmp_path / "ours.tar"
    hutch(image_root, "save", "-o", str(ours), "busybox")
    # skopeo reads our docker-archive and writes an OCI archive of it; we load that back
    theirs = tmp_path / "theirs.tar"
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-archive:{ours}",
                    f"oci-archive:{theirs}:docker.io/library/viaskopeo:1"], check=True)
    other = tmp_path / "other"
    other.mkdir()
    assert hutch(str(other), "load", "-i", str(theirs)).stdout.decode() == \
        "Loaded image: viaskopeo:1\n"
    # umoci unpacks our OCI layout to the same tree we unpacked
    layout = tmp_path / "layout"
    oci = tmp_path / "oci.tar"
    hutch(image_root, "save", "--format", "oci", "-o", str(oci), "busybox")
    with tarfile.open(oci) as t:
        t.extractall(layout)
    index = json.load(open(layout / "index.json"))
    index["manifests"][0].setdefault("annotations", {})["org.opencontainers.image.ref.name"] = "x"
    json.dump(index, open(layout / "index.json", "w"))
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:x", str(bundle)], check=True,
                   capture_output=True)
    store = _store(image_root)
    layer = store.layer_path(store.resolve("busybox").layers[0])
    ours_tree = describe_tree(layer)
    theirs_tree = describe_tree(str(bundle / "rootfs"))
    # umoci's xattr for its own bookkeeping aside, every entry matches
    for k in theirs_tree:
        theirs_tree[k] = theirs_tree[k][:6] + ({},) + theirs_tree[k][7:]
        ours_tree[k] = ours_tree[k][:6] + ({},) + ours_tree[k][7:]
    assert ours_tree == theirs_tree


def test_forced_rmi_keeps_layers_until_the_snapshot_goes(image_root):
    store = _store(image_root)
    image = store.resolve("busybox")
    cid = "held" + os.urandom(4).hex()
    store.create_snapshot(cid, image.id)
    cdir = os.path.join(image_root, "containers", cid)
    os.makedirs(cdir)
    with open(os.path.join(cdir, "config.json"), "w") as f:
        json.dump({"Image": image.id}, f)
    try:
        out = hutch(image_root, "rmi", "-f", "busybox").stdout.decode().splitlines()
        assert out == ["Untagged: busybox:latest", f"Deleted: {image.id}"]  # no layer lines
        merged = store.mount_rootfs(cid)
        assert os.path.isfile(os.path.join(merged, "bin", "busybox"))
        store.unmount_rootfs(cid)
    finally:
        store.remove_snapshot(cid)
        import shutil
        shutil.rmtree(cdir)
    assert not store.has_layer(image.layers[0])
    assert not os.path.exists(os.path.join(store.layers_dir, image.layers[0][7:]))
