"""End to end with real processes: `logwarden run` tailing real files, signals, reload, the ops endpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.lwtest import wait_for

LOGWARDEN = [sys.executable, "-m", "agent.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(tmp: Path, port: int, extra_output: str = "") -> str:
    return f"""\
service:
  state_dir: {tmp / 'state'}
  http: {{listen: 127.0.0.1:{port}}}
  snapshot_interval: 1s
  shutdown_timeout: 10s
pipeline:
  inputs:
    - name: tail
      tag: app
      path: [{tmp / 'logs'}/*.log]
      read_from: beginning
      refresh_interval: 200ms
      parser: {{format: '<Date> <Time> <Level> <Component>: <Content>'}}
  outputs:
    - name: file
      stream: records
      path: {tmp / 'records.jsonl'}
{extra_output}"""


def read_jsonl(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class Daemon:
    def __init__(self, config: Path, tmp: Path) -> None:
        self.config = config
        self.tmp = tmp
        self.proc: subprocess.Popen[str] | None = None
        self.log = tmp / "daemon.log"

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        fh = open(self.log, "a")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen([*LOGWARDEN, "run", "-c", str(self.config)], stdout=fh, stderr=fh, text=True,
                                     env=env, cwd=self.tmp)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemon_env(tmp_path: Path) -> Iterator[tuple[Path, int, list[Daemon]]]:
    (tmp_path / "logs").mkdir()
    started: list[Daemon] = []
    yield tmp_path, free_port(), started
    for d in started:
        d.kill()


def lines(n: int, start: int = 0) -> str:
    return "".join(f"2026-11-28 10:00:{i % 60:02d} INFO api: request {i} served in {i % 97}ms\n" for i in range(start, start + n))


def wait_http(port: int) -> None:
    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code in (200, 503)
        except requests.RequestException:
            return False

    wait_for(up, timeout=30, what="the ops endpoint to answer")


def test_sigterm_then_restart_loses_no_line_and_endpoints_answer(daemon_env: tuple[Path, int, list[Daemon]]) -> None:
    tmp, port, started = daemon_env
    cfg = tmp / "logwarden.yaml"
    cfg.write_text(config_text(tmp, port))
    log = tmp / "logs" / "app.log"
    log.write_text(lines(500))
    d = Daemon(cfg, tmp)
    started.append(d)
    d.start()
    wait_http(port)
    records = tmp / "records.jsonl"
    wait_for(lambda: len(read_jsonl(records)) >= 500, timeout=30, what="500 records")
    health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'logwarden_input_lines_read_total{component="input.tail.0"} 500.0' in metrics
    templates = requests.get(f"http://127.0.0.1:{port}/api/v1/templates", timeout=5).json()["templates"]
    assert templates[0]["template"] == "request <*> served in <*>" and templates[0]["count"] == 500

    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    with log.open("a") as fh:  # written while stopped
        fh.write(lines(300, start=500))
    d2 = Daemon(cfg, tmp)
    started.append(d2)
    d2.start()
    wait_for(lambda: len(read_jsonl(records)) >= 800, timeout=30, what="800 records after restart")
    d2.signal(signal.SIGTERM)
    assert d2.wait(30) == 0
    got = [str(r["raw"]) for r in read_jsonl(records)]
    expected = lines(800).splitlines()
    assert got == expected, "every line exactly once, in order, across a graceful restart"


def test_sighup_applies_valid_config_and_refuses_invalid(daemon_env: tuple[Path, int, list[Daemon]]) -> None:
    tmp, port, started = daemon_env
    cfg = tmp / "logwarden.yaml"
    cfg.write_text(config_text(tmp, port))
    log = tmp / "logs" / "app.log"
    log.write_text(lines(100))
    d = Daemon(cfg, tmp)
    started.append(d)
    d.start()
    wait_http(port)
    wait_for(lambda: len(read_jsonl(tmp / "records.jsonl")) >= 100, timeout=30, what="100 records")

    # An invalid config is refused; the running pipeline keeps going.
    cfg.write_text(config_text(tmp, port).replace("rotate_wait", "rotate_wiat").replace("refresh_interval", "refresh_intervall"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "config_rejected" in d.log.read_text(), timeout=20, what="config_rejected in the daemon log")
    with log.open("a") as fh:
        fh.write(lines(50, start=100))
    wait_for(lambda: len(read_jsonl(tmp / "records.jsonl")) >= 150, timeout=30, what="records after refused reload")

    # A valid new config adds a second records output; offsets carry over, so it sees only new lines.
    second = tmp / "second.jsonl"
    cfg.write_text(config_text(tmp, port, f"    - name: file\n      stream: records\n      path: {second}\n"))
    d.signal(signal.SIGHUP)
    wait_for(lambda: "config_reloaded" in d.log.read_text(), timeout=30, what="config_reloaded in the daemon log")
    wait_http(port)
    with log.open("a") as fh:
        fh.write(lines(20, start=150))
    wait_for(lambda: len(read_jsonl(second)) >= 20, timeout=30, what="20 records in the new output")
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert [r["raw"] for r in read_jsonl(second)] == lines(20, start=150).splitlines()
    assert [r["raw"] for r in read_jsonl(tmp / "records.jsonl")] == lines(170).splitlines()


def _catches(pid: int, signum: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/PID/status")
def test_a_stop_or_reload_while_it_imports_is_not_a_kill(daemon_env: tuple[Path, int, list[Daemon]]) -> None:
    """systemd may stop or reload a unit right after starting it; the imports take most of a second."""
    tmp, port, started = daemon_env
    cfg = tmp / "logwarden.yaml"
    cfg.write_text(config_text(tmp, port))
    d = Daemon(cfg, tmp)
    started.append(d)
    d.start()
    assert d.proc is not None
    pid = d.proc.pid
    wait_for(lambda: _catches(pid, signal.SIGTERM) or d.proc.poll() is not None, timeout=30, interval=0.001,
             what="a SIGTERM handler")
    importing = "/mmap." not in Path(f"/proc/{pid}/maps").read_text()  # the last module agent.daemon loads
    d.signal(signal.SIGHUP)
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert importing, "the handlers were only installed after the daemon's imports"


def test_invalid_config_at_start_exits_78_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("service:\n  state_dir: /tmp/x\npipeline:\n  inputs:\n    - name: tail\n      pth: /var/log/*.log\n")
    proc = subprocess.run([*LOGWARDEN, "run", "-c", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    assert f"{cfg}:6: pipeline.inputs[0].pth: unknown key (did you mean 'path'?)" in proc.stderr


def test_incident_alert_reaches_webhook_and_survives_an_outage_and_restart(
    daemon_env: tuple[Path, int, list[Daemon]],
) -> None:
    from agent.alerting.testing import Receiver
    from agent.generator import GeneratorConfig, generate
    from agent.generator.engine import GENERATOR_FORMAT, MULTILINE_START

    tmp, port, started = daemon_env
    receiver = Receiver()
    receiver.up()
    try:
        cfg = tmp / "logwarden.yaml"
        cfg.write_text(f"""\
service:
  state_dir: {tmp / 'state'}
  http: {{listen: 127.0.0.1:{port}}}
  alerts: {{retry: {{base: 100ms, cap: 500ms}}}}
pipeline:
  inputs:
    - name: tail
      tag: shop
      path: ['{tmp / 'logs'}/*.log']
      read_from: beginning
      refresh_interval: 200ms
      multiline: {{start: '{MULTILINE_START}', flush: 200ms}}
      parser: {{format: '{GENERATOR_FORMAT}'}}
  detectors:
    - name: novelty
      match: shop
      learn_for: 200s
  outputs:
    - name: webhook
      url: {receiver.url}/hook
""")
        log = tmp / "logs" / "shop.log"
        t0 = 1_700_000_000.0  # in the past: a line stamped more than a day ahead of its reading loses its time
        with log.open("w") as fh:
            generate(GeneratorConfig(seed=3, duration_s=180, start=t0, incidents=[]), fh)
        d = Daemon(cfg, tmp)
        started.append(d)
        d.start()
        wait_http(port)

        def records() -> float:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            for line in text.splitlines():
                if line.startswith("logwarden_pipeline_records_total"):
                    return float(line.split()[-1])
            return 0.0

        # The baseline has rare ERROR lines (the last one 174 s in); learn_for covers all of it, so reading
        # the whole baseline must not alert. Waiting for every record makes the check meaningful.
        baseline_records = sum(1 for line in log.read_text().splitlines() if re.match(MULTILINE_START, line))
        wait_for(lambda: records() >= baseline_records, timeout=60, what="the whole baseline to be read")
        assert receiver.requests == [], "normal traffic must not alert"
        # The receiver goes down, the incident is written, and the daemon is stopped before it could deliver.
        receiver.down()
        base_lines = len(log.read_text().splitlines())
        with log.open("a") as fh:
            labels = generate(GeneratorConfig(seed=4, duration_s=60, start=t0 + 210, incidents=["new_template"],
                                              warmup_fraction=0.1, incident_s=20), fh)
        assert labels and labels[0].type == "new_template"
        wait_for(lambda: "alert" in requests.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5).text
                 and requests.get(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5).json()["alerts"],
                 timeout=60, what="the alert to be spooled")
        d.signal(signal.SIGTERM)
        assert d.wait(30) == 0
        receiver.up()
        d2 = Daemon(cfg, tmp)
        started.append(d2)
        d2.start()
        wait_for(lambda: len(receiver.requests) >= 1, timeout=60, what="the spooled alert to be delivered")
        d2.signal(signal.SIGTERM)
        assert d2.wait(30) == 0
        injected = log.read_text().splitlines()[base_lines + labels[0].lines[0] - 1]  # label lines count from the chunk
        assert labels[0].detail["template"].split(" <*>")[0] in injected
        firing = [b for b in receiver.bodies() if b["status"] == "firing"]
        mine = [b for b in firing if any(injected in s for s in b["evidence"]["samples"])]
        # Normal traffic has rare errors of its own that novelty may also report; the injected one must be
        # there exactly once (one condition, one notification id, across the outage and the restart).
        assert len({b["id"] for b in mine}) == 1, [b["title"] for b in firing]
        alert = mine[0]
        assert alert["detector"] == "novelty" and alert["severity"] in ("warning", "critical")
        assert "New ERROR message" in alert["title"]
        assert all(r.headers.get("idempotency-key") == r.json()["id"] for r in receiver.requests)  # receiver lower-cases
    finally:
        receiver.close()
