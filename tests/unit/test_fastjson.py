"""hutch.fastjson: json's C scanner and encoder without the json package (and its re)."""
import json

import pytest

from hutch import fastjson

SAMPLES = [
    {"Id": "abc", "State": {"Running": True, "Pid": 42, "ExitCode": 0, "Error": ""},
     "Labels": {"é": "<&>", "z": None}, "n": [0, -1, 2.5, 1e100, False], "nested": [[{}], []]},
    [], "text\n\"quoted\"", 42, None, 1.5,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_as_the_json_package(value):
    assert fastjson.dumps(value) == json.dumps(value)
    assert fastjson.dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)
    assert fastjson.dumps(value, separators=(",", ":")) == json.dumps(value, separators=(",", ":"))
    for ascii_only in (True, False):
        for sort in (False, True):
            assert fastjson.dumps(value, indent=4, ensure_ascii=ascii_only, sort_keys=sort) == \
                json.dumps(value, indent=4, ensure_ascii=ascii_only, sort_keys=sort)
    assert fastjson.dumps(value, indent="\t") == json.dumps(value, indent="\t")  # (json's)
    assert fastjson.loads(json.dumps(value, indent=2)) == value
    assert fastjson.loads(json.dumps(value).encode()) == value
    assert fastjson.loads(b"\xef\xbb\xbf" + json.dumps(value).encode()) == value


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "[1,]", '{"a": NaN}', "01", '"\x01"'])
def test_invalid_json_is_its_decode_error_a_value_error(text):
    with pytest.raises(fastjson.JSONDecodeError):
        fastjson.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_load_and_dump_use_files(tmp_path):
    p = tmp_path / "x.json"
    with open(p, "w") as f:
        fastjson.dump({"a": [1]}, f)
    with open(p) as f:
        assert fastjson.load(f) == {"a": [1]}


def test_other_types_refused_and_nan_when_asked():
    with pytest.raises(TypeError, match="set"):
        fastjson.dumps({"a": {1, 2}})
    assert fastjson.dumps(float("nan")) == "NaN"
    with pytest.raises(ValueError):
        fastjson.dumps(float("nan"), allow_nan=False)
