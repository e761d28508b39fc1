"""OCI config → runtime Config: translation and the errors that name the field."""
import copy

import pytest

from hutch import _sys
from hutch.oci.runtime_spec import ConfigError, example_config
from hutch.runtime import specconv


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def convert(config, bundle):
    return specconv.convert(config, bundle)


def test_example_config_converts(bundle):
    cfg = convert(example_config(), bundle)
    assert cfg.rootfs == f"{bundle}/rootfs"
    assert cfg.readonly_root is True
    assert cfg.process.args == ["sh"] and cfg.process.terminal is True
    want = (_sys.CLONE_NEWPID | _sys.CLONE_NEWNET | _sys.CLONE_NEWIPC | _sys.CLONE_NEWUTS
            | _sys.CLONE_NEWNS | _sys.CLONE_NEWCGROUP)
    assert cfg.new_namespaces == want
    assert [m.destination for m in cfg.mounts][:3] == ["/proc", "/dev", "/dev/pts"]
    assert cfg.process.rlimits == [("RLIMIT_NOFILE", 7, 1024, 1024)]


@pytest.mark.parametrize("options,flags,prop,data", [
    (["nosuid", "noexec", "nodev", "ro"],
     _sys.MS_NOSUID | _sys.MS_NOEXEC | _sys.MS_NODEV | _sys.MS_RDONLY, [], ""),
    (["rbind", "rw", "rprivate"], _sys.MS_BIND | _sys.MS_REC, [_sys.MS_PRIVATE | _sys.MS_REC],
     ""),
    (["ro", "rw"], 0, [], ""),
    (["mode=755", "size=65536k", "strictatime"], _sys.MS_STRICTATIME, [],
     "mode=755,size=65536k"),
    (["bind", "shared", "slave"], _sys.MS_BIND, [_sys.MS_SHARED, _sys.MS_SLAVE], ""),
])
def test_mount_options(options, flags, prop, data):
    assert specconv.parse_mount_options(options) == (flags, prop, data)


def test_unsupported_mount_option():
    with pytest.raises(ConfigError, match="'idmap' is not supported"):
        specconv.parse_mount_options(["idmap"])


def test_joined_namespace_path(bundle, tmp_path):
    config = example_config()
    config["linux"]["namespaces"][1]["path"] = "/proc/self/ns/net"
    cfg = convert(config, bundle)
    assert cfg.joined_namespaces == [("network", "/proc/self/ns/net")]
    assert not cfg.new_namespaces & _sys.CLONE_NEWNET


def test_bind_source_relative_to_bundle(bundle, tmp_path):
    (tmp_path / "data").mkdir()
    config = example_config()
    config["mounts"].append({"destination": "/data", "source": "data", "options": ["bind"]})
    assert convert(config, bundle).mounts[-1].source == f"{bundle}/data"


def test_capability_sets(bundle):
    config = example_config()
    config["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_CHOWN"],
                                         "effective": ["CAP_KILL"]}
    caps = convert(config, bundle).process.capabilities
    assert caps["bounding"] == 1 << 5 | 1 << 0
    assert caps["effective"] == 1 << 5
    assert caps["ambient"] == 0


def test_default_device_rules_appended(bundle):
    rules = convert(example_config(), bundle).resources["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules
    assert {"allow": True, "type": "c", "major": 136, "access": "rwm"} in rules


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
     "linux.namespaces[6].type: duplicate namespace 'pid'"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]),
     "process.rlimits[0]: soft limit 9 is above the hard limit 1"),
    (lambda c: c["mounts"].append({"destination": "rel", "type": "tmpfs"}),
     "mounts[7].destination: must be an absolute path"),
    (lambda c: c["mounts"].append({"destination": "/x"}),
     "mounts[7].type: must be set"),
    (lambda c: c["linux"].update(devices=[{"path": "/etc/x", "type": "c"}]),
     "linux.devices[0].path: must be under /dev"),
    (lambda c: c["linux"].update(rootfsPropagation="sideways"),
     "linux.rootfsPropagation: unknown propagation 'sideways'"),
    (lambda c: c["linux"].update(cgroupsPath="system.slice:hutch:x"),
     "linux.cgroupsPath: systemd cgroup paths are not supported"),
    (lambda c: c.update(hooks={"prestart": [{"path": "relative"}]}),
     "hooks.prestart[0].path: must be an absolute path"),
    (lambda c: c.update(hooks={"preboot": []}), "hooks.preboot: unknown hook kind"),
    (lambda c: c["linux"].update(namespaces=[{"type": "mount"}], uidMappings=[
        {"containerID": 0, "hostID": 1000, "size": 1}]),
     "linux.uidMappings: user namespace mappings need a user namespace"),
    (lambda c: c["linux"]["namespaces"].append({"type": "user"}),
     "linux.uidMappings: a new user namespace needs uidMappings and gidMappings"),
    (lambda c: c.update(hostname=5), "hostname: must be a string, got int 5"),
    (lambda c: c["linux"].update(sysctl={"../../etc": "1"}),
     "linux.sysctl.../../etc: invalid sysctl name"),
    (lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}),
     "linux.seccomp.syscalls[0].args[0].op: unknown operator 'SCMP_CMP_LIKE'"),
    (lambda c: c.pop("process"), "process: must be set"),
    (lambda c: c["linux"].update(personality={"domain": "LINUX32"}),
     "linux.personality: is not supported"),
    (lambda c: c["process"].update(ioPriority={"class": "IOPRIO_CLASS_IDLE"}),
     "process.ioPriority: is not supported"),
])
def test_errors_name_the_field(bundle, mutate, message):
    config = copy.deepcopy(example_config())
    mutate(config)
    with pytest.raises(ConfigError) as e:
        convert(config, bundle)
    assert message in str(e.value)


def test_device_rules_not_repeated_but_order_kept(bundle):
    config = example_config()
    allow_null = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    config["linux"]["resources"]["devices"] = [
        allow_null, {"allow": False, "access": "rwm"}, dict(allow_null)]
    rules = convert(config, bundle).resources["devices"]
    assert rules[:3] == [allow_null, {"allow": False, "access": "rwm"}, allow_null]
    assert rules.count(allow_null) == 2


def test_bind_source_relative_to_bundle_whatever_the_root(bundle, tmp_path):
    (tmp_path / "data").mkdir()
    config = example_config()
    config["root"]["path"] = "."  # runtime-tools' bundles are their own rootfs
    config["mounts"].append({"destination": "/data", "source": "data", "options": ["bind"]})
    cfg = convert(config, bundle)
    assert cfg.rootfs == bundle and cfg.mounts[-1].source == f"{bundle}/data"
