"""Volumes, bind mounts and tmpfs mounts: Docker's flags -> OCI mounts + Docker's "Mounts".

How the engine uses this module (see docs/contracts.md):
  flags:   Flag("mount", ..., parse=mount_flag)     # the CLI's own --mount errors
  create:  plan = plan_mounts(paths, cid, volumes=[-v...], mounts=[--mount...],
                              tmpfs=[--tmpfs...], volumes_from=[...], lookup=fn,
                              image_volumes=image_config["Volumes"])
           store plan.record in the container's config; inspect shows plan.docker_mounts()
           and HostConfig.Mounts = host_config_mounts([--mount...]).
  start:   oci_mounts = prepare_start(paths, record, rootfs)   # rootfs mounted, before start
  exit:    after_exit(paths, cid, record)           # unmount option volumes (tmpfs...)
  rm:      release_container(paths, cid, record, remove_anonymous=rm_v)
  cp:      open_container_root, source_in_root, TarWriter/archive_entry, Extractor
In-root path resolution (open_in_root, resolve_in_root, secure_join, fd_path) lives in
hutch.securejoin, shared with the runtime; the names are re-exported here for callers.

Order of precedence is Docker's (daemon/volumes.go registerMountPoints): --volumes-from,
then -v binds/named volumes, then --mount; anonymous volumes (-v /path and the image's
VOLUME entries) only where nothing else is mounted; --tmpfs beside them.
"""
from __future__ import annotations

import collections
import os
import posixpath
import stat
from dataclasses import asdict, dataclass, field

from hutch import trace
from hutch.securejoin import (components, fd_path, open_in_root,  # noqa: F401 - re-exported
                              prepare_mount_target, resolve_in_root, secure_join)

# ---------------------------------------------------------------------------------------
# Parsing Docker's flags.
# ---------------------------------------------------------------------------------------
class MountError(ValueError):
    """A mount flag was refused. `usage_error` true: the CLI's own flag error, str() is the
    whole line (`invalid argument "..." for "--mount" flag: ...`; Docker prints its usage
    hint after it). False: the daemon's error, str() is its message, which the CLI shows
    as "docker: Error response from daemon: <message>"."""

    def __init__(self, message: str, usage_error: bool = False, detail: str = ""):
        super().__init__(message)
        self.usage_error = usage_error
        self.detail = detail or message   # for a flag error: the part after "flag: "


def _daemon(msg: str) -> MountError:
    return MountError(msg)


_RW_MODES = {"rw", "ro"}
_LABEL_MODES = {"z", "Z"}
_PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
_COPY_MODES = {"nocopy"}
_CONSISTENCY = {"consistent", "cached", "delegated"}
DEFAULT_PROPAGATION = "rprivate"


def valid_mount_mode(mode: str) -> bool:
    """Docker's linux ValidMountMode: known words, at most one of each kind."""
    if not mode:
        return True
    counts = collections.Counter()
    for word in mode.split(","):
        for kind, words in enumerate((_RW_MODES, _LABEL_MODES, _PROPAGATION, _COPY_MODES,
                                      _CONSISTENCY)):
            if word in words:
                counts[kind] += 1
                break
        else:
            return False
    return all(n <= 1 for n in counts.values())


@dataclass
class MountSpec:
    """One mount as asked for (Docker's mount.Mount), before volumes exist."""
    type: str                       # "bind" | "volume" | "tmpfs"
    target: str
    source: str = ""                # bind: host path; volume: name ("" = anonymous)
    readonly: bool = False
    mode: str = ""                  # -v's mode string, as Docker shows it in "Mode"
    propagation: str = ""           # bind-propagation
    nocopy: bool | None = None      # volume-nocopy / :nocopy (None: default, copy)
    nonrecursive: bool = False      # bind-nonrecursive
    tmpfs_size: int = 0
    tmpfs_mode: int = 0
    volume_driver: str = ""
    volume_opts: dict | None = None
    volume_labels: dict | None = None
    has_bind_options: bool = False
    has_volume_options: bool = False
    has_tmpfs_options: bool = False
    create_source: bool = False     # -v binds: a missing host path is made (not --mount)
    raw: str = ""                   # the flag's text, for error messages


def host_config_mounts(values) -> list[dict] | None:
    """HostConfig.Mounts as Docker's inspect shows the --mount flags (mount.Mount JSON)."""
    out = []
    for v in values:
        spec = v if isinstance(v, MountSpec) else parse_mount(v)
        m = {"Type": spec.type, "Source": spec.source, "Target": spec.target}
        if spec.readonly:
            m["ReadOnly"] = True
        if spec.has_bind_options:
            m["BindOptions"] = {k: val for k, val in (("Propagation", spec.propagation),
                                                      ("NonRecursive", spec.nonrecursive)) if val}
        if spec.has_volume_options:
            opts = {}
            if spec.nocopy:
                opts["NoCopy"] = True
            if spec.volume_labels:
                opts["Labels"] = spec.volume_labels
            if spec.volume_driver or spec.volume_opts:
                opts["DriverConfig"] = {k: val for k, val in (("Name", spec.volume_driver),
                                                              ("Options", spec.volume_opts)) if val}
            m["VolumeOptions"] = opts
        if spec.has_tmpfs_options:
            m["TmpfsOptions"] = {k: val for k, val in (("SizeBytes", spec.tmpfs_size),
                                                       ("Mode", spec.tmpfs_mode)) if val}
        out.append(m)
    return out or None


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def parse_volume(raw: str) -> MountSpec:
    """`-v`: `/host:/ctr[:mode]`, `name:/ctr[:mode]`, `/ctr` (anonymous volume).
    The CLI (28) turns a host part starting with "." into an absolute path first."""
    host, sep, rest = raw.partition(":")
    if sep and not os.path.isabs(host) and host.startswith("."):
        raw = os.path.abspath(host) + ":" + rest
    arr = raw.split(":")
    if not arr[0]:
        raise _daemon(_invalid_spec(raw))
    mode = ""
    if len(arr) == 1:
        spec = MountSpec(type="volume", target=arr[0])
    elif len(arr) == 2:
        if valid_mount_mode(arr[1]):   # "/foo:rw": a mode without a source
            raise _daemon(_invalid_spec(raw))
        spec = MountSpec(type="volume", source=arr[0], target=arr[1])
    elif len(arr) == 3:
        spec = MountSpec(type="volume", source=arr[0], target=arr[1])
        mode = arr[2]
    else:
        raise _daemon(_invalid_spec(raw))
    if not valid_mount_mode(mode):
        raise _daemon(f"invalid mode: {mode}")
    words = mode.split(",") if mode else []
    if posixpath.isabs(spec.source):
        spec.type = "bind"
        spec.create_source = True
    spec.readonly = "ro" in words
    spec.mode = mode
    spec.raw = raw
    if "nocopy" in words:
        spec.nocopy = True
        spec.has_volume_options = True
    prop = [w for w in words if w in _PROPAGATION]
    if prop:
        spec.propagation = prop[0]
        spec.has_bind_options = True
    try:
        validate_spec(spec)
    except MountError as e:
        raise _daemon(f"{_invalid_spec(raw)}: {e}") from None
    return spec


