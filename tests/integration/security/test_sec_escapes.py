"""Regression tests for known container escapes, at the runtime level.

Each test sets up the escape's precondition in the bundle or image and checks from inside
(and from the host) that the container stayed inside its walls. A runtime may also refuse
to start such a container; that counts as blocked.
"""
import hashlib
import glob
import os
import shutil
import struct
import subprocess

import pytest

from hutch.engine.security import apply_security
from hutch.oci.defaults import ALL_CAPS, DEFAULT_CAPS

pytestmark = pytest.mark.root


def secure(bundle, **kw):
    return apply_security(bundle.spec, rootfs=bundle.rootfs, **kw)


def marker(tmp_path, name="host-secret"):
    """A host file outside the bundle whose content must never show up inside."""
    (tmp_path / "host-only").mkdir()
    path = tmp_path / "host-only" / name
    secret = "HOST-SECRET-" + os.urandom(6).hex()
    path.write_text(secret + "\n")
    return str(path), secret


# --- CVE-2024-21626: a leaked host fd as the working directory ---

@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7, 8])
def test_cwd_through_leaked_fd(bundle, tmp_path, fd):
    path, secret = marker(tmp_path)
    secure(bundle)
    bundle.spec["process"]["cwd"] = f"/proc/self/fd/{fd}"
    up = "../" * 30
    out = bundle.sh(f"pwd; cat {up}{path.lstrip('/')}; ls -a {up}")
    assert secret not in out.stdout + out.stderr
    if out.returncode == 0:
        # Started: the cwd must be inside the container (its root is all `..` reaches).
        assert "bundle" not in out.stdout and "pytest" not in out.stdout, out.stdout


def test_cwd_through_host_proc_is_caught_by_getcwd(bundle, tmp_path):
    """Without a /proc of its own at /proc, the init keeps the host's /proc open to reach
    the exec fifo: a cwd through it (a procfs mounted elsewhere) must be caught after
    chdir by the getcwd() check, with runc's error."""
    if "hutch" not in os.path.basename(bundle.runtime):
        pytest.skip("checks hutch-runtime's own fallback path")
    path, secret = marker(tmp_path)
    secure(bundle)
    for m in bundle.spec["mounts"]:
        if m["destination"] == "/proc":
            m["destination"] = "/proc2"
    errors = []
    for fd in range(3, 9):
        bundle.spec["process"]["cwd"] = f"/proc2/self/fd/{fd}"
        out = bundle.sh(f"pwd; cat {'../' * 30}{path.lstrip('/')}")
        assert secret not in out.stdout + out.stderr
        if out.returncode == 0:
            assert "bundle" not in out.stdout and "pytest" not in out.stdout, out.stdout
        errors.append(out.stderr)
    assert any("current working directory is outside of container mount namespace root -- "
               "possible container breakout detected" in e for e in errors), errors


# --- CVE-2019-5736: the runtime's executable reachable from inside ---

def runtime_executables(runtime):
    """Host files a container might overwrite through /proc/<runtime pid>/exe."""
    paths = {os.path.realpath(shutil.which(runtime) or runtime)}
    with open(next(iter(paths)), "rb") as f:
        head = f.read(256)
    if head.startswith(b"#!"):   # a Python entry point: its interpreter is the target
        interp = head[2:].split(b"\n")[0].split()[0].decode()
        paths.add(os.path.realpath(interp))
    return sorted(paths)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_proc_exe_of_runtime_not_reachable(bundle):
    """Exec into a created (not yet started) container: its pid 1 is still the runtime's
    init. Nothing in the container may open a host executable through /proc/<pid>/exe."""
    secure(bundle)
    bundle.write_config(["sleep", "30"])
    targets = runtime_executables(bundle.runtime)
    before = {p: digest(p) for p in targets}
    # The waiting init keeps the runtime's stdio: give it files, not pipes we wait on.
    log = bundle.dir + ".create.log"
    try:
        with open(log, "w") as err:
            created = subprocess.run([bundle.runtime, "--root", bundle.state, "create",
                                      "--bundle", bundle.dir, bundle.id],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     timeout=60)
        with open(log) as f:
            assert created.returncode == 0, f.read()
        script = ("for p in /proc/[0-9]*; do "
                  "  if cat $p/exe >/dev/null 2>&1; then echo \"$p $(readlink $p/exe)\"; fi; "
                  "  ( : >> $p/exe ) 2>/dev/null && echo \"$p WRITABLE\"; "
                  "done; true")
        out = bundle.rt("exec", bundle.id, "sh", "-c", script)
    finally:
        bundle.rt("delete", "--force", bundle.id)
        os.unlink(log)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.splitlines():
        pid, what = line.split(" ", 1)
        assert what != "WRITABLE", line
        # Readable only if it is the container's own program, a sealed memfd copy, or a
        # read-only bind already detached from every mount tree (runc 1.1's copy: "/").
        # A host path here (/usr/bin/python3.11) means a dumpable runtime process joined
        # the container: it must set PR_SET_DUMPABLE 0 before entering the namespaces.
        assert what in ("/bin/busybox", "/") or what.startswith("/memfd:"), line
    assert {p: digest(p) for p in targets} == before


