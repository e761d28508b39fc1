"""The same bundle under runc and hutch-runtime: what the process sees must match."""
import os
import shutil
import subprocess

import pytest

PROBE = ("echo $$; id; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp|SigIgn|SigBlk)' /proc/self/status; "
         "ulimit -n; umask; pwd; env | sort; awk '{print $2, $3, $4}' /proc/self/mounts; "
         "ls -la /dev | awk '{print $1, $5, $6, $NF}'; cat /proc/self/oom_score_adj; "
         "ls /sys/class/net")

RUNC = shutil.which("runc")


def _variants():
    def plain(c):
        pass

    def docker_like(c):
        c["mounts"] += [
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]}]
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 4096, "hard": 4096}]
        c["process"]["oomScoreAdj"] = 100
        c["linux"]["maskedPaths"] = ["/proc/kcore", "/proc/keys", "/sys/firmware"]

    def user_and_caps(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5], "umask": 0o027}
        caps = ["CAP_CHOWN", "CAP_NET_RAW"]
        c["process"]["capabilities"] = {s: caps for s in ("bounding", "effective",
                                                          "permitted", "inheritable")}
        c["process"]["cwd"] = "/tmp"
        c["root"]["readonly"] = True

    return {"plain": plain, "docker-like": docker_like, "user-and-caps": user_and_caps}


@pytest.mark.skipif(RUNC is None, reason="runc is not installed")
@pytest.mark.parametrize("variant", list(_variants()))
def test_process_sees_the_same_as_under_runc(bundle, tmp_path, variant):
    bundle.config["process"]["args"] = ["sh", "-c", PROBE]
    _variants()[variant](bundle.config)
    ours = bundle.run(bundle.config["process"]["args"])
    assert ours.returncode == 0, ours.stderr
    runc = subprocess.run([RUNC, "--root", str(tmp_path / "runc"), "run", "--bundle",
                           bundle.path, bundle.id + "-runc"], capture_output=True, text=True,
                          timeout=60)
    assert runc.returncode == 0, runc.stderr
    # runc also binds the name=systemd hierarchy, which hutch's cgroup driver does not manage.
    theirs = [line for line in runc.stdout.splitlines() if "/sys/fs/cgroup/systemd" not in line]
    assert ours.stdout.splitlines() == theirs
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{bundle.id}-runc")
