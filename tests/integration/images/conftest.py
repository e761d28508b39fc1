"""Fixtures for image tests: a session root with the default images (made by
scripts/make-images.sh through `hutch import`), per-test roots loaded from it, and Debian's
docker-registry on 127.0.0.1 with a random free port (optionally with htpasswd auth)."""
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings

import pytest

from imgtest_helpers import ROOT, hutch, hutch_bin, mounts_under

REGISTRY = "/usr/bin/docker-registry"


@pytest.fixture(scope="session")
def images_tar(tmp_path_factory):
    """busybox and progrium/stress made once by make-images.sh, saved as one archive."""
    root = str(tmp_path_factory.mktemp("images-session") / "root")
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=hutch_bin())
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-images.sh")], env=env,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    again = subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-images.sh")], env=env,
                           capture_output=True, timeout=120)
    assert again.returncode == 0 and again.stdout == b""  # idempotent: nothing to do
    out = os.path.join(os.path.dirname(root), "images.tar")
    hutch(root, "save", "-o", out, "busybox", "progrium/stress")
    yield out
    shutil.rmtree(os.path.dirname(root), ignore_errors=True)


@pytest.fixture
def image_root(hutch_root, images_tar):
    """A fresh hutch root holding busybox:latest and progrium/stress:latest."""
    hutch(hutch_root, "load", "-q", "-i", images_tar)
    yield hutch_root
    assert mounts_under(hutch_root) == []
    tmp = os.path.join(hutch_root, "images", "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


class Registry:
    def __init__(self, base: str, auth: bool):
        self.dir = base
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.data = os.path.join(base, "data")
        cfg = [
            "version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
            f"    rootdirectory: {self.data}", "  delete:", "    enabled: true",
            "http:", f"  addr: {self.host}",
        ]
        if auth:
            htpasswd = os.path.join(base, "htpasswd")
            with open(htpasswd, "w") as f:
                f.write(f"tester:{_bcrypt('s3cret')}\n")
            cfg += ["auth:", "  htpasswd:", "    realm: hutch-test", f"    path: {htpasswd}"]
        self.config = os.path.join(base, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(base, "registry.log"), "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # 401: up, and asking for auth
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.05)

    def blob_data(self, digest: str) -> str:
        h = digest.split(":", 1)[1]
        return os.path.join(self.data, "docker", "registry", "v2", "blobs", "sha256", h[:2], h,
                            "data")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _registry(tmp_path, auth):
    if not os.path.exists(REGISTRY):
        pytest.skip("docker-registry is not installed")
    base = tmp_path / ("registry-auth" if auth else "registry")
    base.mkdir()
    reg = Registry(str(base), auth)
    yield reg
    reg.stop()
    assert reg.proc.poll() is not None


@pytest.fixture
def registry(tmp_path):
    yield from _registry(tmp_path, False)


@pytest.fixture
def auth_registry(tmp_path):
    yield from _registry(tmp_path, True)


@pytest.fixture
def other_root(tmp_path):
    """A second, empty hutch root (the far side of a push/pull or save/load)."""
    d = tmp_path / "other-root"
    d.mkdir()
    yield str(d)
    assert mounts_under(str(d)) == []
