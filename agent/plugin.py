"""What a plugin is: one module, one config dataclass, one class per kind.

Four kinds, each with the smallest surface its stage needs. Expensive work (compiling regexes, opening an
onnxruntime session, building an HTTP session) happens in `__init__`/`start`, so that per-item calls stay
cheap. Outputs *return* expected failures as `Delivery` values; retry, backoff and the spool belong to the
alert router alone, so no output grows its own retry loop.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from agent.clock import Clock, SystemClock
from agent.types import Alert, Record, Score


class Kind(enum.Enum):
    INPUT = "input"
    PARSER = "parser"
    DETECTOR = "detector"
    OUTPUT = "output"


@dataclass(slots=True)
class PluginContext:
    """What the pipeline hands every plugin instance: where to keep state, who we are, what time it is."""

    instance: str
    """Unique id of this instance, `<kind>.<name>.<index>` (e.g. `output.slack.0`); names its state dir."""
    state_dir: Path
    host: str
    tag: str = ""
    """For inputs: the routing tag to put on every record (the section's `tag`)."""
    clock: Clock = field(default_factory=SystemClock)
    metrics: Any = None
    """The daemon's `agent.metrics.Metrics` when running; None in offline commands and unit tests."""
    event_time: bool = False
    """The pipeline runs on the records' own time, as fast as it reads (replay): what takes seconds of wall
    time — a training child — spans hours of log, so a plugin that waits on wall time waits in full here."""
    batch_size: int = 256
    """`service.batch_size`: the most records an input hands downstream at once. Each batch costs every stage
    a fixed overhead (a queue hand-off, a parse and detector call each, an offset commit); a batch too big for
    the CPU cache costs more, as each stage walks it again."""
    keep_fields: bool = True
    """For parsers: whether a later stage reads `Record.fields` of this input's records (a records output, a
    session window keyed by a field, a detector that does not say). When none does, a parser leaves `fields`
    None: a dict per line that nothing reads cost the live daemon 6% of its CPU (paired runs), far more than
    its instructions, as every object a line allocates does on this memory-bound path."""

    def plugin_state_dir(self) -> Path:
        """A directory owned by this instance alone, created on demand (Vector's per-component dirs)."""
        path = self.state_dir / self.instance
        path.mkdir(parents=True, exist_ok=True)
        return path


Emit = Callable[[Sequence[Record]], None]
"""Hands records downstream; blocks while the next queue is full, which is how backpressure reaches inputs."""


@runtime_checkable
class Input(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type[Any]]

    def start(self, emit: Emit) -> None:
        """Begin producing records on the input's own thread(s)."""
        ...

    def commit(self, records: Sequence[Record]) -> None:
        """These records (in emit order) were handled durably; their offsets may be checkpointed."""
        ...

    def stop(self) -> None:
        """Stop producing, flush what is held (partial multiline records), save checkpoints."""
        ...


@dataclass(slots=True)
class Header:
    """What a header parser extracts from a raw line before Drain sees the message."""

    message: str
    time: float | None = None
    level: str | None = None
    component: str | None = None
    fields: dict[str, str] | None = None


@runtime_checkable
class Parser(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type[Any]]

    def parse(self, raw: str) -> Header | None:
        """Split a raw line into header fields and message; None when the line does not fit the format."""
        ...


@runtime_checkable
class BatchParser(Parser, Protocol):
    """A parser that can also write a batch straight into its records: the parse stage prefers it, since a
    Header per line and the copy out of it are a tenth of a line's cost on the hot path."""

    def fill(self, records: list[Record]) -> int:
        """What `parse` does, for each record: set message, time, level, component and fields from
        `record.raw` (a line that does not fit keeps its raw text as the message and None elsewhere).
        Returns how many did not fit."""
        ...


@runtime_checkable
class Detector(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type[Any]]

    def observe(self, records: Sequence[Record]) -> list[Score]:
        """Feed parsed records; return scores of the windows (or records) that closed."""
        ...

    def tick(self, now: float) -> list[Score]:
        """Close windows whose time is up (also empty ones: silence is a signal)."""
        ...

    def close(self) -> list[Score]:
        """Flush open windows at shutdown or end of a replay."""
        ...


def reads_fields(detector: object) -> bool:
    """Whether a detector reads `Record.fields`: its `reads_fields` attribute, True for one without it (a
    third-party detector may read them, so their parsers keep building them)."""
    return bool(getattr(detector, "reads_fields", True))


@dataclass(frozen=True, slots=True)
class Sent:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure (5xx, 429, timeout, refused); `after_s` carries a receiver's Retry-After."""

    reason: str
    after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A permanent failure (a 4xx payload problem): dead-letter now, never retry."""

    reason: str


Delivery = Sent | Retry | Rejected


@runtime_checkable
class Output(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type[Any]]

    def start(self) -> None: ...

    def deliver(self, alerts: Sequence[Alert]) -> Delivery:
        """Send alerts (one request or one message each, as the sink prefers) and report the outcome."""
        ...

    def write_records(self, records: Sequence[Record]) -> None:
        """For `stream: records` outputs: write parsed records (only file and stdout support it)."""
        ...

    def stop(self) -> None: ...


PluginClass = type[Any]
"""A plugin class: has `name`, `config_class`, `__init__(config, ctx)` and its kind's methods."""

REQUIRED_METHODS: dict[Kind, tuple[str, ...]] = {
    Kind.INPUT: ("start", "commit", "stop"),
    Kind.PARSER: ("parse",),
    Kind.DETECTOR: ("observe", "tick", "close"),
    Kind.OUTPUT: ("start", "deliver", "write_records", "stop"),
}
