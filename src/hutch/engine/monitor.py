"""The per-container monitor (Podman's conmon, containerd's shim), one small detached process.

It is the parent of the container's init (a child subreaper: the runtime double-forks),
holds the init's stdio pipes or pty master, writes the json-file log, serves attach / wait /
resize on a unix socket, reaps the exit status (and the OOM kill), records it in exit.json,
cleans up (runtime state, cgroup, network, rootfs mount), then applies --rm or the restart
policy, and exits when the container is done.

Start-up handshake with the command that spawns it (which holds the container's lock):

    command                              monitor (forked by the root's monitor host, or
                                         double-forked by spawn when there is none; setsid)
    spawn(): ask host / fork ────────▶   mount rootfs, write bundle, runtime.create()
                                         network connect, runtime.start()
    read report pipe  ◀── {"Pid":...} ── (or {"Error": msg, "ExitCode": 125/126/127})
    save state "running", unlock         loop: logs, attach, wait for the init's pidfd

A monitor forked by the host (monitor_host: the memory of one preloaded image, shared)
runs the start in a starter child, which hands it the running container (run_from_host),
and its exit clean-ups and restarts in forked helpers: the fewer pages it writes, the
less an idle container costs. One forked by spawn re-execs a lean interpreter to idle.

Exit record (no lock: a command holding the lock may be waiting for it):
    init exits → drain output → runtime.delete, disconnect, unmount → write exit.json
    → tell waiters "exited" → take the lock → --rm / restart / nothing → tell "done".

Socket protocol (ctl.sock in the container's run dir): the client sends one JSON line,
  {"op": "attach", "stdin": bool, "stdout": bool, "stderr": bool, "until": "exited"|"done"}
  {"op": "wait", "until": "exited"|"done"}     {"op": "resize", "h": rows, "w": cols}
  {"op": "wake"}   (ends a restart back-off early: the state was changed under the lock)
then the monitor sends frames: 8-byte header (type, 0, 0, 0, big-endian length) + payload;
type 1 stdout, 2 stderr, 3 exit ({"ExitCode": n}). An attach client's bytes are the
container's stdin; its EOF closes the container's stdin when the container is StdinOnce.
"""
from __future__ import annotations

import _socket
import _struct
import os
import select
import time

from hutch import fastjson, trace

# The idle loop (after become_idle's exec) imports only the modules above, logs' writer and
# the C halves of socket and json: `socket`, `signal`, `json`, `re`, `selectors` and
# `contextlib` pull in enum/collections and cost ~1 MiB per container each.  The warm
# process and the exit path import what they need inside the functions.

FRAME_STDOUT, FRAME_STDERR, FRAME_EXIT = 1, 2, 3
BACKOFF_START = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0
CONNECT_TIMEOUT = 5.0
READ_SIZE = 256 * 1024   # per read of the container's output: few syscalls per MiB
PIPE_SIZE = 1 << 20      # the output pipes' capacity (fs.pipe-max-size): a fast writer
#                          fills bigger reads instead of waking us per 64 KiB
WARM_GRACE = 0.25        # seconds the starting process keeps serving before it goes lean
SLEEP_MAX_STATE = 64 * 1024   # a hand-over this big is taken at once (see _take_over)
WAKE_ANCILLARY = _socket.CMSG_SPACE(2 * 4)   # the sleep's two fds (see _take_over)


def frame(kind: int, payload: bytes) -> bytes:
    return bytes((kind, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def _dumps(obj) -> bytes:
    return fastjson.dumps(obj).encode()


def _loads(text: str):
    """json.loads for the monitor's messages (a request line, the exec'd state)."""
    return fastjson.loads(text)


EVENT_READ = select.EPOLLIN


class _Key:
    __slots__ = ("fileobj", "fd", "data")

    def __init__(self, fileobj, fd, data):
        self.fileobj, self.fd, self.data = fileobj, fd, data


class _Selector:
    """The part of selectors.EpollSelector the loop uses, on select.epoll directly."""

    def __init__(self):
        self._ep = select.epoll()
        self._keys: dict[int, _Key] = {}

    def register(self, fileobj, events, data=None) -> None:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} is already registered")
        self._ep.register(fd, events)
        self._keys[fd] = _Key(fileobj, fd, data)

    def unregister(self, fileobj) -> _Key:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        if fd < 0:                      # a closed socket: found by identity
            fd = next((k.fd for k in self._keys.values() if k.fileobj is fileobj), -1)
        key = self._keys.pop(fd)        # KeyError as selectors raises it
        try:
            self._ep.unregister(fd)
        except OSError:                 # closed meanwhile: epoll forgot it already
            pass
        return key

    def get_map(self) -> dict:
        return self._keys

    def select(self, timeout=None) -> list:
        timeout = -1 if timeout is None else max(timeout, 0)
        try:
            ready = self._ep.poll(timeout, max(len(self._keys), 1))
        except InterruptedError:
            return []
        return [(self._keys[fd], ev) for fd, ev in ready if fd in self._keys]


def sock_path(run_dir: str, name: str) -> str:
    """A unix socket path that fits in sun_path (108 bytes) whatever the run dir's length."""
    path = os.path.join(run_dir, name)
    if len(path) < 100:
        return path
    fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY)   # kept open for the process's life
    return f"/proc/{os.getpid()}/fd/{fd}/{name}"


