"""inotify(7): wake a `logs -f` reader when its container's directory changes (new log
entries, rotation, the monitor's exit record) instead of polling."""
from __future__ import annotations

import os

from hutch._sys import _libc, c_uint32, get_errno

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


def inotify_init1(flags: int = IN_NONBLOCK | IN_CLOEXEC) -> int:
    fd = _libc.inotify_init1(flags)
    if fd < 0:
        e = get_errno()
        raise OSError(e, f"inotify_init1: {os.strerror(e)}")
    return fd


def inotify_add_watch(fd: int, path: str, mask: int) -> int:
    wd = _libc.inotify_add_watch(fd, os.fsencode(path), c_uint32(mask))
    if wd < 0:
        e = get_errno()
        raise OSError(e, f"inotify_add_watch: {os.strerror(e)}", path)
    return wd
