"""Both drivers on a fake cgroup tree in a temp dir (no root, no kernel).

A fake tree holds the files the kernel would show; a file that is absent stands for a
feature the host lacks, exactly as on a real host.
"""
import os

import pytest

from hutch import cgroups
from hutch.cgroups import fs, mounts

V1_FILES = {
    "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us",
            "cpu.stat", "cpu.idle", "cgroup.procs"],
    "cpuacct": ["cpuacct.usage", "cpuacct.stat", "cgroup.procs"],
    "cpuset": ["cpuset.cpus", "cpuset.mems", "cgroup.procs"],
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
               "memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control",
               "memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.stat",
               "memory.kmem.tcp.limit_in_bytes", "cgroup.procs"],
    "blkio": ["blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.throttle.read_bps_device",
              "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device",
              "blkio.throttle.write_iops_device",
              "blkio.throttle.io_service_bytes_recursive", "cgroup.procs"],
    "pids": ["pids.max", "pids.current", "cgroup.procs"],
    "freezer": ["freezer.state", "cgroup.procs"],
    "devices": ["devices.allow", "devices.deny", "cgroup.procs"],
}

V2_FILES = ["cgroup.procs", "cgroup.events", "cgroup.freeze", "cgroup.kill", "cpu.weight",
            "cpu.max", "cpu.stat", "cpuset.cpus", "cpuset.mems", "memory.max", "memory.low",
            "memory.swap.max", "memory.current", "memory.peak", "memory.stat",
            "memory.events", "io.weight", "io.max", "io.stat", "pids.max", "pids.current",
            "hugetlb.2MB.max", "memory.high", "cpu.pressure", "memory.pressure", "io.pressure"]


def put(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def get(path):
    with open(path) as f:
        return f.read()


@pytest.fixture
def writes(monkeypatch):
    """Every cgroup write as (path, value), in order (a fake file keeps only the last)."""
    log = []
    real = fs.write

    def record(path, value):
        log.append((path, str(value)))
        real(path, value)
    monkeypatch.setattr(fs, "write", record)
    return log


def v1_tree(root, leaf="hutch/c1", bfq=True):
    for ctrl, names in V1_FILES.items():
        put(os.path.join(root, ctrl, "cgroup.procs"))
        for level in ("hutch", leaf):
            for name in names:
                if name == "blkio.bfq.weight" and not bfq:
                    name = "blkio.weight"
                put(os.path.join(root, ctrl, level, name))
    put(os.path.join(root, "cpuset", "cpuset.cpus"), "0-3\n")
    put(os.path.join(root, "cpuset", "cpuset.mems"), "0\n")
    put(os.path.join(root, "memory", leaf, "memory.limit_in_bytes"), "9223372036854771712\n")


def v2_tree(root, leaf="hutch/c1"):
    put(os.path.join(root, "cgroup.controllers"), "cpuset cpu io memory pids\n")
    put(os.path.join(root, "cgroup.subtree_control"), "")
    put(os.path.join(root, "hutch", "cgroup.controllers"), "cpuset cpu io memory pids\n")
    put(os.path.join(root, "hutch", "cgroup.subtree_control"), "cpu\n")
    for name in V2_FILES:
        put(os.path.join(root, leaf, name))


# --- detection -----------------------------------------------------------------------

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_mountinfo_hybrid():
    m = mounts.parse_mountinfo(HYBRID_MOUNTINFO)
    assert m.mode == "hybrid"
    assert m.v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                    "memory": "/sys/fs/cgroup/memory"}
    assert m.unified == "/sys/fs/cgroup/unified"


