"""`python -m bench [--rows 1,8] [--runs N] [--log-mib N] [--scale N] [--density N] [--out DIR]
[--no-docker]`"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

from bench import docker
from bench.harness import RowSkipped, RunFailed
from bench.rows import ORDER, REPO, ROWS, TITLES, Context, take_leaks
from bench.report import print_table, write_chart


def machine_info() -> dict:
    def first_line(argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
            return out.strip().splitlines()[0] if out.strip() else ""
        except (OSError, subprocess.TimeoutExpired):
            return ""
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    try:
        from hutch import cgroups
        cgroup_mode = cgroups.detect_mode()
    except Exception:  # noqa: BLE001 - informational only
        cgroup_mode = "unknown"
    from hutch import __version__
    return {"kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
            "memory_gib": round(mem_kib / 1024 / 1024, 1), "cgroup_mode": cgroup_mode,
            "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "python": platform.python_version(), "hutch": __version__,
            "hutch_commit": first_line(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
            "runc": first_line(["runc", "--version"]), "crun": first_line(["crun", "--version"]),
            "skopeo": first_line(["skopeo", "--version"]),
            "umoci": first_line(["umoci", "--version"]),
            "docker": first_line([docker.DOCKER, "--version"]), "docker_daemon": docker.describe()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--rows", default=",".join(map(str, ORDER)),
                    help="comma-separated row numbers, in the order to run (default: all)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per contender (>= 10)")
    ap.add_argument("--log-mib", type=int, default=1024, help="size of the logs row's output")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"),
                    help="where <date>.json and the chart go")
    ap.add_argument("--scale", type=int, default=200, help="row 5's containers (>= 40)")
    ap.add_argument("--density", type=int, default=50, help="row 4's containers")
    ap.add_argument("--no-docker", action="store_true",
                    help="no Docker anchor (otherwise a private dockerd is started when none answers)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (containers, mounts, cgroups)", file=sys.stderr)
        return 1
    if args.scale < 40:
        print("bench: --scale must be at least 40 (two windows of 20)", file=sys.stderr)
        return 2
    if args.runs < 10:
        print("bench: --runs must be at least 10 (medians of >= 10 runs)", file=sys.stderr)
        return 2
    # hutch is timed as installed, with Python's bytecode cache: a developer's
    # PYTHONDONTWRITEBYTECODE would make every start recompile its sources (~20 ms more)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    rows = [int(r) for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"bench: no such row: {unknown}", file=sys.stderr)
        return 2

    if args.no_docker:
        docker.disable()
    # killed (SIGTERM/SIGHUP): unwind, so a private dockerd is stopped and its changes undone
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    started = datetime.datetime.now(datetime.timezone.utc)
    results = []
    docker_left: list[str] = []
    work_root = tempfile.mkdtemp(prefix="hutch-bench-")
    try:
        for r in rows:
            work = os.path.join(work_root, f"row{r}")
            os.makedirs(work)
            print(f"bench: row {r} ...", file=sys.stderr, flush=True)
            try:
                res = ROWS[r](Context(args.runs, work, args.log_mib, args.scale, args.density))
            except RowSkipped as e:
                res = {"id": r, "status": "skipped", "reason": str(e)}
            except RunFailed as e:
                res = {"id": r, "status": "failed", "reason": str(e)}
            except Exception as e:  # noqa: BLE001 - one broken row must not lose the others
                traceback.print_exc()
                res = {"id": r, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
            res.setdefault("title", TITLES[r])
            leaks = take_leaks()
            if leaks:
                res["leaked_containers"] = leaks
            results.append(res)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
        machine = machine_info()
        docker_left = docker.shutdown()   # a private dockerd, and its host changes, go
        for what in docker_left:
            print(f"bench: the private dockerd left {what}", file=sys.stderr)

    report = {"date": started.isoformat(timespec="seconds"), "machine": machine,
              "method": "wall time of the whole command, contenders alternating in rotated order (A B C, B C A, ...) "
                        "after one warm-up round; median, min, max of N runs; ratio = median / "
                        "anchor's median in the same run",
              "runs": args.runs, "rows": results}
    if docker_left:
        report["docker_cleanup_left"] = docker_left
    print_table(report)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, started.strftime("%Y-%m-%d"))
    with open(stem + ".json", "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    chart = write_chart(report, stem)
    print(f"\nbench: wrote {stem}.json and {chart}")
    return 1 if any(r["status"] == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
