"""Docker's resource flags → OCI resources / HostConfig, with Docker's errors and warnings."""
import pytest

from hutch.engine import resources as res
from hutch.engine.resources import FlagError, HostInfo, ResourceError, parse_resources

V1_HOST = HostInfo(mode="hybrid", ncpu=2, cpus="0-1", mems="0", blkio_weight=False,
                   blkio_weight_device=False)
V2_HOST = HostInfo(mode="unified", ncpu=2, cpus="0-1", mems="0", swappiness=False,
                   oom_kill_disable=False)


def parse(flags, host=V1_HOST):
    return parse_resources(flags, host=host)


@pytest.mark.parametrize("text,value", [
    ("200M", 209715200), ("1g", 1 << 30), ("512k", 524288), ("100", 100), ("1.5GiB", 3 << 29),
    ("30MB", 31457280), ("64 m", 64 << 20), ("7b", 7), ("2kb", 2048),
])
def test_ram_in_bytes(text, value):
    assert res.ram_in_bytes(text) == value


@pytest.mark.parametrize("text,msg", [
    ("10XB", "invalid suffix: 'xb'"), ("abc", "invalid size: 'abc'"),
    ("10kbb", "invalid suffix: 'kbb'"), ("1mx", "invalid suffix: 'mx'"),
    ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
])
def test_ram_in_bytes_errors(text, msg):
    with pytest.raises(ValueError) as e:
        res.ram_in_bytes(text)
    assert str(e.value) == msg


def test_transcript_values():
    r = parse({"memory": "200M", "memory-swap": "300M", "cpu-shares": "512", "cpus": "1.5",
               "cpuset-cpus": "0", "pids-limit": "50",
               "device-write-bps": ["/dev/null:30MB"]})
    hc = r.host_config
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"]) == (209715200, 314572800, 512)
    assert (hc["NanoCpus"], hc["CpuQuota"], hc["CpuPeriod"]) == (1500000000, 0, 0)
    assert hc["CpusetCpus"] == "0" and hc["PidsLimit"] == 50
    assert hc["BlkioDeviceWriteBps"] == [{"Path": "/dev/null", "Rate": 31457280}]
    assert r.linux_resources == {
        "memory": {"limit": 209715200, "swap": 314572800},
        "cpu": {"shares": 512, "period": 100000, "quota": 150000, "cpus": "0"},
        "blockIO": {"throttleWriteBpsDevice": [{"major": 1, "minor": 3, "rate": 31457280}]},
        "pids": {"limit": 50},
    }
    assert r.shm_size == 67108864 and r.warnings == [] and r.rlimits == []


def test_defaults():
    r = parse({})
    assert r.linux_resources == {}
    assert r.host_config == res.default_host_config()
    assert r.host_config["PidsLimit"] is None and r.host_config["MemorySwappiness"] is None


def test_memory_swap_defaults_to_twice_memory_and_unlimited():
    assert parse({"m": "200M"}).host_config["MemorySwap"] == 419430400
    r = parse({"m": "200M", "memory-swap": "-1"})
    assert r.host_config["MemorySwap"] == -1
    assert r.linux_resources["memory"] == {"limit": 209715200, "swap": -1}


def test_blkio_weight_discarded_with_dockers_warning():
    r = parse({"blkio-weight": "600"})
    assert r.warnings == ["WARNING: Your kernel does not support Block I/O weight or the "
                          "cgroup is not mounted. Weight discarded."]
    assert r.host_config["BlkioWeight"] == 0 and "blockIO" not in r.linux_resources
    ok = parse({"blkio-weight": "600", "blkio-weight-device": ["/dev/null:300"]},
               host=V2_HOST)
    assert ok.warnings == [] and ok.linux_resources["blockIO"] == {
        "weight": 600, "weightDevice": [{"major": 1, "minor": 3, "weight": 300}]}


def test_v2_discards_swappiness_and_oom_kill_disable():
    r = parse({"memory-swappiness": "10", "oom-kill-disable": True, "m": "64M"}, host=V2_HOST)
    assert r.warnings == [
        "WARNING: Your kernel does not support memory swappiness capabilities or the cgroup "
        "is not mounted. Memory swappiness discarded.",
        "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."]
    assert r.linux_resources["memory"] == {"limit": 67108864, "swap": 134217728}
    v1 = parse({"memory-swappiness": "10", "oom-kill-disable": "true"})
    assert v1.linux_resources["memory"] == {"swappiness": 10, "disableOOMKiller": True}
    assert v1.warnings == ["WARNING: OOM killer is disabled for the container, but no memory "
                           "limit is set, this can result in the system running out of "
                           "resources."]


