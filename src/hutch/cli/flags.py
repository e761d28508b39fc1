"""Docker-style command-line flags (what Docker's CLI gets from cobra and pflag).

A command declares its flags once (`Command` with a list of `Flag`) and calls
`spec.parse(argv)`, which returns `(opts, args)`: `opts` is a dict keyed by the flag's long
name ("memory-swap") with every flag present (its default when not given) and
`opts.changed` the set of flags the user gave; `args` are the positionals.

Parsing follows pflag:
  -it / -dit          combined short bools; `-eX`, `-e=X`, `-e X`; `--env=X`, `--env X`
  --rm, --rm=false    a bool takes a value only after `=`
  list flags          repeat (`-e A -e B`); "strings" flags also split on commas
  interspersed        flags may follow positionals, except where the command says no (run,
                      create, exec stop at the image / container so the command's own
                      flags pass through)
  --                  ends the flags
Errors are Docker's: the problem, the usage line, `Run 'hutch run --help' for more
information`, exit 125 (`CommandLineError`); argument-count errors are cobra's, exit 1.
`--help` raises `HelpRequested` (exit 0, text on stdout).
"""
from __future__ import annotations

import sys
from collections.abc import Callable   # not typing: ~5 ms of every command's start-up

FLAG_ERROR_EXIT = 125   # Docker's StatusError for a bad flag
ARGS_ERROR_EXIT = 1     # cobra's argument-count errors are plain errors: Docker exits 1
# The command's path as typed through a group ("hutch container stop"), set by main: errors
# and help name it, as Docker's do ("docker container stop --nope" names "docker container stop").
invoked_path: str | None = None


class CommandLineError(Exception):
    """A usage error; `report()` prints it as Docker does and returns the exit code."""

    code = FLAG_ERROR_EXIT
    stream = "stderr"

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def report(self) -> int:
        out = sys.stdout if self.stream == "stdout" else sys.stderr
        out.write(self.message.rstrip("\n") + "\n")
        out.flush()
        return self.code


class HelpRequested(CommandLineError):
    code = 0
    stream = "stdout"


# Go's integer kinds: (signed, bits) as pflag parses them with strconv base 0.
_INT_KINDS = {
    "int": (True, 64), "int64": (True, 64), "int32": (True, 32), "int16": (True, 16),
    "int8": (True, 8), "uint": (False, 64), "uint64": (False, 64), "uint32": (False, 32),
    "uint16": (False, 16), "uint8": (False, 8),
}
# How pflag names each type in help ("--name string"); bools show nothing.
_TYPE_NAMES = {"bool": "", "string": "string", "float": "float", "duration": "duration",
               "list": "list", "strings": "strings"}


class Flag:
    """One flag. `type` is bool, string, int/int64/uint16/..., float, duration (seconds as a
    float), list (repeatable) or strings (repeatable and comma-split). `parse`, when given,
    converts the text instead of `type` and raises ValueError(message) as pflag shows it.
    (Plain classes, not dataclasses: this module is on every command's start-up path.)"""

    __slots__ = ("long", "short", "type", "default", "help", "metavar", "parse", "hidden")

    def __init__(self, long: str, short: str | None = None, type: str = "bool",
                 default: object = None, help: str = "", metavar: str | None = None,
                 parse: Callable[[str], object] | None = None, hidden: bool = False):
        self.long, self.short, self.type, self.default = long, short, type, default
        self.help, self.metavar, self.parse, self.hidden = help, metavar, parse, hidden

    def __repr__(self):
        return f"Flag({self.display}, {self.type})"

    @property
    def display(self) -> str:
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"

    @property
    def is_bool(self) -> bool:
        return self.type == "bool"

    @property
    def repeatable(self) -> bool:
        return self.type in ("list", "strings")

    def initial(self):
        if self.repeatable:
            return list(self.default or [])
        if self.default is None and self.is_bool:
            return False
        return self.default

    def convert(self, text: str):
        if self.parse is not None:
            return self.parse(text)
        return convert_value(self.type, text)


