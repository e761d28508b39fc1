"""`volume create|ls|inspect|rm|prune`, `cp`, `system df|prune`. Thin: parse flags, call
hutch.engine.volumestore / hutch.engine.volumes, print as Docker does."""
from __future__ import annotations

import json
import sys

from hutch.cli.flags import Command, CommandLineError, Flag

ERR = 1   # Docker's CLI exits 1 when the daemon reports an error


def _err(msg: str, code: int = ERR) -> int:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    return code


def _store(ctx):
    from hutch.engine.volumestore import VolumeStore
    return VolumeStore(ctx.paths)


def _key_values(items: list[str]) -> dict:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def _filters(items: list[str]) -> dict[str, list[str]]:
    """`-f key=value` -> {key: [values]} (the CLI's own check, then the daemon's)."""
    out: dict[str, list[str]] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise CommandLineError("bad format of filter (expected name=value)", ERR)
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


def _template_err(e) -> int:
    if e.parse:
        return _err(f"template parsing error: {e}", 125)
    return _err(str(e))


def _confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


# --- volume create ------------------------------------------------------------------------
CREATE = Command("volume create", "[OPTIONS] [VOLUME]", "Create a volume", [
    Flag("driver", "d", "string", "local", "Specify volume driver name"),
    Flag("label", None, "list", [], "Set metadata for a volume"),
    Flag("name", None, "string", "", "Specify volume name", hidden=True),
    Flag("opt", "o", "list", [], "Set driver specific options", metavar="map"),
], max_args=1)


def cmd_volume_create(ctx, argv) -> int:
    try:
        opts, args = CREATE.parse(argv)
        if args and opts["name"] and args[0] != opts["name"]:
            raise CommandLineError("Conflicting options: either specify --name or provide "
                                   "positional arg, not both", ERR)
    except CommandLineError as e:
        return e.report()
    from hutch.engine.volumestore import VolumeError
    name = args[0] if args else opts["name"]
    if opts["driver"] != "local":
        d = opts["driver"]
        return _err(f"Error response from daemon: create {name}: error looking up volume "
                    f'plugin {d}: plugin "{d}" not found')
    try:
        v = _store(ctx).create(name or None, labels=_key_values(opts["label"]),
                               options=_key_values(opts["opt"]))
    except VolumeError as e:
        return _err(f"Error response from daemon: {e}")
    print(v.name)
    return 0


# --- volume ls ----------------------------------------------------------------------------
LS = Command("volume ls", "[OPTIONS]", "List volumes", [
    Flag("filter", "f", "list", [], "Provide filter values (e.g. \"dangling=true\")",
         metavar="filter"),
    Flag("format", None, "string", "", "Format output using a custom template"),
    Flag("quiet", "q", "bool", False, "Only display volume names"),
], max_args=0, aliases=["docker volume ls, docker volume list"])

_LS_TABLE = "{{.Driver}}\t{{.Name}}"
_LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
               "Size": "SIZE", "CreatedAt": "CREATED"}


def _ls_row(v) -> dict:
    labels = v.labels or {}
    return {"Name": v.name, "Driver": "local", "Scope": "local", "Mountpoint": v.mountpoint,
            "Labels": ",".join(f"{k}={labels[k]}" for k in sorted(labels)),
            "Links": "N/A", "Size": "N/A", "CreatedAt": v.created_at}


def cmd_volume_ls(ctx, argv) -> int:
    try:
        opts, _ = LS.parse(argv)
        filters = _filters(opts["filter"])
    except CommandLineError as e:
        return e.report()
    from hutch.engine.volumestore import VolumeError, match_filters, validate_filters
    try:
        validate_filters(filters)
        vols = [v for v in _store(ctx).list() if match_filters(v, filters)]
    except VolumeError as e:
        return _err(f"Error response from daemon: {e}")
    if opts["quiet"]:
        sys.stdout.write("".join(v.name + "\n" for v in vols))
        return 0
    fmt = opts["format"] or "table"
    from hutch.cli.gotemplate import TemplateError, render_rows
    try:
        sys.stdout.write(render_rows(fmt, [_ls_row(v) for v in vols], _LS_HEADERS,
                                     default_table=_LS_TABLE))
    except TemplateError as e:
        return _template_err(e)
    return 0


