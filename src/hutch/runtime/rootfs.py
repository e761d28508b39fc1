"""The container's filesystem: mounts in config order, devices, pivot_root, masked and
read-only paths.

Functions take a syscalls object (`hutch._sys` in real use) so the policy can be tested
against a recording fake. Paths inside the rootfs are resolved with `secure_join`, so a
symlink in the image can never send a mount outside the rootfs.
"""
from __future__ import annotations

import errno
import os
import stat

from hutch import trace
from hutch._sys import (MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                        MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE)
from hutch.runtime.specconv import DEFAULT_DEVICES, Config, Device, Mount

DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
# Flags a bind remount must repeat: in a user namespace the kernel locks them.
_STATVFS_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                  (os.ST_NOEXEC, MS_NOEXEC), (os.ST_RDONLY, MS_RDONLY))


def secure_join(root: str, path: str) -> str:
    """root + path with every symlink resolved as if root were /: never escapes root."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 255:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _locked_flags(path: str) -> int:
    try:
        f_flag = os.statvfs(path).f_flag
    except OSError:
        return 0
    return sum(ms for st_bit, ms in _STATVFS_FLAGS if f_flag & st_bit)


def _make_target(dest: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(dest, exist_ok=True)
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.exists(dest):
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _bind(sys, source: str, dest: str, flags: int, in_userns: bool) -> None:
    trace.step("mount", f"bind {source} on {dest}", flags=hex(flags))
    sys.mount(source, dest, None, MS_BIND | (flags & MS_REC))
    extra = flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
    if extra:
        if in_userns:
            extra |= _locked_flags(dest)
        sys.mount(None, dest, None, extra | MS_REMOUNT | MS_BIND)


def mount_one(sys, rootfs: str, m: Mount, *, in_userns: bool,
              cgroup_paths: dict[str, str] | None = None) -> None:
    dest = secure_join(rootfs, m.destination)
    if m.type == "cgroup" or m.type == "cgroup2":
        _mount_cgroup(sys, dest, m, in_userns, cgroup_paths or {})
    elif m.is_bind:
        _make_target(dest, os.path.isdir(m.source))
        _bind(sys, m.source, dest, m.flags, in_userns)
    else:
        _make_target(dest, True)
        trace.step("mount", f"{m.type} on {dest}", flags=hex(m.flags), data=m.data or "-")
        sys.mount(m.source or m.type, dest, m.type, m.flags, m.data or None)
    for prop in m.propagation:
        trace.step("mount", f"propagation of {dest}", flags=hex(prop))
        sys.mount(None, dest, None, prop)


def _cgroup_hierarchies() -> list[tuple[str, str]]:
    """(mount point, fs type) of the host's cgroup mounts under /sys/fs/cgroup."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append((fields[4], fstype))
    return out


def _mount_cgroup(sys, dest: str, m: Mount, in_userns: bool, paths: dict[str, str]) -> None:
    """The container's own cgroups at dest: one bind per host hierarchy it belongs to.

    cgroup v2 host: one bind of the container's directory. v1/hybrid: a tmpfs holding a
    bind of the container's directory in each controller hierarchy (as runc does)."""
    _make_target(dest, True)
    hierarchies = _cgroup_hierarchies()
    if hierarchies and all(t == "cgroup2" for _, t in hierarchies) and paths:
        _bind(sys, next(iter(paths.values())), dest, m.flags | MS_BIND, in_userns)
        return
    trace.step("mount", f"tmpfs on {dest} for the cgroup hierarchies")
    sys.mount("tmpfs", dest, "tmpfs", m.flags & ~MS_RDONLY & ~MS_BIND, "mode=755")
    # One bind per v1 hierarchy holding one of the container's directories, in the host's
    # mount order (as runc).
    by_dir = {}
    for mountpoint, fstype in hierarchies:
        for path in paths.values():
            if fstype == "cgroup" and path.startswith(mountpoint + "/"):
                by_dir[os.path.basename(mountpoint)] = path
    for name, path in by_dir.items():
        sub = os.path.join(dest, name)
        os.makedirs(sub, exist_ok=True)
        _bind(sys, path, sub, (m.flags & ~MS_REC) | MS_BIND, in_userns)
        # Co-mounted controllers ("cpu,cpuacct") get a link per controller, as on the host.
        if "," in name:
            for alias in name.split(","):
                link = os.path.join(dest, alias)
                if not os.path.lexists(link):
                    os.symlink(name, link)
    # The tmpfs itself stays writable, as under runc and Docker; each hierarchy is not.


