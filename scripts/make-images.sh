#!/usr/bin/env bash
# The default local images, made through the public `hutch import` (no back door):
#   busybox:latest          the host's static busybox, its applet links, passwd/group, CMD ["sh"]
#   progrium/stress:latest  the same + /usr/bin/stress and the libraries ldd lists,
#                           ENTRYPOINT ["/usr/bin/stress","--verbose"]
# Idempotent and quick when both exist. Uses `hutch` on PATH (or HUTCH, a command) and
# HUTCH_ROOT if set.
set -euo pipefail
HUTCH=${HUTCH:-hutch}
have() { [ -n "$($HUTCH images -q "$1" 2>/dev/null)" ]; }
if have busybox:latest && have progrium/stress:latest; then
  exit 0
fi
BUSYBOX=$(command -v busybox || echo /bin/busybox)
STRESS=/usr/bin/stress
work=$(mktemp -d /tmp/hutch-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

rootfs() {  # $1: directory to fill with the busybox root filesystem
  local r=$1
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var/tmp,var/log,proc,sys,dev}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 700 "$r/root"
  cp "$BUSYBOX" "$r/bin/busybox"
  # absolute links: relative ones break from /usr/bin (Docker's reference notes the same)
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf /bin/busybox "$r/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
}

if ! have busybox:latest; then
  rootfs "$work/busybox"
  tar --numeric-owner -C "$work/busybox" -cf "$work/busybox.tar" .
  $HUTCH import -c 'CMD ["sh"]' "$work/busybox.tar" busybox:latest >/dev/null
  echo "make-images: busybox:latest"
fi

if ! have progrium/stress:latest; then
  rootfs "$work/stress"
  install -D -m 0755 "$STRESS" "$work/stress/usr/bin/stress"
  for lib in $(ldd "$STRESS" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$work/stress$lib"
  done
  tar --numeric-owner -C "$work/stress" -cf "$work/stress.tar" .
  $HUTCH import -c 'ENTRYPOINT ["/usr/bin/stress","--verbose"]' "$work/stress.tar" \
    progrium/stress:latest >/dev/null
  echo "make-images: progrium/stress:latest"
fi
