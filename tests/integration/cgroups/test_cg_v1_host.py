"""The v1 driver on this host's real hierarchy (v1 controllers; hybrid with cgroup2).

Each test works under /sys/fs/cgroup/<controller>/hutch-test-<random>/ and asserts that
nothing is left in any hierarchy afterwards.
"""
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cgtest  # noqa: E402

from hutch import cgroups  # noqa: E402
from hutch.cgroups import fs  # noqa: E402

pytestmark = [pytest.mark.root]

MODE = cgroups.detect_mode() if os.path.isdir("/sys/fs/cgroup") else "none"
needs_v1 = pytest.mark.skipif(MODE not in ("legacy", "hybrid"),
                              reason=f"needs a cgroup v1 host (this one is {MODE})")


@pytest.fixture
def cg():
    yield from cgtest.managed()


def read(m, ctrl, name):
    return fs.read(os.path.join(m.paths()[ctrl], name))


def block_device():
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram")):
            major, minor = open(f"/sys/block/{name}/dev").read().strip().split(":")
            return int(major), int(minor)
    pytest.skip("no block device")


@needs_v1
def test_every_controller_dir_and_cpuset_filled(cg):
    paths = cg.paths()
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "freezer", "devices"):
        assert os.path.isdir(paths[ctrl]), ctrl
        assert paths[ctrl].endswith(cg.path)
    root_cpus = fs.read("/sys/fs/cgroup/cpuset/cpuset.cpus")
    assert read(cg, "cpuset", "cpuset.cpus") == root_cpus
    assert fs.read(os.path.join(os.path.dirname(paths["cpuset"]), "cpuset.cpus")) == root_cpus
    if MODE == "hybrid":
        assert os.path.isdir(paths["unified"])


@needs_v1
def test_values_read_back(cg):
    major, minor = block_device()
    cg.apply({
        "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 209715200, "swap": 314572800, "reservation": 104857600,
                   "swappiness": 10, "disableOOMKiller": True},
        "blockIO": {"throttleWriteBpsDevice": [{"major": major, "minor": minor,
                                                "rate": 31457280}],
                    "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]},
        "pids": {"limit": 50},
    })
    assert read(cg, "cpu", "cpu.shares") == "512"
    assert read(cg, "cpu", "cpu.cfs_quota_us") == "150000"
    assert read(cg, "cpu", "cpu.cfs_period_us") == "100000"
    assert read(cg, "cpuset", "cpuset.cpus") == "0"
    assert read(cg, "memory", "memory.limit_in_bytes") == "209715200"
    assert read(cg, "memory", "memory.memsw.limit_in_bytes") == "314572800"
    assert read(cg, "memory", "memory.soft_limit_in_bytes") == "104857600"
    assert read(cg, "memory", "memory.swappiness") == "10"
    assert "oom_kill_disable 1" in read(cg, "memory", "memory.oom_control")
    assert read(cg, "blkio", "blkio.throttle.write_bps_device") == f"{major}:{minor} 31457280"
    assert read(cg, "blkio", "blkio.throttle.read_iops_device") == f"{major}:{minor} 100"
    assert read(cg, "pids", "pids.max") == "50"
    # Updating in place (what `hutch update` does), shrinking below the old limit.
    cg.apply({"memory": {"limit": 104857600, "swap": 157286400}, "pids": {"limit": -1},
              "cpu": {"quota": -1}})
    assert read(cg, "memory", "memory.limit_in_bytes") == "104857600"
    assert read(cg, "memory", "memory.memsw.limit_in_bytes") == "157286400"
    assert read(cg, "pids", "pids.max") == "max"
    assert read(cg, "cpu", "cpu.cfs_quota_us") == "-1"


@needs_v1
def test_cpu_shares_clamp_is_reported(cg):
    with pytest.raises(cgroups.CgroupError, match="the minimum allowed cpu-shares is 2"):
        cg.apply({"cpu": {"shares": 1}})


