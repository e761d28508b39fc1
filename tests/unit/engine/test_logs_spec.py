"""json-file logs (rotation, partial lines, follow across rotation), spec building, signals,
detach keys — no root."""
import json
import os

import pytest

from hutch.engine import errors, logs, spec
from hutch.engine.attach import _scan_detach, parse_detach_keys
from hutch.engine.containers import parse_signal


def test_log_lines_and_partial(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\nlast-without-newline")
    w.close()
    entries = list(logs.read_entries(p))
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"),
        ("stdout", "last-without-newline")]
    assert entries[0]["time"].endswith("Z")


def test_rotation_keeps_max_file(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p, max_size=200, max_file=3)
    for i in range(100):
        w.write("stdout", f"line {i:03d}\n".encode())
    w.close()
    files = logs.log_files(p)
    assert files == [p + ".2", p + ".1", p]
    assert all(os.path.getsize(f) <= 200 for f in files)
    lines = [e["log"] for e in logs.read_entries(p)]
    assert lines[-1] == "line 099\n"
    assert lines == sorted(lines)          # oldest first, in order, nothing repeated


def test_follower_crosses_rotation_without_loss(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p, max_size=150, max_file=2)
    f = logs.Follower(p, start_at_end=True)
    got = []
    for i in range(40):
        w.write("stdout", f"n{i}\n".encode())
        got += [e["log"] for e in f.read()]   # at most one rotation between reads
    w.close()
    got += [e["log"] for e in f.read()]
    f.close()
    assert got == [f"n{i}\n" for i in range(40)]


def test_parse_size_and_times():
    assert logs.parse_size("10k") == 10240
    assert logs.parse_size("1m") == 1 << 20
    with pytest.raises(ValueError):
        logs.parse_size("x")
    assert logs.parse_time_arg("10s", now=100.0) == 90.0
    assert logs.parse_time_arg("1700000000") == 1700000000.0
    assert logs.fixed_time("2026-11-29T01:24:54.8107Z") == "2026-11-29T01:24:54.810700000Z"


def test_command_line_rules():
    img = {"Entrypoint": ["/usr/bin/stress", "--verbose"], "Cmd": ["--cpu", "1"]}
    assert spec.command_line(img, None, []) == ["/usr/bin/stress", "--verbose", "--cpu", "1"]
    assert spec.command_line(img, None, ["--vm", "1"]) == ["/usr/bin/stress", "--verbose", "--vm", "1"]
    assert spec.command_line(img, ["sh"], []) == ["sh"]          # --entrypoint drops Cmd
    assert spec.command_line({"Cmd": ["sh"]}, None, ["true"]) == ["true"]
    assert spec.command_line({}, [], []) == []


def test_env_merge_and_defaults():
    assert spec.merge_env(["A=1", "B=2"], ["B=3", "C=4"]) == ["A=1", "B=3", "C=4"]
    assert spec.resolve_env_args(["X=1", "HOMEY", "SET"], {"SET": "v"}) == ["X=1", "SET=v"]
    env = spec.container_env({"Env": ["FOO=bar"], "Tty": True}, "abc")
    assert env == [f"PATH={spec.DEFAULT_PATH}", "HOSTNAME=abc", "TERM=xterm", "FOO=bar"]


def test_env_file(tmp_path):
    p = tmp_path / "env"
    p.write_text("# comment\n\nA=1\n  B=two words\n")
    assert spec.read_env_file(str(p)) == ["A=1", "B=two words"]


def test_build_spec():
    record = {"Path": "sh", "Args": ["-c", "true"], "HutchInit": None,
              "Config": {"Hostname": "", "Env": [], "Tty": False, "WorkingDir": "/tmp"}}
    base = {"process": {"env": []}, "mounts": [], "linux": {"namespaces": [{"type": "uts"}]}}
    cid = "f" * 64
    s = spec.build(cid, record, base=base, cgroups_path=f"/hutch/{cid}")
    assert s["process"]["args"] == ["sh", "-c", "true"]
    assert s["hostname"] == cid[:12]
    assert s["process"]["cwd"] == "/tmp"
    assert s["linux"]["cgroupsPath"] == f"/hutch/{cid}"
    f = spec.finalize(s, "/r", etc_files={"/etc/hosts": "/h"}, netns_path="/ns")
    assert f["root"]["path"] == "/r"
    assert {"destination": "/etc/hosts", "type": "bind", "source": "/h",
            "options": ["rbind", "rprivate"]} in f["mounts"]
    # --uts=host: no UTS namespace, so no hostname for the runtime to set
    host_uts = spec.build(cid, record, base=dict(base, linux={"namespaces": []}),
                          cgroups_path=f"/hutch/{cid}")
    assert "hostname" not in host_uts


def test_split_hostname():
    assert spec.split_hostname("a.b.c") == ("a", "b.c")
    assert spec.split_hostname("myhost") == ("myhost", "")


@pytest.mark.parametrize("text,num", [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("15", 15),
                                      ("HUP", 1), ("SIGUSR1", 10), ("RTMIN+1", 35)])
def test_signals(text, num):
    assert parse_signal(text) == num


def test_bogus_signal():
    with pytest.raises(errors.InvalidParameter, match="^Invalid signal: BOGUS$"):
        parse_signal("BOGUS")


def test_detach_keys():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-x") == b"\x18"
    assert parse_detach_keys("a,ctrl-@") == b"a\x00"
    with pytest.raises(ValueError, match=r"Invalid detach keys \(ctrl-\) provided"):
        parse_detach_keys("ctrl-")
    assert _scan_detach(b"ab\x10\x11cd", b"\x10\x11") == (b"ab", b"", True)
    assert _scan_detach(b"ab\x10", b"\x10\x11") == (b"ab", b"\x10", False)
    assert _scan_detach(b"ab", b"\x10\x11") == (b"ab", b"", False)
