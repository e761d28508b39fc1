"""The container's filesystem: mounts in config order, devices, pivot_root, masked and
read-only paths.

Functions take a syscalls object (`hutch._sys` in real use) so the policy can be tested
against a recording fake. Every path inside the rootfs is resolved by hutch.securejoin into
an O_PATH fd, and mounts go onto that fd's /proc/self/fd path, never onto a joined path
string: a symlink in the image, or one swapped in by a racing process (CVE-2021-30465),
can never send a mount or a mkdir outside the rootfs.

After pivot_root the container may have no /proc of its own: mounts there reach our fds as
"self/fd/N" relative to the host's /proc, held open as `proc_fd` and made the cwd briefly.
"""
from __future__ import annotations

import errno
import os
import stat

from hutch import trace
from hutch._sys import (MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,
                        MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE)
from hutch.runtime.specconv import DEFAULT_DEVICES, Config, Device, Mount
from hutch.securejoin import open_in_root

DEV_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
                ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"))
# Flags a bind remount must repeat: in a user namespace the kernel locks them.
_STATVFS_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV),
                  (os.ST_NOEXEC, MS_NOEXEC), (os.ST_RDONLY, MS_RDONLY))
NULL_DEVICE = os.makedev(1, 3)


class MountError(Exception):
    """A mount the config asks for failed or could not be made safely; str() is the line."""


class _fd_paths:
    """Within: _ref(fd, proc_fd) names fd for the kernel (see the module's docstring).
    (A class, not contextlib: ~2 ms of import on every runtime call.)"""

    def __init__(self, proc_fd: int | None):
        self.proc_fd = proc_fd

    def __enter__(self):
        if self.proc_fd is not None:
            os.fchdir(self.proc_fd)

    def __exit__(self, *exc):
        if self.proc_fd is not None:
            os.chdir("/")


def _ref(fd: int, proc_fd: int | None = None) -> str:
    return f"self/fd/{fd}" if proc_fd is not None else f"/proc/self/fd/{fd}"


def _locked_flags(fd: int) -> int:
    try:
        f_flag = os.fstatvfs(fd).f_flag
    except OSError:
        return 0
    return sum(ms for st_bit, ms in _STATVFS_FLAGS if f_flag & st_bit)


def _open_target(root: str, dest: str, is_dir: bool = True) -> int:
    """An O_PATH fd of dest inside root, created (a directory, or an empty file) if missing."""
    return open_in_root(root, dest, create="dir" if is_dir else "file")


def _bind(sys, source: str, root: str, dest: str, flags: int, in_userns: bool,
          proc_fd: int | None = None) -> None:
    """Bind source on dest (inside root), then remount it with the extra flags."""
    fd = _open_target(root, dest, os.path.isdir(source))
    try:
        trace.step("mount", f"bind {source} on {os.path.join(root, dest.lstrip('/'))}",
                   flags=hex(flags))
        with _fd_paths(proc_fd):
            sys.mount(source, _ref(fd, proc_fd), None, MS_BIND | (flags & MS_REC))
    finally:
        os.close(fd)
    extra = flags & ~(MS_BIND | MS_REC | MS_REMOUNT)
    if extra:
        _remount(sys, root, dest, extra | MS_REMOUNT | MS_BIND, in_userns, proc_fd)


def _remount(sys, root: str, dest: str, flags: int, in_userns: bool,
             proc_fd: int | None = None) -> None:
    """Change the flags (or propagation) of the mount now on top of dest: re-opened, so the
    fd holds the new mount, not the directory under it."""
    fd = open_in_root(root, dest)
    try:
        if in_userns and flags & MS_REMOUNT:
            flags |= _locked_flags(fd)
        with _fd_paths(proc_fd):
            sys.mount(None, _ref(fd, proc_fd), None, flags)
    finally:
        os.close(fd)


def mount_one(sys, rootfs: str, m: Mount, *, in_userns: bool,
              cgroup_dirs: list[tuple[str, str]] | None = None) -> None:
    if m.type == "cgroup" or m.type == "cgroup2":
        _mount_cgroup(sys, rootfs, m, in_userns, cgroup_dirs or [])
    elif m.is_bind:
        _bind(sys, m.source, rootfs, m.destination, m.flags, in_userns)
    else:
        fd = _open_target(rootfs, m.destination)
        try:
            trace.step("mount", f"{m.type} on {os.path.join(rootfs, m.destination.lstrip('/'))}",
                       flags=hex(m.flags), data=m.data or "-")
            sys.mount(m.source or m.type, _ref(fd), m.type, m.flags, m.data or None)
        finally:
            os.close(fd)
    for prop in m.propagation:
        trace.step("mount", f"propagation of {m.destination}", flags=hex(prop))
        _remount(sys, rootfs, m.destination, prop, False)


