"""Docker's json-file log driver: writing (with rotation) and reading (tail, since, follow).

One JSON object per line: {"log":"text\\n","stream":"stdout","time":"RFC3339Nano"}.
A line longer than 16 KiB, or the last bytes before exit without a newline, is written as
a partial entry (no trailing newline in "log"), as Docker does.
Rotation (max-size/max-file): <log> -> <log>.1 -> ... -> <log>.<max-file - 1>.
"""
from __future__ import annotations

import os
import time

PARTIAL_MAX = 16 * 1024
READ_BLOCK = 1 << 20
FOLLOW_RECHECK = 1.0    # seconds: logs -f rechecks the container's state at least this often


def _time(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    f = f"{frac:09d}".rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{base}.{f}Z" if f else f"{base}Z"


# Docker's jsonlog escapes, beyond JSON's own: the HTML characters and the JS line separators;
# other control characters (but \n, \r, \t) as \u00XX
_ESCAPES = {chr(c): f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"})
# bytes that keep a chunk off the fast path (every byte >= 0x80 too, by isascii)
_SPECIAL = bytes(c for c in range(0x20) if c != 0x0A) + b'"\\<>&'
_ESCAPE_RE = None


def _escape(data: bytes) -> bytes:
    """The JSON string body of `data` as Docker writes it (invalid UTF-8 as U+FFFD)."""
    if _plain(data):
        return data
    global _ESCAPE_RE
    if _ESCAPE_RE is None:
        import re
        _ESCAPE_RE = re.compile("[\x00-\x1f\"\\\\<>&\u2028\u2029]")
    text = data.decode("utf-8", "replace")
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text).encode()


class LogWriter:
    """Appends a stream's output as json-file entries: each read's complete lines are
    escaped and framed in one pass and written with one write (one timestamp per read)."""

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1):
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.pending = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        lines = data.split(b"\n")
        rest = lines.pop()                  # after the last newline: not a line yet
        suffix = self._suffix(stream, time.time_ns())
        out = []
        if lines:
            lines[0] = self.pending[stream] + lines[0]
            if max(map(len, lines)) <= PARTIAL_MAX and _plain(data) and _plain(lines[0]):
                # the whole batch in one join: the framing between lines is the separator
                lines[0] = b'{"log":"' + lines[0]
                lines[-1] += b"\\n" + suffix
                out.append((b"\\n" + suffix + b'{"log":"').join(lines))
            else:
                for line in lines:
                    while len(line) > PARTIAL_MAX:
                        out.append(self._entry(line[:PARTIAL_MAX], b"", suffix))
                        line = line[PARTIAL_MAX:]
                    out.append(self._entry(line, b"\\n", suffix))
        else:
            rest = self.pending[stream] + rest
        while len(rest) >= PARTIAL_MAX:
            out.append(self._entry(rest[:PARTIAL_MAX], b"", suffix))
            rest = rest[PARTIAL_MAX:]
        self.pending[stream] = rest
        for chunk in out:
            self._append(chunk)

    def flush_partial(self) -> None:
        """Write what is left without a newline (at exit: never lose the last line)."""
        now = time.time_ns()
        for stream, rest in self.pending.items():
            if rest:
                self._append(self._entry(rest, b"", self._suffix(stream, now)))
                self.pending[stream] = b""

    @staticmethod
    def _suffix(stream: str, ns: int) -> bytes:
        return f'","stream":"{stream}","time":"{_time(ns)}"}}\n'.encode()

    @staticmethod
    def _entry(data: bytes, end: bytes, suffix: bytes) -> bytes:
        return b'{"log":"' + _escape(data) + end + suffix

    def _append(self, entries: bytes) -> None:
        if self.max_size > 0 and self.size + len(entries) > self.max_size:
            if entries.count(b"\n") > 1:     # rotation is decided entry by entry
                for entry in entries.split(b"\n")[:-1]:
                    self._append(entry + b"\n")
                return
            if self.size > 0:
                self._rotate()
        view = memoryview(entries)
        while view:
            view = view[os.write(self.fd, view):]
        self.size += len(entries)

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            for n in range(self.max_file - 1, 1, -1):
                src = f"{self.path}.{n - 1}"
                if os.path.exists(src):
                    os.rename(src, f"{self.path}.{n}")
            os.rename(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = 0

    def close(self) -> None:
        self.flush_partial()
        os.close(self.fd)


def _plain(data: bytes) -> bool:
    return data.isascii() and len(data.translate(None, _SPECIAL)) == len(data)


def parse_size(value: str) -> int:
    """--log-opt max-size: 10k, 10m, 1g (units of 1024, as Docker's RAMInBytes)."""
    v = value.strip().lower()
    mult = 1
    for suffix, m in (("kb", 1024), ("mb", 1024 ** 2), ("gb", 1024 ** 3), ("k", 1024),
                      ("m", 1024 ** 2), ("g", 1024 ** 3), ("b", 1)):
        if v.endswith(suffix):
            v, mult = v[: -len(suffix)], m
            break
    try:
        n = float(v)
    except ValueError:
        raise ValueError(f"invalid size: '{value}'") from None
    return int(n * mult)


def log_files(path: str) -> list[str]:
    """Existing log files, oldest first."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def total_size(path: str) -> int:
    """Bytes in every log file of the container."""
    total = 0
    for f in log_files(path):
        try:
            total += os.stat(f).st_size
        except FileNotFoundError:
            pass
    return total


def parse_time_arg(value: str, now: float | None = None) -> float:
    """--since/--until: a Unix timestamp, an RFC3339 date, or a Go duration ago (10m, 1h30m)."""
    import re
    now = time.time() if now is None else now
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    m = re.fullmatch(r"((\d+(\.\d+)?)(h|m|s|ms|us|ns))+", value)
    if m:
        total = 0.0
        for num, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)", value):
            total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6,
                                   "ns": 1e-9}[unit]
        return now - total
    from hutch.engine.store import parse_iso
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            if fmt == "%Y-%m-%d":
                import calendar
                return calendar.timegm(time.strptime(value, fmt))
            return parse_iso(value if value.endswith("Z") else value + "Z")
        except ValueError:
            continue
    raise ValueError(f'invalid value for "since": failed to parse value as time or duration: "{value}"')


def entry_time(entry: dict) -> float:
    from hutch.engine.store import parse_iso
    return parse_iso(entry["time"])


def fixed_time(t: str) -> str:
    """RFC3339Nano with a fixed 9-digit fraction, as `docker logs -t` prints it."""
    main, _, frac = t.rstrip("Z").partition(".")
    return f"{main}.{frac.ljust(9, '0')}Z"


def parse_line(line: bytes) -> tuple[str, bytes, str] | None:
    """One json-file entry as (stream, text bytes, time): entries this writer framed are
    sliced without a JSON decode when their text holds no escape; None if unreadable."""
    if line.startswith(b'{"log":"'):
        end = line.find(b'","stream":"', 8)
        if end > 0:
            text = line[8:end]
            stream_end = line.find(b'"', end + 12)
            t = line.find(b'","time":"', stream_end)
            if stream_end > 0 and t == stream_end and line.endswith(b'"}'):
                if text.endswith(b"\\n") and text.find(b"\\", 0, len(text) - 2) < 0:
                    text = text[:-2] + b"\n"
                elif b"\\" in text:
                    text = None
                if text is not None:
                    return line[end + 12:stream_end].decode(), text, line[t + 10:-2].decode()
    import json     # here: the idle monitor imports this module, and json brings re and enum
    try:
        e = json.loads(line)
        return e.get("stream", "stdout"), e["log"].encode(), e["time"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _parse_lines(lines) -> list:
    return [r for r in map(parse_line, lines) if r is not None]


def read_raw(path: str, rotated_only: bool = False):
    """Every entry of every log file (or of the rotated ones only), oldest first, as
    parse_line's tuples, read in big blocks."""
    for f in log_files(path):
        if rotated_only and f == path:
            continue
        try:
            fh = open(f, "rb")
        except FileNotFoundError:
            continue
        with fh:
            rest = b""
            while block := fh.read(READ_BLOCK):
                lines = (rest + block).split(b"\n")
                rest = lines.pop()          # an entry still being written is not shown
                yield from _parse_lines(lines)


def read_entries(path: str, rotated_only: bool = False):
    """Every entry of every log file (or of the rotated ones only), oldest first, as dicts."""
    for stream, text, t in read_raw(path, rotated_only):
        yield {"log": text.decode("utf-8", "replace"), "stream": stream, "time": t}


class Follower:
    """Reads new entries from the live log, following it across rotation.

    Keeps the open file when the path is rotated away: it drains the old file to its end
    before switching to the new one, so no line is lost.
    """

    def __init__(self, path: str, start_at_end: bool = True):
        self.path = path
        self.fh = None
        self.buf = b""
        self._open(start_at_end)

    def _open(self, at_end: bool) -> None:
        try:
            self.fh = open(self.path, "rb")
        except FileNotFoundError:
            self.fh = None
            return
        if at_end:
            self.fh.seek(0, os.SEEK_END)

    def read(self) -> list[dict]:
        return [{"log": text.decode("utf-8", "replace"), "stream": stream, "time": t}
                for stream, text, t in self.read_raw()]

    def read_raw(self) -> list[tuple[str, bytes, str]]:
        """New entries since the last call, as parse_line's tuples."""
        out = []
        if self.fh is None:
            self._open(False)
            if self.fh is None:
                return out
        while True:
            out.extend(self._drain())
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return out
            if st.st_ino == os.fstat(self.fh.fileno()).st_ino:
                return out
            out.extend(self._drain())  # rotated: finish the old file first
            self.fh.close()
            self.buf = b""
            self._open(False)
            if self.fh is None:
                return out

    def _drain(self) -> list:
        out = []
        while data := self.fh.read(READ_BLOCK):
            lines = (self.buf + data).split(b"\n")
            self.buf = lines.pop()
            out.extend(_parse_lines(lines))
        return out

    def follow(self, still_running, emit) -> None:
        """emit() every new batch until still_running() is false, then the last ones.
        Sleeps on inotify of the log's directory (the exit record lands there too); the
        timeout only bounds a missed event."""
        import select
        from hutch import trace
        from hutch._sys import inotify
        fd = inotify.inotify_init1()
        try:
            inotify.inotify_add_watch(fd, os.path.dirname(self.path) or ".",
                                      inotify.IN_MODIFY | inotify.IN_CLOSE_WRITE
                                      | inotify.IN_MOVED_TO | inotify.IN_CREATE)
            trace.step("inotify", f"watch {os.path.dirname(self.path)}")
            while True:
                emit(self.read_raw())
                if not still_running():
                    emit(self.read_raw())
                    return
                if select.select([fd], [], [], FOLLOW_RECHECK)[0]:
                    try:
                        while os.read(fd, 65536):
                            pass
                    except BlockingIOError:
                        pass
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fh:
            self.fh.close()
