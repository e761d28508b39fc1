"""The rows of issue 9. Each row function takes the run's Context and returns a dict; a row
whose feature is not in the product yet raises RowSkipped with the reason, and an anchor
that cannot run here is reported as "missing" rather than failing the row."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tarfile
import tempfile
import time
import urllib.request

from bench import docker
from bench.docker import DOCKER
from bench.harness import (Contender, RowSkipped, RunFailed, alternate, apt_install, error_line,
                           ratios, run_quiet, run_timed)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
HUTCH = os.path.join(VENV_BIN, "hutch")
HUTCH_RUNTIME = os.path.join(VENV_BIN, "hutch-runtime")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


class Context:
    def __init__(self, runs: int, work: str, log_mib: int, scale: int = 200, density: int = 50):
        self.runs = runs
        self.work = work           # scratch dir, removed at the end
        self.log_mib = log_mib
        self.scale = scale         # row 5's containers
        self.density = density     # row 4's containers


# -- anchors that may not be here -------------------------------------------------------------
_docker_state: dict = {}


def docker_missing() -> str:
    """'' when a Docker daemon answers (the host's, or a private one bench.docker starts) and
    has busybox (imported from the host's static busybox when it lacks it: no registry
    access is assumed), else why not."""
    if "reason" not in _docker_state:
        _docker_state["reason"] = docker.unavailable() or _docker_busybox()
    return _docker_state["reason"]


def _docker_busybox() -> str:
    if subprocess.run([DOCKER, "image", "inspect", "busybox"], capture_output=True).returncode:
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([DOCKER, "import", "--change", 'CMD ["sh"]', _busybox_tar(d),
                                "busybox:latest"], capture_output=True, text=True)
            if p.returncode != 0:
                return "docker cannot import busybox: " + error_line(p.stderr)
    return ""


def _busybox_tar(d: str) -> str:
    """A busybox root filesystem tar (the host's static busybox and its applets) in `d`."""
    root = os.path.join(d, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "etc"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("/bin/busybox", os.path.join(root, "bin", applet))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    tar = os.path.join(d, "busybox.tar")
    with tarfile.open(tar, "w") as t:
        t.add(root, arcname=".")
    return tar


# Podman as an anchor. Its default runtime (crun 1.8) refuses this hybrid cgroup host, so it
# runs with runc; as root it asks for RLIMIT_NOFILE 1048576 and a large RLIMIT_NPROC, above
# this host's hard limits (nofile 20000, no CAP_SYS_RESOURCE), so the bench gives it limits
# the host allows. Its busybox is the same static busybox, imported as localhost/busybox.
PODMAN = ["podman", "--runtime", "runc"]
PODMAN_RUN = ["--ulimit", "nofile=1024:20000", "--ulimit", "nproc=4096:4096"]
PODMAN_IMAGE = "localhost/busybox:latest"
_podman_state: dict = {}


def podman_missing() -> str:
    """'' when podman can run a busybox container here (installing podman and importing the
    image the first time), else why not."""
    if "reason" not in _podman_state:
        _podman_state["reason"] = _prepare_podman()
    return _podman_state["reason"]


def _prepare_podman() -> str:
    if not shutil.which("podman"):
        err = apt_install("podman")
        if err or not shutil.which("podman"):
            return "podman is not installed and `apt-get install podman` failed: " + err
    if subprocess.run(["podman", "image", "exists", PODMAN_IMAGE]).returncode != 0:
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run(["podman", "import", "--change", 'CMD ["sh"]', _busybox_tar(d),
                                PODMAN_IMAGE], capture_output=True, text=True)
            if p.returncode != 0:
                return "podman cannot import busybox: " + error_line(p.stderr)
    p = subprocess.run(PODMAN + ["run", "--rm", *PODMAN_RUN, PODMAN_IMAGE, "true"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return "podman cannot run a container here: " + error_line(p.stderr)
    return ""


def _podman_rm(names: list[str]) -> None:
    if names:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True, timeout=600)


def _hutch_works(argv: list[str], what: str) -> None:
    """Skip the row with hutch's own message when the command is not there yet."""
    p = subprocess.run([HUTCH] + argv, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RowSkipped(f"`hutch {' '.join(argv)}` does not work yet ({what}): "
                         + error_line(p.stderr or p.stdout))


def _hutch(*argv, check=True) -> str:
    p = subprocess.run([HUTCH, *argv], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise RunFailed(f"`hutch {' '.join(argv)}` exited {p.returncode}: "
                        + error_line(p.stderr or p.stdout))
    return p.stdout


_LEAKED: list[str] = []


def take_leaks() -> list[str]:
    """Containers the rows could not remove since the last call (reported with the row)."""
    out = list(_LEAKED)
    _LEAKED.clear()
    return out


def _rm_containers(names: list[str]) -> list[str]:
    """`hutch rm -f` the bench's containers; returns (and records) what could not be removed."""
    left = []
    for i in range(0, len(names), 20):
        batch = names[i:i + 20]
        try:
            subprocess.run([HUTCH, "rm", "-f", *batch], capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            pass
    for name in names:   # what a batch missed (or a hung rm left), one by one
        try:
            p = subprocess.run([HUTCH, "inspect", "--format", "{{.Id}}", name],
                               capture_output=True, timeout=60)
            if p.returncode == 0:
                subprocess.run([HUTCH, "rm", "-f", name], capture_output=True, timeout=60)
                p = subprocess.run([HUTCH, "inspect", "--format", "{{.Id}}", name],
                                   capture_output=True, timeout=60)
                if p.returncode == 0:
                    left.append(name)
        except subprocess.TimeoutExpired:
            left.append(name)
    _LEAKED.extend(left)
    return left


def _result(row_id, title, goal, contenders, **extra) -> dict:
    summaries = [c.summary() for c in contenders]
    failed = [s for s in summaries if s["status"] == "failed"]
    status = "failed" if failed and not any(s["status"] == "ok" for s in summaries) else "ok"
    if failed and status == "ok":
        status = "partial"
    return {"id": row_id, "title": title, "goal": goal, "status": status,
            "contenders": summaries, "ratios": ratios(contenders), **extra}


# -- row 1: runtime start ---------------------------------------------------------------------
def make_bundle(path: str, cgroups_path: str) -> str:
    """A busybox `true` bundle with runc's default spec (the anchor's own defaults)."""
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in ("sh", "true"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    run_quiet(["runc", "spec", "-b", path])
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    cfg["linux"]["cgroupsPath"] = cgroups_path
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    return path


def crun_hybrid_setup():
    """crun 1.8 refuses this hybrid host ("cgroups in hybrid mode not supported, drop all
    controllers from cgroupv2": hugetlb sits in the cgroup2 mount). In crun's child only, a
    private mount namespace hides that mount under an empty tmpfs, so crun runs on the v1
    controllers as runc and hutch do. Costs about 0.1 ms, inside crun's timed window."""
    from hutch import _sys
    _sys.unshare(_sys.CLONE_NEWNS)
    _sys.mount(None, "/", None, _sys.MS_REC | _sys.MS_PRIVATE)
    _sys.mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", 0)


def _needs_crun_workaround() -> bool:
    try:
        with open("/sys/fs/cgroup/unified/cgroup.controllers") as f:
            return bool(f.read().strip())
    except OSError:
        return False


def _cgroup_leftovers(name: str) -> list[str]:
    base = "/sys/fs/cgroup"
    found = []
    for ctrl in os.listdir(base):
        p = os.path.join(base, ctrl, name)
        if os.path.isdir(p):
            found.append(p)
    return found


def _state_left_behind(name: str, root: str):
    def after(i):
        if os.listdir(root):
            raise RunFailed(f"{name} left state behind in {root}: {os.listdir(root)}")
    return after


def row_runtime_start(ctx: Context) -> dict:
    title = "Runtime start: `run` of a busybox `true` bundle"
    if not os.path.exists(HUTCH_RUNTIME):
        raise RowSkipped("hutch-runtime is not installed (make setup)")
    cg = f"hutch-bench-rt-{os.getpid()}"
    bundle = make_bundle(os.path.join(ctx.work, "bundle"), "/" + cg)
    runs = max(ctx.runs, 40)   # (its medians moved 0.99-1.12x runc between runs of 20)
    # Back to back (rotated order), then each run 100 ms after the last: the first cgroup
    # move after a quiet spell waits one RCU grace period (10-16 ms here) that a move soon
    # after another one skips, so the two passes show both a warm and a user's cold start.
    contenders = _runtime_contenders(ctx, bundle, "")
    alternate(contenders, runs)
    spaced = _runtime_contenders(ctx, bundle, "100 ms apart")
    alternate(spaced, runs, gap=0.1)
    leftovers = _cgroup_leftovers(cg)
    for p in leftovers:
        try:
            os.rmdir(p)
        except OSError:
            pass
    return _result(1, title, "hutch-runtime <= runc", contenders + spaced,
                   leaks=leftovers)


def _runtime_contenders(ctx: Context, bundle: str, group: str) -> list[Contender]:
    contenders = []
    for name, binary, anchor in (("hutch-runtime", HUTCH_RUNTIME, False), ("runc", "runc", True),
                                 ("crun", "crun", True)):
        tag = f"{name}-{group.split()[0]}" if group else name
        root = os.path.join(ctx.work, f"state-{tag}")
        os.makedirs(root)
        c = Contender(f"{name} ({group})" if group else name, None, anchor=anchor, group=group)
        if not shutil.which(binary):
            c.missing = f"{binary} is not installed"
        c.command = (lambda i, b=binary, r=root, t=tag:
                     [b, "--root", r, "run", "--bundle", bundle, f"bench-{t}-{os.getpid()}-{i}"])
        c.after = _state_left_behind(name, root)
        if name == "crun" and _needs_crun_workaround():
            import hutch._sys  # noqa: F401 - loaded here, not in crun's timed child
            c.child_setup = crun_hybrid_setup
            c.note = "run in a private mount ns hiding the hybrid cgroup2 mount (crun refuses it)"
        contenders.append(c)
    return contenders


# -- row 8: CLI start-up ----------------------------------------------------------------------
def row_cli_startup(ctx: Context) -> dict:
    title = "CLI start-up: `hutch version`"
    contenders = [Contender("hutch version", lambda i: [HUTCH, "version"])]
    docker_cli = Contender("docker --version", lambda i: [DOCKER, "--version"], anchor=True,
                           note="docker.io's CLI client start-up (no daemon needed)")
    if not os.access(DOCKER, os.X_OK):
        docker_cli.missing = "docker CLI is not installed"
    runc = Contender("runc --version", lambda i: ["runc", "--version"], anchor=True,
                     note="a Go binary's start-up")
    contenders += [docker_cli, runc]
    alternate(contenders, max(ctx.runs, 20))
    out = _result(8, title, "start-up well under the engine's 100 ms budget", contenders)
    out["ps100"] = _ps_with_100(ctx)
    return out


def _ps_with_100(ctx: Context) -> dict:
    """`hutch ps -a` with 100 containers created (the second half of row 8)."""
    try:
        _hutch_works(["create", "--name", f"bench-ps-probe-{os.getpid()}", "busybox", "true"],
                     "create")
    except RowSkipped as e:
        return {"status": "skipped", "reason": str(e)}
    names = [f"bench-ps-probe-{os.getpid()}"]
    try:
        for k in range(99):
            name = f"bench-ps-{os.getpid()}-{k}"
            _hutch("create", "--name", name, "busybox", "true")
            names.append(name)
        pm, dm = podman_missing(), docker_missing()
        for name in names:
            if not pm:
                run_quiet(PODMAN + ["create", "--name", name, *PODMAN_RUN, PODMAN_IMAGE, "true"])
            if not dm:
                run_quiet([DOCKER, "create", "--name", name, "busybox", "true"])
        found = [
            Contender("hutch ps -a (100 containers)", lambda i: [HUTCH, "ps", "-a"]),
            Contender("docker ps -a (100 containers)", lambda i: [DOCKER, "ps", "-a"],
                      anchor=True, missing=dm),
            Contender("podman ps -a (100 containers)", lambda i: ["podman", "ps", "-a"],
                      anchor=True, missing=pm)]
        alternate(found, ctx.runs)
        return {"status": "ok", "contenders": [c.summary() for c in found],
                "ratios": ratios(found)}
    except RunFailed as e:
        return {"status": "failed", "reason": str(e)}
    finally:
        _rm_containers(names)
        if not podman_missing():
            _podman_rm(names)
        if not docker_missing():
            _docker_rm(names)


# -- row 2: engine start ----------------------------------------------------------------------
def row_engine_start(ctx: Context) -> dict:
    title = "Engine start: `run --rm busybox true`"
    _hutch_works(["run", "--rm", "busybox", "true"], "run")
    dm, pm = docker_missing(), podman_missing()
    contenders = [
        Contender("hutch run --rm", lambda i: [HUTCH, "run", "--rm", "busybox", "true"],
                  group="bridge"),
        Contender("hutch run --rm --network none",
                  lambda i: [HUTCH, "run", "--rm", "--network", "none", "busybox", "true"],
                  group="none"),
        Contender("docker run --rm", lambda i: [DOCKER, "run", "--rm", "busybox", "true"],
                  anchor=True, missing=dm, group="bridge"),
        Contender("docker run --rm --network none",
                  lambda i: [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"],
                  anchor=True, missing=dm, group="none"),
        Contender("podman run --rm",
                  lambda i: PODMAN + ["run", "--rm", *PODMAN_RUN, PODMAN_IMAGE, "true"],
                  anchor=True, missing=pm, group="bridge",
                  note="podman --runtime runc with host-allowed ulimits (see PODMAN_RUN)"),
        Contender("podman run --rm --network none",
                  lambda i: PODMAN + ["run", "--rm", "--network", "none", *PODMAN_RUN,
                                      PODMAN_IMAGE, "true"],
                  anchor=True, missing=pm, group="none"),
    ]
    alternate(contenders, ctx.runs)
    return _result(2, title, "< 100 ms", contenders)


# -- row 3: exec ------------------------------------------------------------------------------
def row_exec(ctx: Context) -> dict:
    title = "Exec: `exec <running container> true`"
    name = f"bench-exec-{os.getpid()}"
    _hutch_works(["run", "-d", "--name", name, "busybox", "sleep", "3600"], "run -d")
    pm = podman_missing()
    try:
        _hutch_works(["exec", name, "true"], "exec")
        if not pm:
            run_quiet(PODMAN + ["run", "-d", "--name", name, *PODMAN_RUN, PODMAN_IMAGE,
                                "sleep", "3600"])
        if not docker_missing():
            run_quiet([DOCKER, "run", "-d", "--name", name, "busybox", "sleep", "3600"])
        contenders = [
            Contender("hutch exec", lambda i: [HUTCH, "exec", name, "true"]),
            Contender("docker exec", lambda i: [DOCKER, "exec", name, "true"],
                      anchor=True, missing=docker_missing()),
            Contender("podman exec", lambda i: PODMAN + ["exec", name, "true"],
                      anchor=True, missing=pm),
        ]
        alternate(contenders, ctx.runs)
        return _result(3, title, "< 50 ms", contenders)
    finally:
        _rm_containers([name])
        if not pm:
            _podman_rm([name])
        if not docker_missing():
            _docker_rm([name])


# -- row 5: scale -----------------------------------------------------------------------------
def row_scale(ctx: Context, window: int = 20) -> dict:
    """hutch, then Docker (same count, each with only its own containers present): the
    median of the last `window` starts over the first `window`'s."""
    count = ctx.scale
    title = f"Scale: {count} containers started one after another"
    probe = f"bench-scale-probe-{os.getpid()}"
    _hutch_works(["run", "-d", "--name", probe, "busybox", "sleep", "3600"], "run -d")
    hutch = _scale_series(lambda name: [HUTCH, "run", "-d", "--name", name, "busybox",
                                        "sleep", "3600"], _rm_containers, [probe], count, window)
    if "reason" in hutch:
        return {"id": 5, "title": title, "status": "failed", "reason": hutch["reason"]}
    metrics = {f"first {window} median_ms": hutch["first"], f"last {window} median_ms": hutch["last"],
               "min_ms": hutch["min"], "max_ms": hutch["max"]}
    ratios_ = {f"last {window} / first {window}": hutch["ratio"]}
    dm = docker_missing()
    if dm:
        metrics["docker (anchor)"] = "missing: " + dm
    else:
        probe_d = f"bench-scale-docker-probe-{os.getpid()}"
        run_quiet([DOCKER, "run", "-d", "--name", probe_d, "busybox", "sleep", "3600"])
        d = _scale_series(lambda name: [DOCKER, "run", "-d", "--name", name, "busybox",
                                        "sleep", "3600"], _docker_rm, [probe_d], count, window)
        if "reason" in d:
            metrics["docker (anchor)"] = "failed: " + d["reason"]
        else:
            metrics[f"docker first {window} median_ms (anchor)"] = d["first"]
            metrics[f"docker last {window} median_ms (anchor)"] = d["last"]
            ratios_[f"docker last {window} / first {window} (anchor)"] = d["ratio"]
            ratios_["hutch's growth / docker's growth"] = round(hutch["ratio"] / d["ratio"], 3)
    return {"id": 5, "title": title, "goal": "flat: last 20 / first 20 ~ 1.0", "status": "ok",
            "metrics": metrics, "ratios": ratios_}


def _scale_series(argv, rm, names: list[str], count: int, window: int) -> dict:
    """Start `count` containers one after another (argv(name)), timing each; remove them."""
    times = []
    try:
        for k in range(count):
            name = f"bench-scale-{os.getpid()}-{k}"
            names.append(name)
            times.append(run_timed(argv(name)).wall * 1000)
    except RunFailed as e:
        return {"reason": f"after {len(times)}: {e}"}
    finally:
        rm(names)
    first, last = statistics.median(times[:window]), statistics.median(times[-window:])
    return {"first": round(first, 2), "last": round(last, 2), "ratio": round(last / first, 3),
            "min": round(min(times), 2), "max": round(max(times), 2)}


def _docker_rm(names: list[str]) -> None:
    subprocess.run([DOCKER, "rm", "-f", *names], capture_output=True, timeout=600)


# -- row 6: logs ------------------------------------------------------------------------------
LINE = 1024  # bytes per numbered log line


def _producer_script(lines: int) -> str:
    return ('awk \'BEGIN{p=sprintf("%' + str(LINE - 9) + 's",""); '
            'for(i=1;i<=' + str(lines) + ';i++) printf "%08d%s\\n", i, p}\'')


def _check_lines(path: str, lines: int) -> str:
    """'' if `path` holds exactly lines 1..N as produced, else what is wrong."""
    pad = " " * (LINE - 9)
    with open(path, "rb") as f:
        for i in range(1, lines + 1):
            got = f.readline()
            if got != f"{i:08d}{pad}\n".encode():
                return f"line {i}: expected #{i}, got {got[:12]!r}"
        rest = f.read(100)
    return f"unexpected trailing data {rest[:20]!r}" if rest else ""


def row_logs(ctx: Context) -> dict:
    title = f"Logs: a container writes {ctx.log_mib} MiB of numbered lines to stdout"
    name = f"bench-logs-{os.getpid()}"
    _hutch_works(["run", "--rm", "busybox", "true"], "run")
    _hutch_works(["logs", "--help"], "logs")
    lines = ctx.log_mib * 1024 * 1024 // LINE
    total = lines * LINE
    script = _producer_script(lines)
    out = os.path.join(ctx.work, "logs.out")
    try:
        # each pass starts with no dirty pages of the one before: otherwise the kernel's
        # write-back of the previous GiB competes with the pass being timed
        os.sync()
        raw = run_timed([BUSYBOX, "sh", "-c", script], stdout_path=out)
        os.unlink(out)
        os.sync()
        try:
            into = run_timed([HUTCH, "run", "-d", "--name", name, "busybox", "sh", "-c", script])
            t0 = time.perf_counter()
            _hutch("wait", name)
            into_s = into.wall + (time.perf_counter() - t0)
            os.sync()
            through = run_timed([HUTCH, "logs", name], stdout_path=out)
        except RunFailed as e:
            return {"id": 6, "title": title, "status": "failed", "reason": str(e)}
        lost = _check_lines(out, lines)
    finally:
        _rm_containers([name])
        if os.path.exists(out):
            os.unlink(out)
    mbps = lambda s: round(total / s / 1e6, 1)  # noqa: E731
    return {"id": 6, "title": title, "goal": ">= 200 MB/s, nothing lost",
            "status": "failed" if lost else "ok", "reason": lost,
            "metrics": {"bytes": total, "lines": lines,
                        "producer alone MB/s (anchor)": mbps(raw.wall),
                        "into the log MB/s": mbps(into_s), "through `logs` MB/s": mbps(through.wall),
                        "lines lost": "none" if not lost else lost},
            "ratios": {"into the log / producer alone": round(raw.wall / into_s, 3)}}


# -- row 4: density ---------------------------------------------------------------------------
def _host_pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _in_host_pidns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def _of_root(cmdline: bytes) -> bool:
    """A hutch process of the bench's state root (the default one): one of its arguments is
    the root, its run dir or a path under them (the monitor host, a network's DNS server)."""
    from hutch.paths import DEFAULT_ROOT, DEFAULT_RUN
    dirs = (DEFAULT_ROOT.encode(), DEFAULT_RUN.encode())
    return b"hutch" in cmdline and any(
        arg == d or arg.startswith(d + b"/") for arg in cmdline.split(b"\0") for d in dirs)


def _kept_processes(names: list[str]) -> tuple[list[int], dict[int, str], int]:
    """Every host process hutch keeps while `names` run, whenever it was started: (the
    monitors, i.e. the host parents of each container's init, and their other children in
    the host's pid namespace; the root's shared processes, e.g. the monitor host or a
    network's DNS server, with their command names; how many hutch monitors of other
    containers, of this root or others, were left out). The containers' own processes are not counted."""
    monitors = set()
    for name in names:
        pid = int(_hutch("inspect", "--format", "{{.State.Pid}}", name).strip() or 0)
        if pid <= 0:
            raise RunFailed(f"container {name} is not running")
        parent = _ppid(pid)
        if parent <= 1 or not _in_host_pidns(parent):
            raise RunFailed(f"container {name}: its init {pid} has no monitor parent ({parent})")
        monitors.add(parent)
    procs = {}                          # host pid namespace: pid -> (parent, cmdline)
    in_containers = set()               # parents of a process in another pid namespace
    for pid in _host_pids() - {os.getpid()}:
        try:
            parent = _ppid(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if _in_host_pidns(pid):
            procs[pid] = (parent, cmdline)
        else:
            in_containers.add(parent)
    shared, others = {}, 0
    for pid, (parent, cmdline) in procs.items():
        if pid in monitors:
            continue
        if parent in monitors:
            monitors.add(pid)           # a helper of the monitor
        elif pid in in_containers:
            others += b"hutch" in cmdline   # a monitor of a container not the row's
        elif _of_root(cmdline):
            shared[pid] = _command_name(cmdline)
    return sorted(monitors), shared, others


def _command_name(cmdline: bytes) -> str:
    """What a shared process is: hutch-monitor-host, hutch.network.dns, ..."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    named = [a for a in args if a.startswith("hutch")]
    return named[0] if named else os.path.basename(args[0]) if args else "?"


def row_density(ctx: Context) -> dict:
    count = ctx.density
    title = f"Density: memory per idle container ({count} containers)"
    probe = f"bench-dens-probe-{os.getpid()}"
    _hutch_works(["run", "-d", "--name", probe, "busybox", "sleep", "3600"], "run -d")
    _rm_containers([probe])
    names = []
    try:
        for k in range(count):
            name = f"bench-dens-{os.getpid()}-{k}"
            names.append(name)
            _hutch("run", "-d", "--name", name, "busybox", "sleep", "3600")
        time.sleep(1.0)   # let start-up transients exit
        # what hutch keeps per container: its monitor, and its share of the root's shared
        # processes (started now or before); the container's own processes are not counted
        # (Docker's figure counts the shim)
        monitors, shared, others = _kept_processes(names)
        total = sum(_pss_kib(p) for p in monitors + list(shared))
    except RunFailed as e:
        return {"id": 4, "title": title, "status": "failed", "reason": str(e)}
    finally:
        _rm_containers(names)
    metrics = {"hutch KiB per container (PSS)": round(total / count, 1),
               "host processes kept": f"{len(monitors)} monitors + {len(shared)} shared"
                                      + "".join(f", {n} ({p})" for p, n in sorted(shared.items()))
                                      + (f"; {others} monitors of other containers (any root) not "
                                         "counted" if others else "")}
    ratios_ = {}
    for anchor in ("containerd-shim", "conmon"):
        kib = _anchor_pss(anchor, count)
        if isinstance(kib, float):
            metrics[f"{anchor} KiB per container (PSS, anchor)"] = kib
            ratios_[f"hutch / {anchor}"] = round(total / count / kib, 3)
        else:
            metrics[f"{anchor} KiB per container"] = kib
    return {"id": 4, "title": title, "goal": "< 1 MiB per idle container", "status": "ok",
            "metrics": metrics, "ratios": ratios_}


def _anchor_pss(anchor: str, count: int):
    """PSS per container of the anchor's per-container process (Docker's containerd shim,
    podman's conmon) over `count` idle containers, or why it was not measured."""
    if anchor == "conmon":
        why, run, rm = podman_missing(), PODMAN + ["run", "-d", *PODMAN_RUN], _podman_rm
        image = PODMAN_IMAGE
    else:
        why, run, image = docker_missing(), [DOCKER, "run", "-d"], "busybox"
        rm = _docker_rm
    if why:
        return "missing: " + why
    names = [f"bench-dens-{anchor}-{os.getpid()}-{k}" for k in range(count)]
    before = _host_pids()
    try:
        for name in names:
            run_quiet(run + ["--name", name, image, "sleep", "3600"])
        time.sleep(1.0)
        kept = []
        for pid in _host_pids() - before:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip().startswith(anchor[:15]):   # comm is cut at 15
                        kept.append(pid)
            except OSError:
                pass
        if len(kept) != count:
            return f"failed: found {len(kept)} {anchor} processes for {count} containers"
        return round(sum(_pss_kib(p) for p in kept) / count, 1)
    except RunFailed as e:
        return f"failed: {e}"
    finally:
        rm(names)


# -- row 7: pull + unpack ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _blob(layout: str, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def _layer_from(tree_root: str, arc_prefix: str, sources: list[str]) -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for src in sources:
            t.add(os.path.join(tree_root, src), arcname=os.path.join(arc_prefix, src))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, 6, mtime=0)


def build_oci_layout(layout: str) -> None:
    """A two-layer image (busybox, then Python's stdlib: many small files) as an OCI layout."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    stage = os.path.join(layout, "..", "stage")
    os.makedirs(os.path.join(stage, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(stage, "bin", "busybox"))
    for applet in ("sh", "ls", "true", "cat"):
        os.symlink("busybox", os.path.join(stage, "bin", applet))
    layers = [_layer_from(stage, "", ["bin"]),
              _layer_from("/usr/lib", "usr/lib", ["python3.11"])]
    descs, diff_ids = [], []
    for raw, gz in layers:
        d, n = _blob(layout, gz)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cd, cn = _blob(layout, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = _blob(layout, json.dumps(manifest).encode())
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in a scratch dir."""

    def __init__(self, work: str):
        self.dir = os.path.join(work, "registry")
        os.makedirs(self.dir)
        self.port = _free_port()
        self.proc = None

    def __enter__(self):
        binary = shutil.which("docker-registry")
        if not binary:
            raise RowSkipped("docker-registry is not installed")
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\nhttp:\n  addr: 127.0.0.1:{self.port}\n")
        self.proc = subprocess.Popen([binary, "serve", cfg], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.__exit__()
                    raise RowSkipped("docker-registry did not start")
                time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def row_pull(ctx: Context) -> dict:
    title = "Pull + unpack from a local registry (busybox + Python stdlib layers)"
    for tool in ("skopeo", "umoci"):
        if not shutil.which(tool):
            raise RowSkipped(f"{tool} is not installed")
    layout = os.path.join(ctx.work, "layout")
    build_oci_layout(layout)
    with Registry(ctx.work) as reg:
        ref = f"127.0.0.1:{reg.port}/bench/pyimg:latest"
        run_quiet(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:latest",
                   f"docker://{ref}"])
        probe_root = os.path.join(ctx.work, "hutch-probe")
        try:
            _hutch_works(["--root", probe_root, "pull", ref], "pull from a local registry")
        finally:
            _remove_hutch_root(probe_root)
        hroot = os.path.join(ctx.work, "hutch-pull")
        sroot = os.path.join(ctx.work, "skopeo-pull")
        hutch = Contender("hutch pull", lambda i: [HUTCH, "--root", hroot, "pull", ref],
                          after=lambda i: _remove_hutch_root(hroot))
        skopeo = Contender(
            "skopeo copy + umoci unpack",
            lambda i: ["sh", "-c", f"skopeo copy --quiet --src-tls-verify=false docker://{ref} "
                       f"oci:{sroot}/img:latest && umoci unpack --image {sroot}/img:latest "
                       f"{sroot}/bundle >/dev/null"],
            anchor=True, before=lambda i: os.makedirs(sroot, exist_ok=True),
            after=lambda i: shutil.rmtree(sroot, ignore_errors=True))
        alternate([hutch, skopeo], ctx.runs)
    return _result(7, title, "faster than skopeo + umoci", [hutch, skopeo])


def _remove_hutch_root(root: str) -> None:
    """Drop a scratch hutch root (images only, no containers: nothing is mounted)."""
    if os.path.isdir(root):
        with open("/proc/self/mountinfo") as f:
            mounted = [line.split()[4] for line in f if line.split()[4].startswith(root)]
        for m in sorted(mounted, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


ROWS = {1: row_runtime_start, 8: row_cli_startup, 2: row_engine_start, 3: row_exec,
        5: row_scale, 6: row_logs, 4: row_density, 7: row_pull}
TITLES = {1: "Runtime start: `run` of a busybox `true` bundle",
          8: "CLI start-up: `hutch version`, `hutch ps -a` with 100 containers",
          2: "Engine start: `run --rm busybox true`",
          3: "Exec: `exec <running container> true`",
          5: "Scale: 200 containers started one after another",
          6: "Logs: a container writes numbered lines to stdout",
          4: "Density: memory per idle container (50 containers)",
          7: "Pull + unpack from a local registry"}
ORDER = [1, 8, 2, 3, 5, 6, 4, 7]
