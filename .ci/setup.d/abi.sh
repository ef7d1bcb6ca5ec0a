# `forge abi check` tests: a real aarch64 glibc root (Debian's libc6:arm64, plus
# libc-bin:arm64 for dynamically linked aarch64 programs), unpacked without installing
# anything for arm64. The glibc loader of that root is what would load those programs,
# so the check is tested against a root nobody here made. Idempotent.
set -euo pipefail
root="${FORGE_TEST_ARM64_ROOT:-/var/cache/forge-test-arm64}"
[ -e "$root/lib/aarch64-linux-gnu/libc.so.6" ] && [ -e "$root/usr/bin/getent" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
fi
work="$(mktemp -d)"
chmod 755 "$work" # apt downloads as _apt when it can
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q libc6:arm64 libc-bin:arm64 >/dev/null)
mkdir -p "$root"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$root"; done
echo "abi: arm64 glibc root in $root"
