"""What both cgroup drivers share: the interface, stats helpers, teardown."""
from __future__ import annotations

import errno
import os

from hutch import trace
from hutch.cgroups import fs
from hutch.cgroups.fs import CgroupError

# v1 reports "no limit" as the largest page-aligned int64.
V1_UNLIMITED = 0x7FFFFFFFFFFFF000


def limit_value(value: int | None) -> int | None:
    """A limit read from a file; None when unlimited ("max", -1, or v1's huge number)."""
    if value is None or value < 0 or value >= V1_UNLIMITED:
        return None
    return value


class CgroupManager:
    """One container's cgroup. `path` is the cgroup's path inside each hierarchy.

    stats() returns:
      {"cpu":    {"usage_ns", "user_ns", "system_ns", "nr_periods", "nr_throttled",
                  "throttled_ns"},
       "memory": {"usage", "max_usage", "limit", "swap_limit", "stat": {...}, "oom_kill"},
       "blkio":  {"read_bytes", "write_bytes", "devices": [{"major", "minor", "op", "value"}]},
       "pids":   {"current", "limit"},
       "pressure": {"cpu"|"memory"|"io": {"some": {"avg10", ..., "total"}, "full": ...}}}
    A limit is None when unlimited; a figure the host cannot provide is None; a section
    whose controller is absent is missing; "pressure" (PSI) only on v2.
    """

    version = 0

    def __init__(self, path: str):
        self.path = path

    # --- to be provided by each driver ---
    def paths(self) -> dict[str, str]:
        raise NotImplementedError

    def hierarchy_dirs(self) -> list[tuple[str, str]]:
        """What a container's /sys/fs/cgroup shows: (name, our directory) per hierarchy;
        one ("", directory) on cgroup v2, bound there alone."""
        raise NotImplementedError

    def create(self) -> None:
        raise NotImplementedError

    def apply(self, resources: dict) -> None:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def stats(self) -> dict:
        raise NotImplementedError

    def oom_kill_count(self) -> int:
        raise NotImplementedError

    def destroy(self) -> None:
        raise NotImplementedError

    # --- shared ---
    def _dirs(self) -> list[str]:
        """Each distinct directory once (v1 may mount several controllers together)."""
        seen: list[str] = []
        for d in self.paths().values():
            if d not in seen:
                seen.append(d)
        return seen

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._dirs())

    def add_process(self, pid: int, joined: tuple[str, ...] = ()) -> None:
        """Move process `pid` into each directory but those it `joined` by itself."""
        for d in self._dirs():
            if d not in joined:
                fs.write(os.path.join(d, "cgroup.procs"), pid)

    # --- joining without a move's global lock (see runtime.container._create) ---
    # Moving a process takes the kernel's cgroup_threadgroup_rwsem for writing, and its first
    # writer after a quiet spell waits for an RCU grace period (10-20 ms here). Two ways in
    # skip it: a child forked straight into a cgroup2 directory (clone3's CLONE_INTO_CGROUP),
    # and, on v1, a single-threaded process writing "0" (itself) into a `tasks` file.
    def birth_dir(self, make: bool = True) -> str | None:
        """Our cgroup2 directory for a child to be forked into, made now (`make`) or when
        it exists already; None if none."""
        return None

    def self_join_files(self) -> dict[str, str]:
        """directory -> the file a single-threaded process writes "0" to, to join it."""
        return {}

    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants (what `ps` lists)."""
        for d in self._dirs():
            if os.path.isdir(d):
                return sorted(set(fs.procs(d)))
        return []

    def remove_if_empty(self) -> bool:
        """rmdir each directory, as runc does first: True when all are gone; False (the
        others left) as soon as one still holds a task or a child cgroup, for destroy()."""
        for d in self._dirs():
            try:
                os.rmdir(d)
                trace.step("cgroup", f"rmdir {d}")
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    return False
                raise CgroupError(f"failed to remove cgroup {d}: "
                                  f"{os.strerror(e.errno).lower()}", e.errno) from None
        return True

    def _kill_and_remove(self, dirs: list[str]) -> None:
        """SIGKILL whatever still runs in `dirs`, then remove them (deepest first)."""
        for d in dirs:
            fs.kill_all(d)
        errors = []
        for d in dirs:
            try:
                fs.remove_tree(d, before_retry=fs.kill_all)
            except CgroupError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"
