"""Docker's resource flags → OCI linux.resources, process.rlimits and HostConfig fields.

Two stages, as in Docker:
1. the CLI converts each flag's text (`FLAGS` lists them with their value parsers; a parser
   raises ValueError with the text pflag shows after `invalid argument "X" for "-m,
   --memory" flag: `), then
2. the daemon validates the whole set against the host, adds defaults (memory-swap = 2 ×
   memory, shm 64MB), drops what the host cannot do with a warning, and builds the spec.

    r = parse_resources({"memory": "200M", "cpu-shares": "512", "ulimit": ["nofile=10:20"]})
    r.linux_resources   # {"memory": {"limit": 209715200, "swap": 419430400}, "cpu": {...}}
    r.rlimits           # [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]
    r.host_config       # {"Memory": 209715200, "MemorySwap": 419430400, "CpuShares": 512, ...}
    r.shm_size          # 67108864
    r.warnings          # ["WARNING: Your kernel does not support ..."]

Flag values may be the raw text (parsed here) or what the parsers return. Errors are
`FlagError` (a bad flag value: the CLI adds its usage lines) or `ResourceError` (what Docker's
daemon refuses); both are ValueError with Docker's one-line message and `.exit_code`.
"""
from __future__ import annotations

import os
import stat

from hutch.engine.records import Record

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
MIN_MEMORY = 6 * 1024 * 1024          # Docker's linuxMinMemory
DEFAULT_CPU_PERIOD = 100000           # µs, what --cpus is expressed against


class FlagError(ValueError):
    """A flag value the CLI rejects: `invalid argument "X" for "-m, --memory" flag: ...`."""
    exit_code = 125


class ResourceError(ValueError):
    """A combination Docker's daemon rejects (`Minimum memory limit allowed is 6MB`)."""

    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code


