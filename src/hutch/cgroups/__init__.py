"""cgroups: one CgroupManager interface, a v1 and a v2 driver chosen at run time.

    detect_mode() -> "legacy" | "hybrid" | "unified"
    m = manager("/hutch/<id>")        # or manager(path, root=tmpdir) on a fake tree
    m.create(); m.apply(oci_linux_resources); m.add_process(pid)
    m.freeze(); m.thaw(); m.is_frozen(); m.pids(); m.stats(); m.oom_kill_count()
    m.destroy(); m.paths(); m.exists()

Errors are CgroupError, one line naming the path and value.
"""
from __future__ import annotations

import os

from hutch.cgroups.base import CgroupManager
from hutch.cgroups.fs import CgroupError
from hutch.cgroups.mounts import Mounts, fake_mounts, host_mounts, own_cgroup

__all__ = ["CgroupError", "CgroupManager", "cgroup_mounts", "detect_mode", "manager"]


def cgroup_mounts(root: str | None = None, mode: str | None = None) -> Mounts:
    """The host's cgroup mounts, or those of a fake tree under `root`."""
    return fake_mounts(root, mode) if root else host_mounts()


def detect_mode(root: str | None = None) -> str:
    return cgroup_mounts(root).mode


def manager(cgroups_path: str, *, root: str | None = None,
            mode: str | None = None) -> CgroupManager:
    """The driver for this host (or for a fake tree under `root`).

    An absolute `cgroups_path` ("/hutch/<id>") is taken from each hierarchy's root; a
    relative one is placed under the caller's own cgroup, as runc does (on a fake tree it
    is taken from the root). Hybrid hosts use the v1 driver, as runc does.
    """
    m = cgroup_mounts(root, mode)
    if not cgroups_path or ".." in cgroups_path.split("/") or os.path.normpath(
            "/" + cgroups_path.lstrip("/")) == "/":
        # Never the hierarchy's root: destroy() would kill every process on the host.
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}")
    if m.mode == "unified":
        from hutch.cgroups.v2 import V2Manager
        path = cgroups_path
        if not os.path.isabs(path) and root is None:
            path = os.path.join(own_cgroup(None), path)
        return V2Manager(os.path.normpath("/" + path), m.unified)
    from hutch.cgroups.v1 import V1Manager
    inner = None
    if not os.path.isabs(cgroups_path):
        if root is None:
            inner = {c: os.path.join(own_cgroup(c), cgroups_path) for c in m.v1}
            inner[""] = os.path.join(own_cgroup(None), cgroups_path)
        else:
            cgroups_path = "/" + cgroups_path
    return V1Manager(os.path.normpath(cgroups_path), m, inner)
