#!/usr/bin/env bash
# The cgroup v2 lane: boots a pure cgroup v2 kernel under QEMU (shared/cgroupv2) once and
# runs the cgroup-facing tests there (tests/v2, marked cgroup_v2). Skipped (with a line
# saying so) when the lane is absent.
#
# The guest has no network and starts processes ~40x slower, so the busybox image for the
# end-to-end tests is made here on the host, in a throw-away hutch root the guest sees
# (its / is the host's /) and copies from.
set -euo pipefail
cd "$(dirname "$0")/.."
lane=../shared/cgroupv2/run-v2.sh
if [ ! -x "$lane" ]; then echo "cgroup v2 lane: $lane not found, skipped"; exit 0; fi
if [ -z "$(ls tests/v2/test_*.py 2>/dev/null)" ]; then echo "cgroup v2 lane: no tests yet"; exit 0; fi
# /var/tmp, not /tmp: the guest mounts a fresh tmpfs on /tmp.
images=$(mktemp -d /var/tmp/hutch-v2-images.XXXXXX)
trap 'rm -rf "$images"' EXIT
if ! PATH="$PWD/.venv/bin:$PATH" HUTCH_ROOT="$images" bash scripts/make-images.sh >/dev/null; then
  echo "cgroup v2 lane: could not make the busybox image; end-to-end v2 tests will skip"
  rm -rf "$images"; images=""
fi
CGV2_ROOTFS=/ "$lane" "HUTCH_V2_IMAGES=$images PYTHONDONTWRITEBYTECODE=1 $PWD/.venv/bin/python -m pytest -q -p no:cacheprovider -m cgroup_v2 tests/v2"
