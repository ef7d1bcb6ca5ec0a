#!/usr/bin/env bash
# Benchmark: `forge abi check --root /` against glibc's own `ldd -r` (which runs the
# loader on each file, resolving every library and relocation) on the same dynamically
# linked programs of /usr/bin, same run. Not the same work: ldd -r binds symbols for real
# in one process per file; forge reads and matches tables for all files in one process.
# Both say which libraries and symbols are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
work=$repo/target/bench/abi
mkdir -p "$work"

cargo build --release -p forge
forge=$repo/target/release/forge

# Up to 200 dynamically linked ELF programs of this host, in a fixed order.
find /usr/bin -maxdepth 1 -type f -perm -u+x | LC_ALL=C sort > "$work/all"
: > "$work/list"
while read -r f; do
    if readelf -l "$f" 2>/dev/null | grep -q 'program interpreter'; then echo "$f" >> "$work/list"; fi
    [ "$(wc -l < "$work/list")" -ge 200 ] && break
done < "$work/all"
echo "files: $(wc -l < "$work/list")"

"$forge" abi check --root / $(cat "$work/list") > /dev/null
hyperfine --warmup 2 --runs 10 --export-json "$work/result.json" \
    -n forge "$forge abi check --root / $(tr '\n' ' ' < "$work/list") > /dev/null" \
    -n "ldd -r" "xargs ldd -r < $work/list > /dev/null 2>&1"
python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"forge {r['forge']*1000:.1f} ms, ldd -r {r['ldd -r']*1000:.1f} ms, ratio forge/ldd = {r['forge']/r['ldd -r']:.2f}")
PY
