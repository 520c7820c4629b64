"""Finding files: expanding the globs, choosing directories to watch, and finding a file's rotated sibling.

Fluent Bit and Vector only ever look at paths that match the glob, so the rest of a file that was renamed
(or copied and truncated) while the agent was down is lost. The rotated copy is almost always beside the
original (`app.log.1`, `app.log-20240501`), so we look there, and accept a sibling only when it proves to
be the same content: same inode, or same first-line fingerprint and the same bytes before the offset.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from dataclasses import dataclass

from plugins.inputs.tail.identity import MARKER_SIZE, digest, fingerprint_of

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")
MAX_SIBLINGS = 64


@dataclass(slots=True)
class Found:
    files: dict[str, os.stat_result]
    directories: list[str]
    others: list[str]
    """Matches that are neither regular files nor directories (fifos, sockets, devices): never opened."""


def watch_root(pattern: str) -> tuple[str, bool]:
    """The deepest directory without glob characters, and whether matches can lie below its children."""
    parts = os.path.normpath(os.path.abspath(pattern)).split(os.sep)
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            root = os.sep.join(parts[:i]) or os.sep
            return root, i < len(parts) - 1
    return os.path.dirname(os.sep.join(parts)) or os.sep, False


def excluded(path: str, excludes: list[str]) -> bool:
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(name, p) for p in excludes)


def expand(patterns: list[str], excludes: list[str]) -> Found:
    found = Found({}, [], [])
    for pattern in patterns:
        for path in glob.glob(os.path.abspath(pattern), recursive=True):
            if path in found.files or excluded(path, excludes):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished between the listing and the stat, or a dangling symlink
            if stat.S_ISREG(st.st_mode):
                found.files[path] = st
            elif stat.S_ISDIR(st.st_mode):
                found.directories.append(path)
            else:
                found.others.append(path)
    return found


def _names(original: str) -> list[str]:
    """`original`, and the file it links to when it is a symlink: rotation renames or copies the target,
    beside the target (Kubernetes' /var/log/containers/*.log link to the pods' files)."""
    real = os.path.realpath(original)
    return [original] if real == original else [original, real]


def _siblings(original: str) -> list[tuple[str, str, os.stat_result]]:
    """Regular, uncompressed files beside `original` (or its symlink target) that share its stem, newest
    first, each with the name it is a sibling of."""
    names = _names(original)
    out: list[tuple[str, str, os.stat_result]] = []
    seen = set(names)
    inodes: set[tuple[int, int]] = set()  # a directory reached through a symlink lists the same files twice
    for name in names:
        stem = os.path.basename(name).split(".", 1)[0]
        try:
            entries = list(os.scandir(os.path.dirname(name)))
        except OSError:
            continue
        for e in entries:
            if e.path in seen or not e.name.startswith(stem) or e.name.endswith(_COMPRESSED):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in inodes:
                inodes.add((st.st_dev, st.st_ino))
                out.append((e.path, name, st))
    out.sort(key=lambda item: item[2].st_mtime, reverse=True)
    return out[:MAX_SIBLINGS]


def find_by_inode(original: str, dev: int, ino: int) -> tuple[str, os.stat_result] | None:
    """A renamed file: the sibling of `original` that is the same inode, or `original` itself when that is a
    rotated name (a restart that began reading a rotated rest saves it under the name it found it at)."""
    try:
        st = os.stat(original)
    except OSError:
        pass
    else:
        if st.st_dev == dev and st.st_ino == ino and stat.S_ISREG(st.st_mode):
            return original, st
    for path, _, st in _siblings(original):
        if st.st_dev == dev and st.st_ino == ino:
            return path, st
    return None


def renamed_since(original: str, since: float) -> list[tuple[str, os.stat_result]]:
    """Siblings named `<name of original><sep>…` (logrotate's `.1`, `-20240501`) renamed after `since`."""
    out = []
    for path, name, st in _siblings(original):
        base = os.path.basename(name)
        rest = os.path.basename(path)[len(base):]
        if os.path.basename(path).startswith(base) and rest[:1] in (".", "-", "_") and st.st_ctime > since:
            out.append((path, st))
    return out


def fingerprint_file(path: str, fp_limit: int) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fingerprint_of(fh.read(fp_limit), fp_limit)
    except OSError:
        return None


def content_matches(path: str, fp: str, offset: int, marker: str | None, fp_limit: int) -> bool:
    """Does the file at `path` start with the first line `fp` and hold the bytes `marker` before `offset`?"""
    lo = max(0, offset - MARKER_SIZE)
    try:
        with open(path, "rb") as fh:
            head = fh.read(fp_limit)
            fh.seek(lo)
            before = fh.read(offset - lo)
    except OSError:
        return False
    if fingerprint_of(head, fp_limit) != fp or len(before) != offset - lo:
        return False
    return marker is None or digest(before) == marker


def find_copy(
    original: str,
    fp: str,
    offset: int,
    marker: str | None,
    fp_limit: int,
    skip: set[tuple[int, int]],
) -> tuple[str, os.stat_result] | None:
    """A copied file (copytruncate): a sibling with the same first line and the same bytes before `offset`."""
    if marker is None:
        return None
    for path, _, st in _siblings(original):
        if (st.st_dev, st.st_ino) in skip or st.st_size < offset:
            continue
        if content_matches(path, fp, offset, marker, fp_limit):
            return path, st
    return None
