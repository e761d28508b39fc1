"""Image commands: import, images, rmi, tag, image inspect, history, image prune, save, load,
pull, push, login, logout. Thin: parse flags, call hutch.images, print as Docker does."""
from __future__ import annotations

import json
import os
import sys

from hutch.cli.common import (command, confirm, daemon_err, err, image_store, print_rows,
                              template_error)
from hutch.cli.flags import Command, CommandLineError, Flag


# --- import ----------------------------------------------------------------------------

IMPORT = Command("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image", [
                     Flag("change", "c", "list", [], "Apply Dockerfile instruction to the created image"),
                     Flag("message", "m", "string", "", "Set commit message for imported image"),
                     Flag("platform", None, "string", "", "Set platform if server is multi-platform capable"),
                 ], min_args=1, max_args=2)


@command
def cmd_import(ctx, argv) -> int:
    opts, args = IMPORT.parse(argv)
    from hutch.images import reference as refs
    from hutch.images.changes import ChangeError
    from hutch.images.importer import host_arch, import_rootfs
    from hutch.images.layer import LayerError
    from hutch.images.compression import CompressionError
    src = args[0]
    tag = None
    if len(args) > 1:
        try:
            tag = refs.parse(args[1])
        except refs.InvalidReference as e:
            return err(str(e), 125)
        if tag.digest:
            return err("refusing to create a tag with a digest reference", 125)
    if opts["platform"] and opts["platform"].split("/")[:2] != ["linux", host_arch()]:
        return daemon_err(f"image platform {opts['platform']} does not match this host "
                           f"(linux/{host_arch()})")
    source = "-"
    try:
        if src == "-":
            stream = sys.stdin.buffer
        elif src.startswith(("http://", "https://")):
            import urllib.request
            stream = urllib.request.urlopen(src, timeout=60)
            source = src
        else:
            stream = open(src, "rb")
    except OSError as e:
        return err(f"open {src}: {e.strerror or e}")
    try:
        image = import_rootfs(image_store(ctx.paths), stream, changes=opts["change"],
                              message=opts["message"], source=source, tag=tag)
    except ChangeError as e:
        return daemon_err(str(e))
    except (LayerError, CompressionError) as e:
        return daemon_err(str(e))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(image.id)
    return 0


# --- images ----------------------------------------------------------------------------

IMAGES = Command("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images", [
    Flag("all", "a", help="Show all images (default hides intermediate images)"),
    Flag("digests", None, help="Show digests"),
    Flag("filter", "f", "list", [], "Filter output based on conditions provided"),
    Flag("format", None, "string", "", "Pretty-print images using a Go template"),
    Flag("no-trunc", None, help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
], max_args=1)


def _image_rows(images, no_trunc: bool, with_digests: bool) -> list[dict]:
    from hutch.cli.format import ago, human_size, to_unix
    rows = []
    for img in images:
        names = []
        for t in img.repo_tags:
            repo, _, tag = t.rpartition(":")
            names.append((repo, tag))
        digests = {d.rpartition("@")[0]: d.rpartition("@")[2] for d in img.repo_digests}
        if not names:
            names = [(r, "<none>") for r in digests] or [("<none>", "<none>")]
        for repo, tag in names:
            rows.append({
                "ID": img.id if no_trunc else img.short_id,
                "Repository": repo, "Tag": tag,
                "Digest": digests.get(repo, "<none>"),
                "CreatedSince": ago(img.created) if img.created else "N/A",
                "CreatedAt": _created_at(img.created),
                "Size": human_size(img.size, 3),
                "VirtualSize": human_size(img.size, 3),
                "SharedSize": "N/A", "UniqueSize": "N/A", "Containers": "N/A",
                "_created": to_unix(img.created) if img.created else 0,
            })
    rows.sort(key=lambda r: -r["_created"])
    return rows


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _created_at(created: str) -> str:
    from hutch.cli.format import to_unix
    import time
    if not created:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(int(to_unix(created))))


