"""The OCI runtime conformance suite (opencontainers/runtime-tools validation) against
hutch-runtime: every test that runc or crun passes on this host must pass.

Runs only when the suite is built (scripts/conformance.sh build leaves
$CACHE/bin/.built) or HUTCH_CONFORMANCE=1 (which builds it); HUTCH_CONFORMANCE=0 skips.
"""
import glob
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("HUTCH_CONFORMANCE_CACHE", "/var/tmp/hutch-conformance")
EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected_passes.txt")
RUNTIME = os.path.join(ROOT, ".venv", "bin", "hutch-runtime")
# The suite's cgroup tests share this fixed path (runtime-tools' cgroups.AbsCgroupPath).
SUITE_CGROUPS = "/sys/fs/cgroup/*/cgrouptest"

pytestmark = [pytest.mark.root, pytest.mark.slow]


def expected_tests() -> list[str]:
    with open(EXPECTED) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def parse_results(tsv: str) -> dict[str, tuple[str, str]]:
    """test name -> (status, "oks/asserts") from the script's results file."""
    out = {}
    with open(tsv) as f:
        for line in f:
            name, status, oks, asserts, _rc = line.rstrip("\n").split("\t")
            out[name] = (status, f"{oks}/{asserts}")
    return out


def first_errors(tap_path: str, limit: int = 3) -> str:
    with open(tap_path, errors="replace") as f:
        lines = [ln.rstrip() for ln in f
                 if ln.startswith("not ok") or "level=error" in ln or '"error"' in ln]
    return " | ".join(lines[:limit])


def runtime_containers() -> set[str]:
    out = subprocess.run([RUNTIME, "list", "-q"], capture_output=True, text=True)
    return set(out.stdout.split())


def test_parse_results(tmp_path):
    tsv = tmp_path / "r.tsv"
    tsv.write_text("create\tpass\t4\t4\t0\nhooks\tfail\t0\t0\t0\n")
    assert parse_results(str(tsv)) == {"create": ("pass", "4/4"), "hooks": ("fail", "0/0")}


def test_expected_list_is_sane():
    names = expected_tests()
    assert len(names) == len(set(names)) and "create" in names


def test_hutch_passes_what_runc_or_crun_pass(tmp_path):
    flag = os.environ.get("HUTCH_CONFORMANCE")
    built = os.path.exists(os.path.join(CACHE, "bin", ".built"))
    if flag == "0" or (flag != "1" and not built):
        pytest.skip(f"conformance suite not built in {CACHE}: run scripts/conformance.sh build "
                    "or set HUTCH_CONFORMANCE=1")
    names = expected_tests()
    containers_before = runtime_containers()
    env = dict(os.environ, CACHE=CACHE, RESULTS=str(tmp_path), RUNTIME=RUNTIME,
               TESTS=" ".join(names))
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "conformance.sh")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    results = parse_results(str(tmp_path / "hutch-runtime.tsv"))
    failed = {n: f"{results.get(n, ('missing', '-'))}: "
                 f"{first_errors(str(tmp_path / 'hutch-runtime' / (n + '.tap')))}"
              for n in names if results.get(n, ("missing",))[0] != "pass"}
    # The suite removes its bundles, containers and cgroups; check that nothing leaked.
    assert not glob.glob("/tmp/hutch-conformance.*")  # the per-test TMPDIRs
    with open("/proc/self/mountinfo") as f:
        assert "/hutch-conformance." not in f.read()
    assert not glob.glob(SUITE_CGROUPS)
    assert runtime_containers() <= containers_before
    assert not failed, "hutch-runtime fails tests that runc or crun pass:\n" + "\n".join(
        f"  {n}: {why}" for n, why in failed.items())
