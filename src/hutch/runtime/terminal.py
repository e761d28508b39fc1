"""The runtime's own side of a terminal, for `run`/`exec` in the foreground without a
--console-socket (as runc does): receive the pty master over an internal socket pair,
then copy our stdin to it and its output to our stdout until the process exits."""
from __future__ import annotations

import os
import select
import struct

# The C cores of signal and socket (see runtime.container).
import _signal as signal
from _socket import AF_UNIX, CMSG_SPACE, SCM_RIGHTS, SOCK_STREAM, SOL_SOCKET, socketpair

from hutch import _sys


def pair():
    """(ours, the container's): the container end stands in for a console socket."""
    return socketpair(AF_UNIX, SOCK_STREAM)


def send_master(sock, master: int) -> None:
    """The pty master over a console socket with SCM_RIGHTS, as runc sends it."""
    sock.sendmsg([b"/dev/ptmx"], [(SOL_SOCKET, SCM_RIGHTS, struct.pack("i", master))])


def receive_master(sock) -> int:
    fds: list[int] = []
    _msg, ancdata, _flags, _addr = sock.recvmsg(4096, CMSG_SPACE(4))
    for level, kind, data in ancdata:
        if level == SOL_SOCKET and kind == SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
    if not fds:
        raise OSError("no pty master received on the console socket")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]


def _copy_winsize(master: int) -> None:
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return
    _sys.set_winsize(master, size.lines, size.columns)


def proxy(master: int, pid: int) -> None:
    """Copy stdin → master and master → stdout until `pid` has exited and the pty drained."""
    import termios
    import tty
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: input typed ahead must reach it
    _copy_winsize(master)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(master))
    pidfd = os.pidfd_open(pid)
    watch = [master, pidfd, 0]
    try:
        while master in watch:
            ready, _, _ = select.select(watch, [], [])
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    watch.remove(0)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if data:
                    os.write(1, data)
                else:
                    watch.remove(master)
            if pidfd in ready:
                # The process is gone: take what is left in the pty, then stop.
                watch = [w for w in watch if w != 0 and w != pidfd]
                os.set_blocking(master, False)
                try:
                    while data := os.read(master, 65536):
                        os.write(1, data)
                except OSError:
                    pass
                break
    finally:
        os.close(pidfd)
        os.close(master)
        signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
