"""Docker's default protection, proven from inside real containers, and its opt-outs."""
import os
import shutil
import subprocess

import pytest

from hutch.engine.security import apply_security
from hutch.oci.defaults import ALL_CAPS, host_bounding_caps

pytestmark = pytest.mark.root

DOCKER_CAPS = "00000000a80425fb"


def status_fields(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def secure(bundle, **kw):
    return apply_security(bundle.spec, rootfs=bundle.rootfs, **kw)


def install_probe(bundle, probe_binary):
    shutil.copy2(probe_binary, os.path.join(bundle.rootfs, "bin/probe"))


def probe(bundle, *calls):
    out = bundle.run("/bin/probe", *calls)
    assert out.returncode == 0, out.stderr
    return dict(line.split() for line in out.stdout.splitlines())


# --- capabilities ---

def test_root_has_dockers_caps(bundle):
    secure(bundle)
    out = bundle.run("cat", "/proc/self/status")
    assert out.returncode == 0, out.stderr
    st = status_fields(out.stdout)
    assert (st["CapBnd"], st["CapPrm"], st["CapEff"]) == (DOCKER_CAPS,) * 3
    assert st["CapInh"] == st["CapAmb"] == "0000000000000000"
    assert st["NoNewPrivs"] == "0"
    assert st["Seccomp"] == "2"
    assert st["Uid"].split()[0] == "0"


def test_non_root_user_has_no_effective_caps(bundle):
    secure(bundle, user="alice", group_add=["audio"])
    out = bundle.sh("cat /proc/self/status; id")
    assert out.returncode == 0, out.stderr
    st = status_fields(out.stdout)
    assert st["CapEff"] == st["CapPrm"] == st["CapInh"] == st["CapAmb"] == "0000000000000000"
    assert st["CapBnd"] == DOCKER_CAPS
    assert "uid=1000(alice) gid=1000(alice) groups=10(wheel),29(audio)" in out.stdout


def test_cap_drop_all(bundle):
    secure(bundle, cap_drop=["ALL"])
    out = bundle.run("cat", "/proc/self/status")
    st = status_fields(out.stdout)
    assert st["CapBnd"] == st["CapEff"] == "0000000000000000"


# `ip link add` needs the bridge driver; kernels without it answer EOPNOTSUPP.
HAS_BRIDGE = os.path.isdir("/sys/module/bridge")


def net_admin_script(bridge: bool) -> str:
    script = "ip addr add 10.9.9.9/32 dev lo && echo addr-ok; "
    if bridge:
        script += "ip link add name hsec0 type bridge && ip link show hsec0 && echo link-ok; "
    return script + "true"


def test_net_admin_needed_for_ip_changes(bundle):
    secure(bundle)
    out = bundle.sh(net_admin_script(True))
    assert "addr-ok" not in out.stdout and "link-ok" not in out.stdout
    assert "Operation not permitted" in out.stderr


def test_cap_add_net_admin(bundle):
    secure(bundle, cap_add=["NET_ADMIN"])
    out = bundle.sh(net_admin_script(HAS_BRIDGE))
    assert "addr-ok" in out.stdout, out.stderr
    if HAS_BRIDGE:
        assert "link-ok" in out.stdout, out.stderr


def test_no_new_privileges(bundle):
    secure(bundle, security_opt=["no-new-privileges"])
    out = bundle.run("cat", "/proc/self/status")
    assert status_fields(out.stdout)["NoNewPrivs"] == "1"


# --- seccomp ---

def test_seccomp_blocks_namespace_and_mount_calls(bundle):
    secure(bundle)
    out = bundle.sh("unshare -n true; echo unshare=$?; mkdir -p /tmp/m; "
                    "mount -t tmpfs none /tmp/m; echo mount=$?")
    assert "unshare=1" in out.stdout and "mount=1" in out.stdout, out
    assert "Operation not permitted" in out.stderr


def test_seccomp_probe_default(bundle, probe_binary):
    install_probe(bundle, probe_binary)
    secure(bundle)
    r = probe(bundle, "clone3", "clone", "clone_newns", "clone_newuser", "unshare_user",
              "setns", "keyctl", "add_key", "bpf", "io_uring_setup", "socket_alg",
              "socket_vsock", "socket_inet", "personality_linux", "mount", "reboot",
              "kexec_load", "init_module", "userfaultfd", "perf_event_open",
              "open_by_handle_at", "getpid")
    assert r["clone3"] == "38"                      # ENOSYS: libc falls back to clone
    assert r["clone"] == "0" and r["getpid"] == "0" and r["socket_inet"] == "0"
    assert r["personality_linux"] == "0"
    for call in ("clone_newns", "clone_newuser", "unshare_user", "setns", "keyctl", "add_key",
                 "bpf", "io_uring_setup", "socket_alg", "socket_vsock", "mount", "reboot",
                 "kexec_load", "init_module", "userfaultfd", "perf_event_open",
                 "open_by_handle_at"):
        assert r[call] == "1", (call, r[call])      # EPERM from the filter


def test_seccomp_unconfined(bundle, probe_binary):
    install_probe(bundle, probe_binary)
    secure(bundle, security_opt=["seccomp=unconfined"])
    r = probe(bundle, "clone3", "keyctl", "socket_alg")
    assert r["clone3"] == "0"
    assert r["keyctl"] != "1"          # reaches the kernel (keyrings: ENOKEY/0, not EPERM)
    assert r["socket_alg"] != "1"
    out = bundle.run("cat", "/proc/self/status")
    assert status_fields(out.stdout)["Seccomp"] == "0"


def test_seccomp_custom_profile(bundle, tmp_path):
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": '
                       '["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}')
    secure(bundle, security_opt=[f"seccomp={profile}"])
    out = bundle.sh("mkdir /tmp/x; echo rc=$?")
    assert "rc=1" in out.stdout and "Permission denied" in out.stderr


