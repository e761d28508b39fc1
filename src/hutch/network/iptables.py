"""NAT, published ports and isolation through iptables, in hutch's own chains.

Layout (as Docker's, with HUTCH for DOCKER):
  nat    PREROUTING/OUTPUT  -m addrtype --dst-type LOCAL -j HUTCH      (published ports: DNAT)
  nat    POSTROUTING        -j HUTCH-POSTROUTING                        (masquerade)
  filter FORWARD            -j HUTCH-ISOLATION-STAGE-1 (first), then per network:
         -o BR conntrack RELATED,ESTABLISHED ACCEPT; -o BR -j HUTCH; -i BR ACCEPT
  filter HUTCH              per published port: ACCEPT to the container
  filter HUTCH-ISOLATION-STAGE-1  -i BR ! -o BR -j HUTCH-ISOLATION-STAGE-2
  filter HUTCH-ISOLATION-STAGE-2  -o BR -j DROP       (no traffic between two networks)

Every rule carries a comment: `hutch-net:<network id 12>` for a network's rules,
`hutch:<container id>` for a container's, so exactly those can be found and deleted.
Changes go through one `iptables-restore --noflush` per batch; nothing runs here on the
start path of a container without published ports.
Reaching a published port on 127.0.0.1 works without a userland proxy: DNAT in nat OUTPUT,
route_localnet=1 on the bridge, and masquerade of 127.0.0.0/8 towards the bridge.
"""
from __future__ import annotations


from hutch import trace
from hutch.network.errors import NetworkError

IPTABLES = "iptables"

CHAINS = {"nat": ["HUTCH", "HUTCH-POSTROUTING"],
          "filter": ["HUTCH", "HUTCH-ISOLATION-STAGE-1", "HUTCH-ISOLATION-STAGE-2"]}
JUMPS = [("nat", "-A PREROUTING -m addrtype --dst-type LOCAL -j HUTCH"),
         ("nat", "-A OUTPUT -m addrtype --dst-type LOCAL -j HUTCH"),
         ("nat", "-A POSTROUTING -j HUTCH-POSTROUTING"),
         ("filter", "-I FORWARD 1 -j HUTCH-ISOLATION-STAGE-1")]


def _run(args: list[str], stdin: str | None = None) -> str:
    import subprocess
    trace.step("iptables", " ".join(args) + (f" <<{stdin!r}" if stdin else ""))
    try:
        p = subprocess.run(args, input=stdin, capture_output=True, text=True)
    except FileNotFoundError:
        raise NetworkError(f"{args[0]} not found: install iptables to use bridge networks") from None
    if p.returncode != 0:
        raise NetworkError(f"{' '.join(args[:3])} failed: {p.stderr.strip() or p.returncode}")
    return p.stdout


def save() -> str:
    return _run([IPTABLES + "-save"])


def restore(batch: dict[str, list[str]]) -> None:
    """Apply rule lines (e.g. "-A HUTCH ...") per table in one iptables-restore --noflush."""
    text = ""
    for table, lines in batch.items():
        if lines:
            text += f"*{table}\n" + "".join(l + "\n" for l in lines) + "COMMIT\n"
    if text:
        _run([IPTABLES + "-restore", "-w", "--noflush"], text)


def _tables(saved: str) -> dict[str, list[str]]:
    """iptables-save text → {table: [lines]}."""
    out: dict[str, list[str]] = {}
    table = None
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
            out[table] = []
        elif table and line and line[0] in ":-":
            out[table].append(line)
    return out


def _norm(rule: str) -> str:
    """A rule without its -A/-I CHAIN [pos] head and quoting, to compare with iptables-save."""
    parts = rule.replace('"', "").split()
    if parts[0] == "-I" and len(parts) > 2 and parts[2].isdigit():
        del parts[2]
    return " ".join([parts[1]] + sorted(parts[2:]))


def missing_base(saved: str) -> dict[str, list[str]]:
    """The chain declarations and jumps not yet present (safe to apply with --noflush)."""
    tables = _tables(saved)
    batch: dict[str, list[str]] = {"nat": [], "filter": []}
    for table, chains in CHAINS.items():
        have = {l.split()[0][1:] for l in tables.get(table, []) if l.startswith(":")}
        batch[table] += [f":{c} - [0:0]" for c in chains if c not in have]
    for table, rule in JUMPS:
        present = {_norm(l) for l in tables.get(table, []) if l.startswith("-A")}
        if _norm(rule) not in present:
            batch[table].append(rule)
    return batch


def _tag(tag: str) -> str:
    return f'-m comment --comment "{tag}"'


