"""The worker's timers: it sleeps until the next one is due instead of polling, and still fires them on time.

A probe detector (a real plugin, loaded through the registry like any other) records the ticks it gets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from agent.config import load_config
from agent.pipeline import Pipeline
from agent.plugin import Kind, PluginContext
from agent.registry import Registry
from agent.types import Record, Score
from tests.lwtest import wait_for


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeConfig:
    pass


class TickProbe:
    name: ClassVar[str] = "tick_probe"
    config_class: ClassVar[type[ProbeConfig]] = ProbeConfig

    def __init__(self, config: ProbeConfig, ctx: PluginContext) -> None:
        self.ticks: list[float] = []
        self.observed = 0
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def observe(self, records: Sequence[Record]) -> list[Score]:
        self.observed += len(records)
        self.batch_sizes.append(len(records))
        return []

    def tick(self, now: float) -> list[Score]:
        with self._lock:
            self.ticks.append(now)
        return []

    def close(self) -> list[Score]:
        return []

    def tick_count(self) -> int:
        with self._lock:
            return len(self.ticks)


def registry() -> Registry:
    reg = Registry.default(entry_points=False)
    reg.entries.update(Registry.from_classes((Kind.DETECTOR, TickProbe)).entries)
    return reg


def make(tmp: Path, *, tick: str, snapshot: str = "30s", shutdown: str = "30s", batch_size: int = 512) -> Pipeline:
    (tmp / "logs").mkdir(exist_ok=True)
    cfg = tmp / "logwarden.yaml"
    cfg.write_text(f"""\
service:
  state_dir: {tmp / 'state'}
  tick_interval: {tick}
  snapshot_interval: {snapshot}
  shutdown_timeout: {shutdown}
  batch_size: {batch_size}
