"""The container state machine as Docker shows it: every op in every state, end to end."""
import os
import signal

import pytest

pytestmark = pytest.mark.root

LOOP = ["sh", "-c", 'trap "exit 0" TERM; while true; do sleep 0.1; done']


def _freezer_state(cid):
    for path in (f"/sys/fs/cgroup/freezer/hutch/{cid}/freezer.state",):
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
    return None


def test_create_start_pause_unpause_stop_restart_kill(hutch, name):
    cid = hutch.ok("create", "--name", name, "busybox", *LOOP).strip()
    assert hutch.inspect(name, "{{.State.Status}} Running={{.State.Running}} Pid={{.State.Pid}} "
                               "StartedAt={{.State.StartedAt}}") == \
        "created Running=false Pid=0 StartedAt=0001-01-01T00:00:00Z"
    row = hutch.ok("ps", "-a", "-f", f"name={name}").splitlines()
    assert row[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                              "PORTS", "NAMES"]
    assert "Created" in row[1] and cid[:12] in row[1]
    assert not os.path.exists(f"/sys/fs/cgroup/freezer/hutch/{cid}")
    assert hutch.ok("start", name) == f"{name}\n"
    assert hutch.inspect(name, "{{.State.Status}} Running={{.State.Running}} "
                               "Paused={{.State.Paused}}") == "running Running=true Paused=false"
    assert hutch.ok("pause", name) == f"{name}\n"
    assert hutch.inspect(name, "{{.State.Status}} {{.State.Running}} {{.State.Paused}}") == \
        "paused true true"
    if _freezer_state(cid) is not None:
        assert _freezer_state(cid) == "FROZEN"
    assert "(Paused)" in hutch.ok("ps", "-f", f"name={name}", "--format", "{{.Status}}")
    hutch.ok("unpause", name)
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    hutch.ok("stop", name)
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert hutch.ok("ps", "-a", "-f", f"name={name}", "--format", "{{.Status}}").startswith(
        "Exited (0) ")
    hutch.ok("restart", name)
    assert hutch.inspect(name, "{{.State.Status}} {{.RestartCount}}") == "running 0"
    hutch.ok("kill", name)
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}") == \
        "exited 137 false"
    hutch.ok("start", name)
    hutch.ok("kill", "-s", "HUP", name)          # PID 1 ignores HUP: it stays running
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    r = hutch("kill", "-s", "BOGUS", name)
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: Invalid signal: BOGUS\n")
    hutch.ok("kill", "-s", "15", name)
    st = hutch.wait_for(name, lambda s: s["Status"] == "exited")
    assert (st["Status"], st["ExitCode"]) == ("exited", 0)
    assert hutch.ok("rm", name) == f"{name}\n"


@pytest.mark.parametrize("state", ["created", "exited"])
def test_not_running_errors(hutch, name, state):
    cid = hutch.ok("create", "--name", name, "busybox", "true").strip()
    if state == "exited":
        hutch.ok("start", name)
        hutch.wait_for(name, lambda s: s["Status"] == "exited")
    daemon = "Error response from daemon: "
    cases = {
        ("pause",): f"{daemon}Container {cid} is not running\n",
        ("unpause",): f"{daemon}Container {cid} is not paused\n",
        ("kill",): f"{daemon}Cannot kill container: {name}: Container {cid} is not running\n",
        ("kill", "-s", "HUP"): f"{daemon}Cannot kill container: {name}: Container {cid} is not running\n",
        ("exec",): f"{daemon}Container {cid} is not running\n",
        ("attach",): "You cannot attach to a stopped container, start it first\n",
    }
    for op, err in cases.items():
        args = list(op) + [name] + (["true"] if op == ("exec",) else [])
        r = hutch(*args)
        assert (r.returncode, r.stderr) == (1, err), op
    assert hutch.ok("stop", name) == f"{name}\n"           # a no-op, like Docker
    assert hutch.ok("wait", name) == "0\n"
    assert hutch.inspect(name, "{{.State.Status}}") == state
    hutch.ok("rm", name)


