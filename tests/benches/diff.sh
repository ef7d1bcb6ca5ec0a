#!/usr/bin/env bash
# Benchmark for `forge diff` against GNU `diff -r` in the same run: two copies of a
# host tree (/usr/share/doc, thousands of small files) differing in one file's content
# and one file's mode. forge hashes every file of both sides and compares modes,
# owners and xattrs too; `diff -r` compares contents only. Goal: within 3x of diff -r
# (measured 3.05x, 476 ms vs 156 ms: both sides are hashed one file at a time).
#
# Needs hyperfine. Usage: tests/benches/diff.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v hyperfine >/dev/null || { echo "SKIP: hyperfine is not installed"; exit 0; }
[ -d /usr/share/doc ] || { echo "SKIP: /usr/share/doc not found"; exit 0; }

cargo build --release -p forge >/dev/null
forge=$PWD/target/release/forge
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -rL /usr/share/doc "$work/a" 2>/dev/null || true
cp -a "$work/a" "$work/b"
f=$(find "$work/b" -type f -name copyright -print -quit)
echo "changed" >>"$f"
chmod 0600 "$(find "$work/b" -type f | sed -n 10p)"
echo "files: $(find "$work/a" -type f | wc -l), bytes: $(du -sb "$work/a" | cut -f1)"
"$forge" diff "$work/a" "$work/b" | head -5 || true
hyperfine --warmup 1 --runs 5 -i --export-json "$work/h.json" \
    "$forge diff $work/a $work/b" "diff -r $work/a $work/b"
python3 - "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(f"forge diff / diff -r = {r[0]['mean'] / r[1]['mean']:.2f}")
PY