# --- value parsers (what Docker's CLI option types do) ---------------------------------

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def _go_float(num: str) -> float:
    import re   # here and below: re (with its enum) is ~5 ms of every `run` without the flag
    try:
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", num):
            raise ValueError
        return float(num)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax') from None


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "200M", "1g", "512k", "1.5GiB", "100" (bytes); binary units."""
    sep = max(text.rfind(ch) for ch in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] == " ":
        num, sfx = text[:sep], text[sep + 1:]
    else:
        num, sfx = text[:sep + 1], text[sep + 1:]
    size = _go_float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    if len(sfx) > 3:
        raise ValueError(f"invalid suffix: '{low}'")
    if low[0] == "b":
        if len(low) > 1:
            raise ValueError(f"invalid suffix: '{low}'")
        return int(size)
    mul = _BINARY.get(low[0])
    if mul is None or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError(f"invalid suffix: '{low}'")
    return int(size * mul)


def memswap_bytes(text: str) -> int:
    """--memory-swap: a size, or -1 for unlimited."""
    return -1 if text == "-1" else ram_in_bytes(text)


def nano_cpus(text: str) -> int:
    """--cpus "1.5" → 1500000000 (a rational number, at most nanosecond precision)."""
    from fractions import Fraction  # only when --cpus is given: it costs the CLI ~2 ms
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _device_path(text: str) -> tuple[str, str]:
    path, sep, value = text.partition(":")
    if not sep:
        raise ValueError(f"bad format: {text}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {text}")
    return path, value


def throttle_bps_device(text: str) -> dict:
    """--device-read-bps/--device-write-bps "/dev/vda:30MB" → {"Path", "Rate"}."""
    path, value = _device_path(text)
    try:
        rate = ram_in_bytes(value)
    except ValueError:
        rate = -1
    if rate < 0:
        raise ValueError(f"invalid rate for device: {text}. The correct format is "
                         "<device-path>:<number>[<unit>]. Number must be a positive integer. "
                         "Unit is optional and can be kb, mb, or gb")
    return {"Path": path, "Rate": rate}


def throttle_iops_device(text: str) -> dict:
    """--device-read-iops/--device-write-iops "/dev/vda:100" → {"Path", "Rate"}."""
    path, value = _device_path(text)
    if not value.isdigit():
        raise ValueError(f"invalid rate for device: {text}. The correct format is "
                         "<device-path>:<number>. Number must be a positive integer")
    return {"Path": path, "Rate": int(value)}


def weight_device(text: str) -> dict:
    """--blkio-weight-device "/dev/vda:300" → {"Path", "Weight"} (10..1000, 0 = unset)."""
    path, value = _device_path(text)
    if not value.isdigit() or (int(value) > 0 and not 10 <= int(value) <= 1000):
        raise ValueError(f"invalid weight for device: {text}")
    return {"Path": path, "Weight": int(value)}


RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}


def _parse_int64(text: str) -> int:
    if not (text[1:] if text[:1] in "+-" else text).isdecimal():   # [+-]?\d+
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def ulimit(text: str) -> dict:
    """--ulimit "nofile=1024:2048" (soft[:hard]; hard defaults to soft) → {"Name","Hard","Soft"}."""
    name, sep, values = text.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in RLIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = values.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {values}, can only have up to "
                         "two, `soft[:hard]`")
    if len(parts) == 2:
        hard = _parse_int64(parts[1])
        soft = _parse_int64(parts[0])
    else:
        soft = hard = _parse_int64(parts[0])
    if hard != -1 and soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: "
                         f"{soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def int64(text: str) -> int:
    return _parse_int64(text)


def uint16(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def _bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


# (long name, short, pflag type shown in help, parser, repeatable, help text)
FLAGS = [
    ("memory", "m", "bytes", ram_in_bytes, False, "Memory limit"),
    ("memory-swap", None, "bytes", memswap_bytes, False,
     "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
    ("memory-reservation", None, "bytes", ram_in_bytes, False, "Memory soft limit"),
    ("memory-swappiness", None, "int", int64, False,
     "Tune container memory swappiness (0 to 100) (default -1)"),
    ("oom-kill-disable", None, "bool", _bool, False, "Disable OOM Killer"),
    ("kernel-memory", None, "bytes", ram_in_bytes, False, "Kernel memory limit"),
    ("cpu-shares", "c", "int", int64, False, "CPU shares (relative weight)"),
    ("cpus", None, "decimal", nano_cpus, False, "Number of CPUs"),
    ("cpu-period", None, "int", int64, False, "Limit CPU CFS (Completely Fair Scheduler) period"),
    ("cpu-quota", None, "int", int64, False, "Limit CPU CFS (Completely Fair Scheduler) quota"),
    ("cpuset-cpus", None, "string", str, False, "CPUs in which to allow execution (0-3, 0,1)"),
    ("cpuset-mems", None, "string", str, False, "MEMs in which to allow execution (0-3, 0,1)"),
    ("blkio-weight", None, "uint16", uint16, False,
     "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
    ("blkio-weight-device", None, "list", weight_device, True,
     "Block IO weight (relative device weight) (default [])"),
    ("device-read-bps", None, "list", throttle_bps_device, True,
     "Limit read rate (bytes per second) from a device (default [])"),
    ("device-write-bps", None, "list", throttle_bps_device, True,
     "Limit write rate (bytes per second) to a device (default [])"),
    ("device-read-iops", None, "list", throttle_iops_device, True,
     "Limit read rate (IO per second) from a device (default [])"),
    ("device-write-iops", None, "list", throttle_iops_device, True,
     "Limit write rate (IO per second) to a device (default [])"),
    ("pids-limit", None, "int", int64, False, "Tune container pids limit (set -1 for unlimited)"),
    ("ulimit", None, "ulimit", ulimit, True, "Ulimit options (default [])"),
    ("shm-size", None, "bytes", ram_in_bytes, False, "Size of /dev/shm"),
]
_BY_NAME = {f[0]: f for f in FLAGS}
_SHORT = {f[1]: f[0] for f in FLAGS if f[1]}
# The subset `docker update` takes.
UPDATE_FLAGS = ("memory", "memory-swap", "memory-reservation", "kernel-memory", "cpu-shares",
                "cpus", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems",
                "blkio-weight", "pids-limit")


def _display(name: str) -> str:
    short = _BY_NAME[name][1]
    return f"-{short}, --{name}" if short else f"--{name}"


def _convert(flags: dict, allowed) -> dict:
    """Flag values by long name, each parsed (text) or taken as given (already parsed)."""
    out = {}
    for key, value in flags.items():
        name = _SHORT.get(key, key)
        if name not in _BY_NAME or name not in allowed:
            raise FlagError(f"unknown flag: --{name}")
        if value is None:
            continue
        _n, _s, _t, parser, repeatable, _h = _BY_NAME[name]
        items = list(value) if repeatable else [value]
        parsed = []
        for item in items:
            if isinstance(item, str) and parser is not str:
                try:
                    item = parser(item)
                except ValueError as e:
                    raise FlagError(f'invalid argument "{item}" for "{_display(name)}" flag: '
                                    f"{e}") from None
            parsed.append(item)
        out[name] = parsed if repeatable else parsed[0]
    return out


# --- what the host can do --------------------------------------------------------------

class HostInfo(Record):
    """The resource features of the host, as Docker's sysinfo sees them."""
    mode: str = "legacy"
    ncpu: int = 1
    cpus: str = "0"            # online CPUs a cpuset may use ("0-1")
    mems: str = "0"
    memory: bool = True
    swap: bool = True
    reservation: bool = True
    swappiness: bool = True
    oom_kill_disable: bool = True
    cpu_shares: bool = True
    cpu_cfs: bool = True
    cpuset: bool = True
    pids: bool = True
    blkio_weight: bool = True
    blkio_weight_device: bool = True
    blkio_throttle: bool = True


