"""apply_security: Docker's security flags on the default spec (no root needed)."""
import json
import os
import stat

import pytest

from hutch.engine import security
from hutch.engine.errors import InvalidParameter
from hutch.engine.security import (apply_security, normalize_caps, parse_device,
                                   parse_security_opts, tweak_capabilities, validate_sysctl)
from hutch.oci import defaults
from hutch.oci.defaults import ALL_CAPS, DEFAULT_CAPS, default_spec

HOST_CAPS = [c for c in ALL_CAPS if c != "CAP_SYS_RESOURCE"]


@pytest.fixture
def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "# a comment\n"
        "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n")
    (root / "etc/group").write_text(
        "root:x:0:\nwheel:x:10:alice,bob\nalice:x:1000:\naudio:x:29:alice\nstaff:x:50:\n")
    return str(root)


@pytest.fixture(autouse=True)
def fixed_host_caps(monkeypatch):
    monkeypatch.setattr(defaults, "host_bounding_caps", lambda *a: list(HOST_CAPS))


def apply(rootfs, **kw):
    spec = default_spec()
    warnings = apply_security(spec, rootfs=rootfs, **kw)
    return spec, warnings


def caps_of(spec):
    c = spec["process"]["capabilities"]
    assert c["bounding"] == c["effective"] == c["permitted"]
    assert c["inheritable"] == [] and c["ambient"] == []
    return c["bounding"]


# --- capabilities ---

def test_defaults_unchanged(rootfs):
    spec, warnings = apply(rootfs)
    assert warnings == []
    assert caps_of(spec) == list(DEFAULT_CAPS)
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert "HOME=/root" in spec["process"]["env"]
    assert spec == apply(rootfs)[0]


@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin",
                                  "Net_Admin"])
def test_cap_add_spellings(rootfs, name):
    spec, _ = apply(rootfs, cap_add=[name])
    assert caps_of(spec) == list(DEFAULT_CAPS) + ["CAP_NET_ADMIN"]


