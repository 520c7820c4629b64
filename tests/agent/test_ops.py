"""The ops surface: systemd notify datagrams, Prometheus exposition, and the HTTP endpoint."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.http import Endpoints, OpsServer
from agent.metrics import render
from agent.sdnotify import Notifier


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5.0)
    n = Notifier(path)
    assert n.enabled
    assert n.notify("READY=1")
    assert sock.recv(100) == b"READY=1"
    n.close()
    sock.close()


def test_notifier_disabled_without_socket() -> None:
    n = Notifier("")
    assert not n.enabled
    assert not n.notify("READY=1")


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert Notifier("").watchdog_interval() == 10.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert Notifier("").watchdog_interval() is None


def stats() -> dict[str, dict[str, float]]:
    return {
        "input.tail.0": {"lines_total": 12.0, "files_open": 2.0},
        "router": {"sent_total": 3.0, "hist_delivery_seconds__le_0.1": 1.0, "hist_delivery_seconds__le_inf": 3.0,
                   "hist_delivery_seconds__sum": 0.9},
    }


def test_metrics_exposition() -> None:
    text = render(stats).decode()
    assert 'logwarden_input_lines_total{component="input.tail.0"} 12.0' in text
    assert "# TYPE logwarden_input_lines_total counter" in text or "# TYPE logwarden_input_lines counter" in text
    assert 'logwarden_input_files_open{component="input.tail.0"} 2.0' in text
    assert "# TYPE logwarden_input_files_open gauge" in text
    assert 'logwarden_delivery_seconds_bucket{component="router",le="+Inf"} 3.0' in text
    assert "logwarden_uptime_seconds" in text


def test_http_endpoints() -> None:
    healthy = {"ok": True}

    def health() -> tuple[bool, dict[str, Any]]:
        return healthy["ok"], {"records": 5}

    ep = Endpoints(
        health=health,
        metrics=lambda: render(stats),
        templates=lambda limit: [{"id": 1, "template": "a <*>", "count": 3}][:limit],
        alerts=lambda limit: [],
    )
    server = OpsServer("127.0.0.1:0", ep)
    server.start()
    base = f"http://127.0.0.1:{server.address[1]}"
    try:
        r = requests.get(f"{base}/health", timeout=5)
        assert (r.status_code, r.json()["status"], r.json()["records"]) == (200, "ok", 5)
        healthy["ok"] = False
        assert requests.get(f"{base}/health", timeout=5).status_code == 503
        r = requests.get(f"{base}/metrics", timeout=5)
        assert r.headers["Content-Type"].startswith("text/plain")
        assert "logwarden_router_sent_total" in r.text
        assert json.loads(requests.get(f"{base}/api/v1/templates?limit=5", timeout=5).text)["templates"][0]["id"] == 1
        assert requests.get(f"{base}/nope", timeout=5).status_code == 404
    finally:
        server.stop()


def test_http_server_sleeps_in_select_yet_stops_and_frees_its_port() -> None:
    """The server waits for a connection or for stop() (no 0.5 s shutdown poll); stop ends its thread."""
    ep = Endpoints(health=lambda: (True, {}), metrics=lambda: b"", templates=lambda limit: [], alerts=lambda limit: [])
    server = OpsServer("127.0.0.1:0", ep)
    server.start()
    port = server.address[1]
    # A client that connects and leaves without a request must not wedge the accept loop.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    server.stop()
    assert not server._thread.is_alive()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # the listening socket was closed
    server.stop()  # idempotent