pipeline:
  inputs:
    - name: tail
      tag: app
      path: [{tmp / 'logs'}/*.log]
      read_from: beginning
      refresh_interval: 200ms
      parser: {{format: '<Date> <Time> <Level> <Component>: <Content>'}}
  detectors:
    - name: tick_probe
      match: app
""")
    reg = registry()
    return Pipeline(load_config(cfg, reg), reg)


@pytest.fixture
def running() -> Iterator[list[Pipeline]]:
    started: list[Pipeline] = []
    yield started
    for p in started:
        p.stop(timeout=10.0)


def probe(p: Pipeline) -> TickProbe:
    det = p.detectors[0][1]
    assert isinstance(det, TickProbe)
    return det


def lines(n: int, start: int = 0) -> str:
    return "".join(f"2026-11-28 10:00:{i % 60:02d} INFO api: request {i} served\n" for i in range(start, start + n))


def version(path: Path) -> tuple[int, int]:
    """A snapshot is replaced by a new file (os.replace): a new inode, or a reused one with a new mtime."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def more_ticks(p: Pipeline, n: int) -> Callable[[], bool]:
    target = probe(p).tick_count() + n
    return lambda: probe(p).tick_count() >= target


def test_idle_worker_still_ticks_at_the_configured_interval(tmp_path: Path, running: list[Pipeline]) -> None:
    p = make(tmp_path, tick="50ms")
    p.start()
    running.append(p)
    wait_for(lambda: probe(p).tick_count() >= 5, timeout=10, what="five ticks of an idle worker")
    ticks = probe(p).ticks[:5]
    assert ticks == sorted(ticks)


def test_ticks_keep_firing_while_batches_arrive(tmp_path: Path, running: list[Pipeline]) -> None:
    p = make(tmp_path, tick="50ms")
    p.start()
    running.append(p)
    log = tmp_path / "logs" / "app.log"
    for i in range(5):
        with log.open("a") as fh:
            fh.write(lines(50, i * 50))
        wait_for(more_ticks(p, 1), timeout=10, what="a tick after a batch")
    wait_for(lambda: probe(p).observed == 250, timeout=10, what="all records observed")


def test_the_tail_input_hands_over_batches_of_the_configured_size(tmp_path: Path, running: list[Pipeline]) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text(lines(1000))  # read in one pass: whole batches, then the rest
    p = make(tmp_path, tick="50ms", batch_size=300)
    p.start()
    running.append(p)
    wait_for(lambda: probe(p).observed == 1000, timeout=10, what="all records observed")
    assert probe(p).batch_sizes == [300, 300, 300, 100]


def test_stop_wakes_a_worker_sleeping_until_a_distant_timer(tmp_path: Path) -> None:
    p = make(tmp_path, tick="1h", snapshot="1h", shutdown="30s")
    p.start()
    (tmp_path / "logs" / "app.log").write_text(lines(10))
    wait_for(lambda: p.stats.records == 10, timeout=10, what="records processed")
    p.stop()
    worker = p._worker
    assert worker is not None and not worker.is_alive(), "the worker must leave its hour-long sleep at stop()"
    assert probe(p).ticks == []  # no timer was due: the worker did not poll them early either


def test_snapshot_is_written_only_when_records_changed_the_tree(tmp_path: Path, running: list[Pipeline]) -> None:
    p = make(tmp_path, tick="20ms", snapshot="50ms")
    p.start()
    running.append(p)
    log = tmp_path / "logs" / "app.log"
    log.write_text(lines(20))
    snap = p.snapshot_paths[0]
    wait_for(snap.exists, timeout=10, what="the first snapshot")
    wait_for(lambda: p.stats.records == 20, timeout=10, what="records processed")
    # Let a snapshot taken mid-batch settle: the one after the last record is what stays.
    wait_for(more_ticks(p, 10), timeout=10, what="several snapshot intervals")
    first = version(snap)
    wait_for(more_ticks(p, 25), timeout=10, what="ten more snapshot intervals")
    assert version(snap) == first, "an idle pipeline rewrote an unchanged snapshot"
    with log.open("a") as fh:
        fh.write(lines(5, 20))
    wait_for(lambda: version(snap) != first, timeout=10, what="a snapshot after new records")


def test_a_started_pipeline_raises_only_the_young_generation_gc_threshold(
    tmp_path: Path, running: list[Pipeline]
) -> None:
    import gc

    from agent.pipeline import GC_THRESHOLD

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, *saved[1:])
        p = make(tmp_path, tick="50ms")
        p.start()
        running.append(p)
        assert gc.get_threshold() == (GC_THRESHOLD, *saved[1:])
    finally:
        gc.set_threshold(*saved)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldsProbeConfig:
    reads: str = "unsaid"
    """"yes" or "no" sets the detector's `reads_fields`; "unsaid" leaves it out, as a third-party detector may."""


class FieldsProbe:
    name: ClassVar[str] = "fields_probe"
    config_class: ClassVar[type[FieldsProbeConfig]] = FieldsProbeConfig

    def __init__(self, config: FieldsProbeConfig, ctx: PluginContext) -> None:
        if config.reads != "unsaid":
            self.reads_fields = config.reads == "yes"
        self.fields: list[dict[str, str] | None] = []

    def observe(self, records: Sequence[Record]) -> list[Score]:
        self.fields += [r.fields for r in records]
        return []

    def tick(self, now: float) -> list[Score]:
        return []

    def close(self) -> list[Score]:
        return []


@pytest.mark.parametrize(("reads", "records_output", "kept"), [
    ("no", False, False), ("yes", False, True), ("unsaid", False, True), ("no", True, True),
])
def test_fields_are_built_only_when_a_stage_reads_them(
    tmp_path: Path, running: list[Pipeline], reads: str, records_output: bool, kept: bool
) -> None:
    """The header's other fields (here `<Request>`) cost a dict per line: a parser leaves them out when no
    detector or records output that gets the tag reads them, and a detector that does not say counts as one."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text(
        "".join(f"2026-11-28 10:00:{i:02d} INFO api req={i} request served\n" for i in range(10)))
    output = f"  outputs:\n    - name: file\n      stream: records\n      path: {tmp_path / 'records.jsonl'}\n"
    cfg = tmp_path / "logwarden.yaml"
    cfg.write_text(f"""\
service:
  state_dir: {tmp_path / 'state'}
pipeline:
  inputs:
    - name: tail
      tag: app
      path: [{tmp_path / 'logs'}/*.log]
      read_from: beginning
      parser: {{format: '<Date> <Time> <Level> <Component> <Request> <Content>'}}
  detectors:
    - name: fields_probe
      match: app
      reads: "{reads}"
{output if records_output else ""}""")
    reg = Registry.default(entry_points=False)
    reg.entries.update(Registry.from_classes((Kind.DETECTOR, FieldsProbe)).entries)
    p = Pipeline(load_config(cfg, reg), reg)
    p.start()
    running.append(p)
    det = p.detectors[0][1]
    assert isinstance(det, FieldsProbe)
    wait_for(lambda: len(det.fields) == 10, timeout=10, what="all records observed")
    assert det.fields == ([{"Request": f"req={i}"} for i in range(10)] if kept else [None] * 10)
