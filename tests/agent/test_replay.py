"""Reading files as records (replay, demo, offline training) and `logwarden replay` end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.replay import read_batches, read_records


def test_read_records_joins_continuations_and_tracks_offsets(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    data = b"2026-01-01 first\n\tat x\n\tat y\n2026-01-01 second \xff\xfe bad\n2026-01-01 third"
    log.write_bytes(data)
    recs = list(read_records(log, "t", re.compile(r"^\d{4}-")))
    assert [r.raw for r in recs] == [
        "2026-01-01 first\n\tat x\n\tat y", "2026-01-01 second \ufffd\ufffd bad", "2026-01-01 third",
    ]
    assert recs[0].offset == len(b"2026-01-01 first\n\tat x\n\tat y\n")
    assert recs[-1].offset == len(data)
    assert all(r.tag == "t" and r.source == str(log) for r in recs)


def test_read_records_truncates_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    log.write_bytes(b"x" * 5000 + b"\nshort\n")
    recs = list(read_records(log, "t", None, max_line_bytes=100))
    assert [len(r.raw) for r in recs] == [100, 5]


def reference_records(data: bytes, start: re.Pattern[str] | None, max_line_bytes: int) -> list[tuple[str, int]]:
    """The plain per-line reading the block reader must reproduce exactly."""
    out: list[tuple[str, int]] = []
    offset = 0
    for raw in _lf_lines(data):
        offset += len(raw)
        line = raw[:max_line_bytes].rstrip(b"\r\n").decode("utf-8", "replace")
        if start is not None and out and not start.search(line):
            out[-1] = (out[-1][0] + "\n" + line, offset)
        else:
            out.append((line, offset))
    return out


def _lf_lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    return lines + ([parts[-1]] if parts[-1] else [])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=30) | st.sampled_from([b"2026 x", b"\tat y", b"\xe2\x82", b"\r", b"\xff"]),
             max_size=40),
    st.sampled_from([1, 3, 7, 64, 1 << 20]),
    st.sampled_from([4, 16, 1 << 20]),
    st.sampled_from([None, r"^\d{4}", r"\d{4}", r"^\d{2}\b", r"^(?:20|\t)\S"]),
)
def test_block_reading_equals_per_line_reading(
    tmp_path_factory: pytest.TempPathFactory, parts: list[bytes], block: int, max_line: int, multiline: str | None
) -> None:
    data = b"\n".join(p.replace(b"\n", b"") for p in parts)
    log = tmp_path_factory.mktemp("blocks") / "a.log"
    log.write_bytes(data)
    start = re.compile(multiline) if multiline else None
    got = [(r.raw, r.offset) for batch in read_batches(log, "t", start, max_line, block=block) for r in batch]
    assert got == reference_records(data, start, max_line)


CONFIG = """\
service:
  state_dir: {state}
  log_level: warning
pipeline:
  inputs:
    - name: tail
      tag: app
      path: ['/nonexistent/*.log']
      parser: {{format: '<Date> <Time> <Level> <Component>: <Content>'}}
  detectors:
    - name: novelty
      match: app
      learn_for: 1m
  outputs:
    - name: file
      path: {alerts}
"""


def test_replay_command_runs_the_pipeline_and_alerts(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    lines = [f"2026-11-28 10:{i // 60:02d}:{i % 60:02d} INFO api: request {i} served in {i % 50}ms" for i in range(600)]
    lines.append("2026-11-28 10:10:00 ERROR db: connection pool exhausted after 30 retries")
    log.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "cfg.yaml"
    alerts = tmp_path / "alerts.jsonl"
    cfg.write_text(CONFIG.format(state=tmp_path / "daemon-state", alerts=alerts))
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "replay", str(log), "-c", str(cfg)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "replayed 601 lines" in proc.stderr
    got = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert len(got) == 1
    assert "connection pool exhausted" in json.dumps(got[0])
    assert not (tmp_path / "daemon-state").exists(), "a replay must not touch the daemon's state"


def test_inline_replay_equals_the_threaded_pipeline(tmp_path: Path) -> None:
    """`replay` runs the worker's code on its own thread; the same input through the queued worker and a
    reader thread (how `run` drives inputs) must give the same records, templates and alerts."""
    from agent.commands.replay import replay
    from agent.config import Config, load_config
    from agent.pipeline import Pipeline
    from agent.registry import Registry
    from agent.replay import FileReplayInput
    from tests.lwtest import wait_for

    log = tmp_path / "app.log"
    lines = [f"2026-11-28 10:{i // 60:02d}:{i % 60:02d} INFO api: request {i} served in {i % 50}ms" for i in range(3000)]
    lines[2500] = "2026-11-28 10:41:40 ERROR db: connection pool exhausted after 30 retries"
    log.write_text("\n".join(lines) + "\n")
    registry = Registry.default()

    def config_for(mode: str) -> Config:
        cfg = tmp_path / f"{mode}.yaml"
        cfg.write_text(CONFIG.format(state=tmp_path / f"{mode}-state", alerts=tmp_path / f"{mode}.jsonl"))
        return load_config(cfg, registry)

    summary = replay(config_for("inline"), registry, [log], tmp_path / "inline-state")
    inline = (summary["records"], summary["templates"], summary["alerts"])

    config = config_for("threaded")
    source = FileReplayInput([log], "app", batch_size=100)  # other batch edges too
    pipeline = Pipeline(config, registry, inputs=[(config.inputs[0], source)], event_time=True)
    pipeline.start()
    wait_for(source.done.is_set, timeout=60, what="the reader thread to finish")
    assert pipeline.flush(timeout=60)
    templates = sum(1 for p in pipeline.parsers for _ in p.drain.clusters())
    threaded = (pipeline.stats.records, templates, len(pipeline.router.recent(100)))
    pipeline.stop()

    assert inline == threaded
    assert inline[0] == 3000 and inline[2] >= 1
