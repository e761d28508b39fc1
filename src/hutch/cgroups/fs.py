"""Reading and writing cgroup files: the one place a cgroup value reaches the kernel.

Every write is traced (`hutch --debug` shows `cgroup: <path> = <value>`) and every failure
names the path and the value, as runc does:
`failed to write "max" to /sys/fs/cgroup/pids/hutch/ID/pids.max: device or resource busy`.
"""
from __future__ import annotations

import errno
import os
import time
from _signal import SIGKILL  # the signal module's enums: ~3 ms of import

from hutch import trace


class CgroupError(Exception):
    """A cgroup operation failed; str(e) is one line naming the path (and value)."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


def write(path: str, value) -> None:
    value = str(value)
    trace.step("cgroup", f"{path} = {value}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f'failed to write "{value}" to {path}: {os.strerror(e.errno).lower()}',
                          e.errno) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(f'failed to write "{value}" to {path}: {os.strerror(e.errno).lower()}',
                          e.errno) from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise CgroupError(f"failed to read {path}: {os.strerror(e.errno).lower()}",
                          e.errno) from None


def read_or(path: str, default=None):
    """The file's stripped text, or `default` when the file does not exist."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default


def read_int(path: str, default=None):
    text = read_or(path)
    if text is None or text == "":
        return default
    if text == "max":
        return -1
    return int(text)


def read_keyed(path: str) -> dict[str, int]:
    """A flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events)."""
    out: dict[str, int] = {}
    text = read_or(path, "")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_pressure(path: str) -> dict | None:
    """A PSI file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0") as nested dicts."""
    text = read_or(path)
    if text is None:
        return None
    out: dict = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        entry = {}
        for field in fields:
            k, _, v = field.partition("=")
            entry[k] = int(v) if k == "total" else float(v)
        out[kind] = entry
    return out


def procs(directory: str, recursive: bool = True) -> list[int]:
    """The pids in a cgroup directory's cgroup.procs (and its descendants')."""
    pids: list[int] = []
    walk = os.walk(directory) if recursive else [(directory, [], [])]
    for dirpath, _dirs, _files in walk:
        text = read_or(os.path.join(dirpath, "cgroup.procs"), "")
        pids.extend(int(p) for p in text.split())
    return pids


def mkdir(path: str) -> bool:
    """Create one cgroup directory; True when it was created by this call."""
    try:
        os.mkdir(path, 0o755)
        trace.step("cgroup", f"mkdir {path}")
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise CgroupError(f"failed to create cgroup {path}: {os.strerror(e.errno).lower()}",
                          e.errno) from None


def kill_all(directory: str) -> None:
    for pid in procs(directory):
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass


def remove_tree(path: str, timeout: float = 10.0, before_retry=None) -> None:
    """rmdir a cgroup and its descendants, deepest first, retrying while tasks exit.

    A cgroup directory stays busy (EBUSY) until its last task is gone; a task killed a
    moment ago may still be exiting, so rmdir is retried with a growing pause.
    `before_retry(dir)` may kill stragglers that were forked meanwhile.
    """
    if not os.path.isdir(path):
        return
    dirs = [d for d, _s, _f in os.walk(path)]
    deadline = time.monotonic() + timeout
    for d in reversed(dirs):
        pause = 0.001
        while True:
            try:
                os.rmdir(d)
                trace.step("cgroup", f"rmdir {d}")
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                    raise CgroupError(f"failed to remove cgroup {d}: "
                                      f"{os.strerror(e.errno).lower()}", e.errno) from None
                if before_retry is not None:
                    before_retry(d)
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