def connect(run_dir: str) -> _socket.socket:
    """A connection to a container's monitor (OSError if there is none). _socket's: the
    socket module's enums (with enum's import) cost ~3 ms of each stop, kill, exec..."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    # bounded: a connect to a monitor whose backlog is full (busy, or waiting for the
    # container's lock) would otherwise block for ever
    s.settimeout(CONNECT_TIMEOUT)
    try:
        s.connect(sock_path(run_dir, "ctl.sock"))
    except OSError:
        s.close()
        raise
    s.settimeout(None)
    return s


# ---------------------------------------------------------------------------------------
# spawning (runs in the command's process, with the container's lock held)

def spawn(paths, cid: str, generation: int, *, attach_sock: socket.socket | None = None,
          attach_opts: dict | None = None, console_size: tuple[int, int] | None = None) -> dict:
    """Start a monitor for cid's generation; return its report (Pid, ... or Error).

    The root's monitor host forks it (see monitor_host); without a host, this command
    forks it and starts a host for the next ones."""
    from hutch.engine import monitor_host
    r, w = os.pipe()
    fds = [w] + ([attach_sock.fileno()] if attach_sock else [])
    # --debug: the kernel steps of the start (runtime create, mounts, cgroup writes) go to
    # the user's stderr, not just to monitor.log
    if trace.enabled:
        fds.append(os.dup(2))
    job = {"cid": cid, "generation": generation, "console_size": console_size,
           "attach": (attach_opts or {}) if attach_sock else None, "debug": trace.enabled}
    if monitor_host.request(paths, job, fds) is None:
        _fork_monitor(paths, job, fds)
    os.close(w)
    if trace.enabled:
        os.close(fds[-1])
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    data = b"".join(chunks)
    if not data:
        return {"Error": "container monitor failed to start (see monitor.log)", "ExitCode": 125}
    return fastjson.loads(data)


def _fork_monitor(paths, job: dict, fds: list[int]) -> None:
    """No host answered: fork the monitor from here (through a child that exits, so it is
    nobody's child), and start a host for the next containers."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the intermediate child
        try:
            if os.fork() == 0:
                run_forked(paths, job, fds)
            from hutch.engine import monitor_host
            monitor_host.start_detached(paths)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def run_forked(paths, job: dict, fds: list[int]) -> None:
    """The monitor's process, just forked by spawn; `fds`: the report pipe's write end,
    then the attach socket and the --debug stderr when the job has them. Never returns."""
    code = 0
    try:
        os.setsid()
        _name_process()
        _detach_stdio(os.path.join(paths.run, "containers", job["cid"]), fds)
        _monitor(paths, job, fds).main()
    except BaseException as e:  # noqa: BLE001 - the monitor must always exit cleanly
        code = _died("monitor", e)
    os._exit(code)


def _name_process() -> None:
    """The monitors' name in ps, as the host's (which its monitors inherit)."""
    import hutch._sys.zygote
    from hutch.engine.monitor_host import PROCESS_COMM
    hutch._sys.zygote.set_process_name(PROCESS_COMM)


def _died(who: str, e: BaseException) -> int:
    try:
        os.write(2, f"{who}: {type(e).__name__}: {e}\n".encode())
    except OSError:
        pass
    return 1


def run_from_host(paths, conn_fd: int, set_child_subreaper) -> None:
    """A monitor just forked by the host for the request on `conn_fd`. Never returns.
    (set_child_subreaper: hutch._sys.zygote's, which the host imported; an import statement
    here would run importlib's code, each page it touches one more copy.)

    This process shares its memory with the host, and each page it writes becomes its own:
    so it runs only the idle loop and the exit. A starter child does the rest, as a
    monitor of its own would (read the request, answer, Monitor.main: the start, the
    report, and the warm spell in which a container that ends at once is seen out), then
    hands the running container over (its idle state and fds) and exits: its child, the
    container's init, is then reparented to us. We sleep until the loop has an event, and
    only then build it (see _take_over)."""
    code = 0
    try:
        os.setsid()
        # the container's init is reparented to us (the call rehearse_idle made)
        set_child_subreaper()
        ours, theirs = _socket.socketpair(_socket.AF_UNIX,
                                          _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the starter; never returns
            ours.close()
            _starter(paths, conn_fd, theirs)
        theirs.close()
        # the host's fds (listener, lock, pidfds...): _close_fds_except's calls, without
        # its list and sort
        keep = ours.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 20)
        taken = _take_over(ours, pid)
        if taken is not None:
            debug, state = taken
            if debug:
                trace.enable()   # to monitor.log, as a monitor of its own after its report
            resume(state, shares_host=True)
    except BaseException as e:  # noqa: BLE001 - the monitor must always exit cleanly
        code = _died("monitor", e)
    os._exit(code)


def _take_over(sock, starter: int | None) -> tuple[bool, list] | None:
    """The starter's hand-over: (--debug, the idle state), its fds renumbered as it names
    them (our stderr, monitor.log, among them); None: the container is done, or its start
    failed (the starter reported that). The starter is reaped (its children are ours).

    Its first message says when: b"w" (with its loop's epoll and the init's pidfd, which
    keeps that epoll watching the init): sleep on that epoll until one of the loop's fds
    has an event (the init's exit, output, a client), and only then take the loop over, so
    that an idle container's monitor has built nothing: each object built or touched is a
    page copied from the host. b"n": now (the starter then waits for our read: the state
    may not fit in the socket's buffer)."""
    try:
        when, wake, _flags, _addr = sock.recvmsg(1, WAKE_ANCILLARY)
        if when == b"w":
            if starter is not None:
                os.waitpid(starter, 0)
                starter = None
            _sleep(*_struct.unpack("ii", wake[0][2]))   # (fewer objects than memoryview's)
        import socket    # (after the sleep: an import statement touches importlib's objects)
        msg, got, _flags, _addr = socket.recv_fds(sock, 1 << 18, 64)
    finally:
        sock.close()
    if starter is not None:
        os.waitpid(starter, 0)
    if not msg:
        return None
    import marshal
    want, debug, state = marshal.loads(msg)
    _renumber(got, want)
    return debug, state


def _sleep(epoll_fd: int, pidfd: int) -> None:
    """Wait for an event on the starter's loop's epoll (see _take_over), then close it."""
    ep = select.epoll.fromfd(epoll_fd)
    ep.poll(-1, 1)
    ep.close()
    os.close(pidfd)


def _starter(paths, conn_fd: int, handover) -> None:
    code = 0
    try:
        import socket
        conn = _socket.socket(fileno=conn_fd)
        conn.settimeout(CONNECT_TIMEOUT)
        msg, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 8)
        job = _loads(msg.decode())
        conn.sendall(_dumps({"Pid": os.getppid()}) + b"\n")
        conn.close()
        _detach_stdio(os.path.join(paths.run, "containers", job["cid"]),
                      fds + [handover.fileno()], signals=False)  # (the host ignores them)
        _monitor(paths, job, fds, handover=handover).main()
    except BaseException as e:  # noqa: BLE001 - the starter must always exit cleanly
        code = _died("monitor starter", e)
    os._exit(code)


