"""The shape of windows (count, sliding time, session): one frozen spec that configs, bundles and the
`Windower` share, so serving groups records exactly as training did."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from agent.schema import Duration, opt


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSpec:
    """How records are grouped into windows; stored in every model bundle so serving windows like training."""

    type: Literal["count", "sliding", "session"] = opt(
        "sliding", doc="Count windows (a fixed number of events), sliding time windows, or sessions keyed by an id."
    )
    size: int | Duration | None = opt(
        None,
        doc="Events per window for count windows (default 50), or the window length for sliding windows "
        "(default 60s). Not used by session windows.",
    )
    step: Duration | None = opt(
        None, doc="How far a sliding window moves; defaults to its size (tumbling windows)."
    )
    key: str | None = opt(
        None,
        doc="Regular expression over the line that yields a session's key (its first group, or the whole "
        "match), e.g. blk_-?\\d+ for HDFS blocks.",
    )
    key_field: str | None = opt(None, doc="A parsed field whose value is the session's key (used before `key`).")
    idle: Duration = opt(Duration(30.0), doc="A session closes after this long without a record.")
    max_length: int = opt(1000, ge=1, doc="Events in one session window; a longer session is split.")
    max_open: int = opt(100_000, ge=1, doc="Open sessions held at once; beyond it the least recently active closes.")
    max_samples: int = opt(3, ge=0, doc="Raw sample lines kept per template in each window, shown as evidence.")

    def __post_init__(self) -> None:
        if self.type == "count":
            if isinstance(self.size, Duration):
                raise ValueError("size of a count window is a number of events, not a duration")
            if self.size is not None and self.size < 1:
                raise ValueError(f"size of a count window must be at least 1, got {self.size}")
        elif self.type == "sliding":
            length = self.length_s
            if length <= 0:
                raise ValueError("size of a sliding window must be positive")
            if self.step is not None and not 0 < self.step.seconds <= length:
                raise ValueError(f"step must be positive and at most the window size ({length}s), got {self.step}")
        else:
            if self.key is None and self.key_field is None:
                raise ValueError("a session window needs `key` (a regex) or `key_field`")
            if self.key is not None:
                try:
                    re.compile(self.key)
                except re.error as exc:
                    raise ValueError(f"key is not a valid regular expression: {exc}") from None
            if self.idle.seconds <= 0:
                raise ValueError("idle must be positive")

    @property
    def count_size(self) -> int:
        return self.size if isinstance(self.size, int) else 50

    @property
    def length_s(self) -> float:
        """Length of a sliding window in seconds (a bare number in YAML means seconds)."""
        if isinstance(self.size, Duration):
            return self.size.seconds
        return float(self.size) if self.size is not None else 60.0

    @property
    def step_s(self) -> float:
        return self.step.seconds if self.step is not None else self.length_s

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the bundle manifest; round-trips through `from_dict`."""
        size: Any = None
        if isinstance(self.size, Duration):
            size = str(self.size)
        elif self.size is not None:
            size = self.size
        return {
            "type": self.type,
            "size": size,
            "step": str(self.step) if self.step is not None else None,
            "key": self.key,
            "key_field": self.key_field,
            "idle": str(self.idle),
            "max_length": self.max_length,
            "max_open": self.max_open,
            "max_samples": self.max_samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowSpec:
        """Inverse of `to_dict`; raises ValueError/TypeError on a malformed spec."""
        kind = data.get("type", "sliding")
        raw_size = data.get("size")
        size: int | Duration | None
        if raw_size is None:
            size = None
        elif kind == "count" or (isinstance(raw_size, int) and not isinstance(raw_size, bool)):
            size = int(raw_size)
        else:
            size = Duration.parse(raw_size)
        step = data.get("step")
        return cls(
            type=kind,
            size=size,
            step=Duration.parse(step) if step is not None else None,
            key=data.get("key"),
            key_field=data.get("key_field"),
            idle=Duration.parse(data.get("idle", 30.0)),
            max_length=int(data.get("max_length", 1000)),
            max_open=int(data.get("max_open", 100_000)),
            max_samples=int(data.get("max_samples", 3)),
        )
