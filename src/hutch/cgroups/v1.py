"""The cgroup v1 driver: one directory per controller, `<mount>/<path>`.

Used on legacy hosts and on hybrid ones (v1 controllers plus a cgroup2 mount): there the
process also joins `<cgroup2 mount>/<path>`, as runc does, and a controller that only the
cgroup2 mount has (hugetlb on this project's host) is driven there with v2 file names.
"""
from __future__ import annotations

import os
import time

from hutch import trace
from hutch.cgroups import devices as devrules
from hutch.cgroups import fs
from hutch.cgroups.base import CgroupManager, limit_value
from hutch.cgroups.fs import CgroupError
from hutch.cgroups.mounts import Mounts


class V1Manager(CgroupManager):
    version = 1

    def __init__(self, path: str, mounts: Mounts, inner_paths: dict[str, str] | None = None):
        """`inner_paths` (controller -> path) overrides `path` per controller, for relative
        cgroupsPaths that are resolved against the caller's own cgroup in each hierarchy."""
        super().__init__(path)
        self.mounts = mounts
        inner_paths = inner_paths or {}
        self._paths = {c: os.path.join(m, inner_paths.get(c, path).lstrip("/"))
                       for c, m in mounts.v1.items()}
        self._unified = None
        if mounts.unified:
            self._unified = os.path.join(mounts.unified, inner_paths.get("", path).lstrip("/"))

    def add_process(self, pid: int, joined: tuple[str, ...] = ()) -> None:
        for d in self._dirs():
            if d in joined or d == self._unified and not os.path.isdir(d):
                continue    # joined by itself, or not created (see create())
            fs.write(os.path.join(d, "cgroup.procs"), pid)

    def birth_dir(self, make: bool = True) -> str | None:
        """The cgroup2 side of a hybrid host (where it is writable: see create())."""
        if not self._unified:
            return None
        if not make:
            return self._unified if os.path.isdir(self._unified) else None
        try:
            self._makedirs(self.mounts.unified, self._unified, [])
        except CgroupError as e:
            trace.step("cgroup", f"cgroup2 directory skipped: {e}")
            return None
        return self._unified

    def self_join_files(self) -> dict[str, str]:
        # `tasks` moves one thread: all of a single-threaded process, and no threadgroup
        # to hold still, so the kernel skips the global lock (for "0", the writer itself).
        return {d: os.path.join(d, "tasks") for _, d in self.hierarchy_dirs()}

    def paths(self) -> dict[str, str]:
        out = dict(self._paths)
        if self._unified:
            out["unified"] = self._unified
        return out

    def hierarchy_dirs(self) -> list[tuple[str, str]]:
        """One (host mount's directory name, our directory) per v1 hierarchy, in the host's
        mount order: co-mounted controllers ("cpu,cpuacct") share one."""
        out: dict[str, str] = {}
        for controller, mount in self.mounts.v1.items():
            out.setdefault(os.path.basename(mount), self._paths[controller])
        return list(out.items())

    def _dir(self, controller: str, field: str | None = None) -> str | None:
        d = self._paths.get(controller)
        if d is None and field is not None:
            raise CgroupError(f'cgroup controller "{controller}" is not mounted: cannot set '
                              f"linux.resources.{field}")
        return d

    # --- lifecycle ---
    def create(self) -> None:
        created: list[str] = []
        try:
            for controller, d in self._paths.items():
                mount = self.mounts.v1[controller]
                if controller == "cpuset":
                    self._create_cpuset(mount, d, created)
                else:
                    self._makedirs(mount, d, created)
            if self._unified:
                try:
                    self._makedirs(self.mounts.unified, self._unified, created)
                except CgroupError as e:
                    # The cgroup2 side of a hybrid host holds no limits we need; a
                    # read-only or foreign cgroup2 mount must not stop the container.
                    trace.step("cgroup", f"cgroup2 directory skipped: {e}")
        except Exception:
            for d in reversed(created):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            raise

    @staticmethod
    def _levels(mount: str, d: str) -> list[str]:
        rel = os.path.relpath(d, mount)
        levels, cur = [], mount
        for part in rel.split(os.sep):
            if part in ("", "."):
                continue
            cur = os.path.join(cur, part)
            levels.append(cur)
        return levels

    def _makedirs(self, mount: str, d: str, created: list[str]) -> None:
        for level in self._levels(mount, d):
            if fs.mkdir(level):
                created.append(level)

    def _create_cpuset(self, mount: str, d: str, created: list[str]) -> None:
        # A new v1 cpuset starts with empty cpus and mems, and no task may join it until
        # both are set: fill each level from its parent, parents first.
        parent = mount
        for level in self._levels(mount, d):
            if fs.mkdir(level):
                created.append(level)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if fs.read_or(os.path.join(level, name), "x") == "":
                    fs.write(os.path.join(level, name), fs.read(os.path.join(parent, name)))
            parent = level

    def destroy(self) -> None:
        freezer = self._paths.get("freezer")
        if freezer and os.path.isdir(freezer) and fs.procs(freezer):
            # Freeze first so nothing forks between reading the pid list and the kill;
            # thaw so that the killed (frozen) tasks can run and die. A freeze that does
            # not complete must not stop the kill.
            try:
                self.freeze()
            except CgroupError as e:
                trace.step("cgroup", f"destroy without freezing: {e}")
            try:
                fs.kill_all(freezer)
            finally:
                self.thaw()
        self._kill_and_remove([d for d in self._dirs() if os.path.isdir(d)])

    # --- freezer ---
    def freeze(self) -> None:
        d = self._dir("freezer", "freezer")
        state = os.path.join(d, "freezer.state")
        deadline = time.monotonic() + 10
        pause = 0.0005
        while True:
            # FREEZING means some task has not stopped yet; writing FROZEN again retries.
            fs.write(state, "FROZEN")
            if fs.read(state) == "FROZEN":
                return
            if time.monotonic() > deadline:
                fs.write(state, "THAWED")
                raise CgroupError(f"failed to freeze {d}: tasks still running after 10s")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def thaw(self) -> None:
        d = self._dir("freezer", "freezer")
        fs.write(os.path.join(d, "freezer.state"), "THAWED")

    def is_frozen(self) -> bool:
        d = self._paths.get("freezer")
        return bool(d) and fs.read_or(os.path.join(d, "freezer.state")) == "FROZEN"

    # --- limits ---
    def apply(self, resources: dict) -> None:
        r = resources or {}
        if r.get("unified"):
            raise CgroupError("invalid configuration: cannot use unified on cgroup v1")
        if r.get("cpu"):
            self._apply_cpuset(r["cpu"])
            self._apply_cpu(r["cpu"])
        if r.get("memory"):
            self._apply_memory(r["memory"])
        if r.get("blockIO"):
            self._apply_blkio(r["blockIO"])
        if r.get("pids") and r["pids"].get("limit"):
            limit = int(r["pids"]["limit"])
            fs.write(os.path.join(self._dir("pids", "pids.limit"), "pids.max"),
                     limit if limit > 0 else "max")
        if r.get("hugepageLimits"):
            self._apply_hugetlb(r["hugepageLimits"])
        if r.get("network"):
            self._apply_network(r["network"])
        if r.get("rdma"):
            d = self._dir("rdma", "rdma")
            for name, lim in r["rdma"].items():
                fs.write(os.path.join(d, "rdma.max"), rdma_line(name, lim))
        if r.get("devices"):
            self._apply_devices(r["devices"])

    def _apply_cpuset(self, cpu: dict) -> None:
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            if cpu.get(key):
                fs.write(os.path.join(self._dir("cpuset", f"cpu.{key}"), name), cpu[key])

    def _apply_cpu(self, cpu: dict) -> None:
        wanted = [k for k in ("shares", "quota", "period", "realtimeRuntime",
                              "realtimePeriod", "burst", "idle") if cpu.get(k) is not None]
        if not wanted:
            return
        d = self._dir("cpu", f"cpu.{wanted[0]}")
        shares = cpu.get("shares")
        if shares:
            path = os.path.join(d, "cpu.shares")
            fs.write(path, shares)
            # The kernel clamps shares to [2, 262144]; runc reports the clamp as an error.
            got = fs.read_int(path)
            if shares > got:
                raise CgroupError(f"the maximum allowed cpu-shares is {got}")
            if shares < got:
                raise CgroupError(f"the minimum allowed cpu-shares is {got}")
        period, quota = cpu.get("period"), cpu.get("quota")
        period_file = os.path.join(d, "cpu.cfs_period_us")
        quota_file = os.path.join(d, "cpu.cfs_quota_us")
        if period:
            try:
                fs.write(period_file, period)
            except CgroupError as e:
                # A shorter period can clash with the current quota (EINVAL): set the
                # quota first, then the period.
                if not quota or e.errno != 22:
                    raise
                fs.write(quota_file, quota)
        if quota:
            fs.write(quota_file, quota)
        if cpu.get("burst") is not None:
            fs.write(os.path.join(d, "cpu.cfs_burst_us"), cpu["burst"])
        if cpu.get("realtimePeriod"):
            fs.write(os.path.join(d, "cpu.rt_period_us"), cpu["realtimePeriod"])
        if cpu.get("realtimeRuntime"):
            fs.write(os.path.join(d, "cpu.rt_runtime_us"), cpu["realtimeRuntime"])
        if cpu.get("idle") is not None:
            fs.write(os.path.join(d, "cpu.idle"), cpu["idle"])

    def _apply_memory(self, mem: dict) -> None:
        d = self._dir("memory", "memory")
        limit_file = os.path.join(d, "memory.limit_in_bytes")
        memsw_file = os.path.join(d, "memory.memsw.limit_in_bytes")
        limit = mem.get("limit") or 0
        swap = mem.get("swap") or 0
        if limit == -1 and swap == 0:
            # "memory unlimited" with no swap given means both unlimited.
            swap = -1
        if swap and not os.path.exists(memsw_file):
            raise CgroupError(f"cannot set linux.resources.memory.swap: {memsw_file} does not "
                              "exist (swap accounting is off)")
        # memory.limit must stay <= memsw.limit at every step, so the order of the two
        # writes depends on whether the limit grows or shrinks.
        if limit and swap and (swap == -1 or fs.read_int(limit_file) < swap):
            fs.write(memsw_file, swap)
            fs.write(limit_file, limit)
        else:
            if limit:
                fs.write(limit_file, limit)
            if swap:
                fs.write(memsw_file, swap)
        if mem.get("reservation"):
            fs.write(os.path.join(d, "memory.soft_limit_in_bytes"), mem["reservation"])
        if mem.get("kernel"):
            # As runc: kernel memory limits are gone from current kernels; ignored.
            trace.step("cgroup", "linux.resources.memory.kernel ignored (not supported)")
        if mem.get("kernelTCP"):
            fs.write(os.path.join(d, "memory.kmem.tcp.limit_in_bytes"), mem["kernelTCP"])
        swappiness = mem.get("swappiness")
        if swappiness is not None and swappiness != -1:
            if not 0 <= int(swappiness) <= 100:
                raise CgroupError(f"invalid value:{swappiness}. valid memory swappiness range "
                                  "is 0-100")
            fs.write(os.path.join(d, "memory.swappiness"), swappiness)
        if mem.get("disableOOMKiller"):
            fs.write(os.path.join(d, "memory.oom_control"), 1)
        if mem.get("useHierarchy"):
            fs.write(os.path.join(d, "memory.use_hierarchy"), 1)

    def _apply_blkio(self, bio: dict) -> None:
        d = self._dir("blkio", "blockIO")
        # Kernels with BFQ (and without CFQ) only have the blkio.bfq.* weight files.
        bfq = not os.path.exists(os.path.join(d, "blkio.weight"))
        weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
        if bio.get("weight"):
            fs.write(os.path.join(d, weight_file), bio["weight"])
        if bio.get("leafWeight"):
            fs.write(os.path.join(d, "blkio.leaf_weight"), bio["leafWeight"])
        for dev in bio.get("weightDevice") or ():
            if dev.get("weight"):
                fs.write(os.path.join(d, weight_file + "_device"),
                         f"{dev['major']}:{dev['minor']} {dev['weight']}")
            if dev.get("leafWeight"):
                fs.write(os.path.join(d, "blkio.leaf_weight_device"),
                         f"{dev['major']}:{dev['minor']} {dev['leafWeight']}")
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for dev in bio.get(key) or ():
                fs.write(os.path.join(d, f"blkio.throttle.{name}"),
                         f"{dev['major']}:{dev['minor']} {dev.get('rate', 0)}")

    def _apply_hugetlb(self, limits: list[dict]) -> None:
        d = self._paths.get("hugetlb")
        if d is not None:
            for h in limits:
                fs.write(os.path.join(d, f"hugetlb.{h['pageSize']}.limit_in_bytes"),
                         h["limit"])
            return
        # Hybrid host with hugetlb bound to the cgroup2 mount: drive it there.
        unified = self.mounts.unified
        if unified is None or "hugetlb" not in fs.read_or(
                os.path.join(unified, "cgroup.controllers"), "").split():
            raise CgroupError('cgroup controller "hugetlb" is not mounted: cannot set '
                              "linux.resources.hugepageLimits")
        for level in [unified] + self._levels(unified, self._unified)[:-1]:
            enabled = fs.read_or(os.path.join(level, "cgroup.subtree_control"), "").split()
            if "hugetlb" not in enabled:
                fs.write(os.path.join(level, "cgroup.subtree_control"), "+hugetlb")
        for h in limits:
            fs.write(os.path.join(self._unified, f"hugetlb.{h['pageSize']}.max"), h["limit"])

    def _apply_network(self, net: dict) -> None:
        if net.get("classID") is not None:
            fs.write(os.path.join(self._dir("net_cls", "network.classID"), "net_cls.classid"),
                     net["classID"])
        for prio in net.get("priorities") or ():
            fs.write(os.path.join(self._dir("net_prio", "network.priorities"),
                                  "net_prio.ifpriomap"), f"{prio['name']} {prio['priority']}")

    def _apply_devices(self, rules: list[dict]) -> None:
        d = self._dir("devices", "devices")
        try:
            parsed = devrules.parse_rules(rules)
        except ValueError as e:
            raise CgroupError(str(e)) from None
        for name, line in devrules.v1_lines(parsed):
            fs.write(os.path.join(d, name), line)

    # --- figures ---
    def oom_kill_count(self) -> int:
        d = self._paths.get("memory")
        if not d:
            return 0
        return fs.read_keyed(os.path.join(d, "memory.oom_control")).get("oom_kill", 0)

    def stats(self) -> dict:
        out: dict = {}
        acct = self._paths.get("cpuacct")
        cpu = self._paths.get("cpu")
        cpu_stat = fs.read_keyed(os.path.join(cpu, "cpu.stat")) if cpu else {}
        user = system = None
        if acct:
            # cpuacct.stat is in USER_HZ ticks.
            ticks = fs.read_keyed(os.path.join(acct, "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK")
            if ticks:
                user = ticks.get("user", 0) * 1_000_000_000 // hz
                system = ticks.get("system", 0) * 1_000_000_000 // hz
        out["cpu"] = {
            "usage_ns": fs.read_int(os.path.join(acct, "cpuacct.usage")) if acct else None,
            "user_ns": user, "system_ns": system,
            "nr_periods": cpu_stat.get("nr_periods"),
            "nr_throttled": cpu_stat.get("nr_throttled"),
            "throttled_ns": cpu_stat.get("throttled_time"),
        }
        mem = self._paths.get("memory")
        if mem:
            oom = fs.read_keyed(os.path.join(mem, "memory.oom_control"))
            out["memory"] = {
                "usage": fs.read_int(os.path.join(mem, "memory.usage_in_bytes")),
                "max_usage": fs.read_int(os.path.join(mem, "memory.max_usage_in_bytes")),
                "limit": limit_value(fs.read_int(os.path.join(mem, "memory.limit_in_bytes"))),
                "swap_limit": limit_value(fs.read_int(
                    os.path.join(mem, "memory.memsw.limit_in_bytes"))),
                "stat": fs.read_keyed(os.path.join(mem, "memory.stat")),
                "oom_kill": oom.get("oom_kill", 0),
            }
        blkio = self._paths.get("blkio")
        if blkio:
            out["blkio"] = blkio_entries(
                fs.read_or(os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive"), ""))
        pids = self._paths.get("pids")
        if pids:
            out["pids"] = {"current": fs.read_int(os.path.join(pids, "pids.current")),
                           "limit": limit_value(fs.read_int(os.path.join(pids, "pids.max")))}
        return out


def blkio_entries(text: str) -> dict:
    """v1 blkio.throttle.io_service_bytes ("254:0 Read 4096" lines) → totals and entries."""
    devices, read, write = [], 0, 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        op, value = parts[1], int(parts[2])
        devices.append({"major": major, "minor": minor, "op": op, "value": value})
        if op == "Read":
            read += value
        elif op == "Write":
            write += value
    return {"read_bytes": read, "write_bytes": write, "devices": devices}


def rdma_line(name: str, limit: dict) -> str:
    parts = [name]
    for key, field in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
        value = limit.get(key)
        parts.append(f"{field}={'max' if value is None else value}")
    return " ".join(parts)
