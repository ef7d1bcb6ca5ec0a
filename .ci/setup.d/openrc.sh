# Unpacks Debian's openrc package (not installed: it would replace the init
# system) so the converter's tests can run OpenRC's own gendepends.sh on the
# scripts they generate. Tests find it through FORGE_OPENRC_ROOT or this default.
set -eu
root="${FORGE_OPENRC_ROOT:-/var/cache/forge-openrc}"
if [ -f "$root/lib/rc/sh/gendepends.sh" ]; then
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download openrc)
mkdir -p "$root"
dpkg-deb -x "$work"/openrc_*.deb "$root"
