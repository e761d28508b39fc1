"""Image references with Docker's normalisation and error wording.

`busybox` is docker.io/library/busybox:latest; `host:5000/a/b:tag`; `name@sha256:<hex>`.
"""
from __future__ import annotations

import re
from collections import namedtuple

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$")
_IPV6_DOMAIN = re.compile(r"^\[[a-fA-F0-9:]+\](?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


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
    if _HEX64.match(ref):
        raise InvalidReference(f"invalid repository name ({ref}), cannot specify 64-byte "
                               "hexadecimal strings")
    name, digest = ref, None
    if "@" in ref:
        name, _, digest = ref.partition("@")
        if not _DIGEST.match(digest):
            raise InvalidReference("invalid reference format")
        if digest.startswith("sha256:") and not _HEX64.match(digest[7:]):
            raise InvalidReference("invalid checksum digest format")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidReference("invalid reference format")
    domain, path = _split_domain(name)
    if not (_DOMAIN.match(domain) or _IPV6_DOMAIN.match(domain)):
        raise InvalidReference("invalid reference format")
    if path.lower() != path and all(_COMPONENT.match(c) for c in path.lower().split("/")):
        raise InvalidReference(f"invalid reference format: repository name ({path}) "
                               "must be lowercase")
    if not all(_COMPONENT.match(c) for c in path.split("/")):
        raise InvalidReference("invalid reference format")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidReference("repository name must not be more than 255 characters")
    return Reference(domain, path, tag, digest)


def parse_tagged(ref: str) -> Reference:
    """parse() with Docker's default tag `latest` when neither tag nor digest is given."""
    return parse(ref).tagged_or_latest()


def is_digest(s: str) -> bool:
    return s.startswith("sha256:") and bool(_HEX64.match(s[7:]))
