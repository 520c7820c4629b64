"""glibc's allocator, told to give large blocks back: the daemon's steady RSS, not its high-water mark.

glibc serves a block of 128 KiB or more with mmap and returns it on free, but raises that threshold to the
size of any such block that is freed (up to 32 MiB). A daemon that regularly frees large blocks (numpy
temporaries when windows close, batches, growing arrays) soon has them all carved out of the brk heap,
where a single live small object near the top keeps megabytes of freed memory counted in RSS: 7 MB of the
92 MB of a replay with all four detectors. Pinning the threshold keeps large blocks on mmap (one
mmap/munmap pair each, a few per second at most). The same fix as setting `MALLOC_MMAP_THRESHOLD_`.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
"""mallopt parameter number from glibc's malloc.h."""
MMAP_THRESHOLD = 128 * 1024
"""glibc's own default: pinning it only stops the dynamic increase."""


def pin_mmap_threshold() -> bool:
    """True if glibc took it; False on another libc or platform (nothing to do there)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: its libc's
    except (OSError, AttributeError):  # musl has no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
