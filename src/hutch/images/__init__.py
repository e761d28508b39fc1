"""Images: references, the content store, safe layer apply, overlay snapshots, registries.

Public API (the engine's side of docs/contracts.md):
  ImageStore(paths.images, paths.containers)
    .resolve(ref) -> Image            Docker's lookup order: full id, name[:tag|@digest], short id;
                                      raises ImageNotFound ("No such image: REF") or
                                      InvalidReference (Docker's wording, exit 125 at the CLI)
    .get(image_id), .list(), .tag(image_id, Reference), .images_in_use()
    .create_snapshot(cid, image_id); .mount_rootfs(cid) -> merged path; .is_mounted(cid);
    .rootfs_path(cid); .snapshot_upper(cid); .unmount_rootfs(cid); .remove_snapshot(cid)
  Image: .id, .config (OCI/Docker image config; "config" holds Env/Cmd/Entrypoint/...),
         .repo_tags, .repo_digests, .layers (diff ids, bottom first), .created, .size
  export_rootfs(mounted_path, out_stream)   a flat tar of a container's root filesystem
  pull_image(paths, name, out=stderr)       what run/create do for a missing image
Modules: reference (parsing), store, layer (apply_tar, write_tree), importer, changes
(--change), registry (Client, pull, push), archive (save, load), auth (logins), present
(inspect/history/filters). Imported lazily by their users to keep start-up quick, and so
are the names above: importing hutch.images.store (as the monitor host does) runs this
file, and should not bring in reference's dataclass and regular expressions.
"""
from __future__ import annotations


def __getattr__(name):
    if name == "InvalidReference":
        from hutch.images.reference import InvalidReference
        return InvalidReference
    if name in ("Image", "ImageNotFound", "ImageStore", "StoreError"):
        from hutch.images import store
        return getattr(store, name)
    raise AttributeError(name)


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
    from hutch.images.store import ImageStore
    ref = reference.parse(name).tagged_or_latest()
    store = ImageStore(paths.images, paths.containers)
    progress = registry.Progress(out or sys.stderr, quiet=quiet)
    image_id = registry.pull(store, registry.Client(paths, insecure=insecure), ref, progress,
                             platform=platform)
    return store.get(image_id)
