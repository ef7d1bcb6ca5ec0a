#!/usr/bin/env bash
# Seeds a forge mirror folder from Debian's archive, through apt only:
#   - the binary packages of every lock in recipes/data/*.lock,
#   - the upstream tarballs listed in recipes/mirror/upstream-tarballs.txt, which
#     Debian's source pool holds byte for byte as .orig tarballs, or from which
#     orig-to-upstream.py rebuilds them byte for byte, and the Debian source files
#     recipes pin as Debian's own (glibc).
# Every file is checked against its pinned sha256 and stored as DIR/<file name> and
# DIR/sha256/<hex>, the layout `forge build --mirror DIR` reads.
#
# Files are fetched by their pool path (every lock line has it) with apt's own
# downloader, `apt-helper download-file`, from the archives apt is configured with
# (their URIs are read from `apt-get indextargets` at run time). A pinned version thus
# stays fetchable as long as the file is anywhere in the pool, even after the suite's
# index moved on to a newer version (Debian keeps superseded security versions only
# briefly in the index). What the pool does not have is then asked of the index:
# `apt-get download PKG=VERSION` and `apt-get source --download-only SRC=VERSION`.
#
# usage: seed-debian.sh DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:?usage: seed-debian.sh DIR}
mkdir -p "$dir/sha256"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -m 777 "$work/dl" # apt's sandbox user (_apt) writes the downloads here
apt_helper=/usr/lib/apt/apt-helper

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

# The archives' base URIs, as apt is configured (deb822 or one-line sources alike).
archives() { apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | sort -u; }

# Downloads each "POOL-PATH FILE [SHA256]" line of stdin into $work/dl/FILE, trying
# every configured archive in turn for what is still missing. apt-helper checks the
# hash when one is given; a missing or mismatching file is simply left out.
fetch_pool() {
  local wanted=$work/wanted base args pool file sha
  cat > "$wanted"
  [ -s "$wanted" ] || return 0
  [ -x "$apt_helper" ] || return 0
  while read -r base; do
    args=()
    while read -r pool file sha; do
      [ -f "$work/dl/$file" ] && continue
      args+=("${base%/}/$pool" "$work/dl/$file")
      [ -n "$sha" ] && args+=("SHA256:$sha")
    done < "$wanted"
    [ ${#args[@]} -gt 0 ] || break
    "$apt_helper" download-file "${args[@]}" > "$work/apt-helper.log" 2>&1 || true
  done < <(archives)
  rm -f "$work"/dl/*.FAILED
}

# Binary packages.
need=()
for lock in "$here"/../data/*.lock; do
  while read -r pkg ver _arch _size sha pool; do
    case "$pkg" in ''|'#'*) continue ;; esac
    have "$sha" "${pool##*/}" || need+=("$pkg=$ver|$sha|$pool")
  done < "$lock"
done
if [ ${#need[@]} -gt 0 ]; then
  echo "seed: downloading ${#need[@]} Debian packages"
  for n in "${need[@]}"; do
    IFS='|' read -r _spec sha pool <<<"$n"
    echo "$pool ${pool##*/} $sha"
  done | fetch_pool
  missing=()
  for n in "${need[@]}"; do
    IFS='|' read -r spec _sha pool <<<"$n"
    [ -f "$work/dl/${pool##*/}" ] || missing+=("$spec")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "seed: ${#missing[@]} packages not in the pool, asking the index: ${missing[*]}"
    (cd "$work/dl" && apt-get download -q "${missing[@]}" >/dev/null)
  fi
  for n in "${need[@]}"; do
    IFS='|' read -r spec sha pool <<<"$n"
    file=$work/dl/${pool##*/}
    # apt-get download names files with the version's epoch escaped (%3a)
    [ -f "$file" ] || file=$(ls "$work/dl/${spec%%=*}"_*.deb | head -n1)
    place "$file" "${pool##*/}" "$sha"
  done
fi

# Upstream tarballs from Debian's source pool.
# pool/main/<prefix>/<source>/: lib* sources go under their first four letters.
pool_dir() { case "$1" in lib?*) echo "pool/main/${1:0:4}/$1" ;; *) echo "pool/main/${1:0:1}/$1" ;; esac; }
rows=()
while read -r src ver orig upstream sha how; do
  case "$src" in ''|'#'*) continue ;; esac
  have "$sha" "$upstream" || rows+=("$src $ver $orig $upstream $sha ${how:-same}")
done < "$here/upstream-tarballs.txt"
if [ ${#rows[@]} -gt 0 ]; then
  for r in "${rows[@]}"; do
    read -r src _ver orig _rest <<<"$r"
    echo "$(pool_dir "$src")/$orig $orig"
  done | fetch_pool
fi
for r in "${rows[@]}"; do
  read -r src ver orig upstream sha how <<<"$r"
  echo "seed: $upstream (Debian source $src $ver, $how)"
  if [ ! -f "$work/dl/$orig" ]; then
    # Not in the pool under the expected path: ask the index (needs deb-src entries).
    if ! apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -qx 'Sources'; then
      for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
      done
      if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/forge-deb-src.list
      fi
      apt-get update -qq
    fi
    # The .dsc or debian tarball may be gone while the .orig is not: judge by the .orig.
    (cd "$work/dl" && apt-get source -q --download-only "$src=$ver" >/dev/null 2>&1) || true
    [ -f "$work/dl/$orig" ] || { echo "error: $orig is neither in the pool nor in the index" >&2; exit 1; }
  fi
  case "$how" in
    same) place "$work/dl/$orig" "$upstream" "$sha" ;;
    rebuild)
      python3 "$here/orig-to-upstream.py" "$work/dl/$orig" "$work/$upstream"
      place "$work/$upstream" "$upstream" "$sha"
      ;;
    *) echo "error: upstream-tarballs.txt: unknown method '$how' for $upstream" >&2; exit 1 ;;
  esac
done
echo "seed: mirror ready in $dir"
