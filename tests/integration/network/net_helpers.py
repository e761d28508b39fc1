"""Helpers of the network tests: containers without the engine (a child alone in a new netns),
TCP in and out of them."""
import os
import socket
import subprocess
import threading
import time

from hutch.network.netlink import Netlink, in_netns


def links() -> set[str]:
    with Netlink() as nl:
        return {l["name"] for l in nl.links()}


class FakeContainer:
    """A process alone in a new network namespace; `.netns` is its /proc path."""

    def __init__(self):
        self.proc = subprocess.Popen(["unshare", "--net", "sleep", "600"])
        own = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 5
        self.netns = f"/proc/{self.proc.pid}/ns/net"
        while os.stat(self.netns).st_ino == own:
            assert time.monotonic() < deadline, "unshare did not make a netns"
            time.sleep(0.005)
        self.cid = os.urandom(32).hex()

    def run(self, *cmd, timeout=10) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={self.netns}", *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def ping(self, ip: str) -> bool:
        return self.run("busybox", "ping", "-c", "1", "-W", "1", ip).returncode == 0

    def socket(self, kind=socket.SOCK_STREAM) -> socket.socket:
        with in_netns(self.netns):
            return socket.socket(socket.AF_INET, kind)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def serve_once(sock: socket.socket, reply: bytes) -> threading.Thread:
    """Accept one TCP connection on a listening socket and answer `reply`."""
    def run():
        sock.settimeout(10)
        try:
            conn, _ = sock.accept()
            with conn:
                conn.sendall(reply)
        except OSError:
            pass
        finally:
            sock.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def fetch(sock: socket.socket, addr) -> bytes:
    sock.settimeout(5)
    with sock:
        sock.connect(addr)
        return sock.recv(100)
