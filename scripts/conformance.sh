#!/usr/bin/env bash
# The OCI runtime conformance suite (opencontainers/runtime-tools validation/*) run against
# runc, crun and hutch-runtime side by side, as issue 2 asks. See docs/conformance.md.
#
#   scripts/conformance.sh                  # build once, run all runtimes, print the table
#   RUNTIME=/path/to/rt scripts/conformance.sh          # one runtime only
#   RUNTIMES="runc hutch-runtime" TESTS="create kill" scripts/conformance.sh
#   scripts/conformance.sh build            # only install + build the cache
#
# Environment: CACHE (default /var/tmp/hutch-conformance), RUNTIMES (default
# "runc crun hutch-runtime"), RUNTIME (one runtime, overrides RUNTIMES), TESTS (names
# without .t; default all), TEST_TIMEOUT (seconds per test, default 180),
# RESULTS (default $CACHE/results), RUNTIME_TOOLS_SRC (a runtime-tools source tree or .tar.gz holding validation/ and
# cmd/runtimetest, used when the cache has no sources yet).
#
# Results: $RESULTS/<label>/<test>.tap (the TAP stream + stderr) and
# $RESULTS/<label>.tsv (test, status, oks, asserts, exit code) - what the pytest in
# tests/conformance reads. Tests run one at a time: the suite's cgroup tests all use the
# same fixed cgroup path (/cgrouptest), so two runs in parallel would collide.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${CACHE:-/var/tmp/hutch-conformance}
TEST_TIMEOUT=${TEST_TIMEOUT:-180}
BIN=$CACHE/bin
RESULTS=${RESULTS:-$CACHE/results}
GOPATH_LOCAL=$CACHE/gopath
say() { echo "conformance: $*" >&2; }

APT_DEPS=(golang-go golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev
          busybox-static util-linux runc crun)

install_deps() {
  local missing=() p
  for p in "${APT_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Debian's -dev package ships the library half of runtime-tools (generate, specerror,
# cgroups, validate) but not validation/ nor cmd/runtimetest; those come from a source tree.
ensure_sources() {
  local rt=$GOPATH_LOCAL/src/github.com/opencontainers/runtime-tools
  [ -d "$rt/validation/util" ] && [ -d "$rt/cmd/runtimetest" ] && return 0
  local src=${RUNTIME_TOOLS_SRC:-$CACHE/runtime-tools-validation-src.tar.gz}
  if [ -f "$src" ]; then
    mkdir -p "$GOPATH_LOCAL" && tar -C "$GOPATH_LOCAL" -xzf "$src"
  elif [ -d "$src/validation" ]; then
    mkdir -p "$rt" "$GOPATH_LOCAL/src/github.com/mndrix"
    cp -r "$src/validation" "$src/cmd" "$rt/"
    [ -d "$src/vendor/github.com/mndrix/tap-go" ] &&
      cp -r "$src/vendor/github.com/mndrix/tap-go" "$GOPATH_LOCAL/src/github.com/mndrix/"
  fi
  if [ ! -d "$rt/validation/util" ]; then
    echo "conformance: no runtime-tools validation sources: Debian's package lacks validation/ and" \
         "cmd/runtimetest; set RUNTIME_TOOLS_SRC to a runtime-tools checkout (see docs/conformance.md)" >&2
    exit 2
  fi
}

make_rootfs() {
  local r
  r=$(mktemp -d)
  mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root}
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
  echo 'root:x:0:' > "$r/etc/group"
  tar -C "$r" -czf "$BIN/rootfs-amd64.tar.gz" .
  rm -rf "$r"
}

