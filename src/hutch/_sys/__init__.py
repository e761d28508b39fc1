"""The only home of ctypes and raw syscalls.

Thin wrappers with the kernel's names and constants; each raises OSError(errno, "op", path)
on failure. Where the standard library has the call (os.pidfd_open, socket.send_fds,
os.setgroups, os.mknod), callers use it directly.
"""
from __future__ import annotations

import _ctypes
import errno
import fcntl
import os

# ctypes' C core and the few C types used here: the ctypes package itself costs ~1.5 ms of
# import on every runtime call (its module, struct, types, its endian structures).
Structure = _ctypes.Structure
addressof = _ctypes.addressof
byref = _ctypes.byref
get_errno = _ctypes.get_errno


def _c_type(name: str, code: str) -> type:
    """One of ctypes' simple C types, made from its C core as ctypes itself does."""
    return type(name, (_ctypes._SimpleCData,), {"_type_": code})


c_int, c_uint32, c_long, c_ulong, c_ushort, c_uint64, c_void_p, c_char, c_char_p = (
    _c_type(name, code) for name, code in (
        ("c_int", "i"), ("c_uint32", "I"), ("c_long", "l"), ("c_ulong", "L"),
        ("c_ushort", "H"), ("c_uint64", "Q"), ("c_void_p", "P"), ("c_char", "c"),
        ("c_char_p", "z")))


def buffer(init: bytes | int):
    """A C char array holding these bytes (NULs included), or this many zero bytes."""
    if isinstance(init, int):
        return (c_char * init)()
    return (c_char * len(init)).from_buffer_copy(init)


class _LibcFunction(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _Libc:
    """The C library's functions by name, as ctypes.CDLL(None, use_errno=True) has them."""
    _handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)

    def __getattr__(self, name: str) -> _LibcFunction:
        func = _LibcFunction((name, self))
        setattr(self, name, func)
        return func


_libc = _Libc()

# --- namespaces (linux/sched.h) ---
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --- mount flags (linux/mount.h) ---
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --- prctl (linux/prctl.h) ---
PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# x86_64 syscall numbers for calls glibc 2.36 does not wrap.
SYS_pivot_root = 155
SYS_capget = 125
SYS_capset = 126
SYS_seccomp = 317
SYS_keyctl = 250
SYS_openat2 = 437
KEYCTL_JOIN_SESSION_KEYRING = 1
SECCOMP_SET_MODE_FILTER = 1

_libc.syscall.restype = c_long
_libc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p]
_libc.umount2.argtypes = [c_char_p, c_int]
_libc.unshare.argtypes = [c_int]
_libc.setns.argtypes = [c_int, c_int]
_libc.sethostname.argtypes = [c_char_p, c_ulong]
_libc.setdomainname.argtypes = [c_char_p, c_ulong]
_libc.prctl.argtypes = [c_int, c_ulong, c_ulong, c_ulong, c_ulong]


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


def _check(ret: int, op: str, path: str | bytes | None = None) -> int:
    if ret < 0:
        err = get_errno()
        if path is None:
            raise OSError(err, f"{op}: {os.strerror(err)}")
        raise OSError(err, f"{op}: {os.strerror(err)}", os.fsdecode(path))
    return ret


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(SYS_pivot_root, _b(new_root), _b(put_old)), "pivot_root", new_root)


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, len(b)), "sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, len(b)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl")


def sched_getcpu() -> int:
    """The CPU this thread runs on now (a hint: it may move right after)."""
    return _check(_libc.sched_getcpu(), "sched_getcpu")


def chroot(path: str) -> None:
    os.chroot(path)


# --- clone3 (linux/sched.h) ---
SYS_clone3 = 435
CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17


