"""The monitor host: one process per state root that forks the containers' monitors (a
zygote, as Android's), so that every idle monitor shares its memory copy-on-write.

A monitor of its own costs a fresh interpreter (~3 MiB private each). The host imports,
once, everything a monitor and its start / exit helpers run, freezes those objects out of
the garbage collector's reach (gc.freeze: a collection would write to every one of them),
then forks one monitor per request: a monitor's private memory is what it writes itself.

    command (spawn)                      host (<run>/monitor-host.sock)
    connect ─────────────────────────▶   accept
    {"cid", "generation", ...} + fds ─▶  fork ──▶ monitor: {"Pid": n} ─▶ command
    (report pipe's write end, attach     close its copies    (then as monitor.py says)
     socket, --debug stderr: SCM_RIGHTS)

No answer (no host, a stale socket, a host exiting or killed mid-request): the command
forks the monitor itself, as before there was a host, and starts a host for the next
ones. The host reaps its monitors (pidfds) and exits once it has had none, and no
request, for IDLE_EXIT seconds; a killed host leaves its monitors running (reparented).
Only the holder of monitor-host.lock binds or removes the socket: two hosts started at
once cannot both serve, and a stale socket is replaced. A host whose code changes on disk
(an upgrade, a checkout) retires: it stops serving and lets a new host claim the socket,
and exits once its monitors are gone, so no container starts with stale code.
"""
from __future__ import annotations

import os

SOCK_NAME = "monitor-host.sock"
LOCK_NAME = "monitor-host.lock"
PROCESS_NAME = "hutch-monitor-host"   # in its command line, beside the state root
PROCESS_COMM = b"hutch-monitor"        # its and its monitors' name in ps (comm, 15 bytes)
IDLE_EXIT = 1.5          # seconds without monitors or requests before the host exits
REQUEST_TIMEOUT = 5.0
REHEARSALS = 10          # (CPython 3.11 specialises a function's bytecode after 8 calls)

# Imported before the fork, so no monitor, starter or helper pays for them: what the start
# (rootfs, network, runtime create/start) and the exit (runtime delete, disconnect,
# unmount, --rm) of a container import. Not the volumes (~4 MiB, shared or not, for the
# containers that have some), nor subprocess (threading's at-fork hook would run, and write
# pages, in every monitor): they import it as a monitor of their own would.
PRELOAD = (
    "json", "socket", "signal", "fcntl", "shutil", "seccomp", "hutch.fastjson",
    "hutch.paths", "hutch._sys.bpf", "hutch._sys.zygote", "hutch.engine.monitor",
    "hutch.engine.logs", "hutch.engine.store", "hutch.engine.states", "hutch.engine.errors",
    "hutch.engine.lifecycle", "hutch.engine.spec", "hutch.engine.networking",
    "hutch.engine.security", "hutch.images.store", "hutch.network.manager",
    "hutch.network.ports", "hutch.runtime.container", "hutch.runtime.errors",
    "hutch.cgroups", "hutch.cgroups.devices", "hutch.cgroups.v1", "hutch.cgroups.v2",
)


