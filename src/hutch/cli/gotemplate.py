"""Go's text/template, as Docker users write it for --format.

    render("{{.State.Status}}", inspect_dict)          -> "running"
    render_rows("table {{.ID}}\\t{{.Status}}", rows, headers)  # Docker's table mode

Data is plain Python: dicts are Go maps (fields are keys), lists are slices, objects are
structs (fields are attributes; a callable attribute is a method and takes arguments).
Output follows Go's fmt: `map[k:v]`, `[a b]`, `true`, `<no value>` for a missing key or nil.
Functions: Go's builtins (and or not len index slice print printf println eq ne lt le gt ge
html urlquery js call) and Docker's (json split join title lower upper pad truncate).
`json` is Docker's: compact encoding/json without HTML escaping (Docker disables it).

Errors raise TemplateError with Go's text ("template: :1: function \"foo\" not defined");
the CLI shows parse errors as Docker does: `template parsing error: <message>`, exit 125.
"""
from __future__ import annotations

import math

__all__ = ["TemplateError", "Template", "parse", "render", "render_rows", "is_table",
           "go_str", "go_json"]


class TemplateError(Exception):
    """`parse` is True for a syntax error, False for an execution error."""

    def __init__(self, message: str, parse: bool = True):
        super().__init__(message)
        self.parse = parse


class _Missing:
    """Go's invalid reflect.Value: a key that is not in a map, an unset variable."""

    def __repr__(self):
        return "<no value>"


MISSING = _Missing()


# ================================= lexer =================================================
class _Tok:
    # kind: text, field, var, ident, dot, string, raw, char, number, bool, nil, pipe, lparen,
    # rparen, declare, assign, comma, char_other, rdelim, ldelim, error, eof
    __slots__ = ("kind", "val", "pos", "space_before")

    def __init__(self, kind: str, val: str, pos: int, space_before: bool = False):
        self.kind, self.val, self.pos, self.space_before = kind, val, pos, space_before


_SPACE = " \t\r\n"
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break",
             "continue"}
# (re is imported where a number or printf needs it: with the enum it brings, ~5 ms of
# every `ps`, `inspect -f`... that has neither)
_NUMBER = (r"[+-]?(0[xX][0-9a-fA-F_]+(\.[0-9a-fA-F_]*)?([pP][+-]?\d+)?|0[bB][01_]+|"
           r"0[oO][0-7_]+|(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?)")


def _word_end(text: str, pos: int) -> int:
    """Where the run of letters, digits and underscores from `pos` ends (Go's
    isAlphaNumeric); `pos` itself when there is none."""
    n = len(text)
    while pos < n and (text[pos] == "_" or text[pos].isalnum()):
        pos += 1
    return pos


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        start = text.find("{{", pos)
        if start < 0:
            toks.append(_Tok("text", text[pos:], pos))
            break
        body = start + 2
        trim_left = text.startswith("-", body) and body + 1 < n and text[body + 1] in _SPACE
        chunk = text[pos:start]
        if trim_left:
            chunk = chunk.rstrip(_SPACE)
            body += 2
        if chunk:
            toks.append(_Tok("text", chunk, pos))
        # comments: {{/* ... */}}
        k = body
        while k < n and text[k] in _SPACE and trim_left:
            k += 1
        if text.startswith("/*", k):
            end = text.find("*/", k + 2)
            if end < 0:
                raise _perr(text, start, "unclosed comment")
            after = end + 2
            trim_right = False
            if text.startswith(" -}}", after) or (after < n and text[after] in _SPACE
                                                  and text.startswith("-}}", after + 1)):
                trim_right, after = True, after + 2
            if not text.startswith("}}", after):
                raise _perr(text, start, "comment ends before closing delimiter")
            pos = after + 2
            if trim_right:
                while pos < n and text[pos] in _SPACE:
                    pos += 1
            continue
        toks.append(_Tok("ldelim", "{{", start))
        try:
            pos = _lex_action(text, body, toks)
        except TemplateError as e:
            # the parser reports it when it gets there, after the tokens before it (as Go)
            toks.append(_Tok("error", str(e), start))
            return toks
    toks.append(_Tok("eof", "", n))
    return toks


