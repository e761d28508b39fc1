"""The image store: content-addressed blobs, unpacked layers shared by diff id, image records
with their names, and per-container overlay snapshots.

Layout under <root>/images (paths.images):
  blobs/sha256/<hex>     configs, manifests and layer blobs, named by their sha256
  layers/<hex>/diff/     a layer unpacked once (hex of its diff id), overlay whiteouts inside
  layers/<hex>/layer.json  {"diff_id", "size", "tar_size", "blob": {digest, mediaType, size}}
  layers/l/<24 hex>      short links to layers/<hex>/diff for deep images' overlay mounts
  snapshots/<cid>/       upper/, work/, merged/ and snapshot.json for one container
  db.json                images (id -> layers, size), tags (name:tag -> id), digests
  tmp/                   work in progress; renamed into place only when complete and verified
  lock                   flock held while db.json is read-modified-written

Everything lands by rename, so a pull killed midway leaves only tmp/ litter that the next
writer sweeps, never a half layer or blob under its final name.
"""
from __future__ import annotations

import errno
import os
import time
from types import SimpleNamespace

from hutch import fastjson
from hutch import trace
from hutch.paths import FileLock

MEDIA_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


class ImageNotFound(LookupError):
    def __init__(self, ref: str):
        super().__init__(ref)
        self.ref = ref

    def __str__(self) -> str:
        return f"No such image: {self.ref}"


class StoreError(Exception):
    """A store operation that failed; str() is the one line the user sees."""


class DigestMismatch(StoreError):
    pass