class _CloneArgs(Structure):
    _fields_ = [(name, c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


class _WithGil(_ctypes.CFuncPtr):
    """A C function called with the GIL held (ctypes' pythonapi kind), as os.fork calls
    fork() and Python's own fork hooks: no other thread of ours runs in between."""
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


def fork_into_cgroup(cgroup_fd: int, flags: int = 0, proc_fd: int | None = None) -> int:
    """os.fork(), the child born in the cgroup2 directory open at `cgroup_fd` (clone3's
    CLONE_INTO_CGROUP, Linux 5.7), with more clone `flags` (CLONE_NEWPID).

    Born there, it is never moved: a move takes the kernel's global cgroup_threadgroup_rwsem
    for writing, whose first writer after a quiet spell waits for an RCU grace period
    (10-20 ms here). Python's fork hooks run as in os.fork; glibc's fork wrapper does not
    (it makes malloc's and stdio's locks safe for the child of a threaded process), so a
    process with more than one thread is refused (EBUSY): fork, then move, instead.
    `proc_fd`: the host's /proc, open, where ours may be out of sight (in a container's
    mount namespace)."""
    tasks = os.open("self/task" if proc_fd is not None else "/proc/self/task",
                    os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        if len(os.listdir(tasks)) != 1:
            raise OSError(errno.EBUSY, "clone3: other threads are running")
    finally:
        os.close(tasks)
    args = _CloneArgs(flags=flags | CLONE_INTO_CGROUP, exit_signal=_SIGCHLD, cgroup=cgroup_fd)
    try:
        before = _WithGil(("PyOS_BeforeFork", _libc))
        in_child = _WithGil(("PyOS_AfterFork_Child", _libc))
        in_parent = _WithGil(("PyOS_AfterFork_Parent", _libc))
        syscall = _WithGil(("syscall", _libc))
    except AttributeError:   # an interpreter that does not export its C API to dlsym
        raise OSError(errno.ENOSYS, "clone3: Python's fork hooks are not reachable") from None
    before()
    pid = syscall(c_long(SYS_clone3), byref(args), c_long(_ctypes.sizeof(_CloneArgs)))
    if pid == 0:
        in_child()
        return 0
    err = get_errno()
    in_parent()
    if pid < 0:
        raise OSError(err, f"clone3: {os.strerror(err)}")
    return pid


# --- resource limits (sys/resource.h): the resource module costs ~0.2 ms (a dlopen) ---
RLIM_INFINITY = (1 << 64) - 1


class _Rlimit(Structure):
    _fields_ = [("cur", c_uint64), ("max", c_uint64)]


def getrlimit(resource: int) -> tuple[int, int]:
    """(soft, hard) of this process."""
    old = _Rlimit()
    _check(_libc.prlimit(0, resource, None, byref(old)), "getrlimit")
    return old.cur, old.max


def setrlimit(resource: int, soft: int, hard: int) -> None:
    new = _Rlimit(soft, hard)
    _check(_libc.prlimit(0, resource, byref(new), None), "setrlimit")


# --- openat2 (linux/openat2.h) ---
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class _OpenHow(Structure):
    _fields_ = [("flags", c_uint64), ("mode", c_uint64), ("resolve", c_uint64)]


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) without O_CREAT (mode 0); the new fd."""
    how = _OpenHow(flags, 0, resolve)
    return _check(_libc.syscall(c_long(SYS_openat2), c_long(dirfd), _b(path), byref(how),
                                c_long(24)), "openat2", path)


# --- capabilities (linux/capability.h) ---
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(Structure):
    _fields_ = [("version", c_uint32), ("pid", c_int)]


class _CapData(Structure):
    _fields_ = [("effective", c_uint32), ("permitted", c_uint32), ("inheritable", c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.syscall(SYS_capget, byref(hdr), byref(data)), "capget")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(SYS_capset, byref(hdr), byref(data)), "capset")


_last_cap: int | None = None


def cap_last_cap() -> int:
    """The kernel's highest capability; read once (a container's init may have no /proc)."""
    global _last_cap
    if _last_cap is None:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            _last_cap = int(f.read())
    return _last_cap


def capbset_drop(cap: int) -> None:
    prctl(PR_CAPBSET_DROP, cap)


def cap_ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def set_keepcaps(on: bool) -> None:
    prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_dumpable(on: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if on else 0)


def set_pdeathsig(sig: int) -> None:
    prctl(PR_SET_PDEATHSIG, sig)


# --- terminals (asm-generic/ioctls.h) ---
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty() -> tuple[int, int]:
    """A pty pair from /dev/ptmx of the current root (the container's own devpts).

    Returns (master, slave), both close-on-exec."""
    import struct     # (terminals only: not on every run's import path)
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
        slave = os.open(f"/dev/pts/{n}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        os.close(master)
        raise
    return master, slave


def set_controlling_tty(fd: int) -> None:
    fcntl.ioctl(fd, TIOCSCTTY, 0)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    import struct
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


# --- seccomp (linux/seccomp.h, linux/filter.h) ---
class _SockFprog(Structure):
    _fields_ = [("len", c_ushort), ("filter", c_void_p)]


def seccomp_set_filter(program: bytes) -> None:
    """Install a compiled classic-BPF program (struct sock_filter[], 8 bytes each)."""
    buf = buffer(program)
    prog = _SockFprog(len(program) // 8, addressof(buf))
    _check(_libc.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, byref(prog)), "seccomp")


def join_session_keyring(name: str) -> int:
    """A new session keyring called `name` for this process (keyctl(2)); its serial."""
    return _check(_libc.syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, _b(name)), "keyctl")
