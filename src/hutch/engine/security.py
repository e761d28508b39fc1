"""Docker's security flags applied to an OCI spec built from hutch.oci.defaults.

`apply_security(spec, ...)` is the one entry point: --privileged, --cap-add/--cap-drop,
--security-opt, --read-only, --device, --group-add, --sysctl, --user, --userns. It mutates
the spec, returns warnings for the user, and raises InvalidParameter with Docker's wording
for what Docker refuses and a clear one-line refusal for what hutch cannot do here.

Users and groups are read from the container's /etc/passwd and /etc/group as plain files,
resolved inside the rootfs (symlinks cannot point outside it), never through NSS.
"""
from __future__ import annotations

import os
import stat

from hutch import trace
from hutch.engine.errors import InvalidParameter
from hutch.engine.records import Record
from hutch.securejoin import fd_path, open_in_root

# The monitor host imports this module for a start's --user and --userns work: the spec's
# defaults and seccomp profiles (the create's work) are imported where they are used.

ALL = "ALL"
MAX_ID = 2147483647
APPARMOR_PATH = "/sys/kernel/security/apparmor"
DEVICE_MODE_CHARS = "rwm"
# Sysctls that belong to the container's IPC namespace (Docker's allow-list) ...
IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
IPC_SYSCTL_PREFIXES = ("fs.mqueue.",)
# ... and to its network namespace.
NET_SYSCTL_PREFIXES = ("net.",)
# --userns-remap: "default" means this user's ranges in /etc/subuid and /etc/subgid.
REMAP_DEFAULT_USER = "hutch"
SUBUID_FILE = "/etc/subuid"
SUBGID_FILE = "/etc/subgid"
# /dev entries runc and containerd leave out of a privileged container's device list.
HOST_DEV_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


# --- capabilities ---------------------------------------------------------------------

def normalize_caps(names, flag: str) -> list[str]:
    """Upper-case, CAP_-prefixed names; ALL kept. flag is "CapAdd"/"CapDrop" for errors."""
    from hutch.oci import defaults
    out = []
    for name in names:
        cap = name.strip().upper()
        if cap != ALL and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap != ALL and cap not in defaults.ALL_CAPS:
            raise InvalidParameter(f'invalid {flag}: unknown capability: "{cap}"')
        out.append(cap)
    return out


def tweak_capabilities(cap_add=(), cap_drop=(), privileged: bool = False,
                       host_caps: list[str] | None = None) -> list[str]:
    """The container's capability list, by Docker's rules (moby caps.TweakCapabilities).

    host_caps: what this engine can hand out (its bounding set). "All capabilities" means
    those; an explicitly added one it does not hold is refused rather than failing later.
    """
    from hutch.oci import defaults
    if host_caps is None:
        host_caps = defaults.host_bounding_caps()
    if privileged:
        return list(host_caps)
    adds = normalize_caps(cap_add, "CapAdd")
    drops = normalize_caps(cap_drop, "CapDrop")
    if not adds and not drops:
        return list(defaults.DEFAULT_CAPS)
    if ALL in adds:
        return [c for c in host_caps if c not in drops]
    for cap in adds:
        if cap not in host_caps:   # moby's wording for a cap the environment lacks
            raise InvalidParameter("invalid CapAdd: capability not supported by your kernel "
                                   f'or not available in the current environment: "{cap}"')
    if ALL in drops:
        caps = []
    else:
        caps = [c for c in defaults.DEFAULT_CAPS if c not in drops]
    for cap in adds:
        if cap not in caps:
            caps.append(cap)
    return caps


def set_capabilities(spec: dict, caps: list[str]) -> None:
    """Bounding, permitted and effective = caps; inheritable and ambient empty."""
    spec["process"]["capabilities"] = {
        "bounding": list(caps), "effective": list(caps), "permitted": list(caps),
        "inheritable": [], "ambient": [],
    }


# --- --security-opt -------------------------------------------------------------------

class SecurityOpts(Record):
    no_new_privileges: bool = False
    seccomp: str | None = None   # None or "builtin": default; "unconfined"; a profile path
    apparmor: str | None = None
    labels: list[str] = []
    systempaths_unconfined: bool = False


