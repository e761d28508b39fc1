"""`volume create|ls|inspect|rm|prune`, `cp`, `system df|prune`. Thin: parse flags, call
hutch.engine.volumestore / hutch.engine.volumes, print as Docker does."""
from __future__ import annotations

import json
import os
import sys

from hutch.cli.common import (DAEMON, command, confirm, daemon_err, err, image_store,
                              key_values, parse_filters, print_rows, template_error)
from hutch.cli.flags import Command, Flag

def _store(ctx):
    from hutch.engine.volumestore import VolumeStore
    return VolumeStore(ctx.paths)


# --- volume create ------------------------------------------------------------------------
CREATE = Command("volume create", "[OPTIONS] [VOLUME]", "Create a volume", [
    Flag("driver", "d", "string", "local", "Specify volume driver name"),
    Flag("label", None, "list", [], "Set metadata for a volume"),
    Flag("name", None, "string", "", "Specify volume name", hidden=True),
    Flag("opt", "o", "list", [], "Set driver specific options", metavar="map"),
], max_args=1)


@command
def cmd_volume_create(ctx, argv) -> int:
    opts, args = CREATE.parse(argv)
    if args and opts["name"] and args[0] != opts["name"]:
        return err("Conflicting options: either specify --name or provide positional arg, "
                   "not both")
    from hutch.engine.volumestore import VolumeError
    name = args[0] if args else opts["name"]
    if opts["driver"] != "local":
        d = opts["driver"]
        return daemon_err(f'create {name}: error looking up volume plugin {d}: plugin "{d}" '
                          "not found")
    try:
        v = _store(ctx).create(name or None, labels=key_values(opts["label"]),
                               options=key_values(opts["opt"]))
    except VolumeError as e:
        return daemon_err(str(e))
    print(v.name)
    return 0


# --- volume ls ----------------------------------------------------------------------------
LS = Command("volume ls", "[OPTIONS]", "List volumes", [
    Flag("filter", "f", "list", [], "Provide filter values (e.g. \"dangling=true\")",
         metavar="filter"),
    Flag("format", None, "string", "", "Format output using a custom template"),
    Flag("quiet", "q", "bool", False, "Only display volume names"),
], max_args=0, aliases=["hutch volume ls, hutch volume list"])

_LS_TABLE = "{{.Driver}}\t{{.Name}}"
_LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
               "Size": "SIZE", "CreatedAt": "CREATED"}


def _natural_key(name: str) -> list:
    """The CLI's sortorder.NaturalLess: digit runs compare as numbers (vol2 < vol10)."""
    import re
    return [(0, int(p), p) if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p]


def _ls_row(v) -> dict:
    labels = v.labels or {}
    return {"Name": v.name, "Driver": "local", "Scope": "local", "Mountpoint": v.mountpoint,
            "Labels": ",".join(f"{k}={labels[k]}" for k in sorted(labels)),
            "Links": "N/A", "Size": "N/A", "CreatedAt": v.created_at}


@command
def cmd_volume_ls(ctx, argv) -> int:
    opts, _ = LS.parse(argv)
    filters = parse_filters(opts["filter"])
    from hutch.engine.volumestore import VolumeError, match_filters, validate_filters
    try:
        validate_filters(filters)
        vols = [v for v in _store(ctx).list() if match_filters(v, filters)]
        vols.sort(key=lambda v: _natural_key(v.name))
    except VolumeError as e:
        return daemon_err(str(e))
    if opts["quiet"]:
        sys.stdout.write("".join(v.name + "\n" for v in vols))
        return 0
    return print_rows(opts["format"] or "table", [_ls_row(v) for v in vols], _LS_HEADERS,
                      _LS_TABLE)


# --- volume inspect -----------------------------------------------------------------------
INSPECT = Command("volume inspect", "[OPTIONS] VOLUME [VOLUME...]",
                  "Display detailed information on one or more volumes", [
                      Flag("format", "f", "string", "", "Format output using a custom template"),
                  ], min_args=1)


