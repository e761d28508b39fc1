"""exec into a running container, and the pty sent over --console-socket."""
import json
import os
import socket
import threading

import pytest


@pytest.fixture
def running(bundle):
    bundle.config["hostname"] = "exec-box"
    bundle.create(["sleep", "60"])
    bundle.runtime("start", bundle.id, check=True)
    yield bundle
    bundle.runtime("delete", "--force", bundle.id, check=True)


def test_exec_joins_the_containers_namespaces(running):
    out = running.runtime("exec", running.id, "sh", "-c",
                          "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "exec-box"
    assert lines[1].strip() == "sleep 60"
    assert int(lines[2]) > 1


def test_exec_exit_status_and_missing_command(running):
    assert running.runtime("exec", running.id, "sh", "-c", "exit 5").returncode == 5
    out = running.runtime("exec", running.id, "nosuchcmd")
    assert out.returncode == 255
    assert ('exec failed: unable to start container process: exec: \\"nosuchcmd\\": '
            "executable file not found in $PATH") in out.stderr


def test_exec_env_cwd_user(running):
    out = running.runtime("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "1000:1000",
                          running.id, "sh", "-c", "echo $FOO; pwd; id -u; id -g")
    assert out.stdout.split() == ["bar", "/tmp", "1000", "1000"], out.stderr


def test_exec_process_file_detached(running, tmp_path):
    process = {"args": ["sh", "-c", "echo detached > /tmp/out; sleep 60"],
               "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    pfile = tmp_path / "process.json"
    pfile.write_text(json.dumps(process))
    pid_file = tmp_path / "exec.pid"
    out = running.runtime("exec", "--process", str(pfile), "--detach", "--pid-file",
                          str(pid_file), running.id)
    assert out.returncode == 0, out.stderr
    pid = int(pid_file.read_text())
    with open(os.path.join(running.cgroup_dir("pids"), "cgroup.procs")) as f:
        assert str(pid) in f.read().split()
    ps = json.loads(running.runtime("ps", "--format", "json", running.id).stdout)
    assert pid in ps


def _console_server(path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    result = {}

    def accept():
        conn, _ = server.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        result["name"], result["fd"] = msg, fds[0]
        conn.close()

    t = threading.Thread(target=accept)
    t.start()
    return server, t, result


def _read_all(fd):
    import select
    data = b""
    while True:
        if not select.select([fd], [], [], 30)[0]:
            raise AssertionError(f"no end of output after 30 s; got {data!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the slave side is closed
            break
        if not chunk:
            break
        data += chunk
    return data


def test_console_socket_gets_the_pty_master(bundle, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    server, thread, result = _console_server(sock_path)
    try:
        bundle.config["process"]["terminal"] = True
        bundle.config["process"]["consoleSize"] = {"height": 30, "width": 100}
        bundle.create(["sh", "-c", "tty; stty size; echo on-console > /dev/console; echo done"],
                      "--console-socket", sock_path)
        thread.join()
        master = result["fd"]
        bundle.runtime("start", bundle.id, check=True)
        output = _read_all(master).decode().replace("\r", "")
        os.close(master)
        assert output.splitlines() == ["/dev/pts/0", "30 100", "on-console", "done"]
    finally:
        server.close()
        bundle.runtime("delete", "--force", bundle.id)


def test_exec_with_console_socket(running, tmp_path):
    sock_path = str(tmp_path / "exec-console.sock")
    server, thread, result = _console_server(sock_path)
    try:
        out = running.runtime("exec", "-t", "--console-socket", sock_path, "-d", running.id,
                              "sh", "-c", "tty; echo exec-tty")
        assert out.returncode == 0, out.stderr
        thread.join()
        output = _read_all(result["fd"]).decode().replace("\r", "")
        os.close(result["fd"])
        assert output.splitlines()[-1] == "exec-tty"
        assert output.startswith("/dev/pts/")
    finally:
        server.close()


def test_terminal_needs_a_console_socket(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.write()
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1
    assert "cannot allocate tty if runc will detach without setting console socket" \
        in out.stderr


def _on_a_pty(argv, stdin_data=b""):
    """Run argv with a pty as its stdin/stdout/stderr; return (exit code, output)."""
    import pty
    import subprocess
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    if stdin_data:
        os.write(master, stdin_data)
    try:
        output = _read_all(master)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.terminate()
    return proc.wait(timeout=30), output.decode().replace("\r", "")


def test_foreground_run_with_a_terminal(bundle):
    from rt_helpers import RUNTIME
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh", "-c", "tty; read line; echo got:$line; exit 6"]
    bundle.write()
    code, output = _on_a_pty([RUNTIME, "--root", bundle.root, "run", "--bundle", bundle.path,
                              bundle.id], b"hello\n")
    assert code == 6, output
    assert "/dev/pts/0" in output and "got:hello" in output


def test_foreground_exec_with_a_terminal(running):
    from rt_helpers import RUNTIME
    code, output = _on_a_pty([RUNTIME, "--root", running.root, "exec", "-t", running.id,
                              "sh", "-c", "tty; exit 3"])
    assert code == 3, output
    assert output.strip().startswith("/dev/pts/")
