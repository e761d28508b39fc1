"""The local volume store: `<root>/volumes/<name>/_data` plus `meta.json`, as Docker's
local driver keeps `/var/lib/docker/volumes/<name>/_data`.

Layout of one volume directory:
    _data/        what containers see (a mount point when the volume has type/device options)
    meta.json     Name, CreatedAt, Labels, Options, Anonymous (written atomically)
    refs/<cid>    one empty file per container that uses the volume

Without a daemon there is no in-memory reference count: a volume is "in use" while a
`refs/<cid>` file exists *and* that container still exists under `<root>/containers/<cid>`
(so a container removed by a crashed command frees its volumes on the next look).

Lock order: the store lock (`volumes/.lock`, flock) is taken alone and held only for the
short create/ref/remove steps; it is never held while another hutch lock is taken.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass, field

from hutch import trace

DRIVER = "local"
# Docker's local driver: names of two characters or more from this set.
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
# Options the local driver accepts (`-o type=tmpfs -o device=tmpfs -o o=size=100m`).
_VALID_OPTS = ("type", "device", "o")
_MANDATORY_OPTS = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))


class VolumeError(Exception):
    """A volume operation failed; str() is the daemon's message (no "Error response" prefix)."""


class NoSuchVolume(VolumeError):
    pass


class VolumeInUse(VolumeError):
    pass


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_at: str
    labels: dict | None = None
    options: dict | None = None
    anonymous: bool = False
    refs: list[str] = field(default_factory=list)   # ids of containers using it

    def inspect(self) -> dict:
        """Docker's `volume inspect` object (keys in the order Docker prints them)."""
        return {"CreatedAt": self.created_at, "Driver": DRIVER, "Labels": self.labels,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": self.options,
                "Scope": "local"}


