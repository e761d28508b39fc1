"""The bpf() syscall, for the cgroup v2 device controller (BPF_PROG_TYPE_CGROUP_DEVICE).

Only what device filtering needs: load a program, attach/detach it to a cgroup directory fd,
list the programs attached there. `union bpf_attr` is packed by hand at the kernel's offsets
(include/uapi/linux/bpf.h); unused bytes stay zero, as the kernel requires.
"""
from __future__ import annotations

import os
import struct

from hutch._sys import _libc, addressof, buffer, c_int, c_long, c_uint32, get_errno

SYS_bpf = 321  # x86_64

# enum bpf_cmd
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6          # enum bpf_attach_type
BPF_F_ALLOW_MULTI = 1 << 1

# struct bpf_cgroup_dev_ctx: u32 access_type (access << 16 | type), u32 major, u32 minor
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2

_ATTR_SIZE = 128


def _bpf(cmd: int, attr, op: str, path: str | None = None) -> int:
    ret = _libc.syscall(c_long(SYS_bpf), c_int(cmd), attr, c_uint32(_ATTR_SIZE))
    if ret < 0:
        err = get_errno()
        if path is None:
            raise OSError(err, f"{op}: {os.strerror(err)}")
        raise OSError(err, f"{op}: {os.strerror(err)}", path)
    return ret


def prog_load_cgroup_device(insns: bytes, license: str = "Apache") -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd. The verifier's log is
    included in the error when the kernel refuses the program."""
    code = buffer(insns)
    lic = buffer(license.encode() + b"\0")
    log = buffer(65536)
    attr = buffer(_ATTR_SIZE)
    struct.pack_into("=IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
                     addressof(code), addressof(lic), 1, len(log), addressof(log))
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")
    except OSError as e:
        verifier = log.value.decode(errors="replace").strip().splitlines()
        if verifier:
            raise OSError(e.errno, f"{e.strerror}: {verifier[-1]}") from None
        raise


def prog_attach(cgroup_fd: int, prog_fd: int, attach_type: int = BPF_CGROUP_DEVICE,
                flags: int = BPF_F_ALLOW_MULTI) -> None:
    attr = buffer(_ATTR_SIZE)
    struct.pack_into("=IIII", attr, 0, cgroup_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr, "bpf(BPF_PROG_ATTACH)")


def prog_detach(cgroup_fd: int, prog_fd: int, attach_type: int = BPF_CGROUP_DEVICE) -> None:
    attr = buffer(_ATTR_SIZE)
    struct.pack_into("=III", attr, 0, cgroup_fd, prog_fd, attach_type)
    _bpf(BPF_PROG_DETACH, attr, "bpf(BPF_PROG_DETACH)")


def prog_query(cgroup_fd: int, attach_type: int = BPF_CGROUP_DEVICE) -> list[int]:
    """The ids of the programs attached directly to a cgroup for `attach_type`."""
    ids = (c_uint32 * 64)()
    attr = buffer(_ATTR_SIZE)
    # target_fd, attach_type, query_flags, attach_flags, prog_ids (u64), prog_cnt
    struct.pack_into("=IIIIQI", attr, 0, cgroup_fd, attach_type, 0, 0,
                     addressof(ids), len(ids))
    _bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)")
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(ids[:count])


def prog_get_fd_by_id(prog_id: int) -> int:
    attr = buffer(_ATTR_SIZE)
    struct.pack_into("=I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, "bpf(BPF_PROG_GET_FD_BY_ID)")
