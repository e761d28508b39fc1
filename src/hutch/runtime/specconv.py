"""OCI config.json → one internal Config: the single translation point of the runtime.

Every check names the config field it rejects, so a bad bundle fails with one clear line
before anything is created.
"""
from __future__ import annotations

import os

from hutch import _sys
from hutch.oci.runtime_spec import ConfigError
from hutch.runtime import capabilities

NAMESPACE_FLAGS = {
    "pid": _sys.CLONE_NEWPID, "network": _sys.CLONE_NEWNET, "mount": _sys.CLONE_NEWNS,
    "ipc": _sys.CLONE_NEWIPC, "uts": _sys.CLONE_NEWUTS, "user": _sys.CLONE_NEWUSER,
    "cgroup": _sys.CLONE_NEWCGROUP, "time": _sys.CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each type; also the order exec joins them (user first).
NS_PROC_NAMES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
                 "cgroup": "cgroup", "mount": "mnt", "time": "time"}

# Mount options → (set flags, clear flags), as mount(8) and runc spell them.
MOUNT_FLAGS = {
    "async": (0, _sys.MS_SYNCHRONOUS), "atime": (0, _sys.MS_NOATIME), "defaults": (0, 0),
    "dev": (0, _sys.MS_NODEV), "diratime": (0, _sys.MS_NODIRATIME),
    "exec": (0, _sys.MS_NOEXEC), "loud": (0, _sys.MS_SILENT), "nomand": (0, _sys.MS_MANDLOCK),
    "norelatime": (0, _sys.MS_RELATIME), "nostrictatime": (0, _sys.MS_STRICTATIME),
    "rw": (0, _sys.MS_RDONLY), "suid": (0, _sys.MS_NOSUID), "nosymfollow": (_sys.MS_NOSYMFOLLOW, 0),
    "bind": (_sys.MS_BIND, 0), "rbind": (_sys.MS_BIND | _sys.MS_REC, 0),
    "dirsync": (_sys.MS_DIRSYNC, 0), "mand": (_sys.MS_MANDLOCK, 0),
    "noatime": (_sys.MS_NOATIME, 0), "nodev": (_sys.MS_NODEV, 0),
    "nodiratime": (_sys.MS_NODIRATIME, 0), "noexec": (_sys.MS_NOEXEC, 0),
    "nosuid": (_sys.MS_NOSUID, 0), "relatime": (_sys.MS_RELATIME, 0),
    "remount": (_sys.MS_REMOUNT, 0), "ro": (_sys.MS_RDONLY, 0), "silent": (_sys.MS_SILENT, 0),
    "strictatime": (_sys.MS_STRICTATIME, 0), "sync": (_sys.MS_SYNCHRONOUS, 0),
}
PROPAGATION_FLAGS = {
    "private": _sys.MS_PRIVATE, "rprivate": _sys.MS_PRIVATE | _sys.MS_REC,
    "shared": _sys.MS_SHARED, "rshared": _sys.MS_SHARED | _sys.MS_REC,
    "slave": _sys.MS_SLAVE, "rslave": _sys.MS_SLAVE | _sys.MS_REC,
    "unbindable": _sys.MS_UNBINDABLE, "runbindable": _sys.MS_UNBINDABLE | _sys.MS_REC,
}
RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
# The devices every container gets (runc's and the spec's default list).
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3), ("/dev/zero", "c", 1, 5), ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8), ("/dev/urandom", "c", 1, 9), ("/dev/tty", "c", 5, 0),
)
# Device cgroup rules runc always allows, on top of the config's.
ALLOWED_DEVICE_RULES = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm"),
)
SECCOMP_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                   "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
                   "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")
SECCOMP_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
               "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _none():
    return None


class _Record:
    """A plain record: dataclasses would cost ~7 ms of import on every runtime call."""
    __slots__ = ()

    def __init__(self, *args, **kwargs):
        defaults = self._defaults()
        for name, value in zip(self.__slots__, args):
            kwargs[name] = value
        for name in self.__slots__:
            setattr(self, name, kwargs[name] if name in kwargs else defaults[name]())

    def _defaults(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)


class Mount(_Record):
    __slots__ = ("destination", "source", "type", "flags", "propagation", "data")

    def _defaults(self):
        return {"flags": int, "propagation": list, "data": str}

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & _sys.MS_BIND)


