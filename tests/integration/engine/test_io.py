"""Logs (json-file, rotation, follow), attach and run -it through a real pty, exec, and the
read-only commands (ps, inspect, top, stats, port, export, update)."""
import json
import os
import pty
import select
import subprocess
import tarfile
import time

import pytest

pytestmark = pytest.mark.root

REFERENCE = "/work/shared/reference/docker-inspect.json"


def test_logs_streams_tail_timestamps(hutch, name):
    hutch.ok("run", "--name", name, "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; printf partial")
    r = hutch("logs", name)
    assert (r.stdout, r.stderr) == ("out1\nout2\npartial", "err1\n")
    hutch.ok("rm", name)
    hutch.ok("run", "--name", name, "busybox", "sh", "-c", "echo out1; echo out2; printf partial")
    assert hutch.ok("logs", "--tail", "1", name) == "partial"
    line = hutch.ok("logs", "-t", "--tail", "2", name).splitlines()[0]
    stamp, _, text = line.partition(" ")
    assert text == "out2" and stamp.endswith("Z") and len(stamp.split(".")[1]) == 10
    assert hutch.ok("logs", "--since", "1h", "--tail", "1", name) == "partial"
    assert hutch.ok("logs", "--until", "1h", name) == ""
    with open(hutch.inspect(name, "{{.LogPath}}")) as f:
        first = json.loads(f.readline())
    assert set(first) == {"log", "stream", "time"} and first["log"] == "out1\n"
    hutch.ok("rm", name)


def test_logs_rotation_and_follow(hutch, name):
    hutch.ok("run", "-d", "--name", name, "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
             "busybox", "sh", "-c", "sleep 0.5; i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); "
             "[ $((i % 5)) = 0 ] && sleep 0.05; done; sleep 0.3; printf last")
    follow = subprocess.Popen(hutch.argv("logs", "-f", name), stdout=subprocess.PIPE, text=True)
    out, _ = follow.communicate(timeout=60)
    assert follow.returncode == 0
    lines = out.split("\n")
    assert lines[-1] == "last"                      # the final partial line is not lost
    assert lines[:-1] == [f"line{i}" for i in range(100)]
    logpath = hutch.inspect(name, "{{.LogPath}}")
    assert os.path.exists(logpath + ".1") and os.path.exists(logpath + ".2")
    assert not os.path.exists(logpath + ".3")
    assert all(os.path.getsize(p) <= 1024 for p in (logpath, logpath + ".1", logpath + ".2"))
    hutch.ok("rm", name)


