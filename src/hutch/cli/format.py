"""Docker's human strings and tables: durations, container status, sizes, timestamps, the
COMMAND and PORTS columns, and Go's tabwriter as Docker configures it (min width 10,
padding 3). Pure functions; times are Unix seconds (float) or RFC 3339 strings.
"""
from __future__ import annotations

import time
import unicodedata
from datetime import datetime, timezone

ZERO_TIME = "0001-01-01T00:00:00Z"


# -- durations ------------------------------------------------------------------------------
def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "3 seconds", "About a minute", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def ago(when, now: float | None = None) -> str:
    """The CREATED column: "3 seconds ago", "About a minute ago"."""
    return human_duration(_now(now) - to_unix(when)) + " ago"


def status_string(state: dict, now: float | None = None) -> str:
    """The STATUS column from an inspect-style State (Docker's State.String()).

    Reads Running, Paused, Restarting, Dead, Status ("removing"), ExitCode, StartedAt,
    FinishedAt and, if present, Health.Status.
    """
    now = _now(now)
    started = state.get("StartedAt") or ZERO_TIME
    finished = state.get("FinishedAt") or ZERO_TIME
    code = state.get("ExitCode", 0)
    if state.get("Running"):
        up = human_duration(now - to_unix(started))
        if state.get("Paused"):
            return f"Up {up} (Paused)"
        if state.get("Restarting"):
            return f"Restarting ({code}) {human_duration(now - to_unix(finished))} ago"
        health = (state.get("Health") or {}).get("Status")
        if health:
            return f"Up {up} ({_health_text(health)})"
        return f"Up {up}"
    if state.get("Status") == "removing":
        return "Removal In Progress"
    if state.get("Dead"):
        return "Dead"
    if is_zero_time(started):
        return "Created"
    if is_zero_time(finished):
        return ""
    return f"Exited ({code}) {human_duration(now - to_unix(finished))} ago"


def _health_text(status: str) -> str:
    return "health: starting" if status == "starting" else status


# -- timestamps -----------------------------------------------------------------------------
def rfc3339nano(t) -> str:
    """Go's RFC3339Nano in UTC as Docker's JSON shows times ("2026-11-29T01:24:54.810781949Z",
    trailing zeros dropped). `t` is int nanoseconds, float seconds, or None/0 (zero time)."""
    if not t:
        return ZERO_TIME
    ns = t if isinstance(t, int) else round(t * 1e9)
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def is_zero_time(t) -> bool:
    return not t or (isinstance(t, str) and t.startswith("0001-01-01"))


def to_unix(t) -> float:
    """Seconds since the epoch from float/int seconds or an RFC 3339 string (any offset)."""
    if isinstance(t, (int, float)):
        return float(t)
    if is_zero_time(t):
        return -62135596800.0   # 0001-01-01T00:00:00Z
    s = t.strip()
    frac = 0.0
    main, tz = s, "+00:00"
    if s.endswith(("Z", "z")):
        main = s[:-1]
    elif len(s) > 6 and s[-6] in "+-" and s[-3] == ":":
        main, tz = s[:-6], s[-6:]
    if "." in main:
        main, digits = main.split(".", 1)
        frac = int(digits) / 10 ** len(digits)
    # fromisoformat and int(), not strptime: ps -a parses one per container (~20 us each
    # and _strptime's import, against ~1 us)
    offset = (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * (-1 if tz[0] == "-" else 1)
    return datetime.fromisoformat(main).replace(tzinfo=timezone.utc).timestamp() - offset + frac


def created_at_string(t) -> str:
    """Go's time.String() in UTC as `ps --format {{.CreatedAt}}` shows it."""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(int(to_unix(t))))


def _now(now):
    return time.time() if now is None else now


