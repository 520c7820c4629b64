"""Volume: per-stream and per-template rates against a learned baseline; silence closed by the timer."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.clock import ManualClock
from agent.generator import GeneratorConfig, IncidentLabel, generate
from agent.generator.services import Event
from agent.plugin import PluginContext
from agent.registry import Registry
from agent.schema import Builder, Duration
from agent.types import Record, Score, Severity
from plugins.detectors.volume import STATE_FILE, VolumeConfig, VolumeDetector

_NUM = re.compile(r"(?<=[=\s])[0-9][\w.%]*")


def generated(config: GeneratorConfig) -> tuple[list[Record], list[IncidentLabel]]:
    """Records as the parse stage would fill them, with the generator's step keys as template ids."""
    ids: dict[str, int] = {}
    templates: dict[str, str] = {}
    records: list[Record] = []

    def observe(rid: str, ev: Event) -> None:
        tid = ids.setdefault(ev.key, len(ids))
        template = templates.setdefault(ev.key, _NUM.sub("<*>", ev.text))
        records.append(Record(tag="app", source="/var/log/shop.log", raw=ev.text, time=round(ev.t, 3),
                              level=ev.level, component=ev.service, message=ev.text, template_id=tid,
                              template=template, params=tuple(_NUM.findall(ev.text))))

    labels = generate(config, io.StringIO(), observe=observe)
    return records, labels


def ctx(tmp_path: Path) -> PluginContext:
    return PluginContext(instance="detector.volume.0", state_dir=tmp_path, host="h", clock=ManualClock())


def feed(det: VolumeDetector, records: list[Record], batch: int = 200) -> list[Score]:
    out: list[Score] = []
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        out += det.observe(chunk)
        out += det.tick(chunk[-1].event_time)
    return out


def steady(start: float, end: float, per_s: dict[str, float]) -> list[Record]:
    """Evenly spaced lines of several components (a regular, well-behaved host)."""
    out: list[Record] = []
    for comp, rate in per_s.items():
        n = int((end - start) * rate)
        out += [Record(tag="app", source="/var/log/app.log", raw=f"{comp} line {i}", time=start + i / rate,
                       component=comp, template_id=hash(comp) % 1000, template=f"{comp} line <*>") for i in range(n)]
    return sorted(out, key=lambda r: r.event_time)


def test_a_component_that_goes_silent_is_reported_with_its_normal_rate(tmp_path: Path) -> None:
    det = VolumeDetector(VolumeConfig(learn_for=Duration(600), max_templates=0), ctx(tmp_path))
    t0 = 1_800_000_000.0
    normal = steady(t0, t0 + 1800, {"api-gateway": 20, "worker": 5})
    assert feed(det, normal) == []
    outage = steady(t0 + 1800, t0 + 2100, {"worker": 5})
    scores = feed(det, outage)
    silent = [s for s in scores if s.condition == "volume:component:api-gateway"]
    assert silent and all(s.severity is Severity.CRITICAL and s.is_anomaly for s in silent)
    assert silent[0].title == "api-gateway went silent"
    assert silent[0].summary == "api-gateway: 0 lines in 1m, normally 1200 ± 35"
    assert silent[0].start == t0 + 1800 and silent[0].end == t0 + 1860
    assert not [s for s in scores if "worker" in s.condition]
    # the file itself slowed to a fifth: a collapse, not silence
    assert any(s.condition == "volume:source:/var/log/app.log" and "collapsed" in s.title for s in scores)


def test_silence_of_everything_is_closed_by_the_timer_alone(tmp_path: Path) -> None:
    det = VolumeDetector(VolumeConfig(learn_for=Duration(600), max_templates=0), ctx(tmp_path))
    t0 = 1_800_000_000.0
    assert feed(det, steady(t0, t0 + 1800, {"api-gateway": 20})) == []
    scores: list[Score] = []
    for now in range(int(t0 + 1800), int(t0 + 2000), 10):
        scores += det.tick(float(now))
    assert {s.condition for s in scores} == {"volume:component:api-gateway", "volume:source:/var/log/app.log"}
    assert det.stats()["buckets_closed"] >= 32


def test_frequency_shift_is_a_template_surge_and_normal_traffic_stays_quiet(tmp_path: Path) -> None:
    records, labels = generated(GeneratorConfig(seed=4, duration_s=2400, rate=20, incidents=["frequency_shift"],
                                                warmup_fraction=0.6))
    det = VolumeDetector(VolumeConfig(learn_for=Duration(900)), ctx(tmp_path))
    scores = feed(det, records)
    (label,) = labels
    inside = [s for s in scores if s.end > label.start - 60 and s.start < label.end + 60]
    assert [s for s in scores if s not in inside] == []
    surge = [s for s in inside if "surged" in s.title]
    assert surge and surge[0].evidence.templates[0].template.startswith("Login failed for user=")
    assert surge[0].evidence.templates[0].observed >= 5 * surge[0].evidence.templates[0].expected


