#!/usr/bin/env bash
# The aarch64 sandbox test needs Debian's static busybox for arm64: unpack it (without
# installing it) into /var/cache/forge-tests/busybox-arm64. Idempotent; root only.
set -euo pipefail
dest=/var/cache/forge-tests/busybox-arm64
if [ -x "$dest/bin/busybox" ] || [ -x "$dest/usr/bin/busybox" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "sandbox setup: not root, the aarch64 sandbox test will be skipped"
  exit 0
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
fi
apt-get update -qq
work=$(mktemp -d)
chmod 755 "$work" # apt downloads as _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq busybox-static:arm64)
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/root"
mkdir -p "$dest"
cp -a "$work/root/." "$dest/"
echo "sandbox setup: arm64 busybox in $dest"
