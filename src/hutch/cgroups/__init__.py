"""cgroups: one CgroupManager interface, a v1 and a v2 driver chosen at run time.

    detect_mode() -> "legacy" | "hybrid" | "unified"
    m = manager("/hutch/<id>")        # or manager(path, root=tmpdir) on a fake tree
    m.create(); m.apply(oci_linux_resources); m.add_process(pid)
    m.freeze(); m.thaw(); m.is_frozen(); m.pids(); m.stats(); m.oom_kill_count()
    m.destroy(); m.paths(); m.exists()
    prime_attach_in_thread(); ...; m.add_process(pid)   # a move's slow part, earlier

Errors are CgroupError, one line naming the path and value.
"""
from __future__ import annotations

import os

from hutch.cgroups.base import CgroupManager
from hutch.cgroups.fs import CgroupError
from hutch.cgroups.mounts import (CGROUP_ROOT, Mounts, fake_mounts, host_mounts, own_cgroup,
                                  proc_self_cgroup)

__all__ = ["CgroupError", "CgroupManager", "cgroup_mounts", "detect_mode", "manager",
           "prime_attach_in_thread"]


def cgroup_mounts(root: str | None = None, mode: str | None = None) -> Mounts:
    """The host's cgroup mounts, or those of a fake tree under `root`."""
    return fake_mounts(root, mode) if root else host_mounts()


def detect_mode(root: str | None = None) -> str:
    return cgroup_mounts(root).mode


def manager(cgroups_path: str, *, root: str | None = None,
            mode: str | None = None) -> CgroupManager:
    """The driver for this host (or for a fake tree under `root`).

    An absolute `cgroups_path` ("/hutch/<id>") is taken from each hierarchy's root; a
    relative one is placed under the caller's own cgroup, as runc does (on a fake tree it
    is taken from the root). Hybrid hosts use the v1 driver, as runc does.
    """
    m = cgroup_mounts(root, mode)
    if not cgroups_path or ".." in cgroups_path.split("/") or os.path.normpath(
            "/" + cgroups_path.lstrip("/")) == "/":
        # Never the hierarchy's root: destroy() would kill every process on the host.
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}")
    if m.mode == "unified":
        from hutch.cgroups.v2 import V2Manager
        path = cgroups_path
        if not os.path.isabs(path) and root is None:
            path = os.path.join(own_cgroup(None), path)
        return V2Manager(os.path.normpath("/" + path), m.unified)
    from hutch.cgroups.v1 import V1Manager
    inner = None
    if not os.path.isabs(cgroups_path):
        if root is None:
            inner = {c: os.path.join(own_cgroup(c), cgroups_path) for c in m.v1}
            inner[""] = os.path.join(own_cgroup(None), cgroups_path)
        else:
            cgroups_path = "/" + cgroups_path
    return V1Manager(os.path.normpath(cgroups_path), m, inner)


PRIMER_FD_MIN = 100      # prime_attach_in_thread's fd: out of the way of the caller's


def _own_procs_file() -> str:
    """The cgroup.procs file of a cgroup we are in, where writing "0" is a no-op move.

    Looked for where hierarchies are usually mounted first, and taken only if our pid is
    in it (writing to any other would move us); else from the host's layout."""
    me = str(os.getpid()).encode()
    try:
        lines = proc_self_cgroup().splitlines()
    except OSError:
        lines = []
    # The longest path first: a deeper cgroup has fewer processes to list (a root cgroup
    # may hold hundreds: ~1 ms to read); then v2's, cheaper to list than v1's.
    for line in sorted(lines, key=lambda line: (-len(line.rpartition(":")[2].strip("/")),
                                                not line.startswith("0::"))):
        _hid, controllers, path = line.split(":", 2)
        if controllers.startswith("name="):
            continue
        mounts = (f"{CGROUP_ROOT}/unified", CGROUP_ROOT) if controllers == "" else (
            f"{CGROUP_ROOT}/{controllers}",)
        for mount in mounts:
            procs = os.path.join(mount, path.lstrip("/"), "cgroup.procs")
            try:
                with open(procs, "rb") as f:
                    if me in f.read().split():
                        return procs
            except OSError:
                pass
    m = host_mounts()
    if m.unified:
        return os.path.join(m.unified, own_cgroup(None).lstrip("/"), "cgroup.procs")
    controller = next(iter(m.v1))
    return os.path.join(m.v1[controller], own_cgroup(controller).lstrip("/"), "cgroup.procs")


def prime_attach_in_thread() -> None:
    """Pay the slow part of a first cgroup move in a thread, now, for a caller that moves
    a process soon (where it cannot join by itself: see CgroupManager.birth_dir).

    Every write to a cgroup.procs file takes the kernel's global cgroup_threadgroup_rwsem
    for writing, and a writer after a quiet spell waits for an RCU grace period first
    (10-20 ms here); a writer within about one grace period of the last one does not wait.
    One no-op move of ourselves into the cgroup we are in; the GIL is released while the
    kernel waits, so the caller goes on. The kernel holds the cgroup_mutex during the wait,
    so a cgroup mkdir meanwhile waits for it. Never fails: without it, the real move is
    only slower."""
    import _thread
    from fcntl import F_DUPFD_CLOEXEC, fcntl
    try:
        fd = os.open(_own_procs_file(), os.O_WRONLY | os.O_CLOEXEC)
    except (OSError, StopIteration):
        return
    # Above the fds the caller opens next, so that their numbers (the container init's
    # fd layout) do not depend on when the thread's write returns and closes this one.
    high = fcntl(fd, F_DUPFD_CLOEXEC, PRIMER_FD_MIN)
    os.close(fd)
    # Wait until the thread is about to write: else, as we keep the GIL busy (imports),
    # it would start only at our next switch interval (5 ms).
    started = _thread.allocate_lock()
    started.acquire()
    _thread.start_new_thread(_noop_move, (high, started))
    started.acquire()


def _noop_move(fd: int, started) -> None:
    started.release()
    try:
        os.write(fd, b"0")  # "0": the writer's own process
    except OSError:
        pass
    finally:
        os.close(fd)