def test_mountinfo_legacy_combined_and_unified():
    legacy = mounts.parse_mountinfo(
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n")
    assert legacy.mode == "legacy"
    assert legacy.v1["cpu"] == legacy.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    unified = mounts.parse_mountinfo(
        "25 18 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    assert (unified.mode, unified.unified, unified.v1) == ("unified", "/sys/fs/cgroup", {})


HYBRID_PROC_CGROUP = "9:name=systemd:/\n3:memory:/x\n2:cpu,cpuacct:/\n1:pids:/\n0::/\n"


def standard_tree(root, hierarchies=("memory", "cpu,cpuacct", "pids"), unified=True):
    """What the kernel shows at each mount's root: release_agent in a v1 hierarchy's,
    cgroup.controllers in cgroup2's."""
    for h in hierarchies:
        put(os.path.join(root, h, "release_agent"))
    if unified:
        put(os.path.join(root, "unified", "cgroup.controllers"))
    return str(root)


def test_standard_mounts_hybrid_legacy_unified(tmp_path):
    r = standard_tree(tmp_path / "hybrid")
    m = mounts.standard_mounts(HYBRID_PROC_CGROUP, r)
    assert (m.mode, m.unified) == ("hybrid", r + "/unified")
    # In hierarchy id order (mount order), as mountinfo lists them.
    assert list(m.v1.items()) == [("pids", r + "/pids"), ("cpu", r + "/cpu,cpuacct"),
                                  ("cpuacct", r + "/cpu,cpuacct"), ("memory", r + "/memory")]
    r = standard_tree(tmp_path / "legacy", unified=False)
    m = mounts.standard_mounts(HYBRID_PROC_CGROUP.replace("0::/\n", ""), r)
    assert (m.mode, m.unified, len(m.v1)) == ("legacy", None, 4)
    r = str(tmp_path / "unified")
    put(os.path.join(r, "cgroup.controllers"))
    m = mounts.standard_mounts("0::/user.slice\n", r)
    assert (m.mode, m.v1, m.unified) == ("unified", {}, r)


def test_standard_mounts_elsewhere_is_none(tmp_path):
    assert mounts.standard_mounts(HYBRID_PROC_CGROUP, standard_tree(tmp_path / "ok"))
    for name, tree in (
            ("memory-elsewhere", dict(hierarchies=("cpu,cpuacct", "pids"))),
            ("combined-apart", dict(hierarchies=("memory", "cpu", "cpuacct", "pids"))),
            ("cgroup2-elsewhere", dict(unified=False))):
        r = standard_tree(tmp_path / name, **tree)
        assert mounts.standard_mounts(HYBRID_PROC_CGROUP, r) is None, name
    # A subdirectory of a hierarchy (a container's bind) has no release_agent.
    r = standard_tree(tmp_path / "bound", hierarchies=("cpu,cpuacct", "pids"))
    put(os.path.join(r, "memory", "cgroup.procs"))
    assert mounts.standard_mounts(HYBRID_PROC_CGROUP, r) is None
    # No v1 hierarchy and no cgroup2: mountinfo decides.
    assert mounts.standard_mounts("", str(tmp_path / "empty")) is None


def test_host_mounts_agree_with_mountinfo():
    with open("/proc/self/mountinfo") as f:
        expected = mounts.parse_mountinfo(f.read())
    got = mounts.host_mounts()
    assert got == expected and list(got.v1) == list(expected.v1)


def test_detect_mode_on_fake_trees(tmp_path):
    v1_tree(str(tmp_path / "a"))
    v2_tree(str(tmp_path / "b"))
    assert cgroups.detect_mode(str(tmp_path / "a")) == "legacy"
    assert cgroups.detect_mode(str(tmp_path / "b")) == "unified"
    assert cgroups.detect_mode() in ("legacy", "hybrid", "unified")


def test_manager_refuses_the_root():
    for bad in ("", "/", "/hutch/../..", "../x"):
        with pytest.raises(cgroups.CgroupError, match="invalid cgroupsPath"):
            cgroups.manager(bad)


# --- v1 -----------------------------------------------------------------------------

def test_v1_paths_and_create_fill_cpuset_parents_first(tmp_path, writes):
    root = str(tmp_path)
    v1_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    assert m.version == 1
    assert m.paths()["memory"] == os.path.join(root, "memory", "hutch", "c1")
    m.create()
    cpuset = [(p[len(root):], v) for p, v in writes if "cpuset" in p]
    assert cpuset == [("/cpuset/hutch/cpuset.cpus", "0-3"), ("/cpuset/hutch/cpuset.mems", "0"),
                      ("/cpuset/hutch/c1/cpuset.cpus", "0-3"),
                      ("/cpuset/hutch/c1/cpuset.mems", "0")]
    assert m.exists()


def test_v1_create_makes_dirs(tmp_path):
    root = str(tmp_path)
    for ctrl in ("cpu", "memory", "pids"):
        os.makedirs(os.path.join(root, ctrl))
    m = cgroups.manager("/hutch/new", root=root)
    assert not m.exists()
    m.create()
    for ctrl in ("cpu", "memory", "pids"):
        assert os.path.isdir(os.path.join(root, ctrl, "hutch", "new"))


def test_v1_apply_writes_the_table(tmp_path, writes):
    root = str(tmp_path)
    v1_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    m.apply({
        "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 209715200, "swap": 314572800, "reservation": 104857600,
                   "swappiness": 10, "disableOOMKiller": True},
        "blockIO": {"weight": 600,
                    "weightDevice": [{"major": 254, "minor": 0, "weight": 300}],
                    "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 31457280}],
                    "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 20971520}],
                    "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]},
        "pids": {"limit": 50},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
    })
    d = lambda c, f: os.path.join(root, c, "hutch", "c1", f)  # noqa: E731
    expect = {
        d("cpu", "cpu.shares"): "512", d("cpu", "cpu.cfs_quota_us"): "150000",
        d("cpu", "cpu.cfs_period_us"): "100000", d("cpuset", "cpuset.cpus"): "0",
        d("memory", "memory.limit_in_bytes"): "209715200",
        d("memory", "memory.memsw.limit_in_bytes"): "314572800",
        d("memory", "memory.soft_limit_in_bytes"): "104857600",
        d("memory", "memory.swappiness"): "10", d("memory", "memory.oom_control"): "1",
        # BFQ-only kernel: the weight goes to blkio.bfq.weight, as runc does.
        d("blkio", "blkio.bfq.weight"): "600",
        d("blkio", "blkio.bfq.weight_device"): "254:0 300",
        d("blkio", "blkio.throttle.write_bps_device"): "254:0 31457280",
        d("blkio", "blkio.throttle.read_bps_device"): "254:0 20971520",
        d("blkio", "blkio.throttle.read_iops_device"): "254:0 100",
        d("blkio", "blkio.throttle.write_iops_device"): "254:0 200",
        d("pids", "pids.max"): "50",
    }
    for path, value in expect.items():
        assert get(path) == value, path
    assert [(os.path.basename(p), v) for p, v in writes if "devices" in p] == [
        ("devices.deny", "a"), ("devices.allow", "c 1:3 rwm")]
    # From unlimited: the limit first, then memsw (memory <= memsw holds at every step).
    assert limit_order(writes) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def limit_order(writes):
    return [os.path.basename(p) for p, _ in writes
            if os.path.basename(p) in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")]


def test_v1_memory_shrink_order_and_unlimited(tmp_path, writes):
    root = str(tmp_path)
    v1_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    put(os.path.join(root, "memory/hutch/c1/memory.limit_in_bytes"), "419430400")
    m.apply({"memory": {"limit": 104857600, "swap": 209715200}})
    assert limit_order(writes) == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    writes.clear()
    # Growing past the current limit: memsw must be raised first.
    put(os.path.join(root, "memory/hutch/c1/memory.limit_in_bytes"), "104857600")
    m.apply({"memory": {"limit": 314572800, "swap": 419430400}})
    assert limit_order(writes) == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    writes.clear()
    m.apply({"memory": {"limit": -1}, "pids": {"limit": -1}})
    assert [(os.path.basename(p), v) for p, v in writes] == [
        ("memory.memsw.limit_in_bytes", "-1"), ("memory.limit_in_bytes", "-1"),
        ("pids.max", "max")]


def test_v1_blkio_weight_file_when_present(tmp_path):
    root = str(tmp_path)
    v1_tree(root, bfq=False)
    cgroups.manager("/hutch/c1", root=root).apply({"blockIO": {"weight": 300}})
    assert get(os.path.join(root, "blkio/hutch/c1/blkio.weight")) == "300"


def test_v1_errors_name_path_and_value(tmp_path):
    root = str(tmp_path)
    v1_tree(root)
    os.remove(os.path.join(root, "pids/hutch/c1/pids.max"))
    m = cgroups.manager("/hutch/c1", root=root)
    with pytest.raises(cgroups.CgroupError) as e:
        m.apply({"pids": {"limit": 7}})
    assert str(e.value) == (f'failed to write "7" to {root}/pids/hutch/c1/pids.max: '
                            "no such file or directory")
    with pytest.raises(cgroups.CgroupError, match="valid memory swappiness range is 0-100"):
        m.apply({"memory": {"swappiness": 200}})
    with pytest.raises(cgroups.CgroupError, match="cannot use unified on cgroup v1"):
        m.apply({"unified": {"memory.high": "100M"}})
    with pytest.raises(cgroups.CgroupError, match='"hugetlb" is not mounted'):
        m.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})


def test_v1_stats_and_oom(tmp_path):
    root = str(tmp_path)
    v1_tree(root)
    leaf = lambda c, f: os.path.join(root, c, "hutch/c1", f)  # noqa: E731
    put(leaf("cpuacct", "cpuacct.usage"), "123456789\n")
    put(leaf("memory", "memory.usage_in_bytes"), "4096\n")
    put(leaf("memory", "memory.stat"), "cache 10\nrss 20\ntotal_inactive_file 5\n")
    put(leaf("memory", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    put(leaf("blkio", "blkio.throttle.io_service_bytes_recursive"),
        "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n")
    put(leaf("pids", "pids.current"), "3\n")
    put(leaf("pids", "pids.max"), "max\n")
    m = cgroups.manager("/hutch/c1", root=root)
    s = m.stats()
    assert s["cpu"]["usage_ns"] == 123456789
    assert s["memory"]["usage"] == 4096 and s["memory"]["limit"] is None
    assert s["memory"]["stat"]["total_inactive_file"] == 5
    assert s["blkio"]["read_bytes"] == 4096 and s["blkio"]["write_bytes"] == 8192
    assert s["pids"] == {"current": 3, "limit": None}
    assert m.oom_kill_count() == 2


def test_v1_freeze_state(tmp_path):
    root = str(tmp_path)
    v1_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    m.freeze()
    assert m.is_frozen()
    m.thaw()
    assert not m.is_frozen()


# --- v2 -----------------------------------------------------------------------------

def test_v2_create_enables_controllers_on_each_parent(tmp_path, writes):
    root = str(tmp_path)
    v2_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    assert m.version == 2 and m.paths() == {"": os.path.join(root, "hutch", "c1")}
    m.create()
    assert [(p[len(root):], v) for p, v in writes] == [
        ("/cgroup.subtree_control", "+cpuset +cpu +io +memory +pids"),
        ("/hutch/cgroup.subtree_control", "+cpuset +io +memory +pids"),
    ]


def test_v2_apply_converts(tmp_path, writes):
    root = str(tmp_path)
    v2_tree(root)
    m = cgroups.manager("/hutch/c1", root=root)
    m.apply({
        "cpu": {"shares": 512, "quota": 150000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 209715200, "swap": 314572800, "reservation": 104857600},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 254, "minor": 0, "weight": 1000}],
                    "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 20971520}],
                    "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 31457280}],
                    "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]},
        "pids": {"limit": 50},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "150000000"},
    })
    got = [(os.path.basename(p), v) for p, v in writes]
    assert got == [
        ("cpu.weight", "59"), ("cpu.max", "150000 100000"), ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        # swap.max is swap alone: 300M total - 200M memory.
        ("memory.swap.max", "104857600"), ("memory.max", "209715200"),
        ("memory.low", "104857600"),
        ("io.weight", "default 4950"), ("io.weight", "254:0 10000"),
        ("io.max", "254:0 rbps=20971520"), ("io.max", "254:0 wbps=31457280"),
        ("io.max", "254:0 riops=100"), ("io.max", "254:0 wiops=200"),
        ("pids.max", "50"), ("hugetlb.2MB.max", "4194304"), ("memory.high", "150000000"),
    ]


