"""OCI hooks: each gets the container's state JSON on stdin and may have a timeout."""
from __future__ import annotations

from hutch import trace
from hutch.oci.runtime_spec import dump_json
from hutch.runtime.errors import HookError


def run_hooks(hooks: list[dict] | None, state: dict, kind: str) -> None:
    """Run hooks in order; the first failure raises HookError (runc's wording)."""
    for i, hook in enumerate(hooks or ()):
        _run_one(i, hook, state, kind)


def run_hooks_warn(hooks: list[dict] | None, state: dict, kind: str, warn) -> None:
    """poststart/poststop: a failure is a warning and the rest still run (the spec's rule)."""
    for i, hook in enumerate(hooks or ()):
        try:
            _run_one(i, hook, state, kind)
        except HookError as e:
            warn(str(e))


def _run_one(i: int, hook: dict, state: dict, kind: str) -> None:
    import subprocess
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
        out, err = proc.communicate(dump_json(state).encode(), timeout=hook.get("timeout"))
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
