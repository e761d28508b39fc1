"""/etc/hosts, /etc/hostname and /etc/resolv.conf for a container, written as Docker writes them.

Pure text builders plus `write_files`, which puts them in the container's directory; the
engine bind-mounts them over the image's files (Docker's mounts of the same three files).
"""
from __future__ import annotations

import os

from hutch.network.errors import NetworkError

DEFAULT_HOSTS = ("127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\n"
                 "ff00::0\tip6-mcastprefix\n"
                 "ff02::1\tip6-allnodes\n"
                 "ff02::2\tip6-allrouters\n")
# Docker's fallback when the host has no usable nameserver.
DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]
EMBEDDED_DNS = "127.0.0.11"
HOST_RESOLV = "/etc/resolv.conf"
SYSTEMD_RESOLV = "/run/systemd/resolve/resolv.conf"


def parse_extra_host(entry: str) -> tuple[str, str]:
    """--add-host "name:ip" → (name, ip), Docker's validation."""
    name, sep, ip = entry.partition(":")
    if not sep or not name or not ip:
        raise NetworkError(f"invalid argument \"{entry}\" for \"--add-host\" flag: "
                           f"bad format for add-host: \"{entry}\"")
    import ipaddress
    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        raise NetworkError(f"invalid argument \"{entry}\" for \"--add-host\" flag: "
                           f"invalid IP address in add-host: \"{ip}\"") from None
    return name, ip.strip("[]")


def hosts(hostname: str, ip: str | None, extra_hosts=(), domainname: str = "") -> str:
    text = DEFAULT_HOSTS
    for entry in extra_hosts:
        name, addr = parse_extra_host(entry)
        text += f"{addr}\t{name}\n"
    if ip:
        # The FQDN and the bare name, whether the user gave -h a.b or -h a --domainname b.
        fqdn = f"{hostname}.{domainname}" if domainname else hostname
        short = fqdn.split(".", 1)[0]
        text += f"{ip}\t{fqdn} {short}\n" if short != fqdn else f"{ip}\t{fqdn}\n"
    return text


def host_resolv_path() -> str:
    """The host's resolv.conf; systemd-resolved's real one when the stub (127.0.0.53) is in use."""
    try:
        with open(HOST_RESOLV) as f:
            if "127.0.0.53" in f.read() and os.path.exists(SYSTEMD_RESOLV):
                return SYSTEMD_RESOLV
    except OSError:
        pass
    return HOST_RESOLV


def read_host_resolv() -> str:
    try:
        with open(host_resolv_path()) as f:
            return f.read()
    except OSError:
        return ""


def _is_local(ns: str) -> bool:
    return ns.startswith("127.") or ns == "::1"


def nameservers(text: str) -> list[str]:
    return [l.split()[1] for l in text.splitlines()
            if l.startswith("nameserver") and len(l.split()) > 1]


def search_domains(text: str) -> list[str]:
    found: list[str] = []
    for l in text.splitlines():
        if l.split()[:1] in (["search"], ["domain"]):
            found = l.split()[1:]
    return found


def options(text: str) -> list[str]:
    found: list[str] = []
    for l in text.splitlines():
        if l.split()[:1] == ["options"]:
            found += l.split()[1:]
    return found


def filter_local(text: str) -> str:
    """The host's file minus localhost nameservers; Docker's defaults if none is left."""
    lines = [l for l in text.splitlines()
             if not (l.startswith("nameserver") and len(l.split()) > 1 and _is_local(l.split()[1]))]
    out = "\n".join(lines) + ("\n" if lines else "")
    if not nameservers(out):
        out += "".join(f"nameserver {ns}\n" for ns in DEFAULT_DNS)
    return out


def build(servers, search, opts) -> str:
    text = ""
    if search and search != ["."]:
        text += "search " + " ".join(search) + "\n"
    text += "".join(f"nameserver {s}\n" for s in servers)
    if opts:
        text += "options " + " ".join(opts) + "\n"
    return text


def resolv_conf(host_text: str, *, dns=(), dns_search=(), dns_options=(),
                embedded: bool = False, host_mode: bool = False) -> str:
    """A container's resolv.conf from the host's, as Docker's sandbox builds it."""
    if host_mode and not (dns or dns_search or dns_options):
        return host_text
    base = host_text if host_mode else filter_local(host_text)
    if embedded:
        # The embedded DNS answers for the network and forwards the rest upstream.
        opts = list(dns_options) or options(base)
        if "ndots:0" not in opts and not any(o.startswith("ndots:") for o in opts):
            opts.append("ndots:0")
        return build([EMBEDDED_DNS], list(dns_search) or search_domains(base), opts)
    if dns or dns_search or dns_options:
        return build(list(dns) or nameservers(base), list(dns_search) or search_domains(base),
                     list(dns_options) or options(base))
    return base


def upstreams(host_text: str, dns=()) -> list[str]:
    """Where the embedded DNS forwards names it does not own."""
    return list(dns) or [ns for ns in nameservers(host_text) if not _is_local(ns)] or DEFAULT_DNS


def write_files(directory: str, files: dict[str, str]) -> dict[str, str]:
    """Write {"/etc/hosts": text, ...} as directory/hosts, ... ; returns container path → host path."""
    os.makedirs(directory, exist_ok=True)
    out = {}
    for target, text in files.items():
        path = os.path.join(directory, os.path.basename(target))
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        out[target] = path
    return out

