"""Fixtures of the security tests: a busybox rootfs, the runtime under test, a bundle."""
import os
import shutil
import subprocess

import pytest

from sec_helpers import HERE, Bundle, make_rootfs, runtime_path


@pytest.fixture(scope="session")
def busybox_rootfs_template(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("busybox-template") / "rootfs")
    make_rootfs(root)
    return root


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory):
    """probe.c, static, so it runs in a rootfs without libc."""
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed: cannot build the syscall probe")
    out = str(tmp_path_factory.mktemp("probe") / "probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", out, os.path.join(HERE, "probe.c")],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def runtime(tmp_path_factory, busybox_rootfs_template):
    """The runtime under test, or a skip saying why it cannot run containers yet."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    path = runtime_path()
    if not os.path.exists(path):
        pytest.skip(f"runtime {path} not found")
    bundle = Bundle(str(tmp_path_factory.mktemp("rt-check")), path, busybox_rootfs_template)
    out = bundle.run("true")
    if out.returncode != 0:
        msg = (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
        pytest.skip(f"{os.path.basename(path)} cannot run a container yet: {msg}")
    return path


@pytest.fixture
def bundle(tmp_path, runtime, busybox_rootfs_template):
    b = Bundle(str(tmp_path), runtime, busybox_rootfs_template)
    yield b
    assert b.leftovers() == []
