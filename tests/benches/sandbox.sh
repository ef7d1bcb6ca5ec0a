#!/usr/bin/env bash
# Benchmark: a whole `forge sandbox -- /bin/true` (process start, full sandbox setup,
# teardown) against bubblewrap doing the same namespaces and mounts, in the same run.
# Prints each median and forge/bwrap (the goal is <= 0.8), the ratio of the minimums
# and of CPU time (both far less sensitive to a busy machine than the median).
# Where musl-gcc is installed it does the same for the musl-linked build
# (`cargo forge-release-musl`), then prints the process-start floor of each libc.
#   bash tests/benches/sandbox.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-300}
for tool in hyperfine bwrap busybox python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine bubblewrap busybox-static)"; exit 4; }
done
# The executable users install (static, fixed address: .cargo/config.toml).
[ -n "${FORGE_BENCH_NO_BUILD:-}" ] || cargo forge-release -q
forge=$PWD/target/x86_64-unknown-linux-gnu/release/forge

root=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$root" "$out"' EXIT
chmod 755 "$root"
# bwrap cannot create mount points in a read-only root: give it proc, dev, tmp.
mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
ln -s busybox "$root/bin/true"
ln -s busybox "$root/bin/sh"

bench() { # label, then the user prefix (may be empty)
  local label=$1; shift
  echo "== $label"
  hyperfine -N --warmup 30 --runs "$runs" --export-json "$out/$label.json" \
    -n forge "$* $forge sandbox --root $root -- /bin/true" \
    -n bwrap "$* bwrap --unshare-all --ro-bind $root / --proc /proc --dev /dev --tmpfs /tmp /bin/true" \
    >/dev/null
  python3 - "$out/$label.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, b = r["forge"], r["bwrap"]
ms = lambda x: "median %.2f ms (mean %.2f, min %.2f, max %.2f)" % tuple(1000 * x[k] for k in ("median", "mean", "min", "max"))
print("forge sandbox:", ms(f))
print("bwrap:        ", ms(b))
print("ratio forge/bwrap (median): %.2fx" % (f["median"] / b["median"]))
print("ratio forge/bwrap (min):    %.2fx" % (f["min"] / b["min"]))
cpu = lambda x: x["user"] + x["system"]
print("CPU user+sys (mean): forge %.2f ms, bwrap %.2f ms, ratio %.2fx" % (1000 * cpu(f), 1000 * cpu(b), cpu(f) / cpu(b)))
PY
}

bench_users() { # label suffix
  bench "as-$(id -un)$1"
  if [ "$(id -u)" = 0 ] && id forge-test >/dev/null 2>&1; then
    chmod 755 "$out"
    bench "as-forge-test$1" setpriv --reuid=forge-test --regid=forge-test --clear-groups
  fi
}
bench_users ""

# The same forge linked against musl (cargo forge-release-musl), when musl-gcc is here.
if command -v musl-gcc >/dev/null; then
  [ -n "${FORGE_BENCH_NO_BUILD:-}" ] || cargo forge-release-musl -q
  forge=$PWD/target/musl/x86_64-unknown-linux-gnu/release/forge
  [ -x "$forge" ] && bench_users "-musl"
fi

# The floor under both: what any process costs to start here, before its main. A
# static glibc binary probes the CPU's caches with cpuid at start (dl_init_cacheinfo);
# on a VM each cpuid is an exit to the hypervisor. forge (static glibc) and bwrap (its
# ld.so) each pay it once per run, and so does the busybox they both exec. musl's
# start does no such probing.
if command -v gcc >/dev/null && command -v musl-gcc >/dev/null; then
  echo "== process start floor (empty main, static)"
  printf 'int main(void) { return 0; }\n' > "$out/empty.c"
  gcc -O2 -static -o "$out/empty-glibc" "$out/empty.c"
  musl-gcc -O2 -static -o "$out/empty-musl" "$out/empty.c"
  hyperfine -N --warmup 50 --runs "$runs" --export-json "$out/floor.json" \
    -n glibc "$out/empty-glibc" -n musl "$out/empty-musl" >/dev/null
  python3 - "$out/floor.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
g, m = r["glibc"]["median"], r["musl"]["median"]
print("static glibc: median %.2f ms; static musl: median %.2f ms; glibc's start costs %.2f ms more" % (1000 * g, 1000 * m, 1000 * (g - m)))
PY
fi
