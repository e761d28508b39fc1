"""pull/push/login against Debian's docker-registry started on 127.0.0.1 for each test."""
import gzip
import hashlib
import json
import os
import stat
import subprocess
import urllib.request

import pytest

from imgtest_helpers import describe_tree, hutch

pytestmark = pytest.mark.root


def _store(root):
    from hutch.images.store import ImageStore
    return ImageStore(os.path.join(root, "images"), os.path.join(root, "containers"))


def _put(reg, path, data, ctype, method="PUT"):
    req = urllib.request.Request(f"http://{reg.host}{path}", data=data, method=method,
                                 headers={"Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return r.headers


def _upload_blob(reg, repo, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    h = _put(reg, f"/v2/{repo}/blobs/uploads/", b"", "application/octet-stream", "POST")
    loc = h["Location"]
    loc = loc if loc.startswith("http") else f"http://{reg.host}{loc}"
    loc += ("&" if "?" in loc else "?") + "digest=" + digest
    req = urllib.request.Request(loc, data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req).close()
    return digest


def _empty_store(root) -> bool:
    s = _store(root)
    return all(not os.path.isdir(d) or os.listdir(d) == []
               for d in (s.layers_dir, s.blobs, s.tmp))


def test_push_pull_round_trip(image_root, other_root, registry, tmp_path):
    name = f"{registry.host}/test/bb:v1"
    hutch(image_root, "tag", "busybox", name)
    out = hutch(image_root, "push", name).stdout.decode().splitlines()
    assert out[0] == f"The push refers to repository [{registry.host}/test/bb]"
    assert out[-1].startswith("v1: digest: sha256:") and " size: " in out[-1]
    again = hutch(image_root, "push", name).stdout.decode()
    assert "Layer already exists" in again
    # a dead pull's leftovers are swept by the next one
    stale = os.path.join(other_root, "images", "tmp", "999999999-dead")
    os.makedirs(stale)
    pulled = hutch(other_root, "pull", name).stdout.decode().splitlines()
    digest = out[-1].split()[2]
    assert pulled[0] == "v1: Pulling from test/bb"
    assert pulled[-3:] == [f"Digest: {digest}", f"Status: Downloaded newer image for {name}",
                           name]
    assert any(line.endswith(": Pull complete") for line in pulled)
    assert not os.path.exists(stale)
    up = hutch(other_root, "pull", name).stdout.decode().splitlines()
    assert up[-2] == f"Status: Image is up to date for {name}"
    a, b = _store(image_root), _store(other_root)
    ia, ib = a.resolve("busybox"), b.resolve(name)
    assert ia.id == ib.id
    assert describe_tree(a.layer_path(ia.layers[0])) == describe_tree(b.layer_path(ib.layers[0]))
    assert ib.repo_digests == [f"{registry.host}/test/bb@{digest}"]
    by_digest = hutch(other_root, "pull", "-q", f"{registry.host}/test/bb@{digest}")
    assert by_digest.stdout.decode() == f"{registry.host}/test/bb@{digest}\n"
    # the repository's last tag takes its digest name along, then the image goes
    out = hutch(other_root, "rmi", name).stdout.decode().splitlines()
    assert out[:3] == [f"Untagged: {name}", f"Untagged: {registry.host}/test/bb@{digest}",
                       f"Deleted: {ib.id}"]
    assert hutch(other_root, "images", "-q").stdout == b""


def test_manifest_list_and_oci_zstd(image_root, other_root, registry):
    repo = "multi/img"
    for tag, image in (("amd", "busybox"), ("other", "progrium/stress")):
        hutch(image_root, "tag", image, f"{registry.host}/{repo}:{tag}")
        hutch(image_root, "push", f"{registry.host}/{repo}:{tag}")
    store = _store(image_root)
    entries = []
    for tag, arch in (("amd", "amd64"), ("other", "arm64")):
        req = urllib.request.Request(
            f"http://{registry.host}/v2/{repo}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req) as r:
            body = r.read()
        entries.append({"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "size": len(body), "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                        "platform": {"architecture": arch, "os": "linux"}})
    mlist = json.dumps({"schemaVersion": 2, "mediaType":
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": entries}).encode()
    _put(registry, f"/v2/{repo}/manifests/list", mlist,
         "application/vnd.docker.distribution.manifest.list.v2+json")
    list_digest = "sha256:" + hashlib.sha256(mlist).hexdigest()
    out = hutch(other_root, "pull", f"{registry.host}/{repo}:list").stdout.decode()
    assert f"Digest: {list_digest}" in out
    assert _store(other_root).resolve(f"{registry.host}/{repo}:list").id == \
        store.resolve("busybox").id
    arm = hutch(other_root, "pull", "--platform", "linux/arm64", f"{registry.host}/{repo}:list")
    assert _store(other_root).resolve(f"{registry.host}/{repo}:list").id == \
        store.resolve("progrium/stress").id
    assert arm.returncode == 0
    bad = hutch(other_root, "pull", "--platform", "linux/s390x", f"{registry.host}/{repo}:list",
                check=False)
    assert bad.returncode == 1 and bad.stderr.decode() == (
        "Error response from daemon: no matching manifest for linux/s390x in the manifest list "
        "entries\n")
    # an OCI manifest with a zstd layer of the same content
    import shutil
    if not shutil.which("zstd"):
        pytest.skip("zstd is not installed (scripts/setup.sh installs it)")
    image = store.resolve("busybox")
    from hutch.images.archive import layer_tar
    with layer_tar(store, image.layers[0]) as (tar, _):
        raw = tar.read()
    zst = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    zdigest = _upload_blob(registry, repo, zst)
    config = store.read_blob(image.id)
    _upload_blob(registry, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": image.id, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                    "digest": zdigest, "size": len(zst)}]}).encode()
    _put(registry, f"/v2/{repo}/manifests/zstd", manifest,
         "application/vnd.oci.image.manifest.v1+json")
    fresh = os.path.join(other_root, "fresh")
    os.mkdir(fresh)
    hutch(fresh, "pull", f"{registry.host}/{repo}:zstd")
    f = _store(fresh).resolve(f"{registry.host}/{repo}:zstd")
    assert f.id == image.id
    assert describe_tree(store.layer_path(image.layers[0])) == \
        describe_tree(_store(fresh).layer_path(f.layers[0]))


def test_corrupted_blob_is_rejected_and_nothing_kept(image_root, other_root, registry):
    name = f"{registry.host}/bad/bb:1"
    hutch(image_root, "tag", "busybox", name)
    hutch(image_root, "push", name)
    blob = _store(image_root).layer_info(_store(image_root).resolve("busybox").layers[0])["blob"]
    path = registry.blob_data(blob["digest"])
    original = open(path, "rb").read()
    # 1: the same tar, compressed differently: unpacks fine, but is not the blob named
    recompressed = gzip.compress(gzip.decompress(original), compresslevel=1, mtime=1)
    assert recompressed != original
    # 2: a flipped byte in the payload
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    for bad in (recompressed, bytes(flipped)):
        with open(path, "wb") as f:
            f.write(bad)
        p = hutch(other_root, "pull", name, check=False)
        assert p.returncode == 1
        assert p.stderr.decode().startswith("Error response from daemon: ")
        assert _empty_store(other_root)
        assert hutch(other_root, "images", "-q").stdout == b""
    assert "filesystem layer verification failed for digest" in p.stderr.decode() or \
        "failed to register layer" in p.stderr.decode()


def test_basic_auth_login_push_pull(image_root, other_root, auth_registry):
    reg = auth_registry
    name = f"{reg.host}/private/bb:1"
    hutch(image_root, "tag", "busybox", name)
    p = hutch(image_root, "push", name, check=False)
    assert p.returncode == 1 and "unauthorized" in p.stderr.decode()
    p = hutch(image_root, "login", "-u", "tester", "--password-stdin", reg.host,
              input=b"wrong\n", check=False)
    assert p.returncode == 1 and "unauthorized" in p.stderr.decode()
    p = hutch(image_root, "login", "-u", "tester", "--password-stdin", reg.host,
              input=b"s3cret\n")
    assert p.stdout == b"Login Succeeded\n"
    cfg = os.path.join(image_root, "config.json")
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    assert reg.host in json.load(open(cfg))["auths"]
    hutch(image_root, "push", name)
    p = hutch(other_root, "pull", name, check=False)
    assert p.returncode == 1 and p.stderr.decode() == (
        f"Error response from daemon: pull access denied for {reg.host}/private/bb, repository "
        "does not exist or may require 'hutch login': denied: requested access to the resource "
        "is denied\n")
    hutch(other_root, "login", "-u", "tester", "-p", "s3cret", reg.host)
    hutch(other_root, "pull", name)
    assert hutch(other_root, "logout", reg.host).stdout.decode() == \
        f"Removing login credentials for {reg.host}\n"
    assert hutch(other_root, "logout", reg.host).stdout.decode() == \
        f"Not logged in to {reg.host}\n"


def _layer(entries) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _docker_archive(tmp_path, layers, tag) -> str:
    import io
    import tarfile
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "created": "2026-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"L{i}"}
                                     for i in range(len(layers))]}).encode()
    path = str(tmp_path / "layered.tar")
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        for i, raw in enumerate(layers):
            add(f"l{i}/layer.tar", raw)
        add("cfg.json", config)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": [tag],
                                          "Layers": [f"l{i}/layer.tar"
                                                     for i in range(len(layers))]}]).encode())
    return path


