"""End-to-end fixtures: a hutch root with the busybox image per test module, the `hutch`
CLI run as a user runs it, and a check that nothing is left behind."""
import glob
import json
import os
import subprocess
import time

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HUTCH = os.path.join(ROOT_DIR, ".venv", "bin", "hutch")

pytestmark = pytest.mark.root


class Hutch:
    def __init__(self, root: str):
        self.root = root

    def argv(self, *args):
        return [HUTCH, "--root", self.root, *args]

    def __call__(self, *args, input=None, timeout=60, env=None):
        return subprocess.run(self.argv(*args), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r.stdout

    def inspect(self, ref: str, fmt: str) -> str:
        return self.ok("inspect", "-f", fmt, ref).rstrip("\n")

    def state(self, ref: str) -> dict:
        return json.loads(self.ok("inspect", "-f", "{{json .State}}", ref))

    def internal_state(self, ref: str) -> dict:
        cid = self.inspect(ref, "{{.Id}}")
        with open(os.path.join(self.root, "containers", cid, "state.json")) as f:
            return json.load(f)

    def wait_for(self, ref: str, pred, deadline: float = 20.0) -> dict:
        """Poll the container's state until pred(state) holds (bounded)."""
        end = time.monotonic() + deadline
        while True:
            st = self.state(ref)
            if pred(st) or time.monotonic() > end:
                return st
            time.sleep(0.1)


def _leftovers(root: str, ids: set) -> list[str]:
    out = []
    for cid in ids:
        out += glob.glob(f"/sys/fs/cgroup/*/hutch/{cid}") + glob.glob(f"/sys/fs/cgroup/hutch/{cid}")
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


@pytest.fixture(scope="module")
def hutch(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = str(tmp_path_factory.mktemp("hroot"))
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH)
    subprocess.run(["bash", os.path.join(ROOT_DIR, "scripts", "make-images.sh")], env=env,
                   check=True, capture_output=True, timeout=120)
    h = Hutch(root)
    yield h
    ids = set(os.listdir(os.path.join(root, "containers"))) if os.path.isdir(
        os.path.join(root, "containers")) else set()
    ids = {i for i in ids if len(i) == 64}
    if ids:
        h("rm", "-f", *ids, timeout=60)
    left = _leftovers(root, ids)
    remaining = [i for i in os.listdir(os.path.join(root, "containers"))
                 if len(i) == 64] if os.path.isdir(os.path.join(root, "containers")) else []
    subprocess.run([HUTCH, "--root", root, "network", "prune", "-f"], capture_output=True)
    assert not left, left
    assert not remaining, remaining


@pytest.fixture
def name(request):
    """A container name unique to this test."""
    return f"{request.node.name[:40].replace('[', '_').replace(']', '')}_{os.getpid()}".replace("-", "_")


@pytest.fixture(autouse=True)
def leaves_nothing(hutch):
    """After each test: its containers removed (rm -f, as its own cleanup), and then no
    cgroup, mount or process of this root may remain."""
    yield
    cdir = os.path.join(hutch.root, "containers")
    ids = {i for i in os.listdir(cdir) if len(i) == 64} if os.path.isdir(cdir) else set()
    if ids:
        hutch("rm", "-f", *ids)
    # a monitor finishes on its own just after the exit it reported (--rm removal): give it
    # a moment, then nothing of this root may be left
    end = time.monotonic() + 10
    while _leftovers(hutch.root, ids) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _leftovers(hutch.root, ids), _leftovers(hutch.root, ids)
    assert not [i for i in os.listdir(cdir) if len(i) == 64] if os.path.isdir(cdir) else True
