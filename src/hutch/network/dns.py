"""The embedded DNS of user-defined networks: containers find each other by name and alias.

Where it runs: one small server process per hutch state root, in the host's netns, started
on the first connect to a user network and gone a while after the last such container
disconnects.
For each container the manager creates a UDP socket bound to 127.0.0.11:53 *inside the
container's netns* (setns, socket, setns back) and hands it to the server over a unix socket
(SCM_RIGHTS). So the container's resolv.conf says `nameserver 127.0.0.11`, as with Docker,
with no iptables redirect; the server knows which container asked by the socket the query
came on.

Answers: A records for the name, the aliases and the short id (alone or followed by
".<network name>") of every container on the networks the asking container is on, and
PTR records ("name.network") for their addresses (read from the endpoint records on disk, re-read when
they change). Other names are forwarded from the host netns to the upstream resolvers (the
container's --dns, else the host's non-localhost nameservers) and the reply relayed back.

Control protocol (one request per unix connection, reply "ok\\n"):
  {"op": "add", "cid": ID, "upstreams": [IP, ...]} + the UDP socket as SCM_RIGHTS
  {"op": "del", "cid": ID}
  {"op": "stop", "cid": ""}
  {"op": "ping", "cid": ""}
The server exits LINGER seconds after its last container left, or at once on "stop".
"""
from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time

TTL = 600
FORWARD_TIMEOUT = 2.0
STARTUP_GRACE = 5.0      # a server nobody registers with exits after this
LINGER = 30.0            # kept this long after its last container, so restarts find it


def _dir(paths) -> str:
    return os.path.join(paths.run, "network")


def sock_path(paths) -> str:
    return os.path.join(_dir(paths), "dns.sock")


def upstreams(dns=()) -> list[str]:
    from hutch.network import etcfiles
    return etcfiles.upstreams(etcfiles.read_host_resolv(), dns)


# ------------------------------------------------------------------ client side (manager)
def _send(paths, msg: dict, fds=()) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.settimeout(5)
    try:
        s.connect(sock_path(paths))
        socket.send_fds(s, [json.dumps(msg).encode()], list(fds))
        s.shutdown(socket.SHUT_WR)
        return s.recv(16) == b"ok\n"
    except OSError:
        return False
    finally:
        s.close()


def _start_server(paths) -> None:
    """Start the server detached. From a single-threaded process (the CLI) a double fork is
    enough and costs ~1 ms, the modules being loaded already; a threaded one (the API server)
    must not fork, so it execs a fresh interpreter (~50 ms, once)."""
    import threading
    os.makedirs(_dir(paths), exist_ok=True)
    from hutch import trace
    trace.step("fork", "embedded DNS server", socket=sock_path(paths))
    if threading.active_count() > 1:
        import subprocess
        subprocess.Popen([sys.executable, "-m", "hutch.network.dns", sock_path(paths), paths.networks],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        return
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        import signal
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        # Inherited descriptors (the networks lock above all) must not live on in the server.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        code = main([sock_path(paths), paths.networks])
    except BaseException:
        code = 1
    os._exit(code)


def register(paths, cid: str, netns_path: str, servers: list[str]) -> bool:
    """Give the DNS server a socket on 127.0.0.11:53 in the container's netns; True when the
    server had to be started (so the caller re-registers the containers it lost)."""
    from hutch.network.errors import NetworkError
    from hutch.network.netlink import in_netns
    with in_netns(netns_path, "to bind the embedded DNS on 127.0.0.11:53"):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        udp.bind(("127.0.0.11", 53))
        msg = {"op": "add", "cid": cid, "upstreams": servers}
        if _send(paths, msg, [udp.fileno()]):
            return False
        _start_server(paths)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if _send(paths, msg, [udp.fileno()]):
                return True
            time.sleep(0.02)
        raise NetworkError("embedded DNS server did not start")
    finally:
        udp.close()


def unregister(paths, cid: str) -> None:
    if os.path.exists(sock_path(paths)):
        _send(paths, {"op": "del", "cid": cid})


def alive(paths) -> bool:
    return _send(paths, {"op": "ping", "cid": ""})


def stop(paths) -> None:
    """Stop the server now (every user network of the root is being torn down)."""
    if os.path.exists(sock_path(paths)):
        _send(paths, {"op": "stop", "cid": ""})


# ------------------------------------------------------------------ DNS messages
def parse_query(data: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, qname, qtype, end of question) or None when malformed."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack_from("!HHH", data)
    if qd != 1 or flags & 0x8000:
        return None
    labels, i = [], 12
    while i < len(data):
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(data):
            return None
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(data):
        return None
    qtype, _ = struct.unpack_from("!HH", data, i)
    return qid, flags, ".".join(labels).lower(), qtype, i + 4


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".")) + b"\0"