class Device(_Record):
    # type: c, b, u (unbuffered char), p (fifo)
    __slots__ = ("path", "type", "major", "minor", "mode", "uid", "gid")

    def _defaults(self):
        return {"mode": lambda: 0o666, "uid": int, "gid": int}


class Process(_Record):
    # console_size: (rows, cols); capabilities: set name → mask, None keeps all;
    # rlimits: (name, resource, soft, hard)
    __slots__ = ("args", "env", "cwd", "uid", "gid", "umask", "additional_gids", "terminal",
                 "console_size", "capabilities", "rlimits", "no_new_privileges",
                 "oom_score_adj", "apparmor_profile", "selinux_label")

    def _defaults(self):
        return {"cwd": lambda: "/", "uid": int, "gid": int, "umask": _none,
                "additional_gids": list, "terminal": bool, "console_size": _none,
                "capabilities": _none, "rlimits": list, "no_new_privileges": bool,
                "oom_score_adj": _none, "apparmor_profile": str, "selinux_label": str}

    def path_env(self) -> str:
        for item in self.env:
            if item.startswith("PATH="):
                return item[5:]
        return ""


class Config(_Record):
    # new_namespaces: CLONE_* flags to unshare; joined_namespaces: (type, path);
    # uid/gid_mappings: (container id, host id, size)
    __slots__ = ("rootfs", "readonly_root", "process", "hostname", "domainname", "mounts",
                 "rootfs_propagation", "new_namespaces", "joined_namespaces",
                 "namespace_types", "uid_mappings", "gid_mappings", "devices", "masked_paths",
                 "readonly_paths", "sysctl", "cgroups_path", "resources", "seccomp", "hooks",
                 "annotations")

    def _defaults(self):
        return {"hostname": str, "domainname": str, "mounts": list, "rootfs_propagation": int,
                "new_namespaces": int, "joined_namespaces": list, "namespace_types": set,
                "uid_mappings": list, "gid_mappings": list, "devices": list,
                "masked_paths": list, "readonly_paths": list, "sysctl": dict,
                "cgroups_path": str, "resources": dict, "seccomp": _none, "hooks": dict,
                "annotations": dict}

    @property
    def has_new_userns(self) -> bool:
        return bool(self.new_namespaces & _sys.CLONE_NEWUSER)


def _fail(field_name: str, message: str):
    raise ConfigError(f"{field_name}: {message}")


def _get(obj: dict, key: str, kind, where: str, default=None):
    value = obj.get(key, default)
    if value is None:
        return default
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind in (int, (int, float)) and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        names = {str: "a string", int: "an integer", bool: "a boolean", list: "an array",
                 dict: "an object"}
        _fail(where, f"must be {names.get(kind, kind)}, got {type(value).__name__} {value!r}")
    return value


def _str_list(obj: dict, key: str, where: str) -> list[str]:
    items = _get(obj, key, list, where, [])
    for i, item in enumerate(items):
        if not isinstance(item, str):
            _fail(f"{where}[{i}]", f"must be a string, got {item!r}")
    return items


def _objects(obj: dict, key: str, where: str):
    """(field name, item) for each item of the array obj[key]; each must be an object."""
    for i, item in enumerate(_get(obj, key, list, where, [])):
        if not isinstance(item, dict):
            _fail(f"{where}[{i}]", "must be an object")
        yield f"{where}[{i}]", item


def parse_mount_options(options: list[str]) -> tuple[int, list[int], str]:
    """(flags, propagation flags, data) from an OCI mount's options."""
    flags = 0
    propagation = []
    data = []
    for opt in options:
        if opt in MOUNT_FLAGS:
            set_bits, clear_bits = MOUNT_FLAGS[opt]
            flags = (flags | set_bits) & ~clear_bits
        elif opt in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in ("tmpcopyup", "idmap", "ridmap") or opt.startswith("X-mount."):
            raise ConfigError(f"mount option {opt!r} is not supported")
        else:
            data.append(opt)
    return flags, propagation, ",".join(data)


