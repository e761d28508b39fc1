"""Pure logic of the runtime: transitions, state files, rootfs order, CLI."""
import json
import os

import pytest

from hutch.cli import runtime_commands, runtime_main
from hutch.runtime import rootfs, specconv, statefile, status
from hutch.runtime.errors import RuntimeFailure


@pytest.mark.parametrize("op,state,message", [
    ("start", "running", "cannot start an already running container"),
    ("start", "stopped", "cannot start a container that has stopped"),
    ("start", "paused", "cannot start a container in the paused state"),
    ("resume", "running", "container not paused"),
    ("kill", "stopped", "container not running"),
    ("exec", "stopped", "cannot exec in a stopped container"),
    ("delete", "running", "cannot delete container c1 that is not stopped: running"),
])
def test_refused_transitions(op, state, message):
    with pytest.raises(RuntimeFailure, match=message):
        status.check(op, state, "c1")


@pytest.mark.parametrize("op,state", [("start", "created"), ("kill", "created"),
                                      ("pause", "running"), ("resume", "paused"),
                                      ("delete", "stopped"), ("exec", "running")])
def test_allowed_transitions(op, state):
    status.check(op, state, "c1")


def test_state_file_roundtrip(tmp_path):
    root = str(tmp_path)
    os.mkdir(statefile.container_dir(root, "abc"))
    statefile.save(root, "abc", {"id": "abc", "pid": 5})
    assert statefile.load(root, "abc") == {"id": "abc", "pid": 5}
    assert statefile.ids(root) == ["abc"]
    assert not [n for n in os.listdir(tmp_path / "abc") if n.startswith(".")]


def test_state_of_missing_container(tmp_path):
    with pytest.raises(RuntimeFailure, match="container does not exist"):
        statefile.load(str(tmp_path), "nope")


@pytest.mark.parametrize("cid", ["", "a/b", "..", "a b", ".seccomp"])
def test_invalid_ids(cid):
    with pytest.raises(RuntimeFailure, match="invalid id format"):
        statefile.validate_id(cid)


def test_pid_identity_uses_start_time():
    me = os.getpid()
    started = statefile.process_start_time(me)
    assert started is not None
    assert statefile.init_alive({"pid": me, "pid_start": started})
    assert not statefile.init_alive({"pid": me, "pid_start": started + 1})
    assert not statefile.init_alive({"pid": 0})


class RecordingSys:
    """Stands in for hutch._sys: records mounts instead of doing them."""

    def __init__(self):
        self.calls = []

    def mount(self, source, target, fstype=None, flags=0, data=None):
        # Targets are fds (/proc/self/fd/N): record the path each one holds.
        if target.startswith("/proc/self/fd/"):
            target = os.readlink(target)
        self.calls.append(("mount", source, target, fstype, flags, data))

    def umount2(self, target, flags=0):
        self.calls.append(("umount2", target, flags))

    def pivot_root(self, new, old):
        self.calls.append(("pivot_root", new, old))


def test_prepare_mounts_in_config_order(tmp_path):
    from hutch.oci.runtime_spec import example_config
    (tmp_path / "rootfs").mkdir()
    config = example_config()
    config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    cfg = specconv.convert(config, str(tmp_path))
    sys = RecordingSys()
    rootfs.prepare(sys, cfg, lambda: [])
    mounts = [c for c in sys.calls if c[0] == "mount"]
    from hutch import _sys
    assert mounts[0] == ("mount", None, "/", None, _sys.MS_SLAVE | _sys.MS_REC, None)
    assert mounts[1][1:3] == (cfg.rootfs, cfg.rootfs)
    targets = [c[2] for c in mounts[2:] if c[3]]
    assert targets == [f"{cfg.rootfs}{m.destination}" for m in cfg.mounts]
    assert os.path.islink(tmp_path / "rootfs" / "dev" / "ptmx")


