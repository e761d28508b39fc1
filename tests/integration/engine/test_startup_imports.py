"""What the common commands import: every `hutch` call is on the user's clock, and the
json package, re, enum (re's and socket's) and socket cost ~10 ms of a command that needs
none of them (hutch.fastjson, _socket, _signal and lazy imports do the work instead)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.root

HEAVY = {"re", "json", "enum", "socket", "signal"}


def _imports(hutch, *args) -> set[str]:
    p = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", *hutch.argv(*args)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in p.stderr.splitlines()
            if line.startswith("import time:")}


def test_common_commands_import_none_of_the_heavy_modules(hutch, name):
    imported = _imports(hutch, "run", "--rm", "busybox", "true")
    assert "hutch.runtime.seccomp" in imported and not HEAVY & imported
    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "60")
    try:
        imported = _imports(hutch, "exec", name, "true")
        assert "hutch.runtime.container" in imported and not HEAVY & imported
        imported = _imports(hutch, "ps", "-a")
        assert "hutch.cli.gotemplate" in imported and not HEAVY & imported
        for command in (["inspect", name], ["kill", "-s", "USR1", name], ["stop", name]):
            imported = _imports(hutch, *command)
            assert "hutch.engine.containers" in imported and not HEAVY & imported, command
        hutch.ok("stop", "-t", "0", name)
        imported = _imports(hutch, "rm", name)
        assert "hutch.images.store" in imported and not (HEAVY | {"shutil"}) & imported
    finally:
        hutch("rm", "-f", name)