def convert_process(proc: dict, where: str = "process") -> Process:
    if not isinstance(proc, dict):
        _fail(where, "must be an object")
    args = _str_list(proc, "args", f"{where}.args")
    if not args:
        _fail(f"{where}.args", "must not be empty")
    cwd = _get(proc, "cwd", str, f"{where}.cwd", "/")
    if not cwd.startswith("/"):
        _fail(f"{where}.cwd", f"must be an absolute path, got {cwd!r}")
    env = _str_list(proc, "env", f"{where}.env")
    user = _get(proc, "user", dict, f"{where}.user", {})
    p = Process(args=args, env=env, cwd=cwd,
                uid=_get(user, "uid", int, f"{where}.user.uid", 0),
                gid=_get(user, "gid", int, f"{where}.user.gid", 0),
                umask=_get(user, "umask", int, f"{where}.user.umask"),
                terminal=_get(proc, "terminal", bool, f"{where}.terminal", False),
                no_new_privileges=_get(proc, "noNewPrivileges", bool,
                                       f"{where}.noNewPrivileges", False),
                oom_score_adj=_get(proc, "oomScoreAdj", int, f"{where}.oomScoreAdj"),
                apparmor_profile=_get(proc, "apparmorProfile", str,
                                      f"{where}.apparmorProfile", ""),
                selinux_label=_get(proc, "selinuxLabel", str, f"{where}.selinuxLabel", ""))
    for i, gid in enumerate(_get(user, "additionalGids", list, f"{where}.user.additionalGids",
                                 [])):
        if not isinstance(gid, int) or gid < 0:
            _fail(f"{where}.user.additionalGids[{i}]", f"invalid group id {gid!r}")
        p.additional_gids.append(gid)
    if p.uid < 0 or p.gid < 0:
        _fail(f"{where}.user", "uid and gid must not be negative")
    size = _get(proc, "consoleSize", dict, f"{where}.consoleSize")
    if size:
        p.console_size = (_get(size, "height", int, f"{where}.consoleSize.height", 0),
                          _get(size, "width", int, f"{where}.consoleSize.width", 0))
    caps = _get(proc, "capabilities", dict, f"{where}.capabilities")
    if caps is not None:
        last = _sys.cap_last_cap()
        try:
            p.capabilities = {s: capabilities.mask(caps.get(s), f"{where}.capabilities.{s}",
                                                   last) for s in capabilities.SETS}
        except ValueError as e:
            raise ConfigError(str(e)) from None
    for rw, rl in _objects(proc, "rlimits", f"{where}.rlimits"):
        name = _get(rl, "type", str, f"{rw}.type", "")
        if name not in RLIMITS:
            _fail(f"{rw}.type", f"unknown rlimit {name!r}")
        soft = _get(rl, "soft", int, f"{rw}.soft", 0)
        hard = _get(rl, "hard", int, f"{rw}.hard", 0)
        if soft > hard:
            _fail(rw, f"soft limit {soft} is above the hard limit {hard}")
        p.rlimits.append((name, RLIMITS[name], soft, hard))
    return p


def _convert_namespaces(linux: dict, cfg: Config) -> None:
    for where, ns in _objects(linux, "namespaces", "linux.namespaces"):
        kind = _get(ns, "type", str, f"{where}.type", "")
        if kind not in NAMESPACE_FLAGS:
            _fail(f"{where}.type", f"unknown namespace type {kind!r}")
        if kind in cfg.namespace_types:
            _fail(f"{where}.type", f"duplicate namespace {kind!r}")
        cfg.namespace_types.add(kind)
        path = _get(ns, "path", str, f"{where}.path", "")
        if path:
            try:
                os.stat(path)
            except OSError as e:
                _fail(f"{where}.path", f"namespace path {path!r}: {e.strerror.lower()}")
            cfg.joined_namespaces.append((kind, path))
        else:
            cfg.new_namespaces |= NAMESPACE_FLAGS[kind]
    for key, target in (("uidMappings", cfg.uid_mappings), ("gidMappings", cfg.gid_mappings)):
        for where, m in _objects(linux, key, f"linux.{key}"):
            target.append((_get(m, "containerID", int, f"{where}.containerID", 0),
                           _get(m, "hostID", int, f"{where}.hostID", 0),
                           _get(m, "size", int, f"{where}.size", 0)))
    if (cfg.uid_mappings or cfg.gid_mappings) and "user" not in cfg.namespace_types:
        _fail("linux.uidMappings", "user namespace mappings need a user namespace")
    if cfg.has_new_userns and not (cfg.uid_mappings and cfg.gid_mappings):
        _fail("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings")