@needs_v1
def test_write_errors_name_path_and_value(cg):
    path = os.path.join(cg.paths()["pids"], "pids.max")
    with pytest.raises(cgroups.CgroupError) as e:
        fs.write(path, "lots")
    assert str(e.value) == f'failed to write "lots" to {path}: invalid argument'


@needs_v1
def test_freeze_and_thaw_a_real_process(cg):
    child = cgtest.Child(cg, lambda: signal.pause())
    try:
        child.start()
        assert cg.pids() == [child.pid]
        cg.freeze()
        assert cg.is_frozen()
        assert read(cg, "freezer", "freezer.state") == "FROZEN"
        cg.thaw()
        assert not cg.is_frozen()
        assert cg.pids() == [child.pid]
    finally:
        child.kill()


@needs_v1
def test_pids_limit_stops_forks(cg):
    cg.apply({"pids": {"limit": 4}})
    forked, status = cgtest.run_in(cg, lambda: cgtest.try_forks(10))
    # The child itself is one of the 4.
    assert forked == 3
    assert os.WIFEXITED(status)


@needs_v1
def test_oom_kill_is_counted(cg):
    cg.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    assert cg.oom_kill_count() == 0
    result, status = cgtest.run_in(cg, lambda: cgtest.allocate(128))
    assert result is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert cg.oom_kill_count() == 1
    assert cg.stats()["memory"]["oom_kill"] == 1