def _lex_action(text: str, pos: int, toks: list[_Tok]) -> int:
    n = len(text)
    space = False
    while True:
        if pos >= n:
            raise _perr(text, pos, "unclosed action")
        c = text[pos]
        if c in _SPACE:
            # " -}}": right trim marker
            if text.startswith("-}}", pos + 1):
                toks.append(_Tok("rdelim", "}}", pos))
                pos += 4
                while pos < n and text[pos] in _SPACE:
                    pos += 1
                return pos
            pos += 1
            space = True
            continue
        if text.startswith("}}", pos):
            toks.append(_Tok("rdelim", "}}", pos, space))
            return pos + 2
        start = pos
        if c == '"':
            pos += 1
            while True:
                if pos >= n or text[pos] == "\n":
                    raise _perr(text, start, "unterminated quoted string")
                if text[pos] == "\\":
                    pos += 2
                    continue
                if text[pos] == '"':
                    pos += 1
                    break
                pos += 1
            toks.append(_Tok("string", text[start:pos], start, space))
        elif c == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise _perr(text, start, "unterminated raw quoted string")
            pos = end + 1
            toks.append(_Tok("raw", text[start:pos], start, space))
        elif c == "'":
            pos += 1
            while pos < n and text[pos] != "'":
                if text[pos] == "\n":
                    break
                pos += 2 if text[pos] == "\\" else 1
            if pos >= n or text[pos] != "'":
                raise _perr(text, start, "unterminated character constant")
            pos += 1
            toks.append(_Tok("char", text[start:pos], start, space))
        elif c == "$":
            pos = _word_end(text, pos + 1)
            toks.append(_Tok("var", text[start:pos], start, space))
        elif c == ".":
            if pos + 1 < n and text[pos + 1].isdigit():
                pos = _lex_number(text, pos, toks, space)
            else:
                end = _word_end(text, pos + 1)
                if end > pos + 1:
                    pos = end
                    toks.append(_Tok("field", text[start:pos], start, space))
                else:
                    pos += 1
                    toks.append(_Tok("dot", ".", start, space))
        elif c.isdigit() or (c in "+-" and pos + 1 < n and (text[pos + 1].isdigit() or text[pos + 1] == ".")):
            pos = _lex_number(text, pos, toks, space)
        elif c == "_" or c.isalpha():
            pos = _word_end(text, pos)
            word = text[start:pos]
            kind = "bool" if word in ("true", "false") else "nil" if word == "nil" else "ident"
            toks.append(_Tok(kind, word, start, space))
        elif text.startswith(":=", pos):
            pos += 2
            toks.append(_Tok("declare", ":=", start, space))
        elif c in "|()=,":
            pos += 1
            kind = {"|": "pipe", "(": "lparen", ")": "rparen", "=": "assign", ",": "comma"}[c]
            toks.append(_Tok(kind, c, start, space))
        elif c.isprintable():
            pos += 1
            toks.append(_Tok("char_other", c, start, space))
        else:
            raise _perr(text, start, f"bad character U+{ord(c):04X} {c!r}")
        space = False


def _lex_number(text, pos, toks, space):
    import re
    m = re.compile(_NUMBER).match(text, pos)
    end = m.end() if m else pos
    if m is None or end == pos or (end < len(text) and (text[end].isalnum() or text[end] == ".")):
        stop = end
        while stop < len(text) and (text[stop].isalnum() or text[stop] in "._"):
            stop += 1
        raise _perr(text, pos, f'bad number syntax: "{text[pos:stop]}"')
    toks.append(_Tok("number", text[pos:end], pos, space))
    return end


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _perr(text: str, pos: int, msg: str) -> TemplateError:
    return TemplateError(f"template: :{_line(text, pos)}: {msg}")


# ================================= nodes =================================================
class _Node:
    """Parse-tree node; subclasses list their constructor arguments in _fields. (Plain
    classes rather than dataclasses: `ps` and `images` import this on every call.)"""

    _fields: tuple[str, ...] = ("pos",)

    def __init__(self, *args):
        for name, value in zip(self._fields, args, strict=True):
            setattr(self, name, value)


class _Text(_Node):
    _fields = ("pos", "text")


class _FieldN(_Node):
    _fields = ("pos", "names")

    def __str__(self):
        return "".join("." + n for n in self.names)


class _VarN(_Node):
    _fields = ("pos", "names")

    def __str__(self):
        return self.names[0] + "".join("." + n for n in self.names[1:])


class _ChainN(_Node):
    _fields = ("pos", "node", "names")

    def __str__(self):
        inner = f"({self.node})" if isinstance(self.node, _PipeN) else str(self.node)
        return inner + "".join("." + n for n in self.names)


class _DotN(_Node):
    def __str__(self):
        return "."


class _NilN(_Node):
    def __str__(self):
        return "nil"


class _IdentN(_Node):
    _fields = ("pos", "name")

    def __str__(self):
        return self.name


class _LitN(_Node):
    _fields = ("pos", "value", "src")

    def __str__(self):
        return self.src


class _CmdN(_Node):
    _fields = ("pos", "args")

    def __str__(self):
        return " ".join(f"({a})" if isinstance(a, _PipeN) else str(a) for a in self.args)


