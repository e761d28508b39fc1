"""Images: references, the content store, safe layer apply, overlay snapshots, registries.

The engine uses ImageStore (see docs/contracts.md); the CLI's image commands live in
hutch.cli.images. Submodules are imported lazily by their users to keep start-up quick.
"""
from hutch.images.reference import InvalidReference
from hutch.images.store import Image, ImageNotFound, ImageStore, StoreError

__all__ = ["Image", "ImageNotFound", "ImageStore", "InvalidReference", "StoreError",
           "export_rootfs"]


def export_rootfs(mounted_path: str, out_stream) -> None:
    """Write a container's merged root filesystem as a flat tar (what `hutch export` sends)."""
    from hutch.images.layer import write_tree
    write_tree(mounted_path, out_stream)