@command
def cmd_images(ctx, argv) -> int:
    opts, args = IMAGES.parse(argv)
    from hutch.images import present
    from hutch.images.store import ImageNotFound
    store = image_store(ctx.paths)
    images = store.list()
    try:
        images = present.filter_images(store, images, present.parse_filters(opts["filter"]))
    except present.FilterError as e:
        return daemon_err(str(e))
    except ImageNotFound as e:
        return daemon_err(str(e))
    rows = _image_rows(images, opts["no-trunc"], opts["digests"])
    # a name (positional or reference filter) keeps only the rows of the tags it matches
    patterns = ([args[0]] if args else []) + [
        f.partition("=")[2] for f in opts["filter"] if f.partition("=")[0].strip() == "reference"]
    for pat in patterns:
        rows = [r for r in rows if r["Tag"] != "<none>" and
                present.matches_repo(f"{r['Repository']}:{r['Tag']}", pat)]
    if opts["quiet"]:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        sys.stdout.write("".join(i + "\n" for i in seen))
        return 0
    if opts["format"]:
        header = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                  "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                  "Size": "SIZE", "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE",
                  "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}
        default = "{{.Repository}}\t{{.Tag}}\t" + ("{{.Digest}}\t" if opts["digests"] else "") \
            + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        return print_rows(opts["format"], [_public(r) for r in rows], header, default)
    from hutch.cli.format import table
    head = ["REPOSITORY", "TAG"] + (["DIGEST"] if opts["digests"] else []) + \
        ["IMAGE ID", "CREATED", "SIZE"]
    body = [[r["Repository"], r["Tag"]] + ([r["Digest"]] if opts["digests"] else []) +
            [r["ID"], r["CreatedSince"], r["Size"]] for r in rows]
    sys.stdout.write(table(body, head))
    return 0


# --- tag -------------------------------------------------------------------------------

TAG = Command("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], min_args=2, max_args=2)


@command
def cmd_tag(ctx, argv) -> int:
    _, args = TAG.parse(argv)
    from hutch.images import reference as refs
    from hutch.images.store import ImageNotFound
    try:
        target = refs.parse(args[1])
    except refs.InvalidReference as e:
        return err(f'Error parsing reference: "{args[1]}" is not a valid repository/tag: {e}')
    if target.digest:
        return err("refusing to create a tag with a digest reference")
    store = image_store(ctx.paths)
    try:
        image = store.resolve(args[0])
    except ImageNotFound:
        return daemon_err(f"No such image: {_display_ref(args[0])}")
    except refs.InvalidReference as e:
        return daemon_err(str(e))
    store.tag(image.id, target)
    return 0


def _display_ref(ref: str) -> str:
    """How Docker names a missing image: `busybox:latest` for names, as given for ids."""
    from hutch.images import reference as refs
    try:
        r = refs.parse(ref)
    except refs.InvalidReference:
        return ref
    return r.tagged_or_latest().familiar()


# --- rmi -------------------------------------------------------------------------------

RMI = Command("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", [
    Flag("force", "f", help="Force removal of the image"),
    Flag("no-prune", None, help="Do not delete untagged parents"),
], min_args=1)


def remove_image(store, ref: str, force: bool) -> list[str]:
    """hutch.images.delete.remove_image, still reachable here for `system prune`."""
    from hutch.images.delete import remove_image as remove
    return remove(store, ref, force)


@command
def cmd_rmi(ctx, argv) -> int:
    opts, args = RMI.parse(argv)
    from hutch.images import reference as refs
    from hutch.images.delete import ImageConflict
    from hutch.images.store import ImageNotFound
    store = image_store(ctx.paths)
    rc = 0
    for ref in args:
        try:
            lines = remove_image(store, ref, opts["force"])
        except ImageNotFound:
            rc = err(f"Error: No such image: {ref}")
            continue
        except refs.InvalidReference as e:
            rc = daemon_err(str(e))
            continue
        except ImageConflict as e:
            rc = daemon_err(str(e))
            continue
        sys.stdout.write("".join(line + "\n" for line in lines))
    return rc


# --- image inspect ---------------------------------------------------------------------

INSPECT = Command("image inspect", "[OPTIONS] IMAGE [IMAGE...]",
                  "Display detailed information on one or more images", [
                      Flag("format", "f", "string", "", "Format the output using the given Go template"),
                  ], min_args=1)


@command
def cmd_image_inspect(ctx, argv) -> int:
    opts, args = INSPECT.parse(argv)
    from hutch.images import present, reference as refs
    from hutch.images.store import ImageNotFound
    store = image_store(ctx.paths)
    found, rc = [], 0
    for ref in args:
        try:
            found.append(present.inspect_dict(store, store.resolve(ref)))
        except (ImageNotFound, refs.InvalidReference):
            rc = err(f"Error: No such image: {ref}")
    if opts["format"]:
        from hutch.cli.gotemplate import TemplateError, render
        try:
            for d in found:
                sys.stdout.write(render(opts["format"], d) + "\n")
        except TemplateError as e:
            return template_error(e)
    else:
        sys.stdout.write(json.dumps(found, indent=4) + "\n")
    return rc


# --- history ---------------------------------------------------------------------------

HISTORY = Command("history", "[OPTIONS] IMAGE", "Show the history of an image", [
    Flag("format", None, "string", "", "Pretty-print images using a Go template"),
    Flag("human", "H", "bool", True, "Print sizes and dates in human readable format"),
    Flag("no-trunc", None, help="Don't truncate output"),
    Flag("quiet", "q", help="Only show image IDs"),
], min_args=1, max_args=1)


@command
def cmd_history(ctx, argv) -> int:
    opts, args = HISTORY.parse(argv)
    from hutch.cli.format import ago, ellipsis, human_size, table
    from hutch.images import present, reference as refs
    from hutch.images.store import ImageNotFound
    store = image_store(ctx.paths)
    try:
        image = store.resolve(args[0])
    except (ImageNotFound, refs.InvalidReference):
        return daemon_err(f"No such image: {_display_ref(args[0])}")
    entries = present.history(store, image)
    trunc = not opts["no-trunc"]
    rows = []
    for h in entries:
        hid = h["Id"]
        if trunc and hid != "<missing>":
            hid = hid[7:19]
        created_by = h["CreatedBy"].replace("\t", " ")
        rows.append({
            "ID": hid,
            "CreatedSince": ago(h["Created"]) if opts["human"] else h["Created"],
            "CreatedAt": h["Created"],
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "Size": human_size(h["Size"], 3) if opts["human"] else str(h["Size"]),
            "Comment": h["Comment"],
        })
    if opts["quiet"]:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return 0
    if opts["format"]:
        header = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                  "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
        default = "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        return print_rows(opts["format"], rows, header, default)
    sys.stdout.write(table([[r["ID"], r["CreatedSince"], r["CreatedBy"], r["Size"],
                             r["Comment"]] for r in rows],
                           ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]))
    return 0


