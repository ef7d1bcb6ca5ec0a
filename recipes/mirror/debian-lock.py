#!/usr/bin/env python3
"""Writes a forge Debian lock: the dependency closure of ROOT packages as apt sees it.

usage: debian-lock.py [--exclude LOCK]... [--omit PKG]... ROOT... > recipes/data/NAME.lock

Follows Depends and Pre-Depends (not Recommends), takes the first alternative of an
`a | b` group and the first provider of a virtual package, for the machine's default
architecture and candidate versions. Packages already pinned by an --exclude lock (for
example the bootstrap toolchain, stacked below) are left out, and so are their
dependencies that the excluded lock already covers. --omit PKG leaves PKG and what only
it needs out (run-time parts a build never loads, such as Mesa's DRI drivers and LLVM
behind them). Prints
`package version arch size sha256 pool-path` lines, sorted, the format
recipes/src/bootstrap.rs parses and recipes/mirror/seed-debian.sh downloads.
Only apt-cache is asked: nothing is downloaded.
"""
import subprocess
import sys


def apt(*args):
    return subprocess.run(["apt-cache", *args], check=True, capture_output=True, text=True).stdout


def graph(roots):
    """pkg -> its dependency groups (each a list of candidate names in apt's order), and
    the names that are only virtual.

    One `apt-cache depends --recurse` call (loading apt's cache is slow): a block per
    package, `  Depends: x` lines (`|` marks an alternative that continues the group),
    and more deeply indented lines naming the packages that provide a virtual `<x>`.
    Foreign architectures (`name:arch`) are skipped: the lock is for one architecture.
    """
    out = apt("depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
              "--no-breaks", "--no-replaces", "--no-enhances", *roots)
    deps, virtual, pkg, group, continues = {}, set(), None, None, False
    for line in out.splitlines():
        if not line.startswith(" "):
            pkg = line.strip("<>")
            deps.setdefault(pkg, [])
            if line.startswith("<"):
                virtual.add(pkg)
            continues = False
        elif line.startswith("    "):
            if group is not None and ":" not in line.strip():
                group.append(line.strip())
        else:
            kind, _, name = line.strip().partition(": ")
            alt = kind.startswith("|")
            if kind.lstrip("|") not in ("Depends", "PreDepends"):
                group, continues = None, False
                continue
            name = name.strip("<>")
            if ":" in name:
                group = None
                continue
            if not continues:
                group = []
                deps[pkg].append(group)
            group.append(name)
            continues = alt
    return deps, virtual


def closure(roots, excluded):
    """Real packages reached from roots, taking the first real choice of every group."""
    deps, virtual = graph(roots)
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name in excluded:
            continue
        seen.add(name)
        for group in deps.get(name, []):
            choice = next((n for n in group if n in deps and n not in virtual), group[0])
            if choice not in excluded and not any(n in excluded or n in seen for n in group):
                todo.append(choice)
    return seen


def records(pkgs):
    """(package version arch size sha256 pool-path) of each candidate, one apt-cache call."""
    out = apt("show", "--no-all-versions", *sorted(pkgs))
    result = []
    for para in out.strip().split("\n\n"):
        fields = {}
        for line in para.splitlines():
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        result.append((fields["Package"], fields["Version"], fields["Architecture"], fields["Size"],
                       fields["SHA256"], fields["Filename"]))
    return sorted(result)


def main(argv):
    excluded, roots = set(), []
    it = iter(argv)
    for a in it:
        if a == "--exclude":
            for line in open(next(it)):
                if line.strip() and not line.startswith("#"):
                    excluded.add(line.split()[0])
        elif a == "--omit":
            excluded.add(next(it))
        else:
            roots.append(a)
    for rec in records(closure(roots, excluded)):
        print(" ".join(rec))


if __name__ == "__main__":
    main(sys.argv[1:])
