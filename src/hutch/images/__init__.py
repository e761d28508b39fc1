"""Images: references, the content store, safe layer apply, overlay snapshots, registries.

The engine uses ImageStore (see docs/contracts.md); the CLI's image commands live in
hutch.cli.images. Submodules are imported lazily by their users to keep start-up quick.
"""
from hutch.images.reference import InvalidReference
from hutch.images.store import Image, ImageNotFound, ImageStore, StoreError

__all__ = ["Image", "ImageNotFound", "ImageStore", "InvalidReference", "StoreError",
           "export_rootfs", "pull_image"]


def export_rootfs(mounted_path: str, out_stream) -> None:
    """Write a container's merged root filesystem as a flat tar (what `hutch export` sends)."""
    from hutch.images.layer import write_tree
    write_tree(mounted_path, out_stream)


def pull_image(paths, name: str, out=None, *, platform: str = "", quiet: bool = False,
               insecure=()) -> Image:
    """Pull NAME[:TAG|@DIGEST] into paths.images with Docker's progress on `out` (run and
    create pass stderr, as Docker does). Raises InvalidReference or
    hutch.images.registry.RegistryError (str: the daemon's message)."""
    import sys
    from hutch.images import reference, registry
    ref = reference.parse(name).tagged_or_latest()
    store = ImageStore(paths.images, paths.containers)
    progress = registry.Progress(out or sys.stderr, quiet=quiet)
    image_id = registry.pull(store, registry.Client(paths, insecure=insecure), ref, progress,
                             platform=platform)
    return store.get(image_id)
