"""Hot-path counters of the tail input: plain ints, read at scrape time through `TailInput.stats()`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class TailStats:
    files_opened: int = 0
    files_closed: int = 0
    files_rotated: int = 0
    files_truncated: int = 0
    files_recovered: int = 0
    """Rotated or copied siblings whose unread rest was found by identity and read."""
    lines_read: int = 0
    bytes_read: int = 0
    records_emitted: int = 0
    long_lines_skipped: int = 0
    long_lines_truncated: int = 0
    decode_errors: int = 0
    nul_bytes_skipped: int = 0
    multiline_flushed: int = 0
    """Multiline records emitted by the flush timeout or a size limit rather than by the next start line."""
    permission_denied: int = 0
    access_errors: int = 0
    """Files that exist but could not be opened for another reason (out of descriptors, I/O); retried. (Named
    without "open": the metrics collector takes a name with "open" in it for a gauge.)"""
    offsets_saved: int = 0
    offset_save_errors: int = 0
    polling_fallbacks: int = 0
    polling_switches: int = 0
    """Times a busy file made the reader poll it instead of taking a watchdog event per write."""
    files_open: int = 0

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}
