"""`exec`: run a process in a running container, with the caller's stdio or a pty.

No monitor is involved (Docker's shim holds exec stdio; here the command itself does, as
`runc exec` does): the process is the command's child (child subreaper), its exit status
is the command's exit code.
"""
from __future__ import annotations

import os

from hutch import trace


def run(paths, c, proc: dict, *, detach: bool, tty: bool, interactive: bool) -> int:
    from hutch.runtime import container as rt
    from hutch.runtime.errors import RuntimeFailure
    state_root = paths.runtime_state
    trace.step("exec", f"in {c.id[:12]}: {proc['args']}")
    try:
        if tty and not detach:
            return _run_tty(state_root, c.id, proc, interactive)
        if detach:
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            try:
                if tty:
                    proc = dict(proc, terminal=False)
                rt.exec_process(state_root, c.id, proc, detach=True, stdio=(null, null, null))
            finally:
                os.close(null)
            return 0
        stdin = 0
        null = None
        if not interactive:
            null = stdin = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return rt.exec_process(state_root, c.id, proc, stdio=(stdin, 1, 2))
        finally:
            if null is not None:
                os.close(null)
    except RuntimeFailure as e:
        import sys
        sys.stderr.write(f"OCI runtime exec failed: exec failed: {e}: unknown\n")
        return 126


def _run_tty(state_root: str, cid: str, proc: dict, interactive: bool) -> int:
    """A pty for the exec'd process: its master comes over a console socket."""
    import select
    import socket
    import tempfile
    from hutch import _sys
    from hutch.runtime import container as rt
    _sys.set_child_subreaper()
    with tempfile.TemporaryDirectory(prefix="hutch-exec-") as tmp:
        path = os.path.join(tmp, "console.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        lsock.bind(path)
        lsock.listen(1)
        pid = rt.exec_process(state_root, cid, proc, detach=True, console_socket=path)
        conn, _ = lsock.accept()
        with conn:
            _msg, fds, _f, _a = socket.recv_fds(conn, 4096, 1)
        lsock.close()
    master = fds[0]
    size = None
    try:
        size = os.get_terminal_size(1)
    except OSError:
        pass
    if size:
        _sys.set_winsize(master, size.lines, size.columns)
    saved = None
    if interactive and os.isatty(0):
        import termios
        import tty as ttymod
        saved = termios.tcgetattr(0)
        ttymod.setraw(0, termios.TCSANOW)
    try:
        in_fd = 0 if interactive else None
        while True:
            fds_ = [master] + ([in_fd] if in_fd is not None else [])
            ready, _, _ = select.select(fds_, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if in_fd is not None and in_fd in ready:
                data = os.read(in_fd, 65536)
                if not data:
                    in_fd = None
                    os.write(master, b"\x04")
                else:
                    os.write(master, data)
    finally:
        if saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
