"""ps(1)'s output narrowed to a container's processes: `hutch top` and `hutch-runtime ps`
(as Docker's daemon and runc run ps on the host and keep the lines of the container's pids)."""
from __future__ import annotations


class PsFailed(Exception):
    """ps exited non-zero (returncode, its stderr) or printed no PID column (returncode 0)."""

    def __init__(self, returncode: int, stderr: str):
        super().__init__(stderr)
        self.returncode, self.stderr = returncode, stderr


def ps_lines(pids, ps_args: list[str]) -> tuple[str, list[str]] | None:
    """ps run with `ps_args` (default -ef): its header line and the lines whose PID column
    is one of `pids`; None when ps printed nothing. OSError when ps can't run."""
    import subprocess
    res = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    if res.returncode != 0:
        raise PsFailed(res.returncode, res.stderr.strip())
    lines = res.stdout.splitlines()
    if not lines:
        return None
    header = lines[0].split()
    if "PID" not in header:
        raise PsFailed(0, "")
    col = header.index("PID")
    wanted = set(pids)
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            rows.append(line)
    return lines[0], rows
