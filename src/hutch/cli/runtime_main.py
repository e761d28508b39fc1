"""`hutch-runtime`: the OCI runtime with runc's command line.

    hutch-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...

Errors: one line, runc's wording; to --log in runc's JSON shape
({"level":"error","msg":...,"time":...}) when asked, else logrus-style on stderr.
Only what a command needs is imported, so `run` stays fast.
"""
from __future__ import annotations

import os
import sys

from hutch.runtime.errors import RuntimeFailure

PROG = "hutch-runtime"

USAGE = f"""Usage: {PROG} [global options] COMMAND [command options] [arguments...]

An OCI runtime with runc's command line.

Commands:
  create   create a container            start    start a created container
  run      create and start a container  state    output the state of a container
  list     list containers               kill     send a signal to a container's init
  delete   delete a container            pause    freeze all processes of a container
  resume   thaw a paused container       ps       list the processes of a container
  exec     run a process in a container  update   change a container's resources
  events   container events and stats    spec     write an example config.json

Global options:
  --root DIR          state directory (default {{root}})
  --log FILE          write errors there instead of stderr
  --log-format FMT    text or json
  --debug             trace every kernel-level step
"""


class UsageError(Exception):
    pass


class Args:
    """A tiny runc-style flag parser: flags before/among positionals, `--flag=v` or `--flag v`."""

    def __init__(self, argv: list[str], flags: dict[str, str], stop_at_positional: int = 0):
        # flags: spelling -> kind ("bool" | "value" | "multi"); aliases share a canonical name
        # given as "kind:name".
        self.values: dict[str, object] = {}
        self.positional: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if stop_at_positional and len(self.positional) >= stop_at_positional:
                self.positional.extend(argv[i:])
                break
            if arg == "--":
                self.positional.extend(argv[i + 1:])
                break
            if arg.startswith("-") and arg != "-" and not _is_number(arg):
                name, eq, value = arg.lstrip("-").partition("=")
                spec = flags.get(name)
                if spec is None:
                    raise UsageError(f"flag provided but not defined: -{name}")
                kind, _, canonical = spec.partition(":")
                canonical = canonical or name
                if kind == "bool":
                    self.values[canonical] = value.lower() not in ("false", "0") if eq else True
                else:
                    if not eq:
                        i += 1
                        if i >= len(argv):
                            raise UsageError(f"flag needs an argument: -{name}")
                        value = argv[i]
                    if kind == "multi":
                        self.values.setdefault(canonical, []).append(value)
                    else:
                        self.values[canonical] = value
            else:
                self.positional.append(arg)
            i += 1

    def get(self, name, default=None):
        return self.values.get(name, default)


def _is_number(s: str) -> bool:
    return s[1:].isdigit() and s[0] == "-"


def _need_id(args: Args, command: str, extra_ok: bool = False) -> str:
    if not args.positional:
        raise UsageError(f'"{command}" requires a container id')
    if len(args.positional) > 1 and not extra_ok:
        raise UsageError(f'"{command}" takes exactly one container id')
    return args.positional[0]


class Log:
    def __init__(self, path: str | None, fmt: str):
        self.path = path
        self.fmt = fmt

    def error(self, message: str) -> None:
        import time
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.path:
            if self.fmt == "json":
                import json
                line = json.dumps({"level": "error", "msg": message, "time": now},
                                  separators=(",", ":"))
            else:
                line = _logrus_text(now, "error", message)
            try:
                with open(self.path, "a") as f:
                    f.write(line + "\n")
            except OSError:
                pass
            sys.stderr.write(message + "\n")
        else:
            sys.stderr.write(_logrus_text(now, "error", message) + "\n")


def _logrus_text(now: str, level: str, message: str) -> str:
    import json
    quoted = json.dumps(message, ensure_ascii=False) if any(
        c in message for c in ' "=\\\n') else message
    return f'time="{now}" level={level} msg={quoted}'


def _parse_signal(text: str) -> int:
    import signal
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise _Failure(f'unknown signal "{text}"')
    return int(sig)


class _Failure(Exception):
    pass


# --- commands ---

_CREATE_FLAGS = {"bundle": "value", "b": "value:bundle", "console-socket": "value",
                 "pid-file": "value", "no-pivot": "bool", "no-new-keyring": "bool",
                 "preserve-fds": "value"}


def _create_kwargs(a: Args) -> dict:
    try:
        preserve = int(a.get("preserve-fds", "0"))
    except ValueError:
        raise UsageError(f"invalid value {a.get('preserve-fds')!r} for flag -preserve-fds")
    return {"pid_file": a.get("pid-file"), "console_socket": a.get("console-socket"),
            "no_pivot": bool(a.get("no-pivot")), "preserve_fds": preserve,
            "no_new_keyring": bool(a.get("no-new-keyring"))}


def cmd_create(root, argv):
    from hutch.runtime import container
    a = Args(argv, _CREATE_FLAGS)
    cid = _need_id(a, "create")
    container.create(root, cid, a.get("bundle", "."), **_create_kwargs(a))
    return 0


