"""The HTTP client every network output shares: one option group, one session, one answer classifier.

`HttpClientConfig` is a nested option group (`http: {timeout: 5s, verify_tls: true, headers: {...}}`),
reused the way Fluent Bit reuses its TLS map. `HttpClient.post` turns whatever happens into a `Delivery`:
2xx is Sent; 408/425/429/5xx, timeouts and refused connections are Retry (with the receiver's
`Retry-After`, in seconds or as an HTTP date); other 4xx are Rejected with the start of the response body,
since resending the same payload cannot succeed. Redirects are never followed to another origin (a
redirect must not carry our alerts, signatures or tokens to a host nobody configured); a 307/308 to the
same origin is followed up to three times, and any other 3xx is Rejected.

Reasons never contain the URL or header values: webhook URLs are secrets (the Slack path is the token),
and requests' exception messages embed the URL, so only exception class names are reported.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests

from agent.plugin import Delivery, Rejected, Retry, Sent
from agent.schema import Duration, opt

USER_AGENT = "logwarden/0.1"
MAX_REDIRECTS = 3
_RETRY_STATUSES = {408, 425, 429}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpClientConfig:
    timeout: Duration = opt(Duration(10.0), doc="Limit for connecting and for each read of one request.")
    verify_tls: bool = opt(True, doc="Verify the receiver's TLS certificate; turn off only for a test receiver.")
    ca_file: str = opt("", doc="CA bundle to verify the receiver with instead of the system's.")
    headers: dict[str, str] = opt(
        {}, doc="Extra request headers, e.g. an Authorization token from ${VAR}.", secret=True
    )
    proxy: str = opt("", doc="HTTP(S) proxy URL; empty uses the standard proxy environment variables.")

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


class HttpClient:
    """A `requests.Session` configured once per output instance (connection reuse, TLS, proxy, headers)."""

    def __init__(self, config: HttpClientConfig, *, secrets: Sequence[str] = ()) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.verify = config.ca_file or config.verify_tls
        self.session.headers.update({"User-Agent": USER_AGENT, **config.headers})
        if config.proxy:
            self.session.proxies = {"http": config.proxy, "https": config.proxy}
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
                resp = self.session.post(
                    target, data=body, headers=dict(headers), timeout=self.config.timeout.seconds,
                    allow_redirects=False,
                )
            except requests.Timeout:
                return Retry(f"timed out after {self.config.timeout}")
            except requests.exceptions.SSLError:
                return Retry("TLS handshake or certificate verification failed")
            except requests.ConnectionError as exc:
                return Retry(f"connection failed ({_root_cause(exc)})")
            except requests.exceptions.ChunkedEncodingError:
                # The connection broke while the answer was read: the alert may or may not have arrived, and
                # the idempotency key makes sending it again safe. Only errors in the request itself are final.
                return Retry("connection broke while reading the response")
            except requests.RequestException as exc:
                return Rejected(f"request could not be made ({type(exc).__name__})")
            with resp:
                status = resp.status_code
                if 300 <= status < 400:
                    location = resp.headers.get("Location", "")
                    nxt = urljoin(target, location)
                    if status in (307, 308) and location and _origin(nxt) == _origin(target):
                        target = nxt
                        continue
                    where = "another host" if _origin(nxt) != _origin(target) else "the same host"
                    return Rejected(f"HTTP {status} redirect to {where} not followed; configure the final URL")
                return self.classify(status, resp.headers.get("Retry-After"), _body_text(resp))
        return Rejected(f"more than {MAX_REDIRECTS} redirects")

    def classify(self, status: int, retry_after: str | None, body: str) -> Delivery:
        if 200 <= status < 300:
            return Sent()
        detail = self.redact(body.strip()[:500])
        if status in _RETRY_STATUSES or status >= 500:
            return Retry(f"HTTP {status}: {detail}" if detail else f"HTTP {status}", parse_retry_after(retry_after))
        return Rejected(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")

    def close(self) -> None:
        self.session.close()


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's class (e.g. ConnectionRefusedError) without its URL-bearing message."""
    args = getattr(exc, "args", ())
    reason = getattr(args[0], "reason", None) if args else None  # urllib3's MaxRetryError.reason
    seen: BaseException = reason if isinstance(reason, BaseException) else exc
    for _ in range(10):
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            break
        seen = nxt
    return type(seen).__name__


def _body_text(resp: requests.Response) -> str:
    return resp.content[:4096].decode("utf-8", "replace")