_host: HostInfo | None = None


def host_info() -> HostInfo:
    """This host's features, read once from the cgroup mounts (what sysinfo does)."""
    global _host
    if _host is not None:
        return _host
    from hutch.cgroups import cgroup_mounts
    m = cgroup_mounts()
    ncpu = len(os.sched_getaffinity(0))

    def read(path, default=""):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return default

    if m.mode == "unified":
        root = m.unified
        ctrls = set(read(os.path.join(root, "cgroup.controllers")).split())
        info = HostInfo(
            mode="unified", ncpu=ncpu,
            cpus=read(os.path.join(root, "cpuset.cpus.effective")) or f"0-{ncpu - 1}",
            mems=read(os.path.join(root, "cpuset.mems.effective")) or "0",
            # As Docker's sysinfo: the memory controller implies swap limits on v2.
            memory="memory" in ctrls, swap="memory" in ctrls,
            reservation="memory" in ctrls, swappiness=False, oom_kill_disable=False,
            cpu_shares="cpu" in ctrls, cpu_cfs="cpu" in ctrls, cpuset="cpuset" in ctrls,
            pids="pids" in ctrls, blkio_weight="io" in ctrls, blkio_weight_device="io" in ctrls,
            blkio_throttle="io" in ctrls)
    else:
        def v1(ctrl, name=None):
            mount = m.v1.get(ctrl)
            return mount is not None and (name is None or
                                          os.path.exists(os.path.join(mount, name)))
        cpuset = m.v1.get("cpuset")
        info = HostInfo(
            mode=m.mode, ncpu=ncpu,
            cpus=read(os.path.join(cpuset, "cpuset.cpus")) if cpuset else f"0-{ncpu - 1}",
            mems=read(os.path.join(cpuset, "cpuset.mems")) if cpuset else "0",
            memory=v1("memory"), swap=v1("memory", "memory.memsw.limit_in_bytes"),
            reservation=v1("memory", "memory.soft_limit_in_bytes"),
            swappiness=v1("memory", "memory.swappiness"),
            oom_kill_disable=v1("memory", "memory.oom_control"),
            cpu_shares=v1("cpu", "cpu.shares"), cpu_cfs=v1("cpu", "cpu.cfs_period_us"),
            cpuset=cpuset is not None, pids=v1("pids"),
            # Docker 20.10 looks for blkio.weight only; BFQ-only kernels (blkio.bfq.weight)
            # get the "Weight discarded" warning, as in the reference transcript.
            blkio_weight=v1("blkio", "blkio.weight"),
            blkio_weight_device=v1("blkio", "blkio.weight_device"),
            blkio_throttle=v1("blkio", "blkio.throttle.read_bps_device"))
    _host = info
    return info


