"""What the command modules say the same way: the command wrapper, error lines and their exit
codes, `key=value` and `--filter` lists, --format listings and template errors, the prune
prompt, the image store.

On every command's start-up path: it imports nothing but sys (and flags, already loaded).
"""
from __future__ import annotations

import sys

from hutch.cli.flags import CommandLineError

ERR = 1   # Docker's CLI exits 1 when the daemon reports an error
DAEMON = "Error response from daemon: "


def command(fn):
    """A command function's wrapper: flag errors, and engine refusals not handled where they
    happen (the daemon's error line, exit 1), reported the way Docker does, so the command
    function stays plain."""
    def wrapper(ctx, argv):
        try:
            return fn(ctx, argv)
        except CommandLineError as e:
            return e.report()
        except Exception as e:
            from hutch.engine.errors import EngineError   # loaded already if it was raised
            if not isinstance(e, EngineError):
                raise
            return daemon_err(str(e))
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


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


def print_rows(fmt: str, rows: list[dict], headers: dict, default_table: str) -> int:
    """--format over a listing: Go template rows (`table` adds the header line) on stdout;
    the exit code."""
    from hutch.cli.gotemplate import TemplateError, render_rows
    try:
        sys.stdout.write(render_rows(fmt, rows, headers, default_table))
    except TemplateError as e:
        return template_error(e)
    return 0


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
