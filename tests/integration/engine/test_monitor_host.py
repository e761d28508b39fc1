"""The monitor host (engine.monitor_host): one per state root, started on demand, the parent
of the containers' monitors, gone soon after the last; a killed host hurts no container."""
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.root

HOST_NAME = b"hutch-monitor-host"


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _hosts(hutch) -> set[int]:
    """The root's host processes: its command line, and not a monitor (forked from it, a
    monitor shares it) nor a monitor's passing helper."""
    monitors = {hutch.internal_state(c)["MonitorPid"]
                for c in hutch.ok("ps", "-q").split()}
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        cmd = _cmdline(pid)
        if HOST_NAME in cmd and hutch.root.encode() in cmd and pid not in monitors:
            try:
                if _ppid(pid) not in monitors:
                    out.add(pid)
            except OSError:
                pass
    return out


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().rstrip("\n")


def _wait(pred, deadline=10.0):
    end = time.monotonic() + deadline
    while True:
        value = pred()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def _one_host(hutch) -> int:
    hosts = _wait(lambda: _hosts(hutch) if len(_hosts(hutch)) == 1 else None)
    assert hosts and len(hosts) == 1, _hosts(hutch)
    return next(iter(hosts))


def _no_host(hutch) -> None:
    assert _wait(lambda: not _hosts(hutch)), _hosts(hutch)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _monitor(hutch, ref: str) -> int:
    return hutch.internal_state(ref)["MonitorPid"]


def test_started_on_demand_shared_and_gone_after_the_last(hutch, name):
    _no_host(hutch)
    hutch.ok("run", "-d", "--name", name + "1", "busybox", "sleep", "300")
    host = _one_host(hutch)     # started by that first run, which did not wait for it
    assert HOST_NAME in _cmdline(host) and hutch.root.encode() in _cmdline(host)
    hutch.ok("run", "-d", "--name", name + "2", "busybox", "sleep", "300")
    hutch.ok("run", "-d", "--name", name + "3", "busybox", "sleep", "300")
    # named in ps, not "python" (the first's monitor, not the host's, names itself again
    # after its exec of the idle loop)
    for n in (name + "1", name + "2", name + "3"):
        assert _wait(lambda: _comm(_monitor(hutch, n)) == "hutch-monitor")
    for n in (name + "2", name + "3"):
        assert _ppid(_monitor(hutch, n)) == host
        # the monitor is the parent of the container's init (once its starter, the
        # init's parent during the first quarter second, has handed the container over)
        assert _wait(lambda: _ppid(hutch.state(n)["Pid"]) == _monitor(hutch, n))
    assert hutch.ok("exec", name + "2", "echo", "hi") == "hi\n"
    # --debug still shows the start's kernel steps on the user's stderr
    r = hutch("--debug", "run", "--rm", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert "cgroup: " in r.stderr and "mount: " in r.stderr, r.stderr
    hutch.ok("stop", "-t", "0", name + "2")
    st = hutch.state(name + "2")
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and not st["Error"], st
    assert _hosts(hutch) == {host}      # still serving name3 (and name1's host mate)
    hutch.ok("rm", "-f", name + "1", name + "2", name + "3")
    _no_host(hutch)


def test_killed_host_leaves_running_containers_working(hutch, name):
    hutch.ok("run", "-d", "--name", name + "a", "busybox", "sleep", "300")
    host = _one_host(hutch)
    hutch.ok("run", "-d", "--name", name + "b", "busybox", "sh", "-c", "echo out; sleep 300")
    mon = _monitor(hutch, name + "b")
    assert _ppid(mon) == host
    os.kill(host, signal.SIGKILL)
    assert _wait(lambda: _gone(host))
    # its monitors live on: logs, attach-side waits, exit records
    assert os.path.exists(f"/proc/{mon}")
    assert hutch.ok("logs", name + "b") == "out\n"
    hutch.ok("stop", "-t", "0", name + "b")
    st = hutch.state(name + "b")
    assert st["Status"] == "exited" and st["ExitCode"] == 137 and not st["Error"], st
    # the next start brings a new host up (the old socket is stale)
    hutch.ok("run", "-d", "--name", name + "c", "busybox", "sleep", "300")
    new = _one_host(hutch)
    hutch.ok("run", "-d", "--name", name + "d", "busybox", "sleep", "300")
    assert new != host
    assert _ppid(_monitor(hutch, name + "d")) == new
    hutch.ok("rm", "-f", name + "a", name + "b", name + "c", name + "d")
    _no_host(hutch)


def test_stale_socket_is_replaced(hutch, name):
    _no_host(hutch)
    run = os.path.join(hutch.root, "run")
    os.makedirs(run, exist_ok=True)
    path = os.path.join(run, "monitor-host.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)       # bound, never listening, closed: what a killed host leaves
    s.close()
    hutch.ok("run", "-d", "--name", name + "1", "busybox", "sleep", "300")
    host = _one_host(hutch)
    hutch.ok("run", "-d", "--name", name + "2", "busybox", "sleep", "300")
    assert _ppid(_monitor(hutch, name + "2")) == host
    hutch.ok("rm", "-f", name + "1", name + "2")
    _no_host(hutch)
    assert not os.path.exists(path)


def test_parallel_starts_make_one_host(hutch, name):
    _no_host(hutch)
    names = [f"{name}{k}" for k in range(4)]
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda n: hutch("run", "-d", "--name", n, "busybox",
                                                "sleep", "300"), names))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    host = _one_host(hutch)
    hutch.ok("run", "-d", "--name", name + "x", "busybox", "sleep", "300")
    assert _ppid(_monitor(hutch, name + "x")) == host
    assert all(hutch.state(n)["Running"] for n in names)
    hutch.ok("rm", "-f", *names, name + "x")
    _no_host(hutch)


