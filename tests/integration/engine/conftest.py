"""End-to-end fixtures: a hutch root with the busybox image per test module, the `hutch`
CLI run as a user runs it, and a check that nothing is left behind."""
import json
import os
import time

import pytest

import e2e_helpers as e2e

pytestmark = pytest.mark.root


class Hutch(e2e.Hutch):
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


@pytest.fixture(scope="module")
def hutch(tmp_path_factory):
    yield from e2e.module_root(tmp_path_factory, "hroot", Hutch)


@pytest.fixture
def name(request):
    """A container name unique to this test."""
    return f"{request.node.name[:40].replace('[', '_').replace(']', '')}_{os.getpid()}".replace("-", "_")


@pytest.fixture(autouse=True)
def leaves_nothing(hutch):
    """After each test: its containers removed (rm -f, as its own cleanup), and then no
    cgroup, mount or process of this root may remain (its shared monitor host, which
    lingers 1.5 s: at the module's end)."""
    yield
    e2e.assert_cleaned_up(hutch, include_host=False)
