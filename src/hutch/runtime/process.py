"""The processes that become a container: the intermediate (stage 1) and the init (stage 2),
and the process of `exec`. The protocol between them and the parent is in sync.py.

Everything here runs in forked children and leaves only through os._exit or execve: an
error becomes one "error" message to the parent, never a traceback on the user's terminal.
"""
from __future__ import annotations

import errno
import os
import stat

from hutch import _sys, trace
from hutch.runtime import capabilities, rootfs, sync
from hutch.runtime.specconv import NAMESPACE_FLAGS, Config, Process


class InitError(Exception):
    """An error in the container's setup; str() is the line the user sees."""


def describe(e: BaseException) -> str:
    """One line in Go's style: "mount /path: operation not permitted"."""
    if isinstance(e, OSError) and e.strerror:
        op, sep, text = e.strerror.partition(": ")  # hutch._sys spells "op: message"
        if not sep:
            op, text = "open" if e.filename else "", e.strerror
        where = " ".join(x for x in (op, e.filename) if x)
        return f"{where}: {text.lower()}" if where else text.lower()
    return str(e)


def run_child(body, sock) -> None:
    """Run body() in a forked child; never return to the caller's code."""
    code = 1
    try:
        body()
        code = 0
    except BaseException as e:  # noqa: BLE001 - everything must reach the parent
        try:
            sync.send(sock, "error", msg=describe(e))
        except OSError:
            pass
    finally:
        os._exit(code)


# --- executable lookup with Go's exec.LookPath rules (runc's messages) ---

def _is_executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not stat.S_ISDIR(st.st_mode) and bool(st.st_mode & 0o111)


def look_path(name: str, path_env: str) -> str:
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise InitError(f'exec: "{name}": stat {name}: {e.strerror.lower()}') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise InitError(f'exec: "{name}": permission denied')
        return name
    for d in path_env.split(":") if path_env else ():
        candidate = os.path.join(d or ".", name)
        if _is_executable(candidate):
            return candidate
    raise InitError(f'exec: "{name}": executable file not found in $PATH')


# --- pieces shared by the init and exec'd processes ---

