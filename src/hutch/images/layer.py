"""Apply a layer tar into a directory safely, and write a directory tree back out as a tar.

Layer tars come from strangers. Every path is resolved from a directory file descriptor of
the layer root, one component at a time with O_NOFOLLOW, so no entry can create, change or
link anything outside the root: `..` that would climb out is refused, absolute names are
taken relative to the root, and a symlink met on the way (made earlier in this tar) is
resolved *inside* the root, clamped at it, the way securejoin does. The final component is
never followed. Python's tarfile only reads the stream; every file is made here through fds.

Whiteouts become what overlayfs understands: `.wh.NAME` a 0:0 character device NAME,
`.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory.
"""
from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40
_CHUNK = 1 << 20


class LayerError(Exception):
    """A layer that cannot be applied (hostile or broken); str() names the entry."""


class _HashingReader:
    """Reads the tar in large chunks, hashing (and teeing) each chunk whole, and serves
    tarfile's small reads from it: the diff id comes from the one pass, and per-read
    overhead stays off the hash. Also tarfile's random-access reader on a stream that only
    goes forward (tell, forward seek): tarfile's own stream mode copies its whole buffer on
    every small read."""

    def __init__(self, raw, tee=None):
        self.raw = raw
        self.tee = tee
        self.sha = hashlib.sha256()
        self.total = 0      # bytes read from raw (hashed)
        self.count = 0      # bytes handed to the reader (the stream position)
        self._buf = b""
        self._pos = 0

    def _refill(self) -> bool:
        data = self.raw.read(_CHUNK)
        if not data:
            return False
        self.sha.update(data)
        self.total += len(data)
        if self.tee is not None:
            self.tee.write(data)
        self._buf, self._pos = data, 0
        return True

    def read(self, n=-1):
        parts = []
        while n is None or n < 0 or n > 0:
            if self._pos >= len(self._buf) and not self._refill():
                break
            end = len(self._buf) if n is None or n < 0 else self._pos + n
            piece = self._buf[self._pos:end]
            self._pos += len(piece)
            if n is not None and n >= 0:
                n -= len(piece)
            parts.append(piece)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.count += len(out)
        return out

    def drain(self):
        self.count += len(self._buf) - self._pos
        self._pos = len(self._buf)
        while self._refill():
            self.count += len(self._buf)
            self._pos = len(self._buf)

    def tell(self) -> int:
        return self.count

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.count
        elif whence != 0:
            raise OSError(errno.ESPIPE, "cannot seek from the end of a stream")
        if offset < self.count:
            raise OSError(errno.ESPIPE, "cannot seek backwards in a stream")
        while self.count < offset:
            if not self.read(min(_CHUNK, offset - self.count)):
                break
        return self.count


def clean_name(name: str) -> list[str]:
    """Archive name -> path components inside the root; refuses names that climb out."""
    norm = posixpath.normpath(name.lstrip("/")) if name.lstrip("/") else "."
    if norm == ".." or norm.startswith("../"):
        raise LayerError(f"invalid archive path {name!r}: it leaves the layer root")
    if norm == ".":
        return []
    return norm.split("/")


