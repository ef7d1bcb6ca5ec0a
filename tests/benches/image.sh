#!/usr/bin/env bash
# Benchmark: root filesystem tarball -> ext4 -> Android sparse image.
#   forge:  forge image ext4 --from-tar T.tar --size S out.img && forge image sparse out.img out.simg
#   peer:   tar -xf T.tar -C dir && mke2fs -t ext4 -d dir out.img S && img2simg out.img out.simg
# Also: one directory of 16 000 entries (forge vs mke2fs -d), and the peak RSS of
# forge writing a ~2 GB tree (goal: under 300 MB).
# Usage: tests/benches/image.sh [TREE]   (TREE defaults to /usr/share; BENCH_DIR to a temp dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
TREE=${1:-/usr/share}
WORK=${BENCH_DIR:-$(mktemp -d)}
trap 'rm -rf "$WORK"' EXIT
for t in mke2fs img2simg /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install e2fsprogs android-sdk-libsparse-utils time)"; exit 4; }
done
cargo build --release -p forge -q
FORGE=$PWD/target/release/forge
export SOURCE_DATE_EPOCH=0 E2FSPROGS_FAKE_TIME=0

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "== real tree: $TREE"
tar --numeric-owner -C "$TREE" -cf "$WORK/tree.tar" . 2>/dev/null || true
bytes=$(stat -c %s "$WORK/tree.tar")
size_mib=$(( bytes * 13 / 10 / 1048576 + 64 ))M
echo "tarball: $((bytes / 1048576)) MiB, image size $size_mib"
sync

t0=$(now)
"$FORGE" image ext4 --from-tar "$WORK/tree.tar" --size "$size_mib" "$WORK/forge.img" 2>/dev/null
"$FORGE" image sparse "$WORK/forge.img" "$WORK/forge.simg" 2>/dev/null
t1=$(now)
mkdir "$WORK/x"
tar -xf "$WORK/tree.tar" -C "$WORK/x"
mke2fs -q -F -t ext4 -d "$WORK/x" "$WORK/peer.img" "$size_mib"
img2simg "$WORK/peer.img" "$WORK/peer.simg"
t2=$(now)
f=$(secs "$t0" "$t1"); p=$(secs "$t1" "$t2")
echo "forge ext4+sparse:                 ${f}s"
echo "tar -x + mke2fs -d + img2simg:     ${p}s"
echo "forge / peer:                      $(ratio "$f" "$p")"
e2fsck -fn "$WORK/forge.img" >/dev/null && echo "e2fsck -fn forge.img: clean"
rm -rf "$WORK/x" "$WORK"/*.img "$WORK"/*.simg "$WORK/tree.tar"

echo "== one directory of 16 000 entries"
mkdir -p "$WORK/d/big"
( cd "$WORK/d/big" && seq -f 'entry-%05g-with-a-longer-name' 1 16000 | xargs touch )
tar --numeric-owner -C "$WORK/d" -cf "$WORK/dir.tar" .
t0=$(now)
/usr/bin/time -f "%U %S" -o "$WORK/cpu.txt" "$FORGE" image ext4 --from-tar "$WORK/dir.tar" "$WORK/dir.img" 2>/dev/null
t1=$(now)
mke2fs -q -F -t ext4 -d "$WORK/d" "$WORK/peer-dir.img" 64M; t2=$(now)
f=$(secs "$t0" "$t1"); p=$(secs "$t1" "$t2")
echo "forge ext4 (16k entries):          ${f}s wall, $(awk '{print $1 + $2}' "$WORK/cpu.txt")s CPU (goal: under 1 s)"
echo "mke2fs -d (16k entries):           ${p}s"
echo "forge / peer:                      $(ratio "$f" "$p")"
rm -rf "$WORK/d" "$WORK"/*.img "$WORK/dir.tar"

echo "== peak memory writing a ~2 GB tree"
mkdir -p "$WORK/m"
for i in $(seq 1 40); do head -c 50M /dev/urandom > "$WORK/m/blob-$i"; done
for i in $(seq 1 20000); do echo "$i" > "$WORK/m/small-$((i % 20))-$i" 2>/dev/null || true; done
tar --numeric-owner -C "$WORK/m" -cf "$WORK/m.tar" .
rm -rf "$WORK/m"
/usr/bin/time -v "$FORGE" image ext4 --from-tar "$WORK/m.tar" --size 2600M "$WORK/m.img" 2> "$WORK/time.txt" >/dev/null
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
echo "forge ext4 of $(($(stat -c %s "$WORK/m.tar") / 1048576)) MiB: peak RSS $((rss / 1024)) MiB, wall $wall"
zstd -q -T2 -3 "$WORK/m.tar" -o "$WORK/m.tar.zst"
/usr/bin/time -v "$FORGE" image ext4 --from-tar "$WORK/m.tar.zst" --size 2600M "$WORK/m.img" 2> "$WORK/time.txt" >/dev/null
rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")
echo "same from .tar.zst (spooled):      peak RSS $((rss / 1024)) MiB"
