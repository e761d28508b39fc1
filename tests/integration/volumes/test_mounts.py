"""Mount targets and volume mounts on the real kernel, in forked children with a private
mount namespace (gone with the child: nothing can leak onto the host)."""
import errno
import os

import pytest

from hutch import _sys
from hutch.engine.volumes import fd_path, open_in_root, prepare_mount_target
from hutch.engine.volumestore import VolumeStore
from hutch.paths import Paths

pytestmark = pytest.mark.root


def in_private_ns(fn) -> tuple[int, str]:
    """Run fn() in a forked child with its own mount namespace; (exit code, its message)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            _sys.unshare(_sys.CLONE_NEWNS)
            _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
            os.write(w, (fn() or "").encode())
        except BaseException as e:  # noqa: BLE001
            os.write(w, f"{type(e).__name__}: {e}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), msg


def mounts_mentioning(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def test_symlink_at_mount_target_stays_in_rootfs(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    victim = tmp_path / "host-victim"
    victim.mkdir()
    os.symlink(str(victim), rootfs / "abs")          # absolute link to a host path
    os.symlink("../../../../../../" + str(victim).lstrip("/"), rootfs / "climb")
    os.symlink("/abs/deeper", rootfs / "chain")

    def attack():
        out = []
        for target in ("/abs/m1", "/climb/m2", "/chain/m3", "/abs"):
            fd = prepare_mount_target(str(rootfs), target)
            try:
                _sys.mount("tmpfs", fd_path(fd), "tmpfs", 0, "size=64k")
            finally:
                os.close(fd)
            fd = open_in_root(str(rootfs), target)
            try:
                with open(os.path.join(fd_path(fd), "marker"), "w") as f:
                    f.write(target)
                out.append(os.readlink(fd_path(fd)))
            finally:
                os.close(fd)
        return "\n".join(out)

    code, msg = in_private_ns(attack)
    assert code == 0, msg
    inside = str(rootfs / str(victim).lstrip("/"))
    assert msg.split("\n") == [f"{inside}/m1", f"{inside}/m2", f"{inside}/deeper/m3", inside]
    assert os.listdir(victim) == [], "a mount or file went through a symlink onto the host"
    assert not mounts_mentioning(tmp_path)


def test_tmpfs_volume_size_limit_holds(tmp_path):
    paths = Paths.from_root(str(tmp_path / "root"))
    store = VolumeStore(paths)
    store.create("small", options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=7"})

    def fill():
        mp = store.activate("small")
        assert os.path.ismount(mp) and os.stat(mp).st_uid == 7
        assert store.activate("small") == mp            # second use: already mounted
        try:
            with open(os.path.join(mp, "big"), "wb") as f:
                for _ in range(4):
                    f.write(b"\0" * (512 << 10))
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as e:
            return errno.errorcode[e.errno]
        return "wrote 2 MiB into a 1 MiB tmpfs"

    code, msg = in_private_ns(fill)
    assert (code, msg) == (0, "ENOSPC")
    store.remove("small")
    assert not mounts_mentioning(tmp_path)


def test_bad_volume_options_fail_at_use(tmp_path):
    store = VolumeStore(Paths.from_root(str(tmp_path / "root")))
    store.create("badfs", options={"type": "nosuchfs", "device": "x"})

    def use():
        store.activate("badfs")
    code, msg = in_private_ns(use)
    assert code == 1 and "failed to mount local volume" in msg and "no such device" in msg
    store.remove("badfs")


def test_option_volume_unmounted_after_last_user(tmp_path):
    from hutch.engine.volumes import after_exit, plan_mounts
    paths = Paths.from_root(str(tmp_path / "root"))
    cid = "f" * 64
    os.makedirs(os.path.join(paths.containers, cid))
    store = VolumeStore(paths)
    store.create("tv", options={"type": "tmpfs", "device": "tmpfs", "o": "size=64k"})
    plan = plan_mounts(paths, cid, volumes=["tv:/t"])

    def cycle():
        mp = store.activate("tv")
        assert os.path.ismount(mp)
        after_exit(paths, cid, plan.record)
        return "unmounted" if not os.path.ismount(mp) else "still mounted"
    assert in_private_ns(cycle) == (0, "unmounted")
    os.rmdir(os.path.join(paths.containers, cid))
    store.remove("tv")


def test_racing_symlink_swap_never_redirects_a_mount(tmp_path):
    """Another process flips a path component between a directory and a symlink to a host
    directory while targets are resolved and mounted: no mount and no mkdir ever lands on
    the host (the fd from open_in_root pins what was resolved)."""
    import time
    rootfs = tmp_path / "rootfs"
    (rootfs / "t").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    flipper = os.fork()
    if flipper == 0:
        try:
            t = str(rootfs / "t")
            end = time.monotonic() + 20
            while time.monotonic() < end:
                for path in (t + "/sub", t):
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass
                try:
                    os.symlink(str(victim), t)      # t -> the host directory
                except OSError:
                    pass
                try:
                    os.unlink(t)
                    os.mkdir(t)                      # t a plain directory again
                except OSError:
                    pass
        finally:
            os._exit(0)

    def mount_many():
        done = 0
        for _ in range(300):
            try:
                fd = prepare_mount_target(str(rootfs), "/t/sub")
            except OSError:
                continue
            try:
                _sys.mount("tmpfs", fd_path(fd), "tmpfs", 0, "size=16k")
                _sys.umount2(fd_path(fd), _sys.MNT_DETACH)
                done += 1
            except OSError:
                pass
            finally:
                os.close(fd)
            if os.listdir(victim):
                return f"host directory touched: {os.listdir(victim)}"
        return f"ok {done}"

    try:
        code, msg = in_private_ns(mount_many)
    finally:
        os.kill(flipper, 9)
        os.waitpid(flipper, 0)
    assert code == 0 and msg.startswith("ok"), msg
    assert os.listdir(victim) == []
    assert not mounts_mentioning(tmp_path)
    # some resolutions did go through the link: inside the rootfs, where it points
    assert (rootfs / str(victim).lstrip("/")).is_dir()


def test_removing_a_bind_option_volume_keeps_the_host_directory(tmp_path):
    """-o type=none -o o=bind -o device=DIR: the same filesystem, invisible to
    os.path.ismount; `volume rm` must unmount it, never delete through it."""
    src = tmp_path / "hostdir"
    src.mkdir()
    (src / "precious").write_text("keep me")
    store = VolumeStore(Paths.from_root(str(tmp_path / "root")))
    store.create("bv", options={"type": "none", "o": "bind", "device": str(src)})

    def use_then_remove():
        mp = store.activate("bv")
        assert open(os.path.join(mp, "precious")).read() == "keep me"
        store.activate("bv")                       # already mounted: not stacked again
        assert len(mounts_mentioning(mp)) == 1
        store.remove("bv")
        return ",".join(os.listdir(src))
    assert in_private_ns(use_then_remove) == (0, "precious")
    assert (src / "precious").read_text() == "keep me"
