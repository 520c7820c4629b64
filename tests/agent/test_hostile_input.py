"""Hostile lines through the whole pipeline: no stage may raise on any of them.

Every stage is guarded (an exception is counted in `stage_errors` and the batch goes on), so a stage that
raises on some input does not stop the daemon — it silently stops seeing data, batch after batch, which is
worse than a crash nobody notices. These runs feed lines an operator's logs do contain — numbers that
overflow a float, NaN and infinity spelled out, times in year 1 or 9999 or not times at all, control and
replacement characters, huge tokens, the `<*>` Drain writes itself, invalid UTF-8, JSON and logfmt with
odd values — through the real replay path (reader, header parser, Drain, every detector, the shipped
demo model in onnxruntime, router, file output) and require zero stage errors and every line read.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.commands.replay import replay
from agent.config import load_config
from agent.registry import Registry

ROOT = Path(__file__).resolve().parents[2]

NUMBERS = ["1e999", "9" * 400, "-" + "9" * 400, "nan", "inf", "-inf", "1e-999", "-0", "0", "5.", ".5", "0x1F",
           "١٢٣", "12ms", "9" * 400 + "ms", "1e308s", "-12ms", "3.5MB", "78%", "1_000", "", "-", "<*>", "\x00",
           "\ufffd", "x" * 3000, "12", "250", "4096", "18ms", "0.25s"]
TIMES = ["9999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "2026-13-45T99:99:99Z", "1970-01-01T00:00:00Z",
         "2026-11-28T12:00:00.003+14:00", "2026-11-28 12:00:00,003", "12:00:00", "-", "", "\x00" * 3]
LEVELS = ["INFO ", "ERROR", "WARN ", "FATAL", "DEBUG", "xyz", "", "\uff25\uff32\uff32\uff2f\uff32", "\ufffd"]
WEIRD = [b"\xff\xfe\xfd", b"\xe2\x82", b"\x00\x00\x00", b"<*> <*> <*>", b"   ", b"\t\tat x.y(Z.java:1)",
         b'{"time": 1e999, "level": null, "msg": "x"}', b'{"time": "nan", "level": [1], "msg": {"a": 1}}',
         b'{"msg": "' + b"a" * 5000 + b'"}', b'ts=9999-99-99 level=error msg="unterminated',
         b"level= msg= =x ==", b"[" * 500, b"\r\r\r", b"a\rb"]

_HEAD = """\
service:
  state_dir: {state}
  log_level: warning
pipeline:
  inputs:
    - name: tail
      tag: app
      path: ['/nonexistent/*.log']
"""
_VOLUME_AND_PARAMS = """\
    - name: volume
      match: app
      bucket: 30s
      learn_for: 1m
      min_samples: 1
    - name: params
      match: app
      bucket: 30s
      learn_for: 1m
      classify_after: 5
      min_count: 2
      min_baseline: 5
"""
_OUTPUTS = """\
  outputs:
    - name: file
      path: {alerts}
"""

FORMAT_CONFIG = _HEAD + """\
      multiline: {{start: '^\\d{{4}}-\\d{{2}}-\\d{{2}}T'}}
      parser:
        format: '<Date> <Level> <Component> <Request> <Content>'
        drain: {{seed: {model}}}
  detectors:
    - name: novelty
      match: app
      learn_for: 30s
""" + _VOLUME_AND_PARAMS + """\
    - name: iforest
      match: app
      model: {model}
    - name: iforest
      match: app
      model: auto
      window: {{type: session, key_field: Request, idle: 20s, max_length: 50}}
      learn_windows: 100000
    - name: iforest
      match: app
      model: auto
      window: {{type: count, size: 25}}
      learn_windows: 100000
""" + _OUTPUTS

AUTO_CONFIG = _HEAD + """\
      parser: {{name: auto}}
  detectors:
    - name: novelty
      match: app
      learn_for: 0s
""" + _VOLUME_AND_PARAMS + """\
    - name: iforest
      match: app
      model: auto
      window: {{type: sliding, size: 60s, step: 30s}}
      learn_windows: 100000
