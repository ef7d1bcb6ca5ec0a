#!/usr/bin/env bash
# Seeds a forge mirror folder from Debian's archive, through apt-get only:
#   - the binary packages of every lock in recipes/data/*.lock (apt-get download),
#   - the upstream tarballs listed in recipes/mirror/upstream-tarballs.txt, which
#     Debian's source pool holds byte for byte (apt-get source --download-only).
# Every file is checked against its pinned sha256 and stored as DIR/<file name> and
# DIR/sha256/<hex>, the layout `forge build --mirror DIR` reads.
#
# usage: seed-debian.sh DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: seed-debian.sh DIR}
mkdir -p "$dir/sha256"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's sandbox user must be able to write here

# Places FILE in the mirror as NAME after checking its sha256.
place() {
  local file=$1 name=$2 want=$3 got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "error: $name has sha256 $got, the pin says $want" >&2
    echo "       (Debian may have replaced this version; update the pin or use an older snapshot)" >&2
    return 1
  fi
  cp -f "$file" "$dir/sha256/$want"
  ln -f "$dir/sha256/$want" "$dir/$name"
}

have() { [ -f "$dir/sha256/$1" ] && [ -f "$dir/$2" ]; }

# Binary packages (a foreign architecture, like arm64, must be known to dpkg).
for lock in "$here"/../data/*.lock; do
  for arch in $(awk '!/^#/ && NF == 6 && $3 != "all" {print $3}' "$lock" | sort -u); do
    if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      dpkg --add-architecture "$arch"
      added_arch=1
    fi
  done
done
if [ -n "${added_arch:-}" ]; then apt-get update -qq; fi
need=()
for lock in "$here"/../data/*.lock; do
  while read -r pkg ver arch _size sha pool; do
    case "$pkg" in ''|'#'*) continue ;; esac
    # arch-qualified, so a lock may pin another architecture's package (linux-libc-dev:arm64)
    [ "$arch" = all ] && spec="$pkg=$ver" || spec="$pkg:$arch=$ver"
    have "$sha" "${pool##*/}" || need+=("$spec|$sha|${pool##*/}|$arch")
  done < "$lock"
done
if [ ${#need[@]} -gt 0 ]; then
  echo "seed: downloading ${#need[@]} Debian packages"
  (cd "$work" && apt-get download -q "${need[@]%%|*}" >/dev/null)
  for n in "${need[@]}"; do
    IFS='|' read -r spec sha name arch <<<"$n"
    pkg=${spec%%[:=]*}
    file=$(ls "$work"/"${pkg}"_*_"$arch".deb | head -n1)
    place "$file" "$name" "$sha"
  done
fi

# Upstream tarballs from Debian's source pool (needs deb-src entries).
if ! apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -qx 'Sources'; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/forge-deb-src.list
  fi
  apt-get update -qq
fi
while read -r src ver orig upstream sha; do
  case "$src" in ''|'#'*) continue ;; esac
  have "$sha" "$upstream" && continue
  echo "seed: downloading $upstream (Debian source $src $ver)"
  (cd "$work" && apt-get source -q --download-only "$src=$ver" >/dev/null 2>&1)
  place "$work/$orig" "$upstream" "$sha"
done < "$here/upstream-tarballs.txt"
echo "seed: mirror ready in $dir"
