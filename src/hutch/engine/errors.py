"""The engine's errors and the one table from error kind to exit code (and HTTP status).

The CLI prints `Error response from daemon: <msg>` for daemon-side errors, as Docker's CLI
does, and exits with the code below; `run`/`create` use 125 for their own failures and
126/127 when the container's command cannot be executed.
"""
from __future__ import annotations


class EngineError(Exception):
    """A failed engine operation; str(e) is the one line Docker would show."""
    status = 500          # HTTP status the API layer returns
    exit_code = 1         # what `hutch <cmd>` exits with


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotRunning(Conflict):
    """The operation needs a running container."""


class ExecFailed(EngineError):
    """The container's command could not be executed (runtime create/exec failure)."""

    def __init__(self, msg: str, exit_code: int):
        super().__init__(msg)
        self.exit_code = exit_code


def exec_failure_code(runtime_msg: str) -> int:
    """Docker's mapping of an OCI runtime failure to `docker run`'s exit code."""
    low = runtime_msg.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    if "permission denied" in low:
        return 126
    return 125
