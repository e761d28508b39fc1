"""Pure store and stream logic: lookups in Docker's order, compression sniffing, the threaded
reader, credentials file."""
import gzip
import io
import json
import os
import stat

import pytest

from hutch.images import auth
from hutch.images.compression import ThreadedReader, decompressed, sniff
from hutch.images.reference import InvalidReference
from hutch.images.store import ImageNotFound, ImageStore, chain_ids


def _db(store, images, tags=None, digests=None):
    os.makedirs(store.root, exist_ok=True)
    with open(store.db_path, "w") as f:
        json.dump({"images": {i: {"layers": [], "size": 0} for i in images},
                   "tags": tags or {}, "digests": digests or {}}, f)


def test_lookup_order(tmp_path):
    store = ImageStore(str(tmp_path / "images"))
    a, b = "sha256:" + "ab" * 32, "sha256:" + "ac" * 32
    _db(store, [a, b], tags={"docker.io/library/busybox:latest": a,
                             "docker.io/library/ab:latest": b})
    db = store.read_db()
    assert store.lookup_id(db, a) == a
    assert store.lookup_id(db, "busybox") == a
    assert store.lookup_id(db, "docker.io/library/busybox:latest") == a
    assert store.lookup_id(db, "ab") == b            # a name wins over a short id
    assert store.lookup_id(db, "aba") == a           # unique prefix
    assert store.lookup_id(db, "a") is None          # ambiguous prefix
    assert store.lookup_id(db, "busybox:other") is None
    with pytest.raises(ImageNotFound, match="^No such image: nosuch$"):
        store.resolve("nosuch")
    with pytest.raises(InvalidReference):
        store.resolve("Bad:Name")


def test_chain_ids():
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    c = chain_ids([d1, d2])
    assert c[0] == d1
    import hashlib
    assert c[1] == "sha256:" + hashlib.sha256(f"{d1} {d2}".encode()).hexdigest()


def test_sniff_keeps_every_byte():
    raw = b"x" * 1000
    for data, kind in ((raw, "tar"), (gzip.compress(raw), "gzip")):
        got, stream = sniff(io.BytesIO(data))
        assert got == kind
        assert stream.read() == data
        with decompressed(io.BytesIO(data)) as s:
            assert s.read() == raw


def test_threaded_reader_full_reads_and_errors():
    data = os.urandom(300_000)

    def produce(sink):
        for i in range(0, len(data), 7000):
            sink(data[i:i + 7000])
        sink(b"")

    r = ThreadedReader(produce)
    got = b"".join(iter(lambda: r.read(512), b""))
    r.close()
    assert got == data

    def broken(sink):
        sink(b"abc")
        raise ValueError("boom")

    r = ThreadedReader(broken)
    assert r.read(3) == b"abc"
    with pytest.raises(ValueError, match="boom"):
        r.read(10)
    r.close()


def test_credentials_file(tmp_path):
    class P:
        root = str(tmp_path)
    auth.store_credentials(P, "localhost:5000", "u", "p:w")
    assert auth.credentials(P, "localhost:5000") == ("u", "p:w")
    assert stat.S_IMODE(os.stat(auth.config_path(P)).st_mode) == 0o600
    auth.store_credentials(P, "", "hubuser", "x")
    assert auth.credentials(P, "docker.io") == ("hubuser", "x")
    assert "https://index.docker.io/v1/" in json.load(open(auth.config_path(P)))["auths"]
    assert auth.remove_credentials(P, "localhost:5000")
    assert not auth.remove_credentials(P, "localhost:5000")
    assert auth.credentials(P, "localhost:5000") is None


@pytest.mark.parametrize("host,local", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True),
    ("127.9.9.9", True), ("[::1]:5000", True), ("127.evil.com:5000", False),
    ("registry.example:5000", False), ("10.0.0.1:5000", False)])
def test_plain_http_only_for_loopback(host, local):
    from hutch.images.registry import Client, _is_local
    assert _is_local(host) is local

    class P:
        root = "/nonexistent"
    assert Client(P).base(host).startswith("http://" if local else "https://")
    assert Client(P, insecure=[host]).base(host).startswith("http://")
    assert Client(P).base("docker.io") == "https://registry-1.docker.io"
