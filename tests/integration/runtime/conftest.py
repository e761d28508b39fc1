"""Bundles from the host's static busybox, the runtime's CLI, and a leak check per test."""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest

from rt_helpers import BUSYBOX, Bundle, applets, leaks

pytestmark = pytest.mark.root


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    """A busybox rootfs: /bin/busybox, a link per applet, /etc/passwd and /etc/group."""
    rootfs = tmp_path_factory.mktemp("busybox") / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in applets():
        os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                           "user:x:1000:1000:user:/home/user:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    for d in ("proc", "sys", "dev", "tmp", "root"):
        (rootfs / d).mkdir()
    return str(rootfs)


@pytest.fixture
def bundle(tmp_path, rootfs_template):
    """A fresh bundle (its own rootfs copy) and state root; asserts nothing leaked after.

    The bundle lives in a world-traversable dir, so a user-namespaced root can reach it."""
    top = tempfile.mkdtemp(prefix="hutch-rt-", dir="/tmp")
    os.chmod(top, 0o755)
    shutil.copytree(rootfs_template, os.path.join(top, "rootfs"), symlinks=True)
    b = Bundle(top, str(tmp_path / "state"), f"hrt-{uuid.uuid4().hex[:12]}")
    b.write()
    try:
        yield b
        if os.path.exists(os.path.join(b.root, b.id)):
            b.runtime("delete", "--force", b.id)
            pytest.fail(f"test left container {b.id} behind")
        assert leaks(b) == []
    finally:
        shutil.rmtree(top, ignore_errors=True)
