"""Published ports: Docker's `-p` syntax, and choosing host ports.

`parse_publish(["8080:80", "127.0.0.1::53/udp"])` gives Docker's HostConfig.PortBindings
({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], ...}) and the exposed ports it implies.
`choose(...)` turns PortBindings (+ -P over the exposed ports) into concrete mappings, taking
host ports that neither another container holds (the allocation table) nor a host process
holds (a test bind), as Docker's port allocator and docker-proxy together do.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from hutch.network.errors import NetworkError, PortAllocated

PROTOS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = text.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(text)
    except ValueError:
        raise NetworkError(f"Invalid {what}: {text}") from None
    if not (0 < start <= 65535 and 0 < end <= 65535) or end < start:
        raise NetworkError(f"Invalid {what}: {text}")
    return start, end


def parse_spec(spec: str) -> list[tuple[str, dict]]:
    """One -p value → [("80/tcp", {"HostIp": ..., "HostPort": ...}), ...]."""
    proto = "tcp"
    body = spec
    if "/" in spec:
        body, proto = spec.rsplit("/", 1)
        proto = proto.lower()
        if proto not in PROTOS:
            raise NetworkError(f"Invalid proto: {proto}")
    host_ip = host_port = ""
    if body.startswith("["):              # [v6addr]:hostPort:containerPort
        end = body.find("]")
        host_ip, rest = body[1:end], body[end + 2:]
        host_port, _, container_port = rest.rpartition(":")
    else:
        parts = body.split(":")
        if len(parts) == 1:
            container_port = parts[0]
        elif len(parts) == 2:
            host_port, container_port = parts
        elif len(parts) == 3:
            host_ip, host_port, container_port = parts
        else:
            raise NetworkError(f"Invalid port specification: \"{spec}\"")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise NetworkError(f"Invalid ip address: {host_ip}") from None
    if not container_port:
        raise NetworkError(f"No port specified: {spec}<empty>")
    cstart, cend = _port_range(container_port, "containerPort")
    hstart = hend = 0
    if host_port:
        hstart, hend = _port_range(host_port, "hostPort")
        if hend - hstart != cend - cstart and cend != cstart:
            raise NetworkError(f"Invalid ranges specified for container and host Ports: "
                               f"{container_port} and {host_port}")
    out = []
    for i in range(cend - cstart + 1):
        if not host_port:
            hp = ""
        elif cend == cstart and hend != hstart:
            hp = f"{hstart}-{hend}"       # one container port, any port of the host range
        else:
            hp = str(hstart + i)
        out.append((f"{cstart + i}/{proto}", {"HostIp": host_ip, "HostPort": hp}))
    return out


def parse_publish(specs: Iterable[str]) -> tuple[dict, dict]:
    """-p values → (ExposedPorts {"80/tcp": {}}, PortBindings)."""
    exposed: dict = {}
    bindings: dict = {}
    for spec in specs:
        for port, binding in parse_spec(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    return exposed, bindings


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            a, b = f.read().split()
            return int(a), int(b)
    except (OSError, ValueError):
        return 49153, 65535


def host_port_free(proto: str, host_ip: str, port: int) -> bool:
    """Whether a host process could be holding the port: try to bind it."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    if proto == "sctp":
        return True                       # no portable test bind; trust the allocation table
    s = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # ignore TIME_WAIT
        s.bind((host_ip or "0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def key(proto: str, host_ip: str, port: int) -> str:
    return f"{proto}/{host_ip or '0.0.0.0'}/{port}"


def _clashes(taken: dict, proto: str, host_ip: str, port: int) -> bool:
    ip = host_ip or "0.0.0.0"
    for k in taken:
        p, tip, tport = k.split("/")
        if p == proto and int(tport) == port and (ip == "0.0.0.0" or tip == "0.0.0.0" or tip == ip):
            return True
    return False


def choose(bindings: dict, exposed: Iterable[str], publish_all: bool, taken: dict,
           endpoint: str = "") -> list[dict]:
    """Concrete mappings [{proto, host_ip, host_port, container_port}] for one container.

    `taken` is the allocation table {key: cid}; chosen ports are added to it.
    """
    wanted: list[tuple[str, dict]] = []
    for port, blist in bindings.items():
        for b in blist or [{"HostIp": "", "HostPort": ""}]:
            wanted.append((port, b))
    if publish_all:
        for port in exposed:
            if port not in bindings:
                wanted.append((port, {"HostIp": "", "HostPort": ""}))
    lo, hi = ephemeral_range()
    out = []
    for port, b in wanted:
        num, _, proto = port.partition("/")
        proto = proto or "tcp"
        host_ip = b.get("HostIp") or ""
        if ":" in host_ip:
            raise NetworkError(f"publishing on IPv6 address {host_ip} is not supported by hutch")
        hp = b.get("HostPort") or ""
        if hp:
            start, end = _port_range(hp, "hostPort")
            candidates = range(start, end + 1)
        else:
            candidates = range(lo, hi + 1)
        chosen = None
        for cand in candidates:
            if not _clashes(taken, proto, host_ip, cand) and host_port_free(proto, host_ip, cand):
                chosen = cand
                break
        if chosen is None:
            if hp:
                raise PortAllocated(f"driver failed programming external connectivity on endpoint "
                                    f"{endpoint}: Bind for {host_ip or '0.0.0.0'}:{hp} failed: "
                                    "port is already allocated")
            raise PortAllocated("no free host port in the ephemeral range")
        taken[key(proto, host_ip, chosen)] = endpoint
        out.append({"proto": proto, "host_ip": host_ip, "host_port": chosen,
                    "container_port": int(num)})
    return out


def ports_field(exposed: Iterable[str], mappings: list[dict]) -> dict:
    """NetworkSettings.Ports: every exposed port, null when not published."""
    ports: dict = {p: None for p in exposed}
    for m in mappings:
        k = f"{m['container_port']}/{m['proto']}"
        if ports.get(k) is None:
            ports[k] = []
        ports[k].append({"HostIp": m["host_ip"] or "0.0.0.0", "HostPort": str(m["host_port"])})
    return ports