def test_cap_drop(rootfs):
    spec, _ = apply(rootfs, cap_drop=["chown", "CAP_NET_RAW"])
    assert caps_of(spec) == [c for c in DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_NET_RAW")]


def test_cap_drop_all_add_one(rootfs):
    spec, _ = apply(rootfs, cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE"])
    assert caps_of(spec) == ["CAP_NET_BIND_SERVICE"]


def test_cap_drop_all(rootfs):
    spec, _ = apply(rootfs, cap_drop=["all"])
    assert caps_of(spec) == []


def test_cap_add_all_minus_drop(rootfs):
    spec, warnings = apply(rootfs, cap_add=["ALL"], cap_drop=["SYS_ADMIN"])
    assert caps_of(spec) == [c for c in HOST_CAPS if c != "CAP_SYS_ADMIN"]
    assert "CAP_SYS_RESOURCE" in warnings[0]


def test_unknown_cap(rootfs):
    with pytest.raises(InvalidParameter) as e:
        apply(rootfs, cap_add=["foo"])
    assert str(e.value) == 'invalid CapAdd: unknown capability: "CAP_FOO"'
    with pytest.raises(InvalidParameter) as e:
        apply(rootfs, cap_drop=["CAP_BAR"])
    assert str(e.value) == 'invalid CapDrop: unknown capability: "CAP_BAR"'


def test_cap_add_not_held_refused(rootfs):
    with pytest.raises(InvalidParameter) as e:
        apply(rootfs, cap_add=["SYS_RESOURCE"])
    assert str(e.value) == ("invalid CapAdd: capability not supported by your kernel or not "
                            'available in the current environment: "CAP_SYS_RESOURCE"')


def test_normalize_and_tweak_pure():
    assert normalize_caps(["all", "kill"], "CapAdd") == ["ALL", "CAP_KILL"]
    assert tweak_capabilities(privileged=True, host_caps=["CAP_KILL"]) == ["CAP_KILL"]
    assert tweak_capabilities(host_caps=HOST_CAPS) == list(DEFAULT_CAPS)


def test_seccomp_follows_caps(rootfs):
    spec, _ = apply(rootfs, cap_add=["SYS_ADMIN"])
    allowed = {n for r in spec["linux"]["seccomp"]["syscalls"]
               if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}
    assert {"mount", "unshare", "setns", "clone"} <= allowed


# --- privileged ---

def test_privileged(rootfs):
    spec, warnings = apply(rootfs, privileged=True)
    linux = spec["linux"]
    assert caps_of(spec) == HOST_CAPS
    assert "seccomp" not in linux
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert "ro" not in mounts["/sys"]["options"]
    assert "ro" not in mounts["/sys/fs/cgroup"]["options"]
    paths = {d["path"] for d in linux["devices"]}
    assert "/dev/null" in paths and "/dev/console" not in paths
    assert not any(p.startswith("/dev/pts/") for p in paths)
    assert warnings and "CAP_SYS_RESOURCE" in warnings[0]


def test_host_devices_skips(tmp_path):
    dev = tmp_path / "dev"
    (dev / "pts").mkdir(parents=True)
    (dev / "sub").mkdir()
    (dev / "regular").write_text("")
    os.symlink("/dev/null", dev / "pts" / "0")
    os.symlink("/dev/null", dev / "sub" / "x")
    os.symlink("/dev/null", dev / "console")
    found = security.host_devices(str(dev))
    assert [d["path"] for d in found] == ["/dev/sub/x"]
    assert found[0]["type"] == "c" and (found[0]["major"], found[0]["minor"]) == (1, 3)


# --- security-opt ---

@pytest.mark.parametrize("opts,nnp", [(["no-new-privileges"], True),
                                      (["no-new-privileges=true"], True),
                                      (["no-new-privileges:true"], True),
                                      (["no-new-privileges=1"], True),
                                      (["no-new-privileges=false"], False),
                                      ([], False)])
def test_no_new_privileges(rootfs, opts, nnp):
    spec, _ = apply(rootfs, security_opt=opts)
    assert spec["process"]["noNewPrivileges"] is nnp


@pytest.mark.parametrize("opt,message", [
    ("foo", 'invalid --security-opt 1: "foo"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ("systempaths=confined", 'invalid --security-opt 2: "systempaths=confined"'),
])
def test_bad_security_opts(opt, message):
    with pytest.raises(InvalidParameter) as e:
        parse_security_opts([opt])
    assert str(e.value) == message


def test_seccomp_unconfined(rootfs):
    spec, _ = apply(rootfs, security_opt=["seccomp=unconfined"])
    assert "seccomp" not in spec["linux"]
    assert spec["linux"]["maskedPaths"]   # only seccomp is lifted


def test_seccomp_builtin_is_the_default(rootfs):
    assert apply(rootfs, security_opt=["seccomp=builtin"])[0] == apply(rootfs)[0]


def test_seccomp_profile_file(rootfs, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    spec, _ = apply(rootfs, security_opt=[f"seccomp={path}"])
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def test_seccomp_profile_missing(rootfs, tmp_path):
    with pytest.raises(InvalidParameter, match="opening seccomp profile"):
        apply(rootfs, security_opt=[f"seccomp={tmp_path}/none.json"])


def test_systempaths_unconfined(rootfs):
    spec, _ = apply(rootfs, security_opt=["systempaths=unconfined"])
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert "seccomp" in spec["linux"]


def test_apparmor_and_labels(rootfs, monkeypatch):
    monkeypatch.setattr(security, "APPARMOR_PATH", "/nonexistent/apparmor")
    apply(rootfs, security_opt=["apparmor=unconfined", "label=disable"])
    with pytest.raises(InvalidParameter, match="apparmor is not enabled on this host"):
        apply(rootfs, security_opt=["apparmor=docker-default"])
    with pytest.raises(InvalidParameter, match="SELinux labels are not supported"):
        apply(rootfs, security_opt=["label=type:svirt_lxc_net_t"])


# --- read-only, sysctls, userns ---

def test_read_only(rootfs):
    spec, _ = apply(rootfs, read_only=True)
    assert spec["root"]["readonly"] is True


@pytest.mark.parametrize("value", ["net.ipv4.ip_forward=1", "kernel.shmmax=100",
                                   "kernel.msgmax=9", "kernel.sem=1 2 3 4",
                                   "fs.mqueue.msg_max=20", "kernel.shm_rmid_forced=1"])
def test_namespaced_sysctls(rootfs, value):
    key, setting = validate_sysctl(value)
    spec, _ = apply(rootfs, sysctls={key: setting})
    assert spec["linux"]["sysctl"] == {key: setting}


@pytest.mark.parametrize("key", ["kernel.hostname", "vm.swappiness", "kernel.core_pattern",
                                 "fs.file-max"])
def test_host_sysctls_refused(rootfs, key):
    with pytest.raises(InvalidParameter) as e:
        apply(rootfs, sysctls={key: "1"})
    assert str(e.value) == f"sysctl '{key}=1' is not allowed"
    with pytest.raises(InvalidParameter):
        validate_sysctl(key)


def test_net_sysctl_needs_netns(rootfs):
    spec = default_spec()
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"]
    with pytest.raises(InvalidParameter,
                       match='sysctl "net.ipv4.ip_forward" not allowed in host network'):
        apply_security(spec, rootfs=rootfs, sysctls={"net.ipv4.ip_forward": "1"})


@pytest.fixture
def subids(tmp_path, monkeypatch):
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("other:1:5\nhutch:200000:65536\nhutch:400000:1000\nbad:x:y\n")
    subgid.write_text("hutch:300000:65536\nstaff:500000:10\n")
    monkeypatch.setattr(security, "SUBUID_FILE", str(subuid))
    monkeypatch.setattr(security, "SUBGID_FILE", str(subgid))
    calls = []
    monkeypatch.setattr(security, "shift_rootfs", lambda *a: calls.append(a))
    monkeypatch.setattr(security, "check_reachable", lambda *a: None)
    return calls


def test_prepare_userns_rootfs_only_with_mappings(rootfs, subids):
    spec = default_spec()
    security.prepare_userns_rootfs(spec, rootfs)
    assert subids == []
    spec, _ = apply(rootfs, userns="default")
    security.prepare_userns_rootfs(spec, "/other/rootfs")
    assert [c[0] for c in subids] == [rootfs, "/other/rootfs"]


def test_userns_host_is_no_user_namespace(rootfs, subids):
    spec, _ = apply(rootfs, userns="host")
    assert "user" not in [n["type"] for n in spec["linux"]["namespaces"]]
    assert "uidMappings" not in spec["linux"] and subids == []


def test_userns_remap_default(rootfs, subids):
    spec, _ = apply(rootfs, userns="default")
    linux = spec["linux"]
    assert "user" in [n["type"] for n in linux["namespaces"]]
    assert linux["uidMappings"] == [
        {"containerID": 0, "hostID": 200000, "size": 65536},
        {"containerID": 65536, "hostID": 400000, "size": 1000}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 300000, "size": 65536}]
    assert subids == [(rootfs, linux["uidMappings"], linux["gidMappings"])]
    assert caps_of(spec) == list(DEFAULT_CAPS) and "seccomp" in linux


def test_userns_remap_user_and_group(rootfs, subids):
    spec, _ = apply(rootfs, userns="hutch:staff")
    assert spec["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 500000, "size": 10}]


def test_userns_remap_without_subids(rootfs, subids):
    with pytest.raises(InvalidParameter, match='no subordinate ids for "nobody"'):
        apply(rootfs, userns="nobody")


def test_userns_remap_conflicts(rootfs, subids):
    with pytest.raises(InvalidParameter, match="privileged mode is incompatible"):
        apply(rootfs, userns="default", privileged=True)
    spec = default_spec()
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"]
    with pytest.raises(InvalidParameter, match="host's network namespace"):
        apply_security(spec, rootfs=rootfs, userns="default")


def test_check_reachable(tmp_path):
    closed = tmp_path / "closed"
    (closed / "rootfs").mkdir(parents=True)
    os.chmod(closed, 0o700)
    with pytest.raises(InvalidParameter) as e:
        security.check_reachable(str(closed / "rootfs"), 231072, 231072)
    assert str(e.value).endswith(f"{closed} is mode 0700")
    os.chmod(closed, 0o711)
    open_parents = all(os.stat(p).st_mode & 0o001 for p in (tmp_path, *tmp_path.parents))
    if open_parents:
        security.check_reachable(str(closed / "rootfs"), 231072, 231072)


def test_host_id():
    maps = [{"containerID": 0, "hostID": 100, "size": 10},
            {"containerID": 10, "hostID": 500, "size": 5}]
    assert security.host_id(maps, 0) == 100
    assert security.host_id(maps, 12) == 502
    assert security.host_id(maps, 15) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_shift_rootfs(tmp_path):
    root = tmp_path / "shift"
    (root / "bin").mkdir(parents=True)
    (root / "bin/tool").write_text("x")
    os.chmod(root / "bin/tool", 0o4755)
    (root / "home").mkdir()
    os.chown(root / "home", 1000, 1000)
    os.symlink("/bin", root / "link")
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert security.shift_rootfs(str(root), maps, maps) is True
    for path in (root, root / "bin", root / "bin/tool"):
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid) == (100000, 100000)
    assert os.lstat(root / "link").st_uid == 100000
    assert os.stat(root / "home").st_uid == 101000
    assert stat.S_IMODE(os.stat(root / "bin/tool").st_mode) == 0o4755
    assert security.shift_rootfs(str(root), maps, maps) is False   # once only
    small = [{"containerID": 0, "hostID": 100000, "size": 10}]
    os.chown(root, 0, 0)
    with pytest.raises(InvalidParameter, match="outside the remapped range"):
        security.shift_rootfs(str(root), small, small)


# --- devices ---

@pytest.mark.parametrize("value,expected", [
    ("/dev/sda", ("/dev/sda", "/dev/sda", "rwm")),
    ("/dev/sda:r", ("/dev/sda", "/dev/sda", "r")),
    ("/dev/sda:/dev/xvda", ("/dev/sda", "/dev/xvda", "rwm")),
    ("/dev/sda:/dev/xvda:rw", ("/dev/sda", "/dev/xvda", "rw")),
    ("/dev/sda:/dev//x/../xvdb", ("/dev/sda", "/dev/xvdb", "rwm")),
])
def test_parse_device(value, expected):
    assert parse_device(value) == expected


@pytest.mark.parametrize("value,message", [
    ("/dev/sda:/dev/xvda:rwx", "bad mode specified: rwx"),
    ("/dev/sda:/dev/xvda:rr", "bad mode specified: rr"),
    ("/dev/sda:relative", "relative is not an absolute path"),
    ("a:b:c:d", "bad format for path: a:b:c:d"),
    (":/dev/x", "bad format for path: :/dev/x"),
])
def test_bad_devices(value, message):
    with pytest.raises(InvalidParameter) as e:
        parse_device(value)
    assert str(e.value) == message


def test_device_node(rootfs):
    spec, _ = apply(rootfs, devices=["/dev/null:/dev/mynull:rw"])
    (entry,) = spec["linux"]["devices"]
    st = os.stat("/dev/null")
    assert entry == {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                     "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    assert spec["linux"]["resources"]["devices"][-1] == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}


def test_device_missing(rootfs):
    with pytest.raises(InvalidParameter) as e:
        apply(rootfs, devices=["/dev/nosuch-hutch"])
    assert str(e.value) == ('error gathering device information while adding custom device '
                            '"/dev/nosuch-hutch": no such file or directory')


def test_device_not_a_device(rootfs, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidParameter, match="not a device node"):
        apply(rootfs, devices=[f"{tmp_path}/f"])


def test_device_directory(rootfs, tmp_path):
    d = tmp_path / "devdir"
    d.mkdir()
    os.symlink("/dev/zero", d / "z")
    spec, _ = apply(rootfs, devices=[f"{d}:/dev/stuff"])
    (entry,) = spec["linux"]["devices"]
    assert entry["path"] == "/dev/stuff/z" and entry["minor"] == 5
