"""A real HTTP receiver on 127.0.0.1 for tests and the delivery benchmark (stdlib only, never imported by
the daemon).

It records every request and answers through a replaceable `responder`, so a test can make it fail with
500, 429 + Retry-After or a redirect for a while; `down()` closes the listening socket (connection
refused) and `up()` binds the same port again. Like structlog's `testing` module, it lets tests of outputs
and of the router assert on what really went over the wire instead of mocking either side.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """Wall time the request was received."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()


Responder = Callable[[Request], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) breaks the pipe; that is expected, not worth a traceback."""


def read_request(conn: socket.socket) -> tuple[bytes, bytes]:
    """Head and body of one HTTP request from a raw socket, for tests that play a misbehaving server
    (a receiver that trickles, hangs up mid-answer or is a proxy) below what `Receiver` allows."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def ok(_req: Request) -> Response:
    return Response()


class Receiver:
    def __init__(self, responder: Responder = ok, port: int = 0) -> None:
        self.responder = responder
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        """Requests answered with a 2xx: what a real receiver would have processed."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.port = port
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without NODELAY, Nagle and the client's delayed
                # ACK add ~40 ms to every request on a kept-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with receiver._lock:
                    receiver._conns.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._conns.discard(self.connection)
                super().finish()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    # `down()` shut the connection while the body was in flight: a real server would drop
                    # the truncated request, so it is neither recorded nor answered.
                    self.close_connection = True
                    return
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                              time.time())
                resp = receiver.responder(req)
                with receiver._lock:
                    receiver.requests.append(req)
                    if 200 <= resp.status < 300:
                        receiver.accepted.append(req)
                self.send_response(resp.status)
                for k, v in resp.headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def up(self) -> None:
        """Listen (again) on the receiver's port."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused until `up()`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # kept-alive client connections would otherwise still be served
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.down()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.accepted]

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
