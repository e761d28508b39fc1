"""Linux capabilities by name, and applying a process's five sets (runc's order)."""
from __future__ import annotations

from hutch import trace

# linux/capability.h, in number order.
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def mask(names, field: str, last_cap: int) -> int:
    """Names → bit mask; an unknown name is an error, one the kernel lacks is skipped (as runc)."""
    bits = 0
    for name in names or ():
        num = NUMBERS.get(name)
        if num is None:
            raise ValueError(f"{field}: unknown capability {name!r}")
        if num <= last_cap:
            bits |= 1 << num
    return bits


def apply_bounding(sys, bounding: int, last_cap: int) -> None:
    """Drop what the bounding set must not keep; needs CAP_SETPCAP, so before setuid."""
    dropped = [NAMES[c] for c in range(last_cap + 1) if not bounding >> c & 1]
    trace.step("capabilities", "drop bounding", caps=",".join(dropped) or "-")
    for cap in range(last_cap + 1):
        if not bounding >> cap & 1:
            sys.capbset_drop(cap)


def apply_sets(sys, sets: dict[str, int], last_cap: int) -> None:
    """effective/permitted/inheritable by capset, then raise the ambient ones."""
    trace.step("capabilities", "capset", effective=hex(sets["effective"]),
               permitted=hex(sets["permitted"]), inheritable=hex(sets["inheritable"]),
               ambient=hex(sets["ambient"]))
    sys.capset(sets["effective"], sets["permitted"], sets["inheritable"])
    # The kernel only lets a capability be ambient if it is permitted and inheritable.
    ambient = sets["ambient"] & sets["permitted"] & sets["inheritable"]
    for cap in range(last_cap + 1):
        if ambient >> cap & 1:
            sys.cap_ambient_raise(cap)
