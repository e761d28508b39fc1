"""Timing machinery: spawn a command, time it, alternate contenders, summarise.

Every contender of a row is timed the same way: fork, optional in-child set-up (only crun
needs one here, see rows.py), exec, wait4. Wall time is measured around fork..wait4 with
perf_counter; CPU time is the child's rusage (user + system, including the descendants it
reaped). Contenders alternate A B C A B C ... so drift on the machine hits all of them alike.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field


class RowSkipped(Exception):
    """The feature a row measures is not there yet (or an anchor cannot run)."""


class RunFailed(Exception):
    """A timed command failed: the row's figures would be meaningless."""


@dataclass
class Sample:
    wall: float
    cpu: float


def run_timed(argv: list[str], *, child_setup=None, env=None, cwd=None,
              stdout_path: str | None = None, stdin_path: str | None = None) -> Sample:
    """Run argv to completion; return wall and CPU seconds. Raises RunFailed on non-zero exit."""
    err = tempfile.TemporaryFile()
    out_fd = os.open(stdout_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    in_fd = os.open(stdin_path or os.devnull, os.O_RDONLY)
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.dup2(in_fd, 0)
            os.dup2(out_fd, 1)
            os.dup2(err.fileno(), 2)
            if cwd:
                os.chdir(cwd)
            if child_setup:
                child_setup()
            os.execvpe(argv[0], argv, env if env is not None else os.environ)
        except BaseException as e:  # noqa: BLE001 - report anything, then leave
            os.write(2, f"bench: cannot start {argv[0]}: {e}\n".encode())
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    os.close(out_fd)
    os.close(in_fd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err.seek(0)
        text = err.read().decode(errors="replace")
        err.close()
        raise RunFailed(f"`{' '.join(argv)}` exited {code}: " + error_line(text))
    err.close()
    return Sample(wall, usage.ru_utime + usage.ru_stime)


def error_line(text: str) -> str:
    """The line that says what went wrong, not the usage block or the "--help" hint."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith(("See '", "Run '", "Usage:"))]
    return lines[-1] if lines else "no output"


def run_quiet(argv: list[str], **kw) -> str:
    """Run a set-up command (not timed); return stdout; raise RunFailed with its error."""
    import subprocess
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RunFailed(f"`{' '.join(argv)}` exited {p.returncode}: " + error_line(p.stderr or p.stdout))
    return p.stdout


def apt_install(*packages: str) -> str:
    """`apt-get install` the anchors' Debian packages (after an `apt-get update` when the
    first try fails: a fresh machine has no package lists); '' or apt's error."""
    import subprocess
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env, timeout=600)
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    return "" if p.returncode == 0 else error_line(p.stderr or p.stdout)


@dataclass
class Contender:
    """One side of a comparison. `command(i)` returns argv for run i; `before(i)` and
    `after(i)` run untimed around it (make a fresh id, delete leftovers)."""

    name: str
    command: object                 # callable(i) -> argv
    anchor: bool = False
    child_setup: object = None
    before: object = None
    after: object = None
    note: str = ""
    missing: str = ""               # set when this contender cannot run here
    group: str = ""                 # ratios only pair contenders of the same group
    samples: list[Sample] = field(default_factory=list)
    error: str = ""

    def summary(self) -> dict:
        d = {"name": self.name, "anchor": self.anchor, "note": self.note,
             "command": " ".join(self.command(0)) if self.command else ""}
        if self.missing:
            d.update(status="missing", reason=self.missing)
            return d
        if self.error:
            d.update(status="failed", reason=self.error)
            return d
        walls = [s.wall * 1000 for s in self.samples]
        cpus = [s.cpu * 1000 for s in self.samples]
        d.update(status="ok", runs=len(walls), median_ms=round(statistics.median(walls), 2),
                 min_ms=round(min(walls), 2), max_ms=round(max(walls), 2),
                 cpu_median_ms=round(statistics.median(cpus), 2))
        return d


def alternate(contenders: list[Contender], runs: int, warmup: int = 1,
              gap: float = 0.0) -> None:
    """Time each runnable contender `runs` times, interleaved and rotated (A B C, B C A,
    C A B, ...) after `warmup` untimed rounds (page cache, first-run costs). Rotating means
    no contender always follows the same one: a run can be helped or hurt by what the one
    before it left in the kernel (a cgroup move within one RCU grace period of the last
    one is fast). `gap` seconds of sleep before each timed run make every run start cold,
    as a user's single command does. A contender that fails stops being timed and carries
    the error; the others go on."""
    live = [c for c in contenders if not c.missing]
    for i in range(-warmup, runs):
        k = (i + warmup) % len(live) if live else 0
        for c in live[k:] + live[:k]:
            if c.error:
                continue
            try:
                if c.before:
                    c.before(i)
                if gap:
                    time.sleep(gap)
                s = run_timed(c.command(i), child_setup=c.child_setup)
                if i >= 0:
                    c.samples.append(s)
            except RunFailed as e:
                c.error = str(e)
            finally:
                if c.after:
                    try:
                        c.after(i)
                    except RunFailed as e:
                        c.error = c.error or f"cleanup: {e}"


def ratios(contenders: list[Contender]) -> dict:
    """Median of each non-anchor over each anchor: "hutch-runtime / runc": 1.4."""
    ok = {c.name: c for c in contenders if c.samples and not c.error}
    out = {}
    for a in (c for c in ok.values() if c.anchor):
        for c in (c for c in ok.values() if not c.anchor and c.group == a.group):
            ma = statistics.median(s.wall for s in a.samples)
            mc = statistics.median(s.wall for s in c.samples)
            out[f"{c.name} / {a.name}"] = round(mc / ma, 3)
    return out
