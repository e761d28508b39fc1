"""The container commands: parse Docker's flags → the engine → Docker's output and exit codes."""
from __future__ import annotations

import os
import sys

from hutch import fastjson
from hutch.cli.common import (DAEMON, command, confirm, daemon_err, err, image_store,
                              key_values, parse_filters)
from hutch.cli.flags import CommandLineError, Command, Flag


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _engine(ctx):
    from hutch.engine.containers import Engine
    return Engine(ctx.paths)


# --- run / create -----------------------------------------------------------------------

def _list(long, short=None, help="", metavar=None):
    return Flag(long, short, "list", help=help, metavar=metavar)


def _str(long, short=None, help="", default=None):
    return Flag(long, short, "string", default, help=help)


def _mount_flag(value: str) -> str:
    """--mount's client-side checks (imported only when the flag is given)."""
    from hutch.engine import volumes
    return volumes.mount_flag(value)


_DETACH_KEYS = Flag("detach-keys", None, "string",
                    help="Override the key sequence for detaching a container")

CREATE_BASE_FLAGS = [
    Flag("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
    _list("add-host", help="Add a custom host-to-IP mapping (host:ip)"),
    _list("cap-add", help="Add Linux capabilities"),
    _list("cap-drop", help="Drop Linux capabilities"),
    _str("cgroup-parent", help="Optional parent cgroup for the container"),
    _str("cgroupns", help="Cgroup namespace to use (host|private)"),
    _str("cidfile", help="Write the container ID to the file"),
    Flag("cpu-rt-period", None, "string", help="Limit CPU real-time period in microseconds"),
    Flag("cpu-rt-runtime", None, "string", help="Limit CPU real-time runtime in microseconds"),
    Flag("detach", "d", help="Run container in background and print container ID"),
    _DETACH_KEYS,
    _list("device", help="Add a host device to the container"),
    _list("device-cgroup-rule", help="Add a rule to the cgroup allowed devices list"),
    _list("dns", help="Set custom DNS servers"),
    _list("dns-option", help="Set DNS options"),
    _list("dns-search", help="Set custom DNS search domains"),
    _str("domainname", help="Container NIS domain name"),
    _str("entrypoint", help="Overwrite the default ENTRYPOINT of the image"),
    _list("env", "e", help="Set environment variables"),
    _list("env-file", help="Read in a file of environment variables"),
    _list("expose", help="Expose a port or a range of ports"),
    _list("group-add", help="Add additional groups to join"),
    _str("hostname", "h", help="Container host name"),
    Flag("init", help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    _str("ip", help="IPv4 address (e.g., 172.30.100.104)"),
    _str("ipc", help="IPC mode to use"),
    _list("label", "l", help="Set meta data on a container"),
    _str("log-driver", help="Logging driver for the container"),
    _list("log-opt", help="Log driver options"),
    _str("mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("mount", None, "list", help="Attach a filesystem mount to the container",
         parse=_mount_flag),
    _str("name", help="Assign a name to the container"),
    _str("network", help="Connect a container to a network", default="default"),
    _str("net", default="", help="Connect a container to a network"),
    _list("network-alias", help="Add network-scoped alias for the container"),
    Flag("no-healthcheck", help="Disable any container-specified HEALTHCHECK"),
    Flag("oom-score-adj", None, "string", help="Tune host's OOM preferences (-1000 to 1000)"),
    _str("pid", help="PID namespace to use"),
    _str("platform", help="Set platform if server is multi-platform capable"),
    Flag("privileged", help="Give extended privileges to this container"),
    _list("publish", "p", help="Publish a container's port(s) to the host"),
    Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    _str("pull", default="missing", help='Pull image before running ("always"|"missing"|"never")'),
    Flag("quiet", "q", help="Suppress the pull output"),
    Flag("read-only", help="Mount the container's root filesystem as read only"),
    _str("restart", default="no", help="Restart policy to apply when a container exits"),
    Flag("rm", help="Automatically remove the container when it exits"),
    _str("runtime", help="Runtime to use for this container"),
    _list("security-opt", help="Security Options"),
    Flag("sig-proxy", default=True, help="Proxy received signals to the process"),
    _str("stop-signal", help="Signal to stop the container"),
    Flag("stop-timeout", None, "int", help="Timeout (in seconds) to stop a container"),
    _list("storage-opt", help="Storage driver options for the container"),
    _list("sysctl", help="Sysctl options"),
    _list("tmpfs", help="Mount a tmpfs directory"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    _str("user", "u", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    _str("userns", help="User namespace to use"),
    _str("uts", help="UTS namespace to use"),
    _list("volume", "v", help="Bind mount a volume"),
    _str("volume-driver", help="Optional volume driver for the container"),
    _list("volumes-from", help="Mount volumes from the specified container(s)"),
    _str("workdir", "w", help="Working directory inside the container"),
]

def _resource_flags() -> list[Flag]:
    """The resource flags as hutch.engine.resources defines and parses them."""
    from hutch.engine import resources
    return [Flag(name, short, "bool", help=help_text) if shown == "bool" else
            Flag(name, short, "list" if repeatable else "string", help=help_text,
                 metavar=shown, parse=None if parser is str else parser)
            for name, short, shown, parser, repeatable, help_text in resources.FLAGS]


# run, create and update take the resource flags of hutch.engine.resources, whose import
# (dataclasses, inspect, re: ~7 ms) only those three commands should pay: the commands are
# built on first use, and `CREATE_FLAGS`, `RUN_CMD`, `CREATE_CMD`, `UPDATE_CMD` stay
# importable names (module __getattr__ at the end of this file).
_LAZY: dict = {}

_UPDATE_FLAG_NAMES = ("blkio-weight", "cpu-period", "cpu-quota", "cpu-shares", "cpus",
                      "cpuset-cpus", "cpuset-mems", "kernel-memory", "memory",
                      "memory-reservation", "memory-swap", "pids-limit", "restart")


def _lazy_command(name: str):
    if name in _LAZY:
        return _LAZY[name]
    flags = sorted(CREATE_BASE_FLAGS + _resource_flags(), key=lambda f: f.long)
    _LAZY["CREATE_FLAGS"] = flags
    _LAZY["RUN_CMD"] = Command("run", "[OPTIONS] IMAGE [COMMAND] [ARG...]",
                               "Create and run a new container from an image", flags,
                               interspersed=False, min_args=1)
    _LAZY["CREATE_CMD"] = Command(
        "create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container",
        [f for f in flags if f.long not in ("detach", "detach-keys", "rm", "sig-proxy")]
        + [Flag("rm", help="Automatically remove the container when it exits")],
        interspersed=False, min_args=1)
    _LAZY["UPDATE_CMD"] = Command(
        "update", "[OPTIONS] CONTAINER [CONTAINER...]",
        "Update configuration of one or more containers",
        [f for f in flags if f.long in _UPDATE_FLAG_NAMES], min_args=1)
    return _LAZY[name]


# flags hutch refuses clearly rather than accept and ignore
_UNSUPPORTED = {
    "cgroup-parent": "--cgroup-parent", "platform": "--platform", "storage-opt": "--storage-opt",
    "log-driver": "--log-driver",
    "cpu-rt-period": "--cpu-rt-period", "cpu-rt-runtime": "--cpu-rt-runtime",
    "device-cgroup-rule": "--device-cgroup-rule",
}


class RunError(Exception):
    """A daemon-side failure of run/create: message and exit code."""

    def __init__(self, msg: str, code: int = 125):
        super().__init__(msg)
        self.code = code


def _restart_policy(value: str) -> tuple[str, int]:
    name, sep, count = value.partition(":")
    if name in ("", "no"):
        if sep:
            raise RunError("invalid restart policy format: maximum retry count cannot be used "
                           "with restart policy 'no'")
        return "no", 0
    if name in ("always", "unless-stopped"):
        if sep:
            raise RunError(f"invalid restart policy format: maximum retry count cannot be used "
                           f"with restart policy '{name}'")
        return name, 0
    if name == "on-failure":
        if not sep:
            return name, 0
        try:
            n = int(count)
        except ValueError:
            raise RunError("invalid restart policy format: maximum retry count must be an "
                           "integer", 125) from None
        if n < 0:
            raise RunError("invalid restart policy format: maximum retry count cannot be negative")
        return name, n
    raise RunError(f"{DAEMON}invalid restart policy '{value}'")


def _create_options(opts, args, *, detach: bool, cmd: str):
    """Flags → engine CreateOptions, with Docker CLI's client-side checks."""
    from hutch.engine import spec as specmod
    from hutch.engine.containers import CreateOptions
    for flag, shown in _UNSUPPORTED.items():
        if flag in opts.changed and opts[flag] not in ("", "private", "json-file", "host" if flag == "cgroupns" else None):
            raise RunError(f"{shown} is not supported by hutch")
    for flag, modes in (("pid", ("", "host")), ("uts", ("", "host")),
                        ("ipc", ("", "private", "shareable", "host"))):
        if (opts[flag] or "") not in modes:
            raise RunError(f"--{flag}={opts[flag]} is not supported by hutch (only "
                           f"{' or '.join(m for m in modes if m)})")
    if opts["uts"] == "host" and opts["hostname"]:
        raise RunError("Conflicting options: hostname and the UTS mode")
    if "cgroupns" in opts.changed and opts["cgroupns"] not in ("host", "private"):
        raise RunError(f"--cgroupns: invalid CGROUP mode {opts['cgroupns']!r}")
    if opts["rm"] and opts["restart"] not in ("", "no"):
        raise RunError("conflicting options: cannot specify both --restart and --rm")
    restart = _restart_policy(opts["restart"] or "no")
    try:
        env = []
        for path in opts["env-file"]:
            env += specmod.read_env_file(path)
        env += specmod.resolve_env_args(opts["env"])
    except ValueError as e:
        raise RunError(str(e)) from None
    labels = key_values(opts["label"])
    log_opts = {}
    for item in opts["log-opt"]:
        k, sep, v = item.partition("=")
        if not sep:
            raise RunError(f"invalid key-value pair for log-opt: {item}")
        if k not in ("max-size", "max-file", "compress", "labels", "env", "tag", "mode", "max-buffer-size"):
            raise RunError(f"{DAEMON}unknown log opt '{k}' for json-file log driver")
        log_opts[k] = v
    if "max-size" in log_opts:
        from hutch.engine.logs import parse_size
        try:
            parse_size(log_opts["max-size"])
        except ValueError as e:
            raise RunError(f"{DAEMON}{e}") from None
    if "max-file" in log_opts:
        if not log_opts["max-file"].isdigit() or int(log_opts["max-file"]) < 1:
            raise RunError(f"{DAEMON}max-file cannot be less than 1")
        if "max-size" not in log_opts and int(log_opts["max-file"]) > 1:
            raise RunError(f"{DAEMON}max-file cannot be set without max-size")
    attach = [a.lower() for a in opts["attach"]]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise RunError(f"invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams "
                           "are STDIN, STDOUT and STDERR")
    if detach and attach:
        raise RunError("Conflicting options: -a and -d")
    if not detach and not attach:
        attach = ["stdout", "stderr"] + (["stdin"] if opts["interactive"] else [])
    if detach:
        attach = []
    hostname, domainname = specmod.split_hostname(opts["hostname"] or "")
    network = opts["net"] or opts["network"] or "default"
    entrypoint = None
    if "entrypoint" in opts.changed:
        entrypoint = [opts["entrypoint"]] if opts["entrypoint"] else []
    stop_timeout = opts["stop-timeout"] if "stop-timeout" in opts.changed else None
    if opts["stop-signal"]:
        from hutch.engine.containers import parse_signal
        from hutch.engine.errors import EngineError
        try:
            parse_signal(opts["stop-signal"])
        except EngineError as e:
            raise RunError(f"{DAEMON}{e}") from None
    from hutch.engine import resources as res_mod
    try:
        resources = res_mod.parse_resources(
            {k: opts[k] for k in opts.changed if k in res_mod._BY_NAME})
    except res_mod.FlagError as e:
        raise _lazy_command(f"{cmd.upper()}_CMD").flag_error(str(e)) from None
    except ValueError as e:
        raise RunError(f"{DAEMON}{e}", getattr(e, "exit_code", 125)) from None
    flags = dict(opts)
    if opts["publish"] or opts["expose"]:
        from hutch.network import ports
        try:
            exposed, bindings = ports.parse_publish(opts["publish"])
        except ValueError as e:
            raise RunError(str(e)) from None
        for item in opts["expose"]:
            port, _, proto = item.partition("/")
            exposed[f"{port}/{proto or 'tcp'}"] = {}
        flags["_exposed"] = exposed
        flags["_bindings"] = bindings
    return CreateOptions(
        image=args[0], cmd=args[1:], entrypoint=entrypoint, name=opts["name"] or None,
        hostname=hostname, domainname=opts["domainname"] or domainname, env=env,
        workdir=opts["workdir"] or "", user=opts["user"] or "", labels=labels,
        tty=opts["tty"], open_stdin=opts["interactive"],
        stdin_once=opts["interactive"] and "stdin" in attach, attach=attach,
        init=opts["init"], stop_signal=opts["stop-signal"] or None, stop_timeout=stop_timeout,
        restart=restart, auto_remove=opts["rm"], cidfile=opts["cidfile"] or "",
        log_opts=log_opts, network=network, runtime=opts["runtime"] or "runc",
        flags=flags, changed=set(opts.changed), resources=resources,
        oom_score_adj=int(opts["oom-score-adj"] or 0))


def _create(ctx, opts, args, *, detach: bool, cmd: str):
    """Create the container (pulling is the images module's); (container, warnings)."""
    from hutch.engine import errors
    if opts["cidfile"] and os.path.exists(opts["cidfile"]):
        raise RunError(f"Container ID file found, make sure the other container isn't running "
                       f"or delete {opts['cidfile']}")
    copts = _create_options(opts, args, detach=detach, cmd=cmd)
    eng = _engine(ctx)
    from hutch.images import reference as refs
    try:
        refs.parse(copts.image)
    except refs.InvalidReference as e:
        raise RunError(str(e)) from None
    try:
        c, warnings = eng.create(copts)
    except errors.NotFound as e:
        if str(e).startswith("No such image"):
            _pull_missing(ctx, copts.image, opts)
            c, warnings = eng.create(copts)
        else:
            raise
    if opts["cidfile"]:
        try:
            with open(opts["cidfile"], "x") as f:
                f.write(c.id)
        except OSError as e:
            eng.remove(c.id, force=True)
            raise RunError(f"failed to create the container ID file: {e}") from None
    return eng, c, warnings


def _pull_missing(ctx, image: str, opts) -> None:
    """Docker's run/create: an image that is not here is pulled first (stderr progress)."""
    from hutch.images import reference as refs
    try:
        ref = refs.parse(image).tagged_or_latest()
    except refs.InvalidReference as e:
        raise RunError(str(e)) from None
    if opts.get("pull") == "never":
        raise RunError(f"{DAEMON}No such image: {ref.familiar()}")
    err(f"Unable to find image '{ref.familiar()}' locally")
    from hutch.images import registry
    from hutch.images.store import StoreError
    store = image_store(ctx.paths)
    out = registry.Progress(sys.stderr, quiet=bool(opts.get("quiet")))
    try:
        registry.pull(store, registry.Client(ctx.paths), ref, out)
    except (registry.RegistryError, StoreError) as e:
        raise RunError(f"{DAEMON}{e}") from None


def _run_error(cmd: str, msg: str, code: int) -> int:
    if msg:
        err(f"hutch: {msg}\n\nRun 'hutch {cmd} --help' for more information")
    return code


@command
def cmd_create(ctx, argv):
    from hutch.engine import errors
    opts, args = _lazy_command("CREATE_CMD").parse(argv)
    try:
        # create records the streams a later `start -a` attaches, as run would (no -d)
        _eng, c, warnings = _create(ctx, opts, args, detach=False, cmd="create")
    except RunError as e:
        return _run_error("create", str(e), e.code)
    except errors.EngineError as e:
        return daemon_err(str(e), 1 if isinstance(e, errors.Conflict) else 125)
    for w in warnings:
        err(w)
    print(c.id)
    return 0


@command
def cmd_run(ctx, argv):
    from hutch.engine import errors
    opts, args = _lazy_command("RUN_CMD").parse(argv)
    detach = opts["detach"]
    if opts["tty"] and opts["interactive"] and not detach and not os.isatty(0):
        return err("the input device is not a TTY")
    try:
        detach_keys = _detach_keys(opts["detach-keys"])
    except ValueError as e:
        return _run_error("run", str(e), 125)
    try:
        eng, c, warnings = _create(ctx, opts, args, detach=detach, cmd="run")
    except RunError as e:
        return _run_error("run", str(e), e.code)
    except errors.EngineError as e:
        return _run_error("run", f"{DAEMON}{e}", 125)
    for w in warnings:
        err(w)
    if detach:
        try:
            eng.start(c.id)
        except errors.EngineError as e:
            return _start_failed(eng, c, "run", e)
        print(c.id)
        return 0
    return _run_attached(eng, c, opts, detach_keys)


def _start_failed(eng, c, cmd, e) -> int:
    from hutch.engine import errors
    if c.record["HostConfig"].get("AutoRemove"):
        try:
            eng.remove(c.id, force=True)
        except errors.EngineError:
            pass
    code = e.exit_code if isinstance(e, errors.ExecFailed) else 125
    return _run_error(cmd, f"{DAEMON}{e}", code)


def _run_attached(eng, c, opts, detach_keys: bytes) -> int:
    from hutch.engine import errors
    config = c.record["Config"]
    streams = {"stdin": config["AttachStdin"], "stdout": config["AttachStdout"],
               "stderr": config["AttachStderr"]}
    try:
        res = _start_streaming(eng, c, streams, detach_keys,
                               proxy=opts["sig-proxy"] and not config["Tty"])
    except errors.EngineError as e:
        return _start_failed(eng, c, "run", e)
    return _exit_code(eng, c, res, lost=125)


def _detach_keys(spec: str) -> bytes:
    """--detach-keys as bytes, Docker's ctrl-p ctrl-q when not given; raises ValueError."""
    if not spec:
        return b"\x10\x11"
    from hutch.engine.attach import parse_detach_keys
    return parse_detach_keys(spec)


def _start_streaming(eng, c, streams: dict, detach_keys: bytes, proxy: bool):
    """Start c with this process on its streams (the monitor gets our socket's peer) and
    relay them until it exits or the user detaches: the stream's Result. The start's
    EngineError is raised."""
    import _socket    # not socket: its enums (with enum's import) cost ~3 ms of each run
    from hutch.engine import attach as att
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    size = att.terminal_size(1) if c.record["Config"]["Tty"] else None
    try:
        eng.start(c.id, attach_sock=theirs, attach_opts=dict(streams, until="done"),
                  console_size=size)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return _relay(eng, c, ours, stdin=streams["stdin"], detach_keys=detach_keys, proxy=proxy)


def _relay(eng, c, sock, *, stdin: bool, detach_keys: bytes, proxy: bool, redraw=False):
    """Pump the container's streams over sock (closed after): the stream's Result. With
    proxy, the signals this process gets are sent to the container."""
    from hutch.engine import attach as att
    from hutch.engine import errors

    def forward(signum):
        try:
            eng.kill(c.id, signum)
        except errors.EngineError:
            pass    # it has exited: its exit frame is on the way
    try:
        return att.stream(sock, stdin=stdin, tty=c.record["Config"]["Tty"],
                          run_dir=eng.store.run_dir(c.id),
                          detach_keys=detach_keys if stdin else b"",
                          on_signal=forward if proxy else None, redraw=redraw)
    finally:
        sock.close()


def _exit_code(eng, c, res, *, lost: int) -> int:
    """The CLI's exit code after a relay: the container's, 0 when the user detached; when
    the stream ended without an exit frame (its monitor killed), the state's, or `lost`."""
    from hutch.engine import errors
    if res.kind == "exit":
        return res.exit_code
    if res.kind == "detached":
        return 0
    try:
        return eng.wait(c.id)
    except errors.EngineError:
        return lost


# --- start / stop / kill / pause / restart ----------------------------------------------

START_CMD = Command("start", "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", [
    Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
    _DETACH_KEYS,
    Flag("interactive", "i", help="Attach container's STDIN"),
], min_args=1)


@command
def cmd_start(ctx, argv):
    from hutch.engine import errors
    opts, args = START_CMD.parse(argv)
    eng = _engine(ctx)
    if opts["attach"] or opts["interactive"]:
        if len(args) > 1:
            return err("you cannot start and attach multiple containers at once")
        return _start_attached(ctx, eng, args[0], opts)
    failed = []
    for ref in args:
        try:
            eng.start(ref)
            print(ref)
        except errors.EngineError as e:
            daemon_err(str(e))
            failed.append(ref)
    if failed:
        return err("Error: failed to start containers: " + ", ".join(failed))
    return 0


def _start_attached(ctx, eng, ref, opts) -> int:
    from hutch.engine import errors, states
    try:
        detach_keys = _detach_keys(opts["detach-keys"])
    except ValueError as e:
        return err(str(e))
    try:
        c = eng.get(ref)
    except errors.EngineError as e:
        daemon_err(str(e))
        return err(f"Error: failed to start containers: {ref}")
    config = c.record["Config"]
    stdin = bool(opts["interactive"] and config["OpenStdin"])
    if config["Tty"] and stdin and not os.isatty(0):
        return err("the input device is not a TTY")
    if c.status in (states.RUNNING, states.PAUSED):
        return _attach_running(eng, c, stdin=stdin, detach_keys=detach_keys, proxy=True)
    try:
        res = _start_streaming(eng, c, {"stdin": stdin, "stdout": True, "stderr": True},
                               detach_keys, proxy=not config["Tty"])
    except errors.EngineError as e:
        return daemon_err(str(e), e.exit_code if isinstance(e, errors.ExecFailed) else 1)
    return _exit_code(eng, c, res, lost=1)


def _each(args, fn, *, quiet_missing=False) -> int:
    """Run fn(ref) for each container; print the ref on success; Docker's error lines."""
    from hutch.engine import errors
    rc = 0
    for ref in args:
        try:
            fn(ref)
            print(ref)
        except errors.EngineError as e:
            daemon_err(str(e))
            if not (quiet_missing and isinstance(e, errors.NotFound)
                    and str(e).startswith("No such container")):
                rc = 1
    return rc


STOP_CMD = Command("stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", [
    Flag("time", "t", "int", help="Seconds to wait before killing the container"),
    _str("signal", "s", help="Signal to send to the container"),
], min_args=1)


@command
def cmd_stop(ctx, argv):
    opts, args = STOP_CMD.parse(argv)
    eng = _engine(ctx)
    timeout = opts["time"] if "time" in opts.changed else None
    sig = None
    if opts["signal"]:
        from hutch.engine.containers import parse_signal
        sig = parse_signal(opts["signal"])
    return _each(args, lambda ref: eng.stop(ref, timeout, sig))


RESTART_CMD = Command("restart", "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", [
    Flag("time", "t", "int", help="Seconds to wait before killing the container"),
], min_args=1)


@command
def cmd_restart(ctx, argv):
    opts, args = RESTART_CMD.parse(argv)
    eng = _engine(ctx)
    timeout = opts["time"] if "time" in opts.changed else None
    return _each(args, lambda ref: eng.restart(ref, timeout))


KILL_CMD = Command("kill", "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", [
    _str("signal", "s", help="Signal to send to the container", default="KILL"),
], min_args=1)


@command
def cmd_kill(ctx, argv):
    from hutch.engine.containers import parse_signal
    opts, args = KILL_CMD.parse(argv)
    eng = _engine(ctx)
    sig = parse_signal(opts["signal"])
    return _each(args, lambda ref: eng.kill(ref, sig))


PAUSE_CMD = Command("pause", "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers", [], min_args=1)
UNPAUSE_CMD = Command("unpause", "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers", [], min_args=1)


@command
def cmd_pause(ctx, argv):
    _opts, args = PAUSE_CMD.parse(argv)
    eng = _engine(ctx)
    return _each(args, eng.pause)


@command
def cmd_unpause(ctx, argv):
    _opts, args = UNPAUSE_CMD.parse(argv)
    eng = _engine(ctx)
    return _each(args, eng.unpause)


# --- rm / wait / rename / prune ----------------------------------------------------------

RM_CMD = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", [
    Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("link", "l", help="Remove the specified link"),
    Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
], min_args=1)


@command
def cmd_rm(ctx, argv):
    opts, args = RM_CMD.parse(argv)
    if opts["link"]:
        return daemon_err("Links are not supported by hutch")
    eng = _engine(ctx)
    return _each(args, lambda ref: eng.remove(ref, force=opts["force"], volumes=opts["volumes"]),
                 quiet_missing=opts["force"])


WAIT_CMD = Command("wait", "CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes", [], min_args=1)


@command
def cmd_wait(ctx, argv):
    from hutch.engine import errors
    _opts, args = WAIT_CMD.parse(argv)
    eng = _engine(ctx)
    rc = 0
    for ref in args:
        try:
            print(eng.wait(ref), flush=True)
        except errors.EngineError as e:
            rc = daemon_err(str(e))
    return rc


RENAME_CMD = Command("rename", "CONTAINER NEW_NAME", "Rename a container", [], min_args=2, max_args=2)


@command
def cmd_rename(ctx, argv):
    _opts, args = RENAME_CMD.parse(argv)
    _engine(ctx).rename(args[0], args[1])
    return 0


PRUNE_CMD = Command("container prune", "[OPTIONS]", "Remove all stopped containers", [
    _list("filter", help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
], max_args=0)


@command
def cmd_container_prune(ctx, argv):
    opts, _args = PRUNE_CMD.parse(argv)
    if not opts["force"] and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    filters = _parse_filters(opts["filter"], ("until", "label", "label!"))
    if filters is None:
        return 1
    eng = _engine(ctx)

    def keep(c):
        return not _match_prune(c, filters)
    removed = eng.prune(keep)
    if removed:
        _out("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in removed) + "\n")
    _out("Total reclaimed space: 0B\n")
    return 0


def _match_prune(c, filters) -> bool:
    from hutch.cli import format as fmt
    from hutch.engine.logs import parse_time_arg
    for until in filters.get("until", []):
        if fmt.to_unix(c.record["Created"]) >= parse_time_arg(until):
            return False
    labels = c.record["Config"].get("Labels") or {}
    for want in filters.get("label", []):
        if not _label_match(labels, want):
            return False
    for want in filters.get("label!", []):
        if _label_match(labels, want):
            return False
    return True


def _label_match(labels: dict, want: str) -> bool:
    k, sep, v = want.partition("=")
    return k in labels and (not sep or labels[k] == v)


def _parse_filters(items, allowed) -> dict | None:
    """The filters, or None once Docker's error line for them is printed."""
    try:
        out = parse_filters(items)
    except CommandLineError as e:
        err(f"Error: {e}")
        return None
    for k in out:
        if k not in allowed:
            daemon_err(f"invalid filter '{k}'")
            return None
    return out


# --- ps ------------------------------------------------------------------------------------

PS_CMD = Command("ps", "[OPTIONS]", "List containers", [
    Flag("all", "a", help="Show all containers (default shows just running)"),
    _list("filter", "f", help="Filter output based on conditions provided"),
    _str("format", help="Format output using a custom template"),
    Flag("last", "n", "int", default=-1, help="Show n last created containers (includes all states)"),
    Flag("latest", "l", help="Show the latest created container (includes all states)"),
    Flag("no-trunc", help="Don't truncate output"),
    Flag("quiet", "q", help="Only display container IDs"),
    Flag("size", "s", help="Display total file sizes"),
], max_args=0)

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES"}
PS_FILTERS = ("status", "name", "id", "label", "label!", "exited", "ancestor", "before",
              "since", "volume", "network", "health", "isolation", "publish", "expose", "is-task")


@command
def cmd_ps(ctx, argv):
    from hutch.cli import gotemplate
    opts, _args = PS_CMD.parse(argv)
    filters = _parse_filters(opts["filter"], PS_FILTERS)
    if filters is None:
        return 1
    for s in filters.get("status", []):
        if s not in ("created", "restarting", "running", "removing", "paused", "exited", "dead"):
            return daemon_err(f"Invalid filter 'status={s}'")
    eng = _engine(ctx)
    containers = eng.list()
    show_all = opts["all"] or bool(filters.get("status")) or bool(filters.get("exited")) \
        or opts["latest"] or opts["last"] > 0
    if not show_all:
        containers = [c for c in containers if c.status in ("running", "paused", "restarting")]
    try:
        containers = [c for c in containers if _ps_match(eng, c, filters)]
    except ValueError as e:
        return daemon_err(str(e))
    if opts["latest"]:
        containers = containers[:1]
    elif opts["last"] > 0:
        containers = containers[:opts["last"]]
    trunc = not opts["no-trunc"]
    if opts["quiet"] and not opts["format"]:
        _out("".join((c.id[:12] if trunc else c.id) + "\n" for c in containers))
        return 0
    import time
    now = time.time()
    rows = [_ps_row(ctx.paths, c, trunc=trunc, size=opts["size"], now=now) for c in containers]
    template = opts["format"] or PS_TABLE + ("\t{{.Size}}" if opts["size"] else "")
    if opts["quiet"]:
        template = "{{.ID}}"
    try:
        _out(gotemplate.render_rows(template, rows, PS_HEADERS, default_table=PS_TABLE[6:]))
    except gotemplate.TemplateError as e:
        return err(f"template parsing error: {e}", 64)
    return 0


def _ps_row(paths, c, *, trunc=True, size=False, now=None) -> dict:
    from hutch.cli import format as fmt
    from hutch.engine import views
    r = c.record
    command = fmt.command_string(r["Path"], r["Args"])
    net = views.network_settings(c)
    state = views.docker_state(c)
    mounts = views.mounts(c)
    row = {
        "ID": c.id[:12] if trunc else c.id,
        "Image": r["Config"]["Image"],
        "Command": fmt.ps_command(command, trunc),
        "CreatedAt": fmt.created_at_string(r["Created"]),
        "RunningFor": fmt.ago(r["Created"], now),
        "Ports": fmt.display_ports(_port_list(net.get("Ports") or {})),
        "State": state["Status"],
        "Status": fmt.status_string(state, now),
        "Names": c.name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted((r["Config"].get("Labels") or {}).items())),
        "Mounts": ",".join(m.get("Name") or m.get("Source", "") for m in mounts),
        "Networks": ",".join(sorted((net.get("Networks") or {}).keys())),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Type") == "volume")),
        "Size": "",
    }
    if size:
        rw, root = views.sizes(paths, c)
        row["Size"] = f"{fmt.human_size(rw, 3)} (virtual {fmt.human_size(root, 3)})"
    return row


def _port_list(ports: dict) -> list[dict]:
    """NetworkSettings.Ports -> the API's list form that display_ports takes."""
    out = []
    for key, binds in (ports or {}).items():
        port, _, proto = key.partition("/")
        if not binds:
            out.append({"PrivatePort": int(port), "Type": proto})
            continue
        for b in binds:
            out.append({"IP": b.get("HostIp", ""), "PrivatePort": int(port),
                        "PublicPort": int(b["HostPort"]) if b.get("HostPort") else 0,
                        "Type": proto})
    return out


def _ps_match(eng, c, filters) -> bool:
    r = c.record
    if "status" in filters and c.status not in filters["status"]:
        return False
    if "name" in filters:
        import re
        if not any(re.search(n.lstrip("/"), c.name) for n in filters["name"]):
            return False
    if "id" in filters and not any(c.id.startswith(i) for i in filters["id"]):
        return False
    labels = r["Config"].get("Labels") or {}
    if not all(_label_match(labels, w) for w in filters.get("label", [])):
        return False
    if any(_label_match(labels, w) for w in filters.get("label!", [])):
        return False
    if "exited" in filters:
        if c.status != "exited":
            return False
        try:
            codes = {int(x) for x in filters["exited"]}
        except ValueError:
            raise ValueError(f"invalid filter 'exited={filters['exited'][0]}'") from None
        if c.state["ExitCode"] not in codes:
            return False
    if "ancestor" in filters and not any(_is_ancestor(eng, c, a) for a in filters["ancestor"]):
        return False
    for key, op in (("before", lambda a, b: a < b), ("since", lambda a, b: a > b)):
        for ref in filters.get(key, []):
            other = eng.get(ref)
            if not op(r.get("CreatedNs", 0), other.record.get("CreatedNs", 0)):
                return False
    if "volume" in filters:
        from hutch.engine import views
        names = {m.get("Name") for m in views.mounts(c)} | {m.get("Destination") for m in views.mounts(c)}
        if not any(v in names for v in filters["volume"]):
            return False
    if "network" in filters:
        from hutch.engine import views
        nets = set((views.network_settings(c).get("Networks") or {}).keys())
        mode = r["HostConfig"].get("NetworkMode")
        nets.add("bridge" if mode == "default" else mode)
        if not any(n in nets for n in filters["network"]):
            return False
    return True


def _is_ancestor(eng, c, ref: str) -> bool:
    r = c.record
    if r["Config"]["Image"] == ref or r["Image"] == ref or r["Image"].split(":")[-1].startswith(ref):
        return True
    try:
        img = image_store(eng.paths).resolve(ref)
        return img.id == r["Image"]
    except Exception:  # noqa: BLE001 - no such image: no match
        return False


# --- inspect ----------------------------------------------------------------------------------

INSPECT_CMD = Command("inspect", "[OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects", [
    _str("format", "f", help="Format output using a custom template"),
    Flag("size", "s", help="Display total file sizes if the type is container"),
    _str("type", help="Return JSON for specified type"),
], min_args=1)


@command
def cmd_inspect(ctx, argv):
    opts, args = INSPECT_CMD.parse(argv)
    return _inspect(ctx, opts, args, kinds=("container", "image") if not opts["type"]
                    else (opts["type"],), not_found="No such object")


@command
def cmd_container_inspect(ctx, argv):
    opts, args = INSPECT_CMD.parse(argv)
    return _inspect(ctx, opts, args, kinds=("container",), not_found="No such container")


def _inspect(ctx, opts, args, kinds, not_found) -> int:
    from hutch.cli import gotemplate
    from hutch.engine import errors, views
    eng = _engine(ctx)
    found = []
    missing = []
    for ref in args:
        obj = None
        if "container" in kinds:
            try:
                obj = views.inspect(ctx.paths, eng.get(ref), size=opts["size"])
            except errors.NotFound:
                obj = None
        if obj is None and "image" in kinds:
            obj = _inspect_image(ctx, ref)
        if obj is None:
            missing.append(ref)
        else:
            found.append(obj)
    rc = 0
    if opts["format"]:
        for obj in found:
            try:
                _out(gotemplate.render(opts["format"].replace("\\n", "\n").replace("\\t", "\t"), obj) + "\n")
            except gotemplate.TemplateError as e:
                return err(f"template parsing error: {e}")
    else:
        _out(_json_indent(found) + "\n")
    for ref in missing:
        rc = err(f"Error: {not_found}: {ref}")
    return rc


def _inspect_image(ctx, ref):
    from hutch.images import present
    from hutch.images import reference as refs
    from hutch.images.store import ImageNotFound
    store = image_store(ctx.paths)
    try:
        return present.inspect_dict(store, store.resolve(ref))
    except (ImageNotFound, refs.InvalidReference):
        return None


def _json_indent(obj) -> str:
    """Docker's json.MarshalIndent with 4 spaces (HTML-escaped <, >, &)."""
    text = fastjson.dumps(obj, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# --- logs ---------------------------------------------------------------------------------------

LOGS_CMD = Command("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container", [
    Flag("details", help="Show extra details provided to logs"),
    Flag("follow", "f", help="Follow log output"),
    _str("since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
    _str("tail", "n", default="all", help="Number of lines to show from the end of the logs"),
    Flag("timestamps", "t", help="Show timestamps"),
    _str("until", help="Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)"),
], min_args=1, max_args=1)


@command
def cmd_logs(ctx, argv):
    from hutch.engine import logs
    opts, args = LOGS_CMD.parse(argv)
    eng = _engine(ctx)
    c = eng.get(args[0])
    try:
        since = logs.parse_time_arg(opts["since"]) if opts["since"] else None
        until = logs.parse_time_arg(opts["until"]) if opts["until"] else None
    except ValueError as e:
        return daemon_err(str(e))
    tail = opts["tail"]
    if tail != "all":
        try:
            tail_n = int(tail)
        except ValueError:
            tail_n = -1
    else:
        tail_n = -1
    out = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    background = None
    if not opts["follow"] and logs.total_size(c.log_path) > _BACKGROUND_WRITES_FROM:
        background = _BackgroundWriter()

    def write(stream, chunks) -> None:
        f = out.get(stream, out["stdout"])
        if background is not None:
            background.put(f, chunks)
            return
        f.write(b"".join(chunks))
        f.flush()

    filtered = since is not None or until is not None
    prefixed = opts["timestamps"] or opts["details"]
    from hutch.engine.store import parse_iso

    def emit(entries) -> None:
        """Write entries, each stream's consecutive run in one write (order kept)."""
        run, run_stream, size = [], None, 0
        for stream, text, t in entries:
            if filtered:
                at = parse_iso(t)
                if (since is not None and at < since) or (until is not None and at > until):
                    continue
            if prefixed:
                text = ((logs.fixed_time(t).encode() + b" ") if opts["timestamps"] else b"") \
                    + (b" " if opts["details"] else b"") + text
            if stream != run_stream and run:
                write(run_stream, run)
                run, size = [], 0
            run_stream = stream
            run.append(text)
            size += len(text)
            if size >= 1 << 20:
                write(stream, run)
                run, size = [], 0
        if run:
            write(run_stream, run)

    if opts["follow"]:
        # the live file is read by the follower from its start, so nothing written while
        # the history is read is shown twice or lost
        follower = logs.Follower(c.log_path, start_at_end=False)
        import itertools
        entries = itertools.chain(logs.read_raw(c.log_path, rotated_only=True), follower.read_raw())
    else:
        follower = None
        entries = logs.read_raw(c.log_path)
    if tail_n >= 0:
        import collections
        entries = collections.deque(entries, maxlen=tail_n)
    try:
        emit(entries)
    finally:
        if background is not None:
            background.close()
    if follower is None:
        return 0
    try:
        follower.follow(lambda: _still_running(eng, c.id), emit)
    finally:
        follower.close()
    return 0


_BACKGROUND_WRITES_FROM = 8 << 20   # bytes of log: below, the thread costs more than it saves


class _BackgroundWriter:
    """`logs`' output written by a thread while the caller parses on: a big log's write
    into a file (the kernel's page-cache copy, 1.5-3.5 s a GiB here) then overlaps its
    parse (~2 s a GiB) instead of following it. One queue, so the order of stdout's and
    stderr's runs is kept; a write's error (EPIPE) is raised in the caller at its next
    put() or at close()."""

    def __init__(self, depth: int = 4):
        import threading
        from queue import Queue
        self._todo = Queue(maxsize=depth)       # put() waits while the writer is behind
        self.error: BaseException | None = None
        # The writer takes the GIL back sooner after each write (5 ms by default).
        sys.setswitchinterval(0.0005)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, f, chunks: list[bytes]) -> None:
        if self.error is not None:
            raise self.error
        self._todo.put((f, chunks))

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            if self.error is None:
                f, chunks = item
                try:
                    f.write(b"".join(chunks))
                    f.flush()
                except BaseException as e:   # noqa: BLE001 - the caller raises it
                    self.error = e

    def close(self) -> None:
        """Wait until everything put is written; raise a write's error."""
        self._todo.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _still_running(eng, cid: str) -> bool:
    from hutch.engine import errors, states
    try:
        return eng.get(cid).status in (states.RUNNING, states.PAUSED, states.RESTARTING)
    except errors.NotFound:
        return False


# --- attach / exec --------------------------------------------------------------------------------

ATTACH_CMD = Command("attach", "[OPTIONS] CONTAINER", "Attach local standard input, output, and error streams to a running container", [
    _DETACH_KEYS,
    Flag("no-stdin", help="Do not attach STDIN"),
    Flag("sig-proxy", default=True, help="Proxy all received signals to the process"),
], min_args=1, max_args=1)


@command
def cmd_attach(ctx, argv):
    from hutch.engine import errors, states
    opts, args = ATTACH_CMD.parse(argv)
    eng = _engine(ctx)
    try:
        c = eng.get(args[0])
        states.check("attach", c.status, cid=c.id, ref=args[0], name=c.name)
    except errors.NotFound as e:
        return daemon_err(str(e))
    except errors.EngineError as e:
        return err(str(e))
    if c.status == states.PAUSED:
        return err("You cannot attach to a paused container, unpause it first")
    try:
        detach_keys = _detach_keys(opts["detach-keys"])
    except ValueError as e:
        return err(str(e))
    config = c.record["Config"]
    stdin = config["OpenStdin"] and not opts["no-stdin"]
    if config["Tty"] and stdin and not os.isatty(0):
        return err("the input device is not a TTY")
    return _attach_running(eng, c, stdin=stdin, detach_keys=detach_keys,
                           proxy=opts["sig-proxy"] and not config["Tty"])


def _attach_running(eng, c, *, stdin: bool, detach_keys: bytes, proxy: bool) -> int:
    from hutch.engine.monitor import connect
    try:
        sock = connect(eng.store.run_dir(c.id))
    except OSError:
        return daemon_err(f"container {c.id} has no monitor: its output cannot be attached")
    sock.sendall(fastjson.dumps({"op": "attach", "stdin": stdin, "stdout": True, "stderr": True,
                             "until": "exited"}).encode() + b"\n")
    res = _relay(eng, c, sock, stdin=stdin, detach_keys=detach_keys, proxy=proxy, redraw=True)
    if res.kind == "detached":
        return err("read escape sequence")
    return _exit_code(eng, c, res, lost=1)


# exec's flags: run's process flags, and two of its own
_EXEC_SHARED = ("detach-keys", "env", "env-file", "interactive", "tty", "user", "workdir")
EXEC_CMD = Command("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container", [
    Flag("detach", "d", help="Detached mode: run command in the background"),
    Flag("privileged", help="Give extended privileges to the command"),
] + [f for f in CREATE_BASE_FLAGS if f.long in _EXEC_SHARED], interspersed=False, min_args=2)


@command
def cmd_exec(ctx, argv):
    from hutch.engine import errors
    from hutch.engine import spec as specmod
    opts, args = EXEC_CMD.parse(argv)
    if opts["tty"] and opts["interactive"] and not opts["detach"] and not os.isatty(0):
        return err("the input device is not a TTY")
    eng = _engine(ctx)
    try:
        c = eng.check_exec(args[0])
        env = []
        for path in opts["env-file"]:
            env += specmod.read_env_file(path)
        env += opts["env"]
        proc = eng.exec_spec(c, args[1:], tty=opts["tty"], user=opts["user"] or "",
                             workdir=opts["workdir"] or "", env=env,
                             privileged=opts["privileged"])
    except errors.EngineError as e:
        return daemon_err(str(e), 126 if isinstance(e, errors.InvalidParameter) else 1)
    except ValueError as e:
        return daemon_err(str(e), 126)
    from hutch.engine import execs
    return execs.run(ctx.paths, c, proc, detach=opts["detach"], tty=opts["tty"],
                     interactive=opts["interactive"])


# --- top / stats / port / update / export ------------------------------------------------------

TOP_CMD = Command("top", "CONTAINER [ps OPTIONS]", "Display the running processes of a container", [],
                  interspersed=False, min_args=1)


@command
def cmd_top(ctx, argv):
    from hutch.engine import states
    _opts, args = TOP_CMD.parse(argv)
    c = _engine(ctx).get(args[0])
    states.check("top", c.status, cid=c.id, ref=args[0], name=c.name)
    from hutch.runtime import container as rt
    pids = rt.ps(ctx.paths.runtime_state, c.id)
    from hutch.cli.ps_table import PsFailed, ps_lines
    try:
        found = ps_lines(pids, args[1:])
    except OSError as e:
        return daemon_err(f"ps: {e}")
    except PsFailed as e:
        return daemon_err(f"Error running ps: exit status {e.returncode}: {e.stderr}"
                          if e.returncode else "Couldn't find PID field in ps output")
    if not found:
        return 0
    header = found[0].split()
    rows = [line.split(None, len(header) - 1) for line in found[1]]
    from hutch.cli import format as fmt
    text = "\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows)
    _out(fmt.tabwrite(text, minwidth=20, padding=1))
    return 0


STATS_CMD = Command("stats", "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics", [
    Flag("all", "a", help="Show all containers (default shows just running)"),
    _str("format", help="Pretty-print images using a Go template"),
    Flag("no-stream", help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", help="Do not truncate output"),
])

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


@command
def cmd_stats(ctx, argv):
    from hutch.cli import gotemplate
    from hutch.engine import stats
    opts, args = STATS_CMD.parse(argv)
    eng = _engine(ctx)
    if args:
        targets = [eng.get(ref) for ref in args]
    else:
        targets = [c for c in eng.list() if opts["all"] or c.status in ("running", "paused")]
    headers = {**STATS_HEADERS, **stats.PRESSURE_HEADERS}
    sampler = stats.Sampler(ctx.paths)
    import time
    while True:
        rows = []
        psi = False     # cgroup v2: the default table grows the PSI columns
        for i, (c, raw) in enumerate(zip(targets, sampler.rows(targets))):
            row = _stats_row(c, raw)
            row.update(stats.pressure_fields(raw))
            psi = psi or bool(raw and raw.get("pressure"))
            row["ID"] = c.id if opts["no-trunc"] else c.id[:12]
            row["Container"] = args[i] if args else row["ID"]
            rows.append(row)
        table = STATS_TABLE + (stats.PRESSURE_COLUMNS if psi else "")
        template = opts["format"] or table
        try:
            text = gotemplate.render_rows(template, rows, headers, default_table=table[6:])
        except gotemplate.TemplateError as e:
            return err(f"template parsing error: {e}", 64)
        if opts["no-stream"]:
            _out(text)
            return 0
        _out("\033[2J\033[H" + text)
        time.sleep(1)
        targets = [eng.get(c.id) for c in targets]


def _stats_row(c, raw) -> dict:
    from hutch.cli import format as fmt
    if raw is None:
        return {"Name": c.name, "CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%",
                "NetIO": "0B / 0B", "BlockIO": "0B / 0B", "PIDs": "0"}
    limit = raw["mem_limit"]
    return {
        "Name": c.name, "CPUPerc": fmt.percent(raw["cpu_pct"]),
        "MemUsage": f"{fmt.bytes_size(raw['mem_usage'])} / {fmt.bytes_size(limit)}",
        "MemPerc": fmt.percent(raw["mem_usage"] / limit * 100 if limit else 0),
        "NetIO": f"{fmt.human_size(raw['net_rx'], 3)} / {fmt.human_size(raw['net_tx'], 3)}",
        "BlockIO": f"{fmt.human_size(raw['blk_read'], 3)} / {fmt.human_size(raw['blk_write'], 3)}",
        "PIDs": str(raw["pids"]),
    }


PORT_CMD = Command("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container", [],
                   min_args=1, max_args=2)


@command
def cmd_port(ctx, argv):
    from hutch.engine import views
    _opts, args = PORT_CMD.parse(argv)
    c = _engine(ctx).get(args[0])
    ports = views.network_settings(c).get("Ports") or {}
    if len(args) == 2:
        port, _, proto = args[1].partition("/")
        key = f"{port}/{proto or 'tcp'}"
        binds = ports.get(key)
        if not binds:
            return err(f"Error: No public port '{key}' published for {args[0]}")
        _out("".join(f"{_host_port(b)}\n" for b in binds))
        return 0
    lines = []
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k)):
        for b in ports[key] or []:
            lines.append(f"{key} -> {_host_port(b)}\n")
    _out("".join(lines))
    return 0


def _host_port(b: dict) -> str:
    ip = b.get("HostIp") or "0.0.0.0"
    return f"[{ip}]:{b['HostPort']}" if ":" in ip else f"{ip}:{b['HostPort']}"


@command
def cmd_update(ctx, argv):
    from hutch.engine import errors
    from hutch.engine.resources import UPDATE_FLAGS
    opts, args = _lazy_command("UPDATE_CMD").parse(argv)
    if not opts.changed:
        return err("you must provide one or more flags when using this command")
    restart = None
    if "restart" in opts.changed:
        try:
            restart = _restart_policy(opts["restart"])
        except RunError as e:
            return err(str(e))
    flags = {k: opts[k] for k in opts.changed if k in UPDATE_FLAGS}
    eng = _engine(ctx)
    rc = 0
    for ref in args:
        try:
            _c, warnings = eng.update(ref, flags, restart)
            for w in warnings:
                err(w)
            print(ref)
        except errors.EngineError as e:
            rc = daemon_err(str(e))
        except Exception as e:  # noqa: BLE001 - runtime/cgroup failure: one line
            rc = daemon_err(f"Cannot update container {ref}: {e}")
    return rc


EXPORT_CMD = Command("export", "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive", [
    _str("output", "o", help="Write to a file, instead of STDOUT"),
], min_args=1, max_args=1)


@command
def cmd_export(ctx, argv):
    opts, args = EXPORT_CMD.parse(argv)
    if not opts["output"] and os.isatty(1):
        return err("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    from hutch.engine import export
    eng = _engine(ctx)
    if opts["output"]:
        with open(opts["output"], "wb") as f:
            export.export(eng, args[0], f)
    else:
        export.export(eng, args[0], sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return 0


DIFF_CMD = Command("diff", "CONTAINER",
                   "Inspect changes to files or directories on a container's filesystem", [],
                   min_args=1, max_args=1)


@command
def cmd_diff(ctx, argv):
    from hutch.engine import diff
    _opts, args = DIFF_CMD.parse(argv)
    c = _engine(ctx).get(args[0])
    found = diff.changes(ctx.paths, c.id)
    _out("".join(f"{kind} {path}\n" for kind, path in found))
    return 0


def __getattr__(name):
    if name in ("CREATE_FLAGS", "RUN_CMD", "CREATE_CMD", "UPDATE_CMD"):
        return _lazy_command(name)
    raise AttributeError(name)
