"""Precompiled modules in one file, for the launchers of `hutch` and `hutch-runtime`.

Every `hutch-runtime run` imports ~24 of hutch's modules, a `hutch run` ~35 and ~40 of the
standard library's. Through the normal path finder each costs ~60 us of importlib's own
Python code (directory caches, stats, the .pyc's header checks) before its body runs: for
the runtime ~1.5 ms a call, as much as runc spends in its whole start-up. `make setup`
writes those modules' bytecode into one file per launcher (`build`); the launcher reads its
index (LAUNCHER_LINES) and puts a finder first on sys.meta_path that reads each module's
code with one pread() when it is imported.

Never stale: each entry keeps its source's mtime and size (what a .pyc checks), and a module
whose source has changed since, or is not in the file, is imported the normal way. An edited
checkout runs what it says; only the unchanged modules come from the file.

The file: 8 bytes (little-endian) giving the header's length, the header (marshal: this
module's own code, the bytecode magic, the index), then each module's marshalled code (the
index's offsets count from the header's end).
"""
import marshal
import os
import sys

# hutch's packages and modules: all of them (an entry costs only its index line until its
# module is imported).
HUTCH = ("hutch",)
# The standard library's pure-Python modules that hutch's commands import (frozen and
# built-in ones are found faster already; extension modules cannot be served).
STDLIB = (
    "__future__", "_compression", "_weakrefset", "base64", "bisect", "bz2", "calendar",
    "collections", "collections.abc", "contextlib", "copy", "copyreg", "dataclasses",
    "datetime", "enum", "fnmatch", "functools", "gzip", "hashlib", "heapq", "hmac",
    "ipaddress", "json", "json.decoder", "json.encoder", "json.scanner", "keyword",
    "linecache", "locale", "lzma", "operator", "queue", "random", "re", "re._casefix",
    "re._compiler", "re._constants", "re._parser", "reprlib", "secrets", "selectors",
    "shutil", "signal", "socket", "string", "struct", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "token", "tokenize", "traceback", "types", "warnings",
    "weakref")

_FORMAT = 2


def _magic() -> bytes:
    # the bytecode's version: a file written by another Python is ignored
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER + bytes([_FORMAT])


class PreloadFinder:
    """A meta path finder and loader for the modules of a preload file, open as `f`."""

    def __init__(self, f, index: dict):
        self.f = f           # kept open: each module is read from it when imported
        self.fd = f.fileno()
        self.start = f.tell()   # (just after the header: the offsets count from there)
        st = os.fstat(self.fd)
        self.file_id = (st.st_dev, st.st_ino)
        self.index = index   # name -> (is_package, source, mtime_ns, size, offset, length)

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        is_package, source, mtime_ns, size, offset, length = entry
        try:
            st = os.stat(source)
            if st.st_mtime_ns != mtime_ns or st.st_size != size:
                return None   # edited since the file was written: the normal finder's
            # A forked child may have closed our fd, and the number may be another file's.
            fst = os.fstat(self.fd)
            if (fst.st_dev, fst.st_ino) != self.file_id:
                return None
            code = os.pread(self.fd, length, self.start + offset)
        except OSError:
            return None
        if len(code) != length:
            return None
        spec = sys.modules["_frozen_importlib"].ModuleSpec(
            name, self, origin=source, is_package=is_package, loader_state=code)
        if is_package:
            # submodules not in the file are found beside the source, as usual
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        spec = module.__spec__
        code, spec.loader_state = spec.loader_state, None
        # __file__ set here, not by has_location on the spec: that also derives __cached__,
        # ~20 us of importlib's path code per module, for a .pyc this loader never reads
        module.__file__ = spec.origin
        exec(marshal.loads(code), module.__dict__)


def serve(f, magic: bytes, index: dict) -> PreloadFinder | None:
    """Serve the modules of the preload file open as `f` first; None when it was written
    by another Python."""
    if magic != _magic():
        return None
    finder = PreloadFinder(f, index)
    sys.meta_path.insert(0, finder)
    return finder


def install(path: str) -> PreloadFinder | None:
    """`serve` the preload file at `path`; None when it is missing or unreadable (then every
    module is imported the normal way). The launchers do the same in a few lines of their
    own (LAUNCHER_LINES): importing this module through the path finder would cost what it
    saves."""
    try:
        f = open(path, "rb")
    except OSError:
        return None
    try:
        _, magic, index = marshal.loads(f.read(int.from_bytes(f.read(8), "little")))
        finder = serve(f, magic, index)
    except (ValueError, EOFError, TypeError, MemoryError):   # (not a preload file)
        finder = None
    if finder is None:
        f.close()
    return finder


# What a launcher runs before its first import (format: the preload file's path). The
# file's header holds this module's own code, so no import is needed to read the rest.
LAUNCHER_LINES = """\
from marshal import loads
try:
    f = open({path!r}, 'rb')
    boot, magic, index = loads(f.read(int.from_bytes(f.read(8), 'little')))
    exec(boot, preload := {{'__name__': 'hutch.preload'}})
    preload['serve'](f, magic, index)
except (OSError, ValueError, EOFError, TypeError, MemoryError):
    pass  # no (valid) preload file: every module is imported the normal way
"""


def module_sources(src: str) -> dict[str, tuple[bool, str]]:
    """name -> (is_package, source path): hutch's modules under the source root `src`, and
    STDLIB's that are pure Python here."""
    found = {}
    for package in HUTCH:
        top = os.path.join(src, *package.split("."))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            prefix = os.path.relpath(dirpath, src).replace(os.sep, ".")
            for filename in filenames:
                if filename.endswith(".py"):
                    stem = filename[:-3]
                    name = prefix if stem == "__init__" else f"{prefix}.{stem}"
                    found[name] = (stem == "__init__", os.path.join(dirpath, filename))
    from importlib.util import find_spec
    for name in STDLIB:
        spec = find_spec(name)
        if spec is not None and spec.has_location and spec.origin.endswith(".py"):
            found[name] = (spec.submodule_search_locations is not None, spec.origin)
    return found


def build(src: str, out: str, optimize: int) -> int:
    """Compile hutch's modules under `src` (and STDLIB's) into the preload file `out`
    (atomically); returns the number of modules. `optimize`: the launcher's -O level."""
    index, blobs, offset = {}, [], 0
    for name, (is_package, source) in sorted(module_sources(os.path.abspath(src)).items()):
        with open(source, "rb") as f:
            text = f.read()
        st = os.stat(source)
        blob = marshal.dumps(compile(text, source, "exec", dont_inherit=True,
                                     optimize=optimize))
        index[name] = (is_package, source, st.st_mtime_ns, st.st_size, offset, len(blob))
        blobs.append(blob)
        offset += len(blob)
    me = os.path.abspath(__file__)
    with open(me, "rb") as f:
        boot = compile(f.read(), me, "exec", dont_inherit=True, optimize=optimize)
    header = marshal.dumps((boot, _magic(), index))
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, out)
    return len(index)


if __name__ == "__main__":   # python preload.py SRC OUT OPTIMIZE | SRC OUT --launcher-lines
    if len(sys.argv) == 4 and sys.argv[3] == "--launcher-lines":
        sys.stdout.write(LAUNCHER_LINES.format(path=sys.argv[2]))
    elif len(sys.argv) == 4:
        print(f"{build(sys.argv[1], sys.argv[2], int(sys.argv[3]))} modules")
    else:
        sys.exit("usage: python preload.py SRC OUT OPTIMIZE | SRC OUT --launcher-lines")
