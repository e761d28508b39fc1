"""Helpers of the security tests (a unique module name: a bare `conftest` import
resolves to another directory's conftest in a full-suite run).

Real containers from a busybox bundle, run by an OCI runtime with runc's command line.

The runtime is hutch-runtime; HUTCH_TEST_RUNTIME=runc (or crun, or a path) runs the same
checks against a reference runtime. Every container gets a unique id, state root and flat
cgroup path, and the fixture asserts that nothing is left behind (state, cgroup, mounts).
"""
import json
import os
import shutil
import subprocess
import uuid

from e2e_helpers import HUTCH_RUNTIME, mounts_naming
from hutch import cgroups
from hutch.oci.defaults import default_spec

HERE = os.path.dirname(os.path.abspath(__file__))
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/devices",
                "/sys/fs/cgroup/unified", "/sys/fs/cgroup")
RUN_TIMEOUT = 60

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\naudio:x:29:\nnogroup:x:65534:\n"


def runtime_path() -> str:
    name = os.environ.get("HUTCH_TEST_RUNTIME")
    if name:
        return shutil.which(name) or name
    return HUTCH_RUNTIME


def make_rootfs(root: str) -> None:
    """busybox and its applet links, /etc/passwd and /etc/group, empty mount points."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
              "root", "home/alice", "mnt"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True)
    for applet in out.stdout.split():
        link = os.path.join(root, applet)
        if not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write(GROUP)


class Bundle:
    """One container: bundle dir, state root, id; run() writes config.json and runs it."""

    def __init__(self, base: str, runtime: str, template: str):
        self.dir = os.path.join(base, "bundle")
        self.rootfs = os.path.join(self.dir, "rootfs")
        self.state = os.path.join(base, "state")
        self.runtime = runtime
        self.id = "hutch-sec-" + uuid.uuid4().hex[:12]
        self.cgroups_path = "/" + self.id
        os.makedirs(self.state)
        shutil.copytree(template, self.rootfs, symlinks=True)
        # Docker's default: a private cgroup namespace on pure cgroup v2 hosts only.
        self.spec = default_spec(cgroup_ns=cgroups.detect_mode() == "unified")
        self.spec["linux"]["cgroupsPath"] = self.cgroups_path

    def write_config(self, args):
        self.spec["process"]["args"] = list(args)
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(self.spec, f, indent=1)

    def rt(self, *argv, **kw):
        return subprocess.run([self.runtime, "--root", self.state, *argv],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              stdin=subprocess.DEVNULL, **kw)

    def run(self, *args, **kw):
        """Run `args` as the container's process; CompletedProcess with its output."""
        self.write_config(args)
        try:
            return self.rt("run", "--bundle", self.dir, self.id, **kw)
        finally:
            self.rt("delete", "--force", self.id)

    def sh(self, script, **kw):
        return self.run("sh", "-c", script, **kw)

    def leftovers(self) -> list[str]:
        found = []
        if os.path.exists(os.path.join(self.state, self.id)):
            found.append(f"state dir {self.state}/{self.id}")
        for root in CGROUP_ROOTS:
            path = root + self.cgroups_path
            if os.path.exists(path):
                found.append(f"cgroup {path}")
        return found + [f"mount {m}" for m in mounts_naming(self.dir)]