class _PipeN(_Node):
    _fields = ("pos", "decl", "assign", "cmds")

    def __str__(self):
        s = ""
        if self.decl:
            s = ", ".join(self.decl) + (" = " if self.assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


class _Action(_Node):
    _fields = ("pos", "pipe")


class _Branch(_Node):
    _fields = ("pos", "kind", "pipe", "body", "else_body")


class _Loop(_Node):
    _fields = ("pos", "kind")


class _TemplateCall(_Node):
    _fields = ("pos", "name", "pipe")


# ================================= parser ================================================
_DOCKER_FUNCS = ("json", "split", "join", "title", "lower", "upper", "pad", "truncate")
_BUILTINS = ("and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq",
             "ne", "lt", "le", "gt", "ge", "html", "urlquery", "js", "call")


class _Parser:
    def __init__(self, text: str, funcs):
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.defines: dict[str, list] = {}
        self.range_depth = 0

    def peek(self) -> _Tok:
        t = self.toks[self.i]
        if t.kind == "error":
            raise TemplateError(t.val)
        return t

    def next(self) -> _Tok:
        t = self.peek()
        self.i += 1
        return t

    def err(self, tok: _Tok, msg: str):
        return _perr(self.text, tok.pos, msg)

    def parse(self):
        body, end = self.item_list(top=True)
        return body, self.defines

    def item_list(self, top=False):
        """Parse until {{end}}/{{else}} (returned as the second value) or EOF at top level."""
        nodes = []
        while True:
            t = self.peek()
            if t.kind == "eof":
                if top:
                    return nodes, None
                raise self.err(t, "unexpected EOF")
            if t.kind == "text":
                self.next()
                nodes.append(_Text(t.pos, t.val))
                continue
            self.next()  # ldelim
            kw = self.peek()
            if kw.kind == "ident" and kw.val in ("end", "else"):
                if top:
                    raise self.err(kw, f"unexpected {{{{{kw.val}}}}}")
                self.next()
                return nodes, kw
            if kw.kind == "ident" and kw.val == "define":
                if not top:
                    raise self.err(kw, "unexpected <define> in command")
                self.next()
                self.parse_define(kw)
                continue
            node = self.action()
            if node is not None:
                nodes.append(node)

    def expect_rdelim(self, context: str):
        t = self.next()
        if t.kind != "rdelim":
            raise self.err(t, f"unexpected {_show(t)} in {context}")

    def action(self):
        t = self.peek()
        if t.kind == "ident" and t.val in ("if", "range", "with"):
            self.next()
            return self.control(t)
        if t.kind == "ident" and t.val in ("break", "continue"):
            self.next()
            if not self.range_depth:
                raise self.err(t, f"{{{{{t.val}}}}} outside {{{{range}}}}")
            self.expect_rdelim(t.val)
            return _Loop(t.pos, t.val)
        if t.kind == "ident" and t.val in ("template", "block"):
            self.next()
            return self.template_call(t)
        pipe = self.pipeline("command", "rdelim")
        return _Action(t.pos, pipe)

    def control(self, kw: _Tok):
        mark = len(self.vars)
        pipe = self.pipeline(kw.val, "rdelim")
        loop = kw.val == "range"
        self.range_depth += loop
        body, end = self.item_list()
        self.range_depth -= loop
        else_body = None
        if end.val == "else":
            nxt = self.peek()
            if kw.val == "if" and nxt.kind == "ident" and nxt.val == "if":
                # {{else if ...}}: a nested if that shares our {{end}}
                self.next()
                else_body = [self.control(nxt)]
            else:
                self.expect_rdelim("else")
                else_body, end2 = self.item_list()
                if end2.val != "end":
                    raise self.err(end2, "expected end; found {{else}}")
                self.expect_rdelim("end")
        else:
            self.expect_rdelim("end")
        del self.vars[mark:]
        return _Branch(kw.pos, kw.val, pipe, body, else_body)

    def template_call(self, kw: _Tok):
        name_tok = self.next()
        if name_tok.kind not in ("string", "raw"):
            raise self.err(name_tok, f"unexpected {_show(name_tok)} in {kw.val} clause")
        name = _unquote(name_tok)
        pipe = None
        if self.peek().kind != "rdelim":
            pipe = self.pipeline(kw.val, "rdelim")
        else:
            self.next()
        if kw.val == "block":
            self.define_body(name)
        return _TemplateCall(kw.pos, name, pipe)

    def parse_define(self, kw: _Tok):
        name_tok = self.next()
        if name_tok.kind not in ("string", "raw"):
            raise self.err(name_tok, f"unexpected {_show(name_tok)} in define clause")
        self.expect_rdelim("define clause")
        self.define_body(_unquote(name_tok))

    def define_body(self, name: str):
        """A {{define}}'s or {{block}}'s body, up to its {{end}}: its own scope ($ only)."""
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        if end.val != "end":
            raise self.err(end, "unexpected {{else}}")
        self.expect_rdelim("end")
        self.vars = saved
        self.defines[name] = body

    def pipeline(self, context: str, end_kind: str) -> _PipeN:
        start = self.peek()
        decl: list[str] = []
        assign = False
        # declarations: $x := / $x = / $i, $e :=
        j = self.i
        if self.toks[j].kind == "var":
            names = [self.toks[j].val]
            k = j + 1
            if self.toks[k].kind == "comma" and self.toks[k + 1].kind == "var":
                names.append(self.toks[k + 1].val)
                k += 2
            if self.toks[k].kind in ("declare", "assign"):
                if len(names) == 2 and context != "range":
                    raise self.err(self.toks[k], "too many declarations in command")
                assign = self.toks[k].kind == "assign"
                if assign:
                    for v in names:
                        if v not in self.vars:
                            raise self.err(self.toks[j], f'undefined variable "{v}"')
                decl = names
                self.i = k + 1
        cmds: list[_CmdN] = []
        while True:
            t = self.peek()
            if t.kind == end_kind:
                self.next()
                break
            if t.kind == "eof":
                raise self.err(t, "unclosed action" if end_kind == "rdelim" else "unclosed left paren")
            cmds.append(self.command(end_kind))
            t = self.peek()
            if t.kind == "pipe":
                self.next()
                if self.peek().kind in (end_kind,):
                    raise self.err(t, "missing command")
        if not cmds:
            raise self.err(start, f"missing value for {context}")
        if not assign:
            self.vars.extend(decl)
        for stage, c in enumerate(cmds[1:], start=2):
            if isinstance(c.args[0], (_LitN, _NilN, _DotN)):
                raise self.err(start, f"non executable command in pipeline stage {stage}")
        return _PipeN(start.pos, decl, assign, cmds)

    def command(self, end_kind: str) -> _CmdN:
        args = []
        start = self.peek()
        while True:
            t = self.peek()
            if t.kind in (end_kind, "pipe"):
                break
            if t.kind == "rparen" and end_kind != "rparen":
                raise self.err(t, "unexpected right paren")
            if args and not t.space_before:
                raise self.err(t, f"unexpected {_show(t)} in operand")
            node = self.operand()
            if node is None:
                raise self.err(t, f"unexpected {_show(t)} in operand")
            args.append(node)
        if not args:
            raise self.err(start, "empty command")
        return _CmdN(start.pos, args)

    def operand(self):
        node = self.term()
        if node is None:
            return None
        names = []
        while self.peek().kind == "field" and not self.peek().space_before:
            names.append(self.next().val[1:])
        if names:
            if isinstance(node, _FieldN):
                node.names.extend(names)
            elif isinstance(node, _VarN):
                node.names.extend(names)
            elif isinstance(node, (_LitN, _NilN)):
                raise self.err(self.toks[self.i - 1], f"unexpected . after term {str(node)!r}")
            else:
                node = _ChainN(node.pos, node, names)
        return node

    def term(self):
        t = self.peek()
        k = t.kind
        if k == "ident":
            if t.val in _KEYWORDS:
                return None
            if t.val not in self.funcs:
                raise self.err(t, f'function "{t.val}" not defined')
            self.next()
            return _IdentN(t.pos, t.val)
        self.next()
        if k == "dot":
            return _DotN(t.pos)
        if k == "nil":
            return _NilN(t.pos)
        if k == "var":
            if t.val not in self.vars:
                raise self.err(t, f'undefined variable "{t.val}"')
            return _VarN(t.pos, [t.val])
        if k == "field":
            return _FieldN(t.pos, [t.val[1:]])
        if k == "bool":
            return _LitN(t.pos, t.val == "true", t.val)
        if k == "number":
            return _LitN(t.pos, _number(t, self), t.val)
        if k in ("string", "raw"):
            return _LitN(t.pos, _unquote(t), t.val)
        if k == "char":
            return _LitN(t.pos, ord(_unquote(t)), t.val)
        if k == "lparen":
            pipe = self.pipeline("parenthesized pipeline", "rparen")
            return pipe
        self.i -= 1
        return None


def _show(t: _Tok) -> str:
    """A token as Go's parser names it in errors."""
    from hutch.cli.format import go_quote
    if t.kind == "eof":
        return "EOF"
    if t.kind == "ident" and t.val in _KEYWORDS:
        return f"<{t.val}>"
    if len(t.val) > 10:
        return go_quote(t.val[:10]) + "..."
    return go_quote(t.val)


def _number(t: _Tok, p: _Parser):
    s = t.val.replace("_", "")
    try:
        low = s.lower().lstrip("+-")
        if low.startswith(("0x", "0o", "0b")) and "." not in low and "p" not in low:
            return int(s, 0)
        if (s[1:] if s[:1] in "+-" else s).isdecimal():    # [+-]?\d+
            if len(low) > 1 and low.startswith("0"):
                return int(s, 8)
            return int(s)
        if low.startswith("0x"):
            return float.fromhex(s)
        return float(s)
    except ValueError:
        raise p.err(t, f'bad number syntax: "{t.val}"') from None


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _unquote(t: _Tok) -> str:
    s = t.val
    if t.kind == "raw":
        return s[1:-1].replace("\r", "")
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2:i + 2 + size], 16)))
            i += 2 + size
        elif e.isdigit():
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"template: :1: invalid syntax: {s}")
    return "".join(out)


