"""The outputs' HTTP client on real sockets: a whole-request deadline, TLS with a generated CA, proxies
(forward and CONNECT), and kept-alive connections — all on 127.0.0.1, every wait bounded."""

from __future__ import annotations

import http.server
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.alerting.testing import Receiver, read_request
from agent.plugin import Rejected, Retry, Sent
from agent.schema import Duration
from plugins.outputs.http_common import HttpClient, HttpClientConfig


def serve_once(handler: Callable[[socket.socket], None]) -> tuple[str, threading.Thread]:
    """A one-connection server running `handler` on the accepted socket; returns its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)

    def run() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                handler(conn)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/hook", t


def test_a_receiver_that_trickles_its_answer_is_cut_at_the_deadline() -> None:
    """A byte every 0.1 s never trips a per-read timeout of 0.5 s; the whole request is cut at 0.5 s."""
    stop = threading.Event()

    def trickle(conn: socket.socket) -> None:
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 200:
            if stop.is_set():
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    url, server = serve_once(trickle)
    client = HttpClient(HttpClientConfig(timeout=Duration(0.5)))
    t0 = time.monotonic()
    result = client.post(url, b"{}", {"Content-Type": "application/json"})
    took = time.monotonic() - t0
    stop.set()
    server.join(5)
    assert isinstance(result, Retry) and "timed out" in result.reason
    assert 0.4 < took < 2.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate can be generated for the TLS tests")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=logwarden test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    yield d / "ca.pem", d / "srv.pem", d / "srv.key"


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def https_url(tls_files: tuple[Path, Path, Path]) -> Iterator[str]:
    _ca, cert, key = tls_files
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/tls"
    server.shutdown()
    server.server_close()


class _Idle(_Ok):
    """Closes a kept-alive connection after 0.3 s without a request, as servers do."""

    timeout = 0.3
    ports: list[int] = []

    def do_POST(self) -> None:
        _Idle.ports.append(self.client_address[1])
        super().do_POST()


def test_kept_alive_connections_are_reused_and_one_the_server_closed_is_replaced() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Idle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a"
    try:
        client = HttpClient(HttpClientConfig(timeout=Duration(5.0)))
        for _ in range(3):
            assert isinstance(client.post(url, b"{}", {}), Sent)
        assert len(_Idle.ports) == 3 and len(set(_Idle.ports)) == 1
        time.sleep(0.8)  # the server has closed the idle connection the client keeps
        assert isinstance(client.post(url, b"{}", {}), Sent)
        assert len(_Idle.ports) == 4 and len(set(_Idle.ports)) == 2
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_against_the_configured_ca(https_url: str, tls_files: tuple[Path, Path, Path]) -> None:
    ca = str(tls_files[0])
    unknown = HttpClient(HttpClientConfig(timeout=Duration(5.0))).post(https_url, b"{}", {})
    assert isinstance(unknown, Retry) and "TLS" in unknown.reason  # not in the system's store
    assert isinstance(HttpClient(HttpClientConfig(ca_file=ca)).post(https_url, b"{}", {}), Sent)
    assert isinstance(HttpClient(HttpClientConfig(verify_tls=False)).post(https_url, b"{}", {}), Sent)


class _Proxy:
    """A forward proxy on 127.0.0.1 that relays absolute-URL requests and CONNECT tunnels, and records the
    request lines and Proxy-Authorization headers it saw."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.auth: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.url = f"http://user:p%40ss@127.0.0.1:{self.server.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head, rest = read_request(conn)
            lines = head.decode().split("\r\n")
            self.lines.append(lines[0])
            self.auth += [h.split(":", 1)[1].strip() for h in lines[1:] if h.lower().startswith("proxy-authorization")]
            method, target, _ = lines[0].split(" ")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=10)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(conn, upstream)
                return
            rest_of_url = target.split("://", 1)[1]
            hostport, _, path = rest_of_url.partition("/")
            host, port = hostport.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=10)
            relayed = [f"{method} /{path} HTTP/1.1", *[h for h in lines[1:] if not h.lower().startswith("proxy-")]]
            upstream.sendall("\r\n".join(relayed).encode() + b"\r\n\r\n" + rest)
            self._pipe(conn, upstream)

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with b:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    p = _Proxy()
    yield p
    p.close()


def test_plain_http_goes_through_the_configured_proxy_with_its_credentials(proxy: _Proxy) -> None:
    with Receiver() as rx:
        client = HttpClient(HttpClientConfig(proxy=proxy.url, timeout=Duration(5.0)))
        assert isinstance(client.post(rx.url + "/via", b"{}", {}), Sent)
        client.close()
        assert [r.path for r in rx.requests] == ["/via"]
        assert proxy.lines == [f"POST {rx.url}/via HTTP/1.1"]
        assert proxy.auth == ["Basic dXNlcjpwQHNz"]  # user:p@ss


def test_https_tunnels_through_the_proxy_named_by_the_environment(
    proxy: _Proxy, https_url: str, tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = HttpClient(HttpClientConfig(ca_file=str(tls_files[0]), timeout=Duration(5.0)))
    assert isinstance(client.post(https_url, b"{}", {}), Sent)
    port = https_url.split(":")[2].split("/")[0]
    assert [line.rsplit(" ", 1)[0] for line in proxy.lines] == [f"CONNECT 127.0.0.1:{port}"]
    assert proxy.auth == ["Basic dXNlcjpwQHNz"]
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    assert isinstance(HttpClient(HttpClientConfig(ca_file=str(tls_files[0]))).post(https_url, b"{}", {}), Sent)
    assert len(proxy.lines) == 1  # bypassed


def test_a_proxy_over_tls_is_refused_with_the_reason() -> None:
    client = HttpClient(HttpClientConfig(proxy="https://127.0.0.1:9"))
    result = client.post("http://127.0.0.1:9/x", b"{}", {})
    assert isinstance(result, Rejected) and "ValueError" in result.reason


def test_an_answer_that_is_not_http_is_retried() -> None:
    def garbage(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    url, server = serve_once(garbage)
    result = HttpClient(HttpClientConfig(timeout=Duration(5.0))).post(url, b"{}", {})
    server.join(5)
    assert isinstance(result, Retry) and "malformed answer" in result.reason