# --- validation and conversion ---------------------------------------------------------

class Resources(Record):
    linux_resources: dict
    rlimits: list
    host_config: dict
    shm_size: int
    warnings: list


def default_host_config() -> dict:
    """The resource fields of a HostConfig with nothing set, as `docker inspect` shows."""
    return {
        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [],
        "ShmSize": DEFAULT_SHM_SIZE,
    }


_HC_FIELDS = {
    "memory": "Memory", "memory-swap": "MemorySwap", "memory-reservation": "MemoryReservation",
    "kernel-memory": "KernelMemory", "cpu-shares": "CpuShares", "cpus": "NanoCpus",
    "cpu-period": "CpuPeriod", "cpu-quota": "CpuQuota", "cpuset-cpus": "CpusetCpus",
    "cpuset-mems": "CpusetMems", "blkio-weight": "BlkioWeight",
    "blkio-weight-device": "BlkioWeightDevice", "device-read-bps": "BlkioDeviceReadBps",
    "device-write-bps": "BlkioDeviceWriteBps", "device-read-iops": "BlkioDeviceReadIOps",
    "device-write-iops": "BlkioDeviceWriteIOps", "ulimit": "Ulimits", "shm-size": "ShmSize",
}


def parse_cpu_list(text: str) -> set[int]:
    """"0-2,4" → {0, 1, 2, 4}; ValueError("invalid format: ...") as Docker's parser."""
    out: set[int] = set()
    if text == "":
        return out
    import re
    for part in text.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"invalid format: {text}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise ValueError(f"invalid range format: {part}")
        out.update(range(lo, hi + 1))
    return out


def _check_available(requested: str, available: str, what: str, label: str) -> None:
    if not requested:
        return
    try:
        want = parse_cpu_list(requested)
    except ValueError as e:
        raise ResourceError(f"Invalid value {requested} for {label}: {e}") from None
    if not want <= parse_cpu_list(available):
        raise ResourceError(f"Requested {what} are not available - requested {requested}, "
                            f"available: {available}")