def test_ulimits_and_shm():
    r = parse({"ulimit": ["nofile=1024:2048", "nproc=100", "core=-1", "nofile=10:20"],
               "shm-size": "128m"})
    assert r.rlimits == [
        {"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10},
        {"type": "RLIMIT_NPROC", "hard": 100, "soft": 100},
        {"type": "RLIMIT_CORE", "hard": 2 ** 64 - 1, "soft": 2 ** 64 - 1}]
    assert r.host_config["Ulimits"][0] == {"Name": "nofile", "Hard": 20, "Soft": 10}
    assert r.shm_size == r.host_config["ShmSize"] == 128 << 20


def test_cpu_period_quota_and_iops():
    r = parse({"cpu-period": "50000", "cpu-quota": "25000",
               "device-read-iops": ["/dev/null:100"], "device-read-bps": ["/dev/null:1mb"],
               "device-write-iops": ["/dev/null:7"]})
    assert r.linux_resources["cpu"] == {"period": 50000, "quota": 25000}
    assert r.linux_resources["blockIO"] == {
        "throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1048576}],
        "throttleReadIOPSDevice": [{"major": 1, "minor": 3, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 1, "minor": 3, "rate": 7}]}
    assert r.host_config["BlkioDeviceReadIOps"] == [{"Path": "/dev/null", "Rate": 100}]


@pytest.mark.parametrize("flags,msg", [
    ({"m": "10XB"}, """invalid argument "10XB" for "-m, --memory" flag: invalid suffix: 'xb'"""),
    ({"pids-limit": "abc"}, 'invalid argument "abc" for "--pids-limit" flag: '
                            'strconv.ParseInt: parsing "abc": invalid syntax'),
    ({"device-write-bps": ["/dev/vda:30XB"]},
     'invalid argument "/dev/vda:30XB" for "--device-write-bps" flag: invalid rate for device: '
     "/dev/vda:30XB. The correct format is <device-path>:<number>[<unit>]. Number must be a "
     "positive integer. Unit is optional and can be kb, mb, or gb"),
    ({"device-read-iops": ["/dev/vda:1k"]},
     'invalid argument "/dev/vda:1k" for "--device-read-iops" flag: invalid rate for device: '
     "/dev/vda:1k. The correct format is <device-path>:<number>. Number must be a positive "
     "integer"),
    ({"blkio-weight-device": ["vda:300"]},
     'invalid argument "vda:300" for "--blkio-weight-device" flag: bad format for device '
     "path: vda:300"),
    ({"blkio-weight-device": ["/dev/vda:5"]},
     'invalid argument "/dev/vda:5" for "--blkio-weight-device" flag: invalid weight for '
     "device: /dev/vda:5"),
    ({"cpus": "abc"}, 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a '
                      "rational number"),
    ({"cpus": "0.0000000001"}, 'invalid argument "0.0000000001" for "--cpus" flag: value is '
                               "too precise"),
    ({"ulimit": ["nofile"]}, 'invalid argument "nofile" for "--ulimit" flag: invalid ulimit '
                             "argument: nofile"),
    ({"ulimit": ["bogus=1"]}, 'invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit '
                              "type: bogus"),
    ({"ulimit": ["nofile=20:10"]}, 'invalid argument "nofile=20:10" for "--ulimit" flag: '
                                   "ulimit soft limit must be less than or equal to hard "
                                   "limit: 20 > 10"),
    ({"c": "x"}, 'invalid argument "x" for "-c, --cpu-shares" flag: strconv.ParseInt: '
                 'parsing "x": invalid syntax'),
    ({"blkio-weight": "70000"}, 'invalid argument "70000" for "--blkio-weight" flag: '
                                'strconv.ParseUint: parsing "70000": value out of range'),
])
def test_flag_errors(flags, msg):
    with pytest.raises(FlagError) as e:
        parse(flags)
    assert str(e.value) == msg and e.value.exit_code == 125


@pytest.mark.parametrize("flags,msg,code", [
    ({"m": "200M", "memory-swap": "100M"},
     "Minimum memoryswap limit should be larger than memory limit, see usage", 125),
    ({"memory-swap": "300M"},
     "You should always set the Memory limit when using Memoryswap limit, see usage", 125),
    ({"m": "1k"}, "Minimum memory limit allowed is 6MB", 125),
    ({"cpus": "3"}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
     125),
    ({"cpus": "0.0001"}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs "
                         "available", 125),
    ({"cpuset-cpus": "5"}, "Requested CPUs are not available - requested 5, available: 0-1",
     125),
    ({"cpuset-cpus": "0-x"}, "Invalid value 0-x for cpuset cpus: invalid format: 0-x", 125),
    ({"cpuset-mems": "3"}, "Requested memory nodes are not available - requested 3, "
                           "available: 0", 125),
    ({"cpu-shares": "-5"}, "shares: invalid argument", 125),
    ({"cpus": "1", "cpu-period": "50000"},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set", 125),
    ({"cpu-period": "500"}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                            "than 1s (i.e. 1000000)", 125),
    ({"cpu-quota": "500"}, "CPU cfs quota can not be less than 1ms (i.e. 1000)", 125),
    ({"memory-swappiness": "101"}, "Invalid value: 101, valid memory swappiness range is "
                                   "0-100", 125),
    ({"m": "64M", "memory-reservation": "128M"},
     "Minimum memory limit can not be less than memory reservation limit, see usage", 125),
    ({"kernel-memory": "64M"}, "Kernel memory limit is not supported by current kernels "
                               "(--kernel-memory)", 125),
    ({"device-write-bps": ["/dev/nosuch:30MB"]}, "stat /dev/nosuch: no such file or directory",
     127),
])
def test_daemon_errors(flags, msg, code):
    with pytest.raises(ResourceError) as e:
        parse(flags)
    assert str(e.value) == msg and e.value.exit_code == code


def test_blkio_weight_range_when_supported():
    with pytest.raises(ResourceError, match="Range of blkio weight is from 10 to 1000"):
        parse({"blkio-weight": "5"}, host=V2_HOST)


def test_pids_limit_zero_and_negative_mean_unlimited():
    for value in ("0", "-1"):
        r = parse({"pids-limit": value})
        assert r.host_config["PidsLimit"] is None and "pids" not in r.linux_resources


def test_already_parsed_values_are_taken_as_given():
    r = parse({"memory": 209715200, "cpus": 500000000, "ulimit": [
        {"Name": "nofile", "Soft": 1, "Hard": 2}]})
    assert r.host_config["Memory"] == 209715200 and r.host_config["NanoCpus"] == 500000000
    assert r.rlimits == [{"type": "RLIMIT_NOFILE", "hard": 2, "soft": 1}]


def test_flag_table_covers_every_flag():
    names = {f[0] for f in res.FLAGS}
    assert {"memory", "memory-swap", "memory-reservation", "memory-swappiness",
            "oom-kill-disable", "kernel-memory", "cpu-shares", "cpus", "cpu-period",
            "cpu-quota", "cpuset-cpus", "cpuset-mems", "blkio-weight", "blkio-weight-device",
            "device-read-bps", "device-write-bps", "device-read-iops", "device-write-iops",
            "pids-limit", "ulimit", "shm-size"} == names
    with pytest.raises(FlagError, match="unknown flag: --bogus"):
        parse({"bogus": "1"})


# --- update --------------------------------------------------------------------------

def test_update_merges_and_keeps_unset_fields():
    current = parse({"m": "200M", "cpu-shares": "512", "pids-limit": "50"}).host_config
    r = res.update_resources({"m": "300M", "memory-swap": "600M", "cpus": "1"}, current,
                             host=V1_HOST)
    hc = r.host_config
    assert (hc["Memory"], hc["MemorySwap"], hc["CpuShares"], hc["NanoCpus"]) == (
        314572800, 629145600, 512, 1000000000)
    assert r.linux_resources == {
        "memory": {"limit": 314572800, "swap": 629145600},
        "cpu": {"shares": 512, "period": 100000, "quota": 100000}, "pids": {"limit": 50}}


def test_update_pids_limit_lifted_and_errors():
    current = parse({"pids-limit": "50", "m": "200M"}).host_config
    r = res.update_resources({"pids-limit": "-1"}, current, host=V1_HOST)
    assert r.linux_resources["pids"] == {"limit": -1} and r.host_config["PidsLimit"] is None
    with pytest.raises(ResourceError, match="Memory limit should be smaller than already set "
                                            "memoryswap limit"):
        res.update_resources({"m": "500M"}, current, host=V1_HOST)
    with pytest.raises(FlagError, match="unknown flag: --ulimit"):
        res.update_resources({"ulimit": ["nofile=1"]}, current, host=V1_HOST)
    quota = parse({"cpu-quota": "50000"}).host_config
    with pytest.raises(ResourceError, match="Nano CPUs cannot be updated as CPU Quota has "
                                            "already been set"):
        res.update_resources({"cpus": "1"}, quota, host=V1_HOST)


def test_host_info_reads_this_host():
    info = res.host_info()
    assert info.mode in ("legacy", "hybrid", "unified") and info.ncpu >= 1
    assert res.parse_cpu_list(info.cpus)