def test_cli_flag_parser():
    a = runtime_main.Args(["--bundle=/b", "-d", "--pid-file", "/p", "cid"],
                          {"bundle": "value", "d": "bool:detach", "pid-file": "value"})
    assert a.values == {"bundle": "/b", "detach": True, "pid-file": "/p"}
    assert a.positional == ["cid"]
    a = runtime_main.Args(["cid", "sh", "-c", "x"], {"t": "bool"}, stop_at_positional=1)
    assert a.positional == ["cid", "sh", "-c", "x"]
    with pytest.raises(runtime_main.UsageError, match="flag provided but not defined"):
        runtime_main.Args(["--nope"], {})


@pytest.mark.parametrize("text,number", [("KILL", 9), ("SIGTERM", 15), ("9", 9),
                                         ("usr1", 10)])
def test_signal_names(text, number):
    assert runtime_main._parse_signal(text) == number


def test_unknown_signal():
    with pytest.raises(runtime_main._Failure, match='unknown signal "FOO"'):
        runtime_main._parse_signal("FOO")


def test_global_flags_split():
    argv = ["--root", "/r", "--log", "/l", "--log-format", "json", "create", "--bundle", "b",
            "x"]
    assert runtime_main._split_globals(argv) == (argv[:6], "create", argv[7:])


def test_bytes_parsing():
    assert runtime_commands._bytes("64m") == 64 << 20
    assert runtime_commands._bytes("1g") == 1 << 30
    assert runtime_commands._bytes("512") == 512
    assert runtime_commands._bytes("-1") == -1


def test_spec_command_writes_a_valid_config(tmp_path):
    assert runtime_main.main(["spec", "--bundle", str(tmp_path)]) == 0
    with open(tmp_path / "config.json") as f:
        config = json.load(f)
    (tmp_path / "rootfs").mkdir()
    assert specconv.convert(config, str(tmp_path)).process.args == ["sh"]
    assert runtime_main.main(["spec", "--bundle", str(tmp_path)]) == 1


def test_json_log_shape(tmp_path, capsys):
    log = tmp_path / "log.json"
    assert runtime_main.main(["--root", str(tmp_path), "--log", str(log), "--log-format",
                              "json", "state", "nope"]) == 1
    entry = json.loads(log.read_text())
    assert list(entry) == ["level", "msg", "time"]
    assert entry["level"] == "error" and entry["msg"] == "container does not exist"
    assert log.read_text().startswith('{"level":"error","msg":')


def test_seccomp_filter_builds():
    pytest.importorskip("seccomp")
    from hutch.runtime import seccomp
    f = seccomp.build_filter({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]})
    assert f is not None


def test_seccomp_program_is_cached(tmp_path):
    pytest.importorskip("seccomp")
    from hutch.runtime import seccomp
    spec = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    first = seccomp.program_for(spec, str(tmp_path / "cache"))
    assert len(first) % 8 == 0 and first
    assert len(os.listdir(tmp_path / "cache")) == 1
    assert seccomp.program_for(spec, str(tmp_path / "cache")) == first
    assert seccomp.program_for(dict(spec, defaultErrnoRet=2), str(tmp_path / "cache")) != first


def test_sync_error_longer_than_a_message_is_cut_to_fit():
    from hutch.runtime import sync
    ours, theirs = sync.pair()
    try:
        text = "hook output \U0001f600 é " * 20000  # escaped, far beyond MAX_MESSAGE
        sync.send(theirs, "error", msg=text)
        msg = sync.recv(ours)
        assert msg["type"] == "error"
        assert msg["msg"].endswith("...") and text.startswith(msg["msg"][:-3])
        sync.send(theirs, "cgroup-made", dirs=[["cpu", "/sys/fs/cgroup/cpu/x"]])
        assert sync.recv(ours)["dirs"] == [["cpu", "/sys/fs/cgroup/cpu/x"]]
    finally:
        ours.close()
        theirs.close()
