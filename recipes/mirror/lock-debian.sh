#!/usr/bin/env bash
# Writes a lock of pinned Debian binary packages (the format of recipes/data/*.lock)
# for the dependency closure of ROOT packages, resolved by apt itself against the
# indexes the machine is configured with (bookworm amd64 for the locks in this repo).
#
#   lock-debian.sh [--base LOCK]... [--title TEXT] ROOT... > NEW.lock
#
# --base LOCK: the packages of LOCK count as already installed, so the new lock only
#   holds what they lack (the layer is stacked over theirs). A root that needs a newer
#   version of a base package is an error: two layers would disagree on its files.
# Resolution is `apt-get --simulate install --no-install-recommends` over an empty
# dpkg status (or one holding the base packages), so alternatives and virtual packages
# are chosen exactly as apt would choose them on a fresh machine. Each resolved
# package's version, size, sha256 and pool path come from `apt-cache show`.
#
# Regenerating a lock changes every hash downstream of it: do it on purpose, then seed
# the mirror (seed-debian.sh) and rebuild.
#   toolchain:  lock-debian.sh gcc-12 make libc6-dev busybox-static
#   modem:      see the header of recipes/data/debian-bookworm-amd64-modem-builddeps.lock
set -euo pipefail

arch=amd64
bases=()
title=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) bases+=("$2"); shift 2 ;;
    --title) title=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "lock-debian: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: lock-debian.sh [--base LOCK]... [--title TEXT] ROOT..." >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_opts=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o Debug::NoLocking=1
  -o "Dir::State::status=$work/status")

# The dpkg status apt resolves against: the base locks' packages, installed. One
# apt-cache call for all (each call loads the whole cache).
specs=()
for lock in ${bases[@]+"${bases[@]}"}; do
  while read -r pkg ver parch _rest; do
    case "$pkg" in ''|'#'*) continue ;; esac
    specs+=("$pkg:$parch=$ver")
  done < "$lock"
done
: > "$work/status"
if [ ${#specs[@]} -gt 0 ]; then
  # apt-cache prints one stanza per index holding the version: keep the first of each.
  apt-cache show "${specs[@]}" | awk -v RS= -v ORS='\n\n' '
    { split($0, l, "\n"); key = l[1]; for (i in l) if (l[i] ~ /^(Version|Architecture): /) key = key " " l[i] }
    !seen[key]++ { sub(/\n/, "\nStatus: install ok installed\n"); print }' > "$work/status"
fi

# Resolve. `Inst NAME [OLD] (VERSION SUITE [ARCH])`: [OLD] means a base package would
# be replaced by another version.
apt-get "${apt_opts[@]}" --simulate --no-install-recommends install "$@" > "$work/sim" 2>&1 || {
  cat "$work/sim" >&2
  exit 1
}
if grep -q '^Inst [^ ]* \[' "$work/sim"; then
  echo "lock-debian: these base packages would change version:" >&2
  grep '^Inst [^ ]* \[' "$work/sim" >&2
  exit 1
fi

echo "# ${title:-Debian 12 (bookworm) $arch binary packages, pinned.}"
echo "# The closure of: $*"
for lock in ${bases[@]+"${bases[@]}"}; do echo "# over the packages of $(basename "$lock")"; done
echo "# resolved by recipes/mirror/lock-debian.sh (apt-get --simulate --no-install-recommends)."
echo "#"
echo "# package version arch size sha256 pool-path"
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\]).*$/\1 \2 \3/p' "$work/sim" | sort > "$work/resolved"
mapfile -t want < <(awk '{print $1 ":" $3 "=" $2}' "$work/resolved")
[ ${#want[@]} -gt 0 ] || { echo "lock-debian: nothing to lock (all provided by the base)" >&2; exit 1; }
apt-cache show "${want[@]}" | awk -v RS= '
  { p = v = a = f = s = h = ""
    n = split($0, l, "\n")
    for (i = 1; i <= n; i++) {
      split(l[i], kv, ": ")
      if (kv[1] == "Package") p = kv[2]; else if (kv[1] == "Version") v = kv[2]
      else if (kv[1] == "Architecture") a = kv[2]; else if (kv[1] == "Filename") f = kv[2]
      else if (kv[1] == "Size") s = kv[2]; else if (kv[1] == "SHA256") h = kv[2]
    }
    line = p " " v " " a " " s " " h " " f
    if (!seen[p " " v " " a]++) print line }' | sort > "$work/lock"
# Every resolved package must have exactly one line.
if ! diff <(cut -d' ' -f1-3 "$work/lock") "$work/resolved" >&2; then
  echo "lock-debian: apt-cache show did not describe every resolved package (above)" >&2
  exit 1
fi
cat "$work/lock"