class Options(dict):
    """Parsed flag values by long name; `.changed` holds the flags given on the command line."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.changed: set[str] = set()


class Command:
    """A command's flag spec. `usage` is what follows `hutch NAME` in the usage line."""

    def __init__(self, name: str, usage: str, description: str, flags: list[Flag] | None = None,
                 interspersed: bool = True, min_args: int = 0, max_args: int | None = None,
                 aliases: list[str] | None = None):
        self.name, self.usage, self.description = name, usage, description
        self.flags = list(flags or [])
        self.interspersed, self.min_args, self.max_args = interspersed, min_args, max_args
        self.aliases = list(aliases or [])
        self._long = {f.long: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    def path(self, prog: str | None = None) -> str:
        return prog or invoked_path or f"hutch {self.name}"

    def use_line(self, prog: str | None = None) -> str:
        return f"{self.path(prog)} {self.usage}".rstrip()

    # -- parsing ---------------------------------------------------------------------------
    def parse(self, argv: list[str], prog: str | None = None) -> tuple[Options, list[str]]:
        opts = Options((f.long, f.initial()) for f in self.flags)
        args: list[str] = []
        i = 0
        try:
            while i < len(argv):
                a = argv[i]
                i += 1
                if a == "--":
                    args.extend(argv[i:])
                    break
                if not a.startswith("-") or a == "-":
                    if not self.interspersed:
                        args.append(a)
                        args.extend(argv[i:])
                        break
                    args.append(a)
                    continue
                if a.startswith("--"):
                    i = self._parse_long(a, argv, i, opts, prog)
                else:
                    i = self._parse_short(a, argv, i, opts, prog)
        except _FlagProblem as p:
            raise self.flag_error(str(p), prog) from None
        self._check_args(args, prog)
        return opts, args

    def _parse_long(self, a, argv, i, opts, prog):
        name, eq, value = a[2:].partition("=")
        if not name or name[0] in "-=":
            raise _FlagProblem(f"bad flag syntax: {a}")
        if name == "help" and name not in self._long:
            raise HelpRequested(self.help_text(prog))
        flag = self._long.get(name)
        if flag is None:
            raise _FlagProblem(f"unknown flag: --{name}")
        if eq:
            self._set(flag, value, opts)
        elif flag.is_bool:
            self._set(flag, "true", opts)
        else:
            i = self._set_next(flag, argv, i, opts, a)
        return i

    def _parse_short(self, a, argv, i, opts, prog):
        shorthands = a[1:]
        while shorthands:
            c = shorthands[0]
            flag = self._short.get(c)
            if flag is None:
                if c == "h":
                    raise HelpRequested(self.help_text(prog))
                raise _FlagProblem(f"unknown shorthand flag: {c!r} in {a}")
            rest = shorthands[1:]
            if len(shorthands) > 2 and shorthands[1] == "=":
                self._set(flag, shorthands[2:], opts)
                return i
            if flag.is_bool:
                self._set(flag, "true", opts)
                shorthands = rest
                continue
            if rest:
                self._set(flag, rest, opts)
                return i
            return self._set_next(flag, argv, i, opts, f"{c!r} in -{c}")
        return i

    def _set_next(self, flag: Flag, argv, i, opts, shown: str) -> int:
        """The flag's value is the next argument (pflag: whatever it is)."""
        if i >= len(argv):
            raise _FlagProblem(f"flag needs an argument: {shown}")
        self._set(flag, argv[i], opts)
        return i + 1

    def _set(self, flag: Flag, text: str, opts: Options):
        try:
            value = flag.convert(text)
        except ValueError as e:
            raise _FlagProblem(f'invalid argument "{text}" for "{flag.display}" flag: {e}') from None
        if flag.repeatable:
            if flag.long not in opts.changed:
                opts[flag.long] = []    # a given list replaces the default (pflag)
            opts[flag.long].extend(value if isinstance(value, list) else [value])
        else:
            opts[flag.long] = value
        opts.changed.add(flag.long)

    def flag_error(self, problem: str, prog: str | None = None) -> CommandLineError:
        """A bad flag as Docker's CLI (28, the reference's) reports it: the problem, the
        usage line, where help is; exit 125."""
        return CommandLineError(f"{problem}\n\nUsage:  {self.use_line(prog)}\n\n"
                                f"Run '{self.path(prog)} --help' for more information")

    def _check_args(self, args, prog):
        lo, hi, n = self.min_args, self.max_args, len(args)
        if lo <= n and (hi is None or n <= hi):
            return
        plural = lambda k: "argument" if k == 1 else "arguments"  # noqa: E731
        if hi == 0:
            what = "accepts no arguments"
        elif lo == hi:
            what = f"requires exactly {lo} {plural(lo)}"
        elif hi is not None and lo > 0:
            what = f"requires at least {lo} and at most {hi} {plural(hi)}"
        elif hi is not None:
            what = f"requires at most {hi} {plural(hi)}"
        else:
            what = f"requires at least {lo} {plural(lo)}"
        path = self.path(prog)
        raise CommandLineError(
            f'"{path}" {what}.\nSee \'{path} --help\'.\n\nUsage:  {self.use_line(prog)}\n\n'
            f"{self.description}", ARGS_ERROR_EXIT)

    # -- help ------------------------------------------------------------------------------
    def help_text(self, prog: str | None = None) -> str:
        out = f"\nUsage:  {self.use_line(prog)}\n\n{self.description}\n"
        if self.aliases:
            out += "\nAliases:\n  " + ", ".join(self.aliases) + "\n"
        visible = sorted((f for f in self.flags if not f.hidden), key=lambda f: f.long)  # pflag sorts
        if visible:
            out += "\nOptions:\n" + flag_usages(visible)
        return out


class _FlagProblem(Exception):
    pass


def flag_usages(flags: list[Flag]) -> str:
    """The Options block as pflag lays it out: names and type, aligned help, default."""
    lines = []
    for f in flags:
        left = f"  -{f.short}, --{f.long}" if f.short else f"      --{f.long}"
        typename = f.metavar if f.metavar is not None else _type_name(f.type)
        if typename:
            left += " " + typename
        lines.append((left, f.help + _default_note(f)))
    width = max(len(left) for left, _ in lines)
    return "".join(f"{left.ljust(width)}   {text}".rstrip() + "\n" for left, text in lines)


def _type_name(type_: str) -> str:
    return _TYPE_NAMES.get(type_, type_)


def _default_note(f: Flag) -> str:
    d = f.default
    if d is None or d == "" or d == [] or d == 0:     # pflag hides zero values
        return ""
    if f.type == "string":
        return f' (default "{d}")'
    if f.type == "duration":
        return f" (default {format_duration(d)})"
    if f.repeatable:
        return " (default [" + " ".join(map(str, d)) + "])"
    if f.is_bool:
        return " (default true)"
    return f" (default {d})"


# -- value conversion (Go's strconv and time.ParseDuration, with their error texts) ---------
def convert_value(type_: str, text: str):
    if type_ == "bool":
        return parse_bool(text)
    if type_ in ("string", "list"):
        return text
    if type_ == "strings":
        return [] if text == "" else text.split(",")
    if type_ in _INT_KINDS:
        signed, bits = _INT_KINDS[type_]
        return parse_int(text, bits, signed)
    if type_ == "float":
        return parse_float(text)
    if type_ == "duration":
        return parse_duration(text)
    raise ValueError(f"unsupported flag type {type_}")


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def parse_int(text: str, bits: int = 64, signed: bool = True) -> int:
    """strconv.ParseInt/ParseUint with base 0 (0x, 0o, 0b and leading-0 octal, underscores)."""
    fn = "strconv.ParseInt" if signed else "strconv.ParseUint"
    bad = ValueError(f'{fn}: parsing "{text}": invalid syntax')
    s = text
    neg = False
    if signed and s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    base, body = 10, s
    low = s.lower()
    if low.startswith(("0x", "0o", "0b")):
        base, body = {"x": 16, "o": 8, "b": 2}[low[1]], s[2:]
        body = body[1:] if body.startswith("_") else body
    elif len(s) > 1 and s[0] == "0":
        base, body = 8, s[1:]
        body = body[1:] if body.startswith("_") else body
    if not body or body.startswith("_") or body.endswith("_") or "__" in body:
        raise bad
    if any(ch not in _DIGITS[base] for ch in body.replace("_", "")):
        raise bad
    value = int(body.replace("_", ""), base)
    value = -value if neg else value
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise ValueError(f'{fn}: parsing "{text}": value out of range')
    return value


_FLOAT = r"[+-]?(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)"


def parse_float(text: str) -> float:
    import re   # here, as below: re and the enum it brings cost ~5 ms of a command's start
    if not re.fullmatch(_FLOAT, text, re.IGNORECASE):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    return float(text.replace("_", ""))


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_DURATION_PART = r"(\d*\.?\d*)([^\d.]*)"


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration ("1h30m", "10s", "1.5ms", "0"), returned in seconds."""
    quoted = '"' + text + '"'
    s = text
    neg = False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    import re
    part = re.compile(_DURATION_PART)
    total = 0.0
    pos = 0
    while pos < len(s):
        m = part.match(s, pos)
        number, unit = m.group(1), m.group(2)
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _UNITS[unit]
        pos = m.end()
    return -total if neg else total


def format_duration(seconds: float) -> str:
    """Go's Duration.String() for whole seconds and minutes, as pflag shows defaults."""
    s = int(seconds)
    if s != seconds:
        return f"{seconds * 1000:g}ms"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"
