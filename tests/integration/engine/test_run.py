"""run/create: output, exit codes and Docker's error texts, end to end through the CLI."""
import os
import subprocess
import threading

import pytest

pytestmark = pytest.mark.root


def test_run_streams_output_and_exits_with_its_code(hutch):
    r = hutch("run", "--rm", "busybox", "sh", "-c", "echo out1; echo err1 >&2; exit 42")
    assert (r.returncode, r.stdout, r.stderr) == (42, "out1\n", "err1\n")
    assert hutch("run", "--rm", "busybox", "false").returncode == 1
    assert hutch.ok("ps", "-aq") == ""


def _blocked_and_ignored(status: str) -> tuple[int, int]:
    """SigBlk and SigIgn of a /proc/<pid>/status text, without signals 32 and 33: glibc
    keeps those to itself (its sigaction refuses them), so an ignored one that the caller's
    environment passes down stays ignored, under runc as under hutch."""
    fields = dict(line.split(":\t") for line in status.splitlines())
    glibc_own = (1 << 31) | (1 << 32)
    return int(fields["SigBlk"], 16), int(fields["SigIgn"], 16) & ~glibc_own


def test_the_command_and_an_exec_ignore_no_signal(hutch, name):
    """Neither Python's ignored SIGPIPE/SIGXFSZ nor the monitor's job-control signals reach
    the container (an ignored signal survives execve): `yes | head` ends."""
    probe = ("grep", "-E", "SigIgn|SigBlk", "/proc/self/status")
    assert _blocked_and_ignored(hutch.ok("run", "--rm", "busybox", *probe)) == (0, 0)
    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert _blocked_and_ignored(hutch.ok("exec", name, *probe)) == (0, 0)
    assert hutch.ok("exec", name, "sh", "-c", "yes | head -c 5") == "y\ny\ny"
    hutch.ok("rm", "-f", name)


def test_command_not_found_127_not_executable_126(hutch, name):
    r = hutch("run", "--name", name, "busybox", "nosuchcmd")
    assert r.returncode == 127
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stderr
    assert r.stderr.startswith("hutch: Error response from daemon: ")
    assert r.stderr.endswith("\n\nRun 'hutch run --help' for more information\n")
    # Docker leaves the failed container behind in "Created"
    assert hutch.inspect(name, "{{.State.Status}}") == "created"
    r = hutch("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr
    assert hutch.ok("ps", "-aq", "-f", "status=exited") == ""
    hutch.ok("rm", name)


def test_hutch_own_errors_are_125(hutch):
    r = hutch("run", "--rm", "--restart=always", "busybox", "true")
    assert r.returncode == 125
    assert "conflicting options: cannot specify both --restart and --rm" in r.stderr
    r = hutch("run", "-d", "--restart=bogus", "busybox", "true")
    assert r.returncode == 125 and "invalid restart policy 'bogus'" in r.stderr
    r = hutch("run", "-d", "--restart=on-failure:x", "busybox", "true")
    assert r.returncode == 125
    assert "invalid restart policy format: maximum retry count must be an integer" in r.stderr
    r = hutch("run", "-m", "10XB", "busybox", "true")
    assert r.returncode == 125 and 'invalid argument "10XB" for "-m, --memory" flag' in r.stderr
    r = hutch("run", "--bogus-flag", "busybox", "true")
    assert r.returncode == 125
    r = hutch("run", "--pull", "never", "nosuchimage")
    assert r.returncode == 125
    r = hutch("run", "-it", "busybox", "true", input="")
    assert (r.returncode, r.stderr) == (1, "the input device is not a TTY\n")
    assert hutch.ok("ps", "-aq") == ""


def test_name_conflict_and_race(hutch, name):
    cid = hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "100").strip()
    assert len(cid) == 64
    r = hutch("run", "-d", "--name", name, "busybox", "true")
    assert r.returncode == 125
    assert (f'Conflict. The container name "/{name}" is already in use by container "{cid}". '
            "You have to remove (or rename) that container to be able to reuse that name."
            in r.stderr)
    r = hutch("create", "--name", name, "busybox", "true")
    assert r.returncode == 1
    hutch.ok("rm", "-f", name)
    # two racing creates of one name: exactly one wins
    results = []
    race = f"{name}_race"

    def create():
        results.append(hutch("create", "--name", race, "busybox", "true"))
    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.returncode for r in results) == [0, 1, 1, 1]
    assert len(hutch.ok("ps", "-aq", "-f", f"name={race}").split()) == 1
    hutch.ok("rm", race)


def test_environment_hostname_and_defaults(hutch):
    out = hutch.ok("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c",
                   'echo $HOSTNAME; cat /etc/hostname; pwd; env | sort')
    lines = out.splitlines()
    assert lines[0] == lines[1] and len(lines[0]) == 12
    assert lines[2] == "/tmp"
    assert "FOO=bar" in lines and "HOME=/root" in lines
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in lines
    out = hutch.ok("run", "--rm", "-h", "myhost", "-u", "nobody", "busybox", "sh", "-c",
                   "hostname; id -u")
    assert out == "myhost\n65534\n"
    out = hutch.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b")
    assert out == "a b\n"


def test_env_file_label_and_cidfile(hutch, tmp_path, name):
    envf = tmp_path / "env"
    envf.write_text("# c\nA=1\n")
    cidfile = tmp_path / "cid"
    hutch.ok("create", "--name", name, "--env-file", str(envf), "-l", "team=x",
             "--cidfile", str(cidfile), "busybox", "true")
    assert cidfile.read_text() == hutch.inspect(name, "{{.Id}}")
    assert hutch.inspect(name, "{{index .Config.Labels \"team\"}}") == "team=x".split("=")[1]
    assert "A=1" in hutch.inspect(name, "{{json .Config.Env}}")
    assert hutch.ok("ps", "-aq", "-f", "label=team=x") != ""
    hutch.ok("rm", name)