@needs_v1
def test_device_rules(cg):
    cg.apply({"devices": [{"allow": False, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
    assert read(cg, "devices", "devices.list").split("\n") == ["c 1:3 rwm", "c 1:5 r"]
    got, _ = cgtest.run_in(cg, lambda: cgtest.open_devices(
        [("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY),
         ("/dev/full", os.O_RDONLY)]))
    assert got == ["ok", "ok", "Operation not permitted", "Operation not permitted"]


@needs_v1
def test_stats_from_real_files(cg):
    cg.apply({"memory": {"limit": 256 << 20}, "pids": {"limit": 20}})
    cgtest.run_in(cg, lambda: (cgtest.burn_cpu(), cgtest.allocate(8))[1])
    s = cg.stats()
    assert s["cpu"]["usage_ns"] > 0
    assert s["memory"]["limit"] == 256 << 20 and s["memory"]["max_usage"] > 8 << 20
    assert s["pids"] == {"current": 0, "limit": 20}
    assert set(s["blkio"]) == {"read_bytes", "write_bytes", "devices"}
    assert "pressure" not in s


@needs_v1
def test_destroy_kills_processes_and_nested_cgroups():
    parent = cgtest.unique_parent()
    m = cgroups.manager(parent + "/c1")
    m.create()
    inner = cgroups.manager(parent + "/c1/nested")
    inner.create()
    kids = [cgtest.Child(m, lambda: signal.pause()), cgtest.Child(inner, lambda: signal.pause())]
    try:
        for k in kids:
            k.start()
        assert sorted(m.pids()) == sorted(k.pid for k in kids)
        m.destroy()
        for k in kids:
            status = k.wait()
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert not m.exists()
    finally:
        for k in kids:
            k.kill()
        m.destroy()
        cgtest.remove_parent(parent)
    assert cgtest.leftover_dirs(parent) == []


@needs_v1
def test_destroy_of_a_frozen_cgroup():
    parent = cgtest.unique_parent()
    m = cgroups.manager(parent + "/c1")
    m.create()
    child = cgtest.Child(m, lambda: signal.pause())
    try:
        child.start()
        m.freeze()
        m.destroy()
        assert os.WTERMSIG(child.wait()) == signal.SIGKILL
    finally:
        child.kill()
        m.destroy()
        cgtest.remove_parent(parent)
    assert cgtest.leftover_dirs(parent) == []


@pytest.mark.skipif(MODE != "hybrid", reason="needs a hybrid host (v1 + a cgroup2 mount)")
def test_hybrid_process_joins_the_cgroup2_dir_too(cg):
    child = cgtest.Child(cg, lambda: signal.pause())
    try:
        child.start()
        line = [ln for ln in open(f"/proc/{child.pid}/cgroup").read().splitlines()
                if ln.startswith("0::")]
        assert line == [f"0::{cg.path}"]
    finally:
        child.kill()


@pytest.mark.skipif(MODE != "hybrid", reason="needs a hybrid host (v1 + a cgroup2 mount)")
def test_hybrid_hugetlb_on_the_cgroup2_mount(cg):
    unified = cgroups.cgroup_mounts().unified
    if "hugetlb" not in fs.read(os.path.join(unified, "cgroup.controllers")).split():
        pytest.skip("hugetlb is not bound to the cgroup2 mount here")
    cg.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]})
    assert fs.read(os.path.join(cg.paths()["unified"], "hugetlb.2MB.max")) == str(4 << 20)


@pytest.mark.skipif(MODE != "hybrid", reason="needs a hybrid host (v1 + a cgroup2 mount)")
def test_bpf_device_filter_on_the_hybrid_cgroup2_mount():
    # The kernel runs cgroup2 device programs on hybrid hosts too, so the v2 device filter
    # can be proven here without the QEMU guest.
    from hutch._sys import bpf
    from hutch.cgroups.v2 import V2Manager
    parent = cgtest.unique_parent()
    m = V2Manager(parent, cgroups.cgroup_mounts().unified)
    m.create()
    try:
        rules = [{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
        m.apply({"devices": rules})
        m.apply({"devices": rules + [{"allow": True, "type": "c", "major": 1, "minor": 5,
                                      "access": "r"}]})
        fd = os.open(m.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert len(bpf.prog_query(fd)) == 1      # replaced, not stacked
        finally:
            os.close(fd)
        got, _ = cgtest.run_in(m, lambda: cgtest.open_devices(
            [("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY),
             ("/dev/full", os.O_RDONLY)]))
        assert got == ["ok", "ok", "Operation not permitted", "Operation not permitted"]
    finally:
        m.destroy()
    assert cgtest.leftover_dirs(parent) == []


@needs_v1
def test_cpu_shares_split_cpu_time_two_to_one():
    # Two busy children pinned to one CPU, -c 1024 vs -c 512: the kernel gives them CPU time
    # 2:1. Measured over an amount of CPU time (not wall time), so host load cannot skew it.
    import time
    parent = cgtest.unique_parent()
    hi, lo = cgroups.manager(parent + "/hi"), cgroups.manager(parent + "/lo")
    kids = []
    try:
        for m, shares in ((hi, 1024), (lo, 512)):
            m.create()
            m.apply({"cpu": {"shares": shares, "cpus": "0"}})
        kids = [cgtest.Child(hi, cgtest.spin), cgtest.Child(lo, cgtest.spin)]
        for k in kids:
            k.start()
        usage = lambda m: m.stats()["cpu"]["usage_ns"]  # noqa: E731
        deadline = time.monotonic() + 60
        while usage(hi) + usage(lo) < 600_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        ratio = usage(hi) / max(usage(lo), 1)
        assert 1.6 < ratio < 2.5, ratio
    finally:
        for k in kids:
            k.kill()
        for m in (hi, lo):
            m.destroy()
        cgtest.remove_parent(parent)
    assert cgtest.leftover_dirs(parent) == []


def test_prime_attach_in_thread_is_a_no_op_that_closes_its_fd():
    with open("/proc/self/cgroup") as f:
        before = f.read()
    fds = set(os.listdir("/proc/self/fd"))
    cgroups.prime_attach_in_thread()
    for _ in range(500):    # the thread closes its fd once its write returns
        if set(os.listdir("/proc/self/fd")) <= fds:
            break
        time.sleep(0.01)
    assert set(os.listdir("/proc/self/fd")) <= fds
    with open("/proc/self/cgroup") as f:
        assert f.read() == before