def _validate(hc: dict, host: HostInfo, update: bool) -> list[str]:
    """Docker's verifyPlatformContainerResources: errors raise, discards become warnings."""
    warns: list[str] = []
    if hc["MemorySwappiness"] is not None and hc["MemorySwappiness"] == -1:
        hc["MemorySwappiness"] = None
    if hc["Memory"] != 0 and hc["Memory"] < MIN_MEMORY:
        raise ResourceError("Minimum memory limit allowed is 6MB")
    if hc["Memory"] > 0 and not host.memory:
        warns.append("Your kernel does not support memory limit capabilities or the cgroup "
                     "is not mounted. Limitation discarded.")
        hc["Memory"], hc["MemorySwap"] = 0, -1
    if hc["Memory"] > 0 and hc["MemorySwap"] != -1 and not host.swap:
        warns.append("Your kernel does not support swap limit capabilities or the cgroup is "
                     "not mounted. Memory limited without swap.")
        hc["MemorySwap"] = -1
    if hc["Memory"] > 0 and hc["MemorySwap"] > 0 and hc["MemorySwap"] < hc["Memory"]:
        raise ResourceError("Minimum memoryswap limit should be larger than memory limit, "
                            "see usage")
    if hc["Memory"] == 0 and hc["MemorySwap"] > 0 and not update:
        raise ResourceError("You should always set the Memory limit when using Memoryswap "
                            "limit, see usage")
    if hc["MemorySwappiness"] is not None and not host.swappiness:
        warns.append("Your kernel does not support memory swappiness capabilities or the "
                     "cgroup is not mounted. Memory swappiness discarded.")
        hc["MemorySwappiness"] = None
    if hc["MemorySwappiness"] is not None and not 0 <= hc["MemorySwappiness"] <= 100:
        raise ResourceError(f"Invalid value: {hc['MemorySwappiness']}, valid memory "
                            "swappiness range is 0-100")
    if hc["MemoryReservation"] > 0 and not host.reservation:
        warns.append("Your kernel does not support memory soft limit capabilities or the "
                     "cgroup is not mounted. Limitation discarded.")
        hc["MemoryReservation"] = 0
    if 0 < hc["MemoryReservation"] < MIN_MEMORY:
        raise ResourceError("Minimum memory reservation allowed is 6MB")
    if hc["Memory"] > 0 and hc["MemoryReservation"] > 0 and \
            hc["Memory"] < hc["MemoryReservation"]:
        raise ResourceError("Minimum memory limit can not be less than memory reservation "
                            "limit, see usage")
    if hc["KernelMemory"]:
        # Docker only warned; the kernels it runs on now refuse kmem limits outright.
        raise ResourceError("Kernel memory limit is not supported by current kernels "
                            "(--kernel-memory)")
    if hc["OomKillDisable"] and not host.oom_kill_disable:
        warns.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        hc["OomKillDisable"] = False
    if hc["OomKillDisable"] and hc["Memory"] == 0:
        warns.append("OOM killer is disabled for the container, but no memory limit is set, "
                     "this can result in the system running out of resources.")
    if hc["PidsLimit"] is not None and not host.pids:
        if hc["PidsLimit"] > 0:
            warns.append("Your kernel does not support PIDs limit capabilities or the cgroup "
                         "is not mounted. PIDs limit discarded.")
        hc["PidsLimit"] = None

    if hc["CpuShares"] < 0:
        raise ResourceError("shares: invalid argument")
    if hc["NanoCpus"] > 0 and hc["CpuPeriod"] > 0:
        raise ResourceError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if hc["NanoCpus"] > 0 and hc["CpuQuota"] > 0:
        raise ResourceError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if hc["NanoCpus"] > 0 and not host.cpu_cfs:
        raise ResourceError("NanoCPUs can not be set, as your kernel does not support CPU CFS "
                            "scheduler or the cgroup is not mounted")
    # Below 0.01 CPU the quota would be under the kernel's 1ms minimum (cpu.cfs_quota_us
    # refuses it); Docker's message already names 0.01 as the floor.
    if hc["NanoCpus"] < 0 or 0 < hc["NanoCpus"] < 10_000_000 or \
            hc["NanoCpus"] > host.ncpu * 1_000_000_000:
        raise ResourceError(f"Range of CPUs is from 0.01 to {host.ncpu}.00, as there are only "
                            f"{host.ncpu} CPUs available")
    if hc["CpuShares"] > 0 and not host.cpu_shares:
        warns.append("Your kernel does not support CPU shares or the cgroup is not mounted. "
                     "Shares discarded.")
        hc["CpuShares"] = 0
    if (hc["CpuPeriod"] or hc["CpuQuota"]) and not host.cpu_cfs:
        warns.append("Your kernel does not support CPU CFS scheduler. CPU period/quota "
                     "discarded.")
        hc["CpuPeriod"] = hc["CpuQuota"] = 0
    if hc["CpuPeriod"] and not 1000 <= hc["CpuPeriod"] <= 1000000:
        raise ResourceError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                            "than 1s (i.e. 1000000)")
    if 0 < hc["CpuQuota"] < 1000:
        raise ResourceError("CPU cfs quota can not be less than 1ms (i.e. 1000)")

    if (hc["CpusetCpus"] or hc["CpusetMems"]) and not host.cpuset:
        warns.append("Your kernel does not support cpuset or the cgroup is not mounted. "
                     "Cpuset discarded.")
        hc["CpusetCpus"] = hc["CpusetMems"] = ""
    _check_available(hc["CpusetCpus"], host.cpus, "CPUs", "cpuset cpus")
    _check_available(hc["CpusetMems"], host.mems, "memory nodes", "cpuset mems")

    if hc["BlkioWeight"] > 0 and not host.blkio_weight:
        warns.append("Your kernel does not support Block I/O weight or the cgroup is not "
                     "mounted. Weight discarded.")
        hc["BlkioWeight"] = 0
    if hc["BlkioWeight"] > 0 and not 10 <= hc["BlkioWeight"] <= 1000:
        raise ResourceError("Range of blkio weight is from 10 to 1000")
    if hc["BlkioWeightDevice"] and not host.blkio_weight_device:
        warns.append("Your kernel does not support Block I/O weight_device or the cgroup is "
                     "not mounted. Weight-device discarded.")
        hc["BlkioWeightDevice"] = []
    for key, what in (("BlkioDeviceReadBps", "BPS Block I/O read limit or the cgroup is not "
                       "mounted. Block I/O BPS read limit discarded."),
                      ("BlkioDeviceWriteBps", "BPS Block I/O write limit or the cgroup is not "
                       "mounted. Block I/O BPS write limit discarded."),
                      ("BlkioDeviceReadIOps", "IOPS Block read limit or the cgroup is not "
                       "mounted. Block I/O IOPS read limit discarded."),
                      ("BlkioDeviceWriteIOps", "IOPS Block write limit or the cgroup is not "
                       "mounted. Block I/O IOPS write limit discarded.")):
        if hc[key] and not host.blkio_throttle:
            warns.append(f"Your kernel does not support {what}")
            hc[key] = []
    if hc["ShmSize"] < 0:
        raise ResourceError("SHM size can not be less than 0")
    return [f"WARNING: {w}" for w in warns]


