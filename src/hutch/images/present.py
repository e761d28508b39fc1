"""Images as Docker shows them: `image inspect` JSON, history entries, filters.

Pure data shaping over the store, shared by the CLI and the Engine API.
"""
from __future__ import annotations

import fnmatch
import time

from hutch.images import reference as refs
from hutch.images.store import Image, ImageStore


def _rfc3339(t: float) -> str:
    ns = int(t * 1e9)
    sec, frac = divmod(ns, 1_000_000_000)
    digits = f"{frac:09d}".rstrip("0")
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def inspect_dict(store: ImageStore, image: Image) -> dict:
    """Docker's `image inspect` object for one image."""
    cfg = image.config
    graph = {}
    if image.layers:
        paths = [store.layer_path(d) for d in reversed(image.layers)]
        graph = {"MergedDir": "", "UpperDir": paths[0], "WorkDir": ""}
        if len(paths) > 1:
            graph["LowerDir"] = ":".join(paths[1:])
    history = cfg.get("history") or []
    comment = history[-1].get("comment", "") if history else ""
    return {
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": comment,
        "Created": cfg.get("created", ""),
        "Container": cfg.get("container", ""),
        "ContainerConfig": cfg.get("container_config") or _empty_config(),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": cfg.get("config") or _empty_config(),
        "Architecture": cfg.get("architecture", ""),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", ""),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Data": graph, "Name": "overlay2"},
        "RootFS": {"Type": "layers", "Layers": list(image.layers)},
        "Metadata": {"LastTagTime": _rfc3339(image.added) if image.added else
                     "0001-01-01T00:00:00Z"},
    }


def _empty_config() -> dict:
    from hutch.images.importer import empty_container_config
    return empty_container_config()


def history(store: ImageStore, image: Image) -> list[dict]:
    """Newest first, as `docker history` lists it: Id ("<missing>" below the top), Created,
    CreatedBy, Size, Comment, Tags, EmptyLayer."""
    entries = image.config.get("history") or [{"created": image.created}]
    layers = list(image.layers)
    out = []
    for h in entries:
        empty = bool(h.get("empty_layer"))
        size = 0
        if not empty and layers:
            diff = layers.pop(0)
            try:
                size = store.layer_info(diff)["size"]
            except OSError:
                size = 0
        out.append({"Id": "<missing>", "Created": h.get("created", ""),
                    "CreatedBy": h.get("created_by", ""), "Size": size,
                    "Comment": h.get("comment", ""), "Tags": None})
    out.reverse()
    if out:
        out[0]["Id"] = image.id
        out[0]["Tags"] = image.repo_tags or None
    return out


class FilterError(ValueError):
    pass


IMAGE_FILTERS = ("dangling", "label", "before", "since", "reference")


def parse_filters(args: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in args:
        key, eq, value = a.partition("=")
        if not eq:
            raise FilterError(f"bad format of filter (expected name=value)")
        key = key.strip().lower()
        if key not in IMAGE_FILTERS:
            raise FilterError(f"invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def filter_images(store: ImageStore, images: list[Image], filters: dict[str, list[str]]) \
        -> list[Image]:
    """Apply `images --filter` (dangling, label, before, since, reference)."""
    out = []
    for key in ("before", "since"):
        for v in filters.get(key, []):
            filters.setdefault(f"_{key}", []).append(store.resolve(v).config.get("created", ""))
    for img in images:
        if "dangling" in filters:
            want = filters["dangling"][-1].lower()
            if want not in ("true", "false", "1", "0"):
                raise FilterError(f"Invalid filter 'dangling={filters['dangling'][-1]}'")
            if (want in ("true", "1")) != (not img.repo_tags):
                continue
        labels = (img.config.get("config") or {}).get("Labels") or {}
        if not all(_label_match(labels, v) for v in filters.get("label", [])):
            continue
        created = img.created
        if any(created >= b for b in filters.get("_before", [])):
            continue
        if any(created <= s for s in filters.get("_since", [])):
            continue
        if "reference" in filters and not any(
                _ref_match(t, pat) for t in img.repo_tags for pat in filters["reference"]):
            continue
        out.append(img)
    return out


def _label_match(labels: dict, spec: str) -> bool:
    k, eq, v = spec.partition("=")
    if k not in labels:
        return False
    return not eq or labels[k] == v


def _ref_match(tag: str, pattern: str) -> bool:
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    if ":" in pattern.rsplit("/", 1)[-1]:
        return fnmatch.fnmatchcase(tag, pattern)
    return fnmatch.fnmatchcase(name, pattern)


def matches_repo(img_tag: str, pattern: str) -> bool:
    """`images REPO[:TAG]`: the positional argument, a name or a glob on the familiar name."""
    if _ref_match(img_tag, pattern):
        return True
    try:
        wanted = refs.parse(pattern)
    except refs.InvalidReference:
        return False
    r = refs.parse(img_tag)
    return r.name == wanted.name and (wanted.tag is None or r.tag == wanted.tag)
