"""`hutch import`: a flat root filesystem tar becomes a one-layer image."""
from __future__ import annotations

import json
import os
import platform
import shutil

from hutch.images import reference as refs
from hutch.images.changes import apply_changes
from hutch.images.compression import decompressed
from hutch.images.store import Image, ImageStore, now_rfc3339

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_arch() -> str:
    m = platform.machine()
    return _ARCH.get(m, m)


def empty_container_config() -> dict:
    """The "config" section Docker writes for an image with nothing set."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def import_rootfs(store: ImageStore, stream, *, changes: list[str] = (), message: str = "",
                  source: str = "-", tag: refs.Reference | None = None) -> Image:
    """Unpack the tar (plain or compressed) as one layer and record an image for it."""
    store.sweep_tmp()
    blob_dir = store.new_tmp()
    blob_tmp = os.path.join(blob_dir, "layer.tar")
    try:
        # the uncompressed tar is kept as the layer's blob (for save and push)
        with decompressed(stream) as tar, open(blob_tmp, "wb") as tee:
            diff_id, _ = store.unpack_layer(tar, blob_tmp=blob_tmp, tee=tee)
    finally:
        shutil.rmtree(blob_dir, ignore_errors=True)
    cfg = apply_changes(empty_container_config(), list(changes))
    created = now_rfc3339()
    config = {
        "architecture": host_arch(),
        "config": cfg,
        "created": created,
        "docker_version": "hutch",
        "history": [{"created": created,
                     "comment": message or f"Imported from {source}"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    data = json.dumps(config, separators=(",", ":")).encode()
    tags = [str(tag.tagged_or_latest())] if tag else []
    return store.add_image(data, tags=tags)

