"""Security flags end to end: `hutch run` as a user runs it, checked from inside."""
import glob
import os
import subprocess

import pytest

from hutch.oci.defaults import ALL_CAPS, host_bounding_caps

pytestmark = pytest.mark.root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
HUTCH = os.path.join(REPO, ".venv", "bin", "hutch")


@pytest.fixture(scope="module")
def hutch_root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = str(tmp_path_factory.mktemp("sec-e2e-root"))
    env = dict(os.environ, HUTCH_ROOT=root, HUTCH=HUTCH)
    try:
        made = subprocess.run(["bash", os.path.join(REPO, "scripts", "make-images.sh")],
                              env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("making the busybox image took over 120 s (an emulated guest?)")
    if made.returncode != 0:
        pytest.skip(f"cannot make the busybox image: {made.stderr.strip()[-200:]}")
    yield root
    cdir = os.path.join(root, "containers")
    ids = [i for i in os.listdir(cdir) if len(i) == 64] if os.path.isdir(cdir) else []
    if ids:
        subprocess.run([HUTCH, "--root", root, "rm", "-f", *ids], capture_output=True)
    left = [p for cid in ids for p in glob.glob(f"/sys/fs/cgroup/*/hutch/{cid}")]
    with open("/proc/self/mountinfo") as f:
        left += [line.split()[4] for line in f if root in line]
    assert left == []


def run(root, *args):
    """`hutch run --rm ARGS`; CompletedProcess."""
    return subprocess.run([HUTCH, "--root", root, "run", "--rm", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def status(out):
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in out.splitlines()) if _}


def test_defaults(hutch_root):
    out = run(hutch_root, "busybox", "sh", "-c", "cat /proc/self/status; ls /proc/self/fd")
    assert out.returncode == 0, out.stderr
    st = status(out.stdout)
    assert st["CapEff"] == st["CapBnd"] == "00000000a80425fb"
    assert st["CapInh"] == st["CapAmb"] == "0000000000000000"
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "0"
    assert out.stdout.split()[-4:] == ["0", "1", "2", "3"]


def test_privileged(hutch_root):
    out = run(hutch_root, "--privileged", "busybox", "sh", "-c",
              "cat /proc/self/status; mkdir -p /tmp/m && mount -t tmpfs t /tmp/m && echo mounted")
    assert out.returncode == 0, out.stderr
    st = status(out.stdout)
    assert int(st["CapEff"], 16) == sum(1 << ALL_CAPS[c] for c in host_bounding_caps())
    assert st["Seccomp"] == "0" and "mounted" in out.stdout


def test_cap_drop_all_add_one_and_non_root(hutch_root):
    out = run(hutch_root, "--cap-drop", "ALL", "--cap-add", "net_bind_service", "busybox",
              "cat", "/proc/self/status")
    assert out.returncode == 0, out.stderr
    assert status(out.stdout)["CapEff"] == f"{1 << 10:016x}"
    out = run(hutch_root, "--user", "nobody", "busybox", "sh", "-c", "cat /proc/self/status; id")
    assert out.returncode == 0, out.stderr
    st = status(out.stdout)
    assert st["CapEff"] == "0000000000000000" and "uid=65534(nobody)" in out.stdout


def test_options(hutch_root):
    out = run(hutch_root, "--security-opt", "no-new-privileges", "--read-only",
              "--sysctl", "net.ipv4.ip_forward=1", "--security-opt", "seccomp=unconfined",
              "busybox", "sh", "-c",
              "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status; "
              "cat /proc/sys/net/ipv4/ip_forward; touch /x; echo touch=$?")
    assert out.returncode == 0, out.stderr
    assert "NoNewPrivs:\t1" in out.stdout and "Seccomp:\t0" in out.stdout
    assert "\n1\n" in out.stdout and "touch=1" in out.stdout


@pytest.mark.parametrize("flags,message", [
    (["--cap-add", "foo"], 'invalid CapAdd: unknown capability: "CAP_FOO"'),
    (["--sysctl", "kernel.foo=1"], "sysctl 'kernel.foo=1' is not allowed"),
    (["--user", "nosuch"], "unable to find user nosuch: no matching entries in passwd file"),
    (["--security-opt", "foo"], 'invalid --security-opt 1: "foo"'),
    (["--device", "/dev/nosuch-hutch"], "error gathering device information while adding "
                                        'custom device "/dev/nosuch-hutch"'),
])
def test_refusals(hutch_root, flags, message):
    out = run(hutch_root, *flags, "busybox", "true")
    assert out.returncode != 0
    assert message in out.stderr


def test_state_not_reachable_by_other_users(hutch_root, tmp_path):
    fresh = tmp_path / "fresh-root"
    env = dict(os.environ, HUTCH_ROOT=str(fresh), HUTCH=HUTCH)
    subprocess.run(["bash", os.path.join(REPO, "scripts", "make-images.sh")], env=env,
                   check=True, capture_output=True, timeout=120)
    out = run(str(fresh), "busybox", "true")
    assert out.returncode == 0, out.stderr
    walls = [fresh, fresh / "run"]
    assert fresh.exists()
    for path in walls:
        if path.exists():
            assert path.stat().st_mode & 0o007 == 0, f"{path} is {path.stat().st_mode:o}"
