"""Shared fixtures. Integration tests run as root against the real kernel."""
import os
import shutil
import subprocess
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def hutch_root(tmp_path):
    """An isolated hutch state root (`--root`), removed after the test."""
    d = tmp_path / "hutch-root"
    d.mkdir()
    yield str(d)


def hutch_bin(name="hutch"):
    return os.path.join(VENV_BIN, name)