def cmd_run(root, argv):
    from hutch.runtime import container
    a = Args(argv, {**_CREATE_FLAGS, "detach": "bool", "d": "bool:detach", "keep": "bool"})
    cid = _need_id(a, "run")
    if a.get("keep"):
        raise UsageError("--keep is not supported")
    result = container.run(root, cid, a.get("bundle", "."), detach=bool(a.get("detach")),
                           **_create_kwargs(a))
    return 0 if a.get("detach") else result


def cmd_start(root, argv):
    from hutch.runtime import container
    container.start(root, _need_id(Args(argv, {}), "start"))
    return 0


def _print_json(obj, indent=None) -> None:
    import json
    sys.stdout.write(json.dumps(obj, indent=indent))


def cmd_state(root, argv):
    from hutch.runtime import container
    _print_json(container.state(root, _need_id(Args(argv, {}), "state")), indent=2)
    return 0


def cmd_kill(root, argv):
    from hutch.runtime import container
    a = Args(argv, {"all": "bool", "a": "bool:all"})
    if not a.positional:
        raise UsageError('"kill" requires a container id')
    if len(a.positional) > 2:
        raise UsageError('"kill" takes a container id and an optional signal')
    sig = _parse_signal(a.positional[1] if len(a.positional) > 1 else "SIGTERM")
    container.kill(root, a.positional[0], sig, all=bool(a.get("all")))
    return 0


def cmd_delete(root, argv):
    from hutch.runtime import container
    from hutch.runtime.errors import ContainerNotFound
    a = Args(argv, {"force": "bool", "f": "bool:force"})
    cid = _need_id(a, "delete")
    try:
        container.delete(root, cid, force=bool(a.get("force")))
    except ContainerNotFound:
        if not a.get("force"):
            raise
    return 0


class _ExecFailure(Exception):
    """runc exits 255 when exec itself fails."""


COMMANDS = {
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
    "kill": cmd_kill, "delete": cmd_delete,
}
# The others live in runtime_commands, imported only when one of them is called.
OTHER_COMMANDS = ("spec", "list", "pause", "resume", "ps", "exec", "update", "events")

_GLOBAL_FLAGS = {"root": "value", "log": "value", "log-format": "value", "debug": "bool",
                 "systemd-cgroup": "bool", "rootless": "value", "criu": "value",
                 "help": "bool", "h": "bool:help", "version": "bool", "v": "bool:version"}


def _split_globals(argv: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Global flags come before the command."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, _ = argv[i].lstrip("-").partition("=")
        kind = _GLOBAL_FLAGS.get(name, "bool").partition(":")[0]
        i += 1 if kind == "bool" or eq else 2
    return argv[:i], (argv[i] if i < len(argv) else None), argv[i + 1:]


def main(argv=None):
    """The `hutch-runtime` program."""
    if argv is not None:
        return run_cli(argv)
    code = run_cli(sys.argv[1:])
    # Skip the interpreter's teardown (~8 ms of module GC): nothing is left to clean up.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_cli(argv, default_root=None):
    global_argv, command, rest = _split_globals(argv)
    log = Log(None, "text")
    try:
        g = Args(global_argv, _GLOBAL_FLAGS)
        log = Log(g.get("log"), g.get("log-format", "text"))
        if log.fmt not in ("text", "json"):
            raise UsageError(f"unknown log-format {log.fmt!r}")
        if g.get("debug"):
            from hutch import trace
            trace.enable()
        if g.get("version"):
            from hutch import __version__
            from hutch.oci.runtime_spec import SPEC_VERSION
            print(f"{PROG} version {__version__}\nspec: {SPEC_VERSION}")
            return 0
        root = g.get("root") or default_root
        if root is None:
            from hutch.paths import Paths
            root = Paths.from_root(None).runtime_state
        if g.get("help") or command in (None, "help"):
            sys.stdout.write(USAGE.format(root=root))
            return 0
        if g.get("systemd-cgroup"):
            raise _Failure("--systemd-cgroup is not supported: hutch-runtime manages "
                           "cgroupfs paths only")
        if g.get("rootless", "auto") not in ("auto", "false"):
            raise _Failure("rootless mode is not supported: run hutch-runtime as root")
        if g.get("criu"):
            raise _Failure("checkpoint/restore (--criu) is not supported")
        fn = COMMANDS.get(command)
        if fn is None and command in OTHER_COMMANDS:
            from hutch.cli import runtime_commands
            fn = getattr(runtime_commands, f"cmd_{command}")
        if fn is None:
            raise UsageError(f"No help topic for '{command}'")
        return fn(root, rest)
    except UsageError as e:
        log.error(str(e))
        return 1
    except _ExecFailure as e:
        log.error(str(e))
        return 255
    except _Failure as e:
        log.error(str(e))
        return 1
    except RuntimeFailure as e:
        msg = str(e)
        if command in ("create", "run") and msg.startswith("unable to start"):
            msg = f"{PROG} {command} failed: {msg}"
        log.error(msg)
        return 1


def cmd_runtime(ctx, argv):
    """`hutch runtime ...`: the same runtime, defaulting to the engine's state root."""
    return run_cli(argv, default_root=ctx.paths.runtime_state)