def _convert_mounts(config: dict, cfg: Config, bundle: str) -> None:
    for where, m in _objects(config, "mounts", "mounts"):
        dest = _get(m, "destination", str, f"{where}.destination", "")
        if not dest.startswith("/"):
            _fail(f"{where}.destination", f"must be an absolute path, got {dest!r}")
        try:
            flags, prop, data = parse_mount_options(_str_list(m, "options", f"{where}.options"))
        except ConfigError as e:
            _fail(f"{where}.options", str(e))
        kind = _get(m, "type", str, f"{where}.type", "")
        source = _get(m, "source", str, f"{where}.source", "")
        if kind == "bind":
            flags |= _sys.MS_BIND
        if flags & _sys.MS_BIND:
            if not source:
                _fail(f"{where}.source", "a bind mount needs a source")
            if not os.path.isabs(source):
                source = os.path.normpath(os.path.join(bundle, source))
            if not os.path.exists(source):
                _fail(f"{where}.source", f"bind source {source!r} does not exist")
        elif not kind:
            _fail(f"{where}.type", "must be set for a mount that is not a bind mount")
        cfg.mounts.append(Mount(os.path.normpath(dest), source, kind, flags, prop, data))


def _convert_devices(linux: dict, cfg: Config) -> None:
    for where, d in _objects(linux, "devices", "linux.devices"):
        path = _get(d, "path", str, f"{where}.path", "")
        if not path.startswith("/dev/"):
            _fail(f"{where}.path", f"must be under /dev, got {path!r}")
        kind = _get(d, "type", str, f"{where}.type", "")
        if kind not in ("c", "b", "u", "p"):
            _fail(f"{where}.type", f"unknown device type {kind!r}")
        mode = _get(d, "fileMode", int, f"{where}.fileMode", 0o666)
        cfg.devices.append(Device(path, kind, _get(d, "major", int, f"{where}.major", 0),
                                  _get(d, "minor", int, f"{where}.minor", 0), mode,
                                  _get(d, "uid", int, f"{where}.uid", 0),
                                  _get(d, "gid", int, f"{where}.gid", 0)))


def _device_rules(resources: dict, devices: list[Device]) -> list[dict]:
    """The config's device cgroup rules, then the ones runc always allows.

    A default already allowed by the config after its last deny is not written twice
    (Docker's configs list them all); order matters, so nothing else is reordered."""
    def clean(rule: dict) -> dict:
        return {k: v for k, v in rule.items() if v is not None}

    rules = [clean(r) for r in _get(resources, "devices", list, "linux.resources.devices", [])]
    denies = [i for i, r in enumerate(rules) if not r.get("allow")]
    settled = rules[denies[-1] + 1:] if denies else rules
    extra = [{"allow": True, "type": kind, "major": major, "minor": minor, "access": access}
             for kind, major, minor, access in ALLOWED_DEVICE_RULES]
    # A fifo is no device to the devices cgroup: it needs no rule.
    extra += [{"allow": True, "type": "c" if d.type == "u" else d.type, "major": d.major,
               "minor": d.minor, "access": "rwm"} for d in devices if d.type != "p"]
    for rule in map(clean, extra):
        if rule not in settled:
            rules.append(rule)
            settled.append(rule)
    return rules


def _check_seccomp(sec: dict) -> dict:
    if not isinstance(sec, dict):
        _fail("linux.seccomp", "must be an object")
    action = _get(sec, "defaultAction", str, "linux.seccomp.defaultAction", "")
    if action not in SECCOMP_ACTIONS:
        _fail("linux.seccomp.defaultAction", f"unknown action {action!r}")
    for where, rule in _objects(sec, "syscalls", "linux.seccomp.syscalls"):
        _str_list(rule, "names", f"{where}.names")
        if _get(rule, "action", str, f"{where}.action", "") not in SECCOMP_ACTIONS:
            _fail(f"{where}.action", f"unknown action {rule.get('action')!r}")
        for j, arg in enumerate(_get(rule, "args", list, f"{where}.args", [])):
            if not isinstance(arg, dict) or arg.get("op") not in SECCOMP_OPS:
                _fail(f"{where}.args[{j}].op", f"unknown operator {arg.get('op')!r}"
                      if isinstance(arg, dict) else "must be an object")
    if _get(sec, "listenerPath", str, "linux.seccomp.listenerPath", ""):
        _fail("linux.seccomp.listenerPath", "seccomp notify listeners are not supported")
    return sec