def _parse_bool(key: str, val: str) -> bool:
    v = val.strip()
    if v in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if v in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"invalid value for {key}: {val}")


def parse_mount(value: str) -> MountSpec:
    """`--mount type=bind|volume|tmpfs,source=,target=,readonly,...` (the CLI's CSV
    parser and its errors)."""
    import csv
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as e:
        raise _flag_error("--mount", value, str(e))
    spec = MountSpec(type="volume", target="", raw=value)   # the CLI defaults to volume
    try:
        for f in fields:
            key, eq, val = f.partition("=")
            key = key.lower()
            if not eq:
                if key in ("readonly", "ro"):
                    spec.readonly = True
                elif key == "volume-nocopy":
                    spec.nocopy, spec.has_volume_options = True, True
                elif key == "bind-nonrecursive":
                    spec.nonrecursive, spec.has_bind_options = True, True
                else:
                    raise ValueError(f"invalid field '{f}' must be a key=value pair")
                continue
            if key == "type":
                spec.type = val.lower()
            elif key in ("source", "src"):
                spec.source = os.path.abspath(val) if val == "." or val.startswith("./") else val
            elif key in ("target", "dst", "destination"):
                spec.target = val
            elif key in ("readonly", "ro"):
                spec.readonly = _parse_bool(key, val)
            elif key == "consistency":
                pass   # a no-op on Linux, in Docker too
            elif key == "bind-propagation":
                spec.propagation, spec.has_bind_options = val.lower(), True
            elif key == "bind-nonrecursive":
                spec.nonrecursive, spec.has_bind_options = _parse_bool(key, val), True
            elif key == "volume-driver":
                spec.volume_driver, spec.has_volume_options = val, True
            elif key == "volume-opt":
                k, _, v = val.partition("=")
                spec.volume_opts = spec.volume_opts or {}
                if k:
                    spec.volume_opts[k] = v
                spec.has_volume_options = True
            elif key == "volume-label":
                k, _, v = val.partition("=")
                spec.volume_labels = spec.volume_labels or {}
                if k:
                    spec.volume_labels[k] = v
                spec.has_volume_options = True
            elif key == "volume-nocopy":
                try:
                    spec.nocopy = _parse_bool(key, val)
                except ValueError:
                    raise ValueError(f"invalid value for volume-nocopy: {val}") from None
                spec.has_volume_options = True
            elif key == "tmpfs-size":
                try:
                    spec.tmpfs_size = ram_in_bytes(val)
                except ValueError:
                    raise ValueError(f"invalid value for {key}: {val}") from None
                spec.has_tmpfs_options = True
            elif key == "tmpfs-mode":
                try:
                    spec.tmpfs_mode = int(val, 8)
                    if not 0 <= spec.tmpfs_mode < 1 << 32:
                        raise ValueError
                except ValueError:
                    raise ValueError(f"invalid value for {key}: {val}") from None
                spec.has_tmpfs_options = True
            else:
                raise ValueError(f"unexpected key '{key}' in '{f}'")
        if not spec.type:
            raise ValueError("type is required")
        if not spec.target:
            raise ValueError("target is required")
        for opt, kind, has in (("volume", "volume", spec.has_volume_options),
                               ("bind", "bind", spec.has_bind_options),
                               ("tmpfs", "tmpfs", spec.has_tmpfs_options)):
            if has and spec.type != kind:
                raise ValueError(f"cannot mix '{opt}-*' options with mount type '{spec.type}'")
    except ValueError as e:
        raise _flag_error("--mount", value, str(e)) from None
    validate_spec(spec)
    return spec


def _flag_error(flag: str, value: str, msg: str) -> MountError:
    return MountError(f'invalid argument "{value}" for "{flag}" flag: {msg}', usage_error=True,
                      detail=msg)


def mount_flag(value: str) -> str:
    """`Flag("mount", type="list", parse=mount_flag)` for hutch.cli.flags: the Docker CLI's
    own --mount checks at flag-parsing time (ValueError(detail) -> `invalid argument "..."
    for "--mount" flag: detail`); the daemon's checks come later, in plan_mounts."""
    try:
        parse_mount(value)
    except MountError as e:
        if e.usage_error:
            raise ValueError(e.detail) from None
    return value


def ram_in_bytes(s: str) -> int:
    """go-units RAMInBytes: "64m", "1g", "512k", "1.5GiB", plain bytes; binary units."""
    import re
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:[iI]?[bB])?\s*", s)
    if not m:
        raise ValueError(f"invalid size: '{s}'")
    mult = 1024 ** " kmgtp".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * mult)


