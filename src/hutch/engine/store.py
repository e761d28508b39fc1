"""The container store: one directory per container under paths.containers.

Layout of containers/<id>/:
  config.json   Docker's container record (Config, HostConfig, Path, Args, Image, ...),
                   written once at create (only rename and update touch it again)
  state.json       State + Name + RestartCount + monitor identity; replaced atomically
  exit.json        the monitor's exit record for one start generation (lock-free writer)
  lock             flock target: every operation on the container holds it
  <id>-json.log    the json-file log (and .1 .. .N after rotation)
Names live in containers/.names/<name> as symlinks to the id: os.symlink fails if the name
exists, so two racing creates of one name can never both win.

Lock order (every hutch process, so no two can wait on each other in a cycle):
  1. a container's lock (containers/<id>/lock) — at most one at a time, never two
  2. inside it, briefly: the networks lock (NetworkManager), then the host-wide bridge
     lock; the volumes lock (volumestore); the image store's lock
  Never wait for another process while holding a container's lock: not for an exit, not
  on a monitor's socket (stop, kill and rm -f signal under the lock, release it, wait on
  the monitor or the init's pidfd, then lock again and check the start generation). The
  one exception is `start`, which waits for the monitor it spawned to report: that monitor
  takes only locks of level 2. The monitor writes exit.json without any lock and then
  takes the container's lock for --rm / restart, so an exit is never held up by a command.
  Socket connects to a monitor are bounded (monitor.CONNECT_TIMEOUT): a full backlog never
  blocks a command for ever.
"""
from __future__ import annotations

import os
import time

from hutch import fastjson
from hutch.engine import errors, states
from hutch.paths import FileLock, remove_tree

ZERO_TIME = "0001-01-01T00:00:00Z"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset("0123456789abcdef")


# plain checks, not `re`: the idle monitor imports this module and keeps its memory small
def valid_name(name: str) -> bool:
    """Docker's ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$"""
    name = name[1:] if name.startswith("/") else name
    return len(name) >= 2 and name[0] in _ALNUM and all(c in _ALNUM or c in "_.-" for c in name)


def is_hex(s: str) -> bool:
    return bool(s) and all(c in _HEX for c in s)


def now_iso(ns: int | None = None) -> str:
    """Go's RFC3339Nano in UTC: fraction with trailing zeros removed."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else f"{base}Z"


def parse_iso(s: str) -> float:
    """Seconds since the epoch from an RFC3339 time (0 for Go's zero time)."""
    if not s or s.startswith("0001-"):
        return 0.0
    import calendar
    main, _, frac = s.rstrip("Z").partition(".")
    sec = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return sec + (float("0." + frac) if frac else 0.0)


def atomic_write(path: str, data: dict, durable: bool = True) -> None:
    """write, fsync, rename: a reader sees the old file or the new one, never half.

    durable=False skips the fsync (~1.5 ms here) for what a power loss makes moot anyway:
    the running state, the exit record and network settings of a start (after a reboot no
    container runs, and the next command repairs the state from what is left)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(fastjson.dumps(data))
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.rename(tmp, path)


STATE_DIR_MODE = 0o710   # Docker's /var/lib/docker: no other user reads configs or state


def private_dir(path: str) -> None:
    """Make (if needed) a state directory other users cannot enter (root's, 0710)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        os.makedirs(path, mode=STATE_DIR_MODE, exist_ok=True)
        st = os.stat(path)
    if st.st_mode & 0o777 != STATE_DIR_MODE:
        os.chmod(path, STATE_DIR_MODE)


def read_json(path: str):
    try:
        with open(path) as f:
            return fastjson.load(f)
    except FileNotFoundError:
        return None


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), None if the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] == b"Z":  # a zombie has finished; only its parent's reaping is left
        return None
    return int(fields[19])


def alive(pid: int, start: int | None) -> bool:
    """True if pid still names the process that had `start` as its start time."""
    return bool(pid) and start is not None and proc_start_time(pid) == start


def new_state() -> dict:
    return {
        "Status": states.CREATED, "Running": False, "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME,
        # hutch's own fields (not shown by inspect)
        "Name": "", "RestartCount": 0, "Generation": 0, "PidStart": None,
        "MonitorPid": 0, "MonitorStart": None, "ManuallyStopped": False, "HasBeenStarted": False,
    }


