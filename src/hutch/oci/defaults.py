"""Docker's default container spec, as an OCI runtime-spec config.json skeleton.

What every container gets unless a flag says otherwise (see
shared/reference/security-defaults.md): Docker's 14 capabilities, its mounts, masked and
read-only paths, the devices cgroup allow-list and the default seccomp profile. Pure data
plus a few reads of /proc and /sys describing this host.
"""
from __future__ import annotations

import os
import resource

from hutch.oci.seccomp_default import profile_for

OCI_VERSION = "1.0.2-dev"

# Every capability the kernel defines up to CAP_CHECKPOINT_RESTORE (linux/capability.h).
ALL_CAPS: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_NAMES: dict[int, str] = {bit: name for name, bit in ALL_CAPS.items()}

# moby's DefaultCapabilities(), in its order.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
# What a container of Docker's systemd units (LimitNOFILE=infinity) gets: the kernel's
# nr_open default. Capped below at the caller's own hard limit, which it cannot exceed.
DOCKER_NOFILE = 1048576

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)


def _device_rule(allow: bool, kind: str | None, major: int | None, minor: int | None,
                 access: str = "rwm") -> dict:
    rule: dict = {"allow": allow}
    if kind is not None:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    rule["access"] = access
    return rule


# Evaluated in order. Docker's list first (deny all, the basic char devices, deny
# /dev/fuse), then runc's AllowedDevices (mknod of any node, full, pts, ptmx, tun).
DEFAULT_DEVICE_RULES: tuple[dict, ...] = (
    _device_rule(False, None, None, None),
    _device_rule(True, "c", 1, 5),      # /dev/zero
    _device_rule(True, "c", 1, 3),      # /dev/null
    _device_rule(True, "c", 1, 9),      # /dev/urandom
    _device_rule(True, "c", 1, 8),      # /dev/random
    _device_rule(True, "c", 5, 0),      # /dev/tty
    _device_rule(True, "c", 5, 1),      # /dev/console
    _device_rule(False, "c", 10, 229),  # /dev/fuse
    _device_rule(True, "c", None, None, "m"),
    _device_rule(True, "b", None, None, "m"),
    _device_rule(True, "c", 1, 7),      # /dev/full
    _device_rule(True, "c", 136, None),  # /dev/pts/*
    _device_rule(True, "c", 5, 2),      # /dev/ptmx
    _device_rule(True, "c", 10, 200),   # /dev/net/tun
)


def host_last_cap(proc: str = "/proc") -> int:
    """The highest capability bit this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    try:
        with open(f"{proc}/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return max(CAP_NAMES)


def host_bounding_caps(proc: str = "/proc") -> list[str]:
    """Capabilities in this process's bounding set (CapBnd), known by name, in bit order.

    What --privileged can give: a root without CAP_SYS_RESOURCE cannot hand it out.
    """
    with open(f"{proc}/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                break
        else:
            mask = 0
    last = min(host_last_cap(proc), max(CAP_NAMES))
    return [CAP_NAMES[bit] for bit in range(last + 1) if mask >> bit & 1]


def thermal_throttle_paths(sysfs: str = "/sys") -> list[str]:
    """Every existing /sys/devices/system/cpu/cpu<N>/thermal_throttle, masked by Docker.
    (A listdir, not glob: glob's import, with fnmatch, is ~0.3 ms of each create.)"""
    cpus = os.path.join(sysfs, "devices/system/cpu")
    try:
        names = os.listdir(cpus)
    except FileNotFoundError:
        return []
    found = sorted(int(n[3:]) for n in names if n.startswith("cpu") and n[3:].isdigit()
                   and os.path.exists(os.path.join(cpus, n, "thermal_throttle")))
    return [f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in found]


def default_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return DOCKER_NOFILE
    return min(DOCKER_NOFILE, hard)


def default_mounts() -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={DEFAULT_SHM_SIZE}"]},
    ]


def default_spec(*, terminal: bool = False, cgroup_ns: bool = False,
                 hostname: str = "hutch") -> dict:
    """A complete config.json with Docker's defaults; the engine fills in args, env, root.

    cgroup_ns: Docker's default is a private cgroup namespace on cgroup v2 hosts and the
    host's on v1/hybrid ones; the caller decides (it knows the cgroup mode).
    """
    caps = list(DEFAULT_CAPS)
    env = [f"PATH={DEFAULT_PATH}"]
    if terminal:
        env.append("TERM=xterm")
    nofile = default_nofile()
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if cgroup_ns:
        namespaces.append({"type": "cgroup"})
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": env,
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps), "effective": list(caps), "permitted": list(caps),
                "inheritable": [], "ambient": [],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": default_mounts(),
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS) + thermal_throttle_paths(),
            "readonlyPaths": list(READONLY_PATHS),
            "devices": [],
            "resources": {"devices": [dict(rule) for rule in DEFAULT_DEVICE_RULES]},
            "seccomp": profile_for(set(caps)),
        },
    }
