"""Image references with Docker's normalisation and error wording.

`busybox` is docker.io/library/busybox:latest; `host:5000/a/b:tag`; `name@sha256:<hex>`.
"""
from __future__ import annotations

from collections import namedtuple

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

# Docker's grammar (distribution/reference). The common forms (busybox, user/app:1.0,
# docker.io) are settled by the plain checks below; the rest by these patterns, compiled
# when first needed: re, with the enum it brings, is ~5 ms of a `hutch run`'s start.
_PATTERNS = {
    "component": r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$",
    "domain": r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
              r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$",
    "ipv6_domain": r"^\[[a-fA-F0-9:]+\](?::[0-9]+)?$",
    "tag": r"^[\w][\w.-]{0,127}$",
    "digest": r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$",
}
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TAG_REST = _WORD | {".", "-"}
_HEX = frozenset("0123456789abcdef")


def _match(kind: str, s: str) -> bool:
    import re
    return re.match(_PATTERNS[kind], s) is not None


def _is_component(c: str) -> bool:
    return bool(c) and set(c) <= _LOWER_ALNUM or _match("component", c)


def _is_tag(t: str) -> bool:
    if t.isascii():   # [\w] is [A-Za-z0-9_] there
        return 0 < len(t) <= 128 and t[0] in _WORD and set(t) <= _TAG_REST
    return _match("tag", t)


def _is_domain(d: str) -> bool:
    return d in (DEFAULT_DOMAIN, "localhost") or _match("domain", d) or _match("ipv6_domain", d)


def _is_hex64(s: str) -> bool:
    return len(s) == 64 and set(s) <= _HEX


class InvalidReference(ValueError):
    """str() is Docker's message, e.g. `invalid reference format`."""


class Reference(namedtuple("Reference", "domain path tag digest", defaults=(None, None))):
    """domain: docker.io, localhost:5000, ...; path: library/busybox; tag and digest or None.
    (A named tuple, not a frozen dataclass: dataclasses' import, with inspect and ast, was
    ~5 ms of each `run` and `create`.)"""

    __slots__ = ()

    @property
    def name(self) -> str:
        """Fully qualified repository: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """What Docker shows: busybox, user/app, localhost:5000/app."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) \
                else self.path
        return self.name

    def with_tag(self, tag: str | None) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def tagged_or_latest(self) -> "Reference":
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, "latest", None)
        return self

    def __str__(self) -> str:  # full form: docker.io/library/busybox:latest
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:  # busybox:latest
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost"
                   and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(ref: str) -> Reference:
    """Parse and normalise as Docker's ParseNormalizedNamed; raises InvalidReference."""
    if not ref:
        raise InvalidReference("invalid reference format")
    if _is_hex64(ref):
        raise InvalidReference(f"invalid repository name ({ref}), cannot specify 64-byte "
                               "hexadecimal strings")
    name, digest = ref, None
    if "@" in ref:
        name, _, digest = ref.partition("@")
        if not _match("digest", digest):
            raise InvalidReference("invalid reference format")
        if digest.startswith("sha256:") and not _is_hex64(digest[7:]):
            raise InvalidReference("invalid checksum digest format")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _is_tag(tag):
            raise InvalidReference("invalid reference format")
    domain, path = _split_domain(name)
    if not _is_domain(domain):
        raise InvalidReference("invalid reference format")
    if path.lower() != path and all(_is_component(c) for c in path.lower().split("/")):
        raise InvalidReference(f"invalid reference format: repository name ({path}) "
                               "must be lowercase")
    if not all(_is_component(c) for c in path.split("/")):
        raise InvalidReference("invalid reference format")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference("repository name must not be more than 255 characters")
    return Reference(domain, path, tag, digest)


def parse_tagged(ref: str) -> Reference:
    """parse() with Docker's default tag `latest` when neither tag nor digest is given."""
    return parse(ref).tagged_or_latest()


def is_digest(s: str) -> bool:
    return s.startswith("sha256:") and _is_hex64(s[7:])