def test_cap_sys_admin_unlocks_unshare(bundle):
    secure(bundle, cap_add=["SYS_ADMIN"])
    out = bundle.sh("unshare -n true && echo ok")
    assert out.stdout == "ok\n", out.stderr


# --- masked and read-only paths ---

def test_masked_paths_read_empty(bundle):
    secure(bundle)
    present = [p for p in bundle.spec["linux"]["maskedPaths"] if os.path.exists(p)]
    assert "/proc/keys" in present and "/sys/firmware" in present
    script = "; ".join(f"echo {p}=$(ls -A {p} 2>/dev/null | wc -l) "
                       f"$(cat {p} 2>/dev/null | wc -c)" for p in present)
    out = bundle.sh(script)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        path, counts = line.split("=")
        entries, size = counts.split()
        if os.path.isdir(path):
            assert entries == "0", line
        else:
            assert size == "0", line


def test_proc_sys_and_sysrq_read_only(bundle):
    secure(bundle)
    out = bundle.sh("echo x > /proc/sys/kernel/hostname; echo a=$?; "
                    "echo h > /proc/sysrq-trigger; echo b=$?; "
                    "echo 1 > /proc/sys/net/ipv4/ip_forward; echo c=$?")
    assert "a=1" in out.stdout and "b=1" in out.stdout and "c=1" in out.stdout
    assert "Read-only file system" in out.stderr


def test_sys_and_cgroup_read_only(bundle):
    secure(bundle)
    out = bundle.sh("grep -E ' /sys | /sys/fs/cgroup' /proc/mounts; "
                    "echo 1 > /sys/kernel/profiling; echo a=$?; "
                    "mkdir /sys/fs/cgroup/pids/hsec; echo b=$?")
    assert "a=1" in out.stdout and "b=1" in out.stdout, out
    for line in out.stdout.splitlines():
        if line.startswith(("sysfs ", "cgroup ", "cgroup2 ")):
            assert line.split()[3].split(",")[0] == "ro", line


# --- devices ---

def host_disk():
    for name in sorted(os.listdir("/sys/dev/block")):
        major, minor = name.split(":")
        if major not in ("7", "1"):    # not loop or ram
            return int(major), int(minor)
    pytest.skip("no host disk")


def test_mknod_host_disk_but_cannot_open(bundle):
    major, minor = host_disk()
    secure(bundle)
    out = bundle.sh(f"mknod /tmp/disk b {major} {minor}; echo mknod=$?; "
                    "head -c 1 /tmp/disk >/dev/null; echo open=$?; "
                    "mknod /tmp/fuse c 10 229; cat /tmp/fuse; echo fuse=$?; "
                    "echo x > /dev/null; echo null=$?")
    assert "open=1" in out.stdout and "fuse=1" in out.stdout and "null=0" in out.stdout, out
    assert "Operation not permitted" in out.stderr


def test_device_flag_gives_access(bundle):
    """/dev/kmsg (1:11) is outside the default allow-list; --device grants just "w"."""
    if not os.path.exists("/dev/kmsg"):
        pytest.skip("no /dev/kmsg")
    secure(bundle, devices=["/dev/kmsg:/dev/mykmsg:w"])
    out = bundle.sh("echo hutch security test > /dev/mykmsg; echo w=$?; "
                    "head -c 1 /dev/mykmsg; echo r=$?; ls -l /dev/mykmsg")
    assert "w=0" in out.stdout and "r=1" in out.stdout, out
    assert "Operation not permitted" in out.stderr


def test_device_not_granted_by_default(bundle):
    secure(bundle)
    out = bundle.sh("mknod /tmp/kmsg c 1 11; echo x > /tmp/kmsg; echo w=$?")
    assert "w=1" in out.stdout and "Operation not permitted" in out.stderr


