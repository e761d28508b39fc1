"""Fixtures of the resource-limit tests: a hutch root with busybox and progrium/stress per
module, and a check after every test that its containers left nothing behind."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lim_helpers as lh  # noqa: E402
import e2e_helpers as e2e  # noqa: E402

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def hutch(tmp_path_factory):
    from hutch import cgroups
    if cgroups.detect_mode() == "unified":
        pytest.skip("cgroup v1 host tests (the v2 ones run in the QEMU guest: tests/v2)")
    yield from e2e.module_root(tmp_path_factory, "limroot", lh.Hutch)


@pytest.fixture
def name(request):
    """A container name unique to this test (tests run in parallel with others')."""
    base = request.node.name[:40].translate(str.maketrans("[]-.:/ ", "_______"))
    return f"lim_{base}_{os.getpid()}"


@pytest.fixture(autouse=True)
def leaves_nothing(hutch):
    yield
    e2e.assert_cleaned_up(hutch, include_host=False)
