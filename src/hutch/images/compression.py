"""Layer (de)compression: gzip through zlib, zstd through the `zstd` program when there is
no Python module for it, plain tars as they are. The format is sniffed from the magic bytes,
as Docker does, because media types lie."""
from __future__ import annotations

import contextlib
import gzip
import io
import shutil
import subprocess

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


class CompressionError(Exception):
    pass


class _Peek(io.RawIOBase):
    """A stream that gives back the bytes already read to sniff its format."""

    def __init__(self, raw, head: bytes):
        self.raw, self.head = raw, head

    def readable(self):
        return True

    def readinto(self, b):
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.raw.read(len(b))
        b[:len(data)] = data
        return len(data)


def sniff(stream) -> tuple[str, io.BufferedReader]:
    """("gzip" | "zstd" | "bzip2" | "xz" | "tar", the stream with nothing lost)."""
    head = b""
    while len(head) < 6:
        chunk = stream.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    kind = "tar"
    if head.startswith(GZIP_MAGIC):
        kind = "gzip"
    elif head.startswith(ZSTD_MAGIC):
        kind = "zstd"
    elif head.startswith(BZIP2_MAGIC):
        kind = "bzip2"
    elif head.startswith(XZ_MAGIC):
        kind = "xz"
    return kind, io.BufferedReader(_Peek(stream, head), 1 << 20)


def zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401
        return True
    except ImportError:
        return shutil.which("zstd") is not None


@contextlib.contextmanager
def decompressed(stream):
    """Yield an uncompressed stream of whatever `stream` holds."""
    kind, stream = sniff(stream)
    if kind == "tar":
        yield stream
    elif kind == "gzip":
        with gzip.GzipFile(fileobj=stream, mode="rb") as g:
            yield io.BufferedReader(g, 1 << 20)
    elif kind == "bzip2":
        import bz2
        with bz2.BZ2File(stream) as b:
            yield b
    elif kind == "xz":
        import lzma
        with lzma.LZMAFile(stream) as x:
            yield x
    else:
        yield from _zstd(stream)


def _zstd(stream):
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        with zstandard.ZstdDecompressor().stream_reader(stream) as r:
            yield io.BufferedReader(r, 1 << 20)
        return
    exe = shutil.which("zstd")
    if exe is None:
        raise CompressionError("zstd compressed layers are not supported: neither the "
                               "zstandard module nor the zstd program is installed")
    # zstd reads our stream from a pipe fed by a thread; its stdout is the tar.
    import threading
    proc = subprocess.Popen([exe, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    err: list[BaseException] = []

    def feed():
        try:
            shutil.copyfileobj(stream, proc.stdin, 1 << 20)
        except BaseException as e:  # noqa: BLE001 - reported after the read side ends
            err.append(e)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        yield proc.stdout
        # drain so the feeder can finish
        while proc.stdout.read(1 << 20):
            pass
    finally:
        proc.stdout.close()
        t.join()
        rc = proc.wait()
    if err and not isinstance(err[0], BrokenPipeError):
        raise err[0]
    if rc != 0:
        raise CompressionError(f"zstd decompression failed (exit {rc})")


class ThreadedReader:
    """Runs a producer (download, hash, decompress) in a thread and hands its output over in
    chunks, so inflating and hashing (which release the GIL) overlap with the unpacker's
    file system calls. `produce(sink)` calls sink(bytes) and returns at the end."""

    _DONE = object()

    def __init__(self, produce, depth: int = 8):
        import queue
        import threading
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._thread = threading.Thread(target=self._run, args=(produce,), daemon=True)
        self._thread.start()

    def _run(self, produce):
        try:
            produce(self._put)
        except BaseException as e:  # noqa: BLE001 - handed to the reading thread
            self._error = e
        try:
            self._put(self._DONE)
        except CompressionError:
            pass  # the reader is gone

    def _put(self, item) -> None:
        import queue
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise CompressionError("reader closed")

    def _fill(self) -> bool:
        """Next chunk into the buffer; False at the end."""
        while self._pos >= len(self._buf):
            if self._eof:
                return False
            item = self._queue.get()
            if item is self._DONE:
                self._eof = True
                if self._error is not None:
                    raise self._error
                return False
            self._buf, self._pos = item, 0
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes, fewer only at the end (tarfile counts on full reads)."""
        if n is None or n < 0:
            parts = []
            while self._fill():
                parts.append(self._buf[self._pos:])
                self._pos = len(self._buf)
            return b"".join(parts)
        parts = []
        while n > 0 and self._fill():
            piece = self._buf[self._pos:self._pos + n]
            self._pos += len(piece)
            n -= len(piece)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Stop the producer (if still going) and wait for it."""
        self._stop.set()
        self._thread.join()