def test_privileged(bundle):
    major, minor = host_disk()
    warnings = secure(bundle, privileged=True)
    out = bundle.sh(f"cat /proc/self/status; mknod /tmp/disk b {major} {minor}; "
                    "head -c 1 /tmp/disk >/dev/null; echo open=$?; "
                    "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted; "
                    "grep -E ' /sys ' /proc/mounts; cat /proc/timer_list | wc -c")
    assert out.returncode == 0, out.stderr
    st = status_fields(out.stdout)
    expected = sum(1 << ALL_CAPS[c] for c in host_bounding_caps())
    assert int(st["CapEff"], 16) == expected
    assert st["Seccomp"] == "0"
    assert "open=0" in out.stdout and "mounted" in out.stdout
    sys_line = [l for l in out.stdout.splitlines() if l.startswith("sysfs ")][0]
    assert sys_line.split()[3].startswith("rw")
    assert int(out.stdout.splitlines()[-1]) > 0     # /proc/timer_list not masked
    missing = [c for c in ALL_CAPS if c not in host_bounding_caps()]
    assert bool(warnings) == bool(missing)


# --- rootfs, sysctls, fds ---

def test_read_only_rootfs(bundle):
    secure(bundle, read_only=True)
    out = bundle.sh("touch /x; echo root=$?; touch /dev/shm/x; echo shm=$?")
    assert "root=1" in out.stdout and "shm=0" in out.stdout
    assert "Read-only file system" in out.stderr


def test_namespaced_sysctl(bundle):
    secure(bundle, sysctls={"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"})
    out = bundle.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni")
    assert out.stdout.split() == ["1", "2048"], out.stderr


def test_no_engine_fds_leak(bundle, tmp_path):
    leaked = os.open(str(tmp_path), os.O_RDONLY)   # inheritable, as a careless engine's
    os.set_inheritable(leaked, True)
    try:
        secure(bundle)
        out = bundle.run("ls", "/proc/self/fd", pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert out.stdout.split() == ["0", "1", "2", "3"], out


def test_pid1_is_the_containers_program(bundle):
    secure(bundle)
    out = bundle.sh("readlink /proc/1/exe; readlink /proc/self/exe")
    assert out.stdout.split() == ["/bin/busybox", "/bin/busybox"], out


# --- user namespace remapping ---

@pytest.fixture
def open_bundle(runtime, busybox_rootfs_template):
    """A bundle under a directory the remapped root can traverse (pytest's are 0700)."""
    import tempfile
    from sec_helpers import Bundle
    base = tempfile.mkdtemp(prefix="hutch-sec-userns-", dir="/tmp")
    os.chmod(base, 0o711)
    b = Bundle(base, runtime, busybox_rootfs_template)
    os.chmod(b.dir, 0o711)
    try:
        yield b
        assert b.leftovers() == []
    finally:
        shutil.rmtree(base)


def test_userns_remap(open_bundle, tmp_path, monkeypatch):
    from hutch.engine import security
    bundle = open_bundle
    if subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode != 0:
        pytest.skip("this kernel/environment cannot create user namespaces (chroot?)")
    (tmp_path / "subuid").write_text("hutch:231072:65536\n")
    (tmp_path / "subgid").write_text("hutch:231072:65536\n")
    monkeypatch.setattr(security, "SUBUID_FILE", str(tmp_path / "subuid"))
    monkeypatch.setattr(security, "SUBGID_FILE", str(tmp_path / "subgid"))
    # Host root's private directory, bound in: the remapped root must not read it.
    private = os.path.join(os.path.dirname(bundle.dir), "host-private")
    os.mkdir(private, 0o700)
    with open(os.path.join(private, "secret"), "w") as f:
        f.write("host root only\n")
    secure(bundle, userns="default")
    bundle.spec["mounts"].append({"destination": "/mnt", "type": "bind",
                                  "source": private, "options": ["rbind"]})
    out = bundle.sh("id -u; cat /proc/self/uid_map; touch /created; "
                    "cat /mnt/secret; echo read=$?; ls -ln /bin/busybox; "
                    "grep -E 'Cap(Eff|Inh)|Seccomp:' /proc/self/status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "231072", "65536"]
    assert "read=1" in out.stdout and "host root only" not in out.stdout
    ls_line = [l for l in lines if l.endswith("/bin/busybox")][0]
    assert ls_line.split()[2:4] == ["0", "0"]   # the image's root files are root's inside
    assert "00000000a80425fb" in out.stdout and "Seccomp:\t2" in out.stdout
    st = os.lstat(os.path.join(bundle.rootfs, "created"))
    assert (st.st_uid, st.st_gid) == (231072, 231072)
