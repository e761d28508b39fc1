"""The v2 driver on a real, pure cgroup v2 hierarchy (the QEMU guest: scripts/test-v2.sh).

Skipped anywhere else. The guest runs Python ~14x slower, so each test does one thing
with plain forked children (no container engine needed).
"""
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                "integration", "cgroups"))
import cgtest  # noqa: E402

from hutch import cgroups  # noqa: E402
from hutch.cgroups import fs  # noqa: E402

MODE = cgroups.detect_mode() if os.path.isdir("/sys/fs/cgroup") else "none"
pytestmark = [pytest.mark.cgroup_v2, pytest.mark.root,
              pytest.mark.skipif(MODE != "unified",
                                 reason=f"needs a pure cgroup v2 host (this one is {MODE})")]


@pytest.fixture
def cg():
    yield from cgtest.managed()


def read(m, name):
    return fs.read(os.path.join(m.dir, name))


def test_create_enables_controllers(cg):
    assert cg.version == 2
    parent = os.path.dirname(cg.dir)
    enabled = set(fs.read(os.path.join(parent, "cgroup.subtree_control")).split())
    assert {"cpu", "memory", "pids", "io", "cpuset"} <= enabled
    assert {"cpu", "memory", "pids"} <= set(read(cg, "cgroup.controllers").split())


def test_values_written(cg):
    cg.apply({
        "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 209715200, "swap": 314572800, "reservation": 104857600},
        "pids": {"limit": 50},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        "unified": {"memory.high": "188743680"},
    })
    assert read(cg, "cpu.weight") == "59"
    assert read(cg, "cpu.max") == "150000 100000"
    assert read(cg, "cpuset.cpus") == "0" and read(cg, "cpuset.mems") == "0"
    assert read(cg, "memory.max") == "209715200"
    assert read(cg, "memory.swap.max") == "104857600"
    assert read(cg, "memory.low") == "104857600"
    assert read(cg, "memory.high") == "188743680"
    assert read(cg, "pids.max") == "50"
    assert read(cg, "hugetlb.2MB.max") == str(4 << 20)
    if os.path.exists(os.path.join(cg.dir, "io.weight")):
        cg.apply({"blockIO": {"weight": 500}})
        assert read(cg, "io.weight").splitlines()[0] == "default 4950"
    # An update, as `hutch update` does it: lifting limits writes "max".
    cg.apply({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1,
                                                                     "period": 100000}})
    assert read(cg, "memory.max") == "max" and read(cg, "memory.swap.max") == "max"
    assert read(cg, "pids.max") == "max" and read(cg, "cpu.max") == "max 100000"


def test_freeze_and_thaw(cg):
    child = cgtest.Child(cg, lambda: signal.pause())
    try:
        child.start()
        assert cg.pids() == [child.pid]
        cg.freeze()
        assert cg.is_frozen() and "frozen 1" in read(cg, "cgroup.events")
        cg.thaw()
        assert not cg.is_frozen()
    finally:
        child.kill()


def test_pids_max_stops_forks(cg):
    cg.apply({"pids": {"limit": 3}})
    forked, _ = cgtest.run_in(cg, lambda: cgtest.try_forks(6))
    assert forked == 2


def test_memory_max_oom_kill_is_counted(cg):
    cg.apply({"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    result, status = cgtest.run_in(cg, lambda: cgtest.allocate(96))
    assert result is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert cg.oom_kill_count() == 1
    s = cg.stats()
    assert s["memory"]["oom_kill"] == 1 and s["memory"]["limit"] == 32 << 20
    assert s["pressure"]["memory"]["some"]["total"] >= 0
    assert s["cpu"]["usage_ns"] > 0


def test_device_program_blocks_open(cg):
    cg.apply({"devices": [{"allow": False, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                          {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]})
    got, _ = cgtest.run_in(cg, lambda: cgtest.open_devices(
        [("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY),
         ("/dev/full", os.O_RDONLY)]))
    assert got == ["ok", "ok", "Operation not permitted", "Operation not permitted"]
    # Applying again replaces the program (one attached, never stacked).
    from hutch._sys import bpf
    cg.apply({"devices": [{"allow": True, "access": "rwm"}]})
    fd = os.open(cg.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.prog_query(fd)) == 1
    finally:
        os.close(fd)
    got, _ = cgtest.run_in(cg, lambda: cgtest.open_devices([("/dev/full", os.O_RDONLY)]))
    assert got == ["ok"]


def test_destroy_kills_everything_below():
    parent = cgtest.unique_parent()
    m = cgroups.manager(parent + "/c1")
    m.create()
    kids = []
    try:
        kids.append(cgtest.Child(m, lambda: signal.pause()))
        kids[0].start()
        m.destroy()
        assert os.WTERMSIG(kids[0].wait()) == signal.SIGKILL
        assert not m.exists()
    finally:
        for k in kids:
            k.kill()
        m.destroy()
        cgtest.remove_parent(parent)
    assert cgtest.leftover_dirs(parent) == []


def test_engine_sees_a_v2_host():
    from hutch.engine import resources
    info = resources.host_info()
    assert info.mode == "unified" and info.memory and info.swap and info.pids and info.cpu_shares
    assert not info.swappiness and not info.oom_kill_disable
    r = resources.parse_resources({"memory-swappiness": "10", "blkio-weight": "600"})
    assert r.warnings == [
        "WARNING: Your kernel does not support memory swappiness capabilities or the cgroup "
        "is not mounted. Memory swappiness discarded."]


def test_a_child_is_born_in_the_cgroup(cg):
    # What the runtime's init does (clone3's CLONE_INTO_CGROUP): no move, no grace period.
    from hutch import _sys
    fd = os.open(cg.birth_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    r, w = os.pipe()
    try:
        pid = _sys.fork_into_cgroup(fd)
        if pid == 0:
            try:
                with open("/proc/self/cgroup") as f:
                    os.write(w, f.read().encode())
            finally:
                os._exit(0)
    finally:
        os.close(fd)
        os.close(w)
    with os.fdopen(r) as f:
        assert f.read().strip() == "0::/" + cg.path.lstrip("/")
    os.waitpid(pid, 0)