class Image(SimpleNamespace):
    """An image record: id (sha256:<hex> of the config blob), config (the image config:
    architecture, os, config{...}, rootfs, history), repo_tags (familiar: busybox:latest),
    repo_digests (familiar: busybox@sha256:...), layers (diff ids, bottom first), size and
    added. Not a dataclass: the monitor host imports this module (the snapshots), and
    dataclasses' inspect and ast would be ~1.4 MiB more of its image."""

    def __init__(self, id: str, config: dict, repo_tags: list[str], repo_digests: list[str],
                 layers: list[str], size: int, added: float):
        super().__init__(id=id, config=config, repo_tags=repo_tags, repo_digests=repo_digests,
                         layers=layers, size=size, added=added)

    @property
    def created(self) -> str:
        return self.config.get("created", "")

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def sha256_bytes(data: bytes) -> str:
    import hashlib   # (OpenSSL's libcrypto: not in the monitor host, which never hashes)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest: str) -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise StoreError(f"invalid digest {digest!r}")
    return h


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI ChainIDs of a layer stack (what Docker prints when it deletes layers)."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class ImageStore:
    def __init__(self, root: str, containers_dir: str | None = None):
        self.root = root
        # The engine keeps containers beside images (paths.containers); each config.json
        # names its image, which is how rmi knows what is in use.
        self.containers_dir = containers_dir or os.path.join(os.path.dirname(root), "containers")
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.layers_dir = os.path.join(root, "layers")
        self.snapshots = os.path.join(root, "snapshots")
        self.tmp = os.path.join(root, "tmp")
        self.db_path = os.path.join(root, "db.json")

    # --- database ---

    def _ensure(self) -> None:
        for d in (self.blobs, self.layers_dir, self.snapshots, self.tmp):
            os.makedirs(d, exist_ok=True)

    def locked(self) -> _LockedDb:
        """`with store.locked() as db:` holds the store lock; db, saved atomically on a
        clean exit."""
        self._ensure()
        return _LockedDb(self)

    def read_db(self) -> dict:
        try:
            with open(self.db_path) as f:
                db = fastjson.load(f)
        except FileNotFoundError:
            db = {}
        db.setdefault("images", {})
        db.setdefault("tags", {})
        db.setdefault("digests", {})
        return db

    def _save(self, db: dict) -> None:
        tmp = f"{self.db_path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            fastjson.dump(db, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.db_path)

    def new_tmp(self) -> str:
        """A fresh work dir under tmp/, named with our pid so a later sweep knows it is dead."""
        self._ensure()
        path = os.path.join(self.tmp, f"{os.getpid()}-{os.urandom(6).hex()}")
        os.mkdir(path, 0o700)
        return path

    def sweep_tmp(self) -> None:
        """Remove what killed writers left in tmp/."""
        import shutil
        try:
            names = os.listdir(self.tmp)
        except FileNotFoundError:
            return
        for name in names:
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(self.tmp, name), ignore_errors=True)

    # --- blobs ---

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs, _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        digest = sha256_bytes(data)
        if expected and expected != digest:
            raise DigestMismatch(f"digest mismatch: expected {expected}, got {digest}")
        path = self.blob_path(digest)
        if not os.path.exists(path):
            self._ensure()
            tmp = os.path.join(self.tmp, f"{os.getpid()}-{os.urandom(6).hex()}.blob")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, path)
        return digest

    def commit_blob_file(self, tmp_path: str, digest: str) -> None:
        """Move a verified file into blobs/ under its digest."""
        path = self.blob_path(digest)
        if os.path.exists(path):
            os.unlink(tmp_path)
        else:
            os.rename(tmp_path, path)

    # --- layers ---

    def layer_path(self, diff_id: str) -> str:
        return os.path.join(self.layers_dir, _hex(diff_id), "diff")

    def has_layer(self, diff_id: str) -> bool:
        return os.path.exists(os.path.join(self.layers_dir, _hex(diff_id), "layer.json"))

    def layer_info(self, diff_id: str) -> dict:
        with open(os.path.join(self.layers_dir, _hex(diff_id), "layer.json")) as f:
            return fastjson.load(f)

    def unpack_layer(self, tar_stream, *, expected_diff_id: str | None = None,
                     blob: dict | None = None, blob_tmp: str | None = None,
                     blob_check=None, tee=None) -> tuple[str, int]:
        """Unpack an uncompressed layer tar stream; returns (diff_id, size).

        blob: the descriptor of the stored blob this layer came from ({digest, mediaType,
        size}); blob_tmp: a file holding that blob, moved into blobs/ once all checks pass;
        blob_check: called after unpacking to verify the blob digest (raises on mismatch);
        tee: a file that gets a copy of the uncompressed tar.
        On any failure nothing is kept.
        """
        import shutil
        work = self.new_tmp()
        diff = os.path.join(work, "diff")
        os.mkdir(diff, 0o755)
        try:
            from hutch.images.layer import apply_tar
            trace.step("layer", f"apply into {diff}")
            diff_id, size, tar_size = apply_tar(tar_stream, diff, tee)
            if tee is not None:
                tee.flush()
            if blob_check:
                blob_check()
            if expected_diff_id and diff_id != expected_diff_id:
                raise DigestMismatch(f"layer diff id mismatch: expected {expected_diff_id}, "
                                     f"got {diff_id}")
            if blob is None:  # the blob is the uncompressed tar itself (import, load)
                if not blob_tmp:
                    raise StoreError("layer without a blob")
                blob = {"digest": diff_id, "mediaType": MEDIA_OCI_LAYER,
                        "size": os.path.getsize(blob_tmp)}
            if blob_tmp:
                self.commit_blob_file(blob_tmp, blob["digest"])
            info = {"diff_id": diff_id, "size": size, "tar_size": tar_size, "blob": blob}
            with open(os.path.join(work, "layer.json"), "w") as f:
                fastjson.dump(info, f)
            final = os.path.join(self.layers_dir, _hex(diff_id))
            try:
                os.rename(work, final)
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                shutil.rmtree(work, ignore_errors=True)  # another writer made it first
                if self.layer_info(diff_id)["blob"]["digest"] != blob["digest"]:
                    self._drop_blob(blob["digest"])   # ours is now nobody's blob
            return diff_id, size
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            if blob_tmp and os.path.exists(blob_tmp):
                os.unlink(blob_tmp)
            raise

    def set_layer_blob(self, diff_id: str, blob: dict) -> None:
        """Make blob (e.g. a gzip made for push) the layer's stored form; the old blob goes."""
        path = os.path.join(self.layers_dir, _hex(diff_id), "layer.json")
        info = self.layer_info(diff_id)
        old = info["blob"]["digest"]
        info["blob"] = blob
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            fastjson.dump(info, f)
        os.rename(tmp, path)
        if old != blob["digest"]:
            self._drop_blob(old)

    # --- images ---

    def add_image(self, config_bytes: bytes, *, tags: list[str] = (),
                  digest_refs: list[str] = ()) -> Image:
        """Record an image whose layers are all present; tags/digest_refs are full refs."""
        image_id = self.put_blob(config_bytes)
        config = fastjson.loads(config_bytes)
        layers = list(config.get("rootfs", {}).get("diff_ids") or [])
        with self.locked() as db:
            # under the lock: rmi and snapshot removal drop unused layers under it too
            for d in layers:
                if not self.has_layer(d):
                    raise StoreError(f"layer {d} of image {image_id} is missing")
            size = sum(self.layer_info(d)["size"] for d in layers)
            rec = db["images"].get(image_id)
            if rec is None:
                db["images"][image_id] = {"layers": layers, "size": size, "added": time.time()}
            for t in tags:
                db["tags"][t] = image_id
            for d in digest_refs:
                db["digests"][d] = image_id
        return self.get(image_id)

    def image_in(self, db: dict, image_id: str) -> Image:
        from hutch.images import reference as refs
        rec = db["images"][image_id]
        config = fastjson.loads(self.read_blob(image_id))
        tags = sorted(refs.parse(t).familiar() for t, i in db["tags"].items() if i == image_id)
        digests = sorted(refs.parse(d).familiar() for d, i in db["digests"].items()
                         if i == image_id)
        return Image(image_id, config, tags, digests, list(rec["layers"]), rec["size"],
                     rec.get("added", 0.0))

    def get(self, image_id: str) -> Image:
        db = self.read_db()
        if image_id not in db["images"]:
            raise ImageNotFound(image_id)
        return self.image_in(db, image_id)

    def list(self) -> list[Image]:
        db = self.read_db()
        return [self.image_in(db, i) for i in db["images"]]

    def lookup_id(self, db: dict, ref: str) -> str | None:
        """Docker's order: a full id, a name (tag or digest), then a unique short id."""
        from hutch.images import reference as refs
        if ref.startswith("sha256:") and ref in db["images"]:
            return ref
        try:
            r = refs.parse(ref)
        except refs.InvalidReference:
            r = None
        if r is not None:
            if r.digest:
                found = db["digests"].get(f"{r.name}@{r.digest}")
                if found:
                    return found
            else:
                found = db["tags"].get(str(r.tagged_or_latest()))
                if found:
                    return found
        short = ref[7:] if ref.startswith("sha256:") else ref
        if short and len(short) <= 64 and all(c in "0123456789abcdef" for c in short):
            hits = [i for i in db["images"] if i[7:].startswith(short)]
            if len(hits) == 1:
                return hits[0]
        if r is None:
            refs.parse(ref)  # re-raise Docker's wording for a malformed name
        return None

    def resolve(self, ref: str) -> Image:
        """The image a user's reference names; ImageNotFound or InvalidReference otherwise."""
        db = self.read_db()
        image_id = self.lookup_id(db, ref)
        if image_id is None:
            raise ImageNotFound(ref)
        return self.image_in(db, image_id)

    def tag(self, image_id: str, ref: refs.Reference) -> None:
        with self.locked() as db:
            if image_id not in db["images"]:
                raise ImageNotFound(image_id)
            db["tags"][str(ref.tagged_or_latest())] = image_id

    def images_in_use(self) -> dict[str, list[tuple[str, bool]]]:
        """image id -> [(container id, running)] from the engine's container configs."""
        used: dict[str, list[tuple[str, bool]]] = {}
        try:
            names = os.listdir(self.containers_dir)
        except FileNotFoundError:
            return used
        for cid in names:
            try:
                with open(os.path.join(self.containers_dir, cid, "config.json")) as f:
                    c = fastjson.load(f)
            except (OSError, ValueError):
                continue
            image = c.get("Image")
            if not isinstance(image, str):
                continue
            # the engine keeps the live state beside the record (state.json)
            try:
                with open(os.path.join(self.containers_dir, cid, "state.json")) as f:
                    state = fastjson.load(f)
            except (OSError, ValueError):
                state = c.get("State") if isinstance(c.get("State"), dict) else {}
            used.setdefault(image, []).append((cid, bool(state.get("Running"))))
        return used

    def delete_image(self, db: dict, image_id: str) -> list[str]:
        """Drop an image record (under the lock) and the layers nothing else uses.

        Returns the chain ids of the layers removed, for rmi's `Deleted:` lines.
        """
        rec = db["images"].pop(image_id)
        for t in [t for t, i in db["tags"].items() if i == image_id]:
            del db["tags"][t]
        manifests = set()
        for d in [d for d, i in db["digests"].items() if i == image_id]:
            del db["digests"][d]
            manifests.add(d.rpartition("@")[2])
        for m in manifests - {d.rpartition("@")[2] for d in db["digests"]}:
            self._drop_blob(m)
        keep = self._used_layers(db)
        removed = []
        for diff_id, chain in zip(rec["layers"], chain_ids(rec["layers"])):
            if diff_id not in keep:
                self._drop_layer(diff_id)
                removed.append(chain)
        if not any(image_id == i for i in db["images"]):
            self._drop_blob(image_id)
        return removed

    def _used_layers(self, db: dict) -> set[str]:
        return {d for r in db["images"].values() for d in r["layers"]} | self._snapshot_layers()

    def _drop_layer(self, diff_id: str) -> None:
        """Remove a layer, its short link and its blob (a blob belongs to one layer)."""
        import shutil
        h = _hex(diff_id)
        try:
            blob = self.layer_info(diff_id)["blob"]["digest"]
        except (OSError, KeyError, ValueError):
            blob = None
        shutil.rmtree(os.path.join(self.layers_dir, h), ignore_errors=True)
        link = os.path.join(self.layers_dir, "l", h[:24])
        try:
            if os.readlink(link) == f"../{h}/diff":
                os.unlink(link)
        except OSError:
            pass
        if blob:
            self._drop_blob(blob)

    def _drop_blob(self, digest: str) -> None:
        """Remove a blob if it is there (a malformed digest names none)."""
        try:
            os.unlink(self.blob_path(digest))
        except (OSError, StoreError):
            pass

    # --- snapshots (one overlay per container) ---

    def _snap(self, cid: str) -> str:
        if not cid or "/" in cid or cid in (".", ".."):
            raise StoreError(f"invalid container id {cid!r}")
        return os.path.join(self.snapshots, cid)

    def _snapshot_layers(self) -> set[str]:
        out: set[str] = set()
        try:
            names = os.listdir(self.snapshots)
        except FileNotFoundError:
            return out
        for cid in names:
            try:
                with open(os.path.join(self.snapshots, cid, "snapshot.json")) as f:
                    out.update(fastjson.load(f)["layers"])
            except (OSError, ValueError, KeyError):
                pass
        return out

    def create_snapshot(self, cid: str, image_id: str) -> None:
        """upper/ and work/ for a container over the image's layers."""
        image = self.get(image_id)
        snap = self._snap(cid)
        self._ensure()
        os.makedirs(snap, exist_ok=False)
        for d in ("upper", "work", "merged", "empty"):
            os.mkdir(os.path.join(snap, d), 0o755)
        with open(os.path.join(snap, "snapshot.json"), "w") as f:
            fastjson.dump({"image": image.id, "layers": image.layers}, f)

    def snapshot_upper(self, cid: str) -> str:
        return os.path.join(self._snap(cid), "upper")

    def rootfs_path(self, cid: str) -> str:
        return os.path.join(self._snap(cid), "merged")

    def is_mounted(self, cid: str) -> bool:
        return _is_mountpoint(self.rootfs_path(cid))

    def mount_rootfs(self, cid: str) -> str:
        """Mount the container's overlay (read-only image layers, its own upper) and return
        the merged path. Mounting twice is a no-op."""
        from hutch import _sys
        snap = self._snap(cid)
        try:
            with open(os.path.join(snap, "snapshot.json")) as f:
                layers = fastjson.load(f)["layers"]
        except FileNotFoundError:
            raise StoreError(f"no root filesystem snapshot for container {cid}") from None
        merged = os.path.join(snap, "merged")
        if _is_mountpoint(merged):
            return merged
        # overlay lists lowerdirs top first; the image's config lists them bottom first
        lowers = [self.layer_path(d) for d in reversed(layers)] or [os.path.join(snap, "empty")]
        tail = f",upperdir={snap}/upper,workdir={snap}/work"
        if os.path.exists("/sys/module/overlay/parameters/index"):
            tail += ",index=off"  # as Docker: layers are shared by many mounts
        data = "lowerdir=" + ":".join(lowers) + tail
        if len(data) < 4000:
            trace.step("mount", f"overlay on {merged}", data=data)
            _sys.mount("overlay", merged, "overlay", 0, data)
            return merged
        # The mount data is one page: past that, name the layers by short links relative
        # to layers/ (as Docker's overlay2 does with l/<id>), so ~125 layers fit.
        rel = "lowerdir=" + ":".join(self._short_link(d) for d in reversed(layers)) + tail
        if len(rel) >= 4000:
            raise StoreError(f"image has too many layers ({len(layers)}) for one overlay mount")
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(self.layers_dir)
            trace.step("mount", f"overlay on {merged}", data=rel)
            _sys.mount("overlay", merged, "overlay", 0, rel)
        finally:
            os.fchdir(cwd)
            os.close(cwd)
        return merged

    def _short_link(self, diff_id: str) -> str:
        """layers/l/<24 hex> -> ../<hex>/diff; the long relative path if that name is taken."""
        h = _hex(diff_id)
        name, target = h[:24], f"../{h}/diff"
        links = os.path.join(self.layers_dir, "l")
        os.makedirs(links, exist_ok=True)
        try:
            os.symlink(target, os.path.join(links, name))
        except FileExistsError:
            if os.readlink(os.path.join(links, name)) != target:
                return f"{h}/diff"  # a prefix collision (a crafted one): no shortcut
        return f"l/{name}"

    def unmount_rootfs(self, cid: str) -> None:
        from hutch import _sys
        merged = self.rootfs_path(cid)
        while _is_mountpoint(merged):
            trace.step("umount", merged)
            try:
                _sys.umount2(merged, 0)
            except OSError as e:
                if e.errno == errno.EBUSY:
                    _sys.umount2(merged, _sys.MNT_DETACH)
                elif e.errno != errno.EINVAL:
                    raise

    def remove_snapshot(self, cid: str) -> None:
        """Unmount and delete a container's snapshot, and the layers only it still held
        (those of an image removed with `rmi -f` while the container existed)."""
        from hutch.paths import remove_tree
        snap = self._snap(cid)
        if not os.path.exists(snap):
            return
        try:
            with open(os.path.join(snap, "snapshot.json")) as f:
                layers = fastjson.load(f)["layers"]
        except (OSError, ValueError, KeyError):
            layers = []
        self.unmount_rootfs(cid)
        remove_tree(snap)
        with self.locked() as db:
            keep = self._used_layers(db)
            for diff_id in layers:
                if diff_id not in keep and self.has_layer(diff_id):
                    self._drop_layer(diff_id)


