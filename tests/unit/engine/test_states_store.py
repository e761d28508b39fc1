"""The container state table, the store (names, ids, prefixes, atomic state) — no root."""
import json
import os
import threading

import pytest

from hutch.engine import errors, states
from hutch.engine.store import Store, apply_exit, new_state, now_iso, parse_iso
from hutch.paths import Paths

CID = "a" * 64


@pytest.mark.parametrize("op,status,msg", [
    ("pause", "created", f"Container {CID} is not running"),
    ("pause", "exited", f"Container {CID} is not running"),
    ("pause", "paused", f"Container {CID} is already paused"),
    ("unpause", "running", f"Container {CID} is not paused"),
    ("unpause", "created", f"Container {CID} is not paused"),
    ("kill", "created", f"Cannot kill container: ref_C: Container {CID} is not running"),
    ("kill", "exited", f"Cannot kill container: ref_C: Container {CID} is not running"),
    ("start", "paused", "cannot start a paused container, try unpause instead"),
    ("rm", "running", f"You cannot remove a running container {CID}. Stop the container "
                      "before attempting removal or force remove"),
    ("rm", "paused", f"You cannot remove a paused container {CID}. Unpause and then stop the "
                     "container before attempting removal or force remove"),
    ("exec", "paused", "Container name_C is paused, unpause the container before exec"),
    ("exec", "exited", f"Container {CID} is not running"),
    ("attach", "exited", "You cannot attach to a stopped container, start it first"),
])
def test_error_cells_have_dockers_words(op, status, msg):
    with pytest.raises(errors.EngineError) as e:
        states.check(op, status, cid=CID, ref="ref_C", name="name_C")
    assert str(e.value) == msg


@pytest.mark.parametrize("op,status,result", [
    ("start", "created", "do"), ("start", "exited", "do"), ("start", "running", "noop"),
    ("stop", "created", "noop"), ("stop", "exited", "noop"), ("stop", "running", "do"),
    ("stop", "paused", "do"), ("restart", "paused", "do"), ("kill", "paused", "do"),
    ("rm", "created", "do"), ("rm", "exited", "do"), ("pause", "running", "do"),
    ("unpause", "paused", "do"), ("exec", "running", "do"),
])
def test_allowed_cells(op, status, result):
    assert states.check(op, status, cid=CID) == result


def test_every_op_covers_every_state():
    for op, row in states.TABLE.items():
        assert set(row) == set(states.STATES), op


def _store(tmp_path):
    return Store(Paths.from_root(str(tmp_path)))


def _make(store, cid, name):
    store.begin(cid)
    store.reserve_name(name, cid)
    return store.create(cid, {"Id": cid, "CreatedNs": 1, "Config": {}, "HostConfig": {}},
                        dict(new_state(), Name=name))


def test_resolve_by_id_name_prefix(tmp_path):
    s = _store(tmp_path)
    a = _make(s, "ab" + "0" * 62, "one")
    b = _make(s, "ac" + "0" * 62, "two")
    assert s.resolve(a.id) == a.id
    assert s.resolve("one") == a.id
    assert s.resolve("/two") == b.id
    assert s.resolve("ab") == a.id
    with pytest.raises(errors.NotFound, match="multiple IDs found with provided prefix: a"):
        s.resolve("a")
    with pytest.raises(errors.NotFound, match="No such container: nosuch_C"):
        s.resolve("nosuch_C")


def test_name_conflict_wording_and_release(tmp_path):
    s = _store(tmp_path)
    a = _make(s, CID, "dup_C")
    with pytest.raises(errors.Conflict) as e:
        s.reserve_name("dup_C", "b" * 64)
    assert str(e.value) == (f'Conflict. The container name "/dup_C" is already in use by '
                            f'container "{CID}". You have to remove (or rename) that container '
                            f"to be able to reuse that name.")
    s.remove(a)
    assert s.reserve_name("dup_C", "b" * 64) == "dup_C"


def test_invalid_name(tmp_path):
    with pytest.raises(errors.InvalidParameter, match=r"Invalid container name \(-x\)"):
        _store(tmp_path).reserve_name("-x", CID)


def test_racing_names_only_one_wins(tmp_path):
    s = _store(tmp_path)
    wins, losses = [], []

    def claim(i):
        cid = f"{i:064x}"
        s.begin(cid)
        try:
            s.reserve_name("race_C", cid)
            wins.append(cid)
        except errors.Conflict:
            losses.append(cid)
    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 15


def test_random_names_are_adjective_surname(tmp_path):
    s = _store(tmp_path)
    name = s.random_name(CID)
    adj, _, surname = name.partition("_")
    from hutch.engine.names import ADJECTIVES, SURNAMES
    assert adj in ADJECTIVES and surname in SURNAMES


def test_exit_record_folds_in_for_its_generation_only(tmp_path):
    s = _store(tmp_path)
    c = _make(s, CID, "xx")
    c.state.update(Status="running", Running=True, Generation=2, MonitorPid=os.getpid(),
                   MonitorStart=__import__("hutch.engine.store", fromlist=["x"]).proc_start_time(os.getpid()))
    c.save()
    with open(c.path("exit.json"), "w") as f:
        json.dump({"ExitCode": 3, "FinishedAt": now_iso(), "Generation": 1}, f)
    c2 = s.get("xx")
    assert c2.status == "running"      # a stale record (earlier start) is ignored
    with open(c.path("exit.json"), "w") as f:
        json.dump({"ExitCode": 3, "FinishedAt": now_iso(), "Generation": 2}, f)
    c3 = s.get("xx")
    assert (c3.status, c3.state["ExitCode"], c3.state["Running"]) == ("exited", 3, False)


def test_dead_monitor_and_dead_init_are_repaired(tmp_path):
    s = _store(tmp_path)
    c = _make(s, CID, "xx")
    c.state.update(Status="running", Running=True, Generation=1, MonitorPid=999999999,
                   MonitorStart=1, Pid=999999998, PidStart=1)
    c.save()
    c2 = s.get("xx")
    assert c2.status == "exited" and c2.state["Error"]


def test_times():
    t = now_iso(1_700_000_000_123_450_000)
    assert t == "2023-11-14T22:13:20.12345Z"
    assert abs(parse_iso(t) - 1_700_000_000.12345) < 1e-6
    assert parse_iso("0001-01-01T00:00:00Z") == 0.0
    st = new_state()
    apply_exit(st, {"ExitCode": 137, "FinishedAt": t})
    assert st["Status"] == "exited" and st["ExitCode"] == 137
