"""Removing images as Docker's daemon does (daemon/images/image_delete.go): `rmi` and
`image prune`, shared by the CLI and the Engine API."""
from __future__ import annotations

from datetime import datetime

from hutch.images import reference as refs
from hutch.images.store import ImageNotFound, ImageStore


class ImageConflict(Exception):
    """str() is Docker's `conflict: unable to ...` message (HTTP 409 in the API)."""


def remove_image(store: ImageStore, ref: str, force: bool) -> list[str]:
    """Docker's image delete (daemon/images/image_delete.go): by name, untag, and delete the
    image when no name is left; by id, delete it with all its names. Returns the
    `Untagged:`/`Deleted:` lines. Raises ImageNotFound or ImageConflict."""
    in_use = store.images_in_use()
    with store.locked() as db:
        image_id = store.lookup_id(db, ref)
        if image_id is None:
            raise ImageNotFound(ref)
        image = store.image_in(db, image_id)
        users = in_use.get(image_id, [])
        running = [c for c, r in users if r]

        def names() -> list[str]:
            return [t for t, i in db["tags"].items() if i == image_id] + \
                   [d for d, i in db["digests"].items() if i == image_id]

        try:
            r = refs.parse(ref)
            key = f"{r.name}@{r.digest}" if r.digest else str(r.tagged_or_latest())
            by_name = db["digests" if r.digest else "tags"].get(key) == image_id
        except refs.InvalidReference:
            by_name = False
        lines: list[str] = []
        if by_name:
            if users and not force and _single_reference(names()):
                raise ImageConflict(f'conflict: unable to remove repository reference "{ref}" '
                                f"(must force) - container {users[0][0][:12]} is using its "
                                f"referenced image {image.short_id}")
            del db["digests" if r.digest else "tags"][key]
            lines.append(f"Untagged: {r.tagged_or_latest().familiar()}")
            # the last tag of a repository takes that repository's digest names with it
            if not r.digest and not any(refs.parse(t).name == r.name for t in names()
                                        if "@" not in t):
                for d in [d for d in names() if "@" in d and d.rpartition("@")[0] == r.name]:
                    del db["digests"][d]
                    lines.append(f"Untagged: {refs.parse(d).familiar()}")
            if names() or running:
                return lines  # still named, or left dangling under a running container
        else:
            if running:
                raise ImageConflict(f"conflict: unable to delete {image.short_id} (cannot be forced)"
                                f" - image is being used by running container {running[0][:12]}")
            if not force and not _single_reference(names()):
                raise ImageConflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                                "- image is referenced in multiple repositories")
            if not force and users:
                raise ImageConflict(f"conflict: unable to delete {image.short_id} (must be forced) "
                                f"- image is being used by stopped container {users[0][0][:12]}")
            lines += [f"Untagged: {refs.parse(n).familiar()}" for n in sorted(names())]
        removed = store.delete_image(db, image_id)
        lines.append(f"Deleted: {image_id}")
        lines += [f"Deleted: {c}" for c in reversed(removed)]
    return lines


def _single_reference(names: list[str]) -> bool:
    """Docker's isSingleReference: one repository, at most one tag."""
    repos = {refs.parse(n).name for n in names}
    return len(repos) <= 1 and sum("@" not in n for n in names) <= 1


def prune(store: ImageStore, *, all_images: bool = False, until: float | None = None,
          labels: list[tuple[str, str]] = ()) -> tuple[list[str], int]:
    """Remove dangling images (all unused ones with all_images) that no container uses.

    labels: ("label", "k[=v]") must match, ("label!", "k[=v]") must not. Returns Docker's
    `untagged: ...`/`deleted: ...` lines and the bytes reclaimed.
    """
    in_use = store.images_in_use()
    lines: list[str] = []
    reclaimed = 0
    for img in store.list():
        if img.id in in_use or (img.repo_tags and not all_images):
            continue
        if until is not None and img.created and created_unix(img.created) >= until:
            continue
        img_labels = (img.config.get("config") or {}).get("Labels") or {}
        if not all((k == "label") == _label_ok(img_labels, v) for k, v in labels):
            continue
        try:
            out = remove_image(store, img.id, force=True)
        except (ImageNotFound, ImageConflict):
            continue  # removed or taken into use meanwhile: skipped, as Docker does
        reclaimed += img.size
        lines += [line[0].lower() + line[1:] for line in out]
    return lines, reclaimed


def _label_ok(labels: dict, spec: str) -> bool:
    k, eq, v = spec.partition("=")
    return k in labels and (not eq or labels[k] == v)


def created_unix(created: str) -> float:
    """An image config's RFC 3339 `created` (nanoseconds allowed) as Unix seconds."""
    s = created.strip().replace("z", "Z")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, sep, rest = s.partition(".")
    if sep:
        digits = "".join(c for c in rest if c.isdigit())
        s = main + "." + digits[:6] + rest[len(digits):]
    return datetime.fromisoformat(s).timestamp()
