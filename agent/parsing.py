"""The ONE parse stage: header parser plugin, then the Drain tree. The daemon, `parse`, `train --input` and
`replay` all go through it, so a template id means the same thing in every one of them.

It never raises on bad input: a line the header parser cannot split keeps the raw line as its message
(counted in `unparsed`), and a header parser that fails unexpectedly on one line is counted, logged once
per kind of failure, and treated the same way.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import MutableSequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agent.drain import Drain, DrainConfig
from agent.errors import StateError
from agent.plugin import BatchParser, Header, Kind, Parser, PluginContext
from agent.state import set_aside
from agent.types import Batch, Record

if TYPE_CHECKING:
    from agent.config import ParserSection
    from agent.registry import Registry

log = structlog.get_logger("logwarden.parsing")


def load_drain(snapshot: Path | None, config: DrainConfig) -> Drain:
    """A tree restored from `snapshot` when it exists and is acceptable; otherwise a fresh one, with a
    refused file moved aside (never overwritten) and the reason logged."""
    if snapshot is None or not snapshot.exists():
        return _seeded(config)
    try:
        drain = Drain.load(snapshot, config)
    except StateError as exc:
        kept = None
        try:
            kept = set_aside(snapshot)
        except OSError:
            pass
        log.warning("drain_snapshot_refused", path=str(snapshot), reason=exc.reason, kept_as=str(kept))
        return Drain(config)
    log.info("drain_snapshot_restored", path=str(snapshot), clusters=drain.stats()["clusters"])
    return drain


def _seeded(config: DrainConfig) -> Drain:
    """A fresh tree, or the `seed` tree (a snapshot or a bundle's drain.json) when one is configured.

    A seed that cannot be read is logged and a fresh tree is used: the daemon still runs, and a bundle
    whose ids no longer match is refused by its detector with the reason."""
    if not config.seed:
        return Drain(config)
    path = Path(config.seed)
    if path.is_dir():
        path = path / "drain.json"
    try:
        drain = Drain.load(path, config)
    except StateError as exc:
        log.warning("drain_seed_refused", path=str(path), reason=exc.reason)
        return Drain(config)
    log.info("drain_seeded", path=str(path), clusters=drain.stats()["clusters"])
    return drain


_CLUSTER_ID = itemgetter(0)

FUTURE_TOLERANCE_S = 86_400.0
"""How far ahead of the wall clock a header time may be and still be believed.

A line cannot have been written after it was read, and it is read now (tailed, or replayed). Every
event-time clock (volume and params buckets, sliding windows, a replay's ticks) moves forward to the latest
time it has seen and treats what comes after as late, so a single line stamped in the year 9999 would leave
every detector counting into a bucket that closes in the year 9999 — blind, and saved that way across
restarts. A day of slack covers clocks that drift and zones written without an offset; a line further ahead
keeps its text and template but no time (its read time stands in) and is counted in `bad_times`, as are
times that are not finite. (A synthetic log dated in the future is refused the same way.)"""


class ParseStage:
    def __init__(self, parser: Parser, drain: Drain) -> None:
        self.parser = parser
        self.drain = drain
        self._fill = parser.fill if isinstance(parser, BatchParser) else None
        self.records = 0
        self.unparsed = 0
        self.parser_errors = 0
        self.bad_times = 0
        self._errors_logged: set[str] = set()

    @classmethod
    def from_section(
        cls, section: ParserSection, registry: Registry, snapshot: Path | None = None, *, keep_fields: bool = True
    ) -> ParseStage:
        """`keep_fields` false: no later stage reads `Record.fields`, so the parser need not build them."""
        plugin = registry.get(Kind.PARSER, section.name)
        state_dir = snapshot.parent if snapshot is not None else Path(".")
        ctx = PluginContext(instance=f"parser.{section.name}.0", state_dir=state_dir, host=socket.gethostname(),
                            keep_fields=keep_fields)
        parser = plugin(section.config, ctx)
        drain_config = section.drain if isinstance(section.drain, DrainConfig) else DrainConfig()
        return cls(parser, load_drain(snapshot, drain_config))

    def process(self, records: list[Record], members: MutableSequence[int] | None = None) -> Batch:
        """Fill time, level, component, message, fields and the template of each record, in place.

        `members`, when given, receives the tree cluster of each record (`Match.member_id`): offline
        commands use it to print every line's *final* template after all input."""
        self.records += len(records)
        if self._fill is not None:
            try:
                self.unparsed += self._fill(records)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError):
                self._parse_each(records)  # line by line, so only the line that fails is counted and kept whole
        else:
            self._parse_each(records)
        matches = self.drain.add_deferred([rec.message for rec in records])
        for rec, (cluster_id, template, params, _, _) in zip(records, matches, strict=True):
            rec.template_id = cluster_id  # unpacked: a Match field read by name costs a descriptor call
            rec.template = template
            rec._params = params  # a tuple, or the cut that Record.params applies when first read
        if members is not None:
            members.extend(m.member_id for m in matches)
        ids = list(map(_CLUSTER_ID, matches))
        batch = Batch(records, ids)
        times = batch.event_times()  # the column every detector reads: computed here once, checked in C
        if times and not (math.isfinite(sum(times)) and max(times) <= time.time() + FUTURE_TOLERANCE_S):
            self._drop_bad_times(records)
            batch = Batch(records, ids)
        return batch

    def _drop_bad_times(self, records: list[Record]) -> None:
        """Header times no clock should follow (see FUTURE_TOLERANCE_S) are dropped and counted."""
        limit = time.time() + FUTURE_TOLERANCE_S
        for rec in records:
            t = rec.time
            if t is not None and not (math.isfinite(t) and t <= limit):
                rec.time = None
                self.bad_times += 1

    def _parse_each(self, records: list[Record]) -> None:
        """The header parser line by line; a line it fails on is counted and kept whole as its message."""
        parse = self.parser.parse
        for rec in records:
            try:
                header: Header | None = parse(rec.raw)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
                self._failed(exc)
                header = None
            if header is None:
                self.unparsed += 1
                rec.message = rec.raw
            else:
                rec.message = header.message
                rec.time = header.time
                rec.level = header.level
                rec.component = header.component
                rec.fields = header.fields

    def _failed(self, exc: Exception) -> None:
        """Count a header parser's unexpected failure on one line and log it once per kind."""
        self.parser_errors += 1
        kind = type(exc).__name__
        if kind not in self._errors_logged:
            self._errors_logged.add(kind)
            log.warning("header_parse_failed", parser=getattr(self.parser, "name", "?"), error=kind)

    def save(self, path: Path) -> None:
        self.drain.save(path)

    def stats(self) -> dict[str, float]:
        out = {f"drain_{k}": v for k, v in self.drain.stats().items()}
        out["records"] = float(self.records)
        out["unparsed"] = float(self.unparsed)
        out["parser_errors"] = float(self.parser_errors)
        out["bad_times"] = float(self.bad_times)
        return out


def default_section(log_format: str | None = None) -> ParserSection:
    """The parser section a config gets when it says nothing: `auto`, or `format` for a format string."""
    from agent.config import ParserSection
    from plugins.parsers.auto import AutoConfig
    from plugins.parsers.loghub_format import FormatConfig

    if log_format is not None:
        return ParserSection("format", FormatConfig(format=log_format), DrainConfig())
    return ParserSection("auto", AutoConfig(), DrainConfig())