# --- image prune -----------------------------------------------------------------------

PRUNE = Command("image prune", "[OPTIONS]", "Remove unused images", [
    Flag("all", "a", help="Remove all unused images, not just dangling ones"),
    Flag("filter", None, "list", [], 'Provide filter values (e.g. "until=<timestamp>")'),
    Flag("force", "f", help="Do not prompt for confirmation"),
], max_args=0)


@command
def cmd_image_prune(ctx, argv) -> int:
    opts, _ = PRUNE.parse(argv)
    from hutch.cli.format import human_size
    if not opts["force"]:
        warn = ("WARNING! This will remove all images without at least one container "
                "associated to them." if opts["all"] else
                "WARNING! This will remove all dangling images.")
        if not confirm(warn):
            return 0
    until = None
    labels = []
    for f in opts["filter"]:
        k, _, v = f.partition("=")
        if k == "until":
            until = _parse_until(v)
            if until is None:
                return daemon_err(f"failed to parse value as time or duration: \"{v}\"")
        elif k in ("label", "label!"):
            labels.append((k, v))
        else:
            return daemon_err(f"invalid filter '{k}'")
    from hutch.images.delete import prune
    lines, reclaimed = prune(image_store(ctx.paths), all_images=opts["all"], until=until, labels=labels)
    if lines:
        sys.stdout.write("Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed, 3)}\n")
    return 0