def parse_security_opts(opts) -> SecurityOpts:
    """Docker's --security-opt forms: key=value (key:value is the old spelling)."""
    out = SecurityOpts()
    for opt in opts:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "disable":
            out.labels.append("disable")
            continue
        if "=" in opt:
            key, value = opt.split("=", 1)
        elif ":" in opt:
            key, value = opt.split(":", 1)
        else:
            raise InvalidParameter(f'invalid --security-opt 1: "{opt}"')
        if key == "label":
            out.labels.append(value)
        elif key == "apparmor":
            out.apparmor = value
        elif key == "seccomp":
            out.seccomp = value
        elif key == "no-new-privileges":
            parsed = _parse_bool(value)
            if parsed is None:
                raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
            out.no_new_privileges = parsed
        elif key == "systempaths" and value == "unconfined":
            out.systempaths_unconfined = True
        else:
            raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
    return out


def _parse_bool(value: str) -> bool | None:
    """Go's strconv.ParseBool."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


# --- users and groups -----------------------------------------------------------------

def _read_colon_file(rootfs: str, name: str) -> list[list[str]] | None:
    """Lines of /etc/passwd or /etc/group split on ':'; None if the file is missing."""
    try:
        # Opened through the fd securejoin resolved: a link in the image
        # (/etc/passwd -> /../../host/file) cannot lead the engine out of the root.
        fd = open_in_root(rootfs, name)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a fifo or device would block
                return None
            with open(fd_path(fd), encoding="utf-8", errors="replace") as f:
                text = f.read()
        finally:
            os.close(fd)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(line.split(":"))
    return entries


def _field(entry: list[str], i: int) -> str:
    return entry[i] if len(entry) > i else ""


def _int_field(entry: list[str], i: int) -> int | None:
    try:
        return int(_field(entry, i))
    except ValueError:
        return None


def _numeric(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _check_range(value: int) -> int:
    if value < 0 or value > MAX_ID:
        raise InvalidParameter(f"uids and gids must be in range 0-{MAX_ID}")
    return value


class ExecUser(Record):
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = []
    home: str = "/"


def resolve_user(rootfs: str, user: str | None, group_add=()) -> ExecUser:
    """--user name|uid[:group|gid] and --group-add, by libcontainer's GetExecUser rules.

    A user found by name (or uid) brings its primary gid, home and the groups listing it as
    a member (only when no group is given); a numeric user with no entry gets gid 0.
    """
    spec = user or ""
    user_arg, _, group_arg = spec.partition(":")
    passwd = _read_colon_file(rootfs, "/etc/passwd")
    groups = _read_colon_file(rootfs, "/etc/group")
    result = ExecUser()
    uid_arg, gid_arg = _numeric(user_arg), _numeric(group_arg)

    matched_name = ""
    match = None
    for entry in passwd or []:
        entry_uid = _int_field(entry, 2)
        if entry_uid is None:
            continue
        if (not user_arg and entry_uid == 0) or \
                (uid_arg is not None and entry_uid == uid_arg) or \
                (uid_arg is None and user_arg and entry[0] == user_arg):
            match = entry
            break
    if match is not None:
        matched_name = match[0]
        result.uid = _int_field(match, 2) or 0
        result.gid = _int_field(match, 3) or 0
        result.home = _field(match, 5) or "/"
    elif user_arg:
        if uid_arg is None:
            raise InvalidParameter(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        result.uid = _check_range(uid_arg)

    if group_arg or matched_name:
        found = []
        for entry in groups or []:
            entry_gid = _int_field(entry, 2)
            if entry_gid is None:
                continue
            if not group_arg:
                if matched_name in _field(entry, 3).split(","):
                    found.append(entry_gid)
            elif gid_arg is not None:
                if entry_gid == gid_arg:
                    found.append(entry_gid)
            elif entry[0] == group_arg:
                found.append(entry_gid)
        if group_arg:
            if found:
                result.gid = found[0]
            elif gid_arg is None:
                raise InvalidParameter(
                    f"unable to find group {group_arg}: no matching entries in group file")
            else:
                result.gid = _check_range(gid_arg)
        else:
            result.additional_gids = found

    for name in group_add:
        result.additional_gids.append(_additional_group(groups, name))
    return result


def _additional_group(groups: list[list[str]] | None, name: str) -> int:
    for entry in groups or []:
        entry_gid = _int_field(entry, 2)
        if entry_gid is not None and (entry[0] == name or _field(entry, 2) == name):
            return entry_gid
    gid = _numeric(name)
    if gid is None:
        raise InvalidParameter(f"Unable to find group {name}: no matching entries in group file")
    return _check_range(gid)


def set_user(spec: dict, exec_user: ExecUser) -> None:
    proc = spec["process"]
    proc["user"] = {"uid": exec_user.uid, "gid": exec_user.gid}
    if exec_user.additional_gids:
        proc["user"]["additionalGids"] = list(exec_user.additional_gids)
    env = proc.setdefault("env", [])
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={exec_user.home}")


# --- devices --------------------------------------------------------------------------

def valid_device_mode(mode: str) -> bool:
    """Docker's validDeviceMode: 1-3 distinct letters from r, w, m."""
    if not mode or len(mode) > 3:
        return False
    return all(c in DEVICE_MODE_CHARS for c in mode) and len(set(mode)) == len(mode)


