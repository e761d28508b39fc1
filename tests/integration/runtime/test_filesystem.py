"""Mounts of each kind, /dev, masked and read-only paths, the read-only root."""
import os


def _mounts_inside(bundle, extra_cmd="true"):
    out = bundle.run(["sh", "-c", f"cat /proc/self/mounts; echo ---; {extra_cmd}"])
    assert out.returncode == 0, out.stderr
    mounts, _, rest = out.stdout.partition("---\n")
    table = {}
    for line in mounts.splitlines():
        source, target, fstype, options = line.split()[:4]
        table[target] = (fstype, set(options.split(",")), source)
    return table, rest


def test_each_filesystem_kind(bundle):
    bundle.config["mounts"] += [
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=1m", "noexec", "mode=700"]},
    ]
    table, _ = _mounts_inside(bundle)
    assert table["/proc"][0] == "proc"
    assert table["/sys"][0] == "sysfs" and "ro" in table["/sys"][1]
    assert table["/dev"][0] == "tmpfs" and "nosuid" in table["/dev"][1]
    assert table["/dev/pts"][0] == "devpts" and "noexec" in table["/dev/pts"][1]
    assert table["/dev/shm"][0] == "tmpfs" and "nodev" in table["/dev/shm"][1]
    assert table["/dev/mqueue"][0] == "mqueue"
    assert table["/sys/fs/cgroup"][0] == "tmpfs"  # rw, as under Docker
    assert table["/sys/fs/cgroup/memory"][0] == "cgroup"
    assert "ro" in table["/sys/fs/cgroup/memory"][1]
    scratch = table["/scratch"]
    assert scratch[0] == "tmpfs" and {"noexec", "size=1024k", "mode=700"} <= scratch[1]


def test_cgroup_mount_shows_the_containers_own_cgroup(bundle):
    bundle.config["mounts"].append(
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "ro"]})
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    out = bundle.run(["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert out.stdout.strip() == str(64 << 20), out.stderr


def test_bind_mounts_ro_and_rw(bundle, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    single = tmp_path / "single.txt"
    single.write_text("one file\n")
    bundle.config["mounts"] += [
        {"destination": "/ro", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/rw", "type": "none", "source": str(src), "options": ["bind"]},
        {"destination": "/etc/single.txt", "source": str(single), "options": ["bind", "ro"]},
    ]
    out = bundle.run(["sh", "-c", "cat /ro/hello /etc/single.txt; touch /ro/x 2>&1; "
                                  "echo written > /rw/new; echo rc=$?"])
    assert "hi\none file\n" in out.stdout, out.stderr
    assert "Read-only file system" in out.stdout
    assert "rc=0" in out.stdout
    assert (src / "new").read_text() == "written\n"
    assert not (src / "x").exists()


def test_mount_propagation_option(bundle, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    bundle.config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": str(src),
         "options": ["rbind", "rprivate"]})
    out = bundle.run(["sh", "-c", "grep ' /mnt ' /proc/self/mountinfo"])
    assert out.returncode == 0, out.stderr
    assert "shared:" not in out.stdout and "master:" not in out.stdout


def test_rootfs_propagation_shared(bundle):
    bundle.config["linux"]["rootfsPropagation"] = "shared"
    out = bundle.run(["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"])
    assert out.returncode == 0, out.stderr
    assert "shared:" in out.stdout


def test_symlinked_destination_stays_in_rootfs(bundle, tmp_path):
    os.symlink("/../../../../tmp-escape", os.path.join(bundle.rootfs, "escape"))
    bundle.config["mounts"].append(
        {"destination": "/escape", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})
    out = bundle.run(["sh", "-c", "grep tmp-escape /proc/self/mounts"])
    assert out.returncode == 0, out.stderr
    assert os.path.isdir(os.path.join(bundle.rootfs, "tmp-escape"))
    assert not os.path.exists("/tmp-escape")


def test_default_devices_and_links(bundle):
    out = bundle.run(["sh", "-c", "ls -l /dev | sort; echo x > /dev/null; "
                                  "head -c 4 /dev/zero | wc -c"])
    assert out.returncode == 0, out.stderr
    listing = out.stdout
    for name, numbers in (("null", "1,   3"), ("zero", "1,   5"), ("full", "1,   7"),
                          ("random", "1,   8"), ("urandom", "1,   9"), ("tty", "5,   0")):
        line = [l for l in listing.splitlines() if l.endswith(" " + name)][0]
        assert line.startswith("crw-rw-rw-") and numbers in line
    assert "ptmx -> pts/ptmx" in listing
    assert "fd -> /proc/self/fd" in listing
    assert "stdin -> /proc/self/fd/0" in listing
    assert "stderr -> /proc/self/fd/2" in listing
    assert listing.strip().endswith("4")


def test_linux_devices(bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600,
         "uid": 0, "gid": 0}]
    out = bundle.run(["sh", "-c", "ls -l /dev/mynull; echo hi > /dev/mynull && echo ok"])
    assert out.stdout.startswith("crw-------"), out.stderr
    assert "1,   3" in out.stdout and "ok" in out.stdout


def test_masked_paths(bundle):
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd", "/sys/firmware", "/no/such"]
    out = bundle.run(["sh", "-c", "wc -c < /etc/passwd; ls -A /sys/firmware | wc -l"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "0"]


def test_readonly_paths(bundle):
    bundle.config["linux"]["readonlyPaths"] = ["/proc/sys", "/no/such"]
    out = bundle.run(["sh", "-c", "{ echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1; "
                                  "grep ' /proc/sys ' /proc/self/mounts"])
    assert "Read-only file system" in out.stdout, out.stderr
    assert "proc /proc/sys proc ro," in out.stdout


def test_readonly_root(bundle):
    bundle.config["root"]["readonly"] = True
    out = bundle.run(["sh", "-c", "{ touch /newfile; } 2>&1; touch /dev/shm/ok && echo shm-ok"])
    assert "Read-only file system" in out.stdout, out.stderr
    assert "shm-ok" in out.stdout
    assert not os.path.exists(os.path.join(bundle.rootfs, "newfile"))


def test_sysctl(bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1",
                                        "kernel.msgmax": "4096"}
    out = bundle.run(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"])
    assert out.stdout.split() == ["1", "4096"], out.stderr


def test_no_pivot(bundle):
    bundle.config["process"]["args"] = ["sh", "-c", "cat /proc/self/mountinfo | wc -l"]
    bundle.write()
    out = bundle.runtime("run", "--no-pivot", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 3