def set_rlimits(proc: Process) -> None:
    for name, res, soft, hard in proc.rlimits:
        trace.step("rlimit", name, soft=soft, hard=hard)
        try:
            _sys.setrlimit(res, soft, hard)
        except OSError as e:
            current = _sys.getrlimit(res)[1]
            raise InitError(f"error setting rlimit type {name}: soft {soft} hard {hard}: "
                            f"{describe(e)} (the hard limit here is {current}; raising it "
                            f"needs CAP_SYS_RESOURCE)") from None


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def process_env(proc: Process) -> list[str]:
    env = list(proc.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={_home_of(proc.uid)}")
    return env


def set_user_and_caps(proc: Process) -> None:
    """runc's finalizeNamespace: bounding set, keepcaps, groups/gid/uid, then the sets."""
    last = _sys.cap_last_cap() if proc.capabilities is not None else 0
    if proc.capabilities is not None:
        capabilities.apply_bounding(_sys, proc.capabilities["bounding"], last)
        _sys.set_keepcaps(True)
    trace.step("user", f"uid={proc.uid} gid={proc.gid}",
               groups=",".join(map(str, proc.additional_gids)) or "-")
    os.setgroups(proc.additional_gids)
    os.setresgid(proc.gid, proc.gid, proc.gid)
    os.setresuid(proc.uid, proc.uid, proc.uid)
    if proc.capabilities is not None:
        _sys.set_keepcaps(False)
        capabilities.apply_sets(_sys, proc.capabilities, last)


def setup_terminal(proc: Process, console, proc_fd: int | None = None) -> None:
    """A pty from the container's devpts; the master goes to the console socket.

    proc_fd (the init only): it also gets the pty bound on /dev/console, as the spec asks."""
    from hutch.runtime import terminal  # preloaded: we may be in the container's root
    master, slave = _sys.open_pty()
    if proc_fd is not None:
        rootfs.bind_console(_sys, os.ttyname(slave), proc_fd)
    trace.step("console", "send pty master over the console socket")
    terminal.send_master(console, master)
    os.close(master)
    console.close()
    if proc.console_size and all(proc.console_size):
        _sys.set_winsize(slave, *proc.console_size)
    os.fchown(slave, proc.uid, proc.gid)
    _sys.set_controlling_tty(slave)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def close_fds_above(first_free: int, proc_fd: int, keep: tuple[int, ...]) -> None:
    """Close every fd from first_free up but `keep` (proc_fd too, unless kept): none of the
    runtime's host fds (the host's /proc, the state dir's lock, the caller's files) may
    still be open when the container's cwd is entered (CVE-2024-21626). The kept ones are
    close-on-exec."""
    dir_fd = os.open("self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        fds = [int(name) for name in os.listdir(dir_fd)]
    finally:
        os.close(dir_fd)
    for fd in fds:
        if fd < first_free or fd == dir_fd or fd == proc_fd:
            continue
        try:
            if fd in keep:
                os.set_inheritable(fd, False)
            else:
                os.close(fd)
        except OSError:
            pass
    if proc_fd not in keep:
        os.close(proc_fd)


def _trace_fd() -> tuple[int, ...]:
    """The --debug stream's fd, when the caller (the engine) gave trace one of its own."""
    try:
        return (trace._out.fileno(),) if trace._out is not None else ()
    except (AttributeError, OSError, ValueError):
        return ()


def dup_stdio(stdio) -> None:
    if stdio:
        for target, fd in enumerate(stdio):
            if fd is not None and fd != target:
                os.dup2(fd, target)


# --- create: stage 1 (intermediate) and stage 2 (init) ---

def preload(cfg: Config) -> None:
    """Import now what the init needs after pivot_root, where our modules are out of reach."""
    if any(cfg.hooks.get(k) for k in ("createContainer", "startContainer")):
        import subprocess  # noqa: F401 - hooks run through it

        from hutch.runtime import hooks  # noqa: F401
    if cfg.process.terminal:
        from hutch.runtime import terminal  # noqa: F401


class InitArgs:
    """What the init needs besides the config (all fds opened by the parent)."""

    def __init__(self, cfg: Config, sock, *, fifo_fd: int, proc_fd: int, console, stdio,
                 preserve_fds: int, no_pivot: bool, state: dict,
                 seccomp_cache: str, keyring: str | None):
        self.cfg = cfg
        self.keyring = keyring
        self.seccomp_cache = seccomp_cache
        self.sock = sock
        self.fifo_fd = fifo_fd
        self.proc_fd = proc_fd
        self.console = console
        self.stdio = stdio
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot
        self.state = state
        self.cpus: set[int] | None = None   # the CPU set to take back (container._spawn)


def join_namespaces(joined: list[tuple[str, str]]) -> None:
    """setns into each (type, path); user first: it grants the rights to join the rest."""
    join_opened(open_namespaces(joined))


def open_namespaces(joined: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(fd, type, path) of each (type, path), all opened before any is joined (a path in
    /proc is the host's only until the mount namespace is), user first."""
    ordered = sorted(joined, key=lambda item: item[0] != "user")
    return [(os.open(path, os.O_RDONLY | os.O_CLOEXEC), kind, path) for kind, path in ordered]


def join_opened(opened: list[tuple[int, str, str]]) -> None:
    """setns into each of open_namespaces' namespaces, in order; each fd closed."""
    for fd, kind, path in opened:
        trace.step("setns", f"{kind} {path}")
        try:
            _sys.setns(fd, NAMESPACE_FLAGS[kind])
        except OSError as e:
            raise InitError(f"failed to join {kind} namespace {path}: {describe(e)}") from None
        finally:
            os.close(fd)


def forks_init_itself(cfg: Config) -> bool:
    """Whether the parent forks the init with no intermediate (stage 1) between: not with
    a user namespace (the parent writes the id maps of the process that made it, and the
    other namespaces must belong to it) nor with a pid namespace to join. A new pid
    namespace is the parent's to make: unshare(CLONE_NEWPID) applies to its next child."""
    return "user" not in cfg.namespace_types and not any(
        kind == "pid" for kind, _ in cfg.joined_namespaces)


def enter_namespaces(a: InitArgs, unshare_pid: bool) -> None:
    """Join and make the container's namespaces, but the cgroup one (made by the init once
    it is in its cgroup) and, unless `unshare_pid`, the pid one (made by the parent)."""
    cfg = a.cfg
    # Before entering any of the container's namespaces, and inherited by the init until
    # its execve: nothing in the container may ptrace us or open /proc/<pid>/exe, the
    # host's python (CVE-2019-5736).
    trace.step("prctl", "PR_SET_DUMPABLE 0")
    _sys.set_dumpable(False)
    if cfg.process.oom_score_adj is not None:
        trace.step("oom_score_adj", str(cfg.process.oom_score_adj))
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(cfg.process.oom_score_adj))
        except OSError as e:
            raise InitError(f"error setting oom_score_adj to {cfg.process.oom_score_adj}: "
                            f"{describe(e)}") from None
    join_namespaces(cfg.joined_namespaces)
    if cfg.has_new_userns:
        trace.step("unshare", "CLONE_NEWUSER")
        _sys.unshare(_sys.CLONE_NEWUSER)
        sync.send(a.sock, "userns")
        sync.expect(a.sock, "userns-done")
    if "user" in cfg.namespace_types:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    flags = cfg.new_namespaces & ~(_sys.CLONE_NEWUSER | _sys.CLONE_NEWCGROUP)
    if not unshare_pid:
        flags &= ~_sys.CLONE_NEWPID
    if flags:
        trace.step("unshare", " ".join(k for k, v in NAMESPACE_FLAGS.items()
                                        if flags & v and k != "user"))
        _sys.unshare(flags)


def stage1(a: InitArgs) -> None:
    """The intermediate: into the namespaces, then fork the init (PID 1 of a new pid
    namespace) and tell the parent its pid."""
    enter_namespaces(a, unshare_pid=True)
    pid = os.fork()
    if pid == 0:
        run_child(lambda: init(a), a.sock)
    sync.send(a.sock, "pid", pid=pid)


def join_cgroup(path: str, fd: int | None = None) -> None:
    """Join a v1 cgroup by writing "0" to its `tasks` file (at `path`, or open at `fd`, then
    closed): this (single) thread moves itself, which the kernel does without the global
    lock a move by another takes (see CgroupManager.birth_dir)."""
    trace.step("cgroup", f"join {path}")
    try:
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    except OSError as e:
        raise InitError(f"failed to join cgroup {os.path.dirname(path)}: {describe(e)}"
                        ) from None


def init_forked_by_parent(a: InitArgs) -> None:
    """The init when the parent forked it itself (forks_init_itself)."""
    enter_namespaces(a, unshare_pid=False)
    init(a)


def init(a: InitArgs) -> None:
    cfg, proc = a.cfg, a.cfg.process
    os.setsid()
    dup_stdio(a.stdio)
    if a.keyring:
        # Its own session keyring, so the container never shares the caller's keys.
        trace.step("keyctl", f"join session keyring {a.keyring}")
        try:
            _sys.join_session_keyring(a.keyring)
        except OSError as e:
            if e.errno != errno.ENOSYS:  # a kernel without keyrings: nothing to isolate
                raise InitError(f"could not create session key: {describe(e)}") from None
    made = []

    def cgroup_made() -> list[tuple[str, str]]:
        """Once: the parent makes the cgroup meanwhile; its directories, one per
        hierarchy (what a cgroup mount binds)."""
        if not made:
            made.append(sync.expect(a.sock, "cgroup-made")["dirs"])
        return made[0]

    # Without a mount namespace of its own, mounts would land in the host's: none are made.
    own_mounts = "mount" in cfg.namespace_types
    if own_mounts:
        try:
            rootfs.prepare(_sys, cfg, cgroup_made)
        except (OSError, rootfs.MountError) as e:
            raise InitError(f"error preparing rootfs: {describe(e)}") from None
    program = None
    if cfg.seccomp:
        # Compiled (or read from the cache) while the parent's cgroup write may be under way.
        from hutch.runtime import seccomp
        program = seccomp.program_for(cfg.seccomp, a.seccomp_cache)
    cgroup_made()
    # The parent writes the cgroup's limits meanwhile, and moves us where we do not join.
    for path in sync.expect(a.sock, "cgroup").get("join", ()):
        join_cgroup(path)
    if a.cpus:     # (the parent started us on another CPU than its own: container._spawn)
        try:
            os.sched_setaffinity(0, a.cpus)
        except OSError:   # none of them in our cpuset: its move set ours, the pin undone
            pass
    if cfg.new_namespaces & _sys.CLONE_NEWCGROUP:
        trace.step("unshare", "cgroup")
        _sys.unshare(_sys.CLONE_NEWCGROUP)
    state = dict(a.state, pid=int(os.readlink("self", dir_fd=a.proc_fd)))
    if any(cfg.hooks.get(k) for k in ("prestart", "createRuntime", "createContainer")):
        sync.send(a.sock, "hooks", pid=state["pid"])
        sync.expect(a.sock, "resume")
        from hutch.runtime import hooks
        hooks.run_hooks(cfg.hooks.get("createContainer"), dict(state, status="created"),
                        "createContainer")
    if not own_mounts:
        rootfs.write_sysctls(cfg)  # the host's /proc, before the chroot hides it
        rootfs.chroot(_sys, cfg.rootfs)
    elif a.no_pivot:
        rootfs.move_root(_sys, cfg.rootfs)
    else:
        rootfs.pivot(_sys, cfg.rootfs)
    if proc.terminal:
        setup_terminal(proc, a.console, a.proc_fd)
    if cfg.hostname:
        trace.step("sethostname", cfg.hostname)
        _sys.sethostname(cfg.hostname)
    if cfg.domainname:
        trace.step("setdomainname", cfg.domainname)
        _sys.setdomainname(cfg.domainname)
    if own_mounts:
        rootfs.finish(_sys, cfg, a.proc_fd)
    # The exec fifo is re-opened for writing through the container's own /proc when it has
    # one, so the host's /proc can be closed before the cwd is entered; without one, the
    # getcwd() check in finish_process is what keeps the cwd inside.
    fifo_path = f"/proc/self/fd/{a.fifo_fd}"
    host_proc = () if _same_file(fifo_path, a.fifo_fd) else (a.proc_fd,)
    finish_process(proc, program, a.preserve_fds, a.proc_fd,
                   keep=(a.sock.fileno(), a.fifo_fd) + host_proc + _trace_fd())
    path = look_path(proc.args[0], proc.path_env())
    env = process_env(proc)
    sync.send(a.sock, "ready")
    trace.step("exec.fifo", "wait for start")
    if host_proc:
        fifo = os.open(f"self/fd/{a.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=a.proc_fd)
    else:
        fifo = os.open(fifo_path, os.O_WRONLY | os.O_CLOEXEC)
    os.write(fifo, b"0")
    os.close(fifo)
    if cfg.hooks.get("startContainer"):
        from hutch.runtime import hooks  # preloaded
        hooks.run_hooks(cfg.hooks.get("startContainer"), dict(state, status="created"),
                        "startContainer")
    exec_user_program(proc, program, path, env)


def _same_file(path: str, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _load_seccomp(program: bytes) -> None:
    trace.step("seccomp", "load filter", instructions=len(program) // 8)
    _sys.seccomp_set_filter(program)


def finish_process(proc: Process, seccomp_program: bytes | None, preserve_fds: int,
                   proc_fd: int, keep: tuple[int, ...]) -> None:
    """Limits, user, capabilities, fds, cwd: what the init and an exec'd process both do.

    Every fd from 3 + preserve_fds up is closed but `keep` (proc_fd included)."""
    set_rlimits(proc)
    if seccomp_program and not proc.no_new_privileges:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we have it.
        _load_seccomp(seccomp_program)
    set_user_and_caps(proc)
    # A change of credentials may have made us dumpable again (fs.suid_dumpable).
    _sys.set_dumpable(False)
    trace.step("fds", f"close all from {3 + preserve_fds} up",
               kept=",".join(map(str, sorted(keep))))
    close_fds_above(3 + preserve_fds, proc_fd, keep)
    trace.step("chdir", proc.cwd)
    try:
        os.chdir(proc.cwd)
    except OSError as e:
        raise InitError(f"chdir to cwd ({proc.cwd!r}) set in config.json failed: "
                        f"{describe(e)}") from None
    check_cwd_inside()
    os.umask(0o022 if proc.umask is None else proc.umask)


def check_cwd_inside() -> None:
    """runc's check: a cwd reached through a leaked host fd is outside our root, and the
    kernel reports it "(unreachable)" (glibc's getcwd: ENOENT)."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        cwd = ""
    except OSError:
        return  # e.g. getcwd denied by the container's own seccomp profile: not a breakout
    if not cwd.startswith("/"):
        raise InitError("current working directory is outside of container mount namespace "
                        "root -- possible container breakout detected")


def exec_user_program(proc: Process, seccomp_program: bytes | None, path: str,
                      env: list[str]) -> None:
    reset_signals()
    if proc.no_new_privileges:
        trace.step("prctl", "PR_SET_NO_NEW_PRIVS")
        _sys.set_no_new_privs()
        if seccomp_program:
            _load_seccomp(seccomp_program)
    trace.step("execve", path, args=" ".join(proc.args))
    try:
        os.execve(path, proc.args, dict(e.partition("=")[::2] for e in env))
    except OSError as e:
        raise InitError(f'exec: "{proc.args[0]}": {describe(e)}') from None


def reset_signals() -> None:
    """The program starts with no signal ignored or blocked, as under runc: an ignored
    signal stays ignored across execve, and ours are (Python ignores SIGPIPE and SIGXFSZ,
    the engine's monitor the job-control signals): `yes | head` would spin forever on
    EPIPE, a shell's children would shrug off SIGINT."""
    import _signal    # (C, loaded already: the interpreter's own signal handling)
    for sig in range(1, _signal.NSIG):
        if _signal.getsignal(sig) == _signal.SIG_IGN:
            _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())


# --- exec into a running container ---

class ExecArgs:
    def __init__(self, proc: Process, sock, *, init_pid: int, namespaces: list[tuple[str, str]],
                 seccomp_program: bytes | None, proc_fd: int, console, stdio,
                 preserve_fds: int = 0, birth_fd: int | None = None,
                 join_fds: list[tuple[str, int]] = ()):
        # birth_fd: the cgroup2 directory to fork the process into; join_fds: (a `tasks`
        # file, open for writing) per v1 hierarchy it joins by itself (see
        # CgroupManager.birth_dir): opened by the parent, out of the container's sight.
        self.birth_fd = birth_fd
        self.join_fds = join_fds
        self.proc = proc
        self.sock = sock
        self.init_pid = init_pid
        self.namespaces = namespaces
        self.seccomp_program = seccomp_program
        self.proc_fd = proc_fd
        self.console = console
        self.stdio = stdio
        self.preserve_fds = preserve_fds


def exec_stage1(a: ExecArgs) -> None:
    # Before joining the container (CVE-2019-5736): see stage1.
    trace.step("prctl", "PR_SET_DUMPABLE 0")
    _sys.set_dumpable(False)
    root = os.open(f"/proc/{a.init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    # The cgroup namespace is the process's to join, once in its cgroup: a fork into a
    # cgroup outside our cgroup namespace is refused.
    opened = open_namespaces(a.namespaces)
    cgroup_ns = [ns for ns in opened if ns[1] == "cgroup"]
    join_opened([ns for ns in opened if ns[1] != "cgroup"])
    # setns(CLONE_NEWNS) puts us at the namespace's bottom root, which is not the init's
    # root when the runtime itself runs chrooted: take the init's root exactly.
    os.fchdir(root)
    _sys.chroot(".")
    os.chdir("/")
    os.close(root)
    if any(kind == "user" for kind, _ in a.namespaces):
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    pid = None
    if a.birth_fd is not None:
        try:
            trace.step("clone3", "into the container's cgroup2 directory")
            pid = _sys.fork_into_cgroup(a.birth_fd, proc_fd=a.proc_fd)
        except OSError as e:   # (an older kernel, a user namespace's rights): it moves us
            trace.step("clone3", f"not used: {e}")
    born = pid is not None
    if pid is None:
        pid = os.fork()
    if pid == 0:
        run_child(lambda: exec_stage2(a, cgroup_ns), a.sock)
    sync.send(a.sock, "pid", pid=pid, born=born)


def exec_stage2(a: ExecArgs, cgroup_ns: list[tuple[int, str, str]]) -> None:
    proc = a.proc
    # Nothing is done for the container until we are in its cgroup: what we join
    # ourselves, then what the parent moves us into ("cgroup").
    for tasks, fd in a.join_fds:
        join_cgroup(tasks, fd)
    join_opened(cgroup_ns)
    sync.expect(a.sock, "cgroup")
    os.setsid()
    dup_stdio(a.stdio)
    if proc.terminal:
        setup_terminal(proc, a.console)
    finish_process(proc, a.seccomp_program, a.preserve_fds, a.proc_fd,
                   keep=(a.sock.fileno(),) + _trace_fd())
    path = look_path(proc.args[0], proc.path_env())
    env = process_env(proc)
    sync.send(a.sock, "ready")
    exec_user_program(proc, a.seccomp_program, path, env)