def _mount_cgroup(sys, rootfs: str, m: Mount, in_userns: bool,
                  dirs: list[tuple[str, str]]) -> None:
    """The container's own cgroups at the destination (`dirs`: the cgroup manager's
    hierarchy_dirs(), from the parent: reading mountinfo here costs ~5 us a host mount).

    cgroup v2 host: one bind of the container's directory. v1/hybrid: a tmpfs holding a
    bind of the container's directory in each controller hierarchy (as runc does)."""
    if len(dirs) == 1 and dirs[0][0] == "":
        _bind(sys, dirs[0][1], rootfs, m.destination, m.flags | MS_BIND, in_userns)
        return
    fd = _open_target(rootfs, m.destination)
    try:
        trace.step("mount", f"tmpfs on {m.destination} for the cgroup hierarchies")
        sys.mount("tmpfs", _ref(fd), "tmpfs", m.flags & ~MS_RDONLY & ~MS_BIND, "mode=755")
    finally:
        os.close(fd)
    for name, path in dirs:
        _bind(sys, path, rootfs, f"{m.destination}/{name}", (m.flags & ~MS_REC) | MS_BIND,
              in_userns)
        # Co-mounted controllers ("cpu,cpuacct") get a link per controller, as on the host.
        if "," in name:
            tmpfs = open_in_root(rootfs, m.destination)
            try:
                _symlinks(((name, alias) for alias in name.split(",")), tmpfs)
            finally:
                os.close(tmpfs)
    # The tmpfs itself stays writable, as under runc and Docker; each hierarchy is not.


def create_device(sys, rootfs: str, dev: Device, in_userns: bool) -> None:
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead.
        fd = _open_target(rootfs, dev.path, is_dir=False)
        try:
            trace.step("mount", f"bind {dev.path} on {dev.path} in the rootfs")
            sys.mount(dev.path, _ref(fd), None, MS_BIND)
        finally:
            os.close(fd)
        return
    parent = _open_target(rootfs, os.path.dirname(dev.path))
    name = os.path.basename(dev.path)
    try:
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
        trace.step("mknod", dev.path, type=dev.type, major=dev.major, minor=dev.minor)
        os.mknod(name, kinds[dev.type] | (dev.mode & 0o7777), os.makedev(dev.major, dev.minor),
                 dir_fd=parent)
        node = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            os.chmod(_ref(node), dev.mode & 0o7777)
            os.chown(_ref(node), dev.uid, dev.gid)
        finally:
            os.close(node)
    finally:
        os.close(parent)


