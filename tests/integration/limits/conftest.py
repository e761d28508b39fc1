"""Fixtures of the resource-limit tests: a hutch root with busybox and progrium/stress per
module, and a check after every test that its containers left nothing behind."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lim_helpers as lh  # noqa: E402

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def hutch(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from hutch import cgroups
    if cgroups.detect_mode() == "unified":
        pytest.skip("cgroup v1 host tests (the v2 ones run in the QEMU guest: tests/v2)")
    root = str(tmp_path_factory.mktemp("limroot"))
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=lh.HUTCH)
    subprocess.run(["bash", os.path.join(lh.ROOT_DIR, "scripts", "make-images.sh")], env=env,
                   check=True, capture_output=True, timeout=120)
    h = lh.Hutch(root)
    yield h
    ids = lh.container_ids(root)
    if ids:
        h("rm", "-f", *ids)
    left = lh.settle(root, ids)
    subprocess.run(lh.Hutch(root).argv("network", "prune", "-f"), capture_output=True)
    assert not left, left
    assert not lh.container_ids(root)


@pytest.fixture
def name(request):
    """A container name unique to this test (tests run in parallel with others')."""
    base = request.node.name[:40].translate(str.maketrans("[]-.:/ ", "_______"))
    return f"lim_{base}_{os.getpid()}"


@pytest.fixture(autouse=True)
def leaves_nothing(hutch):
    yield
    ids = lh.container_ids(hutch.root)
    if ids:
        hutch("rm", "-f", *ids)
    left = lh.settle(hutch.root, ids)
    assert not left, left
    assert not lh.container_ids(hutch.root)
