"""The Docker anchor: the host's daemon when one answers, else a private dockerd the bench
starts and stops, leaving the host as it found it.

The private daemon keeps its files under a temp dir (--data-root, --exec-root, its own
socket and pidfile; the docker CLI reaches it through DOCKER_HOST). It runs with
--ip-forward=false: ip_forward is already 1 here, and with forwarding on dockerd would set
the FORWARD policy to DROP, which cuts hutch's containers off. What it still changes on the
host is undone when it stops: the docker0 bridge, its DOCKER* chains and the rules that jump
to them or name docker0 (filter and nat), the FORWARD policy, and the directories and
cgroups it made that were not there before.
"""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from bench.harness import apt_install, error_line

# The docker.io package's CLI (the Debian anchor), not another one earlier on PATH.
DOCKER = "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else (shutil.which("docker") or "docker")
DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
APT_PACKAGES = ("docker.io", "containerd")
# Made by dockerd or its containerd outside --data-root/--exec-root.
_HOST_PATHS = ("/run/docker", "/run/containerd", "/etc/docker")
_CGROUP_ROOT = "/sys/fs/cgroup"


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def install() -> str:
    """'' when dockerd and the CLI are here (apt-get installing docker.io and containerd
    when missing), else why not."""
    if os.access(DOCKERD, os.X_OK) and shutil.which("containerd") and os.access(DOCKER, os.X_OK):
        return ""
    err = apt_install(*APT_PACKAGES)
    if err:
        return f"docker.io is not installed and `apt-get install {' '.join(APT_PACKAGES)}` " \
               "failed: " + err
    return ""


