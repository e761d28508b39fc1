"""hutch.preload: the launchers' modules served from one precompiled file, never stale."""
import os
import shutil
import subprocess
import sys

import pytest

from hutch import preload

from e2e_helpers import HUTCH, HUTCH_RUNTIME, ROOT_DIR

SRC = os.path.join(ROOT_DIR, "src")


def _probe(preload_file: str, src: str, modules: str, extra: str = "") -> str:
    """Import `modules` in a fresh interpreter started as the launcher starts (-I -S -OO,
    its preload lines); print each hutch module's name, whether the file served it, and its
    __file__."""
    code = (f"import sys\nsys.path.append({src!r})\n"
            + preload.LAUNCHER_LINES.format(path=preload_file)
            + "finder = sys.meta_path[0]\n"
            + f"import {modules}\n"
            + "for name in sorted(sys.modules):\n"
            + "    if name.startswith('hutch') or name in ('json', 're', 'socket'):\n"
            + "        mod = sys.modules[name]\n"
            + "        print(name, mod.__spec__.loader is finder, mod.__file__)\n" + extra)
    p = subprocess.run([sys.executable, "-I", "-S", "-OO", "-c", code], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _loaded(output: str) -> dict[str, tuple[bool, str]]:
    out = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (parts[1] == "True", parts[2])
    return out


def test_the_runtime_start_modules_come_from_the_file(tmp_path):
    out = str(tmp_path / "runtime.preload")
    assert preload.build(SRC, out, 2) > 20
    loaded = _loaded(_probe(out, SRC, "hutch.cli.runtime_main, hutch.runtime.container, "
                                      "hutch.cgroups.v1, hutch.cgroups.devices"))
    for name in ("hutch", "hutch.cli.runtime_main", "hutch.runtime.container", "hutch._sys",
                 "hutch.runtime.rootfs", "hutch.cgroups.v1"):
        from_file, path = loaded[name]
        assert from_file, name
        assert path.startswith(SRC + os.sep)   # __file__ is the source, as for any import
    assert loaded["hutch"][1].endswith("hutch/__init__.py")


def test_an_edited_module_is_imported_from_its_source(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(os.path.join(SRC, "hutch"), src / "hutch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out = str(tmp_path / "runtime.preload")
    preload.build(str(src), out, 2)
    with open(src / "hutch" / "runtime" / "errors.py", "a") as f:
        f.write("\nEDITED = 'after the build'\n")
    printed = _probe(out, str(src), "hutch.runtime.errors, hutch.runtime.status",
                     "import hutch.runtime.errors as e\nprint('edited:', e.EDITED)\n")
    loaded = _loaded(printed)
    assert not loaded["hutch.runtime.errors"][0]     # stale entry: the normal finder's
    assert loaded["hutch.runtime.status"][0]         # unchanged: from the file
    assert "edited: after the build" in printed
    # a module the file lacks is found beside its package's source
    (src / "hutch" / "runtime" / "brand_new.py").write_text("X = 1\n")
    loaded = _loaded(_probe(out, str(src), "hutch.runtime.brand_new"))
    assert loaded["hutch.runtime.brand_new"] == (False, str(src / "hutch/runtime/brand_new.py"))


def test_the_standard_library_modules_listed_come_from_it_too(tmp_path):
    out = str(tmp_path / "cli.preload")
    preload.build(SRC, out, 2)
    loaded = _loaded(_probe(out, SRC, "json, re, socket"))
    assert all(loaded[name][0] for name in ("json", "re", "socket"))
    assert loaded["json"][1].endswith("/json/__init__.py")


def test_a_closed_or_reused_fd_is_not_read(tmp_path):
    # A forked child may close every fd, and the number may then be another file's.
    out = str(tmp_path / "runtime.preload")
    preload.build(SRC, out, 2)
    printed = _probe(out, SRC, "hutch.runtime.errors", (
        "import os\n"
        "os.close(finder.fd)\n"
        f"assert os.open({out + '.other'!r}, os.O_RDWR | os.O_CREAT) == finder.fd\n"
        "import hutch.runtime.status as st\n"
        "print('status', st.__spec__.loader is finder)\n"))
    assert "status False" in printed      # imported the normal way


def test_a_missing_or_foreign_file_is_ignored(tmp_path):
    assert preload.install(str(tmp_path / "none")) is None
    bad = tmp_path / "bad"
    bad.write_bytes(b"not marshal data")
    assert preload.install(str(bad)) is None
    before = list(sys.meta_path)
    with open(bad, "rb") as f:
        assert preload.serve(f, b"\0\0\0\0\1", {}) is None      # written by another Python
    assert sys.meta_path == before


@pytest.mark.parametrize("launcher", [HUTCH, HUTCH_RUNTIME])
def test_the_installed_launchers_read_their_files(launcher):
    # what `make setup` wrote: the launcher's own lines, then the imports `run` makes
    with open(launcher) as f:
        lines = f.read().splitlines()
    flags = lines[0].split()[1]
    assert lines[-1].startswith("sys.exit(") and lines[-2].startswith("from hutch.cli.")
    code = "\n".join(lines[1:-1]) + (
        "\nimport hutch.runtime.container\n"
        "finder = sys.meta_path[0]\n"
        "print(type(finder).__name__, hutch.runtime.container.__spec__.loader is finder)\n")
    p = subprocess.run([os.path.join(ROOT_DIR, ".venv", "bin", "python"), flags, "-c", code],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["PreloadFinder", "True"]
