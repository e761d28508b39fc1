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
# Lean launchers instead of pip's wrappers (those import re). `-I -S`: no site processing
# (Debian's site imports ~3 ms of hooks), and PYTHONDONTWRITEBYTECODE is ignored so the
# bytecode cache is used; the launcher puts hutch's source, the venv's packages and Debian's
# dist-packages (for the libseccomp binding) on sys.path itself. Every call is on the user's clock.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
write_launcher() {  # name module function interpreter-flags [first lines] [lines before the import]
  printf '#!%s %s\n%simport sys\nsys.path += [%s, %s, %s]\n%sfrom %s import %s\nsys.exit(%s())\n' \
    "$PWD/.venv/bin/python" "$4" "${5:-}" "'$PWD/src'" "'$SITE'" "'/usr/lib/python3/dist-packages'" "${6:-}" "$2" "$3" "$3" \
    > ".venv/bin/$1.tmp"
  chmod 755 ".venv/bin/$1.tmp"
  mv -f ".venv/bin/$1.tmp" ".venv/bin/$1"
}
# Each launcher's modules (hutch's, and the standard library's it uses) come from one
# precompiled file, read before its first import (hutch/preload.py: ~60 us of importlib less
# a module, ~1.5 ms a runtime call, ~4 ms a `hutch run`; a module edited since, or missing
# from the file, is imported the normal way).
preload_lines() { "$PY" -I src/hutch/preload.py src "$PWD/.venv/lib/$1.preload" --launcher-lines; }
write_launcher hutch hutch.cli.main entry -IS "" "$(preload_lines hutch)
"
# The runtime also runs with -OO: its own bytecode cache (.opt-2.pyc) has no docstrings and
# no column tables (-X no_debug_ranges), ~15% less to unmarshal on every call; it uses
# neither docstrings nor asserts. (One shebang argument: "-ISOO".) And without the cyclic
# garbage collector: its passes over the objects our imports make (~1 ms of CPU a run) also
# touch pages the fork then copies; a runtime is short-lived, and its long waits (run,
# exec, events) make no cycles (events at 10 ms for 6 s: RSS flat).
write_launcher hutch-runtime hutch.cli.runtime_main main -ISOO $'import gc\ngc.disable()\n' \
  "$(preload_lines hutch-runtime)
"
"$PY" -I -m compileall -q src >/dev/null || true
"$PY" -I -OO -X no_debug_ranges -m compileall -q src >/dev/null || true
"$PY" -I src/hutch/preload.py src .venv/lib/hutch.preload 0 >/dev/null
"$PY" -I -OO -X no_debug_ranges src/hutch/preload.py src .venv/lib/hutch-runtime.preload 2 >/dev/null
# HUTCH_SETUP_NO_PATH=1 leaves /usr/local/bin alone (a second checkout's trial run).
if [ "${HUTCH_SETUP_NO_PATH:-}" != 1 ]; then
  for b in hutch hutch-runtime; do
    ln -sfn "$PWD/.venv/bin/$b" "/usr/local/bin/$b"
  done
fi

if [ -x scripts/make-images.sh ]; then
  HUTCH="$PWD/.venv/bin/hutch" bash scripts/make-images.sh
fi
say "ready"
