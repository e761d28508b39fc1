"""The runtime's lean replacements for json, socket and friends, and the fd hygiene of the
container's processes (no root needed)."""
import json
import os
import socket

import pytest

from hutch.oci.runtime_spec import dump_json, parse_json
from hutch.runtime import process, statefile, terminal
from hutch.runtime.errors import RuntimeFailure

SAMPLES = [
    {"ociVersion": "1.0.2", "process": {"args": ["sh", "-c", "echo \"é\"\n"], "env": []},
     "n": [0, -1, 2.5, 1e100, True, False, None], "empty": {}, "nested": [[{}], []]},
    [], "text", 42, None,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_json_round_trip_matches_the_json_module(value):
    text = dump_json(value)
    assert text == json.dumps(value)
    assert parse_json(text) == value
    assert parse_json("\n\t " + json.dumps(value, indent=2) + " \n") == value


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]", '{"a": NaN}', "01",
                                  '"\x01"'])
def test_invalid_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        parse_json(text)


def test_dump_json_refuses_other_types():
    with pytest.raises(TypeError, match="set"):
        dump_json({"a": {1, 2}})


def test_pty_master_travels_over_a_socket_pair():
    ours, theirs = terminal.pair()
    r, w = os.pipe()
    try:
        terminal.send_master(theirs, w)
        got = terminal.receive_master(ours)
        try:
            os.write(got, b"through the passed fd")
            assert os.read(r, 100) == b"through the passed fd"
        finally:
            os.close(got)
    finally:
        for fd in (r, w):
            os.close(fd)
        ours.close()
        theirs.close()


def test_receive_master_without_fd_fails_clearly():
    a, b = socket.socketpair()
    try:
        b.send(b"no fd")
        with pytest.raises(OSError, match="no pty master"):
            terminal.receive_master(a)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("cid", ["abc", "a_b-c.d+e", "X9"])
def test_valid_ids(cid):
    statefile.validate_id(cid)


@pytest.mark.parametrize("cid", ["", ".hidden", "a/b", "a b", "é", "..", "a\n"])
def test_invalid_ids(cid):
    with pytest.raises(RuntimeFailure, match="invalid id format"):
        statefile.validate_id(cid)


def test_close_fds_above_leaves_only_the_kept_fds():
    """What the init does before chdir(cwd): every fd from first_free up is closed but
    the kept ones (close-on-exec), the /proc fd too unless kept (CVE-2024-21626)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            opened = [os.open("/", os.O_RDONLY | os.O_DIRECTORY) for _ in range(3)]
            keep = opened[1]
            proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
            process.close_fds_above(3, proc_fd, keep=(keep, w))
            left = []
            for fd in range(64):
                try:
                    os.fstat(fd)
                    left.append(fd)
                except OSError:
                    pass
            os.write(w, repr((left, keep, w, os.get_inheritable(keep))).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        left, keep, pipe, inheritable = eval(f.read())  # noqa: S307 - our child's repr
    os.waitpid(pid, 0)
    assert [fd for fd in left if fd > 2] == sorted([keep, pipe])
    assert not inheritable