class _LockedDb(FileLock):
    """ImageStore.locked's with block: the db, saved atomically if the block changed it and
    ended cleanly."""

    __slots__ = ("store", "db", "before")

    def __init__(self, store: ImageStore):
        super().__init__(os.path.join(store.root, "lock"))
        self.store = store

    def __enter__(self) -> dict:
        super().__enter__()
        try:
            self.db = self.store.read_db()
        except BaseException:
            super().__exit__()
            raise
        self.before = fastjson.dumps(self.db, sort_keys=True)
        return self.db

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None and fastjson.dumps(self.db, sort_keys=True) != self.before:
                self.store._save(self.db)
        finally:
            super().__exit__()


def _is_mountpoint(path: str) -> bool:
    """Whether a mount sits on `path` (only overlays are mounted there). A mount's root has
    another device than its parent's (an overlay's directories report the overlay's own):
    two stats, where the host's mountinfo grows two lines a running container (~1 ms a
    read at 200 containers, more while another start holds the namespace lock). mountinfo
    still decides when the path cannot be stat'ed (a mount whose layers went away)."""
    path = os.path.realpath(path)
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(path))
    except OSError:
        return _listed_in_mountinfo(path)
    return st.st_dev != parent.st_dev or st.st_ino == parent.st_ino


def _listed_in_mountinfo(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mnt = line.split(" ", 5)[4]
                if _unescape(mnt) == path:
                    return True
    except OSError:
        pass
    return False


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")
