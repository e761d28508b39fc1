"""OCI hooks: each gets the container's state JSON on stdin and may have a timeout."""
from __future__ import annotations

import json

from hutch import trace


class HookError(Exception):
    pass


def run_hooks(hooks: list[dict], state: dict, kind: str) -> None:
    """Run hooks in order; the first failure raises HookError (runc's wording)."""
    if not hooks:
        return
    import subprocess
    payload = json.dumps(state).encode()
    for i, hook in enumerate(hooks):
        args = hook.get("args") or [hook["path"]]
        trace.step("hook", f"{kind}[{i}] {hook['path']}", args=" ".join(args))
        try:
            proc = subprocess.Popen(args, executable=hook["path"], env=_env(hook.get("env")),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, close_fds=True)
        except OSError as e:
            raise HookError(f"error running {kind} hook #{i}: fork/exec {hook['path']}: "
                            f"{e.strerror.lower()}") from None
        try:
            out, err = proc.communicate(payload, timeout=hook.get("timeout"))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise HookError(f"error running {kind} hook #{i}: timeout after "
                            f"{hook['timeout']}s: {hook['path']}") from None
        if proc.returncode != 0:
            status = (f"exit status {proc.returncode}" if proc.returncode > 0
                      else f"signal: {-proc.returncode}")
            raise HookError(f"error running {kind} hook #{i}: {status}, "
                            f"stdout: {out.decode(errors='replace').strip()}, "
                            f"stderr: {err.decode(errors='replace').strip()}")


def _env(items: list[str] | None) -> dict[str, str]:
    env = {}
    for item in items or ():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def run_hooks_warn(hooks: list[dict], state: dict, kind: str, warn) -> None:
    """poststart/poststop: a failure is a warning and the rest still run (the spec's rule)."""
    for i, hook in enumerate(hooks or ()):
        try:
            run_hooks([hook], state, kind)
        except HookError as e:
            warn(str(e).replace("#0", f"#{i}", 1))


def state_for_hooks(base: dict, status: str, pid: int) -> dict:
    state = dict(base)
    state["status"] = status
    state["pid"] = pid
    return state
