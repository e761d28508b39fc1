"""Each namespace, new or joined, as seen from inside the container."""
import os

import pytest


def test_command_is_pid_1(bundle):
    out = bundle.run(["sh", "-c", "echo $$"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_exit_code_is_the_commands(bundle):
    out = bundle.run(["sh", "-c", "echo hi; exit 3"])
    assert out.returncode == 3
    assert out.stdout == "hi\n"


def test_hostname_and_domainname(bundle):
    bundle.config["hostname"] = "boxy"
    bundle.config["domainname"] = "example.test"
    out = bundle.run(["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"])
    assert out.stdout.split() == ["boxy", "example.test"], out.stderr
    assert os.uname().nodename != "boxy"


def test_own_ipc_namespace(bundle):
    out = bundle.run(["readlink", "/proc/self/ns/ipc"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() != os.readlink("/proc/self/ns/ipc")


def test_new_network_namespace_has_only_lo(bundle):
    out = bundle.run(["ls", "/sys/class/net"])
    assert out.stdout.split() == ["lo"], out.stderr


def test_joined_network_namespace_is_the_hosts(bundle):
    namespaces = bundle.config["linux"]["namespaces"]
    for ns in namespaces:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{os.getpid()}/ns/net"
    out = bundle.run(["readlink", "/proc/self/ns/net"])
    assert out.stdout.strip() == os.readlink("/proc/self/ns/net"), out.stderr


def test_cgroup_namespace_roots_at_the_container_cgroup(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = bundle.run(["cat", "/proc/self/cgroup"])
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if ":memory:" in line]
    assert lines == ["%s:memory:/" % lines[0].split(":")[0]]


def test_user_namespace_maps_uids(bundle):
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.create(["sleep", "30"])
    try:
        pid = bundle.state()["pid"]
        with open(f"/proc/{pid}/status") as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        assert uids == ["200000"] * 4
        out = bundle.runtime("exec", bundle.id, "sh", "-c", "id -u; cat /proc/self/uid_map")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.split("\n")
        assert lines[0] == "0"
        assert lines[1].split() == ["0", "200000", "65536"]
    finally:
        bundle.runtime("delete", "--force", bundle.id, check=True)


@pytest.mark.parametrize("kind", ["uts", "ipc"])
def test_shared_namespace_when_not_listed(bundle, kind):
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != kind]
    if kind == "uts":
        del bundle.config["hostname"]
    out = bundle.run(["readlink", f"/proc/self/ns/{kind}"])
    assert out.stdout.strip() == os.readlink(f"/proc/self/ns/{kind}"), out.stderr


def test_userns_bind_source_out_of_reach_is_named(bundle, tmp_path):
    """A bind source the remapped root cannot traverse (pytest's tmp dirs are 0700): one
    clear line naming the mount, not a bare "broken pipe"."""
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    src = tmp_path / "private" / "data"
    src.mkdir(parents=True)
    os.chmod(tmp_path / "private", 0o700)
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(src), "options": ["rbind"]})
    out = bundle.run(["true"])
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f'error mounting \\"{src}\\" to rootfs at \\"/data\\"' in lines[0], lines[0]
    assert "host uid 200000, cannot reach the source" in lines[0]