def test_pid1_exe_after_start(bundle):
    secure(bundle)
    out = bundle.sh("readlink /proc/1/exe; cat /proc/1/exe | md5sum; "
                    "md5sum /bin/busybox")
    lines = out.stdout.splitlines()
    assert lines[0] == "/bin/busybox"
    assert lines[1].split()[0] == lines[2].split()[0]


# --- CVE-2021-30465 and friends: symlinks in the image as mount targets ---

def test_symlinked_mount_target_stays_in_root(bundle, tmp_path):
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    (host_dir / "untouched").write_text("host\n")
    src = tmp_path / "volume"
    src.mkdir()
    (src / "payload").write_text("from-volume\n")
    os.symlink(str(host_dir), os.path.join(bundle.rootfs, "evil"))
    os.symlink("../" * 20 + str(host_dir).lstrip("/"), os.path.join(bundle.rootfs, "evil2"))
    secure(bundle)
    for dest in ("/evil", "/evil2"):
        bundle.spec["mounts"].append({"destination": dest, "type": "bind", "source": str(src),
                                      "options": ["rbind", "ro"]})
    out = bundle.sh("cat /evil/payload /evil2/payload; ls " + str(host_dir))
    if out.returncode == 0:
        # The target resolved inside the root: the volume shows where the link points.
        assert out.stdout.split()[:2] == ["from-volume", "from-volume"], out
        assert "untouched" not in out.stdout
    assert sorted(os.listdir(host_dir)) == ["untouched"]
    assert not os.path.ismount(host_dir)


def test_racing_symlink_swap_never_redirects_a_runtime_mount(tmp_path):
    """CVE-2021-30465: another process flips a path component between a directory and a
    symlink to a host directory while the runtime makes the config's mounts (tmpfs and
    bind): rootfs.mount_one mounts onto the fd it resolved, so nothing lands on the host."""
    import time
    from hutch import _sys
    from hutch.runtime import rootfs, specconv
    root = tmp_path / "rootfs"
    (root / "t").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    mounts = [specconv.Mount("/t/sub", "tmpfs", "tmpfs", 0, [], "size=16k"),
              specconv.Mount("/t/sub", str(src), "bind", _sys.MS_BIND | _sys.MS_RDONLY, [], "")]
    flipper = os.fork()
    if flipper == 0:
        try:
            t = str(root / "t")
            end = time.monotonic() + 30
            while time.monotonic() < end:
                for path in (t + "/sub", t):
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass
                try:
                    os.symlink(str(victim), t)
                except OSError:
                    pass
                try:
                    os.unlink(t)
                    os.mkdir(t)
                except OSError:
                    pass
        finally:
            os._exit(0)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            _sys.unshare(_sys.CLONE_NEWNS)
            _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
            done = 0
            for i in range(600):
                try:
                    rootfs.mount_one(_sys, str(root), mounts[i % 2], in_userns=False)
                    done += 1
                except OSError:
                    continue
                # (The mounts pile up in this private namespace; they go with it.)
                if os.listdir(victim) or os.path.ismount(victim):
                    os.write(w, b"host directory touched")
                    break
            else:
                os.write(w, f"ok {done}".encode())
            code = 0
        except BaseException as e:  # noqa: BLE001
            os.write(w, f"{type(e).__name__}: {e}".encode())
        finally:
            os._exit(code)
    os.close(w)
    try:
        with os.fdopen(r) as f:
            msg = f.read()
        os.waitpid(child, 0)
    finally:
        os.kill(flipper, 9)
        os.waitpid(flipper, 0)
    assert msg.startswith("ok"), msg
    assert os.listdir(victim) == [] and not os.path.ismount(victim)
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


# --- CVE-2025-31133: /dev/null replaced by a symlink before masking ---

