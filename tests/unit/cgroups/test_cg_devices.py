"""Device rules: v1 lines, and the v2 eBPF program run through a small interpreter."""
import itertools
import struct

import pytest

from hutch.cgroups import devices

DOCKER_DEFAULT = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "r"},
    {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
    {"allow": True, "type": "b", "access": "m"},
]


def test_v1_lines_write_the_end_state_sorted():
    # c 1:5 loses w (the deny matches that exception exactly); the exceptions come sorted,
    # b before c, "*" first, so the kernel's devices.list reads as Docker's.
    lines = devices.v1_lines(devices.parse_rules(DOCKER_DEFAULT))
    assert lines == [
        ("devices.deny", "a"),
        ("devices.allow", "b *:* m"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 1:5 rm"),
        ("devices.allow", "c 5:1 r"),
        ("devices.allow", "c 136:* rwm"),
    ]


def test_v1_lines_deny_without_exact_exception_is_a_no_op():
    # As in the kernel: "deny c 10:229" does not cut into "allow c *:* m".
    rules = devices.parse_rules([
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "access": "m"},
        {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "m"},
    ])
    assert devices.v1_lines(rules) == [("devices.deny", "a"), ("devices.allow", "c *:* m"),
                                       ("devices.allow", "c 1:3 rwm")]


def test_v1_lines_allow_all_default_lists_denies():
    rules = devices.parse_rules([
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "access": "rwm"},
        {"allow": False, "type": "c", "major": 5, "minor": 1, "access": "w"},
        {"allow": False, "type": "b", "major": 8, "access": "rwm"},
    ])
    assert devices.v1_lines(rules) == [("devices.allow", "a"), ("devices.deny", "b 8:* rwm"),
                                       ("devices.deny", "c 5:1 w")]


def test_v1_lines_without_a_default_keep_rule_order():
    rules = devices.parse_rules([
        {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "r"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ])
    assert devices.v1_lines(rules) == [("devices.allow", "c 5:1 r"),
                                       ("devices.deny", "c 1:3 w")]


def test_v1_narrow_a_rule_is_spelled_out():
    # "a 1:3 r" would reset the whole list on v1; it becomes a block and a char rule.
    lines = devices.v1_lines(devices.parse_rules([{"allow": True, "major": 1, "minor": 3,
                                                   "access": "r"}]))
    assert lines == [("devices.allow", "b 1:3 r"), ("devices.allow", "c 1:3 r")]


@pytest.mark.parametrize("bad,msg", [
    ({"allow": True, "type": "x"}, "invalid device type"),
    ({"allow": True, "access": "rwx"}, "invalid access"),
])
def test_parse_rules_refuses(bad, msg):
    with pytest.raises(ValueError, match=msg):
        devices.parse_rules([bad])


def reference(rules, dev_type, major, minor, access):
    """OCI semantics: the last matching rule decides; nothing matches: deny."""
    for r in reversed(rules):
        if r.type != "a" and r.type != dev_type:
            continue
        if any(ch not in r.access for ch in access):
            continue
        if r.major >= 0 and r.major != major:
            continue
        if r.minor >= 0 and r.minor != minor:
            continue
        return r.allow
    return False


def run_bpf(program: bytes, access_type: int, major: int, minor: int) -> int:
    """Interpret the few eBPF instructions the program builder emits."""
    ctx = struct.pack("=III", access_type, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack_from("=BBhi", program, i) for i in range(0, len(program), 8)]
    for _ in range(10000):
        code, regs_byte, off, imm = insns[pc]
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if code == 0x61:
            assert src == 1
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = regs[dst] & (imm & 0xFFFFFFFF)
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xbc:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0xb4:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == 0x55:
            if regs[dst] != (imm & 0xFFFFFFFF):
                pc += off
        elif code == 0x5d:
            if regs[dst] != regs[src]:
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not exit")


TYPES = {"b": 1, "c": 2}
ACCESS = {"m": 1, "r": 2, "w": 4}


@pytest.mark.parametrize("rules", [
    DOCKER_DEFAULT,
    [{"allow": True, "access": "rwm"}],
    [{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 9}],
    [{"allow": True, "type": "b", "major": 254, "access": "rw"}],
    [],
])
def test_bpf_program_matches_rule_semantics(rules):
    parsed = devices.parse_rules(rules)
    program = devices.bpf_program(parsed)
    assert len(program) % 8 == 0
    for t, (major, minor), access in itertools.product(
            "bc", [(1, 3), (1, 5), (1, 9), (5, 1), (136, 4), (254, 0)],
            ["r", "w", "m", "rw", "rwm"]):
        access_type = (sum(ACCESS[a] for a in access) << 16) | TYPES[t]
        got = run_bpf(program, access_type, major, minor)
        assert got == int(reference(parsed, t, major, minor, access)), (t, major, minor, access)


def test_bpf_program_has_no_unreachable_code_after_match_all():
    # The verifier refuses unreachable instructions: nothing may follow a match-all rule.
    program = devices.bpf_program(devices.parse_rules([{"allow": False, "access": "rwm"}]))
    assert len(program) == 8 * (6 + 2)
