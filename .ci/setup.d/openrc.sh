# Unpacks Debian's openrc package and its libraries (not installed: it would
# replace the init system) so the converter's tests can run OpenRC's own
# gendepends.sh and `openrc-run SCRIPT describe` on the scripts they generate.
# Tests find it through FORGE_OPENRC_ROOT or this default.
set -eu
root="${FORGE_OPENRC_ROOT:-/var/cache/forge-openrc}"
if [ -f "$root/lib/rc/sh/gendepends.sh" ] && [ -f "$root/sbin/openrc-run" ] && ls "$root"/lib/*/librc.so.1 >/dev/null 2>&1; then
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download openrc librc1 libeinfo1)
mkdir -p "$root"
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$root"
done
