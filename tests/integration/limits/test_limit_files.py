"""Each resource flag of `hutch run`: the value in the container's v1 cgroup file and the
inspect HostConfig field, as Docker 20.10 showed them on this host (transcript section 1)."""
import json
import os

import pytest

import lim_helpers as lh

UNLIMITED = "9223372036854771712"    # what a v1 memory limit reads when unset

# (flags, {(controller, file): value}, {HostConfig field: value})
CASES = {
    "cpu_shares": (["-c", "512"], {("cpu", "cpu.shares"): "512"}, {"CpuShares": 512}),
    "memory_and_swap": (
        ["-m", "200M", "--memory-swap", "300M"],
        {("memory", "memory.limit_in_bytes"): "209715200",
         ("memory", "memory.memsw.limit_in_bytes"): "314572800",
         ("memory", "memory.soft_limit_in_bytes"): UNLIMITED,
         ("memory", "memory.swappiness"): "60",
         ("memory", "memory.oom_control"): "oom_kill_disable 0\nunder_oom 0\noom_kill 0"},
        {"Memory": 209715200, "MemorySwap": 314572800}),
    "memory_default_swap_twice": (
        ["-m", "200M"],
        {("memory", "memory.limit_in_bytes"): "209715200",
         ("memory", "memory.memsw.limit_in_bytes"): "419430400"},
        {"Memory": 209715200, "MemorySwap": 419430400}),
    "memory_swap_unlimited": (
        ["-m", "200M", "--memory-swap", "-1"],
        {("memory", "memory.limit_in_bytes"): "209715200",
         ("memory", "memory.memsw.limit_in_bytes"): UNLIMITED},
        {"Memory": 209715200, "MemorySwap": -1}),
    "cpus": (["--cpus", "1.5"],
             {("cpu", "cpu.cfs_quota_us"): "150000", ("cpu", "cpu.cfs_period_us"): "100000",
              ("cpu", "cpu.shares"): "1024"},
             {"NanoCpus": 1500000000, "CpuQuota": 0, "CpuPeriod": 0}),
    "cpu_period_quota": (["--cpu-period", "50000", "--cpu-quota", "25000"],
                         {("cpu", "cpu.cfs_quota_us"): "25000",
                          ("cpu", "cpu.cfs_period_us"): "50000"},
                         {"CpuPeriod": 50000, "CpuQuota": 25000, "NanoCpus": 0}),
    "cpuset": (["--cpuset-cpus", "0", "--cpuset-mems", "0"],
               {("cpuset", "cpuset.cpus"): "0", ("cpuset", "cpuset.mems"): "0",
                ("cpuset", "cpuset.effective_cpus"): "0"},
               {"CpusetCpus": "0", "CpusetMems": "0"}),
    "pids_limit": (["--pids-limit", "50"], {("pids", "pids.max"): "50"}, {"PidsLimit": 50}),
    "memory_reservation": (["--memory-reservation", "100M"],
                           {("memory", "memory.soft_limit_in_bytes"): "104857600"},
                           {"MemoryReservation": 104857600}),
    "memory_swappiness": (["--memory-swappiness", "10"],
                          {("memory", "memory.swappiness"): "10"},
                          {"MemorySwappiness": 10}),
    "oom_kill_disable": (["-m", "100M", "--oom-kill-disable"],
                         {("memory", "memory.oom_control"):
                          "oom_kill_disable 1\nunder_oom 0\noom_kill 0"},
                         {"OomKillDisable": True, "Memory": 104857600}),
}


def run_d(hutch, name, *flags):
    r = hutch("run", "--name", name, "-d", "--network", "none", *flags, "busybox",
              "sleep", "1000")
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("case", sorted(CASES))
def test_flag_reaches_cgroup_file_and_inspect(hutch, name, case):
    flags, files, fields = CASES[case]
    r = run_d(hutch, name, *flags)
    assert r.stderr == ""
    got = {key: hutch.cgroup_file(name, *key) for key in files}
    assert got == files
    hc = hutch.host_config(name)
    assert {k: hc[k] for k in fields} == fields
    hutch.ok("rm", "-f", name)


def test_cpuset_is_the_process_affinity(hutch, name):
    run_d(hutch, name, "--cpuset-cpus", "0")
    out = hutch.ok("exec", name, "grep", "Cpus_allowed_list", "/proc/self/status")
    assert out == "Cpus_allowed_list:\t0\n"


def _cpus_allowed_line(pid="self") -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line for line in f if line.startswith("Cpus_allowed_list"))


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_the_init_runs_on_every_cpu_it_may(hutch, name):
    """The runtime starts the init on another CPU than its own (container._spawn), and the
    init takes the whole set back: the command (PID 1 after its exec) has the caller's set,
    or its cpuset's."""
    out = hutch.ok("run", "--rm", "busybox", "grep", "Cpus_allowed_list", "/proc/self/status")
    assert out == _cpus_allowed_line()
    out = hutch.ok("run", "--rm", "--cpuset-cpus", "1", "busybox", "grep", "Cpus_allowed_list",
                   "/proc/self/status")
    assert out == "Cpus_allowed_list:\t1\n"


def _root_device(hutch):
    dev = lh.block_device_of(hutch.root)
    if dev is None:
        pytest.skip(f"the hutch root {hutch.root} is not on a real block device")
    st = os.stat(dev)
    return dev, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