@command
def cmd_volume_inspect(ctx, argv) -> int:
    opts, args = INSPECT.parse(argv)
    from hutch.cli.gotemplate import TemplateError, parse
    from hutch.engine.volumestore import VolumeError
    try:
        tmpl = parse(opts["format"]) if opts["format"] else None
    except TemplateError as e:
        return template_error(e)
    store = _store(ctx)
    found, errors = [], []
    for name in args:
        try:
            found.append(store.get(name).inspect())
        except VolumeError as e:
            errors.append(f"{DAEMON}{e}")
    if tmpl is not None:
        try:
            for obj in found:
                sys.stdout.write(tmpl.execute(obj) + "\n")
        except TemplateError as e:
            return template_error(e)
    else:
        sys.stdout.write(_go_json_indent(found) + "\n")
    if errors:
        return err("\n".join(errors))
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
             ], min_args=1, aliases=["hutch volume rm, hutch volume remove"])


@command
def cmd_volume_rm(ctx, argv) -> int:
    opts, args = RM.parse(argv)
    from hutch.engine.volumestore import VolumeError
    store = _store(ctx)
    errors = []
    for name in args:
        try:
            store.remove(name, force=opts["force"])
        except (VolumeError, OSError) as e:
            errors.append(f"{DAEMON}{e}")
            continue
        print(name)
    if errors:
        return err("\n".join(errors))
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


