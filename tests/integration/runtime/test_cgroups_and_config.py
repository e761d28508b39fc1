"""linux.resources in this host's v1 cgroup files, update, and bad configs leaving nothing."""
import json
import os

import pytest

from rt_helpers import leaks


def _read(bundle, controller, name):
    with open(os.path.join(bundle.cgroup_dir(controller), name)) as f:
        return f.read().strip()


def test_resources_written_to_v1_files(bundle):
    bundle.config["linux"]["resources"] = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 50},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    bundle.create(["sleep", "60"])
    try:
        assert _read(bundle, "memory", "memory.limit_in_bytes") == str(64 << 20)
        assert _read(bundle, "memory", "memory.soft_limit_in_bytes") == str(32 << 20)
        assert _read(bundle, "cpu", "cpu.shares") == "512"
        assert _read(bundle, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _read(bundle, "cpu", "cpu.cfs_period_us") == "100000"
        assert _read(bundle, "cpuset", "cpuset.cpus") == "0"
        assert _read(bundle, "pids", "pids.max") == "50"
        rules = _read(bundle, "devices", "devices.list").splitlines()
        assert "c 1:3 rwm" in rules and "c 136:* rwm" in rules and "a *:* rwm" not in rules
        pid = bundle.state()["pid"]
        for controller in ("memory", "cpu", "pids", "devices", "freezer"):
            assert str(pid) in _read(bundle, controller, "cgroup.procs").split()
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


def test_exec_joins_the_cgroup_before_the_program_runs(bundle):
    # The exec'd process is moved in alone (its intermediate never is), before execve: the
    # program sees its own cgroup, and afterwards only the init is left there.
    bundle.create(["sleep", "60"])
    try:
        bundle.runtime("start", bundle.id, check=True)
        out = bundle.runtime("exec", bundle.id, "cat", "/proc/self/cgroup", check=True).stdout
        init = bundle.state()["pid"]
        with open(f"/proc/{init}/cgroup") as f:
            assert out == f.read()
        for controller in ("memory", "cpu", "pids", "devices", "freezer"):
            assert _read(bundle, controller, "cgroup.procs").split() == [str(init)]
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


@pytest.mark.parametrize("cgroupns", [False, True])
def test_exec_joins_by_itself_as_the_init_does(bundle, cgroupns):
    # Born in the cgroup2 directory, joining each v1 `tasks` through files we opened (the
    # host's are out of its sight); in a cgroup namespace, joined after those.
    from hutch import cgroups
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.create(["sleep", "60"])
    try:
        bundle.runtime("start", bundle.id, check=True)
        out = bundle.runtime("--debug", "exec", bundle.id, "cat", "/proc/self/cgroup",
                             check=True)
        init = bundle.state()["pid"]
        with open(f"/proc/{init}/cgroup") as f:
            expected = f.read()      # the host's view of the init's
        if cgroupns:                # each of its cgroups is the namespace's root
            expected = "".join(line.rpartition(":")[0] + ":/\n" if ":name=" not in line
                               else line + "\n" for line in expected.splitlines())
        assert out.stdout == expected
        if cgroups.cgroup_mounts().unified:
            assert "clone3: into the container's cgroup2 directory" in out.stderr
            assert "clone3: not used" not in out.stderr
        for _, d in cgroups.manager("/" + bundle.id).hierarchy_dirs():
            assert f"cgroup: join {d}/tasks" in out.stderr
        assert "/cgroup.procs = " not in out.stderr
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


def test_pids_limit_enforced(bundle):
    bundle.config["linux"]["resources"] = {"pids": {"limit": 3}}
    out = bundle.run(["sh", "-c", "for i in 1 2 3 4 5; do sleep 1 & done 2>&1; wait"])
    assert "can't fork" in out.stdout + out.stderr


def test_update_resources(bundle):
    bundle.create(["sleep", "60"])
    try:
        res = json.dumps({"memory": {"limit": 48 << 20}, "pids": {"limit": 20}})
        out = bundle.runtime("update", "--resources", "-", bundle.id, input=res)
        assert out.returncode == 0, out.stderr
        assert _read(bundle, "memory", "memory.limit_in_bytes") == str(48 << 20)
        assert _read(bundle, "pids", "pids.max") == "20"
        bundle.runtime("update", "--memory", "40m", "--cpu-shares", "256", bundle.id,
                       check=True)
        assert _read(bundle, "memory", "memory.limit_in_bytes") == str(40 << 20)
        assert _read(bundle, "cpu", "cpu.shares") == "256"
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


def test_pause_freezes_the_cgroup(bundle):
    bundle.create(["sleep", "60"])
    try:
        bundle.runtime("start", bundle.id, check=True)
        bundle.runtime("pause", bundle.id, check=True)
        assert _read(bundle, "freezer", "freezer.state") == "FROZEN"
        bundle.runtime("resume", bundle.id, check=True)
        assert _read(bundle, "freezer", "freezer.state") == "THAWED"
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


def test_events_stats(bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    bundle.create(["sleep", "60"])
    try:
        out = bundle.runtime("events", "--stats", bundle.id, check=True)
        event = json.loads(out.stdout)
        assert event["type"] == "stats" and event["id"] == bundle.id
        assert event["data"]["memory"]["limit"] == 64 << 20
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


def test_custom_cgroups_path(bundle):
    parent = f"{bundle.id}-parent"
    bundle.config["linux"]["cgroupsPath"] = f"/{parent}/{bundle.id}"
    bundle.create(["sleep", "60"])
    try:
        assert os.path.isdir(f"/sys/fs/cgroup/pids/{parent}/{bundle.id}")
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)
        assert not os.path.exists(f"/sys/fs/cgroup/pids/{parent}/{bundle.id}")
        # The parent was made by the runtime but is not the container's: the test removes it.
        for controller in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{controller}/{parent}"
            if os.path.isdir(d):
                os.rmdir(d)


BAD_CONFIGS = [
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
     "linux.namespaces[5].type: unknown namespace type 'bogus'"),
    (lambda c: c.update(ociVersion="2.0.0"), "ociVersion: unsupported version '2.0.0'"),
    (lambda c: c["process"].update(args=[]), "process.args: must not be empty"),
    (lambda c: c["process"].update(cwd="relative"), "process.cwd: must be an absolute path"),
    (lambda c: c["mounts"].append({"destination": "/x", "source": "/no/such/dir",
                                   "options": ["bind"]}),
     "mounts[5].source: bind source '/no/such/dir' does not exist"),
    (lambda c: c["process"]["capabilities"]["bounding"].append("CAP_BOGUS"),
     "process.capabilities.bounding: unknown capability 'CAP_BOGUS'"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
     "process.rlimits[0].type: unknown rlimit 'RLIMIT_BOGUS'"),
    (lambda c: c["process"].update(apparmorProfile="docker-default"),
     "AppArmor is not enabled on this system"),
    (lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"),
     "SELinux is not enabled on this system"),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_BOGUS"}),
     "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_BOGUS'"),
    (lambda c: c["root"].update(path="no-such-rootfs"), "root.path: rootfs"),
    (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1, "size": 1}]),
     "linux.uidMappings: user namespace mappings need a user namespace"),
    (lambda c: c["process"].update(user={"uid": "root"}),
     "process.user.uid: must be an integer"),
]