def test_dropped_and_silent_connections_do_not_hold_the_host(hutch, name):
    # the host forks a monitor for each connection, which accepts and reads it: one that
    # closes at once, or sends nothing, costs that monitor, never the next request
    hutch.ok("run", "-d", "--name", name + "1", "busybox", "sleep", "300")
    host = _one_host(hutch)
    path = os.path.join(hutch.root, "run", "monitor-host.sock")
    dropped, silent = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
    dropped.connect(path)
    dropped.close()
    silent.connect(path)
    try:
        hutch.ok("run", "-d", "--name", name + "2", "busybox", "sleep", "300")
        assert _ppid(_monitor(hutch, name + "2")) == host
    finally:
        silent.close()
    hutch.ok("rm", "-f", name + "1", name + "2")
    _no_host(hutch)


def test_a_sleeping_monitor_wakes_for_clients_output_and_the_exit(hutch, name):
    # after the hand-over an idle container's monitor sleeps on its starter's epoll and
    # builds its loop only at the first event: a client (wait), output, the init's exit
    hutch.ok("run", "-d", "--name", name + "1", "busybox", "sleep", "300")
    host = _one_host(hutch)
    script = "sleep 1.5; echo late; sleep 0.5; exit 3"
    for n in (name + "w", name + "o"):
        hutch.ok("run", "-d", "--name", n, "busybox", "sh", "-c", script)
        assert _ppid(_monitor(hutch, n)) == host
    assert _wait(lambda: _ppid(hutch.state(name + "w")["Pid"]) == _monitor(hutch, name + "w"))
    assert hutch.ok("wait", name + "w") == "3\n"     # woken by the client, then output, exit
    assert _wait(lambda: hutch.state(name + "o")["Status"] == "exited")   # by output, exit
    for n in (name + "w", name + "o"):
        assert hutch.ok("logs", n) == "late\n"
        st = hutch.state(n)
        assert st["ExitCode"] == 3 and not st["Error"], st
    hutch.ok("run", "-d", "--name", name + "x", "busybox", "sh", "-c", "sleep 1.5; exit 4")
    assert _wait(lambda: hutch.state(name + "x")["Status"] == "exited")   # by the exit alone
    assert hutch.state(name + "x")["ExitCode"] == 4
    hutch.ok("rm", "-f", name + "1", name + "w", name + "o", name + "x")
    _no_host(hutch)