build() {
  install_deps
  ensure_sources
  local stamp=$BIN/.built src=$GOPATH_LOCAL/src/github.com/opencontainers/runtime-tools
  if [ -f "$stamp" ] && [ -z "$(find "$GOPATH_LOCAL/src" -newer "$stamp" -name '*.go' | head -1)" ]; then
    return 0
  fi
  mkdir -p "$BIN"
  export GO111MODULE=off GOPATH=$GOPATH_LOCAL:/usr/share/gocode GOCACHE=$CACHE/gocache CGO_ENABLED=0
  say "building runtimetest and $(ls -d "$src"/validation/*/ | grep -vc /util/) validation tests into $BIN"
  go build -o "$BIN/runtimetest" github.com/opencontainers/runtime-tools/cmd/runtimetest
  local d name
  for d in "$src"/validation/*/; do
    name=$(basename "$d")
    [ "$name" = util ] && continue
    go build -o "$BIN/$name.t" "github.com/opencontainers/runtime-tools/validation/$name"
  done
  make_rootfs
  touch "$stamp"
}

# status of one TAP file: pass/fail, oks, asserts. The programs give their own verdict by
# their exit code (util.Fatal exits 1) and "not ok" lines; one that makes no assertion (the
# hook tests only report; the *_fail tests print nothing when the runtime rightly refused)
# passes when it exited 0 and reported no error.
classify() {
  local tap=$1 rc=$2 oks asserts notok
  oks=$(grep -cE '^ok [0-9]+' "$tap" || true)
  notok=$(grep -cE '^not ok [0-9]+' "$tap" || true)
  asserts=$((oks + notok))
  if [ "$rc" = 124 ]; then echo "timeout $oks $asserts"; return; fi
  if [ "$rc" != 0 ] || [ "$notok" -gt 0 ]; then
    echo "fail $oks $asserts"; return
  fi
  if [ "$asserts" = 0 ] && grep -q '"error":' "$tap"; then echo "fail $oks $asserts"; return; fi
  echo "pass $oks $asserts"
}

# Tests with rootfsPropagation=shared can leave mounts (proc, sys) propagated back onto the
# host under their bundle: detach those first, and never let rm cross a mount point.
remove_tmp() {
  local m
  for m in $(awk -v p="$1/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    say "detaching a mount the test left on the host: $m"; umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$1"
}

run_runtime() {
  local rt=$1 label=$2 out=$RESULTS/$2 t name rc
  rm -rf "$out"; mkdir -p "$out"
  : > "$RESULTS/$label.tsv"
  for t in "${TEST_LIST[@]}"; do
    name=$(basename "$t" .t)
    # The tests read runtimetest and rootfs-amd64.tar.gz from the working directory. Their
    # bundles go to a private TMPDIR, removed afterwards: some tests leave theirs behind
    # when a step before the container fails (masked/readonly symlink cases).
    rc=0
    tmp=$(mktemp -d /tmp/hutch-conformance.XXXXXX)
    (cd "$BIN" && TMPDIR=$tmp RUNTIME=$rt timeout -k 10 "$TEST_TIMEOUT" "./$name.t") \
      >"$out/$name.tap" 2>&1 || rc=$?
    remove_tmp "$tmp"
    printf '%s\t%s\t%s\n' "$name" "$(classify "$out/$name.tap" "$rc" | tr ' ' '\t')" "$rc" \
      >> "$RESULTS/$label.tsv"
    say "$label $name: $(classify "$out/$name.tap" "$rc")"
  done
}

cell() {  # cell LABEL TEST
  awk -F'\t' -v t="$2" '$1==t { printf "%s %s/%s", $2, $3, $4 }' "$RESULTS/$1.tsv"
}

print_table() {
  local labels=("$@") name l
  printf '%-40s' test; for l in "${labels[@]}"; do printf ' %-18s' "$l"; done; echo
  for t in "${TEST_LIST[@]}"; do
    name=$(basename "$t" .t)
    printf '%-40s' "$name"
    for l in "${labels[@]}"; do printf ' %-18s' "$(cell "$l" "$name")"; done
    echo
  done
  printf '%-40s' "passed (of ${#TEST_LIST[@]})"
  for l in "${labels[@]}"; do printf ' %-18s' "$(grep -cP '\tpass\t' "$RESULTS/$l.tsv" || true)"; done
  echo
}

build
[ "${1:-}" = build ] && exit 0

if [ -n "${TESTS:-}" ]; then
  TEST_LIST=(); for n in $TESTS; do TEST_LIST+=("$BIN/$n.t"); done
else
  TEST_LIST=("$BIN"/*.t)
fi
if [ -n "${RUNTIME:-}" ]; then RUNTIMES=$RUNTIME; fi
RUNTIMES=${RUNTIMES:-runc crun hutch-runtime}
labels=()
for rt in $RUNTIMES; do
  path=$(command -v "$rt") || { say "runtime not found: $rt"; exit 2; }
  label=$(basename "$rt")
  run_runtime "$path" "$label"
  labels+=("$label")
done
print_table "${labels[@]}" | tee "$RESULTS/table.txt"
