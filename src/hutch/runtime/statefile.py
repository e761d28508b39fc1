"""The per-container state directory under the runtime's --root.

<root>/<id>/state.json   what `state`, `kill`, `delete` need (written atomically)
<root>/<id>/exec.fifo    exists from create until start: the init blocks opening it
<root>/.seccomp/         compiled seccomp programs, by profile (a cache)

The init is identified by pid AND start time (field 22 of /proc/<pid>/stat), so a
reused pid is never mistaken for the container.
"""
from __future__ import annotations

import os

from hutch.oci.runtime_spec import dump_json, parse_json
from hutch.runtime.errors import ContainerNotFound, RuntimeFailure

STATE_FILE = "state.json"
FIFO = "exec.fifo"
# runc's ^[\w+-\.]+$ with Go's ASCII \w (a set: `re` costs ~1 ms of import per call).
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(cid: str) -> None:
    # A leading dot is refused (runc allows it): it is kept for the runtime's own entries.
    if not cid or not _ID_CHARS.issuperset(cid) or cid.startswith("."):
        raise RuntimeFailure(f"invalid id format: {cid}")


def seccomp_cache_dir(root: str) -> str:
    return os.path.join(root, ".seccomp")


def container_dir(root: str, cid: str) -> str:
    validate_id(cid)
    return os.path.join(root, cid)


def fifo_path(root: str, cid: str) -> str:
    return os.path.join(root, cid, FIFO)


def save(root: str, cid: str, data: dict) -> None:
    d = container_dir(root, cid)
    tmp = os.path.join(d, f".{STATE_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        # No fsync (as runc): the state lives on a tmpfs (/run) and, like the containers it
        # describes, does not survive a crash anyway; rename keeps it atomic.
        os.write(fd, dump_json(data).encode())
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(d, STATE_FILE))


def load(root: str, cid: str) -> dict:
    try:
        with open(os.path.join(container_dir(root, cid), STATE_FILE), "rb") as f:
            return parse_json(f.read().decode())
    except FileNotFoundError:
        raise ContainerNotFound("container does not exist") from None
    except ValueError as e:
        raise RuntimeFailure(f"container {cid}: corrupt state file: {e}") from None


def remove(root: str, cid: str) -> None:
    """The state directory holds only flat files (state, fifo): no rmtree needed."""
    d = container_dir(root, cid)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass


def ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, STATE_FILE)))


def process_start_time(pid: int) -> int | None:
    """Start time in clock ticks of a live (not zombie) process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: split after the last ")".
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def init_alive(state: dict) -> bool:
    pid = state.get("pid") or 0
    return pid > 0 and process_start_time(pid) == state.get("pid_start")


def write_pid_file(path: str, pid: int) -> None:
    """As runc: write beside the target and rename, so readers never see a partial pid."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)
