"""Docker's default seccomp profile and the Docker JSON profile → OCI conversion."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from hutch.oci.defaults import DEFAULT_CAPS
from hutch.oci.seccomp_default import (ALLOWED_SYSCALLS, DOCKER_DEFAULT, ProfileError,
                                       convert_docker_profile, load_docker_json, profile_for)

BLOCKED = ("acct", "add_key", "keyctl", "request_key", "bpf", "clock_settime",
           "settimeofday", "stime", "create_module", "init_module", "finit_module",
           "delete_module", "get_kernel_syms", "query_module", "kexec_load",
           "kexec_file_load", "ioperm", "iopl", "kcmp", "lookup_dcookie", "mount", "umount",
           "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "mbind",
           "set_mempolicy", "get_mempolicy", "move_pages", "nfsservctl", "open_by_handle_at",
           "perf_event_open", "quotactl", "reboot", "setns", "unshare", "swapon", "swapoff",
           "sysfs", "_sysctl", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
           "io_uring_setup", "io_uring_enter", "io_uring_register", "clone3",
           "clone", "socket", "personality", "syslog", "sethostname", "vhangup")


def rules_for(profile, name):
    return [r for r in profile["syscalls"] if name in r["names"]]


def unconditional(profile):
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
            and not r.get("args") for n in r["names"]}


def default():
    return profile_for(set(DEFAULT_CAPS), machine="x86_64", kernel="6.18.0")


def test_shape():
    p = default()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert len(ALLOWED_SYSCALLS) > 330
    for rule in p["syscalls"]:
        assert set(rule) <= {"names", "action", "args", "errnoRet"}


@pytest.mark.parametrize("name", BLOCKED)
def test_blocked_by_default(name):
    assert name not in unconditional(default())


def test_common_calls_allowed():
    allowed = unconditional(default())
    for name in ("read", "write", "execve", "openat", "mmap", "futex", "fork", "wait4",
                 "setuid", "chown", "mknod", "arch_prctl", "chroot", "ptrace", "kill"):
        assert name in allowed, name


def test_clone_without_namespace_flags():
    (rule,) = rules_for(default(), "clone")
    assert rule["action"] == "SCMP_ACT_ALLOW"
    assert rule["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                             "op": "SCMP_CMP_MASKED_EQ"}]


def test_clone3_enosys():
    (rule,) = rules_for(default(), "clone3")
    assert rule["action"] == "SCMP_ACT_ERRNO" and rule["errnoRet"] == 38


def socket_allowed(profile, family):
    ops = {"SCMP_CMP_LT": lambda a, b: a < b, "SCMP_CMP_EQ": lambda a, b: a == b,
           "SCMP_CMP_GT": lambda a, b: a > b}
    for rule in rules_for(profile, "socket"):
        (arg,) = rule["args"]
        if ops[arg["op"]](family, arg["value"]):
            return True
    return False


def test_socket_families():
    p = default()
    for family in (1, 2, 10, 16, 17, 37, 39, 41, 44):
        assert socket_allowed(p, family), family
    assert not socket_allowed(p, 38)   # AF_ALG
    assert not socket_allowed(p, 40)   # AF_VSOCK


def test_personality_values():
    values = {r["args"][0]["value"] for r in rules_for(default(), "personality")}
    assert values == {0, 8, 0x20000, 0x20008, 0xFFFFFFFF}


def test_sys_admin_unlocks_mount_family_and_clone():
    p = profile_for(set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"}, machine="x86_64", kernel="6.18")
    allowed = unconditional(p)
    for name in ("mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf",
                 "sethostname", "fsopen", "open_tree"):
        assert name in allowed
    assert not [r for r in rules_for(p, "clone3") if r["action"] != "SCMP_ACT_ALLOW"]


@pytest.mark.parametrize("cap,name", [("CAP_SYS_PTRACE", "process_madvise"),
                                      ("CAP_SYS_MODULE", "init_module"),
                                      ("CAP_SYS_BOOT", "reboot"),
                                      ("CAP_SYS_TIME", "settimeofday"),
                                      ("CAP_SYS_RAWIO", "iopl"),
                                      ("CAP_SYS_NICE", "mbind"),
                                      ("CAP_BPF", "bpf"),
                                      ("CAP_PERFMON", "perf_event_open"),
                                      ("CAP_SYSLOG", "syslog"),
                                      ("CAP_SYS_PACCT", "acct"),
                                      ("CAP_SYS_TTY_CONFIG", "vhangup"),
                                      ("CAP_DAC_READ_SEARCH", "open_by_handle_at")])
def test_cap_gated_groups(cap, name):
    assert name not in unconditional(default())
    assert name in unconditional(profile_for(set(DEFAULT_CAPS) | {cap}, machine="x86_64"))


def test_chroot_needs_sys_chroot():
    caps = set(DEFAULT_CAPS) - {"CAP_SYS_CHROOT"}
    assert "chroot" not in unconditional(profile_for(caps, machine="x86_64"))


def test_ptrace_min_kernel():
    old = profile_for(set(DEFAULT_CAPS), machine="x86_64", kernel="4.4.0-200-generic")
    assert "ptrace" not in unconditional(old)
    assert "ptrace" in unconditional(default())


def test_arm64_arches_and_calls():
    p = profile_for(set(DEFAULT_CAPS), machine="aarch64")
    assert p["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in unconditional(p)
    assert "set_tls" in unconditional(p)


def test_default_profile_not_mutated():
    before = json.dumps(DOCKER_DEFAULT, sort_keys=True)
    profile_for({"CAP_SYS_ADMIN"})["syscalls"][0]["names"].append("x")
    assert json.dumps(DOCKER_DEFAULT, sort_keys=True) == before


# --- Docker JSON profiles ---------------------------------------------------------------

def write(tmp_path, data):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


def test_load_docker_json_conditions(tmp_path):
    path = write(tmp_path, {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "excludes": {"arches": ["amd64"]}},
            {"names": ["uname"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        ]})
    p = load_docker_json(path, machine="x86_64", kernel="6.18.0")
    assert p == {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                              {"names": ["write"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "value": 1, "valueTwo": 0,
                                         "op": "SCMP_CMP_EQ"}]}]}
    with_admin = load_docker_json(path, {"CAP_SYS_ADMIN"}, machine="x86_64")
    assert any(r["names"] == ["mount"] for r in with_admin["syscalls"])


def test_load_docker_json_archmap_picks_native(tmp_path):
    path = write(tmp_path, {"defaultAction": "SCMP_ACT_ALLOW", "archMap": [
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": []})
    assert load_docker_json(path, machine="x86_64")["architectures"] == [
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]


def test_docker_default_roundtrips_through_json(tmp_path):
    path = write(tmp_path, DOCKER_DEFAULT)
    assert load_docker_json(path, machine="x86_64", kernel="6.18") == default()


@pytest.mark.parametrize("data,message", [
    ("{not json", "Decoding seccomp profile failed"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
      "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}, "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]},
     "'name' and 'names' were specified"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["b"], "action": "SCMP_ACT_MAYBE"}]}, "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["b"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ISH"}]}]}, "unknown operator"),
])
def test_bad_profiles(tmp_path, data, message):
    with pytest.raises(ProfileError, match=message):
        load_docker_json(write(tmp_path, data))


def test_missing_profile_file(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(ProfileError) as e:
        load_docker_json(path)
    assert str(e.value) == (f"opening seccomp profile ({path}) failed: open {path}: "
                            "no such file or directory")


def test_convert_rejects_non_object():
    with pytest.raises(ProfileError):
        convert_docker_profile([], set())


# --- the profile compiled by libseccomp and enforced on a real process ---------------------

FILTER_CHILD = r"""
import json, os, sys, seccomp
profile = json.load(open(sys.argv[1]))
ops = {"SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT,
       "SCMP_CMP_LE": seccomp.LE, "SCMP_CMP_GT": seccomp.GT, "SCMP_CMP_GE": seccomp.GE,
       "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
def action(name, errno):
    return seccomp.ALLOW if name == "SCMP_ACT_ALLOW" else seccomp.ERRNO(errno)
f = seccomp.SyscallFilter(action(profile["defaultAction"], profile["defaultErrnoRet"]))
for arch in profile["architectures"][1:]:
    f.add_arch(getattr(seccomp.Arch, arch[len("SCMP_ARCH_"):]))
skipped = 0
for rule in profile["syscalls"]:
    act = action(rule["action"], rule.get("errnoRet", 1))
    args = [seccomp.Arg(a["index"], ops[a["op"]], a["value"], a["valueTwo"])
            for a in rule.get("args", [])]
    for name in rule["names"]:
        try:
            f.add_rule(act, name, *args)
        except (RuntimeError, ValueError):
            skipped += 1   # a name this libseccomp does not know (runc skips them too)
f.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_filtered(tmp_path, profile, *argv):
    path = tmp_path / "oci-seccomp.json"
    path.write_text(json.dumps(profile))
    return subprocess.run([sys.executable, "-c", FILTER_CHILD, str(path), *argv],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def busybox():
    path = shutil.which("busybox")
    if not path:
        pytest.skip("busybox not installed")
    return path


def test_libseccomp_compiles_default(tmp_path, busybox):
    out = run_filtered(tmp_path, default(), busybox, "sh", "-c", "echo ok; ls / >/dev/null")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root so that only seccomp refuses")
def test_filter_blocks_unshare_and_keyctl_paths(tmp_path, busybox):
    out = run_filtered(tmp_path, default(), busybox, "unshare", "-n", "true")
    assert out.returncode != 0
    assert "Operation not permitted" in out.stderr
    # Same command, CAP_SYS_ADMIN's profile: allowed (root can unshare a net namespace).
    admin = profile_for(set(DEFAULT_CAPS) | {"CAP_SYS_ADMIN"})
    out = run_filtered(tmp_path, admin, busybox, "unshare", "-n", "true")
    assert out.returncode == 0, out.stderr
