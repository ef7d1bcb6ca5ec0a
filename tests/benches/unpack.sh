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
    # Regular files, in a fixed order, until ~420 MB of input.
    python3 - "$work/list" <<'PY'
import os, sys
total, limit, out = 0, 420 << 20, []
for top in ("/usr/share", "/usr/lib"):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.isfile(path) and not os.path.islink(path) and st.st_size < 50 << 20 and os.access(path, os.R_OK):
                out.append(path)
                total += st.st_size
            if total > limit:
                break
        if total > limit:
            break
    if total > limit:
        break
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
    tar --no-recursion -cf - -T "$work/list" 2>/dev/null | xz -6 -T"$threads" > "$archive.tmp"
    mv "$archive.tmp" "$archive"
fi
ls -l "$archive"
echo "entries: $(xz -dc "$archive" | tar -t | wc -l), expanded: $(xz -dc "$archive" | wc -c) bytes"

# Output on tmpfs when there is one, so disk contention from other work does not
# decide the result (BENCH_OUT overrides).
out=${BENCH_OUT:-$( [ -d /dev/shm ] && echo /dev/shm/forge-bench-unpack || echo "$work/out" )}
uptime
hyperfine --warmup 1 --runs 7 --export-json "$work/result.json" \
    --prepare "rm -rf $out && mkdir -p $out" \
    -n "forge unpack" "$forge unpack $archive $out" \
    -n "tar xJf" "tar -C $out -xJf $archive"
rm -rf "$out"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, t = r["forge unpack"], r["tar xJf"]
for stat in ("mean", "median", "min"):
    print(f"{stat:>6}: forge unpack {f[stat]:.2f}s, tar xJf {t[stat]:.2f}s, ratio {f[stat] / t[stat]:.2f}x (goal <= 1.10x)")
print("(on a busy machine, min is the least noisy figure; see `uptime`)")
PY
