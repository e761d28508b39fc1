"""Helpers for the resource-limit end-to-end tests (a uniquely named module: a bare
`from conftest import` would pick another directory's conftest in a full run)."""
import json
import os
import stat

import e2e_helpers as e2e

V1 = "/sys/fs/cgroup"


class Hutch(e2e.Hutch):
    timeout = 120

    def host_config(self, ref: str) -> dict:
        return json.loads(self.ok("inspect", "-f", "{{json .HostConfig}}", ref))

    def full_id(self, ref: str) -> str:
        return self.inspect(ref, "{{.Id}}")

    def cgroup_file(self, ref: str, controller: str, name: str) -> str:
        """The value of a v1 controller file of the container's cgroup."""
        path = os.path.join(V1, controller, "hutch", self.full_id(ref), name)
        with open(path) as f:
            return f.read().strip()


def block_device_of(path: str) -> str | None:
    """The /dev node of the block device holding `path`, or None (tmpfs, overlay, ...)."""
    dev = os.stat(path).st_dev
    link = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if os.major(dev) == 0 or not os.path.exists(link):
        return None
    node = "/dev/" + os.path.basename(os.path.realpath(link))
    try:
        st = os.stat(node)
    except OSError:
        return None
    return node if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev else None


def cpu_usage_ns(cid: str) -> int:
    with open(f"{V1}/cpuacct/hutch/{cid}/cpuacct.usage") as f:
        return int(f.read())
