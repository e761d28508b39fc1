"""The engine's side of volumes: the --mount flag's client-side errors, where -v and --mount
land in inspect (Config.Volumes, HostConfig.Binds, HostConfig.Mounts), and the volumes'
after-exit hook (a tmpfs-backed volume starts empty at the next start)."""
import json

import pytest

pytestmark = pytest.mark.root


def test_mount_flag_errors_are_the_clients(h):
    p = h("run", "--rm", "--mount", "type=bind", "busybox", "true", check=False)
    assert p.returncode == 125
    assert p.stderr == ('invalid argument "type=bind" for "--mount" flag: target is required\n\n'
                        "Usage:  hutch run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                        "Run 'hutch run --help' for more information\n")
    p = h("create", "--mount", "source=x", "busybox", check=False)
    assert p.returncode == 125 and "target is required" in p.stderr
    assert h("ps", "-aq").stdout == "" or "x" not in h("volume", "ls", "-q").stdout.split()


def test_volumes_binds_and_mounts_in_inspect(h, tmp_path):
    name = h.name()
    h("create", "--name", name, "-v", "/anon", "-v", f"{tmp_path}:/h:ro",
      "--mount", "type=volume,target=/m", "busybox")
    try:
        cfg = json.loads(h("inspect", "-f", "{{json .Config.Volumes}}", name).stdout)
        hc = json.loads(h("inspect", "-f", "{{json .HostConfig}}", name).stdout)
        assert cfg == {"/anon": {}}
        assert hc["Binds"] == [f"{tmp_path}:/h:ro"]
        assert hc["Mounts"] == [{"Type": "volume", "Source": "", "Target": "/m"}]
    finally:
        h("rm", "-v", name)


def test_tmpfs_volume_is_deactivated_after_exit(run_ok):
    h = run_ok
    vol = h.name("tv")
    h("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", vol)
    try:
        h("run", "--rm", *h.run_args, "-v", f"{vol}:/data", "busybox", "sh", "-c",
          "echo x > /data/f")
        out = h("run", "--rm", *h.run_args, "-v", f"{vol}:/data", "busybox", "ls", "/data").stdout
        assert out == ""
    finally:
        h("volume", "rm", vol)
