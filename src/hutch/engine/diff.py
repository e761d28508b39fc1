"""`diff`: what a container changed in its root filesystem, as Docker lists it.

The container's writable overlay layer (upper) holds every change: a new or modified entry
is there ("A" when no image layer has the path, else "C"), a deletion is a whiteout (a 0:0
character device: "D"). A directory the image has is listed only when something under it
changed or its own mode or owner did (overlay copies parents up with any child). The
mount points made for /proc, /sys, /dev and the /etc files are not changes, as in Docker,
where they live in a separate init layer.
"""
from __future__ import annotations

import json
import os
import stat

MOUNT_POINTS = ("/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")


def changes(paths, cid: str) -> list[tuple[str, str]]:
    """[(kind, path)] sorted by path; kind is "A", "C" or "D"."""
    from hutch.images.store import ImageStore
    images = ImageStore(paths.images, paths.containers)
    upper = images.snapshot_upper(cid)
    with open(os.path.join(os.path.dirname(upper), "snapshot.json")) as f:
        lowers = [images.layer_path(d) for d in reversed(json.load(f)["layers"])]
    out: list[tuple[str, str]] = []
    _walk(upper, "", lowers, out)
    return sorted(out, key=lambda c: c[1])


def _in_image(lowers: list[str], rel: str) -> os.stat_result | None:
    for layer in lowers:   # top first: the first layer that has it decides
        try:
            st = os.lstat(layer + rel)
        except (FileNotFoundError, NotADirectoryError):
            continue
        return None if _is_whiteout(st) else st
    return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _walk(upper: str, rel_dir: str, lowers: list[str], out: list) -> bool:
    """Append the changes under upper/rel_dir; True if there were any."""
    found = False
    with os.scandir(upper + rel_dir if rel_dir else upper) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}"
        if rel in MOUNT_POINTS:
            continue
        st = entry.stat(follow_symlinks=False)
        if _is_whiteout(st):
            out.append(("D", rel))
            found = True
            continue
        image_st = _in_image(lowers, rel)
        if stat.S_ISDIR(st.st_mode) and image_st is not None and stat.S_ISDIR(image_st.st_mode):
            inner = _walk(upper, rel, lowers, out)
            same = (st.st_mode, st.st_uid, st.st_gid) == \
                (image_st.st_mode, image_st.st_uid, image_st.st_gid)
            if inner or not same:
                out.append(("C", rel))
                found = True
            continue
        out.append(("C" if image_st is not None else "A", rel))
        found = True
        if stat.S_ISDIR(st.st_mode):
            _walk(upper, rel, [], out)   # all new below a new directory
    return found
