#!/usr/bin/env bash
# The cgroup v2 lane: boots a pure cgroup v2 kernel under QEMU (shared/cgroupv2) once and
# runs the cgroup-facing tests there. Skipped (with a line saying so) when the lane is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
lane=../shared/cgroupv2/run-v2.sh
if [ ! -x "$lane" ]; then echo "cgroup v2 lane: $lane not found, skipped"; exit 0; fi
if [ -z "$(ls tests/v2/test_*.py 2>/dev/null)" ]; then echo "cgroup v2 lane: no tests yet"; exit 0; fi
CGV2_ROOTFS=/ "$lane" "$PWD/.venv/bin/python -m pytest -q -p no:cacheprovider -m cgroup_v2 tests/v2"