def test_init(hutch, name):
    from hutch.engine.spec import find_init
    if not find_init():
        r = hutch("run", "--rm", "--init", "busybox", "true")
        assert r.returncode == 125 and "--init" in r.stderr     # refused, never faked
        return
    hutch.ok("run", "-d", "--init", "--name", name, "busybox", "sleep", "1000")
    assert hutch.ok("exec", name, "ps").splitlines()[1].split()[2:] == \
        ["/sbin/docker-init", "--", "sleep", "1000"]
    hutch.ok("stop", name)                  # the init forwards TERM: sleep dies of it
    assert hutch.inspect(name, "{{.State.ExitCode}}") == "143"
    hutch.ok("rm", name)


def test_debug_shows_kernel_steps(hutch):
    r = subprocess.run([*hutch.argv()[:1], "--root", hutch.root, "--debug", "run", "--rm",
                        "busybox", "true"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "create: container" in r.stderr
    # the steps made in the monitor and the runtime reach the user's terminal too
    assert "cgroup: mkdir " in r.stderr and "mount: " in r.stderr


def test_run_detached_prints_id_and_attached_sees_kill(hutch, name):
    cid = hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "30").strip()
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    proc = subprocess.Popen(hutch.argv("wait", name), stdout=subprocess.PIPE, text=True)
    hutch.ok("kill", name)
    assert proc.communicate(timeout=30)[0] == "137\n"
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    hutch.ok("rm", name)
    assert not os.path.exists(os.path.join(hutch.root, "containers", cid))


def test_failed_create_leaves_nothing(hutch, name):
    r = hutch("create", "--name", name, "--cap-add", "BOGUS", "busybox", "true")
    assert r.returncode == 125 and 'unknown capability: "CAP_BOGUS"' in r.stderr
    r = hutch("create", "--name", name, "-w", "relative", "busybox", "true")
    assert r.returncode == 125 and "it needs to be an absolute path" in r.stderr
    cdir = os.path.join(hutch.root, "containers")
    assert [d for d in os.listdir(cdir) if not d.startswith(".")] == []
    assert os.listdir(os.path.join(cdir, ".names")) == []
    assert os.listdir(os.path.join(hutch.root, "images", "snapshots")) == []
    hutch.ok("create", "--name", name, "busybox", "true")     # the name is free again
    hutch.ok("rm", name)


def test_host_pid_uts_ipc_namespaces(hutch, name):
    import socket
    out = hutch.ok("run", "--rm", "--pid=host", "busybox", "sh", "-c", "ps | head -3")
    assert "[kthreadd]" in out                       # the host's processes (Docker's course)
    assert hutch.ok("run", "--rm", "--uts=host", "busybox", "hostname") == socket.gethostname() + "\n"
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert hutch.ok("run", "--rm", "--ipc=host", "busybox", "readlink", "/proc/self/ns/ipc") == host_ipc + "\n"
    hutch.ok("create", "--name", name, "--pid=host", "--ipc=host", "busybox", "true")
    assert hutch.inspect(name, "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}") == "host host"
    hutch.ok("rm", name)
    r = hutch("run", "--rm", "--uts=host", "-h", "x", "busybox", "true")
    assert (r.returncode, r.stderr.splitlines()[0]) == (125, "hutch: Conflicting options: hostname and the UTS mode")
    r = hutch("run", "--rm", "--pid=container:x", "busybox", "true")
    assert r.returncode == 125 and "--pid=container:x is not supported" in r.stderr


def test_user_primary_gid_among_groups(hutch, name):
    """Docker's course: a user added to /etc/passwd and /etc/group, then `exec -u`."""
    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "100")
    hutch.ok("exec", name, "sh", "-c", "echo labuser:x:1000:1000::/home/labuser:/bin/sh >> "
             "/etc/passwd; echo labuser:x:1000: >> /etc/group")
    want = "uid=1000(labuser) gid=1000(labuser) groups=1000(labuser)\n"
    assert hutch.ok("exec", "-u", "labuser", name, "id") == want
    assert hutch.ok("exec", name, "id", "labuser") == want
    hutch.ok("rm", "-f", name)
    assert hutch.ok("run", "--rm", "-u", "1000:1000", "busybox", "id") == "uid=1000 gid=1000 groups=1000\n"


def test_diff_lists_the_containers_changes(hutch, name, capsys):
    """Docker's course: `diff` after adding a user (cmd_diff in-process until the command
    table names it)."""
    from hutch.cli import containers as cli
    from hutch.paths import Paths

    class Ctx:
        paths = Paths.from_root(hutch.root)

    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "100")
    hutch.ok("exec", name, "sh", "-c", "echo labuser:x:1000:1000::/home/labuser:/bin/sh >> "
             "/etc/passwd; echo labuser:x:1000: >> /etc/group; mkdir -p /newd; touch /newd/f; "
             "rm /bin/vi")
    assert cli.cmd_diff(Ctx, [name]) == 0
    assert capsys.readouterr().out == ("C /bin\nD /bin/vi\nC /etc\nC /etc/group\nC /etc/passwd\n"
                                       "A /newd\nA /newd/f\n")
    hutch.ok("rm", "-f", name)
    assert cli.cmd_diff(Ctx, [name]) == 1
    assert capsys.readouterr().err == f"Error response from daemon: No such container: {name}\n"
