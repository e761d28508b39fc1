"""Helpers for the resource-limit end-to-end tests (a uniquely named module: a bare
`from conftest import` would pick another directory's conftest in a full run)."""
import glob
import json
import os
import stat
import subprocess
import time

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HUTCH = os.path.join(ROOT_DIR, ".venv", "bin", "hutch")
V1 = "/sys/fs/cgroup"


class Hutch:
    """The `hutch` CLI against one --root, run as a user runs it."""

    def __init__(self, root: str):
        self.root = root

    def argv(self, *args):
        return [HUTCH, "--root", self.root, *args]

    def __call__(self, *args, input=None, timeout=120):
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def inspect(self, ref: str, fmt: str) -> str:
        return self.ok("inspect", "-f", fmt, ref).rstrip("\n")

    def host_config(self, ref: str) -> dict:
        return json.loads(self.ok("inspect", "-f", "{{json .HostConfig}}", ref))

    def full_id(self, ref: str) -> str:
        return self.inspect(ref, "{{.Id}}")

    def cgroup_file(self, ref: str, controller: str, name: str) -> str:
        """The value of a v1 controller file of the container's cgroup."""
        path = os.path.join(V1, controller, "hutch", self.full_id(ref), name)
        with open(path) as f:
            return f.read().strip()


def container_ids(root: str) -> set[str]:
    cdir = os.path.join(root, "containers")
    return {i for i in os.listdir(cdir) if len(i) == 64} if os.path.isdir(cdir) else set()


def leftovers(root: str, ids: set) -> list[str]:
    """Cgroup dirs of these containers, mounts under the root and processes naming it."""
    out = []
    for cid in ids:
        out += glob.glob(f"{V1}/*/hutch/{cid}") + glob.glob(f"{V1}/hutch/{cid}")
    with open("/proc/self/mountinfo") as f:
        out += [line.split()[4] for line in f if root in line]
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if root in cmd:
            out.append(f"process {pid}: {cmd!r}")
    return out


def settle(root: str, ids: set, deadline: float = 10.0) -> list[str]:
    """Leftovers once monitors had a moment to finish after their container's removal."""
    end = time.monotonic() + deadline
    while leftovers(root, ids) and time.monotonic() < end:
        time.sleep(0.1)
    return leftovers(root, ids)


def block_device_of(path: str) -> str | None:
    """The /dev node of the block device holding `path`, or None (tmpfs, overlay, ...)."""
    dev = os.stat(path).st_dev
    link = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if os.major(dev) == 0 or not os.path.exists(link):
        return None
    node = "/dev/" + os.path.basename(os.path.realpath(link))
    try:
        st = os.stat(node)
    except OSError:
        return None
    return node if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev else None


def cpu_usage_ns(cid: str) -> int:
    with open(f"{V1}/cpuacct/hutch/{cid}/cpuacct.usage") as f:
        return int(f.read())
