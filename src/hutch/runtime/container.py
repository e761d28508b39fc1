"""The runtime library: what `hutch-runtime` and the engine call (docs/contracts.md).

Each operation loads the container's state, derives its status from the kernel (init pid
+ start time, the freezer, the exec fifo), checks the transition table in status.py, acts,
and saves the state atomically. No process of ours stays resident after create.
"""
from __future__ import annotations

import fcntl
import os
import select
import time

# The C cores of signal and socket: their Python modules' enums cost ~4 ms of import on
# every runtime call.
import _signal as signal
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as unix_socket

from hutch import _sys, cgroups, trace
from hutch.oci.runtime_spec import SPEC_VERSION, ConfigError, load_config
# hooks and terminal are imported where a config or a call needs them: most runs use neither.
from hutch.runtime import capabilities, process, specconv, statefile, status, sync
from hutch.runtime.errors import ContainerNotFound, HookError, RuntimeFailure

__all__ = ["create", "start", "run", "state", "list_containers", "kill", "delete", "pause",
           "resume", "ps", "exec_process", "process_from_args", "update", "stats",
           "ContainerNotFound", "RuntimeFailure"]


def _cgroup_manager(cgroups_path: str):
    try:
        return cgroups.manager(cgroups_path)
    except cgroups.CgroupError as e:
        raise RuntimeFailure(str(e)) from None


def _warn(message: str) -> None:
    import sys
    sys.stderr.write(f"WARN: {message}\n")


def _check_host_support(cfg: specconv.Config, raw: dict) -> None:
    """What the host cannot do is refused before anything is created."""
    proc = cfg.process
    if (raw.get("linux") or {}).get("mountLabel"):
        # As crun: without SELinux a mount label means nothing; with it, hutch cannot
        # apply one (context= on every mount) and says so.
        if os.path.exists("/sys/fs/selinux/enforce"):
            raise ConfigError("linux.mountLabel: SELinux mount labels are not supported")
        _warn("linux.mountLabel ignored: SELinux is not enabled on this host")
    if proc.apparmor_profile and not os.path.exists("/sys/kernel/security/apparmor"):
        raise ConfigError(f"process.apparmorProfile: apparmor profile {proc.apparmor_profile!r} "
                          "specified but AppArmor is not enabled on this system")
    if proc.selinux_label and not os.path.exists("/sys/fs/selinux/enforce"):
        raise ConfigError(f"process.selinuxLabel: SELinux label {proc.selinux_label!r} "
                          "specified but SELinux is not enabled on this system")
    if proc.rlimits:
        has_sys_resource = _sys.capget()[0] >> capabilities.NUMBERS["CAP_SYS_RESOURCE"] & 1
        for name, res, soft, hard in proc.rlimits:
            current = _sys.getrlimit(res)[1]
            if hard > current and current != _sys.RLIM_INFINITY and not has_sys_resource:
                raise ConfigError(
                    f"process.rlimits: {name} hard limit {hard} is above this host's hard "
                    f"limit {current}, and raising it needs CAP_SYS_RESOURCE")
    if "mount" not in cfg.namespace_types and (cfg.mounts or cfg.masked_paths or
                                                cfg.readonly_paths or cfg.readonly_root):
        _warn("no mount namespace in linux.namespaces: the container is only chrooted; "
              "mounts, devices, read-only and masked paths are not set up")
    if cfg.seccomp:
        try:
            import seccomp  # noqa: F401
        except ImportError:
            raise ConfigError("linux.seccomp: python3-seccomp (libseccomp) is not "
                              "installed") from None


def _load_bundle(bundle: str, raw: dict | None = None) -> tuple[dict, specconv.Config]:
    try:
        if raw is None:
            raw = load_config(bundle)
        cfg = specconv.convert(raw, bundle)
        _check_host_support(cfg, raw)
    except ConfigError as e:
        raise RuntimeFailure(f"invalid configuration: {e}") from None
    return raw, cfg


def _base_state(cid: str, bundle: str, annotations: dict) -> dict:
    return {"ociVersion": SPEC_VERSION, "id": cid, "status": status.CREATING, "pid": 0,
            "bundle": bundle, "annotations": annotations}


