"""Fixtures for output tests: a local HTTP receiver and the real Alertmanager (Debian prometheus-alertmanager)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from agent.alerting.testing import Receiver
from tests.lwtest import wait_for

AM_BINARY = "prometheus-alertmanager"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


@dataclass
class Alertmanager:
    url: str
    receiver: Receiver
    """Where Alertmanager's own webhook_config forwards notifications."""

    def alerts(self) -> list[dict[str, object]]:
        resp = requests.get(self.url + "/api/v2/alerts", timeout=5)
        resp.raise_for_status()
        out: list[dict[str, object]] = resp.json()
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ready(url: str) -> bool:
    try:
        return requests.get(url + "/-/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    binary = shutil.which(AM_BINARY) or ("/usr/bin/" + AM_BINARY if Path("/usr/bin/" + AM_BINARY).exists() else None)
    if binary is None:
        reason = f"{AM_BINARY} not installed (apt-get install -y prometheus-alertmanager)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    rx = Receiver()
    cfg = tmp_path / "alertmanager.yml"
    cfg.write_text(
        "route:\n"
        "  receiver: local\n"
        "  group_by: [alertname]\n"
        "  group_wait: 200ms\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: local\n"
        "    webhook_configs:\n"
        f"      - url: {rx.url}/am\n"
        "        send_resolved: true\n"
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.path={tmp_path / 'am-data'}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: proc.poll() is not None or _ready(url), timeout=30, what="Alertmanager /-/ready")
        if proc.poll() is not None:
            pytest.fail("Alertmanager exited: " + (tmp_path / "alertmanager.log").read_text()[-2000:])
        yield Alertmanager(url, rx)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        with contextlib.suppress(Exception):
            rx.close()
