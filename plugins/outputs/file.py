"""File output: JSON Lines of records or alerts appended to a file, with optional size-based rotation.

The pipeline commits tail offsets once `write_records` returns, so with `fsync: true` every batch is
flushed and fsynced before returning: a record is on disk before its source offset moves past it. Rotation
renames `path` to `path.1` (shifting older ones up to `rotate_keep`) before a write would pass
`rotate_size`, the way logrotate's `size` rule does, so a reader can follow the file by name.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

import structlog

from agent.plugin import Delivery, PluginContext, Retry, Sent
from agent.schema import ByteSize, opt
from agent.types import Alert, Record
from plugins.outputs.jsonl import alerts_to_jsonl, records_to_jsonl

log = structlog.get_logger("logwarden.output.file")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileConfig:
    path: str = opt(doc="File the JSON lines are appended to; its directory is created if missing.")
    fsync: bool = opt(True, doc="Flush and fsync after every batch, so what was written survives a crash.")
    rotate_size: ByteSize | None = opt(
        None, doc="Rename the file to `<path>.1` before it would grow past this size; never when unset."
    )
    rotate_keep: int = opt(5, ge=1, le=1000, doc="Rotated files kept (`<path>.1` … `<path>.N`).")

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("path must not be empty")
        if self.rotate_size is not None and self.rotate_size.bytes < 1024:
            raise ValueError("rotate_size must be at least 1KiB")


class FileOutput:
    name: ClassVar[str] = "file"
    config_class: ClassVar[type[FileConfig]] = FileConfig
    supports_resolve: ClassVar[bool] = True
    max_batch: ClassVar[int] = 500

    def __init__(self, config: FileConfig, ctx: PluginContext) -> None:
        self.config = config
        self.ctx = ctx
        self.path = Path(config.path)
        self._fh: IO[bytes] | None = None
        self._size = 0
        self._lock = threading.Lock()
        self.rotations = 0
        self.bytes_written = 0

    @staticmethod
    def preflight(config: FileConfig) -> list[tuple[str, str]]:
        parent = Path(config.path).parent
        probe = parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            return [("path", f"directory {probe} is not writable")]
        if Path(config.path).is_dir():
            return [("path", "is a directory")]
        return []

    def start(self) -> None:
        with self._lock:
            self._open()

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: `_write` must know exactly how much of a batch reached the file (see there).
            self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open across batches, closed in stop()
            self._size = self._fh.tell()
        return self._fh

    def _rotate(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        keep = self.config.rotate_keep
        oldest = self.path.with_name(f"{self.path.name}.{keep}")
        with contextlib.suppress(FileNotFoundError):
            oldest.unlink()
        for i in range(keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        log.info("file_rotated", path=str(self.path))

    def _write(self, text: str) -> None:
        data = text.encode("utf-8")
        with self._lock:
            limit = self.config.rotate_size
            fh = self._open()
            if limit is not None and self._size > 0 and self._size + len(data) > limit.bytes:
                self._rotate()
                fh = self._open()
            start = os.fstat(fh.fileno()).st_size  # not `_size`: a copytruncate may have shrunk the file
            try:
                view = memoryview(data)
                while view:
                    n = fh.write(view)
                    view = view[n or 0:]
                if self.config.fsync:
                    os.fsync(fh.fileno())
            except OSError:
                # A full disk accepts part of a batch before failing. The caller retries the whole batch, so
                # the part must go: left in place it would be a torn line followed by duplicates.
                with contextlib.suppress(OSError):
                    os.ftruncate(fh.fileno(), start)
                raise
            self._size += len(data)
            self.bytes_written += len(data)

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        try:
            self._write(alerts_to_jsonl(alerts))
        except OSError as exc:  # disk full or a vanished mount: the spool keeps the alerts until it clears
            self._drop_handle()
            return Retry(f"write failed: {exc.strerror or type(exc).__name__}")
        return Sent()

    def write_records(self, records: Sequence[Record]) -> None:
        """Raises OSError when the batch is not on disk, so the pipeline does not commit its offsets."""
        if not records:
            return
        try:
            self._write(records_to_jsonl(records))
        except OSError:
            self._drop_handle()
            raise

    def _drop_handle(self) -> None:
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None

    def stop(self) -> None:
        self._drop_handle()

    def stats(self) -> dict[str, float]:
        return {"bytes_written": float(self.bytes_written), "rotations": float(self.rotations)}

    def __repr__(self) -> str:
        return f"FileOutput(path={self.path!s})"