def validate_name(name: str) -> None:
    if len(name) == 1:
        raise VolumeError(f"create {name}: volume name is too short, names should be at "
                          "least two alphanumeric characters")
    if not _NAME_RE.match(name):
        raise VolumeError(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")


def _now() -> str:
    # Go's time.RFC3339 in local time: 2026-11-29T02:42:32Z or ...+01:00
    s = datetime.datetime.now().astimezone().replace(microsecond=0).isoformat()
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def _write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class VolumeStore:
    def __init__(self, paths):
        self.paths = paths
        self.dir = paths.volumes

    # --- locking -----------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _vdir(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def mountpoint(self, name: str) -> str:
        return os.path.join(self.dir, name, "_data")

    # --- reading -----------------------------------------------------------------
    def _load(self, name: str) -> Volume | None:
        if not _NAME_RE.match(name):
            return None
        try:
            with open(os.path.join(self._vdir(name), "meta.json")) as f:
                meta = json.load(f)
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
            return None
        return Volume(name=name, mountpoint=self.mountpoint(name),
                      created_at=meta.get("CreatedAt", ""), labels=meta.get("Labels"),
                      options=meta.get("Options"), anonymous=bool(meta.get("Anonymous")),
                      refs=self._live_refs(name))

    def _live_refs(self, name: str) -> list[str]:
        refdir = os.path.join(self._vdir(name), "refs")
        try:
            cids = sorted(os.listdir(refdir))
        except FileNotFoundError:
            return []
        return [c for c in cids if os.path.isdir(os.path.join(self.paths.containers, c))
                or self._being_created(c)]

    def _being_created(self, cid: str) -> bool:
        """A container being created lives in ".<id>.creating" (with a "creator" file naming
        the creating process) until it is renamed in place; a dead creator frees it."""
        tmp = os.path.join(self.paths.containers, f".{cid}.creating")
        try:
            with open(os.path.join(tmp, "creator")) as f:
                pid, start = f.read().split()
        except FileNotFoundError:
            return os.path.isdir(tmp)     # past the creator file: about to be renamed
        except ValueError:
            return True                   # being written
        from hutch.engine.store import alive
        return alive(int(pid), int(start))

    def get(self, name: str) -> Volume:
        v = self._load(name)
        if v is None:
            raise NoSuchVolume(f"get {name}: no such volume")
        return v

    def exists(self, name: str) -> bool:
        return self._load(name) is not None

    def list(self) -> list[Volume]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return [v for v in (self._load(n) for n in names if not n.startswith(".")) if v]

    # --- changing ----------------------------------------------------------------
    def create(self, name: str | None = None, *, labels: dict | None = None,
               options: dict | None = None, ref: str | None = None) -> Volume:
        """Create a volume (a random 64-hex name when none is given: an anonymous volume).
        An existing name returns the existing volume, as Docker does. `ref` records the
        container that uses it, under the same lock, so a racing `volume rm` cannot win."""
        anonymous = not name
        name = name or secrets.token_hex(32)
        validate_name(name)
        for key in options or {}:
            if key == "size":   # Docker needs xfs project quotas for this; not faked here
                raise VolumeError(f"create {name}: quota size requested but no quota support")
            if key not in _VALID_OPTS:
                raise VolumeError(f'create {name}: invalid option key: "{key}"')
        for key, needs in _MANDATORY_OPTS:
            for need in needs if key in (options or {}) else ():
                if need not in options:
                    raise VolumeError(f'create {name}: missing required option: "{need}"')
        with self._locked():
            v = self._load(name)
            if v is None:
                vdir = self._vdir(name)
                os.makedirs(os.path.join(vdir, "_data"), mode=0o755, exist_ok=True)
                os.chmod(vdir, 0o700)
                _write_json(os.path.join(vdir, "meta.json"),
                            {"CreatedAt": _now(), "Labels": labels, "Options": options,
                             "Anonymous": anonymous})
                trace.step("volume", f"created {name}", path=vdir)
            if ref:
                self._add_ref(name, ref)
            return self.get(name)

    def _add_ref(self, name: str, cid: str) -> None:
        refdir = os.path.join(self._vdir(name), "refs")
        os.makedirs(refdir, mode=0o700, exist_ok=True)
        with open(os.path.join(refdir, cid), "w"):
            pass

    def add_ref(self, name: str, cid: str) -> Volume:
        """Mark `name` as used by container `cid` (raises NoSuchVolume)."""
        with self._locked():
            self.get(name)
            self._add_ref(name, cid)
            return self.get(name)

    def release(self, name: str, cid: str) -> None:
        """Container `cid` no longer uses `name` (called when the container is removed)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._vdir(name), "refs", cid))

    def remove(self, name: str, force: bool = False) -> None:
        """Docker's `volume rm`: refused while a container uses it; -f only ignores a
        missing volume."""
        with self._locked():
            v = self._load(name)
            if v is None:
                if force:
                    return
                raise NoSuchVolume(f"get {name}: no such volume")
            if v.refs:
                raise VolumeInUse(f"remove {name}: volume is in use - [{' '.join(v.refs)}]")
            self._unmount(name)
            self._delete(name)

    def _delete(self, name: str) -> None:
        vdir = self._vdir(name)
        left = mounts_under(vdir)
        if left:   # never delete through a mount: that would delete what it shows
            raise VolumeError(f"remove {name}: volume is still mounted on {left[0]}")
        # Rename first so a half-deleted volume never looks like a volume.
        trash = os.path.join(self.dir, f".rm-{name}-{secrets.token_hex(4)}")
        os.rename(vdir, trash)
        shutil.rmtree(trash)
        trace.step("volume", f"removed {name}")

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """Remove every unused volume (Docker 20.10 prunes named ones too; 23+ only anonymous
        unless --all). Returns (names removed, bytes reclaimed)."""
        removed, reclaimed = [], 0
        validate_filters(filters or {}, ("label", "label!"))
        for v in self.list():
            if v.refs or not match_filters(v, filters or {}, allowed=("label", "label!")):
                continue
            size = self.size(v.name)
            try:
                self.remove(v.name)
            except VolumeInUse:
                continue
            removed.append(v.name)
            reclaimed += size
        return removed, reclaimed

    # --- local driver options: mounted at first use ------------------------------
    def activate(self, name: str) -> str:
        """Make the volume ready to be bind-mounted into a container and return its
        `_data` path: a volume created with type/device options is mounted there on first
        use (until `deactivate`, when no running container uses it, or `volume rm`)."""
        v = self.get(name)
        opts = v.options or {}
        if not (opts.get("type") or opts.get("device")):
            return v.mountpoint
        with self._locked():
            if not mounts_under(v.mountpoint, exact=True):
                flags, data = parse_mount_options(opts.get("o", ""))
                fstype = opts.get("type") or None
                device = opts.get("device") or fstype or "none"
                if fstype == "none":   # -o type=none -o o=bind -o device=/path
                    fstype = None
                from hutch import _sys
                trace.step("mount", f"{device} on {v.mountpoint}", type=fstype or "",
                           flags=hex(flags), data=data)
                try:
                    _sys.mount(device, v.mountpoint, fstype, flags, data or None)
                except OSError as e:
                    raise VolumeError(f"error while mounting volume '{v.mountpoint}': failed "
                                      f"to mount local volume: mount {device}:{v.mountpoint}, "
                                      f"data: {data}: {os.strerror(e.errno).lower()}") from e
        return v.mountpoint

    def deactivate(self, name: str) -> None:
        """Unmount a volume mounted from its options (the last running user stopped)."""
        with self._locked():
            self._unmount(name)

    def _unmount(self, name: str) -> None:
        """Detach every mount at or below the volume's directory (deepest first). A bind
        mount of a directory on the same filesystem looks like a plain directory to
        os.path.ismount, so /proc/self/mountinfo is the authority."""
        from hutch import _sys
        for mp in sorted(mounts_under(self._vdir(name)), key=len, reverse=True):
            trace.step("umount", mp)
            try:
                _sys.umount2(mp, _sys.MNT_DETACH)
            except OSError as e:
                if e.errno != errno.EINVAL:   # EINVAL: no longer mounted
                    raise

    # --- sizes -------------------------------------------------------------------
    def size(self, name: str) -> int:
        """Bytes used under the volume's _data (Docker's UsageData.Size), not following
        symlinks and counting each hard-linked inode once."""
        return tree_size(self.mountpoint(name))


def mounts_under(path: str, exact: bool = False) -> list[str]:
    """Mount points in this mount namespace at `path` (and, unless exact, below it)."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = _unescape(line.split()[4])
            if mp == real or (not exact and mp.startswith(real + "/")):
                out.append(mp)
    return out