def test_multi_layer_image_whiteouts_and_parallel_pull(image_root, other_root, registry, tmp_path):
    base = _layer([("a/", None), ("a/file", b"lower"), ("a/keep", b"k"), ("o/", None),
                   ("o/old", b"old")])
    top = _layer([("a/.wh.file", b""), ("b", b"upper"), ("o/.wh..wh..opq", b""),
                  ("o/new", b"new")])
    third = _layer([("c", b"third")])
    name = f"{registry.host}/layers/img:1"
    archive = _docker_archive(tmp_path, [base, top, third], name)
    assert hutch(image_root, "load", "-i", archive).stdout.decode() == f"Loaded image: {name}\n"
    hist = hutch(image_root, "history", "--format", "{{.ID}} {{.CreatedBy}}", name)
    assert hist.stdout.decode().splitlines()[1:] == ["<missing> L1", "<missing> L0"]
    hutch(image_root, "push", name)
    # the base layer is already there in the far root: "Already exists"
    hutch(other_root, "load", "-i", _docker_archive(tmp_path, [base], "base:1"))
    out = hutch(other_root, "pull", name).stdout.decode()
    assert "Already exists" in out and out.count("Pull complete") == 2
    store = _store(other_root)
    cid = "ml" + os.urandom(4).hex()
    store.create_snapshot(cid, store.resolve(name).id)
    try:
        merged = store.mount_rootfs(cid)
        assert sorted(os.listdir(merged)) == ["a", "b", "c", "o"]
        assert os.listdir(os.path.join(merged, "a")) == ["keep"]
        assert os.listdir(os.path.join(merged, "o")) == ["new"]
    finally:
        store.remove_snapshot(cid)