def answer(data: bytes, end: int, ips: list[str], rcode: int = 0, ptr: str | None = None) -> bytes:
    """The reply to the query in `data`: A records for `ips`, or one PTR record."""
    qid, flags = struct.unpack_from("!HH", data)
    rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA RD(copied) RA
    count = 1 if ptr else len(ips)
    out = struct.pack("!HHHHHH", qid, rflags, 1, count, 0, 0) + data[12:end]
    if ptr:
        rdata = encode_name(ptr)
        return out + struct.pack("!HHHIH", 0xC00C, 12, 1, TTL, len(rdata)) + rdata
    for ip in ips:
        out += struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(ip)
    return out


def reverse_ip(name: str) -> str | None:
    """"2.0.18.172.in-addr.arpa" → "172.18.0.2"."""
    parts = name.split(".")
    if len(parts) != 6 or parts[4:] != ["in-addr", "arpa"] or not all(p.isdigit() for p in parts[:4]):
        return None
    return ".".join(reversed(parts[:4]))


# ------------------------------------------------------------------ server
class Server:
    def __init__(self, control: str, networks_dir: str):
        import selectors
        self.control_path = control
        self.networks_dir = networks_dir
        self.sel = selectors.DefaultSelector()
        self.containers: dict[str, tuple[socket.socket, list[str]]] = {}
        self.pending: dict[socket.socket, tuple] = {}   # upstream socket → query state
        self.idle_since = time.monotonic()
        self.emptied = False          # the last container went away: linger, then exit
        self.stopped = False

    def serve(self) -> None:
        import selectors
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            os.unlink(self.control_path)
        except FileNotFoundError:
            pass
        listener.bind(self.control_path)
        listener.listen(64)
        self.sel.register(listener, selectors.EVENT_READ, "control")
        while True:
            for key, _ in self.sel.select(timeout=0.5):
                if key.data == "control":
                    self.control(listener)
                elif key.data == "upstream":
                    self.relay(key.fileobj)
                else:
                    self.query(key.fileobj, key.data)
            self.expire()
            idle = time.monotonic() - self.idle_since
            if self.stopped or (not self.containers and not self.pending and
                                idle > (LINGER if self.emptied else STARTUP_GRACE)):
                # Unlink first: a client that finds no socket starts a fresh server.
                os.unlink(self.control_path)
                listener.close()
                return

    def control(self, listener) -> None:
        conn, _ = listener.accept()
        conn.settimeout(2)
        try:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            msg = json.loads(data)
            cid = msg["cid"]
            if msg["op"] == "add" and fds:
                self.drop(cid)
                s = socket.socket(fileno=fds[0])
                self.containers[cid] = (s, msg.get("upstreams") or [])
                self.sel.register(s, 1, cid)
            elif msg["op"] == "del":
                self.drop(cid)
                self.emptied = not self.containers
            elif msg["op"] == "stop":
                for c in list(self.containers):
                    self.drop(c)
                self.stopped = True
            conn.sendall(b"ok\n")
        except (OSError, ValueError, KeyError):
            pass
        finally:
            conn.close()

    def drop(self, cid: str) -> None:
        entry = self.containers.pop(cid, None)
        if entry:
            self.sel.unregister(entry[0])
            entry[0].close()
        if not self.containers:
            self.idle_since = time.monotonic()

    def networks(self):
        """(name→[ip], ip→"name.network", member ids) per network, read afresh: the records
        are small, and a cache keyed on mtime would miss two writes in one clock tick."""
        try:
            ids = os.listdir(self.networks_dir)
        except FileNotFoundError:
            return
        for nid in ids:
            try:
                with open(os.path.join(self.networks_dir, nid, "endpoints.json")) as f:
                    eps = json.load(f)
                with open(os.path.join(self.networks_dir, nid, "network.json")) as f:
                    netname = json.load(f)["Name"].lower()
            except (OSError, ValueError, KeyError):
                continue
            names: dict[str, list[str]] = {}
            reverse: dict[str, str] = {}
            for cid, ep in eps.items():
                if not ep.get("ip"):
                    continue
                reverse[ep["ip"]] = f"{ep['name']}.{netname}"
                for n in [ep["name"], cid[:12], *ep.get("aliases", [])]:
                    names.setdefault(n.lower(), []).append(ep["ip"])
                    # "web.mynet", as Docker also answers
                    names.setdefault(f"{n.lower()}.{netname}", []).append(ep["ip"])
            yield names, reverse, set(eps)

    def lookup(self, cid: str, name: str) -> list[str] | None:
        found = None
        for names, _, members in self.networks():
            if cid in members and name in names:
                found = (found or []) + [ip for ip in names[name] if ip not in (found or [])]
        return found

    def lookup_ptr(self, cid: str, ip: str) -> str | None:
        for _, reverse, members in self.networks():
            if cid in members and ip in reverse:
                return reverse[ip]
        return None

    def query(self, s: socket.socket, cid: str) -> None:
        try:
            data, client = s.recvfrom(4096)
        except OSError:
            return
        q = parse_query(data)
        if q is None:
            return
        _, _, name, qtype, end = q
        name = name.rstrip(".")
        if qtype == 12 and reverse_ip(name):
            ptr = self.lookup_ptr(cid, reverse_ip(name))
            if ptr:
                s.sendto(answer(data, end, [], ptr=ptr), client)
                return
        ips = self.lookup(cid, name)
        if ips is not None:
            s.sendto(answer(data, end, ips if qtype == 1 else []), client)
            return
        servers = self.containers.get(cid, (None, []))[1]
        self.forward(s, client, data, end, servers)

    def forward(self, s, client, data, end, servers) -> None:
        import selectors
        if not servers:
            s.sendto(answer(data, end, [], rcode=2), client)   # SERVFAIL
            return
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            up.sendto(data, (servers[0], 53))
        except OSError:
            up.close()
            return self.forward(s, client, data, end, servers[1:])
        self.pending[up] = (s, client, data, end, servers[1:], time.monotonic() + FORWARD_TIMEOUT)
        self.sel.register(up, selectors.EVENT_READ, "upstream")

    def relay(self, up: socket.socket) -> None:
        s, client, *_ = self.pending.pop(up)
        self.sel.unregister(up)
        try:
            reply = up.recv(65536)
            s.sendto(reply, client)
        except OSError:
            pass
        up.close()

    def expire(self) -> None:
        now = time.monotonic()
        for up, (s, client, data, end, rest, deadline) in list(self.pending.items()):
            if now > deadline:
                del self.pending[up]
                self.sel.unregister(up)
                up.close()
                if s.fileno() >= 0:
                    self.forward(s, client, data, end, rest)


def main(argv: list[str]) -> int:
    import fcntl
    control, networks_dir = argv
    lock = os.open(control + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0          # another server of this root is running
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())   # who to kill, for an admin or a test
    Server(control, networks_dir).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