# --- volume inspect -----------------------------------------------------------------------
INSPECT = Command("volume inspect", "[OPTIONS] VOLUME [VOLUME...]",
                  "Display detailed information on one or more volumes", [
                      Flag("format", "f", "string", "", "Format output using a custom template"),
                  ], min_args=1)


def cmd_volume_inspect(ctx, argv) -> int:
    try:
        opts, args = INSPECT.parse(argv)
    except CommandLineError as e:
        return e.report()
    from hutch.cli.gotemplate import TemplateError, parse
    from hutch.engine.volumestore import VolumeError
    try:
        tmpl = parse(opts["format"]) if opts["format"] else None
    except TemplateError as e:
        return _template_err(e)
    store = _store(ctx)
    found, errors = [], []
    for name in args:
        try:
            found.append(store.get(name).inspect())
        except VolumeError as e:
            errors.append(f"Error response from daemon: {e}")
    if tmpl is not None:
        try:
            for obj in found:
                sys.stdout.write(tmpl.execute(obj) + "\n")
        except TemplateError as e:
            return _template_err(e)
    else:
        sys.stdout.write(_go_json_indent(found) + "\n")
    if errors:
        return _err("\n".join(errors))
    return 0


def _go_json_indent(obj) -> str:
    """Go's json.MarshalIndent(v, "", "    ") as Docker's inspect prints it (a volume's
    fields are in alphabetical order, as Go's maps are)."""
    if obj == []:
        return "[]"
    return json.dumps(obj, indent=4, ensure_ascii=False, sort_keys=True).replace("<", "\\u003c") \
        .replace(">", "\\u003e").replace("&", "\\u0026")


# --- volume rm ----------------------------------------------------------------------------
RM = Command("volume rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes. You "
             "cannot remove a volume that is in use by a container.", [
                 Flag("force", "f", "bool", False, "Force the removal of one or more volumes"),
             ], min_args=1, aliases=["docker volume rm, docker volume remove"])


def cmd_volume_rm(ctx, argv) -> int:
    try:
        opts, args = RM.parse(argv)
    except CommandLineError as e:
        return e.report()
    from hutch.engine.volumestore import VolumeError
    store = _store(ctx)
    errors = []
    for name in args:
        try:
            store.remove(name, force=opts["force"])
        except (VolumeError, OSError) as e:
            errors.append(f"Error response from daemon: {e}")
            continue
        print(name)
    if errors:
        return _err("\n".join(errors))
    return 0


# --- volume prune -------------------------------------------------------------------------
PRUNE = Command("volume prune", "[OPTIONS]", "Remove all unused local volumes", [
    Flag("filter", None, "list", [], "Provide filter values (e.g. \"label=<label>\")",
         metavar="filter"),
    Flag("force", "f", "bool", False, "Do not prompt for confirmation"),
], max_args=0)

VOLUME_PRUNE_WARNING = ("WARNING! This will remove all local volumes not used by at least one "
                        "container.")


def prune_volumes(ctx, filters: dict[str, list[str]] | None = None) -> tuple[str, int]:
    """Docker 20.10's volume prune: every unused local volume, named or anonymous
    (Docker 23+ keeps named ones unless --all). Returns (output block, bytes reclaimed)."""
    removed, reclaimed = _store(ctx).prune(filters)
    out = "Deleted Volumes:\n" + "".join(n + "\n" for n in removed) if removed else ""
    return out, reclaimed


def cmd_volume_prune(ctx, argv) -> int:
    try:
        opts, _ = PRUNE.parse(argv)
        filters = _filters(opts["filter"])
    except CommandLineError as e:
        return e.report()
    from hutch.cli.format import human_size
    from hutch.engine.volumestore import VolumeError
    if not opts["force"] and not _confirm(VOLUME_PRUNE_WARNING):
        return 0
    try:
        out, reclaimed = prune_volumes(ctx, filters)
    except VolumeError as e:
        return _err(f"Error response from daemon: {e}")
    if out:
        sys.stdout.write(out + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
