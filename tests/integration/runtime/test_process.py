"""The container's process: capabilities, rlimits, user, env, cwd, seccomp, no_new_privs."""
import json
import os
import resource
import subprocess

from rt_helpers import RUNTIME


def _caps(names):
    return {s: list(names) for s in ("bounding", "effective", "permitted", "inheritable",
                                     "ambient")}


def test_dropped_net_admin_makes_ip_link_add_fail(bundle):
    bundle.config["process"]["capabilities"] = _caps(["CAP_NET_RAW"])
    out = bundle.run(["sh", "-c", "ip link add hx0 type veth peer name hx1 2>&1; echo rc=$?"])
    assert "rc=0" not in out.stdout, out.stderr
    assert "Operation not permitted" in out.stdout


def test_granted_net_admin_allows_ip_link_add(bundle):
    bundle.config["process"]["capabilities"] = _caps(["CAP_NET_ADMIN"])
    out = bundle.run(["sh", "-c", "ip link add hx0 type veth peer name hx1 && "
                                  "ip -o link show hx0"])
    assert out.returncode == 0, out.stderr
    assert "hx0" in out.stdout


def test_all_five_capability_sets(bundle):
    caps = bundle.config["process"]["capabilities"] = _caps(["CAP_KILL", "CAP_CHOWN"])
    caps["ambient"] = ["CAP_KILL"]
    bundle.config["process"]["noNewPrivileges"] = False
    out = bundle.run(["grep", "^Cap", "/proc/self/status"])
    sets = dict(line.split(":\t") for line in out.stdout.splitlines())
    both, kill = 1 << 0 | 1 << 5, 1 << 5
    assert int(sets["CapBnd"], 16) == both
    assert int(sets["CapPrm"], 16) == both
    assert int(sets["CapEff"], 16) == both
    assert int(sets["CapInh"], 16) == both
    assert int(sets["CapAmb"], 16) == kill


def test_rlimits(bundle):
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600}]
    out = bundle.run(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"])
    assert out.stdout.split() == ["123", "456", "500"], out.stderr


def test_rlimit_above_the_hard_limit_fails_clearly(bundle):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": hard + 1000, "hard": hard + 1000}]
    out = bundle.run(["true"])
    assert out.returncode == 1
    assert "process.rlimits: RLIMIT_NOFILE hard limit" in out.stderr
    assert "CAP_SYS_RESOURCE" in out.stderr


def test_user_groups_umask_env_cwd(bundle):
    proc = bundle.config["process"]
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o077}
    proc["env"].append("GREETING=hello world")
    proc["cwd"] = "/work/dir"
    out = bundle.run(["sh", "-c", "id; umask; pwd; echo $GREETING; echo $HOME"])
    lines = out.stdout.splitlines()
    assert lines[0].startswith("uid=1000(user) gid=1000(user) groups="), out.stderr
    assert "10" in lines[0] and "20" in lines[0]
    assert lines[1:] == ["0077", "/work/dir", "hello world", "/home/user"]


def test_no_new_privileges(bundle):
    bundle.config["process"]["noNewPrivileges"] = True
    out = bundle.run(["grep", "NoNewPrivs", "/proc/self/status"])
    assert out.stdout.split() == ["NoNewPrivs:", "1"], out.stderr
    bundle.config["process"]["noNewPrivileges"] = False
    out = bundle.run(["grep", "NoNewPrivs", "/proc/self/status"])
    assert out.stdout.split() == ["NoNewPrivs:", "0"], out.stderr


def test_seccomp_errno_rule(bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        ]}
    out = bundle.run(["sh", "-c", "mkdir /newdir 2>&1; grep Seccomp: /proc/self/status"])
    assert "Operation not permitted" in out.stdout, out.stderr
    assert "Seccomp:\t2" in out.stdout