# -- sizes ----------------------------------------------------------------------------------
_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scaled(size: float, base: float, units: list[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision (decimal): "83.4MB" with precision 3 (images, ps -s,
    stats NET/BLOCK I/O), "83.41MB" with the default 4."""
    return _scaled(float(size), 1000.0, _DECIMAL, precision)


def bytes_size(size: float) -> str:
    """go-units BytesSize (binary, 4 digits), docker stats' memory: "83.41MiB", "656KiB"."""
    return _scaled(float(size), 1024.0, _BINARY, 4)


def percent(value: float) -> str:
    return f"{value:.2f}%"


# -- ids, commands, ports -------------------------------------------------------------------
def short_id(full_id: str) -> str:
    """Docker's TruncateID: drop an algorithm prefix, keep 12 characters."""
    return full_id.split(":", 1)[-1][:12]


def command_string(path: str, args: list[str]) -> str:
    """The daemon's COMMAND: path and args, args with a space wrapped in single quotes."""
    if not args:
        return path
    return path + " " + " ".join(f"'{a}'" if " " in a else a for a in args)


def ps_command(command: str, trunc: bool = True) -> str:
    """The ps COMMAND cell: Go-quoted, cut to 20 columns with "…" unless --no-trunc."""
    return go_quote(ellipsis(command, 20) if trunc else command)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    return sum(_char_width(c) for c in s)


def ellipsis(s: str, width: int) -> str:
    """Docker's formatter.Ellipsis: fit `s` in `width` display columns, ending in "…"."""
    if width <= 0:
        return ""
    if display_width(s) <= width:
        return s
    out, used = [], 0
    for ch in s:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def go_quote(s: str) -> str:
    """Go's strconv.Quote: double quotes, backslash escapes, printable Unicode kept."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v"}


def display_ports(ports: list[dict]) -> str:
    """The PORTS column from API-style ports ({IP, PrivatePort, PublicPort, Type}), as
    Docker 20.10 prints it: "0.0.0.0:8080->80/tcp, :::8080->80/tcp", ranges grouped
    ("80-81/tcp"), exposed-only ports as "80/tcp"."""
    ordered = sorted(ports, key=lambda p: (p.get("PrivatePort", 0), p.get("IP", "") or "",
                                           p.get("PublicPort", 0) or 0, p.get("Type", "")))
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for p in ordered:
        private, ip, typ = p.get("PrivatePort", 0), p.get("IP", "") or "", p.get("Type", "tcp")
        public = p.get("PublicPort", 0) or 0
        key = typ
        if ip:
            if public != private:
                mappings.append(f"{ip}:{public}->{private}/{typ}")
                continue
            key = f"{ip}/{typ}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_port_group(key, *group))
            groups[key] = [private, private]
    result.extend(_port_group(key, *groups[key]) for key in order)
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, typ = key.rpartition("/")
    ports = str(first) if first == last else f"{first}-{last}"
    if ip:
        ports = f"{ip}:{ports}->{ports}"
    return f"{ports}/{typ}"


# -- tables ---------------------------------------------------------------------------------
def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter (tabwidth 1, pad char ' ', no flags) as Docker's tables use it.

    Cells end with a tab; the text after a line's last tab is not aligned. A column's width
    is set per block of consecutive lines that have that column; a line without a tab ends
    the block (tabwriter flushes there).
    """
    trailing_newline = text.endswith("\n")
    lines = text.split("\n")
    if trailing_newline:
        lines.pop()
    out: list[str] = []
    block: list[list[str]] = []
    for line in lines:
        cells = line.split("\t")
        block.append(cells)
        if len(cells) == 1:
            out.extend(_format_block(block, minwidth, padding))
            block = []
    out.extend(_format_block(block, minwidth, padding))
    return "\n".join(out) + ("\n" if trailing_newline else "")


def _format_block(lines: list[list[str]], minwidth: int, padding: int) -> list[str]:
    rendered = [[] for _ in lines]
    _format_columns(lines, rendered, 0, 0, len(lines), minwidth, padding)
    return ["".join(parts) for parts in rendered]


def _format_columns(lines, rendered, column, line0, line1, minwidth, padding):
    """Lay out `column` for lines[line0:line1]; recursion handles the columns to its right.
    Mirrors tabwriter.format: a block is a run of lines that have a cell in `column`."""
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            _emit_last(lines, rendered, column, this)
            this += 1
            continue
        start = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, len(lines[this][column]) + padding)   # runes, as Go counts
            this += 1
        for i in range(start, this):
            cell = lines[i][column]
            rendered[i].append(cell + " " * (width - len(cell)))
        _format_columns(lines, rendered, column + 1, start, this, minwidth, padding)


def _emit_last(lines, rendered, column, i):
    if column == len(lines[i]) - 1:
        rendered[i].append(lines[i][column])


def table(rows: list[list[str]], header: list[str] | None = None) -> str:
    """A Docker table: each row's cells joined by tabs, laid out by tabwrite."""
    all_rows = ([header] if header else []) + rows
    return tabwrite("".join("\t".join(r) + "\n" for r in all_rows))