def validate_spec(spec: MountSpec) -> None:
    """Docker's validateMountConfig (the daemon's checks), with its wording."""
    def bad(msg: str) -> MountError:
        return _daemon(f'invalid mount config for type "{spec.type}": {msg}')

    if not spec.target:
        raise bad("field Target must not be empty")
    if posixpath.normpath(spec.target) == "/":
        raise bad("invalid specification: destination can't be '/'")
    if not posixpath.isabs(spec.target):
        raise bad(f"invalid mount path: '{spec.target}' mount path must be absolute")
    if spec.type == "bind":
        if not spec.source:
            raise bad("field Source must not be empty")
        if spec.propagation and spec.propagation not in _PROPAGATION:
            raise bad(f"invalid propagation mode: {spec.propagation}")
        if spec.has_volume_options:
            raise bad("field VolumeOptions must not be specified")
        if spec.has_tmpfs_options:
            raise bad("field TmpfsOptions must not be specified")
        if not posixpath.isabs(spec.source):
            raise bad(f"invalid mount path: '{spec.source}' mount path must be absolute")
    elif spec.type == "volume":
        if spec.has_bind_options:
            raise bad("field BindOptions must not be specified")
        if spec.has_tmpfs_options:
            raise bad("field TmpfsOptions must not be specified")
        if not spec.source and spec.readonly:
            raise bad("must not set ReadOnly mode when using anonymous volumes")
    elif spec.type == "tmpfs":
        if spec.has_bind_options:
            raise bad("field BindOptions must not be specified")
        if spec.has_volume_options:
            raise bad("field VolumeOptions must not be specified")
        if spec.source:
            raise bad("field Source must not be specified")
    else:
        raise bad("mount type unknown")


def parse_tmpfs(value: str) -> tuple[str, str]:
    """`--tmpfs /path[:opts]` -> (destination, options string), validated as the daemon
    does (absolute, not "/", known tmpfs options)."""
    dest, _, opts = value.partition(":")
    if posixpath.normpath(dest) == "/":
        raise _daemon("invalid specification: destination can't be '/'")
    if not posixpath.isabs(dest):
        raise _daemon(f"invalid mount path: '{dest}' mount path must be absolute")
    merge_tmpfs_options(opts.split(",") if opts else [])
    return dest, opts


def parse_volumes_from(value: str) -> tuple[str, str]:
    """`--volumes-from ctr[:ro|rw]` -> (container, mode)."""
    if not value:
        raise _daemon("volumes-from specification cannot be an empty string")
    ctr, sep, mode = value.partition(":")
    if not sep:
        return ctr, "rw"
    words = mode.split(",") if mode else []
    if not valid_mount_mode(mode) or any(w in _PROPAGATION or w in _COPY_MODES for w in words):
        raise _daemon(f"invalid mode: {mode}")
    return ctr, mode


# mount(8) words that are flags: (group key, ...). Words in one group override each other.
_TMPFS_FLAG_GROUPS = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid", "dev": "nodev",
    "nodev": "nodev", "exec": "noexec", "noexec": "noexec", "sync": "sync", "async": "sync",
    "dirsync": "dirsync", "remount": "remount", "mand": "mand", "nomand": "mand",
    "atime": "noatime", "noatime": "noatime", "diratime": "nodiratime",
    "nodiratime": "nodiratime", "bind": "bind", "rbind": "bind",
    "unbindable": "propagation", "runbindable": "propagation", "private": "propagation",
    "rprivate": "propagation", "shared": "propagation", "rshared": "propagation",
    "slave": "propagation", "rslave": "propagation", "relatime": "relatime",
    "norelatime": "relatime", "strictatime": "strictatime", "nostrictatime": "strictatime",
}
_TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """Docker's MergeTmpfsOptions: later words override earlier ones of the same kind."""
    seen_flags, seen_data, out = set(), set(), []
    for opt in reversed(options):
        if opt == "defaults":
            continue
        group = _TMPFS_FLAG_GROUPS.get(opt)
        if group:
            if group not in seen_flags:
                seen_flags.add(group)
                out.insert(0, opt)
            continue
        key, eq, _ = opt.partition("=")
        if not eq or key not in _TMPFS_DATA:
            parts = opt.split("=", 1)
            raise _daemon("Invalid tmpfs option [" + " ".join(f'"{p}"' for p in parts) + "]")
        if key not in seen_data:
            seen_data.add(key)
            out.insert(0, opt)
    return out


def tmpfs_data(spec: MountSpec) -> str:
    """Docker's ConvertTmpfsOptions for `--mount type=tmpfs`."""
    opts = ["ro"] if spec.readonly else []
    if spec.tmpfs_mode:
        opts.append(f"mode={spec.tmpfs_mode:o}")
    if spec.tmpfs_size:
        size, suffix = spec.tmpfs_size, ""
        for unit in ("k", "m", "g"):
            if size % 1024:
                break
            size, suffix = size // 1024, unit
        opts.append(f"size={size}{suffix}")
    return ",".join(opts)


# ---------------------------------------------------------------------------------------
# The plan: what a container mounts, kept in its config (immutable after create).
# ---------------------------------------------------------------------------------------
@dataclass
class MountPoint:
    """One entry of a container's mounts (Docker's MountPoint), JSON-able for the config."""
    Type: str
    Destination: str
    Source: str = ""
    Name: str = ""
    Driver: str = ""
    Mode: str = ""
    RW: bool = True
    Propagation: str = ""
    CopyData: bool = False      # copy the image's content into an empty volume at start
    Anonymous: bool = False     # removed by `rm -v`
    CreateSource: bool = False  # -v bind: a missing host path is made at start
    NonRecursive: bool = False  # bind-nonrecursive
    Data: str = ""              # tmpfs options

    def docker(self) -> dict:
        """The entry of `inspect`'s "Mounts" (Docker's key order; Name/Driver omitted
        when empty)."""
        d = {"Type": self.Type}
        if self.Name:
            d["Name"] = self.Name
        d |= {"Source": self.Source, "Destination": self.Destination}
        if self.Driver:
            d["Driver"] = self.Driver
        d |= {"Mode": self.Mode, "RW": self.RW, "Propagation": self.Propagation}
        return d


