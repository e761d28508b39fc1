"""The cgroup v2 driver: one directory, `<cgroup2 mount>/<path>`.

A controller works in a cgroup only if every ancestor lists it in cgroup.subtree_control,
so create() enables the available controllers level by level. Values arrive in OCI's
v1-style units and are converted (hutch.cgroups.convert).
"""
from __future__ import annotations

import os
import time

from hutch import trace
from hutch.cgroups import convert
from hutch.cgroups import devices as devrules
from hutch.cgroups import fs
from hutch.cgroups.base import CgroupManager, limit_value
from hutch.cgroups.fs import CgroupError
from hutch.cgroups.v1 import rdma_line


class V2Manager(CgroupManager):
    version = 2

    def __init__(self, path: str, mount: str):
        super().__init__(path)
        self.mount = mount
        self.dir = os.path.join(mount, path.lstrip("/"))

    def paths(self) -> dict[str, str]:
        return {"": self.dir}

    def hierarchy_dirs(self) -> list[tuple[str, str]]:
        return [("", self.dir)]

    def _file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # --- lifecycle ---
    def create(self) -> None:
        levels, cur = [], self.mount
        for part in os.path.relpath(self.dir, self.mount).split(os.sep):
            if part not in ("", "."):
                cur = os.path.join(cur, part)
                levels.append(cur)
        created = []
        try:
            parent = self.mount
            for level in levels:
                enable_controllers(parent)
                if fs.mkdir(level):
                    created.append(level)
                parent = level
        except Exception:
            for d in reversed(created):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise

    def birth_dir(self, make: bool = True) -> str | None:
        if make:
            self.create()
        return self.dir if make or os.path.isdir(self.dir) else None

    def destroy(self) -> None:
        if not os.path.isdir(self.dir):
            return
        kill = self._file("cgroup.kill")
        if os.path.exists(kill):
            # cgroup.kill (5.14+) kills the whole subtree atomically, no fork race.
            fs.write(kill, 1)
        elif fs.procs(self.dir):
            try:
                self.freeze()
            except CgroupError as e:
                trace.step("cgroup", f"destroy without freezing: {e}")
            try:
                fs.kill_all(self.dir)
            finally:
                self.thaw()
        self._kill_and_remove([self.dir])

    # --- freezer ---
    def freeze(self) -> None:
        fs.write(self._file("cgroup.freeze"), 1)
        self._wait_frozen(True)

    def thaw(self) -> None:
        fs.write(self._file("cgroup.freeze"), 0)
        self._wait_frozen(False)

    def _wait_frozen(self, frozen: bool) -> None:
        # cgroup.freeze only asks; cgroup.events says "frozen 1" once every task stopped.
        deadline = time.monotonic() + 10
        pause = 0.0005
        while self.is_frozen() != frozen:
            if time.monotonic() > deadline:
                raise CgroupError(f"failed to {'freeze' if frozen else 'thaw'} {self.dir}: "
                                  "cgroup.events did not change within 10s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def is_frozen(self) -> bool:
        return fs.read_keyed(self._file("cgroup.events")).get("frozen") == 1

    # --- limits ---
    def apply(self, resources: dict) -> None:
        r = resources or {}
        if r.get("cpu"):
            self._apply_cpu(r["cpu"])
        if r.get("memory"):
            self._apply_memory(r["memory"])
        if r.get("blockIO"):
            self._apply_io(r["blockIO"])
        if r.get("pids") and r["pids"].get("limit"):
            fs.write(self._file("pids.max"), convert.limit_str(int(r["pids"]["limit"])))
        for h in r.get("hugepageLimits") or ():
            fs.write(self._file(f"hugetlb.{h['pageSize']}.max"), h["limit"])
        for name, lim in (r.get("rdma") or {}).items():
            fs.write(self._file("rdma.max"), rdma_line(name, lim))
        if r.get("network"):
            raise CgroupError("linux.resources.network is not supported on cgroup v2 "
                              "(net_cls and net_prio are v1-only controllers)")
        for key, value in (r.get("unified") or {}).items():
            if "/" in key or key.startswith("."):
                raise CgroupError(f"linux.resources.unified: invalid file name {key!r}")
            fs.write(self._file(key), value)
        if r.get("devices"):
            self._apply_devices(r["devices"])

    def _apply_cpu(self, cpu: dict) -> None:
        if cpu.get("shares"):
            fs.write(self._file("cpu.weight"), convert.cpu_shares_to_weight(int(cpu["shares"])))
        if cpu.get("idle") is not None:
            fs.write(self._file("cpu.idle"), cpu["idle"])
        cpu_max = convert.cpu_max(cpu.get("quota"), cpu.get("period"))
        if cpu_max:
            fs.write(self._file("cpu.max"), cpu_max)
        if cpu.get("burst") is not None:
            fs.write(self._file("cpu.max.burst"), cpu["burst"])
        if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
            raise CgroupError("linux.resources.cpu.realtimeRuntime/realtimePeriod are not "
                              "supported on cgroup v2")
        if cpu.get("cpus"):
            fs.write(self._file("cpuset.cpus"), cpu["cpus"])
        if cpu.get("mems"):
            fs.write(self._file("cpuset.mems"), cpu["mems"])

    def _apply_memory(self, mem: dict) -> None:
        try:
            swap = convert.memory_swap_max(mem.get("swap"), mem.get("limit"))
        except ValueError as e:
            raise CgroupError(f"linux.resources.memory.swap: {e}") from None
        if swap is not None:
            path = self._file("memory.swap.max")
            value = convert.limit_str(swap)
            if os.path.exists(path):
                fs.write(path, value)
            elif value not in ("max", "0"):
                # Without swap accounting "unlimited" and "none" are already true.
                raise CgroupError(f'failed to write "{value}" to {path}: '
                                  "no such file or directory (swap accounting is off)")
        if mem.get("limit"):
            fs.write(self._file("memory.max"), convert.limit_str(int(mem["limit"])))
        if mem.get("reservation"):
            fs.write(self._file("memory.low"), convert.limit_str(int(mem["reservation"])))
        if mem.get("kernel"):
            trace.step("cgroup", "linux.resources.memory.kernel ignored (not supported)")
        if mem.get("kernelTCP"):
            raise CgroupError("linux.resources.memory.kernelTCP is not supported on cgroup v2")
        if mem.get("swappiness") is not None and int(mem["swappiness"]) != -1:
            raise CgroupError("linux.resources.memory.swappiness is not supported on cgroup v2")
        if mem.get("disableOOMKiller"):
            raise CgroupError("linux.resources.memory.disableOOMKiller is not supported on "
                              "cgroup v2")

    def _apply_io(self, bio: dict) -> None:
        # With BFQ the weight goes to io.bfq.weight in blkio's own 1..1000 range.
        bfq = os.path.exists(self._file("io.bfq.weight"))
        if bio.get("weight"):
            if bfq:
                fs.write(self._file("io.bfq.weight"), bio["weight"])
            else:
                fs.write(self._file("io.weight"),
                         f"default {convert.blkio_weight_to_io_weight(int(bio['weight']))}")
        for dev in bio.get("weightDevice") or ():
            if not dev.get("weight"):
                continue
            w = dev["weight"] if bfq else convert.blkio_weight_to_io_weight(int(dev["weight"]))
            fs.write(self._file("io.bfq.weight" if bfq else "io.weight"),
                     f"{dev['major']}:{dev['minor']} {w}")
        for line in convert.io_max_lines(bio):
            fs.write(self._file("io.max"), line)

    def _apply_devices(self, rules: list[dict]) -> None:
        from hutch._sys import bpf
        try:
            program = devrules.bpf_program(devrules.parse_rules(rules))
        except ValueError as e:
            raise CgroupError(str(e)) from None
        trace.step("cgroup", f"bpf device program ({len(program) // 8} insns) -> {self.dir}")
        dirfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            old = bpf.prog_query(dirfd)
            prog = bpf.prog_load_cgroup_device(program)
            try:
                bpf.prog_attach(dirfd, prog)
            finally:
                os.close(prog)
            # Replace, never stack: the new program is in place before the old ones go,
            # so there is no moment without a filter.
            for prog_id in old:
                fd = bpf.prog_get_fd_by_id(prog_id)
                try:
                    bpf.prog_detach(dirfd, fd)
                finally:
                    os.close(fd)
        except OSError as e:
            raise CgroupError(f"failed to set the device filter on {self.dir}: "
                              f"{e.strerror or e}") from None
        finally:
            os.close(dirfd)

    # --- figures ---
    def oom_kill_count(self) -> int:
        return fs.read_keyed(self._file("memory.events")).get("oom_kill", 0)

    def stats(self) -> dict:
        cpu = fs.read_keyed(self._file("cpu.stat"))
        usec = lambda k: cpu[k] * 1000 if k in cpu else None  # noqa: E731
        out: dict = {
            "cpu": {"usage_ns": usec("usage_usec"), "user_ns": usec("user_usec"),
                    "system_ns": usec("system_usec"), "nr_periods": cpu.get("nr_periods"),
                    "nr_throttled": cpu.get("nr_throttled"),
                    "throttled_ns": usec("throttled_usec")},
        }
        if os.path.exists(self._file("memory.current")):
            out["memory"] = {
                "usage": fs.read_int(self._file("memory.current")),
                "max_usage": fs.read_int(self._file("memory.peak")),
                "limit": limit_value(fs.read_int(self._file("memory.max"))),
                "swap_limit": limit_value(fs.read_int(self._file("memory.swap.max"))),
                "stat": fs.read_keyed(self._file("memory.stat")),
                "oom_kill": self.oom_kill_count(),
            }
        out["blkio"] = io_stat_entries(fs.read_or(self._file("io.stat"), ""))
        if os.path.exists(self._file("pids.current")):
            out["pids"] = {"current": fs.read_int(self._file("pids.current")),
                           "limit": limit_value(fs.read_int(self._file("pids.max")))}
        out["pressure"] = {k: fs.read_pressure(self._file(f"{k}.pressure"))
                           for k in ("cpu", "memory", "io")}
        return out


def enable_controllers(directory: str) -> None:
    """Enable in `directory`'s cgroup.subtree_control every controller it has available."""
    available = fs.read_or(os.path.join(directory, "cgroup.controllers"), "").split()
    enabled = fs.read_or(os.path.join(directory, "cgroup.subtree_control"), "").split()
    missing = [c for c in available if c not in enabled]
    if not missing:
        return
    path = os.path.join(directory, "cgroup.subtree_control")
    try:
        fs.write(path, " ".join(f"+{c}" for c in missing))
    except CgroupError:
        # One controller may refuse (e.g. cpu while a realtime task runs): enable the
        # others one by one and let that one stay off, as runc does.
        for c in missing:
            try:
                fs.write(path, f"+{c}")
            except CgroupError as e:
                trace.step("cgroup", f"controller {c} not enabled in {directory}: {e}")


def io_stat_entries(text: str) -> dict:
    """v2 io.stat ("254:0 rbytes=N wbytes=N rios=N ...") → totals and entries."""
    devices, read, write = [], 0, 0
    for line in text.splitlines():
        dev, *fields = line.split()
        if ":" not in dev:
            continue
        major, minor = (int(x) for x in dev.split(":"))
        for field in fields:
            key, _, value = field.partition("=")
            if not value.isdigit():
                continue
            devices.append({"major": major, "minor": minor, "op": key, "value": int(value)})
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return {"read_bytes": read, "write_bytes": write, "devices": devices}