def test_v2_unlimited_and_bfq(tmp_path, writes):
    root = str(tmp_path)
    v2_tree(root)
    put(os.path.join(root, "hutch/c1/io.bfq.weight"))
    m = cgroups.manager("/hutch/c1", root=root)
    m.apply({"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 100000},
             "pids": {"limit": -1}, "blockIO": {"weight": 600}})
    assert [(os.path.basename(p), v) for p, v in writes] == [
        ("cpu.max", "max 100000"), ("memory.swap.max", "max"), ("memory.max", "max"),
        ("io.bfq.weight", "600"), ("pids.max", "max")]


@pytest.mark.parametrize("mem,msg", [
    ({"swappiness": 10}, "swappiness is not supported on cgroup v2"),
    ({"disableOOMKiller": True}, "disableOOMKiller is not supported on cgroup v2"),
    ({"swap": 100, "limit": 200}, r"memory\+swap limit should be >= memory limit"),
])
def test_v2_refuses_what_v2_lacks(tmp_path, mem, msg):
    root = str(tmp_path)
    v2_tree(root)
    with pytest.raises(cgroups.CgroupError, match=msg):
        cgroups.manager("/hutch/c1", root=root).apply({"memory": mem})


def test_v2_freeze_waits_for_events_and_stats(tmp_path):
    root = str(tmp_path)
    v2_tree(root)
    leaf = lambda f: os.path.join(root, "hutch/c1", f)  # noqa: E731
    m = cgroups.manager("/hutch/c1", root=root)
    put(leaf("cgroup.events"), "populated 1\nfrozen 1\n")
    m.freeze()
    assert get(leaf("cgroup.freeze")) == "1" and m.is_frozen()
    put(leaf("cgroup.events"), "populated 1\nfrozen 0\n")
    m.thaw()
    assert not m.is_frozen()
    put(leaf("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    put(leaf("memory.current"), "8192\n")
    put(leaf("memory.max"), "max\n")
    put(leaf("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    put(leaf("io.stat"), "254:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n")
    put(leaf("pids.current"), "2\n")
    put(leaf("pids.max"), "20\n")
    put(leaf("memory.pressure"), "some avg10=1.50 avg60=0.00 avg300=0.00 total=42\n"
                                 "full avg10=0.00 avg60=0.00 avg300=0.00 total=7\n")
    s = m.stats()
    assert s["cpu"]["usage_ns"] == 1_500_000 and s["cpu"]["user_ns"] == 1_000_000
    assert s["memory"]["usage"] == 8192 and s["memory"]["limit"] is None
    assert s["memory"]["oom_kill"] == 1 == m.oom_kill_count()
    assert s["blkio"]["read_bytes"] == 4096 and s["blkio"]["write_bytes"] == 512
    assert s["pids"] == {"current": 2, "limit": 20}
    assert s["pressure"]["memory"]["some"]["avg10"] == 1.5
    assert s["pressure"]["memory"]["full"]["total"] == 7


# --- hybrid (v1 controllers + a cgroup2 mount) ------------------------------------------

def test_hybrid_joins_cgroup2_and_drives_a_stray_hugetlb_there(tmp_path, writes):
    root = str(tmp_path)
    v1_tree(root)
    put(os.path.join(root, "unified", "cgroup.controllers"), "hugetlb\n")
    put(os.path.join(root, "unified", "cgroup.subtree_control"), "")
    m = cgroups.manager("/hutch/c1", root=root)
    assert cgroups.detect_mode(root) == "hybrid" and m.version == 1
    assert m.paths()["unified"] == os.path.join(root, "unified", "hutch", "c1")
    m.create()
    assert os.path.isdir(m.paths()["unified"])
    put(os.path.join(root, "unified", "hutch", "c1", "hugetlb.2MB.max"))
    put(os.path.join(root, "unified", "hutch", "cgroup.subtree_control"))
    writes.clear()
    m.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
    assert [(p[len(root):], v) for p, v in writes] == [
        ("/unified/cgroup.subtree_control", "+hugetlb"),
        ("/unified/hutch/cgroup.subtree_control", "+hugetlb"),
        ("/unified/hutch/c1/hugetlb.2MB.max", "4194304")]
    put(os.path.join(root, "unified", "hutch", "c1", "cgroup.procs"))
    writes.clear()
    m.add_process(4242)
    assert len(writes) == len(V1_FILES) + 1
    assert writes[-1][0].endswith("unified/hutch/c1/cgroup.procs")


def test_hybrid_unusable_cgroup2_mount_is_skipped(tmp_path, writes):
    root = str(tmp_path)
    v1_tree(root)
    put(os.path.join(root, "unified"), "not a directory")
    m = cgroups.manager("/hutch/c1", root=root, mode="hybrid")
    m.create()
    m.add_process(4242)
    assert len(writes) - 4 == len(V1_FILES)   # 4 cpuset fills, then one cgroup.procs each
    assert all("unified" not in p for p, _ in writes)
