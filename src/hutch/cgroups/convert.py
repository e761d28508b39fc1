"""v1-style values (what OCI linux.resources and Docker speak) → cgroup v2 file values.

The table is shared/reference/cgroups.md; the formulas are current runc's and crun's.
"""
from __future__ import annotations

import math


def cpu_shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144, default 1024) → cpu.weight (1..10000, default 100).

    A quadratic in log2 that maps the v1 default 1024 onto the v2 default 100 (the older
    linear formula gave 39, starving containers next to v2-native services).
    0 means unset and stays 0.
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    l = math.log2(shares)
    exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0
    return int(math.ceil(10 ** exponent))


def cpu_max(quota: int | None, period: int | None) -> str | None:
    """cpu.cfs_quota_us / cpu.cfs_period_us → cpu.max ("quota period" or "max period")."""
    if not quota and not period:
        return None
    value = str(quota) if quota and quota > 0 else "max"
    if period:
        value += f" {period}"
    return value


def memory_swap_max(swap: int | None, memory: int | None) -> int | None:
    """v1 memory.memsw (memory + swap total) → v2 memory.swap.max (swap alone).

    -1 is unlimited, None/0 unset. Raises ValueError for combinations v2 cannot express.
    """
    swap = swap or 0
    memory = memory or 0
    if memory == -1 and swap == 0:
        # "memory unlimited, swap not given" means both unlimited, as on v1.
        return -1
    if swap in (-1, 0):
        return swap or None
    if memory in (0, -1):
        raise ValueError("unable to set swap limit without memory limit")
    if memory < 0:
        raise ValueError(f"invalid memory value: {memory}")
    if swap < memory:
        raise ValueError("memory+swap limit should be >= memory limit")
    return swap - memory


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) → io.weight (1..10000); 0 stays unset."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def limit_str(value: int) -> str:
    """A v2 limit: -1 (or anything negative) is "max"."""
    return "max" if value < 0 else str(value)


def io_max_lines(block_io: dict) -> list[str]:
    """OCI blockIO throttles → io.max lines ("MAJ:MIN rbps=N"), one per device and kind."""
    lines = []
    for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                      ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops")):
        for dev in block_io.get(key) or ():
            rate = dev.get("rate", 0)
            lines.append(f"{dev['major']}:{dev['minor']} {name}={rate if rate else 'max'}")
    return lines

