"""Docker's container states and which operation each allows, as one table.

A cell is either an action name (what the engine does) or an error template with Docker
20.10's exact wording; `{id}` is the full id, `{ref}` what the user typed, `{name}` the name.
"""
from __future__ import annotations

from hutch.engine import errors

CREATED, RUNNING, PAUSED, RESTARTING, EXITED, DEAD, REMOVING = (
    "created", "running", "paused", "restarting", "exited", "dead", "removing")
STATES = (CREATED, RUNNING, PAUSED, RESTARTING, EXITED, DEAD, REMOVING)

# op -> state -> "do:<action>" | "noop" | (ErrorClass, template)
_NOT_RUNNING = (errors.NotRunning, "Container {id} is not running")
_NOT_PAUSED = (errors.Conflict, "Container {id} is not paused")
_KILL_NOT_RUNNING = (errors.NotRunning, "Cannot kill container: {ref}: Container {id} is not running")
_REMOVING = (errors.Conflict, "removal of container {id} is already in progress")

TABLE: dict[str, dict[str, object]] = {
    "start": {
        CREATED: "do", EXITED: "do", DEAD: "do", RUNNING: "noop", RESTARTING: "noop",
        PAUSED: (errors.Conflict, "cannot start a paused container, try unpause instead"),
        REMOVING: _REMOVING,
    },
    "stop": {
        RUNNING: "do", PAUSED: "do", RESTARTING: "do",
        CREATED: "noop", EXITED: "noop", DEAD: "noop", REMOVING: "noop",
    },
    "restart": {
        CREATED: "do", RUNNING: "do", PAUSED: "do", RESTARTING: "do", EXITED: "do", DEAD: "do",
        REMOVING: _REMOVING,
    },
    "kill": {
        RUNNING: "do", PAUSED: "do",
        RESTARTING: (errors.Conflict, "Cannot kill container: {ref}: Container {id} is restarting, wait until the container is running"),
        CREATED: _KILL_NOT_RUNNING, EXITED: _KILL_NOT_RUNNING, DEAD: _KILL_NOT_RUNNING,
        REMOVING: _KILL_NOT_RUNNING,
    },
    "pause": {
        RUNNING: "do",
        PAUSED: (errors.Conflict, "Container {id} is already paused"),
        RESTARTING: (errors.Conflict, "Container {id} is restarting, wait until the container is running"),
        CREATED: _NOT_RUNNING, EXITED: _NOT_RUNNING, DEAD: _NOT_RUNNING, REMOVING: _NOT_RUNNING,
    },
    "unpause": {
        PAUSED: "do",
        CREATED: _NOT_PAUSED, RUNNING: _NOT_PAUSED, RESTARTING: _NOT_PAUSED, EXITED: _NOT_PAUSED,
        DEAD: _NOT_PAUSED, REMOVING: _NOT_PAUSED,
    },
    "exec": {
        RUNNING: "do",
        PAUSED: (errors.Conflict, "Container {name} is paused, unpause the container before exec"),
        RESTARTING: (errors.Conflict, "Container {id} is restarting, wait until the container is running"),
        CREATED: _NOT_RUNNING, EXITED: _NOT_RUNNING, DEAD: _NOT_RUNNING, REMOVING: _NOT_RUNNING,
    },
    "attach": {
        RUNNING: "do", PAUSED: "do", RESTARTING: "do",
        CREATED: (errors.Conflict, "You cannot attach to a stopped container, start it first"),
        EXITED: (errors.Conflict, "You cannot attach to a stopped container, start it first"),
        DEAD: (errors.Conflict, "You cannot attach to a stopped container, start it first"),
        REMOVING: (errors.Conflict, "You cannot attach to a stopped container, start it first"),
    },
    "rm": {
        CREATED: "do", EXITED: "do", DEAD: "do",
        RUNNING: (errors.Conflict, "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"),
        PAUSED: (errors.Conflict, "You cannot remove a paused container {id}. Unpause and then stop the container before attempting removal or force remove"),
        RESTARTING: (errors.Conflict, "You cannot remove a restarting container {id}. Stop the container before attempting removal or force remove"),
        REMOVING: _REMOVING,
    },
    "update": {s: "do" for s in STATES},
    "top": {
        RUNNING: "do", PAUSED: "do",
        CREATED: _NOT_RUNNING, EXITED: _NOT_RUNNING, DEAD: _NOT_RUNNING, REMOVING: _NOT_RUNNING,
        RESTARTING: (errors.Conflict, "Container {id} is restarting, wait until the container is running"),
    },
}


def check(op: str, status: str, *, cid: str, ref: str = "", name: str = "") -> str:
    """Return "do" or "noop" for op in status, or raise Docker's error for that cell."""
    cell = TABLE[op][status]
    if isinstance(cell, tuple):
        cls, template = cell
        raise cls(template.format(id=cid, ref=ref or name, name=name))
    return cell