def parse_device(value: str) -> tuple[str, str, str]:
    """--device HOST[:CONTAINER][:PERMS] → (host path, container path, permissions)."""
    if value.count(":") > 2 or not value.split(":", 1)[0]:
        raise InvalidParameter(f"bad format for path: {value}")
    parts = value.split(":")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
        if not valid_device_mode(perms):
            raise InvalidParameter(f"bad mode specified: {perms}")
    elif len(parts) == 2:
        if valid_device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    dst = os.path.normpath(dst or src)
    if not dst.startswith("/"):
        raise InvalidParameter(f"{dst} is not an absolute path")
    return src, dst, perms


def device_entry(host_path: str, container_path: str) -> dict | None:
    """The OCI linux.devices entry for a host node, or None if it is not a device."""
    st = os.stat(host_path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": container_path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def devices_from_path(host_path: str, container_path: str, perms: str
                      ) -> tuple[list[dict], list[dict]]:
    """A device node, or every device under a directory, with its cgroup rules."""
    resolved = os.path.realpath(host_path)
    try:
        entry = device_entry(resolved, container_path)
    except OSError as e:
        raise InvalidParameter("error gathering device information while adding custom "
                               f'device "{host_path}": {os.strerror(e.errno).lower()}') from None
    entries = [entry] if entry else []
    if entry is None and os.path.isdir(resolved):
        for dirpath, _dirs, files in os.walk(resolved):
            for name in sorted(files):
                full = os.path.join(dirpath, name)
                inside = os.path.join(container_path, os.path.relpath(full, resolved))
                try:
                    found = device_entry(full, inside)
                except OSError:
                    continue
                if found:
                    entries.append(found)
    if not entries:
        raise InvalidParameter("error gathering device information while adding custom "
                               f'device "{host_path}": not a device node')
    rules = [{"allow": True, "type": e["type"], "major": e["major"], "minor": e["minor"],
              "access": perms} for e in entries]
    return entries, rules


def host_devices(dev: str = "/dev") -> list[dict]:
    """Every device node of the host's /dev, as --privileged hands them to the container."""
    out = []
    for dirpath, dirs, files in os.walk(dev):
        dirs[:] = sorted(d for d in dirs if d not in HOST_DEV_SKIP_DIRS)
        for name in sorted(files):
            if dirpath == dev and name == "console":
                continue
            full = os.path.join(dirpath, name)
            try:
                entry = device_entry(full, "/dev" + full[len(dev):])
            except OSError:
                continue
            if entry:
                out.append(entry)
    return out


# --- user namespaces (--userns-remap) -------------------------------------------------

def subid_ranges(path: str, name: str) -> list[tuple[int, int]]:
    """(start, count) ranges of `name` in an /etc/subuid-style file, in file order."""
    ranges = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == name:
            try:
                ranges.append((int(parts[1]), int(parts[2])))
            except ValueError:
                continue
    return ranges


def remap_mappings(remap: str) -> tuple[list[dict], list[dict]]:
    """OCI uid and gid mappings for --userns-remap (default | user[:group]).

    As dockerd does: the ranges are laid end to end from container id 0.
    """
    user, _, group = remap.partition(":")
    if user == "default":
        user = REMAP_DEFAULT_USER
    group = group or user
    maps = []
    for path, name in ((SUBUID_FILE, user), (SUBGID_FILE, group)):
        ranges = subid_ranges(path, name)
        if not ranges:
            raise InvalidParameter(f'cannot remap root to "{name}": no subordinate ids for '
                                   f'"{name}" in {path} (add a line like '
                                   f'"{name}:100000:65536")')
        mapping, next_id = [], 0
        for start, count in ranges:
            mapping.append({"containerID": next_id, "hostID": start, "size": count})
            next_id += count
        maps.append(mapping)
    return maps[0], maps[1]


def host_id(mappings: list[dict], container_id: int) -> int | None:
    for m in mappings:
        if m["containerID"] <= container_id < m["containerID"] + m["size"]:
            return m["hostID"] + container_id - m["containerID"]
    return None


