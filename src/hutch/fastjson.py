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
    """Not JSON: a ValueError, as the json package's own is."""


class _ScanContext:
    """What json's C scanner reads from a JSONDecoder: its settings, strict JSON."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

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
          indent: int | None = None, ensure_ascii: bool = True, **kw) -> str:
    """json.dumps with its defaults (", " and ": "), indent= a number of spaces, sort_keys,
    ensure_ascii, allow_nan: the C encoder's work (with the indentation around it)."""
    if kw or (indent is not None and (not isinstance(indent, int) or separators)):
        import json
        return json.dumps(value, sort_keys=sort_keys, separators=separators, indent=indent,
                          ensure_ascii=ensure_ascii, allow_nan=allow_nan, **kw)
    item, key = separators or ((",", ": ") if indent is not None else (", ", ": "))
    encode = _json.make_encoder(
        None, _not_serializable,
        _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring, None,
        key, item, sort_keys, False, allow_nan)
    if indent is None:
        return "".join(encode(value, 0))
    out: list[str] = []
    _indented(value, encode, " " * indent, "\n", sort_keys, out)
    return "".join(out)


def _indented(value, encode, step: str, newline: str, sort_keys: bool, out: list) -> None:
    """json's indented layout: containers opened and closed here, scalars by `encode`."""
    if isinstance(value, dict) and value:
        inner = newline + step
        out.append("{")
        items = sorted(value.items()) if sort_keys else value.items()
        for i, (k, v) in enumerate(items):
            out.append(inner if i == 0 else "," + inner)
            out.append("".join(encode(k if isinstance(k, str) else _key(k), 0)) + ": ")
            _indented(v, encode, step, inner, sort_keys, out)
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)) and value:
        inner = newline + step
        out.append("[")
        for i, v in enumerate(value):
            out.append(inner if i == 0 else "," + inner)
            _indented(v, encode, step, inner, sort_keys, out)
        out.append(newline + "]")
    else:
        out.append("".join(encode(value, 0)))


def _key(k) -> str:
    # json's keys that are not strings: true/false/null, numbers as their text
    if k is True or k is False or k is None:
        return {True: "true", False: "false", None: "null"}[k]
    if isinstance(k, (int, float)):
        return repr(k) if isinstance(k, float) else str(int(k))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def dump(value, f, **kw) -> None:
    f.write(dumps(value, **kw))
