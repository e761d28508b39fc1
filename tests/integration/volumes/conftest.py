"""Fixtures for the volume/mount/cp tests: a hutch root with the default images (made once
per test session and worker through the public `hutch import` script), a `hutch` runner,
and a check that nothing (container, volume, mount) is left behind."""
import os
import shutil
import subprocess
import tempfile

import pytest

from vol_helpers import HUTCH, ROOT, Hutch, mounts_under  # noqa: F401 (re-exported)


@pytest.fixture(scope="session")
def _session_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = tempfile.mkdtemp(prefix="hutch-vol-")
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH)
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-images.sh")], check=True,
                   env=env, capture_output=True, timeout=120)
    yield root
    h = Hutch(root)
    ids = h("ps", "-aq", "--no-trunc", check=False).stdout.split()
    if ids:
        h("rm", "-f", "-v", *ids, check=False)
    h("volume", "prune", "-f", check=False)
    left = mounts_under(root)
    shutil.rmtree(root, ignore_errors=True)
    assert not left, f"mounts left under {root}: {left}"


@pytest.fixture
def h(_session_root):
    """A hutch runner on the session's root; each test removes what it made."""
    hutch = Hutch(_session_root)
    before = set(hutch("volume", "ls", "-q").stdout.split())
    yield hutch
    after = set(hutch("volume", "ls", "-q").stdout.split())
    assert after <= before, f"volumes leaked: {after - before}"


_RUN_STATE: dict = {}


@pytest.fixture
def run_ok(h):
    """Skips when `hutch run` cannot run a container yet; otherwise the runner, with any
    flag the runtime still needs (recorded in h.run_args)."""
    if "args" not in _RUN_STATE:
        _RUN_STATE["args"] = None
        for extra in ([], ["--security-opt", "seccomp=unconfined"]):
            p = h("run", "--rm", "--network", "none", *extra, "busybox", "true", check=False)
            if p.returncode == 0:
                _RUN_STATE["args"] = ["--network", "none", *extra]
                break
            _RUN_STATE["why"] = p.stderr.strip().splitlines()[0] if p.stderr.strip() else str(p.returncode)
    if _RUN_STATE["args"] is None:
        pytest.skip(f"`hutch run` does not run containers yet: {_RUN_STATE.get('why')}")
    h.run_args = list(_RUN_STATE["args"])
    return h
