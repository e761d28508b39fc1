"""hutch-runtime's commands other than the container lifecycle's (create, run, start, state,
kill, delete): runtime_main imports this module only when one of them is called, so that
`run` loads only the code it executes."""
from __future__ import annotations

import os
import sys

from hutch.cli.runtime_main import (Args, UsageError, _ExecFailure, _Failure, _need_id,
                                    _print_json)
from hutch.runtime.errors import RuntimeFailure


def cmd_spec(root, argv):
    import json
    from hutch.oci.runtime_spec import example_config
    a = Args(argv, {"bundle": "value", "b": "value:bundle", "rootless": "bool"})
    path = os.path.join(a.get("bundle", "."), "config.json")
    if os.path.exists(path):
        raise _Failure("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        json.dump(example_config(bool(a.get("rootless"))), f, indent="\t")
    return 0


def cmd_list(root, argv):
    from hutch.runtime import container
    a = Args(argv, {"format": "value", "f": "value:format", "quiet": "bool", "q": "bool:quiet"})
    items = container.list_containers(root)
    if a.get("quiet"):
        for c in items:
            print(c["id"])
    elif a.get("format", "table") == "json":
        _print_json(items)
        print()
    elif a.get("format", "table") == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(c["id"], str(c["pid"]), c["status"], c["bundle"], c["created"],
                  c["owner"] or "root") for c in items]
        # Go's tabwriter as runc sets it up: min width 12, padding 3.
        widths = [max(12, 3 + max(len(r[i]) for r in rows)) for i in range(5)]
        for r in rows:
            print("".join(r[i].ljust(widths[i]) for i in range(5)) + r[5])
    else:
        raise UsageError(f"invalid format option {a.get('format')!r}")
    return 0


def cmd_pause(root, argv):
    from hutch.runtime import container
    container.pause(root, _need_id(Args(argv, {}), "pause"))
    return 0


def cmd_resume(root, argv):
    from hutch.runtime import container
    container.resume(root, _need_id(Args(argv, {}), "resume"))
    return 0


def cmd_ps(root, argv):
    from hutch.runtime import container
    a = Args(argv, {"format": "value", "f": "value:format"}, stop_at_positional=1)
    cid = _need_id(a, "ps", extra_ok=True)
    pids = container.ps(root, cid)
    fmt = a.get("format", "table")
    if fmt == "json":
        _print_json(pids)
        print()
        return 0
    if fmt != "table":
        raise UsageError(f"invalid format option {fmt!r}")
    from hutch.cli.ps_table import PsFailed, ps_lines
    try:
        found = ps_lines(pids, a.positional[1:])
    except PsFailed as e:
        raise _Failure(f"ps: {e.stderr}" if e.returncode else "couldn't find PID field in ps output")
    if found:
        print(found[0])
        for line in found[1]:
            print(line)
    return 0


def cmd_exec(root, argv):
    import json
    from hutch.runtime import container
    a = Args(argv, {"process": "value", "p": "value:process", "tty": "bool", "t": "bool:tty",
                    "detach": "bool", "d": "bool:detach", "pid-file": "value",
                    "console-socket": "value", "cwd": "value", "env": "multi",
                    "e": "multi:env", "user": "value", "u": "value:user",
                    "preserve-fds": "value", "no-new-privs": "bool", "cap": "multi",
                    "c": "multi:cap", "additional-gids": "multi", "g": "multi:additional-gids"},
             stop_at_positional=1)
    cid = _need_id(a, "exec", extra_ok=True)
    if a.get("process"):
        try:
            with open(a.get("process")) as f:
                spec = json.load(f)
        except (OSError, ValueError) as e:
            raise _Failure(f"exec failed: reading process file: {e}")
    else:
        if len(a.positional) < 2:
            raise UsageError("exec args cannot be empty")
        spec = container.process_from_args(root, cid, a.positional[1:], cwd=a.get("cwd"),
                                           env=a.get("env", []), user=a.get("user"),
                                           terminal=bool(a.get("tty")))
        if a.get("no-new-privs"):
            spec["noNewPrivileges"] = True
        if a.get("additional-gids"):
            spec.setdefault("user", {})["additionalGids"] = [int(g) for g in
                                                             a.get("additional-gids")]
        if a.get("cap"):
            caps = spec.setdefault("capabilities", {})
            for s in ("bounding", "effective", "permitted", "inheritable", "ambient"):
                caps[s] = list(dict.fromkeys(list(caps.get(s) or []) + a.get("cap")))
    try:
        result = container.exec_process(
            root, cid, spec, detach=bool(a.get("detach")),
            console_socket=a.get("console-socket"), pid_file=a.get("pid-file"),
            preserve_fds=int(a.get("preserve-fds", "0")))
    except RuntimeFailure as e:
        raise _ExecFailure(f"exec failed: {e}") from None
    return 0 if a.get("detach") else result


