"""The HTTP client every network output shares: one option group, one session, one answer classifier.

`HttpClientConfig` is a nested option group (`http: {timeout: 5s, verify_tls: true, headers: {...}}`),
reused the way Fluent Bit reuses its TLS map. `HttpClient.post` turns whatever happens into a `Delivery`:
2xx is Sent; 408/425/429/5xx, timeouts and refused connections are Retry (with the receiver's
`Retry-After`, in seconds or as an HTTP date); other 4xx are Rejected with the start of the response body,
since resending the same payload cannot succeed. Redirects are never followed to another origin (a
redirect must not carry our alerts, signatures or tokens to a host nobody configured); a 307/308 to the
same origin is followed up to three times, and any other 3xx is Rejected.

Reasons never contain the URL or header values: webhook URLs are secrets (the Slack path is the token),
and socket and TLS exception messages can embed the host, so only exception class names are reported.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import http.client
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from agent.plugin import Delivery, Rejected, Retry, Sent
from agent.schema import Duration, opt

USER_AGENT = "logwarden/0.1"
MAX_REDIRECTS = 3
_RETRY_STATUSES = {408, 425, 429}
_MAX_BODY = 65536
"""Bytes of an answer read; a longer one closes its connection instead of being drained (4 KiB are kept)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpClientConfig:
    timeout: Duration = opt(
        Duration(10.0), doc="Limit for one request as a whole: connecting, sending and reading the answer."
    )
    verify_tls: bool = opt(True, doc="Verify the receiver's TLS certificate; turn off only for a test receiver.")
    ca_file: str = opt("", doc="CA bundle to verify the receiver with instead of the system's.")
    headers: dict[str, str] = opt(
        {}, doc="Extra request headers, e.g. an Authorization token from ${VAR}.", secret=True
    )
    proxy: str = opt(
        "", doc="HTTP proxy URL (http://[user:password@]host:port; https receivers are tunnelled with CONNECT); "
        "empty uses https_proxy, http_proxy and no_proxy from the environment."
    )

    def __post_init__(self) -> None:
        if self.timeout.seconds <= 0:
            raise ValueError("http.timeout must be greater than zero")
        for key in self.headers:
            if not key or any(c in key for c in ":\r\n "):
                raise ValueError(f"http.headers: invalid header name {key!r}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(key: str, url: str | None, *, required: bool = True) -> list[tuple[str, str]]:
    """Preflight a receiver URL without ever echoing it (it may hold a token)."""
    if url is None:
        return [(key, "is required")] if required else []
    if not url.strip():
        return [(key, "is empty (is its environment variable set?)")]
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return [(key, f"is not a valid URL: {exc}")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [(key, "must be an http:// or https:// URL with a host")]
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return [(f"warning:{key}", "is not https: alerts and credentials would cross the network in clear text")]
    return []


def secret_problem(key: str, value: str | None) -> list[tuple[str, str]]:
    if value is not None and not value:
        return [(key, "is empty (is its environment variable set?)")]
    return []


class _Broken(Exception):
    """The connection failed after the request may have reached the receiver (a retry is safe: the
    idempotency key deduplicates), or the whole-request deadline cut it."""


@dataclass(slots=True)
class _Conn:
    http: http.client.HTTPConnection
    forward: bool = False
    """Through a plain-HTTP proxy: the request line carries the absolute URL."""
    headers: dict[str, str] | None = None
    """Sent with each request on this connection (a forward proxy's credentials)."""


class HttpClient:
    """One output's HTTP client on the standard library's `http.client`: a kept-alive connection per origin,
    TLS, a proxy, default headers, and a deadline on the whole request.

    Not `requests`: it and its helpers (urllib3, charset_normalizer, idna) cost the daemon about 4 MiB of
    steady RSS (bench/e2e.py live: 75.3 MiB without, 78.3 to 79.1 with; 8 MiB on a bare interpreter) for
    one POST an alert, and its per-read timeout let a receiver that trickles its answer a byte at a time
    hold the delivery thread indefinitely. Owning the socket, the client shuts it down when `timeout` has
    passed since the request began, whatever stage it is in."""

    def __init__(self, config: HttpClientConfig, *, secrets: Sequence[str] = ()) -> None:
        self.config = config
        self._headers = {"User-Agent": USER_AGENT, **config.headers}
        self._conns: dict[tuple[str, str, int | None], _Conn] = {}
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        hidden = {*secrets, *config.headers.values()}
        for s in list(hidden):  # a receiver may echo only the path of a secret URL (Slack's path is the token)
            parts = urlsplit(s)
            if parts.scheme and parts.netloc:
                hidden.update(p for p in (parts.path, parts.path.lstrip("/"), parts.query) if len(p) >= 8)
        self._secrets = sorted({s for s in hidden if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
        target = url
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                status, answer, text = self._exchange(target, body, {**self._headers, **headers})
            except TimeoutError:
                return Retry(f"timed out after {self.config.timeout}")
            except (ssl.SSLError, ssl.CertificateError):
                return Retry("TLS handshake or certificate verification failed")
            except _Broken as exc:
                return Retry(str(exc))
            except (ConnectionError, OSError) as exc:  # refused, unreachable, reset, a name that does not resolve
                return Retry(f"connection failed ({_root_cause(exc)})")
            except (ValueError, http.client.InvalidURL) as exc:  # a bad URL or header value: resending cannot help
                return Rejected(f"request could not be made ({type(exc).__name__})")
            except http.client.HTTPException as exc:  # a status line or headers that are not HTTP (a proxy's page?)
                return Retry(f"malformed answer ({type(exc).__name__})")
            if 300 <= status < 400:
                location = answer.get("Location", "")
                nxt = urljoin(target, location)
                if status in (307, 308) and location and _origin(nxt) == _origin(target):
                    target = nxt
                    continue
                where = "another host" if _origin(nxt) != _origin(target) else "the same host"
                return Rejected(f"HTTP {status} redirect to {where} not followed; configure the final URL")
            return self.classify(status, answer.get("Retry-After"), text)
        return Rejected(f"more than {MAX_REDIRECTS} redirects")

    def classify(self, status: int, retry_after: str | None, body: str) -> Delivery:
        if 200 <= status < 300:
            return Sent()
        detail = self.redact(body.strip()[:500])
        if status in _RETRY_STATUSES or status >= 500:
            return Retry(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", parse_retry_after(retry_after))
        return Rejected(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")

    def close(self) -> None:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.http.close()

    # -- one exchange ------------------------------------------------------------------------------

    def _exchange(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, str]:
        """POST once (again on a fresh connection when a kept-alive one turns out closed before any answer)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        origin = _origin(url)
        with self._lock:
            conn = self._conns.pop(origin, None)
        deadline = time.monotonic() + self.config.timeout.seconds
        if conn is not None:
            try:
                return self._once(conn, origin, parts, body, headers, deadline)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                pass  # the receiver closed an idle kept-alive connection: this request never reached it
        return self._once(self._connect(parts), origin, parts, body, headers, deadline)

    def _once(self, conn: _Conn, origin: tuple[str, str, int | None], parts: SplitResult,
              body: bytes, headers: dict[str, str], deadline: float) -> tuple[int, http.client.HTTPMessage, str]:
        cut = threading.Event()

        def expire() -> None:
            cut.set()
            sock = conn.http.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket, under any TLS layer

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
        keep = False
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            if conn.forward:
                path = f"{parts.scheme}://{parts.netloc}{path}"
            conn.http.request("POST", path, body=body, headers={**headers, **conn.headers} if conn.headers else headers)
            resp = conn.http.getresponse()
            data = resp.read(_MAX_BODY)
            keep = resp.isclosed() and not resp.will_close  # the whole answer read: the connection is reusable
            return resp.status, resp.msg, data[:4096].decode("utf-8", "replace")
        except (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionResetError,
                BrokenPipeError) as exc:
            if cut.is_set():
                raise TimeoutError from None
            if isinstance(exc, http.client.IncompleteRead):
                raise _Broken("connection broke while reading the response") from None
            raise
        except (OSError, http.client.HTTPException):
            if cut.is_set():
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()
            if keep and not cut.is_set():
                with self._lock:
                    old = self._conns.pop(origin, None)
                    self._conns[origin] = conn
                if old is not None:
                    old.http.close()
            else:
                conn.http.close()

    def _connect(self, parts: SplitResult) -> _Conn:
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        timeout = self.config.timeout.seconds
        proxy = self._proxy_for(parts.scheme, host)
        tls = self._tls_context() if parts.scheme == "https" else None
        if proxy is None:
            if tls is not None:
                return _Conn(http.client.HTTPSConnection(host, port, timeout=timeout, context=tls))
            return _Conn(http.client.HTTPConnection(host, port, timeout=timeout))
        p = urlsplit(proxy)
        if p.scheme != "http" or not p.hostname:
            raise ValueError("only http:// proxies are supported")
        auth: dict[str, str] = {}
        if p.username is not None:
            token = base64.b64encode(f"{unquote(p.username)}:{unquote(p.password or '')}".encode()).decode()
            auth["Proxy-Authorization"] = f"Basic {token}"
        if tls is not None:  # CONNECT through the proxy, then TLS with the receiver end to end
            tunnel = http.client.HTTPSConnection(p.hostname, p.port or 8080, timeout=timeout, context=tls)
            tunnel.set_tunnel(host, port, headers=auth)
            return _Conn(tunnel)
        return _Conn(http.client.HTTPConnection(p.hostname, p.port or 8080, timeout=timeout), forward=True,
                     headers=auth or None)

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        """The configured proxy, else the one the standard environment variables name for this scheme and
        host (`https_proxy`, `http_proxy`, `no_proxy`, either case — what curl and requests honour)."""
        if self.config.proxy:
            return self.config.proxy
        env = os.environ
        url = env.get(f"{scheme}_proxy") or env.get(f"{scheme.upper()}_PROXY")
        if not url:
            return None
        for entry in (env.get("no_proxy") or env.get("NO_PROXY") or "").split(","):
            entry = entry.strip().lower().lstrip(".")
            if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
                return None
        return url

    def _tls_context(self) -> ssl.SSLContext:
        """Built on the first https request: loading the CA store costs memory a plain-http host never needs."""
        if self._tls is None:
            ctx = ssl.create_default_context(cafile=self.config.ca_file or None)
            if not self.config.verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._tls = ctx
        return self._tls


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's class (e.g. ConnectionRefusedError) without its host-bearing message."""
    seen = exc
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    return type(seen).__name__
