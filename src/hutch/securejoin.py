"""Resolving container paths inside a root the way runc's securejoin does it: one component
at a time on O_PATH fds with O_NOFOLLOW, symlinks re-resolved against the root.

Usable by every layer (like hutch.paths): the runtime mounts onto the fd it gets here
(`mount(src, fd_path(fd))`), never onto a joined path string, which a racing symlink swap
can send onto the host (CVE-2021-30465); the engine reads image files and copies through it.
"""
from __future__ import annotations

import errno
import os
import stat

_MAX_SYMLINKS = 40
_O_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


def open_in_root(root, path: str, *, create: str | None = None, mode: int = 0o755,
                 follow_final: bool = True) -> int:
    """Return an O_PATH fd for `path` resolved inside `root` (a path or a directory fd)
    as if `root` were "/": one component at a time with O_NOFOLLOW, symlinks read and
    re-resolved inside the root (an absolute target restarts at the root, ".." never goes
    above it). Nothing outside `root` can be reached, whatever the tree holds.

    create: None (missing -> FileNotFoundError), "dir" (missing components become
    directories) or "file" (parents become directories, the last an empty file).
    follow_final=False returns the last component itself when it is a symlink.
    The caller closes the fd.
    """
    fd = _openat2_in_root(root, path, follow_final)
    if fd is None and create:
        fd = _create_last_in_root(root, path, create, mode, follow_final)
    if fd is not None:
        return fd
    stack = [_root_fd(root)]   # fds of the directories walked; stack[-1] is where we are
    parts = components(path)[::-1]   # a stack: the next component last
    links = 0
    try:
        while parts:
            comp = parts.pop()
            if comp == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            last = not parts
            fd = _open_or_create(stack[-1], comp, create if last else ("dir" if create else None),
                                 mode)
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (follow_final or not last):
                links += 1
                if links > _MAX_SYMLINKS:
                    os.close(fd)
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink("", dir_fd=fd)   # readlinkat on the O_PATH fd itself
                os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                parts.extend(components(target)[::-1])
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(fd)
        return os.dup(stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


_openat2 = [True]   # False once the kernel says it has no openat2 (before 5.6)


def _openat2_in_root(root, path: str, follow_final: bool) -> int | None:
    """The kernel's own walk under the same rules, in one call (openat2 with
    RESOLVE_IN_ROOT, as runc's securejoin does); None when it fails (a missing component,
    a /proc magic link, a kernel without openat2...): the component walk then resolves the
    path again, creates what is missing and reports what is wrong, as it always has."""
    if not _openat2[0]:
        return None
    from hutch import _sys
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow_final else os.O_NOFOLLOW)
    try:
        rootfd = root if isinstance(root, int) else os.open(
            root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _sys.openat2(rootfd, "/".join(components(path)) or ".", flags,
                            _sys.RESOLVE_IN_ROOT | _sys.RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            _openat2[0] = False
        return None
    finally:
        if rootfd is not root:
            os.close(rootfd)


def _create_last_in_root(root, path: str, create: str, mode: int,
                         follow_final: bool) -> int | None:
    """The common miss (a mount target whose parent exists) in the kernel's scoped walk:
    the parent through openat2, the last component made in it, the whole path through
    openat2 again. None when any step fails (the parent is missing too, or the last is a
    dangling link or ".."): the component walk then does it all, as it always has."""
    parent, _, name = "/".join(components(path)).rpartition("/")
    if name in ("", ".."):
        return None
    dirfd = _openat2_in_root(root, parent, True)
    if dirfd is None:
        return None
    try:
        _make(dirfd, name, create, mode)
    except OSError:
        return None
    finally:
        os.close(dirfd)
    return _openat2_in_root(root, path, follow_final)


def _open_or_create(dirfd: int, name: str, create: str | None, mode: int) -> int:
    for _ in range(8):   # retry when a racing process creates or removes the name
        try:
            return os.open(name, _O_PATH, dir_fd=dirfd)
        except FileNotFoundError:
            if create is None:
                raise
        try:
            _make(dirfd, name, create, mode)
        except FileExistsError:
            pass
    raise OSError(errno.EAGAIN, "path keeps changing while it is resolved", name)


def _make(dirfd: int, name: str, create: str, mode: int) -> None:
    """`name` made in `dirfd`: an empty file ("file") or a directory; never through a link."""
    if create == "file":
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o644, dir_fd=dirfd))
    else:
        os.mkdir(name, mode, dir_fd=dirfd)


def _root_fd(root) -> int:
    """An O_PATH fd of the root (a path, or a dup of the fd given) that the walk may close."""
    if isinstance(root, int):
        return os.dup(root)
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def resolve_in_root(root, path: str) -> str:
    """The container path that `path` names once every symlink is resolved inside `root`
    (missing trailing components kept as they are): "/link/x" -> "/real/x"."""
    names: list[str] = []
    stack = [_root_fd(root)]
    parts = components(path)[::-1]   # a stack: the next component last
    links = 0
    try:
        while parts:
            comp = parts.pop()
            if comp == "..":
                if names:
                    if len(stack) > len(names):   # the last name is a directory we hold
                        os.close(stack.pop())
                    names.pop()
                continue
            if len(stack) <= len(names):   # below a missing component: keep the rest as is
                names.append(comp)
                continue
            try:
                fd = os.open(comp, _O_PATH, dir_fd=stack[-1])
            except (FileNotFoundError, NotADirectoryError):
                names.append(comp)
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    os.close(fd)
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink("", dir_fd=fd)
                os.close(fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    names.clear()
                parts.extend(components(target)[::-1])
                continue
            names.append(comp)
            stack.append(fd)
        return "/" + "/".join(names)
    finally:
        for fd in stack:
            os.close(fd)


def secure_join(rootfs: str, path: str) -> str:
    """Host path of container path `path` under `rootfs`, every symlink resolved inside
    the root (filepath-securejoin's SecureJoin). A string is only as safe as the tree is
    still when it is used: to mount or write, prefer `open_in_root` and /proc/self/fd."""
    return os.path.join(rootfs, resolve_in_root(rootfs, path).lstrip("/"))


def fd_path(fd: int) -> str:
    """A path the kernel resolves to exactly the object `fd` holds (mount targets)."""
    return f"/proc/self/fd/{fd}"


def prepare_mount_target(rootfs, destination: str, source_is_dir: bool = True) -> int:
    """The runtime's helper: an O_PATH fd for a mount target inside `rootfs`, created as a
    directory (or, for a file source, an empty file) when missing, as runc does."""
    return open_in_root(rootfs, destination, create="dir" if source_is_dir else "file")
