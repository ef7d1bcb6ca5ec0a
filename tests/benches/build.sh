#!/usr/bin/env bash
# Benchmark of forge build against Nix (Debian's nix-bin) in the same run:
#   - a chain of 50 trivial sandboxed steps, and 50 independent ones at -j1 and -j2;
#   - a no-op build of a fully built 1000-derivation graph (whole process);
#   - planning a 10 000-derivation graph (whole process, `forge show --json`).
# Nix's steps are hand-written derivations with a static busybox as builder
# (tests/benches/nix/steps.nix), built with its sandbox on. Every round uses a
# fresh salt, so both build everything from scratch.
#
# usage: tests/benches/build.sh [ROUNDS]   (needs the seeded test mirror, nix-build, hyperfine)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
mirror=${FORGE_TEST_MIRROR:-/var/cache/forge-test-mirror}
cargo build -q --release -p forge-example-recipes
fx=$PWD/target/release/forge-example
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
$fx --store "$store" build busybox-root --offline --mirror "$mirror" --out "$work/bb" >/dev/null 2>&1

nixdir=$work/nix
mkdir -p "$nixdir/bb"
cp tests/benches/nix/steps.nix "$nixdir/"
cp /bin/busybox "$nixdir/bb/busybox"
ln -sf busybox "$nixdir/bb/sh"

now() { date +%s.%N; }
# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

forge_time() { # recipe jobs -> seconds
  local s e; s=$(now)
  FORGE_EXAMPLE_SALT="$RANDOM$RANDOM" $fx --store "$store" build "$1" -j "$2" --out "$work/o" >/dev/null 2>&1
  e=$(now); echo "$e - $s" | bc -l
}
nix_time() { # parallel(true|false) jobs -> seconds
  local s e; s=$(now)
  (cd "$nixdir" && nix-build steps.nix --arg parallel "$1" --argstr salt "$RANDOM$RANDOM" -j "$2" --no-out-link \
     --option sandbox true --option build-users-group "" >/dev/null 2>&1)
  e=$(now); echo "$e - $s" | bc -l
}

row() { # label forge-times nix-times
  local f n; f=$(echo "$2" | median); n=$(echo "$3" | median)
  printf '%-34s forge %7.3f s   nix %7.3f s   ratio %5.2fx\n' "$1" "$f" "$n" "$(echo "$f / $n" | bc -l)"
}

echo "== forge build vs nix-build ($rounds rounds each, medians; load: $(cut -d' ' -f1-3 /proc/loadavg))"
for spec in "chain-50 false 1" "chain-50 false 2" "fan-50 true 1" "fan-50 true 2"; do
  set -- $spec
  ft=""; nt=""
  for _ in $(seq "$rounds"); do ft+="$(forge_time "$1" "$3")"$'\n'; nt+="$(nix_time "$2" "$3")"$'\n'; done
  row "$1 -j$3" "$(echo -n "$ft")" "$(echo -n "$nt")"
  declare "t_${1//-/_}_$3=$(echo -n "$ft" | median)"
done
printf '%-34s %.2fx faster at -j2\n' "fan-50: forge -j1 / -j2" "$(echo "$t_fan_50_1 / $t_fan_50_2" | bc -l)"

echo "== no-op build of a built 1000-derivation graph (whole process; goal < 200 ms)"
$fx --store "$store" build texts-1000 --out "$work/t" >/dev/null 2>&1
hyperfine -N --warmup 2 --runs 20 "$fx --store $store build texts-1000 --out $work/t" 2>/dev/null | grep -E 'Time|Range'

echo "== planning 10 000 derivations (forge show --json, whole process; goal < 1 s)"
hyperfine -N --warmup 1 --runs 5 "$fx --store $store show texts-10000 --json" 2>/dev/null | grep -E 'Time|Range'
