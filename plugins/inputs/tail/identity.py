"""What makes a file the same file: device + inode + a fingerprint of its first line, and offset markers.

An inode number alone is reused as soon as a file is deleted (Vector #23076, Beats #34419), and a
copytruncate keeps the inode while replacing the content. So the identity adds a hash of the first line
(capped, like Vector's first-line checksum), and a saved offset carries a marker: a hash of the bytes just
before it (Fluent Bit's offset marker). If those bytes changed, the offset no longer means what it meant.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

FINGERPRINT_MAX = 1024
"""The first line is hashed up to this many bytes; a file with no newline in them is hashed at this size."""

MARKER_SIZE = 32
"""Bytes before an offset that its marker covers (Fluent Bit uses 32 as well)."""


def digest(data: bytes | bytearray | memoryview) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def fingerprint_of(head: bytes, limit: int) -> str | None:
    """Hash of the first line of `head` (the file's first bytes); None while that line is incomplete."""
    nl = head.find(b"\n", 0, limit)
    if nl >= 0:
        return digest(head[: nl + 1])
    if len(head) >= limit:
        return digest(head[:limit])
    return None


def read_fingerprint(fd: int, limit: int) -> str | None:
    try:
        return fingerprint_of(os.pread(fd, limit, 0), limit)
    except OSError:
        return None


def marker_at(fd: int, offset: int) -> str | None:
    """Marker of the bytes before `offset` as they are in the file now; None if the file is shorter."""
    lo = max(0, offset - MARKER_SIZE)
    try:
        data = os.pread(fd, offset - lo, lo)
    except OSError:
        return None
    if len(data) != offset - lo:
        return None
    return digest(data)


@dataclass(frozen=True, slots=True)
class FileId:
    """Identity of one content generation of one inode; `gen` counts truncations seen in this process."""

    dev: int
    ino: int
    fp: str
    gen: int = 0

    def __str__(self) -> str:
        base = f"{self.dev:x}:{self.ino:x}:{self.fp}"
        return f"{base}:g{self.gen}" if self.gen else base

    @classmethod
    def parse(cls, text: str) -> FileId | None:
        parts = text.split(":")
        if len(parts) not in (3, 4):
            return None
        try:
            gen = int(parts[3][1:]) if len(parts) == 4 else 0
            return cls(int(parts[0], 16), int(parts[1], 16), parts[2], gen)
        except ValueError:
            return None
