#!/usr/bin/env bash
# Benchmark: `forge unpack` against `tar xJf` on a ~140 MB tar.xz of real files
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
    echo "making $archive (about 140 MB compressed, 470 MB of files) ..."
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
# forge and tar alternate, so that load from other work on the machine hits both
# alike; each pair gives a ratio, and the median ratio is the result. CPU time
# (user + sys) is printed too: it barely depends on the machine's load.
runs=${RUNS:-7}
: > "$work/times"
for i in $(seq 0 "$runs"); do
    for tool in forge tar; do
        rm -rf "$out" && mkdir -p "$out"
        if [ "$tool" = forge ]; then cmd=("$forge" unpack "$archive" "$out"); else cmd=(tar -C "$out" -xJf "$archive"); fi
        { TIMEFORMAT="$i $tool %R %U %S"; time "${cmd[@]}" > /dev/null 2>&1; } 2>> "$work/times"
    done
done
rm -rf "$out"

python3 - "$work/times" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    i, tool, wall, user, sys_ = line.split()
    if i != "0":  # run 0 warms the page cache
        runs.setdefault(int(i), {})[tool] = (float(wall), float(user) + float(sys_))
pairs = [r for r in runs.values() if len(r) == 2]
for what, k in (("wall", 0), ("cpu", 1)):
    f = [p["forge"][k] for p in pairs]
    t = [p["tar"][k] for p in pairs]
    ratio = statistics.median(p["forge"][k] / p["tar"][k] for p in pairs)
    print(f"{what:>4}: forge unpack median {statistics.median(f):.2f}s (min {min(f):.2f}), "
          f"tar xJf median {statistics.median(t):.2f}s (min {min(t):.2f}); median pair ratio {ratio:.2f}x")
print("goal: wall ratio <= 1.10x")
PY