def network_rules(bridge: str, subnet: str, tag: str, *, internal: bool = False,
                  icc: bool = True, masquerade: bool = True) -> dict[str, list[str]]:
    """A network's rules. internal: no traffic in or out but between its own containers
    (Docker's --internal); icc=False: not even that (enable_icc=false); masquerade=False:
    outbound traffic keeps the containers' addresses (enable_ip_masquerade=false)."""
    c = _tag(tag)
    nat = []
    if masquerade and not internal:
        nat.append(f"-A HUTCH-POSTROUTING -s {subnet} ! -o {bridge} {c} -j MASQUERADE")
    nat += [f"-A HUTCH-POSTROUTING -s 127.0.0.0/8 -o {bridge} {c} -j MASQUERADE",
            # A container reaching a published port (its own or a neighbour's) through the
            # host comes back into the bridge DNATed: masquerade it so the reply returns
            # through the host (and is un-DNATed) instead of going straight across L2.
            f"-A HUTCH-POSTROUTING -s {subnet} -o {bridge} -m conntrack --ctstate DNAT {c} "
            f"-j MASQUERADE"]
    filt = [f"-A FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
            f"-A FORWARD -o {bridge} {c} -j HUTCH"]
    if not internal:
        filt.append(f"-A FORWARD -i {bridge} ! -o {bridge} {c} -j ACCEPT")
    filt.append(f"-A FORWARD -i {bridge} -o {bridge} {c} -j {'ACCEPT' if icc else 'DROP'}")
    if internal:
        filt += [f"-A HUTCH-ISOLATION-STAGE-1 ! -s {subnet} -o {bridge} {c} -j DROP",
                 f"-A HUTCH-ISOLATION-STAGE-1 ! -d {subnet} -i {bridge} {c} -j DROP"]
    else:
        filt.append(f"-A HUTCH-ISOLATION-STAGE-1 -i {bridge} ! -o {bridge} {c} "
                    f"-j HUTCH-ISOLATION-STAGE-2")
    filt.append(f"-A HUTCH-ISOLATION-STAGE-2 -o {bridge} {c} -j DROP")
    return {"nat": nat, "filter": filt}


def port_rules(bridge: str, ip: str, mappings: list[dict], tag: str) -> dict[str, list[str]]:
    c = _tag(tag)
    nat, filt = [], []
    for m in mappings:
        proto, hp, cp = m["proto"], m["host_port"], m["container_port"]
        dst = f"-d {m['host_ip']}/32 " if m["host_ip"] not in ("", "0.0.0.0") else ""
        nat.append(f"-A HUTCH {dst}-p {proto} -m {proto} --dport {hp} {c} "
                   f"-j DNAT --to-destination {ip}:{cp}")
        filt.append(f"-A HUTCH -d {ip}/32 ! -i {bridge} -o {bridge} -p {proto} -m {proto} "
                    f"--dport {cp} {c} -j ACCEPT")
    return {"nat": nat, "filter": filt}


def published(saved: str) -> dict[str, str]:
    """Host ports published by any hutch root (the DNAT rules of the nat HUTCH chain), as
    allocation-table keys "proto/hostip/port" → the owner's tag."""
    import re   # here and below: re (with its enum) is ~5 ms of each command that has no rule to touch
    out = {}
    in_nat = False
    for line in saved.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        m = in_nat and re.match(r'-A HUTCH (?:-d (\S+)/32 )?-p (\w+) .*--dport (\d+) .*'
                                r'--comment "?([^" ]+)"? -j DNAT', line)
        if m:
            out[f"{m.group(2)}/{m.group(1) or '0.0.0.0'}/{m.group(3)}"] = m.group(4)
    return out


def tagged(saved: str, tag_re: str) -> dict[str, list[str]]:
    """Deletions (-D lines) for every rule whose comment matches tag_re (a regex)."""
    import re
    pat = re.compile(r'--comment "?(' + tag_re + r')"?(\s|$)')
    out: dict[str, list[str]] = {}
    for table, lines in _tables(saved).items():
        dels = ["-D" + l[2:] for l in lines if l.startswith("-A ") and pat.search(l)]
        if dels:
            out[table] = dels
    return out


def remove_tagged(tag: str) -> None:
    import re
    restore(tagged(save(), re.escape(tag)))


def setup_network(bridge: str, subnet: str, tag: str, **flags) -> None:
    """Chains and jumps (once per host) and this network's NAT/forward/isolation rules."""
    import re
    saved = save()
    batch = missing_base(saved)
    present = tagged(saved, re.escape(tag))
    if present:   # rebuilt from scratch: a stale half-set must not be doubled
        restore(present)
    for table, lines in network_rules(bridge, subnet, tag, **flags).items():
        batch.setdefault(table, []).extend(lines)
    restore(batch)
