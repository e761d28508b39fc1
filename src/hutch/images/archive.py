"""`save` and `load`: docker-archive tars (as `docker save` writes them: manifest.json,
repositories, <config>.json, <layer>/layer.tar) and OCI image layouts (oci-layout,
index.json, blobs/sha256/...).

load unpacks the archive with the same safe layer applier into a temp dir, then opens every
file it names through directory fds (never following a symlink), verifies each layer's diff
id or blob digest and only then records the image.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile

from hutch.images import reference as refs
from hutch.images.compression import CompressionError, decompressed
from hutch.images.layer import LayerError, apply_tar, clean_name, open_dir
from hutch.images.store import (MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD,
                                DigestMismatch, ImageStore, StoreError, chain_ids)

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_CHUNK = 1 << 20


class ArchiveError(Exception):
    pass


# --- save ------------------------------------------------------------------------------

@contextlib.contextmanager
def layer_tar(store: ImageStore, diff_id: str):
    """(uncompressed tar stream, its size) of a stored layer."""
    info = store.layer_info(diff_id)
    with open(store.blob_path(info["blob"]["digest"]), "rb") as raw, decompressed(raw) as tar:
        yield tar, info.get("tar_size")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def _add_layer(store, tar, name: str, diff_id: str) -> None:
    with layer_tar(store, diff_id) as (stream, size):
        if size is None:  # size unknown (older record): count it with one extra pass
            size = 0
            while True:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
    with layer_tar(store, diff_id) as (stream, _):
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        tar.addfile(info, stream)


def _images_for(store: ImageStore, names: list[str]):
    """[(image, [tags to record])] in argument order, one entry per image."""
    out: list = []
    for n in names:
        image = store.resolve(n)
        tags = []
        try:
            r = refs.parse(n)
            if not r.digest and not image.id.startswith(n) and not \
                    image.id[7:].startswith(n):
                tags = [r.tagged_or_latest().familiar()]
        except refs.InvalidReference:
            pass
        for entry in out:
            if entry[0].id == image.id:
                entry[1].extend(t for t in tags if t not in entry[1])
                break
        else:
            out.append((image, tags))
    return out


def save(store: ImageStore, names: list[str], out, fmt: str = "docker") -> None:
    """Write the named images to out (a binary stream) as a docker-archive or OCI layout."""
    images = _images_for(store, names)
    tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    if fmt == "oci":
        _save_oci(store, images, tar)
    else:
        _save_docker(store, images, tar)
    tar.close()


def _save_docker(store, images, tar) -> None:
    manifest, repositories, written = [], {}, set()
    for image, tags in images:
        chains = [c.split(":", 1)[1] for c in chain_ids(image.layers)]
        layer_paths = []
        parent = ""
        for diff_id, v1 in zip(image.layers, chains):
            if v1 not in written:
                written.add(v1)
                _add_dir(tar, v1 + "/")
                _add_bytes(tar, f"{v1}/VERSION", b"1.0")
                v1json = {"id": v1, "created": image.created or "0001-01-01T00:00:00Z",
                          "container_config": {}}
                if parent:
                    v1json["parent"] = parent
                _add_bytes(tar, f"{v1}/json", json.dumps(v1json).encode())
                _add_layer(store, tar, f"{v1}/layer.tar", diff_id)
            layer_paths.append(f"{v1}/layer.tar")
            parent = v1
        config_name = image.id.split(":", 1)[1] + ".json"
        _add_bytes(tar, config_name, store.read_blob(image.id))
        manifest.append({"Config": config_name, "RepoTags": tags or None,
                         "Layers": layer_paths})
        for t in tags:
            repo, _, tag = t.rpartition(":")
            repositories.setdefault(repo, {})[tag] = parent
    _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    if repositories:
        _add_bytes(tar, "repositories", json.dumps(repositories).encode())


def _oci_media(mt: str) -> str:
    if "zstd" in mt:
        return MEDIA_OCI_LAYER_ZSTD
    if "gzip" in mt:
        return MEDIA_OCI_LAYER_GZIP
    return MEDIA_OCI_LAYER


def _save_oci(store, images, tar) -> None:
    _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    _add_dir(tar, "blobs/")
    _add_dir(tar, "blobs/sha256/")
    written: set[str] = set()
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": []}

    def blob_file(digest: str):
        if digest in written:
            return
        written.add(digest)
        path = store.blob_path(digest)
        info = tarfile.TarInfo("blobs/sha256/" + digest.split(":", 1)[1])
        info.size = os.path.getsize(path)
        info.mode = 0o644
        with open(path, "rb") as f:
            tar.addfile(info, f)

    for image, tags in images:
        layers = []
        for diff_id in image.layers:
            blob = store.layer_info(diff_id)["blob"]
            blob_file(blob["digest"])
            layers.append({"mediaType": _oci_media(blob["mediaType"]),
                           "digest": blob["digest"], "size": blob["size"]})
        config = store.read_blob(image.id)
        blob_file(image.id)
        m = {"schemaVersion": 2, "mediaType": MT_OCI_MANIFEST,
             "config": {"mediaType": MT_OCI_CONFIG, "digest": image.id, "size": len(config)},
             "layers": layers}
        data = json.dumps(m).encode()
        digest = store.put_blob(data)
        blob_file(digest)
        desc = {"mediaType": MT_OCI_MANIFEST, "digest": digest, "size": len(data)}
        for t in tags or [None]:
            d = dict(desc)
            if t:
                r = refs.parse(t)
                d["annotations"] = {"io.containerd.image.name": str(r),
                                    "org.opencontainers.image.ref.name": r.tag}
            index["manifests"].append(d)
    _add_bytes(tar, "index.json", json.dumps(index).encode())


# --- load ------------------------------------------------------------------------------

def _check_digests(digests) -> None:
    for d in digests:
        if not isinstance(d, str) or not refs.is_digest(d):
            raise ArchiveError(f"invalid digest {d!r} in the archive")


def _open_in(root_fd: int, name: str):
    """Open a file named inside the unpacked archive, never leaving it or following links."""
    if not isinstance(name, str):
        raise ArchiveError(f"invalid path in archive: {name!r}")
    try:
        comps = clean_name(name)
    except LayerError:
        raise ArchiveError(f"invalid path in archive: {name!r}") from None
    if not comps:
        raise ArchiveError(f"invalid path in archive: {name!r}")
    try:
        dfd = open_dir(root_fd, comps[:-1], create=False)
    except (OSError, LayerError):
        raise ArchiveError(f"{name}: no such file in the archive") from None
    try:
        fd = os.open(comps[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        raise ArchiveError(f"{name}: no such file in the archive") from None
    finally:
        os.close(dfd)
    return os.fdopen(fd, "rb")


def _read_in(root_fd: int, name: str, limit: int = 64 << 20) -> bytes:
    with _open_in(root_fd, name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{name}: too large")
    return data


def _exists_in(root_fd: int, name: str) -> bool:
    try:
        _open_in(root_fd, name).close()
        return True
    except ArchiveError:
        return False


def load(store: ImageStore, stream) -> list[str]:
    """Load a docker-archive or OCI layout tar (plain or compressed); returns the lines
    `docker load` prints (`Loaded image: NAME` / `Loaded image ID: ID`)."""
    store.sweep_tmp()
    work = store.new_tmp()
    try:
        extract = os.path.join(work, "archive")
        os.mkdir(extract, 0o700)
        try:
            with decompressed(stream) as tar:
                apply_tar(tar, extract)
        except (LayerError, CompressionError, OSError, EOFError) as e:
            raise ArchiveError(f"failed to read the archive: {e}") from None
        root_fd = os.open(extract, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if _exists_in(root_fd, "manifest.json"):
                return _load_docker(store, root_fd)
            if _exists_in(root_fd, "index.json"):
                return _load_oci(store, root_fd)
            raise ArchiveError("unrecognized image archive: neither manifest.json nor "
                               "index.json found")
        finally:
            os.close(root_fd)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unpack_plain(store: ImageStore, f, diff_id: str) -> None:
    """A layer tar (maybe compressed) whose uncompressed form must hash to diff_id."""
    work = store.new_tmp()
    blob_tmp = os.path.join(work, "layer.tar")
    try:
        with decompressed(f) as tar, open(blob_tmp, "wb") as tee:
            store.unpack_layer(tar, expected_diff_id=diff_id, blob_tmp=blob_tmp, tee=tee)
    except (LayerError, CompressionError, StoreError, OSError, EOFError) as e:
        raise ArchiveError(f"failed to load layer {diff_id}: {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load_docker(store: ImageStore, root_fd: int) -> list[str]:
    try:
        manifest = json.loads(_read_in(root_fd, "manifest.json"))
    except ValueError as e:
        raise ArchiveError(f"invalid manifest.json: {e}") from None
    lines = []
    for entry in manifest:
        config_bytes = _read_in(root_fd, entry["Config"])
        config = json.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        _check_digests(diff_ids)
        layer_files = entry.get("Layers") or []
        if len(diff_ids) != len(layer_files):
            raise ArchiveError("invalid manifest, layers length mismatch: expected "
                               f"{len(diff_ids)}, got {len(layer_files)}")
        for diff_id, name in zip(diff_ids, layer_files):
            if store.has_layer(diff_id):
                continue
            with _open_in(root_fd, name) as f:
                _unpack_plain(store, f, diff_id)
        tags = []
        for t in entry.get("RepoTags") or []:
            try:
                tags.append(str(refs.parse_tagged(t)))
            except refs.InvalidReference as e:
                raise ArchiveError(f"invalid tag {t!r}: {e}") from None
        lines += _renamed(store, tags, "sha256:" + hashlib.sha256(config_bytes).hexdigest())
        image = store.add_image(config_bytes, tags=tags)
        if tags:
            lines += [f"Loaded image: {refs.parse(t).familiar()}" for t in tags]
        else:
            lines.append(f"Loaded image ID: {image.id}")
    return lines


def _renamed(store: ImageStore, tags: list[str], new_id: str) -> list[str]:
    """Docker's note when a loaded tag takes the name from another image."""
    db = store.read_db()
    out = []
    for t in tags:
        old = db["tags"].get(t)
        if old and old != new_id:
            out.append(f"The image {refs.parse(t).familiar()} already exists, renaming the old "
                       f"one with ID {old} to empty string")
    return out