def _check_hooks(config: dict) -> dict[str, list[dict]]:
    hooks = _get(config, "hooks", dict, "hooks", {})
    out = {}
    for kind, items in hooks.items():
        if kind not in HOOK_KINDS:
            _fail(f"hooks.{kind}", "unknown hook kind")
        if not isinstance(items, list):
            _fail(f"hooks.{kind}", "must be an array")
        for i, hook in enumerate(items):
            where = f"hooks.{kind}[{i}]"
            if not isinstance(hook, dict):
                _fail(where, "must be an object")
            path = _get(hook, "path", str, f"{where}.path", "")
            if not os.path.isabs(path):
                _fail(f"{where}.path", f"must be an absolute path, got {path!r}")
            _str_list(hook, "args", f"{where}.args")
            _str_list(hook, "env", f"{where}.env")
            timeout = _get(hook, "timeout", int, f"{where}.timeout")
            if timeout is not None and timeout <= 0:
                _fail(f"{where}.timeout", f"must be positive, got {timeout}")
        out[kind] = items
    return out


def convert(config: dict, bundle: str) -> Config:
    """Validate a loaded config.json and translate it. Raises ConfigError naming the field."""
    root = _get(config, "root", dict, "root")
    if not root:
        _fail("root", "must be set")
    root_path = _get(root, "path", str, "root.path", "")
    if not root_path:
        _fail("root.path", "must be set")
    rootfs = os.path.normpath(os.path.join(bundle, root_path))
    if not os.path.isdir(rootfs):
        _fail("root.path", f"rootfs {rootfs!r} is not a directory")
    proc = config.get("process")
    if proc is None:
        _fail("process", "must be set")
    cfg = Config(rootfs=rootfs,
                 readonly_root=_get(root, "readonly", bool, "root.readonly", False),
                 process=convert_process(proc),
                 hostname=_get(config, "hostname", str, "hostname", ""),
                 domainname=_get(config, "domainname", str, "domainname", ""))
    for key, value in _get(config, "annotations", dict, "annotations", {}).items():
        if not isinstance(value, str):
            _fail(f"annotations.{key}", "must be a string")
        cfg.annotations[key] = value
    linux = _get(config, "linux", dict, "linux", {})
    _convert_namespaces(linux, cfg)
    if cfg.hostname and "uts" not in cfg.namespace_types:
        _fail("hostname", "setting the hostname needs a new uts namespace")
    if cfg.domainname and "uts" not in cfg.namespace_types:
        _fail("domainname", "setting the domainname needs a new uts namespace")
    _convert_mounts(config, cfg, bundle)
    _convert_devices(linux, cfg)
    prop = _get(linux, "rootfsPropagation", str, "linux.rootfsPropagation", "")
    if prop:
        if prop not in PROPAGATION_FLAGS:
            _fail("linux.rootfsPropagation", f"unknown propagation {prop!r}")
        cfg.rootfs_propagation = PROPAGATION_FLAGS[prop]
    cfg.masked_paths = _str_list(linux, "maskedPaths", "linux.maskedPaths")
    cfg.readonly_paths = _str_list(linux, "readonlyPaths", "linux.readonlyPaths")
    for key, value in _get(linux, "sysctl", dict, "linux.sysctl", {}).items():
        if not isinstance(value, str):
            _fail(f"linux.sysctl.{key}", "must be a string")
        if ".." in key.split(".") or "/" in key:
            _fail(f"linux.sysctl.{key}", "invalid sysctl name")
        cfg.sysctl[key] = value
    cgroups_path = _get(linux, "cgroupsPath", str, "linux.cgroupsPath", "")
    if ":" in cgroups_path:
        _fail("linux.cgroupsPath", f"systemd cgroup paths are not supported: {cgroups_path!r}")
    cfg.cgroups_path = cgroups_path
    resources = dict(_get(linux, "resources", dict, "linux.resources", {}))
    resources["devices"] = _device_rules(resources, cfg.devices)
    cfg.resources = resources
    if linux.get("seccomp") is not None:
        cfg.seccomp = _check_seccomp(linux["seccomp"])
    cfg.hooks = _check_hooks(config)
    # Fields of later spec versions this runtime does not implement: refused, never ignored.
    for key in ("intelRdt", "personality", "timeOffsets", "netDevices", "memoryPolicy"):
        if linux.get(key):
            _fail(f"linux.{key}", "is not supported")
    for key in ("scheduler", "ioPriority", "execCPUAffinity"):
        if (config.get("process") or {}).get(key):
            _fail(f"process.{key}", "is not supported")
    # linux.mountLabel: the host decides (runtime.container._check_host_support).
    return cfg


def default_cgroups_path(cid: str) -> str:
    return "/" + cid