def _wait_pid_exit(pid: int) -> None:
    """Block until a process (not necessarily our child) has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def _kill_and_wait(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_pid_exit(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _host_id(mappings: list[tuple[int, int, int]], container_id: int) -> int:
    for inside, outside, size in mappings:
        if inside <= container_id < inside + size:
            return outside + container_id - inside
    return -1


def _write_id_maps(pid: int, cfg: specconv.Config) -> None:
    for name, maps in (("uid_map", cfg.uid_mappings), ("gid_map", cfg.gid_mappings)):
        text = "".join(f"{c} {h} {s}\n" for c, h, s in maps)
        trace.step("userns", f"/proc/{pid}/{name}", value=text.strip().replace("\n", ","))
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)


def _connect_console(path: str | None):
    if not path:
        return None
    sock = unix_socket(AF_UNIX, SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise RuntimeFailure(f"failed to connect to console socket {path}: "
                             f"{process.describe(e)}") from None
    return sock


def _spawn(body, sock_child, sock_parent, elsewhere: set[int] | None = None) -> int:
    """fork; the child runs body and never returns."""
    return _forked(os.fork(), body, sock_child, sock_parent, elsewhere)


def _forked(pid: int, body, sock_child, sock_parent, elsewhere: set[int] | None) -> int:
    """After a fork: the child runs body and never returns. `elsewhere`: our CPU set, to start
    the child on one of them but ours: it sets up while we make its cgroup, where the kernel
    would queue it behind us on our CPU (~1.4 ms here, beside an idle one). The init takes
    the whole set back once the "cgroup" message shows our pinning is done."""
    if pid == 0:
        sock_parent.close()
        process.run_child(body, sock_child)
    sock_child.close()
    if elsewhere:
        try:
            os.sched_setaffinity(pid, elsewhere - {_sys.sched_getcpu()})
        except OSError:     # (only a hint: a child gone already, a cpuset changed)
            pass
    return pid


def _spawn_into_new_pidns(body, sock_child, sock_parent, elsewhere: set[int] | None = None) -> int:
    """_spawn, the child as PID 1 of a new pid namespace: unshare(CLONE_NEWPID) sets the
    namespace of our next children only, and ours is set back right after the fork."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        trace.step("unshare", "pid (for the init we fork)")
        _sys.unshare(_sys.CLONE_NEWPID)
        try:
            return _spawn(body, sock_child, sock_parent, elsewhere)
        finally:
            _sys.setns(own, _sys.CLONE_NEWPID)
    finally:
        os.close(own)


