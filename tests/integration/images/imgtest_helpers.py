"""Helpers for the image tests (a unique module name: test dirs are not packages)."""
import os
import stat
import subprocess

from e2e_helpers import HUTCH, ROOT_DIR as ROOT, mounts_under  # noqa: F401 (re-exported)


def hutch_bin():
    return HUTCH


def hutch(root, *args, input=None, check=True):
    p = subprocess.run([hutch_bin(), "--root", root, *args], input=input,
                       capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"hutch {' '.join(args)} -> {p.returncode}\n"
                             f"{p.stdout.decode()}{p.stderr.decode()}")
    return p


def describe_tree(root: str) -> dict:
    """Every entry under root: mode, owner, mtime, link target, content, xattrs, rdev, and
    which entries are hard links of each other."""
    out, inodes = {}, {}
    for dirpath, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            data = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    data = f.read()
            xattrs = {k: os.getxattr(p, k, follow_symlinks=False)
                      for k in os.listxattr(p, follow_symlinks=False)
                      if not k.startswith("trusted.overlay.")}
            group = None
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                group = inodes.setdefault(st.st_ino, rel)
            mtime = None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns // 10**9
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, mtime, link, data, xattrs,
                        st.st_rdev, group)
    return out
