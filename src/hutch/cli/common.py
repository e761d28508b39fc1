"""What the command modules say the same way: error lines and their exit codes, `key=value`
lists, `--filter` lists, Go-template errors, the prune prompt, the image store.

On every command's start-up path: it imports nothing but sys (and flags, already loaded).
"""
from __future__ import annotations

import sys

from hutch.cli.flags import CommandLineError

ERR = 1   # Docker's CLI exits 1 when the daemon reports an error
DAEMON = "Error response from daemon: "


def err(msg: str, code: int = ERR) -> int:
    """One line on stderr (flushed, so it stays in order with what stdout flushed);
    returns the exit code."""
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.stderr.flush()
    return code


def daemon_err(msg: str, code: int = ERR) -> int:
    return err(DAEMON + msg, code)


def template_error(e) -> int:
    """Docker: a template that does not parse is a usage error (125); one that fails while
    it runs is a plain error."""
    if getattr(e, "parse", True):
        return err(f"template parsing error: {e}", 125)
    return err(str(e))


def key_values(items: list[str]) -> dict[str, str]:
    """`--label k=v`, `-o k=v`: the last value of a key wins; `k` alone is `k=""`."""
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """`-f key=value`, repeatable, as Docker's filters.ParseFlag reads it: {key: [values]},
    the key lower-cased, both sides trimmed. An item without `=` is the CLI's own error
    (CommandLineError, exit 1); which keys a command knows is the command's check."""
    out: dict[str, list[str]] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise CommandLineError("bad format of filter (expected name=value)", ERR)
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


def confirm(warning: str) -> bool:
    """The prune commands' prompt; only y or yes goes on."""
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def image_store(paths):
    from hutch.images.store import ImageStore
    return ImageStore(paths.images, paths.containers)