""" + _OUTPUTS

line_parts = st.tuples(
    st.integers(0, 9),  # which line shape
    st.sampled_from(NUMBERS), st.sampled_from(NUMBERS), st.sampled_from(LEVELS), st.sampled_from(TIMES),
    st.sampled_from(WEIRD), st.text(max_size=12),
)


def _line(i: int, t: float, parts: tuple[int, str, str, str, str, bytes, str]) -> bytes:
    shape, a, b, level, bad_time, weird, text = parts
    ts = f"2026-11-28T12:{int(t) // 60 % 60:02d}:{int(t) % 60:02d}.{i % 1000:03d}Z"
    if shape == 0:
        ts = bad_time
    elif shape == 1:
        return weird
    elif shape == 2:
        return f"{ts} {level} api-gateway req={i:012x} {text} in {a}".encode("utf-8", "surrogatepass")
    elif shape == 3:
        return f'{{"time": "{ts}", "level": "{level.strip()}", "msg": "took {a}", "latency": {b!r}}}'.encode(
            "utf-8", "surrogatepass")
    elif shape == 4:
        return f'ts={ts} level={level.strip() or "info"} msg="took {a}" status={b}'.encode("utf-8", "surrogatepass")
    return f"{ts} {level} api-gateway req={i:012x} Completed GET /x status={b} bytes={a} in {a}ms".encode(
        "utf-8", "surrogatepass")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_parts, min_size=20, max_size=150), st.floats(0.5, 20.0), st.booleans())
def test_no_stage_raises_on_hostile_lines(tmp_path_factory, parts, step, auto) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("hostile")
    # Ordinary lines first, so slots classify and baselines exist when the hostile values arrive.
    normal = [(5, str(100 + i * 37 % 900), str(200 + (i % 3) * 100), "INFO ", "", b"", "") for i in range(40)]
    lines = [_line(i, 60 + i * step, p) for i, p in enumerate(normal + parts)]
    log = tmp / "app.log"
    log.write_bytes(b"\n".join(lines) + b"\n")
    template = AUTO_CONFIG if auto else FORMAT_CONFIG
    cfg = tmp / "cfg.yaml"
    cfg.write_text(template.format(state=tmp / "state", alerts=tmp / "alerts.jsonl", model=ROOT / "models" / "demo"))
    registry = Registry.default()
    summary = replay(load_config(cfg, registry), registry, [log], tmp / "state")
    assert summary["stage_errors"] == 0, summary["stats"]
    assert summary["lines"] == sum(line.count(b"\n") for line in lines) + len(lines)


def test_one_line_from_the_year_9999_does_not_blind_the_detectors(tmp_path: Path) -> None:
    """Event-time clocks only move forward: believed, one line stamped 9999 would leave volume, params and
    the windows waiting for a bucket that closes in the year 9999, and every later record late. The parse
    stage drops that time (its line stays), so the run closes the same buckets as without the line."""
    lines = [f"2026-11-28T12:{i // 60:02d}:{i % 60:02d}.000Z INFO  api-gateway req={i:012x} Completed GET /x "
             f"status={200 if i % 9 else 503} bytes={1000 + i * 37 % 900} in {5 + i % 40}ms" for i in range(1500)]
    bad = list(lines)
    bad.insert(700, "9999-12-31T23:59:59.999Z INFO  api-gateway req=ffffffffffff Completed GET /x status=200 "
                    "bytes=1 in 1ms")
    stats = []
    for name, content in (("clean", lines), ("bad", bad)):
        log = tmp_path / f"{name}.log"
        log.write_text("\n".join(content) + "\n")
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(FORMAT_CONFIG.format(state=tmp_path / name, alerts=tmp_path / f"{name}.jsonl",
                                            model=ROOT / "models" / "demo"))
        registry = Registry.default()
        summary = replay(load_config(cfg, registry), registry, [log], tmp_path / name)
        assert summary["stage_errors"] == 0
        stats.append(summary["stats"])
    clean, dirty = stats
    assert dirty["parser.app.0"]["bad_times"] == 1 and clean["parser.app.0"]["bad_times"] == 0
    for detector in ("detector.volume.1", "detector.params.2"):
        assert clean[detector]["buckets_closed"] >= 40
        assert dirty[detector]["buckets_closed"] == clean[detector]["buckets_closed"], detector
        assert dirty[detector]["late_records"] <= clean[detector]["late_records"] + 1, detector
