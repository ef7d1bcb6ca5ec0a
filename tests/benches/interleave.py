#!/usr/bin/env python3
"""Times whole commands, interleaved: every round runs each command once, in a fresh
random order, so that whatever the machine does in the background weighs on all of
them alike.

hyperfine runs all of one command's runs, then all of the next's. For sandboxes that
is unfair: each run leaves a network namespace that a kernel worker tears down after
the run has ended (cleanup_net, about a millisecond of CPU each), so every command
pays for the teardown backlog of the one before it, and the order decides the ratio.

    interleave.py RUNS NAME 'COMMAND ARGS' [NAME 'COMMAND ARGS']...

The last command is the baseline: each line gives the median, mean, minimum and
maximum wall time, the mean CPU time (user + system of the process and its
children, from wait4) and the ratios of median, minimum and CPU to the baseline's.
"""

import os
import random
import shlex
import shutil
import statistics
import sys
import time


def run(argv, null):
    start = time.perf_counter_ns()
    actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
    if status != 0:
        sys.exit(f"{shlex.join(argv)} failed (wait status {status})")
    return wall / 1e6, (usage.ru_utime + usage.ru_stime) * 1e3


def main():
    if len(sys.argv) < 4 or len(sys.argv) % 2 != 0:
        sys.exit(__doc__)
    runs = int(sys.argv[1])
    commands = {}
    for name, line in zip(sys.argv[2::2], sys.argv[3::2]):
        argv = shlex.split(line)
        argv[0] = shutil.which(argv[0]) or sys.exit(f"not found: {argv[0]}")
        commands[name] = argv
    null = os.open(os.devnull, os.O_WRONLY)
    for _ in range(max(10, runs // 10)):  # warm-up: caches, page cache, lazy kernel state
        for argv in commands.values():
            run(argv, null)
    wall = {name: [] for name in commands}
    cpu = {name: [] for name in commands}
    for _ in range(runs):
        order = list(commands)
        random.shuffle(order)
        for name in order:
            w, c = run(commands[name], null)
            wall[name].append(w)
            cpu[name].append(c)
    base = list(commands)[-1]
    base_median, base_min, base_cpu = statistics.median(wall[base]), min(wall[base]), statistics.mean(cpu[base])
    for name in commands:
        w, c = wall[name], statistics.mean(cpu[name])
        print(
            f"{name:<8} median {statistics.median(w):.2f} ms (mean {statistics.mean(w):.2f}, "
            f"min {min(w):.2f}, max {max(w):.2f}), CPU {c:.2f} ms; vs {base}: "
            f"median {statistics.median(w) / base_median:.2f}x, min {min(w) / base_min:.2f}x, "
            f"CPU {c / base_cpu:.2f}x"
        )


main()