def create_device(sys, rootfs: str, dev: Device, in_userns: bool) -> None:
    dest = secure_join(rootfs, dev.path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead.
        _make_target(dest, False)
        _bind(sys, dev.path, dest, 0, True)
        return
    if os.path.lexists(dest):
        os.unlink(dest)
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    trace.step("mknod", dest, type=dev.type, major=dev.major, minor=dev.minor)
    os.mknod(dest, kinds[dev.type] | (dev.mode & 0o7777), os.makedev(dev.major, dev.minor))
    os.chmod(dest, dev.mode & 0o7777)
    os.chown(dest, dev.uid, dev.gid)


def setup_dev(sys, cfg: Config) -> None:
    """Default devices, linux.devices, /dev/ptmx and the /dev/fd links (unless /dev is bound)."""
    if any(m.destination == "/dev" and m.is_bind for m in cfg.mounts):
        return
    in_userns = "user" in cfg.namespace_types
    wanted = {d.path: d for d in (Device(p, t, ma, mi) for p, t, ma, mi in DEFAULT_DEVICES)}
    wanted.update({d.path: d for d in cfg.devices})
    for dev in wanted.values():
        create_device(sys, cfg.rootfs, dev, in_userns)
    dev_dir = secure_join(cfg.rootfs, "/dev")
    ptmx = os.path.join(dev_dir, "ptmx")
    if os.path.lexists(ptmx):
        os.unlink(ptmx)
    os.symlink("pts/ptmx", ptmx)
    links = DEV_SYMLINKS + ((("/proc/kcore", "/dev/core"),) if os.path.exists("/proc/kcore")
                            else ())
    for target, link in links:
        try:
            os.symlink(target, os.path.join(cfg.rootfs, link.lstrip("/")))
        except FileExistsError:
            pass


def prepare(sys, cfg: Config, cgroup_paths: dict[str, str]) -> None:
    """Everything before pivot_root: propagation, the rootfs bind, mounts, /dev."""
    # Never shared here, whatever rootfsPropagation says: our mounts must not reach the
    # host. The configured propagation is applied to the new / after pivot_root.
    prop = MS_PRIVATE | MS_REC if cfg.rootfs_propagation & MS_PRIVATE else MS_SLAVE | MS_REC
    trace.step("mount", "propagation of /", flags=hex(prop))
    sys.mount(None, "/", None, prop)
    trace.step("mount", f"bind {cfg.rootfs} on itself")
    sys.mount(cfg.rootfs, cfg.rootfs, None, MS_BIND | MS_REC)
    in_userns = "user" in cfg.namespace_types
    for m in cfg.mounts:
        mount_one(sys, cfg.rootfs, m, in_userns=in_userns, cgroup_paths=cgroup_paths)
    setup_dev(sys, cfg)
    cwd = secure_join(cfg.rootfs, cfg.process.cwd)
    os.makedirs(cwd, exist_ok=True)


def pivot(sys, rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root stacked on top (runc's way: no temp dir)."""
    trace.step("pivot_root", rootfs)
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new_root)
        sys.pivot_root(".", ".")
        os.fchdir(old_root)
        # Keep unmount events of the old root from reaching the host.
        sys.mount(None, ".", None, MS_SLAVE | MS_REC)
        sys.umount2(".", MNT_DETACH)
    finally:
        os.close(old_root)
        os.close(new_root)
    os.chdir("/")


def move_root(sys, rootfs: str) -> None:
    """--no-pivot: move the rootfs over / and chroot (for a ramfs root, where pivot fails)."""
    trace.step("mount", f"move {rootfs} on / (no pivot)")
    os.chdir(rootfs)
    sys.mount(rootfs, "/", None, MS_MOVE)
    sys.chroot(".")
    os.chdir("/")


def bind_console(sys, pts_path: str) -> None:
    """/dev/console is the container's own pty (after pivot_root)."""
    trace.step("mount", f"bind {pts_path} on /dev/console")
    _make_target("/dev/console", False)
    sys.mount(pts_path, "/dev/console", None, MS_BIND)


def remount_root_readonly(sys) -> None:
    trace.step("mount", "remount / read-only")
    sys.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags("/"))


def readonly_path(sys, path: str) -> None:
    try:
        sys.mount(path, path, None, MS_BIND | MS_REC)
    except FileNotFoundError:
        return
    trace.step("mount", f"read-only {path}")
    sys.mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _locked_flags(path))


def mask_path(sys, path: str) -> None:
    trace.step("mount", f"mask {path}")
    try:
        if os.path.isdir(path):
            sys.mount("tmpfs", path, "tmpfs", MS_RDONLY, None)
        else:
            sys.mount("/dev/null", path, None, MS_BIND)
    except FileNotFoundError:
        pass


def write_sysctls(cfg: Config) -> None:
    for key, value in cfg.sysctl.items():
        trace.step("sysctl", key, value=value)
        try:
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
        except OSError as e:
            raise OSError(e.errno, f"setting sysctl {key}={value}: {e.strerror}") from None


def chroot(sys, rootfs: str) -> None:
    """No mount namespace of its own: the container only gets its root by chroot."""
    trace.step("chroot", rootfs)
    sys.chroot(rootfs)
    os.chdir("/")


def finish(sys, cfg: Config) -> None:
    """After pivot: root read-only, sysctl, read-only and masked paths (runc's order)."""
    if cfg.rootfs_propagation:
        trace.step("mount", "rootfsPropagation of /", flags=hex(cfg.rootfs_propagation))
        sys.mount(None, "/", None, cfg.rootfs_propagation)
    if cfg.readonly_root:
        remount_root_readonly(sys)
    write_sysctls(cfg)
    for path in cfg.readonly_paths:
        readonly_path(sys, path)
    for path in cfg.masked_paths:
        mask_path(sys, path)
