"""The ops endpoint: `/health`, `/metrics`, `/api/v1/templates`, `/api/v1/alerts`.

Off unless `service.http` is configured, and meant for loopback (the default listen address). It reads
state through callables handed in by the daemon, so it never reaches into a stage.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import structlog

log = structlog.get_logger("logwarden.http")


@dataclass(slots=True)
class Endpoints:
    health: Callable[[], tuple[bool, dict[str, Any]]]
    metrics: Callable[[], bytes]
    templates: Callable[[int], list[dict[str, Any]]]
    alerts: Callable[[int], list[dict[str, Any]]]


class OpsServer:
    def __init__(self, listen: str, endpoints: Endpoints) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        handler = _make_handler(endpoints)
        self.server = ThreadingHTTPServer((host, int(port)), handler)
        self.server.daemon_threads = True
        self.server.timeout = 0.0  # `handle_request` only ever runs when a connection is waiting: never block in it
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="logwarden-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        log.info("http_listening", host=self.address[0], port=self.address[1])

    def _serve(self) -> None:
        """Block until a client connects or `stop()` writes to the wake socket.

        `serve_forever` wakes every `poll_interval` (0.5 s) just to check for a shutdown request; an
        idle daemon should not, so the wake-up comes through a socket the same select watches.
        """
        with selectors.DefaultSelector() as sel:
            sel.register(self.server, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in sel.select()}
                if self._wake_r in ready:
                    return
                self.server.handle_request()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.server.server_close()
        self._wake_r.close()
        self._wake_w.close()


def _make_handler(ep: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "logwarden"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would flood the journal

        def do_GET(self) -> None:
            url = urlparse(self.path)
            limit = _int(parse_qs(url.query).get("limit", ["100"])[0], 100)
            try:
                if url.path == "/health":
                    ok, detail = ep.health()
                    self._json(200 if ok else 503, {"status": "ok" if ok else "failing", **detail})
                elif url.path == "/metrics":
                    self._send(200, ep.metrics(), "text/plain; version=0.0.4; charset=utf-8")
                elif url.path == "/api/v1/templates":
                    self._json(200, {"templates": ep.templates(limit)})
                elif url.path == "/api/v1/alerts":
                    self._json(200, {"alerts": ep.alerts(limit)})
                else:
                    self._json(404, {"error": "not found", "paths": ["/health", "/metrics", "/api/v1/templates", "/api/v1/alerts"]})
            except Exception as exc:  # an endpoint bug must not kill the server thread
                log.error("http_handler_failed", path=url.path, error=repr(exc))
                self._json(500, {"error": "internal error"})

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, json.dumps(body, default=str).encode(), "application/json")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _int(text: str, default: int) -> int:
    try:
        return max(1, min(10_000, int(text)))
    except ValueError:
        return default