def request(paths, job: dict, fds: list[int]) -> int | None:
    """Ask the root's host to fork a monitor for `job`, handing it `fds`; the monitor's
    pid, or None when no host answered (the caller forks the monitor itself)."""
    import _socket
    from array import array
    from hutch.engine.monitor import _dumps, _loads, sock_path
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.settimeout(REQUEST_TIMEOUT)
        s.connect(sock_path(paths.run, SOCK_NAME))
        s.sendmsg([_dumps(job) + b"\n"],
                  [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", fds))])
        # the forked monitor answers (the host may die before forking: then EOF)
        answer = b""
        while not answer.endswith(b"\n"):
            b = s.recv(256)
            if not b:
                return None
            answer += b
        return _loads(answer.decode())["Pid"]
    except (OSError, ValueError, KeyError):
        return None
    finally:
        s.close()


def start_detached(paths) -> None:
    """Start a host for `paths` in the background (called by a child that exits at once, so
    the host is reparented away from the command): a fresh interpreter that imports only
    PRELOAD, a smaller image to share than the command's."""
    import sys
    pid = os.fork()
    if pid:
        return
    try:
        os.setsid()      # out of the command's session: its terminal's signals are not ours
        os.closerange(3, 1 << 20)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir("/")
        env = {k: v for k, v in os.environ.items() if k != "HUTCH_DEBUG"}
        boot = ("import sys; sys.path[:0] = sys.argv[4:]; "
                "from hutch.engine.monitor_host import main; main(sys.argv[2], sys.argv[3])")
        os.execve(sys.executable, [sys.executable, "-S", "-c", boot, PROCESS_NAME, paths.root,
                                   paths.run, *(p for p in sys.path if p)], env)
    finally:
        os._exit(127)


def main(root: str, run: str) -> None:
    """The host's process (started by start_detached)."""
    import fcntl
    os.makedirs(run, exist_ok=True)
    lock = os.open(os.path.join(run, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return           # another host serves this root, or is coming up
    import hutch._sys.zygote
    hutch._sys.zygote.set_process_name(PROCESS_COMM)   # not "python" in ps, for its monitors too
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:      # (seccomp: an optional binding) imported when needed
            pass
    from hutch.paths import Paths
    Host(Paths(root=root, run=run), lock).serve()


def _watch_code() -> int | None:
    """An inotify fd that becomes readable when a file of hutch's loaded packages is written,
    replaced or added (None: no inotify here; the host then lives its normal life)."""
    import sys
    from hutch._sys import inotify
    dirs = {os.path.dirname(m.__file__) for name, m in list(sys.modules.items())
            if name.split(".")[0] == "hutch" and getattr(m, "__file__", None)}
    try:
        fd = inotify.inotify_init1()
    except OSError:
        return None
    try:
        for d in dirs:
            inotify.inotify_add_watch(fd, d, inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO
                                      | inotify.IN_CREATE)
    except OSError:
        os.close(fd)
        return None
    return fd


class Host:
    def __init__(self, paths, lock: int):
        import socket
        from hutch.engine import monitor
        self.paths = paths
        self.lock = lock
        self.path = os.path.join(paths.run, SOCK_NAME)
        try:
            os.unlink(self.path)      # stale: its host is gone (we hold the lock)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(monitor.sock_path(paths.run, SOCK_NAME))
        self.inode = os.stat(self.path).st_ino
        self.listener.listen(128)
        self.children: dict[int, int] = {}     # pidfd -> monitor pid
        self.code_watch = _watch_code()

    def serve(self) -> None:
        import gc
        import select
        import time
        import hutch._sys.zygote
        from hutch.engine import monitor
        monitor.ignore_job_signals()
        self.ep = ep = select.epoll()
        self.watch, self.readable = ep.register, select.EPOLLIN    # (a bound method each)
        listen_fd = self.listener.fileno()
        # the monitor accepts (a poll that found no connection must not block it)
        self.listener.setblocking(False)
        ep.register(listen_fd, select.EPOLLIN)
        if self.code_watch is not None:
            ep.register(self.code_watch, select.EPOLLIN)
        monitor.rehearse_idle()
        # (looked up here: an import in the fork path would touch importlib's objects)
        self.run_monitor = monitor.run_from_host
        self.subreaper = hutch._sys.zygote.set_child_subreaper
        # the fork path, as each request runs it, enough times that what its first runs
        # write (bytecode specialised after 8 calls) is written here: these monitors find no
        # connection and exit (should a command have connected already, one serves it)
        for _ in range(REHEARSALS):
            self._fork_monitor()
        # from here on the objects of every module above are shared with each monitor:
        # keep the collector from touching (and so copying) them
        gc.collect()
        gc.freeze()
        # Between two forks, each page this loop writes is one more copy per monitor: so
        # it allocates little (no accept, request or clock here; few events per poll)
        children = self.children
        poll, fork_monitor = ep.poll, self._fork_monitor
        last = time.monotonic()
        while True:
            if children:
                timeout = -1.0
            else:
                timeout = last + IDLE_EXIT - time.monotonic()
                if timeout <= 0 or self.listener is None:
                    break
            for fd, _ in poll(timeout, 4):
                if fd == listen_fd:
                    if self.listener is not None:
                        fork_monitor()
                elif fd in children:      # a monitor is gone
                    ep.unregister(fd)
                    os.close(fd)
                    try:
                        os.waitpid(children.pop(fd), 0)
                    except ChildProcessError:
                        pass
                elif fd == self.code_watch:
                    ep.unregister(fd)
                    self._retire()
                if not children:
                    last = time.monotonic()
        self._retire()

    def _retire(self) -> None:
        """Stop serving: remove our socket (not a newer host's, should the run dir have been
        replaced) and release the lock, so the next command starts a new host; a command
        connecting meanwhile reads EOF and forks its monitor itself."""
        if self.listener is None:
            return
        try:
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.ep.unregister(self.listener.fileno())   # (a monitor may hold a copy a moment)
        self.listener.close()
        self.listener = None
        os.close(self.lock)
        if self.code_watch is not None:
            os.close(self.code_watch)
            self.code_watch = None

    def _fork_monitor(self) -> None:
        """Fork a monitor for the connection waiting on the listener: it accepts and reads
        the request itself (whatever we do here between forks writes pages each monitor
        would then hold a copy of), and tells us once it has accepted, so that we poll
        again (and do not fork twice for one connection)."""
        try:
            accepted, tell = os.pipe2(os.O_CLOEXEC)
        except OSError:
            return self._refuse()
        try:
            pid = os.fork()
        except OSError:
            os.close(accepted)
            os.close(tell)
            return self._refuse()
        if pid == 0:  # pragma: no cover - the monitor; never returns
            os.close(accepted)
            try:
                fd = self.listener._accept()[0]
            except OSError:    # none waiting (another poll's), or the command is gone
                os._exit(0)
            finally:
                os.close(tell)
            self.run_monitor(self.paths, fd, self.subreaper)
        os.close(tell)
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = pid
        self.watch(pidfd, self.readable)
        os.read(accepted, 1)     # EOF: accepted, or gone
        os.close(accepted)

    def _refuse(self) -> None:
        """Close the waiting connection (no monitor could be forked for it): its command
        reads EOF and forks its monitor itself."""
        try:
            os.close(self.listener._accept()[0])
        except OSError:
            pass
