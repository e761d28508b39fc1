"""Device access rules (OCI linux.resources.devices) for both cgroup versions.

OCI rules are read in order and the last rule that matches an access decides, so a list
usually starts with "deny all" and adds allowances. v1 gets those rules written one by
one into devices.deny / devices.allow; v2 has no device files, so the rules become an eBPF
program (BPF_PROG_TYPE_CGROUP_DEVICE) that the kernel runs on every open/mknod.
"""
from __future__ import annotations


class Rule:
    """One rule, immutable (a plain class: dataclasses cost ~8 ms of import)."""
    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow: bool, type: str, major: int, minor: int,  # noqa: A002
                 access: str):
        for name, value in zip(self.__slots__, (allow, type, major, minor, access)):
            object.__setattr__(self, name, value)
        # type: "a", "b" or "c"; major/minor: -1 for any; access: a subset of "rwm"

    def __setattr__(self, name, value):
        raise AttributeError(f"Rule is immutable: cannot set {name}")

    def _key(self) -> tuple:
        return (self.allow, self.type, self.major, self.minor, self.access)

    def __eq__(self, other) -> bool:
        return isinstance(other, Rule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return "Rule(allow={!r}, type={!r}, major={!r}, minor={!r}, access={!r})".format(
            *self._key())


def parse_rules(devices: list[dict]) -> list[Rule]:
    rules = []
    for i, d in enumerate(devices):
        typ = d.get("type") or "a"
        access = d.get("access") or "rwm"
        if typ not in ("a", "b", "c"):
            raise ValueError(f"linux.resources.devices[{i}].type: invalid device type {typ!r}")
        if not access or any(ch not in "rwm" for ch in access):
            raise ValueError(f"linux.resources.devices[{i}].access: invalid access {access!r}")
        major = d.get("major")
        minor = d.get("minor")
        rules.append(Rule(bool(d.get("allow")), typ,
                          -1 if major is None else int(major),
                          -1 if minor is None else int(minor),
                          "".join(ch for ch in "rwm" if ch in access)))
    return rules


def _num(n: int) -> str:
    return "*" if n < 0 else str(n)


def _is_reset(r: Rule) -> bool:
    return r.type == "a" and r.major < 0 and r.minor < 0 and r.access == "rwm"


def _exceptions(rules: list[Rule]) -> tuple[str, str, dict]:
    """The kernel's end state after writing `rules`, the first of which is a full "a":
    the default file, the exception file and {(type, major, minor): access}.

    Mirrors devcgroup_update_access: a line in the default's own direction removes access
    from the exception with exactly that type:major:minor (no wildcard matching); a line
    in the other direction adds an exception or merges its access into the same one.
    """
    default_allow = rules[0].allow
    excs: dict[tuple, set] = {}
    for r in rules[1:]:
        for t in (("b", "c") if r.type == "a" else (r.type,)):
            key = (t, r.major, r.minor)
            if r.allow == default_allow:
                if key in excs:
                    excs[key] -= set(r.access)
                    if not excs[key]:
                        del excs[key]
            else:
                excs.setdefault(key, set()).update(r.access)
    if default_allow:
        return "devices.allow", "devices.deny", excs
    return "devices.deny", "devices.allow", excs


def v1_lines(rules: list[Rule]) -> list[tuple[str, str]]:
    """(file, line) pairs for v1: ("devices.deny", "a"), ("devices.allow", "c 1:3 rwm").

    The kernel treats any line starting with "a" as "all devices, all access" and resets
    its exception list, so only a full wildcard rule is written as "a"; a narrower "a"
    rule is spelled out as a block and a char rule.

    From the last full "a" rule on, the end state is known, so hutch writes it directly,
    as runc does: the default, then the exceptions sorted (b before c, then major and
    minor, "*" first). The kernel lists exceptions in write order, so devices.list reads
    as Docker's. Without such a rule the result depends on the parent's list, and the
    rules are written one by one in their order.
    """
    resets = [i for i, r in enumerate(rules) if _is_reset(r)]
    if resets:
        default_file, exc_file, excs = _exceptions(rules[resets[-1]:])
        out = [(default_file, "a")]
        for (t, major, minor), access in sorted(excs.items()):
            out.append((exc_file, f"{t} {_num(major)}:{_num(minor)} "
                                  + "".join(ch for ch in "rwm" if ch in access)))
        return out
    out = []
    for r in rules:
        target = "devices.allow" if r.allow else "devices.deny"
        for t in (("b", "c") if r.type == "a" else (r.type,)):
            out.append((target, f"{t} {_num(r.major)}:{_num(r.minor)} {r.access}"))
    return out


# --- eBPF program -------------------------------------------------------------------
# Registers on entry: r1 = struct bpf_cgroup_dev_ctx *. The prologue loads
#   r2 = device type, r3 = requested access, r4 = major, r5 = minor.
# Then one block per rule, last rule first (the last matching rule decides); a block
# jumps over itself on mismatch, or sets r0 and exits. No match: deny. Blocks after a
# rule that matches everything are left out.

_LDXW = 0x61       # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54    # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74    # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xbc    # BPF_ALU | BPF_MOV | BPF_X
_MOV32_K = 0xb4    # BPF_ALU | BPF_MOV | BPF_K
_JNE_K = 0x55      # BPF_JMP | BPF_JNE | BPF_K
_JNE_X = 0x5d      # BPF_JMP | BPF_JNE | BPF_X
_EXIT = 0x95       # BPF_JMP | BPF_EXIT


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    import struct     # (the v2 program only: a v1 run imports this module too)
    return struct.pack("=BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(r: Rule) -> list[bytes]:
    # Here, not at the top: a v1 host's runtime (every `run`) has no use for hutch._sys.bpf.
    from hutch._sys import bpf
    # Each test is a "jump to the end of this block if it does not match"; the offsets are
    # filled in once the block's length is known.
    tests: list[tuple] = []
    if r.type != "a":
        type_bits = {"b": bpf.BPF_DEVCG_DEV_BLOCK, "c": bpf.BPF_DEVCG_DEV_CHAR}
        tests.append((_JNE_K, 2, 0, type_bits[r.type]))
    if r.access != "rwm":
        access_bits = {"r": bpf.BPF_DEVCG_ACC_READ, "w": bpf.BPF_DEVCG_ACC_WRITE,
                       "m": bpf.BPF_DEVCG_ACC_MKNOD}
        mask = sum(access_bits[ch] for ch in r.access)
        # r6 = requested & mask; the rule matches only if nothing outside it was requested.
        tests.append(("mask", mask))
    if r.major >= 0:
        tests.append((_JNE_K, 4, 0, r.major))
    if r.minor >= 0:
        tests.append((_JNE_K, 5, 0, r.minor))
    size = sum(3 if t[0] == "mask" else 1 for t in tests) + 2
    block: list[bytes] = []
    for t in tests:
        if t[0] == "mask":
            block.append(_insn(_MOV32_X, dst=6, src=3))
            block.append(_insn(_AND32_K, dst=6, imm=t[1]))
            block.append(_insn(_JNE_X, dst=6, src=3, off=size - len(block) - 1))
        else:
            code, dst, _src, imm = t
            block.append(_insn(code, dst=dst, off=size - len(block) - 1, imm=imm))
    block.append(_insn(_MOV32_K, dst=0, imm=1 if r.allow else 0))
    block.append(_insn(_EXIT))
    return block


def bpf_program(rules: list[Rule]) -> bytes:
    prog = [
        _insn(_LDXW, dst=2, src=1, off=0),          # r2 = ctx->access_type
        _insn(_AND32_K, dst=2, imm=0xFFFF),         # r2 = type
        _insn(_LDXW, dst=3, src=1, off=0),
        _insn(_RSH32_K, dst=3, imm=16),             # r3 = access
        _insn(_LDXW, dst=4, src=1, off=4),          # r4 = major
        _insn(_LDXW, dst=5, src=1, off=8),          # r5 = minor
    ]
    for r in reversed(rules):
        prog.extend(_rule_block(r))
        if r.type == "a" and r.access == "rwm" and r.major < 0 and r.minor < 0:
            # Matches everything: what follows could never run, and the verifier
            # refuses unreachable instructions.
            return b"".join(prog)
    prog.append(_insn(_MOV32_K, dst=0, imm=0))
    prog.append(_insn(_EXIT))
    return b"".join(prog)