@dataclass
class MountPlan:
    mounts: list[MountPoint] = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)      # --tmpfs dest -> options

    @property
    def record(self) -> dict:
        """What the engine stores in the container's config and gives back later."""
        return {"MountPoints": [asdict(m) for m in self.mounts], "Tmpfs": dict(self.tmpfs)}

    @classmethod
    def from_record(cls, record: dict | None) -> "MountPlan":
        """From `record` (as stored), or from a container's whole config holding it."""
        record = record or {}
        if "HutchMounts" in record:
            record = record["HutchMounts"] or {}
        return cls([MountPoint(**m) for m in record.get("MountPoints", [])],
                   dict(record.get("Tmpfs") or {}))

    def docker_mounts(self) -> list[dict]:
        """inspect's "Mounts" (--tmpfs mounts are not listed there, as in Docker)."""
        return [m.docker() for m in sorted(self.mounts, key=lambda m: m.Destination)]

    @property
    def anonymous(self) -> list[str]:
        return [m.Name for m in self.mounts if m.Type == "volume" and m.Anonymous]

    @property
    def volume_names(self) -> list[str]:
        return [m.Name for m in self.mounts if m.Type == "volume"]

    def rootfs_propagation(self) -> str | None:
        """runc needs the rootfs itself shared/slave for a shared/slave bind to work, as
        Docker sets it: "rshared", "rslave" or None (keep the default)."""
        props = {m.Propagation for m in self.mounts}
        if props & {"shared", "rshared"}:
            return "rshared"
        if props & {"slave", "rslave"}:
            return "rslave"
        return None


def _duplicate(dest: str) -> MountError:
    return _daemon(f"Duplicate mount point: {dest}")


def plan_mounts(paths, cid: str, *, volumes=(), mounts=(), tmpfs=(), volumes_from=(),
                lookup=None, image_volumes=(), volume_driver: str = "") -> MountPlan:
    """Turn a container's mount flags into its plan, creating the named volumes it needs
    (on first use) and its anonymous ones, each marked as used by `cid`.
    `lookup(name_or_id) -> (container id, its config)` finds a --volumes-from container
    (and raises the engine's own "No such container" error); the config's "HutchMounts"
    (or the mount record itself) is read. On a MountError nothing created
    here is left behind."""
    from hutch.engine.volumestore import VolumeError, VolumeStore
    if volume_driver and volume_driver != "local":
        raise _daemon(f'error looking up volume plugin {volume_driver}: plugin '
                      f'"{volume_driver}" not found')
    store = VolumeStore(paths)
    # Parse everything before creating anything.
    tmpfs_map = dict(parse_tmpfs(t) for t in tmpfs)
    vol_specs = [parse_volume(v) for v in volumes]
    mount_specs = [m if isinstance(m, MountSpec) else parse_mount(m) for m in mounts]
    for s in mount_specs:
        if s.type == "volume" and s.volume_driver not in ("", "local"):
            raise _daemon(f'error looking up volume plugin {s.volume_driver}: plugin '
                          f'"{s.volume_driver}" not found')
    froms = [parse_volumes_from(v) for v in volumes_from]

    points: dict[str, MountPoint] = {}
    created: list[str] = []
    referenced: list[str] = []

    def use_volume(name: str, **kw):
        existed = bool(name) and store.exists(name)
        v = store.create(name or None, ref=cid, **kw)
        if not existed:
            created.append(v.name)
        referenced.append(v.name)
        return v

    try:
        # 1. --volumes-from: the other container's mounts, its ro/rw narrowed by mode.
        for ctr, mode in froms:
            if lookup is None:
                raise _daemon(f"No such container: {ctr}")
            _, record = lookup(ctr)
            for m in MountPlan.from_record(record).mounts:
                cp = MountPoint(Type=m.Type, Destination=m.Destination, Source=m.Source,
                                Name=m.Name, Driver=m.Driver,
                                RW=m.RW and "ro" not in mode.split(","),
                                Propagation=m.Propagation, Anonymous=m.Anonymous,
                                NonRecursive=m.NonRecursive, Data=m.Data)
                if m.Type == "volume":
                    store.add_ref(m.Name, cid)
                    referenced.append(m.Name)
                points[cp.Destination] = cp
        # 2. -v binds and named volumes (anonymous -v /path are handled with the image's).
        seen: set[str] = set()
        anonymous_targets: list[tuple[str, MountSpec | None]] = []
        for spec in vol_specs:
            if spec.type == "volume" and not spec.source:
                anonymous_targets.append((posixpath.normpath(spec.target), spec))
                continue
            dest = posixpath.normpath(spec.target)
            if dest in seen or dest in tmpfs_map:
                raise _duplicate(dest)
            seen.add(dest)
            points[dest] = _mount_point(spec, dest, use_volume)
        # 3. --mount.
        for spec in mount_specs:
            dest = posixpath.normpath(spec.target)
            if dest in seen:
                raise _duplicate(spec.target)
            seen.add(dest)
            if spec.type == "bind" and not os.path.exists(spec.source):
                raise _daemon(f'invalid mount config for type "bind": bind source path does '
                              f"not exist: {spec.source}")
            points[dest] = _mount_point(spec, dest, use_volume)
        # 4. Anonymous volumes: -v /path, then the image's VOLUME, where nothing is mounted.
        for dest, spec in anonymous_targets + [(posixpath.normpath(v), None)
                                               for v in image_volumes]:
            if dest in points or dest in tmpfs_map:
                continue
            if not posixpath.isabs(dest) or dest == "/":
                raise _daemon(_invalid_spec(dest if spec is None else spec.raw))
            v = use_volume("")
            points[dest] = MountPoint(Type="volume", Destination=dest, Source=v.mountpoint,
                                      Name=v.name, Driver="local", CopyData=True,
                                      Anonymous=True)
    except VolumeError as e:
        _undo(store, cid, created, referenced)
        raise _daemon(str(e)) from None
    except BaseException:
        _undo(store, cid, created, referenced)
        raise
    return MountPlan(list(points.values()), tmpfs_map)