_UPDATE_FLAGS = {
    "resources": "value", "r": "value:resources", "memory": "value", "memory-swap": "value",
    "memory-reservation": "value", "cpu-shares": "value", "cpu-period": "value",
    "cpu-quota": "value", "cpu-rt-period": "value", "cpu-rt-runtime": "value",
    "cpuset-cpus": "value", "cpuset-mems": "value", "pids-limit": "value",
    "blkio-weight": "value",
}


def _bytes(text: str) -> int:
    """runc's RAMInBytes: 512, 64k, 100m, 1g (binary units); -1 is unlimited."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = t.removesuffix("ib").removesuffix("b") if t[-1:] == "b" and t[-2:-1].isalpha() else t
    mult = units.get(t[-1:], None)
    try:
        return int(float(t[:-1]) * mult) if mult else int(t)
    except ValueError:
        raise UsageError(f"invalid value {text!r}") from None


def cmd_update(root, argv):
    import json
    from hutch.runtime import container
    a = Args(argv, _UPDATE_FLAGS)
    cid = _need_id(a, "update")
    res: dict = {}
    src = a.get("resources")
    if src:
        try:
            res = json.load(sys.stdin) if src == "-" else json.load(open(src))
        except (OSError, ValueError) as e:
            raise _Failure(f"unable to read resources: {e}")
    mem = res.setdefault("memory", {})
    cpu = res.setdefault("cpu", {})
    for flag, section, key, conv in (
            ("memory", mem, "limit", _bytes), ("memory-swap", mem, "swap", _bytes),
            ("memory-reservation", mem, "reservation", _bytes),
            ("cpu-shares", cpu, "shares", int), ("cpu-period", cpu, "period", int),
            ("cpu-quota", cpu, "quota", int), ("cpu-rt-period", cpu, "realtimePeriod", int),
            ("cpu-rt-runtime", cpu, "realtimeRuntime", int), ("cpuset-cpus", cpu, "cpus", str),
            ("cpuset-mems", cpu, "mems", str)):
        if a.get(flag) is not None:
            try:
                section[key] = conv(a.get(flag))
            except ValueError:
                raise UsageError(f"invalid value {a.get(flag)!r} for flag --{flag}") from None
    if a.get("pids-limit") is not None:
        res["pids"] = {"limit": int(a.get("pids-limit"))}
    if a.get("blkio-weight") is not None:
        res["blockIO"] = {"weight": int(a.get("blkio-weight"))}
    res = {k: v for k, v in res.items() if v != {}}
    container.update(root, cid, res)
    return 0


def _parse_duration(text: str) -> float:
    import re
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid duration {text!r}")
    for number, unit in parts:
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def cmd_events(root, argv):
    import json
    import select
    from hutch.runtime import container
    a = Args(argv, {"stats": "bool", "interval": "value"})
    cid = _need_id(a, "events")
    interval = _parse_duration(a.get("interval", "5s"))
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    state = container.state(root, cid)
    if state["status"] == "stopped":
        raise _Failure("container with id " + cid + " is not running")

    def emit(kind, data=None):
        event = {"type": kind, "id": cid}
        if data is not None:
            event["data"] = data
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    if a.get("stats"):
        emit("stats", container.stats(root, cid))
        return 0
    pidfd = os.pidfd_open(state["pid"])
    ooms = None
    try:
        while True:
            stats = container.stats(root, cid)
            oom = (stats.get("memory") or {}).get("oom_kill") or 0
            if ooms is not None and oom > ooms:
                emit("oom")
            ooms = oom
            emit("stats", stats)
            if select.select([pidfd], [], [], interval)[0]:
                return 0
    finally:
        os.close(pidfd)
