"""json's loads/dumps through its C scanner and encoder, without importing the json package.

The json package's decoder compiles regular expressions at import: with `re` and the
`enum` it brings, ~7 ms of every command that reads a record (a whole `hutch ps` is ~30).
The C parts do the same work. What they do not cover (indent=, hooks, the pure-Python
fallbacks) goes to the json package, imported then.
"""
from __future__ import annotations

import _json

_SPACE = " \t\n\r"


class JSONDecodeError(ValueError):
    """Not JSON (the json package's own error type when it is imported is another: catch
    ValueError, as both are)."""


class _ScanContext:
    """What json's C scanner reads from a JSONDecoder: its settings, strict JSON."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        raise JSONDecodeError(f"{name} is not valid JSON")


_scan = _json.make_scanner(_ScanContext())


def loads(text: str | bytes | bytearray, **kw):
    if kw:
        import json
        return json.loads(text, **kw)
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8-sig" if text[:3] == b"\xef\xbb\xbf" else "utf-8")
    start = len(text) - len(text.lstrip(_SPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as e:
        raise JSONDecodeError(f"Expecting value: char {e.value}") from None
    except JSONDecodeError:
        raise
    except ValueError as e:   # (the scanner's own error type is the json package's)
        raise JSONDecodeError(str(e)) from None
    if text[end:].strip(_SPACE):
        raise JSONDecodeError(f"Extra data: char {end}")
    return value


def load(f, **kw):
    return loads(f.read(), **kw)


def _not_serializable(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(value, *, sort_keys: bool = False, separators=None, allow_nan: bool = True,
          **kw) -> str:
    """json.dumps(value) with its defaults (", " and ": ", ASCII): the C encoder's."""
    if kw:
        import json
        return json.dumps(value, sort_keys=sort_keys, separators=separators,
                          allow_nan=allow_nan, **kw)
    item, key = separators or (", ", ": ")
    encode = _json.make_encoder(None, _not_serializable, _json.encode_basestring_ascii, None,
                                key, item, sort_keys, False, allow_nan)
    return "".join(encode(value, 0))


def dump(value, f, **kw) -> None:
    f.write(dumps(value, **kw))