def setup_dev(sys, cfg: Config) -> None:
    """Default devices, linux.devices, /dev/ptmx and the /dev/fd links (unless /dev is bound)."""
    if any(m.destination == "/dev" and m.is_bind for m in cfg.mounts):
        return
    in_userns = "user" in cfg.namespace_types
    wanted = {d.path: d for d in (Device(p, t, ma, mi) for p, t, ma, mi in DEFAULT_DEVICES)}
    wanted.update({d.path: d for d in cfg.devices})
    for dev in wanted.values():
        create_device(sys, cfg.rootfs, dev, in_userns)
    dev_dir = _open_target(cfg.rootfs, "/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=dev_dir)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev_dir)
        links = DEV_SYMLINKS + ((("/proc/kcore", "core"),) if os.path.exists("/proc/kcore")
                                else ())
        _symlinks(links, dev_dir)
    finally:
        os.close(dev_dir)


def _symlinks(pairs, dir_fd: int) -> None:
    """Each (target, link) as a symlink in dir_fd; one already there is kept."""
    for target, link in pairs:
        try:
            os.symlink(target, link, dir_fd=dir_fd)
        except FileExistsError:
            pass


def prepare(sys, cfg: Config, cgroup_made) -> None:
    """Everything before pivot_root: propagation, the rootfs bind, mounts, /dev.

    `cgroup_made()` returns once the parent has made the container's cgroup, with its
    hierarchy_dirs(); it is called before the first cgroup mount, which binds them."""
    # Never shared here, whatever rootfsPropagation says: our mounts must not reach the
    # host. The configured propagation is applied to the new / after pivot_root.
    prop = MS_PRIVATE | MS_REC if cfg.rootfs_propagation & MS_PRIVATE else MS_SLAVE | MS_REC
    trace.step("mount", "propagation of /", flags=hex(prop))
    sys.mount(None, "/", None, prop)
    trace.step("mount", f"bind {cfg.rootfs} on itself")
    sys.mount(cfg.rootfs, cfg.rootfs, None, MS_BIND | MS_REC)
    in_userns = "user" in cfg.namespace_types
    for m in cfg.mounts:
        cgroup_dirs = cgroup_made() if m.type in ("cgroup", "cgroup2") else None
        try:
            mount_one(sys, cfg.rootfs, m, in_userns=in_userns, cgroup_dirs=cgroup_dirs)
        except OSError as e:
            why = _reason(e)
            if in_userns and m.is_bind and e.errno == errno.EACCES:
                root = next((h for c, h, _ in cfg.uid_mappings if c == 0), None)
                why += (f" (the container's root, host uid {root}, cannot reach the source: "
                        "every directory above it must be searchable by that uid)")
            raise MountError(f'error mounting "{m.source or m.type}" to rootfs at '
                             f'"{m.destination}": {why}') from None
    setup_dev(sys, cfg)
    os.close(_open_target(cfg.rootfs, cfg.process.cwd))


def _reason(e: OSError) -> str:
    """The kernel's message alone: hutch._sys spells its errors "op: message"."""
    return (e.strerror or str(e)).rpartition(": ")[2].lower()


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


def bind_console(sys, pts_path: str, proc_fd: int) -> None:
    """/dev/console is the container's own pty (after pivot_root)."""
    trace.step("mount", f"bind {pts_path} on /dev/console")
    fd = _open_target("/", "/dev/console", is_dir=False)
    try:
        with _fd_paths(proc_fd):
            sys.mount(pts_path, _ref(fd, proc_fd), None, MS_BIND)
    finally:
        os.close(fd)


def remount_root_readonly(sys) -> None:
    trace.step("mount", "remount / read-only")
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = _locked_flags(root)
    finally:
        os.close(root)
    sys.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)


def readonly_path(sys, path: str, proc_fd: int) -> None:
    try:
        fd = open_in_root("/", path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        trace.step("mount", f"read-only {path}")
        with _fd_paths(proc_fd):
            sys.mount(_ref(fd, proc_fd), _ref(fd, proc_fd), None, MS_BIND | MS_REC)
    finally:
        os.close(fd)
    _remount(sys, "/", path, MS_BIND | MS_REMOUNT | MS_RDONLY, True, proc_fd)


def open_dev_null() -> int:
    """An O_PATH fd of the container's /dev/null, checked to be the null device: a symlink
    or another file in its place (CVE-2025-31133) would be bound over the masked paths."""
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != NULL_DEVICE:
        os.close(fd)
        raise MountError("/dev/null in the container is not the null device (char 1:3): "
                        "refusing to mask paths with it (possible container breakout attempt)")
    return fd


def mask_path(sys, path: str, proc_fd: int, null_fd: int | None = None) -> None:
    """Hide path: an empty read-only tmpfs over a directory, /dev/null over anything else."""
    try:
        fd = open_in_root("/", path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        trace.step("mount", f"mask {path}")
        with _fd_paths(proc_fd):
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                sys.mount("tmpfs", _ref(fd, proc_fd), "tmpfs", MS_RDONLY, None)
            else:
                sys.mount(_ref(null_fd, proc_fd), _ref(fd, proc_fd), None, MS_BIND)
    finally:
        os.close(fd)


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


def finish(sys, cfg: Config, proc_fd: int) -> None:
    """After pivot: root read-only, sysctl, read-only and masked paths (runc's order)."""
    if cfg.rootfs_propagation:
        trace.step("mount", "rootfsPropagation of /", flags=hex(cfg.rootfs_propagation))
        sys.mount(None, "/", None, cfg.rootfs_propagation)
    if cfg.readonly_root:
        remount_root_readonly(sys)
    write_sysctls(cfg)
    for path in cfg.readonly_paths:
        readonly_path(sys, path, proc_fd)
    if cfg.masked_paths:
        null_fd = open_dev_null()
        try:
            for path in cfg.masked_paths:
                mask_path(sys, path, proc_fd, null_fd)
        finally:
            os.close(null_fd)