def _answers(env: dict | None = None) -> tuple[bool, str]:
    try:
        p = _run([DOCKER, "info", "--format", "{{.ServerVersion}}"], env=env, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return p.returncode == 0, error_line(p.stderr)


class PrivateDaemon:
    """A dockerd of the bench's own; start() returns '' or why it could not start."""

    def __init__(self):
        self.dir = ""
        self.proc: subprocess.Popen | None = None
        self.host_before: dict = {}

    @property
    def socket(self) -> str:
        return os.path.join(self.dir, "docker.sock")

    def start(self, timeout: float = 60.0) -> str:
        self.host_before = _host_snapshot()
        self.dir = tempfile.mkdtemp(prefix="hutch-bench-docker-", dir="/var/tmp")
        log = open(os.path.join(self.dir, "dockerd.log"), "w")
        argv = [DOCKERD, "--data-root", os.path.join(self.dir, "data"),
                "--exec-root", os.path.join(self.dir, "exec"),
                "-H", "unix://" + self.socket, "--pidfile", os.path.join(self.dir, "dockerd.pid"),
                "--ip-forward=false"]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        except OSError as e:
            log.close()
            self.stop()
            return f"dockerd cannot start: {e}"
        log.close()
        env = dict(os.environ, DOCKER_HOST="unix://" + self.socket)
        deadline = time.monotonic() + timeout
        while True:
            ok, _ = _answers(env)
            if ok:
                os.environ["DOCKER_HOST"] = env["DOCKER_HOST"]
                return ""
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.proc.poll() is not None else f"no answer after {timeout:.0f} s"
                reason = f"dockerd {why}: " + self.log_tail()
                self.stop()
                return reason
            time.sleep(0.2)

    def log_tail(self, lines: int = 3) -> str:
        try:
            with open(os.path.join(self.dir, "dockerd.log")) as f:
                tail = [ln.strip() for ln in f.read().splitlines() if ln.strip()][-lines:]
        except OSError:
            return "no log"
        return " | ".join(tail) or "empty log"

    def stop(self) -> list[str]:
        """Stop the daemon (its containers first) and undo its host changes; returns what
        could not be undone."""
        left = []
        if self.proc and self.proc.poll() is None:
            env = dict(os.environ, DOCKER_HOST="unix://" + self.socket)
            ids = _run([DOCKER, "ps", "-aq"], env=env, timeout=60).stdout.split()
            if ids:
                _run([DOCKER, "rm", "-f", *ids], env=env, timeout=300)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if os.environ.get("DOCKER_HOST") == "unix://" + self.socket:
            del os.environ["DOCKER_HOST"]
        if self.host_before:
            left = undo_host_changes(self.host_before)
        if self.dir:
            _unmount_under(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            if os.path.exists(self.dir):
                left.append(f"{self.dir} (kept: could not be removed)")
        self.proc = None
        return left


def _host_snapshot() -> dict:
    forward = _run(["iptables", "-S", "FORWARD"]).stdout.splitlines()
    policy = next((ln.split()[2] for ln in forward if ln.startswith("-P FORWARD")), "ACCEPT")
    cgroups = [os.path.join(_CGROUP_ROOT, c, "docker") for c in os.listdir(_CGROUP_ROOT)]
    return {"forward_policy": policy,
            "absent": [p for p in list(_HOST_PATHS) + cgroups if not os.path.exists(p)],
            "docker0": os.path.exists("/sys/class/net/docker0")}


def _docker_rules(table: str) -> tuple[list[str], list[str]]:
    """(rules to delete, chains to remove) of `table` that belong to Docker."""
    rules, chains = [], []
    for line in _run(["iptables", "-t", table, "-S"]).stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["-N"] and parts[1].startswith("DOCKER"):
            chains.append(parts[1])
        elif parts[:1] == ["-A"] and not parts[1].startswith("DOCKER") and \
                ("DOCKER" in line or "docker0" in line):
            rules.append(line)
    return rules, chains


def undo_host_changes(before: dict) -> list[str]:
    left = []
    for table in ("filter", "nat"):
        rules, chains = _docker_rules(table)
        for rule in rules:
            argv = shlex.split(rule)   # -S quotes what has spaces (comments)
            argv[0] = "-D"
            p = _run(["iptables", "-t", table, *argv])
            if p.returncode:
                left.append(f"iptables -t {table} {rule}: {error_line(p.stderr)}")
        for chain in chains:
            _run(["iptables", "-t", table, "-F", chain])
        for chain in chains:
            p = _run(["iptables", "-t", table, "-X", chain])
            if p.returncode:
                left.append(f"iptables -t {table} chain {chain}: {error_line(p.stderr)}")
    _run(["iptables", "-P", "FORWARD", before["forward_policy"]])
    if not before["docker0"] and os.path.exists("/sys/class/net/docker0"):
        p = _run(["ip", "link", "delete", "docker0"])
        if p.returncode:
            left.append("docker0: " + error_line(p.stderr))
    for path in before["absent"]:
        if path.startswith(_CGROUP_ROOT + "/"):
            _rmdir_tree(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
        if os.path.exists(path):
            left.append(path)
    return left


def _rmdir_tree(path: str) -> None:
    for d, _subdirs, _files in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        try:
            os.rmdir(d)
        except OSError:
            pass


def _unmount_under(path: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f if ln.split()[4].startswith(path + "/")]
    for m in sorted(points, reverse=True):
        _run(["umount", "-l", m])


_daemon = PrivateDaemon()
_state: dict = {}


def disable() -> None:
    """--no-docker: the Docker cells read missing; nothing is installed or started."""
    _state["reason"] = "skipped (--no-docker)"


def unavailable() -> str:
    """'' when a Docker daemon answers (the host's, or a private one started here), else why
    not. Checked once per bench run."""
    if "reason" not in _state:
        _state["reason"] = _connect()
    return _state["reason"]


def _connect() -> str:
    why = install()
    if why:
        return why
    if _answers()[0]:
        _state["private"] = False
        return ""
    _state["private"] = True
    return _daemon.start()


def describe() -> str:
    if _state.get("reason"):
        return "missing: " + _state["reason"]
    if "private" not in _state:
        return "not used"
    return "a private dockerd started by the bench" if _state["private"] else "the host's daemon"


def shutdown() -> list[str]:
    """Stop the private daemon if one was started; what could not be undone."""
    if _state.get("private") and not _state.get("reason"):
        _state["reason"] = "stopped"
        return _daemon.stop()
    return []
