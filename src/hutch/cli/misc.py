"""version and info."""
from __future__ import annotations

import os


def cmd_version(ctx, argv):
    from hutch import __version__
    print(f"Client:\n Version:    {__version__}\n OS/Arch:    linux/{_arch()}\n\n"
          f"Engine:\n Version:    {__version__}\n Root:       {ctx.paths.root}\n")
    return 0


def _arch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def cmd_info(ctx, argv):
    from hutch import __version__
    try:
        from hutch import cgroups
        mode = cgroups.detect_mode()
    except Exception:  # noqa: BLE001 - info must print what it can
        mode = "unknown"
    print(f"Server Version: {__version__}\nStorage Driver: overlay2\nCgroup Driver: cgroupfs\n"
          f"Cgroup Mode: {mode}\nKernel Version: {os.uname().release}\n"
          f"Architecture: {os.uname().machine}\nCPUs: {os.cpu_count()}\n"
          f"Hutch Root Dir: {ctx.paths.root}\n")
    return 0
