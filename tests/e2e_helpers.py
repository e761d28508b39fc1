"""What the end-to-end test directories share: the `hutch` launcher, a runner of it on one
--root, a root with the default images, and the checks that nothing was left behind.

A uniquely named module in tests/ (on sys.path as tests/conftest.py's directory, as each
test directory is for its own helpers): never `from conftest import`, a name every test
directory has.
"""
import glob
import os
import subprocess
import time

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUTCH = os.path.join(ROOT_DIR, ".venv", "bin", "hutch")
HUTCH_RUNTIME = os.path.join(ROOT_DIR, ".venv", "bin", "hutch-runtime")


def make_images(root: str) -> None:
    """busybox:latest and progrium/stress:latest in `root`, as scripts/make-images.sh makes
    them through `hutch import`."""
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH)
    subprocess.run(["bash", os.path.join(ROOT_DIR, "scripts", "make-images.sh")], env=env,
                   check=True, capture_output=True, timeout=120)


class Hutch:
    """The `hutch` CLI on one --root, run as a user runs it."""

    timeout = 60

    def __init__(self, root: str):
        self.root = root

    def argv(self, *args):
        return [HUTCH, "--root", self.root, *args]

    def __call__(self, *args, input=None, timeout=None, env=None):
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True,
                              timeout=timeout or self.timeout, env=env)

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def inspect(self, ref: str, fmt: str) -> str:
        return self.ok("inspect", "-f", fmt, ref).rstrip("\n")


def container_ids(root: str) -> set[str]:
    cdir = os.path.join(root, "containers")
    return {i for i in os.listdir(cdir) if len(i) == 64} if os.path.isdir(cdir) else set()


def mounts_naming(text: str) -> list[str]:
    """Mount points whose mountinfo line names `text` (as target, source or option)."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if text in line]


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def leftovers(root: str, ids: set, include_host: bool = True) -> list[str]:
    """Cgroup dirs of these containers, mounts naming the root and processes naming it
    (the root's shared monitor host too, unless include_host is false: it lingers 1.5 s
    after its last monitor, and a module's final check is the one to wait for it)."""
    out = []
    for cid in ids:
        out += glob.glob(f"/sys/fs/cgroup/*/hutch/{cid}") + glob.glob(f"/sys/fs/cgroup/hutch/{cid}")
    out += mounts_naming(root)
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        if root in cmd and (include_host or "hutch-monitor-host" not in cmd):
            out.append(f"process {pid}: {cmd!r}")
    return out


def settle(root: str, ids: set, deadline: float = 10.0, include_host: bool = True) -> list[str]:
    """Leftovers once monitors had a moment to finish after their container's removal
    (a monitor ends on its own just after the exit it reported)."""
    end = time.monotonic() + deadline
    while leftovers(root, ids, include_host) and time.monotonic() < end:
        time.sleep(0.1)
    return leftovers(root, ids, include_host)


def assert_cleaned_up(h: Hutch, include_host: bool = True) -> None:
    """Every container of h's root removed (rm -f, as a test's own cleanup would), and then
    nothing of them left: no container, cgroup, mount or process (but the root's shared
    monitor host when include_host is false: after each test of a module)."""
    ids = container_ids(h.root)
    if ids:
        h("rm", "-f", *ids)
    left = settle(h.root, ids, include_host=include_host)
    assert not left, left
    assert not container_ids(h.root)


def module_root(tmp_path_factory, prefix: str, runner=Hutch):
    """A test module's hutch root with the default images: yields its runner; after the
    module, nothing of it may be left (its networks pruned)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    h = runner(str(tmp_path_factory.mktemp(prefix)))
    make_images(h.root)
    yield h
    try:
        assert_cleaned_up(h)
    finally:
        h("network", "prune", "-f")
