#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 machine for hutch (run as root): apt packages, the venv,
# hutch on PATH, the default images. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*"; }

APT_PACKAGES=(
  busybox-static stress docker-registry iptables libseccomp2 python3-seccomp python3-venv
  iproute2 psmisc procps tmux util-linux e2fsprogs
  runc crun skopeo umoci zstd
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv uses Debian's python3 (never a pyenv shim: ~75 ms a call) and sees its
# dist-packages for the libseccomp binding (python3-seccomp).
PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  say "creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.hutch-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing hutch and its dependencies into .venv"
  "$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
for b in hutch hutch-runtime; do
  ln -sfn "$PWD/.venv/bin/$b" "/usr/local/bin/$b"
done

if [ -x scripts/make-images.sh ]; then
  bash scripts/make-images.sh
fi
say "ready"
