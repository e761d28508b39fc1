"""`system df` and `system prune` over real stores (containers created, not started)."""
import os
import shutil
import subprocess
import tempfile

import pytest
from vol_helpers import HUTCH, ROOT, Hutch, mounts_under

pytestmark = pytest.mark.root


def rows(out: str) -> dict:
    lines = out.splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    got = {}
    for line in lines[1:]:
        kind = " ".join(line.split()[:2]) if line.startswith(("Local", "Build")) else line.split()[0]
        got[kind] = line[len(kind):].split(None, 3)
    return got


def test_df_and_prune():
    """On its own root: prune -a removes every image, which other tests need."""
    root = tempfile.mkdtemp(prefix="hutch-sys-")
    h = Hutch(root)
    try:
        subprocess.run(["bash", os.path.join(ROOT, "scripts", "make-images.sh")],
                       env=dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH),
                       check=True, capture_output=True, timeout=120)
        h("volume", "create", "free")
        mp = h("volume", "inspect", "-f", "{{.Mountpoint}}", "free").stdout.strip()
        with open(os.path.join(mp, "blob"), "wb") as f:
            f.write(b"x" * 5000)
        h("create", "--name", "user", "-v", "used:/d", "busybox", "true")
        df = rows(h("system", "df").stdout)
        assert df["Images"][:2] == ["2", "1"]
        assert df["Containers"][:3] == ["1", "0", "0B"]
        assert df["Local Volumes"] == ["2", "1", "5kB", "5kB (100%)"]
        assert df["Build Cache"] == ["0", "0", "0B", "0B"]
        assert h("system", "df", "--format", "{{.Type}}={{.TotalCount}}").stdout.splitlines() == [
            "Images=2", "Containers=1", "Local Volumes=2", "Build Cache=0"]
        verbose = h("system", "df", "-v").stdout
        assert "Local Volumes space usage:" in verbose and "\nused          1         0B\n" in verbose
        # without --volumes: containers go, volumes stay
        p = h("system", "prune", "-f")
        assert p.stdout.startswith("Deleted Containers:\n") and "Deleted Volumes" not in p.stdout
        assert sorted(h("volume", "ls", "-q").stdout.split()) == ["free", "used"]
        p = h("system", "prune", "-f", "--volumes")
        assert p.stdout == "Deleted Volumes:\nfree\nused\n\nTotal reclaimed space: 5kB\n"
        p = h("system", "prune", "-f", "--volumes", "--filter", "until=1h", check=False)
        assert (p.returncode, p.stderr) == (1, 'ERROR: The "until" filter is not supported with "--volumes"\n')
        p = h("system", "prune", "-f", "-a")
        assert "Deleted Images:\n" in p.stdout and "untagged: busybox:latest" in p.stdout
        assert h("images", "-q").stdout == ""
    finally:
        left = mounts_under(root)
        shutil.rmtree(root, ignore_errors=True)
    assert not left
