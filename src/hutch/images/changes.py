"""`--change` instructions (Dockerfile syntax) applied to an image config's "config" section,
as `docker import -c` and `docker commit -c` take them."""
from __future__ import annotations

import json
import posixpath
import shlex

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


class ChangeError(ValueError):
    pass


def _json_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            v = json.loads(rest)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return ["/bin/sh", "-c", rest]


def _pairs(instr: str, rest: str) -> list[tuple[str, str]]:
    """ENV/LABEL: `k=v k2="v 2"` or the legacy `k value with spaces`."""
    rest = rest.strip()
    if not rest:
        raise ChangeError(f"{instr} requires at least one argument")
    first = rest.split(None, 1)[0]
    if "=" not in first:
        parts = rest.split(None, 1)
        if len(parts) < 2:
            raise ChangeError(f"{instr} must have two arguments")
        return [(parts[0], parts[1])]
    out = []
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise ChangeError(f"{instr}: {e}") from None
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise ChangeError(f"Syntax error - can't find = in {w!r}. Must be of the form: "
                              "name=value")
        out.append((k, v))
    return out


def _ports(words: list[str]) -> list[str]:
    out = []
    for w in words:
        port, _, proto = w.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise ChangeError(f"invalid proto: {proto}")
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ChangeError(f"invalid containerPort: {port}")
        for p in range(int(lo), int(hi or lo) + 1):
            out.append(f"{p}/{proto}")
    return out


def apply_changes(cfg: dict, changes: list[str]) -> dict:
    """Apply each instruction to cfg (an image config's "config" dict, changed in place)."""
    for line in changes:
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        instr = word.upper()
        rest = rest.strip()
        if instr not in ALLOWED:
            raise ChangeError(f"{word} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest)
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(instr, rest):
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(instr, rest))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in _ports(rest.split()):
                ports[p] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            paths = _json_or_shell(rest)
            paths = paths if paths[:2] != ["/bin/sh", "-c"] else rest.split()
            for v in paths:
                if not v:
                    raise ChangeError("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "WORKDIR":
            if not rest:
                raise ChangeError("WORKDIR requires exactly one argument")
            cfg["WorkingDir"] = posixpath.join("/", cfg.get("WorkingDir") or "/", rest)
        elif instr == "USER":
            if not rest:
                raise ChangeError("USER requires exactly one argument")
            cfg["User"] = rest
        elif instr == "STOPSIGNAL":
            if not rest:
                raise ChangeError("STOPSIGNAL requires exactly one argument")
            cfg["StopSignal"] = rest
        elif instr == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
    return cfg
