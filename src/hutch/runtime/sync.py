"""The sync channel between the runtime (parent) and the container's processes.

One SOCK_SEQPACKET socketpair; each message is one JSON object with a "type".

    parent                         intermediate (stage 1)            init (stage 2, PID 1)
    fork ────────────────────────▶ setns into `path` namespaces
    makes the cgroup, applies      unshare(CLONE_NEWUSER)?
    its limits
          ◀──────────────── "userns"
    writes uid_map/gid_map
    "userns-done" ───────────────▶ unshare(the others but cgroup)
                                   fork ──────────────────────────▶
          ◀──────────── "pid" {pid}
    reaps the intermediate                                           mounts up to the first
    "cgroup-made" {dirs} ─────────────────────────────────────────▶ cgroup mount, which
    writes the limits, moves the init into the cgroup                binds `dirs`, the
    "cgroup" {join} ──────────────────────────────────────────────▶ others, devices;
                                                                     joins `join`'s files,
                                                                     unshare(CLONE_NEWCGROUP)
          ◀─────────────────────────────────────────────── "hooks" (only if hooks exist)
    prestart, createRuntime hooks
    "resume" {state} ─────────────────────────────────────────────▶ createContainer hooks,
                                                                     pivot_root, caps, ...
          ◀─────────────────────────────────────────────── "ready"
    writes the state file, returns                                   blocks on exec.fifo
                                                                     until `start`, execve

Without a user namespace or a pid namespace to join there is no intermediate (runc's
usual case): the parent unshares CLONE_NEWPID for its next child only, forks the init
itself, and knows its pid; the init enters its namespaces, "pid" is not sent, and
"cgroup-made" comes before the limits are written. Then nobody moves the init: it is forked
into the cgroup2 directory (clone3's CLONE_INTO_CGROUP), and joins each v1 hierarchy itself,
writing "0" to the `tasks` files "cgroup" lists in `join`: a move by another process waits
for the kernel (an RCU grace period, 10-20 ms) after a quiet spell; these do not.

`run` (create + start) opens the exec fifo's read end right after "cgroup": the init then
does not block on it, and execs as soon as it is ready.

`exec` is shorter: the intermediate joins the namespaces, forks and sends "pid"; the parent
moves that process into the cgroup and sends "cgroup"; it sets itself up, sends "ready" and
execs.

Any stage may send "error" {msg} instead; the parent prints that one line. The socket is
close-on-exec in the init, so for `exec` a clean EOF after "ready" means execve succeeded.
"""
from __future__ import annotations

import os
from _socket import AF_UNIX, MSG_DONTWAIT, SOCK_SEQPACKET, socketpair

from hutch.oci.runtime_spec import dump_json, parse_json

# Far above any message (an error line, the cgroup's directories), and below malloc's mmap
# threshold: a larger buffer is an mmap, mremap and munmap for every message received.
MAX_MESSAGE = 1 << 16
_MAX_TEXT = MAX_MESSAGE // 16  # characters of a "msg" that fit, however escaped (<= 12 bytes)


def pair():
    """Two connected sockets, close-on-exec. _socket's: the socket module's enums cost
    ~2 ms of import on every runtime call."""
    return socketpair(AF_UNIX, SOCK_SEQPACKET)


def send(sock, kind: str, **fields) -> None:
    """Send one message. When the other side has already exited, its last message (an
    "error") is still queued for us: that, not "broken pipe", is what is raised."""
    fields["type"] = kind
    data = dump_json(fields).encode()
    if len(data) > MAX_MESSAGE and len(fields.get("msg", "")) > _MAX_TEXT:
        # An error that long (a failed hook's whole output) is cut to what recv() reads.
        fields["msg"] = fields["msg"][:_MAX_TEXT] + "..."
        data = dump_json(fields).encode()
    try:
        # write(2), not send(2): a seccomp profile loaded before the last messages is far
        # more likely to allow write.
        os.write(sock.fileno(), data)
    except (BrokenPipeError, ConnectionResetError):
        data = _queued(sock)
        msg = parse_json(data.decode()) if data else {}
        if msg.get("type") == "error":
            raise ProtocolError(msg["msg"]) from None
        raise ProtocolError("container init exited unexpectedly") from None


def recv(sock) -> dict | None:
    """The next message, or None when the other side closed."""
    try:
        data = sock.recv(MAX_MESSAGE)
    except ConnectionResetError:
        # The other side exited leaving our messages unread: the kernel reports that (once)
        # before the messages it had queued for us, such as its last one, an "error".
        data = _queued(sock)
    if not data:
        return None
    return parse_json(data.decode())


def _queued(sock) -> bytes:
    """A message already queued for us from a side that has gone, or b""."""
    try:
        return sock.recv(MAX_MESSAGE, MSG_DONTWAIT)
    except OSError:
        return b""


class ProtocolError(Exception):
    pass


def expect(sock, kind: str) -> dict:
    """Wait for `kind`; an "error" message or EOF raises ProtocolError with its text."""
    msg = recv(sock)
    if msg is None:
        raise ProtocolError("container init exited unexpectedly")
    if msg["type"] == "error":
        raise ProtocolError(msg["msg"])
    if msg["type"] != kind:
        raise ProtocolError(f"sync: expected {kind!r}, got {msg['type']!r}")
    return msg