def test_dev_null_symlink_not_used_for_masking(bundle, tmp_path):
    dev = tmp_path / "fake-dev"
    dev.mkdir()
    os.symlink("/proc/sys/kernel/core_pattern", dev / "null")
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    secure(bundle)
    mounts = bundle.spec["mounts"]
    bundle.spec["mounts"] = [m for m in mounts if not m["destination"].startswith("/dev")]
    bundle.spec["mounts"].insert(1, {"destination": "/dev", "type": "bind",
                                     "source": str(dev), "options": ["rbind", "rw"]})
    masked = [p for p in bundle.spec["linux"]["maskedPaths"] if os.path.isfile(p)]
    # No /dev/null in the script: it is the file under attack.
    script = "; ".join(f"echo {p}=$(cat {p} | wc -c)" for p in masked)
    script += f"; for p in {' '.join(masked)}; do cat $p > $p && echo \"$p WRITABLE\"; done"
    out = bundle.sh(script + "; true")
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_pattern
    if out.returncode == 0:
        # Started: every masked file still reads empty and takes no writes.
        assert "WRITABLE" not in out.stdout, out.stdout
        sizes = dict(line.split("=") for line in out.stdout.splitlines() if "=" in line)
        assert sizes == {p: "0" for p in masked}, out.stdout


# --- /proc or /sys as symlinks in the image ---

@pytest.mark.parametrize("name,fstype", [("proc", "proc"), ("sys", "sysfs")])
def test_proc_or_sys_symlink_in_image(bundle, tmp_path, name, fstype):
    path, secret = marker(tmp_path)
    fake = os.path.join(bundle.rootfs, "tmp", "fake" + name)
    os.makedirs(fake)
    os.rmdir(os.path.join(bundle.rootfs, name))
    os.symlink(os.path.dirname(path), os.path.join(bundle.rootfs, name))
    secure(bundle)
    out = bundle.sh(f"stat -f -c %T /{name}/; ls /{name}/; cat /proc/keys | wc -c; "
                    f"grep ' /{name} ' /proc/mounts")
    assert secret not in out.stdout
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
    if out.returncode == 0:
        # Started anyway: the real filesystem is at /name, masked and read-only as usual.
        lines = out.stdout.splitlines()
        assert lines[0] == fstype, out
        assert os.path.basename(path) not in out.stdout


# --- CVE-2022-0492: cgroup v1 release_agent ---

def release_agents():
    out = {}
    for path in glob.glob("/sys/fs/cgroup/*/release_agent") + \
            glob.glob("/sys/fs/cgroup/release_agent"):
        with open(path) as f:
            out[path] = f.read()
    return out


@pytest.mark.parametrize("opts", [[], ["seccomp=unconfined"]])
def test_release_agent_escape(bundle, opts):
    before = release_agents()
    secure(bundle, security_opt=opts)
    script = ("for f in /sys/fs/cgroup/*/release_agent; do echo /evil > $f && echo \"W $f\"; "
              "done; mkdir -p /tmp/cg; "
              "mount -t cgroup -o memory cgroup /tmp/cg && echo MOUNTED; "
              "unshare -Urm sh -c 'mount -t cgroup -o memory cgroup /tmp/cg && echo NSMOUNTED "
              "&& echo /evil > /tmp/cg/release_agent && echo NSWROTE'; true")
    out = bundle.sh(script)
    assert out.returncode == 0, out.stderr
    for bad in ("W /", "MOUNTED", "NSWROTE"):
        assert bad not in out.stdout, out.stdout
    assert release_agents() == before


# --- CVE-2022-29162: inheritable capabilities reach a non-root program ---

def file_caps_inheritable(mask):
    """security.capability v2: effective flag, no permitted, `mask` inheritable."""
    revision_2, effective = 0x02000000, 0x1
    return struct.pack("<IIIII", revision_2 | effective, 0, mask & 0xFFFFFFFF, 0, mask >> 32)


def test_inheritable_caps_do_not_reach_user_programs(bundle):
    target = os.path.join(bundle.rootfs, "bin/busybox-capped")
    shutil.copy2(os.path.join(bundle.rootfs, "bin/busybox"), target)
    mask = sum(1 << ALL_CAPS[c] for c in DEFAULT_CAPS)
    try:
        os.setxattr(target, "security.capability", file_caps_inheritable(mask))
    except OSError as e:
        pytest.skip(f"cannot set file capabilities here: {e}")
    secure(bundle, user="alice")
    out = bundle.run("/bin/busybox-capped", "cat", "/proc/self/status")
    assert out.returncode == 0, out.stderr
    fields = dict(l.split(":", 1) for l in out.stdout.splitlines() if ":" in l)
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert fields[key].strip() == "0000000000000000", (key, fields[key])
