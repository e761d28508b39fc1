"""Where the cgroup hierarchies are mounted, and which layout the host uses.

- unified: /sys/fs/cgroup is cgroup2 and holds every controller (most current hosts).
- legacy:  one cgroup (v1) mount per controller (or a few combined, e.g. cpu,cpuacct).
- hybrid:  v1 controllers plus a cgroup2 mount (/sys/fs/cgroup/unified) that holds no
           controllers or a stray one; like runc, hybrid hosts use the v1 driver.
"""
from __future__ import annotations

import os

CGROUP_ROOT = "/sys/fs/cgroup"

# The v1 controllers hutch manages, in the order runc applies them.
V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "blkio", "pids", "freezer",
                  "devices", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma")


class Mounts:
    """A plain class: dataclasses would cost ~8 ms of import on every runtime call."""
    __slots__ = ("mode", "v1", "unified")

    def __init__(self, mode: str, v1: dict[str, str] | None = None,
                 unified: str | None = None):
        self.mode = mode                 # legacy | hybrid | unified
        self.v1 = v1 if v1 is not None else {}   # controller -> mountpoint
        self.unified = unified           # the cgroup2 mountpoint

    def __eq__(self, other) -> bool:
        return isinstance(other, Mounts) and (self.mode, self.v1, self.unified) == (
            other.mode, other.v1, other.unified)

    def __repr__(self) -> str:
        return f"Mounts(mode={self.mode!r}, v1={self.v1!r}, unified={self.unified!r})"


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return s.encode().decode("unicode_escape") if "\\" in s else s


def parse_mountinfo(text: str) -> Mounts:
    v1: dict[str, str] = {}
    unified = None
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        fields = pre.split()
        fstype, _source, superopts = (post.split() + ["", "", ""])[:3]
        mountpoint = _unescape(fields[4])
        if fstype == "cgroup2":
            # The first cgroup2 mount wins; later ones are usually container bind mounts.
            if unified is None:
                unified = mountpoint
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in V1_CONTROLLERS and opt not in v1:
                    v1[opt] = mountpoint
    if not v1 and unified is not None:
        mode = "unified"
    elif unified is not None:
        mode = "hybrid"
    else:
        mode = "legacy"
    return Mounts(mode, v1, unified)


def standard_mounts(proc_cgroup: str, root: str = CGROUP_ROOT) -> Mounts | None:
    """The layout where systemd and most hosts mount the hierarchies, or None when it is
    not there. O(1) where mountinfo grows two lines a running container.

    `proc_cgroup` is /proc/self/cgroup. A cgroup2 mount shows cgroup.controllers; each v1
    hierarchy is expected at root/<its controllers>, whose release_agent only a v1
    hierarchy's root cgroup shows; a "0::" line means a cgroup2 mount exists somewhere,
    expected at root/unified on a v1 host. (Files, not statfs: ctypes costs the CLI ~1 ms.)
    """
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return Mounts("unified", {}, root)
    v1: dict[str, str] = {}
    has_v2 = False
    # By hierarchy id: the order the hierarchies were first mounted, as mountinfo has them.
    for line in sorted(proc_cgroup.splitlines(), key=lambda line: int(line.split(":", 1)[0])):
        _hid, controllers, _path = line.split(":", 2)
        has_v2 = has_v2 or controllers == ""
        managed = [c for c in controllers.split(",") if c in V1_CONTROLLERS]
        if not managed:
            continue
        mount = os.path.join(root, controllers)
        if not os.path.exists(os.path.join(mount, "release_agent")):
            return None
        for c in managed:
            v1.setdefault(c, mount)
    unified = os.path.join(root, "unified")
    if not os.path.exists(os.path.join(unified, "cgroup.controllers")):
        if has_v2:
            return None  # cgroup2 is mounted elsewhere
        unified = None
    if not v1:
        return None
    return Mounts("hybrid" if unified else "legacy", v1, unified)


_cached: Mounts | None = None
_own: tuple[int, str] | None = None     # (pid, /proc/self/cgroup's text)


def proc_self_cgroup() -> str:
    """/proc/self/cgroup, read once per process: the kernel takes cgroup_mutex to list it,
    and a cgroup move (a primer: cgroups.prime_attach_in_thread) holds that
    mutex through an RCU grace period, so a second read would wait for it. Nothing moves
    our process meanwhile (a forked child, whose pid differs, reads its own). OSError when
    there is no such file."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        with open("/proc/self/cgroup") as f:
            _own = (pid, f.read())
    return _own[1]


def host_mounts() -> Mounts:
    """The host's layout: the standard one if it is there, else what mountinfo says."""
    global _cached
    if _cached is None:
        try:
            _cached = standard_mounts(proc_self_cgroup())
        except OSError:
            pass
        if _cached is None:
            with open("/proc/self/mountinfo") as f:
                _cached = parse_mountinfo(f.read())
    return _cached


def fake_mounts(root: str, mode: str | None = None) -> Mounts:
    """The layout of a cgroup tree under `root` (a temp dir in unit tests).

    unified: `root` itself is the cgroup2 mount (it holds cgroup.controllers).
    legacy/hybrid: each `root/<controller>` directory is that controller's mount; hybrid
    adds `root/unified` as the cgroup2 mount.
    """
    if mode is None:
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            mode = "unified"
        elif os.path.isdir(os.path.join(root, "unified")):
            mode = "hybrid"
        else:
            mode = "legacy"
    if mode == "unified":
        return Mounts("unified", {}, root)
    v1 = {c: os.path.join(root, c) for c in V1_CONTROLLERS if os.path.isdir(os.path.join(root, c))}
    unified = os.path.join(root, "unified") if mode == "hybrid" else None
    return Mounts(mode, v1, unified)


def own_cgroup(controller: str | None) -> str:
    """The calling process's cgroup path for a v1 controller (None: the cgroup2 one)."""
    try:
        lines = proc_self_cgroup().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _hid, ctrls, path = line.split(":", 2)
        if controller is None and ctrls == "":
            return path
        if controller is not None and controller in ctrls.split(","):
            return path
    return "/"