def shift_rootfs(rootfs: str, uid_maps: list[dict], gid_maps: list[dict]) -> bool:
    """Give every file of the container's root its remapped host owner, once.

    Done through the container's own overlay (a copy-up per file), so the image's shared
    layers stay untouched. Returns False when the root is already shifted. chown clears
    setuid/setgid bits, so the mode is restored; file capabilities (security.capability)
    are dropped by the kernel on chown and not rewritten.
    """
    root_uid, root_gid = host_id(uid_maps, 0), host_id(gid_maps, 0)
    st = os.lstat(rootfs)
    if (st.st_uid, st.st_gid) == (root_uid, root_gid):
        return False
    trace.step("chown", f"shift {rootfs} to the remapped range", uid=root_uid, gid=root_gid)
    for dirpath, dirs, files in os.walk(rootfs):
        if dirpath != rootfs:
            _shift_one(dirpath, uid_maps, gid_maps)
        for name in files:
            _shift_one(os.path.join(dirpath, name), uid_maps, gid_maps)
        for name in dirs:   # symlinks to directories: listed here, never entered
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                _shift_one(path, uid_maps, gid_maps)
    # The root last: its owner is the "already shifted" mark, so an interrupted shift
    # is redone.
    _shift_one(rootfs, uid_maps, gid_maps)
    return True


def _shift_one(path: str, uid_maps: list[dict], gid_maps: list[dict]) -> None:
    st = os.lstat(path)
    uid, gid = host_id(uid_maps, st.st_uid), host_id(gid_maps, st.st_gid)
    if uid is None or gid is None:
        raise InvalidParameter(f"cannot remap {path}: owner {st.st_uid}:{st.st_gid} is "
                               "outside the remapped range")
    os.lchown(path, uid, gid)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(st.st_mode))


def apply_userns_remap(spec: dict, remap: str, rootfs: str, privileged: bool) -> None:
    if privileged:
        raise InvalidParameter("privileged mode is incompatible with user namespaces.  You "
                               "must run the container in the host namespace when running "
                               "privileged mode")
    if not _has_private_namespace(spec, "network"):
        raise InvalidParameter("cannot share the host's network namespace when user "
                               "namespaces are enabled")
    if not _has_private_namespace(spec, "pid"):
        raise InvalidParameter("cannot share the host PID namespace when user namespaces "
                               "are enabled")
    uid_maps, gid_maps = remap_mappings(remap)
    linux = spec["linux"]
    if not _has_private_namespace(spec, "user"):
        linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = uid_maps
    linux["gidMappings"] = gid_maps
    prepare_userns_rootfs(spec, rootfs)


def prepare_userns_rootfs(spec: dict, rootfs: str) -> None:
    """For a spec with uid/gid mappings: check the remapped root reaches `rootfs` and
    shift its owners (once). The engine calls this with the real rootfs before start."""
    uid_maps = spec.get("linux", {}).get("uidMappings")
    gid_maps = spec.get("linux", {}).get("gidMappings")
    if not uid_maps or not gid_maps:
        return
    check_reachable(rootfs, host_id(uid_maps, 0), host_id(gid_maps, 0))
    shift_rootfs(rootfs, uid_maps, gid_maps)


def check_reachable(rootfs: str, uid: int, gid: int) -> None:
    """The remapped root must be able to walk down to its rootfs (runtimes mount it from
    inside the user namespace); say which directory stops it instead of failing later."""
    path = os.path.dirname(os.path.abspath(rootfs))
    while True:
        st = os.stat(path)
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise InvalidParameter(f"the remapped root ({uid}:{gid}) cannot reach the "
                                   f"container's root filesystem: {path} is mode "
                                   f"{stat.S_IMODE(st.st_mode):04o}")
        if path == "/":
            return
        path = os.path.dirname(path)


# --- sysctls --------------------------------------------------------------------------

def validate_sysctl(value: str) -> tuple[str, str]:
    """--sysctl K=V: only namespaced sysctls (Docker's opts.ValidateSysctl)."""
    key, sep, setting = value.partition("=")
    if sep and (key in IPC_SYSCTLS or key.startswith(IPC_SYSCTL_PREFIXES + NET_SYSCTL_PREFIXES)):
        return key, setting
    raise InvalidParameter(f"sysctl '{value}' is not allowed")


def _has_private_namespace(spec: dict, kind: str) -> bool:
    return any(ns.get("type") == kind for ns in spec["linux"].get("namespaces", []))