# ================================= execution =============================================
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; `execute(data)` renders it."""

    def __init__(self, text: str, funcs: dict | None = None):
        self.text = text
        self.funcs = dict(FUNCS)
        if funcs:
            self.funcs.update(funcs)
        self.nodes, self.defines = _Parser(text, self.funcs).parse()

    def execute(self, data, funcs: dict | None = None) -> str:
        state = _State(self, dict(self.funcs, **(funcs or {})), data)
        state.walk(self.nodes, data)
        return "".join(state.out)


class _State:
    def __init__(self, tmpl: Template, funcs: dict, data):
        self.tmpl = tmpl
        self.funcs = funcs
        self.vars: list[list] = [["$", data]]
        self.out: list[str] = []
        self.node = None
        self.depth = 0

    # -- errors --
    def errorf(self, msg: str):
        node = self.node
        text = self.tmpl.text
        if node is None:
            raise TemplateError(f"template: : executing \"\": {msg}", parse=False)
        line = _line(text, node.pos)
        col = node.pos - (text.rfind("\n", 0, node.pos) + 1)
        raise TemplateError(f'template: :{line}:{col}: executing "" at <{node}>: {msg}', parse=False)

    # -- walk --
    def walk(self, nodes, dot):
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                self.node = node.pipe
                val = self.eval_pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(go_str(val, top=True))
            elif isinstance(node, _Branch):
                self.walk_branch(node, dot)
            elif isinstance(node, _Loop):
                raise _Break() if node.kind == "break" else _Continue()
            elif isinstance(node, _TemplateCall):
                self.walk_template(node, dot)

    def walk_branch(self, node: _Branch, dot):
        mark = len(self.vars)
        try:
            self.node = node.pipe
            val = self.eval_pipeline(dot, node.pipe, declare=node.kind != "range")
            if node.kind == "range":
                self.walk_range(node, dot, val, mark)
                return
            if truth(val):
                self.walk(node.body, val if node.kind == "with" else dot)
            elif node.else_body is not None:
                self.walk(node.else_body, dot)
        finally:
            del self.vars[mark:]

    def walk_range(self, node: _Branch, dot, val, mark):
        if val is MISSING or val is None:
            items = []
        elif isinstance(val, dict):
            items = [(k, val[k]) for k in _sorted_keys(val)]
        elif isinstance(val, (list, tuple)):
            items = list(enumerate(val))
        elif isinstance(val, int) and not isinstance(val, bool):
            items = [(i, i) for i in range(val)]
        else:
            self.node = node.pipe
            self.errorf(f"range can't iterate over {go_str(val)}")
        if not items:
            if node.else_body is not None:
                self.walk(node.else_body, dot)
            return
        decl = node.pipe.decl
        inner = len(self.vars)
        for key, elem in items:
            if len(decl) == 1:
                self.set_var(decl[0], elem)
            elif len(decl) == 2:
                self.set_var(decl[0], key)
                self.set_var(decl[1], elem)
            try:
                self.walk(node.body, elem)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del self.vars[inner:]
        del self.vars[mark:]

    def set_var(self, name, value):
        self.vars.append([name, value])

    def walk_template(self, node: _TemplateCall, dot):
        body = self.tmpl.defines.get(node.name)
        if body is None:
            self.node = node
            self.errorf(f'template "{node.name}" not defined')
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe else None
        self.depth += 1
        if self.depth > 1000:
            self.errorf("exceeded maximum template depth (1000)")
        saved = self.vars
        self.vars = [["$", new_dot]]
        try:
            self.walk(body, new_dot)
        finally:
            self.vars = saved
            self.depth -= 1

    # -- evaluation --
    def eval_pipeline(self, dot, pipe: _PipeN, declare: bool = True):
        value = MISSING
        for i, cmd in enumerate(pipe.cmds):
            value = self.eval_command(dot, cmd, value if i else MISSING, has_final=i > 0)
        for name in pipe.decl if declare else ():
            if pipe.assign:
                self.assign_var(name, value)
            else:
                self.set_var(name, value)
        return value

    def assign_var(self, name, value):
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def lookup_var(self, name):
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.errorf(f"undefined variable: {name}")

    def eval_command(self, dot, cmd: _CmdN, final, has_final):
        first = cmd.args[0]
        args = cmd.args[1:]
        if isinstance(first, _FieldN):
            return self.eval_fields(dot, dot, first, first.names, args, final, has_final)
        if isinstance(first, _ChainN):
            base = self.eval_arg(dot, first.node)
            return self.eval_fields(dot, base, first, first.names, args, final, has_final)
        if isinstance(first, _VarN):
            value = self.lookup_var(first.names[0])
            if len(first.names) == 1:
                self.not_a_function(cmd, final, has_final)
                return value
            return self.eval_fields(dot, value, first, first.names[1:], args, final, has_final)
        if isinstance(first, _IdentN):
            return self.call_function(dot, first, args, final, has_final, cmd)
        if isinstance(first, _PipeN):
            self.not_a_function(cmd, final, has_final)
            return self.eval_pipeline(dot, first)
        self.not_a_function(cmd, final, has_final)
        if isinstance(first, _DotN):
            return dot
        if isinstance(first, _NilN):
            self.node = first
            self.errorf("nil is not a command")
        return first.value

    def not_a_function(self, cmd: _CmdN, final, has_final):
        if len(cmd.args) > 1 or has_final:
            self.node = cmd
            self.errorf(f"can't give argument to non-function {cmd.args[0]}")

    def eval_arg(self, dot, node):
        if isinstance(node, _DotN):
            return dot
        if isinstance(node, _NilN):
            return None
        if isinstance(node, _FieldN):
            return self.eval_fields(dot, dot, node, node.names, [], MISSING, False)
        if isinstance(node, _VarN):
            value = self.lookup_var(node.names[0])
            return self.eval_fields(dot, value, node, node.names[1:], [], MISSING, False) \
                if len(node.names) > 1 else value
        if isinstance(node, _ChainN):
            base = self.eval_arg(dot, node.node)
            return self.eval_fields(dot, base, node, node.names, [], MISSING, False)
        if isinstance(node, _PipeN):
            return self.eval_pipeline(dot, node)
        if isinstance(node, _IdentN):
            return self.call_function(dot, node, [], MISSING, False)
        return node.value

    def eval_fields(self, dot, receiver, node, names, args, final, has_final):
        for i, name in enumerate(names):
            last = i == len(names) - 1
            receiver = self.eval_field(dot, receiver, node, name,
                                       args if last else [], final if last else MISSING,
                                       has_final and last)
        return receiver

    def eval_field(self, dot, receiver, node, name, args, final, has_final):
        self.node = node
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, dict):
            value = receiver.get(name, MISSING)
            if callable(value):   # a row's method, e.g. ps's {{.Label "com.x"}}
                return self.call_method(dot, name, value, args, final, has_final)
            if args or has_final:
                self.errorf(f"{name} is not a method but has arguments")
            return value
        if isinstance(receiver, (str, int, float, bool, list, tuple)):
            self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")
        if name.startswith("_") or not hasattr(receiver, name):
            self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")
        value = getattr(receiver, name)
        if callable(value):
            return self.call_method(dot, name, value, args, final, has_final)
        if args or has_final:
            self.errorf(f"{name} is not a method but has arguments")
        return value

    def call_method(self, dot, name, method, args, final, has_final):
        call_args = [self.eval_arg(dot, a) for a in args]
        if has_final:
            call_args.append(final)
        try:
            return method(*call_args)
        except TypeError as e:
            self.errorf(f"wrong number of args for {name}: {e}")
        except (ValueError, KeyError) as e:
            self.errorf(f"error calling {name}: {e}")

    def call_function(self, dot, ident: _IdentN, args, final, has_final, cmd=None):
        name = ident.name
        fn = self.funcs[name]
        if name in ("and", "or"):
            nodes = list(args)
            if not nodes and not has_final:
                self.node = ident
                self.errorf(f"wrong number of args for {name}: want at least 1 got 0")
            value = MISSING
            for a in nodes:
                value = self.eval_arg(dot, a)
                if truth(value) != (name == "and"):
                    return value
            if has_final:
                value = final
            return value
        values = [self.eval_arg(dot, a) for a in args]
        if has_final:
            values.append(final)
        self.node = cmd or ident     # Go names the whole command: <eq .ID 1>
        try:
            return fn(*values)
        except _ArgCount as e:
            self.errorf(f"wrong number of args for {name}: want {e.want} got {len(values)}")
        except _WrongType as e:
            self.errorf(str(e))
        except TemplateError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as e:
            self.errorf(f"error calling {name}: {e}")


def truth(val) -> bool:
    """Go's template truth: false, 0, nil, empty string/slice/map are false."""
    if val is MISSING or val is None:
        return False
    if isinstance(val, (bool, int, float, str, list, tuple, dict)):
        return bool(val)
    return True


