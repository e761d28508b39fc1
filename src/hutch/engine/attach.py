"""The client side of attach: the user's terminal or pipes <-> a monitor's attach stream.

Used by `run` (attached), `start -a`, `attach`. Output frames go to fds 1 and 2; stdin
bytes go to the monitor, except the detach sequence (default ctrl-p ctrl-q). With a
terminal: raw mode while attached, and the window size follows SIGWINCH.
"""
from __future__ import annotations

import _signal as signal   # not signal: its enums (with enum's import) cost ~1 ms of each run
import _socket
import os
import select

from hutch import fastjson
from hutch.engine.monitor import FRAME_EXIT, FRAME_STDERR, FRAME_STDOUT, connect

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec: str) -> bytes:
    """Docker's detach key syntax: comma-separated single chars or ctrl-<char>."""
    out = bytearray()
    for part in spec.split(","):
        if len(part) == 1:
            out.append(ord(part))
            continue
        low = part.lower()
        if low.startswith("ctrl-") and len(part) == 6:
            ch = low[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
                continue
            if ch in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[ch])
                continue
        raise ValueError(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


def resize(run_dir: str, rows: int, cols: int) -> None:
    try:
        s = connect(run_dir)
    except OSError:
        return
    try:
        s.sendall(fastjson.dumps({"op": "resize", "h": rows, "w": cols}).encode() + b"\n")
    except OSError:
        pass
    finally:
        s.close()


class Result:
    def __init__(self, kind: str, exit_code: int = 0):
        self.kind = kind            # "exit", "detached", "closed"
        self.exit_code = exit_code


def stream(sock: _socket.socket, *, stdin: bool, tty: bool, run_dir: str,
           detach_keys: bytes = b"\x10\x11", on_signal=None, redraw: bool = False) -> Result:
    """Pump until the container's exit frame, the detach sequence, or the end of stream.

    on_signal(signum): called for SIGINT/SIGTERM/... when signals are proxied (no tty).
    redraw: (attach to a running tty) the window is resized one row and column larger and
    back, so the program gets a SIGWINCH and redraws its screen (a shell its prompt), as
    users see on `docker attach`; a same-size resize sends no signal.
    """
    in_fd = 0 if stdin else None
    raw_saved = None
    if tty and in_fd is not None and os.isatty(in_fd):
        import termios
        import tty as ttymod
        raw_saved = termios.tcgetattr(in_fd)
        ttymod.setraw(in_fd, termios.TCSANOW)   # keep what was typed ahead
    rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wfd)
    pending: list[int] = []
    handled = [signal.SIGWINCH]
    if on_signal is not None:
        handled += [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                    signal.SIGUSR1, signal.SIGUSR2]
    old_handlers = {s: signal.signal(s, lambda n, f: pending.append(n)) for s in handled}
    if tty and run_dir:
        size = terminal_size(1) or terminal_size(0)
        if size:
            if redraw:
                resize(run_dir, size[0] + 1, size[1] + 1)
            resize(run_dir, *size)
    buf = b""
    held = b""
    try:
        while True:
            fds = [sock, rfd] + ([in_fd] if in_fd is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                ready = []
            if rfd in ready:
                try:
                    os.read(rfd, 512)
                except BlockingIOError:
                    pass
            while pending:
                n = pending.pop(0)
                if n == signal.SIGWINCH:
                    size = terminal_size(1) or terminal_size(0)
                    if size and run_dir:
                        resize(run_dir, *size)
                elif on_signal is not None:
                    on_signal(n)
            if in_fd is not None and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    in_fd = None
                    try:
                        sock.shutdown(_socket.SHUT_WR)
                    except OSError:
                        pass
                else:
                    send, held, detached = _scan_detach(held + data, detach_keys) \
                        if detach_keys else (data, b"", False)
                    if send:
                        try:
                            sock.sendall(send)
                        except OSError:
                            pass
                    if detached:
                        return Result("detached")
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return Result("closed")
                buf += data
                while len(buf) >= 8:
                    kind, n = buf[0], int.from_bytes(buf[4:8], "big")
                    if len(buf) < 8 + n:
                        break
                    payload, buf = buf[8:8 + n], buf[8 + n:]
                    if kind == FRAME_STDOUT:
                        _write_all(1, payload)
                    elif kind == FRAME_STDERR:
                        _write_all(2, payload)
                    elif kind == FRAME_EXIT:
                        return Result("exit", fastjson.loads(payload).get("ExitCode", 0))
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for s, h in old_handlers.items():
            signal.signal(s, h)
        os.close(rfd)
        os.close(wfd)
        if raw_saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, raw_saved)


def _scan_detach(data: bytes, keys: bytes) -> tuple[bytes, bytes, bool]:
    """Split data into (to send, held back as a possible prefix of keys, detached?)."""
    i = data.find(keys)
    if i >= 0:
        return data[:i], b"", True
    for n in range(min(len(keys) - 1, len(data)), 0, -1):
        if data.endswith(keys[:n]):
            return data[:-n], data[-n:], False
    return data, b"", False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        data = data[n:]