def test_running_and_paused_errors(hutch, name):
    cid = hutch.ok("run", "-d", "--name", name, "busybox", *LOOP).strip()
    daemon = "Error response from daemon: "
    r = hutch("rm", name)
    assert (r.returncode, r.stderr) == (1, f"{daemon}You cannot remove a running container {cid}. "
                                           "Stop the container before attempting removal or force remove\n")
    r = hutch("unpause", name)
    assert r.stderr == f"{daemon}Container {cid} is not paused\n"
    assert hutch.ok("start", name) == f"{name}\n"            # already running: a no-op
    assert hutch("exec", name, "true").returncode == 0
    hutch.ok("pause", name)
    r = hutch("start", name)
    assert (r.returncode, r.stderr) == (1, f"{daemon}cannot start a paused container, try unpause "
                                           f"instead\nError: failed to start containers: {name}\n")
    r = hutch("pause", name)
    assert r.stderr == f"{daemon}Container {cid} is already paused\n"
    r = hutch("rm", name)
    assert r.stderr == (f"{daemon}You cannot remove a paused container {cid}. Unpause and then "
                        "stop the container before attempting removal or force remove\n")
    r = hutch("exec", name, "true")
    assert r.stderr == f"{daemon}Container {name} is paused, unpause the container before exec\n"
    hutch.ok("kill", "-s", "USR1", name)     # a signal thaws a paused container (Docker)
    assert hutch.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "running false"
    hutch.ok("pause", name)
    hutch.ok("stop", name)                   # stop of a paused container: thawed, TERM
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    hutch.ok("start", name)
    hutch.ok("pause", name)
    hutch.ok("restart", name)
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    hutch.ok("pause", name)
    hutch.ok("kill", name)
    assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}") == \
        "exited 137 false"
    hutch.ok("rm", name)


def test_stop_escalates_to_sigkill_137(hutch, name):
    hutch.ok("run", "-d", "--name", name, "busybox", "sh", "-c", 'trap "" TERM; sleep 1000')
    hutch.ok("stop", "-t", "1", name)
    assert hutch.inspect(name, "{{.State.ExitCode}}") == "137"
    hutch.ok("rm", name)