def apply_sysctls(spec: dict, sysctls: dict) -> None:
    for key, value in sysctls.items():
        validate_sysctl(f"{key}={value}")
        if key.startswith(NET_SYSCTL_PREFIXES) and not _has_private_namespace(spec, "network"):
            raise InvalidParameter(f'sysctl "{key}" not allowed in host network namespace')
        if not key.startswith(NET_SYSCTL_PREFIXES) and not _has_private_namespace(spec, "ipc"):
            raise InvalidParameter(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
        spec["linux"].setdefault("sysctl", {})[key] = str(value)


# --- the entry point ------------------------------------------------------------------

def apply_security(spec: dict, *, privileged: bool = False, cap_add=(), cap_drop=(),
                   security_opt=(), read_only: bool = False, devices=(), group_add=(),
                   sysctls: dict | None = None, user: str | None = None, rootfs: str,
                   userns: str | None = None) -> list[str]:
    """Apply Docker's security flags to `spec` (from hutch.oci.defaults.default_spec).

    rootfs: the container's root directory, for --user/--group-add lookups.
    userns: None or "host" (no user namespace), or a --userns-remap value ("default" for
    the hutch user, or user[:group]) with ranges in /etc/subuid and /etc/subgid; the
    rootfs is then shifted to the remapped owners (once). Returns warnings for the user.
    """
    from hutch.oci import defaults
    warnings: list[str] = []
    linux = spec.setdefault("linux", {})
    opts = parse_security_opts(security_opt)
    host_caps = defaults.host_bounding_caps()
    caps = tweak_capabilities(cap_add, cap_drop, privileged, host_caps)
    last = defaults.host_last_cap()
    missing = [c for c, bit in defaults.ALL_CAPS.items() if bit <= last and c not in host_caps]
    if (privileged or ALL in normalize_caps(cap_add, "CapAdd")) and missing:
        warnings.append("WARNING: hutch's own bounding set lacks " + ", ".join(missing) +
                        "; the container gets every other capability")
    set_capabilities(spec, caps)

    set_user(spec, resolve_user(rootfs, user, group_add))
    spec["process"]["noNewPrivileges"] = opts.no_new_privileges

    _apply_seccomp(spec, opts, privileged, set(caps))
    _apply_mac(spec, opts)

    if privileged or opts.systempaths_unconfined:
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
    if privileged:
        for mount in spec.get("mounts", []):
            if mount.get("type") in ("sysfs", "cgroup", "cgroup2"):
                mount["options"] = [o for o in mount.get("options", []) if o != "ro"]
        linux["devices"] = host_devices()
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]

    if read_only:
        spec.setdefault("root", {"path": "rootfs"})["readonly"] = True

    for value in devices:
        src, dst, perms = parse_device(value)
        entries, rules = devices_from_path(src, dst, perms)
        existing = {d["path"] for d in entries}
        linux["devices"] = [d for d in linux.get("devices", [])
                            if d["path"] not in existing] + entries
        if not privileged:
            linux.setdefault("resources", {}).setdefault("devices", []).extend(rules)

    apply_sysctls(spec, sysctls or {})
    if userns not in (None, "", "host"):
        apply_userns_remap(spec, userns, rootfs, privileged)
    return warnings


def _apply_seccomp(spec: dict, opts: SecurityOpts, privileged: bool, caps: set[str]) -> None:
    from hutch.oci.seccomp_default import ProfileError, load_docker_json, profile_for
    linux = spec["linux"]
    if privileged or opts.seccomp == "unconfined":
        linux.pop("seccomp", None)
        return
    try:
        if opts.seccomp and opts.seccomp != "builtin":   # "builtin": Docker's own default
            linux["seccomp"] = load_docker_json(opts.seccomp, caps)
        else:
            # Docker's default depends on the final capabilities (CAP_SYS_ADMIN unlocks
            # mount, unshare, ...), so it is rebuilt after --cap-add/--cap-drop.
            linux["seccomp"] = profile_for(caps)
    except ProfileError as e:
        raise InvalidParameter(str(e)) from None


def _apply_mac(spec: dict, opts: SecurityOpts) -> None:
    """AppArmor and SELinux: this host has neither, so only their "off" values pass."""
    if opts.apparmor not in (None, "unconfined"):
        if not os.path.isdir(APPARMOR_PATH):
            raise InvalidParameter(f'apparmor is not enabled on this host: cannot apply '
                                   f'--security-opt apparmor={opts.apparmor}')
        spec["process"]["apparmorProfile"] = opts.apparmor
    for label in opts.labels:
        if label != "disable":
            raise InvalidParameter(f"SELinux labels are not supported by hutch: cannot apply "
                                   f"--security-opt label={label}")
