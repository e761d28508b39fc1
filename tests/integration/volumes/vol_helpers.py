"""Helpers shared by the volume tests, in a uniquely named module: `from conftest import`
would pick another directory's conftest in a full-suite run."""
import os
import subprocess
import uuid

from e2e_helpers import HUTCH, ROOT_DIR as ROOT, mounts_under  # noqa: F401 (re-exported)


class Hutch:
    def __init__(self, root: str):
        self.root = root
        self.run_args: list[str] = []   # extra `run`/`create` flags while the runtime needs them

    def __call__(self, *args, input=None, check=True, binary=False):
        env = dict(os.environ, HUTCH_ROOT=self.root)
        p = subprocess.run([HUTCH, *args], input=input, capture_output=True, env=env,
                           timeout=60, text=not binary)
        if check and p.returncode != 0:
            raise AssertionError(f"hutch {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def name(self, prefix="vt") -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"