def _device_numbers(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        # Docker's daemon fails the start with the stat error; its CLI exits 127 for it.
        raise ResourceError(f"stat {path}: {os.strerror(e.errno).lower()}", 127) from None
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return os.major(st.st_rdev), os.minor(st.st_rdev)
    return 0, 0


def _to_oci(hc: dict) -> dict:
    """HostConfig resource fields → OCI linux.resources (only what is set)."""
    r: dict = {}
    mem: dict = {}
    if hc["Memory"]:
        mem["limit"] = hc["Memory"]
    if hc["MemorySwap"]:
        mem["swap"] = hc["MemorySwap"]
    if hc["MemoryReservation"]:
        mem["reservation"] = hc["MemoryReservation"]
    if hc["MemorySwappiness"] is not None:
        mem["swappiness"] = hc["MemorySwappiness"]
    if hc["OomKillDisable"]:
        mem["disableOOMKiller"] = True
    if mem:
        r["memory"] = mem
    cpu: dict = {}
    if hc["CpuShares"]:
        cpu["shares"] = hc["CpuShares"]
    if hc["NanoCpus"]:
        cpu["period"] = DEFAULT_CPU_PERIOD
        cpu["quota"] = hc["NanoCpus"] * DEFAULT_CPU_PERIOD // 1_000_000_000
    if hc["CpuPeriod"]:
        cpu["period"] = hc["CpuPeriod"]
    if hc["CpuQuota"]:
        cpu["quota"] = hc["CpuQuota"]
    if hc["CpusetCpus"]:
        cpu["cpus"] = hc["CpusetCpus"]
    if hc["CpusetMems"]:
        cpu["mems"] = hc["CpusetMems"]
    if cpu:
        r["cpu"] = cpu
    bio: dict = {}
    if hc["BlkioWeight"]:
        bio["weight"] = hc["BlkioWeight"]
    if hc["BlkioWeightDevice"]:
        bio["weightDevice"] = [dict(zip(("major", "minor"), _device_numbers(d["Path"])),
                                    weight=d["Weight"]) for d in hc["BlkioWeightDevice"]]
    for key, oci in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                     ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                     ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                     ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        if hc[key]:
            bio[oci] = [dict(zip(("major", "minor"), _device_numbers(d["Path"])),
                             rate=d["Rate"]) for d in hc[key]]
    if bio:
        r["blockIO"] = bio
    if hc["PidsLimit"] is not None:
        r["pids"] = {"limit": hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1}
    return r


def _rlimits(ulimits: list[dict]) -> list[dict]:
    # -1 is "unlimited": RLIM_INFINITY as the unsigned value the kernel uses.
    unsigned = lambda v: v if v >= 0 else (1 << 64) - 1  # noqa: E731
    return [{"type": RLIMITS[u["Name"]], "hard": unsigned(u["Hard"]),
             "soft": unsigned(u["Soft"])} for u in ulimits]


def _apply_flags(hc: dict, opts: dict) -> None:
    for name, value in opts.items():
        if name in _HC_FIELDS:
            hc[_HC_FIELDS[name]] = value
    if "ulimit" in opts:
        # Later --ulimit flags for the same resource replace earlier ones.
        by_name = {u["Name"]: u for u in opts["ulimit"]}
        hc["Ulimits"] = list(by_name.values())
    if "memory-swappiness" in opts:
        hc["MemorySwappiness"] = None if opts["memory-swappiness"] == -1 \
            else opts["memory-swappiness"]
    if "oom-kill-disable" in opts:
        hc["OomKillDisable"] = bool(opts["oom-kill-disable"])
    if "pids-limit" in opts:
        # 0 means "not set" for the CLI; negative means unlimited.
        hc["PidsLimit"] = opts["pids-limit"] if opts["pids-limit"] > 0 else \
            (None if opts["pids-limit"] == 0 else -1)


def parse_resources(flags: dict, *, host: HostInfo | None = None) -> Resources:
    """Docker's `run`/`create` resource flags → Resources (see the module doc)."""
    host = host or host_info()
    opts = _convert(flags, _BY_NAME)
    hc = default_host_config()
    _apply_flags(hc, opts)
    if hc["ShmSize"] == 0:
        hc["ShmSize"] = DEFAULT_SHM_SIZE
    warnings = _validate(hc, host, update=False)
    if hc["Memory"] > 0 and hc["MemorySwap"] == 0:
        # Docker's default: as much swap as memory (memory + swap = 2 × memory).
        hc["MemorySwap"] = hc["Memory"] * 2
    if hc["PidsLimit"] is not None and hc["PidsLimit"] <= 0:
        hc["PidsLimit"] = None
    return Resources(_to_oci(hc), _rlimits(hc["Ulimits"]), hc, hc["ShmSize"], warnings)


def update_resources(flags: dict, current: dict, *, host: HostInfo | None = None,
                     cid: str | None = None) -> Resources:
    """`docker update` flags on top of a container's HostConfig (`current`).

    Returns the merged resource fields in .host_config and the OCI linux.resources to apply
    to the running container. Fields not given keep their value. With the container's full
    id (`cid`), a conflict with its current limits reads as Docker's "Cannot update
    container <id>: Conflicting options: ...".
    """
    host = host or host_info()
    opts = _convert(flags, UPDATE_FLAGS)
    hc = default_host_config()
    hc.update({k: v for k, v in current.items() if k in hc})
    # Docker checks these against the stored config (container.UpdateContainer) after
    # validation, and wraps them as a failed update of that container.
    prefix = f"Cannot update container {cid}: " if cid else ""
    if opts.get("memory") and opts["memory"] > hc["MemorySwap"] > 0 \
            and not opts.get("memory-swap"):
        raise ResourceError(f"{prefix}Conflicting options: Memory limit should be smaller "
                            "than already set memoryswap limit, update the memoryswap at the "
                            "same time")
    if opts.get("cpus") and hc["CpuQuota"] > 0:
        raise ResourceError(f"{prefix}Conflicting options: Nano CPUs cannot be updated as CPU "
                            "Quota has already been set")
    if opts.get("cpu-quota") and hc["NanoCpus"] > 0:
        raise ResourceError(f"{prefix}Conflicting options: CPU Quota cannot be updated as "
                            "NanoCPUs has already been set")
    # Zero values mean "leave as is" in Docker's update, except for --pids-limit, where
    # any value given counts and 0 or -1 lift the limit.
    pids = opts.pop("pids-limit", None)
    _apply_flags(hc, {k: v for k, v in opts.items() if v not in (0, "", None)})
    if pids is not None:
        hc["PidsLimit"] = pids if pids > 0 else None
    warnings = _validate(hc, host, update=True)
    linux = _to_oci(hc)
    if pids is not None and pids <= 0:
        linux["pids"] = {"limit": -1}
    return Resources(linux, _rlimits(hc["Ulimits"]), hc, hc["ShmSize"], warnings)