def test_logs_of_a_big_log_are_written_by_a_thread_in_order(hutch, name, tmp_path):
    # Over 8 MiB of log, `logs` writes while it parses (cli.containers._BackgroundWriter):
    # every line, stdout's and stderr's each in order; a closed pipe ends it quietly.
    pad = "x" * 1000
    hutch.ok("run", "--name", name, "busybox", "sh", "-c",
             f"i=0; while [ $i -lt 9000 ]; do echo ${{i}}{pad}; [ $((i % 1000)) = 0 ] && "
             "echo err$i >&2; i=$((i+1)); done")
    assert os.path.getsize(hutch.inspect(name, "{{.LogPath}}")) > 8 << 20
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        p = subprocess.run(hutch.argv("logs", name), stdout=o, stderr=e, timeout=120)
    assert p.returncode == 0
    assert out.read_text().splitlines() == [f"{i}{pad}" for i in range(9000)]
    assert err.read_text().splitlines() == [f"err{i}" for i in range(0, 9000, 1000)]
    head = subprocess.run(f"{' '.join(hutch.argv('logs', name))} | head -c 100",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert head.stdout == f"0{pad}"[:100] and "Traceback" not in head.stderr
    hutch.ok("rm", name)


def _read_until(fd, needle: bytes, timeout=20.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
    return buf


def _drain(fd, timeout=20.0) -> bytes:
    """Read until the pty's other side is gone (EIO/EOF): the command has exited."""
    return _read_until(fd, b"\xff\xfe-never", timeout)


def _spawn_pty(argv):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    return pid, fd


def _exit_code(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_run_it_detach_and_attach_through_a_pty(hutch, name):
    pid, fd = _spawn_pty(hutch.argv("run", "-it", "--name", name, "busybox", "sh"))
    try:
        assert b"# " in _read_until(fd, b"# ")
        os.write(fd, b"echo hello-from-inside; tty\n")
        out = _read_until(fd, b"/dev/pts/")
        assert b"hello-from-inside" in out and b"/dev/pts/0" in out
        os.write(fd, b"\x10\x11")                     # ctrl-p ctrl-q
        _drain(fd)
    finally:
        os.close(fd)
    assert _exit_code(pid) == 0
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    pid, fd = _spawn_pty(hutch.argv("attach", name))
    try:
        # attach makes the shell redraw its prompt (a SIGWINCH), as under Docker
        assert b"# " in _read_until(fd, b"# ")
        os.write(fd, b"echo re-attached\n")
        assert b"re-attached" in _read_until(fd, b"re-attached\r\n")
        os.write(fd, b"exit 5\n")
        _drain(fd)
    finally:
        os.close(fd)
    assert _exit_code(pid) == 5
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 5"
    hutch.ok("rm", name)


def test_attach_detach_keys_and_pipes(hutch, name):
    hutch.ok("run", "-dit", "--name", name, "busybox", "sh")
    pid, fd = _spawn_pty(hutch.argv("attach", "--detach-keys", "ctrl-x", name))
    try:
        os.write(fd, b"echo again\n")
        assert b"again" in _read_until(fd, b"again\r\n")
        os.write(fd, b"\x18")
        assert b"read escape sequence" in _drain(fd)
    finally:
        os.close(fd)
    assert _exit_code(pid) == 1
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    hutch.ok("rm", "-f", name)
    # -i with pipes: stdin reaches the container, its EOF ends it
    r = hutch("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\ndone\n")
    # more input than a pipe holds, to a container that reads it late: nothing lost
    big = "x" * 99 + "\n"
    r = hutch("run", "-i", "--rm", "busybox", "sh", "-c", "sleep 0.5; wc -c", input=big * 3000)
    assert (r.returncode, r.stdout.strip()) == (0, "300000")


def test_exec(hutch, name):
    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    assert hutch.ok("exec", "-w", "/tmp", "-e", "FOO=bar", name, "sh", "-c", "pwd; echo $FOO") == "/tmp\nbar\n"
    r = hutch("exec", name, "sh", "-c", "echo to-stderr >&2; exit 42")
    assert (r.returncode, r.stderr) == (42, "to-stderr\n")
    r = hutch("exec", name, "nosuchcmd")
    assert r.returncode == 126
    assert r.stderr.startswith("OCI runtime exec failed: exec failed: ")
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stderr
    assert hutch("exec", "-d", name, "sleep", "500").returncode == 0
    assert "sleep 500" in hutch.ok("exec", name, "ps")
    assert hutch.ok("exec", "-u", "nobody", name, "id", "-u") == "65534\n"
    assert hutch.ok("exec", "-i", name, "cat", input="in-exec\n") == "in-exec\n"
    pid, fd = _spawn_pty(hutch.argv("exec", "-it", name, "sh", "-c", "tty"))
    try:
        assert b"/dev/pts/" in _drain(fd)
    finally:
        os.close(fd)
    assert _exit_code(pid) == 0
    hutch.ok("rm", "-f", name)


def test_ps_filters_and_formats(hutch, name):
    a, b, c = f"{name}_a", f"{name}_b", f"{name}_c"
    hutch.ok("run", "-d", "--name", a, "busybox", "sh", "-c", "exit 3")
    hutch.ok("create", "--name", b, "busybox", "true")
    cid = hutch.ok("run", "-d", "--name", c, "busybox", "sleep", "100").strip()
    hutch.ok("wait", a)
    assert hutch.ok("ps", "-q", "-f", f"name={name}") == f"{cid[:12]}\n"
    assert hutch.ok("ps", "-aq", "--no-trunc", "-f", f"id={cid[:8]}") == f"{cid}\n"
    assert hutch.ok("ps", "-a", "-f", "exited=3", "-f", f"name={name}", "--format", "{{.Names}}") == f"{a}\n"
    assert hutch.ok("ps", "-a", "-f", "status=created", "-f", f"name={name}",
                    "--format", "table {{.Names}}\t{{.Status}}") == \
        f"NAMES{' ' * (len(b) - 2)}STATUS\n{b}   Created\n"
    assert hutch.ok("ps", "-a", "-f", "ancestor=busybox", "-f", f"name={name}", "-q").count("\n") == 3
    assert hutch.ok("ps", "-l", "--format", "{{.Names}}") == f"{c}\n"
    assert hutch.ok("ps", "-a", "-n", "2", "-f", f"name={name}", "--format", "{{.Names}}") == f"{c}\n{b}\n"
    cmd = hutch.ok("ps", "-a", "-f", f"name={a}", "--format", "{{.Command}} {{.Status}}")
    assert cmd.startswith("\"sh -c 'exit 3'\" Exited (3) ")
    row = json.loads(hutch.ok("ps", "-f", f"name={c}", "--format", "{{json .}}"))
    assert row["Names"] == c and row["State"] == "running" and row["Status"].startswith("Up ")
    assert "SIZE" in hutch.ok("ps", "-s", "-f", f"name={c}")
    r = hutch("ps", "-f", "bogus=1")
    assert r.returncode == 1 and "invalid filter 'bogus'" in r.stderr
    hutch.ok("rm", "-f", a, b, c)


def test_inspect_layout_matches_docker(hutch, name):
    hutch.ok("run", "-d", "--name", name, "-h", "myhost", "-e", "FOO=bar", "busybox", "sleep", "100")
    data = json.loads(hutch.ok("inspect", name))
    with open(REFERENCE) as f:
        ref = json.load(f)[0]
    got = data[0]
    assert list(got)[:len(ref)] == list(ref) or set(ref) <= set(got)
    assert set(ref["State"]) == set(got["State"])
    assert set(ref["Config"]) - {"StopSignal"} <= set(got["Config"])
    assert set(ref["HostConfig"]) <= set(got["HostConfig"])
    assert got["Name"] == f"/{name}" and got["Config"]["Hostname"] == "myhost"
    assert got["Config"]["Env"][-1] == "FOO=bar" and got["Config"]["Cmd"] == ["sleep", "100"]
    assert got["Path"] == "sleep" and got["Args"] == ["100"]
    assert got["State"]["Pid"] > 0 and got["Image"].startswith("sha256:")
    assert got["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hutch.ok("inspect", "-f", "{{.State.Running}} {{.HostConfig.ShmSize}}", name) == "true 67108864\n"
    assert "SizeRw" in json.loads(hutch.ok("inspect", "-s", name))[0]
    assert hutch.ok("container", "inspect", "-f", "{{.Name}}", name) == f"/{name}\n"
    images = json.loads(hutch.ok("inspect", "busybox"))
    assert images[0]["Id"].startswith("sha256:")
    hutch.ok("rm", "-f", name)


def test_top_stats_port_export_update(hutch, name, tmp_path):
    hutch.ok("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "1000")
    top = hutch.ok("top", name).splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and top[1].endswith("sleep 1000")
    assert hutch.ok("top", name, "-o", "pid,comm").splitlines()[1].split()[1] == "sleep"
    out = hutch.ok("stats", "--no-stream", name).splitlines()
    assert out[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]
    assert "/ 64MiB" in out[1] and out[1].split()[-1] == "1"
    assert hutch.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name) == f"{name} 1\n"
    assert hutch.ok("port", name) == ""
    hutch.ok("update", "--memory", "128m", "--memory-swap", "256m", name)
    assert hutch.inspect(name, "{{.HostConfig.Memory}}") == str(128 << 20)
    limit = f"/sys/fs/cgroup/memory/hutch/{hutch.inspect(name, '{{.Id}}')}/memory.limit_in_bytes"
    if os.path.exists(limit):
        with open(limit) as f:
            assert int(f.read()) == 128 << 20
    tar = tmp_path / "fs.tar"
    hutch.ok("export", "-o", str(tar), name)
    with tarfile.open(tar) as t:
        names = t.getnames()
    assert any(n.rstrip("/").endswith("bin/busybox") for n in names)
    hutch.ok("rm", "-f", name)
    assert hutch("update", "--memory", "1g", "nosuch_C").returncode == 1
