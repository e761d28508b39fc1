"""End to end on cgroup v2: `hutch run` with Docker's resource flags, in the QEMU guest.

scripts/test-v2.sh builds the busybox image on the host (the guest has no network and runs
processes ~40x slower) and passes its hutch root as HUTCH_V2_IMAGES; each test copies it
into a tmpfs so the guest's overlay root never has to hold an overlay upper dir. Each hutch
command costs seconds in the guest, so the module does the fewest that prove the point.
"""
import os
import subprocess
import tempfile

import pytest

from hutch import cgroups

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUTCH = os.path.join(ROOT, ".venv", "bin", "hutch")
IMAGES = os.environ.get("HUTCH_V2_IMAGES", "")
MODE = cgroups.detect_mode() if os.path.isdir("/sys/fs/cgroup") else "none"

pytestmark = [
    pytest.mark.cgroup_v2, pytest.mark.root,
    pytest.mark.skipif(MODE != "unified",
                       reason=f"needs a pure cgroup v2 host (this one is {MODE})"),
    pytest.mark.skipif(not os.path.isdir(IMAGES),
                       reason="HUTCH_V2_IMAGES (a hutch root with busybox) not given"),
]


def container_cgroups() -> set[str]:
    parent = "/sys/fs/cgroup/hutch"
    if not os.path.isdir(parent):
        return set()
    return {d for d in os.listdir(parent) if os.path.isdir(os.path.join(parent, d))}


@pytest.fixture(scope="module")
def hutch():
    """One throw-away hutch root on a tmpfs for this module (copying it costs ~10 s here)."""
    from hutch._sys import MNT_DETACH, mount, umount2
    before = container_cgroups()
    root = tempfile.mkdtemp(prefix="hutch-v2-")
    mount("tmpfs", root, "tmpfs", 0, "mode=755")
    try:
        subprocess.run(["cp", "-a", IMAGES + "/.", root], check=True)

        def run(*args, check=True):
            p = subprocess.run([HUTCH, "--root", root, *args], capture_output=True, text=True,
                               timeout=600)
            if check:
                assert p.returncode == 0, p.stderr
            return p
        yield run
    finally:
        # Dropping the tmpfs drops every container record; their cgroups must be gone.
        umount2(root, MNT_DETACH)
        os.rmdir(root)
    assert container_cgroups() <= before


FILES = ["memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max",
         "cpuset.cpus", "pids.max"]


def test_run_flags_reach_the_v2_files(hutch):
    p = hutch("run", "--rm", "--network", "none", "-m", "200M", "--memory-swap", "300M",
              "--memory-reservation", "100M", "-c", "512", "--cpus", "1.5",
              "--cpuset-cpus", "0", "--pids-limit", "50", "busybox",
              "sh", "-c", "cd /sys/fs/cgroup && for f in " + " ".join(FILES) +
              "; do echo $f=$(cat $f); done")
    got = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert got == {"memory.max": "209715200", "memory.swap.max": "104857600",
                   "memory.low": "104857600", "cpu.weight": "59",
                   "cpu.max": "150000 100000", "cpuset.cpus": "0", "pids.max": "50"}


def test_oom_kill_is_reported(hutch):
    p = hutch("run", "--name", "oom_v2", "--network", "none", "-m", "32M", "--memory-swap",
              "32M", "busybox", "tail", "/dev/zero", check=False)
    assert p.returncode == 137, p.stderr
    state = hutch("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom_v2")
    assert state.stdout.split() == ["true", "137"]