def test_baseline_survives_a_restart_and_garbage_state_is_set_aside(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    det = VolumeDetector(VolumeConfig(learn_for=Duration(600), max_templates=0), ctx(tmp_path))
    feed(det, steady(t0, t0 + 1800, {"api-gateway": 20}))
    det.close()
    again = VolumeDetector(VolumeConfig(learn_for=Duration(600), max_templates=0), ctx(tmp_path))
    assert again.stats()["keys"] == 2
    # no new learning period: the first full silent bucket after the restart fires
    scores: list[Score] = []
    for now in range(int(t0 + 1810), int(t0 + 2000), 10):
        scores += again.tick(float(now))
    assert any(s.title == "api-gateway went silent" for s in scores)
    state = tmp_path / "detector.volume.0" / STATE_FILE
    state.write_text("{not json")
    fresh = VolumeDetector(VolumeConfig(), ctx(tmp_path))
    assert fresh.stats()["keys"] == 0
    assert list(state.parent.glob(f"{STATE_FILE}.rejected-*"))


def test_config_from_yaml_values_and_registry_name() -> None:
    b = Builder()
    cfg = b.build(VolumeConfig, {"bucket": "30s", "group_by": ["component", "tag"], "threshold": 5}, "pipeline")
    assert not b.errors and cfg is not None
    assert cfg.bucket.seconds == 30 and cfg.group_by == ["component", "tag"] and cfg.threshold == 5.0
    assert b.build(VolumeConfig, {"group_by": ["host"]}, "p") is None and b.errors
    from agent.plugin import Kind
    assert Registry.default().get(Kind.DETECTOR, "volume") is VolumeDetector


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a.log", "/b.log", ""]), st.sampled_from(["api", "db", "", None]),
                          st.integers(-1, 3)), min_size=1, max_size=60),
       st.sampled_from([1, 7, 60]))
def test_batches_count_streams_as_records_one_at_a_time(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str | None, int]], size: int
) -> None:
    """The per-field column counts (one file and mixed, empty and missing values) against single records."""
    config = VolumeConfig(group_by=["source", "component", "tag"])
    dets = [VolumeDetector(config, ctx(tmp_path_factory.mktemp("v"))) for _ in range(2)]
    records = [Record(tag="app" if i % 5 else "", source=src, raw=f"line {i}", time=1000.0 + i * 0.01,
                      component=comp, template_id=tid, template=f"t{tid}") for i, (src, comp, tid) in enumerate(rows)]
    feed(dets[0], records, batch=size)
    feed(dets[1], records, batch=1)
    assert dets[0]._raw_counts == dets[1]._raw_counts
    assert dets[0].stats() == dets[1].stats()


def test_its_other_durations_may_be_zero() -> None:
    """Only the bucket has a floor (tests/plugins/detectors/test_buckets.py): no delay, no gap, no
    learning period and saving at every tick are all meaningful."""
    b = Builder()
    assert b.build(VolumeConfig, {"bucket": "1s", "delay": "0s", "max_gap": "0s", "learn_for": "0s",
                                  "save_interval": "0s"}, "p") is not None and not b.errors


def grouped(start: float, minutes: int, events_per_min: list[int]) -> list[Record]:
    """A worker that writes two lines per event (consumed, then sent), `events_per_min[m]` events in minute m."""
    out: list[Record] = []
    for m in range(minutes):
        n = events_per_min[m]
        for i in range(n):
            t = start + 60.0 * m + 60.0 * (i + 0.5) / n
            out += [Record(tag="app", source="/var/log/app.log", raw=f"{k} {i}", time=t + j * 0.01,
                           component="worker", template_id=10 + j, template=f"{k} <*>")
                    for j, k in enumerate(("consumed", "sent"))]
    return out


def test_lines_that_come_in_pairs_are_judged_by_how_much_their_count_really_varies(tmp_path: Path) -> None:
    """Two lines an event at 13 events a minute: 26 lines ± 7, not the ± 5.1 a Poisson count of 26 would have.
    A minute of 27 events (54 lines) happens about once a day among 1,440 (P ≈ 3e-4): a pure Poisson floor
    scored it 4.5 and paged; widened by the learned dispersion it stays below 4. Four times the rate still
    pages."""
    import numpy as np

    rng = np.random.default_rng(3)
    t0 = 1_800_000_000.0
    learn = [int(x) for x in rng.poisson(13, 180)]
    det = VolumeDetector(VolumeConfig(learn_for=Duration(3 * 3600), max_templates=0, group_by=["component"]),
                         ctx(tmp_path))
    assert feed(det, grouped(t0, 180, learn)) == []
    busy = feed(det, grouped(t0 + 180 * 60, 5, [13, 27, 13, 52, 13]))
    assert [s.start - t0 - 180 * 60 for s in busy] == [180.0] and "rate surged" in busy[0].title
