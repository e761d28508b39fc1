"""Helpers for the real-kernel cgroup tests (host v1 and the v2 guest)."""
import json
import os
import signal
import uuid


def unique_parent() -> str:
    return f"/hutch-test-{uuid.uuid4().hex[:12]}"


def leftover_dirs(parent: str) -> list[str]:
    """Every directory named `parent` still present in any mounted hierarchy."""
    from hutch.cgroups import cgroup_mounts
    m = cgroup_mounts()
    roots = set(m.v1.values()) | ({m.unified} if m.unified else set())
    return [os.path.join(r, parent.lstrip("/")) for r in sorted(roots)
            if os.path.isdir(os.path.join(r, parent.lstrip("/")))]


def remove_parent(parent: str) -> None:
    for d in leftover_dirs(parent):
        os.rmdir(d)


def managed(create: bool = True):
    """A fixture's body: a manager for <unique parent>/c1 (created unless not `create`);
    afterwards it is destroyed and nothing of it is left in any hierarchy."""
    from hutch import cgroups
    parent = unique_parent()
    m = cgroups.manager(parent + "/c1")
    if create:
        m.create()
    try:
        yield m
    finally:
        m.destroy()
        assert not m.exists()
        remove_parent(parent)
        assert leftover_dirs(parent) == []


class Child:
    """A forked child that joins the cgroup before running `action` (no exec needed).

    The child waits on a pipe until the parent has put it into the cgroup, runs
    `action()`, reports its JSON-able result on a second pipe and exits.
    """

    def __init__(self, manager, action):
        go_r, go_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(go_w)
                os.close(res_r)
                os.read(go_r, 1)
                result = action()
                os.write(res_w, json.dumps(result).encode() + b"\n")
            finally:
                os._exit(0)
        os.close(go_r)
        os.close(res_w)
        self.pid = pid
        self._res = res_r
        self._go = go_w
        self._status = None
        try:
            manager.add_process(pid)
        except Exception:
            self.kill()
            raise

    def start(self) -> None:
        os.write(self._go, b"g")
        os.close(self._go)
        self._go = None

    def result(self):
        # Up to the newline, not EOF: grandchildren forked by `action` hold the pipe open.
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(self._res, 65536)
            if not chunk:
                break
            data += chunk
        os.close(self._res)
        self._res = None
        return json.loads(data) if data else None

    def wait(self) -> int:
        if self._status is None:
            self._status = os.waitpid(self.pid, 0)[1]
        return self._status

    def kill(self) -> None:
        if self._status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        for fd in (self._go, self._res):
            if fd is not None:
                os.close(fd)
        self._go = self._res = None


def run_in(manager, action):
    """Run `action` in a child inside the cgroup; (result, wait status)."""
    child = Child(manager, action)
    try:
        child.start()
        result = child.result()
        return result, child.wait()
    finally:
        child.kill()


def try_forks(n: int):
    """In the child: fork up to n sleepers; how many forks succeeded."""
    import time
    count = 0
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        count += 1
    return count


def allocate(mib: int):
    data = b"\x01" * (mib << 20)   # touched pages: charged to the memory cgroup
    return len(data)


def open_devices(paths_and_modes):
    out = []
    for path, mode in paths_and_modes:
        try:
            os.close(os.open(path, mode))
            out.append("ok")
        except OSError as e:
            out.append(e.strerror)
    return out


def burn_cpu():
    x = 0
    for i in range(300000):
        x += i
    return x


def spin():
    while True:
        pass
