"""One file of precompiled modules for `hutch-runtime`'s start, read with one read().

Every `hutch-runtime run` imports ~24 of hutch's modules. Through the normal path finder each
costs ~60 us of importlib's own Python code (a directory cache, stats, the .pyc's header
checks) before its body runs: ~1.5 ms a call, as much as runc spends in its whole start-up.
`make setup` writes the runtime's modules into one file (`build`); the launcher reads it and
puts a finder serving them first on sys.meta_path (`install`).

Never stale: each entry keeps its source's mtime and size (what a .pyc checks), and a module
whose source has changed since, or is not in the file, is imported the normal way. An edited
checkout runs what it says; only the unchanged modules come from the file.
"""
import marshal
import os
import sys

# The modules that `hutch-runtime` commands import, as package prefixes. An entry costs only
# its bytes until imported (its code is unmarshalled then), so whole packages are listed.
PACKAGES = ("hutch.runtime", "hutch.cgroups", "hutch.oci")
MODULES = ("hutch", "hutch.cli", "hutch.cli.runtime_main", "hutch.cli.runtime_commands",
           "hutch._sys", "hutch.securejoin", "hutch.trace", "hutch.paths", "hutch.preload")

_FORMAT = 1


def _magic() -> bytes:
    # the bytecode's version: a file written by another Python is ignored
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER + bytes([_FORMAT])


class PreloadFinder:
    """A meta path finder and loader for the modules of a preload file."""

    def __init__(self, table: dict):
        self.table = table   # name -> (is_package, source path, mtime_ns, size, marshalled code)

    def find_spec(self, name, path=None, target=None):
        entry = self.table.get(name)
        if entry is None:
            return None
        is_package, source, mtime_ns, size, _ = entry
        try:
            st = os.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None   # edited since the file was written: the normal finder compiles it
        spec = sys.modules["_frozen_importlib"].ModuleSpec(
            name, self, origin=source, is_package=is_package)
        if is_package:
            # submodules not in the file are found beside the source, as usual
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        entry = self.table[module.__spec__.name]
        # __file__ set here, not by has_location on the spec: that also derives __cached__,
        # ~20 us of importlib's path code per module, for a .pyc this loader never reads
        module.__file__ = entry[1]
        exec(marshal.loads(entry[4]), module.__dict__)


def serve(magic: bytes, table: dict) -> PreloadFinder | None:
    """Serve the modules of `table` first; None when it was written by another Python."""
    if magic != _magic():
        return None
    finder = PreloadFinder(table)
    sys.meta_path.insert(0, finder)
    return finder


def install(path: str) -> PreloadFinder | None:
    """`serve` the preload file at `path`; None when it is missing or unreadable (then every
    module is imported the normal way). The launcher does the same in a few lines of its own
    (LAUNCHER_LINES): importing this module through the path finder would cost what it saves."""
    try:
        with open(path, "rb") as f:
            _, magic, table = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return serve(magic, table)


# What the launcher runs before its first import of hutch (format: the preload file's path).
# The file holds this module's own code first, so no import is needed to read the rest.
LAUNCHER_LINES = """\
from marshal import loads
try:
    with open({path!r}, 'rb') as f:
        boot, magic, table = loads(f.read())
    exec(boot, preload := {{'__name__': 'hutch.preload'}})
    preload['serve'](magic, table)
except (OSError, ValueError, EOFError, TypeError):
    pass  # no preload file: every module is imported the normal way
"""


def module_sources(src: str) -> dict[str, tuple[bool, str]]:
    """name -> (is_package, source path) for PACKAGES and MODULES under the source root."""
    found = {}
    for name in MODULES:
        found[name] = _source(src, name)
    for package in PACKAGES:
        top = os.path.join(src, *package.split("."))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            prefix = os.path.relpath(dirpath, src).replace(os.sep, ".")
            for filename in filenames:
                if filename.endswith(".py"):
                    stem = filename[:-3]
                    name = prefix if stem == "__init__" else f"{prefix}.{stem}"
                    found[name] = (stem == "__init__", os.path.join(dirpath, filename))
    return found


def _source(src: str, name: str) -> tuple[bool, str]:
    base = os.path.join(src, *name.split("."))
    if os.path.isdir(base):
        return True, os.path.join(base, "__init__.py")
    return False, base + ".py"


def build(src: str, out: str, optimize: int = 2) -> int:
    """Compile the runtime's modules under `src` into the preload file `out` (atomically);
    returns the number of modules. `optimize` must match the launcher's -O flags."""
    table = {}
    for name, (is_package, source) in sorted(module_sources(os.path.abspath(src)).items()):
        with open(source, "rb") as f:
            text = f.read()
        st = os.stat(source)
        code = compile(text, source, "exec", dont_inherit=True, optimize=optimize)
        table[name] = (is_package, source, st.st_mtime_ns, st.st_size, marshal.dumps(code))
    me = os.path.abspath(__file__)
    with open(me, "rb") as f:
        boot = compile(f.read(), me, "exec", dont_inherit=True, optimize=optimize)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(marshal.dumps((boot, _magic(), table)))
    os.replace(tmp, out)
    return len(table)


if __name__ == "__main__":   # python -m hutch.preload SRC OUT [--launcher-lines]
    if len(sys.argv) == 4 and sys.argv[3] == "--launcher-lines":
        sys.stdout.write(LAUNCHER_LINES.format(path=sys.argv[2]))
    elif len(sys.argv) == 3:
        print(f"{build(sys.argv[1], sys.argv[2])} modules")
    else:
        sys.exit("usage: python -m hutch.preload SRC OUT [--launcher-lines]")