def _mount_point(spec: MountSpec, dest: str, use_volume) -> MountPoint:
    if spec.type == "bind":
        return MountPoint(Type="bind", Destination=dest, Source=posixpath.normpath(spec.source),
                          Mode=spec.mode, RW=not spec.readonly,
                          Propagation=spec.propagation or DEFAULT_PROPAGATION,
                          CreateSource=spec.create_source,
                          NonRecursive=spec.nonrecursive)
    if spec.type == "volume":
        v = use_volume(spec.source, labels=spec.volume_labels, options=spec.volume_opts)
        return MountPoint(Type="volume", Destination=dest, Source=v.mountpoint, Name=v.name,
                          Driver="local", Mode=spec.mode or "z", RW=not spec.readonly,
                          CopyData=not spec.nocopy, Anonymous=not spec.source)
    return MountPoint(Type="tmpfs", Destination=dest, RW=not spec.readonly,
                      Data=tmpfs_data(spec))


def _undo(store, cid: str, created: list[str], referenced: list[str]) -> None:
    for name in referenced:
        store.release(name, cid)
    for name in created:
        try:
            store.remove(name)
        except Exception:  # noqa: BLE001 - best effort: the error being raised matters more
            pass


def release_container(paths, cid: str, record: dict | None, remove_anonymous: bool = False
                      ) -> list[str]:
    """The container is being removed: drop its references and, for `rm -v`, remove its
    anonymous volumes (kept when another container still uses one, as Docker does).
    Returns error lines (Docker logs them; `rm` still succeeds)."""
    from hutch.engine.volumestore import NoSuchVolume, VolumeError, VolumeInUse, VolumeStore
    store = VolumeStore(paths)
    plan = MountPlan.from_record(record)
    for name in plan.volume_names:
        store.release(name, cid)
    errors = []
    if remove_anonymous:
        for name in plan.anonymous:
            try:
                store.remove(name)
            except (VolumeInUse, NoSuchVolume):
                pass
            except (VolumeError, OSError) as e:
                errors.append(str(e))
    return errors


def after_exit(paths, cid: str, record: dict | None) -> None:
    """The container has stopped: a volume mounted from driver options (-o type=tmpfs...)
    is unmounted when no other running container uses it, as Docker's local driver does
    (so a tmpfs volume starts empty at the next start, as in Docker)."""
    from hutch.engine.store import alive, read_json
    from hutch.engine.volumestore import VolumeStore
    store = VolumeStore(paths)
    for name in MountPlan.from_record(record).volume_names:
        try:
            v = store.get(name)
        except Exception:  # noqa: BLE001 - removed meanwhile: nothing to unmount
            continue
        if not ((v.options or {}).get("type") or (v.options or {}).get("device")):
            continue
        busy = False
        for other in v.refs:
            if other == cid:
                continue
            st = read_json(os.path.join(paths.containers, other, "state.json")) or {}
            if st.get("Running") and alive(st.get("Pid", 0), st.get("PidStart")):
                busy = True
                break
        if not busy:
            store.deactivate(name)


# ---------------------------------------------------------------------------------------
# Start: volumes ready, bind sources made, image content copied up, OCI mounts out.
# ---------------------------------------------------------------------------------------
def prepare_start(paths, record: dict | None, rootfs: str) -> list[dict]:
    """Called by the engine with the container's rootfs mounted, before the runtime's
    create. Returns the OCI mounts to append to the spec (parents before children)."""
    from hutch.engine.volumestore import VolumeError, VolumeStore
    store = VolumeStore(paths)
    plan = MountPlan.from_record(record)
    oci = []
    for m in plan.mounts:
        if m.Type == "volume":
            try:
                source = store.activate(m.Name)
            except VolumeError as e:
                raise _daemon(str(e)) from None
            if m.CopyData:
                copy_up(rootfs, m.Destination, source)
            oci.append(_bind(m, source))
        elif m.Type == "bind":
            if m.CreateSource and not os.path.lexists(m.Source):
                trace.step("mkdir", m.Source, reason="bind source")
                os.makedirs(m.Source, 0o755, exist_ok=True)
            _check_source_propagation(m)
            oci.append(_bind(m, m.Source))
        else:
            oci.append(_tmpfs(m.Destination, m.Data))
    for dest, data in plan.tmpfs.items():
        oci.append(_tmpfs(dest, data))
    oci.sort(key=lambda x: len(components(x["destination"])))   # Docker's sortMounts
    return oci


def _check_source_propagation(m: MountPoint) -> None:
    """A shared (slave) bind only propagates if the host mount holding its source is shared
    (or shared/slave); Docker refuses otherwise rather than pretend."""
    if m.Propagation not in ("shared", "rshared", "slave", "rslave"):
        return
    mount_point, optional = _host_mount_of(m.Source)
    tags = {t.split(":")[0] for t in optional}
    if m.Propagation in ("shared", "rshared") and "shared" not in tags:
        raise MountError(f"linux mounts: path {m.Source} is mounted on {mount_point} but it "
                         "is not a shared mount")
    if not tags & {"shared", "master"}:
        raise MountError(f"linux mounts: path {m.Source} is mounted on {mount_point} but it "
                         "is not a shared or slave mount")


