#!/usr/bin/env bash
# Store benchmarks, forge against its peers in the same run (not a test):
#   1. `forge hash path` of a 1 GiB, 13 000-file tree vs `nix-hash --type sha256 --base32` (goal <= 1.0x)
#   2. `forge store add` of that tree vs `cp -a` (goal <= 1.5x)
#   3. peak RSS of hashing and adding a 10 GiB file (goal < 64 MB)
# Usage: tests/benches/store.sh [WORKDIR]   (needs ~13 GB free in WORKDIR; removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p forge -q
FORGE="$PWD/target/release/forge"
for tool in hyperfine nix-hash python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine nix-bin python3 time)" >&2; exit 4; }
done

WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
cleanup() { chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
TREE="$WORK/tree"

# 13 000 files totalling 1 GiB: mostly small (4-64 KiB), a few large, in nested dirs,
# some executable, some symlinks. Content is pseudo-random so nothing compresses.
python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
total, n = 1 << 30, 13000
sizes = [rng.randint(4 << 10, 64 << 10) for _ in range(n - 40)]
rest = total - sum(sizes)
sizes += [rest // 40] * 40
blob = os.urandom(64 << 20)
for i, size in enumerate(sizes):
    d = os.path.join(root, f"d{i % 50:02}", f"e{i % 7}")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"f{i:05}")
    off = rng.randint(0, len(blob) - (64 << 10))
    with open(p, "wb") as f:
        while size > 0:
            chunk = blob[off:off + min(size, len(blob) - off)]
            f.write(chunk)
            size -= len(chunk)
            off = 0
    if i % 13 == 0:
        os.chmod(p, 0o755)
    if i % 101 == 0:
        os.symlink(f"f{i:05}", os.path.join(d, f"l{i:05}"))
PY
echo "tree: $(find "$TREE" -type f | wc -l) files, $(du -sh --apparent-size "$TREE" | cut -f1)"
grep -q sha_ni /proc/cpuinfo && echo "cpu: SHA-NI present" || echo "cpu: no SHA-NI"

ratio() { # ratio of the mean of command 0 over command 1 in a hyperfine JSON export
  python3 - "$1" <<'PY'
import json, sys
a, b = (r["mean"] for r in json.load(open(sys.argv[1]))["results"])
print(f"{a:.3f}s vs {b:.3f}s: ratio {a / b:.2f}x")
PY
}

echo "== 1. hash path (warm cache)"
[ "$("$FORGE" hash path "$TREE")" = "sha256:$(nix-hash --type sha256 --base32 "$TREE")" ] || { echo "HASH MISMATCH" >&2; exit 1; }
hyperfine -N --warmup 1 --runs 5 --export-json "$WORK/hash.json" \
  "$FORGE hash path $TREE" "nix-hash --type sha256 --base32 $TREE"
echo "hash path: $(ratio "$WORK/hash.json")"

echo "== 2. store add vs cp -a (warm source, fresh destination each run)"
hyperfine --warmup 1 --runs 5 --export-json "$WORK/add.json" \
  --prepare "chmod -R u+w $WORK/s $WORK/copy 2>/dev/null; rm -rf $WORK/s $WORK/copy; sync" \
  "$FORGE --store $WORK/s store add $TREE" "cp -a $TREE $WORK/copy"
echo "store add: $(ratio "$WORK/add.json")"
chmod -R u+w "$WORK/s" "$WORK/copy" 2>/dev/null || true
rm -rf "$WORK/s" "$WORK/copy" "$TREE"

echo "== 3. peak RSS on a 10 GiB (sparse) file"
truncate -s 10G "$WORK/big"
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk '/Maximum resident/ {printf "%.1f MB\n", $6/1024}'; }
echo "hash path: $(rss "$FORGE" hash path "$WORK/big")"
echo "store add: $(rss "$FORGE" --store "$WORK/s" store add "$WORK/big")"
