"""`export`: a container's root filesystem as a flat tar."""
from __future__ import annotations

from hutch.engine import states


def export(engine, ref: str, out) -> None:
    from hutch.images import export_rootfs
    from hutch.images.store import ImageStore
    with engine.store.locked(ref) as c:
        images = ImageStore(engine.paths.images, engine.paths.containers)
        mounted = images.is_mounted(c.id)
        path = images.mount_rootfs(c.id)
        try:
            export_rootfs(path, out)
        finally:
            # a stopped container's rootfs is not left mounted
            if not mounted and c.status not in (states.RUNNING, states.PAUSED, states.RESTARTING):
                images.unmount_rootfs(c.id)
