"""--userns-remap through the engine (the remapped root reaches its rootfs and /etc files
through hutch's 0710 directories) and the state directories other users cannot enter."""
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HUTCH = os.path.join(ROOT_DIR, ".venv", "bin", "hutch")


class Runner:
    def __init__(self, root):
        self.root = root

    def __call__(self, *args):
        return subprocess.run([HUTCH, "--root", self.root, *args], capture_output=True,
                              text=True, timeout=60)

    def ok(self, *args) -> str:
        p = self(*args)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout

    def inspect(self, ref, fmt) -> str:
        return self.ok("inspect", "-f", fmt, ref).rstrip("\n")


def leftovers(root: str, ids) -> list[str]:
    import glob
    with open("/proc/self/mountinfo") as f:
        left = [line.split()[4] for line in f if root in line]
    return left + [p for cid in ids for p in glob.glob(f"/sys/fs/cgroup/*/hutch/{cid}")]


@contextlib.contextmanager
def subid_range(start: int):
    """A unique user's range in /etc/subuid and /etc/subgid, removed afterwards."""
    user = "hutchtest" + uuid.uuid4().hex[:8]
    line = f"{user}:{start}:65536\n"
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path, "a") as f:
            f.write(line)
    try:
        yield user
    finally:
        for path in ("/etc/subuid", "/etc/subgid"):
            with open(path) as f:
                lines = f.readlines()
            with open(path, "w") as f:
                f.writelines(l for l in lines if l != line)


def test_state_dirs_are_root_only(hutch):
    hutch.ok("run", "--rm", "--network", "none", "busybox", "true")
    for path in (hutch.root, os.path.join(hutch.root, "run")):
        assert os.stat(path).st_mode & 0o777 == 0o710, path


@pytest.fixture
def open_root():
    """A root under /tmp: pytest's own dirs are 0700, which no remapped root can cross
    (hutch says so and refuses, as tested by the security suite)."""
    root = tempfile.mkdtemp(prefix="hutch-userns-", dir="/tmp")
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH)
    subprocess.run(["bash", os.path.join(ROOT_DIR, "scripts", "make-images.sh")], env=env,
                   check=True, capture_output=True, timeout=120)
    h = Runner(root)
    try:
        yield h
    finally:
        cdir = os.path.join(root, "containers")
        ids = {i for i in os.listdir(cdir) if len(i) == 64} if os.path.isdir(cdir) else set()
        if ids:
            h("rm", "-f", *ids)
        h("network", "prune", "-f")
        left = leftovers(root, ids)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, left


def test_userns_remap_runs_and_shifts_the_rootfs(open_root, name):
    if subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode != 0:
        pytest.skip("this kernel cannot create user namespaces")
    hutch = open_root
    with subid_range(400000) as user:
        out = hutch.ok("run", "--name", name, "--userns", user, "busybox", "sh", "-c",
                       "id -u; cat /proc/self/uid_map; touch /made; ls -n /made; "
                       "cat /etc/hostname")
        lines = out.splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", "400000", "65536"]
        assert lines[2].split()[2:4] == ["0", "0"]
        cid = hutch.inspect(name, "{{.Id}}")
        assert lines[3] == cid[:12]
        # a second start finds the root already shifted
        hutch.ok("start", "-a", name)
        assert hutch.inspect(name, "{{.HostConfig.UsernsMode}}") == user
        hutch.ok("rm", name)
    # other users still cannot enter the state root
    assert os.stat(hutch.root).st_mode & 0o007 == 0
