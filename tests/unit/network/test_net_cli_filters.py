"""`network ls` filters (no root)."""
import pytest

from hutch.cli import network as cli

NETS = [
    {"Name": "bridge", "Id": "aa11", "Driver": "bridge", "Scope": "local", "Labels": {}, "Containers": {}},
    {"Name": "front", "Id": "bb22", "Driver": "bridge", "Scope": "local", "Labels": {"team": "a"},
     "Containers": {"x": {}}},
    {"Name": "back", "Id": "cc33", "Driver": "bridge", "Scope": "local", "Labels": {"team": "b"},
     "Containers": {}},
]


def names(filters):
    f = cli.parse_filters(filters)
    return [n["Name"] for n in NETS if cli.matches(n, f)]


def test_filters():
    assert names(["type=custom"]) == ["front", "back"]
    assert names(["type=builtin"]) == ["bridge"]
    assert names(["name=ack"]) == ["back"]
    assert names(["id=bb"]) == ["front"]
    assert names(["label=team"]) == ["front", "back"]
    assert names(["label=team=b"]) == ["back"]
    assert names(["dangling=true"]) == ["back"]
    assert names(["driver=bridge", "name=^b"]) == ["bridge", "back"]


def test_bad_filters():
    with pytest.raises(KeyError):
        cli.parse_filters(["color=red"])
    with pytest.raises(ValueError, match="invalid filter: 'type'='odd'"):
        names(["type=odd"])