def _reopen(root_fd: int, comps: list[str]) -> int:
    fd = os.dup(root_fd)
    for c in comps:
        try:
            nfd = os.open(c, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = nfd
    return fd


def open_dir(root_fd: int, comps: list[str], create: bool) -> int:
    """Open the directory at comps under root_fd without ever leaving it.

    Missing directories are made (0755) when create is set; symlinks are followed only
    inside the root: an absolute target restarts at the root and `..` stops at it.
    """
    real: list[str] = []
    todo = list(comps)
    fd = os.dup(root_fd)
    links = 0
    try:
        while todo:
            c = todo.pop(0)
            if c in ("", "."):
                continue
            if c == "..":
                if real:
                    real.pop()
                os.close(fd)
                fd = -1
                fd = _reopen(root_fd, real)
                continue
            try:
                nfd = os.open(c, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(c, 0o755, dir_fd=fd)
                os.chmod(c, 0o755, dir_fd=fd)
                nfd = os.open(c, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(c, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise LayerError(f"{'/'.join(real + [c])}: not a directory") from None
                links += 1
                if links > _MAX_LINKS:
                    raise LayerError(f"{'/'.join(real + [c])}: too many levels of symbolic "
                                     "links") from None
                target = os.readlink(c, dir_fd=fd)
                if target.startswith("/"):
                    real = []
                    os.close(fd)
                    fd = -1
                    fd = os.dup(root_fd)
                todo = target.split("/") + todo
                continue
            os.close(fd)
            fd = nfd
            real.append(c)
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


def _remove(name: str, dir_fd: int, st) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    out = {}
    for k, v in member.pax_headers.items():
        if k.startswith(_XATTR_PAX):
            key = k[len(_XATTR_PAX):]
            # overlay's own attributes would let a layer redirect lookups: never taken from a tar
            if key.startswith("trusted.overlay."):
                continue
            out[key] = v.encode("utf-8", "surrogateescape")
    return out


def _set_xattrs(target, attrs: dict[str, bytes], follow: bool = True) -> None:
    for k, v in attrs.items():
        try:
            os.setxattr(target, k, v, follow_symlinks=follow)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise


class _Applier:
    _CACHE_MAX = 256

    def __init__(self, root: str):
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.dir_times: list[tuple[list[str], int]] = []
        self.size = 0
        # Directory fds by the path asked for: entries come grouped by directory, so most
        # lookups are hits. Dropped whenever a directory or symlink is removed, since a
        # cached path may run through either.
        self.dirs: dict[tuple[str, ...], int] = {}

    def close(self):
        self._forget()
        os.close(self.root_fd)

    def _forget(self):
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()

    def parent(self, comps: list[str], create: bool = True) -> int:
        """A cached fd of the directory at comps (owned by the cache: do not close)."""
        key = tuple(comps)
        fd = self.dirs.get(key)
        if fd is None:
            if len(self.dirs) >= self._CACHE_MAX:
                self._forget()
            fd = open_dir(self.root_fd, comps, create)
            self.dirs[key] = fd
        return fd

    def remove(self, name: str, dir_fd: int, st) -> None:
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self._forget_after(dir_fd)
        _remove(name, dir_fd, st)

    def _forget_after(self, keep_fd: int) -> None:
        # keep the fd the caller holds; everything else may now point somewhere stale
        for key, fd in list(self.dirs.items()):
            if fd != keep_fd:
                os.close(fd)
                del self.dirs[key]

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        comps = clean_name(member.name)
        if not comps:
            return  # the root itself: its owner and mode belong to the snapshot, not the tar
        base = comps[-1]
        pfd = self.parent(comps[:-1])
        if base == OPAQUE_MARKER:
            os.setxattr(pfd, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(pfd, base[len(WHITEOUT_PREFIX):], member)
            return
        self._entry(tar, member, pfd, base, comps)

    def _whiteout(self, pfd: int, name: str, member: tarfile.TarInfo) -> None:
        if name in ("", ".", "..") or "/" in name:
            raise LayerError(f"invalid whiteout {member.name!r}")
        self._replacing(pfd, name, lambda: os.mknod(name, stat.S_IFCHR | 0o600,
                                                     os.makedev(0, 0), dir_fd=pfd))

    def _replacing(self, pfd: int, name: str, create):
        """create() a new entry; if the name is taken, remove what is there (never
        following it) and create again. The common case costs no extra stat."""
        try:
            return create()
        except FileExistsError:
            self.remove(name, pfd, os.stat(name, dir_fd=pfd, follow_symlinks=False))
            return create()

    def _entry(self, tar, member, pfd, base, comps) -> None:
        mode = member.mode & 0o7777
        xattrs = _xattrs(member)
        if member.isdir():
            try:
                os.mkdir(base, 0o700, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):  # an existing directory is kept and updated
                    self.remove(base, pfd, st)
                    os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                os.chown(fd, member.uid, member.gid)
                os.chmod(fd, mode)
                _set_xattrs(fd, xattrs)
            finally:
                os.close(fd)
            self.dir_times.append((comps, member.mtime))
            return
        if member.isreg():
            fd = self._replacing(pfd, base, lambda: os.open(
                base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                dir_fd=pfd))
            try:
                src = tar.extractfile(member)
                left = member.size
                while left > 0:
                    chunk = src.read(min(_CHUNK, left))
                    if not chunk:
                        raise LayerError(f"{member.name}: unexpected end of archive")
                    _write_all(fd, chunk)
                    left -= len(chunk)
                self.size += member.size
                os.chown(fd, member.uid, member.gid)
                os.chmod(fd, mode)  # after chown, which clears set-id bits
                _set_xattrs(fd, xattrs)
                os.utime(fd, ns=(_ns(member.mtime),) * 2)
            finally:
                os.close(fd)
            return
        if member.issym():
            self._replacing(pfd, base, lambda: os.symlink(member.linkname, base, dir_fd=pfd))
            os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
            if xattrs:
                _set_xattrs(f"/proc/self/fd/{pfd}/{base}", xattrs, follow=False)
            os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=pfd, follow_symlinks=False)
            return
        if member.islnk():
            self._hardlink(member, pfd, base)
            return
        if member.ischr() or member.isblk() or member.isfifo():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() \
                else stat.S_IFIFO
            dev = os.makedev(member.devmajor, member.devminor)
            self._replacing(pfd, base, lambda: os.mknod(base, kind | 0o600, dev, dir_fd=pfd))
        else:
            raise LayerError(f"{member.name}: unsupported tar entry type {member.type!r}")
        os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, mode, dir_fd=pfd)
        if xattrs:
            _set_xattrs(f"/proc/self/fd/{pfd}/{base}", xattrs, follow=False)
        os.utime(base, ns=(_ns(member.mtime),) * 2, dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, member, pfd, base) -> None:
        target = clean_name(member.linkname)
        if not target:
            raise LayerError(f"{member.name}: invalid hard link target {member.linkname!r}")
        try:
            # its own fd: replacing `base` may empty the directory cache
            tfd = open_dir(self.root_fd, target[:-1], create=False)
        except (OSError, LayerError):
            raise LayerError(f"{member.name}: hard link target {member.linkname!r} "
                             "not found in the layer") from None
        try:
            self._replacing(pfd, base, lambda: os.link(target[-1], base, src_dir_fd=tfd,
                                                      dst_dir_fd=pfd, follow_symlinks=False))
        except FileNotFoundError:
            raise LayerError(f"{member.name}: hard link target {member.linkname!r} "
                             "not found in the layer") from None
        except PermissionError:
            raise LayerError(f"{member.name}: cannot hard link to {member.linkname!r}") from None
        finally:
            os.close(tfd)

    def finish_dir_times(self) -> None:
        # Directory mtimes last: writing their children changed them.
        for comps, mtime in reversed(self.dir_times):
            try:
                pfd = self.parent(comps[:-1], create=False)
                os.utime(comps[-1], ns=(_ns(mtime),) * 2, dir_fd=pfd, follow_symlinks=False)
            except (OSError, LayerError):
                pass


def _ns(mtime) -> int:
    """tar mtimes are seconds, fractional when a PAX header carries them."""
    return int(round(mtime * 10**9))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def apply_tar(stream, dest: str, tee=None) -> tuple[str, int, int]:
    """Unpack an uncompressed tar stream into dest (an existing directory).

    tee: a binary file that gets a copy of every byte of the tar.
    Returns ("sha256:<diff id>", bytes of file content, bytes of the tar). Raises LayerError for a hostile
    or broken archive; the caller removes dest then.
    """
    reader = _HashingReader(stream, tee)
    applier = _Applier(dest)
    try:
        try:
            tar = tarfile.TarFile(fileobj=reader, mode="r", errorlevel=2)
        except tarfile.ReadError as e:
            raise LayerError(f"invalid tar archive: {e}") from None
        try:
            for member in tar:
                applier.apply(tar, member)
        except tarfile.TarError as e:
            raise LayerError(f"invalid tar archive: {e}") from None
        applier.finish_dir_times()
        reader.drain()  # the zero blocks after the last entry count in the diff id too
    finally:
        applier.close()
    return "sha256:" + reader.sha.hexdigest(), applier.size, reader.total


# --- writing a tree out ---

def _xattr_pax(path: str) -> dict[str, str]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for k in names:
        if k.startswith("trusted.overlay."):
            continue
        try:
            v = os.getxattr(path, k, follow_symlinks=False)
        except OSError:
            continue
        out[_XATTR_PAX + k] = v.decode("utf-8", "surrogateescape")
    return out


def write_tree(root: str, out, *, whiteouts: bool = False) -> None:
    """Write the tree under root as a PAX tar to the binary stream out (not closed).

    Walks by directory fds with O_NOFOLLOW, so a running container swapping a directory for
    a symlink cannot make us read the host. With whiteouts=True an overlay upper dir's 0:0
    devices and opaque dirs are written as `.wh.` entries (a layer diff).
    """
    tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    links: dict[tuple[int, int], str] = {}
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        _write_dir(tar, root_fd, "", links, whiteouts)
    finally:
        os.close(root_fd)
    tar.close()


def _write_dir(tar, dfd: int, prefix: str, links, whiteouts: bool) -> None:
    if whiteouts:
        try:
            if os.getxattr(dfd, OPAQUE_XATTR) == b"y" and prefix:
                info = tarfile.TarInfo(prefix + OPAQUE_MARKER)
                tar.addfile(info)
        except OSError:
            pass
    for name in sorted(os.listdir(dfd)):
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        path = prefix + name
        proc = f"/proc/self/fd/{dfd}/{name}"
        if whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tar.addfile(tarfile.TarInfo(prefix + WHITEOUT_PREFIX + name))
            continue
        info = tarfile.TarInfo(path)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime_ns // 10**9
        info.uname = info.gname = ""
        info.pax_headers = _xattr_pax(proc)
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                _write_dir(tar, fd, path + "/", links, whiteouts)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                info.type = tarfile.LNKTYPE
                info.linkname = links[key]
                tar.addfile(info)
                continue
            if st.st_nlink > 1:
                links[key] = path
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            with os.fdopen(fd, "rb") as f:
                info.size = os.fstat(f.fileno()).st_size
                tar.addfile(info, f)
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dfd)
            tar.addfile(info)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        # sockets are not archived (as Docker)