def _monitor(paths, job: dict, fds: list[int], handover=None) -> Monitor:
    """The Monitor that starts `job`'s container (fds: as run_forked's)."""
    attach_sock = _socket.socket(fileno=fds[1]) if job["attach"] is not None else None
    if job["debug"]:
        trace.enable(os.fdopen(fds[-1], "w", buffering=1))
    size = job["console_size"]
    return Monitor(paths, job["cid"], job["generation"], report_fd=fds[0],
                   attach_sock=attach_sock, attach_opts=job["attach"],
                   console_size=tuple(size) if size else None, handover=handover)


def _renumber(got: list[int], want: list[int]) -> None:
    """Give the received fds the numbers the state names (the starter's)."""
    import fcntl
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 1024) for fd in got]
    for fd in got:
        os.close(fd)
    for fd, number in zip(high, want):
        os.dup2(fd, number)
        os.close(fd)


def _detach_stdio(run_dir: str, keep: list[int], signals: bool = True) -> None:
    """Close everything inherited from the command (or the host) except `keep`; stdio to
    /dev/null and stderr to monitor.log, so the monitor never writes to the user's
    terminal."""
    log = os.path.join(run_dir, "monitor.log")
    try:
        logfd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except FileNotFoundError:
        os.makedirs(run_dir, exist_ok=True)
        logfd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(logfd, 2)
    for fd in (null, logfd):
        os.close(fd)
    _close_fds_except(keep)
    if signals:
        ignore_job_signals()


def _close_fds_except(keep) -> None:
    """Close every fd above stdio but `keep` (close_range calls: few objects touched)."""
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)


def ignore_job_signals() -> None:
    """A terminal's or a session's signals are not for a monitor (or the host)."""
    import signal
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTOU,
                signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)


# ---------------------------------------------------------------------------------------

class Client:
    def __init__(self, sock, req: dict):
        self.sock = sock
        self.op = req.get("op", "wait")
        self.stdin = bool(req.get("stdin"))
        self.stdout = bool(req.get("stdout"))
        self.stderr = bool(req.get("stderr"))
        self.until = req.get("until", "exited")

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False


class _Dirs:
    """The two directories the exit path's Store reads (as hutch.paths.Paths names them),
    without importing hutch.paths into the idle process."""

    def __init__(self, root: str, run: str):
        self.containers = os.path.join(root, "containers")
        self.run = run


