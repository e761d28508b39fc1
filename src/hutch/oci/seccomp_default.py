"""Docker's default seccomp policy, and Docker's JSON profile format → OCI linux.seccomp.

The policy is an allow-list: every syscall not named is refused with EPERM. Some calls are
allowed only with certain argument values (clone without namespace flags, socket without
AF_ALG/AF_VSOCK, a few personality values), others only when the container holds a
capability (the mount family with CAP_SYS_ADMIN, ptrace with CAP_SYS_PTRACE, ...).

DOCKER_DEFAULT is written in Docker's profile format (names, action, args, includes /
excludes of caps, arches and minKernel), so the default and a user's
`--security-opt seccomp=profile.json` go through the same conversion, which resolves those
conditions for this host and the container's final capability set, as dockerd does.
"""
from __future__ import annotations

import os

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"
EPERM = 1
ENOSYS = 38

# Namespace bits of clone(2)'s flags: NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
CLONE_NAMESPACE_FLAGS = 0x7E020000
AF_ALG = 38
AF_VSOCK = 40

# Go's GOARCH names, which Docker profiles use in includes/excludes.arches.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386",
            "armv7l": "arm", "s390x": "s390x", "ppc64le": "ppc64le", "riscv64": "riscv64"}
# uname machine → the libseccomp name of the native architecture.
_SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64",
              "i686": "SCMP_ARCH_X86", "i386": "SCMP_ARCH_X86", "armv7l": "SCMP_ARCH_ARM",
              "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE",
              "riscv64": "SCMP_ARCH_RISCV64"}

VALID_ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                 "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW",
                 "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
VALID_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
             "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"}

# Allowed for every container. Names a kernel or libseccomp does not know are skipped by
# the runtime when it builds the filter (as runc does).
ALLOWED_SYSCALLS: tuple[str, ...] = tuple(sorted("""
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown
chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
futex_wake futimesat get_robust_list get_thread_area getcpu getcwd getdents getdents64
getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer
getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid
gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents
io_pgetevents_time64 io_setup io_submit ioctl ioprio_get ioprio_set ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
link linkat listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek
lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret
mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync munlock
munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat openat2
pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv
recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat
rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min
sched_getaffinity sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop
semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto set_robust_list
set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid
setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt setuid
setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
write writev
""".split()))

# Calls each capability unlocks (moby's default_linux.go groups, in our own words).
CAP_GATED_SYSCALLS: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
        "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
        "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
        "umount2", "unshare"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}