def _blob(root_fd: int, digest: str, limit: int = 64 << 20) -> bytes:
    data = _read_in(root_fd, "blobs/" + digest.replace(":", "/"), limit)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ArchiveError(f"digest mismatch for blob {digest}")
    return data


class _HashFile:
    def __init__(self, f, tee):
        self.f, self.tee = f, tee
        self.sha = hashlib.sha256()

    def read(self, n=-1):
        data = self.f.read(n)
        self.sha.update(data)
        self.tee.write(data)
        return data

    def drain(self):
        while self.read(_CHUNK):
            pass


def _load_oci(store: ImageStore, root_fd: int) -> list[str]:
    from hutch.images.registry import _pick, host_platform
    index = json.loads(_read_in(root_fd, "index.json"))
    lines = []
    for desc in index.get("manifests") or []:
        _check_digests([desc.get("digest")])
        data = _blob(root_fd, desc["digest"])
        m = json.loads(data)
        if "manifests" in m and "layers" not in m:
            chosen = _pick(m, host_platform(), "")
            _check_digests([chosen.get("digest")])
            data = _blob(root_fd, chosen["digest"])
            m = json.loads(data)
        _check_digests([m["config"].get("digest")] + [d.get("digest") for d in m["layers"]])
        config_bytes = _blob(root_fd, m["config"]["digest"])
        config = json.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        _check_digests(diff_ids)
        if len(diff_ids) != len(m.get("layers") or []):
            raise ArchiveError("invalid manifest: layers and diff ids disagree")
        for ldesc, diff_id in zip(m["layers"], diff_ids):
            if store.has_layer(diff_id):
                continue
            _load_oci_layer(store, root_fd, ldesc, diff_id)
        store.put_blob(data)
        ann = desc.get("annotations") or {}
        name = ann.get("io.containerd.image.name")
        ref_name = ann.get("org.opencontainers.image.ref.name", "")
        if not name and any(c in ref_name for c in ":/"):
            name = ref_name  # a full reference; a bare "latest" or "v1" names no repository
        tags = []
        if name:
            try:
                tags = [str(refs.parse_tagged(name))]
            except refs.InvalidReference:
                tags = []  # a bare tag without a repository names nothing Docker can show
        lines += _renamed(store, tags, "sha256:" + hashlib.sha256(config_bytes).hexdigest())
        image = store.add_image(config_bytes, tags=tags)
        lines += [f"Loaded image: {refs.parse(t).familiar()}" for t in tags] or \
            [f"Loaded image ID: {image.id}"]
    return lines


def _load_oci_layer(store, root_fd, ldesc, diff_id) -> None:
    work = store.new_tmp()
    blob_tmp = os.path.join(work, "blob")
    try:
        with _open_in(root_fd, "blobs/" + ldesc["digest"].replace(":", "/")) as f, \
                open(blob_tmp, "wb") as tee:
            hf = _HashFile(f, tee)

            def check():
                hf.drain()
                tee.flush()
                if "sha256:" + hf.sha.hexdigest() != ldesc["digest"]:
                    raise DigestMismatch(f"digest mismatch for blob {ldesc['digest']}")

            blob = {"digest": ldesc["digest"], "mediaType": ldesc.get("mediaType", ""),
                    "size": ldesc.get("size", 0)}
            with decompressed(hf) as tar:
                store.unpack_layer(tar, expected_diff_id=diff_id, blob=blob, blob_tmp=blob_tmp,
                                   blob_check=check)
    except (LayerError, CompressionError, StoreError, OSError, EOFError) as e:
        raise ArchiveError(f"failed to load layer {ldesc['digest']}: {e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