def _unescape(s: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def tree_size(top: str) -> int:
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if not stat.S_ISDIR(st.st_mode):   # files and links count, as du's apparent size
                total += st.st_size
    return total


# mount(8) option words that are flags, not filesystem data.
_MOUNT_FLAGS = {
    "ro": (1, True), "rw": (1, False), "nosuid": (2, True), "suid": (2, False),
    "nodev": (4, True), "dev": (4, False), "noexec": (8, True), "exec": (8, False),
    "sync": (16, True), "async": (16, False), "dirsync": (128, True),
    "noatime": (1024, True), "atime": (1024, False), "nodiratime": (2048, True),
    "diratime": (2048, False), "bind": (4096, True), "rbind": (4096 | 16384, True),
    "relatime": (1 << 21, True), "norelatime": (1 << 21, False),
    "strictatime": (1 << 24, True),
}


def parse_mount_options(o: str) -> tuple[int, str]:
    """`o=size=100m,uid=1000,noexec` -> (MS_ flags, "size=100m,uid=1000")."""
    flags, data = 0, []
    for word in filter(None, o.split(",")):
        if word in _MOUNT_FLAGS:
            bit, on = _MOUNT_FLAGS[word]
            flags = flags | bit if on else flags & ~bit
        else:
            data.append(word)
    return flags, ",".join(data)


_LIST_FILTERS = ("dangling", "name", "driver", "label", "label!")


def validate_filters(filters: dict[str, list[str]], allowed=_LIST_FILTERS) -> None:
    """The daemon's check, before any volume is looked at."""
    for key, values in filters.items():
        if key not in allowed:
            raise VolumeError(f"invalid filter '{key}'")
        if key == "dangling":
            for val in values:
                if val.lower() not in ("true", "false", "1", "0"):
                    raise VolumeError(f"invalid filter 'dangling={val}'")


def match_filters(v: Volume, filters: dict[str, list[str]], allowed=_LIST_FILTERS) -> bool:
    """Docker's volume filters: dangling, name (substring), driver, label (key or key=value),
    label! (negated). Raises VolumeError for an unknown key or bad value."""
    validate_filters(filters, allowed)
    for key, values in filters.items():
        if key == "dangling":
            want = {val.lower() in ("true", "1") for val in values}
            if (not v.refs) not in want:
                return False
        elif key == "name":
            if not any(_regex_match(val, v.name) for val in values):
                return False
        elif key == "driver":
            if DRIVER not in values:
                return False
        elif key in ("label", "label!"):
            labels = v.labels or {}
            hits = [_label_match(labels, val) for val in values]
            if key == "label" and not all(hits):
                return False
            if key == "label!" and any(hits):
                return False
    return True


def _regex_match(pattern: str, s: str) -> bool:
    """Docker's filters.Match: exact, else an unanchored regexp (a bad one never matches)."""
    if pattern == s:
        return True
    try:
        return re.search(pattern, s) is not None
    except re.error:
        return False


def _label_match(labels: dict, expr: str) -> bool:
    k, eq, val = expr.partition("=")
    if k not in labels:
        return False
    return not eq or labels[k] == val

