"""OCI container states and which operation each allows, as one table."""
from __future__ import annotations

from hutch.runtime.errors import RuntimeFailure

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"

# operation → states it may run in; anything else is refused with runc's message.
ALLOWED = {
    "start": {CREATED},
    "kill": {CREATED, RUNNING, PAUSED},
    "pause": {CREATED, RUNNING},
    "resume": {PAUSED},
    "exec": {CREATED, RUNNING},
    "update": {CREATED, RUNNING, PAUSED},
    # runc 1.1 deletes (kills) a created container unforced; the spec (and crun) say no.
    "delete": {STOPPED},
}

# (operation, state) → runc's error; "{id}" is the container id.
ERRORS = {
    ("start", RUNNING): "cannot start an already running container",
    ("start", STOPPED): "cannot start a container that has stopped",
    ("start", PAUSED): "cannot start a container in the paused state",
    ("kill", STOPPED): "container not running",
    ("pause", PAUSED): "container not running",
    ("pause", STOPPED): "container not running",
    ("resume", CREATED): "container not paused",
    ("resume", RUNNING): "container not paused",
    ("resume", STOPPED): "container not paused",
    ("exec", STOPPED): "cannot exec in a stopped container",
    ("exec", PAUSED): "cannot exec in a paused container (use --ignore-paused to override)",
    ("update", STOPPED): "container not running",
    ("delete", CREATED): "cannot delete container {id} that is not stopped: created",
    ("delete", RUNNING): "cannot delete container {id} that is not stopped: running",
    ("delete", PAUSED): "cannot delete container {id} that is not stopped: paused",
}


def check(operation: str, state: str, cid: str) -> None:
    if state in ALLOWED[operation]:
        return
    message = ERRORS.get((operation, state), f"cannot {operation} a container in the {state} state")
    raise RuntimeFailure(message.format(id=cid))