PERSONALITY_VALUES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def _docker_default() -> dict:
    """Docker's default profile in Docker's own JSON format."""
    rules: list[dict] = [{"names": list(ALLOWED_SYSCALLS), "action": ALLOW, "args": []}]
    # Each rule holds one condition so that rules OR together without ambiguity: runtimes
    # split several conditions on one argument into separate (OR-ed) rules.
    for value in PERSONALITY_VALUES:
        rules.append({"names": ["personality"], "action": ALLOW,
                      "args": [_arg(0, value, "SCMP_CMP_EQ")]})
    # socket: every family except AF_ALG (38) and AF_VSOCK (40).
    rules.append({"names": ["socket"], "action": ALLOW,
                  "args": [_arg(0, AF_ALG, "SCMP_CMP_LT")]})
    rules.append({"names": ["socket"], "action": ALLOW,
                  "args": [_arg(0, AF_ALG + 1, "SCMP_CMP_EQ")]})
    rules.append({"names": ["socket"], "action": ALLOW,
                  "args": [_arg(0, AF_VSOCK, "SCMP_CMP_GT")]})
    # ptrace-class calls need the kernel's 4.8 fix for seccomp bypass via ptrace.
    rules.append({"names": ["process_vm_readv", "process_vm_writev", "ptrace"],
                  "action": ALLOW, "args": [], "includes": {"minKernel": "4.8"}})
    rules.append({"names": ["arch_prctl", "modify_ldt"], "action": ALLOW, "args": [],
                  "includes": {"arches": ["amd64", "x32", "386"]}})
    rules.append({"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
                            "breakpoint", "cacheflush", "set_tls"],
                  "action": ALLOW, "args": [], "includes": {"arches": ["arm", "arm64"]}})
    for cap, names in CAP_GATED_SYSCALLS.items():
        rules.append({"names": list(names), "action": ALLOW, "args": [],
                      "includes": {"caps": [cap]}})
    # clone: no namespace flags unless CAP_SYS_ADMIN (which allows it outright above).
    rules.append({"names": ["clone"], "action": ALLOW,
                  "args": [_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ", 0)],
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    # clone3 hides its flags in a struct seccomp cannot read: answer ENOSYS so libc falls
    # back to clone, where the flags are checked.
    rules.append({"names": ["clone3"], "action": ERRNO, "errnoRet": ENOSYS, "args": [],
                  "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {
        "defaultAction": ERRNO,
        "defaultErrnoRet": EPERM,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64",
             "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": rules,
    }


DOCKER_DEFAULT = _docker_default()


def _kernel_version(release: str) -> tuple[int, int]:
    parts = release.split("-", 1)[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0, 0


def _host_arch(machine: str | None) -> str:
    return machine or os.uname().machine


class ProfileError(ValueError):
    """A seccomp profile that cannot be used; str() says why in Docker's wording."""


def convert_docker_profile(profile: dict, caps: set[str], *, machine: str | None = None,
                           kernel: str | None = None) -> dict:
    """Docker's profile format → OCI linux.seccomp, for this host and these capabilities.

    Rules whose includes/excludes (caps, arches, minKernel) do not match are dropped, as
    dockerd's setupSeccomp does; what remains is plain OCI.
    """
    machine = _host_arch(machine)
    goarch = _GOARCH.get(machine, machine)
    kernel_version = _kernel_version(kernel or os.uname().release)
    if not isinstance(profile, dict):
        raise ProfileError("Decoding seccomp profile failed: not a JSON object")
    action = profile.get("defaultAction")
    if action not in VALID_ACTIONS:
        raise ProfileError(f"invalid seccomp profile: unknown defaultAction {action!r}")
    if profile.get("architectures") and profile.get("archMap"):
        raise ProfileError("both 'architectures' and 'archMap' are specified in the seccomp "
                           "profile, use either 'architectures' or 'archMap'")
    out: dict = {"defaultAction": action}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    native = _SCMP_ARCH.get(machine)
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches.append(entry["architecture"])
            arches.extend(entry.get("subArchitectures") or [])
    if arches:
        out["architectures"] = arches
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if rule.get("name") and rule.get("names"):
            raise ProfileError("'name' and 'names' were specified in the seccomp profile, "
                               "use either 'name' or 'names'")
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        if not _rule_applies(rule, caps, goarch, kernel_version):
            continue
        if rule.get("action") not in VALID_ACTIONS:
            raise ProfileError(f"invalid seccomp profile: unknown action "
                               f"{rule.get('action')!r} for {names}")
        call: dict = {"names": list(names), "action": rule["action"]}
        args = []
        for arg in rule.get("args") or []:
            if arg.get("op") not in VALID_OPS:
                raise ProfileError(f"invalid seccomp profile: unknown operator "
                                   f"{arg.get('op')!r} for {names}")
            args.append({"index": int(arg["index"]), "value": int(arg.get("value", 0)),
                         "valueTwo": int(arg.get("valueTwo", 0)), "op": arg["op"]})
        if args:
            call["args"] = args
        if rule.get("errnoRet") is not None:
            call["errnoRet"] = int(rule["errnoRet"])
        syscalls.append(call)
    out["syscalls"] = syscalls
    return out


def _rule_applies(rule: dict, caps: set[str], goarch: str,
                  kernel_version: tuple[int, int]) -> bool:
    includes = rule.get("includes") or {}
    excludes = rule.get("excludes") or {}
    if includes.get("arches") and goarch not in includes["arches"]:
        return False
    if excludes.get("arches") and goarch in excludes["arches"]:
        return False
    if includes.get("caps") and not all(c in caps for c in includes["caps"]):
        return False
    if excludes.get("caps") and any(c in caps for c in excludes["caps"]):
        return False
    if includes.get("minKernel") and kernel_version < _kernel_version(includes["minKernel"]):
        return False
    return True


def profile_for(caps: set[str], *, machine: str | None = None,
                kernel: str | None = None) -> dict:
    """Docker's default profile as OCI linux.seccomp for a container holding `caps`."""
    return convert_docker_profile(DOCKER_DEFAULT, set(caps), machine=machine, kernel=kernel)


def load_docker_json(path: str, caps: set[str] | None = None, *,
                     machine: str | None = None, kernel: str | None = None) -> dict:
    """Read a Docker seccomp profile (`--security-opt seccomp=FILE`) as OCI linux.seccomp.

    caps: the container's final capabilities (Docker's 14 by default), which decide the
    rules with includes/excludes.caps.
    """
    if caps is None:
        from hutch.oci.defaults import DEFAULT_CAPS
        caps = set(DEFAULT_CAPS)
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ProfileError(f"opening seccomp profile ({path}) failed: open {path}: "
                           f"{os.strerror(e.errno).lower()}") from None
    import json   # here: with the re it brings, ~7 ms of every `run` that names no profile
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError(f"Decoding seccomp profile failed: {e}") from None
    return convert_docker_profile(profile, set(caps), machine=machine, kernel=kernel)
