"""The json-file writer's batched fast path and its escapes, the reader's decode-free slicing,
the idle monitor's C-only JSON and epoll selector, and the stats PSI fields — no root."""
import json
import os
import subprocess
import sys

import pytest

from hutch.engine import logs, monitor, stats


def _lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def test_plain_batch_is_docker_json_one_entry_per_line(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stdout", b"a\nbb\nccc\npart")
    w.write("stdout", b"ial\n")
    w.close()
    raw = _lines(p)
    assert len(raw) == 4
    decoded = [json.loads(r) for r in raw]
    assert [d["log"] for d in decoded] == ["a\n", "bb\n", "ccc\n", "partial\n"]
    assert all(list(d) == ["log", "stream", "time"] for d in decoded)
    assert raw[0].startswith(b'{"log":"a\\n","stream":"stdout","time":"')


def test_escapes_as_docker_jsonlog(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stderr", 'x <&> "q" \\ \t\r\x01 café \u2028\n'.encode())
    w.close()
    raw = _lines(p)[0]
    assert raw.startswith('{"log":"x \\u003c\\u0026\\u003e \\"q\\" \\\\ \\t\\r\\u0001 café '
                          '\\u2028\\n","stream":"stderr"'.encode())
    assert json.loads(raw)["log"] == 'x <&> "q" \\ \t\r\x01 café \u2028\n'


def test_invalid_utf8_becomes_replacement_char(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stdout", b"bad \xff byte\n")
    w.close()
    assert json.loads(_lines(p)[0])["log"] == "bad \ufffd byte\n"


def test_long_complete_line_split_in_16k_partials(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stdout", b"x" * (logs.PARTIAL_MAX * 2 + 5) + b"\nnext\n")
    w.close()
    got = [e["log"] for e in logs.read_entries(p)]
    assert [len(g) for g in got] == [logs.PARTIAL_MAX, logs.PARTIAL_MAX, 6, 5]
    assert got[2] == "xxxxx\n" and got[3] == "next\n"


def test_rotation_decided_per_entry_in_a_batch(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p, max_size=300, max_file=3)
    w.write("stdout", b"".join(b"line %03d\n" % i for i in range(40)))
    w.close()
    for f in logs.log_files(p):
        assert os.path.getsize(f) <= 300
    kept = [e["log"] for e in logs.read_entries(p)]
    assert kept == [f"line {i:03d}\n" for i in range(40 - len(kept), 40)]


@pytest.mark.parametrize("text", ["plain\n", "no newline", 'q"uote\\n\n', "tab\t<b>\n",
                                  "ends in backslash\\\n", "ünï\n"])
def test_parse_line_fast_and_slow_agree_with_json(tmp_path, text):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    w.write("stdout", text.encode())
    w.close()
    line = _lines(p)[0]
    stream, body, t = logs.parse_line(line)
    e = json.loads(line)
    assert (stream, body.decode(), t) == (e["stream"], e["log"], e["time"])


def test_parse_line_reads_foreign_key_order():
    line = b'{"stream":"stderr","log":"hi\\n","time":"2026-01-01T00:00:00Z"}'
    assert logs.parse_line(line) == ("stderr", b"hi\n", "2026-01-01T00:00:00Z")
    assert logs.parse_line(b"garbage") is None


def test_read_raw_spans_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "READ_BLOCK", 100)
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    for i in range(50):
        w.write("stdout", b"%d\n" % i)
    w.close()
    assert [int(b) for _, b, _ in logs.read_raw(p)] == list(range(50))


def test_follower_read_raw_sees_appends(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = logs.LogWriter(p)
    f = logs.Follower(p, start_at_end=False)
    w.write("stdout", b"one\n")
    assert [b for _, b, _ in f.read_raw()] == [b"one\n"]
    w.write("stdout", b"two\n")
    assert [b for _, b, _ in f.read_raw()] == [b"two\n"]
    f.close()
    w.close()


def test_idle_json_loads_matches_json():
    doc = {"a": [1, 2.5, None, True, "é\u2028"], "b": {"c": "x\ny"}}
    assert monitor._loads(json.dumps(doc)) == doc
    assert monitor._loads(json.dumps(doc) + "\n") == doc
    with pytest.raises((ValueError, StopIteration)):
        monitor._loads("{} x")
    with pytest.raises((ValueError, StopIteration)):
        monitor._loads("")


def test_frame_header():
    assert monitor.frame(3, b"xy") == b"\x03\x00\x00\x00\x00\x00\x00\x02xy"


def test_selector_register_select_unregister():
    r, w = os.pipe()
    sel = monitor._Selector()
    try:
        sel.register(r, monitor.EVENT_READ, "out")
        with pytest.raises(KeyError):
            sel.register(r, monitor.EVENT_READ, "again")
        assert sel.select(0) == []
        os.write(w, b"x")
        (key, _), = sel.select(1)
        assert (key.fd, key.data) == (r, "out")
        sel.unregister(r)
        with pytest.raises(KeyError):
            sel.unregister(r)
        assert sel.get_map() == {}
    finally:
        os.close(r)
        os.close(w)


def test_idle_loop_modules_stay_lean():
    """What the exec'd idle monitor imports: no enum/re/json/socket/selectors (each ~1 MiB)."""
    code = ("import sys; import hutch.engine.monitor, hutch.engine.logs; "
            "print(' '.join(sorted(sys.modules)))")
    src = os.path.dirname(os.path.dirname(monitor.__file__)).rsplit("/hutch", 1)[0]
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": src}, check=True).stdout.split()
    for heavy in ("enum", "re", "json", "socket", "selectors", "signal", "contextlib",
                  "collections", "hutch.engine.store"):
        assert heavy not in out, heavy


def test_pressure_fields_and_columns():
    assert stats.pressure_fields({"pressure": None}) == dict.fromkeys(stats.PRESSURE_HEADERS, "--")
    raw = {"pressure": {"io": {"some": {"avg10": 1.0}, "full": {"avg10": 0.5}}}}
    assert stats.pressure_fields(raw)["IOPressure"] == "1.00% / 0.50%"
    for field in stats.PRESSURE_HEADERS:
        assert "{{." + field + "}}" in stats.PRESSURE_COLUMNS
