"""bench.harness: timing, alternation, failure capture and ratios (the bench's pure logic)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))

from bench.harness import Contender, RunFailed, alternate, ratios, run_timed  # noqa: E402


def test_run_timed_measures_and_reports_failure(tmp_path):
    s = run_timed(["true"])
    assert s.wall > 0 and s.cpu >= 0
    out = tmp_path / "out"
    run_timed(["sh", "-c", "echo hi"], stdout_path=str(out))
    assert out.read_text() == "hi\n"
    with pytest.raises(RunFailed, match=r"exited 3: boom"):
        run_timed(["sh", "-c", "echo boom >&2; exit 3"])
    with pytest.raises(RunFailed, match="exited 127"):
        run_timed(["/nonexistent/binary"])


def test_alternate_interleaves_and_summarises():
    order = []
    a = Contender("a", lambda i: ["true"], before=lambda i: order.append(("a", i)))
    b = Contender("b", lambda i: ["true"], anchor=True, before=lambda i: order.append(("b", i)))
    gone = Contender("c", lambda i: ["true"], anchor=True, missing="not installed")
    alternate([a, b, gone], runs=10)
    # interleaved, and rotated each round: neither always runs right after the other
    assert order[:6] == [("a", -1), ("b", -1), ("b", 0), ("a", 0), ("a", 1), ("b", 1)]
    assert len(a.samples) == len(b.samples) == 10 and not gone.samples
    s = a.summary()
    assert s["status"] == "ok" and s["runs"] == 10 and s["min_ms"] <= s["median_ms"] <= s["max_ms"]
    assert gone.summary() == {"name": "c", "anchor": True, "note": "", "command": "true",
                              "status": "missing", "reason": "not installed"}
    assert list(ratios([a, b, gone])) == ["a / b"]


def test_failing_contender_stops_with_its_error():
    bad = Contender("bad", lambda i: ["false"])
    alternate([bad], runs=10)
    assert bad.summary()["status"] == "failed" and "exited 1" in bad.error


def test_ratios_pair_only_the_same_group():
    a = Contender("hutch none", lambda i: ["true"], group="none")
    b = Contender("podman none", lambda i: ["true"], anchor=True, group="none")
    c = Contender("podman bridge", lambda i: ["true"], anchor=True, group="bridge")
    alternate([a, b, c], runs=10, warmup=0)
    assert list(ratios([a, b, c])) == ["hutch none / podman none"]
