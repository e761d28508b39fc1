"""Docker's json-file log driver: writing (with rotation) and reading (tail, since, follow).

One JSON object per line: {"log":"text\\n","stream":"stdout","time":"RFC3339Nano"}.
A line longer than 16 KiB, or the last bytes before exit without a newline, is written as
a partial entry (no trailing newline in "log"), as Docker does.
Rotation (max-size/max-file): <log> -> <log>.1 -> ... -> <log>.<max-file - 1>.
"""
from __future__ import annotations

import json
import os
import time

PARTIAL_MAX = 16 * 1024


def _time(ns: int) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    f = f"{frac:09d}".rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{base}.{f}Z" if f else f"{base}Z"


class LogWriter:
    def __init__(self, path: str, max_size: int = -1, max_file: int = 1):
        self.path = path
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.pending = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        lines = buf.split(b"\n")
        self.pending[stream] = lines.pop()
        now = time.time_ns()
        out = [self._entry(stream, line + b"\n", now) for line in lines]
        while len(self.pending[stream]) >= PARTIAL_MAX:
            out.append(self._entry(stream, self.pending[stream][:PARTIAL_MAX], now))
            self.pending[stream] = self.pending[stream][PARTIAL_MAX:]
        for entry in out:
            self._append(entry)

    def flush_partial(self) -> None:
        """Write what is left without a newline (at exit: never lose the last line)."""
        now = time.time_ns()
        for stream, rest in self.pending.items():
            if rest:
                self._append(self._entry(stream, rest, now))
                self.pending[stream] = b""

    @staticmethod
    def _entry(stream: str, data: bytes, ns: int) -> bytes:
        return (json.dumps({"log": data.decode("utf-8", "replace"), "stream": stream,
                            "time": _time(ns)}, ensure_ascii=False, separators=(",", ":"))
                + "\n").encode()

    def _append(self, entry: bytes) -> None:
        if self.max_size > 0 and self.size > 0 and self.size + len(entry) > self.max_size:
            self._rotate()
        os.write(self.fd, entry)
        self.size += len(entry)

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


def read_entries(path: str, rotated_only: bool = False):
    """Every entry of every log file (or of the rotated ones only), oldest first."""
    for f in log_files(path):
        if rotated_only and f == path:
            continue
        try:
            with open(f, "rb") as fh:
                for line in fh:
                    if line.endswith(b"\n"):
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue
        except FileNotFoundError:
            continue


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

    def _drain(self) -> list[dict]:
        data = self.fh.read()
        if not data:
            return []
        self.buf += data
        lines = self.buf.split(b"\n")
        self.buf = lines.pop()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def close(self) -> None:
        if self.fh:
            self.fh.close()