def test_no_command_waits_for_an_exit_holding_the_lock(hutch, name):
    """A `stop -t 300` of a process ignoring TERM is waiting: `kill`, `inspect` and
    `rm -f` of the same container go ahead at once (they would wait 300 s for the lock)."""
    import subprocess
    hutch.ok("run", "-d", "--name", name, "busybox", "sh", "-c", 'trap "" TERM; sleep 1000')
    stop = subprocess.Popen(hutch.argv("stop", "-t", "300", name), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        hutch.wait_for(name, lambda st: True)    # stop has signalled (or is about to)
        hutch.ok("kill", name, timeout=60)
        out, err = stop.communicate(timeout=60)
        assert stop.returncode == 0, err
        assert out == f"{name}\n"
        assert hutch.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
        hutch.ok("start", name)
        stop = subprocess.Popen(hutch.argv("stop", "-t", "300", name), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        hutch.ok("rm", "-f", name, timeout=60)
        stop.communicate(timeout=60)
        assert name not in hutch.ok("ps", "-a", "--format", "{{.Names}}").split()
    finally:
        if stop.poll() is None:
            stop.kill()
            stop.wait()


def test_stop_signal_and_timeout(hutch, name):
    hutch.ok("run", "-d", "--name", name, "--stop-signal", "USR1", "--stop-timeout", "3",
             "busybox", "sh", "-c", 'trap "echo got USR1; exit 7" USR1; while true; do sleep 0.1; done')
    hutch.ok("stop", name)
    assert hutch.inspect(name, "ExitCode={{.State.ExitCode}} StopSignal={{.Config.StopSignal}} "
                               "StopTimeout={{.Config.StopTimeout}}") == \
        "ExitCode=7 StopSignal=USR1 StopTimeout=3"
    assert hutch.ok("logs", name) == "got USR1\n"
    hutch.ok("start", name)
    hutch.ok("stop", "-s", "KILL", name)            # stop's own --signal
    assert hutch.inspect(name, "{{.State.ExitCode}}") == "137"
    hutch.ok("rm", name)


def test_rm_force_several_and_missing(hutch, name):
    a = f"{name}_a"
    b = f"{name}_b"
    hutch.ok("run", "-d", "--name", a, "busybox", "sleep", "100")
    hutch.ok("create", "--name", b, "busybox", "true")
    assert hutch.ok("rm", "-f", a, b) == f"{a}\n{b}\n"
    r = hutch("rm", "-f", "nosuch_C")
    assert (r.returncode, r.stderr) == (0, "Error response from daemon: No such container: nosuch_C\n")
    r = hutch("rm", "nosuch_C")
    assert r.returncode == 1
    r = hutch("stop", "nosuch_C")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: No such container: nosuch_C\n")
    r = hutch("start", "nosuch_C")
    assert r.stderr == ("Error response from daemon: No such container: nosuch_C\n"
                        "Error: failed to start containers: nosuch_C\n")
    r = hutch("inspect", "nosuch_C")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such object: nosuch_C\n")


def test_restart_policies(hutch, name):
    hutch.ok("run", "-d", "--name", name, "--restart=on-failure:2", "busybox", "sh", "-c", "exit 1")
    # status and count from one read: the second run's exit shows "exited" (count 1) for a
    # moment before the monitor decides the third run (count 2, then running)
    st = hutch.wait_for(name, lambda s: hutch.inspect(
        name, "{{.State.Status}} {{.RestartCount}}") == "exited 2")
    st = hutch.state(name)
    assert (st["Status"], st["ExitCode"]) == ("exited", 1)
    assert hutch.inspect(name, "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}:"
                               "{{.HostConfig.RestartPolicy.MaximumRetryCount}}") == "2 on-failure:2"
    hutch.ok("rm", name)
    always = f"{name}_always"
    hutch.ok("run", "-d", "--name", always, "--restart=always", "busybox", "sh", "-c", "exit 1")
    # Docker counts a restart when it decides it: "restarting" already includes it
    st = hutch.wait_for(always, lambda s: s["Status"] == "restarting")
    if st["Status"] == "restarting":
        assert int(hutch.inspect(always, "{{.RestartCount}}")) >= 1
    hutch.wait_for(always, lambda s: int(hutch.inspect(always, "{{.RestartCount}}")) >= 2)
    hutch.ok("stop", always)
    st = hutch.state(always)
    assert (st["Status"], st["Restarting"]) == ("exited", False)
    count = hutch.inspect(always, "{{.RestartCount}}")
    hutch.ok("wait", always)
    assert hutch.inspect(always, "{{.State.Status}} {{.RestartCount}}") == f"exited {count}"
    hutch.ok("rm", always)
    zero = f"{name}_zero"
    hutch.ok("run", "-d", "--name", zero, "--restart=on-failure:3", "busybox", "true")
    assert hutch.ok("wait", zero) == "0\n"
    assert hutch.inspect(zero, "{{.RestartCount}} {{.State.Status}}") == "0 exited"
    hutch.ok("rm", zero)


def test_auto_remove_after_exit_and_stop(hutch, name):
    assert hutch("run", "--rm", "--name", name, "busybox", "sh", "-c", "exit 3").returncode == 3
    assert hutch.ok("ps", "-aq", "-f", f"name={name}") == ""
    hutch.ok("run", "-d", "--rm", "--name", name, "busybox", "sleep", "100")
    hutch.ok("stop", "-t", "1", name)
    st = None
    for _ in range(100):
        if hutch.ok("ps", "-aq", "-f", f"name={name}") == "":
            break
        import time
        time.sleep(0.1)
    assert hutch.ok("ps", "-aq", "-f", f"name={name}") == ""


def test_dead_monitor_is_repaired(hutch, name):
    """kill -9 of the monitor: the container is still shown truthfully, stops and goes."""
    hutch.ok("run", "-d", "--name", name, "busybox", "sleep", "1000")
    st = hutch.internal_state(name)
    os.kill(st["MonitorPid"], signal.SIGKILL)
    for _ in range(100):       # the monitor is gone once its pid no longer names it
        from hutch.engine.store import alive
        if not alive(st["MonitorPid"], st["MonitorStart"]):
            break
        import time
        time.sleep(0.05)
    assert hutch.inspect(name, "{{.State.Status}}") == "running"    # the init lives on
    hutch.ok("stop", "-t", "1", name)
    assert hutch.inspect(name, "{{.State.Status}}") == "exited"
    hutch.ok("start", name)                                         # and it starts again
    assert hutch.inspect(name, "{{.State.Status}}") == "running"
    hutch.ok("rm", "-f", name)


def test_wait_and_rename(hutch, name):
    hutch.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 0.5; exit 3")
    assert hutch.ok("wait", name) == "3\n"
    assert hutch.ok("wait", name) == "3\n"
    new = f"{name}_new"
    r = hutch("rename", name, new)
    assert r.returncode == 0 and r.stdout == ""
    assert hutch.inspect(new, "{{.Name}}") == f"/{new}"
    assert hutch("inspect", name).returncode == 1
    hutch.ok("rm", new)
    hutch.ok("run", "-d", "--rm", "--name", name, "busybox", "sh", "-c", "sleep 0.5; exit 7")
    assert hutch.ok("wait", name) == "7\n"         # removed on exit, its code still told


def test_oom_kill_of_pid1_is_recorded(hutch, name):
    r = hutch("run", "--name", name, "-m", "50M", "--memory-swap", "50M", "busybox", "tail", "/dev/zero")
    assert r.returncode == 137
    assert hutch.inspect(name, 'OOMKilled={{.State.OOMKilled}} ExitCode={{.State.ExitCode}} '
                               'Error={{printf "%q" .State.Error}}') == 'OOMKilled=true ExitCode=137 Error=""'
    hutch.ok("rm", name)


def test_kill_from_outside_ends_attached_run(hutch, name):
    import subprocess
    import time
    proc = subprocess.Popen(hutch.argv("run", "--name", name, "busybox", "sleep", "30"))
    for _ in range(200):
        if _exists(hutch, name) and hutch.state(name)["Status"] == "running":
            break
        time.sleep(0.05)
    hutch.ok("kill", name)
    assert proc.wait(timeout=30) == 137
    hutch.ok("rm", name)


def _exists(hutch, name) -> bool:
    return hutch("inspect", name).returncode == 0
