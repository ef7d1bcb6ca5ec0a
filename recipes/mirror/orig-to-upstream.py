#!/usr/bin/env python3
"""Rebuilds an upstream release tarball, byte for byte, from Debian's .orig tarball.

usage: orig-to-upstream.py ORIG OUT

Some upstreams publish no release tarball of their own: GitLab serves
`/-/archive/TAG/NAME-TAG.tar.gz`, which is `git archive --prefix=NAME-TAG/ TAG`
compressed with `gzip -n`. Debian's uscan (mode=git) makes its .orig from the same
`git archive` of the same tag, but with its own top folder (the Debian source name,
e.g. `modemmanager-1.24.0/` for upstream's `ModemManager-1.24.0/`) and compressed
with xz. The tar stream is otherwise the same, so upstream's bytes come back by:

1. decompressing ORIG (.gz, .xz, .bz2 or plain .tar, told apart by magic bytes),
2. renaming the top folder to the one OUT's file name implies (`NAME-TAG.tar.gz`
   -> `NAME-TAG/`) in every ustar header and pax `path`/`linkpath` record, with the
   header checksum rewritten in git's spelling (7 octal digits and a NUL),
3. compressing as OUT's extension says (.tar.gz: GNU `gzip -n`, level 6, the
   compressor git used for GitLab's archives; .tar: none).

The result is only trusted after the caller checks it against the pinned sha256
(seed-debian.sh does); nothing here guesses a hash.
"""

import bz2
import gzip
import lzma
import subprocess
import sys

BLOCK = 512
SUFFIXES = (".tar.gz", ".tgz", ".tar")


def decompress(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.decompress(data)
    if data[:3] == b"BZh":
        return bz2.decompress(data)
    return data


def top_folder(out_name: str) -> str:
    base = out_name.rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)] + "/"
    sys.exit(f"orig-to-upstream: cannot tell the top folder of {out_name} (expected one of {SUFFIXES})")


def octal(field: bytes) -> int:
    text = field.rstrip(b"\0 ").lstrip(b" ")
    return int(text or b"0", 8)


def rename(name: bytes, old: bytes, new: bytes) -> bytes:
    if name.startswith(old):
        return new + name[len(old) :]
    if name + b"/" == old:
        return new.rstrip(b"/")
    return name


def pax_records(body: bytes, old: bytes, new: bytes) -> bytes:
    """Rewrites `path`/`linkpath` records of a pax header, recomputing their lengths."""
    out, i = b"", 0
    while i < len(body):
        space = body.index(b" ", i)
        length = int(body[i:space])
        key, _, value = body[space + 1 : i + length - 1].partition(b"=")
        if key in (b"path", b"linkpath"):
            value = rename(value, old, new)
        rest = b" " + key + b"=" + value + b"\n"
        digits = len(str(len(rest)))
        while len(str(len(rest) + digits)) != digits:
            digits += 1
        out += str(len(rest) + digits).encode() + rest
        i += length
    return out


def ustar_split(path: bytes) -> tuple:
    """(prefix, name) as git's archive-tar.c splits a path too long for `name`: the
    longest prefix (at most 155 bytes) that ends before a `/`, not counting a trailing one."""
    if len(path) <= 100:
        return b"", path
    i = len(path)
    if i > 1 and path[i - 1 : i] == b"/":
        i -= 1
    i = min(i, 155) - 1
    while i > 0 and path[i : i + 1] != b"/":
        i -= 1
    if i == 0 or len(path) - i - 1 > 100:
        sys.exit(f"orig-to-upstream: {path!r} needs a pax header where the original had none")
    return path[:i], path[i + 1 :]


def header(block: bytes, old: bytes, new: bytes) -> bytes:
    """The ustar header with its name (and hard link target) renamed and re-summed.

    A header that names nothing under the old top folder is returned untouched, so
    its checksum keeps whatever spelling the tool that wrote it used."""
    h = bytearray(block)
    prefix = bytes(h[345:500]).rstrip(b"\0")
    name = bytes(h[0:100]).rstrip(b"\0")
    full = prefix + b"/" + name if prefix else name
    renamed = rename(full, old, new)
    if renamed != full:
        new_prefix, new_name = ustar_split(renamed)
        h[0:100] = new_name.ljust(100, b"\0")
        h[345:500] = new_prefix.ljust(155, b"\0")
    if h[156:157] == b"1":  # a hard link names another member
        link = bytes(h[157:257]).rstrip(b"\0")
        h[157:257] = rename(link, old, new).ljust(100, b"\0")[:100]
    if bytes(h) == block:
        return block
    return resum(h)


def resum(h: bytearray) -> bytes:
    """The header with its checksum recomputed, in git's spelling."""
    h[148:156] = b" " * 8
    h[148:156] = b"%07o\0" % sum(h)
    return bytes(h)


def retop(tar: bytes, new_top: str) -> bytes:
    """The tar stream with its one top folder renamed to new_top."""
    out = bytearray()
    old, new = None, new_top.encode()
    i = 0
    while i + BLOCK <= len(tar):
        block = tar[i : i + BLOCK]
        if block == bytes(BLOCK):
            break
        size = octal(block[124:136])
        kind = block[156:157]
        body = tar[i + BLOCK : i + BLOCK + size]
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if kind in (b"x", b"g"):
            records = pax_records(body, old, new) if old is not None and kind == b"x" else body
            if records != body:
                h = bytearray(block)
                h[124:136] = b"%011o\0" % len(records)
                block = resum(h)
                body, padded = records, (len(records) + BLOCK - 1) // BLOCK * BLOCK
        else:
            if old is None:
                name = bytes(block[0:100]).rstrip(b"\0")
                old = name.split(b"/", 1)[0] + b"/"
            block = header(block, old, new)
        out += block + body + bytes(padded - len(body))
        i += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK
    out += tar[i:]
    if old is None:
        sys.exit("orig-to-upstream: the tarball holds no member")
    return bytes(out)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    orig, out = sys.argv[1], sys.argv[2]
    with open(orig, "rb") as f:
        tar = retop(decompress(f.read()), top_folder(out))
    with open(out, "wb") as f:
        if out.endswith(".tar"):
            f.write(tar)
        else:
            subprocess.run(["gzip", "-n", "-c"], input=tar, stdout=f, check=True)


if __name__ == "__main__":
    main()
