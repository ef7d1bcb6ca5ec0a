#!/usr/bin/env bash
# Benchmark: a whole `forge sandbox -- /bin/true` (process start, full sandbox setup,
# teardown) against bubblewrap doing the same namespaces and mounts, in the same run,
# interleaved round by round (tests/benches/interleave.py says why). Prints each
# median and forge/bwrap (the goal is <= 0.8), the ratio of the minimums and of CPU
# time. Where musl-gcc is installed the musl-linked build (`cargo forge-release-musl`)
# runs in the same rounds; then the process-start floor of each libc.
#   bash tests/benches/sandbox.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-300}
for tool in bwrap busybox python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install bubblewrap busybox-static python3)"; exit 4; }
done
interleave=$PWD/tests/benches/interleave.py
# The system's python: an ordinary user may not reach root's (pyenv's shims).
py=$(command -v /usr/bin/python3 || command -v python3)

root=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$root" "$out"' EXIT
chmod 755 "$root" "$out"
# bwrap cannot create mount points in a read-only root: give it proc, dev, tmp.
mkdir -p "$root/bin" "$root/proc" "$root/dev" "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
ln -s busybox "$root/bin/true"
ln -s busybox "$root/bin/sh"

# The executables users install (static, fixed address: .cargo/config.toml), copied
# where an ordinary user can run them: the glibc build, and the musl-linked one
# (`cargo forge-release-musl`) where musl-gcc is installed.
[ -n "${FORGE_BENCH_NO_BUILD:-}" ] || cargo forge-release -q
cp target/x86_64-unknown-linux-gnu/release/forge "$out/forge"
forges=(forge "$out/forge sandbox --root $root -- /bin/true")
if command -v musl-gcc >/dev/null; then
  [ -n "${FORGE_BENCH_NO_BUILD:-}" ] || cargo forge-release-musl -q
  musl=target/musl/x86_64-unknown-linux-gnu/release/forge
  if [ -x "$musl" ]; then
    cp "$musl" "$out/forge-musl"
    forges+=(forge-musl "$out/forge-musl sandbox --root $root -- /bin/true")
  fi
fi
chmod 755 "$out"/forge*
bwrap=(bwrap "bwrap --unshare-all --ro-bind $root / --proc /proc --dev /dev --tmpfs /tmp /bin/true")

echo "== as $(id -un) ($runs interleaved rounds; the goal is forge/bwrap <= 0.8 at the median)"
"$py" "$interleave" "$runs" "${forges[@]}" "${bwrap[@]}"
if [ "$(id -u)" = 0 ] && id forge-test >/dev/null 2>&1; then
  echo "== as forge-test"
  setpriv --reuid=forge-test --regid=forge-test --clear-groups "$py" "$interleave" "$runs" "${forges[@]}" "${bwrap[@]}"
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
  "$py" "$interleave" "$runs" glibc "$out/empty-glibc" musl "$out/empty-musl"
fi
