"""The values that flow one way through the pipeline: Record → Window → Score → Alert.

A stage knows its input type and its output type and nothing about its neighbours. Records are mutable
only until the parse stage has filled in the template; later stages treat every value as read-only.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertStatus(enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


Cut = Callable[[str], tuple[str, ...]]
"""Takes a message's parameters out of it (at a template's fixed offsets, `agent.drain_fit.cutter`)."""


@dataclass(slots=True, init=False, eq=False)
class Record:
    """One log record (a line, or several joined by multiline) and what the parser learned of it.

    `file_id` and `offset` (the byte offset just past this record in its file) travel with the record so
    that the tail input can commit an offset only after everything up to it was handled durably.

    `params` may be deferred: for a line that Drain's key cache answers, the parse stage stores the cut that
    takes them out of `message`, and the first read applies it (then keeps the tuple). Most lines' parameters
    are never read — the params detector samples a busy template, and no records output asks — and the
    strings a line keeps cost the live daemon several times their instructions: cutting them all was a tenth
    of its CPU (paired runs, `bench/side_by_side.py`).
    """

    tag: str
    source: str
    raw: str
    offset: int
    file_id: str
    read_time: float
    time: float | None
    level: str | None
    component: str | None
    message: str
    fields: dict[str, str] | None
    template_id: int
    template: str
    _params: tuple[str, ...] | Cut
    """The parameters, or the cut that takes them out of `message` (the parse stage writes it directly)."""

    def __init__(
        self, tag: str, source: str, raw: str, offset: int = 0, file_id: str = "", read_time: float = 0.0,
        time: float | None = None, level: str | None = None, component: str | None = None, message: str = "",
        fields: dict[str, str] | None = None, template_id: int = -1, template: str = "", params: tuple[str, ...] = (),
    ) -> None:
        self.tag = tag
        self.source = source
        self.raw = raw
        self.offset = offset
        self.file_id = file_id
        self.read_time = read_time
        self.time = time
        self.level = level
        self.component = component
        self.message = message
        self.fields = fields
        self.template_id = template_id
        self.template = template
        self._params = params

    @property
    def params(self) -> tuple[str, ...]:
        p = self._params
        if isinstance(p, tuple):
            return p
        self._params = values = p(self.message)
        return values

    @params.setter
    def params(self, value: tuple[str, ...]) -> None:
        self._params = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: as a dataclass with eq, not hashable

    def _values(self) -> tuple[object, ...]:
        return (self.tag, self.source, self.raw, self.offset, self.file_id, self.read_time, self.time, self.level,
                self.component, self.message, self.fields, self.template_id, self.template, self.params)

    @property
    def event_time(self) -> float:
        """The header's time when it was parsed, else the time the line was read."""
        return self.time if self.time is not None else self.read_time


class Batch(list[Record]):
    """The records of one input batch after the parse stage, with the columns that several detectors and
    the pipeline read: computed once per batch instead of once per reader (each such list costs a few
    hundred instructions a record). Records are read-only after parsing, so the columns stay true."""

    __slots__ = ("_times", "template_ids")

    def __init__(self, records: Iterable[Record], template_ids: list[int]) -> None:
        super().__init__(records)
        self.template_ids = template_ids
        self._times: list[float] | None = None

    def event_times(self) -> list[float]:
        if self._times is None:
            self._times = _event_times(self)
        return self._times


def event_times(records: Sequence[Record]) -> list[float]:
    """`Record.event_time` of each record (a batch's column when it has one)."""
    return records.event_times() if isinstance(records, Batch) else _event_times(records)


def template_ids(records: Sequence[Record]) -> list[int]:
    """`Record.template_id` of each record (a batch's column when it has one)."""
    return records.template_ids if isinstance(records, Batch) else [r.template_id for r in records]


def _event_times(records: Sequence[Record]) -> list[float]:
    times = [r.time for r in records]  # the event_time property per record costs more than this
    if None in times:
        return [r.event_time for r in records]
    return times  # type: ignore[return-value]  # no None left


@dataclass(slots=True)
class Window:
    """A group of events scored together: a count window, a time slice, or one session (a block id).

    `events`, `times` and `levels` are parallel lists in arrival order. `samples` keeps a few raw lines
    per template id so that an alert can show evidence without the window holding every record.
    """

    stream: str
    key: str
    start: float
    end: float
    events: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    samples: dict[int, list[str]] = field(default_factory=dict)
    templates: dict[int, str] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.events)


@dataclass(slots=True)
class TemplateEvidence:
    """One template that drove a score: how often it was seen against how often it is normally seen."""

    template_id: int
    template: str
    observed: float
    expected: float
    weight: float = 0.0


@dataclass(slots=True)
class Evidence:
    """Why a detector fired, in terms an operator can read: templates, sample lines, parameters."""

    templates: list[TemplateEvidence] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Score:
    """A detector's verdict on one window (or one record, for per-record detectors)."""

    detector: str
    stream: str
    key: str
    start: float
    end: float
    score: float
    threshold: float
    is_anomaly: bool
    title: str = ""
    summary: str = ""
    severity: Severity = Severity.WARNING
    evidence: Evidence = field(default_factory=Evidence)
    source: str = ""
    condition: str = ""
    """Identifies the condition (not the occurrence): repeats of one condition share a fingerprint."""


@dataclass(slots=True)
class Alert:
    """What reaches an output: a deduplicated, explained condition with a stable fingerprint."""

    fingerprint: str
    status: AlertStatus
    severity: Severity
    title: str
    summary: str
    evidence: Evidence
    host: str
    source: str
    detector: str
    score: float
    threshold: float
    first_seen: float
    last_seen: float
    count: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    id: str = ""
    """Idempotency key of this notification (fingerprint + sequence); receivers drop repeats of it."""
