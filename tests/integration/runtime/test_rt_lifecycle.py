"""create → start → kill → delete, with runc's errors for the wrong transitions."""
import json
import os
import signal

from rt_helpers import leaks


def _status(bundle):
    return bundle.state()["status"]


def test_create_start_kill_delete(bundle, tmp_path):
    pid_file = tmp_path / "init.pid"
    bundle.create(["sleep", "60"], "--pid-file", str(pid_file))
    st = bundle.state()
    assert st["status"] == "created"
    assert st["id"] == bundle.id and st["bundle"] == bundle.path
    assert int(pid_file.read_text()) == st["pid"] > 0
    assert os.path.isdir(bundle.cgroup_dir("memory"))
    with open(os.path.join(bundle.cgroup_dir("memory"), "cgroup.procs")) as f:
        assert str(st["pid"]) in f.read().split()

    bundle.runtime("start", bundle.id, check=True)
    assert _status(bundle) == "running"
    with open(f"/proc/{st['pid']}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"

    bundle.runtime("kill", bundle.id, "KILL", check=True)
    _wait_stopped(bundle, st["pid"])
    assert _status(bundle) == "stopped"
    assert bundle.state()["pid"] == 0

    bundle.runtime("delete", bundle.id, check=True)
    assert leaks(bundle) == []
    out = bundle.runtime("state", bundle.id)
    assert out.returncode == 1 and "container does not exist" in out.stderr


def _wait_stopped(bundle, pid):
    """Block until the init is gone (the shim would reap it; here init adopts it)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    import select
    select.select([fd], [], [], 10)
    os.close(fd)
    for _ in range(1000):
        if _status(bundle) == "stopped":
            return


def test_wrong_transitions_get_runcs_errors(bundle):
    def err(*args):
        out = bundle.runtime(*args)
        assert out.returncode != 0, args
        return out.stderr

    assert "container does not exist" in err("start", bundle.id)
    bundle.create(["sleep", "60"])
    assert "container with given ID already exists" in err(
        "create", "--bundle", bundle.path, bundle.id)
    assert "container not paused" in err("resume", bundle.id)
    bundle.runtime("start", bundle.id, check=True)
    assert "cannot start an already running container" in err("start", bundle.id)
    assert f"cannot delete container {bundle.id} that is not stopped: running" in err(
        "delete", bundle.id)
    bundle.runtime("pause", bundle.id, check=True)
    assert _status(bundle) == "paused"
    assert "cannot start a container in the paused state" in err("start", bundle.id)
    assert "container not running" in err("pause", bundle.id)
    assert "cannot exec in a paused container" in err("exec", bundle.id, "true")
    bundle.runtime("resume", bundle.id, check=True)
    assert _status(bundle) == "running"
    assert 'unknown signal \\"FOO\\"' in err("kill", bundle.id, "FOO")
    pid = bundle.state()["pid"]
    bundle.runtime("kill", bundle.id, "9", check=True)
    _wait_stopped(bundle, pid)
    assert "container not running" in err("kill", bundle.id)
    assert "cannot start a container that has stopped" in err("start", bundle.id)
    assert "cannot exec in a stopped container" in err("exec", bundle.id, "true")
    bundle.runtime("delete", bundle.id, check=True)


def test_delete_force_of_running_container(bundle):
    bundle.create(["sh", "-c", "sleep 60 & sleep 60"])
    bundle.runtime("start", bundle.id, check=True)
    assert bundle.runtime("delete", "--force", bundle.id).returncode == 0
    assert leaks(bundle) == []


def test_delete_force_of_created_and_paused(bundle):
    bundle.create(["sleep", "60"])
    bundle.runtime("pause", bundle.id, check=True)
    assert _status(bundle) == "paused"
    bundle.runtime("delete", "--force", bundle.id, check=True)
    assert leaks(bundle) == []


def test_kill_signal_names_and_numbers(bundle):
    bundle.create(["sh", "-c", "trap 'echo got-usr1 > /tmp/sig; exit 7' USR1; "
                               "while :; do sleep 0.05; done"])
    bundle.runtime("start", bundle.id, check=True)
    pid = bundle.state()["pid"]
    # SIGUSR1 by name; the shell writes a marker and exits.
    # Until the shell has installed its trap, the signal may be missed: repeat it.
    for _ in range(200):
        if bundle.runtime("kill", bundle.id, "SIGUSR1").returncode != 0:
            break
        if os.path.exists(os.path.join(bundle.rootfs, "tmp", "sig")):
            break
    _wait_stopped(bundle, pid)
    assert open(os.path.join(bundle.rootfs, "tmp", "sig")).read() == "got-usr1\n"
    bundle.runtime("delete", bundle.id, check=True)


def test_kill_all(bundle):
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.create(["sh", "-c", "sleep 60 & sleep 60"])
    bundle.runtime("start", bundle.id, check=True)
    pids = json.loads(bundle.runtime("ps", "--format", "json", bundle.id, check=True).stdout)
    bundle.runtime("kill", "--all", bundle.id, "KILL", check=True)
    for pid in pids:
        _wait_stopped(bundle, pid)
    bundle.runtime("delete", bundle.id, check=True)


def test_list_and_state_json(bundle):
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.create(["sleep", "60"])
    st = bundle.state()
    assert st["ociVersion"].startswith("1.")
    assert st["annotations"] == {"org.example.key": "value"}
    out = bundle.runtime("list", check=True).stdout.splitlines()
    assert out[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert out[1].split()[:4] == [bundle.id, str(st["pid"]), "created", bundle.path]
    items = json.loads(bundle.runtime("list", "--format", "json", check=True).stdout)
    assert [i["id"] for i in items] == [bundle.id]
    assert bundle.runtime("list", "-q", check=True).stdout == bundle.id + "\n"
    bundle.runtime("delete", "--force", bundle.id, check=True)


def test_ps_lists_host_pids(bundle):
    bundle.create(["sleep", "60"])
    pid = bundle.state()["pid"]
    assert json.loads(bundle.runtime("ps", "--format", "json", bundle.id,
                                     check=True).stdout) == [pid]
    table = bundle.runtime("ps", bundle.id, check=True).stdout.splitlines()
    assert "PID" in table[0].split() and str(pid) in table[1].split()
    bundle.runtime("delete", "--force", bundle.id, check=True)


def test_run_detached(bundle, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    out = bundle.runtime("run", "-d", "--pid-file", str(tmp_path / "pid"), "--bundle",
                         bundle.path, bundle.id)
    assert out.returncode == 0, out.stderr
    assert _status(bundle) == "running"
    assert int((tmp_path / "pid").read_text()) == bundle.state()["pid"]
    bundle.runtime("delete", "--force", bundle.id, check=True)


def test_signal_forwarded_by_foreground_run(bundle):
    import subprocess
    import time
    from rt_helpers import RUNTIME
    bundle.config["process"]["args"] = ["sh", "-c", "trap 'exit 42' TERM; "
                                                    "mkfifo /tmp/ready; echo > /tmp/ready; "
                                                    "while :; do sleep 0.05; done"]
    bundle.write()
    proc = subprocess.Popen([RUNTIME, "--root", bundle.root, "run", "--bundle", bundle.path,
                             bundle.id])
    try:
        ready = os.path.join(bundle.rootfs, "tmp", "ready")
        while not os.path.exists(ready):
            time.sleep(0.01)
        with open(ready) as f:  # the shell writes to it once its trap is installed
            f.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 42
    finally:
        proc.kill()
        proc.wait()
    assert leaks(bundle) == []


def test_hooks_get_state_on_stdin(bundle, tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\n(echo \"$1\"; cat; echo) >> {log}\n")
    script.chmod(0o755)
    bundle.config["hooks"] = {
        kind: [{"path": str(script), "args": ["hook.sh", kind]}]
        for kind in ("prestart", "createRuntime", "poststart", "poststop")}
    bundle.config["hooks"]["createContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo createContainer >> {log}"]}]
    bundle.create(["sleep", "60"])
    bundle.runtime("start", bundle.id, check=True)
    bundle.runtime("delete", "--force", bundle.id, check=True)
    lines = log.read_text().splitlines()
    kinds = [l for l in lines if l and not l.startswith("{")]
    assert kinds == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    states = [json.loads(l) for l in lines if l.startswith("{")]
    assert all(s["id"] == bundle.id and s["bundle"] == bundle.path for s in states)
    assert states[0]["pid"] > 0 and states[0]["status"] == "created"
    assert states[-1]["status"] == "stopped"


def test_failing_hook_fails_create_and_leaves_nothing(bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/false", "args": ["false"]}]}
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1
    assert "error running prestart hook #0: exit status 1" in out.stderr
    assert leaks(bundle) == []


def test_hook_timeout(bundle):
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    bundle.write()
    out = bundle.runtime("create", "--bundle", bundle.path, bundle.id)
    assert out.returncode == 1
    assert "timeout after 1s" in out.stderr
    assert leaks(bundle) == []


def test_racing_deletes(bundle):
    import subprocess
    from rt_helpers import RUNTIME
    bundle.create(["sleep", "60"])
    bundle.runtime("start", bundle.id, check=True)
    procs = [subprocess.Popen([RUNTIME, "--root", bundle.root, "delete", "--force", bundle.id],
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    assert leaks(bundle) == []


def test_create_takes_over_what_an_interrupted_create_left(bundle):
    # A create killed half-way: its state dir and fifo, no state file, no lock holder.
    os.makedirs(os.path.join(bundle.root, bundle.id))
    os.mkfifo(os.path.join(bundle.root, bundle.id, "exec.fifo"))
    bundle.create(["sleep", "60"])
    assert bundle.state()["status"] == "created"
    bundle.runtime("delete", "--force", bundle.id, check=True)


def test_delete_of_a_created_container_needs_force(bundle):
    # The spec's rule (crun follows it; runc 1.1 kills the init instead).
    bundle.create(["sleep", "60"])
    out = bundle.runtime("delete", bundle.id)
    assert out.returncode == 1
    assert f"cannot delete container {bundle.id} that is not stopped: created" in out.stderr
    assert bundle.state()["status"] == "created"
    bundle.runtime("delete", "--force", bundle.id, check=True)
    assert leaks(bundle) == []