def _host_mount_of(path: str) -> tuple[str, list[str]]:
    """(mount point, optional fields) of the mount in this namespace that holds `path`."""
    real = os.path.realpath(path)
    best, fields = "/", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            mp = parts[4].replace("\\040", " ")
            if (real == mp or real.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
                best, fields = mp, parts[6:parts.index("-")]
    return best, fields


def _bind(m: MountPoint, source: str) -> dict:
    opts = ["bind" if m.NonRecursive else "rbind"]
    if not m.RW:
        opts.append("ro")
    opts.append(m.Propagation or DEFAULT_PROPAGATION)
    return {"destination": m.Destination, "type": "bind", "source": source, "options": opts}


def _tmpfs(dest: str, data: str) -> dict:
    opts = merge_tmpfs_options(["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION]
                               + (data.split(",") if data else []))
    return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}


def copy_up(rootfs: str, destination: str, volume_dir: str) -> bool:
    """Docker's copy-up: an empty volume is filled with what the image has at its mount
    point (and takes that directory's owner and mode). Resolved inside the rootfs; nothing
    is followed out of it. Returns whether anything was copied."""
    with os.scandir(volume_dir) as it:
        if next(it, None) is not None:   # not empty: Docker copies only into an empty one
            return False
    try:
        src = open_in_root(rootfs, destination)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        st = os.fstat(src)
        if not stat.S_ISDIR(st.st_mode):
            raise MountError(f"cannot mount volume over existing file, file exists "
                             f"{secure_join(rootfs, destination)}")
        dst = os.open(volume_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            trace.step("copy-up", f"{destination} -> {volume_dir}")
            src_dir = _reopen_dir(src)
            try:
                copy_tree(src_dir, dst)
            finally:
                os.close(src_dir)
            os.chown(dst, st.st_uid, st.st_gid)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return True


def _reopen_dir(opath_fd: int) -> int:
    """A readable directory fd for an O_PATH one (no path walk, no /proc needed)."""
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=opath_fd)


def copy_tree(src_dir: int, dst_dir: int, _top: int | None = None, _rel: str = "",
              _links: dict | None = None) -> None:
    """Copy the contents of directory fd `src_dir` into directory fd `dst_dir`: files,
    directories, symlinks (as links), devices, fifos, hard links; owner, mode and times
    kept. Every name is opened relative to its parent with O_NOFOLLOW."""
    top = dst_dir if _top is None else _top
    links = {} if _links is None else _links   # (dev, ino) -> path below `top`
    for entry in os.scandir(src_dir):
        name = entry.name
        rel = f"{_rel}{name}"
        st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=src_dir)
            try:
                d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                            dir_fd=dst_dir)
                try:
                    copy_tree(s, d, top, rel + "/", links)
                    _set_meta(d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            os.link(links[key], name, src_dir_fd=top, dst_dir_fd=dst_dir, follow_symlinks=False)
            continue
        if stat.S_ISREG(mode):
            s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
            try:
                d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                            | os.O_CLOEXEC, 0o600, dir_fd=dst_dir)
                try:
                    _copy_data(s, d)
                    _set_meta(d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir,
                     follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, mode, st.st_rdev, dir_fd=dst_dir)
            _set_meta_at(dst_dir, name, st)
        else:
            continue   # sockets are not copied (tar skips them too)
        if st.st_nlink > 1:
            links[key] = rel


def _copy_data(s: int, d: int) -> None:
    while True:
        try:
            n = os.copy_file_range(s, d, 1 << 30)
        except OSError:
            n = -1
        if n == 0:
            return
        if n < 0:
            break
    while chunk := os.read(s, 1 << 20):
        os.write(d, chunk)


def _set_meta(fd: int, st: os.stat_result) -> None:
    os.chown(fd, st.st_uid, st.st_gid)
    os.chmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _set_meta_at(dirfd: int, name: str, st: os.stat_result) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dirfd, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dirfd, follow_symlinks=False)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dirfd, follow_symlinks=False)


# ---------------------------------------------------------------------------------------
# Disk usage (system df).
# ---------------------------------------------------------------------------------------
def disk_usage(paths) -> dict:
    """What `system df` (and the API's /system/df) counts, from each store: images (unique
    layer bytes, shared bytes, containers using each), containers (their writable layer),
    local volumes (bytes, containers using each). hutch has no build cache."""
    from hutch.engine.store import Store
    from hutch.engine.volumestore import VolumeStore, tree_size
    from hutch.images.store import ImageStore
    images = ImageStore(paths.images, paths.containers)
    in_use = images.images_in_use()
    imgs, layer_size = [], {}
    for img in images.list():
        for d in img.layers:
            if d not in layer_size:
                try:
                    layer_size[d] = images.layer_info(d)["size"]
                except (OSError, KeyError, ValueError):
                    layer_size[d] = 0
        imgs.append({"image": img, "containers": len(in_use.get(img.id, []))})
    layer_users: dict[str, int] = {}
    for i in imgs:
        for d in set(i["image"].layers):
            layer_users[d] = layer_users.get(d, 0) + 1
    for i in imgs:
        layers = set(i["image"].layers)
        i["size"] = sum(layer_size[d] for d in layers)
        i["shared"] = sum(layer_size[d] for d in layers if layer_users[d] > 1)
    ctrs = []
    for c in Store(paths).list():
        try:
            size = tree_size(images.snapshot_upper(c.id))
        except Exception:  # noqa: BLE001 - a snapshot being removed: nothing to count
            size = 0
        ctrs.append({"container": c, "size": size,
                     "active": c.status in ("running", "paused", "restarting")})
    store = VolumeStore(paths)
    vols = [{"volume": v, "size": store.size(v.name), "links": len(v.refs)}
            for v in store.list()]
    return {"images": imgs, "layers_size": sum(layer_size.values()), "containers": ctrs,
            "volumes": vols}


# ---------------------------------------------------------------------------------------
# cp: tar streams made and unpacked through in-root descriptors (Docker's archive API).
# ---------------------------------------------------------------------------------------
class CopyError(Exception):
    """A cp failed; str() is the line the CLI prints."""


