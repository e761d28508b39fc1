"""The one place Docker options become an OCI runtime-spec config.json.

Two steps, because some inputs exist only when the container starts:
  build(record, image_config, ...)  at create: process, env, hostname, namespaces, cgroup
                                    path, and what the resource/security/volume modules add
  finalize(spec, rootfs, ...)       at each start: the root path, the /etc files from the
                                    network, the network namespace
"""
from __future__ import annotations

import os

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_BINARIES = ("docker-init", "tini", "tini-static", "catatonit")
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"


def find_init() -> str | None:
    """The host's init for --init (Docker ships docker-init, a tini)."""
    import shutil
    for name in INIT_BINARIES:
        path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/libexec/docker:/usr/sbin:/sbin")
        if path:
            return path
    return None


def split_hostname(hostname: str) -> tuple[str, str]:
    """Docker's CLI splits -h a.b.c into Hostname "a" and Domainname "b.c"."""
    host, _, domain = hostname.partition(".")
    return host, domain


def merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    """Image env overridden by the user's, order kept (Docker's ReplaceOrAppendEnvValues)."""
    out: list[str] = list(image_env or [])
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for e in user_env:
        key = e.split("=", 1)[0]
        if key in index:
            out[index[key]] = e
        else:
            index[key] = len(out)
            out.append(e)
    return out


def resolve_env_args(values: list[str], environ=None) -> list[str]:
    """-e K=V as given; -e K takes the caller's value, or is dropped if unset (Docker)."""
    environ = os.environ if environ is None else environ
    out = []
    for v in values:
        if "=" in v:
            if v.startswith("="):
                raise ValueError(f"invalid environment variable: {v}")
            out.append(v)
        elif v in environ:
            out.append(f"{v}={environ[v]}")
    return out


def read_env_file(path: str) -> list[str]:
    """--env-file: K=V lines; # comments and blank lines skipped; bare K from the caller."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"open {path}: {e.strerror.lower()}") from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            if " " in line or "\t" in line:
                raise ValueError(f"variable '{line}' contains whitespaces")
        out.append(line)
    return resolve_env_args(out)


def command_line(image_config: dict, entrypoint: list[str] | None, cmd: list[str]) -> list[str]:
    """Entrypoint + Cmd as Docker composes them. entrypoint None: the image's; [] reset."""
    if entrypoint is None:
        ep = list(image_config.get("Entrypoint") or [])
        args = list(cmd) if cmd else list(image_config.get("Cmd") or [])
    else:
        ep = entrypoint
        args = list(cmd)   # an --entrypoint given drops the image's Cmd
    return ep + args


def container_env(config: dict, hostname: str) -> list[str]:
    """The process env: PATH (unless set), HOSTNAME, TERM for a tty, then Config.Env."""
    env = config.get("Env") or []
    keys = {e.split("=", 1)[0] for e in env}
    out = []
    if "PATH" not in keys:
        out.append(f"PATH={DEFAULT_PATH}")
    out.append(f"HOSTNAME={hostname}")
    if config.get("Tty") and "TERM" not in keys:
        out.append("TERM=xterm")
    return out + list(env)


def build(cid: str, record: dict, *, base: dict, cgroups_path: str) -> dict:
    """The config.json for a container record, without the per-start parts (see finalize).

    base: the spec from hutch.oci.defaults (and the security module's changes).
    """
    from hutch import fastjson
    config = record["Config"]
    spec = fastjson.loads(fastjson.dumps(base))   # a deep copy (JSON through and through):
    #                                       copy's import, with weakref, was ~0.9 ms of each create
    proc = spec["process"]
    args = [record["Path"]] + list(record["Args"])
    init = record.get("HutchInit")
    if init:
        args = [INIT_PATH_IN_CONTAINER, "--"] + args
        spec["mounts"].append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind",
                               "source": init, "options": ["bind", "ro"]})
    proc["args"] = args
    proc["terminal"] = bool(config.get("Tty"))
    hostname = config.get("Hostname") or cid[:12]
    proc["env"] = container_env(config, hostname)
    proc["cwd"] = config.get("WorkingDir") or "/"
    if any(n["type"] == "uts" for n in spec["linux"]["namespaces"]):
        spec["hostname"] = hostname          # --uts=host: the host's, left alone
        if config.get("Domainname"):
            spec["domainname"] = config["Domainname"]
    else:
        spec.pop("hostname", None)
    spec["linux"]["cgroupsPath"] = cgroups_path
    spec["annotations"] = {"org.hutch.container.id": cid}
    return spec


def finalize(spec: dict, rootfs: str, *, etc_files: dict[str, str] | None = None,
             netns_path: str | None = None) -> dict:
    """Per-start parts: root path, /etc/{hosts,resolv.conf,hostname} binds, netns; `spec`
    (this start's fresh copy of oci.json) is changed in place and returned.
    (The user is resolved by hutch.engine.security in the mounted rootfs.)"""
    spec["root"] = {"path": rootfs, "readonly": spec.get("root", {}).get("readonly", False)}
    for dest, src in sorted((etc_files or {}).items()):
        spec["mounts"].append({"destination": dest, "type": "bind", "source": src,
                               "options": ["rbind", "rprivate"]})
    if netns_path:
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = netns_path
    return spec
