"""Record: what the engine's dataclasses were, without importing dataclasses, which brings
inspect, ast, dis and tokenize (~5 ms of each command that imports the engine: ps, exec,
run) and ~1.4 MiB of the monitor host's image.
"""
from __future__ import annotations

from types import SimpleNamespace


class Record(SimpleNamespace):
    """Fields are the subclass's annotations, in order; their defaults the class's values
    (a list, dict or set is copied for each record). Positional or keyword arguments, as a
    dataclass takes them; an unknown or missing field is a TypeError."""

    def __init__(self, *args, **given):
        cls = type(self)
        names = list(cls.__annotations__)
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}: {len(args)} values for {len(names)} fields")
        for name, value in zip(names, args):
            if name in given:
                raise TypeError(f"{cls.__name__}: {name} given twice")
            given[name] = value
        unknown = given.keys() - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__}: no field {', '.join(sorted(unknown))}")
        fields = {}
        for name in names:
            if name in given:
                fields[name] = given[name]
            elif hasattr(cls, name):
                default = getattr(cls, name)
                mutable = isinstance(default, (list, dict, set))
                fields[name] = type(default)(default) if mutable else default
            else:
                raise TypeError(f"{cls.__name__}: {name} is required")
        super().__init__(**fields)