@pytest.mark.parametrize("mutate,message", BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_one_line_and_nothing_left(bundle, mutate, message):
    mutate(bundle.config)
    bundle.write()
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1
    assert message in out.stderr.replace('\\"', '"')
    assert leaks(bundle) == []


def test_failure_in_the_init_leaves_nothing(bundle):
    bundle.config["linux"]["sysctl"] = {"kernel.no_such_knob": "1"}
    bundle.write()
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1
    assert "setting sysctl kernel.no_such_knob=1: no such file or directory" in out.stderr
    assert leaks(bundle) == []


def test_missing_config(bundle):
    os.unlink(os.path.join(bundle.path, "config.json"))
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1 and "config.json not found" in out.stderr
    assert leaks(bundle) == []


def test_invalid_id(bundle):
    out = bundle.runtime("create", "--bundle", bundle.path, "../evil")
    assert out.returncode == 1 and "invalid id format: ../evil" in out.stderr


def test_systemd_cgroup_refused(bundle):
    out = bundle.runtime("--systemd-cgroup", "create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1 and "--systemd-cgroup is not supported" in out.stderr
    assert leaks(bundle) == []


def test_any_1x_oci_version(bundle):
    bundle.config["ociVersion"] = "1.3.0"
    assert bundle.run(["true"]).returncode == 0


def test_the_init_joins_its_cgroups_without_a_move(bundle):
    # Born in the cgroup2 directory (clone3) and joining each v1 hierarchy by itself
    # (`tasks`): none of the parent's moves that wait for the kernel after a quiet spell.
    from hutch import cgroups
    bundle.config["process"]["args"] = ["cat", "/proc/self/cgroup"]
    bundle.write()
    out = bundle.runtime("--debug", "run", "--bundle", bundle.path, bundle.id, check=True)
    lines = [line for line in out.stdout.splitlines() if ":name=" not in line]
    assert lines and all(line.endswith(f":/{bundle.id}") for line in lines), lines
    steps = out.stderr
    if cgroups.cgroup_mounts().unified:
        assert f"clone3: init into /sys/fs/cgroup/unified/{bundle.id}" in steps
    for _, d in cgroups.manager("/" + bundle.id).hierarchy_dirs():
        assert f"cgroup: join {d}/tasks" in steps
    assert "/cgroup.procs = " not in steps
    assert leaks(bundle) == []


def test_a_threaded_caller_forks_then_moves_the_init(bundle):
    # fork_into_cgroup refuses a process with other threads (glibc's fork wrapper is
    # skipped): the runtime used as a library there forks, then moves the init in itself.
    import subprocess
    import sys
    from e2e_helpers import ROOT_DIR
    bundle.config["process"]["args"] = ["cat", "/proc/self/cgroup"]
    bundle.write()
    code = f"""
import sys, threading
sys.path.insert(0, {os.path.join(ROOT_DIR, "src")!r})
from hutch import trace
trace.enable()
stop = threading.Event()
helper = threading.Thread(target=stop.wait)
helper.start()
from hutch.runtime import container
try:
    status = container.run({bundle.root!r}, {bundle.id!r}, {bundle.path!r})
finally:
    stop.set()
    helper.join()
sys.exit(status)
"""
    p = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [line for line in p.stdout.splitlines() if ":name=" not in line]
    assert lines and all(line.endswith(f":/{bundle.id}") for line in lines), lines
    from hutch import cgroups
    if cgroups.cgroup_mounts().unified:
        assert "clone3: not used: [Errno 16]" in p.stderr
        assert f"/unified/{bundle.id}/cgroup.procs = " in p.stderr    # moved by the parent
    assert leaks(bundle) == []