def test_killed_pull_leaves_no_half_layer(image_root, other_root, registry, tmp_path):
    import signal
    import time
    payload = os.urandom(24 << 20)  # incompressible: the download takes a while
    big = _layer([("blob.bin", payload)])
    name = f"{registry.host}/big/img:1"
    hutch(image_root, "load", "-i", _docker_archive(tmp_path, [big], name))
    hutch(image_root, "push", name)
    from imgtest_helpers import hutch_bin
    proc = subprocess.Popen([hutch_bin(), "--root", other_root, "pull", name],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.readline()  # "1: Pulling from big/img": the layer download starts now
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = _store(other_root)
    diff_id = "sha256:" + hashlib.sha256(big).hexdigest()
    layer_dir = os.path.join(store.layers_dir, diff_id.split(":")[1])
    # either the whole layer landed (the kill came late) or nothing of it did
    if os.path.exists(layer_dir):
        assert store.has_layer(diff_id)
        with open(os.path.join(store.layer_path(diff_id), "blob.bin"), "rb") as f:
            assert f.read() == payload
    hutch(other_root, "pull", name)
    with open(os.path.join(store.layer_path(diff_id), "blob.bin"), "rb") as f:
        assert f.read() == payload
    assert os.listdir(store.tmp) == []


def test_push_and_pull_all_tags(image_root, other_root, registry):
    repo = f"{registry.host}/many/img"
    hutch(image_root, "tag", "busybox", f"{repo}:one")
    hutch(image_root, "tag", "progrium/stress", f"{repo}:two")
    out = hutch(image_root, "push", "--all-tags", repo).stdout.decode()
    assert "one: digest: sha256:" in out and "two: digest: sha256:" in out
    hutch(other_root, "pull", "--all-tags", repo)
    rows = hutch(other_root, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
    assert sorted(rows.split()) == [f"{repo}:one", f"{repo}:two"]
    p = hutch(other_root, "push", f"{registry.host}/nothing/here:1", check=False)
    assert p.returncode == 1 and p.stderr.decode() == (
        f"An image does not exist locally with the tag: {registry.host}/nothing/here\n")
