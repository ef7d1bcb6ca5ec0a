#!/usr/bin/env bash
# Benchmark: `forge unpack` against `tar xJf` on a ~100 MB tar.xz of real files
# (from /usr/share and /usr/lib, so it compresses like real software), same run.
# Goal: forge at most 1.1x the time of tar.
#
# The archive is cached in target/bench/ (making it takes a few minutes).
# XZ_THREADS sets the compressor's threads (default 1: one xz block, as most
# upstream tarballs are; with more, xz >= 5.4 may decompress in parallel).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
work=$repo/target/bench/unpack
mkdir -p "$work"
threads=${XZ_THREADS:-1}
archive=$work/real-t$threads.tar.xz

cargo build --release -p forge
forge=$repo/target/release/forge

if [ ! -s "$archive" ]; then
    echo "making $archive (about 100 MB compressed) ..."
    # Regular files up to ~420 MB of input, in a fixed order.
    find /usr/share /usr/lib -xdev -type f -readable -size -50M 2>/dev/null | LC_ALL=C sort |
        awk -v limit=$((420 * 1024 * 1024)) 'BEGIN{t=0} { cmd="stat -c %s \"" $0 "\""; cmd | getline s; close(cmd); t+=s; print; if (t > limit) exit }' \
        > "$work/list"
    tar --no-recursion -cf - -T "$work/list" 2>/dev/null | xz -6 -T"$threads" > "$archive.tmp"
    mv "$archive.tmp" "$archive"
fi
ls -l "$archive"
echo "entries: $(xz -dc "$archive" | tar -t | wc -l), expanded: $(xz -dc "$archive" | wc -c) bytes"

out=$work/out
hyperfine --warmup 1 --runs 5 --export-json "$work/result.json" \
    --prepare "rm -rf $out && mkdir -p $out" \
    -n "forge unpack" "$forge unpack $archive $out" \
    -n "tar xJf" "tar -C $out -xJf $archive"
rm -rf "$out"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
f, t = r["forge unpack"], r["tar xJf"]
print(f"forge unpack {f:.2f}s, tar xJf {t:.2f}s, ratio {f / t:.2f}x (goal <= 1.10x)")
PY
