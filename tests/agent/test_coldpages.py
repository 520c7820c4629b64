"""Releasing library pages: the kernel really drops resident file-backed pages and they read back intact;
the daemon's policy releases at start-up and again only after the pages grew."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.coldpages import ColdPages

# A file only this child maps stands in for a library only the daemon maps (the kernel leaves pages that
# another process maps alone, and the test runner maps numpy and onnxruntime itself).
CHILD = """
import hashlib, mmap, sys
from agent.coldpages import file_rss, release_library_pages

path = sys.argv[1]
with open(path, "rb") as fh:
    m = mmap.mmap(fh.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)  # as a library is mapped
try:  # a kernel (or a seccomp filter) that refuses the advice of 5.4, told apart from our code advising nothing
    m.madvise(20)  # MADV_COLD (linux/mman.h; no constant in Python 3.11)
except (OSError, AttributeError):
    print("unsupported")
    sys.exit(0)
digest = hashlib.sha256(m).hexdigest()  # touches every page: all resident now
before = file_rss()
advised = release_library_pages()
after = file_rss()
again = hashlib.sha256(m).hexdigest()  # faulted back in from the file
print(advised, before, after, digest == again)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise(MADV_PAGEOUT) is Linux's")
def test_file_backed_pages_are_dropped_and_read_back_intact(tmp_path: Path) -> None:
    data = tmp_path / "lib.bin"
    with data.open("wb") as fh:
        fh.write(os.urandom(16 * 1024 * 1024))
        fh.flush()
        os.fsync(fh.fileno())  # a dirty page cannot be dropped before it is written back
    out = subprocess.run([sys.executable, "-c", CHILD, str(data)], capture_output=True, text=True, timeout=60,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    if out.stdout.strip() == "unsupported":
        pytest.skip("this kernel refuses madvise(MADV_COLD/MADV_PAGEOUT) (Linux < 5.4, or a seccomp filter)")
    advised, before, after, intact = out.stdout.split()
    assert int(advised) >= 16 * 1024 * 1024 and intact == "True"
    assert int(before) - int(after) >= 12 * 1024 * 1024  # the 16 MiB mapping, less what came straight back


class Probe:
    """Stands in for /proc and the kernel: what `RssFile` says, and a record of the releases."""

    def __init__(self, supported: bool = True) -> None:
        self.level = 30_000_000
        self.calls = 0
        self.supported = supported

    def read(self) -> int:
        return self.level

    def release(self) -> int:
        self.calls += 1
        if not self.supported:
            return 0
        self.level = 10_000_000
        return 100_000_000


def test_released_at_start_then_again_only_when_the_pages_grew() -> None:
    probe = Probe()
    cold = ColdPages(read=probe.read, release=probe.release, growth=8_000_000)
    assert cold.start() and probe.calls == 1
    probe.level = 14_000_000  # the working set faulted back in: this is where it settles
    cold.check()
    probe.level = 21_000_000  # grew by 7 MB: not yet
    cold.check()
    assert probe.calls == 1
    probe.level = 23_000_000  # a new model's session: 9 MB over the settled level
    cold.check()
    assert probe.calls == 2 and cold.releases == 2
    probe.level = 25_000_000  # the first check after a release only measures the new settled level
    cold.check()
    assert probe.calls == 2


def test_nothing_is_tried_again_where_the_kernel_cannot() -> None:
    probe = Probe(supported=False)
    cold = ColdPages(read=probe.read, release=probe.release)
    assert not cold.start()
    probe.level = 90_000_000
    cold.check()
    cold.check()
    assert probe.calls == 1 and cold.releases == 0