# ================================= Go value formatting ====================================
def go_type(v) -> str:
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "[]string" if v and all(isinstance(x, str) for x in v) else "[]interface {}"
    if isinstance(v, dict):
        return "map[string]string" if v and all(isinstance(x, str) for x in v.values()) \
            else "map[string]interface {}"
    return type(v).__name__


def go_float(f: float) -> str:
    """fmt's %v for float64: shortest digits, exponent form below 1e-4 or from 1e6."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest(f)
    if exp < -4 or exp >= 6:     # strconv's 'g' with shortest digits decides at 6
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if f < 0 else ''}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return _fixed(f, digits, exp)


def _shortest(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of |f| and the decimal exponent of the first digit."""
    r = repr(abs(f))
    if "e" in r:
        m, _, ex = r.partition("e")
        digits = m.replace(".", "").rstrip("0") or "0"
        return digits, int(ex)
    whole, _, frac = r.partition(".")
    frac = frac.rstrip("0")
    if whole != "0":
        digits = (whole + frac).rstrip("0") or "0"
        return digits, len(whole) - 1
    stripped = frac.lstrip("0")
    return stripped.rstrip("0") or "0", -(len(frac) - len(stripped)) - 1


def _fixed(f: float, digits: str, exp: int) -> str:
    sign = "-" if f < 0 else ""
    if exp >= 0:
        whole = digits[:exp + 1].ljust(exp + 1, "0")
        frac = digits[exp + 1:]
    else:
        whole = "0"
        frac = "0" * (-exp - 1) + digits
    return sign + whole + ("." + frac if frac else "")