def _parse_until(v: str) -> float | None:
    import time
    from hutch.cli.flags import parse_duration
    from hutch.cli.format import to_unix
    try:
        return time.time() - parse_duration(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return to_unix(v)
    except ValueError:
        return None


# --- save / load -----------------------------------------------------------------------

SAVE = Command("save", "[OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)", [
                   Flag("output", "o", "string", "", "Write to a file, instead of STDOUT"),
                   Flag("format", None, "string", "docker",
                        'Archive format: "docker" (docker save) or "oci" (an OCI image layout)'),
               ], min_args=1)


@command
def cmd_save(ctx, argv) -> int:
    opts, args = SAVE.parse(argv)
    from hutch.images import archive, reference as refs
    from hutch.images.store import ImageNotFound
    if opts["format"] not in ("docker", "oci"):
        return err(f'invalid archive format "{opts["format"]}": "docker" or "oci"', 125)
    if not opts["output"] and sys.stdout.isatty():
        return err("Cowardly refusing to save to a terminal. Use the -o flag or redirect")
    store = image_store(ctx.paths)
    try:
        if opts["output"]:
            tmp = opts["output"] + ".hutch-tmp"
            try:
                with open(tmp, "wb") as out:
                    archive.save(store, args, out, fmt=opts["format"])
                os.rename(tmp, opts["output"])
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            archive.save(store, args, sys.stdout.buffer, fmt=opts["format"])
            sys.stdout.flush()
    except (ImageNotFound, refs.InvalidReference) as e:
        return daemon_err(str(e))
    except OSError as e:
        return err(f"failed to save: {e}")
    return 0


LOAD = Command("load", "[OPTIONS]", "Load an image from a tar archive or STDIN", [
    Flag("input", "i", "string", "", "Read from tar archive file, instead of STDIN"),
    Flag("quiet", "q", help="Suppress the load output"),
], max_args=0)


@command
def cmd_load(ctx, argv) -> int:
    opts, _ = LOAD.parse(argv)
    from hutch.images import archive
    if not opts["input"] and sys.stdin.isatty():
        return err("requested load from stdin, but stdin is empty")
    try:
        stream = open(opts["input"], "rb") if opts["input"] else sys.stdin.buffer
    except OSError as e:
        return err(f"open {opts['input']}: {e.strerror}")
    from hutch.images.registry import RegistryError
    from hutch.images.store import StoreError
    try:
        loaded = archive.load(image_store(ctx.paths), stream)
    except (archive.ArchiveError, StoreError, RegistryError) as e:
        return daemon_err(str(e))
    except (KeyError, TypeError, ValueError) as e:  # malformed JSON in the archive
        return daemon_err(f"invalid image archive: {type(e).__name__}: {e}")
    finally:
        if opts["input"]:
            stream.close()
    if not opts["quiet"]:
        sys.stdout.write("".join(line + "\n" for line in loaded))
    return 0


# --- registries ------------------------------------------------------------------------

_INSECURE_REGISTRY = Flag("insecure-registry", None, "list", [],
                          "Allow plain http for this registry host[:port]")


def _registry_flags(all_tags_help: str) -> list[Flag]:
    return [
        Flag("all-tags", "a", help=all_tags_help),
        Flag("disable-content-trust", None, "bool", True, "Skip image verification"),
        Flag("quiet", "q", help="Suppress verbose output"),
        _INSECURE_REGISTRY,
    ]


PULL = Command("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Pull an image or a repository from a registry",
               _registry_flags("Download all tagged images in the repository") + [
                   Flag("platform", None, "string", "", "Set platform if server is multi-platform capable"),
               ], min_args=1, max_args=1)
PUSH = Command("push", "[OPTIONS] NAME[:TAG]", "Push an image or a repository to a registry",
               _registry_flags("Push all tagged images in the repository"), min_args=1, max_args=1)


def _registry_args(cmd: Command, argv: list[str]):
    """pull's and push's flags, then the client-side refusals both make: (opts, reference);
    raises CommandLineError."""
    from hutch.images import reference as refs
    opts, args = cmd.parse(argv)
    if not opts["disable-content-trust"]:
        raise CommandLineError("content trust (image signing) is not supported by hutch", 125)
    try:
        return opts, refs.parse(args[0])
    except refs.InvalidReference as e:
        raise CommandLineError(str(e), 125) from None


def _registry_client(ctx, opts):
    from hutch.images import registry
    return registry.Client(ctx.paths, insecure=opts["insecure-registry"])


@command
def cmd_pull(ctx, argv) -> int:
    opts, ref = _registry_args(PULL, argv)
    from hutch.images import registry
    if opts["all-tags"] and (ref.tag or ref.digest):
        return err("tag can't be used with --all-tags/-a")
    from hutch.images.store import StoreError
    client = _registry_client(ctx, opts)
    out = registry.Progress(sys.stdout, quiet=opts["quiet"])
    try:
        if opts["all-tags"]:
            registry.pull_all_tags(image_store(ctx.paths), client, ref, out, platform=opts["platform"])
        else:
            if ref.tag is None and ref.digest is None:
                out.line("Using default tag: latest")
                ref = ref.tagged_or_latest()
            registry.pull(image_store(ctx.paths), client, ref, out, platform=opts["platform"])
    except (registry.RegistryError, StoreError) as e:
        return daemon_err(str(e))
    except (KeyError, TypeError, ValueError) as e:  # a manifest or config that is not JSON
        return daemon_err(f"invalid image manifest or config: {type(e).__name__}: {e}")
    if opts["quiet"]:
        print(str(ref))
    return 0


@command
def cmd_push(ctx, argv) -> int:
    opts, ref = _registry_args(PUSH, argv)
    from hutch.images import reference as refs, registry
    if ref.digest:
        return err("cannot push a digest reference")
    store = image_store(ctx.paths)
    with store.locked() as db:
        tags = sorted(t for t in db["tags"] if refs.parse(t).name == ref.name)
    if opts["all-tags"]:
        if ref.tag:
            return err("tag can't be used with --all-tags/-a")
    elif ref.tag is None:
        sys.stdout.write("Using default tag: latest\n")
        ref = ref.tagged_or_latest()
        tags = [str(ref)] if str(ref) in tags else []
    else:
        tags = [str(ref)] if str(ref) in tags else []
    if not tags:
        return err(f"An image does not exist locally with the tag: {ref.familiar_name}")
    client = _registry_client(ctx, opts)
    out = registry.Progress(sys.stdout, quiet=opts["quiet"])
    out.line(f"The push refers to repository [{ref.name}]")
    try:
        for t in tags:
            registry.push(store, client, refs.parse(t), out)
    except registry.RegistryError as e:
        return err(str(e))
    if opts["quiet"]:
        print(str(ref))
    return 0


LOGIN = Command("login", "[OPTIONS] [SERVER]", "Log in to a Docker registry.\nIf no server is "
                "specified, the default is defined by the daemon.", [
                    Flag("password", "p", "string", "", "Password"),
                    Flag("password-stdin", None, help="Take the password from stdin"),
                    Flag("username", "u", "string", "", "Username"),
                    _INSECURE_REGISTRY,
                ], max_args=1)


@command
def cmd_login(ctx, argv) -> int:
    opts, args = LOGIN.parse(argv)
    from hutch.images import auth, registry
    server = auth.server_key(args[0] if args else "")
    user, password = opts["username"], opts["password"]
    if password and opts["password-stdin"]:
        return err("--password and --password-stdin are mutually exclusive")
    if opts["password-stdin"]:
        if not user:
            return err("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use "
                         "--password-stdin.\n")
    if not user:
        if not sys.stdin.isatty():
            return err("Error: Cannot perform an interactive login from a non TTY device")
        user = input("Username: ").strip()
    if not password:
        if not sys.stdin.isatty():
            return err("Error: Cannot perform an interactive login from a non TTY device")
        import getpass
        password = getpass.getpass("Password: ")
    if not user:
        return err("Error: Non-null Username Required")
    try:
        _registry_client(ctx, opts).login(auth.registry_host(server), user, password)
    except registry.RegistryError as e:
        return daemon_err(str(e))
    auth.store_credentials(ctx.paths, server, user, password)
    print("Login Succeeded")
    return 0


LOGOUT = Command("logout", "[SERVER]", "Log out from a Docker registry.\nIf no server is "
                 "specified, the default is defined by the daemon.", [], max_args=1)


@command
def cmd_logout(ctx, argv) -> int:
    _, args = LOGOUT.parse(argv)
    from hutch.images import auth
    server = auth.server_key(args[0] if args else "")
    if not auth.remove_credentials(ctx.paths, server):
        print(f"Not logged in to {server}")
        return 0
    print(f"Removing login credentials for {server}")
    return 0
