"""Docker's default spec: capabilities, mounts, masked/readonly paths, device rules."""
import os
import resource

from hutch.oci import defaults
from hutch.oci.defaults import ALL_CAPS, DEFAULT_CAPS, default_spec


def cap_mask(names):
    mask = 0
    for name in names:
        mask |= 1 << ALL_CAPS[name]
    return mask


def test_default_caps_are_dockers_fourteen():
    assert len(DEFAULT_CAPS) == 14
    assert f"{cap_mask(DEFAULT_CAPS):016x}" == "00000000a80425fb"


def test_all_caps_by_bit():
    assert ALL_CAPS["CAP_CHOWN"] == 0
    assert ALL_CAPS["CAP_SYS_ADMIN"] == 21
    assert ALL_CAPS["CAP_CHECKPOINT_RESTORE"] == 40
    assert sorted(ALL_CAPS.values()) == list(range(41))


def test_spec_capabilities_and_process():
    spec = default_spec()
    proc = spec["process"]
    caps = proc["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert caps[kind] == list(DEFAULT_CAPS)
    assert caps["inheritable"] == [] and caps["ambient"] == []
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert proc["cwd"] == "/"
    assert proc["noNewPrivileges"] is False
    assert proc["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert proc["terminal"] is False
    assert spec["root"] == {"path": "rootfs", "readonly": False}


def test_terminal_sets_term():
    proc = default_spec(terminal=True)["process"]
    assert proc["terminal"] is True
    assert "TERM=xterm" in proc["env"]


def test_nofile_within_hard_limit():
    (rlimit,) = default_spec()["process"]["rlimits"]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert rlimit["type"] == "RLIMIT_NOFILE"
    assert rlimit["soft"] == rlimit["hard"] <= defaults.DOCKER_NOFILE
    if hard != resource.RLIM_INFINITY:
        assert rlimit["hard"] <= hard


def test_namespaces_cgroup_only_when_asked():
    types = [ns["type"] for ns in default_spec()["linux"]["namespaces"]]
    assert sorted(types) == ["ipc", "mount", "network", "pid", "uts"]
    types = [ns["type"] for ns in default_spec(cgroup_ns=True)["linux"]["namespaces"]]
    assert "cgroup" in types and "user" not in types


def test_mounts_match_docker():
    mounts = {m["destination"]: m for m in default_spec()["mounts"]}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                            "/dev/mqueue", "/dev/shm"]
    assert "ro" in mounts["/sys"]["options"]
    assert "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert mounts["/sys/fs/cgroup"]["type"] == "cgroup"
    assert "size=67108864" in mounts["/dev/shm"]["options"]
    assert "size=65536k" in mounts["/dev"]["options"]
    assert {"nosuid", "noexec", "nodev"} <= set(mounts["/proc"]["options"])


def test_masked_and_readonly_paths():
    linux = default_spec()["linux"]
    for path in ("/proc/kcore", "/proc/keys", "/proc/interrupts", "/proc/timer_list",
                 "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/acpi"):
        assert path in linux["maskedPaths"]
    assert linux["readonlyPaths"] == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                      "/proc/sysrq-trigger"]


def test_thermal_throttle_paths_found(tmp_path):
    for cpu in (0, 1, 10):
        (tmp_path / f"devices/system/cpu/cpu{cpu}/thermal_throttle").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/cpufreq").mkdir()
    assert defaults.thermal_throttle_paths(str(tmp_path)) == [
        f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in (0, 1, 10)]


def test_device_rules_order():
    rules = default_spec()["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"} in rules
    allowed = {(r["type"], r.get("major"), r.get("minor"), r["access"]) for r in rules
               if r["allow"]}
    assert allowed == {("c", 1, 5, "rwm"), ("c", 1, 3, "rwm"), ("c", 1, 9, "rwm"),
                       ("c", 1, 8, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"),
                       ("c", None, None, "m"), ("b", None, None, "m"), ("c", 1, 7, "rwm"),
                       ("c", 136, None, "rwm"), ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm")}
    assert default_spec()["linux"]["devices"] == []


def test_seccomp_present():
    seccomp = default_spec()["linux"]["seccomp"]
    assert seccomp["defaultAction"] == "SCMP_ACT_ERRNO"
    assert seccomp["defaultErrnoRet"] == 1


def test_specs_are_independent():
    a, b = default_spec(), default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["linux"]["resources"]["devices"][0]["allow"] = True
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["bounding"]
    assert b["linux"]["resources"]["devices"][0]["allow"] is False


def test_host_bounding_caps_from_status(tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/cap_last_cap").write_text("40\n")
    (tmp_path / "self/status").write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    caps = defaults.host_bounding_caps(str(tmp_path))
    assert "CAP_SYS_RESOURCE" not in caps
    assert len(caps) == 40 and "CAP_CHECKPOINT_RESTORE" in caps


def test_host_bounding_caps_respects_last_cap(tmp_path):
    (tmp_path / "self").mkdir()
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/cap_last_cap").write_text("37\n")
    (tmp_path / "self/status").write_text("CapBnd:\t000001ffffffffff\n")
    caps = defaults.host_bounding_caps(str(tmp_path))
    assert caps[-1] == "CAP_AUDIT_READ" and len(caps) == 38


def test_real_host_last_cap():
    assert defaults.host_last_cap() >= 37
    assert os.path.exists("/proc/sys/kernel/cap_last_cap")