_BLOCK = 512


class IdMap:
    """A container's user-namespace mappings (OCI uidMappings/gidMappings): cp writes
    files as the container's ids seen from the host, and shows the container's ids."""

    def __init__(self, uid_maps: list[dict], gid_maps: list[dict]):
        self.uids, self.gids = uid_maps, gid_maps

    @staticmethod
    def _map(maps, n, src, dst):
        for m in maps:
            if m[src] <= n < m[src] + m["size"]:
                return m[dst] + n - m[src]
        return 65534   # unmapped: the overflow id, as the kernel shows it

    def to_host(self, uid: int, gid: int) -> tuple[int, int]:
        return (self._map(self.uids, uid, "containerID", "hostID"),
                self._map(self.gids, gid, "containerID", "hostID"))

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        return (self._map(self.uids, uid, "hostID", "containerID"),
                self._map(self.gids, gid, "hostID", "containerID"))

    @classmethod
    def of_spec(cls, spec: dict | None) -> "IdMap | None":
        linux = (spec or {}).get("linux") or {}
        if not linux.get("uidMappings"):
            return None
        return cls(linux["uidMappings"], linux.get("gidMappings") or linux["uidMappings"])


class TarWriter:
    """A tar stream onto a file descriptor, as Go's archive/tar writes it (ustar headers,
    PAX records only when needed, two zero blocks at the end and no record padding):
    `count` is the number of bytes written, which `docker cp` reports."""

    def __init__(self, fd: int):
        self.fd = fd
        self.count = 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.count += len(data)

    def add(self, info, data_fd: int | None = None) -> None:
        import tarfile
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if data_fd is None or info.size == 0:
            return
        left = info.size
        while left:
            chunk = os.read(data_fd, min(left, 1 << 20))
            if not chunk:   # the file shrank while it was read: pad, as the size is promised
                chunk = b"\0" * left
            self._write(chunk)
            left -= len(chunk)
        if info.size % _BLOCK:
            self._write(b"\0" * (_BLOCK - info.size % _BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (2 * _BLOCK))


def _tarinfo(arcname: str, st: os.stat_result, linkname: str = ""):
    import tarfile
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    m = st.st_mode
    if stat.S_ISDIR(m):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(m):
        info.type, info.linkname = tarfile.SYMTYPE, linkname
    elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(m):
        info.type = tarfile.FIFOTYPE
    else:
        info.type, info.size = tarfile.REGTYPE, st.st_size
    return info


def archive_entry(w: TarWriter, parent_fd: int, name: str, arcname: str,
                  links: dict | None = None, with_root: bool = True,
                  idmap: IdMap | None = None) -> None:
    """Write `name` (in directory fd `parent_fd`) and, for a directory, all below it, into
    `w` under `arcname`. Names are opened relative to their parent with O_NOFOLLOW: the
    tree can change under us, but nothing outside it is ever read. `idmap`: owners are
    shown as the container's ids."""
    import tarfile
    links = {} if links is None else links
    if idmap is not None and not isinstance(w, _MappedWriter):
        w = _MappedWriter(w, idmap)
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    m = st.st_mode
    if stat.S_ISSOCK(m):
        return
    if stat.S_ISDIR(m):
        if with_root:
            w.add(_tarinfo(arcname + "/", st))
        d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    dir_fd=parent_fd)
        try:
            for child in sorted(e.name for e in os.scandir(d)):
                archive_entry(w, d, child, f"{arcname}/{child}" if arcname else child, links,
                              idmap=idmap)
        finally:
            os.close(d)
        return
    key = (st.st_dev, st.st_ino)
    if stat.S_ISREG(m) and st.st_nlink > 1 and key in links:
        info = _tarinfo(arcname, st)
        info.type, info.linkname, info.size = tarfile.LNKTYPE, links[key], 0
        w.add(info)
        return
    if stat.S_ISLNK(m):
        w.add(_tarinfo(arcname, st, os.readlink(name, dir_fd=parent_fd)))
        return
    if not stat.S_ISREG(m):
        w.add(_tarinfo(arcname, st))
        return
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=parent_fd)
    try:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):   # swapped under us: skip rather than block
            return
        w.add(_tarinfo(arcname, now), fd)
    finally:
        os.close(fd)
    if st.st_nlink > 1:
        links[key] = arcname


class _MappedWriter:
    def __init__(self, w: TarWriter, idmap: IdMap):
        self.w, self.idmap = w, idmap

    def add(self, info, data_fd: int | None = None) -> None:
        info.uid, info.gid = self.idmap.to_container(info.uid, info.gid)
        self.w.add(info, data_fd)


def _splitcomponents(name: str) -> list[str]:
    parts = components(name)
    if ".." in parts:
        raise CopyError(f"invalid archive entry {name!r}: it climbs out of the destination")
    return parts