class Container:
    """One container as loaded from disk: `record` (config.json) and `state`."""

    def __init__(self, store: "Store", cid: str, record: dict, state: dict):
        self.store = store
        self.id = cid
        self.record = record
        self.state = state

    @property
    def name(self) -> str:
        return self.state["Name"]

    @property
    def status(self) -> str:
        return self.state["Status"]

    @property
    def dir(self) -> str:
        return self.store.dir(self.id)

    def path(self, fname: str) -> str:
        return os.path.join(self.dir, fname)

    @property
    def log_path(self) -> str:
        return self.path(f"{self.id}-json.log")

    def save(self, durable: bool = True) -> None:
        atomic_write(self.path("state.json"), self.state, durable)

    def save_record(self) -> None:
        atomic_write(self.path("config.json"), self.record)

    def refresh(self) -> None:
        """Fold in the monitor's exit record; repair the state if the monitor died."""
        st = self.state
        if st["Status"] not in (states.RUNNING, states.PAUSED, states.RESTARTING):
            return
        ex = read_json(self.path("exit.json"))
        # a restarting container has already folded in its generation's exit record
        if ex and ex.get("Generation") == st["Generation"] and st["Status"] != states.RESTARTING:
            apply_exit(st, ex)
            return
        if alive(st["MonitorPid"], st["MonitorStart"]):
            return
        # The monitor is gone without an exit record (killed): show the truth.
        if st["Status"] == states.RESTARTING or not alive(st["Pid"], st["PidStart"]):
            apply_exit(st, {"ExitCode": 255 if st["Status"] != states.RESTARTING else st["ExitCode"],
                            "FinishedAt": now_iso(), "OOMKilled": False,
                            "Error": "container monitor exited unexpectedly"})
            st["MonitorPid"] = 0
            st["Cleanup"] = True    # the monitor's clean-up never ran: the next op does it
        # else: the init lives on, unmonitored; it stays "running" and can be stopped.

    def monitor_alive(self) -> bool:
        return alive(self.state["MonitorPid"], self.state["MonitorStart"])


def apply_exit(st: dict, ex: dict) -> None:
    st.update(Status=states.EXITED, Running=False, Paused=False, Restarting=False, Pid=0,
              ExitCode=ex["ExitCode"], FinishedAt=ex["FinishedAt"],
              OOMKilled=ex.get("OOMKilled", False), Error=ex.get("Error", ""))