@command
def cmd_volume_prune(ctx, argv) -> int:
    opts, _ = PRUNE.parse(argv)
    filters = parse_filters(opts["filter"])
    from hutch.cli.format import human_size
    from hutch.engine.volumestore import VolumeError
    if not opts["force"] and not confirm(VOLUME_PRUNE_WARNING):
        return 0
    try:
        out, reclaimed = prune_volumes(ctx, filters)
    except VolumeError as e:
        return daemon_err(str(e))
    if out:
        sys.stdout.write(out + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


# --- cp -----------------------------------------------------------------------------------
CP = Command(
    "cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\thutch cp [OPTIONS] SRC_PATH|- "
    "CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem\n\nUse '-' as the "
    "source to read a tar archive from stdin\nand extract it to a directory destination in a "
    "container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source "
    "to stdout.", [
        Flag("archive", "a", "bool", False, "Archive mode (copy all uid/gid information)"),
        Flag("follow-link", "L", "bool", False, "Always follow symbol link in SRC_PATH"),
        Flag("quiet", "q", "bool", False, "Suppress progress output during copy. Progress "
             "output is automatically suppressed if no terminal is attached"),
    ], min_args=2, max_args=2, aliases=["hutch container cp, hutch cp"])


def _split_cp_arg(arg: str) -> tuple[str, str]:
    """The CLI's splitCpArg: an absolute path or one starting with "." is local."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def _ctr_path(path: str) -> str:
    """A container path made absolute, keeping a trailing "/" or "/." (they mean things)."""
    import posixpath
    clean = posixpath.normpath("/" + path)
    if path.endswith("/.") or path == ".":
        return clean.rstrip("/") + "/."
    if path.endswith("/") and clean != "/":
        return clean + "/"
    return clean


def _local_path(path: str) -> str:
    absolute = os.path.abspath(path)
    if path.endswith("/.") or path == ".":
        return absolute.rstrip("/") + "/."
    if path.endswith("/") and absolute != "/":
        return absolute + "/"
    return absolute


@command
def cmd_cp(ctx, argv) -> int:
    opts, args = CP.parse(argv)
    src, dst = args
    if not src:
        return err("source can not be empty")
    if not dst:
        return err("destination can not be empty")
    sctr, spath = _split_cp_arg(src)
    dctr, dpath = _split_cp_arg(dst)
    if sctr and dctr:
        return err("copying between containers is not supported")
    if not sctr and not dctr:
        return err("must specify at least one container source")
    quiet = opts["quiet"] if "quiet" in opts.changed else not os.isatty(1)
    from hutch.engine import errors as engine_errors
    from hutch.engine.store import Store
    ref = sctr or dctr
    try:
        c = Store(ctx.paths).get(ref)
    except engine_errors.NotFound as e:
        return daemon_err(str(e))
    mode = "from" if sctr else "to"
    path = _ctr_path(spath if sctr else dpath)
    local = (dpath if sctr else spath)
    local = local if local == "-" else _local_path(local)
    try:
        if mode == "from":
            count, where = _cp_from(ctx, c, ref, spath, path, local, opts["follow-link"])
        else:
            count, where = _cp_to(ctx, c, ref, dpath, path, local, opts["follow-link"],
                                  opts["archive"])
    except _CpFailed as e:
        return err(str(e))
    if not quiet and local != "-":
        from hutch.cli.format import human_size
        sys.stderr.write(f"Successfully copied {human_size(count, 3)} to {where}\n")
    return 0


class _CpFailed(Exception):
    pass


class _Channel:
    """JSON lines between the CLI and its container-side child."""

    def __init__(self, rfd: int, wfd: int):
        self.r = os.fdopen(rfd, "rb", buffering=0) if rfd >= 0 else None
        self.w = wfd

    def send(self, obj) -> None:
        try:
            os.write(self.w, (json.dumps(obj) + "\n").encode())
        except BrokenPipeError:
            pass

    def recv(self):
        line = b""
        while not line.endswith(b"\n"):
            ch = self.r.read(1)
            if not ch:
                return None
            line += ch
        return json.loads(line)


class _Counting:
    """A read-only stream over a pipe that counts the bytes (docker cp reports them)."""

    def __init__(self, fd: int):
        self.fd, self.count = fd, 0

    def read(self, n: int = -1) -> bytes:
        data = os.read(self.fd, n if n and n > 0 else 1 << 20)
        self.count += len(data)
        return data


def _spawn(ctx, c, child_fn):
    """Fork the container side of a copy. The child gets (root fd, channel, data fd) and
    runs in its own mount namespace when the container is not running. Returns
    (pid, channel, parent's data fd for reading and writing ends as given)."""
    from hutch.engine import volumes
    sys.stdout.flush()
    sys.stderr.flush()
    to_parent = os.pipe()
    to_child = os.pipe()
    data = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        chan = _Channel(to_child[0], to_parent[1])
        os.close(to_parent[0])
        os.close(to_child[1])
        try:
            root = volumes.open_container_root(ctx.paths, c.id, c.state, c.record)
            child_fn(root, chan, data)
            code = 0
        except volumes.CopyError as e:
            chan.send({"error": str(e)})
        except OSError as e:
            chan.send({"error": DAEMON + _oserror(e)})
        except BaseException as e:  # noqa: BLE001 - the child must report, never unwind
            chan.send({"error": f"{DAEMON}{e}"})
        finally:
            os._exit(code)
    os.close(to_parent[1])
    os.close(to_child[0])
    return pid, _Channel(to_parent[0], to_child[1]), data


def _idmap(ctx, c):
    """The container's user-namespace mapping (from its OCI spec), or None."""
    from hutch.engine import volumes
    try:
        with open(os.path.join(ctx.paths.containers, c.id, "oci.json")) as f:
            return volumes.IdMap.of_spec(json.load(f))
    except (OSError, ValueError):
        return None


def _oserror(e: OSError) -> str:
    what = os.strerror(e.errno).lower() if e.errno else str(e)
    return f"{e.filename}: {what}" if e.filename else what


def _reap(pid: int) -> None:
    os.waitpid(pid, 0)


def _cp_from(ctx, c, ref, spath_given, src, dst, follow):
    """Container -> local (or stdout): the child archives, this process unpacks."""
    from hutch.engine import volumes
    contents_only = src.endswith("/.")

    def child(root, chan, data):
        os.close(data[0])
        try:
            pfd, name, _ = volumes.source_in_root(root, src, follow)
        except (FileNotFoundError, NotADirectoryError):
            raise volumes.CopyError(f"{DAEMON}Could not find the file "
                                    f"{spath_given} in container {ref}") from None
        st = os.stat(name or ".", dir_fd=pfd, follow_symlinks=False)
        import stat as stat_mod
        chan.send({"isdir": stat_mod.S_ISDIR(st.st_mode), "name": name})
        plan = chan.recv()
        if not plan or "arcname" not in plan:
            return
        w = volumes.TarWriter(data[1])
        volumes.archive_entry(w, pfd, name or ".", plan["arcname"],
                              with_root=not plan["contents"], idmap=_idmap(ctx, c))
        w.close()
        os.close(data[1])
        chan.send({"ok": True})

    if dst != "-":
        parent = os.path.dirname(os.path.normpath(dst))
        if not os.path.exists(parent):
            raise _CpFailed(f'invalid output path: directory "{parent}" does not exist')
    pid, chan, data = _spawn(ctx, c, child)
    os.close(data[1])
    failure = None
    try:
        st = chan.recv()
        if st is None or "error" in st:
            raise _CpFailed((st or {}).get("error", DAEMON + "copy failed"))
        if dst == "-":
            chan.send({"arcname": st["name"] or ".", "contents": False})
            count = 0
            while chunk := os.read(data[0], 1 << 20):
                sys.stdout.buffer.write(chunk)
                count += len(chunk)
            sys.stdout.flush()
        else:
            try:
                extract_dir, arcname = _destination(st["isdir"], contents_only,
                                                    st["name"] or "/", dst)
            except _CpFailed:
                chan.send({"abort": True})
                raise
            chan.send({"arcname": arcname, "contents": contents_only and st["isdir"]})
            reader = _Counting(data[0])
            try:
                volumes.Extractor(extract_dir, "/").extract(reader)
            except OSError as e:
                failure = _oserror(e)
            except Exception as e:  # noqa: BLE001 - a cut stream: the child says why
                failure = str(e)
            count = reader.count
        end = chan.recv()
        if end is None or "error" in end:
            raise _CpFailed((end or {}).get("error") or failure or "copy failed")
        if failure:
            raise _CpFailed(failure)
        return count, dst
    finally:
        os.close(data[0])
        _reap(pid)


def _destination(src_isdir: bool, contents_only: bool, src_name: str, dst: str,
                 dst_exists: bool | None = None, dst_isdir: bool | None = None):
    """Docker's copy rules -> (directory to unpack into, name of the top entry there).
    Without dst_exists/dst_isdir, the local filesystem is asked (following symlinks)."""
    import posixpath
    asserts_dir = dst.endswith("/") or dst.endswith("/.")
    clean = posixpath.normpath(dst)
    if dst_exists is None:
        dst_exists, dst_isdir = os.path.exists(clean), os.path.isdir(clean)
        if os.path.islink(clean) and dst_exists:
            clean = os.path.realpath(clean)
    base = posixpath.basename(src_name.rstrip("/")) or "."
    if dst_exists and dst_isdir:
        return clean, "" if (src_isdir and contents_only) else base
    if dst_exists:
        if src_isdir:
            raise _CpFailed("cannot copy directory")
        if asserts_dir:
            raise _CpFailed("not a directory")
        return posixpath.dirname(clean) or "/", posixpath.basename(clean)
    if asserts_dir and not src_isdir:
        raise _CpFailed("no such directory")
    return posixpath.dirname(clean) or "/", posixpath.basename(clean)


def _cp_to(ctx, c, ref, dpath_given, dst, src, follow, archive):
    """Local (or stdin) -> container: this process archives, the child unpacks."""
    from hutch.engine import volumes
    contents_only = src.endswith("/.")
    readonly_rootfs = bool((c.record.get("HostConfig") or {}).get("ReadonlyRootfs"))

    def child(root, chan, data):
        os.close(data[1])
        resolved = volumes.resolve_in_root(root, dst)
        try:
            fd = volumes.open_in_root(root, resolved)
            import stat as stat_mod
            isdir = stat_mod.S_ISDIR(os.fstat(fd).st_mode)
            os.close(fd)
            exists = True
        except (FileNotFoundError, NotADirectoryError):
            exists, isdir = False, False
        chan.send({"exists": exists, "isdir": isdir, "resolved": resolved})
        plan = chan.recv()
        if not plan or "dir" not in plan:
            return
        try:
            os.close(volumes.open_in_root(root, plan["dir"]))
        except (FileNotFoundError, NotADirectoryError):
            raise volumes.CopyError(f"{DAEMON}Could not find the file "
                                    f"{plan['dir']} in container {ref}") from None
        volumes.Extractor(root, plan["dir"], chown=plan["chown"],
                          idmap=_idmap(ctx, c)).extract(_Counting(data[0]))
        chan.send({"ok": True})

    src_parent = src_name = None
    src_isdir = False
    if src != "-":
        clean = os.path.normpath(src)
        if follow and os.path.islink(clean):
            clean = os.path.realpath(clean)
        try:
            st = os.lstat(clean)
        except OSError as e:
            raise _CpFailed(f"lstat {clean}: {os.strerror(e.errno).lower()}") from None
        import stat as stat_mod
        src_isdir = stat_mod.S_ISDIR(st.st_mode)
        src_parent, src_name = os.path.dirname(clean) or "/", os.path.basename(clean)
    pid, chan, data = _spawn(ctx, c, child)
    os.close(data[0])
    try:
        st = chan.recv()
        if st is None or "error" in st:
            raise _CpFailed((st or {}).get("error", DAEMON + "copy failed"))
        if src == "-":
            if not st["isdir"]:
                chan.send({"abort": True})
                raise _CpFailed(f'destination "{ref}:{dpath_given}" must be a directory')
            extract_dir, arcname = st["resolved"], None
        else:
            try:
                extract_dir, arcname = _destination(
                    src_isdir, contents_only, src_name or "/",
                    st["resolved"] + ("/" if dst.endswith("/") else ""),
                    st["exists"], st["isdir"])
            except _CpFailed:
                chan.send({"abort": True})
                raise
        m = volumes.mount_for_path(c.record.get("HutchMounts"), extract_dir)
        if (m is not None and not m.RW) or (m is None and readonly_rootfs):
            chan.send({"abort": True})
            raise _CpFailed(DAEMON + (
                "mounted volume is marked read-only" if m is not None
                else "container rootfs is marked read-only"))
        chan.send({"dir": extract_dir, "chown": "keep" if archive else "root"})
        count = 0
        try:
            if src == "-":
                while chunk := sys.stdin.buffer.read(1 << 20):
                    _write_all(data[1], chunk)
                    count += len(chunk)
            else:
                w = volumes.TarWriter(data[1])
                pfd = os.open(src_parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    volumes.archive_entry(w, pfd, src_name or ".", arcname,
                                          with_root=not (contents_only and src_isdir))
                finally:
                    os.close(pfd)
                w.close()
                count = w.count
        except BrokenPipeError:
            pass   # the child stopped reading: its message says why
        except OSError as e:
            raise _CpFailed(_oserror(e)) from None
        os.close(data[1])
        data = (-1, -1)
        end = chan.recv()
        if end is None or "error" in end:
            raise _CpFailed((end or {}).get("error", DAEMON + "copy failed"))
        return count, f"{ref}:{dpath_given}"
    finally:
        if data[1] >= 0:
            os.close(data[1])
        _reap(pid)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- system df ----------------------------------------------------------------------------
DF = Command("system df", "[OPTIONS]", "Show docker disk usage", [
    Flag("format", None, "string", "", "Format output using a custom template"),
    Flag("verbose", "v", "bool", False, "Show detailed information on space usage"),
], max_args=0)

_DF_TABLE = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
_DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
_ACTIVE_STATES = ("running", "paused", "restarting")


def _with_pct(reclaimable: int, total: int) -> str:
    from hutch.cli.format import human_size
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def _df_rows(du: dict) -> list[dict]:
    from hutch.cli.format import human_size
    imgs, ctrs, vols = du["images"], du["containers"], du["volumes"]
    total = du["layers_size"]
    # Docker's CLI: what active images hold alone is not reclaimable
    used = sum(i["size"] - i["shared"] for i in imgs if i["containers"])
    img_rec = max(total - used, 0)
    c_total = sum(c["size"] for c in ctrs)
    c_rec = sum(c["size"] for c in ctrs if not c["active"])
    v_total = sum(v["size"] for v in vols)
    v_rec = sum(v["size"] for v in vols if not v["links"])
    return [
        {"Type": "Images", "TotalCount": str(len(imgs)),
         "Active": str(sum(1 for i in imgs if i["containers"])), "Size": human_size(total),
         "Reclaimable": _with_pct(img_rec, total)},
        {"Type": "Containers", "TotalCount": str(len(ctrs)),
         "Active": str(sum(1 for c in ctrs if c["active"])), "Size": human_size(c_total),
         "Reclaimable": _with_pct(c_rec, c_total)},
        {"Type": "Local Volumes", "TotalCount": str(len(vols)),
         "Active": str(sum(1 for v in vols if v["links"])), "Size": human_size(v_total),
         "Reclaimable": _with_pct(v_rec, v_total)},
        {"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B",
         "Reclaimable": "0B"},
    ]


@command
def cmd_system_df(ctx, argv) -> int:
    opts, _ = DF.parse(argv)
    from hutch.engine.volumes import disk_usage
    du = disk_usage(ctx.paths)
    if opts["verbose"]:
        if opts["format"]:
            return err("the verbose flag is not supported with a custom format")
        sys.stdout.write(_df_verbose(du))
        return 0
    return print_rows(opts["format"] or "table", _df_rows(du), _DF_HEADERS, _DF_TABLE)


def _df_verbose(du: dict) -> str:
    """`system df -v`: Docker's four sections."""
    from hutch.cli import format as fmt
    out = ["Images space usage:\n\n"]
    rows = []
    for i in sorted(du["images"], key=lambda i: -(i["image"].added or 0)):
        img = i["image"]
        tags = img.repo_tags or ["<none>:<none>"]
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            created = fmt.ago(img.created) if img.created else "N/A"
            rows.append([repo, t, img.short_id, created, fmt.human_size(i["size"]),
                         fmt.human_size(i["shared"]), fmt.human_size(i["size"] - i["shared"]),
                         str(i["containers"])])
    out.append(fmt.table(rows, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE",
                                "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"]))
    out.append("\nContainers space usage:\n\n")
    rows = []
    for c in du["containers"]:
        ctr = c["container"]
        cfg = ctr.record.get("Config") or {}
        cmd = fmt.command_string(ctr.record.get("Path", ""), ctr.record.get("Args") or [])
        mounts = (ctr.record.get("HutchMounts") or {}).get("MountPoints") or []
        rows.append([ctr.id[:12], cfg.get("Image", ""), fmt.ps_command(cmd),
                     str(sum(1 for m in mounts if m.get("Type") == "volume")),
                     fmt.human_size(c["size"]), fmt.ago(ctr.record.get("Created")),
                     fmt.status_string(ctr.state), ctr.name])
    out.append(fmt.table(rows, ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE",
                                "CREATED", "STATUS", "NAMES"]))
    out.append("\nLocal Volumes space usage:\n\n")
    rows = [[v["volume"].name, str(v["links"]), fmt.human_size(v["size"])]
            for v in du["volumes"]]
    out.append(fmt.table(rows, ["VOLUME NAME", "LINKS", "SIZE"]))
    out.append("\nBuild cache usage: 0B\n\n")
    out.append(fmt.table([], ["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED",
                              "USAGE", "SHARED"]))
    return "".join(out)


# --- system prune -------------------------------------------------------------------------
SYSPRUNE = Command("system prune", "[OPTIONS]", "Remove unused data", [
    Flag("all", "a", "bool", False, "Remove all unused images not just dangling ones"),
    Flag("filter", None, "list", [], "Provide filter values (e.g. \"label=<key>=<value>\")",
         metavar="filter"),
    Flag("force", "f", "bool", False, "Do not prompt for confirmation"),
    Flag("volumes", None, "bool", False, "Prune volumes"),
], max_args=0)


@command
def cmd_system_prune(ctx, argv) -> int:
    opts, _ = SYSPRUNE.parse(argv)
    filters = parse_filters(opts["filter"])
    from hutch.cli.format import human_size
    if opts["volumes"] and "until" in filters:
        return err('ERROR: The "until" filter is not supported with "--volumes"')
    for key in filters:
        if key not in ("until", "label", "label!"):
            return daemon_err(f"invalid filter '{key}'")
    if not opts["force"]:
        warnings = ["all stopped containers", "all networks not used by at least one container"]
        if opts["volumes"]:
            warnings.append("all volumes not used by at least one container")
        warnings.append("all images without at least one container associated to them"
                        if opts["all"] else "all dangling images")
        warnings.append("unused build cache")
        text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
        if filters:
            text += "\n  Items to be pruned will be filtered with:\n" + "".join(
                f"  - {k}={v}\n" for k in sorted(filters) for v in filters[k])
        if not confirm(text.rstrip("\n") + "\n"):
            return 0
    reclaimed = 0
    for step in (_prune_containers, _prune_networks, _prune_volumes_step, _prune_images):
        try:
            out, space = step(ctx, opts, filters)
        except _PruneFailed as e:
            return err(str(e))
        reclaimed += space
        if out:
            sys.stdout.write(out + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


class _PruneFailed(Exception):
    pass


def _matches(labels: dict, created: str | None, filters: dict) -> bool:
    """until / label / label! as Docker's prune filters apply them."""
    from hutch.cli.flags import parse_duration
    from hutch.cli.format import to_unix
    import time
    for until in filters.get("until", []):
        try:
            limit = time.time() - parse_duration(until)
        except ValueError:
            try:
                limit = to_unix(until)
            except Exception:  # noqa: BLE001
                raise _PruneFailed(f"{DAEMON}failed to parse value as "
                                   f'time or duration: "{until}"') from None
        if created and to_unix(created) >= limit:
            return False
    for want in filters.get("label", []):
        k, eq, v = want.partition("=")
        if k not in labels or (eq and labels[k] != v):
            return False
    for want in filters.get("label!", []):
        k, eq, v = want.partition("=")
        if k in labels and (not eq or labels[k] == v):
            return False
    return True


def _prune_containers(ctx, opts, filters):
    from hutch.engine.containers import Engine
    from hutch.engine.volumestore import tree_size
    images = image_store(ctx.paths)
    eng = Engine(ctx.paths)
    sizes = {}
    for c in eng.list():
        if c.status not in _ACTIVE_STATES:
            try:
                sizes[c.id] = tree_size(images.snapshot_upper(c.id))
            except Exception:  # noqa: BLE001
                sizes[c.id] = 0

    def keep(c):
        return not _matches((c.record.get("Config") or {}).get("Labels") or {},
                            c.record.get("Created"), filters)
    removed = eng.prune(keep)
    out = "Deleted Containers:\n" + "".join(f"{cid}\n" for cid in removed) if removed else ""
    return out, sum(sizes.get(cid, 0) for cid in removed)


def _prune_networks(ctx, opts, filters):
    if filters:
        return "", 0   # hutch's network prune takes no filters yet: keep every network
    from hutch.network.manager import NetworkManager
    removed = NetworkManager(ctx.paths).prune()
    return ("Deleted Networks:\n" + "".join(f"{n}\n" for n in removed)) if removed else "", 0


def _prune_volumes_step(ctx, opts, filters):
    if not opts["volumes"]:
        return "", 0
    from hutch.engine.volumestore import VolumeError
    try:
        return prune_volumes(ctx, {k: v for k, v in filters.items() if k != "until"})
    except VolumeError as e:
        raise _PruneFailed(f"{DAEMON}{e}") from None


def _prune_images(ctx, opts, filters):
    from hutch.cli.images import remove_image
    store = image_store(ctx.paths)
    in_use = store.images_in_use()
    lines, reclaimed = [], 0
    for img in store.list():
        if img.id in in_use or (img.repo_tags and not opts["all"]):
            continue
        labels = (img.config.get("config") or {}).get("Labels") or {}
        if not _matches(labels, img.created, filters):
            continue
        try:
            out = remove_image(store, img.id, force=True)
        except Exception:  # noqa: BLE001 - removed or taken by a racing command: skip it
            continue
        reclaimed += img.size
        lines += [line[0].lower() + line[1:] for line in out]
    out = "Deleted Images:\n" + "".join(f"{line}\n" for line in lines) if lines else ""
    return out, reclaimed