class Extractor:
    """Unpack a tar stream into directory `dest` (a path inside `root`), resolving every
    entry's parent inside `root` (no symlink, from the tree or from the archive itself,
    leads out of it). chown: None (keep the caller's ids, as the Docker CLI does when it
    unpacks), "root" (the container's root, plain `cp` into a container) or "keep" (the
    archive's, `cp -a`); `idmap` turns those container ids into host ids."""

    def __init__(self, root, dest: str, chown: str | None = None, idmap: IdMap | None = None):
        self.root, self.dest, self.chown, self.idmap = root, dest.rstrip("/") or "/", chown, idmap
        self.dirs: list[tuple[str, object]] = []

    def _parent(self, parts: list[str]) -> int:
        return open_in_root(self.root, posixpath.join(self.dest, *parts[:-1]), create="dir")

    def extract(self, stream) -> None:
        import tarfile
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for m in tf:
                parts = _splitcomponents(m.name)
                if not parts:
                    continue   # the "./" entry of the destination itself
                parent = self._parent(parts)
                try:
                    self._entry(tf, m, parent, parts[-1], "/".join(parts))
                finally:
                    os.close(parent)
        for path, m in reversed(self.dirs):   # after their contents changed their times
            fd = open_in_root(self.root, path)
            try:
                d = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
                try:
                    self._meta_fd(d, m)
                finally:
                    os.close(d)
            finally:
                os.close(fd)

    def _entry(self, tf, m, parent: int, name: str, rel: str) -> None:
        try:
            old = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        full = posixpath.join(self.dest, rel)
        if m.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                raise CopyError(f'cannot overwrite non-directory "{full}" with directory "{full}"')
            if old is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            self.dirs.append((full, m))
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise CopyError(f'cannot overwrite directory "{full}" with non-directory "{full}"')
            os.unlink(name, dir_fd=parent)
        if m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                src = tf.extractfile(m)
                while chunk := src.read(1 << 20):
                    os.write(fd, chunk)
                self._meta_fd(fd, m)
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=parent)
            self._owner_at(parent, name, m)
            os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        elif m.islnk():
            tparts = _splitcomponents(m.linkname)
            tparent = self._parent(tparts)
            try:
                os.link(tparts[-1], name, src_dir_fd=tparent, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(tparent)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=parent)
            self._owner_at(parent, name, m)
            os.chmod(name, m.mode & 0o7777, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)

    def _ids(self, m):
        if self.chown is None:
            return None
        ids = (m.uid, m.gid) if self.chown == "keep" else (0, 0)
        return self.idmap.to_host(*ids) if self.idmap else ids

    def _owner_at(self, parent: int, name: str, m) -> None:
        ids = self._ids(m)
        if ids is not None:
            os.chown(name, *ids, dir_fd=parent, follow_symlinks=False)

    def _meta_fd(self, fd: int, m) -> None:
        ids = self._ids(m)
        if ids is not None:
            os.chown(fd, *ids)      # before chmod: chown clears set-id bits
        os.chmod(fd, m.mode & 0o7777)
        os.utime(fd, (m.mtime, m.mtime))


def source_in_root(root, path: str, follow: bool) -> tuple[int, str, str]:
    """Where a cp source is: (O_PATH fd of its parent directory, its name there, the
    container path it resolved to). The name is "" for the root itself. Raises
    FileNotFoundError / NotADirectoryError when it is not there."""
    clean = posixpath.normpath("/" + path)
    target = resolve_in_root(root, clean) if follow else \
        posixpath.join(resolve_in_root(root, posixpath.dirname(clean)), posixpath.basename(clean))
    parent, name = posixpath.split(target)
    fd = open_in_root(root, parent)
    try:
        if name:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
    except BaseException:
        os.close(fd)
        raise
    return fd, name, target


def open_container_root(paths, cid: str, state: dict, record: dict) -> int:
    """An O_PATH fd of a container's root as its processes see it, volumes included.

    Running (a live init): /proc/<pid>/root; lookups from it cross the container's own
    mounts, and the pid's start time is checked after the open (pid reuse).
    Not running: the rootfs and its volume/bind mounts are mounted in a *new private mount
    namespace of the caller* — call this only in a forked child that exits afterwards.
    """
    from hutch.engine.store import alive
    pid = state.get("Pid") or 0
    if pid and state.get("Running") and alive(pid, state.get("PidStart")):
        fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            st, host = os.fstat(fd), os.stat("/")
            same_ns = (os.stat(f"/proc/{pid}/ns/mnt").st_ino
                       == os.stat("/proc/self/ns/mnt").st_ino)
        except OSError:
            st = host = None
            same_ns = False
        if alive(pid, state.get("PidStart")):
            # An init that has not pivoted into its rootfs yet would hand us the host's root.
            if st is not None and not same_ns and \
                    (st.st_dev, st.st_ino) != (host.st_dev, host.st_ino):
                return fd
            os.close(fd)
            raise CopyError(f"Error response from daemon: container {cid[:12]} is not ready: "
                            "its root filesystem is not set up yet")
        os.close(fd)
    from hutch import _sys
    from hutch.engine.volumestore import VolumeStore
    from hutch.images.store import ImageStore
    trace.step("unshare", "CLONE_NEWNS", reason="cp into a stopped container")
    _sys.unshare(_sys.CLONE_NEWNS)
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    rootfs = ImageStore(paths.images, paths.containers).mount_rootfs(cid)
    store = VolumeStore(paths)
    plan = MountPlan.from_record(record.get("HutchMounts"))
    for m in sorted(plan.mounts, key=lambda m: len(components(m.Destination))):
        if m.Type == "tmpfs":
            continue   # empty until the container runs: nothing to copy to or from
        source = store.activate(m.Name) if m.Type == "volume" else m.Source
        if not os.path.exists(source):
            continue
        fd = open_in_root(rootfs, m.Destination,
                          create="dir" if os.path.isdir(source) else "file")
        try:
            trace.step("mount", f"{source} on {m.Destination}", flags="MS_BIND|MS_REC")
            _sys.mount(source, fd_path(fd), None, _sys.MS_BIND | _sys.MS_REC)
        finally:
            os.close(fd)
        if not m.RW:
            fd = open_in_root(rootfs, m.Destination)   # now the mount's root
            try:
                _sys.mount(None, fd_path(fd), None,
                           _sys.MS_BIND | _sys.MS_REMOUNT | _sys.MS_RDONLY)
            finally:
                os.close(fd)
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mount_for_path(record: dict | None, path: str):
    """The container's volume/bind mount that holds container path `path`, or None."""
    best = None
    for m in MountPlan.from_record(record).mounts:
        d = m.Destination.rstrip("/") or "/"
        if (path == d or path.startswith(d + "/")) and (best is None
                                                        or len(d) > len(best.Destination)):
            best = m
    return best
