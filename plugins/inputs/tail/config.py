"""The tail input's options: one frozen dataclass is the schema, the defaults and the user docs.

Defaults follow what the surveyed agents learned the hard way: rotated files are drained for a few seconds
after a rename (Fluent Bit's `rotate_wait` 5 s), the glob is re-scanned often because inotify can overflow
silently, and over-long lines are cut or skipped instead of stalling the file (Fluent Bit's default of
dropping the whole file was a common support issue).
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from typing import Literal

from agent.schema import ByteSize, Duration, opt
from plugins.inputs.tail.discovery import expand, watch_root


@dataclass(frozen=True, slots=True, kw_only=True)
class MultilineConfig:
    start: str = opt(
        doc="Regular expression matching the first line of a record; other lines join the record before them.",
        example=r"^\d{4}-\d{2}-\d{2}",
    )
    flush: Duration = opt(
        Duration(2.0), doc="A record waiting for continuation lines is emitted after this much quiet time."
    )
    max_lines: int = opt(500, ge=1, doc="A record is emitted once it holds this many lines.")
    max_bytes: ByteSize = opt(ByteSize(1024 * 1024), doc="A record is emitted once it holds this many bytes.")

    def __post_init__(self) -> None:
        try:
            re.compile(self.start)
        except re.error as exc:
            raise ValueError(f"multiline.start is not a valid regular expression: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class TailConfig:
    path: list[str] = opt(
        doc="Glob patterns of the files to follow (`*`, `?`, `[...]`, and `**` for any depth).",
        example="/var/log/app/*.log",
    )
    exclude: list[str] = opt(
        [], doc="Glob patterns of paths to leave alone even when `path` matches them (e.g. `*.gz`)."
    )
    read_from: Literal["beginning", "end"] = opt(
        "end",
        doc=(
            "Where to start in a file found at startup that has no saved offset; files that appear later "
            "are always read from their beginning."
        ),
    )
    poll: bool = opt(
        False,
        doc="Watch with stat polling instead of inotify: needed on NFS, SMB and other network filesystems.",
    )
    poll_interval: Duration = opt(Duration(1.0), doc="How often the polling watcher looks for changes.")
    refresh_interval: Duration = opt(
        Duration(5.0),
        doc="How often the globs are re-scanned for new files even when no filesystem event arrived.",
    )
    rotate_wait: Duration = opt(
        Duration(5.0),
        doc=(
            "How long a renamed or deleted file stays open so a writer that still holds it can finish; "
            "it is read to its end before it is closed."
        ),
    )
    max_line_size: ByteSize = opt(
        ByteSize(64 * 1024), doc="Longest line kept in memory; longer lines follow `long_lines`."
    )
    long_lines: Literal["skip", "truncate"] = opt(
        "truncate",
        doc="What to do with a line over `max_line_size`: drop it, or keep its first `max_line_size` bytes.",
    )
    encoding: str = opt(
        "utf-8", doc="Character encoding of the files; bytes that do not decode are replaced and counted."
    )
    multiline: MultilineConfig | None = opt(
        None, doc="Join continuation lines (stack traces) to the line that starts their record."
    )
    ignore_older: Duration | None = opt(
        None,
        doc=(
            "Skip files not modified for this long when they are discovered; a skipped file that is written "
            "again is followed from the size it had when it was skipped."
        ),
    )
    expire_offsets: Duration = opt(
        Duration(7 * 86400.0),
        doc="Saved offsets of files that were not seen for this long are forgotten.",
    )

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path: at least one glob pattern is required")
        if self.max_line_size.bytes < 16:
            raise ValueError("max_line_size: must be at least 16 bytes")
        if self.poll_interval.seconds <= 0 or self.refresh_interval.seconds <= 0:
            raise ValueError("poll_interval and refresh_interval must be greater than zero")


def preflight(config: TailConfig) -> list[tuple[str, str]]:
    """Checks the dataclass cannot make alone: the encoding exists and splits on b"\\n"; patterns compile."""
    problems: list[tuple[str, str]] = []
    try:
        codecs.lookup(config.encoding)
    except LookupError:
        problems.append(("encoding", f"unknown encoding {config.encoding!r}"))
    else:
        if "\n".encode(config.encoding, errors="replace") != b"\n" or "a".encode(config.encoding) != b"a":
            problems.append(
                ("encoding", f"{config.encoding!r} is not ASCII-compatible; lines could not be split on newlines")
            )
    if config.multiline is not None:
        try:
            re.compile(config.multiline.start)
        except re.error as exc:
            problems.append(("multiline.start", f"not a valid regular expression: {exc}"))
    for i, pattern in enumerate(config.path):
        if not pattern.strip():
            problems.append((f"path[{i}]", "empty pattern"))
        elif not pattern.startswith("/"):
            problems.append((f"warning:path[{i}]", "relative pattern; it is resolved against the daemon's cwd"))
        else:
            missing = _missing_folder(pattern)
            if missing is not None:
                problems.append((f"warning:path[{i}]", missing))
    return problems


def _missing_folder(pattern: str) -> str | None:
    """Why `pattern` (absolute) will likely never match anything, or None.

    A pattern that matches no file yet is normal — the service has not started, its first log is written
    later, a rotation is under way — and the rescan picks the file up when it appears, so that alone is
    never reported. A pattern whose fixed folder (the part before the first glob character) does not exist
    is most often a typo (`/var/lgo/*.log`) that would tail nothing, silently, forever; it is only a warning
    because some programs create their log folder when they first start, and the rescan finds it then.
    """
    if expand([pattern], []).files:
        return None
    root, _deep = watch_root(pattern)
    if os.path.isdir(root):
        return None
    what = "is not a folder" if os.path.exists(root) else "does not exist"
    return f"{pattern!r} matches no file and its folder {root} {what}; a typo? (it is still picked up if it appears later)"