def _fork_init(body, sock_child, sock_parent, cfg: specconv.Config, cgroup,
               elsewhere: set[int] | None) -> tuple[int, str | None]:
    """Fork the init (PID 1 of a new pid namespace if asked), born in our cgroup2 directory
    where the kernel can (see CgroupManager.birth_dir); its pid, and that directory or None
    (then it is moved in like the others)."""
    new_pidns = cfg.new_namespaces & _sys.CLONE_NEWPID
    birth = cgroup.birth_dir()
    if birth:
        pid = None
        fd = os.open(birth, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            trace.step("clone3", f"init into {birth}")
            pid = _sys.fork_into_cgroup(fd, new_pidns)
        except OSError as e:   # an older kernel (5.7), a threaded caller: fork, then move
            trace.step("clone3", f"not used: {e}")
        finally:
            os.close(fd)
        if pid is not None:
            return _forked(pid, body, sock_child, sock_parent, elsewhere), birth
    spawn = _spawn_into_new_pidns if new_pidns else _spawn
    return spawn(body, sock_child, sock_parent, elsewhere), None


def _self_join_fds(cgroup) -> tuple[str | None, int | None, list[tuple[str, int]]]:
    """For a process to join an existing cgroup by itself from inside the container (where
    the host's cgroup files are out of sight): our cgroup2 directory and its fd (or None),
    and each v1 `tasks` file open for writing, with its path. What will not open, we move
    it into instead."""
    birth, birth_fd = cgroup.birth_dir(make=False), None
    if birth:
        try:
            birth_fd = os.open(birth, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            pass
    join_fds = []
    for tasks in cgroup.self_join_files().values():
        try:
            join_fds.append((tasks, os.open(tasks, os.O_WRONLY | os.O_CLOEXEC)))
        except OSError:
            pass
    return birth, birth_fd, join_fds


def _child_error(sock) -> str | None:
    """The error a container process already sent, if one is waiting (non-blocking)."""
    if not select.select([sock], [], [], 0)[0]:
        return None
    msg = sync.recv(sock)
    return msg["msg"] if msg and msg["type"] == "error" else None


def _receive_pid(sock, intermediate: int, cfg: specconv.Config | None = None) -> dict:
    """Serve the intermediate until it reports the pid of its child, then reap it; its
    "pid" message."""
    while True:
        msg = sync.recv(sock)
        if msg is None:
            raise sync.ProtocolError("container init exited unexpectedly")
        if msg["type"] == "userns" and cfg is not None:
            _write_id_maps(intermediate, cfg)
            sync.send(sock, "userns-done")
        elif msg["type"] == "pid":
            _reap(intermediate)
            return msg
        elif msg["type"] == "error":
            raise sync.ProtocolError(msg["msg"])
        else:
            raise sync.ProtocolError(f"sync: unexpected {msg['type']!r}")


def _forked_init(sock, intermediate: int) -> int:
    """A create failed while the intermediate was starting: the init's pid if it forked
    one, else 0. It always says so first ("pid"), or stops to wait for us ("userns", before
    any fork), or fails ("error"); its exit without a word means no init either."""
    try:
        pidfd = os.pidfd_open(intermediate)
    except ProcessLookupError:
        return 0
    try:
        ready = select.select([sock, pidfd], [], [])[0]
        # Its messages come before its exit: look again when only the exit was seen.
        if sock in ready or select.select([sock], [], [], 0)[0]:
            msg = sync.recv(sock)
            return msg["pid"] if msg and msg["type"] == "pid" else 0
        return 0
    except (OSError, ValueError):
        return 0
    finally:
        os.close(pidfd)


# --- create / start / run ---

def create(state_root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
           preserve_fds=0, stdio=None, no_new_keyring=False):
    """Create the container; its init waits before the user's program until start().

    Returns the init's host pid. On any failure nothing is left behind."""
    return _create(state_root, cid, bundle, pid_file=pid_file, console_socket=console_socket,
                   no_pivot=no_pivot, preserve_fds=preserve_fds, stdio=stdio,
                   no_new_keyring=no_new_keyring)[0]["pid"]


def _create(state_root, cid, bundle, *, pid_file=None, console_socket=None, no_pivot=False,
            preserve_fds=0, stdio=None, no_new_keyring=False, keep_sync=False, console=None,
            raw=None, start=False):
    """create(); returns the state saved, the sync socket (keep_sync) for `run` to see
    exec errors, and, with `start` (run), the release already under way (see _release).
    Takes an already connected console socket (`console`) for a foreground terminal, and
    the config.json already read (`raw`)."""
    statefile.validate_id(cid)
    bundle = os.path.abspath(bundle)
    raw, cfg = _load_bundle(bundle, raw)
    if cfg.process.terminal and not console_socket and console is None:
        raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                             "console socket")
    if console_socket and not cfg.process.terminal:
        raise RuntimeFailure("cannot use console socket if runc will not detach or "
                             "allocate tty")
    os.makedirs(state_root, mode=0o700, exist_ok=True)
    # The host's cgroup layout before any fork: where it is not the standard one, it is
    # read from mountinfo, and the child's unshare(CLONE_NEWNS) and mounts hold the
    # namespace's lock that read needs (4-5 ms, not 0.6, beside 430 host mounts).
    cgroups.cgroup_mounts()
    lock = _claim_id(state_root, cid, cfg)
    cgroup = None  # once we make it
    sock = None
    fds: list[int] = [lock]
    init_pid = 0
    intermediate = 0
    release = None
    try:
        fifo = statefile.fifo_path(state_root, cid)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # mkfifo is subject to the umask
        if cfg.uid_mappings:
            # The init opens it again as the container's root, mapped on the host.
            os.chown(fifo, _host_id(cfg.uid_mappings, 0), _host_id(cfg.gid_mappings, 0))
        if console is None:
            console = _connect_console(console_socket)
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        fds.append(fifo_fd)
        proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(proc_fd)
        base = _base_state(cid, bundle, cfg.annotations)
        # The manager (its driver's imports) before the fork too: after it, every page its
        # imports write is first copied from the one the child shares (0.25 ms here, ~1 ms
        # there, on the way to "cgroup-made").
        manager = _cgroup_manager(cfg.cgroups_path or specconv.default_cgroups_path(cid))
        process.preload(cfg)
        sock, child_sock = sync.pair()
        args = process.InitArgs(cfg, child_sock, fifo_fd=fifo_fd, proc_fd=proc_fd,
                                console=console, stdio=stdio, preserve_fds=preserve_fds,
                                no_pivot=no_pivot, state=base,
                                seccomp_cache=statefile.seccomp_cache_dir(state_root),
                                keyring=None if no_new_keyring else f"_ses.{cid}")
        # What the init joins by itself (see CgroupManager.birth_dir): none of the moves
        # that wait for the kernel after a quiet spell, where it forks it itself.
        joins: dict[str, str] = {}
        joined: tuple[str, ...] = ()
        cgroup = manager
        if not process.forks_init_itself(cfg):
            # Its moves are ours: their wait begins now, in the background.
            cgroups.prime_attach_in_thread()
            intermediate = _spawn(lambda: process.stage1(args), child_sock, sock)
        else:
            cpus = os.sched_getaffinity(0)
            args.cpus = cpus if len(cpus) > 1 else None
            init_pid, birth = _fork_init(lambda: process.init_forked_by_parent(args),
                                         child_sock, sock, cfg, cgroup, args.cpus)
            joins = cgroup.self_join_files()
            joined = tuple(joins) + ((birth,) if birth else ())
        if console:
            console.close()
        # The cgroup is made while the intermediate unshares and the init mounts (it waits
        # for "cgroup-made" before binding the cgroup's directories).
        try:
            trace.step("cgroup", "create", path=cgroup.path)
            cgroup.create()
            if not intermediate:  # (it reads the socket for "userns-done" until it forks)
                # The init binds the directories while their limits are written.
                sync.send(sock, "cgroup-made", dirs=cgroup.hierarchy_dirs())
            cgroup.apply(cfg.resources)
        except BaseException:
            if intermediate:
                init_pid = _forked_init(sock, intermediate)  # killed below, as it is
            raise
        if intermediate:
            init_pid = _receive_pid(sock, intermediate, cfg)["pid"]
            intermediate = 0
            sync.send(sock, "cgroup-made", dirs=cgroup.hierarchy_dirs())
        # While the init prepares its rootfs: where it does not join by itself (the
        # intermediate's, a fallback's; quick for the first, as the primer started the wait).
        trace.step("cgroup", f"add pid {init_pid}", joins_itself=len(joined))
        try:
            cgroup.add_process(init_pid, joined)
        except cgroups.CgroupError:
            # It may have failed and exited first: its own error is the one to report.
            error = _child_error(sock)
            if error:
                raise sync.ProtocolError(error) from None
            raise
        sync.send(sock, "cgroup", join=list(joins.values()))
        # Its start time before the fifo is open: from then on it may run and exit (and
        # with `start` nothing waits for us).
        started = statefile.process_start_time(init_pid)
        if started is None:
            raise RuntimeFailure("container init exited unexpectedly")
        if start:
            # The fifo's read end open before the init is ready: its open for writing, then
            # its execve, need not wait for us to see "ready" and come back to release it.
            try:
                release = _open_release(fifo, init_pid)
            except RuntimeFailure:
                pass  # gone already: its own error (or EOF) is read below
        # Saved while the init finishes its setup (the lock keeps other commands out until
        # we return; a failure below removes it).
        saved = {k: v for k, v in base.items() if k != "status"}  # status is derived
        saved.update(pid=init_pid, pid_start=started, rootfs=cfg.rootfs, created=_now(),
                     cgroups_path=cgroup.path, config=raw, no_pivot=no_pivot)
        statefile.save(state_root, cid, saved)
        msg = sync.recv(sock)
        if msg and msg["type"] == "hooks":
            from hutch.runtime import hooks
            # runtime-tools (and crun) expect "created" in the prestart state.
            hook_state = dict(base, pid=init_pid, status=status.CREATED)
            hooks.run_hooks(cfg.hooks.get("prestart"), hook_state, "prestart")
            hooks.run_hooks(cfg.hooks.get("createRuntime"), hook_state, "createRuntime")
            sync.send(sock, "resume")
            msg = sync.recv(sock)
        if msg is None:
            raise sync.ProtocolError("container init exited unexpectedly")
        if msg["type"] == "error":
            raise sync.ProtocolError(msg["msg"])
        if pid_file:
            statefile.write_pid_file(pid_file, init_pid)
    except BaseException as e:
        if release is not None:
            _close_release(release)
        if intermediate:
            _kill_and_wait(intermediate)
            _reap(intermediate)
        if init_pid:
            _kill_and_wait(init_pid)
            _reap(init_pid)  # ours when we are its subreaper (`run`) and its parent is gone
        if sock is not None:
            sock.close()
            sock = None
        if cgroup is not None:
            try:
                cgroup.destroy()
            except cgroups.CgroupError as ce:  # the first error is the one to report
                _warn(f"removing cgroup {cgroup.path}: {ce}")
        statefile.remove(state_root, cid)
        if isinstance(e, (sync.ProtocolError, HookError)):
            raise RuntimeFailure(f"unable to start container process: {e}") from None
        if isinstance(e, OSError):
            raise RuntimeFailure(process.describe(e)) from None
        if isinstance(e, cgroups.CgroupError):
            raise RuntimeFailure(str(e)) from None
        raise
    finally:
        # The children share the lock's open file: unlock it, not just close our fd.
        fcntl.flock(lock, fcntl.LOCK_UN)
        for fd in fds:
            os.close(fd)
        if sock is not None and not keep_sync:
            sock.close()
    return saved, sock, release


def _exclusive(operation):
    """Hold the container's lock (flock on its state directory) for the whole operation,
    so two commands never act on one container at once (e.g. two racing deletes)."""
    def locked(state_root, cid, *args, **kwargs):
        try:
            fd = os.open(statefile.container_dir(state_root, cid),
                         os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return operation(state_root, cid, *args, **kwargs)
        finally:
            os.close(fd)
    locked.__name__ = operation.__name__   # (functools.wraps: ~1.5 ms of import)
    locked.__doc__ = operation.__doc__
    locked.__wrapped__ = operation
    return locked


def _claim_id(state_root: str, cid: str, cfg: specconv.Config) -> int:
    """Make the container's state dir and lock it for the create; returns the locked fd.

    A dir without a state file that nobody holds locked is what a create killed half-way
    left behind: it is cleared (with its cgroup) and taken over."""
    cdir = statefile.container_dir(state_root, cid)
    try:
        os.mkdir(cdir, 0o711)
    except FileExistsError:
        fd = os.open(cdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeFailure("container with given ID already exists") from None
        if os.path.exists(os.path.join(cdir, statefile.STATE_FILE)):
            os.close(fd)
            raise RuntimeFailure("container with given ID already exists") from None
        trace.step("state", f"clearing what an interrupted create of {cid} left")
        cgroup = _cgroup_manager(cfg.cgroups_path or specconv.default_cgroups_path(cid))
        if cgroup.exists():
            cgroup.destroy()
        for name in os.listdir(cdir):
            os.unlink(os.path.join(cdir, name))
        return fd
    fd = os.open(cdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _load(state_root: str, cid: str) -> tuple[dict, str]:
    st = statefile.load(state_root, cid)
    return st, _status(state_root, st)


def _status(state_root: str, st: dict) -> str:
    if not statefile.init_alive(st):
        return status.STOPPED
    cgroup = _cgroup_manager(st["cgroups_path"])
    if cgroup.is_frozen():
        return status.PAUSED
    if os.path.exists(statefile.fifo_path(state_root, st["id"])):
        return status.CREATED
    return status.RUNNING


@_exclusive
def start(state_root, cid) -> None:
    st, current = _load(state_root, cid)
    status.check("start", current, cid)
    _release(state_root, st)


def _open_release(fifo: str, pid: int) -> tuple[int, int]:
    """(pidfd of the init, the exec fifo's read end): once the fifo is open, the init goes
    on to exec."""
    # The pidfd first: once the fifo is open the init runs, and may exit and be reaped (by
    # a subreaper such as Docker's shim) before we would look.
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise RuntimeFailure("cannot start a container that has stopped") from None
    try:
        # Opened non-blocking: a dead init must not leave `start` hanging on the fifo.
        return pidfd, os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except BaseException:
        os.close(pidfd)
        raise


def _close_release(release: tuple[int, int]) -> None:
    for fd in release:
        os.close(fd)


def _release(state_root: str, st: dict, release: tuple[int, int] | None = None) -> None:
    """Let the init past the exec fifo (or see it past: `release`, from _open_release), then
    run the poststart hooks."""
    fifo = statefile.fifo_path(state_root, st["id"])
    pidfd, fd = release or _open_release(fifo, st["pid"])
    try:
        trace.step("exec.fifo", "release the init")
        while True:
            ready, _, _ = select.select([fd, pidfd], [], [])
            if _read_fifo(fd):
                break
            if pidfd in ready:
                # It exited: released (its "0" is there) and finished first, or died before.
                if _read_fifo(fd):
                    break
                raise RuntimeFailure("cannot start a container that has stopped")
    finally:
        _close_release((pidfd, fd))
    os.unlink(fifo)
    cfg_hooks = (st["config"].get("hooks") or {}).get("poststart")
    if cfg_hooks:
        from hutch.runtime import hooks
        hooks.run_hooks_warn(cfg_hooks, dict(_hook_state(st), status=status.RUNNING),
                             "poststart", _warn)


def _read_fifo(fd: int) -> bool:
    """Whether the init's "0" is in the exec fifo (non-blocking)."""
    try:
        return bool(os.read(fd, 1))
    except BlockingIOError:
        return False


def _hook_state(st: dict) -> dict:
    return {k: st[k] for k in ("ociVersion", "id", "pid", "bundle", "annotations")}


def run(state_root, cid, bundle, *, detach=False, pid_file=None, console_socket=None,
        no_pivot=False, preserve_fds=0, stdio=None, no_new_keyring=False) -> int:
    """create + start; unless detached, wait for the init and delete the container.

    Returns the init pid (detach) or its exit status (128+signal when killed)."""
    if not detach:
        _sys.set_child_subreaper()
    ours = theirs = None
    raw = _read_config(bundle)
    if not detach and not console_socket and raw and (raw.get("process") or {}).get("terminal"):
        from hutch.runtime import terminal
        ours, theirs = terminal.pair()
    try:
        st, sock, release = _create(state_root, cid, bundle, pid_file=pid_file,
                                    console_socket=console_socket, no_pivot=no_pivot,
                                    preserve_fds=preserve_fds, stdio=stdio,
                                    no_new_keyring=no_new_keyring, keep_sync=True,
                                    console=theirs, raw=raw, start=True)
    except BaseException:
        if ours is not None:
            ours.close()
            theirs.close()
        raise
    pid = st["pid"]
    master = None
    # From here on a signal to us is for the container (as runc): forward it, even before
    # the user's program runs.
    saved = None if detach else _forward_signals(pid)
    try:
        try:
            if ours is not None:
                theirs.close()
                master = terminal.receive_master(ours)
                ours.close()
            pending, release = release, None   # (_release closes it, whatever happens)
            _release(state_root, st, pending)  # as saved: no need to read it back
        except RuntimeFailure:
            # The init died before exec: its own error says why.
            error = _child_error(sock)
            if error:
                raise RuntimeFailure(f"unable to start container process: {error}")
            raise
        # The socket closes at execve; anything before that is an error of the last steps.
        msg = sync.recv(sock)
        if msg and msg["type"] == "error":
            raise RuntimeFailure(f"unable to start container process: {msg['msg']}")
        if detach:
            return pid
        if master is not None:
            master, proxied = None, master
            terminal.proxy(proxied, pid)  # closes it
        return _wait(pid)
    except BaseException:
        if release is not None:
            _close_release(release)
        if master is not None:
            os.close(master)
        if detach:
            _force_delete(state_root, cid, st)
        raise
    finally:
        sock.close()
        if saved is not None:
            _restore_signals(saved)
        if not detach:
            _force_delete(state_root, cid, st)


def _read_config(bundle: str) -> dict | None:
    try:
        return load_config(os.path.abspath(bundle))
    except ConfigError:
        return None  # create() reports it


def _force_delete(state_root: str, cid: str, saved: dict | None = None) -> None:
    try:
        delete(state_root, cid, force=True, saved=saved)
    except ContainerNotFound:
        pass


FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def _forward_signals(pid: int) -> dict:
    """Signals sent to us go to the container's process (runc's behaviour); returns the
    handlers to restore."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    return {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}


def _restore_signals(saved: dict) -> None:
    for s, handler in saved.items():
        signal.signal(s, handler)


def _wait(pid: int) -> int:
    """Wait for our (reparented) child: its exit status, or 128+signal."""
    while True:
        try:
            _, wstatus = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
    return _exit_code(wstatus)


def _exit_code(wstatus: int) -> int:
    if os.WIFSIGNALED(wstatus):
        return 128 + os.WTERMSIG(wstatus)
    return os.WEXITSTATUS(wstatus)


# --- queries ---

def state(state_root, cid) -> dict:
    st, current = _load(state_root, cid)
    return {"ociVersion": st["ociVersion"], "id": cid, "pid": st["pid"] if current !=
            status.STOPPED else 0, "status": current, "bundle": st["bundle"],
            "rootfs": st.get("rootfs", ""), "created": st.get("created", ""),
            "annotations": st.get("annotations") or {}, "owner": ""}


def list_containers(state_root) -> list[dict]:
    out = []
    for cid in statefile.ids(state_root):
        try:
            out.append(state(state_root, cid))
        except ContainerNotFound:
            pass  # deleted meanwhile
    return out


def ps(state_root, cid) -> list[int]:
    st, _ = _load(state_root, cid)
    return _cgroup_manager(st["cgroups_path"]).pids()


# --- signals and teardown ---

def _shares_pid_ns(config: dict) -> bool:
    return not any(ns.get("type") == "pid" and not ns.get("path")
                   for ns in (config.get("linux") or {}).get("namespaces") or ())


@_exclusive
def kill(state_root, cid, sig: int, all=False) -> None:  # noqa: A002 - runc's flag name
    st, current = _load(state_root, cid)
    status.check("kill", current, cid)
    if all or _shares_pid_ns(st["config"]) and sig == signal.SIGKILL:
        _signal_all(st, sig)
        return
    trace.step("kill", f"pid {st['pid']}", signal=sig)
    try:
        os.kill(st["pid"], sig)
    except ProcessLookupError:
        raise RuntimeFailure("container not running") from None
    except OSError as e:
        raise RuntimeFailure(f"unable to signal init: {process.describe(e)}") from None


def _signal_all(st: dict, sig: int) -> None:
    """Every process in the cgroup; frozen first so none can fork away (runc's way)."""
    cgroup = _cgroup_manager(st["cgroups_path"])
    frozen = cgroup.is_frozen()
    if sig == signal.SIGKILL and not frozen:
        cgroup.freeze()
    try:
        for pid in cgroup.pids():
            trace.step("kill", f"pid {pid}", signal=sig)
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        if sig == signal.SIGKILL and not frozen:
            cgroup.thaw()


@_exclusive
def delete(state_root, cid, force=False, *, saved: dict | None = None) -> None:
    """saved: the state as the caller (`run`) saved it, rather than read back."""
    st = statefile.load(state_root, cid) if saved is None else saved
    current = _status(state_root, st)
    if current != status.STOPPED:
        if not force:
            status.check("delete", current, cid)
        _signal_all(st, signal.SIGKILL)
        if current == status.PAUSED:
            _cgroup_manager(st["cgroups_path"]).thaw()
        if statefile.init_alive(st):
            _kill_and_wait(st["pid"])
    cgroup = _cgroup_manager(st["cgroups_path"])
    trace.step("cgroup", "destroy", path=cgroup.path)
    try:
        # Mostly empty by now: the kernel killed the rest of a pid namespace with its init.
        if not cgroup.remove_if_empty():
            for pid in cgroup.pids():
                _kill_and_wait(pid)
            cgroup.destroy()
    except cgroups.CgroupError as e:  # the state must still go
        _warn(str(e))
    poststop = (st["config"].get("hooks") or {}).get("poststop")
    if poststop:
        from hutch.runtime import hooks
        hooks.run_hooks_warn(poststop, dict(_hook_state(st), status=status.STOPPED),
                             "poststop", _warn)
    statefile.remove(state_root, cid)


@_exclusive
def pause(state_root, cid) -> None:
    st, current = _load(state_root, cid)
    status.check("pause", current, cid)
    trace.step("cgroup", "freeze", path=st["cgroups_path"])
    _cgroup_manager(st["cgroups_path"]).freeze()


@_exclusive
def resume(state_root, cid) -> None:
    st, current = _load(state_root, cid)
    status.check("resume", current, cid)
    trace.step("cgroup", "thaw", path=st["cgroups_path"])
    _cgroup_manager(st["cgroups_path"]).thaw()


@_exclusive
def update(state_root, cid, resources: dict) -> None:
    st, current = _load(state_root, cid)
    status.check("update", current, cid)
    try:
        _cgroup_manager(st["cgroups_path"]).apply(resources)
    except cgroups.CgroupError as e:
        raise RuntimeFailure(str(e)) from None


def stats(state_root, cid) -> dict:
    st, _ = _load(state_root, cid)
    return _cgroup_manager(st["cgroups_path"]).stats()


# --- exec ---

def _container_namespaces(init_pid: int) -> list[tuple[str, str]]:
    """The init's namespaces that differ from ours: the ones exec must join."""
    out = []
    for kind, name in specconv.NS_PROC_NAMES.items():
        theirs = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.stat(theirs).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                out.append((kind, theirs))
        except FileNotFoundError:
            pass
    return out


def exec_process(state_root, cid, process_spec: dict, *, detach=False, console_socket=None,
                 pid_file=None, stdio=None, preserve_fds=0) -> int:
    """Run a process (a runtime-spec `process` object) in the container.

    Returns its host pid when detached, else its exit status."""
    st, current = _load(state_root, cid)
    status.check("exec", current, cid)
    try:
        proc = specconv.convert_process(process_spec)
    except ConfigError as e:
        raise RuntimeFailure(f"invalid process: {e}") from None
    if proc.terminal and not console_socket and detach:
        raise RuntimeFailure("cannot allocate tty if runc will detach without setting "
                             "console socket")
    if console_socket and not proc.terminal:
        raise RuntimeFailure("cannot use console socket if runc will not detach or "
                             "allocate tty")
    if not detach:
        _sys.set_child_subreaper()
    cgroup = _cgroup_manager(st["cgroups_path"])
    seccomp_spec = (st["config"].get("linux") or {}).get("seccomp")
    program = None
    if seccomp_spec:
        from hutch.runtime import seccomp
        program = seccomp.program_for(seccomp_spec, statefile.seccomp_cache_dir(state_root))
    ours = None
    if proc.terminal:
        # The process sets its terminal up in the container, out of our modules' reach.
        from hutch.runtime import terminal
    if proc.terminal and not console_socket:
        ours, console = terminal.pair()  # a foreground terminal, proxied by us
    else:
        console = _connect_console(console_socket)
    proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # The process joins the cgroup before it may run anything of the user's, by itself
    # (see CgroupManager.birth_dir): where it cannot, we move it.
    birth, birth_fd, join_fds = _self_join_fds(cgroup)
    sock, child_sock = sync.pair()
    args = process.ExecArgs(proc, child_sock, init_pid=st["pid"],
                            namespaces=_container_namespaces(st["pid"]),
                            seccomp_program=program, proc_fd=proc_fd, console=console,
                            stdio=stdio, preserve_fds=preserve_fds, birth_fd=birth_fd,
                            join_fds=join_fds)
    intermediate = 0
    pid = 0
    try:
        try:
            intermediate = _spawn(lambda: process.exec_stage1(args), child_sock, sock)
        finally:
            for fd in [birth_fd] + [fd for _, fd in join_fds]:
                if fd is not None:
                    os.close(fd)
        if console:
            console.close()
        msg = _receive_pid(sock, intermediate)
        pid = msg["pid"]
        intermediate = 0
        joined = tuple(os.path.dirname(tasks) for tasks, _ in join_fds)
        if msg.get("born"):
            joined += (birth,)
        try:
            cgroup.add_process(pid, joined)
        except cgroups.CgroupError as e:
            # It may have failed and exited first: its own error is the one to report.
            _kill_and_wait(pid)
            msg = sync.recv(sock)
            raise RuntimeFailure(msg["msg"] if msg and msg["type"] == "error" else str(e)
                                 ) from None
        sync.send(sock, "cgroup")
        sync.expect(sock, "ready")
        msg = sync.recv(sock)  # EOF: the socket closed at a successful execve
        if msg and msg["type"] == "error":
            raise sync.ProtocolError(msg["msg"])
    except BaseException as e:
        if ours is not None:
            ours.close()
        if intermediate:
            _kill_and_wait(intermediate)
            _reap(intermediate)
        if pid:
            _kill_and_wait(pid)
            _reap(pid)
        if isinstance(e, sync.ProtocolError):
            raise RuntimeFailure(f"unable to start container process: {e}") from None
        if isinstance(e, OSError):
            raise RuntimeFailure(process.describe(e)) from None
        raise
    finally:
        sock.close()
        os.close(proc_fd)
    if pid_file:
        statefile.write_pid_file(pid_file, pid)
    if detach:
        return pid
    saved = _forward_signals(pid)
    try:
        if ours is not None:
            master = terminal.receive_master(ours)
            ours.close()
            terminal.proxy(master, pid)
        return _wait(pid)
    finally:
        _restore_signals(saved)


def process_from_args(state_root, cid, args: list[str], *, cwd=None, env=(), user=None,
                      terminal=False) -> dict:
    """`exec ARGS`: the container's own process settings with these overrides (as runc)."""
    st = statefile.load(state_root, cid)
    base = dict(st["config"].get("process") or {})
    proc = {k: base[k] for k in ("env", "cwd", "user", "capabilities", "noNewPrivileges",
                                 "apparmorProfile", "selinuxLabel") if k in base}
    proc["args"] = list(args)
    proc["terminal"] = terminal
    if cwd:
        proc["cwd"] = cwd
    if env:
        proc["env"] = list(proc.get("env") or []) + list(env)
    if user:
        uid, _, gid = user.partition(":")
        proc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return proc
