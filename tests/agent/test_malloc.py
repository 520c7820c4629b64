"""The pinned mmap threshold, checked with glibc's own counters in a fresh interpreter each way."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

CHILD = """
import ctypes, sys
from agent.malloc import pin_mmap_threshold

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
pinned = pin_mmap_threshold() if sys.argv[1] == "pin" else False
big = bytearray(4 * 1024 * 1024)  # served by mmap; freeing it raises glibc's dynamic threshold
del big
before = mallinfo2().hblks
middle = bytearray(512 * 1024)  # mmapped again only while the threshold stays pinned
print(pinned, mallinfo2().hblks - before)
"""


def _child(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=60, check=True)
    pinned, extra = out.stdout.split()
    return pinned, int(extra)


def test_large_blocks_stay_mmapped_after_a_larger_one_was_freed() -> None:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018 - glibc >= 2.33 only
    except (OSError, AttributeError):
        pytest.skip("not glibc >= 2.33: no mallinfo2 to observe the allocator with")
    assert _child("default") == ("False", 0)  # glibc raised its threshold: the block came from the heap
    assert _child("pin") == ("True", 1)


ARENAS = """
import ctypes, sys, threading
from agent.malloc import single_arena

one = single_arena() if sys.argv[1] == "one" else False
held = []

def work():
    for _ in range(200):
        held.append(bytearray(4096))  # over obmalloc's 512 bytes: glibc's malloc, from this thread's arena

threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" section per arena, on stderr
print(one)
"""


def _arenas(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip(), out.stderr.count("Arena ")


def test_threads_allocate_from_one_arena() -> None:
    try:
        ctypes.CDLL(None).malloc_stats  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        pytest.skip("not glibc: no malloc_stats to count arenas with")
    default, one = _arenas("default"), _arenas("one")
    assert one == ("True", 1)
    assert default[0] == "False" and default[1] > 1  # glibc's default: each new thread its own


TRIM = """
import sys
from agent.malloc import pin_mmap_threshold, trim

pin_mmap_threshold()  # as the daemon runs: blocks under 128 KiB come from the heap

def rss_kib():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))

freed = [bytearray(64 * 1024) for _ in range(800)]  # 50 MiB of heap blocks, each kept in by the small one after it
pins = []
for block in freed:
    pins.append(bytearray(600))
del freed
before = rss_kib()
trimmed = trim() if sys.argv[1] == "trim" else False
print(trimmed, before - rss_kib())
"""


def test_trim_gives_back_the_free_pages_inside_the_heap() -> None:
    """Freed blocks that live small blocks pin in the heap stay in RSS until malloc_trim returns their pages."""
    def child(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", TRIM, mode], capture_output=True, text=True, timeout=60, check=True)
        trimmed, released = out.stdout.split()
        return trimmed, int(released)

    try:
        ctypes.CDLL(None).malloc_trim  # noqa: B018 - glibc only
    except (OSError, AttributeError):
        pytest.skip("not glibc: no malloc_trim")
    assert child("keep")[1] < 4 * 1024
    trimmed, released = child("trim")
    assert trimmed == "True" and released > 30 * 1024  # KiB: most of the 50 MiB