@pytest.mark.parametrize("flag,file,value,rate,field", [
    ("--device-write-bps", "blkio.throttle.write_bps_device", "30MB", 31457280,
     "BlkioDeviceWriteBps"),
    ("--device-read-bps", "blkio.throttle.read_bps_device", "20MB", 20971520,
     "BlkioDeviceReadBps"),
    ("--device-write-iops", "blkio.throttle.write_iops_device", "100", 100,
     "BlkioDeviceWriteIOps"),
    ("--device-read-iops", "blkio.throttle.read_iops_device", "150", 150,
     "BlkioDeviceReadIOps"),
])
def test_device_throttle(hutch, name, flag, file, value, rate, field):
    dev, majmin = _root_device(hutch)
    run_d(hutch, name, flag, f"{dev}:{value}")
    assert hutch.cgroup_file(name, "blkio", file) == f"{majmin} {rate}"
    assert hutch.inspect(name, "{{json .HostConfig.%s}}" % field) == \
        json.dumps([{"Path": dev, "Rate": rate}], separators=(",", ":"))


def test_blkio_weight(hutch, name):
    """Docker 20.10 needs blkio.weight (CFQ); with BFQ only it warns and discards."""
    r = run_d(hutch, name, "--blkio-weight", "600")
    if os.path.exists(f"{lh.V1}/blkio/blkio.weight"):
        assert hutch.cgroup_file(name, "blkio", "blkio.weight") == "600"
        assert hutch.inspect(name, "{{.HostConfig.BlkioWeight}}") == "600"
    else:
        assert r.stderr == ("WARNING: Your kernel does not support Block I/O weight or the "
                            "cgroup is not mounted. Weight discarded.\n")
        assert hutch.inspect(name, "BlkioWeight={{.HostConfig.BlkioWeight}}") == \
            "BlkioWeight=0"
        assert not os.path.exists(os.path.join(lh.V1, "blkio", "hutch", hutch.full_id(name),
                                               "blkio.weight"))


def test_blkio_weight_device(hutch, name):
    dev, majmin = _root_device(hutch)
    r = run_d(hutch, name, "--blkio-weight-device", f"{dev}:300")
    if os.path.exists(f"{lh.V1}/blkio/blkio.weight_device"):
        assert hutch.cgroup_file(name, "blkio", "blkio.weight_device") == f"{majmin} 300"
        assert json.loads(hutch.inspect(name, "{{json .HostConfig.BlkioWeightDevice}}")) == \
            [{"Path": dev, "Weight": 300}]
    else:
        assert r.stderr == ("WARNING: Your kernel does not support Block I/O weight_device or "
                            "the cgroup is not mounted. Weight-device discarded.\n")
        assert hutch.inspect(name, "{{json .HostConfig.BlkioWeightDevice}}") == "[]"


def test_defaults(hutch, name):
    run_d(hutch, name)
    with open(f"{lh.V1}/cpuset/cpuset.cpus") as f:
        host_cpus = f.read().strip()
    got = {f: hutch.cgroup_file(name, c, f) for c, f in [
        ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"),
        ("memory", "memory.limit_in_bytes"), ("memory", "memory.memsw.limit_in_bytes"),
        ("pids", "pids.max"), ("cpuset", "cpuset.cpus")]}
    assert got == {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1",
                   "cpu.cfs_period_us": "100000", "memory.limit_in_bytes": UNLIMITED,
                   "memory.memsw.limit_in_bytes": UNLIMITED, "pids.max": "max",
                   "cpuset.cpus": host_cpus}
    hc = hutch.host_config(name)
    assert {k: hc[k] for k in ("Memory", "MemorySwap", "CpuShares", "NanoCpus", "CpuQuota",
                               "CpuPeriod", "CpusetCpus", "BlkioWeight", "PidsLimit",
                               "BlkioDeviceWriteBps", "ShmSize", "OomKillDisable")} == {
        "Memory": 0, "MemorySwap": 0, "CpuShares": 0, "NanoCpus": 0, "CpuQuota": 0,
        "CpuPeriod": 0, "CpusetCpus": "", "BlkioWeight": 0, "PidsLimit": None,
        "BlkioDeviceWriteBps": [], "ShmSize": 67108864, "OomKillDisable": False}
    # Docker's default device rules (transcript section 1); the kernel lists them in the
    # order they were written, runc writes them sorted.
    rules = hutch.cgroup_file(name, "devices", "devices.list").splitlines()
    assert sorted(rules) == sorted([
        "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"])


def test_default_devices_list_order(hutch, name):
    run_d(hutch, name)
    assert hutch.cgroup_file(name, "devices", "devices.list").splitlines() == [
        "b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"]


def test_ulimit(hutch, name):
    out = hutch.ok("run", "--name", name, "--network", "none", "--ulimit", "nofile=100:200",
                   "--ulimit", "nproc=50", "busybox", "sh", "-c",
                   "ulimit -Sn; ulimit -Hn; ulimit -Su; ulimit -Hu")
    assert out.split() == ["100", "200", "50", "50"]
    assert json.loads(hutch.inspect(name, "{{json .HostConfig.Ulimits}}")) == [
        {"Name": "nofile", "Hard": 200, "Soft": 100}, {"Name": "nproc", "Hard": 50, "Soft": 50}]


@pytest.mark.parametrize("flag,kib,size", [([], 65536, 67108864),
                                           (["--shm-size", "128M"], 131072, 134217728)])
def test_shm_size(hutch, name, flag, kib, size):
    out = hutch.ok("run", "--name", name, "--network", "none", *flag, "busybox",
                   "df", "-k", "/dev/shm")
    fields = out.splitlines()[1].split()
    assert (fields[0], fields[1], fields[-1]) == ("shm", str(kib), "/dev/shm")
    assert hutch.inspect(name, "{{.HostConfig.ShmSize}}") == str(size)
