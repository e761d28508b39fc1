import pytest

from hutch.engine.records import Record


class Point(Record):
    x: int
    y: int = 0
    tags: list = []


def test_fields_by_position_keyword_and_default():
    p = Point(1, tags=["a"])
    assert (p.x, p.y, p.tags) == (1, 0, ["a"])
    assert Point(x=2, y=3) == Point(2, 3)


def test_mutable_defaults_are_copied_per_record():
    a, b = Point(1), Point(2)
    a.tags.append("mine")
    assert b.tags == [] and Point.tags == []


@pytest.mark.parametrize("args,kwargs,message", [
    ((), {}, "x is required"),
    ((1, 2, [], 4), {}, "4 values for 3 fields"),
    ((1,), {"x": 2}, "x given twice"),
    ((1,), {"z": 2}, "no field z"),
])
def test_bad_fields_are_refused_as_a_dataclass_would(args, kwargs, message):
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)
