"""Where hutch keeps its state: /var/lib/hutch (lasting) and /run/hutch (gone at reboot).

`--root DIR` / HUTCH_ROOT move both: the lasting state to DIR and the runtime state to
DIR/run, so tests can run isolated and in parallel.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_ROOT = "/var/lib/hutch"
DEFAULT_RUN = "/run/hutch"


@dataclass(frozen=True)
class Paths:
    root: str = DEFAULT_ROOT   # images, containers, volumes, networks
    run: str = DEFAULT_RUN     # runtime state, sockets, locks of living things

    @classmethod
    def from_root(cls, root: str | None = None) -> "Paths":
        root = root or os.environ.get("HUTCH_ROOT")
        if not root:
            return cls()
        root = os.path.abspath(root)
        return cls(root=root, run=os.path.join(root, "run"))

    @property
    def images(self) -> str:
        return os.path.join(self.root, "images")

    @property
    def containers(self) -> str:
        return os.path.join(self.root, "containers")

    @property
    def volumes(self) -> str:
        return os.path.join(self.root, "volumes")

    @property
    def networks(self) -> str:
        return os.path.join(self.root, "networks")

    @property
    def runtime_state(self) -> str:
        """The OCI runtime's state root (runc's --root) for the engine's containers."""
        return os.path.join(self.run, "runtime")

    @property
    def cgroup_parent(self) -> str:
        return "hutch"
