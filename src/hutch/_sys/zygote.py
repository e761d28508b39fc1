"""Calls for a process forked from the monitor host's shared image, made so that they write
as few of its pages as they can (each page written is copied into the forked process)."""
from __future__ import annotations

from hutch._sys import PR_SET_CHILD_SUBREAPER, PR_SET_NAME, _check, _libc, _LibcFunction

# prctl without argtypes: ctypes passes the ints as they are, where _sys.prctl's argtypes
# build a converted argument object for each (~115 KiB more written per monitor)
_prctl = _LibcFunction(("prctl", _libc))


def set_child_subreaper(on: bool = True) -> None:
    """PR_SET_CHILD_SUBREAPER (not inherited across fork: each monitor makes the call)."""
    ret = _prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)
    if ret:
        _check(ret, "prctl")


def set_process_name(name: bytes) -> None:
    """PR_SET_NAME: what ps and top show (at most 15 bytes); kept across fork, so the host's
    name is its monitors' too, at no cost to them."""
    ret = _prctl(PR_SET_NAME, name, 0, 0, 0)
    if ret:
        _check(ret, "prctl")
