"""Joining a cgroup without a move by another process (CgroupManager.birth_dir,
self_join_files; _sys.fork_into_cgroup): a child born in the cgroup2 directory, a
single-threaded process writing "0" into v1's `tasks`. Real hierarchies; nothing left."""
import errno
import os
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import cgtest  # noqa: E402

from hutch import _sys, cgroups  # noqa: E402

SRC = os.path.dirname(os.path.dirname(_sys.__file__))

pytestmark = [pytest.mark.root]


@pytest.fixture
def cg():
    yield from cgtest.managed(create=False)    # (birth_dir makes what a test needs)


def _own_cgroups_in_child(action) -> list[str]:
    """/proc/self/cgroup's lines of a child after `action(pid)` ran in it (it exits 0)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            action()
            with open("/proc/self/cgroup") as f:
                os.write(w, f.read().encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out.splitlines()


def _birth(cg, flags=0):
    """Fork a child into cg's birth dir from a fresh interpreter (single-threaded, as the
    runtime is; a pytest worker runs threads); the child's PID and /proc/self/cgroup."""
    birth = cg.birth_dir()
    code = f"""
import os, sys
sys.path.insert(0, {SRC!r})
from hutch import _sys
fd = os.open({birth!r}, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
pid = _sys.fork_into_cgroup(fd, {flags})
if pid == 0:
    with open("/proc/self/cgroup") as f:
        print(os.getpid(), f.read(), flush=True)
    os._exit(7)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    p = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 7, p.stderr    # Python ran on in the child, as forked
    own_pid, *lines = p.stdout.split()
    return birth, int(own_pid), lines


def test_a_child_is_born_in_the_cgroup2_directory(cg):
    if cg.birth_dir() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    birth, _, lines = _birth(cg)
    assert os.path.isdir(birth)
    v2_line = [line for line in lines if line.startswith("0::")]
    assert v2_line == [f"0::{cg.path}"]


def test_born_as_pid_1_of_a_new_pid_namespace(cg):
    if cg.birth_dir() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    _, pid_inside, lines = _birth(cg, _sys.CLONE_NEWPID)
    assert pid_inside == 1
    assert f"0::{cg.path}" in lines


def test_a_threaded_process_is_refused(cg):
    if cg.birth_dir() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    fd = os.open(cg.birth_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as e:
            _sys.fork_into_cgroup(fd)
        assert e.value.errno == errno.EBUSY      # the caller forks, then moves, instead
    finally:
        os.close(fd)
        stop.set()
        t.join()


@pytest.mark.skipif(cgroups.detect_mode() not in ("legacy", "hybrid"),
                    reason="v1 hierarchies only")
def test_a_single_thread_joins_each_v1_hierarchy_by_writing_0(cg):
    from hutch.runtime.process import join_cgroup
    cg.create()
    files = cg.self_join_files()
    assert sorted(files) == sorted(d for _, d in cg.hierarchy_dirs())
    lines = _own_cgroups_in_child(lambda: [join_cgroup(f) for f in files.values()])
    v1 = [line for line in lines if not line.startswith("0::") and ":name=" not in line]
    assert v1 and all(line.endswith(":" + cg.path) for line in v1), lines
