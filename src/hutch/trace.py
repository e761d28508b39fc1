"""One logger for every kernel-level step, so `hutch --debug` shows how a container is built.

Call `trace.step("mount", "proc on /proc", flags=...)`; it costs one attribute test when
debugging is off. HUTCH_DEBUG=1 in the environment turns it on in child processes too.
"""
from __future__ import annotations

import os
import sys

enabled = os.environ.get("HUTCH_DEBUG") == "1"
_out = None


def enable(stream=None) -> None:
    global enabled, _out
    enabled = True
    os.environ["HUTCH_DEBUG"] = "1"
    _out = stream


def step(kind: str, what: str, **details) -> None:
    if not enabled:
        return
    extra = "".join(f" {k}={v}" for k, v in details.items())
    line = f"DEBU[{os.getpid()}] {kind}: {what}{extra}\n"
    try:
        (_out or sys.stderr).write(line)
        (_out or sys.stderr).flush()
    except (OSError, ValueError):
        pass
