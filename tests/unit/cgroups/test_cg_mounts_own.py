import builtins

from hutch.cgroups import mounts


def test_proc_self_cgroup_is_read_once_per_process(monkeypatch):
    monkeypatch.setattr(mounts, "_own", None)
    with open("/proc/self/cgroup") as f:
        text = f.read()
    assert mounts.proc_self_cgroup() == text

    def no_open(*a, **k):
        raise AssertionError("read again")
    monkeypatch.setattr(builtins, "open", no_open)
    assert mounts.proc_self_cgroup() == text        # the same process: no second read
    monkeypatch.undo()
    monkeypatch.setattr(mounts, "_own", (-1, "stale"))   # another pid's (a forked parent's)
    assert mounts.proc_self_cgroup() == text