class Monitor:
    @property
    def paths(self):
        if self._paths is None:
            from hutch.paths import Paths
            self._paths = Paths(root=self._root, run=self._run)
        return self._paths

    @property
    def store(self):
        if self._store is None:      # the idle loop loads the store's code at exit only
            from hutch.engine.store import Store
            self._store = Store(self._paths or _Dirs(self._root, self._run))
        return self._store

    @property
    def record(self):
        if self._record is None:
            self._record = self.store.load(self.cid).record
        return self._record

    def __init__(self, paths, cid, generation, *, report_fd=None, attach_sock=None,
                 attach_opts=None, console_size=None, handover=None):
        self._paths = paths
        self.shares_host = False    # see resume()
        self.handover = handover    # a starter's socket to its monitor (see run_from_host)
        self._root, self._run = paths.root, paths.run
        self._store = None
        self.cid = cid
        self.generation = generation
        self.report_fd = report_fd
        self.console_size = console_size
        self.run_dir = self.store.run_dir(cid)
        self.sel = _Selector()
        self.clients: list[Client] = []
        self.pending_attach = (attach_sock, attach_opts) if attach_sock else None
        self.stdin_buf = b""      # client input the container has not taken yet
        self.paused: list[Client] = []
        self.woken = False
        self._record = None
        config = self.record["Config"]
        self.tty = bool(config.get("Tty"))
        self.open_stdin = bool(config.get("OpenStdin"))
        self.stdin_once = bool(config.get("StdinOnce"))
        self.stdin_fd = None      # our end of the container's stdin (pipe or pty master)
        self.out_fds: dict[int, str] = {}   # fd -> stream name
        self.master = None
        self.pid = 0
        self.pidfd = None
        self.log = None
        self.started_mono = 0.0
        self.last_exit = None

    # --- life --------------------------------------------------------------------------
    def main(self) -> None:
        from hutch import _sys
        # the init's parent (a starter's exit hands its children on to the monitor)
        _sys.set_child_subreaper()
        os.makedirs(self.run_dir, exist_ok=True)
        import socket
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        path = os.path.join(self.run_dir, "ctl.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.listener.bind(sock_path(self.run_dir, "ctl.sock"))
        self.listener.listen(16)
        self.sel.register(self.listener, EVENT_READ, "listen")
        if self.pending_attach:
            sock, opts = self.pending_attach
            self._add_client(sock, dict(opts, op="attach"))
        self.log = self._open_log()
        try:
            report = self.start_container()
        except StartFailure as e:
            self._report({"Error": str(e), "ExitCode": e.exit_code})
            self._close_clients(FRAME_EXIT, {"ExitCode": e.exit_code, "Error": str(e)})
            return
        try:
            self._report(report)
        except OSError:
            self._record_start(report)
        # A container that ends at once (`run --rm busybox true`) is seen out by this warm
        # process: the lean idle one would re-import everything for the clean-up (a
        # starter's parent would run it for the first time, in pages it shares).
        while True:
            code = self.wait_exit(until=time.monotonic() + WARM_GRACE)
            if code is None:
                self.become_idle()
                return
            if not self.after_exit(code):
                return

    def _record_start(self, report: dict) -> None:
        """The command that spawned us died before reading our report (its lock is gone
        with it): record the start ourselves, so the container is shown truthfully."""
        from hutch.engine import states
        with self.store.locked(self.cid) as c:
            if c.state["Generation"] >= self.generation:
                return
            c.state.update(Status=states.RUNNING, Running=True, Paused=False, Restarting=False,
                           OOMKilled=False, Dead=False, ExitCode=0, Error="",
                           ManuallyStopped=False, HasBeenStarted=True, **report)
            c.save()

    def run_loop(self) -> None:
        """Wait for the exit, record it, and restart (then idle again) or finish."""
        while True:
            code = self.wait_exit() if self.pidfd is not None else self._reap()
            if not self.after_exit(code):
                return
            if not self.shares_host:
                self.become_idle()     # a fresh lean interpreter again
                return

    # --- idling lean -------------------------------------------------------------------
    def become_idle(self) -> None:
        """Re-exec as a fresh interpreter that imports only this loop's modules: the
        runtime, images, network and cgroup code that starting needed stays behind, and an
        idle container costs a few MiB instead of a dozen. Every fd the loop serves, the
        child, the subreaper setting and ignored signals survive execve. A starter hands
        over to its parent instead."""
        if self.handover is not None:
            self._hand_over()
            return
        import sys
        state, fds = self._idle_state()
        for fd in fds:
            os.set_inheritable(fd, True)
        boot = ("import sys; sys.path[:0] = sys.argv[2:]; "
                "from hutch.engine.monitor import resume, _loads; resume(_loads(sys.argv[1]))")
        try:
            os.execv(sys.executable, [sys.executable, "-S", "-c", boot, _dumps(state).decode(),
                                      *(p for p in sys.path if p)])
        except OSError as e:   # keep monitoring in this process rather than orphan the init
            trace.step("monitor", f"exec of the idle loop failed: {e}")
            self.run_loop()

    def _hand_over(self) -> None:
        """The starter's end: the idle state and its fds to the monitor (our parent)."""
        import marshal   # (the monitor's C parse of it writes fewer pages than json's)
        import socket
        state, fds = self._idle_state()
        fds.append(2)    # monitor.log, the monitor's stderr from now on
        data = marshal.dumps((fds, trace.enabled, state))
        # the monitor may sleep on our loop's epoll before it takes the loop (see
        # _take_over): not with stdin pending (retried on a tick), nor a state that the
        # socket might not hold until the monitor, which reaps us first, reads it
        if self.stdin_buf or self.pidfd is None or len(data) > SLEEP_MAX_STATE:
            self.handover.send(b"n")
        else:
            socket.send_fds(self.handover, [b"w"], [self.sel._ep.fileno(), self.pidfd])
        socket.send_fds(self.handover, [data], fds)
        self.handover.close()

    def _idle_state(self) -> tuple[list, list[int]]:
        """What resume() rebuilds the loop from (in _rebuild's order: a list, as its reader
        looking up each key would write to every page holding one of those names), and the
        fds it names."""
        fds = [self.listener.fileno()] + list(self.out_fds) + [c.sock.fileno() for c in self.clients]
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            fds.append(self.stdin_fd)
        state = [
            self._root, self._run, self.cid, self.run_dir, self.generation,
            self.tty, self.open_stdin, self.stdin_once,
            [self.log.path, self.log.max_size, self.log.max_file],
            [[k, v.decode("latin-1")] for k, v in self.log.pending.items()],
            self.pid, self.started_mono, self.listener.fileno(), self.stdin_fd, self.master,
            [[fd, name] for fd, name in self.out_fds.items()],
            [{"fd": c.sock.fileno(), "op": c.op, "stdin": c.stdin, "stdout": c.stdout,
              "stderr": c.stderr, "until": c.until,
              "reading": c.sock in self._registered_socks(), "paused": c in self.paused}
             for c in self.clients],
            self.stdin_buf.decode("latin-1"),
        ]
        return state, fds

    def _registered_socks(self) -> set:
        return {k.fileobj for k in self.sel.get_map().values() if isinstance(k.data, Client)}

    def _report(self, data: dict) -> None:
        if self.report_fd is None:
            return
        os.write(self.report_fd, _dumps(data))
        os.close(self.report_fd)
        self.report_fd = None
        if trace.enabled and trace._out is not None:   # back to monitor.log from here on
            out, trace._out = trace._out, None
            out.close()

    def _open_log(self):
        from hutch.engine.logs import LogWriter, parse_size
        cfg = (self.record["HostConfig"].get("LogConfig") or {}).get("Config") or {}
        max_size = parse_size(cfg["max-size"]) if cfg.get("max-size") else -1
        max_file = int(cfg.get("max-file", "1"))
        c_dir = self.store.dir(self.cid)
        return LogWriter(os.path.join(c_dir, f"{self.cid}-json.log"), max_size, max_file)

    # --- starting ----------------------------------------------------------------------
    def start_container(self) -> dict:
        """Mount, create, connect, start; the report for the command (or StartFailure)."""
        stdio, child_ends, console = self._make_stdio()
        keep = child_ends + ([console[0].fileno()] if console else [])
        result, fds = self._in_helper(lambda send: send(*self._create_and_start(stdio, console)),
                                      keep)
        for fd in child_ends:
            os.close(fd)
        if console:
            console[0].close()
        if result is None:    # the helper died: whatever it made must go
            self._in_helper(lambda send: self._clean_up(send, None), [])
            result = {"Error": "container start failed (see monitor.log)", "ExitCode": 125}
        if "Error" in result:
            self._close_stdio()
            raise StartFailure(result["Error"], result["ExitCode"])
        if fds:
            self._adopt_console(fds[0])
        self.pid = result["Pid"]
        trace.step("monitor", f"container {self.cid[:12]} started", pid=self.pid)
        self.pidfd = os.pidfd_open(self.pid)
        self.sel.register(self.pidfd, EVENT_READ, "exit")
        self.started_mono = time.monotonic()
        from hutch.engine.store import now_iso, proc_start_time
        monitor = os.getpid() if self.handover is None else os.getppid()   # (a starter's)
        return {"Pid": self.pid, "PidStart": proc_start_time(self.pid),
                "MonitorPid": monitor, "MonitorStart": proc_start_time(monitor),
                "StartedAt": now_iso(), "Generation": self.generation}

    def _create_and_start(self, stdio, console) -> tuple[dict, list[int]]:
        """In a helper: the start's kernel work; ({"Pid"}, [pty master]) or ({"Error"}, [])."""
        from hutch.engine import lifecycle
        from hutch.runtime import container as rt
        from hutch.runtime.errors import RuntimeFailure
        state_root = self.paths.runtime_state
        master = None
        try:
            bundle = lifecycle.prepare_bundle(self.paths, self.cid, self.record)
            try:
                pid = rt.create(state_root, self.cid, bundle, stdio=stdio,
                                console_socket=console[1] if console else None)
            except RuntimeFailure as e:
                from hutch.engine.errors import exec_failure_code
                # Docker 20.10's words (its HostConfig.Runtime is "runc", and so is ours)
                msg = (f"failed to create shim task: OCI runtime create failed: runc create "
                       f"failed: {e}: unknown")
                raise StartFailure(msg, exec_failure_code(str(e))) from None
            if console:
                master = self._receive_console(console[0])
            rt.start(state_root, self.cid)
        except Exception as e:  # noqa: BLE001 - any failure is reported as one line
            lifecycle.cleanup_after_exit(self.paths, self.cid, self.record)
            code = e.exit_code if isinstance(e, StartFailure) else 125
            return {"Error": str(e) or type(e).__name__, "ExitCode": code}, []
        return {"Pid": pid}, [] if master is None else [master]

    def _clean_up(self, send, later: list | None) -> None:
        """The OOM verdict, then the exit's clean-up (cleanup_after_exit's `later`: see
        after_exit)."""
        from hutch.engine import lifecycle
        oom = lifecycle.oom_killed(self.cid)
        lifecycle.cleanup_after_exit(self.paths, self.cid, self.record, later)
        send({"OOMKilled": oom})
        if later and self.shares_host:   # a forked helper: the monitor answers meanwhile
            lifecycle.finish_later(later)

    def _in_helper(self, work, keep: list[int], wait: bool = True) -> tuple[dict | None, list[int]]:
        if not self.shares_host:     # a process of its own: it may as well do the work
            sent = []
            work(lambda result, fds=(): sent.append((result, list(fds))))
            return sent[0] if sent else (None, [])
        return self._fork_helper(work, keep, wait)

    def _fork_helper(self, work, keep: list[int], wait: bool) -> tuple[dict | None, list[int]]:
        """Run work(send) in a forked child that exits after it, so the runtime, network,
        cgroup and mount code (and its garbage) never touches this long-lived process's
        memory (shared with the monitor host), while it stays the subreaper the container's
        init is reparented to. The child keeps only `keep` of our fds (and stdio) and
        calls send(result, fds) once; returns what it sent (None: it died first). wait:
        reap it now (it exits once it has sent)."""
        import socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper
            code = 0
            try:
                ours.close()
                out = trace._out.fileno() if trace._out is not None else -1
                _close_fds_except([theirs.fileno(), out, *keep])

                def send(result: dict, fds=()) -> None:
                    socket.send_fds(theirs, [_dumps(result)], list(fds))
                    theirs.close()
                work(send)
            except BaseException as e:  # noqa: BLE001 - a helper always exits
                code = _died("monitor helper", e)
            os._exit(code)
        theirs.close()
        with ours:
            msg, fds, _flags, _addr = socket.recv_fds(ours, 1 << 16, 4)
        if wait:   # else reaped by _reap's waitpid(-1), or by whoever inherits it from us
            os.waitpid(pid, 0)
        return (_loads(msg.decode()) if msg else None), fds

    def _make_stdio(self):
        """Pipes for the init's stdio (ours: the read ends), or a console socket for -t."""
        import socket
        if self.tty:
            lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            path = os.path.join(self.run_dir, "console.sock")
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            lsock.bind(sock_path(self.run_dir, "console.sock"))
            lsock.listen(1)
            # the runtime connects from its own process: give it a path that works there
            public = path if len(path) < 100 else \
                f"/proc/{os.getpid()}/fd/{os.open(self.run_dir, os.O_PATH)}/console.sock"
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            return (null, null, null), [null], (lsock, public)
        if self.open_stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(in_w, False)
            self.stdin_fd = in_w
        else:
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        import fcntl
        for fd, name in ((out_r, "stdout"), (err_r, "stderr")):
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:      # a lower pipe-max-size: the default capacity still works
                pass
            os.set_blocking(fd, False)
            self.out_fds[fd] = name
            self.sel.register(fd, EVENT_READ, "out")
        return (in_r, out_w, err_w), [in_r, out_w, err_w], None

    def _receive_console(self, lsock) -> int:
        """In the start's helper: the pty master the runtime sends, sized."""
        import socket
        conn, _ = lsock.accept()
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        lsock.close()
        try:
            os.unlink(os.path.join(self.run_dir, "console.sock"))
        except FileNotFoundError:
            pass
        if not fds:
            raise StartFailure("runtime sent no console fd", 125)
        if self.console_size:
            from hutch import _sys
            _sys.set_winsize(fds[0], *self.console_size)
        return fds[0]

    def _adopt_console(self, master: int) -> None:
        self.master = master
        os.set_inheritable(self.master, False)
        self.stdin_fd = self.master
        os.set_blocking(self.master, False)
        self.out_fds[self.master] = "stdout"
        self.sel.register(self.master, EVENT_READ, "out")

    def _close_stdio(self) -> None:
        self.stdin_buf = b""
        self.paused = []
        for fd in list(self.out_fds):
            self._drop_out(fd)
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = None
        self.master = None

    def _drop_out(self, fd: int) -> None:
        self.out_fds.pop(fd, None)
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)

    # --- the loop ----------------------------------------------------------------------
    def wait_exit(self, until: float | None = None) -> int | None:
        """Serve output and clients until the init exits; returns Docker's exit code
        (None when the monotonic deadline `until` comes first)."""
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return None
            if self.stdin_buf:   # the container does not take its stdin: retry on a tick
                left = 0.05 if left is None else min(left, 0.05)
            for key, _ in self.sel.select(left):
                what = key.data
                if what == "out":
                    self._read_output(key.fd)
                elif what == "listen":
                    self._accept()
                elif what == "exit":
                    return self._reap()
                elif isinstance(what, Client):
                    self._client_input(what)
            if self.stdin_buf:
                self._flush_stdin()

    def _flush_stdin(self) -> None:
        """Write what clients sent to the container's stdin, never blocking the loop; the
        clients are not read while some is pending (backpressure, as a pipe would)."""
        while self.stdin_buf and self.stdin_fd is not None:
            try:
                n = os.write(self.stdin_fd, self.stdin_buf[:65536])
            except BlockingIOError:
                return
            except OSError:      # the container closed its stdin
                break
            self.stdin_buf = self.stdin_buf[n:]
        self.stdin_buf = b""
        for c in self.paused:
            if c in self.clients:
                self.sel.register(c.sock, EVENT_READ, c)
        self.paused = []

    def _read_output(self, fd: int) -> None:
        stream = self.out_fds.get(fd)
        if stream is None:
            return
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:   # EIO: the pty's last slave closed
            data = b""
        if not data:
            self._drop_out(fd)
            if fd == self.master:
                self.master = self.stdin_fd = None
            return
        self.log.write(stream, data)
        if self.clients:
            self._send_output(stream, data)

    def _send_output(self, stream: str, data: bytes) -> None:
        """The output to the attach clients that asked for its stream."""
        kind = FRAME_STDERR if stream == "stderr" else FRAME_STDOUT
        msg = None
        for c in list(self.clients):
            if c.op == "attach" and (c.stdout if kind == FRAME_STDOUT else c.stderr):
                msg = msg or frame(kind, data)
                if not c.send(msg):
                    self._drop_client(c)

    def _accept(self) -> None:
        try:
            # _accept: the C socket's call (the idle loop has no `socket` module); CLOEXEC
            fd, _ = self.listener._accept()
        except OSError:
            return
        self._serve_new(_socket.socket(fileno=fd))

    def _serve_new(self, conn) -> None:
        conn.settimeout(2.0)
        line = b""
        try:
            while not line.endswith(b"\n"):
                b = conn.recv(1)
                if not b:
                    break
                line += b
            req = _loads(line.decode() or "{}")
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except (OSError, ValueError, StopIteration):
            conn.close()
            return
        if req.get("op") == "wake":     # stop/rm of a restarting container: decide now
            self.woken = True
            conn.close()
            return
        if req.get("op") == "resize":
            if self.master is not None:
                from hutch import _sys
                try:
                    _sys.set_winsize(self.master, int(req.get("h", 0)), int(req.get("w", 0)))
                except OSError:
                    pass
            conn.close()
            return
        if req.get("op") == "wait" and self.last_exit is not None and req.get("until") != "done":
            conn.sendall(frame(FRAME_EXIT, _dumps(self.last_exit)))
            conn.close()
            return
        self._add_client(conn, req)

    def _accept_pending(self) -> None:
        """Serve connections already queued (a `stop` may be waiting for this exit)."""
        self.listener.setblocking(False)
        try:
            while True:
                try:
                    fd, _ = self.listener._accept()
                except (BlockingIOError, OSError):
                    return
                conn = _socket.socket(fileno=fd)
                conn.setblocking(True)
                self.listener.setblocking(True)
                self._serve_new(conn)
                self.listener.setblocking(False)
        finally:
            self.listener.setblocking(True)

    def _add_client(self, sock, req: dict) -> None:
        sock.settimeout(5.0)   # a client that stops reading is dropped, never blocks us long
        c = Client(sock, req)
        self.clients.append(c)
        self.sel.register(sock, EVENT_READ, c)

    def _drop_client(self, c: Client) -> None:
        if c in self.clients:
            self.clients.remove(c)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def _client_input(self, c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except OSError:
            data = b""
        if data:
            if c.op == "attach" and c.stdin and self.stdin_fd is not None:
                self.stdin_buf += data
                self._flush_stdin()
                if self.stdin_buf:
                    self.sel.unregister(c.sock)
                    self.paused.append(c)
            return
        # the client closed its side: its stdin ended (it may still read output)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        if c.op == "attach" and c.stdin and not self.tty and self.stdin_once \
                and self.stdin_fd is not None:
            os.close(self.stdin_fd)
            self.stdin_fd = None
        if c.op != "attach" or not (c.stdout or c.stderr):
            self.clients.remove(c)
            c.sock.close()

    def _close_clients(self, kind: int, payload: dict, until: str | None = None) -> None:
        data = frame(kind, _dumps(payload))
        for c in list(self.clients):
            if until is None or c.until == until:
                c.send(data)
                self._drop_client(c)

    # --- exit --------------------------------------------------------------------------
    def _reap(self) -> int:
        status = None
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == self.pid:
                status = st
        if status is None:      # not our child (should not happen): still, it is gone
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                status = 255 << 8
        if self.pidfd is not None:
            self.sel.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code

    def _drain_output(self) -> None:
        for fd in list(self.out_fds):
            while fd in self.out_fds:
                before = len(self.out_fds)
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self._drop_out(fd)
                    break
                os.set_blocking(fd, False)
                self.log.write(self.out_fds[fd], data)
                self._send_output(self.out_fds[fd], data)
                if len(self.out_fds) != before:
                    break

    def after_exit(self, code: int) -> bool:
        """Record the exit, clean up, apply --rm / restart. True: the container restarted."""
        from hutch.engine.store import atomic_write, now_iso
        later: list = []     # the slow steps the waiters need not wait for (veths)
        result, _ = self._in_helper(lambda send: self._clean_up(send, later), [], wait=False)
        oom = bool(result and result["OOMKilled"])
        # after delete no process holds the pipes: everything written is readable now
        self._drain_output()
        self.log.flush_partial()
        self._close_stdio()
        ran_for = time.monotonic() - self.started_mono
        ex = {"ExitCode": code, "FinishedAt": now_iso(), "OOMKilled": oom, "Error": "",
              "Generation": self.generation}
        atomic_write(os.path.join(self.store.dir(self.cid), "exit.json"), ex, durable=False)
        trace.step("monitor", f"container {self.cid[:12]} exited", code=code, oom=oom)
        self.last_exit = {"ExitCode": code}
        self._accept_pending()
        self._close_clients(FRAME_EXIT, self.last_exit, until="exited")
        delay = self._decide(code, ran_for)
        if delay is None:
            self._close_clients(FRAME_EXIT, self.last_exit)
        if later:            # (left here when the clean-up ran in this process)
            from hutch.engine import lifecycle
            lifecycle.finish_later(later)
        return delay is not None and self._restart_after(delay)

    def _decide(self, code: int, ran_for: float) -> float | None:
        """Under the lock: remove (--rm), schedule a restart (its delay), or nothing (None)."""
        from hutch.engine import states
        try:
            with self.store.locked(self.cid) as c:
                st = c.state
                if st["Generation"] != self.generation:
                    return None
                policy = c.record["HostConfig"].get("RestartPolicy") or {}
                name = policy.get("Name") or "no"
                restart = not st.get("ManuallyStopped") and (
                    name in ("always", "unless-stopped")
                    or (name == "on-failure" and code != 0
                        and (not policy.get("MaximumRetryCount")
                             or st["RestartCount"] < policy["MaximumRetryCount"])))
                if restart:
                    backoff = st.get("Backoff", 0.0)
                    backoff = BACKOFF_START if (not backoff or ran_for >= BACKOFF_RESET_AFTER) \
                        else min(backoff * 2, BACKOFF_MAX)
                    # Docker counts a restart when it decides it (RestartCount includes
                    # the pending one while the status is "restarting")
                    st.update(Status=states.RESTARTING, Restarting=True, Running=True,
                              Backoff=backoff, RestartCount=st["RestartCount"] + 1)
                    c.save()
                    return backoff
                if c.record["HostConfig"].get("AutoRemove") and \
                        st["Status"] not in (states.RUNNING, states.PAUSED):
                    from hutch.engine import lifecycle
                    lifecycle.remove_files(self.paths, c)
                return None
        except Exception as e:  # noqa: BLE001 - e.g. removed meanwhile (rm -f)
            trace.step("monitor", f"after exit: {e}")
            return None

    def _restart_after(self, delay: float) -> bool:
        """Wait out the back-off (serving clients), then start again if still wanted."""
        from hutch.engine import states
        from hutch.engine.store import now_iso
        deadline = time.monotonic() + delay
        self.woken = False
        while (left := deadline - time.monotonic()) > 0 and not self.woken:
            for key, _ in self.sel.select(left):
                if key.data == "listen":
                    self._accept()
                elif isinstance(key.data, Client):
                    self._client_input(key.data)
        try:
            with self.store.locked(self.cid) as c:
                st = c.state
                if st["Status"] != states.RESTARTING or st["Generation"] != self.generation:
                    self._close_clients(FRAME_EXIT, self.last_exit)
                    return False
                self.generation += 1
                st["Generation"] = self.generation
                try:
                    report = self.start_container()
                except StartFailure as e:
                    st.update(Status=states.EXITED, Running=False, Restarting=False, Pid=0,
                              ExitCode=e.exit_code, Error=str(e), FinishedAt=now_iso())
                    c.save()
                    self._close_clients(FRAME_EXIT, self.last_exit)
                    return False
                st.update(Status=states.RUNNING, Running=True, Restarting=False, Paused=False,
                          Pid=report["Pid"], PidStart=report["PidStart"],
                          StartedAt=report["StartedAt"], ExitCode=0, OOMKilled=False, Error="")
                c.save()
                self.last_exit = None
                return True
        except Exception as e:  # noqa: BLE001 - removed meanwhile
            trace.step("monitor", f"restart: {e}")
            self._close_clients(FRAME_EXIT, self.last_exit or {"ExitCode": 0})
            return False


def resume(state: list, shares_host: bool = False) -> None:
    """The idle monitor after become_idle()'s exec, or after a starter's hand-over
    (shares_host): rebuild the loop from `state`."""
    if not shares_host:      # (a host's monitor has its host's name)
        _name_process()      # (execve named it "python")
    m = _rebuild(state, shares_host)
    del state
    if m.pidfd is not None and not shares_host:   # (a host's monitor has little garbage,
        import gc                                    # and a collection writes pages)
        gc.collect()     # the start-up's garbage, before the long idle wait
    m.run_loop()


def rehearse_idle(times: int = 10) -> None:
    """For the monitor host, before it freezes its objects: build (and drop) the idle loop
    on throw-away fds `times` times, as each monitor it forks will once, so that what the
    first builds write (the classes' shared attribute tables, interned names, bytecode
    specialised after a few calls) is written here, in the memory its monitors share."""
    import marshal
    import socket
    import hutch._sys.zygote
    for _ in range(times):
        hutch._sys.zygote.set_child_subreaper(False)   # (not one itself: the same call path)
        ours, theirs = _socket.socketpair(_socket.AF_UNIX,
                                          _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        lsock, client = _socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        state = ["/", "/", "", "/", 0, False, False, False, ["/dev/null", -1, 1],
                 [["stdout", ""], ["stderr", ""]], os.getpid(), 0.0, lsock.fileno(), None, None,
                 [[out_r, "stdout"], [err_r, "stderr"]],
                 [{"fd": client.fileno(), "op": "attach", "stdin": False, "stdout": True,
                   "stderr": True, "until": "exited", "reading": True, "paused": False}], ""]
        spare = os.dup(lsock.fileno())      # the hand-over renumbers onto it
        # a sleep that ends at once: its epoll has an event already
        ep, ready_r, ready_w = select.epoll(), *os.pipe()
        ep.register(ready_r, EVENT_READ)
        os.write(ready_w, b".")
        pidfd = os.pidfd_open(os.getpid())
        socket.send_fds(theirs, [b"w"], [ep.fileno(), pidfd])
        socket.send_fds(theirs, [marshal.dumps(([spare], False, state))], [lsock.fileno()])
        theirs.close()
        _debug, state = _take_over(ours, None)
        ep.close()
        for fd in (spare, ready_r, ready_w, pidfd):
            os.close(fd)
        m = _rebuild(state, True)
        m.wait_exit(until=time.monotonic() + 0.001)
        for fd in (out_w, err_w, m.pidfd, m.log.fd):
            os.close(fd)
        for fd in list(m.out_fds):
            m._drop_out(fd)
        for c in list(m.clients):
            m._drop_client(c)
        m.sel.unregister(m.listener)
        m.listener.close()
        m.sel._ep.close()
        lsock.detach()
        client.detach()


def _rebuild(state: list, shares_host: bool) -> Monitor:
    from hutch.engine.logs import LogWriter
    (root, run, cid, run_dir, generation, tty, open_stdin, stdin_once, log, pending, pid,
     started, listener, stdin_fd, master, out, clients, stdin_buf) = state
    m = Monitor.__new__(Monitor)
    m._paths = m._store = m._record = None
    m._root, m._run = root, run
    m.shares_host = shares_host
    m.handover = None
    m.cid = cid
    m.generation = generation
    m.report_fd = None
    m.console_size = None
    m.run_dir = run_dir
    m.sel = _Selector()
    m.clients = []
    m.pending_attach = None
    m.tty, m.open_stdin, m.stdin_once = tty, open_stdin, stdin_once
    m.stdin_fd = stdin_fd
    m.master = master
    m.out_fds = {}
    m.pid = pid
    m.started_mono = started
    m.last_exit = None
    m.listener = _socket.socket(fileno=listener)
    m.sel.register(m.listener, EVENT_READ, "listen")
    for fd, name in out:
        m.out_fds[fd] = name
        m.sel.register(fd, EVENT_READ, "out")
    m.woken = False
    m.stdin_buf = stdin_buf.encode("latin-1")
    m.paused = []
    for cs in clients:
        client = Client(_socket.socket(fileno=cs["fd"]), cs)
        client.sock.settimeout(5.0)
        m.clients.append(client)
        if cs["reading"]:
            m.sel.register(client.sock, EVENT_READ, client)
        elif cs["paused"]:
            m.paused.append(client)
    all_fds = [m.listener.fileno(), *m.out_fds, *(cl.sock.fileno() for cl in m.clients)]
    for fd in all_fds + ([m.stdin_fd] if m.stdin_fd is not None else []):
        os.set_inheritable(fd, False)
    m.log = LogWriter(*log)
    m.log.pending = {k: v.encode("latin-1") for k, v in pending}
    try:
        m.pidfd = os.pidfd_open(m.pid)
    except ProcessLookupError:   # exited (and is a zombie we reap) between exec and here
        m.pidfd = None
    if m.pidfd is not None:
        m.sel.register(m.pidfd, EVENT_READ, "exit")
    return m


class StartFailure(Exception):
    def __init__(self, msg: str, exit_code: int):
        super().__init__(msg)
        self.exit_code = exit_code
