"""Library pages that only start-up touched are handed back to the kernel.

Starting the daemon runs code it never runs again: the loader relocating ~100 shared objects, numpy's and
onnxruntime's module set-up, onnxruntime registering its CPU kernels when it builds a session. Those pages
of the libraries stay resident — in the process's RSS and in the service's cgroup — until the host runs
short of memory: measured at 20k lines/s with the four default detectors, 41 MB of file-backed pages once a
forest's session was built, of which the running pipeline touched 20 MB again (RSS 99 → 78 to 79 MB).

So once the daemon is up, and again when its file-backed pages have grown by `GROWTH` since they settled
(a new ONNX session after training, a reload), it asks the kernel to reclaim the file-backed pages of its
mappings (`madvise(MADV_PAGEOUT)`, Linux 5.4+). Pages the steady state uses come back on their next touch,
from the page cache or the file; the kernel leaves pages that another process maps too alone, and cannot
drop private dirty pages (relocated data) without swap. Nothing is lost: these are clean copies of files.
A no-op where the call does not exist (another OS, an older kernel, a libc without `madvise`).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

MADV_PAGEOUT = 21
"""From linux/mman.h (5.4+)."""
GROWTH = 8 * 1024 * 1024
"""File-backed resident bytes gained since they settled that make the daemon release them again."""


def _madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def release_library_pages(maps: str = "/proc/self/maps") -> int:
    """Ask the kernel to reclaim the file-backed pages of this process's mappings; returns the bytes of the
    mappings it accepted the advice for (0: not supported here)."""
    madvise = _madvise()
    if madvise is None:
        return 0
    advised = 0
    try:
        with open(maps, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return 0
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not fields[5].startswith("/") or fields[5].startswith("/dev/"):
            continue  # anonymous memory, the heap, the stack, vdso, devices: not ours to drop
        if fields[1].endswith("s"):
            continue  # a shared mapping (SQLite's -shm): its dirty pages would be written back, for nothing
        lo, _, hi = fields[0].partition("-")
        start, end = int(lo, 16), int(hi, 16)
        if madvise(start, end - start, MADV_PAGEOUT) == 0:
            advised += end - start
    return advised


def file_rss(status: str = "/proc/self/status") -> int:
    """Resident file-backed bytes of this process (`RssFile`), 0 where /proc does not say."""
    try:
        with open(status, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("RssFile:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class ColdPages:
    """When to release: at start-up (`start`), then from the daemon's main loop (`check`, every ten seconds)
    whenever the file-backed pages grew by `growth` over the level they settled at after the last release
    (measured at the first check after it, once the working set was faulted back in)."""

    __slots__ = ("_read", "_release", "_settled", "growth", "releases")

    def __init__(
        self,
        read: Callable[[], int] = file_rss,
        release: Callable[[], int] = release_library_pages,
        growth: int = GROWTH,
    ) -> None:
        self._read = read
        self._release = release
        self.growth = growth
        self._settled: int | None = None
        self.releases = 0

    def start(self) -> bool:
        """Release once; False when this host cannot (then `check` does nothing either)."""
        return self._do_release()

    def check(self) -> None:
        if self.releases == 0:
            return
        level = self._read()
        if self._settled is None:
            self._settled = level
        elif level > self._settled + self.growth:
            self._do_release()

    def _do_release(self) -> bool:
        if self._release() <= 0:
            return False
        self.releases += 1
        self._settled = None
        return True
