"""`stats`: CPU, memory, network, block I/O and pids of containers, from their cgroup files
and their network namespace (never through the runtime), computed as Docker's CLI does.

On cgroup v2 each row also carries the pressure (PSI) figures of the container's cgroup,
which Docker does not show: `pressure_fields(raw)` formats them as the template fields
CPUPressure, MemPressure and IOPressure ("some avg10 / full avg10", e.g. "3.10% / 0.00%"),
`PRESSURE_HEADERS` names their columns and `PRESSURE_COLUMNS` extends the default table.
"""
from __future__ import annotations

import os
import time

from hutch.engine import states

SAMPLE_INTERVAL = 0.5   # between the two readings a CPU percentage needs

PRESSURE_HEADERS = {"CPUPressure": "CPU PSI", "MemPressure": "MEM PSI", "IOPressure": "IO PSI"}
PRESSURE_COLUMNS = "\t{{.CPUPressure}}\t{{.MemPressure}}\t{{.IOPressure}}"
_PRESSURE_KEYS = (("CPUPressure", "cpu"), ("MemPressure", "memory"), ("IOPressure", "io"))


def _system_ns() -> int:
    """Total CPU time of the host (the /proc/stat cpu line) in ns, as Docker's systemUsage."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]
    return sum(int(x) for x in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _net_io(pid: int) -> tuple[int, int]:
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            continue
        v = data.split()
        rx += int(v[0])
        tx += int(v[8])
    return rx, tx


class Sampler:
    def __init__(self, paths):
        self.paths = paths
        self.prev: dict[str, tuple[int, int]] = {}

    def _read(self, c) -> dict | None:
        if c.status not in (states.RUNNING, states.PAUSED):
            return None
        from hutch import cgroups
        try:
            return cgroups.manager(f"/hutch/{c.id}").stats()
        except Exception:  # noqa: BLE001 - exited meanwhile
            return None

    def rows(self, containers) -> list[dict]:
        readings = {c.id: self._read(c) for c in containers}
        if not self.prev and any(readings.values()):
            for cid, r in readings.items():
                if r:
                    self.prev[cid] = ((r.get("cpu") or {}).get("usage_ns") or 0, _system_ns())
            time.sleep(SAMPLE_INTERVAL)
            readings = {c.id: self._read(c) for c in containers}
        return [self._row(c, readings[c.id]) for c in containers]

    def _row(self, c, r: dict | None) -> dict | None:
        """Raw numbers (the CLI formats them); None for a container that is not running."""
        if r is None:
            return None
        cpu_now = (r.get("cpu") or {}).get("usage_ns") or 0
        sys_now = _system_ns()
        prev_cpu, prev_sys = self.prev.get(c.id, (cpu_now, sys_now))
        self.prev[c.id] = (cpu_now, sys_now)
        cpu_pct = 0.0
        if sys_now > prev_sys and cpu_now > prev_cpu:
            cpu_pct = (cpu_now - prev_cpu) / (sys_now - prev_sys) * (os.cpu_count() or 1) * 100
        mem = r.get("memory") or {}
        stat = mem.get("stat") or {}
        # Docker's CLI shows usage without the page cache that could be dropped
        usage = (mem.get("usage") or 0) - stat.get("total_inactive_file", stat.get("inactive_file", 0))
        limit = mem.get("limit") or _host_memory()
        rx, tx = _net_io(c.state["Pid"])
        blk = r.get("blkio") or {}
        return {"cpu_pct": cpu_pct, "mem_usage": max(usage, 0), "mem_limit": limit,
                "net_rx": rx, "net_tx": tx, "blk_read": blk.get("read_bytes", 0),
                "blk_write": blk.get("write_bytes", 0),
                "pids": (r.get("pids") or {}).get("current") or 0,
                "pressure": r.get("pressure")}


def pressure_fields(raw: dict | None) -> dict:
    """The PSI template fields of a row: the share of the last 10 s in which some (and all)
    of the container's tasks stalled on CPU, memory or I/O; "--" where the host has no PSI
    (cgroup v1) or the container is not running."""
    pressure = (raw or {}).get("pressure") or {}
    out = {}
    for field, resource in _PRESSURE_KEYS:
        psi = pressure.get(resource)
        if not psi:
            out[field] = "--"
            continue
        some = (psi.get("some") or {}).get("avg10")
        full = (psi.get("full") or {}).get("avg10")
        out[field] = " / ".join("--" if v is None else f"{v:.2f}%" for v in (some, full))
    return out