def test_seccomp_without_no_new_privileges(bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": json.loads(SYSCALLS_FOR_BUSYBOX), "action": "SCMP_ACT_ALLOW"}]}
    out = bundle.run(["sh", "-c", "grep -E 'Seccomp:|NoNewPrivs' /proc/self/status; "
                                  "mkdir /x 2>&1"])
    assert "Seccomp:\t2" in out.stdout, out.stderr
    assert "NoNewPrivs:\t0" in out.stdout
    assert "Function not implemented" in out.stdout


SYSCALLS_FOR_BUSYBOX = json.dumps([
    "execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
    "mmap", "munmap", "mprotect", "getuid", "geteuid", "getgid", "getegid", "getpid",
    "getppid", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "read", "write", "openat",
    "open", "close", "fstat", "newfstatat", "stat", "lstat", "fcntl", "ioctl", "clone",
    "clone3", "fork", "vfork", "wait4", "exit", "exit_group", "getcwd", "uname", "dup2",
    "dup3", "pipe", "pipe2", "lseek", "readlink", "access", "faccessat", "faccessat2",
    "getrandom", "futex", "sigaltstack", "statx", "getdents64", "capset", "capget",
    "setresuid", "setresgid", "setgroups", "prctl", "chdir", "umask", "close_range"])


def test_missing_executable(bundle):
    out = bundle.run(["nosuchcmd"])
    assert out.returncode == 1
    assert r'exec: \"nosuchcmd\": executable file not found in $PATH' in out.stderr


def test_not_executable(bundle):
    out = bundle.run(["/etc/passwd"])
    assert out.returncode == 1
    assert r'exec: \"/etc/passwd\": permission denied' in out.stderr
    out = bundle.run(["/etc"])
    assert r'exec: \"/etc\": permission denied' in out.stderr


def test_json_log_on_failure(bundle):
    log = f"{bundle.path}/log.json"
    bundle.config["process"]["args"] = ["nosuchcmd"]
    bundle.write()
    out = bundle.runtime("--log", log, "--log-format", "json", "create", "--bundle",
                         bundle.path, bundle.id)
    assert out.returncode == 1
    with open(log) as f:
        entry = json.loads(f.readlines()[-1])
    assert entry["level"] == "error"
    assert entry["msg"].endswith(
        'unable to start container process: exec: "nosuchcmd": executable file not found '
        "in $PATH")
    assert set(entry) == {"level", "msg", "time"}


def test_oom_score_adj(bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    out = bundle.run(["cat", "/proc/self/oom_score_adj"])
    assert out.stdout.strip() == "500", out.stderr


def test_preserve_fds(bundle, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("from fd 3\n")
    bundle.config["process"]["args"] = ["sh", "-c", "cat <&3; ls /proc/self/fd"]
    bundle.write()
    out = subprocess.run(
        ["sh", "-c", 'exec 3<"$0"; exec "$@"', str(extra), RUNTIME, "--root", bundle.root,
         "run", "--preserve-fds", "1", "--bundle", bundle.path, bundle.id],
        capture_output=True, text=True, timeout=30)
    lines = out.stdout.split()
    assert lines[:3] == ["from", "fd", "3"], out.stderr
    assert sorted(lines[3:]) == ["0", "1", "2", "3", "4"]  # 4: ls reading the dir


def test_own_session_keyring_unless_no_new_keyring(bundle):
    probe = ["sh", "-c", f"grep -q ' _ses.{bundle.id}' /proc/keys && echo named"]
    out = bundle.run(probe)
    assert out.stdout.strip() == "named", out.stderr
    # A second id: the first run's keyring may linger in /proc/keys until the kernel's
    # key garbage collector runs, so probing the same name again would be a race.
    other = bundle.id + "-nk"
    bundle.config["process"]["args"] = ["sh", "-c",
                                        f"grep -q ' _ses.{other}' /proc/keys && echo named"]
    bundle.write()
    out = bundle.runtime("run", "--no-new-keyring", "--bundle", bundle.path, other)
    assert out.returncode in (0, 1) and "named" not in out.stdout, out.stderr


def test_seccomp_denying_getcwd_is_not_a_breakout(bundle):
    """runtime-tools linux_seccomp: a profile that denies getcwd, loaded before the user
    switch (no noNewPrivileges), must not trip the cwd check (only ENOENT means the cwd is
    outside the root)."""
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}
    out = bundle.run(["sh", "-c", "echo started"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == "started\n"


def test_mount_label_without_selinux_is_ignored_with_a_warning(bundle):
    bundle.config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    out = bundle.run(["true"])
    if os.path.exists("/sys/fs/selinux/enforce"):
        assert out.returncode != 0 and "linux.mountLabel" in out.stderr
        return
    assert out.returncode == 0, out.stderr
    assert "linux.mountLabel ignored: SELinux is not enabled on this host" in out.stderr