def go_str(v, top: bool = False) -> str:
    """fmt's %v as text/template prints values."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v[k])}" for k in _sorted_keys(v)) + "]"
    return str(v)


def _sorted_keys(d: dict):
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=str)


def go_json(v) -> str:
    """Go's encoding/json, compact, as Docker's `json` template function (no HTML escaping).
    Dict keys keep their order (Docker's structs encode in declaration order)."""
    out: list[str] = []
    _json(v, out)
    return "".join(out)


def _json(v, out):
    if v is None or v is MISSING:
        out.append("null")
    elif isinstance(v, bool):
        out.append("true" if v else "false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(_json_float(v))
    elif isinstance(v, str):
        out.append(_json_str(v))
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k, x in v.items():
            if callable(x):
                continue   # methods are not data (Go's json skips them too)
            if not first:
                out.append(",")
            first = False
            out.append(_json_str(str(k)))
            out.append(":")
            _json(x, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _json(x, out)
        out.append("]")
    elif hasattr(v, "__dataclass_fields__"):
        import dataclasses
        _json(dataclasses.asdict(v), out)
    else:
        _json(str(v), out)


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise TemplateError(f"json: unsupported value: {go_float(f)}", parse=False)
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        digits, exp = _shortest(f)
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{'-' if f < 0 else ''}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}".replace("e-0", "e-")
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits, exp = _shortest(f)
    return _fixed(f, digits, exp)


_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _JSON_ESC:
            out.append(_JSON_ESC[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ================================= functions =============================================
class _ArgCount(Exception):
    def __init__(self, want):
        super().__init__(want)
        self.want = want


class _WrongType(Exception):
    pass


def _want(args, n):
    if len(args) != n:
        raise _ArgCount(n)


def _string_arg(v) -> str:
    if not isinstance(v, str):
        raise _WrongType(f"wrong type for value; expected string; got {go_type(v)}")
    return v


def _int_arg(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _WrongType(f"wrong type for value; expected int; got {go_type(v)}")
    return v


def _f_json(*a):
    _want(a, 1)
    return go_json(a[0])


def _f_split(*a):
    _want(a, 2)
    s, sep = _string_arg(a[0]), _string_arg(a[1])
    if sep == "":
        return list(s)
    return s.split(sep)


def _f_join(*a):
    _want(a, 2)
    items, sep = a[0], _string_arg(a[1])
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise _WrongType(f"wrong type for value; expected []string; got {go_type(items)}")
    return sep.join(items)


def _f_title(*a):
    _want(a, 1)
    s = _string_arg(a[0])
    out, prev = [], " "
    for ch in s:
        out.append(ch.upper() if _title_sep(prev) else ch)
        prev = ch
    return "".join(out)


def _title_sep(ch: str) -> bool:
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    return not (ch.isalpha() or ch.isdigit()) and ch.isspace()


def _f_lower(*a):
    _want(a, 1)
    return _string_arg(a[0]).lower()


def _f_upper(*a):
    _want(a, 1)
    return _string_arg(a[0]).upper()


def _f_pad(*a):
    _want(a, 3)
    s, pre, suf = _string_arg(a[0]), _int_arg(a[1]), _int_arg(a[2])
    return s if s == "" else " " * pre + s + " " * suf


def _f_truncate(*a):
    _want(a, 2)
    s, n = _string_arg(a[0]), _int_arg(a[1])
    b = s.encode()
    return s if len(b) < n else b[:n].decode(errors="replace")


def _f_not(*a):
    _want(a, 1)
    return not truth(a[0])


def _f_len(*a):
    _want(a, 1)
    v = a[0]
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    if v is None or v is MISSING:
        raise ValueError("len of nil pointer")
    raise ValueError(f"len of type {go_type(v)}")


def _f_index(*a):
    if not a:
        raise _ArgCount("at least 1")
    item = a[0]
    for key in a[1:]:
        if item is None or item is MISSING:
            raise ValueError("index of untyped nil")
        if isinstance(item, dict):
            if key in item:
                item = item[key]
            else:
                # Go returns the map's zero value: "" for map[string]string
                item = "" if all(isinstance(x, str) for x in item.values()) else MISSING
        elif isinstance(item, (list, tuple, str)):
            if isinstance(key, bool) or not isinstance(key, int):
                raise ValueError(f"cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(item):
                raise ValueError(f"index out of range: {key}")
            item = item[key] if not isinstance(item, str) else item.encode()[key]
        else:
            raise ValueError(f"can't index item of type {go_type(item)}")
    return item


def _f_slice(*a):
    if not a:
        raise _ArgCount("at least 1")
    item, idx = a[0], list(a[1:])
    if len(idx) > 3 or (isinstance(item, str) and len(idx) > 2):
        raise ValueError(f"too many slice indexes: {len(idx)}")
    if not isinstance(item, (str, list, tuple)):
        raise ValueError(f"can't slice item of type {go_type(item)}")
    n = len(item)
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else n
    for i in idx:
        if not 0 <= i <= n:
            raise ValueError(f"index out of range: {i}")
    if lo > hi:
        raise ValueError(f"invalid slice index: {lo} > {hi}")
    return item[lo:hi]


def _f_print(*a):
    out = []
    for i, v in enumerate(a):
        if i and not isinstance(v, str) and not isinstance(a[i - 1], str):
            out.append(" ")
        out.append(go_str(v))
    return "".join(out)


def _f_println(*a):
    return " ".join(go_str(v) for v in a) + "\n"


def _f_printf(*a):
    if not a:
        raise _ArgCount("at least 1")
    return sprintf(_string_arg(a[0]), *a[1:])


def _f_html(*a):
    s = _f_print(*a)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;").replace("\0", "\uFFFD"))


def _f_urlquery(*a):
    import urllib.parse
    return urllib.parse.quote_plus(_f_print(*a))


def _f_js(*a):
    s = _f_print(*a)
    out = []
    for ch in s:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=`":
            out.append(f"\\u{ord(ch):04X}")
        elif ord(ch) < 0x20:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{ord(ch):04X}"))
        else:
            out.append(ch)
    return "".join(out)


def _f_call(*a):
    if not a:
        raise _ArgCount("at least 1")
    if not callable(a[0]):
        raise ValueError(f"non-function of type {go_type(a[0])}")
    return a[0](*a[1:])


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None or v is MISSING:
        return "nil"
    return "other"


def _eq1(x, y) -> bool:
    kx, ky = _kind(x), _kind(y)
    if kx == "nil" or ky == "nil":
        return kx == ky
    if kx != ky:
        raise ValueError("incompatible types for comparison")
    return x == y


def _f_eq(*a):
    if len(a) < 2:
        raise ValueError("missing argument for comparison")
    return any(_eq1(a[0], y) for y in a[1:])


def _f_ne(*a):
    _want(a, 2)
    return not _eq1(a[0], a[1])


def _lt(x, y) -> bool:
    kx, ky = _kind(x), _kind(y)
    if kx not in ("number", "string") or ky not in ("number", "string"):
        raise ValueError("invalid type for comparison")
    if kx != ky:
        raise ValueError("incompatible types for comparison")
    return x < y


def _f_lt(*a):
    _want(a, 2)
    return _lt(a[0], a[1])


def _f_le(*a):
    _want(a, 2)
    return _lt(a[0], a[1]) or _eq1(a[0], a[1])


def _f_gt(*a):
    _want(a, 2)
    return not (_lt(a[0], a[1]) or _eq1(a[0], a[1]))


def _f_ge(*a):
    _want(a, 2)
    return not _lt(a[0], a[1])


FUNCS = {
    "and": None, "or": None,   # evaluated lazily in _State.call_function
    "not": _f_not, "len": _f_len, "index": _f_index, "slice": _f_slice, "print": _f_print,
    "printf": _f_printf, "println": _f_println, "eq": _f_eq, "ne": _f_ne, "lt": _f_lt,
    "le": _f_le, "gt": _f_gt, "ge": _f_ge, "html": _f_html, "urlquery": _f_urlquery,
    "js": _f_js, "call": _f_call,
    "json": _f_json, "split": _f_split, "join": _f_join, "title": _f_title,
    "lower": _f_lower, "upper": _f_upper, "pad": _f_pad, "truncate": _f_truncate,
}


def _header_passthrough(*a):
    return a[0] if a else ""


# Docker renders a table's header with these in place of the formatting functions, so the
# header keeps the column's name.
HEADER_FUNCS = {name: _header_passthrough
                for name in ("json", "split", "join", "title", "lower", "upper", "truncate")}


# ================================= printf ================================================
_VERB = r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?([a-zA-Z%])"


def sprintf(fmt: str, *args) -> str:
    """Go's fmt.Sprintf for the verbs templates use: v s q d x X o b c t f F e E g G %."""
    out = []
    pos = 0
    argi = 0
    import re
    for m in re.finditer(_VERB, fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(args[argi]) if argi < len(args) else "0"
            argi += 1
        if prec == "*":
            prec = str(args[argi]) if argi < len(args) else "0"
            argi += 1
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_verb(flags, int(width) if width else None,
                                None if prec is None else int(prec or 0), verb, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type(x)}={go_str(x)}" for x in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, flags: str, width: int | None, zero_ok: bool = False) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and zero_ok:
        sign = s[0] if s[:1] in "+-" else ""
        return sign + "0" * (width - len(s)) + s[len(sign):]
    return " " * (width - len(s)) + s


def _bad_verb(verb, arg):
    if arg is None or arg is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def _format_verb(flags, width, prec, verb, arg):
    from hutch.cli.format import go_quote
    if isinstance(arg, (list, tuple)) and verb not in ("v", "T"):
        return "[" + " ".join(_format_verb(flags, width, prec, verb, x) for x in arg) + "]"
    if verb == "v":
        return _pad(go_str(arg), flags, width)
    if verb == "T":
        return _pad(go_type(arg), flags, width)
    if isinstance(arg, bool):
        if verb != "t":
            return _bad_verb(verb, arg)
        return _pad("true" if arg else "false", flags, width)
    if isinstance(arg, str):
        if verb == "s":
            s = arg if prec is None else arg[:prec]
            return _pad(s, flags, width)
        if verb == "q":
            return _pad(go_quote(arg if prec is None else arg[:prec]), flags, width)
        if verb in "xX":
            h = arg.encode().hex()
            return _pad(h.upper() if verb == "X" else h, flags, width)
        return _bad_verb(verb, arg)
    if isinstance(arg, int):
        if verb in "dxXobc" or verb == "q":
            if verb == "c":
                return _pad(chr(arg), flags, width)
            if verb == "q":
                return _pad("'" + chr(arg) + "'", flags, width)
            body = format(abs(arg), {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
            if prec is not None:
                body = body.rjust(prec, "0")
            if "#" in flags and verb in "xX":
                body = ("0x" if verb == "x" else "0X") + body
            sign = "-" if arg < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
            return _pad(sign + body, flags, width, zero_ok=prec is None)
        return _bad_verb(verb, arg)
    if isinstance(arg, float):
        if verb in "fFeE":
            p = 6 if prec is None else prec
            body = format(arg, f"{'+' if '+' in flags else ''}.{p}{verb.lower() if verb == 'F' else verb}")
            return _pad(body, flags, width, zero_ok=True)
        if verb in "gG":
            body = go_float(arg) if prec is None else format(arg, f".{prec}{verb}")
            if verb == "G":
                body = body.upper()
            if "+" in flags and arg >= 0:
                body = "+" + body
            return _pad(body, flags, width, zero_ok=True)
        return _bad_verb(verb, arg)
    if isinstance(arg, dict) and verb == "s":
        return _pad(go_str(arg), flags, width)
    return _bad_verb(verb, arg)


# ================================= public API ============================================
_CACHE: dict[str, Template] = {}


def parse(text: str) -> Template:
    tmpl = _CACHE.get(text)
    if tmpl is None:
        tmpl = _CACHE[text] = Template(text)
    return tmpl


def render(text: str, data) -> str:
    """Render one value (inspect's -f): the template's output, no newline added."""
    return parse(text).execute(data)


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def prepare(fmt: str, default_table: str | None = None) -> tuple[str, bool]:
    """Docker's preFormat: strip "table", trim spaces, turn literal \\t and \\n into tab and
    newline. A bare "table" means the command's default table (`default_table`)."""
    table = is_table(fmt)
    body = fmt[len("table"):] if table else fmt
    body = body.strip(" ")
    if table and not body and default_table:
        body = default_table
    return body.replace("\\t", "\t").replace("\\n", "\n"), table


def render_rows(fmt: str, rows, headers: dict | None = None,
                default_table: str | None = None) -> str:
    """`ps`/`images`/`stats` --format: one line per row; in table mode a header line made by
    rendering the template over `headers` (field name -> column title, e.g. {"ID":
    "CONTAINER ID"}) and everything aligned as Docker's tabwriter does."""
    body, table = prepare(fmt, default_table)
    tmpl = parse(body)
    lines = "".join(tmpl.execute(row) + "\n" for row in rows)
    if not table:
        return lines
    from hutch.cli.format import tabwrite
    header = tmpl.execute(headers or {}, funcs=HEADER_FUNCS)
    return tabwrite(header + "\n" + lines)
