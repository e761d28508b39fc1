"""`hutch`: Docker's command line, without a daemon.

Start-up is on the user's clock, so this module imports nothing heavy: each command lives
in a module that is imported only when that command runs (COMMANDS below).
A command function is `cmd(ctx: Context, argv: list[str]) -> int` (the exit code).
"""
from __future__ import annotations

import os
import sys

# command -> "module:function". "container X", "image X", ... are looked up as "X" in their
# group table first, then in COMMANDS.
COMMANDS = {
    # containers (engine)
    "create": "hutch.cli.containers:cmd_create",
    "run": "hutch.cli.containers:cmd_run",
    "start": "hutch.cli.containers:cmd_start",
    "stop": "hutch.cli.containers:cmd_stop",
    "restart": "hutch.cli.containers:cmd_restart",
    "kill": "hutch.cli.containers:cmd_kill",
    "pause": "hutch.cli.containers:cmd_pause",
    "unpause": "hutch.cli.containers:cmd_unpause",
    "attach": "hutch.cli.containers:cmd_attach",
    "exec": "hutch.cli.containers:cmd_exec",
    "logs": "hutch.cli.containers:cmd_logs",
    "rm": "hutch.cli.containers:cmd_rm",
    "wait": "hutch.cli.containers:cmd_wait",
    "ps": "hutch.cli.containers:cmd_ps",
    "inspect": "hutch.cli.containers:cmd_inspect",
    "top": "hutch.cli.containers:cmd_top",
    "stats": "hutch.cli.containers:cmd_stats",
    "rename": "hutch.cli.containers:cmd_rename",
    "port": "hutch.cli.containers:cmd_port",
    "update": "hutch.cli.containers:cmd_update",
    "export": "hutch.cli.containers:cmd_export",
    "cp": "hutch.cli.volumes:cmd_cp",
    "diff": "hutch.cli.containers:cmd_diff",
    # images
    "pull": "hutch.cli.images:cmd_pull",
    "push": "hutch.cli.images:cmd_push",
    "images": "hutch.cli.images:cmd_images",
    "rmi": "hutch.cli.images:cmd_rmi",
    "tag": "hutch.cli.images:cmd_tag",
    "save": "hutch.cli.images:cmd_save",
    "load": "hutch.cli.images:cmd_load",
    "import": "hutch.cli.images:cmd_import",
    "history": "hutch.cli.images:cmd_history",
    "login": "hutch.cli.images:cmd_login",
    "logout": "hutch.cli.images:cmd_logout",
    # misc
    "version": "hutch.cli.misc:cmd_version",
    "info": "hutch.cli.misc:cmd_info",
    "runtime": "hutch.cli.runtime_main:cmd_runtime",
}

ALIASES = {"list": "ls", "remove": "rm"}   # a group's alias: errors name the command itself
GROUPS = {
    "container": {
        "ls": "hutch.cli.containers:cmd_ps", "list": "hutch.cli.containers:cmd_ps",
        "prune": "hutch.cli.containers:cmd_container_prune",
        "inspect": "hutch.cli.containers:cmd_container_inspect",
    },
    "image": {
        "ls": "hutch.cli.images:cmd_images", "list": "hutch.cli.images:cmd_images",
        "rm": "hutch.cli.images:cmd_rmi", "inspect": "hutch.cli.images:cmd_image_inspect",
        "prune": "hutch.cli.images:cmd_image_prune",
    },
    "network": {
        v: f"hutch.cli.network:cmd_network_{v}"
        for v in ("create", "ls", "inspect", "rm", "prune", "connect", "disconnect")
    } | {"list": "hutch.cli.network:cmd_network_ls", "remove": "hutch.cli.network:cmd_network_rm"},
    "volume": {
        v: f"hutch.cli.volumes:cmd_volume_{v}" for v in ("create", "ls", "inspect", "rm", "prune")
    } | {"list": "hutch.cli.volumes:cmd_volume_ls", "remove": "hutch.cli.volumes:cmd_volume_rm"},
    "system": {
        "df": "hutch.cli.volumes:cmd_system_df", "prune": "hutch.cli.volumes:cmd_system_prune",
        "info": "hutch.cli.misc:cmd_info",
    },
}

USAGE = """Usage:  hutch [OPTIONS] COMMAND

A container engine with Docker's commands (and an OCI runtime: hutch-runtime)

Options:
      --root DIR   Root of hutch's state (default /var/lib/hutch and /run/hutch; env HUTCH_ROOT)
  -D, --debug      Print every kernel-level step (namespaces, mounts, cgroup writes, exec)
  -v, --version    Print version information and quit

Commands:
  """ + " ".join(sorted(COMMANDS)) + """

Management Commands:
  """ + " ".join(sorted(GROUPS)) + "\n"


class Context:
    """What every command gets: where the state lives and the global options."""

    def __init__(self, root: str | None, debug: bool):
        from hutch.paths import Paths
        self.paths = Paths.from_root(root)
        self.debug = debug


def _load(target: str):
    import importlib
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


def die(msg: str, code: int = 125) -> int:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = None
    debug = False
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt == "--root" and argv:
            root = argv.pop(0)
        elif opt.startswith("--root="):
            root = opt.split("=", 1)[1]
        elif opt in ("-D", "--debug"):
            debug = True
        elif opt in ("-v", "--version"):
            from hutch import __version__
            print(f"hutch version {__version__}")
            return 0
        elif opt in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        else:
            return die(f"unknown flag: {opt}\nSee 'hutch --help'.")
    if not argv:
        sys.stdout.write(USAGE)
        return 0
    if debug:
        from hutch import trace
        trace.enable()
    name = argv.pop(0)
    target = None
    if name in GROUPS:
        if not argv or argv[0] in ("-h", "--help"):
            sys.stdout.write(f"Usage:  hutch {name} COMMAND\n\nCommands:\n  "
                             + " ".join(sorted(GROUPS[name])) + "\n")
            return 0
        sub = argv.pop(0)
        target = GROUPS[name].get(sub) or (COMMANDS.get(sub) if name in ("container", "image") else None)
        if target is None:
            return die(f"hutch: '{name} {sub}' is not a hutch command.\nSee 'hutch {name} --help'")
        from hutch.cli import flags
        flags.invoked_path = f"hutch {name} {ALIASES.get(sub, sub)}"
    else:
        target = COMMANDS.get(name)
        if target is None:
            return die(f"hutch: '{name}' is not a hutch command.\nSee 'hutch --help'")
    ctx = Context(root, debug)
    try:
        fn = _load(target)
    except (ImportError, AttributeError):
        return die(f"hutch: '{name}' is not implemented yet")
    try:
        return int(fn(ctx, argv) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    """The `hutch` launcher's entry: main(), then exit without the interpreter's teardown
    of every module (5-10 ms a call). Streams are flushed first; commands close their files
    and join their threads before they return."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