class Store:
    def __init__(self, paths):
        self.paths = paths
        self.root = paths.containers
        self.names_dir = os.path.join(self.root, ".names")

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def ids(self) -> list[str]:
        try:
            return [d for d in os.listdir(self.root) if len(d) == 64 and is_hex(d)]
        except FileNotFoundError:
            return []

    # --- names ---
    def reserve_name(self, name: str, cid: str) -> str:
        """Claim a name for cid (atomic); returns it without the leading slash."""
        if not valid_name(name):
            raise errors.InvalidParameter(
                f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = name.lstrip("/")
        os.makedirs(self.names_dir, exist_ok=True)
        link = os.path.join(self.names_dir, name)
        for _ in range(2):
            try:
                os.symlink(cid, link)
                return name
            except FileExistsError:
                owner = os.readlink(link)
                if os.path.isdir(self.dir(owner)) or self._creating(owner):
                    raise errors.Conflict(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{owner}". You have to remove (or rename) that container to be able to '
                        f"reuse that name.") from None
                # A stale name (its container's create failed mid-way): take it over.
                try:
                    os.unlink(link)
                except FileNotFoundError:
                    pass
        raise errors.Conflict(f'Conflict. The container name "/{name}" is already in use')

    def release_name(self, name: str, cid: str) -> None:
        link = os.path.join(self.names_dir, name)
        try:
            if os.readlink(link) == cid:
                os.unlink(link)
        except FileNotFoundError:
            pass

    def random_name(self, cid: str) -> str:
        from hutch.engine.names import random_name
        for retry in range(10):
            try:
                return self.reserve_name(random_name(retry), cid)
            except errors.Conflict:
                continue
        raise errors.Conflict("could not generate a unique container name")

    # --- lookup ---
    def resolve(self, ref: str) -> str:
        """Full id, name, or unique id prefix -> full id (Docker's order)."""
        if not ref:
            raise errors.NotFound("No such container: ")
        if len(ref) == 64 and os.path.isdir(self.dir(ref)):
            return ref
        name = ref.lstrip("/")
        if "/" not in name and name not in (".", ".."):
            try:
                cid = os.readlink(os.path.join(self.names_dir, name))
                if os.path.isfile(os.path.join(self.dir(cid), "state.json")):
                    return cid
            except (FileNotFoundError, OSError):
                pass
        if is_hex(ref):
            found = [c for c in self.ids() if c.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise errors.NotFound(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def load(self, cid: str) -> Container:
        record = read_json(os.path.join(self.dir(cid), "config.json"))
        state = read_json(os.path.join(self.dir(cid), "state.json"))
        if record is None or state is None:
            raise errors.NotFound(f"No such container: {cid}")
        return Container(self, cid, record, state)

    def get(self, ref: str) -> Container:
        """Load by reference and fold in the exit record (read-only view, no lock)."""
        c = self.load(self.resolve(ref))
        c.refresh()
        return c

    def list(self) -> list[Container]:
        out = []
        for cid in self.ids():
            try:
                c = self.load(cid)
            except errors.NotFound:
                continue  # being created or removed right now
            c.refresh()
            out.append(c)
        out.sort(key=lambda c: c.record.get("CreatedNs", 0), reverse=True)
        return out

    def locked(self, ref: str) -> _Locked:
        """`with store.locked(ref) as c:` resolve, lock, load fresh and refresh: the start of
        every operation."""
        return _Locked(self, ref)

    # --- create / remove ---
    def begin(self, cid: str) -> None:
        """Start creating cid: a directory naming its creator (pid and start time), so a
        name it holds is never taken as stale while the creator lives."""
        private_dir(self.paths.root)
        private_dir(self.paths.run)
        os.makedirs(self.root, exist_ok=True)
        tmp = os.path.join(self.root, f".{cid}.creating")
        os.makedirs(tmp)
        with open(os.path.join(tmp, "creator"), "w") as f:
            f.write(f"{os.getpid()} {proc_start_time(os.getpid())}")

    def _creating(self, cid: str) -> bool:
        try:
            with open(os.path.join(self.root, f".{cid}.creating", "creator")) as f:
                pid, start = f.read().split()
        except (OSError, ValueError):
            return False
        return alive(int(pid), int(start))

    def abort(self, cid: str) -> None:
        remove_tree(os.path.join(self.root, f".{cid}.creating"), ignore_errors=True)

    def create(self, cid: str, record: dict, state: dict) -> Container:
        """Finish creating (after begin): the directory appears complete or not at all."""
        tmp = os.path.join(self.root, f".{cid}.creating")
        try:
            atomic_write(os.path.join(tmp, "config.json"), record)
            atomic_write(os.path.join(tmp, "state.json"), state)
            open(os.path.join(tmp, "lock"), "w").close()
            os.rename(tmp, self.dir(cid))
        except BaseException:
            remove_tree(tmp, ignore_errors=True)
            raise
        # only now: until the rename, the creator file is what keeps the name ours
        os.unlink(os.path.join(self.dir(cid), "creator"))
        return Container(self, cid, record, state)

    def remove(self, c: Container) -> None:
        self.release_name(c.name, c.id)
        # rename first so a concurrent lookup never sees a half-removed directory
        gone = os.path.join(self.root, f".{c.id}.removing")
        try:
            os.rename(c.dir, gone)
        except FileNotFoundError:
            return
        remove_tree(gone, ignore_errors=True)

    def run_dir(self, cid: str) -> str:
        """Per-container runtime directory (sockets, bundle) under paths.run."""
        return os.path.join(self.paths.run, "containers", cid)


class _Locked(FileLock):
    """Store.locked's with block: the container, locked, loaded fresh and refreshed."""

    __slots__ = ("store", "ref", "cid")

    def __init__(self, store: Store, ref: str):
        self.store, self.ref = store, ref
        self.cid = store.resolve(ref)
        super().__init__(os.path.join(store.dir(self.cid), "lock"), create=False)

    def __enter__(self) -> Container:
        try:
            super().__enter__()
        except FileNotFoundError:
            raise errors.NotFound(f"No such container: {self.ref}") from None
        try:
            c = self.store.load(self.cid)
            before = fastjson.dumps(c.state, sort_keys=True)
            c.refresh()
            if fastjson.dumps(c.state, sort_keys=True) != before:
                c.save()
        except BaseException:
            super().__exit__()
            raise
        return c
