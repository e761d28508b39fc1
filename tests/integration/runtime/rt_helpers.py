"""Helpers shared by the runtime's integration tests (a unique module name: a bare
`conftest` import resolves to another directory's conftest in a full-suite run)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

from e2e_helpers import HUTCH_RUNTIME as RUNTIME, mounts_naming
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
CGROUP_V1 = "/sys/fs/cgroup"


def applets() -> list[str]:
    out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def base_config(args: list[str]) -> dict:
    """runc spec's defaults, without a terminal."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {s: list(caps) for s in ("bounding", "effective", "permitted",
                                                     "ambient")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "hutch-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


class Bundle:
    def __init__(self, path: str, root: str, cid: str):
        self.path = path
        self.root = root            # the runtime's --root
        self.id = cid
        self.rootfs = os.path.join(path, "rootfs")
        self.config = base_config(["true"])

    def write(self, config: dict | None = None) -> None:
        if config is not None:
            self.config = config
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f)

    def runtime(self, *args, input=None, timeout=30, check=False,
                **kwargs) -> subprocess.CompletedProcess:
        """hutch-runtime --root <root> ARGS, with captured text output.

        Output goes through files, not pipes: a container started by create/run -d keeps
        its stdio open, and a pipe would never see EOF."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            done = subprocess.run([RUNTIME, "--root", self.root, *args], input=input,
                                  stdout=out, stderr=err, text=True, timeout=timeout,
                                  **kwargs)
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(done.args, done.returncode, out.read(),
                                               err.read())
        if check and proc.returncode != 0:
            raise AssertionError(f"hutch-runtime {' '.join(args)} failed "
                                 f"({proc.returncode}): {proc.stderr}")
        return proc

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run `args` as the container's process (foreground) with this bundle's config."""
        self.config["process"]["args"] = args
        self.write()
        return self.runtime("run", "--bundle", self.path, self.id, **kwargs)

    def create(self, args: list[str], *extra) -> subprocess.CompletedProcess:
        self.config["process"]["args"] = args
        self.write()
        return self.runtime("create", "--bundle", self.path, *extra, self.id, check=True)

    def state(self) -> dict:
        return json.loads(self.runtime("state", self.id, check=True).stdout)

    def cgroup_dir(self, controller: str) -> str:
        return os.path.join(CGROUP_V1, controller, self.id)


def leaks(bundle: Bundle) -> list[str]:
    found = []
    if os.path.exists(os.path.join(bundle.root, bundle.id)):
        found.append(f"state dir {bundle.root}/{bundle.id}")
    for controller in os.listdir(CGROUP_V1):
        d = os.path.join(CGROUP_V1, controller, bundle.id)
        if os.path.exists(d):
            found.append(f"cgroup {d}")
    return found + [f"mount {m}" for m in mounts_naming(bundle.path)]


